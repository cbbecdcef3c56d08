"""gridflex: decentralised grid-edge control trained through a differentiable
three-phase power flow (GradMAP)."""

import importlib.metadata

from . import (
    data as data,
    devices as devices,
    feeders as feeders,
    powerflow as powerflow,
)
from .feeders import Feeder as Feeder
from .powerflow import power_flow as power_flow, PowerFlowSolution as PowerFlowSolution


__version__ = importlib.metadata.version("gridflex")
