"""Piecewise-linear operations with the subgradients the devices rely on.

`jnp.clip` and `jnp.maximum` split the gradient 0.5/0.5 at ties; these pick a side:
`clip` passes gradient 1 on the closed interval and 0 outside it (a state held at a
bound gets no gradient from beyond it), and `relu` is 0 with gradient 0 at 0 (a
violation is zero, and flat, exactly when the command is feasible).
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray


def relu(x: Float[Array, "*s"]) -> Float[Array, "*s"]:
    # NaN stays NaN: a violation computed from a NaN command must not read as zero
    return jnp.where(x <= 0, jnp.zeros_like(x), x)


def clip(x: Float[Array, "*s"], lo: ArrayLike, hi: ArrayLike) -> Float[Array, "*s"]:
    lo = jnp.broadcast_to(jnp.asarray(lo, x.dtype), x.shape)
    hi = jnp.broadcast_to(jnp.asarray(hi, x.dtype), x.shape)
    return jnp.where(x > hi, hi, jnp.where(x < lo, lo, x))


def uniform(
    key: PRNGKeyArray, lo: Float[Array, "*s"], hi: Float[Array, "*s"]
) -> Float[Array, "*s"]:
    """A uniform draw between element-wise bounds (of one shape)."""
    return lo + (hi - lo) * jax.random.uniform(key, jnp.shape(lo), dtype=lo.dtype)
