"""gridflex: decentralised grid-edge control trained through a differentiable
three-phase power flow (GradMAP).

`import gridflex as gf` gives every subpackage: `gf.feeders`, `gf.powerflow`,
`gf.devices`, `gf.data`, `gf.env`, `gf.policies`, `gf.training`, `gf.evaluation`,
`gf.runs`, `gf.plots`, `gf.marl`, `gf.export` (the last two load their optional
dependencies, PettingZoo, JaxMARL and ONNX, only when one of their classes is used),
and `gf.cli`, the `gridflex` command as a function (`gf.cli.main(["train"])`).
"""

from importlib import metadata as _metadata

from . import (
    cli as cli,
    data as data,
    devices as devices,
    env as env,
    evaluation as evaluation,
    export as export,
    feeders as feeders,
    marl as marl,
    plots as plots,
    policies as policies,
    powerflow as powerflow,
    runs as runs,
    training as training,
)
from .feeders import Feeder as Feeder
from .powerflow import power_flow as power_flow, PowerFlowSolution as PowerFlowSolution


__version__ = _metadata.version("gridflex")

__all__ = [
    "cli",
    "data",
    "devices",
    "env",
    "evaluation",
    "export",
    "Feeder",
    "feeders",
    "marl",
    "plots",
    "policies",
    "power_flow",
    "PowerFlowSolution",
    "powerflow",
    "runs",
    "training",
]
