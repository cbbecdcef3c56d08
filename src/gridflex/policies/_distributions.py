"""Diagonal Gaussian helpers over normalised actions, elementwise.

Pure functions on `(mu, log_std)` arrays of one shape (one entry per agent, step,
episode, ...), parameterised by the log standard deviation because that is what the
policies output and what the trainers' trust regions act on. Every function is
differentiable in all its arguments and exact for any finite `log_std`.
"""

import math

import jax.numpy as jnp
from jaxtyping import Array, Float


_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def sample_actions(
    mu: Float[Array, "*shape"],
    log_std: Float[Array, "*shape"],
    eps: Float[Array, "*shape"],
) -> Float[Array, "*shape"]:
    """Re-parameterised Gaussian sample `a = mu + exp(log_std) * eps` (paper eq. 17).

    Drawing the noise `eps ~ N(0, 1)` outside the policy makes the action a
    differentiable function of `(mu, log_std)`, so environment gradients reach the
    policy outputs (eq. 18) and trainers can cache `eps` with the rollout.

    **Arguments:**

    - `mu`: the means.
    - `log_std`: the log standard deviations.
    - `eps`: standard normal noise, e.g. `jax.random.normal(key, mu.shape)`.

    **Returns:** the actions (unclipped; the environment clips them to [-1, 1]).
    """
    return mu + jnp.exp(log_std) * eps


def gaussian_log_prob(
    a: Float[Array, "*shape"],
    mu: Float[Array, "*shape"],
    log_std: Float[Array, "*shape"],
) -> Float[Array, "*shape"]:
    """Log density of `a` under `N(mu, exp(log_std)^2)`, elementwise.

    The density of the *unclipped* action: PPO-style ratios compare two policies
    at the same sampled `a`, before clipping, so the clipping cancels.

    **Arguments:**

    - `a`: the actions.
    - `mu`: the means.
    - `log_std`: the log standard deviations.

    **Returns:** `log N(a; mu, sigma^2)`; sum over agents or steps for a joint density.
    """
    z = (a - mu) * jnp.exp(-log_std)
    return -0.5 * z**2 - log_std - _HALF_LOG_2PI


def gaussian_entropy(log_std: Float[Array, "*shape"]) -> Float[Array, "*shape"]:
    """Differential entropy of `N(mu, exp(log_std)^2)`: `log_std + (1 + log 2π) / 2`.

    **Arguments:**

    - `log_std`: the log standard deviations.

    **Returns:** the entropy in nats, elementwise (independent of the mean).
    """
    return log_std + (0.5 + _HALF_LOG_2PI)


def gaussian_kl(
    mu_p: Float[Array, "*shape"],
    log_std_p: Float[Array, "*shape"],
    mu_q: Float[Array, "*shape"],
    log_std_q: Float[Array, "*shape"],
) -> Float[Array, "*shape"]:
    """`KL(p || q)` between the Gaussians `p = N(mu_p, sigma_p^2)` and
    `q = N(mu_q, sigma_q^2)`, elementwise.

    `log(sigma_q / sigma_p) + (sigma_p^2 + (mu_p - mu_q)^2) / (2 sigma_q^2) - 1/2`,
    written in log-std so that it stays finite for small standard deviations.

    **Arguments:**

    - `mu_p`, `log_std_p`: the first distribution (e.g. the old policy's outputs).
    - `mu_q`, `log_std_q`: the second distribution (e.g. the new policy's outputs).

    **Returns:** the KL divergence in nats, >= 0, zero exactly when `p == q`.
    """
    ratio = jnp.exp(2 * (log_std_p - log_std_q))
    shift = (mu_p - mu_q) * jnp.exp(-log_std_q)
    return log_std_q - log_std_p + 0.5 * (ratio + shift**2 - 1)
