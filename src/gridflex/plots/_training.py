"""Training curves: metrics per primal step and per wall-clock second (paper Fig. 6)."""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from jaxtyping import Float
from matplotlib import ticker
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .._custom_types import AnyArray
from ._common import finish, label_of, new_figure, png_path, unit_of


DEFAULT_CURVES = ("cost", "voltage_violation", "lambda_voltage")
"""What `plot_training_curves` draws unless told otherwise (those the rows carry):
the cost, the voltage violation, and the voltage dual, whose growth explains why
the cost rises again after its first fall."""


def _series(
    method: str, rows: Sequence[Mapping[str, Any]], key: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    steps, walls, values = [], [], []
    for i, row in enumerate(rows):
        if key not in row:
            continue
        missing = [k for k in ("step", "wall_s") if k not in row]
        if missing:
            where = f"method {method!r} " if method else ""
            raise ValueError(
                f"plot_training_curves: {where}row {i} has {key!r} but no "
                f"{' or '.join(missing)}; every metrics row needs `step` and `wall_s`."
            )
        value = row[key]
        steps.append(float(row["step"]))
        walls.append(float(row["wall_s"]))
        values.append(np.nan if value is None else float(value))
    order = np.argsort(steps, kind="stable")
    return (
        np.asarray(steps)[order],
        np.asarray(walls)[order],
        np.asarray(values)[order],
    )


def trailing_mean(
    values: Float[AnyArray, " n"], window: int
) -> Float[np.ndarray, " n"]:
    """Mean of each value and the `window - 1` before it (fewer at the start),
    skipping missing values; each window summed on its own (no running sum, whose
    rounding can leave a constant series off its own level)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.empty_like(values)
    for i in range(values.size):
        chunk = values[max(0, i - window + 1) : i + 1]
        known = chunk[np.isfinite(chunk)]
        out[i] = known.mean() if known.size else np.nan
    return out


def _dual_boundaries(
    runs: Mapping[str, Sequence[Mapping[str, Any]]],
) -> tuple[str, list[float]]:
    """The first run carrying `dual_step`, and the primal steps at which it starts a
    new dual step (the duals change between the step before and this one)."""
    for method, rows in runs.items():
        marks = [
            (float(r["step"]), int(r["dual_step"]))
            for r in rows
            if "dual_step" in r and "step" in r
        ]
        if marks:
            marks.sort()
            return method, [
                s for (s, d), (_, d0) in zip(marks[1:], marks[:-1]) if d > d0
            ]
    return "", []


def _plain_log_labels(ax) -> None:
    """Log-axis ticks at 1, 2 and 5 of each decade, as plain numbers (0.5, 1, 2),
    not powers of ten."""
    ax.yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda y, _: f"{y:g}"))
    ax.yaxis.set_minor_formatter(ticker.NullFormatter())


def plot_training_curves(
    metrics: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Mapping[str, Any]]],
    path: str | Path | None = None,
    *,
    keys: Sequence[str] | None = None,
    units: Mapping[str, str] | None = None,
    currency: str = "GBP",
    title: str = "Training curves",
    smooth: int = 1,
    log_keys: Sequence[str] = ("voltage_violation",),
    mark_dual_steps: bool = True,
    figsize: tuple[float, float] | None = None,
    dpi: int = 100,
) -> Figure:
    """Training curves of one or several methods, against primal steps and wall-clock
    time (the paper's Fig. 6): one row of panels per metric, primal steps on the
    left, seconds on the right, methods overlaid, dual steps marked.

    **Arguments:**

    - `metrics`: the rows of one run's `metrics.jsonl` (`gridflex.runs.read_metrics`),
        or a dict from method name (the legend's entry) to such rows. Rows carrying a
        plotted key must carry `step` (primal step) and `wall_s` (seconds since the
        run started); other rows (evaluation, events) are ignored.
    - `path`: where to write the figure as a PNG; none by default.
    - `keys`: the metrics to plot, one row of panels each; by default those of
        `DEFAULT_CURVES` the rows carry.
    - `units`: unit of each key, overriding `METRIC_UNITS` (e.g.
        `{"cost": "GBP/episode"}`); keys in neither are labelled dimensionless.
    - `currency`: fills `{currency}` in the units.
    - `title`: the figure's title; say the feeder and the number of homes.
    - `smooth`: plot the trailing mean of this many primal steps (1: raw values;
        the duals, `lambda_*`, always raw); the title says so.
    - `log_keys`: keys drawn on a logarithmic axis (a violation falls by orders of
        magnitude; on a linear axis its last 90 % is a flat line at zero).
    - `mark_dual_steps`: thin vertical lines where the duals change (from the rows'
        `dual_step`, of the first method that has it), on the primal-step panels.
    - `figsize`: inches; by default 10 wide and 2.6 per metric.
    - `dpi`: pixels per inch.

    **Returns:** the `Figure`.
    """
    # Long: its docstring documents every argument; the code is 76 lines
    path = png_path(path)
    runs = dict(metrics) if isinstance(metrics, Mapping) else {"": metrics}
    if not runs:
        raise ValueError("plot_training_curves: no methods given.")
    for method, rows in runs.items():
        if isinstance(rows, Mapping) or not isinstance(rows, Sequence):
            raise TypeError(
                f"plot_training_curves: method {method!r} must map to a list of rows "
                f"(dicts), got {type(rows).__name__}."
            )
    if smooth < 1:
        raise ValueError(f"plot_training_curves: smooth = {smooth} must be >= 1.")
    available = sorted({k for rows in runs.values() for row in rows for k in row})
    if keys is None:
        keys = [k for k in DEFAULT_CURVES if k in available]
        if not keys:
            raise ValueError(
                f"plot_training_curves: no row has any of {', '.join(DEFAULT_CURVES)}; "
                f"the rows have {', '.join(available) or 'nothing'}. Pass `keys`."
            )
    keys = list(keys)
    if not keys:
        raise ValueError("plot_training_curves: `keys` is empty.")
    for key in keys:
        if key not in available:
            raise ValueError(
                f"plot_training_curves: no row has {key!r}; the rows have "
                f"{', '.join(available) or 'nothing'}."
            )

    fig = new_figure(figsize or (10.0, 1.0 + 2.6 * len(keys)), dpi)
    axes = fig.subplots(len(keys), 2, squeeze=False, sharey="row", sharex="col")
    for r, key in enumerate(keys):
        for method, rows in runs.items():
            steps, walls, values = _series(method, rows, key)
            if smooth > 1 and not key.startswith("lambda_"):  # duals: step functions
                values = trailing_mean(values, smooth)
            axes[r, 0].plot(steps, values, label=method or None, linewidth=1.2)
            axes[r, 1].plot(walls, values, label=method or None, linewidth=1.2)
        axes[r, 0].set_ylabel(f"{label_of(key)}\n[{unit_of(key, units, currency)}]")
        if key in log_keys:
            axes[r, 0].set_yscale("log")
            _plain_log_labels(axes[r, 0])
        for ax in axes[r]:
            ax.grid(True, alpha=0.3)
    owner, bounds = _dual_boundaries(runs) if mark_dual_steps else ("", [])
    for s in bounds:
        for ax in axes[:, 0]:
            ax.axvline(s, color="0.6", linewidth=0.5, alpha=0.5, zorder=0)
    if bounds:
        label = f"{owner}'s dual steps" if len(runs) > 1 else "dual steps"
        mark = Line2D([], [], color="0.6", linewidth=0.5, label=label)
        axes[0, 0].legend(handles=[mark], fontsize="small", loc="upper right")
    axes[0, 0].set_title("against primal steps", fontsize="medium")
    axes[0, 1].set_title("against wall-clock time", fontsize="medium")
    axes[-1, 0].set_xlabel("primal step")
    axes[-1, 1].set_xlabel("wall-clock time [s]")
    if len(runs) > 1 or "" not in runs:
        axes[0, 1].legend(fontsize="small", loc="upper right")
    if smooth > 1:
        title = f"{title}\n(each curve the mean of the last {smooth} primal steps)"
    fig.suptitle(title)
    return finish(fig, path)
