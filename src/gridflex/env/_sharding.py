"""Episodes spread over devices with JAX's own SPMD: `jit` and a `Mesh` whose
`episodes` axis is automatic (Optimistix and Lineax fail under `shard_map`, `pmap` and
explicit-axis meshes; Lineax issue #185). Every batch of episodes is constrained to
that axis; XLA's partitioner carries the layout through the power flow, its implicit
adjoint and the trainers' updates, and reduces across devices where a batch is
reduced. Outside such a mesh nothing changes."""

import jax
import jax.tree_util as jtu
import numpy as np
from jax.sharding import AxisType, Mesh, PartitionSpec


EPISODES = "episodes"


def episode_mesh(devices: int | None = None) -> Mesh:
    """A one-axis mesh (`"episodes"`, automatic) over the first `devices` local
    devices (default: all of them). Use it with `jax.set_mesh(mesh)` around training
    (`fit(..., devices=...)` does)."""
    local = jax.local_devices()
    n = len(local) if devices is None else devices
    if not 1 <= n <= len(local):
        raise ValueError(
            f"devices = {n}: this process sees {len(local)} device(s) "
            f"({local[0].platform}); give 1 to {len(local)}."
        )
    return Mesh(np.asarray(local[:n]), (EPISODES,), axis_types=(AxisType.Auto,))


def episode_devices() -> int:
    """How many devices the current mesh spreads episodes over (1 outside one)."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or EPISODES not in mesh.axis_names:
        return 1
    return int(mesh.shape[EPISODES])


def shard_episodes(tree, axis: int = 0):
    """Constrain `axis` of every array in `tree` (its episode axis) to the mesh's
    `episodes` axis; arrays whose episode count the devices do not divide, and any
    tree outside a mesh, are left as they are."""
    n = episode_devices()
    if n == 1:
        return tree

    def one(x):
        if not hasattr(x, "shape") or x.ndim <= axis or x.shape[axis] % n:
            return x
        spec = PartitionSpec(*([None] * axis), EPISODES)
        return jax.lax.with_sharding_constraint(x, spec)

    return jtu.tree_map(one, tree)
