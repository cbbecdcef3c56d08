"""`opendss_crosscheck`: a policy's held-out day with OpenDSS solving each step."""

import jax
import numpy as np
import pytest

import gridflex as gf
from gridflex.env import make_environment, NaiveController, PolicyController
from gridflex.evaluation import evaluate, opendss_crosscheck
from gridflex.policies import GaussianMLPPolicy


def test_policy_day_in_opendss_agrees_with_gridflex():
    """IEEE 13 with 10 homes (spot loads replaced, the others following the day),
    an untrained policy acting with its mean: OpenDSS's voltages equal gridflex's at
    every node and step, and the day's voltage figures equal `evaluate`'s."""
    env = make_environment(gf.feeders.ieee13(), 10, seed=0)
    policy = GaussianMLPPolicy.init(jax.random.key(3), env.n_agents)
    controller = PolicyController(policy, deterministic=True)
    check = opendss_crosscheck(env, controller, taps="regulated")
    assert check.step_difference_pu.shape == (env.config.n_steps,)
    assert check.max_difference_pu <= 1e-6
    ours = evaluate(env, controller, days=1)
    # the environment's own solves stop at its default tolerance
    np.testing.assert_allclose(
        check.voltage_violation_sum_pu, ours.voltage_violation_sum_pu, atol=1e-6
    )
    np.testing.assert_allclose(check.v_max_pu, ours.v_max_pu[0], atol=1e-6)
    assert check.cost == pytest.approx(ours.cost_total, rel=1e-12)
    # the day leaves the limits, so the violation figures agreed on are not 0 = 0
    assert check.voltage_violation_sum_pu > 0


def test_crosscheck_refuses_a_day_it_does_not_have():
    env = make_environment(gf.feeders.ieee13(), 10, seed=0)
    with pytest.raises(ValueError, match="held-out split has"):
        opendss_crosscheck(env, NaiveController(), taps="regulated", day=10_000)
    with pytest.raises(ValueError, match="taps='nominal'"):
        opendss_crosscheck(env, NaiveController(), taps="nominal")


def test_cli_crosscheck_writes_its_report(tmp_path):
    import json

    from gridflex.cli import main

    out = tmp_path / "cc"
    args = "evaluate --method naive --feeder ieee13 --agents 10 --days 1"
    assert main([*args.split(), "--crosscheck", "1", "--out", str(out)]) == 0
    report = json.loads((out / "crosscheck.json").read_text())
    assert report["day"] == 1 and report["max_difference_pu"] <= 1e-6
