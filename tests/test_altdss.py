"""`from_opendss(engine="opendss")`: the AltDSS-engine importer."""

import os

import numpy as np
import pytest

import gridflex as gf
import gridflex.feeders as gff
from gridflex.feeders._builtin import _DATA, _MASTERS, regulated_taps

from .helpers import max_pu_error, opendss_voltages, solve_free_copy


@pytest.mark.parametrize("name", ["ieee13", "ieee123", "european_lv_reduced"])
def test_engines_agree(name):
    master = os.path.join(solve_free_copy(str(_DATA)), _MASTERS[name])
    a = gff.from_opendss(master, engine="opendss", taps=regulated_taps(name))
    n = getattr(gff, name)()
    assert sorted(a.node_names) == sorted(n.node_names)
    order = [a.node_names.index(x) for x in n.node_names]
    np.testing.assert_array_equal(a.base_v[order], n.base_v)
    s = a.n_slack
    ya = a.y.to_scipy()[s:, s:].toarray()[np.ix_(order, order)]
    yn = n.ynn
    scale = np.sqrt(np.outer(np.abs(np.diag(yn)), np.abs(np.diag(yn))))
    assert np.max(np.abs(ya - yn) / scale) < 1e-12
    exact = gf.powerflow.ZBus(rtol=1e-12, atol=1e-12)
    va = np.asarray(gf.power_flow(a, solver=exact).v)[order]
    vn = np.asarray(gf.power_flow(n, solver=exact).v)
    # Same matrix, different node order: the factorisations round differently, and
    # cond(YNN) ~ 2e8 on IEEE 13 bounds the agreement near 2e8 * 2.2e-16 ~ 4e-8.
    assert np.max(np.abs(va - vn) / n.base_v) < 1e-8


GEOMETRY = """
clear
new circuit.geo basekv=12.47 pu=1.0 bus1=src mvasc3=500 mvasc1=400
new wiredata.acsr336 gmr=0.0255 gmrunits=ft rac=0.306 runits=mi diam=0.721 radunits=in
new wiredata.acsr4/0 gmr=0.00814 gmrunits=ft rac=0.592 runits=mi diam=0.563 radunits=in
new linegeometry.g1 nconds=4 nphases=3 units=ft
~ cond=1 wire=acsr336 x=-4 h=28
~ cond=2 wire=acsr336 x=-1.5 h=28
~ cond=3 wire=acsr336 x=3 h=28
~ cond=4 wire=acsr4/0 x=0 h=24
new line.l1 bus1=src bus2=b1 geometry=g1 length=2 units=mi
new load.ld1 bus1=b1.1 phases=1 kv=7.2 kw=800 kvar=300
new load.ld2 bus1=b1.2 phases=1 kv=7.2 kw=500 kvar=200 model=2
new load.ld3 bus1=b1.2.3 phases=1 conn=delta kv=12.47 kw=400 kvar=100 model=5
set voltagebases=[12.47]
calcvoltagebases
"""


def test_geometry_lines_come_in_through_the_engine(tmp_path):
    # The native reader refuses conductor geometries; the AltDSS engine reads the
    # resulting primitive admittance, and the power flow then matches OpenDSS.
    path = tmp_path / "geo.dss"
    path.write_text(GEOMETRY)
    with pytest.raises(gff.DssError, match="opendss"):
        gff.from_opendss(path)
    f = gff.from_opendss(path, engine="opendss")
    sol = gf.power_flow(f, solver=gf.powerflow.ZBus(rtol=1e-12, atol=1e-12))
    assert max_pu_error(f, sol.v, opendss_voltages(str(path))) < 1e-6
    assert float(np.min(sol.v_pu)) < 0.97  # the loads load it


def test_unsupported_elements_are_named(tmp_path):
    path = tmp_path / "pv.dss"
    path.write_text(
        GEOMETRY.replace("calcvoltagebases", "")
        + "new pvsystem.pv1 bus1=b1 phases=3 kv=12.47 kva=500 pmpp=400\n"
    )
    with pytest.raises(gff.OpenDSSImportError, match="PVSystem.pv1"):
        gff.from_opendss(path, engine="opendss")


def test_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.dss"):
        gff.from_opendss(tmp_path / "nowhere.dss", engine="opendss")
    bad = tmp_path / "bad.dss"
    bad.write_text(
        "clear\nnew circuit.x basekv=12.47\n"
        "new line.l1 bus1=sourcebus bus2=b linecode=nope length=1\n"
    )
    with pytest.raises(gff.OpenDSSImportError, match="bad.dss"):
        gff.from_opendss(bad, engine="opendss")


def test_files_that_are_not_models_each_get_their_own_message(tmp_path):
    def fails(path, match):
        with pytest.raises(gff.OpenDSSImportError, match=match):
            gff.from_opendss(path, engine="opendss")

    (tmp_path / "master.dss").write_text(GEOMETRY)
    fails(tmp_path, r"is a folder; give the master \.dss file \(its \.dss files: m")
    empty = tmp_path / "empty.dss"
    empty.write_text("\n")
    fails(empty, "empty.dss: the file is empty")
    comments = tmp_path / "comments.dss"
    comments.write_text("! nothing but a comment\nset voltagebases=[12.47]\n")
    fails(comments, "comments.dss: the file defines no circuit")
    latin = tmp_path / "latin.dss"
    latin.write_bytes(GEOMETRY.replace("l1 ", "l\xe91 ").encode("latin-1"))
    fails(latin, r"latin.dss, line 11: byte 0xe9 is not UTF-8")
    sub = tmp_path / "sub.dss"
    sub.write_bytes(b"new line.l\xff2 bus1=b1 bus2=b2 r1=0.1 x1=0.1 length=1\n")
    outer = tmp_path / "outer.dss"
    outer.write_text(GEOMETRY + f"redirect {sub.name}\n")
    fails(outer, "outer.dss: .* not UTF-8 text")


@pytest.mark.parametrize(
    "line,match",
    [
        ("new line.bad bus1=b1 bus2=b2 r1=0.1 x1=0.1 length=-1", "Line.bad: length=-1"),
        ("new line.bad bus1=b1 bus2=b2 r1=0.1 x1=0.1 length=0", "Line.bad: length=0"),
        (
            "new line.bad bus1=b1 bus2=b2 r1=0.1 x1=0.1 length=1 normamps=-5",
            "Line.bad: normamps=-5",
        ),
        (
            "new transformer.bad buses=[b1 b2] conns=[wye wye] kvs=[12.47 0.4] "
            "kvas=[-50 -50]",
            "Transformer.bad: winding 1 kva=-50",
        ),
        ("new load.bad bus1=b1 kv=12.47 kw=10 model=8", r"Load.bad: model=8 \(ZIPV\)"),
        ("new load.bad bus1=b1 kv=12.47 kw=nan", "Load.bad"),
    ],
)
def test_values_opendss_accepts_but_physics_does_not(tmp_path, line, match):
    path = tmp_path / "bad.dss"
    path.write_text(GEOMETRY.replace("calcvoltagebases", "") + line + "\n")
    with pytest.raises(gff.OpenDSSImportError, match=match):
        gff.from_opendss(path, engine="opendss")
