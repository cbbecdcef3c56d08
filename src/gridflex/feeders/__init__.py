"""Feeders: network data for the power flow, built in Python or read from OpenDSS."""

from ._altdss import OpenDSSImportError as OpenDSSImportError
from ._builder import FeederBuilder as FeederBuilder, Winding as Winding
from ._builtin import (
    european_lv as european_lv,
    european_lv_reduced as european_lv_reduced,
    ieee13 as ieee13,
    ieee123 as ieee123,
)
from ._dss_native import DeenergisedLoadWarning as DeenergisedLoadWarning
from ._dss_syntax import DssError as DssError
from ._feeder import (
    Feeder as Feeder,
    LoadModel as LoadModel,
    Loads as Loads,
    SparseMatrix as SparseMatrix,
)
from ._opendss import from_opendss as from_opendss
