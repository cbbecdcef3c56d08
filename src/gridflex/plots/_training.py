"""Training curves: metrics per primal step and per wall-clock second (paper Fig. 6)."""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._common import new_figure, png_path, save_png, unit_of


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


def plot_training_curves(
    metrics: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Mapping[str, Any]]],
    path: str | Path,
    *,
    keys: Sequence[str] = ("cost", "voltage_violation"),
    units: Mapping[str, str] | None = None,
    currency: str = "GBP",
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
    dpi: int = 100,
) -> Path:
    """Training curves of one or several methods, against primal steps and wall-clock
    time (the paper's Fig. 6): one row of panels per metric, primal steps on the
    left, seconds on the right, methods overlaid.

    **Arguments:**

    - `metrics`: the rows of one run's `metrics.jsonl` (`gridflex.runs.read_metrics`),
        or a dict from method name to such rows. Rows carrying a plotted key must
        carry `step` (primal step) and `wall_s` (seconds since the run started);
        other rows (evaluation, events) are ignored.
    - `path`: the PNG to write.
    - `keys`: the metrics to plot, one row of panels each.
    - `units`: unit of each key, overriding `METRIC_UNITS` (e.g.
        `{"cost": "GBP/episode"}`); keys in neither are labelled dimensionless.
    - `currency`: fills `{currency}` in the units.
    - `title`: a title over the figure.
    - `figsize`: inches; by default 10 wide and 3 per metric.
    - `dpi`: pixels per inch.

    **Returns:** `path`.
    """
    path = png_path(path)
    runs = dict(metrics) if isinstance(metrics, Mapping) else {"": metrics}
    if not runs:
        raise ValueError("plot_training_curves: no methods given.")
    keys = list(keys)
    if not keys:
        raise ValueError("plot_training_curves: `keys` is empty.")
    for method, rows in runs.items():
        if isinstance(rows, Mapping) or not isinstance(rows, Sequence):
            raise TypeError(
                f"plot_training_curves: method {method!r} must map to a list of rows "
                f"(dicts), got {type(rows).__name__}."
            )
    available = sorted({k for rows in runs.values() for row in rows for k in row})
    for key in keys:
        if key not in available:
            raise ValueError(
                f"plot_training_curves: no row has {key!r}; the rows have "
                f"{', '.join(available) or 'nothing'}."
            )

    fig = new_figure(figsize or (10.0, 3.0 * len(keys)), dpi)
    axes = fig.subplots(len(keys), 2, squeeze=False, sharey="row")
    for r, key in enumerate(keys):
        label = f"{key.replace('_', ' ')} [{unit_of(key, units, currency)}]"
        for method, rows in runs.items():
            steps, walls, values = _series(method, rows, key)
            axes[r, 0].plot(steps, values, label=method or None, linewidth=1.2)
            axes[r, 1].plot(walls, values, label=method or None, linewidth=1.2)
        axes[r, 0].set_ylabel(label)
        for ax in axes[r]:
            ax.grid(True, alpha=0.3)
    axes[-1, 0].set_xlabel("primal step [–]")
    axes[-1, 1].set_xlabel("wall-clock time [s]")
    if len(runs) > 1 or "" not in runs:
        axes[0, 1].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return save_png(fig, path)
