"""A dependency-free progress line for training runs.

On a terminal the line is redrawn in place (`\\r`), at most every `min_interval_s`;
in a log file or a pipe (not a TTY) every update is a line of its own, so the log
reads as a history.
"""

import shutil
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ._closing import ClosedOnExit


@runtime_checkable
class TextStream(Protocol):
    """What the progress line writes to: `sys.stderr`, a file, a `StringIO`."""

    def write(self, s: str, /) -> object: ...

    def flush(self) -> object: ...


def format_elapsed(seconds: float) -> str:
    """`01:23` below an hour, `2:01:23` above."""
    seconds = max(int(seconds), 0)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def _is_counter(value: Any) -> bool:
    return (
        isinstance(value, tuple | list)
        and len(value) == 2
        and all(isinstance(v, int | np.integer) for v in value)
    )


def _format_value(value: Any) -> str:
    if _is_counter(value):
        return f"{value[0]}/{value[1]}"
    if isinstance(value, str | bool | int | np.integer):
        return str(value)
    if hasattr(value, "__array__"):  # NumPy or JAX scalars straight from a step
        array = np.asarray(value)
        if array.ndim == 0:
            value = array.item()
            if not isinstance(value, float):
                return str(value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_progress(fields: Mapping[str, Any], elapsed_s: float) -> str:
    """The progress line for `fields`, e.g.
    `dual 3/20 primal 7/10 | cost 123.4 | V 0.012 | 01:23 elapsed`.

    **Arguments:**

    - `fields`: names to values, shown in order. A pair of ints `(i, n)` is a counter
        shown as `i/n`; consecutive counters share a group. Floats show 4
        significant digits.
    - `elapsed_s`: seconds since the run started.

    **Returns:** the line, without line ending.
    """
    groups: list[list[str]] = []
    previous_counter = False
    for name, value in fields.items():
        text = f"{name} {_format_value(value)}"
        counter = _is_counter(value)
        if counter and previous_counter:
            groups[-1].append(text)
        else:
            groups.append([text])
        previous_counter = counter
    groups.append([f"{format_elapsed(elapsed_s)} elapsed"])
    return " | ".join(" ".join(group) for group in groups)


class ProgressBar(ClosedOnExit):
    """A one-line progress display on stderr (or any text stream).

    ```python
    with ProgressBar() as bar:
        for ...:
            bar.update({"dual": (d, n_d), "primal": (p, n_p), "cost": c, "V": v})
    ```

    **Arguments:**

    - `stream`: where to write; `sys.stderr` (at the time of writing) by default.
    - `min_interval_s`: on a terminal, the shortest time between redraws (updates in
        between are shown by the next redraw or by `close`).
    - `elapsed_offset_s`: seconds already spent before this process started, so a
        resumed run shows its total time (store it in the checkpoint's metadata).
    - `clock`: a monotonic clock in seconds (a parameter for tests).
    """

    def __init__(
        self,
        stream: TextStream | None = None,
        *,
        min_interval_s: float = 0.1,
        elapsed_offset_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._stream = stream
        self._min_interval_s = float(min_interval_s)
        self._offset = float(elapsed_offset_s)
        self._clock = clock
        self._start = clock()
        self._last_draw: float | None = None
        self._pending: Mapping[str, Any] | None = None
        self._width = 0
        self._open_line = False

    @property
    def stream(self) -> TextStream:
        return self._stream if self._stream is not None else sys.stderr

    @property
    def elapsed_s(self) -> float:
        """Seconds since the run started, `elapsed_offset_s` included."""
        return self._offset + self._clock() - self._start

    def _tty(self) -> bool:
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def update(self, fields: Mapping[str, Any]) -> None:
        """Show `fields` (see `format_progress`).

        **Arguments:**

        - `fields`: names to values, e.g. `{"dual": (3, 20), "cost": 123.4}`.
        """
        now = self._clock()
        tty = self._tty()
        if tty and self._last_draw is not None:
            if now - self._last_draw < self._min_interval_s:
                self._pending = dict(fields)
                return
        self._draw(fields, tty)
        self._last_draw = now

    def _draw(self, fields: Mapping[str, Any], tty: bool) -> None:
        line = format_progress(fields, self.elapsed_s)
        self._pending = None
        if tty:
            columns = shutil.get_terminal_size((100, 20)).columns - 1
            line = line[:columns]
            pad = " " * max(self._width - len(line), 0)
            self.stream.write("\r" + line + pad)
            self._width = len(line)
            self._open_line = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Draw any update held back by the rate limit and end the line."""
        tty = self._tty()
        if self._pending is not None:
            self._draw(self._pending, tty)
        if self._open_line:
            self.stream.write("\n")
            self.stream.flush()
            self._open_line = False
