"""gridflex.marl: the functional environment equals the rollout, its rewards add up
to minus the Lagrangian, its action gradient is the finite difference, and the
PettingZoo environment passes PettingZoo's own API and seed tests."""

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

import gridflex as gf
from gridflex.env import EnvConfig, make_environment, OpenLoopController
from gridflex.marl import GridParallelEnv, MultiAgentGrid, parallel_env

from .helpers import load_example


# Tight limits, so that the voltage channel (and its gradient through the power
# flow) is active at every step, not only at the feeder's extremes.
CONFIG = EnvConfig(v_min_pu=0.99, v_max_pu=1.0)


@functools.cache
def env():
    return make_environment(gf.feeders.ieee13(taps="homes"), 10, seed=0, config=CONFIG)


def lambdas(e):
    return {c: jnp.asarray(0.5 + 3.0 * i) for i, c in enumerate(e.channels)}


@functools.cache
def stepped_days():
    """Two days stepped through `MultiAgentGrid.step_arrays` (jitted, vmapped over
    the days) and rolled out by `Environment.rollout`, with the same raw actions
    (some beyond [-1, 1]) and nominal start-of-day states."""
    e = env()
    grid = MultiAgentGrid(e, lambdas(e), randomise_initial=False)
    days = jnp.array([3, 17])
    n = e.config.n_steps
    actions = 1.3 * jax.random.normal(jax.random.key(0), (2, n, e.n_agents))

    @jax.jit
    @jax.vmap
    def day(d, acts):
        obs0, state = grid.reset_arrays(jax.random.key(1), d)

        def body(state, a):
            obs, state, reward, done, info = grid.step_arrays(state, a)
            return state, (obs, reward, done, info)

        end, out = jax.lax.scan(body, state, acts)
        return obs0, end, out

    stepped = day(days, actions)

    @eqx.filter_jit  # compiled once for both days
    def roll(acts, d):
        return e.rollout(
            OpenLoopController(acts),
            grid.lambdas,
            jax.random.key(2),
            d,
            randomise_initial=False,
            record=True,
        )

    rolled = [roll(actions[i], days[i : i + 1]) for i in range(2)]
    return stepped, rolled


def test_a_stepped_day_equals_the_rollout():
    (obs0, end, (obs, reward, done, info)), rolled = stepped_days()
    for i, r in enumerate(rolled):
        trace = r.episodes.trace
        assert trace is not None and trace.obs is not None
        np.testing.assert_allclose(obs0[i], trace.obs[0, 0], rtol=1e-12)
        # the observation after step t is the one the rollout's policy saw at t + 1
        np.testing.assert_allclose(obs[i, :-1], trace.obs[0, 1:], rtol=1e-10)
        np.testing.assert_allclose(info["cost"][i], trace.cost[0], rtol=1e-10)
        for key in ("v_min_pu", "v_max_pu", "voltage_violation"):
            ours = info["voltage_violation_pu" if key == "voltage_violation" else key]
            np.testing.assert_allclose(ours[i], getattr(trace, key)[0], rtol=1e-10)
        # rewards: minus the per-step shares, the end-of-day terms at the last step
        np.testing.assert_allclose(reward[i], -trace.lagrangian[0], rtol=1e-10)
        for c in ("battery_terminal", "heat_pump_terminal"):
            np.testing.assert_allclose(
                info[c][i, -1], r.episodes.channels[c][0], rtol=1e-10
            )
            assert float(jnp.max(jnp.abs(info[c][i, :-1]))) == 0.0
        assert bool(done[i, -1]) and not bool(jnp.any(done[i, :-1]))
        # the devices' per-step channels, averaged over the day, are the episode's
        for c in ("battery_energy", "heat_pump_temperature"):
            np.testing.assert_allclose(
                jnp.mean(info[c][i]), r.episodes.channels[c][0], rtol=1e-10
            )
        assert int(end.day_state.failed_steps[i]) == 0
        assert int(end.day_state.non_finite_actions[i]) == 0


def test_rewards_sum_to_minus_the_lagrangian():
    (_, _, (_, reward, _, info)), rolled = stepped_days()
    for i, r in enumerate(rolled):
        np.testing.assert_allclose(
            -float(jnp.sum(reward[i])), float(r.episodes.lagrangian[0]), rtol=1e-10
        )
        # every channel carries weight here, the voltage one most of all
        assert float(r.channels["voltage"]) * float(lambdas(env())["voltage"]) > 1.0


@functools.cache
def grid():
    e = env()
    return MultiAgentGrid(e, lambdas(e), randomise_initial=False)


# Compiled once for every test that steps `grid()` (filter_jit caches on the grid's
# structure and static fields).
step_arrays = eqx.filter_jit(MultiAgentGrid.step_arrays)
step_keyed = eqx.filter_jit(MultiAgentGrid.step)


def test_action_gradient_is_the_finite_difference():
    e, grid_ = env(), grid()
    _, state = grid_.reset_arrays(jax.random.key(0), 5)
    a = jnp.linspace(-0.8, 0.8, e.n_agents)
    # One step in, at other actions: stepping twice with the same actions put one
    # home exactly on a kink of its dynamics (the central difference, stable from
    # 1e-4 to 1e-8, averaged two one-sided slopes; AD returns one of them).
    _, state, _, _, _ = step_arrays(grid_, state, jnp.zeros_like(a))
    gradient = eqx.filter_jit(MultiAgentGrid.action_gradient)
    g = gradient(grid_, state, a)

    def total(x):
        return float(jnp.sum(step_arrays(grid_, state, x)[2]))

    eps = 1e-6
    for i in (0, 4, 9):
        step = jnp.zeros_like(a).at[i].set(eps)
        fd = (total(a + step) - total(a - step)) / (2 * eps)
        np.testing.assert_allclose(float(g[i]), fd, rtol=1e-5, atol=1e-9)
    # the power flow's share: without the voltage dual the gradient changes
    alone = gradient(grid_.with_lambdas(lambdas(e) | {"voltage": 0.0}), state, a)
    assert float(jnp.max(jnp.abs(g - alone))) > 1e-3 * float(jnp.max(jnp.abs(g)))


def test_agent_keyed_step_is_the_array_step():
    e, grid_ = env(), grid()
    obs, state = grid_.reset(jax.random.key(3))
    assert list(obs) == [f"home_{i}" for i in range(e.n_agents)]
    acts = {name: jnp.asarray([0.1 * i]) for i, name in enumerate(grid_.agents)}
    obs2, _, rewards, dones, _ = step_keyed(grid_, jax.random.key(4), state, acts)
    ref = step_arrays(grid_, state, jnp.arange(e.n_agents, dtype=float) * 0.1)
    np.testing.assert_allclose(rewards["home_3"], ref[2][3], rtol=1e-12)
    np.testing.assert_allclose(obs2["home_9"], ref[0][9], rtol=1e-12)
    assert set(dones) == set(grid_.agents) | {"__all__"}
    with pytest.raises(ValueError, match="no action for home_9"):
        grid_.from_dict({a: 0.0 for a in grid_.agents[:-1]})
    with pytest.raises(ValueError, match="unknown channel"):
        grid_.with_lambdas({"voltag": 1.0})


@functools.cache
def pettingzoo_env() -> GridParallelEnv:
    return parallel_env("ieee13", 10, seed=0, lambdas={"voltage": 50.0})


def test_pettingzoo_api():
    parallel_api_test(pettingzoo_env(), num_cycles=200)


def test_pettingzoo_seeding():
    parallel_seed_test(lambda: parallel_env("ieee13", 10, seed=0), num_cycles=20)


def test_pettingzoo_day_and_global_state():
    pz = pettingzoo_env()
    obs, _ = pz.reset(seed=5, options={"day": 7})
    assert obs["home_0"].dtype == np.float32 and obs["home_0"].shape == (8,)
    state = pz.state()
    assert state.shape == (pz.environment.feeder.n_nodes + 4,)
    total, steps, infos = 0.0, 0, {}
    while pz.agents:
        obs, rewards, terms, truncs, infos = pz.step(
            {a: np.zeros(1, np.float32) for a in pz.agents}
        )
        total += sum(rewards.values())
        steps += 1
        assert not any(terms.values())
    assert steps == pz.environment.config.n_steps and all(truncs.values())
    assert set(infos["home_0"]) >= {"cost", "p_kw", "voltage_violation_pu", "ok"}
    assert np.isfinite(total)
    with pytest.raises(RuntimeError, match="before reset"):
        pz.step({a: 0.0 for a in pz.possible_agents})
    with pytest.raises(ValueError, match=r"day must be in \[0, "):
        pz.reset(options={"day": 10_000})
    with pytest.raises(ValueError, match="give one of ieee13"):
        parallel_env("ieee14")


def test_jaxmarl_env_steps_and_resets_itself():
    from jaxmarl.environments.multi_agent_env import MultiAgentEnv

    from gridflex.marl import GridJaxMARLEnv, jaxmarl_env

    grid_ = grid()
    jm = jaxmarl_env(grid_)
    assert isinstance(jm, MultiAgentEnv) and isinstance(jm, GridJaxMARLEnv)
    assert jm.agents == list(grid_.agents) and jm.num_agents == env().n_agents
    n = env().config.n_steps
    key = jax.random.key(0)
    obs, state = jm.reset(key)
    acts = {a: jnp.asarray([0.1]) for a in jm.agents}

    @jax.jit
    def run(state):
        def body(state, k):
            obs, state, rewards, dones, _ = jm.step(k, state, acts)
            return state, (rewards["home_2"], dones["__all__"], state.t)

        return jax.lax.scan(body, state, jax.random.split(key, n + 2))[1]

    rewards, done, t = run(state)
    # the day ends after n steps, and JaxMARL's step starts the next one by itself
    assert bool(done[n - 1]) and int(jnp.sum(done)) == 1
    assert [int(x) for x in t[n - 2 : n + 2]] == [n - 1, 0, 1, 2]
    _, _, ref, _, _ = step_keyed(grid_, key, state, acts)
    np.testing.assert_allclose(rewards[0], ref["home_2"], rtol=1e-12)
    obs4, _ = jax.vmap(jm.reset)(jax.random.split(key, 4))
    assert obs4["home_0"].shape == (4, 8)


def test_pettingzoo_example_runs_a_day():
    # examples/pettingzoo_random.py, as a user runs it (its environment has the shape
    # of `pettingzoo_env()`'s, so it reuses that compilation)
    example = load_example("pettingzoo_random.py")
    summary = example.main(seed=3)
    assert summary["steps"] == 96
    assert np.isfinite(summary["sum_of_rewards"]) and summary["cost"] != 0.0
    # the global state: every node's voltage and four exogenous features
    assert (
        summary["global_state_size"] == pettingzoo_env().environment.feeder.n_nodes + 4
    )
