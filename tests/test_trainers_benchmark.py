"""The protocol of `benchmarks/trainers.py` (rules 3 and 4, and the trade-off check)
on runs made up so that every figure is known by hand."""

import pytest

from .helpers import load_benchmark


@pytest.fixture(scope="module")
def two():
    return load_benchmark("trainers")


def _run(costs, violations):
    return [
        {
            "step": i + 1,
            "wall_s": float(i + 1),
            "cost": float(c),
            "voltage_violation": float(v),
            "failed_episodes": 0.0,
        }
        for i, (c, v) in enumerate(zip(costs, violations))
    ]


def test_a_run_reaches_a_target_when_both_trailing_means_are_below_it(two):
    # The trailing cost mean passes 10 at step 12, the violation's passes 0.5 only
    # at step 30: the joint target counts the later one.
    run = _run([20] * 5 + [5] * 95, [1.0] * 25 + [0.0] * 75)
    hit = two.time_to(run, {"cost": 10.0, "voltage_violation": 0.5}, 2.0)
    assert hit is not None and hit["step"] == 30 and hit["run_s"] == 60.0
    assert two.time_to(run, {"cost": 4.0}, 2.0) is None


def test_speedup_is_the_slower_methods_time_over_the_faster_ones(two):
    # GradMAP at 2 s a step reaches the (common) final level at step 20, when its
    # trailing window holds no step of cost 30; GradMA at 1 s a step at step 200.
    gradmap = _run([30] * 10 + [10] * 90, [0.1] * 100)
    gradma = _run([30] * 190 + [10] * 210, [0.1] * 400)
    seed = two.analyse_seed(
        {"gradma": gradma, "gradmap": gradmap}, {"gradma": 1.0, "gradmap": 2.0}
    )
    assert seed["joint_target"] == {"cost": 10.0, "voltage_violation": 0.1}
    assert seed["methods"]["gradmap"]["reaches_joint_target"]["step"] == 20
    assert seed["methods"]["gradma"]["reaches_joint_target"]["step"] == 200
    assert seed["speedup"]["joint"] == 5.0  # 200 s over 40 s


def test_trade_off_check_finds_the_lowest_cost_at_the_other_methods_violation(two):
    # The final levels split: GradMA ends cheaper (10) but more violating (0.5);
    # GradMAP ends at 12 and 0.2. GradMAP passed violation 0.5 at cost 11 on its way;
    # GradMA never gets to 0.2.
    gradmap = _run(
        [20] * 20 + [11] * 30 + [12] * 50, [1.0] * 20 + [0.5] * 30 + [0.2] * 50
    )
    gradma = _run([10] * 100, [0.5] * 100)
    seed = two.analyse_seed(
        {"gradma": gradma, "gradmap": gradmap}, {"gradma": 1.0, "gradmap": 1.0}
    )
    at = {
        m: seed["methods"][m]["context_at_other_final_violation"]
        for m in seed["methods"]
    }
    assert at["gradma"] == {"lowest_cost": None, "other_final_cost": 12.0}
    assert at["gradmap"] == {"lowest_cost": 11.0, "other_final_cost": 10.0}
