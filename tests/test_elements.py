"""Element primitive admittances against OpenDSS (AltDSS engine via opendssdirect.py).

Each case builds a one-element circuit in OpenDSS, reads the element's `YPrim`, and
compares it with gridflex's element model (`gridflex.feeders.line_yprim`, ...) to
1e-9 relative to the largest entry.
"""

import math

import numpy as np
import pytest

import gridflex.feeders as el


dss = pytest.importorskip("opendssdirect")

RTOL = 1e-9
MI = 5280.0  # ft per mile


def _dss_yprim(commands, element, *, frequency=60.0, circuit="basekv=12.47"):
    """Compile a tiny circuit and return the element's (Yprim, node order, buses)."""
    dss.Text.Command("clear")
    dss.Text.Command(f"set defaultbasefrequency={frequency}")
    dss.Text.Command(f"new circuit.t bus1=sourcebus {circuit}")
    for command in commands:
        dss.Text.Command(command)
    dss.Text.Command("set voltagebases=[12.47]")
    dss.Text.Command("calcv")
    dss.Circuit.SetActiveElement(element)
    assert dss.CktElement.Name().lower() == element.lower(), element
    raw = np.asarray(dss.CktElement.YPrim(), dtype=np.float64)
    n = int(round(math.sqrt(raw.size // 2)))
    y = (raw[0::2] + 1j * raw[1::2]).reshape(n, n)
    return y, list(dss.CktElement.NodeOrder()), list(dss.CktElement.BusNames())


def _rel_err(ours, ref):
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    return np.abs(ours - ref).max() / np.abs(ref).max()


def _rmat(lower):
    """A symmetric matrix from OpenDSS's lower-triangle row list."""
    n = int(round((math.sqrt(8 * len(lower) + 1) - 1) / 2))
    out = np.zeros((n, n))
    k = 0
    for i in range(n):
        for j in range(i + 1):
            out[i, j] = out[j, i] = lower[k]
            k += 1
    return out


def _dss_mat(lower):
    rows, k, n = [], 0, int(round((math.sqrt(8 * len(lower) + 1) - 1) / 2))
    for i in range(n):
        rows.append(" ".join(str(v) for v in lower[k : k + i + 1]))
        k += i + 1
    return "[" + " | ".join(rows) + "]"


# --- lines --------------------------------------------------------------------------

MTX601 = dict(
    r=[0.3465, 0.1560, 0.3375, 0.1580, 0.1535, 0.3414],
    x=[1.0179, 0.5017, 1.0478, 0.4236, 0.3849, 1.0348],
    c=None,
)
MTX603 = dict(r=[1.3238, 0.2066, 1.3294], x=[1.3569, 0.4591, 1.3471], c=None)
MTX606 = dict(
    r=[0.791721, 0.318476, 0.781649, 0.28345, 0.318476, 0.791721],
    x=[0.438352, 0.0276838, 0.396697, -0.0184204, 0.0276838, 0.438352],
    c=[383.948, 0, 383.948, 0, 0, 383.948],
)
MTX605 = dict(r=[1.3292], x=[1.3475], c=None)
MTX607 = dict(r=[1.3425], x=[0.5124], c=[236.0])
IEEE123_1 = dict(
    r=[0.086666667, 0.029545455, 0.088371212, 0.02907197, 0.029924242, 0.087405303],
    x=[0.204166667, 0.095018939, 0.198522727, 0.072897727, 0.080227273, 0.201723485],
    c=[2.851710072, -0.920293787, 3.004631862, -0.350755566, -0.585011253, 2.71134756],
)

MATRIX_LINES = [
    # id, code, units, bus1, bus2, length (in code units), length as written, freq
    ("ieee13-601", MTX601, "mi", "a", "b", 2000 / MI, "2000 units=ft", 60.0),
    ("ieee13-603-2ph", MTX603, "mi", "a.3.2", "b.3.2", 500 / MI, "500 units=ft", 60.0),
    ("ieee13-606-cmat", MTX606, "mi", "a", "b", 500 / MI, "500 units=ft", 60.0),
    (
        "ieee13-605-1ph-default-c",
        MTX605,
        "mi",
        "a.3",
        "b.3",
        300 / MI,
        "300 units=ft",
        60.0,
    ),
    ("ieee13-607-1ph", MTX607, "mi", "a.1", "b.1", 800 / MI, "800 units=ft", 60.0),
    ("ieee123-1", IEEE123_1, "kft", "a", "b", 0.4, "0.4 units=kft", 60.0),
]


@pytest.mark.parametrize(
    "code,units,bus1,bus2,length,written,freq",
    [case[1:] for case in MATRIX_LINES],
    ids=[case[0] for case in MATRIX_LINES],
)
def test_line_from_matrices(code, units, bus1, bus2, length, written, freq):
    n = int(round((math.sqrt(8 * len(code["r"]) + 1) - 1) / 2))
    cmat = f" cmatrix={_dss_mat(code['c'])}" if code["c"] is not None else ""
    ref, _, _ = _dss_yprim(
        [
            f"new linecode.lc nphases={n} basefreq={freq} units={units} "
            f"rmatrix={_dss_mat(code['r'])} xmatrix={_dss_mat(code['x'])}{cmat}",
            f"new line.l phases={n} bus1={bus1} bus2={bus2} linecode=lc "
            f"length={written}",
        ],
        "Line.l",
        frequency=freq,
    )
    z = _rmat(code["r"]) + 1j * _rmat(code["x"])
    # A linecode without cmatrix keeps OpenDSS's default capacitance.
    c = el.linecode_default_c_nf(n) if code["c"] is None else _rmat(code["c"])
    ours = el.line_yprim(z, c, length=length, frequency_hz=freq)
    assert _rel_err(ours, ref) < RTOL


SEQUENCE_LINES = [
    # id, phases, r1, x1, r0, x0, c1, c0, length
    ("3ph", 3, 0.3, 0.6, 0.7, 1.9, 10.0, 4.0, 1.3),
    ("2ph", 2, 0.3, 0.6, 0.7, 1.9, 10.0, 4.0, 0.4),
    ("1ph-uses-z1", 1, 0.3, 0.6, 0.7, 1.9, 10.0, 4.0, 0.25),
    ("eulv-4c_70", 3, 0.446, 0.071, 1.505, 0.083, 0.0, 0.0, 1.098e-3),
]


@pytest.mark.parametrize(
    "phases,r1,x1,r0,x0,c1,c0,length",
    [case[1:] for case in SEQUENCE_LINES],
    ids=[case[0] for case in SEQUENCE_LINES],
)
def test_line_from_sequence_data(phases, r1, x1, r0, x0, c1, c0, length):
    ref, _, _ = _dss_yprim(
        [
            f"new linecode.lc nphases={phases} r1={r1} x1={x1} r0={r0} x0={x0} "
            f"c1={c1} c0={c0} units=km",
            f"new line.l phases={phases} bus1=a bus2=b linecode=lc "
            f"length={length * 1000} units=m",
        ],
        "Line.l",
    )
    z = el.sequence_to_phase(complex(r1, x1), complex(r0, x0), phases)
    c = el.sequence_to_phase(c1, c0, phases)
    ours = el.line_yprim(z, c, length=length)
    assert _rel_err(ours, ref) < RTOL
    # The same line given directly on the Line (no linecode).
    ref2, _, _ = _dss_yprim(
        [
            f"new line.l phases={phases} bus1=a bus2=b r1={r1} x1={x1} r0={r0} "
            f"x0={x0} c1={c1} c0={c0} length={length} units=km"
        ],
        "Line.l",
    )
    assert _rel_err(ours, ref2) < RTOL


def test_line_frequency_scaling_with_earth_return():
    """A 60 Hz linecode in a 50 Hz circuit: X and B scale, and OpenDSS's earth-return
    correction (linecode defaults Rg, Xg, rho) enters."""
    code = MTX606
    ref, _, _ = _dss_yprim(
        [
            f"new linecode.lc nphases=3 basefreq=60 units=mi "
            f"rmatrix={_dss_mat(code['r'])} xmatrix={_dss_mat(code['x'])} "
            f"cmatrix={_dss_mat(code['c'])}",
            "new line.l bus1=a bus2=b linecode=lc length=0.3 units=mi",
        ],
        "Line.l",
        frequency=50.0,
    )
    z = _rmat(code["r"]) + 1j * _rmat(code["x"])
    kwargs = dict(length=0.3, frequency_hz=50.0, base_frequency_hz=60.0)
    ours = el.line_yprim(
        z,
        _rmat(code["c"]),
        rg_ohm=el.OPENDSS_LINE_RG,
        xg_ohm=el.OPENDSS_LINE_XG,
        **kwargs,
    )
    assert _rel_err(ours, ref) < RTOL
    # Without the correction the difference is visible, so the test has teeth.
    plain = el.line_yprim(z, _rmat(code["c"]), **kwargs)
    assert _rel_err(plain, ref) > 1e-4


def test_switch_defaults():
    """`Switch=yes` alone: r1=x1=r0=x0=1, c1=1.1 nF, c0=1 nF per unit, length 0.001."""
    ref, _, _ = _dss_yprim(["new line.sw bus1=a bus2=b switch=yes"], "Line.sw")
    d = el.OPENDSS_SWITCH_DATA
    z = el.sequence_to_phase(complex(d["r1"], d["x1"]), complex(d["r0"], d["x0"]), 3)
    c = el.sequence_to_phase(d["c1_nf"], d["c0_nf"], 3)
    ours = el.line_yprim(z, c, length=el.OPENDSS_SWITCH_LENGTH)
    assert _rel_err(ours, ref) < RTOL


@pytest.mark.parametrize("phases,r", [(3, 1e-4), (1, 1e-3)], ids=["ieee13", "ieee123"])
def test_switch_as_in_ieee_feeders(phases, r):
    bus2 = "b" if phases == 3 else "b.1"
    ref, _, _ = _dss_yprim(
        [
            f"new line.sw phases={phases} bus1=a bus2={bus2} switch=y r1={r} r0={r} "
            "x1=0.000 x0=0.000 c1=0.000 c0=0.000"
        ],
        "Line.sw",
    )
    z = el.sequence_to_phase(r, r, phases)
    ours = el.line_yprim(z, None, length=el.OPENDSS_SWITCH_LENGTH)
    assert _rel_err(ours, ref) < RTOL


# --- transformers -------------------------------------------------------------------

TRANSFORMERS = [
    dict(
        id="ieee13-sub-delta-wye",
        dss="phases=3 windings=2 xhl=0.008 "
        "wdg=1 bus=sourcebus conn=delta kv=115 kva=5000 %r=0.0005 "
        "wdg=2 bus=650 conn=wye kv=4.16 kva=5000 %r=0.0005",
        phases=3, conns=["delta", "wye"], kvs=[115.0, 4.16], kva=5000.0,
        r_pct=[0.0005, 0.0005], xsc_pct=[0.008],
    ),
    dict(
        id="ieee13-xfm1-wye-wye",
        dss="phases=3 windings=2 xhl=2 wdg=1 bus=633 conn=wye kv=4.16 kva=500 "
        "%r=.55 wdg=2 bus=634 conn=wye kv=0.480 kva=500 %r=.55",
        phases=3, conns=["wye", "wye"], kvs=[4.16, 0.48], kva=500.0,
        r_pct=[0.55, 0.55], xsc_pct=[2.0],
    ),
    dict(
        id="ieee13-reg1-tap1.0625",
        dss="phases=1 bank=reg1 xhl=0.01 kvas=[1666 1666] buses=[650.1 rg60.1] "
        "kvs=[2.4 2.4] %loadloss=0.01 taps=[1.0 1.0625]",
        phases=1, conns=["wye", "wye"], kvs=[2.4, 2.4], kva=1666.0,
        r_pct=[0.005, 0.005], xsc_pct=[0.01], taps=[1.0, 1.0625],
    ),
    dict(
        id="ieee13-reg3-tap1.06875",
        dss="phases=1 xhl=0.01 kvas=[1666 1666] buses=[650.3 rg60.3] "
        "kvs=[2.4 2.4] %loadloss=0.01 taps=[1.0 1.06875]",
        phases=1, conns=["wye", "wye"], kvs=[2.4, 2.4], kva=1666.0,
        r_pct=[0.005, 0.005], xsc_pct=[0.01], taps=[1.0, 1.06875],
    ),
    dict(
        id="ieee123-reg1a-wye-wye",
        dss="phases=3 windings=2 buses=[150 150r] conns=[wye wye] kvs=[4.16 4.16] "
        "kvas=[5000 5000] xhl=.001 %loadloss=0.00001 ppm=0.0 taps=[1 1.04375]",
        phases=3, conns=["wye", "wye"], kvs=[4.16, 4.16], kva=5000.0,
        r_pct=[0.000005, 0.000005], xsc_pct=[0.001], taps=[1.0, 1.04375],
        ppm_antifloat=0.0,
    ),
    dict(
        id="ieee123-xfm1-delta-delta",
        dss="phases=3 windings=2 xhl=2.72 wdg=1 bus=61s conn=delta kv=4.16 "
        "kva=150 %r=0.635 wdg=2 bus=610 conn=delta kv=0.48 kva=150 %r=0.635",
        phases=3, conns=["delta", "delta"], kvs=[4.16, 0.48], kva=150.0,
        r_pct=[0.635, 0.635], xsc_pct=[2.72],
    ),
    dict(
        id="eulv-tr1-dyn",
        dss="buses=[sourcebus 1] conns=[delta wye] kvs=[11 0.416] kvas=[800 800] "
        "xhl=4 sub=y",
        phases=3, conns=["delta", "wye"], kvs=[11.0, 0.416], kva=800.0,
        r_pct=[0.2, 0.2], xsc_pct=[4.0], frequency=50.0,
    ),
    dict(
        id="wye-hv-delta-lv-tapped-neutral-node",
        dss="phases=3 windings=2 buses=[a.1.2.3.4 b] conns=[wye delta] "
        "kvs=[12.47 4.16] kvas=[300 300] xhl=5.5 %rs=[0.7 0.9] taps=[0.975 1.025] "
        "wdg=1 rneut=2.5 xneut=1.5 %noloadloss=0.3 %imag=1.2",
        phases=3, conns=["wye", "delta"], kvs=[12.47, 4.16], kva=300.0,
        r_pct=[0.7, 0.9], xsc_pct=[5.5], taps=[0.975, 1.025],
        rneut=[2.5, -1.0], xneut=[1.5, 0.0], noload_loss_pct=0.3, imag_pct=1.2,
    ),
    dict(
        id="delta-wye-hv-leads-lv",
        dss="phases=3 windings=2 buses=[a b] conns=[delta wye] kvs=[12.47 0.48] "
        "kvas=[1000 1000] xhl=6 leadlag=lead",
        phases=3, conns=["delta", "wye"], kvs=[12.47, 0.48], kva=1000.0,
        r_pct=[0.2, 0.2], xsc_pct=[6.0], hv_leads_lv=True,
    ),
    dict(
        id="three-winding-wye-wye-delta",
        dss="phases=3 windings=3 buses=[a b c] conns=[wye wye delta] "
        "kvs=[115 12.47 4.16] kvas=[20000 20000 10000] xhl=8 xht=12 xlt=3 "
        "%rs=[0.3 0.4 0.5] taps=[1 1.0125 0.9875] %imag=0.8 %noloadloss=0.2 wdg=2 "
        "rneut=0 xneut=0",
        phases=3, conns=["wye", "wye", "delta"], kvs=[115.0, 12.47, 4.16], kva=20000.0,
        r_pct=[0.3, 0.4, 0.5], xsc_pct=[8.0, 12.0, 3.0], taps=[1.0, 1.0125, 0.9875],
        imag_pct=0.8, noload_loss_pct=0.2, rneut=[-1.0, 0.0, -1.0],
    ),
    dict(
        id="split-phase-service-1ph-3wdg",
        dss="phases=1 windings=3 buses=[a.1 s.1.0 s.0.2] kvs=[7.2 0.12 0.12] "
        "kvas=[25 25 25] %rs=[0.6 1.2 1.2] xhl=2.04 xht=2.04 xlt=1.36 %imag=0.5",
        phases=1, conns=["wye", "wye", "wye"], kvs=[7.2, 0.12, 0.12], kva=25.0,
        r_pct=[0.6, 1.2, 1.2], xsc_pct=[2.04, 2.04, 1.36], imag_pct=0.5,
    ),
]  # fmt: skip


@pytest.mark.parametrize("case", TRANSFORMERS, ids=[t["id"] for t in TRANSFORMERS])
def test_transformer(case):
    case = dict(case)
    case.pop("id")
    command = "new transformer.t " + case.pop("dss")
    frequency = case.pop("frequency", 60.0)
    ref, _, _ = _dss_yprim([command], "Transformer.t", frequency=frequency)
    ours = el.transformer_yprim(**case)
    assert _rel_err(ours, ref) < RTOL


def test_transformer_magnetising_branch_is_on_winding_2():
    """OpenDSS puts %imag / %noloadloss on winding 2 (the winding "closest to the
    core"), not on winding 1."""
    base = dict(
        phases=1, conns=["wye", "wye"], kvs=[7.2, 2.4], kva=100.0, r_pct=[1.0, 1.0],
        xsc_pct=[5.0], ppm_antifloat=0.0,
    )  # fmt: skip
    y0 = el.transformer_yprim(**base)
    y1 = el.transformer_yprim(**base, imag_pct=5.0)
    d = y1 - y0
    assert np.abs(d[:2, :2]).max() == 0.0
    np.testing.assert_allclose(d[2, 2], -0.05j * 100e3 / 2400.0**2, rtol=1e-12)


# --- capacitors ---------------------------------------------------------------------

CAPACITORS = [
    # id, OpenDSS definition, phases, kvar, kv, conn
    ("ieee13-cap1-3ph-wye", "bus1=675 phases=3 kvar=600 kv=4.16", 3, 600.0, 4.16,
     "wye"),
    ("ieee13-cap2-1ph-wye", "bus1=611.3 phases=1 kvar=100 kv=2.4", 1, 100.0, 2.4,
     "wye"),
    ("3ph-delta", "bus1=x phases=3 kvar=450 kv=4.16 conn=delta", 3, 450.0, 4.16,
     "delta"),
    ("1ph-delta", "bus1=x.1.2 phases=1 kvar=50 kv=4.16 conn=delta", 1, 50.0, 4.16,
     "delta"),
    ("2ph-wye", "bus1=x.1.3 phases=2 kvar=200 kv=4.16", 2, 200.0, 4.16, "wye"),
    ("wye-to-bus2", "bus1=x phases=3 kvar=300 kv=12.47 bus2=y", 3, 300.0, 12.47,
     "wye"),
    ("two-steps-quirk",
     "bus1=x phases=3 numsteps=2 kvar=[300 600] kv=12.47 states=[1 1]",
     3, [300.0, 600.0], 12.47, "wye"),
]  # fmt: skip


@pytest.mark.parametrize(
    "command,phases,kvar,kv,conn",
    [c[1:] for c in CAPACITORS],
    ids=[c[0] for c in CAPACITORS],
)
def test_capacitor(command, phases, kvar, kv, conn):
    ref, _, _ = _dss_yprim([f"new capacitor.c {command}"], "Capacitor.c")
    ours = el.capacitor_yprim(phases=phases, kvar=kvar, kv=kv, conn=conn)
    assert _rel_err(ours, ref) < RTOL


# --- sources ------------------------------------------------------------------------

SOURCES = [
    dict(
        id="ieee13",
        dss="basekv=115 pu=1.0001 phases=3 angle=30 mvasc3=20000 mvasc1=21000",
        kw=dict(kv=115.0, mvasc3=20000.0, mvasc1=21000.0),
        emf=dict(kv=115.0, pu=1.0001, angle_deg=30.0),
    ),
    dict(
        id="ieee123",
        dss="basekv=4.16 pu=1.00 r1=0 x1=0.0001 r0=0 x0=0.0001",
        kw=dict(kv=4.16, z1_ohm=0.0001j, z0_ohm=0.0001j),
        emf=dict(kv=4.16),
    ),
    dict(
        id="eulv",
        dss="basekv=11 pu=1.05 isc3=3000 isc1=5",
        kw=dict(kv=11.0, isc3=3000.0, isc1=5.0),
        emf=dict(kv=11.0, pu=1.05),
        frequency=50.0,
    ),
    dict(id="defaults", dss="basekv=12.47", kw=dict(kv=12.47), emf=dict(kv=12.47)),
    dict(
        id="xr-ratios",
        dss="basekv=69 mvasc3=1500 mvasc1=1200 x1r1=8 x0r0=5 angle=-15",
        kw=dict(kv=69.0, mvasc3=1500.0, mvasc1=1200.0, x1r1=8.0, x0r0=5.0),
        emf=dict(kv=69.0, angle_deg=-15.0),
    ),
    dict(
        id="z1-z0-asymmetric-seq",
        dss="basekv=12.47 r1=0.3 x1=2.1 r0=0.9 x0=6.3",
        kw=dict(kv=12.47, z1_ohm=0.3 + 2.1j, z0_ohm=0.9 + 6.3j),
        emf=dict(kv=12.47),
    ),
    dict(
        id="1ph-mvasc",
        dss="basekv=7.2 phases=1 mvasc3=300 mvasc1=250",
        kw=dict(kv=7.2, phases=1, mvasc3=300.0, mvasc1=250.0),
        emf=dict(kv=7.2, phases=1),
    ),
    dict(
        id="1ph-z1-ignores-z0",
        dss="basekv=7.2 phases=1 r1=0.5 x1=1.5 r0=2 x0=4",
        kw=dict(kv=7.2, phases=1, z1_ohm=0.5 + 1.5j, z0_ohm=2 + 4j),
        emf=dict(kv=7.2, phases=1),
    ),
]


@pytest.mark.parametrize("case", SOURCES, ids=[s["id"] for s in SOURCES])
def test_vsource(case):
    freq = case.get("frequency", 60.0)
    dss.Text.Command("clear")
    dss.Text.Command(f"set defaultbasefrequency={freq}")
    dss.Text.Command(f"new circuit.t bus1=sourcebus {case['dss']}")
    dss.Text.Command("set voltagebases=[1]")
    dss.Text.Command("calcv")
    dss.Circuit.SetActiveElement("Vsource.source")
    raw = np.asarray(dss.CktElement.YPrim())
    n = int(round(math.sqrt(raw.size // 2)))
    ref = (raw[0::2] + 1j * raw[1::2]).reshape(n, n)
    z = el.vsource_impedance(**case["kw"])
    assert _rel_err(el.series_yprim(z), ref) < RTOL
    # Unloaded, the bus sits at the EMF.
    dss.Solution.Solve()
    v = np.asarray(dss.Circuit.AllBusVolts())
    v = v[0::2] + 1j * v[1::2]
    emf = el.vsource_emf(**case["emf"])
    assert np.abs(v - emf).max() / np.abs(emf).max() < 1e-12


def test_sequence_to_phase_one_phase_ignores_z0():
    np.testing.assert_array_equal(el.sequence_to_phase(1 + 2j, 5 + 9j, 1), [[1 + 2j]])


def test_bad_connection_is_a_value_error():
    with pytest.raises(ValueError, match="Unknown connection"):
        el.capacitor_yprim(phases=3, kvar=100.0, kv=4.16, conn="zigzag")
