"""Every OpenDSS load model (1 to 8), wye and delta, against OpenDSS itself.

Each case is a small feeder written here, compiled by OpenDSS, imported with
`from_opendss` (which builds its loads with `FeederBuilder.load`) and solved by
gridflex; OpenDSS solves the same file with its loads kept in their model at every
voltage (`compile_reference`)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gridflex as gf
import gridflex.feeders as gff
from gridflex.feeders import compile_reference, opendss_node_voltages

from .helpers import max_pu_error


EXACT = gf.powerflow.ZBus(rtol=1e-12, atol=1e-12)

# Each model with the extra properties OpenDSS needs for it; the exponents and
# coefficients are away from 0, 1 and 2 so that a wrong term shows.
MODELS = {
    1: "",
    2: "",
    3: "",
    4: "cvrwatts=0.7 cvrvars=2.6",
    5: "",
    6: "",
    7: "",
    8: "zipv=[0.3 0.5 0.2 0.6 0.15 0.25 0]",
}


def _circuit(model: int, extra: str = "", loadmult: float = 1.0) -> str:
    """A 12.47 kV feeder loaded heavily enough (0.95 to 0.97 pu at its end) that
    every voltage dependence shows: wye and delta, three-phase and one-phase."""
    load = f"model={model} {extra}"
    return f"""
clear
new circuit.m{model} basekv=12.47 pu=1.02 bus1=src mvasc3=300 mvasc1=250
new line.l1 bus1=src bus2=b1 r1=0.3 x1=0.6 r0=0.6 x0=1.8 c1=0 c0=0 length=3 units=km
new line.l2 bus1=b1 bus2=b2 r1=0.4 x1=0.5 r0=0.8 x0=1.5 c1=0 c0=0 length=2 units=km
new load.wye3 bus1=b1 phases=3 kv=12.47 kw=900 kvar=400 {load}
new load.wye1 bus1=b2.1 phases=1 kv=7.2 kw=500 kvar=150 {load}
new load.delta3 bus1=b2 phases=3 conn=delta kv=12.47 kw=700 kvar=300 {load}
new load.delta1 bus1=b2.2.3 phases=1 conn=delta kv=12.47 kw=400 kvar=-100 {load}
set voltagebases=[12.47]
calcvoltagebases
set loadmult={loadmult}
"""


def _opendss(path) -> dict[str, complex]:
    dss = compile_reference(str(path))
    dss.Solution.Solve()
    assert dss.Solution.Converged()
    return opendss_node_voltages(dss)


def _write(tmp_path, model: int, extra: str, loadmult: float = 1.0):
    path = tmp_path / f"model{model}.dss"
    path.write_text(_circuit(model, extra, loadmult))
    return path


@pytest.mark.parametrize("model", list(MODELS))
def test_each_load_model_matches_opendss(tmp_path, model):
    path = _write(tmp_path, model, MODELS[model])
    f = gff.from_opendss(path)
    assert set(f.loads.model.tolist()) == {model}
    sol = gf.power_flow(f, solver=EXACT)
    assert max_pu_error(f, sol.v, _opendss(path)) <= 1e-6
    # the model matters here: the voltages sag, and constant power (model 1) would
    # solve elsewhere (by more than any tolerance above), except for model 6 (P
    # constant, Q fixed at nominal), which is model 1 while inside the voltage band
    assert float(np.min(sol.v_pu)) < 0.98
    if model not in (1, 6):
        pq = gf.power_flow(gff.from_opendss(_write(tmp_path, 1, "")), solver=EXACT)
        assert float(np.max(np.abs(sol.v_pu - pq.v_pu))) > 1e-3


@pytest.mark.parametrize("model", [1, 6, 7])
def test_fixed_q_ignores_load_multipliers(tmp_path, model):
    """Models 6 and 7 keep their reactive power (or reactance) at the rated kvar
    whatever multiplies the load, as OpenDSS's `loadmult` shows; model 1 scales."""
    path = _write(tmp_path, model, "", loadmult=0.6)
    f = gff.from_opendss(path)
    # the loads summed per port by one product (small feeders) and row by row (big
    # ones, `Ports.zip_dense` left out) both
    rows = eqx.tree_at(
        lambda g: g.ports.zip_dense, f, None, is_leaf=lambda x: x is None
    )
    assert f.ports.zip_dense is not None and rows.ports.zip_dense is None
    for g in (f, rows):
        sol = gf.power_flow(
            g, solver=EXACT, load_scale=jnp.full(f.loads.n_loads, 0.6, jnp.float64)
        )
        assert max_pu_error(f, sol.v, _opendss(path)) <= 1e-6


def test_zipv_drop_out(tmp_path):
    """A ZIPV load's cut-off voltage scales it by OpenDSS's smooth drop-out. With the
    cut-off 0.005 pu below the voltage a load sees, the factor is 0.993; closer in,
    the drop-out's slope (250 per pu at the cut-off) stops OpenDSS converging too.
    Newton solves it: the Z-Bus map need not be a contraction there."""
    plain = "zipv=[0.3 0.5 0.2 0.6 0.15 0.25 0]"
    f = gff.from_opendss(_write(tmp_path, 8, plain))
    v = gf.power_flow(f, solver=EXACT).v
    node = f.node_index(["b2.1"])[0]
    x = float(np.abs(v[node]) / f.base_v[node])
    cut = plain.replace(" 0]", f" {x - 0.005:.6f}]")
    path = _write(tmp_path, 8, cut)
    g = gff.from_opendss(path)
    assert np.any(g.loads.cutoff_pu > 0)
    sol = gf.power_flow(g, solver=gf.powerflow.Newton(rtol=1e-12, atol=1e-12))
    assert max_pu_error(g, sol.v, _opendss(path)) <= 1e-6
    assert float(np.max(np.abs(sol.v - v) / f.base_v)) > 1e-5  # it dropped load


@pytest.mark.parametrize("model", [3, 4, 7, 8])
def test_gradients_through_load_models_match_finite_differences(tmp_path, model):
    f = gff.from_opendss(_write(tmp_path, model, MODELS[model]))

    def loss(scale):
        v = gf.power_flow(f, solver=EXACT, load_scale=scale).v_pu
        return jnp.sum((v - 1.0) ** 2)

    scale = jnp.asarray([0.9, 1.1, 0.8, 1.2])
    grad = jax.grad(loss)(scale)
    eps = 1e-6
    fd = [
        (loss(scale.at[k].add(eps)) - loss(scale.at[k].add(-eps))) / (2 * eps)
        for k in range(4)
    ]
    np.testing.assert_allclose(np.asarray(grad), np.asarray(fd), rtol=1e-6)


def test_builder_load_terms():
    """The builder keeps each model's terms as `LoadModel` tabulates them."""
    b = gff.FeederBuilder("t")
    b.source("sb", kv=12.47)
    b.load("m4", "sb.1", kw=10, kvar=5, kv=7.2, model="exponential", cvr_watts=0.5)
    b.load("m7", "sb.2", kw=10, kvar=5, kv=7.2, model=7)
    b.load("m8", "sb.3", kw=10, kvar=5, kv=7.2, model=8, zipv=[1, 0, 0, 0, 1, 0, 0.4])
    loads = b.build().loads
    np.testing.assert_array_equal(loads.model, [4, 7, 8])
    np.testing.assert_array_equal(loads.exponent[0, :, 0], [0.5, 2.0])
    np.testing.assert_array_equal(loads.coefficient[1], [[0, 0, 1], [1, 0, 0]])
    np.testing.assert_array_equal(loads.coefficient[2], [[1, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(loads.cutoff_pu, [0, 0, 0.4])
    np.testing.assert_array_equal(loads.fixed_q, [False, True, False])
