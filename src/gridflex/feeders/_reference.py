"""OpenDSS as the reference: solve a model with the AltDSS engine (opendssdirect.py).

Used by the cross-check, the test suite and the benchmarks to compare gridflex with the
tool distribution engineers trust, on the same model and the same load draws; the
built-in feeders are compiled from `solve_free_copy` of their data.
"""

import atexit
import functools
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._opendss import _dss, _set_taps


_SOLVE = re.compile(r"^\s*solve\b.*$", re.IGNORECASE | re.MULTILINE)
# The shipped European LV model leaves out its 100 one-minute profile files; load
# shapes play no part in a snapshot solve, so point them at a constant instead.
_SHAPE_FILE = re.compile(r"npts=\d+(.*?)mult=\(file=[^)]*\)", re.IGNORECASE)


@functools.cache
def solve_free_copy(folder: str) -> str:
    """A temporary copy of a feeder folder with every `Solve` command removed, so that
    compiling it leaves regulator taps where the file sets them (IEEE 13's master
    solves with its regulator controls on, which would move them), and load shapes
    read from files replaced by a constant."""
    out = tempfile.mkdtemp(prefix="gridflex-dss-")
    atexit.register(shutil.rmtree, out, ignore_errors=True)  # one per process
    for root, _, files in os.walk(folder):
        for name in files:
            src = os.path.join(root, name)
            dst = os.path.join(out, os.path.relpath(src, folder))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if name.lower().endswith((".dss", ".txt")):
                with open(src, encoding="utf-8", errors="replace") as f:
                    text = f.read()
                with open(dst, "w", encoding="utf-8") as f:
                    f.write(_SHAPE_FILE.sub(r"npts=1\1mult=[1]", _SOLVE.sub("", text)))
            else:
                shutil.copy(src, dst)
    return out


def compile_reference(
    master: str,
    *,
    taps: Mapping[str, float | Sequence[float]] | None = None,
    tolerance: float | None = 1e-12,
) -> Any:
    """Compile `master` in OpenDSS as gridflex models it: controls off, loads keeping
    their model at every voltage (below `vminpu` OpenDSS would switch them to
    constant impedance), `taps` set (a number: winding 2; a sequence: every winding).
    `tolerance=None` keeps OpenDSS's default convergence tolerance (1e-4).

    **Returns:** the opendssdirect.py engine, compiled and not yet solved: set what
    you want (loads, taps) and call `dss.Solution.Solve()`.
    """
    dss = _dss()
    dss.Text.Command("clear")
    dss.Text.Command(f"redirect [{master}]")
    dss.Text.Command("set controlmode=off")
    dss.Text.Command("batchedit load..* vminpu=0.3 vmaxpu=3 vlowpu=0.01")
    _set_taps(dss, master, taps or {})
    if tolerance is not None:
        dss.Text.Command(f"set tolerance={tolerance} maxiterations=1000")
    return dss


def opendss_node_voltages(dss: Any) -> dict[str, complex]:
    """The node voltages of OpenDSS's last solution (complex volts, by 'bus.phase' in
    lower case), from the engine `compile_reference` returned."""
    names = [n.lower() for n in dss.Circuit.AllNodeNames()]
    v = np.asarray(dss.Circuit.AllBusVolts()).reshape(-1, 2)
    return dict(zip(names, v[:, 0] + 1j * v[:, 1]))


def opendss_voltages(
    master: str,
    *,
    load_scale: Mapping[str, float] | None = None,
    taps: Mapping[str, float | Sequence[float]] | None = None,
) -> dict[str, complex]:
    """Node voltages (complex volts, by 'bus.phase') from OpenDSS itself, converged
    tightly (tolerance 1e-12) so that OpenDSS's own error is far below 1e-6 pu.
    `load_scale` multiplies each named load's kW and kvar."""
    dss = compile_reference(master, taps=taps)
    for name, k in (load_scale or {}).items():
        dss.Loads.Name(name)
        kw, kvar = dss.Loads.kW(), dss.Loads.kvar()
        dss.Loads.kW(kw * k)
        dss.Loads.kvar(kvar * k)
    dss.Solution.Solve()
    if not dss.Solution.Converged():
        raise RuntimeError(f"OpenDSS did not converge on {master}")
    return opendss_node_voltages(dss)
