"""Out-of-sample evaluation: the held-out days, chained.

The end state of day d is the start of day d+1 (as a deployed controller would live
it), the policy acts with its mean, and every power flow is checked: a day with a
failed solve is counted, never averaged in silently.
"""

import dataclasses
import json
import os
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..env import AbstractController, Environment, NaiveController, VOLTAGE


EVAL_FILE = "eval.json"
"""The evaluation file of a run folder: the held-out month's figures, the trained
policies' and, under `NAIVE`, the naive rule's."""

NAIVE = "naive"
"""The name the naive rule is filed under: its key in `eval.json` and in the
benchmarks' records, its `--method` in `gridflex evaluate`, its label in figures."""


@dataclasses.dataclass
class Evaluation:
    """Figures of one method over the held-out days.

    - `cost_total`: operating cost, summed over agents and days (currency).
    - `voltage_violation_max_pu`: the largest limit violation at any node and step.
    - `voltage_violation_sum_pu`: per step the largest violation over all nodes,
        summed over the days' steps (pu·steps; the training voltage channel).
    - `battery_end_violation`, `heat_pump_end_violation`: end-of-day violations,
        summed over devices and days, in each device's normalised units (share of
        capacity short of the requirement; share of the comfort band beyond the
        tolerance).
    - `failed_days`: days with a failed power flow (their figures are included as
        computed with the last good voltages; see `failed_steps`).
    - `non_finite_actions`: NaN or infinite actions (agent-steps), each acting as
        u = 0 (the middle of the command range) and counted as a full-range
        violation.
    - `daily_cost`, `daily_voltage_violation_pu`: per day.
    - `v_min_pu`, `v_max_pu`: `[day, step]` voltage envelope over all nodes.
    - `power_pu`: `[day, step, agent]` device power on its rating (Fig. 4).
    """

    method: str
    feeder: str
    agents: int
    cost_total: float
    voltage_violation_max_pu: float
    voltage_violation_sum_pu: float
    battery_end_violation: float
    heat_pump_end_violation: float
    failed_days: int
    failed_steps: int
    non_finite_actions: int
    days: int
    channels: dict[str, float]
    daily_cost: np.ndarray
    daily_voltage_violation_pu: np.ndarray
    v_min_pu: np.ndarray
    v_max_pu: np.ndarray
    power_pu: np.ndarray
    kinds: tuple[str, ...]

    def summary(self) -> dict[str, Any]:
        """The JSON-able headline figures (what `eval.json` holds)."""
        return {
            "method": self.method,
            "feeder": self.feeder,
            "agents": self.agents,
            "days": self.days,
            "cost_total": self.cost_total,
            "voltage_violation_max_pu": self.voltage_violation_max_pu,
            "voltage_violation_sum_pu": self.voltage_violation_sum_pu,
            "battery_end_violation": self.battery_end_violation,
            "heat_pump_end_violation": self.heat_pump_end_violation,
            "failed_days": self.failed_days,
            "failed_steps": self.failed_steps,
            "non_finite_actions": self.non_finite_actions,
            "channels_sum": self.channels,
            "daily_cost": [float(c) for c in self.daily_cost],
            "daily_voltage_violation_pu": [
                float(v) for v in self.daily_voltage_violation_pu
            ],
        }


def evaluate(
    env: Environment,
    controller: AbstractController,
    *,
    method: str = "policy",
    days: int | None = None,
    key: jax.Array | None = None,
) -> Evaluation:
    """Run `controller` over the held-out days of `env`, chained.

    **Arguments:**

    - `env`: the environment (its `test` split holds the held-out days).
    - `controller`: e.g. `NaiveController()` or a deterministic `PolicyController`.
    - `method`: a label for the reports.
    - `days`: evaluate only the first `days` held-out days (default: all).
    - `key`: PRNG key for a stochastic controller (default: key 0).

    **Returns:** an `Evaluation`.
    """
    n_days = env.test.n_days if days is None else int(days)
    if not 1 <= n_days <= env.test.n_days:
        raise ValueError(f"days = {days}: the held-out split has {env.test.n_days}.")
    key = jax.random.key(0) if key is None else key
    out = _chained(env, controller, key, n_days)
    out = jax.tree_util.tree_map(np.asarray, out)
    costs, channels, failed, non_finite, v_min, v_max, p_kw, v_viol = out
    ratings = np.asarray(env.ratings_kw())
    n = env.n_agents
    # Report each channel summed over steps, devices and days: the voltage channel
    # (a per-step mean in units of `voltage_scale_pu`) back in pu·steps; device
    # channels are per-step, per-agent means (terminal ones per-agent).
    terminal = set(env.terminal_channels)
    n_steps = env.config.n_steps

    def total(c: str, v: np.ndarray) -> float:
        if c == VOLTAGE:
            return float(np.sum(v) * env.config.voltage_scale_pu * n_steps)
        return float(np.sum(v) * n * (1 if c in terminal else n_steps))

    sums = {c: total(c, v) for c, v in channels.items()}
    return Evaluation(
        method=method,
        feeder=env.feeder.name,
        agents=n,
        cost_total=float(np.sum(costs)),
        voltage_violation_max_pu=float(np.max(v_viol)),
        voltage_violation_sum_pu=float(np.sum(v_viol)),
        battery_end_violation=sums.get("battery_terminal", 0.0),
        heat_pump_end_violation=sums.get("heat_pump_terminal", 0.0),
        failed_days=int(np.sum(failed > 0)),
        failed_steps=int(np.sum(failed)),
        non_finite_actions=int(np.sum(non_finite)),
        days=n_days,
        channels=sums,
        daily_cost=costs,
        daily_voltage_violation_pu=np.sum(v_viol, axis=1),
        v_min_pu=v_min,
        v_max_pu=v_max,
        power_pu=p_kw / np.maximum(ratings, 1e-9)[None, None, :],
        kinds=tuple(env.population.kind),
    )


@eqx.filter_jit
def _chained(env: Environment, controller: AbstractController, key, n_days: int):
    lambdas = env.zero_lambdas()
    n_steps = env.config.n_steps
    dtype = jnp.result_type(float)

    def day_fn(state, xs):
        day, k = xs
        shift = jnp.zeros((n_steps, env.n_agents, 2), dtype)
        ep = env._episode(controller, lambdas, k, day, state, shift, True, "test")
        tr = ep.trace
        assert tr is not None
        # The largest violation at any node in a step is at most the step's envelope
        # excursion; the trace keeps the per-step maximum.
        out = (
            ep.cost,
            ep.channels,
            ep.failed_steps,
            ep.non_finite_actions,
            tr.v_min_pu,
            tr.v_max_pu,
            tr.p_kw,
            tr.voltage_violation,
        )
        return ep.final_state, out

    days = jnp.arange(n_days)
    keys = jax.random.split(key, n_days)
    _, out = jax.lax.scan(day_fn, env.initial_state(), (days, keys))
    return out


def naive_evaluation(env: Environment, *, days: int | None = None) -> Evaluation:
    """The naive baseline over the held-out days, filed under the method `NAIVE`."""
    return evaluate(env, NaiveController(), method=NAIVE, days=days)


def write_evaluation(directory: str | os.PathLike, summary: dict[str, Any]) -> str:
    """Write `eval.json` (`EVAL_FILE`, atomically) and return its path."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, EVAL_FILE)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path
