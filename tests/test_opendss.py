"""`from_opendss`: OpenDSS compiles the model and gridflex reads it back. Equality with
OpenDSS itself (system Y, node names, voltage bases, loads) on small scripts that
exercise each piece of OpenDSS's object model and on `save circuit` outputs of the
shipped feeders; what is skipped and reported; taps, bases and injection nodes; and an
error a user can act on, in one line, for each way a model can be wrong."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

import gridflex as gf
import gridflex.feeders as gff
from gridflex.feeders import builtin_master, resolve_taps

from .helpers import assert_matches_opendss, max_pu_error, opendss_voltages


HEAD = """clear
set defaultbasefrequency=60
new circuit.t basekv=4.16 pu=1.0 mvasc3=2000 mvasc1=2100
new linecode.lc nphases=3 r1=0.3 x1=0.6 r0=0.6 x0=1.8 c1=10 c0=4 units=km
"""
BASES = "set voltagebases=[4.16 0.48]\n"

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


def _write(tmp_path, body: str, name: str = "t.dss"):
    path = tmp_path / name
    path.write_text(HEAD + body)
    return path


def _refused(path, match: str, **kwargs) -> str:
    with pytest.raises(gff.OpenDSSImportError, match=match) as info:
        gff.from_opendss(path, **kwargs)
    message = str(info.value)
    return message


# --- equality with OpenDSS ------------------------------------------------------------

SCRIPTS = {
    "line units": """
new linecode.mi nphases=3 r1=0.3 x1=0.6 r0=0.6 x0=1.8 units=mi
new linecode.none nphases=1 rmatrix=[0.3] xmatrix=[0.6] cmatrix=[3]
new line.a bus1=sourcebus bus2=b1 linecode=mi length=500 units=ft
new line.b bus1=b1 bus2=b2 linecode=lc length=300 units=m
new line.c bus1=b2.1 bus2=b3.1 linecode=none length=0.4 units=kft
new line.d bus1=b2 bus2=b4 r1=0.1 x1=0.2 r0=0.3 x0=0.6 c1=5 c0=2 units=km length=2
new line.e bus1=b2 bus2=b5 units=km r1=0.1 x1=0.2 r0=0.3 x0=0.6 length=2
new line.f bus1=b2 bus2=b6 linecode=lc length=20 units=cm
new line.g bus1=b2 bus2=b7 linecode=mi length=9000 units=in
new line.h bus1=b2 bus2=b8 linecode=mi length=0.1
new line.i bus1=b2 bus2=b9 linecode=lc length=0.1 units=kft
new line.j bus1=b2 bus2=b10 linecode=lc length=1000 units=mm
new line.k bus1=b2 bus2=b11 linecode=lc length=0.01 units=mi
""",
    "switches and sequence lines": """
new line.l1 bus1=sourcebus bus2=b linecode=lc length=1
new line.sw1 bus1=b bus2=c switch=y
new line.sw2 bus1=b bus2=d switch=y r1=1e-4 r0=1e-4 x1=0 x0=0 c1=0 c0=0
new line.sw3 bus1=b bus2=e r1=0.2 switch=yes length=0.01
new line.p1 bus1=b.2 bus2=f.2 phases=1 r1=0.4 x1=0.7 r0=9 x0=9 c1=3 c0=9
new line.p2 bus1=b.3.1 bus2=g.3.1 phases=2 r1=0.4 x1=0.7 r0=1 x0=2 c1=3 c0=1
new line.cd bus1=b bus2=h r1=0.4 x1=0.7 r0=1 x0=2 units=kft length=1
""",
    "linecode matrices": """
new linecode.m3 nphases=3 basefreq=60 units=mi
~ rmatrix=(0.3465 | 0.1560 0.3375 | 0.1580 0.1535 0.3414)
~ xmatrix=[1.0179 0.5017 0.4236 | 0.5017 1.0478 0.3849 | 0.4236 0.3849 1.0348]
new linecode.m2 nphases=2 units=kft rmatrix=[1.3238 | 0.2066 1.3294]
~ xmatrix=[1.3569 | 0.4591 1.3471] cmatrix=[2.3 | -0.4 2.3]
new linecode.m1 nphases=1 rmatrix=(1.3292) xmatrix=(1.3475) cmatrix=[236] units=mi
new line.a bus1=sourcebus bus2=b linecode=m3 length=2000 units=ft
new line.b bus1=b.3.2 bus2=c.3.2 linecode=m2 length=0.3 units=kft
new line.c bus1=b.3 bus2=d.3 linecode=m1 length=300 units=ft
new line.d like=a bus1=b bus2=e units=ft
""",
    "off-frequency linecodes": """
new linecode.f50 nphases=3 r1=0.2 x1=0.3 r0=0.5 x0=0.9 c1=12 c0=5 units=km basefreq=50
new linecode.f50m nphases=1 basefreq=50 rmatrix=[0.3] xmatrix=[0.4] cmatrix=[9]
new line.a bus1=sourcebus bus2=b linecode=f50 length=2 units=km
new line.b bus1=b.1 bus2=c.1 linecode=f50m length=1 units=km
new line.c bus1=b.2 bus2=d.2 phases=1 r1=1 x1=1 c1=10 length=1 basefreq=50
new line.e bus1=b bus2=e linecode=f50 length=1 xg=0 rg=0
""",
    "transformers": """
new line.l1 bus1=sourcebus bus2=b linecode=lc length=1
new transformer.dy phases=3 windings=2 xhl=5.75
~ wdg=1 bus=b conn=delta kv=4.16 kva=500 %r=0.6
~ wdg=2 bus=lv conn=wye kv=0.48 kva=500 %r=0.6
new transformer.yy buses=[b lv2] conns=[wye wye] kvs=[4.16 0.48] kvas=[300 300]
~ %loadloss=1.2 xhl=(4 2 *) %noloadloss=0.3 %imag=1.5 ppm=0
new transformer.dd phases=3 windings=2 xhl=2.72 buses=[b lv3] conns=[d d]
~ kvs=[4.16 0.48] kvas=[150 150] %rs=[0.635 0.635]
new transformer.lead like=dy buses=[b lv4] leadlag=lead
new transformer.kva2 phases=1 buses=[b.1 lv5.1] kvs=[2.4 0.24] kva=100
~ wdg=2 kva=50
new transformer.three phases=1 windings=3 buses=[b.2 lv6.1.0 lv6.0.2]
~ kvs=[2.4 0.12 0.12] kvas=[50 50 50] %loadloss=1 xhl=2.04 xht=2.04 xlt=1.36
new transformer.three_default phases=1 windings=3 buses=[b.3 lv7.1.0 lv7.0.2]
~ kvs=[2.4 0.12 0.12]
new transformer.reg phases=1 bank=r buses=[b.1 r.1] kvs=[2.4 2.4] kvas=[1666 1666]
~ xhl=0.01 %loadloss=0.01 taps=[1 1.0375]
new transformer.regc like=reg buses=[b.3 r.3]
new transformer.reg0 like=reg buses=[b.2 r.2] ppm=0 tap=0.99
set voltagebases=[4.16 0.48 0.208]
""",
    "sources": """
edit vsource.source isc3=3000 isc1=5 basekv=11 pu=1.05 angle=30
new line.l1 bus1=sourcebus bus2=b linecode=lc length=1
set voltagebases=[11]
""",
    "source by impedances": """
~ r1=0.1 x1=0.5 r0=0.3 x0=1.2
new line.l1 bus1=sourcebus bus2=b linecode=lc length=1
""",
    "source by per-unit impedances": """
edit vsource.source basemva=10 puz1=[0.01 0.05] puz0=[0.02 0.1]
new line.l1 bus1=sourcebus bus2=b linecode=lc length=1
""",
    "source with Z2": """
edit vsource.source z1=[0.1 0.5] z2=[0.12 0.45] z0=[0.3 1.2]
new line.l1 bus1=sourcebus bus2=b linecode=lc length=1
""",
    "capacitors": """
new line.l1 bus1=sourcebus bus2=b linecode=lc length=1
new capacitor.c1 bus1=b kvar=600 kv=4.16
new capacitor.c2 bus1=b.2 phases=1 kvar=50 kv=2.4
new capacitor.c3 bus1=b conn=delta kvar=300 kv=4.16
new capacitor.c4 bus1=b.1.2 phases=1 conn=delta kvar=100 kv=4.16
new capacitor.c5 bus1=b numsteps=3 kvar=[100 200 300] states=[1 0 1] kv=4.16
new capacitor.c6 bus1=b kvar=[100 200] kv=4.16
new capacitor.off bus1=b kvar=100 kv=4.16 states=[0]
""",
    "edits, likes, disabled and open elements": """
new line.l1 bus1=sourcebus bus2=b linecode=lc length=1
new line.l2 bus1=b bus2=c linecode=lc length=1
new line.l3 like=l2 bus1=c bus2=d length=0.5
line.l3.length=0.7
edit line.l2 length=2 units=km
batchedit line.l[12] length=1.5
new line.gone bus1=b bus2=e linecode=lc length=1 enabled=no
new line.tie bus1=c bus2=f linecode=lc length=1
new line.feed bus1=d bus2=f linecode=lc length=1
new line.half bus1=b bus2=g linecode=lc length=0.2
new line.half2 bus1=g bus2=h linecode=lc length=0.2
open line.tie 2
open line.half2 1 2
disable line.gone
new line.back bus1=d bus2=i linecode=lc length=1
enable line.back
""",
}


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_matches_opendss(tmp_path, name):
    body = SCRIPTS[name]
    if "voltagebases" not in body:
        body += BASES
    path = _write(tmp_path, body)
    assert_matches_opendss(gff.from_opendss(path), path)


def test_loads_match_opendss(tmp_path):
    import opendssdirect as dss

    body = (
        "new line.l1 bus1=sourcebus bus2=b linecode=lc length=1\n"
        "new load.a bus1=b.1 phases=1 kv=2.4 kw=10 pf=0.9\n"
        "new load.b bus1=b.2 phases=1 kv=2.4 kw=10 kvar=-3\n"
        "new load.c bus1=b phases=3 kv=4.16 kw=30 pf=-0.95 model=2\n"
        "new load.d bus1=b.2.3 phases=1 conn=delta kv=4.16 kva=20 pf=0.8 model=5\n"
        "new load.e bus1=b.3 phases=1 kv=2.4 kw=7 pf=0.9 status=fixed\n"
        "new load.f bus1=b phases=3 conn=delta kv=4.16 kw=12 kvar=4 pf=0.5\n"
        "new load.g bus1=b.1 phases=1 kv=2.4\n"
        "new load.h like=a bus1=b.3\n" + BASES
    )
    path = _write(tmp_path, body)
    loads = gff.from_opendss(path).loads
    dss.Text.Command("clear")
    dss.Text.Command(f"redirect [{path}]")
    for name in dss.Loads.AllNames():
        rows = [i for i, li in enumerate(loads.load) if loads.names[li] == name]
        dss.Loads.Name(name)
        assert loads.model[rows[0]] == dss.Loads.Model()
        kw, kvar = dss.Loads.kW(), dss.Loads.kvar()
        ours = loads.s_kva[rows].sum()
        assert ours == pytest.approx(complex(kw, kvar), rel=1e-12), name
    assert loads.names == tuple(dss.Loads.AllNames())


def test_opendss_exports_y_transposed(tmp_path):
    """Why `helpers._system_y` transposes: OpenDSS's solved voltages satisfy
    `Y.T v = i` with its exported Y, not `Y v = i`; they satisfy the feeder's
    equations as they are."""
    import opendssdirect as dss

    path = _write(tmp_path, SCRIPTS["source with Z2"] + BASES)
    feeder = gff.from_opendss(path)
    dss.Text.Command("clear")
    dss.Text.Command(f"redirect [{path}]")
    dss.Text.Command("set tolerance=1e-12")
    dss.Solution.Solve()
    v = np.array(dss.Circuit.YNodeVArray())
    v = v[0::2] + 1j * v[1::2]
    data, indices, indptr = dss.YMatrix.getYsparse(False)
    exported = sp.csc_array((data, indices, indptr), shape=(v.size, v.size))
    dss.Circuit.SetActiveElement("Vsource.source")
    yprim = np.array(dss.CktElement.YPrim())
    yprim = (yprim[0::2] + 1j * yprim[1::2]).reshape(6, 6)
    injected = np.zeros(v.size, dtype=np.complex128)
    injected[:3] = yprim[:3, :3] @ feeder.v_slack  # the source's Norton current
    scale = np.abs(injected).max()
    assert np.abs(exported.T @ v - injected).max() < 1e-6 * scale
    assert np.abs(exported @ v - injected).max() > 1e-2 * scale
    names = [n.lower() for n in dss.Circuit.YNodeOrder()]
    ours = np.concatenate(
        [feeder.v_slack, v[[names.index(n) for n in feeder.node_names]]]
    )
    assert np.abs(feeder.y.to_scipy()[feeder.n_slack :] @ ours).max() < 1e-6 * scale


@pytest.mark.parametrize(
    "name", ["ieee13", "ieee123", "european_lv", "european_lv_reduced"]
)
def test_a_saved_circuit_imports_and_matches_opendss(tmp_path, name):
    """What OpenDSS's `save circuit` writes (with its `TCC_Curve`, `Spectrum` and
    `GrowthShape` definitions) imports as it is, equals OpenDSS and the built-in."""
    import opendssdirect as dss

    taps = resolve_taps(name, "homes")
    built_in = getattr(gff, name)(taps="homes")
    dss.Text.Command("clear")
    dss.Text.Command(f"redirect [{builtin_master(name)}]")
    if taps:
        for transformer, tap in taps.items():
            dss.Text.Command(f"edit transformer.{transformer} wdg=2 tap={tap[1]}")
    dss.Text.Command(f"save circuit dir=[{tmp_path / 'saved'}]")
    master = tmp_path / "saved" / "Master.dss"
    assert "tcc_curve" in master.read_text().lower()
    feeder = gff.from_opendss(master)
    assert_matches_opendss(feeder, master, rtol=1e-9)
    # OpenDSS saves the elements class by class, so nodes and loads come in
    # another order
    assert sorted(feeder.node_names) == sorted(built_in.node_names)
    assert sorted(feeder.loads.names) == sorted(built_in.loads.names)

    def by_load(f):
        n = len(f.loads.names)
        kw = np.bincount(f.loads.load, f.loads.s_kva.real, minlength=n)
        kvar = np.bincount(f.loads.load, f.loads.s_kva.imag, minlength=n)
        return dict(zip(f.loads.names, np.round(kw + 1j * kvar, 9).tolist()))

    assert by_load(feeder) == by_load(built_in)


def test_lines_from_geometries_and_wire_data(tmp_path):
    path = tmp_path / "geo.dss"
    path.write_text(GEOMETRY)
    f = gff.from_opendss(path)
    sol = gf.power_flow(f, solver=gf.powerflow.ZBus(rtol=1e-12, atol=1e-12))
    assert max_pu_error(f, sol.v, opendss_voltages(str(path))) < 1e-6
    assert float(np.min(sol.v_pu)) < 0.97  # the loads load it


# --- what is skipped, and the report --------------------------------------------------


def test_controls_meters_and_shapes_are_skipped_and_reported(tmp_path):
    plain = "new line.l1 bus1=sourcebus bus2=b linecode=lc length=1\n" + BASES
    noisy = (
        "new loadshape.s npts=3 mult=[0.5 1 0.7]\n"
        "new line.l1 bus1=sourcebus bus2=b linecode=lc length=1\n"
        "new transformer.reg phases=1 buses=[b.1 c.1] kvs=[2.4 2.4] xhl=1\n"
        "new regcontrol.rc transformer=reg winding=2 vreg=122\n"
        "new energymeter.m line.l1 1\nnew monitor.mon line.l1 1 mode=0\n"
        "new load.ld bus1=b.1 phases=1 kv=2.4 kw=10 yearly=s\n"
        "new load.off bus1=b.2 phases=1 kv=2.4 kw=10 enabled=no\n"
        + BASES
        + "set mode=yearly number=10 maxcontroliter=30\ncalcv\nsolve\n"
    )
    a = gff.from_opendss(_write(tmp_path, plain, "a.dss"))
    b = gff.from_opendss(_write(tmp_path, noisy, "b.dss"))
    assert b.loads.names == ("ld",)
    assert set(a.node_names) < set(b.node_names)  # plus the regulator's c.1
    report = gff.opendss_report(tmp_path / "b.dss")
    assert report.imported["load"] == ("ld",)
    assert report.imported["transformer"] == ("reg",)
    assert report.skipped["regcontrol"] == ("rc",)
    assert report.skipped["loadshape"][-1] == "s"
    assert {"energymeter", "monitor"} <= set(report.skipped)
    assert report.disabled == ("Load.off",)
    text = str(report)
    assert "regcontrol" in text and "control: off" in text and "Load.off" in text


# --- taps, bases, injection nodes -----------------------------------------------------

REGS = (
    "new line.l1 bus1=sourcebus bus2=b linecode=lc length=1\n"
    "new transformer.reg1 phases=1 buses=[b.1 c.1] kvs=[2.4 2.4] kvas=[500 500] xhl=1\n"
    "new transformer.reg2 phases=1 buses=[b.2 c.2] kvs=[2.4 2.4] kvas=[500 500] xhl=1\n"
    "~ taps=[1 1.0125]\n" + BASES
)


def test_taps(tmp_path):
    path = _write(tmp_path, REGS)
    base = gff.from_opendss(path)
    tapped = gff.from_opendss(path, taps={"reg1": 1.05, "REG2": [0.99, 1.0]})
    c1, c2 = base.node_index("c.1")[0], base.node_index("c.2")[0]
    ratio = abs(tapped.w[c1]) / abs(base.w[c1])
    assert ratio == pytest.approx(1.05, rel=1e-3)  # winding 2 at 1.05 raises c.1
    assert abs(tapped.w[c2]) < abs(base.w[c2])  # reg2 from 1.0125 to 1.0 / 0.99
    _refused(
        path, r"t\.dss: taps names transformer 'reg9'.*reg1, reg2", taps={"reg9": 1}
    )
    _refused(path, "'reg1' 3 taps; it has 2 windings", taps={"reg1": [1.0, 1.0, 1.0]})


def test_voltage_bases_and_injection_nodes(tmp_path):
    path = _write(tmp_path, REGS)
    feeder = gff.from_opendss(path, voltage_bases_kv=[4.0], injection_nodes=["c.1"])
    np.testing.assert_allclose(feeder.base_v, 4000 / math.sqrt(3))
    assert "c.1" in feeder.injection_node_names


def test_defaults_bases_are_opendss_defaults(tmp_path):
    # Without `Set voltagebases`, OpenDSS picks from 0.208 ... 230 kV: 12.47 kV here.
    path = _write(tmp_path, "new line.l1 bus1=sourcebus bus2=b linecode=lc\n")
    np.testing.assert_allclose(gff.from_opendss(path).base_v, 12470 / math.sqrt(3))


# --- errors ---------------------------------------------------------------------------


def test_unsupported_elements_are_named(tmp_path):
    path = tmp_path / "pv.dss"
    path.write_text(
        GEOMETRY.replace("calcvoltagebases", "")
        + "new pvsystem.pv1 bus1=b1 phases=3 kv=12.47 kva=500 pmpp=400\n"
    )
    with pytest.raises(gff.OpenDSSImportError, match="PVSystem.pv1"):
        gff.from_opendss(path)
    report = gff.opendss_report(path)
    assert report.refused == {"pvsystem": ("pv1",)}
    assert "pvsystem" not in report.imported
    assert "refused (from_opendss raises)" in str(report)


def test_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.dss"):
        gff.from_opendss(tmp_path / "nowhere.dss")
    bad = tmp_path / "bad.dss"
    bad.write_text(
        "clear\nnew circuit.x basekv=12.47\n"
        "new line.l1 bus1=sourcebus bus2=b linecode=nope length=1\n"
    )
    with pytest.raises(gff.OpenDSSImportError, match="bad.dss"):
        gff.from_opendss(bad)


def test_files_that_are_not_models_each_get_their_own_message(tmp_path):
    def fails(path, match):
        with pytest.raises(gff.OpenDSSImportError, match=match):
            gff.from_opendss(path)

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
        gff.from_opendss(path)


@pytest.mark.parametrize(
    "body,match",
    [
        (
            "new line.l1 bus1=sourcebus bus2=b linecode=nope length=1\n",
            r"t\.dss, line 5: Line\.l1\.LineCode: LineCode object \"nope\" not found",
        ),
        (
            "new line.l1 bus1=sourcebus bus2=b linecode=lc lenght=1\n",
            r"t\.dss, line 5: Unknown parameter \"lenght\" .* \"Line\.l1\"",
        ),
        (
            "new line.l1 bus1=sourcebus bus2=b linecode=lc length=abc\n",
            r"t\.dss, line 5: Invalid inline math entry: \"abc\" \(in: new line\.l1 ",
        ),
        ("redirect nothere.dss\n", r"t\.dss, line 5: Redirect file not found"),
        ("new foo.x bus1=b\n", r"t\.dss, line 5: .*Object Type \"foo\" not found"),
    ],
)
def test_opendss_errors_come_back_in_one_line_with_file_and_line(tmp_path, body, match):
    message = _refused(_write(tmp_path, body), match)
    assert "\n" not in message


def test_islanded_buses_and_their_loads_are_refused(tmp_path):
    # an open switch cuts off c and d: OpenDSS would find the load at zero volts
    path = _write(
        tmp_path,
        "new line.l1 bus1=sourcebus bus2=b linecode=lc length=1\n"
        "new line.sw bus1=b bus2=c switch=y\n"
        "new line.l2 bus1=c bus2=d linecode=lc length=1\n"
        "new load.ld bus1=d.1 phases=1 kv=2.4 kw=10\n"
        "open line.sw 2\n" + BASES,
    )
    _refused(path, r"islanded nodes .*c\.1.*d\.3, carrying load\(s\) ld\.")
