"""Figures of the paper from plain arrays and metric rows: training curves, agents'
power over a day, the voltage envelope, cumulative out-of-sample cost. Each returns
its matplotlib `Figure` (Agg, no pyplot) and writes a PNG when given a path."""

from ._common import (
    KIND_COLOURS as KIND_COLOURS,
    METRIC_LABELS as METRIC_LABELS,
    METRIC_UNITS as METRIC_UNITS,
)
from ._day import (
    plot_agent_power as plot_agent_power,
    plot_voltage_envelope as plot_voltage_envelope,
)
from ._evaluation import plot_cumulative_cost as plot_cumulative_cost
from ._training import (
    DEFAULT_CURVES as DEFAULT_CURVES,
    plot_training_curves as plot_training_curves,
    trailing_mean as trailing_mean,
)


__all__ = [
    "DEFAULT_CURVES",
    "KIND_COLOURS",
    "METRIC_LABELS",
    "METRIC_UNITS",
    "plot_agent_power",
    "plot_cumulative_cost",
    "plot_training_curves",
    "plot_voltage_envelope",
    "trailing_mean",
]
