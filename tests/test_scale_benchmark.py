"""benchmarks/scale.py's memory fit. (Its points time `trainers.timed_steps`, which
the five-method benchmark's end-to-end test runs; a grid point's own subprocess is
not run here, to keep the suite inside its budget.)"""

import pathlib
import sys


BENCHMARKS = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


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
