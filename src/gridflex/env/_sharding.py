"""Episodes spread over devices with JAX's own SPMD: `jit` and a `Mesh` whose
`episodes` axis is automatic (Optimistix and Lineax fail under `shard_map`, `pmap` and
explicit-axis meshes; Lineax issue #185). Every batch of episodes is constrained to
that axis; XLA's partitioner carries the layout through the power flow, its implicit
adjoint and the trainers' updates, and reduces across devices where a batch is
reduced. Outside such a mesh nothing changes."""

import contextlib

import jax
import jax.tree_util as jtu
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, Mesh, PartitionSpec


EPISODES = "episodes"


def initialize_hosts(
    coordinator: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Join a run over several processes (hosts) through JAX's distributed runtime.

    Call it in every process before anything else touches JAX. Without arguments JAX
    detects the cluster (Slurm, Open MPI, cloud TPU); otherwise give the
    coordinator's `host:port`, the number of processes and this one's id. Episode
    meshes then span every process's devices, and `fit` writes its metrics and
    checkpoints from process 0 only (every process resumes from them, so the run
    folder must be on a shared file system). On CPUs the collectives go through Gloo.
    """
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(
        coordinator_address=coordinator,
        num_processes=num_processes,
        process_id=process_id,
    )


def is_lead_process() -> bool:
    """Whether this process writes the run's files (process 0; always, alone)."""
    return jax.process_index() == 0


def sync_processes(name: str) -> None:
    """Wait here until every process of a multi-process run arrives (no-op alone)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def episode_mesh(devices: int | None = None, *, batch: int | None = None) -> Mesh:
    """A one-axis mesh (`"episodes"`, automatic) over the first `devices` local
    devices. Enter it with `use_mesh` (or `jax.set_mesh`) around training; `fit`
    does.

    `devices=None` takes all of them, or, given the `batch` of episodes, the most of
    them that divide it; a `batch` that the devices do not divide is refused. In a
    multi-process run (`initialize_hosts`) the mesh spans every process's devices,
    and `devices` may only name all of them."""
    if jax.process_count() > 1:
        every = jax.devices()
        if devices not in (None, len(every)):
            raise ValueError(
                f"devices = {devices}: a run over {jax.process_count()} processes "
                f"uses all their {len(every)} devices; leave devices unset."
            )
        chosen = every
    else:
        local = jax.local_devices()
        n = len(local) if devices is None else devices
        if devices is None and batch is not None:
            n = max(d for d in range(1, n + 1) if batch % d == 0)
        if not 1 <= n <= len(local):
            raise ValueError(
                f"devices = {n}: this process sees {len(local)} device(s) "
                f"({local[0].platform}); give 1 to {len(local)}."
            )
        chosen = local[:n]
    if batch is not None and batch % len(chosen):
        raise ValueError(
            f"batch = {batch} episodes do not split over {len(chosen)} devices; give "
            f"a batch that is a multiple of {len(chosen)}, or fewer devices."
        )
    return Mesh(np.asarray(chosen), (EPISODES,), axis_types=(AxisType.Auto,))


def use_mesh(mesh: Mesh) -> contextlib.AbstractContextManager:
    """`jax.set_mesh(mesh)`, or nothing at all for a one-device mesh, so that a
    single-device run compiles exactly as it would without one: how `fit` enters its
    mesh, for loops of your own (`with use_mesh(episode_mesh(batch=b)): ...`). Use
    it only in a `with` statement: `jax.set_mesh` sets the mesh when it is called."""
    if mesh.devices.size > 1:
        return jax.set_mesh(mesh)
    return contextlib.nullcontext()


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
