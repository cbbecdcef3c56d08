"""`fit`: drive any trainer, with checkpoints, metrics and exact resume.

A run killed at any moment resumes from its last checkpoint with nothing lost: the
checkpoint holds the whole `TrainState` (parameters, optimiser state, dual variables,
PRNG state, step counter) and the wall-clock spent so far; metrics rows after it are
dropped and redone, so the resumed run's files equal an uninterrupted run's.
"""

import dataclasses
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
from jax.sharding import Mesh
from jaxtyping import PRNGKeyArray

from ..env import (
    Environment,
    episode_mesh,
    is_lead_process,
    sync_processes,
    use_mesh,
)
from ..runs import (
    CHECKPOINTS_DIR,
    latest_checkpoint,
    load_checkpoint,
    METRICS_FILE,
    MetricsGapWarning,
    MetricsWriter,
    ProgressBar,
    read_metrics,
    save_checkpoint,
)
from ..runs._metrics import format_steps, missing_steps
from ._base import AbstractTrainer, TrainState


@dataclasses.dataclass
class FitResult:
    """The trained state, every metrics row, and the training wall-clock (s)."""

    state: TrainState
    metrics: list[dict[str, Any]]
    train_seconds: float


def fit(
    env: Environment,
    trainer: AbstractTrainer,
    *,
    key: PRNGKeyArray,
    out_dir: str | Path | None = None,
    resume: bool = False,
    checkpoint_every: int = 10,
    progress: bool = True,
    max_steps: int | None = None,
    on_step: Callable[[dict[str, Any]], None] | None = None,
    devices: int | None = None,
) -> FitResult:
    """Train `trainer` on `env` for `trainer.n_dual * trainer.n_primal` primal steps.

    **Arguments:**

    - `env`, `trainer`: what to train and how.
    - `key`: PRNG key (a resumed run takes its PRNG state from the checkpoint).
    - `out_dir`: where `metrics.jsonl` and `checkpoints/` go (`None`: nowhere).
    - `resume`: continue from the latest checkpoint in `out_dir`. Without it, an
        `out_dir` that already holds a run is refused rather than overwritten.
    - `checkpoint_every`: primal steps between checkpoints (and at the end).
    - `progress`: show a progress line on stderr.
    - `max_steps`: stop after this many primal steps in total (e.g. a smoke test).
    - `on_step`: called with every metrics row.
    - `devices`: how many local devices (GPUs, or forced host devices) the episodes
        of every batch are spread over. Default: all of them, or the most of them
        that divide the trainer's `batch`; a number given must divide it. Each device
        simulates its share of the batch; the policies are replicated and the batch
        means reduced across devices, so the result agrees with one device's to
        float rounding. Meant for GPUs: on forced CPU devices it gains little or
        nothing and warns (see the Scaling-out docs).

    **Returns:** a `FitResult`.
    """
    with use_mesh(mesh_for(trainer, devices)):
        return _fit(
            env, trainer, key, out_dir, resume, checkpoint_every, progress,
            max_steps, on_step,
        )  # fmt: skip


def mesh_for(trainer: AbstractTrainer, devices: int | None = None) -> Mesh:
    """The episode mesh `fit` trains `trainer` under: `episode_mesh` over `devices`
    local devices and the trainer's `batch` (`None`: all of them, or the most of them
    that divide the batch; a number given must divide it). Several CPU devices warn:
    they share the same cores."""
    batch = getattr(trainer, "batch", None)
    mesh = episode_mesh(devices, batch=batch if isinstance(batch, int) else None)
    n = mesh.devices.size
    if n > 1 and mesh.devices.flat[0].platform == "cpu":
        warnings.warn(
            f"spreading episodes over {n} CPU devices: they share the same cores, so "
            "little or nothing is gained (the Scaling-out docs have figures); "
            "several devices are for GPUs.",
            stacklevel=3,
        )
    return mesh


def _open_run(
    state: TrainState, out_dir: str | Path | None, resume: bool
) -> tuple[TrainState, int, float, MetricsWriter | None]:
    """The run's starting point: `state` and step 0, or, resuming, the latest
    checkpoint's state, step and wall-clock; and the metrics writer (process 0's,
    its file cut back to the checkpoint's step). A folder that holds a run is
    refused unless resuming."""
    done, offset = 0, 0.0
    writer, truncate = None, None
    if out_dir is None:
        return state, done, offset, writer
    out = Path(out_dir)
    ckpt_dir = out / CHECKPOINTS_DIR
    has_run = latest_checkpoint(ckpt_dir) is not None if ckpt_dir.exists() else False
    if resume and has_run:
        state, done, meta = load_checkpoint(ckpt_dir, like=state)
        offset = float(meta.get("wall_s", 0.0))
        truncate = done
        gap = missing_steps(out, done)
        if gap:
            warnings.warn(
                MetricsGapWarning(
                    f"{out / METRICS_FILE} has no row for step(s) "
                    f"{format_steps(gap)}, which checkpoint step {done} covers; "
                    "they cannot be recomputed from the checkpoint (start the run "
                    "afresh to have them), so curves and reports will show the gap."
                ),
                stacklevel=3,
            )
    elif has_run or (out / METRICS_FILE).exists():
        if not resume:
            raise FileExistsError(
                f"{out} already holds a training run; pass resume=True "
                "(`--resume`) to continue it, or choose another output folder."
            )
        truncate = 0
    # every process has read the folder as it was; only process 0 writes to it
    sync_processes("gridflex.fit.checked")
    if is_lead_process():
        # the file named outright: `MetricsWriter` takes a path with a suffix for a
        # file, and a run folder called `runs/sgd.v2` is still a folder
        writer = MetricsWriter(out / METRICS_FILE, truncate_after_step=truncate)
    return state, done, offset, writer


def _fit(
    env: Environment,
    trainer: AbstractTrainer,
    key: PRNGKeyArray,
    out_dir: str | Path | None,
    resume: bool,
    checkpoint_every: int,
    progress: bool,
    max_steps: int | None,
    on_step: Callable[[dict[str, Any]], None] | None,
) -> FitResult:
    total = (
        trainer.total_steps
        if max_steps is None
        else min(max_steps, trainer.total_steps)
    )
    state, done, offset, writer = _open_run(trainer.init(env, key), out_dir, resume)
    lead = is_lead_process()
    step = eqx.filter_jit(trainer.step)
    bar = ProgressBar(elapsed_offset_s=offset) if progress and lead else None
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    try:
        for s in range(done + 1, total + 1):
            state, metrics = step(env, state)
            values = {k: float(v) for k, v in jax.device_get(metrics).items()}
            wall = offset + time.perf_counter() - t0
            row = {
                "step": s,
                "dual_step": (s - 1) // trainer.n_primal + 1,
                "wall_s": round(wall, 4),
                **values,
            }
            rows.append(row)
            if writer is not None:
                writer.write(row)
            if on_step is not None:
                on_step(row)
            if bar is not None:
                bar.update(
                    {
                        "dual": (row["dual_step"], trainer.n_dual),
                        "primal": ((s - 1) % trainer.n_primal + 1, trainer.n_primal),
                        "cost": values.get("cost", float("nan")),
                        "V": values.get("voltage_violation", float("nan")),
                        "failed": int(values.get("failed_episodes", 0)),
                    }
                )
            if writer is not None and (s % checkpoint_every == 0 or s == total):
                save_checkpoint(
                    writer.path.parent / CHECKPOINTS_DIR,
                    state,
                    step=s,
                    metadata={"wall_s": wall, "trainer": type(trainer).__name__},
                )
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
    train_seconds = offset + time.perf_counter() - t0
    sync_processes("gridflex.fit.written")  # process 0's files are complete
    all_rows = read_metrics(Path(out_dir)) if out_dir is not None else rows
    return FitResult(state=state, metrics=all_rows, train_seconds=train_seconds)
