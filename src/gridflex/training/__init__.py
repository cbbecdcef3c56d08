"""Primal–dual training of decentralised policies: GradMA, GradMAP and GradMA-RPO
through the environment's gradient, IPPO and MAPPO from per-agent rewards."""

from ._base import (
    AbstractTrainer as AbstractTrainer,
    apply_updates as apply_updates,
    batch_gradient as batch_gradient,
    dual_update as dual_update,
    EnvGradient as EnvGradient,
    environment_gradient as environment_gradient,
    init_state as init_state,
    next_state as next_state,
    objective_gradient as objective_gradient,
    policy_outputs as policy_outputs,
    rollout_metrics as rollout_metrics,
    sample_days as sample_days,
    TrainState as TrainState,
)
from ._config import (
    default_config as default_config,
    environment_from_config as environment_from_config,
    trainer_from_config as trainer_from_config,
    TRAINERS as TRAINERS,
)
from ._loop import fit as fit, FitResult as FitResult, mesh_for as mesh_for
from ._output_space import (
    gauss_newton as gauss_newton,
    output_space_sgd as output_space_sgd,
)
from ._ppo import (
    AbstractCritic as AbstractCritic,
    CentralCritic as CentralCritic,
    clipped_surrogate as clipped_surrogate,
    gae as gae,
    IPPO as IPPO,
    LocalCritic as LocalCritic,
    MAPPO as MAPPO,
    MAPPO_CRITICS as MAPPO_CRITICS,
    PerAgentCentralCritic as PerAgentCentralCritic,
    PPOConfig as PPOConfig,
    PPOState as PPOState,
    Transitions as Transitions,
    transitions as transitions,
)
from ._trainers import (
    GradMA as GradMA,
    GradMAP as GradMAP,
    GradMAPState as GradMAPState,
    GradMARPO as GradMARPO,
)


__all__ = [
    "AbstractCritic",
    "AbstractTrainer",
    "apply_updates",
    "batch_gradient",
    "CentralCritic",
    "clipped_surrogate",
    "default_config",
    "dual_update",
    "EnvGradient",
    "environment_from_config",
    "environment_gradient",
    "fit",
    "FitResult",
    "gae",
    "gauss_newton",
    "GradMA",
    "GradMAP",
    "GradMAPState",
    "GradMARPO",
    "init_state",
    "IPPO",
    "LocalCritic",
    "MAPPO",
    "MAPPO_CRITICS",
    "mesh_for",
    "next_state",
    "objective_gradient",
    "output_space_sgd",
    "PerAgentCentralCritic",
    "policy_outputs",
    "PPOConfig",
    "PPOState",
    "rollout_metrics",
    "sample_days",
    "trainer_from_config",
    "TRAINERS",
    "TrainState",
    "Transitions",
    "transitions",
]
