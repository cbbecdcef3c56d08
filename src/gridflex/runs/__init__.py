"""Runs that survive being killed: atomic checkpoints of any pytree, durable JSON-lines
metrics, TOML configuration with checked overrides, and a progress line."""

from ._checkpoint import (
    CHECKPOINTS_DIR as CHECKPOINTS_DIR,
    DamagedCheckpointWarning as DamagedCheckpointWarning,
    latest_checkpoint as latest_checkpoint,
    list_checkpoints as list_checkpoints,
    load_checkpoint as load_checkpoint,
    save_checkpoint as save_checkpoint,
)
from ._config import (
    CONFIG_FILE as CONFIG_FILE,
    load_config as load_config,
    parse_override as parse_override,
    parse_value as parse_value,
    save_config as save_config,
    to_toml as to_toml,
)
from ._metrics import (
    METRICS_FILE as METRICS_FILE,
    MetricsGapWarning as MetricsGapWarning,
    MetricsWriter as MetricsWriter,
    read_metrics as read_metrics,
)
from ._progress import (
    format_elapsed as format_elapsed,
    format_progress as format_progress,
    ProgressBar as ProgressBar,
)


__all__ = [
    "CHECKPOINTS_DIR",
    "CONFIG_FILE",
    "DamagedCheckpointWarning",
    "format_elapsed",
    "format_progress",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "load_config",
    "METRICS_FILE",
    "MetricsGapWarning",
    "MetricsWriter",
    "parse_override",
    "parse_value",
    "ProgressBar",
    "read_metrics",
    "save_checkpoint",
    "save_config",
    "to_toml",
]
