"""Compose a feeder in Python: `FeederBuilder`.

Conventions (docs/data-model.md):
- Bus specs are OpenDSS strings: "632" (default nodes 1..phases), "632.3.1" (explicit
  nodes, in terminal-conductor order), "650.1.2.3.0" (node 0 = ground).
- Node names in the resulting Feeder are "bus.k" (k >= 1), lower case; node 0 is ground
  and is eliminated.
- Units: impedances in ohm, admittances in siemens, per-length data per km, lengths in
  km, capacitance in nF, powers in kW/kvar/kVA, voltages in kV (line-to-line for
  2- and 3-phase elements, across the element for 1-phase elements, as OpenDSS).
- Every element's primitive admittance equals the one OpenDSS computes for the same
  data (tested against opendssdirect.py); the models live in `_elements.py`.
"""

import dataclasses
import math
import re
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import scipy.sparse.linalg as spla

from . import _elements as el
from ._feeder import Feeder, load_model, load_terms, Loads


_SQRT3 = math.sqrt(3.0)
_NAME = re.compile(r"^[^.\s]+$")
# A floating subnetwork (no reference to ground) gives cond(YNN) ~ 1/eps; legitimate
# feeders stay far below (IEEE 13: 2e8; a delta-delta bank held only by OpenDSS's
# 1-ppm anti-float susceptance: ~1e13).
_SINGULAR_COND = 1e15


@dataclasses.dataclass(frozen=True)
class Winding:
    """One transformer winding.

    - `bus`: bus spec; for a wye winding the conductor after the phases is the neutral
        (default node 0, solidly grounded).
    - `conn`: "wye" or "delta".
    - `kv`: rated kV (line-to-line for 2-/3-phase windings, winding voltage for
        1-phase ones), as OpenDSS `kv`.
    - `kva`: rated kVA. As in OpenDSS, winding 1's rating is the base of every
        impedance of the transformer (`%r` of all windings, the reactances).
    - `r_pct`: winding resistance in percent (OpenDSS `%r`, on winding 1's kVA base).
    - `tap`: per-unit tap (OpenDSS `tap`).
    - `rneut`, `xneut`: neutral impedance in ohm of a wye winding whose neutral is a
        node (OpenDSS `Rneut`, `Xneut`); negative `rneut` (the default) leaves the
        neutral conductor as the bus spec connects it. Irrelevant when the neutral is
        node 0 (ground).
    """

    bus: str
    conn: str = "wye"
    kv: float = 12.47
    kva: float = 1000.0
    r_pct: float = 0.2
    tap: float = 1.0
    rneut: float = -1.0
    xneut: float = 0.0


@dataclasses.dataclass
class _Element:
    """An element as the builder keeps it: conductors and its Yprim (None: open)."""

    key: str
    conductors: list[tuple[str, int]]
    y: np.ndarray | None


@dataclasses.dataclass
class _Load:
    key: str
    name: str
    conductors: list[tuple[str, int]]
    rows: list[tuple[int, int]]  # conductor index pairs (a -> b)
    s_row: complex
    v_nom: float
    model: int
    terms: tuple[np.ndarray, np.ndarray, float]  # load_terms(model, ...)


@dataclasses.dataclass
class _Source:
    name: str
    conductors: list[tuple[str, int]]
    z: np.ndarray
    emf: np.ndarray
    kv: float


class FeederBuilder:
    """Build a `Feeder` element by element, with OpenDSS's element models.

    ```python
    b = FeederBuilder("demo", frequency_hz=60.0, voltage_bases_kv=[4.16])
    b.source("sourcebus", kv=4.16, mvasc3=2000.0, mvasc1=2100.0)
    b.line("l1", "sourcebus", "b2", z_ohm_per_km=z, length_km=0.5)
    b.load("ld1", "b2.1", kw=100.0, kvar=50.0, kv=2.4)
    feeder = b.build()
    ```

    Elements are kept in the order they are added; buses are numbered in order of
    first appearance (the source's bus first) and nodes within a bus in order of
    first reference, as OpenDSS numbers them. Every input is checked when the element
    is added, so a `ValueError` names the element at fault.
    """

    def __init__(
        self,
        name: str = "feeder",
        *,
        frequency_hz: float = 60.0,
        voltage_bases_kv: Sequence[float] | None = None,
    ):
        """**Arguments:**

        - `name`: the feeder's label.
        - `frequency_hz`: the system frequency (reactances are given at it).
        - `voltage_bases_kv`: the legal line-to-line voltage bases (OpenDSS
            `Set voltagebases`). Each bus gets the base closest to its no-load voltage.
            Default: the source kV and every transformer winding kV (line-to-line).
        """
        if not (math.isfinite(frequency_hz) and frequency_hz > 0):
            raise ValueError(
                f"FeederBuilder {name!r}: frequency_hz must be positive; got "
                f"{frequency_hz}."
            )
        bases = None
        if voltage_bases_kv is not None:
            bases = [float(v) for v in voltage_bases_kv]
            if not bases or not all(math.isfinite(v) and v > 0 for v in bases):
                raise ValueError(
                    f"FeederBuilder {name!r}: voltage_bases_kv must be positive "
                    f"line-to-line kV values; got {list(voltage_bases_kv)}."
                )
        self.name = str(name)
        self.frequency_hz = float(frequency_hz)
        self._bases: list[float] | None = bases
        self._default_bases: list[float] = []
        self._source: _Source | None = None
        self._elements: list[_Element | _Load] = []
        self._keys: set[str] = set()

    # --- elements ---------------------------------------------------------------------

    def source(
        self,
        bus: str = "sourcebus",
        *,
        kv: float,
        pu: float = 1.0,
        angle_deg: float = 0.0,
        phases: int = 3,
        z1_ohm: complex | None = None,
        z0_ohm: complex | None = None,
        z_ohm: np.ndarray | None = None,
        mvasc3: float | None = None,
        mvasc1: float | None = None,
        isc3: float | None = None,
        isc1: float | None = None,
        x1r1: float = 4.0,
        x0r0: float = 3.0,
        name: str = "source",
    ) -> None:
        """The slack: an ideal source of `pu * kv` (line-to-line) behind a Thevenin
        impedance, exactly as OpenDSS's `Vsource`. Give the impedance as sequence
        impedances (`z1_ohm`, `z0_ohm`), as a full `phases x phases` matrix `z_ohm`, or
        as short-circuit levels (`mvasc3`/`mvasc1` or `isc3`/`isc1` in A, with `x1r1`,
        `x0r0`); default OpenDSS's `mvasc3=2000, mvasc1=2100`. Exactly one source.

        The slack nodes of the feeder are the internal EMF nodes
        `f"{name}_emf.{k}"`, `k = 1..phases`; the impedance joins them to `bus`. This is
        exactly OpenDSS's Norton model (its system Y has the Thevenin admittance at the
        bus and the EMF enters as an injected current). With `z1_ohm` only, `z0_ohm`
        defaults to `z1_ohm`; a one-phase source uses `z1_ohm` alone (as OpenDSS).
        """
        label = f"Source {name!r}"
        key = str(name).strip().lower()
        if self._source is not None:
            raise ValueError(
                f"{label}: a feeder has exactly one source and "
                f"{self._source.name!r} is already defined."
            )
        if not _NAME.match(key):
            raise ValueError(
                f"{label}: a name cannot be empty or contain '.' or spaces."
            )
        _check_phases(label, phases)
        _check_positive(label, kv=kv, pu=pu)
        _check_finite(label, angle_deg=angle_deg)
        conductors = _parse_bus(label, bus, phases, phases)
        if z_ohm is not None:
            if any(v is not None for v in (z1_ohm, z0_ohm, mvasc3, mvasc1, isc3, isc1)):
                raise ValueError(
                    f"{label}: give the impedance one way; z_ohm excludes z1_ohm, "
                    "z0_ohm, mvasc3/mvasc1 and isc3/isc1."
                )
            z = _square(label, "z_ohm", z_ohm, phases)
        else:
            for field, value in dict(
                mvasc3=mvasc3, mvasc1=mvasc1, isc3=isc3, isc1=isc1
            ).items():
                if value is not None:
                    _check_positive(label, **{field: value})
            try:
                z = el.vsource_impedance(
                    kv=kv,
                    phases=phases,
                    mvasc3=mvasc3,
                    mvasc1=mvasc1,
                    isc3=isc3,
                    isc1=isc1,
                    x1r1=x1r1,
                    x0r0=x0r0,
                    z1_ohm=z1_ohm,
                    z0_ohm=z0_ohm,
                )
            except ValueError as e:
                raise ValueError(f"{label}: {e}") from None
        if abs(np.linalg.det(z)) == 0.0 or not np.all(np.isfinite(z)):
            raise ValueError(f"{label}: the source impedance matrix is singular.")
        emf = el.vsource_emf(kv=kv, pu=pu, angle_deg=angle_deg, phases=phases)
        self._source = _Source(key, conductors, z, emf, float(kv))
        self._default_bases.insert(0, float(kv))

    def line(
        self,
        name: str,
        bus1: str,
        bus2: str,
        *,
        length_km: float,
        z_ohm_per_km: np.ndarray | complex | None = None,
        c_nf_per_km: np.ndarray | float | None = None,
        z1_ohm_per_km: complex | None = None,
        z0_ohm_per_km: complex | None = None,
        c1_nf_per_km: float = 0.0,
        c0_nf_per_km: float = 0.0,
        phases: int | None = None,
    ) -> None:
        """A line: series impedance and shunt capacitance per km times `length_km`
        (pi model, half the shunt at each end). Give either the `phases x phases`
        matrices (`z_ohm_per_km`, `c_nf_per_km`) or sequence data (`z1_ohm_per_km`,
        `z0_ohm_per_km`, `c1_nf_per_km`, `c0_nf_per_km`), as OpenDSS does.

        With matrices, `phases` defaults to their order. With sequence data (default 3
        phases) the phase matrices are self `(2 z1 + z0) / 3`, mutual `(z0 - z1) / 3`;
        a one-phase line takes `z1` and `c1` alone, as OpenDSS does. A linecode without
        `cmatrix` in OpenDSS carries default capacitance: pass
        `_elements.linecode_default_c_nf(n)` (per linecode unit) to reproduce it.
        """
        label = f"Line {name!r}"
        key = self._claim("line", name, label)
        _check_positive(label, length_km=length_km)
        if (z_ohm_per_km is None) == (z1_ohm_per_km is None):
            raise ValueError(
                f"{label}: give either z_ohm_per_km (matrix data) or z1_ohm_per_km "
                "and z0_ohm_per_km (sequence data)."
            )
        if z_ohm_per_km is not None:
            if z0_ohm_per_km is not None:
                raise ValueError(f"{label}: z0_ohm_per_km goes with z1_ohm_per_km.")
            z = _square(label, "z_ohm_per_km", z_ohm_per_km, phases)
            n = z.shape[0]
            if c_nf_per_km is None:
                c = np.zeros((n, n))
            else:
                c = _square(label, "c_nf_per_km", c_nf_per_km, n)
                if np.abs(np.imag(c)).max() > 0:
                    raise ValueError(f"{label}: c_nf_per_km must be real (nF).")
                c = np.real(c)
        else:
            if c_nf_per_km is not None:
                raise ValueError(
                    f"{label}: with sequence data give c1_nf_per_km and c0_nf_per_km, "
                    "not c_nf_per_km."
                )
            n = 3 if phases is None else phases
            _check_phases(label, n)
            assert z1_ohm_per_km is not None
            if z0_ohm_per_km is None and n > 1:
                raise ValueError(
                    f"{label}: a {n}-phase line from sequence data needs "
                    "z0_ohm_per_km as well."
                )
            z0 = z1_ohm_per_km if z0_ohm_per_km is None else z0_ohm_per_km
            _check_finite(label, c1_nf_per_km=c1_nf_per_km, c0_nf_per_km=c0_nf_per_km)
            z = el.sequence_to_phase(z1_ohm_per_km, z0, n)
            c = np.real(el.sequence_to_phase(c1_nf_per_km, c0_nf_per_km, n))
        if np.any(np.real(np.diag(z)) < 0):
            raise ValueError(f"{label}: the self resistances must not be negative.")
        conductors = _parse_bus(label, bus1, n, n) + _parse_bus(label, bus2, n, n)
        try:
            y = el.line_yprim(z, c, length=length_km, frequency_hz=self.frequency_hz)
        except np.linalg.LinAlgError:
            raise ValueError(
                f"{label}: the series impedance matrix is singular."
            ) from None
        self._elements.append(_Element(key, conductors, y))

    def switch(
        self,
        name: str,
        bus1: str,
        bus2: str,
        *,
        phases: int = 3,
        closed: bool = True,
        r_ohm: float = 1e-3,
    ) -> None:
        """A switch: closed, a line of `r_ohm` per phase (OpenDSS models switches as
        short lines); open, nothing (its far side must still reach the source).

        `r_ohm` is the whole series resistance of each phase (no coupling, no shunt):
        OpenDSS's `Switch=yes r1=r r0=r x1=0 x0=0 c1=0 c0=0` over its fixed length of
        0.001 gives `r_ohm = 0.001 r` (IEEE 13: 1e-7 ohm, IEEE 123: 1e-6 ohm).
        """
        label = f"Switch {name!r}"
        key = self._claim("line", name, label)
        _check_phases(label, phases)
        _check_positive(label, r_ohm=r_ohm)
        conductors = _parse_bus(label, bus1, phases, phases) + _parse_bus(
            label, bus2, phases, phases
        )
        y = None
        if closed:
            z = np.eye(phases, dtype=np.complex128) * r_ohm
            y = el.line_yprim(z, None, length=1.0, frequency_hz=self.frequency_hz)
        self._elements.append(_Element(key, conductors, y))

    def transformer(
        self,
        name: str,
        windings: Sequence[Winding],
        *,
        phases: int = 3,
        xhl_pct: float = 7.0,
        xht_pct: float = 35.0,
        xlt_pct: float = 30.0,
        noload_loss_pct: float = 0.0,
        imag_pct: float = 0.0,
        xsc_pct: Sequence[float] | None = None,
        ppm_antifloat: float = 1.0,
        hv_leads_lv: bool = False,
    ) -> None:
        """A two- or three-winding transformer (wye/delta windings, taps), with
        OpenDSS's model: leakage reactances in percent on winding 1's kVA base,
        winding resistances, magnetising branch (on winding 2, where OpenDSS puts it).
        A single-phase transformer at a fixed tap is how a voltage regulator enters
        (its control off).

        Details as OpenDSS (see `_elements.transformer_yprim`): every winding end
        carries a tiny anti-float susceptance of `ppm_antifloat` parts per million
        (OpenDSS default 1; the IEEE 123 regulators set 0). `xsc_pct` gives the
        reactances of any number of windings (pairs 12, 13, ..., 1N, 23, ...; it
        replaces `xhl_pct`, `xht_pct`, `xlt_pct`). `hv_leads_lv` is OpenDSS
        `LeadLag=Lead` (default `Lag`, ANSI). A one-phase winding's `conn` has no
        effect on the model: it spans its two conductors. OpenDSS's `%LoadLoss=p`
        is `r_pct = p / 2` on windings 1 and 2.
        """
        # Long: its docstring documents every argument; the code is 77 lines
        label = f"Transformer {name!r}"
        key = self._claim("transformer", name, label)
        _check_phases(label, phases)
        windings = list(windings)
        nw = len(windings)
        if nw < 2:
            raise ValueError(f"{label}: a transformer needs at least two windings.")
        if not all(isinstance(w, Winding) for w in windings):
            raise TypeError(f"{label}: windings must be `Winding` objects.")
        if xsc_pct is not None:
            xsc = [float(x) for x in xsc_pct]
            if len(xsc) != nw * (nw - 1) // 2:
                raise ValueError(
                    f"{label}: xsc_pct needs {nw * (nw - 1) // 2} values for {nw} "
                    "windings (pairs 12, 13, ..., 23, ...)."
                )
        elif nw == 2:
            xsc = [xhl_pct]
        elif nw == 3:
            xsc = [xhl_pct, xht_pct, xlt_pct]
        else:
            raise ValueError(
                f"{label}: with {nw} windings give the reactances as xsc_pct."
            )
        if not all(math.isfinite(x) and x > 0 for x in xsc):
            raise ValueError(f"{label}: leakage reactances must be positive percent.")
        _check_nonnegative(
            label,
            noload_loss_pct=noload_loss_pct,
            imag_pct=imag_pct,
            ppm_antifloat=ppm_antifloat,
        )
        conductors: list[tuple[str, int]] = []
        for i, w in enumerate(windings, start=1):
            wlabel = f"{label} winding {i}"
            _check_conn(wlabel, w.conn)
            _check_positive(wlabel, kv=w.kv, kva=w.kva, tap=w.tap)
            _check_nonnegative(wlabel, r_pct=w.r_pct)
            _check_finite(wlabel, rneut=w.rneut, xneut=w.xneut)
            conductors += _parse_bus(wlabel, w.bus, phases + 1, phases)
        y = el.transformer_yprim(
            phases=phases,
            conns=[w.conn for w in windings],
            kvs=[w.kv for w in windings],
            kva=windings[0].kva,
            r_pct=[w.r_pct for w in windings],
            xsc_pct=xsc,
            taps=[w.tap for w in windings],
            noload_loss_pct=noload_loss_pct,
            imag_pct=imag_pct,
            ppm_antifloat=ppm_antifloat,
            rneut=[w.rneut for w in windings],
            xneut=[w.xneut for w in windings],
            hv_leads_lv=hv_leads_lv,
        )
        self._elements.append(_Element(key, conductors, y))
        for i, w in enumerate(windings):
            span = conductors[i * (phases + 1) : i * (phases + 1) + 2]
            line_to_line = phases == 1 and span[1][1] != 0
            self._default_bases.append(
                w.kv if (phases > 1 or line_to_line) else w.kv * _SQRT3
            )

    def capacitor(
        self,
        name: str,
        bus: str,
        *,
        kvar: float | Sequence[float],
        kv: float,
        phases: int = 3,
        conn: str = "wye",
        bus2: str | None = None,
    ) -> None:
        """A shunt capacitor bank (OpenDSS `Capacitor`), rated `kvar` at `kv`.

        `kvar` is the bank's total over its phases; a sequence gives steps, all in
        service, and then (OpenDSS quirk, kept so feeders match) every step is sized
        from the first step's kvar. A wye bank connects phase to ground, or to the
        nodes of `bus2` (e.g. a neutral); a delta bank connects phase to phase (a
        one-phase delta bank across its two conductors, e.g. "646.2.3").
        """
        label = f"Capacitor {name!r}"
        key = self._claim("capacitor", name, label)
        _check_phases(label, phases)
        is_delta = _check_conn(label, conn)
        _check_positive(label, kv=kv)
        steps = [kvar] if isinstance(kvar, (int, float)) else list(kvar)
        if not steps or not all(
            isinstance(k, (int, float)) and math.isfinite(k) and k > 0 for k in steps
        ):
            raise ValueError(
                f"{label}: kvar must be positive (a number or one per step); got "
                f"{kvar!r}."
            )
        if is_delta:
            if bus2 is not None:
                raise ValueError(f"{label}: a delta bank has no bus2.")
            n = 2 if phases == 1 else phases
            conductors = _parse_bus(label, bus, n, 1 if phases == 1 else phases)
        else:
            conductors = _parse_bus(label, bus, phases, phases)
            if bus2 is None:
                conductors += [(conductors[0][0], 0)] * phases
            else:
                conductors += _parse_bus(label, bus2, phases, phases)
        y = el.capacitor_yprim(
            phases=phases, kvar=[float(k) for k in steps], kv=kv, conn=conn
        )
        self._elements.append(_Element(key, conductors, y))

    def load(
        self,
        name: str,
        bus: str,
        *,
        kw: float,
        kv: float,
        kvar: float | None = None,
        pf: float | None = None,
        phases: int = 1,
        conn: str = "wye",
        model: int | str = "constant_power",
        cvr_watts: float = 1.0,
        cvr_vars: float = 2.0,
        zipv: Sequence[float] | None = None,
    ) -> None:
        """A load, as OpenDSS `Load`: total `kw` and `kvar` (or `pf`, default 0.88 when
        neither is given) split equally over its phases, rated `kv`, drawn as its
        `model` says (any OpenDSS load model, 1 to 8: `LoadModel` has the equations;
        model 4 takes `cvr_watts` and `cvr_vars`, model 8 its seven `zipv`
        coefficients, as OpenDSS names them).

        Rows of `Loads`: a wye load connects each phase to its neutral conductor (the
        conductor after the phases, default ground), at `kv / sqrt(3)` for 2-/3-phase
        loads and `kv` for one phase ("x.1" is 1 to ground, "x.1.2" is 1 to 2). A
        delta load connects phase `k` to phase `k + 1` at `kv` (three phases: 1-2,
        2-3, 3-1; one phase: across its two conductors, "646.2.3" is 2 to 3).
        `pf < 0` means leading (negative kvar).
        """
        # Long: its docstring documents every argument; the code is 70 lines
        label = f"Load {name!r}"
        key = self._claim("load", name, label)
        _check_phases(label, phases)
        is_delta = _check_conn(label, conn)
        _check_positive(label, kv=kv)
        _check_finite(label, kw=kw)
        if kvar is not None and pf is not None:
            raise ValueError(f"{label}: give kvar or pf, not both.")
        if kvar is None:
            pf = 0.88 if pf is None else pf
            if not (math.isfinite(pf) and 0 < abs(pf) <= 1):
                raise ValueError(
                    f"{label}: pf must be in [-1, 1] and non-zero; got {pf}. Give "
                    "kvar instead for a purely reactive load."
                )
            # OpenDSS: kvar = kW sqrt(1/pf^2 - 1), negated for a negative pf.
            kvar = math.copysign(1.0, pf) * kw * math.tan(math.acos(abs(pf)))
        _check_finite(label, kvar=kvar)
        model_id = int(load_model(model))
        try:
            terms = load_terms(
                model_id, cvr_watts=cvr_watts, cvr_vars=cvr_vars, zipv=zipv
            )
        except ValueError as e:
            raise ValueError(f"{label}: {e}") from None
        if is_delta:
            n_cond = phases + 1 if phases in (1, 2) else phases
            if phases == 1:
                rows = [(0, 1)]
            elif phases == 2:
                rows = [(0, 1), (1, 2)]
            else:
                rows = [(k, (k + 1) % phases) for k in range(phases)]
            v_nom = kv * 1000.0
        else:
            n_cond = phases + 1
            rows = [(k, phases) for k in range(phases)]
            v_nom = kv * 1000.0 / (_SQRT3 if phases > 1 else 1.0)
        conductors = _parse_bus(label, bus, n_cond, phases)
        for a, b in rows:
            if conductors[a] == conductors[b] or (
                conductors[a][1] == 0 and conductors[b][1] == 0
            ):
                raise ValueError(
                    f"{label}: a phase connects {_spec(conductors[a])} to "
                    f"{_spec(conductors[b])}; a load needs two distinct terminals, "
                    "not both ground."
                )
        s_row = complex(kw, kvar) / phases
        self._elements.append(
            _Load(
                key, str(name).lower(), conductors, rows, s_row, v_nom, model_id, terms
            )
        )

    def primitive(self, name: str, terminals: Sequence[str], y: np.ndarray) -> None:
        """Low level: an element given by its primitive admittance `y` (siemens) over
        the terminal conductors `terminals` ("bus.k", "bus.0" = ground), as OpenDSS
        reports `Yprim`. Used by the OpenDSS (AltDSS engine) importer.
        """
        label = f"Element {name!r}"
        key = self._claim("primitive", name, label)
        if isinstance(terminals, str):
            raise TypeError(
                f"{label}: terminals must be a sequence of 'bus.k' strings."
            )
        conductors = []
        for t in terminals:
            spec = str(t).strip().lower()
            if spec.count(".") != 1:
                raise ValueError(
                    f"{label}: terminal {t!r} must name one conductor as 'bus.k' "
                    "(k = 0 for ground)."
                )
            conductors += _parse_bus(label, spec, 1, 1)
        if not conductors:
            raise ValueError(f"{label}: needs at least one terminal conductor.")
        arr = _square(label, "y", y, len(conductors))
        self._elements.append(_Element(key, conductors, arr))

    # --- assembly ---------------------------------------------------------------------

    def build(self, *, injection_nodes: Sequence[str] | None = None) -> Feeder:
        """Assemble the admittance matrix, choose voltage bases, validate, and return
        the `Feeder`."""
        src = self._source
        if src is None:
            raise ValueError(
                f"Feeder {self.name!r} has no source; call FeederBuilder.source(...)."
            )
        # Nodes: buses in order of first appearance, nodes in order of first reference.
        buses: dict[str, list[int]] = {}
        for conductors in [src.conductors] + [e.conductors for e in self._elements]:
            for bus, node in conductors:
                nodes = buses.setdefault(bus, [])
                if node != 0 and node not in nodes:
                    nodes.append(node)
        buses = {b: nodes for b, nodes in buses.items() if nodes}
        flat = [(b, k) for b, nodes in buses.items() for k in nodes]
        slack_names = [f"{src.name}_emf.{k}" for k in range(1, len(src.emf) + 1)]
        node_names = [f"{b}.{k}" for b, k in flat]
        clash = set(slack_names) & set(node_names)
        if clash:
            raise ValueError(
                f"Feeder {self.name!r}: bus names clash with the source's EMF nodes "
                f"{sorted(clash)}; rename the source."
            )
        s = len(slack_names)
        index = {c: s + i for i, c in enumerate(flat)}  # ground (node 0) is absent

        rows, cols, vals = [], [], []

        def stamp(idx: list[int], y: np.ndarray) -> None:
            keep = [i for i, g in enumerate(idx) if g >= 0]
            g = np.asarray([idx[i] for i in keep], dtype=np.int64)
            block = y[np.ix_(keep, keep)]
            rows.append(np.repeat(g, g.size))
            cols.append(np.tile(g, g.size))
            vals.append(block.reshape(-1))

        # The Thevenin impedance between the EMF (slack) nodes and the source bus.
        stamp(
            list(range(s)) + [index.get(c, -1) for c in src.conductors],
            el.series_yprim(src.z),
        )
        for e in self._elements:
            if isinstance(e, _Element) and e.y is not None:
                stamp([index.get(c, -1) for c in e.conductors], e.y)
        total = s + len(node_names)
        y = sp.coo_array(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
            shape=(total, total),
        ).tocsc()
        y.sum_duplicates()

        base_v = self._voltage_bases(y, s, src.emf, buses, node_names)
        loads = self._loads(index, s)
        return Feeder(
            node_names=node_names,
            slack_names=slack_names,
            y=y,
            v_slack=src.emf,
            base_v=base_v,
            loads=loads,
            injection_nodes=injection_nodes,
            frequency_hz=self.frequency_hz,
            name=self.name,
        )

    def _voltage_bases(self, y, s, v_slack, buses, node_names) -> np.ndarray:
        """OpenDSS `CalcVoltageBases`: each bus gets the legal base nearest to its
        first node's no-load voltage (`|V| * 0.001732` kV, as OpenDSS compares)."""
        legal = self._bases if self._bases is not None else self._default_bases
        n = len(node_names)
        # Solve only where the source reaches; the Feeder reports islanded nodes.
        nz_rows, nz_cols = y.nonzero()
        pattern = sp.csr_array(
            (np.ones(nz_rows.size), (nz_rows, nz_cols)), shape=y.shape
        )
        _, labels = csgraph.connected_components(pattern, directed=False)
        live = np.isin(labels[s:], labels[:s])
        v = np.full(n, np.nan, dtype=np.complex128)
        idx = np.flatnonzero(live)
        if idx.size:
            ynn = sp.csc_array(y[s:, s:][idx][:, idx])
            rhs = -(y[s:, :s][idx] @ v_slack)
            try:
                lu = spla.splu(ynn)
            except RuntimeError:
                lu = None  # exactly singular: the Feeder raises a readable error
            if lu is not None:
                if _condition_1norm(ynn, lu) > _SINGULAR_COND:
                    raise ValueError(
                        f"Feeder {self.name!r}: YNN is numerically singular (1-norm "
                        f"condition number ~{_condition_1norm(ynn, lu):.1e}): part of "
                        "the network floats with no reference to ground, e.g. a delta "
                        "winding with ppm_antifloat=0 and nothing grounded behind it, "
                        "or an ungrounded wye neutral. Ground it or give it a "
                        "reference."
                    )
                v[idx] = lu.solve(np.asarray(rhs, dtype=np.complex128))
        base_v = np.ones(n)
        pos = {name: i for i, name in enumerate(node_names)}
        for bus, nodes in buses.items():
            members = [pos[f"{bus}.{k}"] for k in nodes]
            vmag = abs(v[members[0]])
            if not np.isfinite(vmag):
                continue
            kv_ll = vmag * 0.001732
            best, best_diff = legal[0], math.inf
            for test in legal:
                diff = abs(1.0 - kv_ll / test)
                if diff < best_diff:
                    best, best_diff = test, diff
            base_v[members] = best / _SQRT3 * 1000.0
        return base_v

    def _loads(self, index, s) -> Loads:
        names, load, node_a, node_b, s_kva, v_nom, model = [], [], [], [], [], [], []
        terms: list[tuple[np.ndarray, np.ndarray, float]] = []
        for e in self._elements:
            if not isinstance(e, _Load):
                continue
            li = len(names)
            names.append(e.name)
            for a, b in e.rows:
                ga = index[e.conductors[a]] - s if e.conductors[a][1] else -1
                gb = index[e.conductors[b]] - s if e.conductors[b][1] else -1
                if ga < 0:  # ground first: swap ends (|u| and the power are the same)
                    ga, gb = gb, ga
                load.append(li)
                node_a.append(ga)
                node_b.append(gb)
                s_kva.append(e.s_row)
                v_nom.append(e.v_nom)
                model.append(e.model)
                terms.append(e.terms)
        return Loads(
            names,
            load,
            node_a,
            node_b,
            s_kva,
            v_nom,
            model,
            coefficient=[t[0] for t in terms],
            exponent=[t[1] for t in terms],
            cutoff_pu=[t[2] for t in terms],
        )

    def _claim(self, kind: str, name: str, label: str) -> str:
        key = f"{kind}.{str(name).strip().lower()}"
        if not isinstance(name, str) or not _NAME.match(str(name).strip()):
            raise ValueError(
                f"{label}: a name must be a non-empty string without '.' or spaces."
            )
        if key in self._keys:
            raise ValueError(
                f"{label}: an element of that kind and name already exists."
            )
        self._keys.add(key)
        return key


# --- helpers --------------------------------------------------------------------------


def _parse_bus(
    label: str, spec: str, n_conductors: int, n_phases: int
) -> list[tuple[str, int]]:
    """OpenDSS bus spec -> one (bus, node) per conductor.

    Unnamed conductors take OpenDSS's defaults: 1..phases, then 0 (ground) for the
    rest (neutrals). A spec naming some but not all phases is refused: OpenDSS would
    silently fill the rest with defaults ("632.3" on a 3-phase line is 3, 2, 3).
    """
    if not isinstance(spec, str):
        raise TypeError(f"{label}: bus spec must be a string; got {spec!r}.")
    text = spec.strip().lower()
    parts = text.split(".")
    bus = parts[0]
    if not bus or any(c.isspace() for c in text):
        raise ValueError(f"{label}: invalid bus spec {spec!r}.")
    try:
        nodes = [int(p) for p in parts[1:]]
    except ValueError:
        raise ValueError(
            f"{label}: bus spec {spec!r} has a non-integer node; write e.g. '632.1.2'."
        ) from None
    if any(k < 0 for k in nodes):
        raise ValueError(f"{label}: bus spec {spec!r} has a negative node.")
    if len(nodes) > n_conductors:
        raise ValueError(
            f"{label}: bus spec {spec!r} names {len(nodes)} nodes but the element has "
            f"{n_conductors} conductor(s) there."
        )
    if 0 < len(nodes) < n_phases:
        raise ValueError(
            f"{label}: bus spec {spec!r} names {len(nodes)} node(s) for {n_phases} "
            f"phases; name one node per phase (e.g. '{bus}."
            + ".".join(str(k) for k in range(1, n_phases + 1))
            + "') or none."
        )
    full = list(range(1, n_phases + 1)) + [0] * (n_conductors - n_phases)
    full[: len(nodes)] = nodes
    live = [k for k in full if k != 0]
    if len(set(live)) != len(live):
        raise ValueError(f"{label}: bus spec {spec!r} repeats a node.")
    return [(bus, k) for k in full]


def _condition_1norm(a: sp.csc_array, lu) -> float:
    """A lower estimate of the 1-norm condition number of `a`: `||a||_1` times the
    largest `||a^-1 x||_1 / ||x||_1` over a few probes. A floating subnetwork makes
    almost every probe (the common-mode one above all) blow up to ~1/eps, and a
    lower estimate never flags a sound matrix."""
    n = int(lu.shape[0])
    rng = np.random.default_rng(0)
    probes = [np.ones(n, dtype=np.complex128)] + [
        rng.standard_normal(n) + 1j * rng.standard_normal(n) for _ in range(3)
    ]
    inv_norm = max(float(np.abs(lu.solve(x)).sum() / np.abs(x).sum()) for x in probes)
    a_norm = float(np.max(np.asarray(abs(a).sum(axis=0)).ravel()))
    return a_norm * inv_norm


def _spec(conductor: tuple[str, int]) -> str:
    return f"{conductor[0]}.{conductor[1]}"


def _square(label: str, field: str, value, n: int | None) -> np.ndarray:
    arr = np.asarray(value, dtype=np.complex128)
    if arr.ndim == 0:
        arr = arr.reshape(1, 1)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{label}: {field} must be a square matrix; got {arr.shape}.")
    if n is not None and arr.shape != (n, n):
        raise ValueError(
            f"{label}: {field} has shape {arr.shape}; with {n} phase(s) it must be "
            f"({n}, {n})."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{label}: {field} has non-finite entries.")
    return arr


def _check_phases(label: str, phases) -> None:
    if not isinstance(phases, (int, np.integer)) or isinstance(phases, bool):
        raise TypeError(f"{label}: phases must be an integer; got {phases!r}.")
    if phases < 1:
        raise ValueError(f"{label}: phases must be at least 1; got {phases}.")


def _check_conn(label: str, conn: str) -> bool:
    key = str(conn).strip().lower()
    if key not in ("wye", "y", "ln", "delta", "d", "ll"):
        raise ValueError(f"{label}: unknown conn {conn!r}; use 'wye' or 'delta'.")
    return key in ("delta", "d", "ll")


def _check_positive(label: str, **values) -> None:
    for field, v in values.items():
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ValueError(f"{label}: {field} must be positive; got {v!r}.")


def _check_nonnegative(label: str, **values) -> None:
    for field, v in values.items():
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise ValueError(f"{label}: {field} must be zero or positive; got {v!r}.")


def _check_finite(label: str, **values) -> None:
    for field, v in values.items():
        if not (isinstance(v, (int, float)) and math.isfinite(v)):
            raise ValueError(f"{label}: {field} must be a finite number; got {v!r}.")
