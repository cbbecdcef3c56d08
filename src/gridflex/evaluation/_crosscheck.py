"""A trained policy's held-out day replayed with OpenDSS solving every power flow.

Network planners trust OpenDSS. `opendss_crosscheck` runs the controller through one
held-out day in gridflex, writes each step's home injections into the feeder's own
OpenDSS model as loads (and the kept spot loads at that step's multiplier), has
OpenDSS solve it, and reports the largest voltage difference from gridflex's solve of
the same step, next to the day's usual figures as OpenDSS sees them.
"""

import dataclasses
import os
from collections.abc import Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..env import AbstractController, Environment
from ..feeders import (
    builtin_master,
    compile_reference,
    opendss_node_voltages,
    resolve_taps,
)
from ..powerflow import power_flow, ZBus


@dataclasses.dataclass
class CrossCheck:
    """One held-out day, solved by gridflex and by OpenDSS.

    - `max_difference_pu`: the largest `|v_gridflex - v_opendss|` over every node and
        step, on each node's base.
    - `step_difference_pu`: `[step]`, the same per step.
    - `v_max_pu`, `v_min_pu`: `[step]` voltage envelope over all nodes, OpenDSS's.
    - `voltage_violation_sum_pu`: per step the largest violation of the voltage
        limits over all nodes (OpenDSS's voltages), summed over the day.
    - `cost`: the day's operating cost (from gridflex's rollout; the power flow does
        not enter it).
    """

    feeder: str
    day: int
    max_difference_pu: float
    step_difference_pu: np.ndarray
    v_min_pu: np.ndarray
    v_max_pu: np.ndarray
    voltage_violation_sum_pu: float
    cost: float

    def summary(self) -> dict:
        return {
            "feeder": self.feeder,
            "day": self.day,
            "max_difference_pu": self.max_difference_pu,
            "voltage_violation_sum_pu": self.voltage_violation_sum_pu,
            "v_max_pu": float(np.max(self.v_max_pu)),
            "v_min_pu": float(np.min(self.v_min_pu)),
            "cost": self.cost,
        }


@eqx.filter_jit
def _day(env: Environment, controller: AbstractController, day, key):
    n = env.config.n_steps
    shift = jnp.zeros((n, env.n_agents, 2), jnp.result_type(float))
    ep = env._episode(
        controller, env.zero_lambdas(), key, day, env.initial_state(), shift, True,
        "test",
    )  # fmt: skip
    assert ep.trace is not None
    data = env.test.episode(day[None])
    _, p_node, q_node = jax.vmap(env.home_injections)(
        ep.trace.p_kw, data.load_kw[0], data.pv_kw[0]
    )
    kept = env.kept_load_scale(day[None], "test")[0]
    return ep.cost, p_node, q_node, kept


def opendss_crosscheck(
    env: Environment,
    controller: AbstractController,
    *,
    taps: str | Mapping[str, float | Sequence[float]] | None,
    master: str | os.PathLike | None = None,
    day: int = 0,
    key: jax.Array | None = None,
) -> CrossCheck:
    """Replay held-out day `day` of `env` under `controller`, with OpenDSS solving
    each step's power flow, and compare its voltages with gridflex's.

    **Arguments:**

    - `env`, `controller`: as for `evaluate` (a trained policy's deterministic
        `PolicyController`, or `NaiveController()`).
    - `taps`: the transformer taps the feeder was built with (no default: OpenDSS
        must solve the same network). For a built-in feeder, what its constructor
        took: `"regulated"` (their default), `"homes"` (what `gridflex train`
        uses), `"file"` or a mapping; for an imported one, the mapping given to
        `gridflex.feeders.from_opendss`, or `None` for the file's own taps.
    - `master`: the OpenDSS model the feeder came from; default: the built-in
        feeder's own (`env.feeder.name`).
    - `day`: which held-out day.
    - `key`: PRNG key for a stochastic controller (default: key 0).

    Each step, in OpenDSS: the spot loads replaced by homes are disabled, the others
    scaled by the step's multiplier, and every injection node carries one
    single-phase constant-power load with the homes' net demand there. Loads keep
    their model at every voltage (`vminpu`, `vmaxpu` out of the way) as in gridflex.

    **Returns:** a `CrossCheck`.
    """
    # Long: its docstring documents every argument; the code is 73 lines
    if not 0 <= day < env.test.n_days:
        raise ValueError(f"day = {day}: the held-out split has {env.test.n_days}.")
    feeder = env.feeder
    master = builtin_master(feeder.name) if master is None else os.fspath(master)
    if isinstance(taps, str):
        taps = resolve_taps(feeder.name, taps)
    key = jax.random.key(0) if key is None else key
    cost, p_node, q_node, kept = jax.tree_util.tree_map(
        np.asarray, _day(env, controller, jnp.asarray(day), key)
    )
    dss = compile_reference(master, taps=taps)
    kept_loads = set(feeder.loads.names)
    base: dict[str, tuple[float, float]] = {}
    for name in dss.Loads.AllNames():
        dss.Loads.Name(name)
        if name.lower() in kept_loads:
            base[name] = (dss.Loads.kW(), dss.Loads.kvar())
        else:
            dss.Text.Command(f"edit load.{name} enabled=no")
    inj = list(feeder.injection_nodes)
    homes = []
    for i in inj:
        node = feeder.node_names[i]
        name = f"gridflex_home_{node.replace('.', '_')}"
        kv = feeder.base_v[i] / 1e3
        dss.Text.Command(
            f"new load.{name} bus1={node} phases=1 kv={kv:.9g} kw=0 kvar=0 model=1 "
            "vminpu=0.3 vmaxpu=3 vlowpu=0.01"
        )
        homes.append(name)
    # gridflex's solve of every step at once, in float64 whatever the environment's
    # precision: the comparison is at 1e-6 pu
    with jax.enable_x64(True):
        v_ours = np.asarray(_solve_steps(feeder, p_node, q_node, kept))
    n_steps = p_node.shape[0]
    v_ref = np.zeros_like(v_ours)
    for t in range(n_steps):
        for name, (kw, kvar) in base.items():
            dss.Loads.Name(name)
            dss.Loads.kW(kw * float(kept[t]))
            dss.Loads.kvar(kvar * float(kept[t]))
        for name, i in zip(homes, inj, strict=True):
            dss.Loads.Name(name)
            dss.Loads.kW(float(p_node[t, i]))
            dss.Loads.kvar(float(q_node[t, i]))
        dss.Solution.Solve()
        if not dss.Solution.Converged():
            raise RuntimeError(f"OpenDSS did not converge at step {t} of day {day}.")
        ref = opendss_node_voltages(dss)
        v_ref[t] = [ref[n] for n in feeder.node_names]
    diff = np.max(np.abs(v_ours - v_ref) / feeder.base_v, axis=1)
    v_pu = np.abs(v_ref) / feeder.base_v
    with jax.enable_x64(True):  # OpenDSS's float64 voltages, kept so
        violation = np.asarray(env.config.voltage_violation(v_pu))
    return CrossCheck(
        feeder=feeder.name,
        day=day,
        max_difference_pu=float(diff.max()),
        step_difference_pu=diff,
        v_min_pu=v_pu.min(axis=1),
        v_max_pu=v_pu.max(axis=1),
        voltage_violation_sum_pu=float(violation.sum()),
        cost=float(np.sum(cost)),
    )


@eqx.filter_jit
def _solve_steps(feeder, p_node, q_node, kept):
    """gridflex's voltages at every step of the day (`[step, node]`), tightly."""
    exact = ZBus(rtol=1e-12, atol=1e-12)
    n_loads = feeder.loads.n_loads

    def one(p, q, k):
        scale = jnp.full(n_loads, k, p.dtype)
        return power_flow(feeder, p, q, load_scale=scale, solver=exact).v

    return jax.vmap(one)(
        jnp.asarray(p_node, jnp.float64),
        jnp.asarray(q_node, jnp.float64),
        jnp.asarray(kept, jnp.float64),
    )
