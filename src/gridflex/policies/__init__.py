"""Decentralised stochastic policies: one independent Gaussian MLP per agent, with
stacked (never shared) parameters, and the Gaussian helpers the trainers use."""

from ._base import AbstractPolicy as AbstractPolicy
from ._distributions import (
    gaussian_entropy as gaussian_entropy,
    gaussian_kl as gaussian_kl,
    gaussian_log_prob as gaussian_log_prob,
    sample_actions as sample_actions,
)
from ._mlp import (
    ACTIVATIONS as ACTIVATIONS,
    Dense as Dense,
    GaussianMLP as GaussianMLP,
    GaussianMLPPolicy as GaussianMLPPolicy,
    PolicyConfig as PolicyConfig,
)


__all__ = [
    "AbstractPolicy",
    "ACTIVATIONS",
    "Dense",
    "gaussian_entropy",
    "gaussian_kl",
    "gaussian_log_prob",
    "GaussianMLP",
    "GaussianMLPPolicy",
    "PolicyConfig",
    "sample_actions",
]
