"""Atomic file replacement: a reader sees the old file or the new one, never half.

Write to a temporary file in the target's directory (same filesystem, so the rename
is atomic), fsync it, `os.replace` it over the target, then fsync the directory so
that the rename itself survives a power cut. A failure anywhere before the rename
leaves the target untouched and removes the temporary file.
"""

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


TMP_SUFFIX = ".tmp"


def fsync_directory(directory: Path) -> None:
    """Flush a directory's entries (new names, renames) to disk, where supported."""
    if os.name != "posix":  # Windows cannot open a directory; NTFS journals renames
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Replace `path` atomically by what `write` writes into a binary file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX
    )
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_directory(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """Replace `path` atomically by `text`, UTF-8 encoded."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def remove_stale_temporaries(directory: Path, name: str) -> None:
    """Remove temporary files `atomic_write` left for `name` when a process died
    mid-write (one writer per directory is assumed)."""
    for tmp in Path(directory).glob(f".{name}.*{TMP_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
