"""The native OpenDSS reader: readable errors, what it ignores and refuses, taps, and
equality with OpenDSS (system Y, node names, voltage bases, loads) on small scripts
that exercise each piece of OpenDSS's object model the reader copies."""

import math

import numpy as np
import pytest
import scipy.sparse as sp

from gridflex.feeders import _dss_native, DeenergisedLoadWarning
from gridflex.feeders._dss_native import read_dss
from gridflex.feeders._dss_syntax import DssError


HEAD = """clear
set defaultbasefrequency=60
new circuit.t basekv=4.16 pu=1.0 mvasc3=2000 mvasc1=2100
new linecode.lc nphases=3 r1=0.3 x1=0.6 r0=0.6 x0=1.8 c1=10 c0=4 units=km
"""
BASES = "set voltagebases=[4.16 0.48]\n"


def _write(tmp_path, body: str, name: str = "t.dss"):
    path = tmp_path / name
    path.write_text(HEAD + body)
    return path


def _error(tmp_path, body: str) -> DssError:
    with pytest.raises(DssError) as info:
        read_dss(_write(tmp_path, body))
    return info.value


# --- errors name file, line, element and property -------------------------------------


def test_malformed_line(tmp_path):
    error = _error(tmp_path, "new line.l1 bus1=sourcebus bus2=b rmatrix=[1 | 0 1\n")
    (problem,) = error.problems
    assert problem.file is not None and problem.file.endswith("t.dss")
    assert problem.line == 5 and problem.element == "line.l1"
    assert "unbalanced '['" in str(error)
    assert "t.dss, line 5, line.l1" in str(error)


def test_missing_linecode(tmp_path):
    error = _error(
        tmp_path, "new line.l1 bus1=sourcebus bus2=b linecode=nope length=1\n"
    )
    assert (
        "t.dss, line 5, Line.l1, property 'linecode': linecode 'nope' is not defined"
        in (str(error))
    )


def test_unknown_property(tmp_path):
    error = _error(tmp_path, "new line.l1 bus1=sourcebus bus2=b lenght=1\n")
    (problem,) = error.problems
    assert (problem.line, problem.element, problem.property) == (5, "Line.l1", "lenght")
    assert "unknown property of Line" in problem.message


def test_unsupported_load_model(tmp_path):
    error = _error(
        tmp_path,
        "new line.l1 bus1=sourcebus bus2=b linecode=lc length=1\n"
        "new load.ld bus1=b.1 phases=1 kv=2.4 kw=10\n"
        "~ model=3\n",
    )
    (problem,) = error.problems
    assert (problem.line, problem.element, problem.property) == (7, "Load.ld", "model")
    assert "load model 3 is not supported" in problem.message
    assert "engine='opendss'" in problem.message


def test_missing_redirect_file(tmp_path):
    error = _error(tmp_path, "redirect linecodes/missing.dss\n")
    (problem,) = error.problems
    assert problem.line == 5 and "file not found" in problem.message
    assert "missing.dss" in problem.message


def test_unsupported_element_points_to_the_altdss_engine(tmp_path):
    error = _error(tmp_path, "new generator.g1 bus1=sourcebus kw=100\n")
    assert "generator.g1 changes the network" in str(error)
    assert "engine='opendss'" in str(error)


def test_problems_are_collected(tmp_path):
    error = _error(
        tmp_path,
        "new line.l1 bus1=sourcebus bus2=b linecode=lc length=1 units=feet\n"
        "new line.l2 bus1=b bus2=c linecode=nope\n"
        "new foo.x\n"
        "edit line.l9 length=2\n"
        "new line.l1 bus1=b bus2=d\n"
        "new load.ld bus1=b kv=4.16 kw=1 model=8 switch=y\n",
    )
    lines = [p.line for p in error.problems]
    assert lines == [5, 6, 7, 8, 9, 10, 10]
    text = str(error)
    assert "unknown length unit 'feet'" in text
    assert "unknown class 'foo'" in text
    assert "line.l9 is not defined" in text
    assert "defined twice" in text
    assert "unknown property of Load" in text and "load model 8" in text


def test_lines_after_a_failed_new_are_not_misapplied(tmp_path):
    error = _error(
        tmp_path,
        "new line.l1 bus1=sourcebus bus2=b linecode=lc length=1\n"
        "new pvsystem.pv bus1=b kva=10\n"
        "~ pmpp=8 irradiance=1\n"  # belongs to the PV system, not to line.l1
        "edit load.nope kw=1\n~ kvar=2\n",
    )
    assert [p.line for p in error.problems] == [6, 8]


def test_element_before_the_circuit(tmp_path):
    (tmp_path / "t.dss").write_text("new line.l1 bus1=a bus2=b\n")
    with pytest.raises(DssError, match="'New circuit.<name>' must come first"):
        read_dss(tmp_path / "t.dss")


def test_geometry_lines_are_refused(tmp_path):
    error = _error(
        tmp_path,
        "new linegeometry.g nconds=3\nnew line.l1 bus1=sourcebus bus2=b geometry=g\n",
    )
    assert "conductor geometry" in str(error) and "engine='opendss'" in str(error)


def test_builder_errors_are_located(tmp_path):
    # A bus spec naming one node of a three-phase line: refused, at the element's line.
    error = _error(tmp_path, "new line.l1 bus1=sourcebus.1 bus2=b linecode=lc\n")
    (problem,) = error.problems
    assert problem.line == 5 and problem.element == "Line.l1"
    assert "sourcebus.1" in problem.message


# --- what is ignored ------------------------------------------------------------------


def test_controls_reports_and_shapes_are_ignored(tmp_path):
    plain = "new line.l1 bus1=sourcebus bus2=b linecode=lc length=1\n" + BASES
    noisy = (
        "new loadshape.s npts=3 mult=(file=missing.csv) useactual=no\n"
        "new line.l1 bus1=sourcebus bus2=b linecode=lc length=1\n"
        "new transformer.reg phases=1 buses=[b.1 c.1] kvs=[2.4 2.4] xhl=1\n"
        "new regcontrol.rc transformer=reg winding=2 vreg=122\n"
        "new energymeter.m line.l1 1\nnew monitor.mon line.l1 1 mode=0\n"
        "new load.ld bus1=b.1 phases=1 kv=2.4 kw=10 yearly=s vminpu=0.7 vmaxpu=1.3\n"
        "batchedit load..* enabled=no\n"
        + BASES
        + "set mode=yearly number=10 controlmode=off maxcontroliter=30\n"
        "calcv\nsolve\nshow voltages\nplot profile\nbuscoords nothere.csv\n"
    )
    a = read_dss(_write(tmp_path, plain, "a.dss"))
    b = read_dss(_write(tmp_path, noisy, "b.dss"))
    assert b.loads.n_loads == 0
    assert set(a.node_names) < set(b.node_names)  # plus the regulator's c.1


def test_load_shapes_with_actual_values_are_refused(tmp_path):
    error = _error(
        tmp_path,
        "new loadshape.s npts=1 mult=[2] useactual=yes\n"
        "new load.ld bus1=sourcebus.1 phases=1 kv=2.4 kw=10 daily=s\n",
    )
    assert "useactual=yes" in str(error) and error.problems[0].property == "daily"


def test_every_property_is_handled_or_ignored(tmp_path):
    """No property of a supported class reaches the 'unhandled' assertion."""
    model = _dss_native._load_model(_write(tmp_path, ""))
    for cls in _dss_native._CLASSES.values():
        for prop in cls.PROPERTIES:
            if prop == "like":
                continue
            obj = cls("x", model, ("t.dss", 1))
            for value in ("1", "yes", "[1 2]", "wye", "none"):
                try:
                    obj.set(prop, value)
                except ValueError:
                    pass


def test_property_names_match_opendss():
    dss = pytest.importorskip("opendssdirect")
    dss.Text.Command("clear")
    dss.Text.Command("new circuit.t")
    for name, cls in _dss_native._CLASSES.items():
        dss.Text.Command(f"new {name}.x")
        dss.Circuit.SetActiveClass(name)
        dss.ActiveClass.Name("x")
        theirs = tuple(
            p.lower().replace("pct", "%") for p in dss.Element.AllPropertyNames()
        )
        ours = tuple(p.replace("pct", "%") for p in cls.PROPERTIES)
        assert ours == theirs, name


# --- taps, bases, injection nodes -----------------------------------------------------

REGS = (
    "new line.l1 bus1=sourcebus bus2=b linecode=lc length=1\n"
    "new transformer.reg1 phases=1 buses=[b.1 c.1] kvs=[2.4 2.4] kvas=[500 500] xhl=1\n"
    "new transformer.reg2 phases=1 buses=[b.2 c.2] kvs=[2.4 2.4] kvas=[500 500] xhl=1\n"
    "~ taps=[1 1.0125]\n" + BASES
)


def test_taps_override(tmp_path):
    path = _write(tmp_path, REGS)
    model = _dss_native._load_model(path)
    assert model.taps() == {"reg1": [1.0, 1.0], "reg2": [1.0, 1.0125]}
    model.set_taps({"reg1": 1.05, "REG2": [0.99, 1.0]})
    assert model.taps() == {"reg1": [1.0, 1.05], "reg2": [0.99, 1.0]}
    base = read_dss(path)
    tapped = read_dss(path, taps={"reg1": 1.05})
    c1 = base.node_index("c.1")[0]
    assert abs(tapped.w[c1]) > abs(base.w[c1])  # winding 2 at 1.05 pu raises c
    with pytest.raises(ValueError, match="reg9"):
        read_dss(path, taps={"reg9": 1.0})
    with pytest.raises(ValueError, match="2 windings"):
        read_dss(path, taps={"reg1": [1.0, 1.0, 1.0]})


def test_voltage_bases_and_injection_nodes(tmp_path):
    path = _write(tmp_path, REGS)
    feeder = read_dss(path, voltage_bases_kv=[4.0], injection_nodes=["c.1"])
    np.testing.assert_allclose(feeder.base_v, 4000 / math.sqrt(3))
    assert "c.1" in feeder.injection_node_names


def test_defaults_bases_are_opendss_defaults(tmp_path):
    # Without `Set voltagebases`, OpenDSS picks from 0.208 ... 230 kV: 12.47 kV here.
    feeder = read_dss(
        _write(tmp_path, "new line.l1 bus1=sourcebus bus2=b linecode=lc\n")
    )
    np.testing.assert_allclose(feeder.base_v, 12470 / math.sqrt(3))


def test_open_switch_cuts_off_a_dead_part(tmp_path):
    # the load beyond the open switch is left out, as OpenDSS finds it at zero
    # volts, and never silently: the warning names it
    with pytest.warns(DeenergisedLoadWarning, match=r"1 load\(s\) cut off .*Load\.ld"):
        feeder = read_dss(
            _write(
                tmp_path,
                "new line.l1 bus1=sourcebus bus2=b linecode=lc length=1\n"
                "new line.sw bus1=b bus2=c switch=y\n"
                "new line.l2 bus1=c bus2=d linecode=lc length=1\n"
                "new load.ld bus1=d.1 phases=1 kv=2.4 kw=10\n"
                "open line.sw 2\n" + BASES,
            )
        )
    assert {n.split(".")[0] for n in feeder.node_names} == {"sourcebus", "b"}
    assert feeder.loads.n_loads == 0


# --- equality with OpenDSS ------------------------------------------------------------


def _opendss(path, taps=None):
    """OpenDSS's system Y (loads out, controls off), node names and kV bases."""
    dss = pytest.importorskip("opendssdirect")
    dss.Text.Command("clear")
    dss.Text.Command(f"redirect [{path}]")
    dss.Text.Command("batchedit load..* enabled=no")
    dss.Text.Command("set controlmode=off")
    for name, values in (taps or {}).items():
        dss.Text.Command(f"transformer.{name}.taps=[{' '.join(map(repr, values))}]")
    dss.Text.Command("calcvoltagebases")
    bases = {}
    for bus in dss.Circuit.AllBusNames():
        dss.Circuit.SetActiveBus(bus)
        bases[bus.lower()] = dss.Bus.kVBase() * 1000.0
    dss.Solution.Solve()  # a full build: calcvoltagebases leaves a series-only Y
    return (*_system_y(dss), bases)


def _system_y(dss):
    """OpenDSS's system Y as it solves with it, and its node names.

    `Circuit.SystemY()` and `YMatrix.getYsparse()` (the same data, sparse) give the
    *transpose* of the matrix OpenDSS solves: it shows only where an element's Yprim
    is not symmetric (a source with Z2 != Z1), see `test_opendss_exports_y_transposed`.
    """
    data, indices, indptr = dss.YMatrix.getYsparse(False)
    names = [n.lower() for n in dss.Circuit.YNodeOrder()]
    y = sp.csc_array((data, indices, indptr), shape=(len(names), len(names)))
    return sp.csc_array(y.T), names


def assert_matches_opendss(feeder, path, *, taps=None, rtol=1e-9) -> float:
    """Equal system Y over the feeder's nodes (entries relative to the geometric mean
    of the two diagonal entries), equal node names and equal bases; returns the
    largest relative difference."""
    y, names, bases = _opendss(path, taps)
    assert set(feeder.node_names) <= set(names)
    position = {n: i for i, n in enumerate(names)}
    ours = [position[n] for n in feeder.node_names]
    others = sorted(set(range(len(names))) - set(ours))
    y = sp.csr_array(y)
    theirs = sp.coo_array(y[ours][:, ours])
    mine = sp.coo_array(feeder.ynn_sparse)
    scale = np.sqrt(np.abs(feeder.ynn_sparse.diagonal()))
    diff = sp.coo_array(mine - theirs)
    err = np.abs(diff.data) / (scale[diff.row] * scale[diff.col])
    worst = float(err.max()) if err.size else 0.0
    assert worst <= rtol, worst
    if others:  # OpenDSS keeps de-energised nodes; nothing couples them to ours
        assert np.abs(y[others][:, ours].toarray()).max(initial=0.0) < 1e-9
    base = np.array([bases[n.split(".")[0]] for n in feeder.node_names])
    np.testing.assert_allclose(feeder.base_v, base, rtol=1e-12)
    return worst


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
    assert_matches_opendss(read_dss(path), path)


def test_loads_match_opendss(tmp_path):
    dss = pytest.importorskip("opendssdirect")
    body = (
        "new line.l1 bus1=sourcebus bus2=b linecode=lc length=1\n"
        "new load.a bus1=b.1 phases=1 kv=2.4 kw=10 pf=0.9\n"
        "new load.b bus1=b.2 phases=1 kv=2.4 kw=10 kvar=-3\n"
        "new load.c bus1=b phases=3 kv=4.16 kw=30 pf=-0.95 model=2\n"
        "new load.d bus1=b.2.3 phases=1 conn=delta kv=4.16 kva=20 pf=0.8 model=5\n"
        "new load.e bus1=b.3 phases=1 kv=2.4 kw=7 pf=0.9 status=fixed\n"
        "new load.f bus1=b phases=3 conn=delta kv=4.16 kw=12 kvar=4 pf=0.5\n"
        "new load.g bus1=b.1 phases=1 kv=2.4\n"
        "new load.h like=a bus1=b.3\n"
        "set loadmult=1.1\n" + BASES
    )
    path = _write(tmp_path, body)
    loads = read_dss(path).loads
    dss.Text.Command("clear")
    dss.Text.Command(f"redirect [{path}]")
    dss.Text.Command("solve")
    for name in dss.Loads.AllNames():
        dss.Circuit.SetActiveElement(f"load.{name}")
        powers = np.array(dss.CktElement.Powers())
        rows = [i for i, li in enumerate(loads.load) if loads.names[li] == name]
        ours = loads.s_kva[rows].sum()
        # OpenDSS's powers at its solved voltages scale as the load model says.
        dss.Loads.Name(name)
        assert loads.model[rows[0]] == dss.Loads.Model()
        kw, kvar = dss.Loads.kW(), dss.Loads.kvar()
        mult = 1.0 if name == "e" else 1.1
        assert ours == pytest.approx(complex(kw, kvar) * mult, rel=1e-12), name
        assert np.isfinite(powers).all()
    assert set(loads.names) == set(dss.Loads.AllNames())


def test_opendss_exports_y_transposed(tmp_path):
    """Why `_system_y` transposes: OpenDSS's solved voltages satisfy `Y.T v = i` with
    its exported Y, not `Y v = i`; they satisfy the feeder's equations as they are."""
    dss = pytest.importorskip("opendssdirect")
    path = _write(tmp_path, SCRIPTS["source with Z2"] + BASES)
    feeder = read_dss(path)
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
