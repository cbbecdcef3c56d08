"""The user-device example: runs as a script, and its EVCharger behaves."""

import pathlib
import subprocess
import sys
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gridflex.devices import AbstractDevice, DeviceInputs

from .helpers import load_example


EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "ev_charger.py"


@pytest.fixture(scope="module")
def ev():
    return load_example("ev_charger.py")


def test_example_runs_as_a_script():
    result = subprocess.run(
        [sys.executable, str(EXAMPLE), "--homes", "3", "--iterations", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "dumb charging" in result.stdout and "optimised schedule" in result.stdout


def test_ev_charger_is_a_device(ev: Any):
    charger: Any = ev.EVCharger
    assert issubclass(ev.EVCharger, AbstractDevice)
    assert not charger.__abstractmethods__
    assert charger.step_channel == "ev_energy"
    assert charger.terminal_channel == "ev_departure"
    with pytest.raises(
        ValueError,
        match=r"^EVCharger.departure_step = 40 must lie in \[1, arrival_step = 30\]\.$",
    ):
        charger(
            capacity_kwh=60.0,
            p_max_kw=7.0,
            eta=0.9,
            arrival_step=30,
            departure_step=40,
            e_arrival_kwh=20.0,
            e_req_kwh=50.0,
        )


def test_no_charging_while_away(ev: Any):
    """Vmapped over homes, commanded full power all day: power flows only while the
    car is plugged in, and every away step reports a violation."""
    cars = ev.EVCharger.sample(jax.random.key(1), 4)

    def day(car):
        def body(state, t):
            inputs = DeviceInputs(t, 96, 0.25, jnp.asarray(5.0))
            out = car.step(state, car.p_max_kw, inputs)
            return out.state, (out.p_kw, out.violation, out.state.energy_kwh)

        final, trace = jax.lax.scan(body, car.initial_state(), jnp.arange(96))
        return final, trace, car.terminal_violation(final)

    final, (p_kw, violation, energy), terminal = eqx.filter_vmap(day)(cars)
    steps = np.arange(96)
    for i in range(4):
        dep, arr = int(cars.departure_step[i]), int(cars.arrival_step[i])
        away = (steps >= dep) & (steps < arr)
        assert np.all(np.asarray(p_kw[i])[away] == 0)
        assert np.all(np.asarray(violation[i])[away] > 0)
        assert np.all(np.asarray(p_kw[i])[~away] >= 0)
        # The car leaves with what it charged in the morning and is back with its
        # arrival energy.
        assert np.all(np.asarray(energy[i])[dep:arr] == float(energy[i][dep - 1]))
        assert float(energy[i][arr]) >= float(cars.e_arrival_kwh[i])
        # The shortfall at departure is what the terminal channel reports.
        short = max(float(cars.e_req_kwh[i]) - float(energy[i][dep - 1]), 0.0)
        capacity = float(cars.capacity_kwh[i])
        assert float(terminal[i]) == pytest.approx(short / capacity)
    # Full power all morning meets every sampled requirement.
    assert float(jnp.max(terminal)) == 0.0


def test_optimised_schedule_beats_dumb_charging(ev: Any):
    cars = ev.EVCharger.sample(jax.random.key(2), 3)
    cost_naive, step_naive, terminal_naive = ev.simulate(cars, None)
    u, history = ev.optimise(cars, 60)
    cost, step_v, terminal_v = ev.simulate(cars, u)
    assert history[-1] < 0.5 * history[0]
    assert float(jnp.sum(cost)) < 0.8 * float(jnp.sum(cost_naive))
    assert float(jnp.sum(step_v)) < float(jnp.sum(step_naive))


def test_ev_scaled_and_urgency(ev: Any):
    cars = ev.EVCharger.sample(jax.random.key(3), 1)
    car = jax.tree_util.tree_map(lambda x: x[0], cars)
    big = car.scaled(2.0)
    inputs = DeviceInputs(jnp.asarray(2), 96, 0.25, jnp.asarray(5.0))
    state = car.initial_state()
    big_state = ev.EVState(state.energy_kwh * 2, state.shortfall_kwh * 2)
    one = car.step(state, car.p_max_kw, inputs)
    two = big.step(big_state, big.p_max_kw, inputs)
    assert float(two.p_kw) == pytest.approx(2 * float(one.p_kw))
    u = float(car.urgency(state, inputs))
    assert 0 < u <= 1 and float(big.urgency(big_state, inputs)) == pytest.approx(u)
    away = DeviceInputs(jnp.asarray(50), 96, 0.25, jnp.asarray(5.0))
    assert float(car.urgency(state, away)) == 0.0
    assert float(car.naive_command(state, away)) == 0.0
