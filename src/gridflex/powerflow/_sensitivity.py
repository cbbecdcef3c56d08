"""Voltage sensitivities dV/dP and dV/dQ, from the implicit adjoint.

What users of pandapower and MATPOWER keep asking for: how much each node's voltage
magnitude moves per kW (or kvar) injected at another node, at an operating point. Here
it is the exact Jacobian of the three-phase unbalanced power flow, computed through the
same implicit adjoint that training uses (one linear solve per column or row).
"""

from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import optimistix as optx
from jaxtyping import Array, ArrayLike, Float

from .._misc import default_float
from ..feeders import Feeder
from ._solve import power_flow
from ._solvers import AbstractPowerFlowSolver, ZBus


class VoltageSensitivity(eqx.Module):
    """Sensitivities of voltage magnitudes to power injections at an operating point.

    **Attributes:**

    - `dv_dp`: `d|V_i| / dp_j` in per unit per kW, rows = `observed`, columns =
        `injected`, with gridflex's sign convention: `p` is consumption (as `p_kw` in
        `power_flow`), so entries are typically negative; negate for generation.
    - `dv_dq`: the same per kvar.
    - `v_pu`: the voltage magnitudes at the operating point, at `observed`.
    - `observed`, `injected`: node names.
    """

    dv_dp: Float[Array, "observed injected"]
    dv_dq: Float[Array, "observed injected"]
    v_pu: Float[Array, " observed"]
    observed: tuple[str, ...] = eqx.field(static=True)
    injected: tuple[str, ...] = eqx.field(static=True)

    def to_pandas(self):
        """`(dv_dp, dv_dq)` as pandas DataFrames indexed by node names."""
        import numpy as np
        import pandas as pd

        def frame(x):
            return pd.DataFrame(
                np.asarray(x), index=list(self.observed), columns=list(self.injected)
            )

        return frame(self.dv_dp), frame(self.dv_dq)


def voltage_sensitivities(
    feeder: Feeder,
    p_kw: Float[ArrayLike, " node"] | None = None,
    q_kvar: Float[ArrayLike, " node"] | None = None,
    *,
    observed: Sequence[str] | None = None,
    injected: Sequence[str] | None = None,
    load_scale: Float[ArrayLike, " load"] | None = None,
    solver: AbstractPowerFlowSolver = ZBus(),
    adjoint: optx.AbstractAdjoint | None = None,
    max_steps: int = 256,
) -> VoltageSensitivity:
    """dV/dP and dV/dQ of voltage magnitudes at `observed` nodes w.r.t. injections
    at `injected` nodes, at the operating point given by the base loads and the extra
    loads `p_kw`, `q_kvar` (as `power_flow`).

    Forward mode is used when there are fewer injected than observed nodes, reverse
    mode otherwise; both go through the implicit adjoint. Raises if the operating
    point does not solve.

    **Arguments:**

    - `feeder`, `p_kw`, `q_kvar`, `load_scale`, `solver`, `adjoint`, `max_steps`: as
        `power_flow`.
    - `observed`: node names whose voltages are differentiated (default: all nodes).
    - `injected`: node names where injections vary (default: the feeder's injection
        nodes). Others are added to the injection set as needed.

    **Returns:**

    A `VoltageSensitivity`.
    """
    dtype = default_float()
    injected = list(feeder.injection_node_names if injected is None else injected)
    extra = [n for n in injected if n.lower() not in set(feeder.injection_node_names)]
    if extra:
        feeder = feeder.with_injection_nodes(extra)
    obs_idx = jnp.asarray(
        feeder.node_index(list(feeder.node_names) if observed is None else observed)
    )
    inj_idx = jnp.asarray(feeder.node_index(injected))
    n = feeder.n_nodes
    p0 = jnp.zeros(n, dtype) if p_kw is None else jnp.asarray(p_kw, dtype=dtype)
    q0 = jnp.zeros(n, dtype) if q_kvar is None else jnp.asarray(q_kvar, dtype=dtype)

    def v_obs(dp, dq):
        sol = power_flow(
            feeder,
            p0.at[inj_idx].add(dp),
            q0.at[inj_idx].add(dq),
            load_scale=load_scale,
            solver=solver,
            adjoint=adjoint,
            max_steps=max_steps,
            throw=True,
        )
        return sol.v_pu[obs_idx]

    zeros = jnp.zeros(inj_idx.shape[0], dtype)
    jac = jax.jacfwd if inj_idx.shape[0] <= obs_idx.shape[0] else jax.jacrev
    dv_dp, dv_dq = jax.jit(jac(v_obs, argnums=(0, 1)))(zeros, zeros)
    return VoltageSensitivity(
        dv_dp=dv_dp,
        dv_dq=dv_dq,
        v_pu=v_obs(zeros, zeros),
        observed=tuple(feeder.node_names[int(i)] for i in obs_idx),
        injected=tuple(feeder.node_names[int(i)] for i in inj_idx),
    )
