"""Placement, the differentiable day, and the chained out-of-sample evaluation."""

import dataclasses
import functools
import json
import re

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gridflex as gf
from gridflex.env import (
    EnvConfig,
    make_environment,
    NaiveController,
    OpenLoopController,
    place_homes,
)
from gridflex.evaluation import evaluate, naive_evaluation


# --- placement -----------------------------------------------------------------------


def test_placement_is_proportional_and_seeded():
    f = gf.feeders.ieee123()
    p = place_homes(f, 1000, seed=3)
    weight, _ = gf.env.spot_load_kva(f)
    counts = np.bincount(p.node, minlength=f.n_nodes)
    expected = 1000 * weight / weight.sum()
    assert np.all(np.abs(counts - expected) < 1)  # largest remainder: within one
    assert set(p.replaced) == set(f.loads.names) and not p.kept
    assert p.feeder.loads.n_loads == 0
    assert set(p.node.tolist()) <= set(p.feeder.injection_nodes)
    again = place_homes(f, 1000, seed=3)
    other = place_homes(f, 1000, seed=4)
    assert np.array_equal(again.node, p.node)
    assert not np.array_equal(other.node, p.node)
    assert np.array_equal(np.sort(other.node), np.sort(p.node))
    table = p.table()
    assert list(table.columns) == ["home", "bus", "phase", "node", "scale"]
    assert table.node.iloc[0] == f.node_names[p.node[0]]


def test_delta_spot_loads_split_over_their_phases():
    f = gf.feeders.ieee13()
    weight, owners = gf.env.spot_load_kva(f)
    # Load 671 is a 1155 kW + j660 kvar delta load: a third per phase pair, half of
    # each pair at each of its two nodes -> a third of |S| per node.
    third = abs(1155 + 660j) / 3
    for phase in (1, 2, 3):
        i = int(f.node_index(f"671.{phase}")[0])
        assert weight[i] == pytest.approx(third)
        assert owners[i] == {"671"}


def test_agents_stand_for_aggregates_on_medium_voltage_only():
    mv = place_homes(gf.feeders.ieee13(), 10, home_peak_kw=5.0)
    # 100 homes peaking at 5 kW on 55 loads of about 1 kW: warned, with the figures
    # (the spot load summed from the feeder's own data; 0.526 kVA is the median
    # home's share of the spot load it stands on, a load's kVA over its homes)
    total_kva = float(np.sum(gf.env.spot_load_kva(gf.feeders.european_lv_reduced())[0]))
    figures = f"500 kW in all, {500 / total_kva:.1f}x the {total_kva:.2f} kVA"
    with pytest.warns(
        gf.env.PlacementWarning,
        match=r"100 homes on the 55 spot loads of 'european_lv_reduced' peak at "
        + re.escape(figures)
        + r" of spot load they replace \(median home: peak 5 kW, replaces "
        r"0\.526 kVA\): the feeder will carry more load than it was built for",
    ):
        lv = place_homes(gf.feeders.european_lv_reduced(), 100, home_peak_kw=5.0)
    assert np.all(mv.scale > 10)
    assert np.all(lv.scale == 1.0)
    # Homes on every loaded phase of the LV feeder: every spot load is replaced.
    assert not lv.kept
    # Ten homes cannot cover IEEE 13's loaded phases: the rest stay as spot loads.
    assert mv.kept and set(mv.kept) | set(mv.replaced) == set(
        gf.feeders.ieee13().loads.names
    )


def test_placement_errors():
    with pytest.raises(ValueError, match="at least one home"):
        place_homes(gf.feeders.ieee13(), 0)
    with pytest.raises(ValueError, match="no spot loads"):
        place_homes(gf.feeders.ieee13().without_loads(), 5)


# --- the environment ---------------------------------------------------------------

EXACT = gf.powerflow.ZBus(rtol=1e-14, atol=1e-14)
EPISODES = 2


@functools.cache
def env():
    return make_environment(gf.feeders.ieee13(), 10, seed=0, solver=EXACT)


def _lambdas(e, value=1.0):
    return {c: jnp.asarray(value) for c in e.channels}


@functools.cache
def lagrangian_fn(chunk: int | None = None):
    e = env()
    if chunk is not None:
        e = eqx.tree_at(lambda x: x.config, e, EnvConfig(episode_chunk=chunk))

    @eqx.filter_jit
    def L(actions, lambdas):
        r = e.rollout(
            OpenLoopController(actions),
            lambdas,
            jax.random.key(7),
            jnp.arange(EPISODES) * 40,
            randomise_initial=True,
            shift=None,
        )
        return r.lagrangian

    return L


def test_a_home_listed_twice_in_a_device_group_is_refused():
    # the groups' gathers and scatters declare unique indices (a wrong answer, not
    # an error, if a home appeared twice), so construction refuses it
    e = env()
    kind, homes = e.group_homes[0]
    twice = ((kind, (homes[0], *homes)), *e.group_homes[1:])
    with pytest.raises(ValueError, match=f"kind '{kind}' lists a home twice"):
        dataclasses.replace(e, group_homes=twice)
    same = dataclasses.replace(e, group_homes=e.group_homes)
    assert same.group_homes == e.group_homes


def _actions(seed):
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.1, 0.8, (96, env().n_agents)) * rng.choice([-1, 1], (96, 10))
    return jnp.asarray(a)


def test_rollout_gradient_matches_finite_differences():
    e = env()
    L = lagrangian_fn()
    grad = eqx.filter_jit(jax.grad(L))
    a = _actions(0)
    lam = _lambdas(e, 2.0)
    g = grad(a, lam)
    assert np.all(np.isfinite(np.asarray(g)))
    rng = np.random.default_rng(1)
    g_norm = float(jnp.linalg.norm(g))
    directions = [g / g_norm] + [
        jnp.asarray(rng.standard_normal(a.shape)) for _ in range(2)
    ]
    h = 1e-6
    for d in directions:
        fd = (float(L(a + h * d, lam)) - float(L(a - h * d, lam))) / (2 * h)
        directional = float(jnp.sum(g * d))
        scale = g_norm * float(jnp.linalg.norm(d))
        assert abs(directional - fd) <= 1e-5 * max(abs(fd), 1e-3 * scale), (
            directional,
            fd,
        )


def test_lagrangian_is_cost_plus_weighted_channels():
    e = env()
    a = _actions(2)
    base = float(lagrangian_fn()(a, _lambdas(e, 0.0)))
    r = eqx.filter_jit(e.rollout)(
        OpenLoopController(a),
        _lambdas(e, 0.0),
        jax.random.key(7),
        jnp.arange(EPISODES) * 40,
    )
    assert base == pytest.approx(e.config.cost_weight * float(r.cost) / e.cost_norm)
    for c in e.channels:
        lam = _lambdas(e, 0.0) | {c: jnp.asarray(3.0)}
        value = float(lagrangian_fn()(a, lam))
        assert value - base == pytest.approx(
            3.0 * e.n_agents * float(r.channels[c]), rel=1e-9, abs=1e-9
        )
    assert float(r.channels["voltage"]) > 0  # there are violations to weigh


def test_unconstrained_voltage_is_measured_but_not_weighted():
    e = eqx.tree_at(lambda x: x.config, env(), EnvConfig(voltage_constraint=False))
    a = _actions(3)
    rollout = eqx.filter_jit(e.rollout)
    runs = [
        rollout(
            OpenLoopController(a),
            _lambdas(e, 0.0) | {"voltage": jnp.asarray(v)},
            jax.random.key(7),
            jnp.arange(EPISODES) * 40,
        )
        for v in (0.0, 10.0)
    ]
    assert float(runs[0].lagrangian) == float(runs[1].lagrangian)
    assert float(runs[0].channels["voltage"]) > 0


def test_kept_spot_loads_follow_the_household_profile():
    e = env()
    assert e.placement.kept  # ten homes leave some of IEEE 13's spot loads in place
    scale = np.asarray(e.kept_load_scale(jnp.arange(e.train.n_days)))
    # the mean household profile, peaking (at its 99th percentile over the training
    # days) at the spot value, never a constant peak all day
    assert np.quantile(scale, e.config.peak_quantile) == pytest.approx(1.0, rel=1e-6)
    assert np.all(scale > 0) and np.all(scale.max(axis=1) / scale.min(axis=1) > 1.5)
    # ... and the environment's power flows use it: rebuild one step's solve
    day, t = 40, 70
    r = eqx.filter_jit(e.rollout)(
        OpenLoopController(_actions(5)),
        _lambdas(e, 0.0),
        jax.random.key(7),
        jnp.asarray([day]),
        randomise_initial=False,
        record=True,
    )
    data = e.train.episode(jnp.asarray([day]))
    home = np.asarray(e.placement.scale)
    load = home * np.asarray(data.load_kw[0, t])
    net = (
        np.asarray(r.episodes.trace.p_kw[0, t])
        + load
        - home * np.asarray(data.pv_kw[0, t])
    )
    tan_phi = np.tan(np.arccos(e.config.load_pf))
    p = np.zeros(e.feeder.n_nodes)
    q = np.zeros(e.feeder.n_nodes)
    np.add.at(p, e.placement.node, net)
    np.add.at(q, e.placement.node, load * tan_phi)

    def v_max(kept):
        ones = np.full(e.feeder.loads.n_loads, kept)
        return float(gf.power_flow(e.feeder, p, q, load_scale=ones).v_pu.max())

    recorded = float(r.episodes.trace.v_max_pu[0, t])
    assert recorded == pytest.approx(v_max(scale[day, t]), abs=1e-9)
    assert abs(recorded - v_max(1.0)) > 1e-3


def test_chunked_episodes_equal_one_batch():
    e = env()
    a = _actions(4)
    lam = _lambdas(e, 1.0)
    whole = float(lagrangian_fn()(a, lam))
    chunked = float(lagrangian_fn(1)(a, lam))
    assert chunked == pytest.approx(whole, rel=1e-12)


def test_naive_rule_and_observations():
    e = env()
    r = eqx.filter_jit(e.rollout)(
        NaiveController(),
        _lambdas(e, 0.0),
        jax.random.key(0),
        jnp.arange(EPISODES),
        randomise_initial=False,
        record=True,
    )
    tr = r.episodes.trace
    assert tr is not None and tr.obs is not None
    p = np.asarray(tr.p_kw)  # [episode, step, agent]
    rating = np.asarray(e.ratings_kw())
    for k in e.kinds:
        homes = np.asarray(e.homes(k))
        if k == "battery":
            assert np.all(p[:, :, homes] == 0)
        if k == "generator":  # at full output once ramped up
            full = np.broadcast_to(-rating[homes], p[:, -1, homes].shape)
            np.testing.assert_allclose(p[:, -1, homes], full, rtol=1e-9)
    obs = np.asarray(tr.obs)
    assert obs.shape == (EPISODES, 96, e.n_agents, 8)
    np.testing.assert_allclose(obs[0, :, 0, 0], np.arange(96) / 96)
    for j in (1, 2, 3, 4, 5, 6):  # normalised features stay near [0, 1]
        assert -0.05 <= obs[..., j].min() and obs[..., j].max() <= 1.05, j
    assert int(r.n_failed) == 0
    # The voltage channel is the day's mean of the per-step largest violation, in
    # units of voltage_scale_pu.
    per_day = np.asarray(tr.voltage_violation).mean(axis=1).mean()
    assert per_day > 0
    expected = per_day / e.config.voltage_scale_pu
    assert float(r.channels["voltage"]) == pytest.approx(expected, rel=1e-9)


def test_failed_power_flows_are_masked_and_counted():
    e = env()
    # Day 1 of training gets a load no feeder could carry: its episode fails.
    absurd = e.train.load_profiles_kw.at[:, 1, :].multiply(1e4)
    bad = eqx.tree_at(lambda x: x.train.load_profiles_kw, e, absurd)
    bad = eqx.tree_at(
        lambda x: x.train.day_shift, bad, jnp.zeros_like(e.train.day_shift)
    )

    def L(shift):
        r = bad.rollout(
            NaiveController(),
            _lambdas(bad, 1.0),
            jax.random.key(0),
            jnp.array([0, 1]),
            randomise_initial=False,
            shift=shift,
        )
        return r.lagrangian, r

    shift = jnp.zeros((2, 96, bad.n_agents, 2))
    (value, r), g = eqx.filter_jit(jax.value_and_grad(L, has_aux=True))(shift)
    assert int(r.n_failed) == 1
    assert r.episodes.ok.tolist() == [True, False]
    assert np.isfinite(float(value))
    assert float(value) == pytest.approx(float(r.episodes.lagrangian[0]))
    assert np.all(np.isfinite(np.asarray(g[0])))


def test_non_finite_actions_are_never_free_and_are_counted():
    """A broken policy's NaN or infinite action reaches no device: the home acts as
    at u = 0 (its state stays physical) and the step counts a violation of 1.0 in
    that device's channel; the rollout counts them."""
    e = env()
    a = np.asarray(_actions(3)).copy()
    a[5, 0], a[6, 0], a[7, 1] = np.nan, np.inf, -np.inf
    bad_homes = [0, 0, 1]

    @eqx.filter_jit
    def run(actions):
        return e.rollout(
            OpenLoopController(actions),
            _lambdas(e, 0.0),
            jax.random.key(7),
            jnp.arange(EPISODES) * 40,
            randomise_initial=True,
            shift=None,
        )

    clean = np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0)
    r, r_clean = run(jnp.asarray(a)), run(jnp.asarray(clean))
    assert int(r.n_non_finite_actions) == 3 * EPISODES
    assert int(r_clean.n_non_finite_actions) == 0
    assert np.isfinite(float(r.cost)) and np.isfinite(float(r.lagrangian))
    for leaf in jax.tree_util.tree_leaves(r.episodes.final_state):
        assert np.all(np.isfinite(np.asarray(leaf)))
    # the homes acted as at u = 0: the same cost as the run with those actions at 0
    assert float(r.cost) == pytest.approx(float(r_clean.cost), rel=1e-6)
    # and each bad action put exactly 1.0 / (n_agents * n_steps) more into its
    # device's channel (the mean over episodes of a day's mean over agents and steps)
    kinds = [e.population.kind[h] for h in bad_homes]
    for kind in set(kinds):
        channel = type(e.population.groups[kind]).step_channel
        floor = kinds.count(kind) / (e.n_agents * e.config.n_steps)
        added = float(r.channels[channel]) - float(r_clean.channels[channel])
        assert added == pytest.approx(floor, rel=1e-4)


# --- evaluation ----------------------------------------------------------------------


@pytest.mark.slow
def test_evaluation_chains_the_days():
    e = env()
    charge = OpenLoopController(jnp.full((96, e.n_agents), 0.6))
    both = evaluate(e, charge, days=2)
    # By hand: day 1 starts where day 0 ended.
    lam, key = e.zero_lambdas(), jax.random.key(0)
    start = jax.tree.map(lambda x: x[None], e.initial_state())

    def day(d, state):
        return e.rollout(
            charge, lam, key, jnp.array([d]), split="test", initial_state=state
        ).episodes

    day0 = day(0, start)
    chained, fresh = day(1, day0.final_state), day(1, start)
    np.testing.assert_allclose(
        both.daily_cost, [day0.cost[0], chained.cost[0]], rtol=1e-9
    )
    assert abs(float(chained.cost[0]) - float(fresh.cost[0])) > 1e-6


def test_naive_evaluation_reports_what_the_cli_writes(tmp_path):
    from gridflex.cli import main

    assert (
        main(
            [
                "evaluate",
                "--method",
                "naive",
                "--feeder",
                "ieee13",
                "--agents",
                "10",
                "--days",
                "3",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "eval.json").read_text())
    for key in (
        "method",
        "feeder",
        "agents",
        "cost_total",
        "voltage_violation_max_pu",
        "voltage_violation_sum_pu",
        "battery_end_violation",
        "heat_pump_end_violation",
    ):
        assert key in report
    assert report["method"] == "naive" and report["agents"] == 10
    ours = naive_evaluation(make_environment(gf.feeders.ieee13(), 10, seed=0), days=3)
    assert report["cost_total"] == pytest.approx(ours.cost_total)
    assert ours.voltage_violation_max_pu > 0 and ours.failed_days == 0
