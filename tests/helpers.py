"""Shared test tables and helpers: tolerances, the OpenDSS reference, adjoint tables."""

import importlib.util
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import lineax as lx
import numpy as np
import optimistix as optx
import scipy.sparse as sp

import gridflex.powerflow as pf


def tree_allclose(x, y, *, rtol: float, atol: float) -> bool:
    """Leaf-wise allclose with explicit tolerances (no defaults to hide behind)."""
    same = jtu.tree_structure(x) == jtu.tree_structure(y)
    return same and all(
        np.allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol)
        for a, b in zip(jtu.tree_leaves(x), jtu.tree_leaves(y))
    )


# Adjoint linear solvers every gradient test runs through (tolerances for float64).
# power_flow wraps the iterative ones in `Guarded`, which normalises the right-hand
# side, so these tolerances are relative to the size of the loss's cotangent.
ADJOINTS = {
    "lu": optx.ImplicitAdjoint(linear_solver=lx.LU()),
    "gmres": optx.ImplicitAdjoint(
        linear_solver=lx.GMRES(rtol=1e-12, atol=1e-12, restart=5)
    ),
    "bicgstab": optx.ImplicitAdjoint(linear_solver=lx.BiCGStab(rtol=1e-12, atol=1e-12)),
    "neumann": optx.ImplicitAdjoint(linear_solver=pf.Neumann(rtol=1e-12, atol=1e-12)),
    "unrolled": optx.RecursiveCheckpointAdjoint(),
}

SOLVERS = {"zbus": pf.ZBus(), "newton": pf.Newton()}


# --- OpenDSS reference (shared with the benchmarks) ---------------------------------

from gridflex.feeders import (  # noqa: E402
    opendss_voltages as opendss_voltages,
    solve_free_copy as solve_free_copy,
)


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


def _opendss_network(path, taps=None):
    """OpenDSS's system Y (loads out, controls off), node names and kV bases."""
    import opendssdirect as dss

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
    y, names, bases = _opendss_network(path, taps)
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


# --- training runs in a subprocess ---------------------------------------------------


def train_process(
    out: Path,
    method: str,
    settings: Mapping[str, object],
    *extra: str,
    devices: int | None = None,
    stderr: int = subprocess.DEVNULL,
) -> subprocess.Popen:
    """`gridflex train` in its own process (to kill it, or to force host devices): a
    tiny run of `method` with its section's `settings`, 4 agents, a checkpoint every
    step, no evaluation; on `devices` forced host devices when given."""
    sets = [f"{method}.{k}={v}" for k, v in settings.items()]
    cmd = [
        sys.executable, "-m", "gridflex.cli", "train", "--out", str(out),
        "--agents", "4", "--method", method,
        *(a for s in sets for a in ("--set", s)),
        "--set", "run.checkpoint_every=1", "--no-eval", "--quiet", *extra,
    ]  # fmt: skip
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    if devices is not None:
        cmd += ["--devices", str(devices)]
        env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=stderr, text=True
    )


def python_output(code: str) -> list[str]:
    """The lines `code` prints, run in a fresh CPU Python without the suite's type
    checker: what a user sees of an error the checker would otherwise refuse first."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def load_example(name: str):
    """`examples/<name>` imported as a module (registered in `sys.modules`, so that
    its Equinox modules pickle and print), as a user's script would use it."""
    path = Path(__file__).resolve().parents[1] / "examples" / name
    spec = importlib.util.spec_from_file_location(f"{path.stem}_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def load_benchmark(name: str):
    """`benchmarks/<name>.py` imported under its own name, as the benchmarks import
    one another (`scale.py` and `paper.py` import `trainers`)."""
    folder = str(Path(__file__).resolve().parents[1] / "benchmarks")
    sys.path.insert(0, folder)
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(folder)
