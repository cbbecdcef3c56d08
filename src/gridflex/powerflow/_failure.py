"""Gradients through a failed power flow are NaN (or an error), never a quiet number.

A solve that did not converge (or was given non-finite input) has no solution to
differentiate at: the implicit adjoint would differentiate at the last iterate and
return a finite, healthy-looking and meaningless gradient. `power_flow` therefore
blocks the adjoint for failed solves and adds `failure_on_gradients(...)` to each
output: a zero whose derivatives are NaN where the solve failed *and* something
depends on it (with `throw=True`, they raise the failure's message instead). A
caller who masks failed scenarios' outputs out (`jnp.where(ok, sol.v_pu, 1.0)`, as
the environment does) hands back a cotangent of exactly zero, and gets exactly zero.

That needs an operation that is linear to JAX (so forward and reverse mode both
work: `jax.jacfwd` in the sensitivities, `jax.grad` in training) but tells a zero
tangent from a non-zero one, which no composition of JAX operations and no
`custom_vjp` can do. Hence one small primitive, `_flag_p`: `flag(x, code)` is NaN
where `code` is a failure and `x != 0`, and zero elsewhere; it is its own JVP and its
own transpose, and elementwise under `vmap`. With `throw=True` the check that raises
lives on the cotangent path, so `jax.jit(jax.grad(...))`, which never computes the
forward outputs it does not return, still raises (forward mode gives NaN tangents).
"""

import jax
import jax.numpy as jnp
import jax.tree_util as jtu
from jax.extend.core import Primitive
from jax.interpreters import ad, batching, mlir
from jaxtyping import Array, Float, Shaped

from ._results import RESULTS


def _flag_impl(x, code, *, raises):
    del raises
    return jnp.where((code != 0) & (x != 0), jnp.nan, 0).astype(x.dtype)


_flag_p = Primitive("gridflex_failed_solve")
_flag_p.def_impl(_flag_impl)
_flag_p.def_abstract_eval(lambda x, code, *, raises: x)
mlir.register_lowering(_flag_p, mlir.lower_fun(_flag_impl, multiple_results=False))


def _flag(x, code, raises):
    """`_flag_p` on a cotangent, raising the failure where asked."""
    out = _flag_p.bind(x, code, raises=raises)
    if raises is not None:
        hit = (code != 0) & (x != 0)
        result = jtu.tree_unflatten(raises, [jnp.max(jnp.where(hit, code, 0))])
        out = result.error_if(out, jnp.any(hit))
    return out


def _flag_jvp(primals, tangents, *, raises):
    x, code = primals
    t, _ = tangents
    out = _flag_p.bind(x, code, raises=raises)
    if type(t) is ad.Zero:
        return out, t  # a symbolic zero of x's shape, which is out's
    # no check here: it would depend on the tangent, which reverse mode must transpose
    return out, _flag_p.bind(t, code, raises=raises)


def _flag_transpose(ct, x, code, *, raises):
    assert ad.is_undefined_primal(x) and not ad.is_undefined_primal(code)
    if type(ct) is ad.Zero:
        return [ad.Zero(x.aval), None]
    return [_flag(ct, code, raises), None]


def _flag_batch(args, dims, *, raises):
    size = next(a.shape[d] for a, d in zip(args, dims) if d is not None)
    x, code = (
        jnp.broadcast_to(a, (size, *a.shape)) if d is None else jnp.moveaxis(a, d, 0)
        for a, d in zip(args, dims)
    )
    return _flag_p.bind(x, code, raises=raises), 0


ad.primitive_jvps[_flag_p] = _flag_jvp
ad.primitive_transposes[_flag_p] = _flag_transpose
batching.primitive_batchers[_flag_p] = _flag_batch


def failure_on_gradients(
    result: RESULTS,
    inputs: tuple[Float[Array, "..."], ...],
    like: Shaped[Array, "..."],
    throw: bool,
) -> Float[Array, "..."]:
    """Zeros shaped like `like` (in its real dtype) whose derivatives with respect to
    `inputs` are NaN (or, with `throw`, raise `result`'s message) where `result` is
    a failure and the caller's result depends on them, and exactly zero otherwise.
    Its value is NaN where an input is not finite (no solution was computed)."""
    moved = sum(jnp.sum(x - jax.lax.stop_gradient(x)) for x in inputs)
    x = jnp.broadcast_to(moved, like.shape).astype(jnp.real(like).dtype)
    value, treedef = jtu.tree_flatten(result)
    code = jnp.broadcast_to(jnp.asarray(value[0]), like.shape)
    return _flag_p.bind(x, code, raises=treedef if throw else None)
