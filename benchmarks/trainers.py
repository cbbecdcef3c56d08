"""GradMAP against GradMA in wall-clock (paper §V-C, §V-E), by a protocol fixed before
the runs.

    python benchmarks/trainers.py --case ieee13:10 --seeds 0 1 2
    python benchmarks/trainers.py --case european_lv_reduced:100 --seeds 0 1 2
    python benchmarks/trainers.py --case ieee123:1000 --batch 16 --seeds 0 1 2
    python benchmarks/trainers.py --case ieee13:10 --only gradmap:1   # one run
    python benchmarks/trainers.py --case ieee13:10 --timing           # split of a step
    python benchmarks/trainers.py --case ieee13:10 --report           # stored runs
    python benchmarks/trainers.py --case ieee13:10 --batch 16 --seeds 0 1 2  # the batch

The protocol (written down before the runs reported in docs/benchmarks.md, the same
for both methods):

1. Runs. Each method trains with its defaults (paper Table I: batch 500, N_d 20, N_p
   10 for GradMAP and 60 for GradMA) on the case's environment, built-in feeders with
   their regulators at `taps="homes"` (what `gridflex train` uses), for seeds 0, 1
   and 2. GradMA is scale-free (`GradMA.scale_free`, its default since 2026-12-06:
   its objective divided by the RMS of its cached gradient, the normalisation
   GradMAP's surrogate has), decided before its reruns because plain GradMA
   diverged late on two cases; the plain runs are kept as `gradma_plain_seed<k>`.
   The seed draws the placement, the devices, the homes' data, the initial
   policies and every rollout. A case too large for this CPU at batch 500 runs both
   methods at the same smaller `--batch`, stated in the result. Every primal step's
   training-rollout cost and voltage violation (per episode, the figures the duals
   see) is kept.
2. Time. A run's time to a step is the step count times the method's seconds per
   primal step on this machine, measured warm and alone (`--timing`: the median of
   repeated steps from the initial state, compilation excluded and reported apart).
   Both methods share the rollout and its gradient, whose cost varies a little over
   training with the power-flow iterations; the rule keeps the comparison free of
   whatever else the machine did while the runs were made, so runs may be made side
   by side. Each run's own wall-clock is kept too and reported as context.
3. Levels. A run's final level, for cost and for violation separately, is its mean
   over its last 10 % of primal steps. The *symmetric joint target* of a seed is, for
   each figure, the worse of the two methods' final levels. A run reaches a target at
   the first step whose trailing 10-step means of cost and violation are both at or
   below it (so passing the cost level on the way down while the violations are still
   large does not count). The speed-up of a seed is GradMA's time to the target over
   GradMAP's.
4. Both directions. Also reported: each method's time to GradMAP's final levels and
   to GradMA's final levels (the ratio when both reach them; "never" when one does
   not).
5. Summary. Per case, the median and range over the seeds of every speed-up; final
   cost and violation of each method per seed. Context only, never the headline: the
   cost-only time to the symmetric cost target (the paper's wording), and the ratio
   of whole schedules (equal dual steps). Added after the runs, as context too: the
   joint target taken over the end-of-day battery and heat-pump channels as well
   (rule 3 leaves them out), with each method's final terminal levels; and the
   trade-off check: the lowest cost (trailing 10-step mean) each method reaches at
   any step whose trailing violation is at or below the other method's final
   violation, beside the other's final cost (when the two final levels split, one
   cheaper and the other less violating, this says whether either method's
   trajectory ever dominates the other's end point).

`--timing` splits a primal step of each method on this machine (warm, median of
repeats): the rollout alone, the rollout with its gradient (so the adjoint and the
backward pass apart), and the rest of the step (GradMAP's inner updates with its
Gauss–Newton matrices and line search; GradMA's one update).

Results: `benchmarks/results/trainers/<case>/<method>_seed<k>.json` (per-step
metrics), `benchmarks/results/trainers_<case>.json` (the report) and `.png` (cost
and violation of every run against run time). Each run checkpoints under
`runs/benchmarks/<case>/<method>_seed<k>/` (ignored by git); the same `--only`
command resumes a killed or crashed run from its last checkpoint.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np


METHODS = ("gradma", "gradmap")
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
CHECKPOINTS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "runs", "benchmarks"
)
_KEPT = (
    "step",
    "wall_s",
    "cost",
    "voltage_violation",
    "battery_terminal",
    "heat_pump_terminal",
    "lambda_voltage",
    "failed_episodes",
    "inner_steps_made",
    "step_scale",
    "trust_region_d",
)
"""The per-step metrics a stored run keeps (one column each, five digits)."""


# --- analysis (pure functions of stored metrics) -------------------------------------


def _trailing_mean(x: np.ndarray, window: int = 10) -> np.ndarray:
    """Each step's mean over the last `window` steps (fewer at the start):
    `gridflex.plots.trailing_mean`, so the figures show what the rule compares."""
    from gridflex.plots import trailing_mean

    return trailing_mean(np.asarray(x, dtype=float), window)


def _series(run: list[dict], key: str) -> np.ndarray:
    return np.array([r[key] for r in run], dtype=float)


def compile_seconds(run: list[dict]) -> float:
    """The first step's excess over the median of the next ten step durations."""
    wall = _series(run, "wall_s")
    steps = np.diff(wall[: min(len(wall), 12)])
    if not steps.size:
        return 0.0
    return float(max(0.0, wall[0] - np.median(steps)))


def run_time(run: list[dict]) -> np.ndarray:
    """Each step's wall-clock since the start, compilation excluded."""
    return _series(run, "wall_s") - compile_seconds(run)


FIGURES = ("cost", "voltage_violation")
TERMINALS = ("battery_terminal", "heat_pump_terminal")


def final_levels(run: list[dict], keys: tuple[str, ...] = FIGURES) -> dict[str, float]:
    """Rule 3's final level of each figure in `keys` that the run recorded."""
    tail = max(1, len(run) // 10)
    return {k: float(_series(run, k)[-tail:].mean()) for k in keys if k in run[0]}


def time_to(
    run: list[dict], levels: dict[str, float], seconds_per_step: float
) -> dict | None:
    """First step whose trailing 10-step means are all at or below `levels`, and its
    time by rule 2 (and by the run's own clock, compilation excluded)."""
    ok = np.ones(len(run), dtype=bool)
    for key, level in levels.items():
        ok &= _trailing_mean(_series(run, key)) <= level
    hits = np.flatnonzero(ok)
    if not hits.size:
        return None
    i = int(hits[0])
    return {
        "step": i + 1,
        "run_s": round((i + 1) * seconds_per_step, 2),
        "own_clock_s": round(float(run_time(run)[i]), 2),
    }


def best_cost_at(run: list[dict], violation: float) -> float | None:
    """The lowest trailing 10-step mean cost of the steps whose trailing 10-step mean
    violation is at or below `violation` (None when the run never gets there)."""
    ok = _trailing_mean(_series(run, "voltage_violation")) <= violation
    if not ok.any():
        return None
    return round(float(_trailing_mean(_series(run, "cost"))[ok].min()), 2)


def _ratio(a: dict | None, b: dict | None, key: str = "run_s") -> float | None:
    if a is None or b is None or b[key] <= 0:
        return None
    return round(a[key] / b[key], 2)


def analyse_seed(runs: dict[str, list[dict]], seconds: dict[str, float]) -> dict:
    """Rules 3 and 4 of the protocol (and the context figures) for one seed;
    `seconds`: each method's seconds per primal step (rule 2)."""
    ma, gm = runs["gradma"], runs["gradmap"]
    fin = {m: final_levels(r) for m, r in runs.items()}
    target = {k: max(fin["gradma"][k], fin["gradmap"][k]) for k in fin["gradma"]}

    def each(levels):
        return {m: time_to(r, levels, seconds[m]) for m, r in runs.items()}

    joint, to_map, to_ma = each(target), each(fin["gradmap"]), each(fin["gradma"])
    cost_only = each({"cost": target["cost"]})
    # Context: the joint target over the end-of-day (terminal) channels too, which
    # rule 3 leaves out (a method may buy cost with devices left short at midnight).
    fin_all = {m: final_levels(r, FIGURES + TERMINALS) for m, r in runs.items()}
    joint_all = each(
        {k: max(f[k] for f in fin_all.values()) for k in fin_all["gradma"]}
    )
    per_method = {
        m: {
            "primal_steps": len(r),
            "seconds_per_step": seconds[m],
            "run_s": round(len(r) * seconds[m], 1),
            "own_clock": {
                "compile_s": round(compile_seconds(r), 2),
                "run_s": round(float(run_time(r)[-1]), 1),
                "median_step_s": round(
                    float(np.median(np.diff(_series(r, "wall_s")))), 3
                ),
            },
            "final": fin[m],
            "final_terminals": {k: fin_all[m][k] for k in TERMINALS if k in fin_all[m]},
            "reaches_joint_target": joint[m],
            "reaches_gradmap_final": to_map[m],
            "reaches_gradma_final": to_ma[m],
            "failed_episodes": float(_series(r, "failed_episodes").sum()),
        }
        for m, r in runs.items()
    }
    for m, other in (("gradma", "gradmap"), ("gradmap", "gradma")):
        per_method[m]["context_at_other_final_violation"] = {
            "lowest_cost": best_cost_at(runs[m], fin[other]["voltage_violation"]),
            "other_final_cost": round(fin[other]["cost"], 2),
        }
    if "trust_region_d" in gm[0]:
        per_method["gradmap"]["trust_region"] = trust_region_report(gm)
    return {
        "joint_target": target,
        "methods": per_method,
        "speedup": {
            "joint": _ratio(joint["gradma"], joint["gradmap"]),
            "to_gradmap_final": _ratio(to_map["gradma"], to_map["gradmap"]),
            "to_gradma_final": _ratio(to_ma["gradma"], to_ma["gradmap"]),
            "context_cost_only": _ratio(cost_only["gradma"], cost_only["gradmap"]),
            "context_joint_with_terminals": _ratio(
                joint_all["gradma"], joint_all["gradmap"]
            ),
            "context_whole_schedules": round(
                len(ma) * seconds["gradma"] / (len(gm) * seconds["gradmap"]), 2
            ),
            "context_joint_by_own_clocks": _ratio(
                joint["gradma"], joint["gradmap"], "own_clock_s"
            ),
        },
    }


def trust_region_report(run: list[dict], n_primal: int = 10, delta: float = 1e-3):
    """After the first dual step: the share of primal steps whose D lies in
    [delta / 1.5, 1.5 delta], and the distribution of inner updates made."""
    after = run[n_primal:]
    d = _series(after, "trust_region_d")
    made = _series(after, "inner_steps_made")
    bins = [0, 1, 21, 41, 61, 80, 81]
    hist = np.histogram(made, bins=bins)[0]
    return {
        "share_in_band": round(
            float(np.mean((d >= delta / 1.5) & (d <= 1.5 * delta))), 3
        ),
        "d_over_delta_quantiles_10_50_90": np.round(
            np.quantile(d / delta, [0.1, 0.5, 0.9]), 3
        ).tolist(),
        "inner_updates_made": {
            f"{lo}-{hi - 1}": int(c) for lo, hi, c in zip(bins[:-1], bins[1:], hist)
        },
        "step_scale_quantiles_10_50_90": np.round(
            np.quantile(_series(after, "step_scale"), [0.1, 0.5, 0.9]), 3
        ).tolist()
        if "step_scale" in after[0]
        else None,
    }


def summarise(per_seed: dict[int, dict]) -> dict:
    """Rule 5: median and range over seeds of every speed-up."""
    out = {}
    for key in next(iter(per_seed.values()))["speedup"]:
        values = [s["speedup"][key] for s in per_seed.values()]
        known = [v for v in values if v is not None]
        out[key] = {
            "per_seed": values,
            "median": round(float(np.median(known)), 2) if known else None,
            "range": [min(known), max(known)] if known else None,
            "seeds_without_a_figure": len(values) - len(known),
        }
    return out


# --- runs ----------------------------------------------------------------------------


def _case_dir(case: str, batch: int | None) -> str:
    feeder, agents = case.split(":")
    name = f"{feeder}_{agents}" + (f"_b{batch}" if batch else "")
    return os.path.join(RESULTS, "trainers", name)


def _environment(case: str, seed: int):
    import gridflex as gf
    from gridflex.env import make_environment

    feeder, agents = case.split(":")
    return make_environment(
        getattr(gf.feeders, feeder)(taps="homes"), int(agents), seed=seed
    )


def _trainer(method: str, batch: int | None):
    from gridflex.training import TRAINERS

    cls = TRAINERS[method]
    return cls() if batch is None else cls(batch=batch)


def checkpoint_dir(
    case: str, method: str, seed: int, batch: int | None, root: str | None = None
) -> str:
    """Where a run keeps its checkpoints (by default under the ignored
    `runs/benchmarks/`), so that a run killed or crashed after an hour resumes
    instead of starting again."""
    name = os.path.basename(_case_dir(case, batch))
    return os.path.join(root or CHECKPOINTS, name, f"{method}_seed{seed}")


def resumable_fit(env, trainer, seed: int, run_dir: str, progress: bool = True):
    """`gridflex.training.fit` checkpointing into `run_dir`, resumed from its last
    checkpoint when there is one: the same command finishes a killed run, and
    starts afresh one killed before its first checkpoint."""
    import jax

    from gridflex.runs import CHECKPOINTS_DIR
    from gridflex.training import fit

    if os.path.isdir(os.path.join(run_dir, CHECKPOINTS_DIR)):
        print(f"resuming {run_dir}", flush=True)
    # resume=True also covers a run killed before its first checkpoint: `fit`
    # then starts it afresh over the partial metrics instead of refusing it
    return fit(
        env,
        trainer,
        key=jax.random.key(seed),
        out_dir=run_dir,
        resume=True,
        progress=progress,
    )


def one_run(case: str, method: str, seed: int, batch: int | None) -> str:
    env = _environment(case, seed)
    trainer = _trainer(method, batch)
    result = resumable_fit(
        env, trainer, seed, checkpoint_dir(case, method, seed, batch)
    )
    out = _case_dir(case, batch)
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, f"{method}_seed{seed}.json")
    record = {
        "command": "python benchmarks/trainers.py " + " ".join(sys.argv[1:]),
        "commit": commit(),
        "case": case,
        "method": method,
        "seed": seed,
        "batch": trainer.batch,
        "train_seconds": round(result.train_seconds, 1),
    }
    write_run(path, record, result.metrics)
    print(f"{method} seed {seed}: {len(result.metrics)} steps")
    return path


def commit() -> str | None:
    """The commit the benchmark code is at (with `+` when the library or the
    benchmark scripts differ from it), so that every stored run says which code made
    it; `None` outside a git checkout."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        head = subprocess.run(
            ["git", "-C", here, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", here, "status", "--porcelain", "--untracked-files=no"]
            + ["--", ":/src", ":/benchmarks/*.py"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+" if dirty else "")


def write_json(path: str, obj) -> None:
    """A report or figure file as indented JSON, ending in a newline."""
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


def write_run(
    path: str, record: dict, rows: list[dict], keep: tuple[str, ...] = _KEPT
) -> None:
    """A run's record and its metrics in `keep`, one column per metric."""
    columns = {k: [float(f"{r[k]:.5g}") for r in rows] for k in keep if k in rows[0]}
    lines = ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in columns.items())
    with open(path, "w") as f:
        f.write(json.dumps(record)[:-1] + ', "metrics": {\n' + lines + "\n}}\n")


def read_run(path: str) -> tuple[dict, list[dict]]:
    """`(record, rows)` of a stored run (stored as columns, or as rows)."""
    with open(path) as f:
        stored = json.load(f)
    metrics = stored.pop("metrics")
    if isinstance(metrics, dict):
        keys = list(metrics)
        metrics = [dict(zip(keys, values)) for values in zip(*metrics.values())]
    return stored, metrics


def timed_rows(
    rows: list[dict], step_s: float, n_primal: int | None = None
) -> list[dict]:
    """A stored run's rows with rule 2's run time (`wall_s`: steps times the idle
    seconds per step) and, given the primal steps per dual step, each row's
    `dual_step` (for the figures' dual-step marks)."""
    out = [{**r, "wall_s": r["step"] * step_s} for r in rows]
    if n_primal is not None:
        for r in out:
            r["dual_step"] = (int(r["step"]) - 1) // n_primal
    return out


def report(case: str, batch: int | None, seeds: list[int]) -> dict:
    from gridflex.plots import plot_training_curves
    from gridflex.training import TRAINERS

    folder = _case_dir(case, batch)
    timing_path = os.path.join(RESULTS, f"timing_{os.path.basename(folder)}.json")
    if not os.path.exists(timing_path):
        raise SystemExit(f"run --timing first: {timing_path} is missing")
    with open(timing_path) as f:
        measured = json.load(f)
    seconds = {m: measured[m]["primal_step_s"] for m in METHODS}
    per_seed, curves = {}, {}
    for seed in seeds:
        runs = {}
        for m in METHODS:
            path = os.path.join(folder, f"{m}_seed{seed}.json")
            if os.path.exists(path):
                runs[m] = read_run(path)[1]
        if len(runs) < len(METHODS):
            print(f"seed {seed}: missing runs in {folder}", file=sys.stderr)
            continue
        per_seed[seed] = analyse_seed(runs, seconds)
        for m, r in runs.items():
            label = f"{TRAINERS[m].display_name}, seed {seed}"
            curves[label] = timed_rows(r, seconds[m])
    if not per_seed:
        raise SystemExit(f"no complete seed in {folder}")
    out = {
        "command": "python benchmarks/trainers.py " + " ".join(sys.argv[1:]),
        "case": case,
        "batch": batch or 500,
        "seeds": sorted(per_seed),
        "seconds_per_primal_step": seconds,
        "summary": summarise(per_seed),
        "per_seed": {str(k): v for k, v in per_seed.items()},
    }
    stem = os.path.join(RESULTS, "trainers_" + os.path.basename(folder))
    label = case + (f", batch {batch}" if batch else "")
    write_json(stem + ".json", out)
    plot_training_curves(
        curves,
        stem + ".png",
        keys=("cost", "voltage_violation"),
        title=f"GradMAP and GradMA on {label}, seeds {sorted(per_seed)} "
        "(run time = steps × idle s/step)",
        smooth=10,
        mark_dual_steps=False,
    )
    plot_case(label, curves, stem + "_duals.png")
    print(json.dumps(out["summary"], indent=1))
    return out


def plot_case(case: str, curves: dict[str, list[dict]], path: str) -> None:
    """Cost, voltage channel, voltage dual and GradMAP's D against its band, per run,
    against run time (rule 2)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = (
        ("cost", "cost [GBP/episode]"),
        ("voltage_violation", "voltage channel [0.01 pu, day mean]"),
        ("lambda_voltage", "voltage dual [–]"),
        ("trust_region_d", "GradMAP's D / δ [–]"),
    )
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 11), sharex=True)
    colours = {"GradMA": "tab:blue", "GradMAP": "tab:orange"}
    for label, rows in curves.items():
        method = label.split(",")[0]
        first = label.endswith("seed 0")
        t = np.array([r["wall_s"] for r in rows])
        for ax, (key, _) in zip(axes, panels, strict=True):
            if key not in rows[0]:
                continue
            y = np.array([r[key] for r in rows])
            if key == "trust_region_d":
                y = y / 1e-3
                ax.plot(t, y, ".", ms=2, color=colours[method], alpha=0.6)
                continue
            if key != "lambda_voltage":
                y = _trailing_mean(y)
            ax.plot(
                t,
                y,
                color=colours[method],
                alpha=1.0 if first else 0.35,
                lw=1.2,
                label=label if key == "cost" else None,
            )
    axes[3].axhspan(1 / 1.5, 1.5, color="tab:green", alpha=0.15, label="band")
    axes[3].set_yscale("log")
    axes[3].legend(fontsize="small")
    axes[1].set_yscale("log")
    for ax, (_, name) in zip(axes, panels, strict=True):
        ax.set_ylabel(name)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize="small", ncol=2)
    axes[-1].set_xlabel("run time [s] (primal steps × measured seconds per step)")
    fig.suptitle(
        f"{case}: training rollouts (10-step means), the voltage dual and GradMAP's "
        "trust region"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --- timing: where a primal step's time goes ------------------------------------


def clock(fn, *args, repeats: int) -> tuple[float, float]:
    """`fn(*args)`'s first call (compilation included) and the median of `repeats`
    more, in seconds."""
    import jax

    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t0)
    return first, float(np.median(times))


def timing(case: str, batch: int | None, repeats: int = 9) -> dict:
    from gridflex.env import use_mesh
    from gridflex.training import mesh_for

    env = _environment(case, 0)
    out: dict = {"case": case, "batch": batch or 500}
    for method in METHODS:
        trainer = _trainer(method, batch)
        mesh = mesh_for(trainer)  # the devices `fit` spreads the runs' episodes over
        with use_mesh(mesh):
            out[method] = _split_step(env, trainer, repeats)
        out[method]["devices"] = int(mesh.devices.size)
    out["command"] = "python benchmarks/trainers.py " + " ".join(sys.argv[1:])
    name = os.path.basename(_case_dir(case, batch))
    path = os.path.join(RESULTS, f"timing_{name}.json")
    os.makedirs(RESULTS, exist_ok=True)
    write_json(path, out)
    print(json.dumps(out, indent=1))
    return out


def _split_step(env, trainer, repeats: int) -> dict:
    """One method's primal step, split: the rollout, its gradient, the rest."""
    import equinox as eqx
    import jax

    from gridflex.env import PolicyController
    from gridflex.training import batch_gradient, sample_days

    state = trainer.init(env, jax.random.key(0))
    days = sample_days(jax.random.key(1), env, trainer.batch)

    def forward(env, state, days):
        r = env.rollout(
            PolicyController(state.policy),
            state.lambdas,
            jax.random.key(2),
            days,
            record=True,
        )
        return r.lagrangian

    _, rollout = clock(eqx.filter_jit(forward), env, state, days, repeats=repeats)
    _, gradient = clock(
        eqx.filter_jit(lambda t, e, s: batch_gradient(t, e, s)[2].g),
        trainer,
        env,
        state,
        repeats=repeats,
    )
    first, step = clock(eqx.filter_jit(trainer.step), env, state, repeats=repeats)
    return {
        "compile_s": round(first - step, 2),
        "rollout_s": round(rollout, 3),
        "adjoint_and_backward_s": round(gradient - rollout, 3),
        "rollout_with_gradient_s": round(gradient, 3),
        "rest_of_step_s": round(step - gradient, 3),
        "primal_step_s": round(step, 3),
        "rest_over_rollout_with_gradient": round((step - gradient) / gradient, 3),
    }


# --- one method's step, timed (benchmarks/scale.py and paper.py use it) ------------


def timed_steps(
    env, trainer, steps: int, devices: int | None = None
) -> tuple[dict, object]:
    """The first primal step (compilation included), then `steps` warm ones: their
    seconds, this process's peak memory, and the final state. The episodes are spread
    over `devices` as `fit` spreads them (default: all local devices, or the most of
    them that divide the batch)."""
    import equinox as eqx
    import jax

    from gridflex.env import use_mesh
    from gridflex.training import mesh_for

    mesh = mesh_for(trainer, devices)
    with use_mesh(mesh):
        state = trainer.init(env, jax.random.key(0))
        step = eqx.filter_jit(trainer.step)
        t0 = time.perf_counter()
        state, m = step(env, state)
        jax.block_until_ready(m)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(steps):
            state, m = step(env, state)
        jax.block_until_ready(m)
        per_step = (time.perf_counter() - t0) / steps
    # three significant figures: a step of a tiny case takes milliseconds, which two
    # decimals would round to nothing on a fast machine
    figures = {
        "first_step_s": float(f"{first:.3g}"),
        "seconds_per_primal_step": float(f"{per_step:.3g}"),
        "peak_rss_mb": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        ),
        "failed_episodes": float(m["failed_episodes"]),
        "devices": int(mesh.devices.size),
    }
    return figures, state


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--case", default="ieee13:10", help="feeder:agents")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--batch", type=int, help="episodes per primal step (both methods)")
    p.add_argument("--only", metavar="METHOD:SEED", help="make one run and stop")
    p.add_argument("--report", action="store_true", help="report the stored runs")
    p.add_argument("--timing", action="store_true", help="split a primal step")
    args = p.parse_args(argv)
    if args.timing:
        timing(args.case, args.batch)
        return 0
    if args.only:
        method, seed = args.only.split(":")
        one_run(args.case, method, int(seed), args.batch)
        return 0
    if not args.report:
        folder = _case_dir(args.case, args.batch)
        for seed in args.seeds:
            for m in METHODS:
                if not os.path.exists(os.path.join(folder, f"{m}_seed{seed}.json")):
                    one_run(args.case, m, seed, args.batch)
    report(args.case, args.batch, args.seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
