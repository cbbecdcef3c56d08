"""Home battery with a power-dependent conversion efficiency (paper §II-A1)."""

from collections.abc import Mapping
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, Real

from ._base import AbstractDevice, DeviceInputs, DeviceStep
from ._checks import init_params, param, scale_params
from ._ops import clip, relu, uniform
from ._sampling import draw_uniform, resolve_ranges


BATTERY_RANGES: dict[str, tuple[float, float]] = {
    "capacity_kwh": (5.0, 13.5),
    "c_rate_per_h": (0.35, 1.0),
    "e_min_frac": (0.0, 0.1),
    "e_max_frac": (0.9, 1.0),
    "e_req_frac": (0.3, 0.45),
    "eta_max": (0.93, 0.97),
    "eta_a": (0.1, 0.3),
    "eta_b": (5.0, 15.0),
    "c_deg_per_kwh": (0.02, 0.08),
}
"""Ranges `Battery.sample` draws from (uniformly); see `Battery.sample`."""

BATTERY_P_MAX_KW = (2.5, 7.0)
"""`p_max_kw = clip(c_rate_per_h * capacity_kwh, 2.5, 7.0)`."""


def _sample_params(key, n: int, ranges: tuple) -> dict[str, np.ndarray]:
    d = draw_uniform(key, dict(ranges), n)
    capacity = d["capacity_kwh"]
    e_min = d["e_min_frac"] * capacity
    e_max = d["e_max_frac"] * capacity
    return dict(
        capacity_kwh=capacity,
        p_max_kw=np.clip(d["c_rate_per_h"] * capacity, *BATTERY_P_MAX_KW),
        e_min_kwh=e_min,
        e_max_kwh=e_max,
        e_req_kwh=d["e_req_frac"] * capacity,
        e_init_kwh=(e_min + e_max) / 2,
        eta_max=d["eta_max"],
        eta_a=d["eta_a"],
        eta_b=d["eta_b"],
        c_deg_per_kwh=d["c_deg_per_kwh"],
    )


class Battery(AbstractDevice[Float[Array, ""]]):
    """A home battery (state: stored energy, kWh).

    With `p` the command (kW, positive = charging, in [-p_max, p_max]) and `dt` the
    step (h):

    ```
    eta(p)  = eta_max * (1 - eta_a * exp(-eta_b * |p| / p_max))
    e_hat   = e + dt * (eta * p  if p >= 0  else  p / eta)        # implied
    e_next  = clip(e_hat, e_min, e_max)                           # actual
    p_ac    = (e_next - e) / (eta * dt)  if e_next >= e  else  (e_next - e) * eta / dt
    violation = (relu(e_hat - e_max) + relu(e_min - e_hat)) / capacity
    terminal  = relu(e_req - e_T) / capacity
    cost      = c_deg * |p_ac| * dt
    ```

    The efficiency is one-way (AC to cell or cell to AC) and lower at low power, as
    measured curves are (paper ref. [33]). The back-calculation evaluates `eta` at the
    *commanded* power: a battery that reaches its bound mid-step runs at the commanded
    power until it gets there and then stops, so its conversion efficiency is the one
    at the commanded power while the step's average AC power `p_ac` is lower. This
    resolves the implicit dependence of `eta` on `p_ac` without a fixed point, gives
    `p_ac == p` exactly whenever the command is feasible, and `|p_ac| <= |p|` always.

    **Arguments:** (every parameter a scalar for one home, or an array with a leading
    agent axis for a population; scalars broadcast)

    - `capacity_kwh`: usable energy capacity, kWh (> 0).
    - `p_max_kw`: AC power rating for charge and discharge, kW (> 0).
    - `e_min_kwh`, `e_max_kwh`: energy bounds, `0 <= e_min <= e_max <= capacity`;
        default 0 and `capacity`.
    - `e_req_kwh`: end-of-day energy requirement in `[e_min, e_max]`; default
        `e_min` (no requirement).
    - `e_init_kwh`: nominal start-of-day energy in `[e_min, e_max]`; default the
        middle of the bounds.
    - `eta_max`: peak one-way efficiency, in (0, 1].
    - `eta_a`: efficiency drop at zero power as a share of `eta_max`, in [0, 1).
    - `eta_b`: how fast the efficiency recovers with power (per unit of `p_max`), >= 0.
    - `c_deg_per_kwh`: degradation cost per kWh of AC throughput, >= 0.
    """

    step_channel: ClassVar[str] = "battery_energy"
    terminal_channel: ClassVar[str | None] = "battery_terminal"

    capacity_kwh: Float[Array, "*agent"] = eqx.field(
        converter=param(lo=0.0, lo_open=True, unit="kWh", scale=1)
    )
    p_max_kw: Float[Array, "*agent"] = eqx.field(
        converter=param(lo=0.0, lo_open=True, scale=1)
    )
    e_min_kwh: Float[Array, "*agent"] = eqx.field(
        default=0.0, converter=param(lo=0.0, hi="e_max_kwh", unit="kWh", scale=1)
    )
    e_max_kwh: Float[Array, "*agent"] = eqx.field(
        default=None,
        converter=param(
            derive=lambda p: p["capacity_kwh"],
            lo=0.0,
            hi="capacity_kwh",
            unit="kWh",
            scale=1,
        ),
    )
    e_req_kwh: Float[Array, "*agent"] = eqx.field(
        default=None,
        converter=param(
            derive=lambda p: p["e_min_kwh"],
            lo="e_min_kwh",
            hi="e_max_kwh",
            unit="kWh",
            scale=1,
        ),
    )
    e_init_kwh: Float[Array, "*agent"] = eqx.field(
        default=None,
        converter=param(
            derive=lambda p: (p["e_min_kwh"] + p["e_max_kwh"]) / 2,
            lo="e_min_kwh",
            hi="e_max_kwh",
            unit="kWh",
            scale=1,
        ),
    )
    eta_max: Float[Array, "*agent"] = eqx.field(
        default=0.95, converter=param(lo=0.0, hi=1.0, lo_open=True)
    )
    eta_a: Float[Array, "*agent"] = eqx.field(
        default=0.2, converter=param(lo=0.0, hi=1.0, hi_open=True)
    )
    eta_b: Float[Array, "*agent"] = eqx.field(default=10.0, converter=param(lo=0.0))
    c_deg_per_kwh: Float[Array, "*agent"] = eqx.field(
        default=0.05, converter=param(lo=0.0)
    )

    def __post_init__(self):
        init_params(self)

    # --- population ------------------------------------------------------------------

    @classmethod
    def sample(
        cls,
        key: PRNGKeyArray,
        n: int,
        ranges: Mapping[str, tuple[float, float]] | None = None,
    ) -> "Battery":
        """`n` home batteries with parameters drawn uniformly from `BATTERY_RANGES`.

        - `capacity_kwh` 5–13.5 kWh: the span of common home batteries, from about
            5 kWh units to the 13.5 kWh Tesla Powerwall 2.
        - `p_max_kw = clip(c_rate * capacity, 2.5, 7)` with `c_rate` 0.35–1 per hour:
            home batteries are rated from about 0.37 C (Powerwall 2: 5 kW continuous
            on 13.5 kWh) to about 1 C; 2.5–7 kW spans their inverters.
        - `e_min` 0–10 % and `e_max` 90–100 % of capacity: the state-of-charge window
            a battery management system or the owner's backup reserve leaves.
        - `e_req` 30–45 % of capacity, `e_init` the middle of the bounds (45–55 %):
            enough left for the next morning; an idle battery meets it.
        - `eta_max` 0.93–0.97 one way (round trip 86–94 %, the range quoted for home
            lithium-ion systems); `eta_a` 0.1–0.3 and `eta_b` 5–15 give 75–90 % near
            zero power and within 1 % of `eta_max` above about half power, the shape of
            measured inverter/charger curves (paper ref. [33]).
        - `c_deg_per_kwh` 0.02–0.08 per kWh of throughput: roughly installed cost
            (400–600 per kWh) over lifetime throughput (2 x 4,000–6,000 cycles).

        **Arguments:**

        - `key`: PRNG key; the same key gives the same batteries.
        - `n`: number of homes.
        - `ranges`: overrides for entries of `BATTERY_RANGES`.
        """
        r = resolve_ranges("Battery", BATTERY_RANGES, ranges)
        return cls(**_sample_params(key, n, tuple(r.items())))

    # --- dynamics --------------------------------------------------------------------

    def efficiency(self, p_kw: Float[Array, "*s"]) -> Float[Array, "*s"]:
        """One-way efficiency at power `p_kw` (either sign)."""
        x = jnp.abs(p_kw) / self.p_max_kw
        return self.eta_max * (1 - self.eta_a * jnp.exp(-self.eta_b * x))

    def initial_state(self) -> Float[Array, "*agent"]:
        return self.e_init_kwh

    def randomise_state(
        self, key: PRNGKeyArray, state: Float[Array, "*agent"]
    ) -> Float[Array, "*agent"]:
        """Energy drawn uniformly between `e_min` and `e_max`."""
        del state
        return uniform(key, self.e_min_kwh, self.e_max_kwh)

    def decode(self, u: Float[Array, ""]) -> Float[Array, ""]:
        return u * self.p_max_kw

    def step(
        self, state: Float[Array, ""], command: Float[Array, ""], inputs: DeviceInputs
    ) -> DeviceStep:
        dt = inputs.dt_h
        e, p = state, command
        eta = self.efficiency(p)
        e_hat = e + dt * jnp.where(p >= 0, eta * p, p / eta)
        e_next = clip(e_hat, self.e_min_kwh, self.e_max_kwh)
        delta = e_next - e
        p_ac = jnp.where(delta >= 0, delta / (eta * dt), delta * eta / dt)
        excess = relu(e_hat - self.e_max_kwh) + relu(self.e_min_kwh - e_hat)
        return DeviceStep(
            state=e_next,
            p_kw=p_ac,
            violation=excess / self.capacity_kwh,
            cost=self.c_deg_per_kwh * jnp.abs(p_ac) * dt,
        )

    def terminal_violation(self, state: Float[Array, ""]) -> Float[Array, ""]:
        """Energy short of `e_req` at the end of the day, as a share of capacity."""
        return relu(self.e_req_kwh - state) / self.capacity_kwh

    def observe(self, state: Float[Array, ""]) -> Float[Array, ""]:
        """State of charge, `e / capacity`."""
        return state / self.capacity_kwh

    def urgency(
        self, state: Float[Array, ""], inputs: DeviceInputs
    ) -> Float[Array, ""]:
        """Steps of full-power charging needed to reach `e_req`, over the steps left.

        `relu(e_req - e) / (eta(p_max) * p_max * dt) / (n_steps - step)`, clipped to 1.
        """
        need = relu(self.e_req_kwh - state)
        per_step = self.efficiency(self.p_max_kw) * self.p_max_kw * inputs.dt_h
        return jnp.minimum(need / (per_step * inputs.steps_left()), 1.0)

    def naive_command(
        self, state: Float[Array, ""], inputs: DeviceInputs
    ) -> Float[Array, ""]:
        """Idle: zero power."""
        del inputs
        return jnp.zeros_like(state)

    def scaled(self, k: Real[ArrayLike, "*agent"]) -> "Battery":
        """`k` batteries in one: energies and power `x k`; efficiency curve (per unit
        of `p_max`) and cost per kWh unchanged."""
        return scale_params(self, k)
