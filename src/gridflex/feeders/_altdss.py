"""Import an OpenDSS model through the AltDSS engine (opendssdirect.py).

OpenDSS compiles the circuit with its own element models; we read back each element's
primitive admittance (`Yprim`), so the network matches OpenDSS exactly whatever the
file uses (line geometries, wire data, spectra...). This path needs the `opendss`
extra; the native reader (`engine="native"`) needs nothing but covers a documented
subset of the language.
"""

import contextlib
import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._builder import FeederBuilder
from ._feeder import Feeder


# Classes that carry no network admittance in a snapshot power flow.
_CONTROL_CLASSES = {
    "regcontrol",
    "capcontrol",
    "energymeter",
    "monitor",
    "loadshape",
    "tshape",
    "priceshape",
    "growthshape",
    "xycurve",
    "spectrum",
    "linecode",
    "linegeometry",
    "linespacing",
    "wiredata",
    "cndata",
    "tsdata",
    "xfmrcode",
    "fuse",
    "recloser",
    "relay",
    "swtcontrol",
    "sensor",
}
_BRANCH_CLASSES = {"line", "transformer", "capacitor", "reactor", "autotrans"}


class OpenDSSImportError(ValueError):
    """An OpenDSS model could not be imported; the message names file and element."""


def _dss() -> Any:
    try:
        import opendssdirect as dss
    except ImportError as e:
        raise ImportError(
            "OpenDSS (opendssdirect.py) is not installed: pip install "
            "'gridflex[opendss]'. It is needed for engine='opendss' (engine='native' "
            "needs no OpenDSS) and for the OpenDSS cross-check."
        ) from e
    return dss


def _complex_matrix(flat) -> np.ndarray:
    arr = np.asarray(flat, dtype=np.float64).reshape(-1, 2)
    c = arr[:, 0] + 1j * arr[:, 1]
    k = int(round(np.sqrt(c.size)))
    return c.reshape(k, k)


def _terminals(dss) -> list[str]:
    """Terminal conductors of the active element as 'bus.node' (node 0 = ground)."""
    buses = [b.split(".")[0].lower() for b in dss.CktElement.BusNames()]
    order = dss.CktElement.NodeOrder()
    per_terminal = len(order) // max(len(buses), 1)
    return [f"{buses[k // per_terminal]}.{node}" for k, node in enumerate(order)]


def read_altdss(
    path: str | os.PathLike,
    *,
    taps: Mapping[str, float | Sequence[float]] | None = None,
    injection_nodes: Sequence[str] | None = None,
    voltage_bases_kv: Sequence[float] | None = None,
) -> Feeder:
    """Compile `path` with the AltDSS engine and build a `Feeder` from its `Yprim`s.

    Regulator and capacitor controls are off: taps are where OpenDSS holds them after
    running the file (a script that solves with controls on moves them; pass `taps`
    to set them). Loads keep their stated model at every voltage.
    """
    dss = _dss()
    path = os.fspath(path)
    _check_file(path)
    dss.Text.Command("clear")
    # OpenDSS prints to stdout on some commands; keep the user's console clean.
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            dss.Text.Command(f"redirect [{os.path.abspath(path)}]")
        except UnicodeDecodeError as e:
            raise OpenDSSImportError(
                f"{path}: a file it redirects to is not UTF-8 text ({e.reason} at "
                f"byte {e.start}); save it as UTF-8"
            ) from None
        except Exception as e:
            _require_circuit(dss, path)
            raise OpenDSSImportError(
                f"{path}: OpenDSS could not compile it: {e}"
            ) from e
        _require_circuit(dss, path)
        dss.Text.Command("set controlmode=off")
        for name, value in (taps or {}).items():
            # A single tap is the regulated (second) winding's, as regulators use it.
            if np.ndim(value) == 0:
                cmd = f"edit transformer.{name} wdg=2 tap={float(value)}"  # pyright: ignore
            else:
                joined = " ".join(str(float(v)) for v in value)  # pyright: ignore
                cmd = f"edit transformer.{name} taps=[{joined}]"
            try:
                dss.Text.Command(cmd)
            except Exception as e:
                raise OpenDSSImportError(
                    f"{path}: cannot set taps of transformer {name!r}: {e}"
                ) from e
    bases = list(voltage_bases_kv or dss.Settings.VoltageBases() or [])
    builder = FeederBuilder(
        dss.Circuit.Name(),
        frequency_hz=float(dss.Solution.Frequency()),
        voltage_bases_kv=[float(b) for b in bases] or None,
    )
    try:
        elements = dss.Circuit.AllElementNames()
    except UnicodeDecodeError as e:
        raise OpenDSSImportError(
            f"{path}: an element name is not UTF-8 text ({e.reason}); save the file "
            "as UTF-8"
        ) from None
    problems: list[str] = []
    for full in elements:
        dss.Circuit.SetActiveElement(full)
        if dss.CktElement.Enabled():
            try:
                _check_properties(dss, *full.lower().split(".", 1))
            except ValueError as e:
                problems.append(f"{full}: {e}")
    _refuse(path, problems)
    # Make OpenDSS (re)build every Yprim at the final taps.
    try:
        dss.Solution.BuildYMatrix(2, False)
    except Exception as e:
        raise OpenDSSImportError(
            f"{path}: OpenDSS could not build the network's admittance: {e}"
        ) from None
    sources = 0
    for full in elements:
        cls, _, name = full.partition(".")
        cls = cls.lower()
        dss.Circuit.SetActiveElement(full)
        if not dss.CktElement.Enabled() or cls in _CONTROL_CLASSES:
            continue
        try:
            _check_admittance(dss, cls)
            if cls == "vsource":
                sources += 1
                _add_source(dss, builder, name)
            elif cls in _BRANCH_CLASSES:
                builder.primitive(
                    f"{cls}:{name.lower()}",
                    _terminals(dss),
                    _complex_matrix(dss.CktElement.YPrim()),
                )
            elif cls == "load":
                _add_load(dss, builder, name)
            else:
                problems.append(
                    f"{full}: class {cls!r} is not supported by gridflex (it would "
                    "inject power the power flow does not model); disable it or "
                    "replace it by loads"
                )
        except ValueError as e:
            problems.append(f"{full}: {e}")
    if sources != 1:
        problems.append(f"the circuit has {sources} enabled Vsources; gridflex needs 1")
    _refuse(path, problems)
    try:
        return builder.build(injection_nodes=injection_nodes)
    except ValueError as e:
        raise OpenDSSImportError(f"{path}: {e}") from e


def _refuse(path: str, problems: list[str]) -> None:
    """Every problem found, at once, or nothing."""
    if problems:
        raise OpenDSSImportError(
            f"{path}: cannot import {len(problems)} element(s):\n  - "
            + "\n  - ".join(problems)
        )


def _check_file(path: str) -> None:
    """A missing file, a folder and a master that is not text, each named."""
    if os.path.isdir(path):
        found = sorted(f for f in os.listdir(path) if f.lower().endswith(".dss"))
        hint = f" (its .dss files: {', '.join(found[:8])})" if found else ""
        raise OpenDSSImportError(
            f"{path}: is a folder; give the master .dss file{hint}"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"OpenDSS file not found: {path}")
    with open(path, "rb") as f:
        raw = f.read()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise OpenDSSImportError(
            f"{path}, line {line}: byte 0x{raw[e.start]:02x} is not UTF-8 text; save "
            "the file as UTF-8 (OpenDSS names must be text)"
        ) from None
    if not raw.strip():
        raise OpenDSSImportError(f"{path}: the file is empty")


def _require_circuit(dss, path: str) -> None:
    try:
        dss.Circuit.Name()
    except Exception:
        raise OpenDSSImportError(
            f"{path}: the file defines no circuit; an OpenDSS model starts with "
            "'New Circuit.<name>' (is this the master file?)"
        ) from None


def _check_properties(dss, cls: str, name: str) -> None:
    """Values OpenDSS accepts but that make no physical sense, refused before
    anything is built (a negative length solves with a negative impedance)."""
    if cls == "line":
        dss.Lines.Name(name)
        length = float(dss.Lines.Length())
        if not length > 0:
            raise ValueError(f"length={length:g}: a line needs a positive length")
        for prop, value in (
            ("normamps", dss.Lines.NormAmps()),
            ("emergamps", dss.Lines.EmergAmps()),
        ):
            if not float(value) >= 0:
                raise ValueError(f"{prop}={value:g}: a rating cannot be negative")
    elif cls == "transformer":
        dss.Transformers.Name(name)
        for w in range(1, int(dss.Transformers.NumWindings()) + 1):
            dss.Transformers.Wdg(w)
            kva = float(dss.Transformers.kVA())
            if not kva > 0:
                raise ValueError(f"winding {w} kva={kva:g}: a rating must be positive")
    elif cls == "load":
        dss.Loads.Name(name)
        if int(dss.Loads.Model()) == 8 and not np.any(np.asarray(dss.Loads.ZipV())):
            raise ValueError(
                "model=8 (ZIPV) without its zipv=[z_p i_p p_p z_q i_q p_q cutoff]"
            )


def _check_admittance(dss, cls: str) -> None:
    if cls in _BRANCH_CLASSES | {"load", "vsource"}:
        y = np.asarray(dss.CktElement.YPrim(), dtype=np.float64)
        if not np.all(np.isfinite(y)):
            raise ValueError(
                "its admittance is not finite (a NaN or infinite property); check "
                "its impedances, lengths and ratings"
            )


def _add_source(dss, builder: FeederBuilder, name: str) -> None:
    dss.Vsources.Name(name)
    phases = int(dss.Vsources.Phases())
    y = _complex_matrix(dss.CktElement.YPrim())
    terminals = _terminals(dss)
    grounded = all(t.endswith(".0") for t in terminals[phases:])
    if not grounded:
        raise ValueError(
            "its second terminal (bus2) is not grounded; gridflex models the source as "
            "an EMF behind its impedance to ground"
        )
    z = np.linalg.inv(y[:phases, :phases])
    builder.source(
        dss.CktElement.BusNames()[0],
        kv=float(dss.Vsources.BasekV()),
        pu=float(dss.Vsources.PU()),
        angle_deg=float(dss.Vsources.AngleDeg()),
        phases=phases,
        z_ohm=z,
        name=name.lower(),
    )


def _add_load(dss, builder: FeederBuilder, name: str) -> None:
    dss.Loads.Name(name)
    model = int(dss.Loads.Model())
    builder.load(
        name.lower(),
        dss.CktElement.BusNames()[0],
        kw=float(dss.Loads.kW()),
        kvar=float(dss.Loads.kvar()),
        kv=float(dss.Loads.kV()),
        phases=int(dss.Loads.Phases()),
        conn="delta" if dss.Loads.IsDelta() else "wye",
        model=model,
        cvr_watts=float(dss.Loads.CVRwatts()),
        cvr_vars=float(dss.Loads.CVRvars()),
        zipv=list(dss.Loads.ZipV()) if model == 8 else None,
    )
