"""Shared test tables and helpers: tolerances, the OpenDSS reference, adjoint tables."""

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

from gridflex.feeders._reference import (  # noqa: E402
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
