"""`from_opendss`: an OpenDSS model as a `Feeder`, compiled by OpenDSS itself.

The AltDSS engine (opendssdirect.py) runs the user's script with OpenDSS's own parser
and element models; we read back each element's primitive admittance (`Yprim`), so
the network matches OpenDSS exactly whatever the file uses (line codes, geometries,
wire data, transformers of any winding count, reactors...), and each load's model
and terms. The built-in feeders come in through the same path (`_builtin.py`).
Elements that play no part in a snapshot power flow (controls, meters, monitors,
shapes, protection, curves) are skipped and listed in `opendss_report`.
"""

import contextlib
import dataclasses
import io
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._builder import FeederBuilder
from ._feeder import Feeder


# Classes that carry no network admittance in a snapshot power flow, each with why
# it is skipped (what `opendss_report` prints).
_SKIPPED = {
    "regcontrol": "control: off; its transformer keeps fixed taps",
    "capcontrol": "control: off; its capacitor keeps its state",
    "swtcontrol": "control: off; its switch keeps its state",
    "energymeter": "meter",
    "monitor": "monitor",
    "sensor": "meter",
    "loadshape": "time series: a snapshot uses each load's base value",
    "tshape": "time series",
    "priceshape": "time series",
    "growthshape": "time series",
    "xycurve": "curve",
    "tcc_curve": "protection curve",
    "spectrum": "harmonics spectrum",
    "linecode": "data, read through the lines that use it",
    "linegeometry": "data, read through the lines that use it",
    "linespacing": "data, read through the lines that use it",
    "wiredata": "data, read through the lines that use it",
    "cndata": "data, read through the lines that use it",
    "tsdata": "data, read through the lines that use it",
    "xfmrcode": "data, read through the transformers that use it",
    "fuse": "protection (closed)",
    "recloser": "protection (closed)",
    "relay": "protection (closed)",
}
_BRANCH_CLASSES = {"line", "transformer", "capacitor", "reactor", "autotrans"}
# What enters the feeder; any other enabled class is refused.
_IMPORTED = _BRANCH_CLASSES | {"vsource", "load"}


class OpenDSSImportError(ValueError):
    """An OpenDSS model could not be imported; the message names file and element."""


@dataclasses.dataclass(frozen=True)
class OpenDSSReport:
    """What `from_opendss` makes of each element of a model: `imported` (class to
    element names) entered the feeder; `skipped` (class to names) play no part in a
    snapshot power flow, with `why` each class is skipped; `refused` would inject
    power the power flow does not model (`from_opendss` raises, naming them);
    `disabled` elements are disabled in the model. `print(report)` gives a table."""

    path: str
    imported: Mapping[str, tuple[str, ...]]
    skipped: Mapping[str, tuple[str, ...]]
    refused: Mapping[str, tuple[str, ...]]
    disabled: tuple[str, ...]

    def why(self, cls: str) -> str:
        return _SKIPPED[cls]

    def __str__(self) -> str:
        lines = [f"{self.path}:", "  imported:"]
        lines += [f"    {cls:<14}{len(n):>6}" for cls, n in self.imported.items()]
        lines.append("  skipped (no part in a snapshot power flow):")
        lines += [
            f"    {cls:<14}{len(n):>6}  {_SKIPPED[cls]}"
            for cls, n in self.skipped.items()
        ]
        if self.refused:
            lines.append("  refused (from_opendss raises): model them as devices")
            lines += [f"    {cls:<14}{len(n):>6}" for cls, n in self.refused.items()]
        if self.disabled:
            lines.append(f"  disabled in the model: {', '.join(self.disabled)}")
        return "\n".join(lines)


def _dss() -> Any:
    try:
        import opendssdirect as dss
    except ImportError as e:
        raise ImportError(
            "OpenDSS (opendssdirect.py, a dependency of gridflex) cannot be imported: "
            f"{e}. Reinstall it with pip install 'opendssdirect.py>=0.9' (its engine "
            "has wheels for Linux x86_64, macOS and Windows)."
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


def from_opendss(
    path: str | os.PathLike,
    *,
    taps: Mapping[str, float | Sequence[float]] | None = None,
    injection_nodes: Sequence[str] | None = None,
    voltage_bases_kv: Sequence[float] | None = None,
) -> Feeder:
    """Import an OpenDSS model as a `Feeder`, compiled by OpenDSS itself.

    OpenDSS (the AltDSS engine of opendssdirect.py) runs the script; gridflex reads
    back every enabled element's primitive admittance and every load's model, so
    whatever OpenDSS can model as a branch comes in exactly: lines (line codes,
    geometries, wire and cable data, switches), transformers of any winding count
    and connection, regulators, autotransformers, capacitors and reactors; loads of
    every OpenDSS model (1 to 8, `gridflex.feeders.LoadModel`). Controls, meters,
    monitors, shapes, curves and protection are skipped (`opendss_report` lists
    them). Generators, PV systems and storage are refused: model them as gridflex
    devices on the homes.

    **Arguments:**

    - `path`: the master `.dss` file.
    - `taps`: transformer taps by name: a number sets winding 2's tap (the regulated
        winding of a regulator), a sequence sets every winding's. Without it, taps
        are those OpenDSS holds after running the file (a script that solves with
        its regulator controls on moves them).
    - `injection_nodes`: nodes (`bus.phase`), besides those with loads, where the
        power flow may inject power.
    - `voltage_bases_kv`: line-to-line voltage bases, replacing the file's
        `Set voltagebases`.

    Regulator and capacitor controls are off; loads keep their model at every
    voltage (`vminpu`/`vmaxpu` are not reproduced: see the data-model docs). A model
    that cannot be imported raises `OpenDSSImportError` naming the file and every
    offending element at once; islanded buses and loads are errors.

    **Returns:**

    The `Feeder`, named after the circuit.
    """
    return _import(path, taps, injection_nodes, voltage_bases_kv)


def opendss_report(
    path: str | os.PathLike,
    *,
    taps: Mapping[str, float | Sequence[float]] | None = None,
) -> OpenDSSReport:
    """What `from_opendss(path)` imports and skips, element by element (`print` it)."""
    dss = _compile(os.fspath(path), taps)
    return _classify(dss, os.fspath(path), dss.Circuit.AllElementNames())


def _import(
    path: str | os.PathLike,
    taps: Mapping[str, float | Sequence[float]] | None,
    injection_nodes: Sequence[str] | None,
    voltage_bases_kv: Sequence[float] | None,
    name: str | None = None,
) -> Feeder:
    path = os.fspath(path)
    dss = _compile(path, taps)
    bases = list(voltage_bases_kv or dss.Settings.VoltageBases() or [])
    builder = FeederBuilder(
        name or dss.Circuit.Name(),
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
        cls, _, name_ = full.partition(".")
        cls = cls.lower()
        dss.Circuit.SetActiveElement(full)
        if not dss.CktElement.Enabled() or cls in _SKIPPED:
            continue
        try:
            _check_admittance(dss, cls)
            if cls == "vsource":
                sources += 1
                _add_source(dss, builder, name_)
            elif cls in _BRANCH_CLASSES:
                builder.primitive(
                    f"{cls}:{name_.lower()}",
                    _terminals(dss),
                    _complex_matrix(dss.CktElement.YPrim()),
                )
            elif cls == "load":
                _add_load(dss, builder, name_)
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


def _compile(path: str, taps: Mapping[str, float | Sequence[float]] | None) -> Any:
    """Run `path` in OpenDSS with its controls then switched off and `taps` set."""
    dss = _dss()
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
            raise OpenDSSImportError(_engine_message(path, e)) from None
        _require_circuit(dss, path)
        dss.Text.Command("set controlmode=off")
        _set_taps(dss, path, taps or {})
    return dss


def _set_taps(dss, path: str, taps: Mapping[str, float | Sequence[float]]) -> None:
    """Set each named transformer's taps (a number: winding 2, the regulated winding
    of a regulator; a sequence: every winding), refusing names and lengths OpenDSS
    would take silently."""
    known = {n.lower() for n in dss.Transformers.AllNames()}
    for name, value in taps.items():
        if name.lower() not in known:
            listed = ", ".join(sorted(known)[:12]) or "none"
            raise OpenDSSImportError(
                f"{path}: taps names transformer {name!r}, which the model does not "
                f"have (its transformers: {listed})"
            )
        dss.Transformers.Name(name)
        windings = int(dss.Transformers.NumWindings())
        if np.ndim(value) == 0:
            commands = [f"edit transformer.{name} wdg=2 tap={float(value)}"]  # pyright: ignore
        elif len(value) != windings:  # pyright: ignore
            raise OpenDSSImportError(
                f"{path}: taps gives transformer {name!r} {len(value)} taps; it has "  # pyright: ignore
                f"{windings} windings"
            )
        else:
            joined = " ".join(str(float(v)) for v in value)  # pyright: ignore
            commands = [f"edit transformer.{name} taps=[{joined}]"]
        for command in commands:
            try:
                dss.Text.Command(command)
            except Exception as e:
                raise OpenDSSImportError(
                    f"{path}: cannot set the taps of transformer {name!r}: "
                    f"{_engine_message(path, e)}"
                ) from None


_WHERE = re.compile(r'\[file: "([^"]*)", line: (\d+)\]')
_DESCRIPTION = re.compile(r"Error Description:\s*(.*?)\s*(?:Probable Cause:|$)", re.S)
_COMMAND = re.compile(r"Processing DSS Command:\s*(.*?)\s*\n\s*\n", re.S)


def _engine_message(path: str, error: Exception) -> str:
    """OpenDSS's error as one line: the file and line it points at (the innermost
    redirected file), its description and, where it gives one, the command."""
    text = str(error)
    where = _WHERE.findall(text)
    body = _WHERE.sub("", text)
    description = _DESCRIPTION.search(body)
    command = _COMMAND.search(body)
    if description:
        body = description.group(1)
    body = " ".join(re.sub(r"^\s*\(#\d+\)\s*", "", body).split())
    if command and description:
        body += f" (in: {' '.join(command.group(1).split())})"
    if where:
        file, line = where[0]
        shown = path if os.path.abspath(file) == os.path.abspath(path) else file
        return f"{shown}, line {line}: {body}"
    return f"{path}: {body}"


def _classify(dss, path: str, elements: Sequence[str]) -> OpenDSSReport:
    imported: dict[str, list[str]] = {}
    skipped: dict[str, list[str]] = {}
    refused: dict[str, list[str]] = {}
    disabled: list[str] = []
    classes = set()
    for full in elements:
        cls, _, name = full.partition(".")
        cls = cls.lower()
        classes.add(cls)
        dss.Circuit.SetActiveElement(full)
        if not dss.CktElement.Enabled():
            disabled.append(full)
        elif cls in _SKIPPED:
            skipped.setdefault(cls, []).append(name)
        elif cls in _IMPORTED:
            imported.setdefault(cls, []).append(name)
        else:
            refused.setdefault(cls, []).append(name)
    # Shapes, curves and data are general objects, not circuit elements.
    for cls in sorted(set(_SKIPPED) - classes):
        names = _general_objects(dss, cls)
        if names:
            skipped.setdefault(cls, []).extend(names)
    return OpenDSSReport(
        path,
        {c: tuple(n) for c, n in imported.items()},
        {c: tuple(n) for c, n in sorted(skipped.items())},
        {c: tuple(n) for c, n in refused.items()},
        tuple(disabled),
    )


def _general_objects(dss, cls: str) -> list[str]:
    try:
        dss.Circuit.SetActiveClass(cls)
        names = list(dss.ActiveClass.AllNames())
    except Exception:
        return []
    return [n for n in names if n and n.lower() != "none"]


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
