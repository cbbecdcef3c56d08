"""Out-of-sample evaluation over the held-out days, chained."""

from ._crosscheck import (
    CrossCheck as CrossCheck,
    opendss_crosscheck as opendss_crosscheck,
)
from ._evaluate import (
    EVAL_FILE as EVAL_FILE,
    evaluate as evaluate,
    Evaluation as Evaluation,
    NAIVE as NAIVE,
    naive_evaluation as naive_evaluation,
    write_evaluation as write_evaluation,
)
from ._report import report_run as report_run, write_figures as write_figures


__all__ = [
    "EVAL_FILE",
    "CrossCheck",
    "evaluate",
    "Evaluation",
    "NAIVE",
    "naive_evaluation",
    "opendss_crosscheck",
    "report_run",
    "write_evaluation",
    "write_figures",
]
