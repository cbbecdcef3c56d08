"""Shared test tables and helpers: tolerances, the OpenDSS reference, adjoint tables."""

import functools
import os
import re
import shutil
import tempfile
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import lineax as lx
import numpy as np
import optimistix as optx

import gridflex.powerflow as pf


def tree_allclose(x, y, *, rtol: float, atol: float) -> bool:
    """Leaf-wise allclose with explicit tolerances (no defaults to hide behind)."""
    same = jtu.tree_structure(x) == jtu.tree_structure(y)
    return same and all(
        np.allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)
        for a, b in zip(jtu.tree_leaves(x), jtu.tree_leaves(y))
    )


# Adjoint linear solvers every gradient test runs through (tolerances for float64).
# Purely relative tolerances: the adjoint's right-hand side has the loss's scale, which
# can be tiny; an absolute tolerance would stop the solve before it is accurate.
ADJOINTS = {
    "lu": optx.ImplicitAdjoint(linear_solver=lx.LU()),
    "gmres": optx.ImplicitAdjoint(
        linear_solver=lx.GMRES(rtol=1e-12, atol=0, restart=5)
    ),
    "bicgstab": optx.ImplicitAdjoint(linear_solver=lx.BiCGStab(rtol=1e-12, atol=0)),
    "neumann": optx.ImplicitAdjoint(linear_solver=pf.Neumann(rtol=1e-12, atol=0)),
    "unrolled": optx.RecursiveCheckpointAdjoint(),
}

SOLVERS = {"zbus": pf.ZBus(), "newton": pf.Newton()}


# --- OpenDSS reference -------------------------------------------------------------

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
    for root, _, files in os.walk(folder):
        for name in files:
            src = os.path.join(root, name)
            dst = os.path.join(out, os.path.relpath(src, folder))
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            if name.lower().endswith((".dss", ".txt")):
                with open(src, encoding="utf-8", errors="replace") as f:
                    text = f.read()
                with open(dst, "w", encoding="utf-8") as f:
                    text = _SHAPE_FILE.sub(r"npts=1\1mult=[1]", _SOLVE.sub("", text))
                    f.write(text)
            else:
                shutil.copy(src, dst)
    return out


def opendss_voltages(
    master: str,
    *,
    load_scale: Mapping[str, float] | None = None,
    taps: Mapping[str, float] | None = None,
) -> dict[str, complex]:
    """Node voltages (complex volts, by 'bus.phase') from OpenDSS itself.

    Controls off; every load keeps its stated model at all voltages (vminpu/vmaxpu
    moved out of the way: below vminpu OpenDSS switches loads to constant impedance);
    a tight convergence tolerance so OpenDSS's own error is far below 1e-6 pu.
    `load_scale` multiplies each named load's kW and kvar; `taps` sets the regulated
    winding's tap of named transformers.
    """
    import opendssdirect as dss

    dss.Text.Command("clear")
    dss.Text.Command(f"redirect [{master}]")
    dss.Text.Command("set controlmode=off")
    dss.Text.Command("batchedit load..* vminpu=0.3 vmaxpu=3 vlowpu=0.01")
    for name, tap in (taps or {}).items():
        dss.Text.Command(f"edit transformer.{name} wdg=2 tap={tap}")
    for name, k in (load_scale or {}).items():
        dss.Loads.Name(name)
        kw, kvar = dss.Loads.kW(), dss.Loads.kvar()
        dss.Loads.kW(kw * k)
        dss.Loads.kvar(kvar * k)
    dss.Text.Command("set tolerance=1e-12 maxiterations=1000")
    dss.Solution.Solve()
    if not dss.Solution.Converged():
        raise RuntimeError(f"OpenDSS did not converge on {master}")
    names = [n.lower() for n in dss.Circuit.AllNodeNames()]
    v = np.asarray(dss.Circuit.AllBusVolts()).reshape(-1, 2)
    return dict(zip(names, v[:, 0] + 1j * v[:, 1]))


def max_pu_error(feeder, v, reference: Mapping[str, complex]) -> float:
    """Largest |V_ours - V_opendss| over all nodes, on each node's base (pu)."""
    v = np.asarray(v)
    missing = [n for n in feeder.node_names if n not in reference]
    assert not missing, f"nodes unknown to OpenDSS: {missing[:5]}"
    ref = np.array([reference[n] for n in feeder.node_names])
    return float(np.max(np.abs(v - ref) / feeder.base_v))


def jnp_float(x):
    return jnp.asarray(
        x, dtype=jnp.float64 if jax.config.read("jax_enable_x64") else jnp.float32
    )
