"""Seconds per primal step and peak memory against the number of homes and episodes,
on whatever devices JAX finds (CPU, one GPU, several), and the paper's main case
trained in full.

    python benchmarks/scale.py                                   # the default grid
    python benchmarks/scale.py --homes 10 100 1000 5000 --batches 8 16 --methods gradmap
    python benchmarks/scale.py --full --batch 500                # GPU: IEEE 123 / 1,000

Grid: every (method, homes, batch) point runs in its own process (so its peak memory
is its own), its episodes spread over all local devices as `gridflex train` spreads
them (`--devices N`: the first N): the environment (IEEE 123 by default, homes
placed with seed 0, `taps="homes"`), the trainer with its defaults but the batch,
one primal step with compilation, then `--steps` warm ones. Reported per point:
seconds per warm primal step, the first step (compilation included), peak memory
(the largest device's peak bytes in use where the backend reports it, GPUs; the
process's peak resident set on CPU), the devices used, and failed episodes. From the
points, per method and number of homes, memory per episode and fixed memory (a
least-squares line over the batches), and the batch that fits a given device memory.

`--full`: GradMAP and GradMA trained on IEEE 123 / 1,000 homes at `--batch`
(the paper's 500 by default) with Table I schedules, by `benchmarks/trainers.py`'s
protocol (its runs, checkpoints and report: time to the symmetric joint target, both
directions, seconds per step measured apart). On this 2-core CPU only small batches
are affordable; on a GPU this is the paper's main experiment.

Results: `benchmarks/results/scale_<platform>.json` (and `scale_full_...` through
trainers.py). The figures in `docs/benchmarks.md` and `docs/scaling-out.md` carry
the command that made them.
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trainers as two  # noqa: E402  (runs, timing and the protocol's analysis)


def _peak_memory_mb(devices: int) -> tuple[float, str]:
    """The largest peak bytes in use over the first `devices` local devices (those
    a point's mesh uses) where reported (GPUs), else this process's peak resident set
    (CPU)."""
    import resource

    import jax

    stats = [d.memory_stats() or {} for d in jax.local_devices()[:devices]]
    if all("peak_bytes_in_use" in s for s in stats):
        what = "device peak bytes in use"
        if len(stats) > 1:
            what += f", the largest of the {len(stats)} devices used"
        return max(s["peak_bytes_in_use"] for s in stats) / 2**20, what
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process RSS"


def point(
    feeder: str,
    homes: int,
    method: str,
    batch: int,
    steps: int,
    devices: int | None = None,
) -> dict:
    """One grid point, in this process, its episodes spread over `devices` as `fit`
    spreads them (default: all local devices, or the most of them that divide the
    batch)."""
    import jax

    from gridflex.training import TRAINERS

    env = two._environment(f"{feeder}:{homes}", 0)
    trainer = TRAINERS[method](batch=batch)
    figures, _ = two.timed_steps(env, trainer, steps, devices)
    peak, what = _peak_memory_mb(figures["devices"])
    figures.pop("peak_rss_mb", None)
    return {
        "method": method,
        "feeder": feeder,
        "homes": homes,
        "batch": batch,
        **figures,
        "peak_memory_mb": round(peak, 1),
        "memory_measure": what,
        "platform": jax.default_backend(),
        "devices_visible": jax.device_count(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


def fit_memory(points: list[dict], device_gb: float) -> list[dict]:
    """Per method, homes and devices used: memory per episode and fixed memory (least
    squares over the batches; per device, the largest, where there are several), and
    the batch that fits `device_gb`."""
    out = []

    def group(p: dict) -> tuple:
        return p["method"], p["homes"], p.get("devices", 1)

    for key in sorted({group(p) for p in points}):
        rows = [p for p in points if group(p) == key]
        if len(rows) < 2:
            continue
        b = np.array([p["batch"] for p in rows], float)
        mem = np.array([p["peak_memory_mb"] for p in rows])
        slope, fixed = np.polyfit(b, mem, 1)
        out.append(
            {
                "method": key[0],
                "homes": key[1],
                "devices": key[2],
                "memory_mb_per_episode": round(float(slope), 2),
                "memory_mb_fixed": round(float(fixed), 1),
                f"batch_fitting_{device_gb:g}gb": int(
                    (device_gb * 1024 - fixed) / slope
                )
                if slope > 0
                else None,
            }
        )
    return out


def grid(args) -> dict:
    points = []
    for method in args.methods:
        for homes in args.homes:
            for batch in args.batches:
                cmd = [sys.executable, __file__, "--point", args.feeder]
                cmd += [str(homes), method, str(batch), str(args.steps)]
                cmd += [str(args.devices or 0)]
                done = subprocess.run(cmd, capture_output=True, text=True)
                if done.returncode:
                    print(
                        f"{method} {homes} homes batch {batch} failed:\n"
                        + done.stderr[-2000:],
                        file=sys.stderr,
                    )
                    continue
                points.append(json.loads(done.stdout.strip().splitlines()[-1]))
                p = points[-1]
                print(
                    f"{method:8s} {homes:5d} homes  batch {batch:4d}: "
                    f"{p['seconds_per_primal_step']:8.2f} s/step (first "
                    f"{p['first_step_s']:.1f} s), peak {p['peak_memory_mb']:.0f} MB, "
                    f"failed episodes {p['failed_episodes']:g}",
                    flush=True,
                )
    if not points:
        raise SystemExit("no point ran; see the errors above")
    platform = points[0]["platform"]
    out = {
        "command": "python benchmarks/scale.py " + " ".join(sys.argv[1:]),
        "commit": two.commit(),
        "platform": platform,
        "devices": max(p["devices"] for p in points),
        "points": points,
        "memory": fit_memory(points, args.device_gb),
    }
    name = f"scale_{platform}{'_' + args.tag if args.tag else ''}.json"
    os.makedirs(args.results, exist_ok=True)
    with open(os.path.join(args.results, name), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(json.dumps(out["memory"], indent=1))
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--feeder", default="ieee123")
    p.add_argument("--homes", type=int, nargs="+", default=[10, 100, 1000, 5000])
    p.add_argument("--batches", type=int, nargs="+", default=[8, 16])
    p.add_argument("--methods", nargs="+", default=["gradmap", "gradma"])
    p.add_argument("--steps", type=int, default=3, help="warm steps timed per point")
    p.add_argument("--device-gb", type=float, default=48.0, help="for the fit")
    p.add_argument("--tag", help="suffix of the result file")
    p.add_argument("--results", default=two.RESULTS)
    p.add_argument("--full", action="store_true", help="IEEE 123 / 1,000 trained")
    p.add_argument("--batch", type=int, default=500, help="episodes for --full")
    p.add_argument(
        "--devices",
        type=int,
        help="spread each batch over the first N local devices (default: all of "
        "them, or the most that divide it, as `gridflex train`)",
    )
    p.add_argument("--point", nargs=6, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.devices is not None and args.devices < 1:
        p.error(f"--devices {args.devices}: give 1 or more")
    if args.full and args.devices is not None:
        p.error("--devices is for the grid; --full trains as `gridflex train` does")
    if args.point:
        feeder, homes, method, batch, steps, devices = args.point
        figures = point(
            feeder, int(homes), method, int(batch), int(steps), int(devices) or None
        )
        print(json.dumps(figures))
        return 0
    if args.full:
        # trainers.py's protocol on the paper's main case: each run (resumable),
        # the step timing, then the report.
        run = [sys.executable, two.__file__, "--case", "ieee123:1000"]
        run += [] if args.batch == 500 else ["--batch", str(args.batch)]
        for method in two.METHODS:
            subprocess.run(run + ["--only", f"{method}:0"], check=True)
        subprocess.run(run + ["--timing"], check=True)
        subprocess.run(run + ["--seeds", "0", "--report"], check=True)
        return 0
    grid(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
