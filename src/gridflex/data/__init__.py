"""Exogenous time series (load, PV, outdoor temperature, import/export prices) at
15-minute steps, as `Scenarios` for populations of homes: the shipped real dataset,
readers for your own CSV files, and date splits."""

from ._loaders import (
    read_lcl_csv as read_lcl_csv,
    read_lcl_households as read_lcl_households,
    read_timeseries_csv as read_timeseries_csv,
    ReadOptions as ReadOptions,
    RepairOptions as RepairOptions,
    RepairWarning as RepairWarning,
    TimeSeriesError as TimeSeriesError,
    to_steps as to_steps,
    UNITS as UNITS,
)
from ._resample import STEP_MINUTES as STEP_MINUTES, STEPS_PER_DAY as STEPS_PER_DAY
from ._scenarios import (
    EpisodeData as EpisodeData,
    Scenarios as Scenarios,
    ScenarioStats as ScenarioStats,
)
from ._shipped import (
    DATASET_PATH as DATASET_PATH,
    default_scenarios as default_scenarios,
)


__all__ = [
    "DATASET_PATH",
    "default_scenarios",
    "EpisodeData",
    "read_lcl_csv",
    "read_lcl_households",
    "read_timeseries_csv",
    "ReadOptions",
    "RepairOptions",
    "RepairWarning",
    "Scenarios",
    "ScenarioStats",
    "STEP_MINUTES",
    "STEPS_PER_DAY",
    "TimeSeriesError",
    "to_steps",
    "UNITS",
]
