"""Training metrics as JSON lines that survive the process being killed.

One JSON object per line, flushed and fsynced per line, so a killed run loses at most
the line being written, and that torn line is recognised and dropped on reading. A
resumed run re-does the steps after its last checkpoint: opening the writer with
`truncate_after_step` drops their rows first, so no step appears twice.
"""

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._atomic import atomic_write_text, remove_stale_temporaries
from ._closing import ClosedOnExit


METRICS_FILE = "metrics.jsonl"
"""The metrics file of a run folder: one JSON line per primal step."""


def _resolve(path: str | Path) -> Path:
    # A run directory (existing, or a name without a suffix) holds `metrics.jsonl`.
    path = Path(path)
    return path / METRICS_FILE if path.is_dir() or not path.suffix else path


def _to_json(value: Any) -> Any:
    # NumPy and JAX scalars and arrays, which trainers log straight from a step.
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "__array__"):
        array = np.asarray(value)
        return array.item() if array.ndim == 0 else array.tolist()
    raise TypeError(
        f"MetricsWriter: a value of type {type(value).__name__} cannot be written as "
        "JSON; log numbers, strings, lists or arrays."
    )


def _parse(path: Path) -> tuple[list[dict[str, Any]], bool]:
    """The rows of a metrics file and whether its last line was torn."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = text.split("\n")
    # Every complete line ends with "\n"; whatever follows the last one is a line
    # the writer did not finish (or the empty string).
    torn = lines[-1].strip() != ""
    lines = lines[:-1]
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines) and not torn:
                # Only the last line may be damaged (a write cut short by a crash
                # before the fsync); anything earlier is real corruption.
                torn = True
                continue
            raise ValueError(
                f"read_metrics: {path} line {number} is not valid JSON: {line[:80]!r}"
            ) from None
        if not isinstance(row, dict):
            raise ValueError(
                f"read_metrics: {path} line {number} is not a JSON object: "
                f"{line[:80]!r}"
            )
        rows.append(row)
    return rows, torn


def _after(row: Mapping[str, Any], step: int) -> bool:
    value = row.get("step")
    return isinstance(value, int | float) and value > step


def read_metrics(
    path: str | Path, *, max_step: int | None = None
) -> list[dict[str, Any]]:
    """The rows of a metrics file, tolerating a torn last line.

    **Arguments:**

    - `path`: a metrics file (e.g. `metrics.jsonl`), or the run directory holding
        `metrics.jsonl`.
    - `max_step`: if given, rows whose `step` is greater are dropped (rows without a
        `step` are kept).

    **Returns:** the rows, in file order, as dicts.

    **Raises:** `FileNotFoundError` if the file does not exist; `ValueError` if a line
    other than the last is not a JSON object.
    """
    rows, _ = _parse(_resolve(path))
    if max_step is not None:
        rows = [row for row in rows if not _after(row, max_step)]
    return rows


class MetricsGapWarning(UserWarning):
    """A resumed run's metrics file lacks rows for steps its checkpoint covers (the
    file was cut, edited or replaced): those steps cannot be recomputed from the
    checkpoint, so the gap is reported, never skipped silently."""


def missing_steps(path: str | Path, up_to: int) -> list[int]:
    """The steps in `1..up_to` that have no row in the metrics file at `path` (a file
    or a run directory); all of them if the file does not exist."""
    path = _resolve(path)
    if not path.exists():
        return list(range(1, up_to + 1))
    rows, _ = _parse(path)
    present = {int(r["step"]) for r in rows if isinstance(r.get("step"), int | float)}
    return [s for s in range(1, up_to + 1) if s not in present]


def format_steps(steps: list[int]) -> str:
    """`[1, 2, 3, 7]` as `"1-3, 7"`."""
    runs: list[list[int]] = []
    for s in steps:
        if runs and s == runs[-1][1] + 1:
            runs[-1][1] = s
        else:
            runs.append([s, s])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


class MetricsWriter(ClosedOnExit):
    """Appends one JSON object per line to a metrics file, durably.

    Never truncates on its own: a resumed run appends to the same file. On opening,
    a torn last line (left by a killed run) is removed so that the next row starts on
    a line of its own; with `truncate_after_step=k`, rows with `step > k` (steps a
    resumed run will redo) are removed too. Both rewrite the file atomically.

    Use it as a context manager, or call `close()`.

    **Arguments:**

    - `path`: the metrics file, or a run directory (an existing directory or a
        path without a suffix; created if needed), meaning `metrics.jsonl` in it.
    - `truncate_after_step`: the step of the checkpoint the run resumes from, or
        `None` for a fresh run (or to keep everything).
    """

    def __init__(self, path: str | Path, *, truncate_after_step: int | None = None):
        self.path = _resolve(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.path.parent, self.path.name)
        if self.path.exists():
            rows, torn = _parse(self.path)
            kept = rows
            if truncate_after_step is not None:
                kept = [row for row in rows if not _after(row, truncate_after_step)]
            if torn or len(kept) != len(rows):
                text = "".join(self._line(row) for row in kept)
                atomic_write_text(self.path, text)
        self._file = open(self.path, "a", encoding="utf-8")

    @staticmethod
    def _line(row: Mapping[str, Any]) -> str:
        if not all(isinstance(k, str) for k in row):
            raise TypeError(
                f"MetricsWriter: row keys must be strings, got {list(row)}."
            )
        return json.dumps(dict(row), default=_to_json, allow_nan=True) + "\n"

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one row and make it durable before returning.

        **Arguments:**

        - `row`: a mapping from names to JSON-serialisable values (NumPy and JAX
            scalars and arrays are converted); include `step` (and `wall_s` for the
            training-curve plots).
        """
        if self._file.closed:
            raise ValueError(f"MetricsWriter for {self.path} is closed.")
        self._file.write(self._line(row))
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Close the file (further writes raise)."""
        self._file.close()
