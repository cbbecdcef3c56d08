"""The adjoint's linear solvers: `Neumann` and `Guarded`."""

import jax
import jax.numpy as jnp
import lineax as lx
import numpy as np
import pytest

from gridflex.powerflow import Guarded, Neumann


def _contraction(key, n=6, radius=0.4):
    """An operator J - I with spectral radius of J equal to `radius`."""
    j = jax.random.normal(key, (n, n))
    j = radius * j / jnp.max(jnp.abs(jnp.linalg.eigvals(j)))
    return lx.MatrixLinearOperator(j - jnp.eye(n))


def test_bicgstab_needs_the_zero_guard():
    # The failure Guarded exists for: Lineax's BiCGStab gives NaN for b = 0.
    op = _contraction(jax.random.key(1))
    raw = lx.linear_solve(op, jnp.zeros(6), lx.BiCGStab(1e-10, 1e-10), throw=False)
    assert not np.all(np.isfinite(raw.value))
    safe = lx.linear_solve(op, jnp.zeros(6), Guarded(lx.BiCGStab(1e-10, 1e-10)))
    assert np.array_equal(safe.value, np.zeros(6))


@pytest.mark.parametrize("transpose", [False, True])
def test_neumann_solves_contractions(getkey, transpose):
    op = _contraction(getkey())
    op = op.T if transpose else op
    b = jax.random.normal(getkey(), (6,))
    x = lx.linear_solve(op, b, Neumann(rtol=1e-12, atol=1e-12)).value
    np.testing.assert_allclose(op.mv(x), b, rtol=0, atol=1e-10)


def test_neumann_reports_divergence():
    op = _contraction(jax.random.key(2), radius=1.5)
    sol = lx.linear_solve(
        op, jnp.ones(6), Neumann(rtol=1e-10, atol=1e-10, max_steps=50), throw=False
    )
    assert sol.result == lx.RESULTS.max_steps_reached


def test_guarded_recomputes_failures_with_lu():
    # Not a contraction: Neumann fails, the guard must fall back to the direct solve.
    op = _contraction(jax.random.key(3), radius=1.5)
    b = jnp.arange(6.0)
    sol = lx.linear_solve(op, b, Guarded(Neumann(1e-10, 1e-10, max_steps=20)))
    assert sol.result == lx.RESULTS.successful
    assert bool(sol.stats["fallback"])
    np.testing.assert_allclose(
        sol.value, jnp.linalg.solve(op.as_matrix(), b), atol=1e-9
    )


def test_guarded_under_vmap_repairs_only_what_failed():
    ops = [_contraction(jax.random.key(4), radius=r) for r in (0.3, 1.5, 0.5)]
    mats = jnp.stack([op.as_matrix() for op in ops])
    bs = jnp.stack([jnp.ones(6), jnp.arange(6.0), jnp.zeros(6)])

    def solve(a, b):
        s = lx.linear_solve(
            lx.MatrixLinearOperator(a), b, Guarded(Neumann(1e-12, 1e-12, max_steps=60))
        )
        return s.value, s.stats["fallback"]

    x, fallback = jax.vmap(solve)(mats, bs)
    assert fallback.tolist() == [False, True, False]
    np.testing.assert_allclose(jnp.einsum("bij,bj->bi", mats, x), bs, rtol=0, atol=1e-9)
