"""gridflex as a PettingZoo environment: ten homes on IEEE 13 act at random for a day.

    pip install "gridflex[marl]"
    python examples/pettingzoo_random.py

Any PettingZoo-based MARL code drives the environment the same way: a dict of actions
in, dicts of observations, rewards, terminations, truncations and infos out. The
day's rewards sum to minus the Lagrangian at the duals given (here only the voltage
dual is set, so rewards weigh cost against voltage violations).
"""

import numpy as np

from gridflex.marl import parallel_env


def main(seed: int = 0) -> dict[str, float]:
    env = parallel_env("ieee13", agents=10, seed=0, lambdas={"voltage": 50.0})
    observations, infos = env.reset(seed=seed)
    env.action_space("home_0").seed(seed)  # one Box object serves every home
    cost = reward = violation = 0.0
    steps = 0
    while env.agents:
        actions = {agent: env.action_space(agent).sample() for agent in env.agents}
        observations, rewards, terminations, truncations, infos = env.step(actions)
        reward += sum(rewards.values())
        cost += sum(info["cost"] for info in infos.values())
        violation += infos["home_0"]["voltage_violation_pu"]  # the feeder's, shared
        steps += 1
    summary = {
        "steps": steps,
        "cost": round(cost, 2),
        "voltage_violation_pu_steps": round(violation, 4),
        "sum_of_rewards": round(reward, 2),
        "global_state_size": int(np.size(env.state())),
    }
    print(
        f"one day, {len(env.possible_agents)} homes acting at random: cost "
        f"{summary['cost']} GBP, voltage violation "
        f"{summary['voltage_violation_pu_steps']} pu.steps, summed reward "
        f"{summary['sum_of_rewards']}"
    )
    return summary


if __name__ == "__main__":
    main()
