"""One held-out day: every agent's power (paper Fig. 4) and the voltage envelope."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from jaxtyping import Float
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .._custom_types import AnyArray
from ..data import STEP_MINUTES
from ._common import (
    as_real,
    finish,
    hours_axis,
    kind_colours,
    new_figure,
    png_path,
)


def plot_agent_power(
    power: Float[AnyArray, "step agent"] | Float[AnyArray, "panel step agent"],
    path: str | Path | None = None,
    *,
    labels: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
    title: str = "Normalised power of every agent",
    dt_h: float = STEP_MINUTES / 60,
    figsize: tuple[float, float] | None = None,
    dpi: int = 100,
) -> Figure:
    """Every agent's normalised power over one day, one thin line per agent, coloured
    by device kind (the paper's Fig. 4).

    **Arguments:**

    - `power`: each agent's AC power divided by its rating (p.u.; positive =
        consumption, so a generator's output is negative), `(step, agent)`; or
        `(panel, step, agent)` for panels side by side with a shared y axis, e.g.
        unconstrained vs constrained training, or naive vs trained.
    - `path`: where to write the figure as a PNG; none by default.
    - `labels`: a title for each panel (one per panel).
    - `kinds`: each agent's device kind (`"battery"`, `"heat_pump"`,
        `"generator"`, ...), one per agent; colours the lines and adds a legend.
    - `title`: the figure's title.
    - `dt_h`: step length, hours (the x axis is the time of day).
    - `figsize`: inches; by default 5.5 wide per panel and 4 high.
    - `dpi`: pixels per inch.

    **Returns:** the `Figure`.
    """
    path = png_path(path)
    p = as_real("power", power, (2, 3))
    panels = p[None] if p.ndim == 2 else p
    n_panels, n_steps, n_agents = panels.shape
    if labels is not None and len(labels) != n_panels:
        raise ValueError(
            f"plot_agent_power: {len(labels)} labels for {n_panels} panel(s); give "
            "one label per panel (the leading axis of `power`)."
        )
    if kinds is not None and len(kinds) != n_agents:
        raise ValueError(
            f"plot_agent_power: {len(kinds)} kinds for {n_agents} agents; give one "
            "kind per agent (the last axis of `power`)."
        )
    hours = hours_axis(n_steps, dt_h)
    agent_kinds = list(kinds) if kinds is not None else ["agent"] * n_agents
    colours = kind_colours(agent_kinds) if kinds is not None else {"agent": "tab:blue"}
    # Many agents draw over each other: fade them so that density shows.
    alpha = float(np.clip(3.0 / np.sqrt(n_agents), 0.05, 0.9))

    fig = new_figure(figsize or (5.5 * n_panels, 4.0), dpi)
    axes = fig.subplots(1, n_panels, squeeze=False, sharey=True)[0]
    kind_array = np.asarray(agent_kinds)
    for k, ax in enumerate(axes):
        for kind, colour in colours.items():
            chosen = panels[k][:, kind_array == kind]  # (step, agents of this kind)
            segments = [
                np.column_stack([hours, chosen[:, a]]) for a in range(chosen.shape[1])
            ]
            ax.add_collection(
                LineCollection(segments, colors=colour, linewidths=0.6, alpha=alpha)
            )
        ax.set_xlim(hours[0], hours[-1] if n_steps > 1 else hours[0] + dt_h)
        ax.set_xlabel("time of day [h]")
        ax.grid(True, alpha=0.3)
        if labels is not None:
            ax.set_title(labels[k])
    lo, hi = np.nanmin(panels), np.nanmax(panels)
    pad = 0.05 * (hi - lo) if hi > lo else 0.1
    axes[0].set_ylim(lo - pad, hi + pad)
    axes[0].set_ylabel("power / rated power [p.u.]")
    if kinds is not None:
        handles = [
            Line2D([], [], color=c, label=kind.replace("_", " "))
            for kind, c in colours.items()
        ]
        axes[-1].legend(handles=handles, fontsize="small", loc="best")
    fig.suptitle(title)
    return finish(fig, path)


def _envelope(name: str, v_min, v_max) -> tuple[np.ndarray, np.ndarray]:
    lo = as_real(f"{name}v_min", v_min, 1)
    hi = as_real(f"{name}v_max", v_max, 1)
    if lo.shape != hi.shape:
        raise ValueError(
            f"plot_voltage_envelope: {name}v_min has {lo.size} steps but v_max has "
            f"{hi.size}; both are one value per step of the day."
        )
    bad = np.flatnonzero(lo > hi)
    if bad.size:
        raise ValueError(
            f"plot_voltage_envelope: {name}v_min > v_max at step {bad[0]} "
            f"({lo[bad[0]]:.4f} > {hi[bad[0]]:.4f} p.u.); are the two swapped?"
        )
    return lo, hi


def plot_voltage_envelope(
    v_min: Float[AnyArray, " step"],
    v_max: Float[AnyArray, " step"],
    path: str | Path | None = None,
    *,
    limits: tuple[float, float] = (0.95, 1.05),
    other: tuple[Float[AnyArray, " step"], Float[AnyArray, " step"]] | None = None,
    labels: tuple[str, str] = ("trained", "other"),
    title: str = "Voltage envelope over the day",
    dt_h: float = STEP_MINUTES / 60,
    figsize: tuple[float, float] = (8.0, 4.0),
    dpi: int = 100,
) -> Figure:
    """The day's lowest and highest node voltage at each step, against the limits.

    **Arguments:**

    - `v_min`, `v_max`: the lowest and highest voltage magnitude over all nodes and
        phases at each step, p.u.
    - `path`: where to write the figure as a PNG; none by default.
    - `limits`: the voltage limits, p.u. (DESIGN §3: 0.95 and 1.05).
    - `other`: a second method's `(v_min, v_max)` to overlay, e.g. the naive
        baseline or the unconstrained policy.
    - `labels`: legend names of the envelope and of `other`.
    - `title`: the figure's title.
    - `dt_h`: step length, hours (the x axis is the time of day).
    - `figsize`: inches.
    - `dpi`: pixels per inch.

    **Returns:** the `Figure`.
    """
    path = png_path(path)
    lo, hi = _envelope("", v_min, v_max)
    envelopes = [(labels[0], lo, hi, "tab:blue")]
    if other is not None:
        o_lo, o_hi = _envelope("other's ", *other)
        if o_lo.shape != lo.shape:
            raise ValueError(
                f"plot_voltage_envelope: `other` has {o_lo.size} steps but v_min has "
                f"{lo.size}; compare envelopes of the same day."
            )
        envelopes.insert(0, (labels[1], o_lo, o_hi, "tab:gray"))
    if not limits[0] < limits[1]:
        raise ValueError(
            f"plot_voltage_envelope: limits = {limits} must be (low, high)."
        )
    hours = hours_axis(lo.size, dt_h)

    fig = new_figure(figsize, dpi)
    ax = fig.add_subplot()
    for name, a, b, colour in envelopes:
        ax.fill_between(hours, a, b, color=colour, alpha=0.25, linewidth=0)
        ax.plot(hours, a, color=colour, linewidth=1.0, label=f"{name}: min / max")
        ax.plot(hours, b, color=colour, linewidth=1.0)
    for limit in limits:
        ax.axhline(limit, color="tab:red", linestyle="--", linewidth=1.0)
    ax.plot([], [], color="tab:red", linestyle="--", label="limits")
    ax.set_xlabel("time of day [h]")
    ax.set_ylabel("voltage magnitude [p.u.]")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    ax.set_title(title)
    return finish(fig, path)
