"""The environment one step at a time, as pure JAX functions over agent-keyed dicts.

`Environment.rollout` runs whole days inside one `lax.scan`, which is what the
gradient trainers need. Multi-agent RL libraries drive an environment step by step
instead: `reset(key) -> (obs, state)` and `step(key, state, actions) -> (obs, state,
rewards, dones, infos)`, jitted and vmapped over environments (JaxMARL's
`MultiAgentEnv` convention). `MultiAgentGrid` gives that interface on the same
dynamics: its `step` is `Environment.transition`, the function the rollout scans, so
a day stepped here equals a day rolled out there (`tests/test_marl.py`).
"""

from collections.abc import Mapping
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray

from .._misc import default_float
from ..env import DayState, Environment, StepInputs, VOLTAGE


class GridState(eqx.Module):
    """The state of one environment between steps: which day (`day`, an index into
    the split's days) and step (`t`) it is at, the day's inputs (leading step axis),
    and the `DayState` (devices, voltages, failure counts)."""

    day: Int[Array, ""]
    t: Int[Array, ""]
    inputs: StepInputs
    day_state: DayState


def _lambdas(env: Environment, lambdas: Mapping[str, Any] | None) -> dict[str, Array]:
    unknown = set(lambdas or {}) - set(env.channels)
    if unknown:
        raise ValueError(
            f"lambdas: unknown channel(s) {sorted(unknown)}; this environment's "
            f"channels are {list(env.channels)}."
        )
    dtype = default_float()
    given = lambdas or {}
    return {c: jnp.asarray(given.get(c, 0.0), dtype) for c in env.channels}


class MultiAgentGrid(eqx.Module):
    """Homes on a feeder as a functional multi-agent environment: one episode is one
    day (`env.config.n_steps` steps of 15 minutes), agents are the homes
    (`home_0`, `home_1`, ...), each observing its 8 local numbers
    (`gridflex.env.OBS_NAMES`) and acting with one raw action (clipped to [-1, 1] and
    decoded to its device's command range; beyond the range is a violation).

    **Rewards.** Each agent's reward at a step is minus its share of the day's
    Lagrangian at the duals `lambdas` (`StepTrace.lagrangian`, the reward IPPO and
    MAPPO train on): its own normalised cost, its own dual-weighted device
    violation, the dual-weighted voltage violation of the whole feeder (which every
    agent carries), and at the last step its dual-weighted end-of-day violation.
    Summed over agents and steps it is minus the episode's Lagrangian, the quantity
    the gradient trainers minimise.

    **Gradients.** `step_arrays` is differentiable with respect to the actions
    (through the devices and, by the implicit adjoint, the three-phase power flow);
    `action_gradient` gives the gradient of the step's summed reward.

    **Arguments:**

    - `env`: a `gridflex.env.Environment`.
    - `lambdas`: duals by channel (`env.channels`); missing ones are zero. Replace
        them between episodes with `with_lambdas` (no recompilation: they are
        arrays).
    - `split`: `"train"` or `"test"` (the held-out days) for `reset`'s days.
    - `randomise_initial`: start each day from randomised device states (as
        training rollouts do) rather than the nominal ones.
    """

    env: Environment
    lambdas: dict[str, Float[Array, ""]]
    split: str = eqx.field(static=True)
    randomise_initial: bool = eqx.field(static=True)

    AGENT_PREFIX: ClassVar[str] = "home_"

    def __init__(
        self,
        env: Environment,
        lambdas: Mapping[str, Any] | None = None,
        *,
        split: str = "train",
        randomise_initial: bool = True,
    ):
        if split not in ("train", "test"):
            raise ValueError(f"split={split!r}: use 'train' or 'test'.")
        self.env = env
        self.lambdas = _lambdas(env, lambdas)
        self.split = split
        self.randomise_initial = randomise_initial

    # -- names --------------------------------------------------------------------

    @property
    def agents(self) -> tuple[str, ...]:
        """The agents' names, in the environment's agent order."""
        return tuple(f"{self.AGENT_PREFIX}{i}" for i in range(self.env.n_agents))

    @property
    def num_agents(self) -> int:
        return self.env.n_agents

    @property
    def n_days(self) -> int:
        """Days of the split `reset` draws from."""
        scenarios = self.env.train if self.split == "train" else self.env.test
        return int(scenarios.n_days)

    def with_lambdas(self, lambdas: Mapping[str, Any]) -> "MultiAgentGrid":
        """The same environment at other duals (e.g. after a dual step)."""
        return eqx.tree_at(lambda m: m.lambdas, self, _lambdas(self.env, lambdas))

    def to_dict(self, x: Array) -> dict[str, Array]:
        """An array with a leading agent axis as a dict keyed by agent name."""
        return {name: x[i] for i, name in enumerate(self.agents)}

    def check_every_agent_acts(self, actions: Mapping[str, Any]) -> None:
        """Every agent must act at every step: name the ones that did not."""
        missing = [a for a in self.agents if a not in actions]
        if missing:
            raise ValueError(
                f"actions: no action for {', '.join(missing[:3])}"
                f"{' ...' if len(missing) > 3 else ''}; every agent "
                f"({self.num_agents}) acts at every step."
            )

    def from_dict(self, d: Mapping[str, ArrayLike]) -> Float[Array, " agent"]:
        """Agent-keyed actions (each a scalar or shape `(1,)`) as one array; every
        agent must act."""
        self.check_every_agent_acts(d)
        dtype = default_float()
        return jnp.stack(
            [jnp.reshape(jnp.asarray(d[a], dtype), ()) for a in self.agents]
        )

    # -- the functional API (arrays) ----------------------------------------------

    def reset_arrays(
        self, key: PRNGKeyArray, day: Int[Array, ""] | int | None = None
    ) -> tuple[Float[Array, "agent obs"], GridState]:
        """Start a day: `day` (an index into the split's days) or one drawn
        uniformly with `key`. **Returns:** `(obs [agent, obs], state)`."""
        env = self.env
        k_day, k_init = jax.random.split(key)
        if day is None:
            day = jax.random.randint(k_day, (), 0, self.n_days)
        day = jnp.asarray(day, jnp.int32)
        devices = env.initial_state()
        if self.randomise_initial:
            devices = env.randomise_state(k_init, devices)
        state = GridState(
            day=day,
            t=jnp.array(0, jnp.int32),
            inputs=env.day_inputs(day, self.split),
            day_state=env.start_of_day(devices),
        )
        return self.observe(state), state

    def observe(self, state: GridState) -> Float[Array, "agent obs"]:
        """Every agent's observation in `state` (at the last step's end, the last
        step's inputs stand in for the next day's, which a day does not have)."""
        t = jnp.minimum(state.t, self.env.config.n_steps - 1)
        x = jtu.tree_map(lambda leaf: leaf[t], state.inputs)
        return self.env.observe(state.day_state, x)

    def step_arrays(
        self, state: GridState, actions: Float[Array, " agent"]
    ) -> tuple[
        Float[Array, "agent obs"],
        GridState,
        Float[Array, " agent"],
        Bool[Array, ""],
        dict[str, Array],
    ]:
        """One step from every agent's raw action. **Returns:** `(obs, state,
        rewards, done, info)`; `done` at the day's last step (the day is over: a
        time limit, not a failure). `info`: each agent's `cost` (currency) and
        device power `p_kw`; the feeder's `voltage_violation_pu` (largest over the
        nodes), `v_min_pu`, `v_max_pu`, whether the power flow converged (`ok`; a
        failed one keeps the last good voltages and is counted in
        `state.day_state.failed_steps`); each device channel of this step (e.g.
        `battery_energy`, the mean over all agents); at the last step the terminal
        channels."""
        env = self.env
        x = jtu.tree_map(lambda leaf: leaf[state.t], state.inputs)
        day_state, channels, trace = env.transition(
            state.day_state, actions, x, self.lambdas
        )
        last = state.t == env.config.n_steps - 1
        terminal, share_end = env.end_of_day(day_state, self.lambdas)
        rewards = -(trace.lagrangian + jnp.where(last, share_end, 0.0))
        new = GridState(
            day=state.day, t=state.t + 1, inputs=state.inputs, day_state=day_state
        )
        info: dict[str, Array] = {
            "cost": trace.cost,
            "p_kw": trace.p_kw,
            "voltage_violation_pu": trace.voltage_violation,
            "v_min_pu": trace.v_min_pu,
            "v_max_pu": trace.v_max_pu,
            "ok": trace.ok,
        }
        # the devices' per-step channels (this step's mean over all agents), and at
        # the last step the terminal ones
        info.update({c: v for c, v in channels.items() if c != VOLTAGE})
        info.update({c: jnp.where(last, v, 0.0) for c, v in terminal.items()})
        return self.observe(new), new, rewards, last, info

    def action_gradient(
        self, state: GridState, actions: Float[Array, " agent"]
    ) -> Float[Array, " agent"]:
        """The gradient of this step's summed reward (minus the step's share of the
        Lagrangian) with respect to every agent's raw action: through each home's
        device and, by the implicit adjoint, through the power flow to every node's
        voltage. The building block of gradient-based multi-agent learning."""

        def total(a):
            return jnp.sum(self.step_arrays(state, a)[2])

        return jax.grad(total)(actions)

    # -- the JaxMARL-style API (agent-keyed dicts) --------------------------------

    def reset(
        self, key: PRNGKeyArray, day: Int[Array, ""] | int | None = None
    ) -> tuple[dict[str, Array], GridState]:
        """`reset_arrays` with the observations keyed by agent."""
        obs, state = self.reset_arrays(key, day)
        return self.to_dict(obs), state

    def step(
        self,
        key: PRNGKeyArray,
        state: GridState,
        actions: Mapping[str, ArrayLike],
    ) -> tuple[
        dict[str, Array],
        GridState,
        dict[str, Array],
        dict[str, Array],
        dict[str, Array],
    ]:
        """One step from agent-keyed actions, without automatic reset (the dynamics
        are deterministic; `key` is accepted for the interface and unused).
        **Returns:** `(obs, state, rewards, dones, info)` with `dones` keyed by agent
        and `"__all__"` (JaxMARL's convention)."""
        del key
        obs, new, rewards, done, info = self.step_arrays(state, self.from_dict(actions))
        dones = {a: done for a in self.agents} | {"__all__": done}
        return self.to_dict(obs), new, self.to_dict(rewards), dones, info
