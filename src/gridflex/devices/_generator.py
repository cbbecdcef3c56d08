"""Small controllable generator with ramp limits and a quadratic fuel cost (§II-A3)."""

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


GENERATOR_RANGES: dict[str, tuple[float, float]] = {
    "g_max_kw": (1.0, 10.0),
    "r_up_frac": (0.25, 0.6),
    "r_down_frac": (0.4, 1.0),
    "c1_per_kwh": (0.10, 0.25),
    "c2_rel": (0.1, 0.5),
}
"""Ranges `Generator.sample` draws from (uniformly); see `Generator.sample`."""


def _sample_params(key, n: int, ranges: tuple) -> dict[str, np.ndarray]:
    d = draw_uniform(key, dict(ranges), n)
    g_max = d["g_max_kw"]
    return dict(
        g_max_kw=g_max,
        r_up_kw_per_step=d["r_up_frac"] * g_max,
        r_down_kw_per_step=d["r_down_frac"] * g_max,
        c1_per_kwh=d["c1_per_kwh"],
        c2_per_kw2h=d["c2_rel"] * d["c1_per_kwh"] / g_max,
        g_init_kw=np.zeros_like(g_max),
    )


class Generator(AbstractDevice[Float[Array, ""]]):
    """A small dispatchable generator, e.g. a micro-CHP unit (state: its output over
    the previous step, kW, >= 0).

    With `g_cmd` the set-point command (kW, in [0, g_max]) and `dt` the step (h):

    ```
    dg_hat  = g_cmd - g_prev                                      # implied change
    g       = g_prev + clip(dg_hat, -r_down, r_up)                # ramp-limited
    p_ac    = -g                                                  # generation
    violation = (relu(dg_hat - r_up) + relu(-r_down - dg_hat)) / g_max
    cost      = (c2 g^2 + c1 g) dt
    ```

    Ramp limits are in kW *per step* (15 minutes by default). The generator has no
    end-of-day requirement (`terminal_channel` is `None`).

    **Arguments:** (scalars for one home, or arrays with a leading agent axis)

    - `g_max_kw`: rated output, kW (> 0).
    - `r_up_kw_per_step`, `r_down_kw_per_step`: ramp limits, kW per step (>= 0);
        default `g_max` (no limit within a step).
    - `c1_per_kwh`: linear fuel cost per kWh generated, >= 0.
    - `c2_per_kw2h`: quadratic fuel cost, per kW² per hour, >= 0.
    - `g_init_kw`: nominal output at the start of the day, in [0, g_max]; default 0.
    """

    step_channel: ClassVar[str] = "generator_ramp"
    terminal_channel: ClassVar[str | None] = None

    g_max_kw: Float[Array, "*agent"] = eqx.field(
        converter=param(lo=0.0, lo_open=True, scale=1)
    )
    r_up_kw_per_step: Float[Array, "*agent"] = eqx.field(
        default=None, converter=param(derive=lambda p: p["g_max_kw"], lo=0.0, scale=1)
    )
    r_down_kw_per_step: Float[Array, "*agent"] = eqx.field(
        default=None, converter=param(derive=lambda p: p["g_max_kw"], lo=0.0, scale=1)
    )
    c1_per_kwh: Float[Array, "*agent"] = eqx.field(
        default=0.15, converter=param(lo=0.0)
    )
    c2_per_kw2h: Float[Array, "*agent"] = eqx.field(
        default=0.0, converter=param(lo=0.0, scale=-1)
    )
    g_init_kw: Float[Array, "*agent"] = eqx.field(
        default=0.0, converter=param(lo=0.0, hi="g_max_kw", unit="kW", scale=1)
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
    ) -> "Generator":
        """`n` small generators with parameters drawn uniformly from `GENERATOR_RANGES`.

        - `g_max` 1–10 kW: domestic micro-CHP (about 1 kW electrical for Stirling and
            fuel-cell units) up to small gas engines and standby gensets.
        - Ramp limits per 15-minute step: up 25–60 % and down 40–100 % of `g_max`.
            Engine and Stirling micro-CHP take of the order of ten minutes or more to
            reach full output from cold and fuel cells longer still; shutting down is
            quicker.
        - `c1` 0.10–0.25 per kWh: fuel cost per kWh of electricity net of the heat
            recovered (gas at about 0.06–0.10 per kWh over 25–35 % electrical
            efficiency, less a heat credit).
        - `c2 = c2_rel * c1 / g_max` with `c2_rel` 0.1–0.5: the marginal cost rises
            by 20–100 % from idle to full output (part-load efficiency curves).

        **Arguments:**

        - `key`: PRNG key; the same key gives the same generators.
        - `n`: number of homes.
        - `ranges`: overrides for entries of `GENERATOR_RANGES`.
        """
        r = resolve_ranges("Generator", GENERATOR_RANGES, ranges)
        return cls(**_sample_params(key, n, tuple(r.items())))

    # --- dynamics --------------------------------------------------------------------

    def initial_state(self) -> Float[Array, "*agent"]:
        return self.g_init_kw

    def randomise_state(
        self, key: PRNGKeyArray, state: Float[Array, "*agent"]
    ) -> Float[Array, "*agent"]:
        """Previous output drawn uniformly in [0, g_max]."""
        del state
        return uniform(key, jnp.zeros_like(self.g_max_kw), self.g_max_kw)

    def decode(self, u: Float[Array, ""]) -> Float[Array, ""]:
        return (u + 1) / 2 * self.g_max_kw

    def step(
        self, state: Float[Array, ""], command: Float[Array, ""], inputs: DeviceInputs
    ) -> DeviceStep:
        dg_hat = command - state
        dg = clip(dg_hat, -self.r_down_kw_per_step, self.r_up_kw_per_step)
        g = clip(state + dg, 0.0, self.g_max_kw)
        excess = relu(dg_hat - self.r_up_kw_per_step) + relu(
            -self.r_down_kw_per_step - dg_hat
        )
        return DeviceStep(
            state=g,
            p_kw=-g,
            violation=excess / self.g_max_kw,
            cost=(self.c2_per_kw2h * g**2 + self.c1_per_kwh * g) * inputs.dt_h,
        )

    def terminal_violation(self, state: Float[Array, ""]) -> Float[Array, ""]:
        """None: always 0."""
        return jnp.zeros_like(state)

    def observe(self, state: Float[Array, ""]) -> Float[Array, ""]:
        """Previous output over `g_max`."""
        return state / self.g_max_kw

    def urgency(
        self, state: Float[Array, ""], inputs: DeviceInputs
    ) -> Float[Array, ""]:
        """No terminal requirement: always 0."""
        del inputs
        return jnp.zeros_like(state)

    def naive_command(
        self, state: Float[Array, ""], inputs: DeviceInputs
    ) -> Float[Array, ""]:
        """Full output, `g_max` (reached as fast as the ramp allows)."""
        del inputs
        return jnp.broadcast_to(self.g_max_kw, jnp.shape(state))

    def scaled(self, k: Real[ArrayLike, "*agent"]) -> "Generator":
        """`k` generators in one: output and ramps `x k`, `c2 / k`, `c1` unchanged."""
        return scale_params(self, k)
