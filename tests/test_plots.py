"""Plots: each writes a PNG of the expected size from small synthetic inputs, and
mismatched inputs raise errors that say what is wrong."""

import struct

import jax.numpy as jnp
import numpy as np
import pytest

import gridflex.plots as gpl


DPI = 50  # small images keep the suite fast


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def metrics_rows(scale, n=6):
    rows = [{"event": "start"}]
    rows += [
        {
            "step": s,
            "wall_s": 2.0 * s,
            "cost": scale / (s + 1),
            "voltage_violation": 0.1 / (s + 1),
        }
        for s in range(n)
    ]
    rows.append({"step": n, "wall_s": 2.0 * n, "cost": None, "voltage_violation": 0.0})
    return rows


def test_training_curves(tmp_path):
    one = gpl.plot_training_curves(metrics_rows(100.0), tmp_path / "one.png", dpi=DPI)
    assert png_size(one) == (500, 300)
    many = gpl.plot_training_curves(
        {"GradMAP": metrics_rows(100.0), "GradMA": metrics_rows(120.0, n=9)},
        tmp_path / "sub" / "many.png",
        keys=("cost", "voltage_violation"),
        figsize=(8, 6),
        dpi=DPI,
        title="IEEE 13, 10 agents",
    )
    assert png_size(many) == (400, 300) and many.stat().st_size > 1000


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


def test_agent_power(tmp_path):
    rng = np.random.default_rng(0)
    power = rng.uniform(-1, 1, size=(96, 12))
    kinds = ["battery", "heat_pump", "generator", "ev"] * 3
    one = gpl.plot_agent_power(power, tmp_path / "one.png", kinds=kinds, dpi=DPI)
    assert png_size(one) == (275, 200)
    two = gpl.plot_agent_power(
        jnp.stack([jnp.asarray(power), jnp.asarray(power) * 0.5]),
        tmp_path / "two.png",
        labels=["unconstrained", "constrained"],
        figsize=(9, 3),
        dpi=DPI,
    )
    assert png_size(two) == (450, 150) and two.stat().st_size > 1000


def test_agent_power_errors(tmp_path):
    power = np.zeros((8, 3))
    path = tmp_path / "x.png"
    with pytest.raises(ValueError, match="2 kinds for 3 agents"):
        gpl.plot_agent_power(power, path, kinds=["battery", "generator"])
    with pytest.raises(ValueError, match="1 labels for 2 panel"):
        gpl.plot_agent_power(np.zeros((2, 8, 3)), path, labels=["a"])
    with pytest.raises((TypeError, ValueError), match="power"):
        gpl.plot_agent_power(np.zeros(8), path)


def test_voltage_envelope(tmp_path):
    t = np.linspace(0, 2 * np.pi, 96)
    v_min, v_max = 0.97 - 0.03 * np.sin(t), 1.02 + 0.04 * np.cos(t)
    one = gpl.plot_voltage_envelope(v_min, v_max, tmp_path / "one.png", dpi=DPI)
    assert png_size(one) == (400, 200)
    two = gpl.plot_voltage_envelope(
        jnp.asarray(v_min),
        jnp.asarray(v_max),
        tmp_path / "two.png",
        other=(v_min - 0.01, v_max + 0.01),
        labels=("GradMAP", "naive"),
        figsize=(6, 3),
        dpi=DPI,
    )
    assert png_size(two) == (300, 150) and two.stat().st_size > 1000


def test_voltage_envelope_errors(tmp_path):
    path = tmp_path / "x.png"
    v = np.full(10, 1.0)
    with pytest.raises((TypeError, ValueError), match="v_max"):
        gpl.plot_voltage_envelope(v, np.ones(9), path)
    with pytest.raises(ValueError, match="swapped"):
        gpl.plot_voltage_envelope(v + 0.1, v, path)
    with pytest.raises((TypeError, ValueError), match="other"):
        gpl.plot_voltage_envelope(v, v, path, other=(np.ones(9), np.ones(9)))
    with pytest.raises(ValueError, match="other's v_min > v_max"):
        gpl.plot_voltage_envelope(v, v, path, other=(v + 0.1, v))
    with pytest.raises(ValueError, match="limits"):
        gpl.plot_voltage_envelope(v, v, path, limits=(1.05, 0.95))


def test_cumulative_cost(tmp_path):
    rng = np.random.default_rng(1)
    costs = {
        "naive": rng.uniform(100, 150, 31),
        "GradMAP": rng.uniform(80, 130, 31),
        "IPPO": jnp.asarray(rng.uniform(90, 140, 31)),
    }
    path = gpl.plot_cumulative_cost(
        costs, tmp_path / "cost.png", figsize=(6, 4), dpi=DPI
    )
    assert png_size(path) == (300, 200) and path.stat().st_size > 1000


def test_cumulative_cost_errors(tmp_path):
    path = tmp_path / "x.png"
    with pytest.raises(ValueError, match="different numbers of days.*a: 3.*b: 4"):
        gpl.plot_cumulative_cost({"a": np.ones(3), "b": np.ones(4)}, path)
    with pytest.raises(ValueError, match="no methods"):
        gpl.plot_cumulative_cost({}, path)
