"""GradMAP against GradMA in wall-clock, in one run on one machine (paper §V-C).

    python benchmarks/trainers.py --case ieee13:10
    python benchmarks/trainers.py --case european_lv_reduced:100
    python benchmarks/trainers.py --case ieee123:1000 --scale-only --batches 8 16 32

For each case both trainers run with their defaults (paper Table I: batch 500, N_d 20,
N_p 10 for GradMAP and 60 for GradMA) from the same seed, one after the other in this
process. Wall-clock counts everything from the first call (the first step includes
compilation, for both). The targets are GradMA's final levels: its mean cost and mean
voltage violation per episode over its last 10 % of primal steps. Three speed-ups are
reported, because under primal-dual learning the cost is not monotone (it falls while
the duals are zero, then rises as the voltage dual binds):

- `joint` (the headline): for each method, the first primal step at which its cost and
  its voltage violation, each averaged over the last 10 steps, are both at or below
  GradMA's final levels; the speed-up is the ratio of those two wall-clock times. The
  same rule is applied to both methods, so neither is credited for passing through the
  cost level on the way down while its violations are still large.
- `cost_only` (the paper's wording, "converging to the same cost level"): GradMA's
  total wall-clock over the time GradMAP's smoothed cost first reaches GradMA's final
  cost level. Flattering: GradMAP's cost passes that level before its duals bind.
- `equal_dual_steps`: both schedules end after the same number of dual updates (20);
  the ratio of total wall-clock, next to each method's final cost and violation.

Beside them, `gradma_when_gradmap_ends`: GradMA's smoothed cost and violation at the
wall-clock at which GradMAP finished (what the same time budget bought GradMA).

`--reanalyse FILE` recomputes the report from the metrics stored in a result file
without training again.

`--scale-only` instead runs a few GradMAP primal steps at each batch size in
`--batches` and reports seconds per primal step and peak memory (each batch in its own
process), and extrapolates the batch that fits in 48 GB.

Results: `benchmarks/results/trainers_<feeder>_<agents>.json` and a PNG of the two
training curves against wall-clock.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np


def _smooth(x: np.ndarray, window: int) -> np.ndarray:
    out = np.empty_like(x)
    for i in range(len(x)):
        out[i] = x[max(0, i - window + 1) : i + 1].mean()
    return out


def _series(run: list[dict], key: str) -> np.ndarray:
    return np.array([r[key] for r in run], dtype=float)


def _first_at_or_below(run: list[dict], levels: dict[str, float]) -> dict | None:
    """First primal step whose 10-step smoothed metrics are all at or below `levels`."""
    ok = np.ones(len(run), dtype=bool)
    for key, level in levels.items():
        ok &= _smooth(_series(run, key), 10) <= level
    hits = np.flatnonzero(ok)
    if not hits.size:
        return None
    i = int(hits[0])
    return {"step": i + 1, "wall_s": round(float(run[i]["wall_s"]), 1)}


def analyse(runs: dict[str, list[dict]]) -> dict:
    """The three speed-up figures of the module docstring, from per-step metrics."""
    ma, map_ = runs["gradma"], runs["gradmap"]
    tail = max(1, len(ma) // 10)
    levels = {
        key: float(_series(ma, key)[-tail:].mean())
        for key in ("cost", "voltage_violation")
    }

    def summary(run: list[dict]) -> dict:
        tail = max(1, len(run) // 10)
        return {
            "primal_steps": len(run),
            "wall_s": round(float(run[-1]["wall_s"]), 1),
            "first_cost": float(run[0]["cost"]),
            "final_cost": float(_series(run, "cost")[-tail:].mean()),
            "final_voltage_violation": float(
                _series(run, "voltage_violation")[-tail:].mean()
            ),
            "reaches_joint_level": _first_at_or_below(run, levels),
        }

    report: dict = {
        "gradma_final_levels": levels,
        "gradma": summary(ma),
        "gradmap": summary(map_),
    }
    end = map_[-1]["wall_s"]
    i = max(0, int(np.searchsorted(_series(ma, "wall_s"), end, side="right")) - 1)
    report["gradma_when_gradmap_ends"] = {
        "step": i + 1,
        "wall_s": round(float(ma[i]["wall_s"]), 1),
        **{k: float(_smooth(_series(ma, k), 10)[i]) for k in levels},
    }
    joint_ma = report["gradma"]["reaches_joint_level"]
    joint_map = report["gradmap"]["reaches_joint_level"]
    cost_hit = _first_at_or_below(map_, {"cost": levels["cost"]})
    report["gradmap"]["reaches_cost_level"] = cost_hit
    report["speedup"] = {
        "joint": round(joint_ma["wall_s"] / joint_map["wall_s"], 2)
        if joint_ma and joint_map
        else None,
        "cost_only": round(report["gradma"]["wall_s"] / cost_hit["wall_s"], 2)
        if cost_hit
        else None,
        "equal_dual_steps": round(
            report["gradma"]["wall_s"] / report["gradmap"]["wall_s"], 2
        ),
    }
    return report


_KEPT = (
    "step",
    "dual_step",
    "wall_s",
    "cost",
    "voltage_violation",
    "battery_terminal",
    "heat_pump_terminal",
    "lambda_voltage",
    "failed_episodes",
    "inner_steps_made",
    "lr_scale",
    "beta",
    "trust_region_d",
)


def _write(f, report: dict, runs: dict[str, list[dict]]) -> None:
    """The report readable; of the per-step metrics, those in `_KEPT`, one row a line
    at six significant digits (the file stays small enough to commit)."""
    rows = {
        name: [{k: float(f"{r[k]:.6g}") for k in _KEPT if k in r} for r in run]
        for name, run in runs.items()
    }
    text = json.dumps(report, indent=1)[:-2]
    body = ",\n".join(
        f' "{name}": [\n' + ",\n".join("  " + json.dumps(r) for r in run) + "\n ]"
        for name, run in rows.items()
    )
    f.write(text + ',\n "metrics": {\n' + body + "\n }\n}\n")


def reanalyse(path: str) -> dict:
    with open(path) as f:
        stored = json.load(f)
    report = {
        "command": stored["command"],
        "feeder": stored["feeder"],
        "agents": stored["agents"],
        **analyse(stored["metrics"]),
    }
    with open(path, "w") as f:
        _write(f, report, stored["metrics"])
    print(json.dumps(report, indent=1))
    return report


def compare(feeder: str, agents: int, seed: int, out: str, overrides: dict) -> dict:
    import jax

    import gridflex as gf
    from gridflex.env import make_environment
    from gridflex.plots import plot_training_curves
    from gridflex.training import fit, GradMA, GradMAP

    env = make_environment(getattr(gf.feeders, feeder)(), agents, seed=seed)
    runs = {}
    for name, trainer in (
        ("gradma", GradMA(**overrides.get("gradma", {}))),
        ("gradmap", GradMAP(**overrides.get("gradmap", {}))),
    ):
        t0 = time.perf_counter()
        result = fit(env, trainer, key=jax.random.key(seed), progress=True)
        runs[name] = result.metrics
        print(
            f"{name}: {len(result.metrics)} steps in {time.perf_counter() - t0:.1f} s"
        )
    report = {
        "command": "python benchmarks/trainers.py " + " ".join(sys.argv[1:]),
        "feeder": feeder,
        "agents": agents,
        **analyse(runs),
    }
    os.makedirs(out, exist_ok=True)
    stem = os.path.join(out, f"trainers_{feeder}_{agents}")
    with open(stem + ".json", "w") as f:
        _write(f, report, runs)
    plot_training_curves(runs, stem + ".png", keys=("cost", "voltage_violation"))
    print(json.dumps(report, indent=1))
    return report


def one_scale_point(feeder: str, agents: int, batch: int, steps: int) -> dict:
    import equinox as eqx
    import jax

    import gridflex as gf
    from gridflex.env import make_environment
    from gridflex.training import GradMAP

    env = make_environment(getattr(gf.feeders, feeder)(), agents, seed=0)
    trainer = GradMAP(batch=batch, minibatch=min(64, batch))
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
    return {
        "batch": batch,
        "first_step_s": round(first, 2),
        "seconds_per_primal_step": round(per_step, 2),
        "peak_rss_mb": round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        ),
        "failed_episodes": float(m["failed_episodes"]),
    }


def scale(feeder: str, agents: int, batches: list[int], steps: int, out: str) -> dict:
    points = []
    for b in batches:
        cmd = [sys.executable, __file__, "--point", f"{feeder}:{agents}:{b}:{steps}"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            print(done.stderr[-2000:], file=sys.stderr)
            continue
        points.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(points[-1], flush=True)
    b = np.array([p["batch"] for p in points], dtype=float)
    mem = np.array([p["peak_rss_mb"] for p in points])
    slope, intercept = np.polyfit(b, mem, 1) if len(points) > 1 else (np.nan, np.nan)
    report = {
        "command": "python benchmarks/trainers.py " + " ".join(sys.argv[1:]),
        "feeder": feeder,
        "agents": agents,
        "points": points,
        "memory_mb_per_episode": round(float(slope), 2),
        "memory_mb_fixed": round(float(intercept), 1),
        "batch_fitting_48gb": int((48 * 1024 - intercept) / slope)
        if slope > 0
        else None,
    }
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"scale_{feeder}_{agents}.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(report, indent=1))
    return report


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--case", default="ieee13:10", help="feeder:agents")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale-only", action="store_true")
    p.add_argument("--batches", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--steps", type=int, default=3, help="timed steps per scale point")
    p.add_argument("--point", help=argparse.SUPPRESS)
    p.add_argument("--reanalyse", metavar="FILE", help="recompute a stored comparison")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="TRAINER.KEY=VALUE",
        help="override a trainer setting for the comparison, e.g. gradma.batch=100",
    )
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = p.parse_args(argv)
    if args.point:
        feeder, agents, batch, steps = args.point.split(":")
        print(json.dumps(one_scale_point(feeder, int(agents), int(batch), int(steps))))
        return 0
    if args.reanalyse:
        reanalyse(args.reanalyse)
        return 0
    feeder, agents = args.case.split(":")
    if args.scale_only:
        scale(feeder, int(agents), args.batches, args.steps, args.out)
        return 0
    overrides: dict = {}
    for item in args.set:
        key, value = item.split("=", 1)
        trainer, field = key.split(".", 1)
        overrides.setdefault(trainer, {})[field] = json.loads(value)
    compare(feeder, int(agents), args.seed, args.out, overrides)
    return 0


if __name__ == "__main__":
    sys.exit(main())
