"""The differentiable three-phase Z-Bus power flow, its solvers and adjoints."""

from ._linear_solvers import Guarded as Guarded, Neumann as Neumann
from ._results import RESULTS as RESULTS
from ._sensitivity import (
    voltage_sensitivities as voltage_sensitivities,
    VoltageSensitivity as VoltageSensitivity,
)
from ._solve import (
    default_adjoint as default_adjoint,
    power_flow as power_flow,
    PowerFlowSolution as PowerFlowSolution,
)
from ._solvers import (
    AbstractPowerFlowSolver as AbstractPowerFlowSolver,
    Newton as Newton,
    ZBus as ZBus,
)


__all__ = [
    "AbstractPowerFlowSolver",
    "default_adjoint",
    "Guarded",
    "Neumann",
    "Newton",
    "power_flow",
    "PowerFlowSolution",
    "RESULTS",
    "voltage_sensitivities",
    "VoltageSensitivity",
    "ZBus",
]
