"""Steps measured in policy-output space: each agent's Gauss–Newton matrix.

GradMAP's trust region is the mean squared change of the policy outputs
`o = (mu, sigma)`. To first order a parameter change `dtheta_a` of agent `a` moves its
outputs by `J_a dtheta_a`, so the mean squared output change is
`dtheta_a^T F_a dtheta_a` with `F_a = mean_s J_{a,s}^T J_{a,s}` (the Gauss–Newton
matrix of the outputs, over samples `s`). A gradient step preconditioned by `F_a^{-1}`
is a step of prescribed length in output space, whatever the parameterisation, the
layer or the agent's sensitivity; plain or Adam steps in parameter space are not
(Adam's first update moves every parameter by its learning rate, and the sum of 178
such moves over one agent's correlated parameters can carry the outputs far past
the trust region in one update).

Agents share no parameters (every array leaf of a policy has a leading agent axis),
so at one sample the pullback of output `j` of every agent at once (cotangent one on
`j` for all agents) gives row `j` of every agent's Jacobian: `k` pullbacks per sample
(`k = 2` outputs) give every agent's Jacobian, for any policy that follows that
convention. Forward mode needs `P` products over all samples instead (`P = 178`
parameters per agent): at 1,000 agents that made the matrices about a fifth of a
GradMAP step.
"""

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PyTree

from ..policies import AbstractPolicy


def _per_agent(params: PyTree) -> int:
    """Parameters per agent."""
    return sum(math.prod(leaf.shape[1:]) for leaf in jax.tree.leaves(params))


def _flatten(tree: PyTree, n_agents: int) -> Float[Array, "agent p"]:
    leaves = jax.tree.leaves(tree)
    return jnp.concatenate([x.reshape(n_agents, -1) for x in leaves], axis=1)


def _unflatten(flat: Float[Array, "agent p"], like: PyTree) -> PyTree:
    leaves, treedef = jax.tree.flatten(like)
    out, i = [], 0
    for x in leaves:
        size = x[0].size
        out.append(flat[:, i : i + size].reshape(x.shape).astype(x.dtype))
        i += size
    return jax.tree.unflatten(treedef, out)


def gauss_newton(
    policy: AbstractPolicy,
    obs: Float[Array, "sample agent obs"],
    outputs,
    damping: float = 1e-1,
) -> Float[Array, "agent p p"]:
    """Each agent's Gauss–Newton matrix of its outputs, `mean_s J^T J` over the
    samples of `obs`, plus `damping` times its mean diagonal (so a direction that
    hardly moves the outputs, a saturated unit, is not given an unbounded step).

    **Arguments:**

    - `policy`: stacked per-agent parameters (leading agent axis on every leaf).
    - `obs`: observations, one row per agent, for each sample.
    - `outputs`: `outputs(policy, obs) -> o`, `o` of shape `[sample, agent, k]`,
        each sample's outputs from that sample's observations alone (the
        matrices are built one sample at a time).

    **Returns:** `[agent, P, P]`, `P` the parameters per agent.
    """
    params, static = eqx.partition(policy, eqx.is_inexact_array)
    n = policy.n_agents
    p = _per_agent(params)

    def f(flat, o):
        return outputs(eqx.combine(_unflatten(flat, params), static), o)

    flat = _flatten(params, n)

    def rows_at(o1):  # one sample: row j of every agent's Jacobian, [k, agent, P]
        out, pullback = jax.vjp(lambda fl: f(fl, o1[None])[0], flat)
        if out.shape[:1] != (n,) or out.ndim != 2:
            raise ValueError(
                f"gauss_newton: outputs(policy, obs) must have shape [sample, agent, "
                f"k] = [1, {n}, k] for one sample; got {(1, *out.shape)}."
            )
        units = jnp.eye(out.shape[-1], dtype=out.dtype)
        return jax.vmap(lambda u: pullback(jnp.broadcast_to(u, out.shape))[0])(units)

    samples = obs.shape[0]
    rows = jax.vmap(rows_at)(obs)  # [sample, k, agent, P]
    rows = jnp.moveaxis(rows, 2, 0).reshape(n, -1, p)  # [agent, sample * k, P]
    gn = jnp.matmul(jnp.swapaxes(rows, 1, 2), rows) / samples
    mean_diag = jnp.mean(jnp.diagonal(gn, axis1=1, axis2=2), axis=1)
    eye = jnp.eye(p, dtype=gn.dtype)
    shift = damping * mean_diag + jnp.finfo(gn.dtype).tiny
    return gn + shift[:, None, None] * eye[None]


def spd_inverse(a: Float[Array, "batch n n"]) -> Float[Array, "batch n n"]:
    """Inverses of symmetric positive definite matrices, `L^-T L^-1` from each one's
    Cholesky factor `L`.

    No batched LAPACK call: jaxlib's batched CPU kernels (`potrf`, `trsm`) hand the
    batch to XLA's intra-op thread pool and block on it, which deadlocks when several
    CPU devices run them at once (episodes sharded over forced host devices). The
    factors come one matrix at a time (`lax.map`), and `L^-1` from blocks with
    matrix products only, which is also 3x faster on a 2-core CPU than a batched
    `cho_solve` against the identity (1.7 s against 5.6 s for 1,000 matrices of
    178 x 178, float32) at the same accuracy.
    """
    chol = jax.lax.map(jnp.linalg.cholesky, a)
    l_inv = _lower_inverse(chol)
    return jnp.swapaxes(l_inv, -1, -2) @ l_inv


def _lower_inverse(lower: Float[Array, "*batch n n"]) -> Float[Array, "*batch n n"]:
    """Inverses of lower-triangular matrices, padded with an identity block to a power
    of two and split in halves: `[[A, 0], [B, C]]^-1 = [[A^-1, 0], [-C^-1 B A^-1,
    C^-1]]`, both halves inverted together (one stacked call per level)."""
    n = lower.shape[-1]
    size = 1 << (n - 1).bit_length()
    pad = [(0, 0)] * (lower.ndim - 2) + [(0, size - n)] * 2
    padded = jnp.pad(lower, pad)
    eye = jnp.eye(size, dtype=lower.dtype).at[:n, :n].set(0)
    return _halves_inverse(padded + jnp.broadcast_to(eye, padded.shape))[..., :n, :n]


def _halves_inverse(lower: Float[Array, "*batch n n"]) -> Float[Array, "*batch n n"]:
    n = lower.shape[-1]
    if n == 1:
        return 1 / lower
    h = n // 2
    a, b, c = lower[..., :h, :h], lower[..., h:, :h], lower[..., h:, h:]
    a_inv, c_inv = _halves_inverse(jnp.stack([a, c]))
    top = jnp.concatenate([a_inv, jnp.zeros_like(jnp.swapaxes(b, -1, -2))], -1)
    bottom = jnp.concatenate([-(c_inv @ b) @ a_inv, c_inv], -1)
    return jnp.concatenate([top, bottom], -2)


def output_space_sgd(
    lr: float | Float[Array, ""],
    gauss_newton: Float[Array, "agent p p"] | None,
    n_agents: int,
    max_move: float | Float[Array, ""] = float("inf"),
) -> optax.GradientTransformation:
    """Gradient descent with every agent's gradient preconditioned by the inverse of
    its Gauss–Newton matrix (`gauss_newton`, held fixed): a step in output space.
    A linear map of the gradient, so scaling the objective's forcing scales the step
    by the same factor.

    `max_move` caps one update's move of any agent's outputs (RMS over samples, to
    first order: `sqrt(u^T F u)`): the environment gradient is heavy-tailed (a few
    steps near a limit carry most of it), and a minibatch that holds one of them
    would otherwise throw that agent far outside the trust region in one update.
    (`gauss_newton=None`: the same state, for `init`.)"""
    if gauss_newton is None:
        return optax.chain(optax.identity(), optax.sgd(lr))
    # inverted once per primal step: one batched matrix-vector product per update
    # is far cheaper on a CPU than two batched triangular solves
    inverse = spd_inverse(gauss_newton)

    def precondition(updates, params):
        del params
        flat = _flatten(updates, n_agents)
        solved = jnp.einsum("apq,aq->ap", inverse, flat)
        move = lr * jnp.sqrt(jnp.einsum("ap,apq,aq->a", solved, gauss_newton, solved))
        cap = jnp.minimum(1.0, max_move / jnp.maximum(move, jnp.finfo(move.dtype).tiny))
        return _unflatten(solved * cap[:, None], updates)

    return optax.chain(optax.stateless(precondition), optax.sgd(lr))
