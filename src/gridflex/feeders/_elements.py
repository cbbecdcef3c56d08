"""Primitive admittance matrices of network elements, computed as OpenDSS computes them.

Every function here returns an element's `Yprim` in siemens (complex128), over the
element's terminal conductors in OpenDSS's order (terminal 1's conductors, then
terminal 2's, ...), so that it can be compared entry by entry with
`opendssdirect.CktElement.YPrim()`. The formulas are our reading of the OpenDSS
engine (AltDSS / DSS C-API, which `opendssdirect.py` wraps): `Line.pas`,
`Transformer.pas`, `Capacitor.pas` and `VSource.pas`, checked numerically against it
in `tests/test_elements.py`. Where OpenDSS does something surprising, the comment says
so, because matching it is the point.

Plain NumPy on the host: these run once per feeder, in float64, before anything is
traced.
"""

import math
from collections.abc import Sequence

import numpy as np
from jaxtyping import Complex, Float


_SQRT3 = math.sqrt(3.0)
# OpenDSS's `PDEGtoCompLeX` divides degrees by this truncated 180/pi.
_OPENDSS_DEG_PER_RAD = 57.29577951

OPENDSS_LINE_RG = 0.01805
"""OpenDSS's Line default earth-return resistance (ohm per length unit): with
`OPENDSS_LINE_XG` and `OPENDSS_LINE_RHO` it corrects a line's impedance only when the
line is solved away from its base frequency."""
OPENDSS_LINE_XG = 0.155081
"""OpenDSS's Line default earth-return reactance (ohm per length unit)."""
OPENDSS_LINE_RHO = 100.0
"""OpenDSS's Line default earth resistivity (ohm-metre)."""

OPENDSS_SWITCH_DATA = dict(r1=1.0, x1=1.0, r0=1.0, x0=1.0, c1_nf=1.1, c0_nf=1.0)
"""What OpenDSS's `Line ... Switch=yes` makes of a line: a short line with these
sequence data (ohm and nF per length unit) and length `OPENDSS_SWITCH_LENGTH`, in "no
units"; files usually then override r1..c0."""
OPENDSS_SWITCH_LENGTH = 0.001
"""The length OpenDSS gives a switch line (see `OPENDSS_SWITCH_DATA`)."""

OPENDSS_LINECODE_C1_NF = 3.4
"""A LineCode given by rmatrix/xmatrix but no cmatrix keeps OpenDSS's default sequence
capacitances, C1 = 3.4 and C0 = 1.6 nF per *linecode length unit* (whatever the unit),
i.e. self 2.8 and mutual -0.6 nF for any number of phases, one included. IEEE 13's
mtx601..mtx605 rely on this. See `linecode_default_c_nf`."""
OPENDSS_LINECODE_C0_NF = 1.6
"""The zero-sequence half of `OPENDSS_LINECODE_C1_NF`'s default."""


def _as_square(name: str, value, n: int | None = None) -> np.ndarray:
    arr = np.asarray(value, dtype=np.complex128)
    if arr.ndim == 0:
        arr = arr.reshape(1, 1)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be a square matrix; got shape {arr.shape}.")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} must be {n}x{n}; got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} has non-finite entries.")
    return arr


def _two_terminal(y: np.ndarray) -> np.ndarray:
    """`[[y, -y], [-y, y]]`: a series admittance between two terminals."""
    return np.block([[y, -y], [-y, y]])


def sequence_to_phase(
    z1: complex | float, z0: complex | float, phases: int
) -> Complex[np.ndarray, "n n"]:
    """A balanced phase matrix from positive- and zero-sequence values, as OpenDSS's
    `Line` builds it.

    Self `(2 z1 + z0) / 3`, mutual `(z0 - z1) / 3`. OpenDSS uses this for any number
    of phases, except that a one-phase line takes the positive-sequence value alone
    (it sets `z0 = z1` first), so a 1-phase line of `r1, x1` has impedance `r1 + j x1`.
    Works for series impedances and for shunt capacitances alike.

    **Arguments:**

    - `z1`, `z0`: positive- and zero-sequence values (per length).
    - `phases`: the matrix order.

    **Returns:**

    The `phases x phases` complex matrix.
    """
    if phases < 1:
        raise ValueError(f"phases must be at least 1; got {phases}.")
    z1 = complex(z1)
    z0 = z1 if phases == 1 else complex(z0)
    zs = (2.0 * z1 + z0) / 3.0
    zm = (z0 - z1) / 3.0
    out = np.full((phases, phases), zm, dtype=np.complex128)
    np.fill_diagonal(out, zs)
    return out


def linecode_default_c_nf(phases: int) -> Float[np.ndarray, "n n"]:
    """The shunt capacitance (nF per length unit) of an OpenDSS LineCode given without
    `cmatrix` (nor `c1`/`c0`): self 2.8, mutual -0.6, even for one phase (a LineCode
    does not collapse to the positive sequence, unlike a Line's own `c1`).
    """
    c1, c0 = OPENDSS_LINECODE_C1_NF, OPENDSS_LINECODE_C0_NF
    out = np.full((phases, phases), (c0 - c1) / 3.0)
    np.fill_diagonal(out, (2.0 * c1 + c0) / 3.0)
    return out


def line_yprim(
    z_ohm: Complex[np.ndarray, "n n"] | complex,
    c_nf: np.ndarray | float | None = None,
    *,
    length: float = 1.0,
    frequency_hz: float = 60.0,
    base_frequency_hz: float | None = None,
    rg_ohm: float = 0.0,
    xg_ohm: float = 0.0,
    rho_ohm_m: float = OPENDSS_LINE_RHO,
) -> Complex[np.ndarray, "2*n 2*n"]:
    """Yprim of a line (OpenDSS `Line` from matrices or a linecode): series impedance
    `z_ohm * length`, shunt capacitance `c_nf * length` split half to each end.

    Reactances and capacitive susceptances are given at `base_frequency_hz` (a
    linecode's `BaseFreq`) and scaled to `frequency_hz`, as OpenDSS does: `X * f / f0`
    and `2 pi f C`. Away from the base frequency OpenDSS also applies its earth-return
    correction to every entry of Z: `R += Rg (f/f0 - 1)` and
    `X -= 0.5 Kxg ln(f/f0)` with `Kxg = Xg / ln(658.5 sqrt(rho / f0))`; give `rg_ohm`,
    `xg_ohm` (OpenDSS's defaults are `OPENDSS_LINE_RG`, `OPENDSS_LINE_XG`) to
    reproduce it. At `frequency_hz == base_frequency_hz` these have no effect.

    **Arguments:**

    - `z_ohm`: series impedance per length unit, `n x n` (a scalar for 1 phase).
    - `c_nf`: shunt (nodal) capacitance per length unit in nF, `n x n`, or `None`.
    - `length`: in the same length unit.
    - `frequency_hz`: the solution frequency.
    - `base_frequency_hz`: the frequency the data are given at (default:
        `frequency_hz`).
    - `rg_ohm`, `xg_ohm`, `rho_ohm_m`: earth-return data (per length unit).

    **Returns:**

    The `2n x 2n` Yprim over (terminal 1 conductors, terminal 2 conductors).
    """
    z = _as_square("z_ohm", z_ohm)
    n = z.shape[0]
    c = np.zeros((n, n)) if c_nf is None else np.real(_as_square("c_nf", c_nf, n))
    if not length > 0:
        raise ValueError(f"A line needs a positive length; got {length}.")
    f0 = frequency_hz if base_frequency_hz is None else base_frequency_hz
    fm = frequency_hz / f0
    r = np.real(z) + rg_ohm * (fm - 1.0)
    x = np.imag(z)
    if xg_ohm != 0.0:
        kxg = xg_ohm / math.log(658.5 * math.sqrt(rho_ohm_m / f0))
        x = x - 0.5 * kxg * math.log(fm)
    z_total = (r + 1j * x * fm) * length
    y_series = np.linalg.inv(z_total)
    # OpenDSS stores C as susceptance at the base frequency and rescales it, which is
    # the same as 2 pi f C at the solution frequency.
    y_shunt = 1j * (2.0 * math.pi * f0 * c * 1e-9) * length * fm / 2.0
    out = _two_terminal(y_series)
    out[:n, :n] += y_shunt
    out[n:, n:] += y_shunt
    return out


def transformer_yprim(
    *,
    phases: int,
    conns: Sequence[str],
    kvs: Sequence[float],
    kva: float,
    r_pct: Sequence[float],
    xsc_pct: Sequence[float],
    taps: Sequence[float] | None = None,
    noload_loss_pct: float = 0.0,
    imag_pct: float = 0.0,
    ppm_antifloat: float = 1.0,
    rneut: Sequence[float] | None = None,
    xneut: Sequence[float] | None = None,
    hv_leads_lv: bool = False,
) -> Complex[np.ndarray, "m m"]:
    """Yprim of an OpenDSS `Transformer` with any number of windings.

    OpenDSS's construction, step by step:

    1. Per-phase short-circuit impedances on a one-volt basis, `Zbase = 1 / (kVA_1 *
       1000 / phases)` (winding 1's rating is the base for every impedance, including
       each winding's `%r`): `ZB[i, i] = (r_1 + r_{i+1} + j x_{1,i+1}) Zbase` and
       `ZB[i, j] = (ZB[i, i] + ZB[j, j] - (r_{i+1} + r_{j+1} + j x_{i+1,j+1}) Zbase)
       / 2`.
    2. `Y_1volt = A^T ZB^-1 A`, with `A = [-1 | I]` (winding 1 against each other).
       The no-load branch `(%noloadloss - j %imag) / 100 / Zbase` sits on **winding 2**
       of `Y_1volt` (OpenDSS: "assuming it is closest to the core").
    3. `Y_terminal = N^T Y_1volt N`, where winding `k`'s two ends get `+-1 / (Vbase_k
       tap_k)`; `Vbase_k` is `kV_k / sqrt(3)` for 2-/3-phase wye windings and `kV_k`
       otherwise (delta, or one phase). Taps therefore scale the turns.
    4. Each winding end gets a tiny anti-float susceptance `j Y_ppm`,
       `Y_ppm = -ppm 1e-6 / (Vbase_k^2 / (kVA_1 * 1000 / phases)) / 2`.
    5. `Y_terminal` is stamped once per phase onto the conductors: wye winding `k`
       spans (phase `i`, neutral), delta winding `k` spans (phase `i`, phase
       `i + d`). With both windings 1 and 2 of one kind `d = +1`; otherwise
       `d = -1` when the higher-voltage one of them is delta and `+1` when it is wye
       (ANSI: LV lags HV by 30 degrees), the opposite with `hv_leads_lv`.
       One-phase transformers ignore the connection: each winding spans its two
       conductors.
    6. Wye neutrals: `rneut < 0` (OpenDSS default, open) adds another `j Y_ppm`;
       `rneut = xneut = 0` adds 1e6 S; otherwise `1 / (rneut + j xneut)`.

    **Arguments:**

    - `phases`: number of phases.
    - `conns`: per winding, "wye" or "delta".
    - `kvs`: per winding rated kV (line-to-line for 2-/3-phase, winding voltage for
        1-phase).
    - `kva`: winding 1's rating, the impedance base.
    - `r_pct`: per winding `%r`.
    - `xsc_pct`: short-circuit reactances in percent, pairs in the order
        12, 13, ..., 1N, 23, ..., (N-1)N (for 3 windings: XHL, XHT, XLT).
    - `taps`: per winding per-unit taps (default 1).
    - `noload_loss_pct`, `imag_pct`: no-load loss and magnetising current, percent.
    - `ppm_antifloat`: OpenDSS `ppm_antifloat` (default 1).
    - `rneut`, `xneut`: per winding neutral impedance in ohm (default -1 = open, 0).
    - `hv_leads_lv`: OpenDSS `LeadLag=Lead` (Euro); default `Lag` (ANSI).

    **Returns:**

    The Yprim over `windings x (phases + 1)` conductors: for each winding its phase
    conductors then its neutral (unused by delta windings).
    """
    # Long: OpenDSS's construction in the six numbered steps of the docstring, read top
    # to bottom; each step works on the arrays of the one before
    nw = len(kvs)
    if nw < 2:
        raise ValueError("A transformer needs at least two windings.")
    taps = [1.0] * nw if taps is None else list(taps)
    rneut = [-1.0] * nw if rneut is None else list(rneut)
    xneut = [0.0] * nw if xneut is None else list(xneut)
    for label, seq in (("conns", conns), ("r_pct", r_pct), ("taps", taps)):
        if len(seq) != nw:
            raise ValueError(f"{label} needs one entry per winding ({nw}).")
    if len(rneut) != nw or len(xneut) != nw:
        raise ValueError(f"rneut and xneut need one entry per winding ({nw}).")
    if len(xsc_pct) != nw * (nw - 1) // 2:
        raise ValueError(
            f"xsc_pct needs {nw * (nw - 1) // 2} entries for {nw} windings "
            "(pairs 12, 13, ..., 23, ...)."
        )
    delta = [_conn_is_delta(c) for c in conns]
    nconds = phases + 1
    va_1ph = kva * 1000.0 / phases
    zbase = 1.0 / va_1ph
    rpu = [r / 100.0 for r in r_pct]
    xsc = [x / 100.0 for x in xsc_pct]

    # 1. short-circuit impedances of winding 1 against windings 2..N (one-volt basis)
    zb = np.zeros((nw - 1, nw - 1), dtype=np.complex128)
    for i in range(nw - 1):
        zb[i, i] = complex(rpu[0] + rpu[i + 1], xsc[i]) * zbase
    k = nw - 1
    for i in range(nw - 1):
        for j in range(i + 1, nw - 1):
            zij = complex(rpu[i + 1] + rpu[j + 1], xsc[k]) * zbase
            zb[i, j] = zb[j, i] = 0.5 * (zb[i, i] + zb[j, j] - zij)
            k += 1
    # 2. one-volt admittance of all windings
    a = np.hstack([-np.ones((nw - 1, 1)), np.eye(nw - 1)])
    y_1volt = a.T @ np.linalg.inv(zb) @ a
    y_1volt_nl = np.zeros((nw, nw), dtype=np.complex128)
    y_1volt_nl[1, 1] = complex(noload_loss_pct / 100.0, -imag_pct / 100.0) / zbase
    # 3. terminal admittance: each winding has two ends, scaled by 1 / (Vbase tap)
    vbase = [
        kv * 1000.0 / _SQRT3 if (not d and phases in (2, 3)) else kv * 1000.0
        for kv, d in zip(kvs, delta)
    ]
    turns = np.zeros((nw, 2 * nw))
    for w in range(nw):
        tap = taps[w] if taps[w] != 0.0 else 0.0001  # OpenDSS's zero-tap guard
        turns[w, 2 * w] = 1.0 / (vbase[w] * tap)
        turns[w, 2 * w + 1] = -1.0 / (vbase[w] * tap)
    y_term = turns.T @ (y_1volt + y_1volt_nl) @ turns
    # 4. anti-float susceptance on both ends of every winding
    ppm = ppm_antifloat * 1e-6
    y_ppm = [-ppm / (vb**2 / va_1ph) / 2.0 for vb in vbase]
    if ppm != 0.0:
        for w in range(nw):
            y_term[2 * w, 2 * w] += 1j * y_ppm[w]
            y_term[2 * w + 1, 2 * w + 1] += 1j * y_ppm[w]
    # 5. stamp per phase onto the conductors
    direction = 1
    if delta[0] != delta[1]:
        hv = 0 if kvs[0] >= kvs[1] else 1
        if delta[hv]:
            direction = 1 if hv_leads_lv else -1
        else:
            direction = -1 if hv_leads_lv else 1

    def rotate(i: int) -> int:  # 1-based phase i -> the next phase of a delta
        out = i + direction
        if phases > 2:
            if out > phases:
                out = 1
            if out < 1:
                out = phases
        elif out < 1:
            out = 3
        return out

    y = np.zeros((nw * nconds, nw * nconds), dtype=np.complex128)
    for i in range(1, phases + 1):
        ref = []
        for w in range(nw):
            base = w * nconds
            if phases == 1:
                ref += [base, base + nconds - 1]
            elif delta[w]:
                ref += [base + i - 1, base + rotate(i) - 1]
            else:
                ref += [base + i - 1, base + nconds - 1]
        y[np.ix_(ref, ref)] += y_term
    # 6. wye neutrals
    for w in range(nw):
        if delta[w]:
            continue
        j = w * nconds + nconds - 1
        if rneut[w] >= 0:
            if rneut[w] == 0 and xneut[w] == 0:
                y[j, j] += 1e6
            else:
                y[j, j] += 1.0 / complex(rneut[w], xneut[w])
        elif ppm != 0.0:
            y[j, j] += 1j * y_ppm[w]
    return y


def capacitor_yprim(
    *,
    phases: int,
    kvar: float | Sequence[float],
    kv: float,
    conn: str = "wye",
) -> Complex[np.ndarray, "m m"]:
    """Yprim of an OpenDSS `Capacitor` given by kvar at kV (all steps in service).

    Per phase (wye) or per branch (delta) `b = kvar_1 / phases / kV_ph^2 / 1000` S with
    `kV_ph = kV / sqrt(3)` for 2-/3-phase wye and `kV` otherwise. OpenDSS quirk kept:
    every step of a multi-step bank is sized from the *first* step's kvar, so
    `kvar=[300, 600]` gives twice the 300-kvar bank, not 900 kvar.

    **Arguments:**

    - `phases`: number of phases.
    - `kvar`: total kvar of the bank, or one value per step (all in service).
    - `kv`: rated kV (line-to-line for 2-/3-phase banks).
    - `conn`: "wye" or "delta".

    **Returns:**

    Wye: `2 phases x 2 phases` over (bus1 conductors, bus2 conductors), bus2 being
    ground unless given. Delta: `phases x phases` over bus1's conductors, except a
    one-phase delta bank, which is `2 x 2` over its two conductors.
    """
    steps = [float(k) for k in np.atleast_1d(np.asarray(kvar, dtype=np.float64))]
    if not steps:
        raise ValueError("kvar needs at least one step.")
    is_delta = _conn_is_delta(conn)
    if is_delta or phases == 1:
        kv_ph = kv
    else:
        kv_ph = kv / _SQRT3 if phases in (2, 3) else kv
    b = len(steps) * steps[0] / phases / (kv_ph**2 * 1000.0)
    value = 1j * b
    if is_delta and phases > 1:
        # OpenDSS: diagonal 2b, every off-diagonal -b (a full delta for 3 phases).
        y = np.full((phases, phases), -value, dtype=np.complex128)
        np.fill_diagonal(y, 2.0 * value)
        return y
    n = 1 if is_delta else phases
    return _two_terminal(np.eye(n, dtype=np.complex128) * value)


def vsource_impedance(
    *,
    kv: float,
    phases: int = 3,
    mvasc3: float | None = None,
    mvasc1: float | None = None,
    isc3: float | None = None,
    isc1: float | None = None,
    x1r1: float = 4.0,
    x0r0: float = 3.0,
    z1_ohm: complex | None = None,
    z0_ohm: complex | None = None,
) -> Complex[np.ndarray, "n n"]:
    """Thevenin impedance matrix of an OpenDSS `Vsource` (ohm).

    Exactly one way of giving it:

    - sequence impedances `z1_ohm`, `z0_ohm` (OpenDSS `R1 X1 R0 X0` / `Z1 Z0`); a
        one-phase source uses `z1` alone. `z0` defaults to `z1`.
    - short-circuit power `mvasc3`, `mvasc1` (OpenDSS default 2000 / 2100 MVA), or
        short-circuit current `isc3`, `isc1` in A (converted to MVA first), with
        `x1r1`, `x0r0`. Then `|Z1| = kV^2 / MVAsc3` at angle `atan(X1/R1)`, and `R0`
        solves `|2 Z1 + Z0| = 3 V_ph / Isc1` with `X0 = x0r0 R0` (the larger root),
        `V_ph = kV/sqrt(3)` for a 3-phase source and `kV` for a 1-phase one.

    The matrix is balanced: self `(2 Z1 + Z0) / 3`, mutual `(Z0 - Z1) / 3`.

    **Returns:**

    The `phases x phases` impedance matrix.
    """
    factor = 1.0 if phases == 1 else _SQRT3
    given_z = z1_ohm is not None or z0_ohm is not None
    given_mva = mvasc3 is not None or mvasc1 is not None
    given_isc = isc3 is not None or isc1 is not None
    if given_z + given_mva + given_isc > 1:
        raise ValueError(
            "Give the source impedance one way: z1_ohm/z0_ohm, mvasc3/mvasc1 or "
            "isc3/isc1."
        )
    if given_z:
        if z1_ohm is None:
            raise ValueError("z0_ohm needs z1_ohm as well.")
        z1 = complex(z1_ohm)
        z0 = z1 if (z0_ohm is None or phases == 1) else complex(z0_ohm)
    else:
        if given_isc:
            i3 = 10000.0 if isc3 is None else isc3
            i1 = 10540.0 if isc1 is None else isc1
            mva3 = _SQRT3 * kv * i3 / 1000.0
            mva1 = factor * kv * i1 / 1000.0
        else:
            mva3 = 2000.0 if mvasc3 is None else mvasc3
            mva1 = 2100.0 if mvasc1 is None else mvasc1
        if not (mva3 > 0 and mva1 > 0 and x1r1 > 0 and x0r0 > 0):
            raise ValueError(
                "Short-circuit levels and X/R ratios of a source must be positive."
            )
        x1 = kv**2 / mva3 / math.sqrt(1.0 + 1.0 / x1r1**2)
        r1 = x1 / x1r1
        i1 = mva1 * 1000.0 / (factor * kv)
        qa = 1.0 + x0r0**2
        qb = 4.0 * (r1 + x1 * x0r0)
        qc = 4.0 * (r1**2 + x1**2) - (3.0 * kv * 1000.0 / factor / i1) ** 2
        disc = qb**2 - 4.0 * qa * qc
        if disc < 0:
            raise ValueError(
                "The single-phase short-circuit level is inconsistent with the "
                "three-phase one (no real zero-sequence resistance); check mvasc1/isc1."
            )
        r0 = (-qb + math.sqrt(disc)) / (2.0 * qa)
        z1 = complex(r1, x1)
        z0 = complex(r0, r0 * x0r0)
    zs = (2.0 * z1 + z0) / 3.0
    zm = (z0 - z1) / 3.0
    z = np.full((phases, phases), zm, dtype=np.complex128)
    np.fill_diagonal(z, zs)
    return z


def vsource_emf(
    *, kv: float, pu: float = 1.0, angle_deg: float = 0.0, phases: int = 3
) -> Complex[np.ndarray, " n"]:
    """The internal voltages of an OpenDSS `Vsource` (volts, phase to ground).

    Magnitude `kV pu 1000 / (2 sin(pi / n))` for `n > 1` phases (`/ sqrt(3)` for 3),
    `kV pu 1000` for one phase; phase `k` at `angle - (k - 1) 360 / n` degrees.
    OpenDSS quirk kept: it converts `360 + angle - (k - 1) 360 / n` degrees to
    radians by dividing by the truncated constant 57.29577951, which turns phase `k`
    by a few 1e-10 rad; matching it keeps no-load voltages equal to ~1e-15.
    """
    if phases == 1:
        vmag = kv * pu * 1000.0
    else:
        vmag = kv * pu * 1000.0 / 2.0 / math.sin(math.pi / phases)
    degrees = 360.0 + angle_deg - np.arange(phases) * 360.0 / phases
    return vmag * np.exp(1j * (degrees / _OPENDSS_DEG_PER_RAD))


def series_yprim(z_ohm: Complex[np.ndarray, "n n"]) -> Complex[np.ndarray, "2*n 2*n"]:
    """Yprim of a series impedance matrix between two terminals (a `Vsource`'s
    Thevenin impedance between its EMF and its bus, for instance)."""
    return _two_terminal(np.linalg.inv(_as_square("z_ohm", z_ohm)))


def _conn_is_delta(conn: str) -> bool:
    key = str(conn).strip().lower()
    if key in ("wye", "y", "ln"):
        return False
    if key in ("delta", "d", "ll"):
        return True
    raise ValueError(f"Unknown connection {conn!r}; use 'wye' or 'delta'.")
