"""benchmarks/scale.py's memory fit. (Its points time `trainers.timed_steps`, which
the five-method benchmark's end-to-end test runs; a grid point's own subprocess is
not run here, to keep the suite inside its budget.)"""

import pytest

from .helpers import load_benchmark


def test_memory_fit_recovers_a_line():
    scale = load_benchmark("scale")
    points = [
        {"method": "m", "homes": 10, "batch": b, "peak_memory_mb": 500.0 + 3.0 * b}
        for b in (8, 16, 32)
    ]
    (fit,) = scale.fit_memory(points, device_gb=1.0)
    assert fit["memory_mb_per_episode"] == 3.0 and fit["memory_mb_fixed"] == 500.0
    assert fit["batch_fitting_1gb"] == int((1024 - 500) / 3)


def test_memory_is_fitted_per_device_count():
    points = [
        {"method": "m", "homes": 10, "batch": b, "devices": d, "peak_memory_mb": m}
        for d, per in ((1, 3.0), (2, 1.5))
        for b in (8, 16, 32)
        for m in (500.0 + per * b,)
    ]
    fits = load_benchmark("scale").fit_memory(points, device_gb=1.0)
    assert [f["devices"] for f in fits] == [1, 2]
    assert [f["memory_mb_per_episode"] for f in fits] == [3.0, 1.5]


def test_a_device_count_below_one_or_with_full_is_refused(capsys):
    scale = load_benchmark("scale")
    for argv in (["--devices", "0"], ["--full", "--devices", "2"]):
        with pytest.raises(SystemExit) as e:
            scale.main(argv)
        assert e.value.code == 2
    err = capsys.readouterr().err
    assert "--devices 0: give 1 or more" in err
    assert "--devices is for the grid" in err
