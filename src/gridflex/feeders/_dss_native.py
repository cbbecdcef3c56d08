"""Read an OpenDSS model natively (no OpenDSS at run time): `read_dss`.

The script is parsed by `_dss_syntax` and run through a small copy of OpenDSS's object
model: each element keeps the state OpenDSS keeps and reacts to each property as
OpenDSS does, in the order given (`units` after `r1` is not `units` before it; `kVA` on
winding 1 sets every winding's kVA; `Switch=yes` turns a line into a 1-ohm, 1-metre
jumper that later properties override; `like=` copies what OpenDSS's `MakeLike`
copies). Only when the script has run are the elements handed to `FeederBuilder`,
whose element models reproduce OpenDSS's primitive admittances. That is how the feeder
matches OpenDSS's system admittance exactly (see `tests/test_dss_native.py`).

What the reader models is what distribution feeders are made of: `Vsource`, `Line`
(linecode or own impedances, switches), `LineCode`, `Transformer` (regulators at fixed
taps), `Capacitor` and `Load`. Objects that do not change the snapshot network
(`LoadShape`, `EnergyMeter`, `Monitor`, `RegControl`, `CapControl`, ...) and reporting
commands (`Solve`, `Show`, `Plot`, ...) are ignored. Elements that would change the
network but are not modelled (`Generator`, `PVSystem`, `Storage`, `Reactor`, lines from
`LineGeometry`, ...) are errors that point to `engine="opendss"` (the AltDSS importer).
"""

import abc
import dataclasses
import math
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np

from .._misc import format_names
from . import _elements
from ._builder import FeederBuilder, Winding
from ._dss_syntax import (
    _ValueProblem,
    Command,
    DssError,
    DssProblem,
    Param,
    parse_file,
    to_array,
    to_bool,
    to_bus,
    to_float,
    to_int,
    to_matrix,
    to_strings,
)
from ._feeder import Feeder


__all__ = ["read_dss"]

_TWO_PI = 2.0 * math.pi
_ALTDSS = "read the file with engine='opendss' (the AltDSS importer) instead"


class _Unsupported(_ValueProblem):
    """Input OpenDSS understands but the native reader does not model."""


# --- units ----------------------------------------------------------------------------

# OpenDSS's length units and their length in metres (LineUnits.pas). Note the mile:
# (OpenDSS's source once had 1609.3 m; the engine opendssdirect.py wraps uses 1609.344.)
_TO_METRES = {
    0: 1.0,
    1: 1609.344,
    2: 304.8,
    3: 1000.0,
    4: 1.0,
    5: 0.3048,
    6: 0.0254,
    7: 0.01,
    8: 0.001,
}
_UNIT_CODES = {
    "none": 0,
    "no": 0,
    "mi": 1,
    "mile": 1,
    "miles": 1,
    "kft": 2,
    "km": 3,
    "m": 4,
    "meter": 4,
    "meters": 4,
    "metre": 4,
    "metres": 4,
    "ft": 5,
    "in": 6,
    "cm": 7,
    "mm": 8,
}
_KFT = 2


def _units(text: str) -> int:
    code = _UNIT_CODES.get(text.strip().lower())
    if code is None:
        # OpenDSS reads unknown spellings (e.g. 'feet') as 'none' without a word.
        raise _ValueProblem(
            f"unknown length unit {text!r}; use none, mi, kft, km, m, ft, in, cm or mm"
        )
    return code


def _convert_units(from_units: int, to_units: int) -> float:
    """OpenDSS `ConvertLineUnits`: 1 if either unit is 'none' (nothing to convert)."""
    if from_units == 0 or to_units == 0:
        return 1.0
    return (1.0 / _TO_METRES[to_units]) * _TO_METRES[from_units]


def _conn(text: str) -> str:
    key = text.strip().lower()
    if key in ("wye", "y", "ln", "w", "star"):
        return "wye"
    if key in ("delta", "d", "ll"):
        return "delta"
    raise _ValueProblem(f"unknown connection {text!r}; use wye or delta")


def _kxg(xg: float, rho: float, base_frequency: float) -> float:
    """OpenDSS's earth-return reactance factor, kept with the state as OpenDSS keeps it
    (recomputed only when Xg, rho or a linecode is set)."""
    return xg / math.log(658.5 * math.sqrt(rho / base_frequency))


# --- element states -------------------------------------------------------------------


class _Object(abc.ABC):
    """The state of one OpenDSS object, changed property by property as OpenDSS does.

    `PROPERTIES` lists the property names in OpenDSS's order: positional parameters
    and abbreviations (`ppm` for `ppm_antifloat`) are resolved against it.
    """

    CLASS: ClassVar[str]
    PROPERTIES: ClassVar[tuple[str, ...]]

    def __init__(self, name: str, model: "_Model", where: tuple[str, int]):
        self.name = name
        self.model = model
        self.where = where  # the `New` command
        self.set_at: dict[str, tuple[str, int]] = {}  # property -> last line setting it
        self.enabled = True
        self._defaults()

    @property
    def label(self) -> str:
        return f"{self.CLASS}.{self.name}"

    @abc.abstractmethod
    def _defaults(self) -> None:
        """OpenDSS's state of a new object of this class."""

    @abc.abstractmethod
    def set(self, prop: str, value: str) -> None:
        """Apply one property, with OpenDSS's side effects."""

    @abc.abstractmethod
    def end_edit(self) -> None:
        """What OpenDSS recomputes at the end of each `New`/`Edit` command."""

    @abc.abstractmethod
    def make_like(self, other: "_Object") -> None:
        """`like=other`: copy what OpenDSS's `MakeLike` copies."""


class _LineCode(_Object):
    CLASS = "LineCode"
    PROPERTIES = tuple(
        (
            "nphases r1 x1 r0 x0 c1 c0 units rmatrix xmatrix cmatrix basefreq normamps "
            "emergamps faultrate pctperm repair kron rg xg rho neutral b1 b0 seasons "
            "ratings linetype like"
        ).split()
    )
    _IGNORED = frozenset(
        (
            "normamps emergamps faultrate pctperm repair neutral seasons ratings "
            "linetype"
        ).split()
    )

    def _defaults(self):
        self.nphases = 3
        self.r1, self.x1, self.r0, self.x0 = 0.0580, 0.1206, 0.1784, 0.4047
        self.c1, self.c0 = 3.4e-9, 1.6e-9  # farad per length unit
        self.units = 0
        self.basefreq = self.model.frequency
        self.rg, self.xg, self.rho = 0.01805, 0.155081, 100.0
        self.sym = True
        self._from_sequence()

    def _from_sequence(self) -> None:
        """OpenDSS `CalcMatricesFromZ1Z0`: Z (ohm) and Yc (siemens, at `basefreq`)."""
        n = self.nphases
        z1, z0 = complex(self.r1, self.x1), complex(self.r0, self.x0)
        w = _TWO_PI * self.basefreq
        self.z = _balanced((2.0 * z1 + z0) / 3.0, (z0 - z1) / 3.0, n)
        self.yc = _balanced(
            1j * w * (2.0 * self.c1 + self.c0) / 3.0,
            1j * w * (self.c0 - self.c1) / 3.0,
            n,
        )

    def set(self, prop, value):
        match prop:
            case "nphases":
                n = _positive_int(value)
                if n != self.nphases:
                    self.nphases = n
                    self._from_sequence()
                self.sym = True
            case "r1" | "x1" | "r0" | "x0":
                setattr(self, prop, to_float(value))
                self.sym = True
            case "c1":
                self.c1 = to_float(value) * 1e-9
                self.sym = True
            case "c0":  # OpenDSS quirk kept: c0 alone does not select sequence data
                self.c0 = to_float(value) * 1e-9
            case "b1" | "b0":  # microsiemens per length unit
                c = to_float(value) / (_TWO_PI * self.basefreq) * 1e-6
                setattr(self, "c" + prop[1], c)
                self.sym = True
            case "units":
                self.units = _units(value)
            case "rmatrix":
                self.z = to_matrix(value, self.nphases) + 1j * np.imag(self.z)
                self.sym = False
            case "xmatrix":
                self.z = np.real(self.z) + 1j * to_matrix(value, self.nphases)
                self.sym = False
            case "cmatrix":
                w = _TWO_PI * self.basefreq
                self.yc = 1j * w * to_matrix(value, self.nphases) * 1e-9
                self.sym = False
            case "basefreq":
                self.basefreq = _positive_float(value)
            case "rg" | "xg" | "rho":
                setattr(self, prop, to_float(value))
            case "kron":
                if to_bool(value):
                    raise _Unsupported(
                        f"Kron reduction of a linecode is not modelled; {_ALTDSS}"
                    )
            case _:
                _ignore(prop, self._IGNORED)

    def end_edit(self):
        if self.sym:
            self._from_sequence()

    def make_like(self, other):
        assert isinstance(other, _LineCode)
        # OpenDSS's MakeLike copies the data but neither the units nor whether the
        # data are sequence values (so `end_edit` recomputes matrices from them).
        self.nphases, self.basefreq = other.nphases, other.basefreq
        self.z, self.yc = other.z.copy(), other.yc.copy()
        self.r1, self.x1, self.r0, self.x0 = other.r1, other.x1, other.r0, other.x0
        self.c1, self.c0 = other.c1, other.c0
        self.rg, self.xg, self.rho = other.rg, other.xg, other.rho


class _Line(_Object):
    CLASS = "Line"
    PROPERTIES = tuple(
        (
            "bus1 bus2 linecode length phases r1 x1 r0 x0 c1 c0 rmatrix xmatrix "
            "cmatrix switch rg xg rho geometry units spacing wires earthmodel cncables "
            "tscables b1 b0 seasons ratings linetype normamps emergamps faultrate "
            "pctperm repair basefreq enabled like"
        ).split()
    )
    _IGNORED = frozenset(
        (
            "earthmodel seasons ratings linetype normamps emergamps faultrate pctperm "
            "repair"
        ).split()
    )

    def _defaults(self):
        self.bus1, self.bus2 = f"{self.name}_1", f"{self.name}_2"
        self.phases = 3
        self.r1, self.x1, self.r0, self.x0 = 0.0580, 0.1206, 0.1784, 0.4047
        self.c1, self.c0 = 3.4e-9, 1.6e-9
        self.length = 1.0
        self.units = 0  # OpenDSS LengthUnits
        self.units_convert = 1.0
        self.linecode: _LineCode | None = None
        self.linecode_units = 0
        self.basefreq = self.model.frequency
        self.rg, self.xg, self.rho = 0.01805, 0.155081, 100.0
        self.kxg = _kxg(self.xg, self.rho, self.basefreq)
        self.sym = True
        self.sym_changed = False
        self.cap_specified = False
        self.switch = False
        self.open: set[tuple[int, int]] = set()  # (terminal, conductor), 1-based
        self._recalc()

    def _recalc(self) -> None:
        """OpenDSS `TLineObj.RecalcElementData`: matrices from sequence data."""
        if self.phases == 1:  # a one-phase line is its positive sequence
            self.r0, self.x0, self.c0 = self.r1, self.x1, self.c1
        n = self.phases
        z1, z0 = complex(self.r1, self.x1), complex(self.r0, self.x0)
        w = _TWO_PI * self.basefreq
        self.z = _balanced((2.0 * z1 + z0) / 3.0, (z0 - z1) / 3.0, n)
        self.yc = _balanced(
            1j * w * (2.0 * self.c1 + self.c0) / 3.0,
            1j * w * (self.c0 - self.c1) / 3.0,
            n,
        )
        self.sym_changed = False

    def _reset_units(self) -> None:
        self.units_convert = 1.0
        self.units = 0

    def _own_data(self, sym: bool) -> None:
        self.linecode = None
        self._reset_units()
        self.sym = sym

    def set(self, prop, value):
        match prop:
            case "bus1" | "bus2":
                to_bus(value)
                setattr(self, prop, value.strip())
            case "linecode":
                code = self.model.find("linecode", value)
                if not isinstance(code, _LineCode):
                    raise _ValueProblem(
                        f"linecode {value!r} is not defined (before this line)"
                    )
                self._fetch(code)
            case "length":
                self.length = to_float(value)
            case "phases":
                n = _positive_int(value)
                if n != self.phases:
                    if not self.sym:
                        raise _ValueProblem(
                            f"cannot change the number of phases to {n}: the "
                            "impedances are matrices (OpenDSS refuses this too)"
                        )
                    self.phases = n
                    self._recalc()
            case "r1" | "x1" | "r0" | "x0":
                setattr(self, prop, to_float(value))
                self._own_data(sym=True)
                self.sym_changed = True
            case "c1" | "c0":
                setattr(self, prop, to_float(value) * 1e-9)
                self._own_data(sym=True)
                self.sym_changed = self.cap_specified = True
            case "b1" | "b0":
                c = to_float(value) / (_TWO_PI * self.basefreq) * 1e-6
                setattr(self, "c" + prop[1], c)
                self._own_data(sym=True)
                self.sym_changed = self.cap_specified = True
            case "rmatrix" | "xmatrix" | "cmatrix":
                m = to_matrix(value, self.phases)
                if prop == "rmatrix":
                    self.z = m + 1j * np.imag(self.z)
                elif prop == "xmatrix":
                    self.z = np.real(self.z) + 1j * m
                else:
                    self.yc = 1j * _TWO_PI * self.basefreq * m * 1e-9
                    self.cap_specified = True
                self._own_data(sym=False)
            case "switch":
                self.switch = to_bool(value)
                if self.switch:  # OpenDSS makes the line a short jumper
                    self.sym_changed = True
                    self.r1 = self.x1 = self.r0 = self.x0 = 1.0
                    self.c1, self.c0 = 1.1e-9, 1.0e-9
                    self.length = 0.001
                    self._reset_units()
            case "units":
                previous, self.units = self.units, _units(value)
                if self.linecode is not None:
                    self.units_convert = _convert_units(self.linecode_units, self.units)
                else:
                    self.units_convert *= _convert_units(previous, self.units)
            case "rg" | "xg" | "rho":
                setattr(self, prop, to_float(value))
                if prop != "rg":
                    self.kxg = _kxg(self.xg, self.rho, self.basefreq)
            case "basefreq":
                self.basefreq = _positive_float(value)
            case "enabled":
                self.enabled = to_bool(value)
            case "geometry" | "spacing" | "wires" | "cncables" | "tscables":
                raise _Unsupported(
                    f"lines defined by {prop} (conductor geometry) are not modelled; "
                    f"give a linecode or impedance matrices, or {_ALTDSS}"
                )
            case _:
                _ignore(prop, self._IGNORED)

    def _fetch(self, code: _LineCode) -> None:
        """OpenDSS `FetchLineCode`."""
        self.linecode = code
        self.basefreq = code.basefreq
        self.sym = code.sym
        if code.sym:
            self.r1, self.x1, self.r0, self.x0 = code.r1, code.x1, code.r0, code.x0
            self.c1, self.c0 = code.c1, code.c0
        self.rg, self.xg, self.rho = code.rg, code.xg, code.rho
        self.kxg = _kxg(self.xg, self.rho, self.basefreq)
        self.linecode_units = code.units
        self.units_convert = _convert_units(code.units, self.units)
        self.phases = code.nphases
        if code.sym:
            self._recalc()
        else:
            self.z, self.yc = code.z.copy(), code.yc.copy()

    def end_edit(self):
        pass  # OpenDSS recomputes a line only when it builds its Yprim (`calc`)

    def calc(self) -> None:
        """What OpenDSS's `CalcYPrim` changes in the line's state (at solve time)."""
        if self.sym_changed:
            if not self.cap_specified:  # the default C is per kft
                self.c1 /= _convert_units(_KFT, self.units)
                self.c0 /= _convert_units(_KFT, self.units)
                self.cap_specified = True
            self._recalc()

    def series_and_shunt(
        self, frequency: float
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Impedance (ohm) and capacitance (nF) per km at `frequency`, and the length
        in km, such that their products are OpenDSS's totals for this line."""
        self.calc()
        fm = frequency / self.basefreq
        lm = self.length / self.units_convert  # length in the data's unit
        xgmod = 0.5 * self.kxg * math.log(fm) if self.xg != 0.0 else 0.0
        z = (np.real(self.z) + self.rg * (fm - 1.0)) + 1j * (
            np.imag(self.z) - xgmod
        ) * fm
        c_nf = np.imag(self.yc) / (_TWO_PI * self.basefreq) * 1e9
        data_units = self.linecode_units if self.linecode is not None else 0
        unit = data_units or self.units
        km = _TO_METRES[unit] / 1000.0 if unit else 1.0
        return z / km, c_nf / km, lm * km

    def make_like(self, other):
        assert isinstance(other, _Line)
        self.phases = other.phases
        self.z, self.yc = other.z.copy(), other.yc.copy()
        self.r1, self.x1, self.r0, self.x0 = other.r1, other.x1, other.r0, other.x0
        self.c1, self.c0 = other.c1, other.c0
        self.length = other.length
        self.sym, self.cap_specified = other.sym, other.cap_specified
        self.basefreq = other.basefreq
        self.enabled = True


@dataclasses.dataclass
class _Winding:
    """OpenDSS `TWinding`, with its defaults."""

    bus: str
    conn: str = "wye"
    kv: float = 12.47
    kva: float = 1000.0
    tap: float = 1.0
    rpu: float = 0.002
    rneut: float = -1.0
    xneut: float = 0.0


class _Transformer(_Object):
    CLASS = "Transformer"
    PROPERTIES = tuple(
        (
            "phases windings wdg bus conn kv kva tap %r rneut xneut buses conns kvs "
            "kvas taps xhl xht xlt xscarray thermal n m flrise hsrise %loadloss "
            "%noloadloss normhkva emerghkva sub maxtap mintap numtaps subname %imag "
            "ppm_antifloat %rs bank xfmrcode xrconst x12 x13 x23 leadlag wdgcurrents "
            "core rdcohms seasons ratings normamps emergamps faultrate pctperm repair "
            "basefreq enabled like"
        ).split()
    )
    # Thermal data, ratings, tap-changer limits (RegControl's business), names: no
    # effect on the admittance. XRConst matters only away from the base frequency.
    _IGNORED = frozenset(
        (
            "thermal n m flrise hsrise normhkva emerghkva sub maxtap mintap numtaps "
            "subname bank xrconst wdgcurrents core rdcohms seasons ratings normamps "
            "emergamps faultrate pctperm repair basefreq"
        ).split()
    )

    def _defaults(self):
        self.phases = 3
        self.windings = [_Winding(f"{self.name}_{i}") for i in (1, 2)]
        self.active = 1
        self.xhl, self.xht, self.xlt = 0.07, 0.35, 0.30
        self.xsc = [0.07]
        self.xhl_changed = False
        self.noload_loss_pct = 0.0
        self.imag_pct = 0.0
        self.ppm = 1.0
        self.hv_leads_lv = False

    def _winding(self) -> _Winding:
        return self.windings[self.active - 1]

    def _per_winding(self, values: list, what: str) -> list:
        if len(values) > len(self.windings):
            raise _ValueProblem(
                f"{len(values)} {what} for {len(self.windings)} windings; set "
                "windings= first"
            )
        return values

    def _set_array(self, prop: str, value: str) -> None:
        """`buses=[...]` and the other per-winding arrays. OpenDSS walks the windings
        as it sets them, which leaves the *last* one active: a later `tap=` without
        `wdg=` applies to it."""
        values = self._per_winding(to_strings(value), prop)
        for i, (w, text) in enumerate(zip(self.windings, values), start=1):
            match prop:
                case "buses":
                    to_bus(text)
                    w.bus = text
                case "conns":
                    w.conn = _conn(text)
                case "kvs":
                    w.kv = to_float(text)
                case "kvas":
                    w.kva = to_float(text)
                case "taps":
                    w.tap = to_float(text)
                case _:
                    w.rpu = to_float(text) / 100.0
            self.active = i

    def set(self, prop, value):
        w = self._winding()
        match prop:
            case "phases":
                self.phases = _positive_int(value)
            case "windings":
                n = to_int(value)
                if n < 2:
                    raise _ValueProblem("a transformer needs at least two windings")
                old = len(self.xsc)
                # OpenDSS re-creates every winding, and new reactances default to 30%.
                self.windings = [_Winding(f"{self.name}_{i}") for i in range(1, n + 1)]
                size = n * (n - 1) // 2
                self.xsc = (
                    (self.xsc + [0.30] * size)[:size] if size > old else self.xsc[:size]
                )
                self.active = min(self.active, n)
            case "wdg":
                k = to_int(value)
                if not 1 <= k <= len(self.windings):
                    raise _ValueProblem(
                        f"winding {k} does not exist (windings={len(self.windings)})"
                    )
                self.active = k
            case "bus":
                to_bus(value)
                w.bus = value.strip()
            case "conn":
                w.conn = _conn(value)
            case "kv":
                w.kv = to_float(value)
            case "kva":
                w.kva = to_float(value)
                if self.active == 1:  # OpenDSS: winding 1 sets them all
                    for other in self.windings[1:]:
                        other.kva = w.kva
                elif len(self.windings) == 2:
                    self.windings[0].kva = w.kva
            case "tap":
                w.tap = to_float(value)
            case "%r":
                w.rpu = to_float(value) / 100.0
            case "rneut":
                w.rneut = to_float(value)
            case "xneut":
                w.xneut = to_float(value)
            case "buses" | "conns" | "kvs" | "kvas" | "taps" | "%rs":
                self._set_array(prop, value)
            case "xhl" | "xht" | "xlt" | "x12" | "x13" | "x23":
                x = to_float(value)
                i = {"xhl": 0, "x12": 0, "xht": 1, "x13": 1, "xlt": 2, "x23": 2}[prop]
                default = (7.0, 35.0, 30.0)[i]
                setattr(
                    self, ("xhl", "xht", "xlt")[i], (default if x == 0.0 else x) / 100.0
                )
                self.xhl_changed = True
            case "xscarray":
                n = len(self.windings)
                values = to_array(value)
                if len(values) != n * (n - 1) // 2:
                    raise _ValueProblem(
                        f"{len(values)} reactances for {n} windings; give "
                        f"{n * (n - 1) // 2}"
                    )
                self.xsc = [x / 100.0 for x in values]
            case "%loadloss":  # OpenDSS splits it between windings 1 and 2
                r = to_float(value) / 2.0 / 100.0
                self.windings[0].rpu = self.windings[1].rpu = r
            case "%noloadloss":
                self.noload_loss_pct = to_float(value)
            case "%imag":
                self.imag_pct = to_float(value)
            case "ppm_antifloat":
                self.ppm = to_float(value)
            case "leadlag":
                word = value.strip().lower()
                if word not in ("lead", "lag", "ansi", "euro"):
                    raise _ValueProblem(f"unknown leadlag {value!r}; use lead or lag")
                self.hv_leads_lv = word in ("lead", "euro")
            case "xfmrcode":
                raise _Unsupported(
                    f"transformers from an XfmrCode are not modelled; {_ALTDSS}"
                )
            case "enabled":
                self.enabled = to_bool(value)
            case _:
                _ignore(prop, self._IGNORED)

    def begin_edit(self) -> None:
        self.xhl_changed = False

    def end_edit(self):
        if self.xhl_changed and len(self.windings) <= 3:
            self.xsc = [self.xhl, self.xht, self.xlt][: len(self.xsc)]
        self.xhl_changed = False

    def make_like(self, other):
        assert isinstance(other, _Transformer)
        # OpenDSS copies the winding data but not the buses, %imag or ppm_antifloat.
        self.phases = other.phases
        buses = [f"{self.name}_{i}" for i in range(1, len(other.windings) + 1)]
        self.windings = [
            dataclasses.replace(w, bus=b) for w, b in zip(other.windings, buses)
        ]
        self.xhl, self.xht, self.xlt = other.xhl, other.xht, other.xlt
        self.xsc = list(other.xsc)
        self.noload_loss_pct = other.noload_loss_pct
        self.hv_leads_lv = other.hv_leads_lv
        self.enabled = True


class _Vsource(_Object):
    CLASS = "Vsource"
    PROPERTIES = tuple(
        (
            "bus1 basekv pu angle frequency phases mvasc3 mvasc1 x1r1 x0r0 isc3 isc1 "
            "r1 x1 r0 x0 scantype sequence bus2 z1 z0 z2 puz1 puz0 puz2 basemva yearly "
            "daily duty model puzideal spectrum basefreq enabled like"
        ).split()
    )
    _IGNORED = frozenset(
        "scantype yearly daily duty puzideal spectrum basefreq".split()
    )

    def _defaults(self):
        self.bus1 = "sourcebus"
        self.bus2: str | None = None
        self.basekv, self.pu, self.angle = 115.0, 1.0, 0.0
        self.frequency = self.model.frequency
        self.phases = 3
        self.mvasc3, self.mvasc1, self.x1r1, self.x0r0 = 2000.0, 2100.0, 4.0, 3.0
        self.isc3, self.isc1 = 10000.0, 10540.0
        self.r1, self.x1, self.r0, self.x0 = 1.65, 6.6, 1.9, 5.7
        self.r2, self.x2 = self.r1, self.x1
        self.zspec = 1  # 1: MVAsc, 2: Isc, 3: impedances
        self.basemva = 100.0
        self.zbase = self.basekv**2 / self.basemva
        self.puz: dict[str, complex] = {}
        self.z_given: set[str] = set()

    def set(self, prop, value):
        match prop:
            case "bus1":
                to_bus(value)
                self.bus1 = value.strip()
            case "bus2":
                name, nodes = to_bus(value)
                if any(nodes) or name != to_bus(self.bus1)[0]:
                    raise _Unsupported(
                        f"a source not connected to ground is not modelled; {_ALTDSS}"
                    )
            case "basekv":
                self.basekv = _positive_float(value)
                self.zbase = self.basekv**2 / self.basemva
            case "basemva":
                self.basemva = _positive_float(value)
                self.zbase = self.basekv**2 / self.basemva
            case "pu" | "angle":
                setattr(self, prop, to_float(value))
            case "frequency":
                self.frequency = _positive_float(value)
            case "phases":
                self.phases = _positive_int(value)
            case "mvasc3" | "mvasc1" | "x1r1" | "x0r0" | "isc3" | "isc1":
                setattr(self, prop, to_float(value))
                if prop in ("mvasc3", "mvasc1"):
                    self.zspec = 1
                elif prop in ("isc3", "isc1"):
                    self.zspec = 2
            case "r1" | "x1" | "r0" | "x0":
                setattr(self, prop, to_float(value))
                if prop == "r1":
                    self.r2 = self.r1
                elif prop == "x1":
                    self.x2 = self.x1
                self.zspec = 3
            case "z1" | "z0" | "z2":
                r, x = _pair(value)
                k = prop[1]
                setattr(self, "r" + k, r)
                setattr(self, "x" + k, x)
                if prop == "z1":
                    if "z2" not in self.z_given:
                        self.r2, self.x2 = r, x
                    if "z0" not in self.z_given:
                        self.r0, self.x0 = r, x
                self.z_given.add(prop)
                self.zspec = 3
            case "puz1" | "puz0" | "puz2":
                r, x = _pair(value)
                self.puz[prop] = complex(r, x)
                if prop == "puz1":
                    self.puz.setdefault("puz2", complex(r, x))
                    self.puz.setdefault("puz0", complex(r, x))
                self.zspec = 3
            case "sequence":
                if value.strip().lower() not in ("pos", "positive", "1"):
                    raise _Unsupported(
                        "a negative- or zero-sequence source is not modelled; "
                        + _ALTDSS
                    )
            case "model":
                if value.strip().lower() != "thevenin":
                    raise _Unsupported(
                        f"an ideal source model is not modelled; {_ALTDSS}"
                    )
            case "enabled":
                if not to_bool(value):
                    raise _Unsupported("the source cannot be disabled")
            case _:
                _ignore(prop, self._IGNORED)

    def end_edit(self):
        pass

    def make_like(self, other):
        raise _Unsupported("a second source (Vsource like=...) is not modelled")

    def add_to(self, b: FeederBuilder) -> None:
        if abs(self.frequency - self.model.frequency) > 1e-9:
            raise _Unsupported(
                f"the source runs at {self.frequency} Hz but the circuit at "
                f"{self.model.frequency} Hz (OpenDSS then gives it zero volts)"
            )
        kwargs: dict = dict(x1r1=self.x1r1, x0r0=self.x0r0)
        if self.zspec == 1:
            kwargs.update(mvasc3=self.mvasc3, mvasc1=self.mvasc1)
        elif self.zspec == 2:
            kwargs.update(isc3=self.isc3, isc1=self.isc1)
        else:
            kwargs = {}
            z1, z2, z0 = (
                complex(self.r1, self.x1),
                complex(self.r2, self.x2),
                complex(self.r0, self.x0),
            )
            if self.puz:
                z1, z2, z0 = (
                    self.puz.get(k, 0j) * self.zbase for k in ("puz1", "puz2", "puz0")
                )
            if self.phases == 1:
                z2 = z0 = z1
            if z2 == z1:
                kwargs.update(z1_ohm=z1, z0_ohm=z0)
            elif self.phases == 3:
                kwargs.update(z_ohm=_asymmetric_source(z1, z2, z0))
            else:
                raise _Unsupported(
                    "a negative-sequence impedance Z2 needs three phases"
                )
        b.source(
            self.bus1.lower(),
            kv=self.basekv,
            pu=self.pu,
            angle_deg=self.angle,
            phases=self.phases,
            name=self.name,
            **kwargs,
        )


class _Capacitor(_Object):
    CLASS = "Capacitor"
    PROPERTIES = tuple(
        (
            "bus1 bus2 phases kvar kv conn cmatrix cuf r xl harm numsteps states "
            "normamps emergamps faultrate pctperm repair basefreq enabled like"
        ).split()
    )
    _IGNORED = frozenset(
        "harm normamps emergamps faultrate pctperm repair basefreq".split()
    )

    def _defaults(self):
        self.bus1 = f"{self.name}_1"
        self.bus2: str | None = None
        self.phases = 3
        self.kvar = [1200.0]
        self.kv = 12.47
        self.conn = "wye"
        self.states = [1]

    def set(self, prop, value):
        match prop:
            case "bus1" | "bus2":
                to_bus(value)
                setattr(self, prop, value.strip())
            case "phases":
                self.phases = _positive_int(value)
            case "kvar":  # OpenDSS keeps as many steps as numsteps says
                values = to_array(value)
                if not values:
                    raise _ValueProblem("kvar needs a value")
                n = len(self.states)
                self.kvar = (values + [values[-1]] * n)[:n]
            case "kv":
                self.kv = to_float(value)
            case "conn":
                self.conn = _conn(value)
            case "numsteps":
                n = _positive_int(value)
                self.kvar = (self.kvar + [self.kvar[-1]] * n)[:n]
                self.states = (self.states + [1] * n)[:n]
            case "states":
                states = [to_int(s) for s in to_strings(value)]
                self.states = (states + self.states[len(states) :])[: len(self.states)]
            case "r" | "xl":
                if any(v != 0.0 for v in to_array(value)):
                    raise _Unsupported(
                        f"capacitors with series {prop.upper()} are not modelled; "
                        + _ALTDSS
                    )
            case "cmatrix" | "cuf":
                raise _Unsupported(
                    f"capacitors given by {prop} are not modelled; give kvar and kv, "
                    f"or {_ALTDSS}"
                )
            case "enabled":
                self.enabled = to_bool(value)
            case _:
                _ignore(prop, self._IGNORED)

    def end_edit(self):
        pass

    def make_like(self, other):
        assert isinstance(other, _Capacitor)
        self.phases, self.kvar, self.kv = other.phases, list(other.kvar), other.kv
        self.conn, self.states = other.conn, list(other.states)
        self.enabled = True


class _Load(_Object):
    CLASS = "Load"
    PROPERTIES = tuple(
        (
            "phases bus1 kv kw pf model yearly daily duty growth conn kvar rneut xneut "
            "status class vminpu vmaxpu vminnorm vminemerg xfkva allocationfactor kva "
            "%mean %stddev cvrwatts cvrvars kwh kwhdays cfactor cvrcurve numcust zipv "
            "%seriesrl relweight vlowpu puxharm xrharm spectrum basefreq enabled like"
        ).split()
    )
    # gridflex keeps a load's model at every voltage: the limits below which OpenDSS
    # turns a load into a constant impedance (vminpu, vlowpu, ...) are not used.
    _IGNORED = frozenset(
        (
            "growth class vminpu vmaxpu vminnorm vminemerg %mean %stddev cvrwatts "
            "cvrvars cvrcurve numcust zipv %seriesrl relweight vlowpu puxharm xrharm "
            "spectrum basefreq"
        ).split()
    )

    def _defaults(self):
        self.phases = 3
        self.bus1 = f"{self.name}_1"
        self.kv = 12.47
        self.kw, self.kvar, self.kva, self.pf = 10.0, 5.0, 10.0 / 0.88, 0.88
        self.spec = "kw_pf"  # which pair defines the power (OpenDSS LoadSpecType)
        self.load_model = 1
        self.conn = "wye"
        self.status = "variable"

    def set(self, prop, value):
        match prop:
            case "phases":
                self.phases = _positive_int(value)
            case "bus1":
                to_bus(value)
                self.bus1 = value.strip()
            case "kv":
                self.kv = to_float(value)
            case "kw":
                self.kw = to_float(value)
                self.spec = "kw_pf"
            case "pf":
                self.pf = to_float(value)
            case "kvar":
                self.kvar = to_float(value)
                self.spec = "kw_kvar"
            case "kva":
                self.kva = to_float(value)
                self.spec = "kva_pf"
            case "model":
                self.load_model = to_int(value)
            case "conn":
                self.conn = _conn(value)
            case "status":
                word = value.strip().lower()
                matches = [
                    s for s in ("variable", "fixed", "exempt") if s.startswith(word)
                ]
                if not word or not matches:
                    raise _ValueProblem(
                        f"unknown status {value!r}; use variable, fixed or exempt"
                    )
                self.status = matches[0]
            case "yearly" | "daily" | "duty":
                shape = self.model.find("loadshape", value)
                if isinstance(shape, _LoadShape) and shape.use_actual:
                    raise _Unsupported(
                        f"load shape {value!r} has useactual=yes, which makes OpenDSS "
                        "replace the load's kW and kvar by the shape's peak; set "
                        f"useactual=no or {_ALTDSS}"
                    )
            case "rneut" | "xneut":
                if prop == "rneut" and to_float(value) >= 0.0:
                    raise _Unsupported(
                        f"a load's neutral impedance is not modelled; {_ALTDSS}"
                    )
            case "xfkva" | "allocationfactor" | "kwh" | "kwhdays" | "cfactor":
                raise _Unsupported(
                    f"loads sized by {prop} (load allocation) are not modelled; give "
                    f"kW and kvar or pf, or {_ALTDSS}"
                )
            case "enabled":
                self.enabled = to_bool(value)
            case _:
                _ignore(prop, self._IGNORED)

    def end_edit(self):
        pass

    def powers(self) -> tuple[float, float]:
        """kW and kvar as OpenDSS computes them (`RecalcElementData`), times the
        circuit's load multiplier for loads whose status is `variable`."""
        kw, kvar = self.kw, self.kvar
        if self.spec in ("kw_pf", "kva_pf"):
            if not (0.0 < abs(self.pf) <= 1.0):
                raise _ValueProblem(f"pf={self.pf} must be in [-1, 1] and not 0")
            if self.spec == "kva_pf":
                kw = self.kva * abs(self.pf)
            kvar = math.copysign(kw * math.sqrt(1.0 / self.pf**2 - 1.0), self.pf)
        factor = self.model.loadmult if self.status == "variable" else 1.0
        return kw * factor, kvar * factor

    def make_like(self, other):
        assert isinstance(other, _Load)
        for attr in (
            "phases",
            "kv",
            "kw",
            "kvar",
            "kva",
            "pf",
            "spec",
            "load_model",
            "conn",
            "status",
        ):
            setattr(self, attr, getattr(other, attr))
        self.enabled = True


class _LoadShape(_Object):
    """Ignored except `useactual`, which would change the loads that use the shape."""

    CLASS = "LoadShape"
    PROPERTIES = tuple(
        (
            "npts interval mult hour mean stddev csvfile sngfile dblfile action qmult "
            "useactual pmax qmax sinterval minterval pbase qbase pmult pqcsvfile "
            "memorymapping interpolation like"
        ).split()
    )

    def _defaults(self):
        self.use_actual = False

    def set(self, prop, value):
        if prop == "useactual":
            self.use_actual = to_bool(value)

    def end_edit(self):
        pass

    def make_like(self, other):
        assert isinstance(other, _LoadShape)
        self.use_actual = other.use_actual


_CLASSES: dict[str, type[_Object]] = {
    "linecode": _LineCode,
    "line": _Line,
    "transformer": _Transformer,
    "vsource": _Vsource,
    "capacitor": _Capacitor,
    "load": _Load,
    "loadshape": _LoadShape,
}
_ELEMENT_CLASSES = ("line", "transformer", "vsource", "capacitor", "load")
# Objects that do not change the snapshot network (controls are off).
_IGNORED_CLASSES = frozenset(
    (
        "energymeter monitor regcontrol capcontrol tshape priceshape growthshape "
        "spectrum xycurve sensor fuse recloser relay wiredata cndata tsdata "
        "linegeometry linespacing xfmrcode storagecontroller invcontrol expcontrol "
        "gencontrol esppvcontrol upfccontrol fmonitor gendispatcher storagecontroller2"
    ).split()
)
# Objects that change the network but are not modelled.
_UNSUPPORTED_CLASSES = frozenset(
    (
        "generator pvsystem storage reactor isource fault upfc indmach012 "
        "gictransformer gicline gicsource autotrans vccs windgen dynamicexp generic5 "
        "swtcontrol vsconverter pvsystem2 storage2"
    ).split()
)

# Commands that leave the network as it is (reports, solutions, plots, coordinates).
_IGNORED_VERBS = frozenset(
    (
        "save show solve plot reset dump help quit ? next panel sample about "
        "calcvoltagebases buildy get init export fileedit voltages currents powers "
        "seqvoltages seqcurrents seqpowers losses phaselosses cktlosses formedit "
        "totals capacity classes userclasses zsc zsc10 zscrefresh ysc puvoltages "
        "varvalues varnames buscoords makebuslist interpolate alignfile top rotate "
        "vdiff summary di_plot comparecases yearlycurves visualize closedi doscmd "
        "estimate _initsnap _solvenocontrol _samplecontrols _docontrolactions "
        "_showcontrolqueue _solvedirect _solvepflow addbusmarker uuids cvrtloadshapes "
        "nodediff setbusxy updatestorage latlongcoords pstcalc reprocessbuses "
        "clearbusmarkers relcalc cleanup finishtimestep nodelist"
    ).split()
)
# Commands that re-solve (OpenDSS then rebuilds each line's matrices; see `_Line.calc`).
_SOLVE_VERBS = frozenset(
    (
        "solve calcvoltagebases buildy _initsnap _solvenocontrol _solvedirect "
        "_solvepflow"
    ).split()
)

# A circuit's legal voltage bases (kV, line to line) until `Set voltagebases`.
_OPENDSS_VOLTAGE_BASES = (0.208, 0.48, 12.47, 24.9, 34.5, 115.0, 230.0)

_SET_OPTIONS = (
    "voltagebases",
    "defaultbasefrequency",
    "basefrequency",
    "loadmult",
    "frequency",
    "cktmodel",
)


# --- the model ------------------------------------------------------------------------


class _Model:
    """A circuit as an OpenDSS script leaves it: the objects, and the options that
    matter to the network (frequency, voltage bases, load multiplier)."""

    def __init__(self):
        self.problems: list[DssProblem] = []
        self.default_frequency = 60.0
        self.clear()

    def clear(self) -> None:
        self.name: str | None = None
        self.frequency = self.default_frequency
        self.voltage_bases = list(_OPENDSS_VOLTAGE_BASES)
        self.loadmult = 1.0
        self.objects: dict[str, dict[str, _Object]] = {c: {} for c in _CLASSES}
        self.elements: list[_Object] = []  # circuit elements in definition order
        self.active: _Object | str | None = None  # str: an ignored object

    def find(self, cls: str, name: str) -> _Object | None:
        return self.objects[cls].get(name.strip().lower())

    # -- commands --

    def run(self, commands: Sequence[Command]) -> None:
        for command in commands:
            handler = getattr(self, f"_cmd_{command.verb}", None)
            try:
                if handler is not None:
                    handler(command)
                elif command.verb in _IGNORED_VERBS:
                    if command.verb in _SOLVE_VERBS:
                        self._calc()
                else:
                    raise _Unsupported(
                        f"the command {command.verb!r} changes the model in a way the "
                        f"native reader does not follow; {_ALTDSS}"
                    )
            except _ValueProblem as e:
                self.problems.append(command.problem(str(e)))

    def _cmd_clear(self, command: Command) -> None:
        self.clear()

    def _cmd_new(self, command: Command) -> None:
        assert command.target is not None
        cls, name = _split_target(command.target)
        if cls == "circuit":
            self.clear()
            self.name = name
            source = _Vsource("source", self, (command.file, command.line))
            self.objects["vsource"]["source"] = source
            self.elements.append(source)
            self.active = source
            self._edit(source, command)
            return
        # Until this element exists, `~` lines after it are ignored, not applied to
        # the element before it.
        self.active = f"{cls}.{name}"
        if cls in _IGNORED_CLASSES:
            return
        if cls in _UNSUPPORTED_CLASSES:
            raise _Unsupported(
                f"{command.target} changes the network but the native reader does not "
                f"model {cls} elements; {_ALTDSS}"
            )
        if cls not in _CLASSES:
            raise _ValueProblem(f"unknown class {command.target.split('.')[0]!r}")
        if cls in _ELEMENT_CLASSES and self.name is None:
            raise _ValueProblem("no circuit: 'New circuit.<name>' must come first")
        if cls == "vsource":
            raise _Unsupported(f"a second source is not modelled; {_ALTDSS}")
        if name in self.objects[cls]:
            raise _ValueProblem(f"{command.target} is defined twice")
        obj = _CLASSES[cls](name, self, (command.file, command.line))
        self.objects[cls][name] = obj
        if cls in _ELEMENT_CLASSES:
            self.elements.append(obj)
        self.active = obj
        self._edit(obj, command)

    def _cmd_edit(self, command: Command) -> None:
        assert command.target is not None
        cls, name = _split_target(command.target)
        if cls in _IGNORED_CLASSES or cls in _UNSUPPORTED_CLASSES:
            self.active = f"{cls}.{name}"
            return
        if cls == "circuit":
            cls, name = "vsource", "source"
        obj = self.objects.get(cls, {}).get(name)
        if obj is None:
            self.active = f"{cls}.{name}"
            raise _ValueProblem(f"{command.target} is not defined (before this line)")
        self.active = obj
        self._edit(obj, command)

    def _cmd_select(self, command: Command) -> None:
        self._cmd_edit(dataclasses.replace(command, params=()))

    def _cmd_more(self, command: Command) -> None:
        if isinstance(self.active, _Object):
            self._edit(self.active, command)
        elif self.active is None:
            raise _ValueProblem("'~' (more) with no element before it to continue")

    def _cmd_batchedit(self, command: Command) -> None:
        assert command.target is not None
        cls, _, pattern = command.target.partition(".")
        cls = cls.lower()
        if cls in _IGNORED_CLASSES:
            return
        if cls not in _CLASSES:
            raise _ValueProblem(f"unknown class {cls!r}")
        try:
            regex = re.compile(pattern, re.IGNORECASE)
        except re.error as e:
            raise _ValueProblem(f"invalid pattern {pattern!r}: {e}") from None
        # OpenDSS searches the pattern anywhere in the name (`load.s1` matches s10).
        for name, obj in list(self.objects[cls].items()):
            if regex.search(name):
                self._edit(obj, command)

    def _cmd_set(self, command: Command) -> None:
        for param in command.params:
            key = param.key
            if key is None:
                raise _ValueProblem(f"Set needs option=value, found {param.value!r}")
            # OpenDSS has some 150 options; only abbreviations of 4+ letters are
            # taken for the few that shape the network.
            option = key if key in _SET_OPTIONS else None
            if option is None and len(key) >= 4:
                option = _resolve(_SET_OPTIONS, key)
            try:
                self._set_option(option, param, command)
            except _ValueProblem as e:
                self.problems.append(command.problem(str(e), key))

    def _set_option(self, option: str | None, param: Param, command: Command) -> None:
        match option:
            case "voltagebases":
                bases = to_array(param.value)
                if not bases or not all(v > 0 for v in bases):
                    raise _ValueProblem("voltage bases must be positive kV values")
                self.voltage_bases = bases
            case "defaultbasefrequency" | "basefrequency":
                f = _positive_float(param.value)
                if self.name is not None and f != self.frequency:
                    raise _Unsupported(
                        "changing the base frequency after 'New circuit' is not "
                        "modelled; set DefaultBaseFrequency before it"
                    )
                self.default_frequency = self.frequency = f
            case "loadmult":
                self.loadmult = to_float(param.value)
            case "frequency":
                if _positive_float(param.value) != self.frequency:
                    raise _Unsupported(
                        "solving away from the base frequency (harmonics) is not "
                        "modelled"
                    )
            case "cktmodel":
                if param.value.strip().lower().startswith("pos"):
                    raise _Unsupported(
                        "the positive-sequence circuit model is not modelled; "
                        + _ALTDSS
                    )
            case _:
                pass  # solution and reporting options: no effect on the network

    def _cmd_open(self, command: Command, close: bool = False) -> None:
        if command.target is None:
            raise _ValueProblem(
                f"{command.verb} needs an element, e.g. 'open Line.sw1 2'"
            )
        cls, name = _split_target(command.target)
        obj = self.objects.get(cls, {}).get(name)
        if not isinstance(obj, _Line):
            if cls in _CLASSES and obj is None:
                raise _ValueProblem(
                    f"{command.target} is not defined (before this line)"
                )
            raise _Unsupported(
                f"opening and closing terminals of {cls} elements is not "
                f"modelled; {_ALTDSS}"
            )
        values = [p.value for p in command.params]
        terminal = to_int(values[0]) if values else 1
        conductor = to_int(values[1]) if len(values) > 1 else 0
        if terminal not in (1, 2) or not 0 <= conductor <= obj.phases:
            raise _ValueProblem(
                f"{command.target} has no terminal {terminal} conductor {conductor}"
            )
        which = range(1, obj.phases + 1) if conductor == 0 else (conductor,)
        for k in which:
            if close:
                obj.open.discard((terminal, k))
            else:
                obj.open.add((terminal, k))

    def _cmd_close(self, command: Command) -> None:
        self._cmd_open(command, close=True)

    def _cmd_enable(self, command: Command, enabled: bool = True) -> None:
        if command.target is None:
            raise _ValueProblem(f"{command.verb} needs an element")
        cls, name = _split_target(command.target)
        if cls in _IGNORED_CLASSES:
            return
        obj = self.objects.get(cls, {}).get(name)
        if obj is None:
            raise _ValueProblem(f"{command.target} is not defined (before this line)")
        if isinstance(obj, _Vsource) and not enabled:
            raise _Unsupported("the source cannot be disabled")
        obj.enabled = enabled

    def _cmd_disable(self, command: Command) -> None:
        self._cmd_enable(command, enabled=False)

    def _edit(self, obj: _Object, command: Command) -> None:
        """Apply a command's parameters to `obj`, one by one, as OpenDSS does."""
        if isinstance(obj, _Transformer):
            obj.begin_edit()
        pointer = -1
        for param in command.params:
            if param.key is None:
                pointer += 1
                if pointer >= len(obj.PROPERTIES):
                    self.problems.append(
                        _at(
                            command,
                            obj,
                            None,
                            f"too many values: {param.value!r} has no property",
                        )
                    )
                    continue
                prop = obj.PROPERTIES[pointer]
            else:
                resolved = _resolve(obj.PROPERTIES, param.key)
                if resolved is None:
                    self.problems.append(
                        _at(command, obj, param.key, f"unknown property of {obj.CLASS}")
                    )
                    continue
                prop = resolved
                pointer = obj.PROPERTIES.index(prop)
            try:
                if prop == "like":
                    other = self.find(obj.CLASS.lower(), param.value)
                    if other is None:
                        raise _ValueProblem(
                            f"{obj.CLASS}.{param.value} is not defined (before this "
                            "line)"
                        )
                    obj.make_like(other)
                else:
                    obj.set(prop, param.value)
                obj.set_at[prop] = (command.file, command.line)
            except (ValueError, ZeroDivisionError) as e:  # incl. _ValueProblem
                self.problems.append(_at(command, obj, prop, str(e)))
        try:
            obj.end_edit()
        except _ValueProblem as e:
            self.problems.append(_at(command, obj, None, str(e)))

    def _calc(self) -> None:
        for obj in self.objects["line"].values():
            assert isinstance(obj, _Line)
            obj.calc()

    # -- taps --

    def taps(self) -> dict[str, list[float]]:
        """Every transformer's winding taps, by name."""
        return {
            name: [w.tap for w in obj.windings]
            for name, obj in self.objects["transformer"].items()
            if isinstance(obj, _Transformer)
        }

    def set_taps(self, taps: Mapping[str, float | Sequence[float]]) -> None:
        """Override taps: a number sets winding 2's tap (the winding a regulator's
        control moves in the IEEE feeders), a sequence sets every winding's."""
        known = self.objects["transformer"]
        unknown = [n for n in taps if str(n).lower() not in known]
        if unknown:
            raise ValueError(
                f"taps names transformers that the model does not have: "
                f"{format_names(unknown)}; it has {format_names(sorted(known))}."
            )
        for name, value in taps.items():
            obj = known[str(name).lower()]
            assert isinstance(obj, _Transformer)
            if isinstance(value, (int, float)):
                values = {1: float(value)}
            else:
                seq = [float(v) for v in value]  # type: ignore[union-attr]
                if len(seq) != len(obj.windings):
                    raise ValueError(
                        f"taps[{name!r}] has {len(seq)} values; transformer {name} has "
                        f"{len(obj.windings)} windings."
                    )
                values = dict(enumerate(seq))
            for i, tap in values.items():
                if not (math.isfinite(tap) and tap > 0):
                    raise ValueError(f"taps[{name!r}] must be positive per-unit taps.")
                obj.windings[i].tap = tap

    # -- feeder --

    def build(
        self,
        *,
        injection_nodes: Sequence[str] | None,
        voltage_bases_kv: Sequence[float] | None,
        name: str | None = None,
    ) -> Feeder:
        """Hand every enabled element to a `FeederBuilder`, in definition order (so
        buses are numbered as OpenDSS numbers them), and build the feeder."""
        problems = list(self.problems)
        if self.name is None:
            problems.append(
                DssProblem("the script defines no circuit ('New circuit.<name>')")
            )
            raise DssError(problems)
        bases = voltage_bases_kv if voltage_bases_kv is not None else self.voltage_bases
        b = FeederBuilder(
            name or self.name, frequency_hz=self.frequency, voltage_bases_kv=bases
        )
        live = self._live_nodes()
        adders: dict[type, Callable] = {
            _Vsource: _add_source,
            _Line: _add_line,
            _Transformer: _add_transformer,
            _Capacitor: _add_capacitor,
            _Load: _add_load,
        }
        dropped: list[str] = []
        for obj in self.elements:
            if not obj.enabled:
                continue
            try:
                if adders[type(obj)](b, obj, live) == _DEENERGISED:
                    dropped.append(obj.label)
            except _ElementProblem as e:
                problems.append(e.problem)
            except (ValueError, TypeError) as e:  # the builder's checks
                message = str(e).removeprefix(f"{obj.CLASS} {obj.name!r}: ")
                problems.append(DssProblem(message, *obj.where, obj.label))
        if problems:
            raise DssError(problems)
        if dropped:
            warnings.warn(
                DeenergisedLoadWarning(
                    f"{self.name}: {len(dropped)} load(s) cut off from the source "
                    "(open switches or disabled elements) left out: "
                    f"{format_names(dropped)}; OpenDSS finds them at zero volts. Close "
                    "the switch to keep them."
                ),
                stacklevel=4,
            )
        try:
            return b.build(injection_nodes=injection_nodes)
        except ValueError as e:
            raise DssError([DssProblem(str(e))]) from None

    def _live_nodes(self) -> set[tuple[str, int]]:
        """Nodes connected to the source through enabled elements and closed
        conductors; the rest (cut off by open switches or disabled elements) is left
        out of the feeder, as OpenDSS leaves it at zero volts."""
        parent: dict[tuple[str, int], tuple[str, int]] = {}

        def root(x):
            parent.setdefault(x, x)
            while parent[x] != x:
                parent[x] = parent[parent[x]]
                x = parent[x]
            return x

        def join(group):
            group = [g for g in group if g[1] != 0]
            for a in group[1:]:
                ra, rb = root(group[0]), root(a)
                if ra != rb:
                    parent[ra] = rb

        source = None
        for obj in self.elements:
            if not obj.enabled:
                continue
            try:
                if isinstance(obj, _Vsource):
                    bus = to_bus(obj.bus1)[0]
                    source = [
                        (bus, k) for k in _default_nodes(obj.bus1, obj.phases) if k
                    ]
                    join(source)
                elif isinstance(obj, _Line):
                    nodes = _terminal_nodes(obj)
                    join(
                        [
                            (_bus_name(obj, t), nodes[t - 1][k - 1])
                            for t in (1, 2)
                            for k in range(1, obj.phases + 1)
                            if (t, k) not in obj.open
                        ]
                    )
                elif isinstance(obj, _Transformer):
                    join(
                        [
                            (to_bus(w.bus)[0], k)
                            for w in obj.windings
                            for k in _default_nodes(w.bus, obj.phases, obj.phases + 1)
                        ]
                    )
                elif isinstance(obj, _Capacitor):
                    group = [
                        (to_bus(obj.bus1)[0], k)
                        for k in _default_nodes(obj.bus1, obj.phases)
                    ]
                    if obj.bus2 is not None:
                        group += [
                            (to_bus(obj.bus2)[0], k)
                            for k in _default_nodes(obj.bus2, obj.phases)
                        ]
                    join(group)
            except _ValueProblem:
                continue  # reported when the element is added
        if source is None:
            return set()
        roots = {root(s) for s in source}
        return {x for x in parent if root(x) in roots}


# --- from model to builder ------------------------------------------------------------


class _ElementProblem(Exception):
    """A problem found while adding an element, located where it was set."""

    def __init__(self, problem: DssProblem):
        super().__init__(problem.message)
        self.problem = problem


Live = set[tuple[str, int]]
_DEENERGISED = "de-energised"  # `_add_load` for a load cut off from the source


class DeenergisedLoadWarning(UserWarning):
    """Loads cut off from the source (by open switches or disabled elements) were left
    out of the feeder; the warning names them."""


def _add_source(b: FeederBuilder, obj: _Object, live: Live) -> None:
    assert isinstance(obj, _Vsource)
    obj.add_to(b)


def _add_line(b: FeederBuilder, obj: _Object, live: Live) -> None:
    assert isinstance(obj, _Line)
    f = obj.model.frequency
    nodes = _terminal_nodes(obj)
    closed = [
        (t, k)
        for t in (1, 2)
        for k in range(1, obj.phases + 1)
        if (t, k) not in obj.open
    ]
    conductors = [(_bus_name(obj, t), nodes[t - 1][k - 1]) for t, k in closed]
    if not any(c in live for c in conductors):
        return  # de-energised (or fully open)
    z, c, length_km = obj.series_and_shunt(f)
    if not obj.open:
        b.line(
            obj.name,
            obj.bus1.lower(),
            obj.bus2.lower(),
            length_km=length_km,
            z_ohm_per_km=z,
            c_nf_per_km=c,
        )
        return
    y = _elements.line_yprim(z * length_km, c * length_km, length=1.0, frequency_hz=f)
    y = _open_conductors(y, obj.phases, obj.open)
    keep = [(t - 1) * obj.phases + (k - 1) for t, k in closed]
    terminals = [f"{bus}.{k}" for bus, k in conductors]
    b.primitive(obj.name, terminals, y[np.ix_(keep, keep)])


def _add_transformer(b: FeederBuilder, obj: _Object, live: Live) -> None:
    assert isinstance(obj, _Transformer)
    conductors = [
        (to_bus(w.bus)[0], k)
        for w in obj.windings
        for k in _default_nodes(w.bus, obj.phases, obj.phases + 1)
    ]
    if not any(c in live for c in conductors):
        return
    windings = [
        Winding(
            bus=w.bus.lower(),
            conn=w.conn,
            kv=w.kv,
            kva=w.kva,
            r_pct=w.rpu * 100.0,
            tap=w.tap,
            rneut=w.rneut,
            xneut=w.xneut,
        )
        for w in obj.windings
    ]
    b.transformer(
        obj.name,
        windings,
        phases=obj.phases,
        xsc_pct=[x * 100.0 for x in obj.xsc],
        noload_loss_pct=obj.noload_loss_pct,
        imag_pct=obj.imag_pct,
        ppm_antifloat=obj.ppm,
        hv_leads_lv=obj.hv_leads_lv,
    )


def _add_capacitor(b: FeederBuilder, obj: _Object, live: Live) -> None:
    assert isinstance(obj, _Capacitor)
    on = sum(1 for s in obj.states if s == 1)
    bus = to_bus(obj.bus1)[0]
    if on == 0 or not any(
        (bus, k) in live for k in _default_nodes(obj.bus1, obj.phases)
    ):
        return
    # OpenDSS sizes every step in service from the first step's kvar.
    b.capacitor(
        obj.name,
        obj.bus1.lower(),
        kvar=[obj.kvar[0]] * on,
        kv=obj.kv,
        phases=obj.phases,
        conn=obj.conn,
        bus2=None if obj.bus2 is None else obj.bus2.lower(),
    )


def _add_load(
    b: FeederBuilder, obj: _Object, live: Live
) -> Literal["de-energised"] | None:
    assert isinstance(obj, _Load)
    if obj.load_model not in (1, 2, 5):
        file, line = obj.set_at.get("model", obj.where)
        raise _ElementProblem(
            DssProblem(
                f"load model {obj.load_model} is not supported by the native reader "
                "(models 1, 2 and 5 only); gridflex solves every OpenDSS load model: "
                f"{_ALTDSS}",
                file,
                line,
                obj.label,
                "model",
            )
        )
    bus = to_bus(obj.bus1)[0]
    n_cond = obj.phases + (1 if obj.conn == "wye" or obj.phases < 3 else 0)
    nodes = [(bus, k) for k in _default_nodes(obj.bus1, obj.phases, n_cond) if k]
    dead = [n for n in nodes if n not in live]
    if len(dead) == len(nodes):
        return _DEENERGISED  # OpenDSS finds it at zero volts; reported by `build`
    if dead:
        raise _ElementProblem(
            DssProblem(
                f"the load connects node(s) "
                f"{format_names(f'{bus_}.{k}' for bus_, k in dead)} that nothing "
                "else connects to the source",
                *obj.where,
                obj.label,
                "bus1",
            )
        )
    try:
        kw, kvar = obj.powers()
    except _ValueProblem as e:
        raise _ElementProblem(DssProblem(str(e), *obj.where, obj.label, "pf")) from None
    b.load(
        obj.name,
        obj.bus1.lower(),
        kw=kw,
        kvar=kvar,
        kv=obj.kv,
        phases=obj.phases,
        conn=obj.conn,
        model=obj.load_model,
    )


# --- helpers --------------------------------------------------------------------------


def _balanced(self_value: complex, mutual: complex, n: int) -> np.ndarray:
    out = np.full((n, n), mutual, dtype=np.complex128)
    np.fill_diagonal(out, self_value)
    return out


def _asymmetric_source(z1: complex, z2: complex, z0: complex) -> np.ndarray:
    """OpenDSS's 3-phase source impedance matrix when Z2 differs from Z1: with `a`
    at +120 degrees, `v1 = (a^2 Z1 + a Z2 + Z0) / 3` above the diagonal and
    `v2 = (a^2 Z2 + a Z1 + Z0) / 3` below it. OpenDSS's `a` is `-0.5 + 0.866025j`, six
    digits, and the entries depend on it to 1e-7, so we use it too (checked against
    the engine)."""
    a = complex(-0.5, 0.866025)
    diag = (z2 + z1 + z0) / 3.0
    v1 = (a * a * z1 + a * z2 + z0) / 3.0
    v2 = (a * a * z2 + a * z1 + z0) / 3.0
    return np.array(
        [[diag, v1, v2], [v2, diag, v1], [v1, v2, diag]], dtype=np.complex128
    )


def _pair(text: str) -> tuple[float, float]:
    values = to_array(text)
    if len(values) != 2:
        raise _ValueProblem(f"expected [R X], two numbers, found {text!r}")
    return values[0], values[1]


def _positive_int(text: str) -> int:
    n = to_int(text)
    if n < 1:
        raise _ValueProblem(f"expected a positive whole number, found {text!r}")
    return n


def _positive_float(text: str) -> float:
    v = to_float(text)
    if not v > 0:
        raise _ValueProblem(f"expected a positive number, found {text!r}")
    return v


def _ignore(prop: str, ignored: frozenset[str]) -> None:
    assert prop in ignored, prop  # every listed property is handled or ignored


def _resolve(names: Sequence[str], key: str) -> str | None:
    """A property name from an exact name or, as OpenDSS allows, an abbreviation (the
    first property in OpenDSS's order that starts with it)."""
    key = key.lower()
    if key in names:
        return key
    return next((n for n in names if n.startswith(key)), None)


def _split_target(target: str) -> tuple[str, str]:
    cls, dot, name = target.strip().partition(".")
    if not dot or not cls or not name:
        raise _ValueProblem(f"{target!r} must be Class.name, e.g. Line.L1")
    return cls.lower(), name.lower()


def _at(command: Command, obj: _Object, prop: str | None, message: str) -> DssProblem:
    return DssProblem(message, command.file, command.line, obj.label, prop)


def _default_nodes(spec: str, phases: int, conductors: int | None = None) -> list[int]:
    """The node of each conductor, with OpenDSS's defaults (1..phases, then 0)."""
    n = phases if conductors is None else conductors
    _, nodes = to_bus(spec)
    full = list(range(1, phases + 1)) + [0] * (n - phases)
    full[: len(nodes)] = list(nodes)[:n]
    return full


def _bus_name(line: _Line, terminal: int) -> str:
    return to_bus(line.bus1 if terminal == 1 else line.bus2)[0]


def _terminal_nodes(line: _Line) -> tuple[list[int], list[int]]:
    return _default_nodes(line.bus1, line.phases), _default_nodes(
        line.bus2, line.phases
    )


def _open_conductors(
    y: np.ndarray, phases: int, open_: set[tuple[int, int]]
) -> np.ndarray:
    """OpenDSS's treatment of open conductors (`DoYprimCalcs`): Kron-reduce away each
    open conductor (its current is zero), in terminal order, then add a tiny
    conductance to every remaining diagonal entry."""
    y = y.copy()
    eliminated: list[int] = []
    for t, k in sorted(open_):
        e = (t - 1) * phases + (k - 1)
        ynn = y[e, e] if abs(y[e, e]) > 0 else 1e-12
        rest = [i for i in range(y.shape[0]) if i != e and i not in eliminated]
        y[np.ix_(rest, rest)] -= np.outer(y[rest, e], y[e, rest]) / ynn
        y[e, :] = 0.0
        y[:, e] = 0.0
        eliminated.append(e)
    for i in range(y.shape[0]):
        if i not in eliminated:
            y[i, i] += 1e-12
    return y


# --- entry point ----------------------------------------------------------------------


def _load_model(path: str | Path) -> _Model:
    """Parse and run a script: the model as OpenDSS would hold it (for tests, too)."""
    commands = parse_file(path)
    model = _Model()
    model.run(commands)
    return model


def read_dss(
    path: str | Path,
    *,
    taps: Mapping[str, float | Sequence[float]] | None = None,
    injection_nodes: Sequence[str] | None = None,
    voltage_bases_kv: Sequence[float] | None = None,
) -> Feeder:
    """Read an OpenDSS model into a `Feeder`, natively (OpenDSS is not needed).

    The script runs as OpenDSS would run it, up to the network it defines: its
    admittance matrix equals OpenDSS's system Y (loads aside) and every node's voltage
    base equals OpenDSS's after `CalcVoltageBases`. What differs on purpose:

    - Regulators are transformers at the taps written in the file (or given in
        `taps`): `RegControl` and `CapControl` are ignored, and `Solve` does not move
        taps. Feeders whose script solves with controls on (IEEE 13) therefore carry
        the file's taps here; the built-in feeders carry the taps OpenDSS settles at
        (see `gridflex.feeders.ieee13`).
    - Loads keep their model (constant power, impedance or current) at every voltage:
        `vminpu`/`vmaxpu` are ignored. Load shapes (`yearly`, `daily`, `duty`) are
        ignored: the loads are the base loads. Models other than 1, 2 and 5 are errors.
    - Parts of the network cut off from the source (open switches, disabled elements)
        are left out; loads there are dropped (OpenDSS finds them at zero volts),
        with a `DeenergisedLoadWarning` naming them.

    **Arguments:**

    - `path`: the master `.dss` script; `Redirect`/`Compile` paths are relative to
        the file that names them.
    - `taps`: transformer taps by transformer name, replacing the file's: a number
        sets winding 2's tap (the regulated winding in the IEEE feeders), a sequence
        sets every winding's.
    - `injection_nodes`: nodes, besides those with loads, where the power flow may
        inject power (`bus.phase`).
    - `voltage_bases_kv`: line-to-line voltage bases (kV), replacing the file's
        `Set voltagebases` (without either, OpenDSS's defaults: 0.208, 0.48, 12.47,
        24.9, 34.5, 115 and 230 kV). Each bus gets the base nearest its no-load
        voltage, as in OpenDSS's `CalcVoltageBases`.

    **Returns:**

    The `Feeder`, named after the circuit.

    **Raises:**

    `DssError` (a `ValueError`) listing every problem in the input, each with its
    file, line, element and property: syntax errors, missing files or linecodes,
    unknown properties, unsupported elements or load models.
    """
    model = _load_model(path)
    if taps is not None:
        model.set_taps(taps)
    return model.build(
        injection_nodes=injection_nodes, voltage_bases_kv=voltage_bases_kv
    )
