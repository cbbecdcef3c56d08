"""The environment as a PettingZoo `ParallelEnv`, for the MARL code built on it.

A thin stateful shell over `MultiAgentGrid`: two jitted functions (reset, step),
NumPy in and out, spaces built once. The duals are arrays passed to the jitted step,
so setting `lambdas` between episodes recompiles nothing.
"""

from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np


try:
    from gymnasium import spaces
    from pettingzoo import ParallelEnv
except ImportError as e:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "gridflex.marl.parallel_env needs PettingZoo: pip install 'gridflex[marl]'."
    ) from e

from .._misc import default_float
from ..env import Environment, make_environment, OBS_NAMES
from ..feeders import DEFAULT_FEEDER
from ._functional import GridState, MultiAgentGrid


# Module-level, so that every environment of the same shape (feeder, homes, devices)
# shares one compilation: the grid is an argument, its arrays traced, not baked in.
@eqx.filter_jit
def _reset(grid: MultiAgentGrid, key, day):
    return grid.reset_arrays(key, day)


@eqx.filter_jit
def _step(grid: MultiAgentGrid, state: GridState, actions):
    return grid.step_arrays(state, actions)


class GridParallelEnv(ParallelEnv):
    """Homes on a feeder as a PettingZoo `ParallelEnv`: one episode is one day; every
    home acts at every step; the day ends by truncation (a time limit) after
    `n_steps` steps, never by termination.

    - Observation of an agent: its 8 local numbers (`gridflex.env.OBS_NAMES`),
        float32, a `Box` unbounded because net demand and prices scale to about, not
        strictly, [0, 1].
    - Action: `Box(-1, 1, (1,))`, the device's command range (a raw action beyond it
        is clipped and counted as a violation, as in training).
    - Reward: minus the agent's share of the Lagrangian at `lambdas` (see
        `MultiAgentGrid`); summed over agents and the day, minus the Lagrangian.
    - `infos[agent]`: the agent's `cost` and device power `p_kw`, and the feeder's
        `voltage_violation_pu`, `v_min_pu`, `v_max_pu` and `ok` (power flow
        converged).
    - `state()`: the global state for centralised critics: every node's voltage
        magnitude (pu) after the last step, then time of day, import and export
        price and outdoor temperature (scaled as in the observations).

    `reset(seed, options)`: `options` may hold `"day"` (an index into the split's
    days; default drawn at random) and `"lambdas"` (duals by channel, kept for the
    following episodes too; also settable as the `lambdas` attribute).
    """

    metadata = {"name": "gridflex_v0", "render_modes": [], "is_parallelizable": True}

    def __init__(self, grid: MultiAgentGrid):
        self.grid = grid
        self.possible_agents = list(grid.agents)
        self.agents: list[str] = []
        self._index = {a: i for i, a in enumerate(self.possible_agents)}
        self._key = jax.random.key(0)
        self._state: GridState | None = None
        obs_space = spaces.Box(-np.inf, np.inf, (len(OBS_NAMES),), np.float32)
        act_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        # One object per agent, the same on every call (PettingZoo's API test).
        self._obs_spaces = {a: obs_space for a in self.possible_agents}
        self._act_spaces = {a: act_space for a in self.possible_agents}

    @property
    def lambdas(self) -> dict[str, float]:
        return {c: float(v) for c, v in self.grid.lambdas.items()}

    @lambdas.setter
    def lambdas(self, value: Mapping[str, Any]) -> None:
        self.grid = self.grid.with_lambdas(value)

    @property
    def environment(self) -> Environment:
        return self.grid.env

    def observation_space(self, agent: str) -> spaces.Box:
        return self._obs_spaces[agent]

    def action_space(self, agent: str) -> spaces.Box:
        return self._act_spaces[agent]

    def reset(
        self, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict]]:
        if seed is not None:
            self._key = jax.random.key(seed)
        options = options or {}
        if "lambdas" in options:
            self.lambdas = options["lambdas"]
        self._key, key = jax.random.split(self._key)
        day = options.get("day")
        if day is not None:
            n_days = self.grid.n_days
            if not 0 <= int(day) < n_days:
                raise ValueError(
                    f"reset(options={{'day': {day}}}): day must be in [0, {n_days}) "
                    f"({self.grid.split} days)."
                )
            day = jnp.asarray(int(day), jnp.int32)
        else:
            day = jax.random.randint(key, (), 0, self.grid.n_days)
        obs, self._state = _reset(self.grid, key, day)
        self.agents = list(self.possible_agents)
        return self._obs(obs), {a: {} for a in self.agents}

    def step(self, actions: Mapping[str, Any]):
        if self._state is None or not self.agents:
            raise RuntimeError("step() before reset(), or after the day ended.")
        self.grid.check_every_agent_acts(actions)
        # NumPy, not MultiAgentGrid.from_dict: one host array instead of one JAX
        # operation per agent, outside jit, at every step.
        a = np.zeros(len(self.possible_agents), np.float64)
        for agent, value in actions.items():
            a[self._index[agent]] = np.reshape(np.asarray(value, np.float64), ())
        obs, self._state, rewards, done, info = _step(
            self.grid, self._state, jnp.asarray(a, default_float())
        )
        info = jax.device_get(info)
        rewards = np.asarray(rewards)
        shared = {
            k: (bool(v) if k == "ok" else float(v))
            for k, v in info.items()
            if np.ndim(v) == 0
        }
        infos = {
            agent: {"cost": float(info["cost"][i]), "p_kw": float(info["p_kw"][i])}
            | shared
            for agent, i in self._index.items()
        }
        over = bool(done)
        observations = self._obs(obs)
        out = (
            observations,
            {a: float(rewards[i]) for a, i in self._index.items()},
            {a: False for a in self.agents},
            {a: over for a in self.agents},
            infos,
        )
        if over:
            self.agents = []
        return out

    def state(self) -> np.ndarray:
        if self._state is None:
            raise RuntimeError("state() before reset().")
        return np.asarray(_global_state(self.grid, self._state), np.float32)

    def close(self) -> None:
        self._state = None

    def _obs(self, obs) -> dict[str, np.ndarray]:
        obs = np.asarray(obs, np.float32)
        return {a: obs[i] for a, i in self._index.items()}


_EXOGENOUS = ("time_of_day", "price_import", "price_export", "temperature")


@eqx.filter_jit
def _global_state(grid: MultiAgentGrid, state: GridState):
    env = grid.env
    base = jnp.asarray(env.feeder.base_v)
    v_pu = jnp.abs(state.day_state.v) / base
    obs = grid.observe(state)
    # The features the same for every agent, from any one agent's observation.
    exogenous = obs[0, jnp.asarray([OBS_NAMES.index(n) for n in _EXOGENOUS])]
    return jnp.concatenate([v_pu.astype(obs.dtype), exogenous])


def parallel_env(
    feeder: str = DEFAULT_FEEDER,
    agents: int = 10,
    seed: int = 0,
    *,
    taps: str = "homes",
    lambdas: Mapping[str, Any] | None = None,
    split: str = "train",
    randomise_initial: bool = True,
    **env_options: Any,
) -> GridParallelEnv:
    """A PettingZoo `ParallelEnv` of `agents` homes on a built-in feeder.

    **Arguments:**

    - `feeder`: a built-in feeder name (`ieee13`, `ieee123`, `european_lv`,
        `european_lv_reduced`).
    - `agents`: the number of homes; `seed`: placement, devices and data (as
        `gridflex.env.make_environment`).
    - `taps`: the regulators' taps (`"homes"`, as `gridflex train` uses).
    - `lambdas`: duals by channel weighing the rewards (default zero: cost only).
    - `split`: `"train"` or `"test"` days; `randomise_initial`: randomised
        start-of-day device states.
    - `env_options`: passed on to `make_environment` (e.g. `config`, `solver`).

    **Returns:** a `GridParallelEnv`.
    """
    from .. import feeders

    if feeder not in feeders.BUILTIN_FEEDERS:
        raise ValueError(
            f"feeder {feeder!r}: give one of {', '.join(feeders.BUILTIN_FEEDERS)}, "
            "or build an Environment from your own with make_environment and wrap "
            "it: GridParallelEnv(MultiAgentGrid(env))."
        )
    env = make_environment(
        getattr(feeders, feeder)(taps=taps), agents, seed=seed, **env_options
    )
    grid = MultiAgentGrid(
        env, lambdas, split=split, randomise_initial=randomise_initial
    )
    return GridParallelEnv(grid)
