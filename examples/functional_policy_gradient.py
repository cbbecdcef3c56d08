"""An outside-style training loop on gridflex's functional environment: ten homes on
IEEE 13, each with its own policy, trained by independent policy gradient.

    python examples/functional_policy_gradient.py

This is how a JAX MARL library drives gridflex: `reset_arrays` and `step_arrays`
are pure functions, so a whole batch of days is one `jit(vmap(scan(step)))`, and the
learner sees only observations, actions and rewards (no environment gradient; for
that see `MultiAgentGrid.action_gradient`). Each home's policy is a Gaussian with a
linear mean on its own 8 observations; the update is REINFORCE with each agent's
reward-to-go, baselined by its mean over the batch at that step.
"""

import jax
import jax.numpy as jnp
import optax

import gridflex as gf
from gridflex.env import make_environment
from gridflex.marl import MultiAgentGrid


def init_params(key, n_agents: int, obs_dim: int = 8) -> dict:
    return {
        "w": 0.01 * jax.random.normal(key, (n_agents, obs_dim)),
        "b": jnp.zeros(n_agents),
        "log_std": jnp.full(n_agents, -1.0),
    }


def mean_action(params, obs):  # obs [agent, obs] -> mu [agent]
    return jnp.einsum("ao,ao->a", params["w"], obs) + params["b"]


def log_prob(params, obs, a):
    std = jnp.exp(params["log_std"])
    z = (a - mean_action(params, obs)) / std
    return -0.5 * z**2 - params["log_std"] - 0.5 * jnp.log(2 * jnp.pi)


def make_functions(grid: MultiAgentGrid, episodes: int):
    n_steps = grid.env.config.n_steps

    def one_day(params, key):
        k_reset, k_act = jax.random.split(key)
        obs, state = grid.reset_arrays(k_reset)

        def body(carry, k):
            obs, state = carry
            std = jnp.exp(params["log_std"])
            a = mean_action(params, obs) + std * jax.random.normal(k, std.shape)
            next_obs, state, reward, _, info = grid.step_arrays(state, a)
            out = (obs, a, reward, jnp.sum(info["cost"]), info["voltage_violation_pu"])
            return (next_obs, state), out

        keys = jax.random.split(k_act, n_steps)
        _, (obs, a, reward, cost, violation) = jax.lax.scan(body, (obs, state), keys)
        return obs, a, reward, jnp.sum(cost), jnp.sum(violation)

    @jax.jit
    def collect(params, key):
        keys = jax.random.split(key, episodes)
        return jax.vmap(one_day, in_axes=(None, 0))(params, keys)

    def loss(params, obs, a, adv):
        lp = jax.vmap(jax.vmap(log_prob, in_axes=(None, 0, 0)), in_axes=(None, 0, 0))(
            params, obs, a
        )
        return -jnp.mean(jnp.sum(lp * adv, axis=(1, 2)))

    return collect, jax.jit(jax.value_and_grad(loss))


def main(iterations: int = 40, episodes: int = 32, seed: int = 0) -> list[dict]:
    env = make_environment(gf.feeders.ieee13(taps="homes"), 10, seed=seed)
    grid = MultiAgentGrid(env, {"voltage": 50.0})
    collect, loss_and_grad = make_functions(grid, episodes)
    params = init_params(jax.random.key(seed), env.n_agents)
    optimiser = optax.adam(1e-2)
    opt_state = optimiser.init(params)
    key = jax.random.key(seed + 1)
    history = []
    for i in range(iterations):
        key, k = jax.random.split(key)
        obs, a, reward, cost, violation = collect(params, k)
        to_go = jnp.cumsum(reward[:, ::-1], axis=1)[:, ::-1]  # [episode, step, agent]
        adv = to_go - jnp.mean(to_go, axis=0, keepdims=True)
        adv = adv / (jnp.std(adv, axis=0, keepdims=True) + 1e-8)
        _, grads = loss_and_grad(params, obs, a, adv)
        updates, opt_state = optimiser.update(grads, opt_state)
        params = optax.apply_updates(params, updates)
        history.append(
            {
                "iteration": i,
                "return": float(jnp.mean(jnp.sum(reward, axis=(1, 2)))),
                "cost": float(jnp.mean(cost)),
                "violation": float(jnp.mean(violation)),
            }
        )
        if i % 10 == 0 or i == iterations - 1:
            h = history[-1]
            print(
                f"iteration {i:3d}: return {h['return']:9.1f}  cost {h['cost']:8.1f} "
                f"GBP/day  voltage violation {h['violation']:.3f} pu.steps"
            )
    return history


if __name__ == "__main__":
    main()
