"""Feeders: network data for the power flow, built in Python or read from OpenDSS."""

from ._builder import FeederBuilder as FeederBuilder, Winding as Winding
from ._builtin import (
    BUILTIN_FEEDERS as BUILTIN_FEEDERS,
    european_lv as european_lv,
    european_lv_reduced as european_lv_reduced,
    ieee13 as ieee13,
    ieee123 as ieee123,
)
from ._feeder import (
    Feeder as Feeder,
    LoadModel as LoadModel,
    Loads as Loads,
    Ports as Ports,
    SparseMatrix as SparseMatrix,
)
from ._opendss import (
    from_opendss as from_opendss,
    opendss_report as opendss_report,
    OpenDSSImportError as OpenDSSImportError,
    OpenDSSReport as OpenDSSReport,
)


__all__ = [
    "BUILTIN_FEEDERS",
    "european_lv",
    "european_lv_reduced",
    "Feeder",
    "FeederBuilder",
    "from_opendss",
    "ieee123",
    "ieee13",
    "LoadModel",
    "Loads",
    "opendss_report",
    "OpenDSSImportError",
    "OpenDSSReport",
    "Ports",
    "SparseMatrix",
    "Winding",
]
