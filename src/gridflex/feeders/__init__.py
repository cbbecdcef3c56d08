"""Feeders: network data for the power flow, built in Python (`FeederBuilder`, with
OpenDSS's element models) or read from OpenDSS (`from_opendss`, the built-in
feeders), and OpenDSS itself as the reference to compare with."""

from ._builder import FeederBuilder as FeederBuilder, Winding as Winding
from ._builtin import (
    BUILTIN_DATA as BUILTIN_DATA,
    BUILTIN_FEEDERS as BUILTIN_FEEDERS,
    builtin_master as builtin_master,
    DEFAULT_FEEDER as DEFAULT_FEEDER,
    european_lv as european_lv,
    european_lv_reduced as european_lv_reduced,
    ieee13 as ieee13,
    ieee123 as ieee123,
    regulated_taps as regulated_taps,
    resolve_taps as resolve_taps,
    TAP_CHOICES as TAP_CHOICES,
)
from ._elements import (
    capacitor_yprim as capacitor_yprim,
    line_yprim as line_yprim,
    linecode_default_c_nf as linecode_default_c_nf,
    OPENDSS_LINE_RG as OPENDSS_LINE_RG,
    OPENDSS_LINE_RHO as OPENDSS_LINE_RHO,
    OPENDSS_LINE_XG as OPENDSS_LINE_XG,
    OPENDSS_LINECODE_C0_NF as OPENDSS_LINECODE_C0_NF,
    OPENDSS_LINECODE_C1_NF as OPENDSS_LINECODE_C1_NF,
    OPENDSS_SWITCH_DATA as OPENDSS_SWITCH_DATA,
    OPENDSS_SWITCH_LENGTH as OPENDSS_SWITCH_LENGTH,
    sequence_to_phase as sequence_to_phase,
    series_yprim as series_yprim,
    transformer_yprim as transformer_yprim,
    vsource_emf as vsource_emf,
    vsource_impedance as vsource_impedance,
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
from ._reference import (
    compile_reference as compile_reference,
    opendss_node_voltages as opendss_node_voltages,
    opendss_voltages as opendss_voltages,
    solve_free_copy as solve_free_copy,
)


__all__ = [
    "BUILTIN_DATA",
    "BUILTIN_FEEDERS",
    "builtin_master",
    "DEFAULT_FEEDER",
    "capacitor_yprim",
    "compile_reference",
    "european_lv",
    "european_lv_reduced",
    "Feeder",
    "FeederBuilder",
    "from_opendss",
    "ieee123",
    "ieee13",
    "line_yprim",
    "linecode_default_c_nf",
    "LoadModel",
    "Loads",
    "OPENDSS_LINE_RG",
    "OPENDSS_LINE_RHO",
    "OPENDSS_LINE_XG",
    "OPENDSS_LINECODE_C0_NF",
    "OPENDSS_LINECODE_C1_NF",
    "opendss_node_voltages",
    "opendss_report",
    "OPENDSS_SWITCH_DATA",
    "OPENDSS_SWITCH_LENGTH",
    "opendss_voltages",
    "OpenDSSImportError",
    "OpenDSSReport",
    "Ports",
    "regulated_taps",
    "resolve_taps",
    "sequence_to_phase",
    "series_yprim",
    "solve_free_copy",
    "SparseMatrix",
    "TAP_CHOICES",
    "transformer_yprim",
    "vsource_emf",
    "vsource_impedance",
    "Winding",
]
