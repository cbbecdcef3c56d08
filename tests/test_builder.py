"""`FeederBuilder`: input checks, load rows, and whole feeders against OpenDSS.

The system tests write a feeder with the builder and compile the same feeder in
OpenDSS (AltDSS engine via opendssdirect.py), then compare the system admittance
(`SystemY`, over the non-slack nodes by name), the no-load voltages and the voltage
bases.
"""

import math
import pathlib
import shutil

import numpy as np
import pytest

import gridflex.feeders as el
from gridflex.feeders import FeederBuilder, LoadModel, Winding


DATA = pathlib.Path("/work/shared/data/feeders")
MI_KM = 1.609344
FT_KM = 0.0003048


# --- helpers ------------------------------------------------------------------------


def _dss():
    return pytest.importorskip("opendssdirect")


def _opendss_state(dss):
    """System Y (by node name), solved node voltages and per-node base volts."""
    raw = np.asarray(dss.Circuit.SystemY())
    order = [n.lower() for n in dss.Circuit.YNodeOrder()]
    n = len(order)
    y = (raw[0::2] + 1j * raw[1::2]).reshape(n, n)
    names = [x.lower() for x in dss.Circuit.AllNodeNames()]
    v = np.asarray(dss.Circuit.AllBusVolts())
    v = v[0::2] + 1j * v[1::2]
    base = []
    for name in names:
        dss.Circuit.SetActiveBus(name.split(".")[0])
        base.append(dss.Bus.kVBase() * 1000.0)
    return order, y, names, v, np.asarray(base)


def _compare(feeder, dss):
    """(system-Y error relative to max |Y|, same scaled per entry by
    sqrt(|Yii Yjj|), max |w - V| in pu, max base error in V)."""
    order, y, names, v, base = _opendss_state(dss)
    assert set(order) == set(feeder.node_names)
    assert set(names) == set(feeder.node_names)
    idx = feeder.node_index(order)
    ours = feeder.ynn[np.ix_(idx, idx)]
    d = np.abs(ours - y)
    scale = np.sqrt(np.abs(np.diag(y)))
    y_err = d.max() / np.abs(y).max()
    y_err_entry = (d / np.outer(scale, scale)).max()
    idx = feeder.node_index(names)
    w_err = (np.abs(feeder.w[idx] - v) / feeder.base_v[idx]).max()
    base_err = np.abs(feeder.base_v[idx] - base).max()
    return y_err, y_err_entry, w_err, base_err


def _lower(values):
    n = int(round((math.sqrt(8 * len(values) + 1) - 1) / 2))
    out = np.zeros((n, n))
    k = 0
    for i in range(n):
        for j in range(i + 1):
            out[i, j] = out[j, i] = values[k]
            k += 1
    return out


def _tiny(**source):
    """A one-line feeder, for the error tests."""
    b = FeederBuilder("tiny", voltage_bases_kv=[4.16])
    b.source("sb", kv=4.16, **source)
    return b


# --- IEEE 13 ------------------------------------------------------------------------

IEEE13_CODES = {  # linecode: (R, X, C) per mile, lower triangles; C None = default
    "mtx601": ([0.3465, 0.1560, 0.3375, 0.1580, 0.1535, 0.3414],
               [1.0179, 0.5017, 1.0478, 0.4236, 0.3849, 1.0348], None),
    "mtx602": ([0.7526, 0.1580, 0.7475, 0.1560, 0.1535, 0.7436],
               [1.1814, 0.4236, 1.1983, 0.5017, 0.3849, 1.2112], None),
    "mtx603": ([1.3238, 0.2066, 1.3294], [1.3569, 0.4591, 1.3471], None),
    "mtx604": ([1.3238, 0.2066, 1.3294], [1.3569, 0.4591, 1.3471], None),
    "mtx605": ([1.3292], [1.3475], None),
    "mtx606": ([0.791721, 0.318476, 0.781649, 0.28345, 0.318476, 0.791721],
               [0.438352, 0.0276838, 0.396697, -0.0184204, 0.0276838, 0.438352],
               [383.948, 0, 383.948, 0, 0, 383.948]),
    "mtx607": ([1.3425], [0.5124], [236.0]),
}  # fmt: skip

IEEE13_LOADS = [  # name, bus, phases, conn, model, kV, kW, kvar
    ("671", "671.1.2.3", 3, "delta", 1, 4.16, 1155.0, 660.0),
    ("634a", "634.1", 1, "wye", 1, 0.277, 160.0, 110.0),
    ("634b", "634.2", 1, "wye", 1, 0.277, 120.0, 90.0),
    ("634c", "634.3", 1, "wye", 1, 0.277, 120.0, 90.0),
    ("645", "645.2", 1, "wye", 1, 2.4, 170.0, 125.0),
    ("646", "646.2.3", 1, "delta", 2, 4.16, 230.0, 132.0),
    ("692", "692.3.1", 1, "delta", 5, 4.16, 170.0, 151.0),
    ("675a", "675.1", 1, "wye", 1, 2.4, 485.0, 190.0),
    ("675b", "675.2", 1, "wye", 1, 2.4, 68.0, 60.0),
    ("675c", "675.3", 1, "wye", 1, 2.4, 290.0, 212.0),
    ("611", "611.3", 1, "wye", 5, 2.4, 170.0, 80.0),
    ("652", "652.1", 1, "wye", 2, 2.4, 128.0, 86.0),
    ("670a", "670.1", 1, "wye", 1, 2.4, 17.0, 10.0),
    ("670b", "670.2", 1, "wye", 1, 2.4, 66.0, 38.0),
    ("670c", "670.3", 1, "wye", 1, 2.4, 117.0, 68.0),
]

IEEE13_LINES = [  # name, bus1, bus2, linecode, length in ft
    ("650632", "rg60.1.2.3", "632.1.2.3", "mtx601", 2000.0),
    ("632670", "632.1.2.3", "670.1.2.3", "mtx601", 667.0),
    ("670671", "670.1.2.3", "671.1.2.3", "mtx601", 1333.0),
    ("671680", "671.1.2.3", "680.1.2.3", "mtx601", 1000.0),
    ("632633", "632.1.2.3", "633.1.2.3", "mtx602", 500.0),
    ("632645", "632.3.2", "645.3.2", "mtx603", 500.0),
    ("645646", "645.3.2", "646.3.2", "mtx603", 300.0),
    ("692675", "692.1.2.3", "675.1.2.3", "mtx606", 500.0),
    ("671684", "671.1.3", "684.1.3", "mtx604", 300.0),
    ("684611", "684.3", "611.3", "mtx605", 300.0),
    ("684652", "684.1", "652.1", "mtx607", 800.0),
]

IEEE13_TAPS = (1.0625, 1.05, 1.06875)


def ieee13(voltage_bases_kv=(115.0, 4.16, 0.48)):
    """IEEE 13 as in `IEEE13Nodeckt.dss`, regulators at the published taps."""
    bases = None if voltage_bases_kv is None else list(voltage_bases_kv)
    b = FeederBuilder("ieee13", frequency_hz=60.0, voltage_bases_kv=bases)
    b.source(
        "sourcebus", kv=115.0, pu=1.0001, angle_deg=30.0, mvasc3=20000.0, mvasc1=21000.0
    )
    b.transformer(
        "sub",
        [
            Winding("sourcebus", "delta", kv=115.0, kva=5000.0, r_pct=0.0005),
            Winding("650", "wye", kv=4.16, kva=5000.0, r_pct=0.0005),
        ],
        xhl_pct=0.008,
    )
    for i, tap in enumerate(IEEE13_TAPS, start=1):
        # %LoadLoss=0.01 puts 0.005 % on each winding.
        b.transformer(
            f"reg{i}",
            [
                Winding(f"650.{i}", kv=2.4, kva=1666.0, r_pct=0.005),
                Winding(f"rg60.{i}", kv=2.4, kva=1666.0, r_pct=0.005, tap=tap),
            ],
            phases=1,
            xhl_pct=0.01,
        )
    b.transformer(
        "xfm1",
        [
            Winding("633", "wye", kv=4.16, kva=500.0, r_pct=0.55),
            Winding("634", "wye", kv=0.48, kva=500.0, r_pct=0.55),
        ],
        xhl_pct=2.0,
    )
    for name, bus, phases, conn, model, kv, kw, kvar in IEEE13_LOADS:
        b.load(
            name, bus, kw=kw, kvar=kvar, kv=kv, phases=phases, conn=conn, model=model
        )
    b.capacitor("cap1", "675", kvar=600.0, kv=4.16, phases=3)
    b.capacitor("cap2", "611.3", kvar=100.0, kv=2.4, phases=1)
    for name, bus1, bus2, code, feet in IEEE13_LINES:
        r, x, c = IEEE13_CODES[code]
        z = _lower(r) + 1j * _lower(x)
        n = z.shape[0]
        # Linecodes without cmatrix keep OpenDSS's default capacitance.
        c = el.linecode_default_c_nf(n) if c is None else _lower(c)
        b.line(
            name,
            bus1,
            bus2,
            length_km=feet * FT_KM,
            z_ohm_per_km=z / MI_KM,
            c_nf_per_km=c / MI_KM,
        )
    # Switch=y r1=1e-4 r0=1e-4 x1=x0=c1=c0=0 over OpenDSS's switch length 0.001.
    b.switch("671692", "671", "692", r_ohm=1e-4 * el.OPENDSS_SWITCH_LENGTH)
    return b.build()


@pytest.fixture(scope="module")
def ieee13_folder(tmp_path_factory):
    """A copy of the IEEE 13 files plus `master.dss`: the same feeder with the
    regulator taps fixed, controls off and all loads disabled."""
    folder = tmp_path_factory.mktemp("ieee13")
    for f in (DATA / "ieee13").iterdir():
        shutil.copy(f, folder / f.name)
    text = (folder / "IEEE13Nodeckt.dss").read_text()
    fixed = (
        "Transformer.Reg1.Taps=[1.0 1.0625]\n"
        "Transformer.Reg2.Taps=[1.0 1.0500]\n"
        "Transformer.Reg3.Taps=[1.0 1.06875]\n"
        "Set Controlmode=OFF\n"
        "batchedit load..* enabled=no\n"
    )
    marker = "Set Voltagebases=[115, 4.16, .48]"
    assert marker in text
    (folder / "master.dss").write_text(text.replace(marker, fixed + marker))
    return folder


def _compile(path):
    dss = _dss()
    allow = dss.Basic.AllowChangeDir()
    dss.Basic.AllowChangeDir(False)  # compiling must not move pytest's cwd
    try:
        dss.Text.Command(f"compile [{path}]")
    finally:
        dss.Basic.AllowChangeDir(allow)
    return dss


def test_ieee13_matches_opendss(ieee13_folder):
    dss = _compile(ieee13_folder / "master.dss")
    dss.Text.Command("solve")
    assert dss.Solution.Converged()
    feeder = ieee13()
    y_err, y_err_entry, w_err, base_err = _compare(feeder, dss)
    assert y_err < 1e-9
    assert y_err_entry < 1e-9
    # YNN's condition number is ~2e8 (the 1e7 S switch and tiny Sub impedance), so
    # two correct LU solves differ by a few 1e-9 pu.
    assert w_err < 1e-8
    assert base_err < 1e-6


def test_ieee13_node_order_is_opendss_order(ieee13_folder):
    """With loads enabled (they register buses too), OpenDSS numbers nodes exactly
    as the builder does."""
    dss = _compile(ieee13_folder / "IEEE13Nodeckt.dss")
    names = [n.lower() for n in dss.Circuit.AllNodeNames()]
    assert list(ieee13().node_names) == names


def test_ieee13_default_voltage_bases_agree():
    """Default legal bases (source, winding kVs) give the same bases here."""
    np.testing.assert_array_equal(ieee13(voltage_bases_kv=None).base_v, ieee13().base_v)


def test_ieee13_loads():
    loads = ieee13().loads
    feeder = ieee13()
    assert loads.names == tuple(row[0] for row in IEEE13_LOADS)
    node = dict(zip(feeder.node_names, range(feeder.n_nodes)))
    rows = {}
    for k in range(loads.load.size):
        name = loads.names[loads.load[k]]
        rows.setdefault(name, []).append(
            (
                int(loads.node_a[k]),
                int(loads.node_b[k]),
                complex(loads.s_kva[k]),
                float(loads.v_nom_v[k]),
                int(loads.model[k]),
            )
        )
    third = complex(1155.0, 660.0) / 3
    assert rows["671"] == [
        (node["671.1"], node["671.2"], third, 4160.0, 1),
        (node["671.2"], node["671.3"], third, 4160.0, 1),
        (node["671.3"], node["671.1"], third, 4160.0, 1),
    ]
    assert rows["646"] == [(node["646.2"], node["646.3"], 230 + 132j, 4160.0, 2)]
    assert rows["692"] == [(node["692.3"], node["692.1"], 170 + 151j, 4160.0, 5)]
    assert rows["634a"] == [(node["634.1"], -1, 160 + 110j, 277.0, 1)]
    assert rows["652"] == [(node["652.1"], -1, 128 + 86j, 2400.0, 2)]
    touched = {
        f"{bus.split('.')[0]}.{k}" for _, bus, *_ in IEEE13_LOADS for k in
        bus.split(".")[1:]
    }  # fmt: skip
    assert set(feeder.injection_node_names) == touched


# --- smaller feeders with the other element kinds -----------------------------------


def _eulv_like():
    """European LV style: 50 Hz, Isc source, Dyn transformer, sequence-data lines,
    single-phase loads."""
    commands = [
        "set defaultbasefrequency=50",
        "new circuit.lv bus1=sourcebus basekv=11 pu=1.05 isc3=3000 isc1=5",
        "new transformer.tr1 buses=[sourcebus 1] conns=[delta wye] kvs=[11 0.416] "
        "kvas=[800 800] xhl=4 sub=y",
        "new linecode.4c_70 nphases=3 r1=0.446 x1=0.071 r0=1.505 x0=0.083 c1=0 c0=0 "
        "units=km",
        "new linecode.2c_16 nphases=3 r1=1.15 x1=0.088 r0=1.2 x0=0.088 c1=0 c0=0 "
        "units=km",
        "new line.l1 bus1=1 bus2=2 phases=3 linecode=4c_70 length=35.5 units=m",
        "new line.l2 bus1=2 bus2=3 phases=3 linecode=4c_70 length=12.1 units=m",
        "new line.l3 bus1=3 bus2=4 phases=3 linecode=2c_16 length=20.0 units=m",
        "new load.ld1 phases=1 bus1=3.1 kv=0.23 kw=1 pf=0.95",
        "new load.ld2 phases=1 bus1=4.2 kv=0.23 kw=1 pf=0.95",
        "set voltagebases=[11 .416]",
        "calcv",
    ]
    b = FeederBuilder("lv", frequency_hz=50.0, voltage_bases_kv=[11.0, 0.416])
    b.source("sourcebus", kv=11.0, pu=1.05, isc3=3000.0, isc1=5.0)
    b.transformer(
        "tr1",
        [
            Winding("sourcebus", "delta", kv=11.0, kva=800.0),
            Winding("1", "wye", kv=0.416, kva=800.0),
        ],
        xhl_pct=4.0,
    )
    for name, b1, b2, (r1, x1, r0, x0), metres in [
        ("l1", "1", "2", (0.446, 0.071, 1.505, 0.083), 35.5),
        ("l2", "2", "3", (0.446, 0.071, 1.505, 0.083), 12.1),
        ("l3", "3", "4", (1.15, 0.088, 1.2, 0.088), 20.0),
    ]:
        b.line(
            name,
            b1,
            b2,
            length_km=metres / 1000.0,
            z1_ohm_per_km=complex(r1, x1),
            z0_ohm_per_km=complex(r0, x0),
        )
    b.load("ld1", "3.1", kw=1.0, pf=0.95, kv=0.23)
    b.load("ld2", "4.2", kw=1.0, pf=0.95, kv=0.23)
    return commands, b


def _ieee123_like():
    """IEEE 123 style: ohmic source, 3-phase wye-wye regulator (ppm=0) at a tap,
    switches, a delta-delta transformer, 1-phase regulators and capacitors."""
    commands = [
        "set defaultbasefrequency=60",  # `clear` keeps a previous circuit's setting
        "new circuit.t bus1=150 basekv=4.16 pu=1.00 r1=0 x1=0.0001 r0=0 x0=0.0001",
        "new transformer.reg1a phases=3 windings=2 buses=[150 150r] conns=[wye wye] "
        "kvs=[4.16 4.16] kvas=[5000 5000] xhl=.001 %loadloss=0.00001 ppm=0.0",
        "transformer.reg1a.wdg=2 tap=1.04375",
        "new linecode.1 nphases=3 basefreq=60 units=kft "
        "rmatrix=[0.086666667 | 0.029545455 0.088371212 | 0.02907197 0.029924242 "
        "0.087405303] xmatrix=[0.204166667 | 0.095018939 0.198522727 | 0.072897727 "
        "0.080227273 0.201723485] cmatrix=[2.851710072 | -0.920293787 3.004631862 | "
        "-0.350755566 -0.585011253 2.71134756]",
        "new line.sw1 phases=3 bus1=150r bus2=149 switch=yes r1=1e-3 r0=1e-3 "
        "x1=0.000 x0=0.000 c1=0.000 c0=0.000 length=0.001",
        "new line.l115 bus1=149 bus2=1 linecode=1 length=0.4 units=kft",
        "new line.l3 phases=3 bus1=1.1.2.3 bus2=7.1.2.3 linecode=1 length=0.3 "
        "units=kft",
        "new transformer.reg2a phases=1 windings=2 buses=[7.1 9r.1] "
        "conns=[wye wye] kvs=[2.402 2.402] kvas=[2000 2000] xhl=.01 "
        "%loadloss=0.00001 ppm=0.0",
        "transformer.reg2a.wdg=2 tap=0.99375",
        "new transformer.xfm1 phases=3 windings=2 xhl=2.72 "
        "wdg=1 bus=7 conn=delta kv=4.16 kva=150 %r=0.635 "
        "wdg=2 bus=610 conn=delta kv=0.48 kva=150 %r=0.635",
        "new capacitor.c83 bus1=1 phases=3 kvar=600 kv=4.16",
        "new capacitor.c88a bus1=9r.1 phases=1 kvar=50 kv=2.402",
        "new load.s1a bus1=1.1 phases=1 conn=wye model=1 kv=2.4 kw=40.0 kvar=20.0",
        "new load.s610 bus1=610 phases=3 conn=delta model=2 kv=0.48 kw=30 kvar=10",
        "set controlmode=off",
        "batchedit load..* enabled=no",
        "set voltagebases=[4.16, 0.48]",
        "calcv",
    ]
    code = (
        _lower([0.086666667, 0.029545455, 0.088371212, 0.02907197, 0.029924242,
                0.087405303])
        + 1j * _lower([0.204166667, 0.095018939, 0.198522727, 0.072897727,
                       0.080227273, 0.201723485]),
        _lower([2.851710072, -0.920293787, 3.004631862, -0.350755566, -0.585011253,
                2.71134756]),
    )  # fmt: skip
    kft_km = 0.3048
    b = FeederBuilder("t", voltage_bases_kv=[4.16, 0.48])
    b.source("150", kv=4.16, z1_ohm=0.0001j, z0_ohm=0.0001j)
    b.transformer(
        "reg1a",
        [
            Winding("150", kv=4.16, kva=5000.0, r_pct=0.000005),
            Winding("150r", kv=4.16, kva=5000.0, r_pct=0.000005, tap=1.04375),
        ],
        xhl_pct=0.001,
        ppm_antifloat=0.0,
    )
    b.switch("sw1", "150r", "149", r_ohm=1e-3 * 0.001)
    for name, b1, b2, kft in [("l115", "149", "1", 0.4), ("l3", "1", "7", 0.3)]:
        b.line(
            name,
            b1,
            b2,
            length_km=kft * kft_km,
            z_ohm_per_km=code[0] / kft_km,
            c_nf_per_km=code[1] / kft_km,
        )
    b.transformer(
        "reg2a",
        [
            Winding("7.1", kv=2.402, kva=2000.0, r_pct=0.000005),
            Winding("9r.1", kv=2.402, kva=2000.0, r_pct=0.000005, tap=0.99375),
        ],
        phases=1,
        xhl_pct=0.01,
        ppm_antifloat=0.0,
    )
    b.transformer(
        "xfm1",
        [
            Winding("7", "delta", kv=4.16, kva=150.0, r_pct=0.635),
            Winding("610", "delta", kv=0.48, kva=150.0, r_pct=0.635),
        ],
        xhl_pct=2.72,
    )
    b.capacitor("c83", "1", kvar=600.0, kv=4.16)
    b.capacitor("c88a", "9r.1", kvar=50.0, kv=2.402, phases=1)
    b.load("s1a", "1.1", kw=40.0, kvar=20.0, kv=2.4)
    b.load("s610", "610", kw=30.0, kvar=10.0, kv=0.48, phases=3, conn="delta")
    return commands, b


@pytest.mark.parametrize(
    "make,w_tol",
    [(_eulv_like, 1e-8), (_ieee123_like, 5e-8)],
    ids=["eulv", "ieee123"],
)
def test_small_feeders_match_opendss(make, w_tol):
    """`w_tol` for "ieee123": bus 610 behind the delta-delta XFM1 is held to ground
    only by OpenDSS's 1-ppm anti-float susceptances (cond(YNN) ~ 1e13), so its
    common-mode voltage is good to ~1e-8 pu in any solver (dense and sparse LU differ
    by 2e-8 pu; OpenDSS's residual is ~1e4 times ours); all other nodes agree to 4e-10.
    """
    dss = _dss()
    commands, builder = make()
    dss.Text.Command("clear")
    for command in commands:
        dss.Text.Command(command)
    dss.Text.Command("batchedit load..* enabled=no")
    dss.Text.Command("solve")
    assert dss.Solution.Converged()
    y_err, y_err_entry, w_err, base_err = _compare(builder.build(), dss)
    assert y_err < 1e-9
    assert y_err_entry < 1e-9
    assert w_err < w_tol
    assert base_err < 1e-6


# --- element semantics --------------------------------------------------------------


def _line3(b, name, bus1, bus2):
    b.line(
        name,
        bus1,
        bus2,
        length_km=0.5,
        z1_ohm_per_km=0.3 + 0.6j,
        z0_ohm_per_km=0.7 + 1.9j,
    )


def test_primitive_equals_line():
    """An element given by its Yprim is the same as the modelled one."""
    a, b = _tiny(), _tiny()
    _line3(a, "l1", "sb", "x")
    y = el.line_yprim(el.sequence_to_phase(0.3 + 0.6j, 0.7 + 1.9j, 3), None, length=0.5)
    b.primitive("l1", ["sb.1", "sb.2", "sb.3", "x.1", "x.2", "x.3"], y)
    for bb in (a, b):
        bb.load("ld", "x.2", kw=10.0, kv=2.4)
    fa, fb = a.build(), b.build()
    assert fa.node_names == fb.node_names
    np.testing.assert_allclose(fa.y.todense(), fb.y.todense(), rtol=0, atol=0)
    np.testing.assert_allclose(fa.w, fb.w, rtol=1e-14)


def test_source_matrix_equals_sequence_impedances():
    z1, z0 = 0.5 + 2.0j, 1.5 + 6.0j
    a, b = FeederBuilder(), FeederBuilder()
    a.source("sb", kv=12.47, z1_ohm=z1, z0_ohm=z0)
    b.source("sb", kv=12.47, z_ohm=el.sequence_to_phase(z1, z0, 3))
    for bb in (a, b):
        _line3(bb, "l1", "sb", "x")
    np.testing.assert_allclose(a.build().w, b.build().w, rtol=1e-14)


def test_slack_nodes_and_emf():
    b = _tiny(pu=1.02, angle_deg=10.0)
    _line3(b, "l1", "sb", "x")
    f = b.build()
    assert f.slack_names == ("source_emf.1", "source_emf.2", "source_emf.3")
    expected = 1.02 * 4160 / math.sqrt(3) * np.exp(1j * np.deg2rad([10, -110, -230]))
    # OpenDSS's truncated degree constant turns the phasors by a few 1e-10 rad.
    np.testing.assert_allclose(f.v_slack, expected, rtol=1e-9)
    np.testing.assert_array_equal(
        f.v_slack, el.vsource_emf(kv=4.16, pu=1.02, angle_deg=10.0)
    )
    # Unloaded and uncoupled to ground, the network floats at the EMF.
    np.testing.assert_allclose(f.w[:3], f.v_slack, rtol=1e-12)


def test_load_pf_and_defaults():
    b = _tiny()
    _line3(b, "l1", "sb", "x")
    b.load("a", "x.1", kw=100.0, kv=2.4)
    b.load("b", "x.2", kw=100.0, kv=2.4, pf=-0.9)
    b.load("c", "x", kw=300.0, kvar=30.0, kv=4.16, phases=3, model="z")
    b.load("d", "x.1.2", kw=50.0, kvar=5.0, kv=4.16)
    b.load("e", "x.3.1", kw=-20.0, pf=0.8, kv=4.16, conn="delta", model=5)
    loads = b.build().loads
    s = loads.s_kva
    np.testing.assert_allclose(s[0], 100 + 100j * math.tan(math.acos(0.88)))
    np.testing.assert_allclose(s[1], 100 - 100j * math.tan(math.acos(0.9)))
    np.testing.assert_allclose(s[2:5], [100 + 10j] * 3)
    np.testing.assert_allclose(s[6], -20 - 15j)  # generation at pf 0.8 lagging
    np.testing.assert_allclose(loads.v_nom_v[2:5], 4160 / math.sqrt(3))
    # A 1-phase wye load on two phase nodes is phase to phase at its kV.
    assert loads.v_nom_v[5] == 4160.0 and loads.node_b[5] >= 0
    assert list(loads.model) == [1, 1, 2, 2, 2, 1, 5]
    assert loads.model.dtype == np.int64
    assert LoadModel(int(loads.model[6])) is LoadModel.CONSTANT_CURRENT


def test_wye_load_with_neutral_node():
    """The conductor after the phases is the neutral: here node 4, not ground."""
    b = _tiny()
    b.transformer(
        "t",
        [
            Winding("sb", "delta", kv=4.16, kva=100.0),
            Winding("x.1.2.3.4", kv=0.416, kva=100.0, rneut=5.0),
        ],
    )
    b.load("ld", "x.1.2.3.4", kw=30.0, kvar=3.0, kv=0.416, phases=3)
    f = b.build()
    neutral = f.node_index("x.4")[0]
    assert list(f.loads.node_b) == [neutral] * 3
    assert list(f.loads.node_a) == list(f.node_index(["x.1", "x.2", "x.3"]))
    # The neutral sits at ground potential at no load (balanced windings).
    assert abs(f.w[neutral]) < 1e-6


def test_ground_first_load_is_turned_around():
    b = _tiny()
    _line3(b, "l1", "sb", "x")
    b.load("ld", "x.0.2", kw=1.0, kv=2.4)
    loads = b.build().loads
    assert loads.node_b[0] == -1


def test_closed_switch_is_a_resistance_and_open_switch_islands():
    b = _tiny()
    _line3(b, "l1", "sb", "x")
    b.switch("s1", "x", "y", r_ohm=2e-3)
    f = b.build()
    i = f.node_index(["x.1", "y.1"])
    y = f.ynn
    np.testing.assert_allclose(y[i[1], i[1]], 500.0)
    np.testing.assert_allclose(y[i[0], i[1]], -500.0)
    b = _tiny()
    _line3(b, "l1", "sb", "x")
    b.switch("s1", "x", "y", closed=False)
    with pytest.raises(ValueError, match="islanded"):
        b.build()


def test_open_switch_between_fed_parts_contributes_nothing():
    def make(closed):
        b = _tiny()
        _line3(b, "l1", "sb", "x")
        _line3(b, "l2", "sb", "y")
        b.switch("s1", "x", "y", closed=closed)
        return b.build()

    opened, closed = make(False), make(True)
    i = opened.node_index(["x.1", "y.1"])
    assert opened.ynn[i[0], i[1]] == 0
    assert closed.ynn[i[0], i[1]] != 0


def test_default_voltage_bases_include_winding_voltages():
    b = FeederBuilder()
    b.source("sb", kv=12.47)
    b.transformer(
        "t1", [Winding("sb", kv=12.47, kva=500.0), Winding("lv", kv=0.48, kva=500.0)]
    )
    b.transformer(
        "t2",
        [Winding("sb.1", kv=7.2, kva=50.0), Winding("s.1", kv=0.24, kva=50.0)],
        phases=1,
    )
    f = b.build()
    by_bus = dict(zip((n.split(".")[0] for n in f.node_names), f.base_v))
    np.testing.assert_allclose(by_bus["sb"], 12470 / math.sqrt(3))
    np.testing.assert_allclose(by_bus["lv"], 480 / math.sqrt(3))
    np.testing.assert_allclose(by_bus["s"], 240.0)  # 1-phase: kV x sqrt(3) is legal


def test_names_are_lower_case_and_nodes_in_reference_order():
    b = FeederBuilder()
    b.source("SB", kv=4.16)
    b.line(
        "L1",
        "SB.3.1.2",
        "Far.3.1.2",
        length_km=0.1,
        z1_ohm_per_km=0.3 + 0.6j,
        z0_ohm_per_km=0.7 + 1.9j,
    )
    f = b.build()
    assert f.node_names == ("sb.1", "sb.2", "sb.3", "far.3", "far.1", "far.2")


def test_three_winding_transformer_builds():
    b = FeederBuilder()
    b.source("sb", kv=115.0)
    b.transformer(
        "t",
        [
            Winding("sb", kv=115.0, kva=20000.0),
            Winding("a", kv=12.47, kva=20000.0),
            Winding("b", "delta", kv=4.16, kva=10000.0),
        ],
        xhl_pct=8.0,
        xht_pct=12.0,
        xlt_pct=3.0,
    )
    f = b.build()
    va = np.abs(f.w[f.node_index("a.1")[0]])
    np.testing.assert_allclose(va, 12470 / math.sqrt(3), rtol=1e-3)
    assert np.allclose(f.ynn, f.ynn.T)


# --- input errors -------------------------------------------------------------------


def _ok_line(b):
    _line3(b, "l1", "sb", "x")


z3 = el.sequence_to_phase(0.3 + 0.6j, 0.7 + 1.9j, 3)

ERRORS = [
    # id, action on a builder with a source, message fragment
    ("load-negative-kv", lambda b: b.load("ld", "sb.1", kw=1.0, kv=-2.4),
     "Load 'ld': kv must be positive"),
    ("load-zero-kv", lambda b: b.load("ld", "sb.1", kw=1.0, kv=0.0),
     "kv must be positive"),
    ("load-pf-above-1", lambda b: b.load("ld", "sb.1", kw=1.0, kv=2.4, pf=1.2),
     "pf must be in"),
    ("load-pf-zero", lambda b: b.load("ld", "sb.1", kw=1.0, kv=2.4, pf=0.0),
     "pf must be in"),
    ("load-pf-and-kvar", lambda b: b.load("ld", "sb.1", kw=1.0, kv=2.4, pf=0.9,
                                          kvar=1.0), "kvar or pf, not both"),
    ("load-unknown-conn", lambda b: b.load("ld", "sb.1", kw=1.0, kv=2.4,
                                           conn="zigzag"), "unknown conn"),
    ("load-model-9", lambda b: b.load("ld", "sb.1", kw=1.0, kv=2.4, model=9),
     "does not exist"),
    ("load-zipv-missing", lambda b: b.load("ld", "sb.1", kw=1.0, kv=2.4, model=8),
     "needs its seven coefficients"),
    ("load-zipv-short", lambda b: b.load("ld", "sb.1", kw=1.0, kv=2.4, model=8,
                                         zipv=[1, 0, 0]), "seven finite numbers"),
    ("load-cvr-nan", lambda b: b.load("ld", "sb.1", kw=1.0, kv=2.4, model=4,
                                      cvr_watts=float("nan")), "cvr_watts"),
    ("load-partial-nodes", lambda b: b.load("ld", "sb.1", kw=1.0, kv=4.16,
                                            phases=3), "names 1 node"),
    ("load-too-many-nodes", lambda b: b.load("ld", "sb.1.2.3", kw=1.0, kv=2.4),
     "names 3 nodes but the element has 2"),
    ("load-ground-to-ground", lambda b: b.load("ld", "sb.0", kw=1.0, kv=2.4),
     "two distinct terminals"),
    ("load-zero-phases", lambda b: b.load("ld", "sb", kw=1.0, kv=2.4, phases=0),
     "phases must be at least 1"),
    ("bad-node", lambda b: b.load("ld", "sb.a", kw=1.0, kv=2.4), "non-integer node"),
    ("repeated-node", lambda b: b.load("ld", "sb.1.1", kw=1.0, kv=2.4),
     "repeats a node"),
    ("line-shape-vs-phases", lambda b: b.line("l", "sb", "x", length_km=1.0,
                                              z_ohm_per_km=z3, phases=2),
     "with 2 phase"),
    ("line-not-square", lambda b: b.line("l", "sb", "x", length_km=1.0,
                                         z_ohm_per_km=np.ones((2, 3))),
     "square matrix"),
    ("line-c-shape", lambda b: b.line("l", "sb", "x", length_km=1.0,
                                      z_ohm_per_km=z3, c_nf_per_km=np.eye(2)),
     "c_nf_per_km has shape"),
    ("line-both-forms", lambda b: b.line("l", "sb", "x", length_km=1.0,
                                         z_ohm_per_km=z3, z1_ohm_per_km=1j),
     "give either"),
    ("line-no-z0", lambda b: b.line("l", "sb", "x", length_km=1.0,
                                    z1_ohm_per_km=1j), "needs z0_ohm_per_km"),
    ("line-zero-length", lambda b: b.line("l", "sb", "x", length_km=0.0,
                                          z_ohm_per_km=z3), "length_km must be"),
    ("line-bus-nodes", lambda b: b.line("l", "sb.1.2", "x", length_km=1.0,
                                        z_ohm_per_km=z3), "names 2 node"),
    ("line-singular", lambda b: b.line("l", "sb", "x", length_km=1.0,
                                       z_ohm_per_km=np.zeros((3, 3))), "singular"),
    ("transformer-kva", lambda b: b.transformer(
        "t", [Winding("sb", kva=0.0), Winding("x")]), "winding 1: kva must be"),
    ("transformer-kv", lambda b: b.transformer(
        "t", [Winding("sb"), Winding("x", kv=-1.0)]), "winding 2: kv must be"),
    ("transformer-tap", lambda b: b.transformer(
        "t", [Winding("sb"), Winding("x", tap=0.0)]), "tap must be positive"),
    ("transformer-conn", lambda b: b.transformer(
        "t", [Winding("sb", conn="zig"), Winding("x")]), "unknown conn"),
    ("transformer-one-winding", lambda b: b.transformer("t", [Winding("sb")]),
     "at least two windings"),
    ("transformer-four-windings", lambda b: b.transformer(
        "t", [Winding("sb"), Winding("a"), Winding("b"), Winding("c")]),
     "give the reactances as xsc_pct"),
    ("transformer-xsc-length", lambda b: b.transformer(
        "t", [Winding("sb"), Winding("x")], xsc_pct=[1.0, 2.0]), "needs 1 value"),
    ("transformer-negative-x", lambda b: b.transformer(
        "t", [Winding("sb"), Winding("x")], xhl_pct=-1.0), "must be positive"),
    ("transformer-negative-r", lambda b: b.transformer(
        "t", [Winding("sb"), Winding("x", r_pct=-0.1)]), "r_pct must be zero"),
    ("capacitor-kvar", lambda b: b.capacitor("c", "sb", kvar=0.0, kv=4.16),
     "kvar must be positive"),
    ("capacitor-delta-bus2", lambda b: b.capacitor(
        "c", "sb", kvar=10.0, kv=4.16, conn="delta", bus2="x"), "no bus2"),
    ("second-source", lambda b: b.source("x", kv=4.16), "exactly one source"),
    ("source-z-shape", lambda b: FeederBuilder().source(
        "x", kv=4.16, z_ohm=np.eye(2)), "z_ohm has shape"),
    ("source-z-and-mva", lambda b: FeederBuilder().source(
        "x", kv=4.16, z_ohm=np.eye(3), mvasc3=10.0), "one way"),
    ("source-kv", lambda b: FeederBuilder().source("x", kv=0.0), "kv must be"),
    ("source-mva-and-isc", lambda b: FeederBuilder().source(
        "x", kv=4.16, mvasc3=10.0, isc3=10.0), "one way"),
    ("primitive-shape", lambda b: b.primitive("p", ["sb.1", "x.1"], np.eye(3)),
     "y has shape"),
    ("primitive-terminal", lambda b: b.primitive("p", ["sb.1.2"], np.eye(1)),
     "one conductor"),
    ("duplicate-name", lambda b: (_ok_line(b), _ok_line(b)), "already exists"),
    ("dotted-name", lambda b: b.load("a.b", "sb.1", kw=1.0, kv=2.4),
     "without '.'"),
    ("build-without-source", lambda b: FeederBuilder().build(), "has no source"),
    ("bad-frequency", lambda b: FeederBuilder(frequency_hz=0.0), "frequency_hz"),
    ("bad-bases", lambda b: FeederBuilder(voltage_bases_kv=[4.16, -1.0]),
     "voltage_bases_kv"),
]  # fmt: skip


@pytest.mark.parametrize(
    "action,match", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS]
)
def test_input_errors(action, match):
    b = _tiny()
    with pytest.raises(ValueError, match=match):
        action(b)


def test_windings_must_be_winding_objects():
    b = _tiny()
    with pytest.raises(TypeError, match="Winding"):
        b.transformer("t", [Winding("sb"), {"bus": "x"}])  # type: ignore[list-item]


def test_floating_delta_winding_is_reported():
    """A delta secondary with nothing referencing ground (and no anti-float
    susceptance) floats: the builder reports a singular YNN instead of returning
    nonsense voltages."""
    b = FeederBuilder()
    b.source("sb", kv=12.47)
    b.transformer(
        "t",
        [Winding("sb", kv=12.47), Winding("x", "delta", kv=4.16)],
        ppm_antifloat=0.0,
    )
    with pytest.raises(ValueError, match="singular"):
        b.build()


# --- real feeders through `primitive` -----------------------------------------------

# No-load voltages agree to rounding amplified by the network's conditioning
# (cond(YNN) is 9e12 on IEEE 123, 1e9 on the full European LV feeder), so the
# limit is empirical, not a normwise bound (which would be vacuous): the largest
# difference was 5.3e-9 / 6.7e-9 pu on IEEE 123 and 3.4e-9 pu on the European LV
# feeder, differing between two CPUs of the same kind (the LAPACK kernels round
# differently). 2e-8 pu is still 50x inside the power-flow acceptance (1e-6 pu);
# the strict check of the assembly is the system Y, to 1e-9.
REAL_FEEDERS = [
    ("ieee123", DATA / "ieee123" / "IEEE123Master.dss", 2e-8),
    ("eulv", DATA / "european_lv" / "Master.dss", 2e-8),
    ("eulv-reduced", DATA / "european_lv_reduced" / "Master_reduced.dss", 2e-8),
]


def _yprim(dss):
    raw = np.asarray(dss.CktElement.YPrim())
    n = int(round(math.sqrt(raw.size // 2)))
    return (raw[0::2] + 1j * raw[1::2]).reshape(n, n)


@pytest.mark.parametrize(
    "path,w_tol", [f[1:] for f in REAL_FEEDERS], ids=[f[0] for f in REAL_FEEDERS]
)
def test_primitives_reproduce_real_feeders(path, w_tol):
    """Every element handed over as OpenDSS's own Yprim (`primitive`), the source as
    its impedance matrix: the builder's assembly, node order and voltage bases give
    OpenDSS's system Y, no-load voltages and bases on whole feeders."""
    dss = _compile(path)
    dss.Text.Command("batchedit load..* enabled=no")
    dss.Text.Command("set controlmode=off")
    dss.Text.Command("solve")
    b = FeederBuilder(
        "real",
        frequency_hz=dss.Solution.Frequency(),
        voltage_bases_kv=list(dss.Settings.VoltageBases()),
    )
    dss.Vsources.First()
    dss.Circuit.SetActiveElement("Vsource.source")
    y = _yprim(dss)
    n = y.shape[0] // 2
    b.source(
        dss.CktElement.BusNames()[0].split(".")[0],
        kv=dss.Vsources.BasekV(),
        pu=dss.Vsources.PU(),
        angle_deg=dss.Vsources.AngleDeg(),
        phases=n,
        z_ohm=np.linalg.inv(y[:n, :n]),
    )
    skip = ("vsource.", "load.", "energymeter.", "monitor.", "regcontrol.")
    for name in dss.Circuit.AllElementNames():
        if name.lower().startswith(skip):
            continue
        dss.Circuit.SetActiveElement(name)
        if not dss.CktElement.Enabled():
            continue
        buses = dss.CktElement.BusNames()
        nodes = dss.CktElement.NodeOrder()
        nc = dss.CktElement.NumConductors()
        terminals = [f"{buses[i // nc].split('.')[0]}.{k}" for i, k in enumerate(nodes)]
        b.primitive(name.replace(".", "_"), terminals, _yprim(dss))
    feeder = b.build()
    y_err, y_err_entry, w_err, base_err = _compare(feeder, dss)
    assert y_err < 1e-9
    assert y_err_entry < 1e-9
    assert w_err < w_tol
    assert base_err < 1e-6
    assert list(feeder.node_names) == [n.lower() for n in dss.Circuit.AllNodeNames()]
