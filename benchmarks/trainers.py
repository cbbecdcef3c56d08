"""GradMAP against GradMA in wall-clock, in one run on one machine (paper §V-C).

    python benchmarks/trainers.py --case ieee13:10
    python benchmarks/trainers.py --case european_lv_reduced:100
    python benchmarks/trainers.py --case ieee123:1000 --scale-only --batches 8 16 32

For each case both trainers run with their defaults (paper Table I: batch 500, N_d 20,
N_p 10 for GradMAP and 60 for GradMA) from the same seed, one after the other in this
process. GradMA's final training cost level is the mean cost per episode over its last
10 % of primal steps; GradMAP reaches it at the first primal step where its cost,
averaged over the last 10 steps, is at or below that level. The speed-up is GradMA's
total training wall-clock over GradMAP's wall-clock at that step. Wall-clock counts
everything from the first call (the first step includes compilation, for both).

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
    ma = np.array([r["cost"] for r in runs["gradma"]])
    map_cost = np.array([r["cost"] for r in runs["gradmap"]])
    map_wall = np.array([r["wall_s"] for r in runs["gradmap"]])
    tail = max(1, len(ma) // 10)
    level = float(ma[-tail:].mean())
    smoothed = _smooth(map_cost, 10)
    reached = np.flatnonzero(smoothed <= level)
    gradma_wall = float(runs["gradma"][-1]["wall_s"])
    report = {
        "command": "python benchmarks/trainers.py " + " ".join(sys.argv[1:]),
        "feeder": feeder,
        "agents": agents,
        "gradma": {
            "primal_steps": len(ma),
            "wall_s": gradma_wall,
            "final_cost_level": level,
            "first_cost": float(ma[0]),
        },
        "gradmap": {
            "primal_steps": len(map_cost),
            "wall_s": float(map_wall[-1]),
            "final_cost": float(_smooth(map_cost, 10)[-1]),
            "first_cost": float(map_cost[0]),
        },
    }
    if reached.size:
        i = int(reached[0])
        report["gradmap"]["reaches_gradma_level_at_step"] = i + 1
        report["gradmap"]["reaches_gradma_level_at_s"] = float(map_wall[i])
        report["speedup_wall_clock"] = round(gradma_wall / float(map_wall[i]), 2)
    else:
        report["gradmap"]["reaches_gradma_level_at_step"] = None
        report["speedup_wall_clock"] = None
    os.makedirs(out, exist_ok=True)
    stem = os.path.join(out, f"trainers_{feeder}_{agents}")
    with open(stem + ".json", "w") as f:
        json.dump({**report, "metrics": runs}, f, indent=1)
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
