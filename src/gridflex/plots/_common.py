"""Shared plumbing: Agg figures without pyplot, input checks, labels with units.

Figures are built on `matplotlib.figure.Figure` with an Agg canvas, never through
`pyplot`: no global state, no backend switch in the user's session, safe in threads
and on headless machines. Every plot function returns its `Figure` (to inspect,
restyle or save in another format) and, given a `path`, also writes it as a PNG.
"""

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


KIND_COLOURS: dict[str, str] = {
    "battery": "tab:blue",
    "heat_pump": "tab:red",
    "generator": "tab:green",
}
"""Colour of each built-in device kind; other kinds take the next colours in
matplotlib's default cycle."""

_OTHER_COLOURS = ("tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive")

METRIC_UNITS: dict[str, str] = {
    "cost": "{currency}/day, all homes",
    "total_cost": "{currency}",
    "lagrangian": "–",
    "lambda_voltage": "–",
    "voltage_violation": "0.01 p.u., day mean",
    "voltage_violation_max": "p.u.",
    "battery_energy": "–",
    "battery_terminal": "–",
    "heat_pump_temperature": "–",
    "heat_pump_terminal": "–",
    "generator_ramp": "–",
}
"""Default unit of each metric name in training curves (`–`: dimensionless, the
normalised violation channels and the duals); `{currency}` is filled in. Override
per call."""

METRIC_LABELS: dict[str, str] = {
    "cost": "operating cost",
    "lagrangian": "Lagrangian",
    "lambda_voltage": "voltage dual λ",
    "voltage_violation": "voltage violation",
    "voltage_violation_max": "largest voltage violation",
    "battery_energy": "battery energy violation",
    "battery_terminal": "battery end-of-day shortfall",
    "heat_pump_temperature": "heat-pump comfort violation",
    "heat_pump_terminal": "heat-pump end-of-day deviation",
    "generator_ramp": "generator ramp violation",
}
"""What a reader calls each metric on an axis; a key not listed is shown with its
underscores as spaces (a dual `lambda_<channel>` as "dual of <channel>")."""


def new_figure(figsize: tuple[float, float], dpi: int) -> Figure:
    """An Agg-backed figure of exactly `figsize` inches at `dpi`."""
    if not (len(figsize) == 2 and all(s > 0 for s in figsize)):
        raise ValueError(
            f"figsize = {figsize!r} must be two positive numbers (inches)."
        )
    if dpi <= 0:
        raise ValueError(f"dpi = {dpi!r} must be positive.")
    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_path(path: str | Path | None) -> Path | None:
    """`path` as a Path, checked to name a PNG (checked before any drawing)."""
    if path is None:
        return None
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"plot path {path} must end in .png.")
    return path


def finish(fig: Figure, path: Path | None) -> Figure:
    """Write `fig` as a PNG at `path` when one is given (parent directories
    created; its title in the PNG's `Title` text), and return it.

    The size in pixels is `figsize * dpi` exactly (no tight bounding box), so that
    figures for a report line up.
    """
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        title = fig.get_suptitle() or (fig.axes[0].get_title() if fig.axes else "")
        # the title in the PNG's metadata too: file browsers and scripts see it
        fig.savefig(path, format="png", dpi=fig.dpi, metadata={"Title": title})
    return fig


def as_real(name: str, x, ndim: int | tuple[int, ...]) -> np.ndarray:
    """`x` as a float64 NumPy array of the given number of dimensions."""
    array = np.asarray(x, dtype=np.float64)
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if array.ndim not in allowed:
        want = " or ".join(str(n) for n in allowed)
        raise ValueError(
            f"{name} must have {want} dimensions; got shape {array.shape}."
        )
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape}).")
    return array


def kind_colours(kinds: Sequence[str]) -> dict[str, str]:
    """A colour for each distinct kind, built-in kinds in their usual colours."""
    colours, spare = {}, iter(_OTHER_COLOURS * (1 + len(kinds)))
    for kind in dict.fromkeys(kinds):
        colours[kind] = KIND_COLOURS.get(kind) or next(spare)
    return colours


def unit_of(key: str, units: Mapping[str, str] | None, currency: str) -> str:
    """The unit of a metric: `units`, else `METRIC_UNITS`, else dimensionless."""
    unit = (units or {}).get(key, METRIC_UNITS.get(key, "–"))
    return unit.format(currency=currency)


def label_of(key: str) -> str:
    """What a reader calls a metric (`METRIC_LABELS`)."""
    if key in METRIC_LABELS:
        return METRIC_LABELS[key]
    if key.startswith("lambda_"):
        return f"dual of {key.removeprefix('lambda_').replace('_', ' ')}"
    return key.replace("_", " ")


def hours_axis(n_steps: int, dt_h: float) -> np.ndarray:
    """Time of day at the start of each step, h."""
    if not dt_h > 0:
        raise ValueError(f"dt_h = {dt_h} must be > 0 (hours per step).")
    return np.arange(n_steps) * dt_h
