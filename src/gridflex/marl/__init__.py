"""gridflex for multi-agent RL libraries: the environment step by step, as pure JAX
functions (`MultiAgentGrid`, JaxMARL's convention) and as a PettingZoo
`ParallelEnv` (`parallel_env`; needs the `marl` extra: `pip install
"gridflex[marl]"`)."""

from typing import Any, TYPE_CHECKING

from ._functional import GridState as GridState, MultiAgentGrid as MultiAgentGrid


if TYPE_CHECKING:
    from ._parallel import (
        GridParallelEnv as GridParallelEnv,
        parallel_env as parallel_env,
    )


__all__ = ["GridParallelEnv", "GridState", "MultiAgentGrid", "parallel_env"]


def __getattr__(name: str) -> Any:
    # The PettingZoo classes load PettingZoo, an optional dependency: only on use.
    if name in ("GridParallelEnv", "parallel_env"):
        from . import _parallel

        return getattr(_parallel, name)
    raise AttributeError(f"module 'gridflex.marl' has no attribute {name!r}")
