"""The policy interface: every agent maps its own observation to a Gaussian.

A multi-agent policy here is many independent policies stored as one pytree whose
array leaves carry a leading agent axis (DESIGN §7, STYLE rule 6). No parameter is
shared between agents, so an agent's output depends on its own observation row and
its own slice of the parameters only: that is what lets each home run its policy
locally after centralised training.
"""

import abc

import equinox as eqx
import jax
from jaxtyping import Array, Float


class AbstractPolicy(eqx.Module):
    """Base class of decentralised stochastic policies.

    A policy holds `n_agents` independent policies and maps the stacked local
    observations of all agents to the mean and log standard deviation of each agent's
    Gaussian over its normalised action (the action is then clipped to [-1, 1] and
    decoded by the agent's device). Trainers sample actions with
    `gridflex.policies.sample_actions`, which re-parameterises so that gradients reach
    `(mu, log_std)`.
    """

    n_agents: eqx.AbstractVar[int]
    """Number of agents (static)."""

    @abc.abstractmethod
    def __call__(
        self, obs: Float[Array, "agent obs"]
    ) -> tuple[Float[Array, " agent"], Float[Array, " agent"]]:
        """`(mu, log_std)` for every agent from its own observation row (no sharing).

        **Arguments:**

        - `obs`: one observation row per agent.

        **Returns:** the mean and the log standard deviation of each agent's Gaussian
        over its normalised action.
        """

    @abc.abstractmethod
    def batched(
        self, obs: Float[Array, "*batch agent obs"]
    ) -> tuple[Float[Array, "*batch agent"], Float[Array, "*batch agent"]]:
        """`(mu, log_std)` at many observations at once: the recorded steps of
        recorded episodes, any number of leading axes. The trainers' inner updates
        run on this, so a policy lays the batch out as suits its parameters (a
        stack of per-agent networks: agents leading, one product per layer over all
        of an agent's samples); the result equals `__call__` mapped over the
        leading axes.

        **Arguments:**

        - `obs`: observation rows, the agent and observation axes last.

        **Returns:** the mean and the log standard deviation, the shape of `obs`
        without its last axis.
        """

    @abc.abstractmethod
    def agent(self, i: int) -> eqx.Module:
        """Agent `i`'s own policy, for deployment at one home or for inspection.

        **Arguments:**

        - `i`: the agent's index, `0 <= i < n_agents`.

        **Returns:** a Module that maps one observation vector to that agent's
        `(mu, log_std)` and holds only that agent's parameters.
        """

    @property
    def n_parameters(self) -> int:
        """Total number of trainable parameters, over all agents."""
        leaves = jax.tree.leaves(eqx.filter(self, eqx.is_inexact_array))
        return sum(int(leaf.size) for leaf in leaves)
