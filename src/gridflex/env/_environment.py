"""One differentiable day of a population of homes on a feeder.

Per 15-minute step and episode: observe -> act -> devices -> meters -> power flow ->
costs and violation channels, inside `lax.scan` over the day and `vmap` over episodes.
Every agent's action reaches the Lagrangian through its device and, through the
implicit adjoint of the three-phase power flow, through every node's voltage.

Memory: the scan body is rematerialised (`jax.checkpoint`) so the backward pass keeps
only the per-step carry, and episodes are processed in chunks (`episode_chunk`), each
rematerialised too, so memory grows with the chunk, not the batch.
"""

import abc
from collections.abc import Callable, Mapping, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
import optimistix as optx
from jaxtyping import (
    Array,
    ArrayLike,
    Bool,
    Complex,
    Float,
    Int,
    PRNGKeyArray,
    PyTree,
)

from .._misc import default_float
from ..data import (
    default_scenarios,
    Scenarios,
    ScenarioStats,
    STEP_MINUTES,
    STEPS_PER_DAY,
)
from ..devices import DeviceInputs, Population, sample_population
from ..feeders import Feeder
from ..powerflow import AbstractPowerFlowSolver, power_flow, RESULTS, ZBus
from ._placement import place_homes, Placement
from ._sharding import shard_episodes


VOLTAGE = "voltage"
"""The voltage channel's name: the key of its dual in `lambdas`, of its level in
`Rollout.channels` and in the metrics (`lambda_voltage`)."""
OBS_VOLTAGE_PU = (0.9, 0.2)
"""The local-voltage observation is `(v - 0.9) / 0.2`: 0 at 0.9 pu, 1 at 1.1 pu."""
OBS_DIM = 8
OBS_NAMES = (
    "time_of_day",
    "device_state",
    "net_demand",
    "price_import",
    "price_export",
    "temperature",
    "urgency",
    "voltage",
)
"""The names of an agent's observation entries, in order: what each home's policy
sees (and, for a deployed controller, must measure). All are local to the home."""


class EnvConfig(eqx.Module):
    """Settings of the environment.

    - `v_min_pu`, `v_max_pu`: voltage limits.
    - `n_steps`, `dt_h`: steps per day and their length (96 x 0.25 h).
    - `load_pf`: power factor of the homes' uncontrollable load (lagging); devices and
        PV run at unity power factor.
    - `cost_weight`: rho, the weight of the normalised cost in the Lagrangian.
    - `voltage_constraint`: `False` switches the voltage channel off (the paper's
        unconstrained contrast): it is still measured and reported, but carries no
        weight in the Lagrangian.
    - `episode_chunk`: episodes simulated at once; larger batches are processed in
        chunks of this size (memory grows with the chunk, not the batch). `None`: all.
    - `peak_quantile`: a home's peak demand, for placement, is this quantile of its
        load over the training days.
    - `voltage_scale_pu`: the voltage channel's unit: the channel is the day's mean,
        over steps, of the largest limit violation at any node, divided by this
        (default 0.01 pu, a tenth of the allowed band; see `Environment`).
    """

    v_min_pu: float = 0.95
    v_max_pu: float = 1.05
    n_steps: int = STEPS_PER_DAY
    dt_h: float = STEP_MINUTES / 60
    load_pf: float = 0.95
    cost_weight: float = 1.0
    voltage_constraint: bool = True
    episode_chunk: int | None = None
    peak_quantile: float = 0.99
    voltage_scale_pu: float = 0.01

    def __check_init__(self):
        if not 0 < self.v_min_pu < self.v_max_pu:
            raise ValueError(
                f"Voltage limits [{self.v_min_pu}, {self.v_max_pu}] pu must satisfy "
                "0 < v_min_pu < v_max_pu."
            )
        if not 0 < self.load_pf <= 1:
            raise ValueError(f"load_pf = {self.load_pf} must be in (0, 1].")
        if self.n_steps < 1 or not self.dt_h > 0:
            raise ValueError("n_steps must be >= 1 and dt_h > 0.")
        if not self.voltage_scale_pu > 0:
            raise ValueError(f"voltage_scale_pu = {self.voltage_scale_pu} must be > 0.")
        if self.episode_chunk is not None and self.episode_chunk < 1:
            raise ValueError(f"episode_chunk = {self.episode_chunk} must be >= 1.")

    def voltage_violation(self, v_pu: Float[ArrayLike, "*batch node"]) -> Array:
        """The largest violation of the voltage limits over the nodes (pu), per
        leading index: what the voltage channel counts at one step."""
        v = jnp.asarray(v_pu)
        over = jnp.maximum(v - self.v_max_pu, 0) + jnp.maximum(self.v_min_pu - v, 0)
        return jnp.max(over, axis=-1)


# --- controllers -------------------------------------------------------------------


class AbstractController(eqx.Module):
    """Decides every agent's action at one step from its local observation.

    `act` returns the raw action `a` (before clipping to [-1, 1]) and what the
    trainers need to keep: the policy outputs `(mu, sigma)`. Controllers act on one
    episode; the environment vmaps over episodes.
    """

    @abc.abstractmethod
    def act(
        self,
        obs: Float[Array, "agent obs"],
        step: Int[Array, ""],
        key: PRNGKeyArray,
        shift: Float[Array, "agent 2"],
    ) -> tuple[Float[Array, " agent"], Float[Array, "agent 2"]]:
        """**Returns:** `(a, outputs)` with `outputs[:, 0] = mu`, `[:, 1] = sigma`."""


class PolicyController(AbstractController):
    """A stochastic policy: `a = mu + sigma * eps`, `eps ~ N(0, 1)`. `policy` maps the
    observations `[agent, obs]` to `(mu, log_std)` per agent (e.g. a
    `gridflex.policies.GaussianMLPPolicy`); `deterministic` acts with `mu`.

    `shift` (given by the environment, zero unless differentiated) is added to
    `(mu, sigma)`: the gradient of the Lagrangian with respect to it is the gradient
    with respect to the policy outputs, which GradMAP caches and reuses.
    """

    policy: Callable[[Array], tuple[Array, Array]]
    deterministic: bool = eqx.field(static=True, default=False)

    def act(self, obs, step, key, shift):
        mu, log_std = self.policy(obs)
        mu = mu + shift[:, 0]
        sigma = jnp.exp(log_std) + shift[:, 1]
        if self.deterministic:
            a = mu
        else:
            a = mu + sigma * jax.random.normal(key, mu.shape, mu.dtype)
        return a, jnp.stack([mu, sigma], axis=-1)


class OpenLoopController(AbstractController):
    """Actions given in advance, `[step, agent]` (raw, clipped by the environment)."""

    actions: Float[Array, "step agent"]

    def act(self, obs, step, key, shift):
        a = self.actions[step] + shift[:, 0]
        return a, jnp.stack([a, jnp.zeros_like(a)], axis=-1)


class NaiveController(AbstractController):
    """The naive baseline: battery idle, heat pump holding its reference temperature,
    generator at full output (each device's `naive_command`)."""

    def act(self, obs, step, key, shift):
        zeros = jnp.zeros(obs.shape[0], obs.dtype)
        return zeros, jnp.stack([zeros, zeros], axis=-1)


# --- results -----------------------------------------------------------------------


class StepTrace(eqx.Module):
    """What one step leaves for analysis and for the trainers (per episode).

    `lagrangian` is each agent's share of the episode's Lagrangian at this step: its
    own normalised cost, its own dual-weighted device violation, the dual-weighted
    network (voltage) violation, which every agent carries whole, and, at the last
    step, its dual-weighted end-of-day violation. Summed over agents and steps it is
    the episode's Lagrangian; minus it is the per-agent reward of the reinforcement
    learners (`gridflex.training.transitions`).
    """

    obs: Float[Array, "agent obs"] | None
    outputs: Float[Array, "agent 2"] | None
    action: Float[Array, " agent"]
    p_kw: Float[Array, " agent"]
    cost: Float[Array, " agent"]
    voltage_violation: Float[Array, ""]
    v_min_pu: Float[Array, ""]
    v_max_pu: Float[Array, ""]
    ok: Bool[Array, ""]
    lagrangian: Float[Array, " agent"]


class EpisodeResult(eqx.Module):
    """One episode (day): totals, channels, final state, and the per-step trace."""

    cost: Float[Array, ""]
    channels: dict[str, Float[Array, ""]]
    lagrangian: Float[Array, ""]
    ok: Bool[Array, ""]
    failed_steps: Int[Array, ""]
    non_finite_actions: Int[Array, ""]
    final_state: PyTree
    trace: StepTrace | None


class Rollout(eqx.Module):
    """A batch of episodes.

    - `lagrangian`: mean of the episodes' Lagrangians over the episodes whose power
        flows all converged (failed episodes are masked out and counted, never
        averaged in).
    - `cost`, `channels`: the same means (cost per episode in currency, summed over
        agents; channels per agent, see `Environment`).
    - `episodes`: the per-episode `EpisodeResult`s (leading episode axis).
    - `n_failed`: episodes with at least one failed power flow.
    - `n_non_finite_actions`: NaN or infinite actions over the batch (agent-steps).
        Each acts as u = 0 (the middle of the device's command range) and counts a
        violation of 1.0 (a full range) in that device's channel, so it is never
        free.
    """

    lagrangian: Float[Array, ""]
    cost: Float[Array, ""]
    channels: dict[str, Float[Array, ""]]
    n_failed: Int[Array, ""]
    n_non_finite_actions: Int[Array, ""]
    episodes: EpisodeResult


# --- the environment -----------------------------------------------------------------


class StepInputs(eqx.Module):
    """The exogenous inputs of one step of one episode, or of a day's steps with a
    leading step axis (`Environment.day_inputs`): the step index, every home's
    household load and PV, the outdoor temperature, the import and export prices, and
    the multiplier of the spot loads no home replaced."""

    t: Int[Array, "*step"]
    load_kw: Float[Array, "*step agent"]
    pv_kw: Float[Array, "*step agent"]
    temperature_c: Float[Array, "*step"]
    price_import: Float[Array, "*step"]
    price_export: Float[Array, "*step"]
    kept_scale: Float[Array, "*step"]


class DayState(eqx.Module):
    """What one step hands the next within a day (`Environment.start_of_day`):
    every device's state by kind, the feeder's complex node voltages (the warm
    start of the next power flow), each home's voltage magnitude (observed at the
    next step), and the counts of failed power flows and non-finite actions so far."""

    devices: dict[str, PyTree]
    v: Complex[Array, " node"]
    v_home_pu: Float[Array, " agent"]
    failed_steps: Int[Array, ""]
    non_finite_actions: Int[Array, ""]


class _GroupIndex(eqx.Module):
    """Indexing of one device kind's agents, `x.at[homes]`, telling XLA what holds:
    a kind's homes are unique (a home has one device) and, as groups are built,
    ascending. Its gathers and scatters, and their transposes in the gradient, then
    need no handling of repeated indices: under the rollout's vmap over episodes
    they run about 1.7x faster (100 episodes x 1,000 agents, forward and gradient)."""

    homes: Int[Array, " member"]
    ascending: bool = eqx.field(static=True)

    def take(self, x: Array) -> Array:
        return x.at[self.homes].get(
            indices_are_sorted=self.ascending, unique_indices=True
        )

    def set(self, x: Array, values: Array) -> Array:
        return x.at[self.homes].set(
            values, indices_are_sorted=self.ascending, unique_indices=True
        )

    def add(self, x: Array, values: Array) -> Array:
        return x.at[self.homes].add(
            values, indices_are_sorted=self.ascending, unique_indices=True
        )


def _to_float(tree):
    dtype = default_float()
    return jtu.tree_map(
        lambda x: (
            jnp.asarray(x, dtype=dtype)
            if eqx.is_inexact_array(x) and not jnp.iscomplexobj(x)
            else x
        ),
        tree,
    )


class Environment(eqx.Module):
    """Homes with devices, PV and uncontrollable load, on a feeder, for one day.

    Build one with `make_environment`. Channels: `"voltage"` is, per step, the
    largest limit violation over all nodes, averaged over the day's steps and divided
    by `EnvConfig.voltage_scale_pu` (0.01 pu: a 1 % excursion at every step is one
    unit; in these units the channel is of the size of the cost term per agent, and
    its dual binds within a run's twenty dual steps); each device kind
    adds its per-step channel (the normalised implied-state violation, plus any
    excursion of the raw action beyond [-1, 1] — the command range is a constraint
    too, and the clip would otherwise hide it from the gradient — averaged over the
    steps and over all agents) and its terminal channel (averaged over all agents).
    The Lagrangian of an episode is

        L = N * (rho * c / c_norm + sum_k lambda_k v_k)

    with `c` the mean cost per agent, `c_norm` a cost scale (mean daily energy bill
    of an agent at its load), and `N` the number of agents: per agent, the voltage
    term weighs as much as its own device terms (the voltage channel "scaled up by
    the number of agents", DESIGN §7).
    """

    feeder: Feeder
    placement: Placement
    population: Population
    train: Scenarios
    test: Scenarios
    stats: ScenarioStats
    config: EnvConfig
    solver: AbstractPowerFlowSolver
    adjoint: optx.AbstractAdjoint | None
    cost_norm: float = eqx.field(static=True)
    kept_load_norm_kw: float = eqx.field(static=True)
    channels: tuple[str, ...] = eqx.field(static=True)
    terminal_channels: tuple[str, ...] = eqx.field(static=True)
    group_homes: tuple[tuple[str, tuple[int, ...]], ...] = eqx.field(static=True)

    @property
    def n_agents(self) -> int:
        return self.placement.n_homes

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self.population.groups)

    def homes(self, kind: str) -> Int[Array, " member"]:
        """The agents of one device kind, in the order of its group (static, so it
        works whether or not the environment is traced)."""
        return jnp.asarray(dict(self.group_homes)[kind], dtype=jnp.int32)

    def __check_init__(self):
        # The device groups' gathers and scatters (`_GroupIndex`) declare their
        # indices unique; a repeated home would make them silently wrong
        for kind, homes in self.group_homes:
            if len(set(homes)) != len(homes):
                raise ValueError(
                    f"Environment.group_homes: kind {kind!r} lists a home twice; a "
                    "home has one device. Build the environment with make_environment."
                )

    def _group(self, kind: str) -> "_GroupIndex":
        homes = dict(self.group_homes)[kind]
        ascending = all(a < b for a, b in zip(homes[:-1], homes[1:]))
        return _GroupIndex(self.homes(kind), ascending)

    def kept_load_scale(
        self, days: Int[Array, " episode"], split: str = "train"
    ) -> Float[Array, "episode step"]:
        """The multiplier of the spot loads no home replaced (`placement.kept`) at
        every step of the given days: the mean household load profile of the data
        (the mean over every load profile, that day), divided by its peak over the
        training days (the same quantile as a home's peak, `peak_quantile`). A kept
        spot load, like a home, peaks at its spot value, and follows the day as the
        households do, never a constant peak all day."""
        scenarios = self.train if split == "train" else self.test
        profile = jnp.mean(scenarios.load_profiles_kw[:, jnp.asarray(days)], axis=0)
        return profile / self.kept_load_norm_kw

    def home_injections(
        self,
        p_dev: Float[Array, " agent"],
        load_kw: Float[Array, " agent"],
        pv_kw: Float[Array, " agent"],
    ) -> tuple[Float[Array, " agent"], Float[Array, " node"], Float[Array, " node"]]:
        """One step's homes as the power flow sees them: each home's net demand
        (its device's power plus its household load less its PV, both scaled to the
        spot load it replaces), and the feeder's node powers `p_kw`, `q_kvar` (the
        household load at `config.load_pf`; devices and PV at unity)."""
        dtype = default_float()
        node = jnp.asarray(self.placement.node)
        scale = jnp.asarray(self.placement.scale, dtype=dtype)
        tan_phi = float(np.tan(np.arccos(self.config.load_pf)))
        load = scale * load_kw
        net = p_dev + load - scale * pv_kw
        n_nodes = self.feeder.n_nodes
        p_node = jnp.zeros(n_nodes, dtype).at[node].add(net)
        q_node = jnp.zeros(n_nodes, dtype).at[node].add(load * tan_phi)
        return net, p_node, q_node

    def zero_lambdas(self) -> dict[str, Float[Array, ""]]:
        return {c: jnp.zeros((), default_float()) for c in self.channels}

    # -- states -------------------------------------------------------------------

    def initial_state(self) -> dict[str, PyTree]:
        """Nominal start-of-day device states, one pytree per device kind."""
        return {
            k: eqx.filter_vmap(lambda d: d.initial_state())(dev)
            for k, dev in self.population.groups.items()
        }

    def randomise_state(self, key: PRNGKeyArray, state: dict) -> dict:
        out = {}
        for i, (k, dev) in enumerate(self.population.groups.items()):
            n = len(dict(self.group_homes)[k])
            keys = jax.random.split(jax.random.fold_in(key, i), n)
            out[k] = eqx.filter_vmap(lambda d, kk, s: d.randomise_state(kk, s))(
                dev, keys, state[k]
            )
        return out

    def ratings_kw(self) -> Float[Array, " agent"]:
        """Each agent's device rating (|power at full command|), to normalise power."""
        out = jnp.zeros(self.n_agents, default_float())
        for k, dev in self.population.groups.items():
            rating = eqx.filter_vmap(lambda d: jnp.abs(d.decode(jnp.ones(()))))(dev)
            out = self._group(k).set(out, rating)
        return out

    # -- one step -----------------------------------------------------------------

    def day_inputs(self, day: Int[Array, ""], split: str = "train") -> "StepInputs":
        """The exogenous inputs of every step of one day (leading step axis): what
        `observe` and `transition` take one step of."""
        dtype = default_float()
        scenarios = self.train if split == "train" else self.test
        data = _to_float(scenarios.episode(day[None]))
        return StepInputs(
            t=jnp.arange(self.config.n_steps),
            load_kw=data.load_kw[0],
            pv_kw=data.pv_kw[0],
            temperature_c=data.temperature_c[0],
            price_import=data.price_import[0],
            price_export=data.price_export[0],
            kept_scale=self.kept_load_scale(day[None], split)[0].astype(dtype),
        )

    def start_of_day(self, devices: dict[str, PyTree]) -> "DayState":
        """The state before a day's first step: the devices' start-of-day states
        (e.g. `initial_state()`), the feeder at its no-load voltages, nothing failed."""
        dtype = default_float()
        v0 = jnp.asarray(self.feeder.w)
        base = jnp.asarray(self.feeder.base_v, dtype=dtype)
        node = jnp.asarray(self.placement.node)
        return DayState(
            devices=devices,
            v=v0,
            v_home_pu=(jnp.abs(v0) / base)[node].astype(dtype),
            failed_steps=jnp.array(0),
            non_finite_actions=jnp.array(0),
        )

    def observe(self, state: "DayState", x: "StepInputs") -> Float[Array, "agent obs"]:
        """Every agent's local observation at one step (`OBS_NAMES`, each scaled to
        about [0, 1]): what its policy sees, and nothing of any other home."""
        cfg = self.config
        dtype = default_float()
        n = self.n_agents
        inputs = DeviceInputs(x.t, cfg.n_steps, cfg.dt_h, x.temperature_c)
        obs_state = jnp.zeros(n, dtype)
        urgency = jnp.zeros(n, dtype)
        for k, dev in self.population.groups.items():
            group = self._group(k)
            obs_state = group.set(
                obs_state,
                eqx.filter_vmap(lambda d, s: d.observe(s))(dev, state.devices[k]),
            )
            urgency = group.set(
                urgency,
                eqx.filter_vmap(lambda d, s: d.urgency(s, inputs))(
                    dev, state.devices[k]
                ),
            )
        ones = jnp.ones(n, dtype)
        stats = self.stats
        return jnp.stack(
            [
                ones * (x.t.astype(dtype) / cfg.n_steps),
                obs_state,
                stats.normalise("net_kw", x.load_kw - x.pv_kw).astype(dtype),
                ones * stats.normalise("price_import", x.price_import).astype(dtype),
                ones * stats.normalise("price_export", x.price_export).astype(dtype),
                ones * stats.normalise("temperature_c", x.temperature_c).astype(dtype),
                urgency,
                (state.v_home_pu - OBS_VOLTAGE_PU[0]) / OBS_VOLTAGE_PU[1],
            ],
            axis=-1,
        )

    def transition(
        self,
        state: "DayState",
        action: Float[Array, " agent"],
        x: "StepInputs",
        lambdas: Mapping[str, Float[Array, ""]],
        *,
        naive: bool = False,
    ) -> tuple["DayState", dict[str, Float[Array, ""]], "StepTrace"]:
        """One step of every home and of the feeder, from the agents' raw actions.

        **Arguments:**

        - `state`: the `DayState` before the step.
        - `action`: every agent's raw action `a` (clipped to [-1, 1] and decoded to
            its device's command range here; beyond the range is a violation).
        - `x`: this step's inputs (one step of `day_inputs`).
        - `lambdas`: the duals by channel (every one of `channels`), weighing
            `StepTrace.lagrangian`.
        - `naive`: every device follows its `naive_command` instead (the baseline).

        **Returns:** `(state, channels, trace)`: the state after the step, this
        step's per-step channels (the voltage one in pu, before the day's mean and
        `voltage_scale_pu`), and its `StepTrace` (without `obs` and `outputs`; the
        end-of-day terms are `end_of_day`'s).
        """
        # Long: its docstring documents every argument; the code is 70 lines
        cfg = self.config
        dtype = default_float()
        inputs = DeviceInputs(x.t, cfg.n_steps, cfg.dt_h, x.temperature_c)
        # A NaN or infinite action (a broken policy) is never free and never reaches
        # a device: its home acts as at u = 0 (the middle of its command range; a
        # battery idles), and the step counts a violation of 1.0 (a full range) in
        # that device's channel.
        bad = ~jnp.isfinite(action)
        a = jnp.where(bad, 0.0, action)
        new_devices, p_dev, cost_dev, weighted_dev, viol = self._step_devices(
            state.devices, a, bad, inputs, lambdas, naive
        )
        net, p_node, q_node = self.home_injections(p_dev, x.load_kw, x.pv_kw)
        meter = cfg.dt_h * (
            x.price_import * jnp.maximum(net, 0) - x.price_export * jnp.maximum(-net, 0)
        )
        cost = meter + cost_dev
        feeder = self.feeder
        sol = power_flow(
            feeder,
            p_node,
            q_node,
            load_scale=jnp.full(feeder.loads.n_loads, x.kept_scale, dtype),
            v_init=state.v,
            solver=self.solver,
            adjoint=self.adjoint,
            throw=False,
        )
        ok = (sol.result == RESULTS.successful) & jnp.all(jnp.isfinite(sol.v_pu))
        base = jnp.asarray(feeder.base_v, dtype=dtype)
        v_pu = jnp.where(ok, sol.v_pu, jnp.abs(state.v) / base)
        v_viol = jnp.where(ok, cfg.voltage_violation(v_pu), 0.0)
        # The episode's Lagrangian, N (rho c / c_norm + sum_k lambda_k v_k), split by
        # agent and step: the voltage channel is N times the day's mean of v_viol /
        # voltage_scale_pu, so each agent carries it whole; a device channel is the
        # day's mean of the agents' violations over N.
        share = cfg.cost_weight * cost / self.cost_norm + weighted_dev / cfg.n_steps
        if cfg.voltage_constraint:
            share = share + lambdas[VOLTAGE] * v_viol / (
                cfg.n_steps * cfg.voltage_scale_pu
            )
        trace = StepTrace(
            obs=None,
            outputs=None,
            action=a,
            p_kw=p_dev,
            cost=cost,
            voltage_violation=v_viol,
            v_min_pu=jnp.min(v_pu),
            v_max_pu=jnp.max(v_pu),
            ok=ok,
            lagrangian=share,
        )
        new = DayState(
            devices=new_devices,
            v=jnp.where(ok, sol.v, state.v),
            v_home_pu=v_pu[jnp.asarray(self.placement.node)],
            failed_steps=state.failed_steps + jnp.where(ok, 0, 1),
            non_finite_actions=state.non_finite_actions + jnp.sum(bad),
        )
        return new, {VOLTAGE: v_viol, **viol}, trace

    def _step_devices(self, devices, a, bad, inputs, lambdas, naive):
        """Every device group's step from the agents' finite actions `a` (`bad`:
        those that were not finite): the new states, each home's power, cost and
        dual-weighted violation, and each device channel's mean violation."""
        n = self.n_agents
        dtype = default_float()
        u = jnp.clip(a, -1.0, 1.0)
        p_dev = jnp.zeros(n, dtype)
        cost_dev = jnp.zeros(n, dtype)
        weighted_dev = jnp.zeros(n, dtype)
        viol = {}
        new_devices = {}
        for k, dev in self.population.groups.items():
            group = self._group(k)
            if naive:
                cmd = eqx.filter_vmap(lambda d, s: d.naive_command(s, inputs))(
                    dev, devices[k]
                )
            else:
                cmd = eqx.filter_vmap(lambda d, c: d.decode(c))(dev, group.take(u))
            out = eqx.filter_vmap(lambda d, s, c: d.step(s, c, inputs))(
                dev, devices[k], cmd
            )
            new_devices[k] = out.state
            p_dev = group.set(p_dev, out.p_kw)
            cost_dev = group.set(cost_dev, out.cost)
            channel = type(dev).step_channel
            beyond = jnp.maximum(jnp.abs(group.take(a)) - 1.0, 0.0)
            if naive:
                beyond = jnp.zeros_like(beyond)
            beyond = jnp.where(group.take(bad), 1.0, beyond)
            viol[channel] = viol.get(channel, 0.0) + jnp.sum(out.violation + beyond) / n
            weighted_dev = group.set(
                weighted_dev, lambdas[channel] * (out.violation + beyond)
            )
        return new_devices, p_dev, cost_dev, weighted_dev, viol

    def end_of_day(
        self, state: "DayState", lambdas: Mapping[str, Float[Array, ""]]
    ) -> tuple[dict[str, Float[Array, ""]], Float[Array, " agent"]]:
        """The terminal channels of a day's end state (each the mean over all agents
        of its device kind's end-of-day violation) and every agent's dual-weighted
        share of them, which `StepTrace.lagrangian` adds at the last step."""
        dtype = default_float()
        n = self.n_agents
        channels = {}
        share = jnp.zeros(n, dtype)
        for k, dev in self.population.groups.items():
            channel = type(dev).terminal_channel
            if channel is not None:
                term = eqx.filter_vmap(lambda d, s: d.terminal_violation(s))(
                    dev, state.devices[k]
                )
                channels[channel] = channels.get(channel, 0.0) + jnp.sum(term) / n
                share = self._group(k).add(share, lambdas[channel] * term)
        return channels, share

    # -- one day ------------------------------------------------------------------

    def _episode(
        self,
        controller: AbstractController,
        lambdas: Mapping[str, Float[Array, ""]],
        key: PRNGKeyArray,
        day: Int[Array, ""],
        state0: dict,
        shift: Float[Array, "step agent 2"],
        record: bool,
        split: str,
    ) -> EpisodeResult:
        cfg = self.config
        dtype = default_float()
        n = self.n_agents
        naive = isinstance(controller, NaiveController)

        def step_fn(carry, xs):
            x, shift_t, key_t = xs
            obs = self.observe(carry, x)
            a, outputs = controller.act(obs, x.t, key_t, shift_t)
            carry, channels, trace = self.transition(carry, a, x, lambdas, naive=naive)
            trace = eqx.tree_at(
                lambda tr: (tr.obs, tr.outputs),
                trace,
                (obs, outputs),
                is_leaf=lambda leaf: leaf is None,
            )
            return carry, (channels, trace)

        xs = (self.day_inputs(day, split), shift, jax.random.split(key, cfg.n_steps))
        end, (per_step, trace) = jax.lax.scan(
            jax.checkpoint(step_fn), self.start_of_day(state0), xs
        )
        # Per-step channels are means over the day, each in its own unit: a device's
        # range for the devices, `voltage_scale_pu` for the voltage.
        channels = {c: jnp.mean(v) for c, v in per_step.items()}
        channels[VOLTAGE] = channels[VOLTAGE] / cfg.voltage_scale_pu
        terminal, share_end = self.end_of_day(end, lambdas)
        channels.update(terminal)
        trace = eqx.tree_at(
            lambda tr: tr.lagrangian,
            trace,
            trace.lagrangian.at[-1].add(share_end),
        )
        channels = {c: jnp.asarray(channels.get(c, 0.0), dtype) for c in self.channels}
        cost = jnp.sum(trace.cost)
        ok = end.failed_steps == 0
        weighted = sum(
            (
                lambdas[c] * channels[c]
                for c in self.channels
                if c != VOLTAGE or cfg.voltage_constraint
            ),
            jnp.zeros((), dtype),
        )
        lagrangian = cfg.cost_weight * cost / self.cost_norm + n * weighted
        lagrangian = jnp.where(ok, lagrangian, 0.0)
        return EpisodeResult(
            cost=cost,
            channels=channels,
            lagrangian=lagrangian,
            ok=ok,
            failed_steps=end.failed_steps,
            non_finite_actions=end.non_finite_actions,
            final_state=end.devices,
            trace=trace if record else None,
        )

    # -- batches ------------------------------------------------------------------

    def rollout(
        self,
        controller: AbstractController,
        lambdas: Mapping[str, Float[Array, ""]],
        key: PRNGKeyArray,
        days: Int[Array, " episode"],
        *,
        split: str = "train",
        initial_state: dict | None = None,
        randomise_initial: bool = True,
        shift: Float[Array, "episode step agent 2"] | None = None,
        record: bool = False,
    ) -> Rollout:
        """Simulate a batch of days.

        **Arguments:**

        - `controller`: who acts (`PolicyController`, `OpenLoopController`,
            `NaiveController`, or your own).
        - `lambdas`: dual variables by channel name (`env.channels`).
        - `key`: PRNG key (initial states and exploration noise).
        - `days`: day indices into the split's days.
        - `split`: `"train"` or `"test"` (the held-out days).
        - `initial_state`: start-of-day states with a leading episode axis (default:
            nominal, randomised within bounds when `randomise_initial`).
        - `shift`: added to the policy outputs `(mu, sigma)`; differentiate the
            Lagrangian w.r.t. it at zero to get the gradient w.r.t. the outputs.
        - `record`: keep the per-step trace (observations, outputs, actions, power,
            cost, voltage envelope) of every episode.

        **Returns:** a `Rollout`.
        """
        # Long: its docstring documents every argument; the code is 74 lines
        if split not in ("train", "test"):
            raise ValueError(f"split={split!r}: use 'train' or 'test'.")
        dtype = default_float()
        days = jnp.asarray(days)
        e = days.shape[0]
        k_init, k_eps = jax.random.split(key)
        if initial_state is None:
            nominal = self.initial_state()
            keys = jax.random.split(k_init, e)
            if randomise_initial:
                initial_state = jax.vmap(lambda kk: self.randomise_state(kk, nominal))(
                    keys
                )
            else:
                initial_state = jtu.tree_map(
                    lambda x: jnp.broadcast_to(x, (e,) + x.shape), nominal
                )
        if shift is None:
            shift = jnp.zeros((e, self.config.n_steps, self.n_agents, 2), dtype)
        keys = jax.random.split(k_eps, e)
        lambdas = {c: jnp.asarray(lambdas.get(c, 0.0), dtype) for c in self.channels}

        def chunk_fn(args):
            kk, dd, ss, sh = args
            return jax.vmap(
                lambda a, b, c, d: self._episode(
                    controller, lambdas, a, b, c, d, record, split
                )
            )(kk, dd, ss, sh)

        chunk = self.config.episode_chunk or e
        if e % chunk:
            raise ValueError(
                f"{e} episodes do not split into chunks of {chunk}; use a batch that "
                "is a multiple of EnvConfig.episode_chunk."
            )
        args = (keys, days, initial_state, shift)
        if chunk == e:
            episodes = chunk_fn(shard_episodes(args))
        else:
            chunks = jtu.tree_map(
                lambda x: x.reshape((e // chunk, chunk) + x.shape[1:]), args
            )
            chunks = shard_episodes(chunks, axis=1)
            out = jax.lax.map(jax.checkpoint(chunk_fn), chunks)
            episodes = jtu.tree_map(lambda x: x.reshape((e,) + x.shape[2:]), out)
        ok = episodes.ok
        n_ok = jnp.sum(ok)
        denom = jnp.maximum(n_ok, 1).astype(dtype)

        def mean(x):
            return jnp.sum(jnp.where(ok, x, 0.0)) / denom

        return Rollout(
            lagrangian=jnp.sum(episodes.lagrangian) / denom,
            cost=mean(episodes.cost),
            channels={c: mean(v) for c, v in episodes.channels.items()},
            n_failed=e - n_ok,
            n_non_finite_actions=jnp.sum(episodes.non_finite_actions),
            episodes=episodes,
        )


def _peak_kw(train: Scenarios, quantile: float) -> np.ndarray:
    """Each home's peak load over the training days (a quantile of its profile)."""
    load = np.asarray(train.load_profiles_kw, dtype=np.float64)
    per_profile = np.quantile(load.reshape(load.shape[0], -1), quantile, axis=1)
    profile = np.asarray(train.load_profile)
    peak = per_profile[profile] * np.asarray(train.load_scale, dtype=np.float64)
    return np.maximum(peak, 1e-3)


def _cost_norm(population_scale: np.ndarray, train: Scenarios, dt_h: float) -> float:
    """Mean daily energy bill of one agent at its uncontrollable load: the cost scale
    that makes `cost / cost_norm` about the number of agents, whatever the feeder."""
    load = np.asarray(train.load_profiles_kw, dtype=np.float64)
    per_profile_kwh = load.sum(axis=2).mean(axis=1) * dt_h
    profile = np.asarray(train.load_profile)
    home_kwh = per_profile_kwh[profile] * np.asarray(train.load_scale, dtype=np.float64)
    price = float(np.mean(np.asarray(train.price_import, dtype=np.float64)))
    return float(np.mean(home_kwh * population_scale) * price)


def make_environment(
    feeder: Feeder,
    n_agents: int,
    *,
    seed: int = 0,
    scenarios: Scenarios | None = None,
    population: Population | None = None,
    mix: Mapping[str, float] | None = None,
    config: EnvConfig = EnvConfig(),
    solver: AbstractPowerFlowSolver = ZBus(),
    adjoint: optx.AbstractAdjoint | None = None,
    train_months: int | None = None,
    test_months: int = 1,
) -> Environment:
    """Place `n_agents` homes on `feeder`, give each a device and real exogenous data.

    **Arguments:**

    - `feeder`: a feeder with spot loads (the homes replace them; see `place_homes`).
    - `n_agents`: number of homes (agents).
    - `seed`: seeds placement, devices and the homes' data assignment.
    - `scenarios`: exogenous data (default: the shipped 2013 dataset); the homes get
        seeded profiles with `Scenarios.for_homes` unless it already has `n_agents`.
    - `population`: devices (default: `sample_population` with `mix`, a third each
        of batteries, heat pumps and generators). They are scaled by the placement's
        `scale` (an agent standing for several homes).
    - `config`: `EnvConfig`.
    - `solver`, `adjoint`: the power flow's solver and adjoint (see `power_flow`).
    - `train_months`, `test_months`: the split by date (default: every complete month
        but the last `test_months` for training).

    **Returns:** an `Environment`.
    """
    # Long: its docstring documents every argument; the code is 62 lines
    if scenarios is None:
        scenarios = default_scenarios(n_agents, seed=seed)
    elif scenarios.n_homes != n_agents:
        scenarios = scenarios.for_homes(seed, n_agents)
    train, test = scenarios.split(train_months, test_months)
    placement = place_homes(
        feeder, n_agents, seed=seed, home_peak_kw=_peak_kw(train, config.peak_quantile)
    )
    if population is None:
        population = sample_population(jax.random.key(seed), n_agents, mix)
    if population.n_homes != n_agents:
        raise ValueError(
            f"The population has {population.n_homes} homes; the environment has "
            f"{n_agents} agents."
        )
    population = population.scaled(placement.scale)
    mean_profile = np.asarray(train.load_profiles_kw, dtype=np.float64).mean(axis=0)
    channels = [VOLTAGE]
    for dev in population.groups.values():
        for c in (type(dev).step_channel, type(dev).terminal_channel):
            if c is not None and c not in channels:
                channels.append(c)
    return Environment(
        feeder=placement.feeder,
        placement=placement,
        population=_to_float(population),
        train=_to_float(train),
        test=_to_float(test),
        stats=_to_float(train.stats()),
        config=config,
        solver=solver,
        adjoint=adjoint,
        cost_norm=_cost_norm(placement.scale, train, config.dt_h),
        kept_load_norm_kw=float(np.quantile(mean_profile, config.peak_quantile)),
        channels=tuple(channels),
        terminal_channels=tuple(
            sorted(
                {
                    c
                    for dev in population.groups.values()
                    if (c := type(dev).terminal_channel) is not None
                }
            )
        ),
        group_homes=tuple(
            (k, tuple(int(i) for i in population.homes(k))) for k in population.groups
        ),
    )


def channel_names(env: Environment) -> Sequence[str]:
    return env.channels
