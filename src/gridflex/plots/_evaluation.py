"""Out-of-sample evaluation: cumulative cost over the held-out days (paper Fig. 7)."""

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from jaxtyping import Float
from matplotlib.figure import Figure

from .._custom_types import AnyArray
from ._common import as_real, finish, new_figure, png_path


def plot_cumulative_cost(
    costs: Mapping[str, Float[AnyArray, " day"]],
    path: str | Path | None = None,
    *,
    baseline: str | None = None,
    currency: str = "GBP",
    title: str = "Cumulative out-of-sample cost",
    figsize: tuple[float, float] = (8.0, 4.5),
    dpi: int = 100,
) -> Figure:
    """Each method's cumulative operating cost over consecutive held-out days (the
    paper's Fig. 7); the legend gives each method's total, and the `baseline` (a
    reference the methods are read against, such as the naive rule) is drawn grey and
    dashed.

    **Arguments:**

    - `costs`: method name -> total operating cost of the population on each
        held-out day, in `currency`; all methods over the same days.
    - `path`: where to write the figure as a PNG; none by default.
    - `baseline`: the name in `costs` of the reference series, if any
        (`gridflex.evaluation.NAIVE` for the naive rule).
    - `currency`: the tariff's currency, for the axis label.
    - `title`: the figure's title.
    - `figsize`: inches.
    - `dpi`: pixels per inch.

    **Returns:** the `Figure`.
    """
    path = png_path(path)
    if not costs:
        raise ValueError("plot_cumulative_cost: no methods given.")
    series = {name: as_real(f"costs[{name!r}]", c, 1) for name, c in costs.items()}
    lengths = {name: c.size for name, c in series.items()}
    if baseline is not None and baseline not in series:
        raise ValueError(
            f"plot_cumulative_cost: baseline={baseline!r} is not among the methods "
            f"({', '.join(series)})."
        )
    if len(set(lengths.values())) > 1:
        raise ValueError(
            "plot_cumulative_cost: methods cover different numbers of days "
            f"({', '.join(f'{k}: {v}' for k, v in lengths.items())}); compare them "
            "over the same held-out days."
        )
    fig = new_figure(figsize, dpi)
    ax = fig.add_subplot()
    for name, c in series.items():
        total = np.cumsum(c)
        days = np.arange(1, c.size + 1)
        label = f"{name} ({total[-1]:,.0f} {currency})"
        is_baseline = name == baseline
        ax.plot(
            days,
            total,
            marker="o",
            markersize=3,
            linewidth=1.2,
            label=label,
            color="0.45" if is_baseline else None,
            linestyle="--" if is_baseline else "-",
        )
    ax.set_xlabel("held-out day [–]")
    ax.set_ylabel(f"cumulative cost [{currency}]")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="upper left")
    ax.set_title(title)
    return finish(fig, path)
