"""Plots: each figure carries the labels, titles, legend entries and data a reader
needs (checked on the returned Figure), writes the PNG it is asked for, and
mismatched inputs raise errors that say what is wrong."""

import jax.numpy as jnp
import numpy as np
import pytest
from matplotlib.collections import LineCollection

import gridflex.plots as gpl


DPI = 50  # small images keep the suite fast


def metrics_rows(scale, n=6, n_primal=2):
    rows = [{"event": "start"}]
    rows += [
        {
            "step": s,
            "dual_step": (s - 1) // n_primal + 1,
            "wall_s": 2.0 * s,
            "cost": scale / s,
            "voltage_violation": 0.1 / s,
            "lambda_voltage": 5.0 * ((s - 1) // n_primal),
        }
        for s in range(1, n + 1)
    ]
    rows.append({"step": n + 1, "wall_s": 2.0 * (n + 1), "cost": None})
    return rows


def legend_texts(ax):
    legend = ax.get_legend()
    return [] if legend is None else [t.get_text() for t in legend.get_texts()]


def data_lines(ax):
    """The plotted series (not the dual-step marks or empty legend proxies)."""
    return [ln for ln in ax.get_lines() if len(ln.get_xdata()) > 0]


def test_training_curves_labels_and_data(tmp_path):
    runs = {"GradMAP": metrics_rows(100.0), "GradMA": metrics_rows(120.0, n=9)}
    fig = gpl.plot_training_curves(runs, title="IEEE 13, 10 homes", dpi=DPI)
    axes = np.asarray(fig.axes).reshape(3, 2)
    # the default panels: cost, voltage violation and the voltage dual, named
    # with their units; steps on the left, seconds on the right
    assert [ax.get_ylabel() for ax in axes[:, 0]] == [
        "operating cost\n[GBP/day, all homes]",
        "voltage violation\n[0.01 p.u., day mean]",
        "voltage dual λ\n[–]",
    ]
    assert axes[-1, 0].get_xlabel() == "primal step"
    assert axes[-1, 1].get_xlabel() == "wall-clock time [s]"
    assert fig.get_suptitle() == "IEEE 13, 10 homes"
    assert legend_texts(axes[0, 1]) == ["GradMAP", "GradMA"]
    # the violation on a log axis (it falls by orders of magnitude), the rest linear
    assert [ax.get_yscale() for ax in axes[:, 0]] == ["linear", "log", "linear"]
    # the data: the cost against steps and against seconds, the missing value a gap
    gradma = data_lines(axes[0, 0])[1]
    np.testing.assert_allclose(gradma.get_xdata(), np.arange(1, 11))
    expected = [120.0 / s for s in range(1, 10)] + [np.nan]
    np.testing.assert_allclose(gradma.get_ydata(), expected)
    np.testing.assert_allclose(
        data_lines(axes[0, 1])[1].get_xdata(), 2 * np.arange(1, 11)
    )
    # the dual steps of the first run marked on the step panels, and named
    vertical = [  # axvline's lines: two points at one x
        ln.get_xdata()[0]
        for ln in axes[1, 0].get_lines()
        if len(set(ln.get_xdata())) == 1 and len(ln.get_xdata()) == 2
    ]
    assert vertical == [3.0, 5.0]
    assert legend_texts(axes[0, 0]) == ["GradMAP's dual steps"]
    # written on request, at figsize x dpi
    path = tmp_path / "sub" / "curves.png"
    gpl.plot_training_curves(runs, path, figsize=(8, 6), dpi=DPI)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_training_curves_smoothing():
    rows = metrics_rows(60.0, n=6)
    fig = gpl.plot_training_curves(
        rows, keys=("cost", "lambda_voltage"), smooth=3, dpi=DPI
    )
    cost, dual = (data_lines(ax)[0].get_ydata() for ax in fig.axes[0::2])
    raw = np.array([60.0 / s for s in range(1, 7)])
    want = [raw[max(0, i - 2) : i + 1].mean() for i in range(6)]
    np.testing.assert_allclose(cost[:6], want)
    # a dual is a step function: never smoothed
    np.testing.assert_allclose(dual, [5.0 * ((s - 1) // 2) for s in range(1, 7)])
    assert "mean of the last 3 primal steps" in fig.get_suptitle()
    # one unnamed run: no method legend
    assert legend_texts(fig.axes[1]) == []


def test_trailing_mean_skips_gaps_and_holds_levels():
    x = np.array([1.0, np.nan, 3.0, 0.1, 0.1, 0.1])
    np.testing.assert_allclose(gpl.trailing_mean(x, 2), [1.0, 1.0, 3.0, 1.55, 0.1, 0.1])
    # a run holding a level exactly reaches it (no running-sum rounding)
    level = np.full(50, 0.1)
    level[:10] = 7.3
    assert gpl.trailing_mean(level, 10)[-1] == 0.1


def test_training_curves_errors(tmp_path):
    path = tmp_path / "x.png"
    with pytest.raises(ValueError, match="no row has 'lagrangian'.*cost"):
        gpl.plot_training_curves(metrics_rows(1.0), path, keys=("lagrangian",))
    with pytest.raises(ValueError, match="method 'A' row 1 has 'cost' but no wall_s"):
        rows = [{"step": 0, "wall_s": 0, "cost": 1}, {"step": 1, "cost": 2}]
        gpl.plot_training_curves({"A": rows}, path, keys=("cost",))
    with pytest.raises(ValueError, match="no methods"):
        gpl.plot_training_curves({}, path)
    with pytest.raises(ValueError, match=r"\.png"):
        gpl.plot_training_curves(metrics_rows(1.0), tmp_path / "x.pdf")
    with pytest.raises(ValueError, match="no row has any of cost.*Pass `keys`"):
        gpl.plot_training_curves([{"step": 1, "wall_s": 1.0, "loss": 2.0}])
    with pytest.raises(ValueError, match="smooth = 0"):
        gpl.plot_training_curves(metrics_rows(1.0), smooth=0)


def test_agent_power(tmp_path):
    rng = np.random.default_rng(0)
    power = rng.uniform(-1, 1, size=(96, 12))
    kinds = ["battery", "heat_pump", "generator", "ev"] * 3
    fig = gpl.plot_agent_power(
        jnp.stack([jnp.asarray(power), jnp.asarray(power) * 0.5]),
        tmp_path / "two.png",
        labels=["naive", "GradMAP"],
        kinds=kinds,
        title="Every agent's power",
        dpi=DPI,
    )
    left, right = fig.axes
    assert [left.get_title(), right.get_title()] == ["naive", "GradMAP"]
    assert fig.get_suptitle() == "Every agent's power"
    assert left.get_ylabel() == "power / rated power [p.u.]"
    assert left.get_xlabel() == "time of day [h]"
    assert legend_texts(right) == ["battery", "heat pump", "generator", "ev"]
    # one line per agent, in its kind's colour, with the agent's power over the day
    collections = [c for c in right.collections if isinstance(c, LineCollection)]
    assert [len(c.get_segments()) for c in collections] == [3, 3, 3, 3]
    battery = collections[0].get_segments()
    np.testing.assert_allclose(battery[1][:, 1], 0.5 * power[:, 4], rtol=1e-6)
    np.testing.assert_allclose(battery[1][:, 0], np.arange(96) * 0.25)
    assert (tmp_path / "two.png").stat().st_size > 0


def test_agent_power_errors(tmp_path):
    power = np.zeros((8, 3))
    path = tmp_path / "x.png"
    with pytest.raises(ValueError, match="2 kinds for 3 agents"):
        gpl.plot_agent_power(power, path, kinds=["battery", "generator"])
    with pytest.raises(ValueError, match="1 labels for 2 panel"):
        gpl.plot_agent_power(np.zeros((2, 8, 3)), path, labels=["a"])
    # the suite checks types at run time (jaxtyping): a wrong rank fails there,
    # naming the argument, before the function's own check would
    with pytest.raises(TypeError, match="power"):
        gpl.plot_agent_power(np.zeros(8), path)


def test_voltage_envelope():
    t = np.linspace(0, 2 * np.pi, 96)
    v_min, v_max = 0.97 - 0.03 * np.sin(t), 1.02 + 0.04 * np.cos(t)
    fig = gpl.plot_voltage_envelope(
        jnp.asarray(v_min),
        jnp.asarray(v_max),
        other=(v_min - 0.01, v_max + 0.01),
        labels=("GradMAP", "naive"),
        limits=(0.94, 1.06),
        title="Held-out day 3",
        dpi=DPI,
    )
    (ax,) = fig.axes
    assert ax.get_title() == "Held-out day 3"
    assert ax.get_ylabel() == "voltage magnitude [p.u.]"
    assert legend_texts(ax) == ["naive: min / max", "GradMAP: min / max", "limits"]
    ys = [ln.get_ydata() for ln in ax.get_lines()]
    np.testing.assert_allclose(ys[2], v_min)  # the trained envelope after `other`'s
    np.testing.assert_allclose(ys[3], v_max)
    limits = sorted(float(y[0]) for y in ys if len(y) == 2 and y[0] == y[1])
    assert limits == [0.94, 1.06]


def test_voltage_envelope_errors(tmp_path):
    path = tmp_path / "x.png"
    v = np.full(10, 1.0)
    # mismatched days fail the run-time type check on the shared `step` axis
    with pytest.raises(TypeError, match="step=10"):
        gpl.plot_voltage_envelope(v, np.ones(9), path)
    with pytest.raises(ValueError, match="swapped"):
        gpl.plot_voltage_envelope(v + 0.1, v, path)
    with pytest.raises(TypeError, match="step=10"):
        gpl.plot_voltage_envelope(v, v, path, other=(np.ones(9), np.ones(9)))
    with pytest.raises(ValueError, match="other's v_min > v_max"):
        gpl.plot_voltage_envelope(v, v, path, other=(v + 0.1, v))
    with pytest.raises(ValueError, match="limits"):
        gpl.plot_voltage_envelope(v, v, path, limits=(1.05, 0.95))


def test_cumulative_cost(tmp_path):
    rng = np.random.default_rng(1)
    costs = {
        "GradMAP": rng.uniform(80, 130, 31),
        "IPPO": jnp.asarray(rng.uniform(90, 140, 31)),
        "naive": rng.uniform(100, 150, 31),
    }
    fig = gpl.plot_cumulative_cost(
        costs,
        tmp_path / "cost.png",
        baseline="naive",
        currency="EUR",
        title="Held-out month",
        dpi=DPI,
    )
    (ax,) = fig.axes
    assert ax.get_title() == "Held-out month"
    assert ax.get_ylabel() == "cumulative cost [EUR]"
    assert ax.get_xlabel() == "held-out day [–]"
    totals = {k: float(np.sum(v)) for k, v in costs.items()}
    assert legend_texts(ax) == [f"{k} ({t:,.0f} EUR)" for k, t in totals.items()]
    lines = ax.get_lines()
    np.testing.assert_allclose(lines[1].get_ydata(), np.cumsum(costs["IPPO"]))
    np.testing.assert_allclose(lines[0].get_xdata(), np.arange(1, 32))
    # the naive rule is the grey dashed baseline; the methods solid
    assert [ln.get_linestyle() for ln in lines] == ["-", "-", "--"]
    assert (tmp_path / "cost.png").stat().st_size > 0


def test_cumulative_cost_errors(tmp_path):
    path = tmp_path / "x.png"
    with pytest.raises(ValueError, match="different numbers of days.*a: 3.*b: 4"):
        gpl.plot_cumulative_cost({"a": np.ones(3), "b": np.ones(4)}, path)
    with pytest.raises(ValueError, match="no methods"):
        gpl.plot_cumulative_cost({}, path)
    with pytest.raises(ValueError, match="baseline='naive' is not among.*a, b"):
        gpl.plot_cumulative_cost({"a": np.ones(3), "b": np.ones(3)}, baseline="naive")
