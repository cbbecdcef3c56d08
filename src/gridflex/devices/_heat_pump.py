"""Air-source heat pump heating a home modelled as one thermal RC node (§II-A2)."""

import csv
import functools
import importlib.resources
import io
from collections.abc import Mapping
from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, Real

from ._base import AbstractDevice, DeviceInputs, DeviceStep
from ._checks import check_range, init_params, param, scale_params
from ._ops import clip, relu, uniform
from ._sampling import draw_uniform, resolve_ranges


HEAT_PUMP_RANGES: dict[str, tuple[float, float]] = {
    "htc_kw_per_c": (0.12, 0.40),
    "tau_h": (10.0, 60.0),
    "theta_ref_c": (19.0, 21.5),
    "band_below_c": (1.5, 3.0),
    "band_above_c": (1.5, 3.0),
    "theta_tol_c": (0.5, 1.0),
    "oversize": (1.2, 1.5),
    "c_wear_per_kw": (0.002, 0.01),
}
"""Ranges `HeatPump.sample` draws from (uniformly); see `HeatPump.sample`."""

HEAT_PUMP_P_MAX_KW = (1.5, 5.0)
"""Electrical rating of a sampled heat pump is sized to its home, then clipped here."""

DESIGN_TEMPERATURE_C = -3.0
"""Outdoor temperature a sampled heat pump is sized for."""

COP_CHECK_RANGE_C = (-10.0, 35.0)
"""Outdoor temperatures over which a heat pump's COP line must stay positive."""

_COP_TABLE = "heat_pump_cop.csv"


@functools.cache
def heat_pump_cop_table() -> dict[str, np.ndarray]:
    """The COP lines of 363 real air/water heat pumps (hplib database, MIT licence).

    `COP(t_out) = cop0 + cop_slope_per_c * t_out` at a 35 °C supply temperature,
    fitted over -10..15 °C outdoors by `scripts/heat_pump_cop.py`; provenance in
    `gridflex/devices/data/SOURCES.md`.

    **Returns:** a dict of NumPy arrays, one row per model: `manufacturer`, `model`
    (strings), `cop0`, `cop_slope_per_c`, `p_el_kw_m7_35`, `p_th_kw_m7_35` (the
    model's own electrical and thermal power at -7/35 °C).
    """
    path = importlib.resources.files("gridflex.devices") / "data" / _COP_TABLE
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    text = ("manufacturer", "model")
    numbers = ("cop0", "cop_slope_per_c", "p_el_kw_m7_35", "p_th_kw_m7_35")
    table = {c: np.array([r[c] for r in rows]) for c in text}
    table |= {c: np.array([float(r[c]) for r in rows]) for c in numbers}
    return table


def _sample_params(key, n: int, ranges: tuple) -> dict[str, np.ndarray]:
    table = heat_pump_cop_table()
    d = draw_uniform(key, {**dict(ranges), "model": (0.0, 1.0)}, n)
    count = len(table["cop0"])
    row = np.minimum((d["model"] * count).astype(np.int64), count - 1)
    cop0, slope = table["cop0"][row], table["cop_slope_per_c"][row]
    htc = d["htc_kw_per_c"]
    theta_ref = d["theta_ref_c"]
    cop_design = np.maximum(cop0 + slope * DESIGN_TEMPERATURE_C, 1.0)
    heat_loss_kw = htc * (theta_ref - DESIGN_TEMPERATURE_C)
    p_max = np.clip(d["oversize"] * heat_loss_kw / cop_design, *HEAT_PUMP_P_MAX_KW)
    return dict(
        r_c_per_kw=1 / htc,
        c_kwh_per_c=d["tau_h"] * htc,
        p_max_kw=p_max,
        theta_min_c=theta_ref - d["band_below_c"],
        theta_max_c=theta_ref + d["band_above_c"],
        theta_ref_c=theta_ref,
        theta_tol_c=d["theta_tol_c"],
        cop0=cop0,
        cop_slope_per_c=slope,
        c_wear_per_kw=d["c_wear_per_kw"],
    )


class HeatPumpState(eqx.Module):
    """State of a heated home: indoor temperature and the heat pump's last power
    (for the wear cost of changing it)."""

    temperature_c: Float[Array, "*agent"]
    p_prev_kw: Float[Array, "*agent"]


class HeatPump(AbstractDevice[HeatPumpState]):
    """An air-source heat pump heating a home (state: `HeatPumpState`).

    The home is one thermal node: resistance `R` (°C/kW) to outdoors, capacitance `C`
    (kWh/°C). With `p` the electrical command (kW, in [0, p_max]), `theta_out` the
    outdoor temperature and `dt` the step (h):

    ```
    alpha   = exp(-dt / (R C))
    COP     = max(cop0 + cop_slope * theta_out, 1)
    th_hat  = alpha * th + (1 - alpha) * (theta_out + R * COP * p)      # implied
    th_next = clip(th_hat, theta_min, theta_max)                        # thermostat
    p_ac    = clip((th_next - alpha th - (1 - alpha) theta_out)
                   / ((1 - alpha) R COP), 0, p_max)
    violation = (relu(th_hat - theta_max) + relu(theta_min - th_hat)) / band
    terminal  = relu(|th_T - theta_ref| - theta_tol) / band
    cost      = c_wear * |p_ac - p_prev|
    ```

    with `band = theta_max - theta_min`. This is the exact discretisation of
    `C dth/dt = (theta_out - th)/R + COP p` with `p` and `theta_out` held over the step.
    The COP is a line in the outdoor temperature (a constant when `cop_slope_per_c` is
    0), floored at 1: below that hplib's models switch to their backup heating rod.
    A local thermostat keeps the temperature within its bounds; the power is the one
    that lands there, kept within the heat pump's range. When even zero power would
    overheat the home (a warm day) or full power cannot hold `theta_min`, the model
    still holds the bound (as the paper's does) and the violation signal reports it.

    **Arguments:** (scalars for one home, or arrays with a leading agent axis)

    - `r_c_per_kw`: thermal resistance to outdoors, °C/kW (> 0).
    - `c_kwh_per_c`: thermal capacitance, kWh/°C (> 0).
    - `p_max_kw`: electrical rating, kW (> 0).
    - `theta_min_c`, `theta_max_c`: comfort bounds, °C (`theta_min < theta_max`).
    - `theta_ref_c`: reference temperature in the bounds; default their middle.
    - `theta_tol_c`: end-of-day tolerance around `theta_ref`, °C (>= 0).
    - `cop0`: COP at 0 °C outdoors; `cop_slope_per_c`: its change per °C. The line must
        stay positive over `COP_CHECK_RANGE_C`.
    - `c_wear_per_kw`: wear cost per kW of change in power, >= 0.
    """

    step_channel: ClassVar[str] = "heat_pump_temperature"
    terminal_channel: ClassVar[str | None] = "heat_pump_terminal"

    r_c_per_kw: Float[Array, "*agent"] = eqx.field(
        converter=param(lo=0.0, lo_open=True, scale=-1)
    )
    c_kwh_per_c: Float[Array, "*agent"] = eqx.field(
        converter=param(lo=0.0, lo_open=True, scale=1)
    )
    p_max_kw: Float[Array, "*agent"] = eqx.field(
        converter=param(lo=0.0, lo_open=True, scale=1)
    )
    theta_min_c: Float[Array, "*agent"] = eqx.field(converter=param(unit="°C"))
    theta_max_c: Float[Array, "*agent"] = eqx.field(
        converter=param(lo="theta_min_c", lo_open=True, unit="°C")
    )
    theta_ref_c: Float[Array, "*agent"] = eqx.field(
        default=None,
        converter=param(
            derive=lambda p: (p["theta_min_c"] + p["theta_max_c"]) / 2,
            lo="theta_min_c",
            hi="theta_max_c",
            unit="°C",
        ),
    )
    theta_tol_c: Float[Array, "*agent"] = eqx.field(
        default=0.5, converter=param(lo=0.0, unit="°C")
    )
    cop0: Float[Array, "*agent"] = eqx.field(default=3.0, converter=param())
    cop_slope_per_c: Float[Array, "*agent"] = eqx.field(default=0.0, converter=param())
    c_wear_per_kw: Float[Array, "*agent"] = eqx.field(
        default=0.005, converter=param(lo=0.0)
    )

    def __post_init__(self):
        init_params(self)

    def __check_init__(self):
        # The ranges are `param`'s (checked already); this rule is not a range: the
        # COP line must stay positive over every outdoor temperature in
        # COP_CHECK_RANGE_C.
        for t in COP_CHECK_RANGE_C:
            check_range(
                "HeatPump",
                f"COP at {t:g} °C outdoors (cop0 + cop_slope_per_c * t)",
                self.cop0 + self.cop_slope_per_c * t,
                lo=0.0,
                lo_open=True,
            )

    # --- population ------------------------------------------------------------------

    @classmethod
    def sample(
        cls,
        key: PRNGKeyArray,
        n: int,
        ranges: Mapping[str, tuple[float, float]] | None = None,
    ) -> "HeatPump":
        """`n` heated homes drawn from `HEAT_PUMP_RANGES` and the hplib COP table.

        - Heat transfer coefficient `H = 1/R` 0.12–0.40 kW/°C: a new, well-insulated
            home loses about 100 W per °C of indoor-outdoor difference, a large or
            poorly insulated older UK home 300–400 W/°C (engineering judgement, in
            line with measured heat transfer coefficients).
        - Time constant `R C` 10–60 h (`C = tau H`, 1.2–24 kWh/°C): UK homes, light
            timber frame to heavy masonry.
        - COP line: a real air/water heat pump drawn uniformly from the 363 models of
            `heat_pump_cop_table()` (hplib; 35 °C supply): COP 1.5–3.5 at -10 °C,
            3.9–8.5 at 15 °C.
        - `p_max = clip(oversize * H * (theta_ref - (-3 °C)) / COP(-3 °C), 1.5, 5)` kW
            with `oversize` 1.2–1.5: sized, as installers do, to cover the home's heat
            loss at a UK design outdoor temperature with a margin; 1.5–5 kW electrical
            spans single-home units (the smallest sold deliver about 4 kW of heat).
        - `theta_ref` 19–21.5 °C, comfort bounds 1.5–3 °C below and above it,
            end-of-day tolerance 0.5–1 °C: usual UK living-room set points.
        - `c_wear_per_kw` 0.002–0.01 per kW of change: a compressor (~1,500) over
            10^5–10^6 kW of cumulative power changes (engineering judgement).

        **Arguments:**

        - `key`: PRNG key; the same key gives the same homes.
        - `n`: number of homes.
        - `ranges`: overrides for entries of `HEAT_PUMP_RANGES`.
        """
        r = resolve_ranges("HeatPump", HEAT_PUMP_RANGES, ranges)
        return cls(**_sample_params(key, n, tuple(r.items())))

    # --- dynamics --------------------------------------------------------------------

    def cop(self, temperature_c: Float[Array, "*s"]) -> Float[Array, "*s"]:
        """COP at an outdoor temperature, floored at 1 (backup heating rod)."""
        return jnp.maximum(self.cop0 + self.cop_slope_per_c * temperature_c, 1.0)

    def _response(self, state: HeatPumpState, inputs: DeviceInputs):
        """`(free, gain, alpha)`: next temperature at zero power and its rise per kW."""
        alpha = jnp.exp(-inputs.dt_h / (self.r_c_per_kw * self.c_kwh_per_c))
        t_out = inputs.temperature_c
        free = alpha * state.temperature_c + (1 - alpha) * t_out
        gain = (1 - alpha) * self.r_c_per_kw * self.cop(t_out)
        return free, gain, alpha

    def initial_state(self) -> HeatPumpState:
        """At the reference temperature, heat pump off."""
        return HeatPumpState(self.theta_ref_c, jnp.zeros_like(self.theta_ref_c))

    def randomise_state(self, key: PRNGKeyArray, state: HeatPumpState) -> HeatPumpState:
        """Temperature drawn uniformly between the comfort bounds; power kept."""
        temperature = uniform(key, self.theta_min_c, self.theta_max_c)
        return HeatPumpState(temperature, state.p_prev_kw)

    def decode(self, u: Float[Array, ""]) -> Float[Array, ""]:
        return (u + 1) / 2 * self.p_max_kw

    def step(
        self, state: HeatPumpState, command: Float[Array, ""], inputs: DeviceInputs
    ) -> DeviceStep:
        free, gain, _ = self._response(state, inputs)
        th_hat = free + gain * command
        th_next = clip(th_hat, self.theta_min_c, self.theta_max_c)
        p_ac = clip((th_next - free) / gain, 0.0, self.p_max_kw)
        band = self.theta_max_c - self.theta_min_c
        excess = relu(th_hat - self.theta_max_c) + relu(self.theta_min_c - th_hat)
        return DeviceStep(
            state=HeatPumpState(th_next, p_ac),
            p_kw=p_ac,
            violation=excess / band,
            cost=self.c_wear_per_kw * jnp.abs(p_ac - state.p_prev_kw),
        )

    def terminal_violation(self, state: HeatPumpState) -> Float[Array, ""]:
        """Distance beyond `theta_tol` from `theta_ref`, over the comfort band."""
        miss = jnp.abs(state.temperature_c - self.theta_ref_c) - self.theta_tol_c
        return relu(miss) / (self.theta_max_c - self.theta_min_c)

    def observe(self, state: HeatPumpState) -> Float[Array, ""]:
        """Temperature in the comfort band: 0 at `theta_min`, 1 at `theta_max`."""
        band = self.theta_max_c - self.theta_min_c
        return (state.temperature_c - self.theta_min_c) / band

    def urgency(self, state: HeatPumpState, inputs: DeviceInputs) -> Float[Array, ""]:
        """Steps needed to reach `theta_ref +- theta_tol`, over the steps left.

        Below the tolerance band the home is heated at full power, above it the heat
        pump is off; at the current outdoor temperature the temperature then relaxes
        exponentially to `theta_inf` (`theta_out + R COP p_max`, or `theta_out`), so
        the steps needed are
        `log((target - theta_inf) / (th - theta_inf)) / log(alpha)`.
        1 when `theta_inf` does not pass the target (it cannot be reached); 0 inside
        the band. Clipped to [0, 1].
        """
        th = state.temperature_c
        _, _, alpha = self._response(state, inputs)
        t_out = inputs.temperature_c
        lo = self.theta_ref_c - self.theta_tol_c
        hi = self.theta_ref_c + self.theta_tol_c
        heat = th < lo
        cool = th > hi
        target = jnp.where(heat, lo, hi)
        t_inf = jnp.where(
            heat, t_out + self.r_c_per_kw * self.cop(t_out) * self.p_max_kw, t_out
        )
        reachable = jnp.where(heat, t_inf > lo, t_inf < hi)
        valid = (heat | cool) & reachable
        # Double `where`: the unselected branch's inputs are made safe too, so that
        # neither the division nor the log can feed 0 * inf into the gradient.
        gap = jnp.where(valid, th - t_inf, 1.0)
        ratio = jnp.where(valid, (target - t_inf) / gap, 0.5)
        steps = jnp.log(ratio) / jnp.log(alpha)
        share = steps / inputs.steps_left()
        out = jnp.where(valid, share, jnp.where(heat | cool, 1.0, 0.0))
        return clip(out, 0.0, 1.0)

    def naive_command(
        self, state: HeatPumpState, inputs: DeviceInputs
    ) -> Float[Array, ""]:
        """Hold `theta_ref`: the power that lands exactly on it, within [0, p_max]."""
        free, gain, _ = self._response(state, inputs)
        return clip((self.theta_ref_c - free) / gain, 0.0, self.p_max_kw)

    def scaled(self, k: Real[ArrayLike, "*agent"]) -> "HeatPump":
        """`k` identical homes in one: `p_max x k`, `R / k`, `C x k` (same time
        constant and temperatures); wear cost per kW unchanged."""
        return scale_params(self, k)
