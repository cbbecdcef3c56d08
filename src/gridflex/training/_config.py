"""Run configuration: one nested dict (TOML on disk) -> environment and trainer."""

import dataclasses
from typing import Any

from ..env import EnvConfig, Environment, make_environment
from ..feeders import Feeder
from ._base import AbstractTrainer, PolicyConfig
from ._trainers import GradMA, GradMAP, GradMARPO


TRAINERS: dict[str, type[AbstractTrainer]] = {
    "gradmap": GradMAP,
    "gradma": GradMA,
    "gradma_rpo": GradMARPO,
}
"""Trainer classes by the name `--method` takes."""

_POLICY_KEYS = ("hidden", "activation", "init_log_std")


def _trainer_defaults(cls: type[AbstractTrainer]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # pyright: ignore[reportArgumentType]
        if f.name == "policy":
            policy = PolicyConfig()
            out.update(
                hidden=list(policy.hidden),
                activation=policy.activation,
                init_log_std=policy.init_log_std,
            )
        elif f.default is not dataclasses.MISSING:
            out[f.name] = f.default
    return out


def default_config() -> dict[str, Any]:
    """Every setting of a run, with its default: `[run]`, `[env]`, and one table per
    trainer (only the chosen method's is used)."""
    env = EnvConfig()
    return {
        "run": {
            "feeder": "ieee13",
            # a built-in feeder's regulators: settled for the households' mean net
            # demand (the homes replace the spot loads), not the nominal peak
            "taps": "homes",
            "agents": 10,
            "method": "gradmap",
            "seed": 0,
            "checkpoint_every": 10,
            "eval_days": 0,
        },
        "env": {
            "v_min_pu": env.v_min_pu,
            "v_max_pu": env.v_max_pu,
            "load_pf": env.load_pf,
            "cost_weight": env.cost_weight,
            "voltage_constraint": env.voltage_constraint,
            "voltage_scale_pu": env.voltage_scale_pu,
            "episode_chunk": 0,
        },
        **{name: _trainer_defaults(cls) for name, cls in TRAINERS.items()},
    }


def trainer_from_config(config: dict[str, Any]) -> AbstractTrainer:
    method = config["run"]["method"]
    if method not in TRAINERS:
        raise ValueError(
            f"Unknown method {method!r}; choose one of {', '.join(TRAINERS)}."
        )
    table = dict(config[method])
    policy = PolicyConfig(
        hidden=tuple(int(h) for h in table.pop("hidden")),
        activation=str(table.pop("activation")),
        init_log_std=float(table.pop("init_log_std")),
    )
    cls: Any = TRAINERS[method]
    return cls(**table, policy=policy)


def env_config(config: dict[str, Any]) -> EnvConfig:
    table = dict(config["env"])
    chunk = int(table.pop("episode_chunk"))
    return EnvConfig(**table, episode_chunk=chunk or None)


def environment_from_config(config: dict[str, Any], feeder: Feeder) -> Environment:
    run = config["run"]
    return make_environment(
        feeder, int(run["agents"]), seed=int(run["seed"]), config=env_config(config)
    )
