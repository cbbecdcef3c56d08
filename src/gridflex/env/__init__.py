"""The differentiable multi-agent environment: homes on a feeder, one day at a time."""

from ._environment import (
    AbstractController as AbstractController,
    DayState as DayState,
    EnvConfig as EnvConfig,
    Environment as Environment,
    EpisodeResult as EpisodeResult,
    make_environment as make_environment,
    NaiveController as NaiveController,
    OBS_NAMES as OBS_NAMES,
    OBS_VOLTAGE_PU as OBS_VOLTAGE_PU,
    OpenLoopController as OpenLoopController,
    PolicyController as PolicyController,
    Rollout as Rollout,
    StepInputs as StepInputs,
    StepTrace as StepTrace,
    VOLTAGE as VOLTAGE,
)
from ._placement import (
    place_homes as place_homes,
    Placement as Placement,
    PlacementWarning as PlacementWarning,
    spot_load_kva as spot_load_kva,
)
from ._sharding import (
    episode_devices as episode_devices,
    episode_mesh as episode_mesh,
    initialize_hosts as initialize_hosts,
    is_lead_process as is_lead_process,
    shard_episodes as shard_episodes,
    sync_processes as sync_processes,
    use_mesh as use_mesh,
)


__all__ = [
    "AbstractController",
    "DayState",
    "EnvConfig",
    "Environment",
    "episode_devices",
    "episode_mesh",
    "EpisodeResult",
    "initialize_hosts",
    "is_lead_process",
    "make_environment",
    "NaiveController",
    "OBS_NAMES",
    "OBS_VOLTAGE_PU",
    "OpenLoopController",
    "place_homes",
    "Placement",
    "PlacementWarning",
    "PolicyController",
    "Rollout",
    "shard_episodes",
    "spot_load_kva",
    "StepInputs",
    "StepTrace",
    "sync_processes",
    "use_mesh",
    "VOLTAGE",
]
