"""benchmarks/scale.py runs end to end on a tiny grid and fits memory per episode."""

import json
import pathlib
import sys


BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def test_scale_grid_runs_and_fits_memory(tmp_path):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import scale
    finally:
        sys.path.remove(str(BENCHMARKS))
    # One point (each runs in its own process, compiling): the fit needs two
    # batches and is tested on its own below.
    args = "--feeder ieee13 --homes 4 --batches 2 --methods gradma --steps 1"
    assert scale.main([*args.split(), "--results", str(tmp_path), "--tag", "t"]) == 0
    (path,) = tmp_path.glob("scale_*_t.json")
    out = json.loads(path.read_text())
    (p,) = out["points"]
    assert (p["method"], p["homes"], p["batch"]) == ("gradma", 4, 2)
    assert p["seconds_per_primal_step"] > 0 and p["peak_memory_mb"] > 100
    assert (
        p["failed_episodes"] == 0 and p["first_step_s"] > p["seconds_per_primal_step"]
    )
    assert out["memory"] == [] and out["platform"] == p["platform"]


def test_memory_fit_recovers_a_line():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import scale
    finally:
        sys.path.remove(str(BENCHMARKS))
    points = [
        {"method": "m", "homes": 10, "batch": b, "peak_memory_mb": 500.0 + 3.0 * b}
        for b in (8, 16, 32)
    ]
    (fit,) = scale.fit_memory(points, device_gb=1.0)
    assert fit["memory_mb_per_episode"] == 3.0 and fit["memory_mb_fixed"] == 500.0
    assert fit["batch_fitting_1gb"] == int((1024 - 500) / 3)
