"""Controllable home devices: battery, heat pump, generator, and the interface a new
device implements."""

from ._base import (
    AbstractDevice as AbstractDevice,
    DeviceInputs as DeviceInputs,
    DeviceStep as DeviceStep,
)
from ._battery import (
    Battery as Battery,
    BATTERY_P_MAX_KW as BATTERY_P_MAX_KW,
    BATTERY_RANGES as BATTERY_RANGES,
)
from ._checks import (
    check_range as check_range,
    init_params as init_params,
    Param as Param,
    param as param,
    scale_params as scale_params,
)
from ._generator import Generator as Generator, GENERATOR_RANGES as GENERATOR_RANGES
from ._heat_pump import (
    COP_CHECK_RANGE_C as COP_CHECK_RANGE_C,
    DESIGN_TEMPERATURE_C as DESIGN_TEMPERATURE_C,
    heat_pump_cop_table as heat_pump_cop_table,
    HEAT_PUMP_P_MAX_KW as HEAT_PUMP_P_MAX_KW,
    HEAT_PUMP_RANGES as HEAT_PUMP_RANGES,
    HeatPump as HeatPump,
    HeatPumpState as HeatPumpState,
)
from ._population import (
    DEFAULT_MIX as DEFAULT_MIX,
    Population as Population,
    sample_population as sample_population,
    SAMPLERS as SAMPLERS,
)


__all__ = [
    "AbstractDevice",
    "Battery",
    "BATTERY_P_MAX_KW",
    "BATTERY_RANGES",
    "check_range",
    "COP_CHECK_RANGE_C",
    "DEFAULT_MIX",
    "DESIGN_TEMPERATURE_C",
    "DeviceInputs",
    "DeviceStep",
    "Generator",
    "GENERATOR_RANGES",
    "heat_pump_cop_table",
    "HEAT_PUMP_P_MAX_KW",
    "HEAT_PUMP_RANGES",
    "HeatPump",
    "HeatPumpState",
    "init_params",
    "param",
    "Param",
    "Population",
    "sample_population",
    "SAMPLERS",
    "scale_params",
]
