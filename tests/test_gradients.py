"""Gradients through the power flow, checked three ways: central finite differences
in float64, differentiation unrolled through the iterations, and across every Lineax
solver of the implicit adjoint (STYLE.md rule 13)."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

import gridflex as gf
import gridflex.feeders as gff

from .helpers import ADJOINTS


# The finite-difference reference needs the solve converged to rounding, so that its
# error divided by the step stays far below the 1e-6 relative tolerance.
EXACT = gf.powerflow.ZBus(rtol=1e-15, atol=1e-15)
FD_STEP = 1e-3  # kW; dv/dp is ~1e-5 pu/kW, so no node crosses a limit within a step


@functools.cache
def feeder():
    return gff.ieee13()


def violation_loss(v_pu, lo, hi):
    """The training loss's voltage term: squared distance outside [lo, hi]."""
    return jnp.sum(jax.nn.relu(v_pu - hi) ** 2 + jax.nn.relu(lo - v_pu) ** 2)


@functools.cache
def loss_fn(adjoint_name: str | None):
    f = feeder()
    adjoint = None if adjoint_name is None else ADJOINTS[adjoint_name]
    # The gradient is evaluated at the solved point: solve it as exactly as the
    # reference, so that what is compared is the adjoint, not the forward tolerance.
    solver = EXACT

    @eqx.filter_jit
    def loss(p, q, lo, hi):
        sol = gf.power_flow(f, p, q, solver=solver, adjoint=adjoint, max_steps=1000)
        return violation_loss(sol.v_pu, lo, hi)

    return loss


@functools.cache
def grad_fn(adjoint_name: str):
    return eqx.filter_jit(jax.grad(loss_fn(adjoint_name), argnums=(0, 1)))


def _draw_injections(data, f):
    inj = np.asarray(f.injection_nodes)
    kw = st.lists(st.floats(-150.0, 150.0), min_size=inj.size, max_size=inj.size)
    p, q = np.zeros(f.n_nodes), np.zeros(f.n_nodes)
    p[inj], q[inj] = data.draw(kw), data.draw(kw)
    direction = np.zeros((2, f.n_nodes))
    unit = st.lists(st.floats(-1.0, 1.0), min_size=inj.size, max_size=inj.size)
    direction[0, inj], direction[1, inj] = data.draw(unit), data.draw(unit)
    return jnp.asarray(p), jnp.asarray(q), jnp.asarray(direction)


# Limits chosen so that IEEE 13 violates them at its regulated nominal operating point
# (it spans 0.96–1.056 pu): both over- and under-voltage terms are active.
LIMITS = (0.97, 1.04)


def _central_difference(p, q, d, lo, hi) -> float:
    loss, h = loss_fn(None), FD_STEP
    up = float(loss(p + h * d[0], q + h * d[1], lo, hi))
    down = float(loss(p - h * d[0], q - h * d[1], lo, hi))
    return (up - down) / (2 * h)


@pytest.mark.parametrize("adjoint", list(ADJOINTS))
@given(data=st.data())
def test_gradient_matches_finite_differences(adjoint, data):
    f = feeder()
    p, q, d = _draw_injections(data, f)
    lo, hi = jnp.asarray(LIMITS[0]), jnp.asarray(LIMITS[1])
    assert float(loss_fn(None)(p, q, lo, hi)) > 0  # a violation to differentiate
    g = jnp.stack(grad_fn(adjoint)(p, q, lo, hi))
    g_norm = float(jnp.linalg.norm(g))
    # Along the gradient itself the directional derivative is |g|: nothing cancels,
    # so the relative error is meaningful and held to 1e-6.
    along = _central_difference(p, q, g / g_norm, lo, hi)
    assert abs(g_norm - along) <= 1e-6 * abs(along), (g_norm, along)
    # Along a random direction g.d may cancel to nearly nothing; the error is then
    # measured against the size it could have had, |g| |d|.
    directional = float(jnp.sum(g * d))
    fd = _central_difference(p, q, d, lo, hi)
    scale = g_norm * float(jnp.linalg.norm(d))
    assert abs(directional - fd) <= 1e-6 * scale, (directional, fd, scale)


@given(data=st.data())
def test_adjoints_agree_with_each_other(data):
    f = feeder()
    p, q, _ = _draw_injections(data, f)
    lo, hi = jnp.asarray(LIMITS[0]), jnp.asarray(LIMITS[1])
    grads = {name: grad_fn(name)(p, q, lo, hi) for name in ADJOINTS}
    ref = grads["lu"]
    scale = max(float(jnp.max(jnp.abs(ref[0]))), float(jnp.max(jnp.abs(ref[1]))))
    for name, g in grads.items():
        for a, b in zip(g, ref):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-9 * scale, err_msg=name)


@pytest.mark.parametrize("adjoint", list(ADJOINTS))
def test_violation_free_scenario_gives_exactly_zero_gradient(adjoint):
    # No node outside [0.5, 1.5]: the adjoint's right-hand side is zero. BiCGStab
    # alone would return NaN here; every adjoint must return zeros.
    f = feeder()
    zeros = jnp.zeros(f.n_nodes)
    gp, gq = grad_fn(adjoint)(zeros, zeros, jnp.asarray(0.5), jnp.asarray(1.5))
    assert np.all(np.asarray(gp) == 0) and np.all(np.asarray(gq) == 0)


def test_gradient_wrt_load_scale_and_under_vmap():
    f = feeder()

    def loss(scale):
        return violation_loss(gf.power_flow(f, load_scale=scale).v_pu, *LIMITS)

    scales = jnp.asarray(
        np.random.default_rng(1).uniform(0.5, 1.5, (3, f.loads.n_loads))
    )
    grad = jax.jit(jax.grad(loss))
    batched = jax.jit(jax.vmap(jax.grad(loss)))(scales)
    for k in range(3):
        one = grad(scales[k])
        np.testing.assert_allclose(batched[k], one, rtol=1e-9, atol=1e-15)
    e = np.zeros(f.loads.n_loads)
    e[0] = 1.0
    h = 1e-5
    value = jax.jit(loss)
    fd = (value(scales[0] + h * e) - value(scales[0] - h * e)) / (2 * h)
    np.testing.assert_allclose(batched[0][0], fd, rtol=1e-5)


def test_float32_gradients_close_to_float64():
    f = gff.ieee123()

    def loss(p):
        return violation_loss(gf.power_flow(f, p).v_pu, 0.95, 1.0)

    p64 = np.zeros(f.n_nodes)
    g64 = np.asarray(jax.jit(jax.grad(loss))(jnp.asarray(p64)))
    with jax.enable_x64(False):
        g32 = jax.jit(jax.grad(loss))(jnp.asarray(p64, dtype=jnp.float32))
        assert g32.dtype == jnp.float32
        g32 = np.asarray(g32, dtype=np.float64)
    assert np.max(np.abs(g64)) > 0
    np.testing.assert_allclose(g32, g64, rtol=0, atol=2e-5 * np.max(np.abs(g64)))


def test_sensitivities_match_finite_differences():
    f = feeder()
    sens = gf.powerflow.voltage_sensitivities(f, observed=["675.1", "611.3", "634.2"])
    assert sens.dv_dp.shape == (3, len(f.injection_nodes))
    h = 1e-2
    idx = f.node_index(list(sens.observed))
    v_pu = jax.jit(
        lambda p, q: gf.power_flow(f, p, q, solver=EXACT, max_steps=1000).v_pu[idx]
    )
    for j, name in enumerate(sens.injected[:4]):
        k = int(f.node_index(name)[0])
        for dv, part in ((sens.dv_dp, 0), (sens.dv_dq, 1)):
            delta = np.zeros((2, f.n_nodes))
            delta[part, k] = h
            fd = (v_pu(delta[0], delta[1]) - v_pu(-delta[0], -delta[1])) / (2 * h)
            np.testing.assert_allclose(dv[:, j], fd, rtol=1e-6, atol=1e-12)
    # consumption lowers voltages on a radial feeder: mostly negative entries
    assert np.mean(np.asarray(sens.dv_dp) < 0) > 0.5
    dp, dq = sens.to_pandas()
    assert list(dp.index) == ["675.1", "611.3", "634.2"]
