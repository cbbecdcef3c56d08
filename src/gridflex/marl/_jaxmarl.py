"""The environment as a JaxMARL `MultiAgentEnv`, for JaxMARL's algorithms and
wrappers (needs `jaxmarl`: `pip install "gridflex[jaxmarl]"`).

A subclass in JaxMARL's own manner: `reset` and `step` jitted with the environment
static, `step` resetting by itself at the day's end (JaxMARL's base class does that
around `step_env`). Everything it computes is `MultiAgentGrid`'s.
"""

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp


try:
    from jaxmarl.environments.multi_agent_env import MultiAgentEnv
    from jaxmarl.environments.spaces import Box
except ImportError as e:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "gridflex.marl.jaxmarl_env needs JaxMARL: pip install 'gridflex[jaxmarl]'."
    ) from e

from ..env import OBS_NAMES
from ._functional import MultiAgentGrid


class GridJaxMARLEnv(MultiAgentEnv):
    """`MultiAgentGrid` as a JaxMARL `MultiAgentEnv`: agents `home_0` ...,
    observations `Box(-inf, inf, (8,))`, actions `Box(-1, 1, (1,))`, rewards and
    infos as `MultiAgentGrid.step`; `step` resets automatically when
    `dones["__all__"]`."""

    def __init__(self, grid: MultiAgentGrid):
        super().__init__(num_agents=grid.num_agents)
        self.grid = grid
        self.agents = list(grid.agents)
        obs = Box(-jnp.inf, jnp.inf, (len(OBS_NAMES),))
        act = Box(-1.0, 1.0, (1,))
        self.observation_spaces = {a: obs for a in self.agents}
        self.action_spaces = {a: act for a in self.agents}

    @partial(jax.jit, static_argnums=(0,))
    def reset(self, key):
        return self.grid.reset(key)

    # JaxMARL types its states as its own `State`; ours are `GridState`s.
    def step_env(self, key, state: Any, actions):  # pyright: ignore[reportIncompatibleMethodOverride]
        return self.grid.step(key, state, actions)

    def get_obs(self, state: Any):
        return self.grid.to_dict(self.grid.observe(state))

    @property
    def agent_classes(self) -> dict:
        return {"home": list(self.agents)}


def jaxmarl_env(grid: MultiAgentGrid) -> GridJaxMARLEnv:
    """`grid` as a JaxMARL `MultiAgentEnv` (see `GridJaxMARLEnv`)."""
    return GridJaxMARLEnv(grid)
