"""gridflex for multi-agent RL libraries: the environment step by step, as pure JAX
functions (`MultiAgentGrid`, JaxMARL's convention), as a PettingZoo `ParallelEnv`
(`parallel_env`; needs the `marl` extra: `pip install "gridflex[marl]"`) and as a
JaxMARL `MultiAgentEnv` (`jaxmarl_env`; the `jaxmarl` extra)."""

from typing import Any, TYPE_CHECKING

from ._functional import GridState as GridState, MultiAgentGrid as MultiAgentGrid


if TYPE_CHECKING:
    from ._jaxmarl import GridJaxMARLEnv as GridJaxMARLEnv, jaxmarl_env as jaxmarl_env
    from ._parallel import (
        GridParallelEnv as GridParallelEnv,
        parallel_env as parallel_env,
    )


__all__ = [
    "GridJaxMARLEnv",
    "GridParallelEnv",
    "GridState",
    "jaxmarl_env",
    "MultiAgentGrid",
    "parallel_env",
]


def __getattr__(name: str) -> Any:
    # The PettingZoo and JaxMARL classes load optional dependencies: only on use.
    if name in ("GridParallelEnv", "parallel_env"):
        from . import _parallel

        return getattr(_parallel, name)
    if name in ("GridJaxMARLEnv", "jaxmarl_env"):
        from . import _jaxmarl

        return getattr(_jaxmarl, name)
    raise AttributeError(f"module 'gridflex.marl' has no attribute {name!r}")
