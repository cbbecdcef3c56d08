"""The power flow against OpenDSS, its invariants, and its failure reporting."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, strategies as st

import gridflex as gf
import gridflex.feeders as gff
from gridflex.feeders import builtin_master, regulated_taps
from gridflex.powerflow import RESULTS

from .helpers import max_pu_error, opendss_voltages, SOLVERS


FEEDERS = ["ieee13", "ieee123", "european_lv", "european_lv_reduced"]
TIGHT = gf.powerflow.ZBus(rtol=1e-12, atol=1e-12)


@functools.cache
def feeder(name: str) -> gf.Feeder:
    return getattr(gff, name)()


@functools.cache
def batched_voltages(name: str):
    """One compiled, vmapped solve per feeder, shared by every test that needs it."""
    f = feeder(name)
    return jax.jit(jax.vmap(lambda s: gf.power_flow(f, load_scale=s, solver=TIGHT).v))


def reference(name: str, scale: np.ndarray | None = None) -> dict[str, complex]:
    master = builtin_master(name)
    loads = feeder(name).loads.names
    return opendss_voltages(
        master,
        load_scale=None if scale is None else dict(zip(loads, scale.tolist())),
        taps=regulated_taps(name),
    )


@pytest.mark.parametrize("name", FEEDERS)
def test_matches_opendss_at_nominal_and_random_load(name):
    f = feeder(name)
    rng = np.random.default_rng(2024)
    scales = np.concatenate(
        [np.ones((1, f.loads.n_loads)), rng.uniform(0.3, 1.5, (20, f.loads.n_loads))]
    )
    v = np.asarray(batched_voltages(name)(jnp.asarray(scales)))
    errors = [max_pu_error(f, v[k], reference(name, scales[k])) for k in range(21)]
    # PowerModelsDistribution reports 3.8e-6 pu against OpenDSS on IEEE 13.
    assert max(errors) <= 1e-6, errors


def test_bases_and_node_names_match_opendss():
    import opendssdirect as dss

    for name in FEEDERS:
        f = feeder(name)
        reference(name)  # leaves the model compiled in OpenDSS
        names = [n.lower() for n in dss.Circuit.AllNodeNames()]
        assert sorted(names) == sorted(f.node_names)
        for bus in f.bus_names[:50]:
            dss.Circuit.SetActiveBus(bus)
            idx = f.node_index([f"{bus}.{k}" for k in dss.Bus.Nodes()])
            np.testing.assert_allclose(
                f.base_v[idx], dss.Bus.kVBase() * 1e3, rtol=1e-12
            )


@pytest.mark.parametrize("solver", list(SOLVERS))
def test_solvers_agree(solver):
    f = feeder("ieee13")
    a = gf.power_flow(f, solver=TIGHT)
    b = gf.power_flow(f, solver=SOLVERS[solver])
    np.testing.assert_allclose(np.abs(a.v - b.v) / f.base_v, 0, atol=1e-9)
    assert int(b.iterations) > 0


# --- invariants ----------------------------------------------------------------------


def test_zero_load_gives_no_load_voltages():
    for name in ("ieee13", "ieee123"):
        f = feeder(name).without_loads()
        sol = gf.power_flow(f)
        np.testing.assert_allclose(sol.v, f.w, rtol=0, atol=1e-9 * f.base_v.max())
        # and the no-load voltages are not a trivial answer: loading moves them
        loaded = gf.power_flow(feeder(name))
        assert np.max(np.abs(loaded.v - f.w) / f.base_v) > 1e-3


def test_a_warm_start_at_the_solution_ends_at_once_and_there():
    """`v_init` (the environment warm-starts every step from the last) is mapped onto
    the ports, delta pairs included: started at the solution, the iteration stops
    within a step or two, at the same voltages."""
    f = feeder("ieee13")  # delta loads: ports beyond the injection nodes
    assert f.ports.n_ports > len(f.injection_nodes)
    cold = gf.power_flow(f, solver=TIGHT)
    warm = gf.power_flow(f, solver=TIGHT, v_init=cold.v)
    assert int(warm.iterations) <= 2 < int(cold.iterations)
    np.testing.assert_allclose(warm.v, cold.v, rtol=0, atol=1e-9 * f.base_v.max())


def _load_power_kva(f: gf.Feeder, v: np.ndarray, scale, p_kw, q_kvar) -> complex:
    """Complex power drawn by every load at voltages `v`, from the load models."""
    L = f.loads
    va = v[L.node_a]
    vb = np.where(L.node_b >= 0, v[np.maximum(L.node_b, 0)], 0)
    u = np.abs(va - vb)
    k = np.select([L.model == 1, L.model == 5, L.model == 2], [0, 1, 2])
    s = L.s_kva * np.asarray(scale)[L.load] * (u / L.v_nom_v) ** k
    return complex(s.sum() + np.sum(np.asarray(p_kw) + 1j * np.asarray(q_kvar)))


def _absorbed_kva(f: gf.Feeder, full: np.ndarray) -> complex:
    """Power absorbed by the network's passive elements, `v^T conj(Y v)`, with `Y v`
    formed from voltage differences: the feeders' near-zero-impedance switches (1e7 S)
    would otherwise turn rounding in `v` into kVA of error."""
    y = f.y.to_scipy().tocoo()
    r, c, val = y.row, y.col, y.data
    rowsum = np.zeros(full.size, complex)
    np.add.at(rowsum, r, val)
    off = r != c
    yv = rowsum * full
    np.add.at(yv, r[off], val[off] * (full[c[off]] - full[r[off]]))
    return complex(np.sum(full * np.conj(yv)) / 1e3)


@given(data=st.data(), name=st.sampled_from(["ieee13", "ieee123"]))
def test_power_balance(data, name):
    # Source power = loads + losses, at operating points like the OpenDSS comparison's.
    f = feeder(name)
    n, inj = f.loads.n_loads, np.asarray(f.injection_nodes)
    scale = np.asarray(data.draw(st.lists(st.floats(0.3, 1.5), min_size=n, max_size=n)))
    p, q = np.zeros(f.n_nodes), np.zeros(f.n_nodes)
    kw = st.lists(st.floats(-50, 50), min_size=inj.size, max_size=inj.size)
    p[inj], q[inj] = data.draw(kw), data.draw(kw)
    exact = gf.powerflow.ZBus(rtol=1e-15, atol=1e-15)
    sol = gf.power_flow(f, p, q, load_scale=scale, solver=exact, max_steps=1000)
    v = np.asarray(sol.v)
    losses = _absorbed_kva(f, np.concatenate([f.v_slack, v]))
    source = complex(np.sum(sol.s_source_kva))
    loads = _load_power_kva(f, v, scale, p, q)
    assert abs(source - (loads + losses)) <= 1e-8 * abs(source)
    assert abs(losses) > 1e-3 * abs(source)  # a balance with something in it


@given(
    kw=st.floats(1.0, 400.0),
    pf=st.floats(0.7, 1.0),
    length=st.floats(0.05, 3.0),
    model=st.sampled_from(["constant_power", "constant_current", "constant_impedance"]),
)
def test_symmetric_network_balanced_load_gives_equal_phases(kw, pf, length, model):
    b = gff.FeederBuilder("sym", voltage_bases_kv=[4.16])
    b.source("s", kv=4.16, z1_ohm=0.01 + 0.05j, z0_ohm=0.02 + 0.1j)
    b.line(
        "l1",
        "s",
        "a",
        length_km=length,
        z1_ohm_per_km=0.3 + 0.6j,
        z0_ohm_per_km=0.6 + 1.5j,
    )
    b.line(
        "l2",
        "a",
        "b",
        length_km=length,
        z1_ohm_per_km=0.3 + 0.6j,
        z0_ohm_per_km=0.6 + 1.5j,
        c1_nf_per_km=10.0,
        c0_nf_per_km=5.0,
    )
    b.load("wye", "a", kw=kw, pf=pf, kv=4.16, phases=3, model=model)
    b.load("delta", "b", kw=kw / 2, pf=pf, kv=4.16, phases=3, conn="delta", model=model)
    f = b.build()
    v = np.abs(np.asarray(gf.power_flow(f, solver=TIGHT).v)).reshape(-1, 3)
    np.testing.assert_allclose(v, v[:, :1] * np.ones((1, 3)), rtol=1e-10)
    assert v.max() - v.min() > 1e-6 * v.max()  # the load did something


@given(seed=st.integers(0, 2**31 - 1))
def test_relabelling_and_reordering_nodes_changes_nothing(seed):
    f = feeder("ieee13")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(f.n_nodes)  # new position k holds old node perm[k]
    old_to_new = np.argsort(perm)
    rename = {b: f"x{rng.integers(1e6)}_{b}" for b in f.bus_names}

    def new_name(node):
        bus, phase = node.split(".")
        return f"{rename[bus]}.{phase}"

    s = f.n_slack
    order = np.concatenate([np.arange(s), s + perm])
    y = f.y.to_scipy()[order][:, order]
    L = f.loads
    loads = gff.Loads(
        L.names,
        L.load,
        old_to_new[L.node_a],
        np.where(L.node_b >= 0, old_to_new[np.maximum(L.node_b, 0)], -1),
        L.s_kva,
        L.v_nom_v,
        L.model,
    )
    g = gf.Feeder(
        node_names=[new_name(f.node_names[i]) for i in perm],
        slack_names=f.slack_names,
        y=y,
        v_slack=f.v_slack,
        base_v=f.base_v[perm],
        loads=loads,
        frequency_hz=f.frequency_hz,
    )
    va = np.asarray(gf.power_flow(f, solver=TIGHT).v)
    vb = np.asarray(gf.power_flow(g, solver=TIGHT).v)
    np.testing.assert_allclose(vb, va[perm], rtol=0, atol=1e-9 * f.base_v.max())


# --- precision, batching ------------------------------------------------------------


def test_float32_solves_ieee123():
    f = feeder("ieee123")
    v64 = np.asarray(gf.power_flow(f).v_pu)
    with jax.enable_x64(False):
        sol = gf.power_flow(f)
        assert sol.v_pu.dtype == jnp.float32
        v32 = np.asarray(sol.v_pu, dtype=np.float64)
    np.testing.assert_allclose(v32, v64, rtol=0, atol=2e-6)


def test_vmap_equals_loop():
    f = feeder("ieee13")
    scales = jnp.asarray(
        np.random.default_rng(0).uniform(0.3, 1.5, (4, f.loads.n_loads))
    )
    batched = jax.vmap(lambda s: gf.power_flow(f, load_scale=s).v)(scales)
    for k in range(4):
        one = gf.power_flow(f, load_scale=scales[k]).v
        np.testing.assert_allclose(batched[k], one, rtol=0, atol=1e-9 * f.base_v.max())


# --- failures are reported, never silent --------------------------------------------


def test_non_convergence_raises_with_advice():
    f = feeder("ieee13")
    with pytest.raises(eqx.EquinoxRuntimeError, match="maximum loadability"):
        gf.power_flow(f, load_scale=np.full(f.loads.n_loads, 50.0))


def test_failed_scenario_is_flagged_per_scenario_under_vmap():
    f = feeder("ieee13")
    scales = jnp.asarray(np.array([1.0, 50.0, 0.5])[:, None] * np.ones(f.loads.n_loads))
    sols = jax.vmap(lambda s: gf.power_flow(f, load_scale=s, throw=False))(scales)
    ok = np.asarray(sols.result == RESULTS.successful)
    assert ok.tolist() == [True, False, True]
    # the good scenarios are exactly what they are when solved alone
    alone = gf.power_flow(f, load_scale=scales[2])
    np.testing.assert_allclose(sols.v[2], alone.v, rtol=0, atol=1e-9 * f.base_v.max())


def test_non_finite_input_is_named_not_taken_for_a_collapse():
    f = feeder("ieee13")
    node = f.injection_nodes[2]
    p = np.zeros(f.n_nodes)
    p[node] = np.nan
    with pytest.raises(ValueError, match=f"not finite .* node.*{f.node_names[node]}"):
        gf.power_flow(f, p)
    scale = np.ones(f.loads.n_loads)
    scale[1] = np.inf
    with pytest.raises(ValueError, match=f"load_scale .*{f.loads.names[1]}"):
        gf.power_flow(f, load_scale=scale)
    # traced: one bad scenario of a batch gets its own result and message
    batch = jnp.asarray(np.stack([np.zeros(f.n_nodes), p]))
    sols = jax.vmap(lambda x: gf.power_flow(f, x, throw=False))(batch)
    assert np.asarray(sols.result == RESULTS.successful).tolist() == [True, False]
    assert np.asarray(sols.result == RESULTS.non_finite_input).tolist() == [False, True]
    assert "not finite" in RESULTS[RESULTS.non_finite_input]
    with pytest.raises(eqx.EquinoxRuntimeError, match="not finite"):
        eqx.filter_jit(lambda x: gf.power_flow(f, x).v)(jnp.asarray(p))


def test_gradients_through_a_failed_solve_are_nan_unless_masked():
    """A failed solve has no solution to differentiate at: a loss that depends on it
    gets NaN gradients; a loss that masks it out gets exact zeros from it; a good
    solve's gradient is the same either way. Both failures: out of steps (50x the
    load) and diverged to non-finite iterates (1000x), where the adjoint once
    linearised at a NaN point and Lineax refused the masked batch."""
    f = feeder("ieee13")

    @jax.jit
    def grad(s, weights):  # d(plain or masked loss)/ds: one compile
        def total(s):
            sol = gf.power_flow(f, load_scale=s, throw=False)
            # mask the voltages themselves: a diverged solve's are NaN, and even a
            # zero weight on a NaN passes NaN back (0 * NaN)
            ok = (sol.result == RESULTS.successful) | (weights[0] > 0)
            return jnp.sum(jnp.where(ok, sol.v_pu, 1.0) ** 2)

        return jax.grad(total)(s)

    plain, masked = jnp.array([1.0, 0.0]), jnp.array([0.0, 1.0])
    good, out_of_steps, diverged = (
        jnp.full(f.loads.n_loads, x) for x in (1.0, 50.0, 1000.0)
    )
    g = np.asarray(grad(good, plain))
    assert np.isfinite(g).all() and np.abs(g).max() > 0
    np.testing.assert_array_equal(np.asarray(grad(good, masked)), g)
    for failed, result in (
        (out_of_steps, RESULTS.power_flow_max_steps),
        (diverged, RESULTS.power_flow_diverged),
    ):
        sol = gf.power_flow(f, load_scale=failed, throw=False)
        assert sol.result == result
        assert np.isnan(np.asarray(grad(failed, plain))).all()
        assert np.all(np.asarray(grad(failed, masked)) == 0)
    assert np.isnan(np.asarray(sol.v_pu)).all()  # no operating point: no voltages


def test_a_non_finite_input_under_grad_gets_its_own_message():
    """Not Lineax's "bug upstream" crash; under `jit` too, where the forward outputs
    (and their check) are never computed: the gradient path raises."""
    f = feeder("ieee13")
    scale = np.ones(f.loads.n_loads)
    scale[1] = np.nan

    def loss(s):
        return jnp.sum(gf.power_flow(f, load_scale=s).v_pu)

    with pytest.raises(Exception, match="not finite") as info:
        jax.jit(jax.grad(loss))(jnp.asarray(scale))
    assert "upstream of Lineax" not in str(info.value)
    v_pu = jax.jit(lambda s: gf.power_flow(f, load_scale=s, throw=False).v_pu)(
        jnp.asarray(scale)
    )
    assert np.isnan(np.asarray(v_pu)).all()  # no voltages from a NaN


def test_a_floating_injection_node_is_refused_when_declared():
    """IEEE 123's bus 610 sits behind an ungrounded delta-delta transformer: a wye
    injection there has no return path (1 kW makes both solvers fail)."""
    f = feeder("ieee123")
    with pytest.raises(ValueError, match=r"610\.2.*no path to ground.*delta-delta"):
        f.with_injection_nodes(["65.1", "610.2"])
    assert f.with_injection_nodes(["65.1"]).n_nodes == f.n_nodes


def test_injection_outside_injection_nodes_is_refused():
    f = feeder("ieee13")
    outside = [i for i in range(f.n_nodes) if i not in f.injection_nodes][0]
    p = np.zeros(f.n_nodes)
    p[outside] = 10.0
    with pytest.raises(ValueError, match="with_injection_nodes"):
        gf.power_flow(f, p)
    with pytest.raises(eqx.EquinoxRuntimeError, match="with_injection_nodes"):
        eqx.filter_jit(lambda p: gf.power_flow(f, p).v)(jnp.asarray(p))
    g = f.with_injection_nodes([f.node_names[outside]])
    assert np.isfinite(np.asarray(gf.power_flow(g, p).v)).all()


def test_shape_errors_name_the_fix():
    f = feeder("ieee13")
    with pytest.raises(ValueError, match="one entry per node"):
        gf.power_flow(f, np.zeros(3))
    with pytest.raises(ValueError, match="one per base load"):
        gf.power_flow(f, load_scale=np.ones(2))
