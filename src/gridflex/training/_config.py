"""Run configuration: one nested dict (TOML on disk) -> environment and trainer."""

import dataclasses
from typing import Any

import equinox as eqx

from ..env import EnvConfig, Environment, make_environment
from ..feeders import DEFAULT_FEEDER, Feeder
from ._base import AbstractTrainer
from ._ppo import IPPO, MAPPO
from ._trainers import GradMA, GradMAP, GradMARPO


TRAINERS: dict[str, type[AbstractTrainer]] = {
    "gradmap": GradMAP,
    "gradma": GradMA,
    "gradma_rpo": GradMARPO,
    "ippo": IPPO,
    "mappo": MAPPO,
}
"""Trainer classes by the name `--method` takes."""


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _trainer_defaults(cls: type[AbstractTrainer]) -> dict[str, Any]:
    """A trainer's settings as one flat table: a setting that is itself a settings
    Module (`policy: PolicyConfig`, `ppo: PPOConfig`) contributes its fields, so a
    user writes `gradmap.hidden` or `ippo.clip`, not a nested table."""
    out: dict[str, Any] = {}
    for f in _settings(cls):
        if isinstance(f.default, eqx.Module):
            for g in _settings(type(f.default)):
                _put(out, g.name, _plain(getattr(f.default, g.name)), cls)
        else:
            _put(out, f.name, _plain(f.default), cls)
    return out


def _settings(cls: type) -> list[dataclasses.Field]:
    """The fields a run's `config.toml` holds: those with a default, less the
    Python-only ones (an `optimiser_field`)."""
    return [
        f
        for f in dataclasses.fields(cls)
        if f.default is not dataclasses.MISSING and f.metadata.get("config", True)
    ]


def _put(table: dict[str, Any], key: str, value: Any, cls: type) -> None:
    if key in table:
        raise TypeError(
            f"{cls.__name__}: the setting {key!r} appears twice once nested settings "
            "are flattened; rename one."
        )
    table[key] = value


def default_config() -> dict[str, Any]:
    """Every setting of a run, with its default: `[run]`, `[env]`, and one table per
    trainer (only the chosen method's is used)."""
    env = EnvConfig()
    return {
        "run": {
            "feeder": DEFAULT_FEEDER,
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
    """The trainer that `config["run"]["method"]` names, built from its table of
    `config` (nested settings such as PPO's rebuilt from their keys).

    **Arguments:**

    - `config`: a configuration as `default_config()` or a run's `config.toml` gives.
    """
    method = config["run"]["method"]
    if method not in TRAINERS:
        raise ValueError(
            f"Unknown method {method!r}; choose one of {', '.join(TRAINERS)}."
        )
    table = dict(config[method])
    cls: Any = TRAINERS[method]
    nested = {}
    for f in dataclasses.fields(cls):
        if isinstance(f.default, eqx.Module):
            sub = type(f.default)
            names = [g.name for g in dataclasses.fields(sub)]
            nested[f.name] = sub(
                **{k: _typed(table.pop(k)) for k in names if k in table}
            )
    return cls(**{k: _typed(v) for k, v in table.items()}, **nested)


def _typed(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def env_config(config: dict[str, Any]) -> EnvConfig:
    table = dict(config["env"])
    chunk = int(table.pop("episode_chunk"))
    return EnvConfig(**table, episode_chunk=chunk or None)


def environment_from_config(config: dict[str, Any], feeder: Feeder) -> Environment:
    """The environment a configuration describes on `feeder`: `run.agents` homes
    placed and equipped by `run.seed`, with the `env` table's settings.

    **Arguments:**

    - `config`: a configuration as `default_config()` or a run's `config.toml` gives.
    - `feeder`: the feeder (its taps already set as `run.taps` asks).
    """
    run = config["run"]
    return make_environment(
        feeder, int(run["agents"]), seed=int(run["seed"]), config=env_config(config)
    )
