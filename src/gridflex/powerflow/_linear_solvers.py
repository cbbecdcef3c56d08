"""Linear solvers for the power-flow adjoint.

The implicit adjoint of the Z-Bus fixed point `y = f(y)` solves `(J - I)^T x = g` with
`J = df/dy`. Two facts shape the solvers here:

- The Z-Bus map is a contraction at any operating point the fixed-point iteration can
  reach (spectral radius of `J` about 0.2 on the IEEE feeders), so the Neumann series
  `x = -(g + J^T g + (J^T)^2 g + ...)` converges in a few terms and costs one
  vector-Jacobian product per term: `Neumann`.
- Krylov solvers can fail in ways a training loop must not swallow: Lineax's BiCGStab
  returns NaN for a zero right-hand side (every scenario without a voltage violation
  gives one) and reports false breakdowns in float32. `Guarded` answers zero for zero,
  and recomputes any failed solve with a direct solver instead of zeroing or NaN-ing it.
"""

from typing import Any

import equinox as eqx
import jax
import jax.lax as lax
import jax.numpy as jnp
import jax.tree_util as jtu
import lineax as lx
import optimistix as optx


def _max_abs(tree) -> jax.Array:
    leaves = [jnp.max(jnp.abs(x)) for x in jtu.tree_leaves(tree) if x.size]
    return jnp.max(jnp.stack(leaves)) if leaves else jnp.array(0.0)


def _all_finite(tree) -> jax.Array:
    leaves = [jnp.all(jnp.isfinite(x)) for x in jtu.tree_leaves(tree)]
    return jnp.all(jnp.stack(leaves)) if leaves else jnp.array(True)


class Neumann(lx.AbstractLinearSolver):
    """Solve `(J - I) x = b` for a contraction `J` by the Neumann (Richardson) series.

    The operator handed to the solver must be `A = J - I` with spectral radius of `J`
    below one: exactly the operator of an implicit adjoint through a convergent
    fixed-point iteration (`optimistix.fixed_point` differentiates `f(y) - y`). Each
    step costs one operator product, `x <- x + (A x - b)`, i.e. `x <- J x - b`, and
    keeps no Krylov basis, so it is cheap in memory under `vmap`.

    Not a general-purpose solver: on an operator that is not of that form it diverges
    and reports `max_steps_reached` (which `Guarded` then repairs with a direct solve).
    """

    rtol: float
    atol: float
    max_steps: int = 200

    def init(self, operator: lx.AbstractLinearOperator, options: dict[str, Any]):
        del options
        if operator.in_structure() != operator.out_structure():
            raise ValueError("Neumann needs a square operator of the form J - I.")
        return operator

    def compute(self, state, vector, options):
        del options
        operator = state
        scale_b = _max_abs(vector)

        def cond(carry):
            _, step, err = carry
            return (step < self.max_steps) & (err > 1)

        def body(carry):
            x, step, _ = carry
            new_x = jtu.tree_map(
                lambda xi, ai, bi: xi + ai - bi, x, operator.mv(x), vector
            )
            diff = _max_abs(jtu.tree_map(lambda a, b: a - b, new_x, x))
            scale = self.atol + self.rtol * jnp.maximum(_max_abs(new_x), scale_b)
            err = jnp.where(jnp.isfinite(diff), diff / scale, jnp.inf)
            return new_x, step + 1, err

        x0 = jtu.tree_map(jnp.negative, vector)
        init = (x0, jnp.array(0), jnp.array(jnp.inf, dtype=scale_b.dtype))
        x, steps, err = lax.while_loop(cond, body, init)
        result = lx.RESULTS.where(
            err <= 1, lx.RESULTS.successful, lx.RESULTS.max_steps_reached
        )
        return x, result, {"num_steps": steps, "max_steps": self.max_steps}

    def transpose(self, state, options):
        return state.transpose(), options

    def conj(self, state, options):
        return lx.conj(state), options

    def assume_full_rank(self):
        return True


class Guarded(lx.AbstractLinearSolver):
    """Make an iterative linear solver safe inside a training loop.

    - The right-hand side is normalised to unit max-norm before the inner solve, so
      the inner solver's `rtol`/`atol` are relative to its size.
    - A zero right-hand side gives a zero solution without calling the solver (Lineax's
      BiCGStab would return NaN).
    - A failed solve (any non-success result, or a non-finite solution) is recomputed
      with `fallback` (default `lineax.LU()`), so a gradient is never silently zeroed
      or NaN. The fallback runs inside a `while_loop` that takes zero trips when
      nothing failed; under `vmap` its cost is paid only by batches in which some
      solve failed. If the fallback fails too, its result is reported (and raised by
      the caller's `throw`).

    `gridflex.power_flow` wraps the Lineax Krylov solvers (GMRES, BiCGStab, CG) and
    `Neumann` in `Guarded` automatically; wrap other solvers yourself if you wish.
    """

    solver: lx.AbstractLinearSolver
    fallback: lx.AbstractLinearSolver = lx.LU()

    def init(self, operator: lx.AbstractLinearOperator, options: dict[str, Any]):
        return self.solver.init(operator, options), operator

    def compute(self, state, vector, options):
        inner_state, operator = state
        # Solve for b / max|b|: the inner solver's tolerances then hold relative to the
        # right-hand side's size (the adjoint's right-hand side carries the scale of the
        # user's loss, which no fixed absolute tolerance can know), and a zero
        # right-hand side is answered exactly, without calling the solver.
        size = _max_abs(vector)
        is_zero = size == 0
        safe_size = jnp.where(is_zero, jnp.ones_like(size), size)
        safe = jtu.tree_map(
            lambda v: jnp.where(is_zero, jnp.ones_like(v), v / safe_size), vector
        )
        x, result, stats = self.solver.compute(inner_state, safe, options)
        x = jtu.tree_map(
            lambda v: jnp.where(is_zero, jnp.zeros_like(v), v * safe_size), x
        )
        ok = is_zero | ((result == lx.RESULTS.successful) & _all_finite(x))
        result = lx.RESULTS.where(ok, lx.RESULTS.successful, result)

        def cond(carry):
            return carry[2]

        def body(carry):
            # A loop-carried zero in front of the fallback's operator: without it XLA
            # hoists the (expensive) materialisation and factorisation out of the loop
            # as loop-invariant code, and they run even when the loop takes no trip.
            zero = jnp.where(carry[2], 0.0, 1.0)
            fb_operator = lx.FunctionLinearOperator(
                lambda v: operator.mv(
                    jtu.tree_map(lambda t: t * (1 + zero).astype(t.dtype), v)
                ),
                operator.in_structure(),
            )
            fb_state = self.fallback.init(fb_operator, options)
            fb_x, fb_result, _ = self.fallback.compute(fb_state, vector, options)
            fb_result = lx.RESULTS.where(
                _all_finite(fb_x), fb_result, lx.RESULTS.singular
            )
            return fb_x, fb_result, jnp.array(False)

        x, result, _ = lax.while_loop(cond, body, (x, result, jnp.invert(ok)))
        stats = dict(stats, fallback=jnp.invert(ok))
        return x, result, stats

    def transpose(self, state, options):
        inner_state, operator = state
        inner_t, options_t = self.solver.transpose(inner_state, options)
        return (inner_t, operator.transpose()), options_t

    def conj(self, state, options):
        inner_state, operator = state
        inner_c, options_c = self.solver.conj(inner_state, options)
        return (inner_c, lx.conj(operator)), options_c

    def assume_full_rank(self):
        return self.solver.assume_full_rank()


_GUARD = (lx.GMRES, lx.BiCGStab, lx.CG, Neumann)


def guard(solver: lx.AbstractLinearSolver) -> lx.AbstractLinearSolver:
    """Wrap iterative solvers in `Guarded`; leave direct and custom ones alone."""
    if isinstance(solver, _GUARD):
        return Guarded(solver)
    return solver


def guard_adjoint(adjoint: optx.AbstractAdjoint) -> optx.AbstractAdjoint:
    """An `ImplicitAdjoint` whose linear solver is guarded (others unchanged)."""
    if isinstance(adjoint, optx.ImplicitAdjoint):
        guarded = guard(adjoint.linear_solver)
        if guarded is not adjoint.linear_solver:
            return eqx.tree_at(lambda a: a.linear_solver, adjoint, guarded)
    return adjoint
