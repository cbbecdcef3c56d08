"""A user-defined device: a home EV charger, written only against `gridflex.devices`.

The car is plugged in overnight: from its arrival in the evening until its departure
the next morning. It comes home with `e_arrival_kwh` in its battery and must leave
with `e_req_kwh`. The charger can only charge (command in [0, p_max]) and only while
the car is plugged in.

- Per-step violation (channel `"ev_energy"`): energy the command tries to put in while
    the car is away, plus energy beyond the battery's capacity, over the capacity.
- Terminal violation (channel `"ev_departure"`): energy short of `e_req_kwh` at
    departure, over the capacity. Departure happens in the morning, not at the end of
    the day, so the state remembers the shortfall it departed with.

Run it to compare dumb charging (full power on arrival) with a per-home charging
schedule optimised by gradient descent through the device model against a
time-of-use price:

    python examples/ev_charger.py [--homes 8] [--iterations 300]
"""

import argparse
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray, Real

from gridflex.devices import (
    AbstractDevice,
    DeviceInputs,
    DeviceStep,
    init_params,
    param,
    scale_params,
)


jax.config.update("jax_enable_x64", True)

N_STEPS, DT_H = 96, 0.25


class EVState(eqx.Module):
    energy_kwh: Float[Array, "*agent"]
    shortfall_kwh: Float[Array, "*agent"]  # short of e_req at the last departure


def _relu(x):
    return jnp.where(x > 0, x, jnp.zeros_like(x))


class EVCharger(AbstractDevice[EVState]):
    """A home EV charger (state: `EVState`).

    **Arguments:** (scalars for one home, or arrays with a leading agent axis)

    - `capacity_kwh`: the car's battery capacity, kWh.
    - `p_max_kw`: charger rating, kW.
    - `eta`: charging efficiency (AC to battery).
    - `arrival_step`: step the car comes home (evening), `departure_step` the step it
        leaves (morning); plugged in when `step >= arrival` or `step < departure`.
    - `e_arrival_kwh`: energy the car comes home with.
    - `e_req_kwh`: energy it must leave with.
    """

    step_channel: ClassVar[str] = "ev_energy"
    terminal_channel: ClassVar[str | None] = "ev_departure"

    capacity_kwh: Float[Array, "*agent"] = eqx.field(
        converter=param(lo=0.0, lo_open=True, unit="kWh", scale=1)
    )
    p_max_kw: Float[Array, "*agent"] = eqx.field(
        converter=param(lo=0.0, lo_open=True, unit="kW", scale=1)
    )
    eta: Float[Array, "*agent"] = eqx.field(
        converter=param(lo=0.0, hi=1.0, lo_open=True)
    )
    arrival_step: Int[Array, "*agent"] = eqx.field(
        converter=param(integer=True, lo=1, hi=N_STEPS - 1)
    )
    departure_step: Int[Array, "*agent"] = eqx.field(
        converter=param(integer=True, lo=1, hi="arrival_step")
    )
    e_arrival_kwh: Float[Array, "*agent"] = eqx.field(
        converter=param(lo=0.0, hi="capacity_kwh", unit="kWh", scale=1)
    )
    e_req_kwh: Float[Array, "*agent"] = eqx.field(
        converter=param(lo=0.0, hi="capacity_kwh", unit="kWh", scale=1)
    )

    def __post_init__(self):
        init_params(self)  # cast, broadcast, check the declared ranges

    @classmethod
    def sample(cls, key: PRNGKeyArray, n: int) -> "EVCharger":
        """`n` cars: 40–80 kWh, 3.6–7.4 kW home chargers (16 or 32 A single phase),
        home between 17:00–20:00 and 06:30–08:30, arriving with 20–60 % and needing
        70–90 % of capacity (or what 80 % of the morning's charging can add)."""
        k = iter(jax.random.split(key, 7))
        u = lambda lo, hi: jax.random.uniform(next(k), (n,), minval=lo, maxval=hi)
        capacity = u(40.0, 80.0)
        p_max, eta = u(3.6, 7.4), u(0.88, 0.95)
        departure = jax.random.randint(next(k), (n,), 26, 35)
        e_arrival = u(0.2, 0.6) * capacity
        # A day starts at midnight with the car's arrival energy: keep the morning's
        # requirement within what the morning's plugged-in hours can deliver.
        morning_kwh = 0.8 * eta * p_max * DT_H * departure.astype(capacity.dtype)
        return cls(
            capacity_kwh=capacity,
            p_max_kw=p_max,
            eta=eta,
            arrival_step=jax.random.randint(next(k), (n,), 68, 81),
            departure_step=departure,
            e_arrival_kwh=e_arrival,
            e_req_kwh=jnp.minimum(u(0.7, 0.9) * capacity, e_arrival + morning_kwh),
        )

    def plugged(self, step: Int[Array, ""]) -> Float[Array, ""]:
        """1.0 while the car is at home, 0.0 while it is away."""
        home = (step < self.departure_step) | (step >= self.arrival_step)
        return home.astype(self.capacity_kwh.dtype)

    def initial_state(self) -> EVState:
        """Midnight, the car home since the evening with its arrival energy."""
        return EVState(self.e_arrival_kwh, jnp.zeros_like(self.e_arrival_kwh))

    def randomise_state(self, key: PRNGKeyArray, state: EVState) -> EVState:
        energy = self.capacity_kwh * jax.random.uniform(
            key, jnp.shape(self.capacity_kwh), dtype=self.capacity_kwh.dtype
        )
        return EVState(energy, jnp.zeros_like(state.shortfall_kwh))

    def decode(self, u: Float[Array, ""]) -> Float[Array, ""]:
        return (u + 1) / 2 * self.p_max_kw

    def step(
        self, state: EVState, command: Float[Array, ""], inputs: DeviceInputs
    ) -> DeviceStep:
        dt, step = inputs.dt_h, inputs.step
        plugged = self.plugged(step)
        # The car comes home with e_arrival (driving used the rest).
        e = jnp.where(step == self.arrival_step, self.e_arrival_kwh, state.energy_kwh)
        e_hat = e + self.eta * command * dt  # implied, as if always plugged in
        e_full = jnp.where(e_hat > self.capacity_kwh, self.capacity_kwh, e_hat)
        e_next = plugged * e_full + (1 - plugged) * e
        p_ac = plugged * (e_next - e) / (self.eta * dt)
        beyond = _relu(e_hat - self.capacity_kwh)
        away = self.eta * command * dt
        violation = (plugged * beyond + (1 - plugged) * away) / self.capacity_kwh
        departing = step == self.departure_step - 1
        shortfall = jnp.where(
            departing, _relu(self.e_req_kwh - e_next), state.shortfall_kwh
        )
        return DeviceStep(
            state=EVState(e_next, shortfall),
            p_kw=p_ac,
            violation=violation,
            cost=jnp.zeros_like(p_ac),
        )

    def terminal_violation(self, state: EVState) -> Float[Array, ""]:
        return state.shortfall_kwh / self.capacity_kwh

    def observe(self, state: EVState) -> Float[Array, ""]:
        return state.energy_kwh / self.capacity_kwh

    def urgency(self, state: EVState, inputs: DeviceInputs) -> Float[Array, ""]:
        """Full-power steps needed to reach `e_req`, over the plugged-in steps left
        before departure (0 while away)."""
        step = inputs.step
        left = jnp.where(
            step < self.departure_step,
            self.departure_step - step,
            inputs.n_steps - step + self.departure_step,
        ).astype(self.capacity_kwh.dtype)
        need = _relu(self.e_req_kwh - state.energy_kwh)
        steps = need / (self.eta * self.p_max_kw * inputs.dt_h)
        return self.plugged(step) * jnp.minimum(steps / left, 1.0)

    def naive_command(self, state: EVState, inputs: DeviceInputs) -> Float[Array, ""]:
        """Dumb charging: full power whenever plugged in."""
        return self.plugged(inputs.step) * self.p_max_kw

    def scaled(self, k: Real[ArrayLike, "*agent"]) -> "EVCharger":
        return scale_params(self, k)  # energies and power x k (`param`'s `scale`)


# --- a tiny environment: one day, a time-of-use price, open-loop schedules -----------


def tou_price() -> Float[Array, " step"]:
    """A time-of-use import price per kWh: cheap 00:00–07:00, peak 16:00–19:00."""
    hour = jnp.arange(N_STEPS, dtype=float) * DT_H
    return jnp.where(hour < 7, 0.08, jnp.where((hour >= 16) & (hour < 19), 0.35, 0.22))


def simulate(devices: EVCharger, u: Float[Array, "step home"] | None):
    """Run one day for a stacked population. `u` in [-1, 1] per step and home, or
    `None` for dumb charging. Returns meter cost, step and terminal violations."""
    price = tou_price()

    def one_home(device: EVCharger, u_home):
        def body(state, xs):
            t, u_t = xs
            inputs = DeviceInputs(t, N_STEPS, DT_H, 10.0)
            if u_home is None:
                command = device.naive_command(state, inputs)
            else:
                command = device.decode(jnp.clip(u_t, -1.0, 1.0))
            out = device.step(state, command, inputs)
            return out.state, (out.p_kw, out.violation)

        steps = jnp.arange(N_STEPS)
        xs = (steps, jnp.zeros(N_STEPS) if u_home is None else u_home)
        final, (p_kw, violation) = jax.lax.scan(body, device.initial_state(), xs)
        cost = jnp.sum(price * p_kw * DT_H)
        return cost, jnp.sum(violation), device.terminal_violation(final)

    if u is None:
        return eqx.filter_vmap(lambda d: one_home(d, None))(devices)
    return eqx.filter_vmap(one_home, in_axes=(eqx.if_array(0), 1))(devices, u)


def optimise(devices: EVCharger, iterations: int, multiplier: float = 50.0):
    """Gradient descent on `cost + multiplier * (violations)` over a per-home schedule,
    through the device model. Returns the schedule and the objective per iteration."""
    n = devices.capacity_kwh.shape[0]

    def objective(u):
        cost, step_v, terminal_v = simulate(devices, u)
        return jnp.sum(cost) + multiplier * jnp.sum(step_v + terminal_v)

    optimiser = optax.adam(0.05)
    u = -jnp.ones((N_STEPS, n)) * 0.9
    opt_state = optimiser.init(u)

    @jax.jit
    def update(u, opt_state):
        value, grad = jax.value_and_grad(objective)(u)
        updates, opt_state = optimiser.update(grad, opt_state)
        return (
            jnp.clip(jnp.asarray(optax.apply_updates(u, updates)), -1.0, 1.0),
            opt_state,
            value,
        )

    history = []
    # Optax mixes integer step counts into float updates; allow that even where a
    # test suite sets strict dtype promotion.
    with jax.numpy_dtype_promotion("standard"):
        for _ in range(iterations):
            u, opt_state, value = update(u, opt_state)
            history.append(float(value))
    return u, history


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--homes", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    devices = EVCharger.sample(jax.random.key(args.seed), args.homes)

    def report(name, result):
        cost, step_v, terminal_v = (float(jnp.sum(x)) for x in result)
        print(
            f"{name:<19} cost {cost:8.3f}   step violation {step_v:.4f}   "
            f"departure shortfall {terminal_v:.4f}"
        )

    report("dumb charging:", simulate(devices, None))
    u, history = optimise(devices, args.iterations)
    report("optimised schedule:", simulate(devices, u))
    print(f"objective {history[0]:.3f} -> {history[-1]:.3f} in {len(history)} steps")


if __name__ == "__main__":
    main()
