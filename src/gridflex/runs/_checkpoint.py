"""Checkpoints that survive the process being killed at any instant.

A checkpoint is one `.npz` file holding every array leaf of a pytree (Equinox
modules, Optax states, typed PRNG keys, NumPy arrays, Python scalars) and a JSON
header (step, user metadata, and each leaf's path, kind, dtype and shape). Files are
written atomically and a `latest` pointer, itself replaced atomically, names the
newest; a process killed mid-save leaves the previous checkpoint loadable.

Restoring needs a `like` pytree of the same structure, typically what the trainer's
`init` returns (or `eqx.filter_eval_shape` of it): non-array leaves (functions,
strings) and static fields come from `like`, arrays from the file, and every leaf's
path, dtype and shape must agree.
"""

import json
import re
import warnings
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import jax.tree_util as jtu
import numpy as np
from jaxtyping import PyTree

from ._atomic import atomic_write, atomic_write_text, remove_stale_temporaries


CHECKPOINTS_DIR = "checkpoints"
"""The checkpoints folder of a run folder (`fit` saves there; `--resume` reads it)."""


FORMAT = "gridflex-checkpoint"
VERSION = 1
LATEST = "latest"
_HEADER = "__header__"
_NAME = re.compile(r"^checkpoint_(\d+)\.npz$")


class DamagedCheckpointWarning(UserWarning):
    """A run was restored from an older checkpoint because a newer one is damaged
    (truncated, corrupt or unreadable); the message names both."""


# What reading a damaged `.npz` raises (truncated zip, bad deflate stream, torn
# header, unreadable file); a checkpoint that does not fit `like` is not damage.
_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError)


def _file_name(step: int) -> str:
    return f"checkpoint_{step:09d}.npz"


def list_checkpoints(directory: str | Path) -> list[tuple[int, Path]]:
    """Every complete checkpoint in `directory` as `(step, path)`, by step.

    **Arguments:**

    - `directory`: the run's checkpoint directory (need not exist).

    **Returns:** a list sorted by increasing step; empty when there is none.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for path in directory.iterdir():
        match = _NAME.match(path.name)
        if match and path.is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(directory: str | Path) -> Path | None:
    """The newest checkpoint in `directory`, or `None` if there is none.

    The checkpoint with the highest step, which is complete because it was written
    atomically. The `latest` pointer is for people and tools reading the folder: a
    process killed between writing a checkpoint and updating the pointer leaves it
    one checkpoint behind (or naming a file since removed), and resuming from it
    would redo a step for nothing.

    **Arguments:**

    - `directory`: the run's checkpoint directory (need not exist).

    **Returns:** the path of the checkpoint file, or `None`.
    """
    found = list_checkpoints(Path(directory))
    return found[-1][1] if found else None


def _is_key(x) -> bool:
    return jnp.issubdtype(x.dtype, jax.dtypes.prng_key)


def _encode(path: str, leaf) -> tuple[dict[str, Any], np.ndarray | None]:
    """Header entry and stored array of one leaf of the state being saved."""
    if isinstance(leaf, jax.ShapeDtypeStruct):
        raise TypeError(
            f"save_checkpoint: leaf {path} is a ShapeDtypeStruct, which holds no "
            "values; pass the concrete state."
        )
    if isinstance(leaf, jax.Array):
        try:
            if _is_key(leaf):
                data = np.asarray(jax.random.key_data(leaf))
            else:
                data = np.asarray(leaf)
        except jax.errors.TracerArrayConversionError:
            raise TypeError(
                f"save_checkpoint: leaf {path} is a JAX tracer; save outside jit (on "
                "the values a jitted step returns)."
            ) from None
        if _is_key(leaf):
            entry = dict(
                kind="key", impl=str(jax.random.key_impl(leaf)), dtype=str(data.dtype)
            )
            return entry | dict(shape=list(leaf.shape)), data
        entry = dict(kind="jax", weak=bool(getattr(leaf, "weak_type", False)))
    elif isinstance(leaf, np.ndarray | np.generic):
        data = np.asarray(leaf)
        entry = dict(kind="numpy" if isinstance(leaf, np.ndarray) else "numpy_scalar")
    elif isinstance(leaf, bool | int | float | complex):
        data = np.asarray(leaf)
        entry = dict(kind="python", type=type(leaf).__name__)
    else:
        return dict(kind="static", type=type(leaf).__name__), None
    return entry | dict(dtype=str(data.dtype), shape=list(data.shape)), data


def _storable(data: np.ndarray) -> np.ndarray:
    # NumPy cannot name ML dtypes (bfloat16, float8) in .npz: store their bits.
    if data.dtype.kind == "V":
        return np.ascontiguousarray(data).view(f"u{data.dtype.itemsize}")
    return data


def save_checkpoint(
    directory: str | Path,
    state: PyTree,
    *,
    step: int,
    metadata: Mapping[str, Any] | None = None,
    keep: int | None = 3,
) -> Path:
    """Write `state` as the checkpoint of `step`, atomically.

    The file is written to a temporary name in `directory`, fsynced and renamed;
    then the `latest` pointer is replaced the same way; then old checkpoints are
    pruned. Killing the process at any point leaves `latest_checkpoint` naming a
    complete checkpoint. Checkpoints with a step *above* `step` belong to a run
    that was resumed from an earlier point and are removed (as
    `MetricsWriter(truncate_after_step=...)` drops their metrics).

    Call it on the host, outside `jit`, from one process per directory.

    **Arguments:**

    - `directory`: the run's checkpoint directory (created if missing).
    - `state`: any pytree; its array leaves (JAX arrays, typed PRNG keys, NumPy
        arrays and scalars, Python bool/int/float/complex) are stored bit-exactly;
        other leaves (functions, strings) are not stored and come back from `like`.
    - `step`: the step counter this state is at (>= 0); it names the file.
    - `metadata`: JSON-serialisable information returned by `load_checkpoint`
        (e.g. elapsed wall-clock seconds, the config's hash).
    - `keep`: how many checkpoints to keep (the newest by step), or `None` for all.

    **Returns:** the path of the checkpoint file.
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"save_checkpoint: step = {step!r} must be an int >= 0.")
    if keep is not None and (isinstance(keep, bool) or keep < 1):
        raise ValueError(f"save_checkpoint: keep = {keep!r} must be >= 1 or None.")
    metadata = dict(metadata or {})
    try:
        json.dumps(metadata, allow_nan=True)
    except TypeError as e:
        raise TypeError(
            f"save_checkpoint: metadata must be JSON-serialisable ({e}); store arrays "
            "in the state instead."
        ) from None

    leaves, _ = jtu.tree_flatten_with_path(state)
    entries, arrays = [], {}
    for i, (key_path, leaf) in enumerate(leaves):
        path = jtu.keystr(key_path)
        entry, data = _encode(path, leaf)
        if data is not None:
            arrays[f"leaf_{i}"] = _storable(data)
        entries.append(dict(path=path) | entry)
    header = dict(
        format=FORMAT, version=VERSION, step=step, metadata=metadata, leaves=entries
    )
    arrays[_HEADER] = np.asarray(json.dumps(header, allow_nan=True))

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(directory, "checkpoint_*")
    remove_stale_temporaries(directory, LATEST)
    target = directory / _file_name(step)
    atomic_write(target, lambda f: np.savez(f, **arrays))
    atomic_write_text(directory / LATEST, target.name + "\n")

    # Only now that the pointer names the new file may older ones go.
    found = list_checkpoints(directory)
    stale = [p for s, p in found if s > step]
    kept = [p for s, p in found if s <= step]
    if keep is not None:
        stale += kept[:-keep]
    for path in stale:
        path.unlink(missing_ok=True)
    return target


def _mismatch(path: str, problem: str, source: Path) -> ValueError:
    return ValueError(
        f"load_checkpoint: leaf {path} does not match: {problem} (checkpoint "
        f"{source}). Build `like` with the same configuration as the saved run."
    )


def _decode(entry: dict, stored: np.ndarray | None, like, source: Path):
    """The restored leaf for one header entry, shaped after `like`'s leaf."""
    path = entry["path"]
    kind = entry["kind"]
    like_is_array = isinstance(like, jax.Array | jax.ShapeDtypeStruct)
    if kind == "static":
        if like_is_array or isinstance(like, np.ndarray | np.generic):
            raise _mismatch(
                path, f"saved a {entry['type']}, `like` has an array", source
            )
        return like
    if stored is None:
        raise _mismatch(path, "its data is missing from the file", source)
    like_key = like_is_array and _is_key(like)
    if (kind == "key") != like_key:
        saved = "a typed PRNG key" if kind == "key" else "an array"
        wanted = "a typed PRNG key" if like_key else "not a key"
        raise _mismatch(path, f"saved {saved}, `like` has {wanted}", source)
    shape = tuple(entry["shape"])
    like_shape = tuple(np.shape(like)) if not like_is_array else tuple(like.shape)
    if shape != like_shape:
        raise _mismatch(path, f"saved shape {shape}, `like` has {like_shape}", source)
    dtype = np.dtype(jnp.dtype(entry["dtype"]))
    data = stored.view(dtype) if stored.dtype != dtype else stored
    sharding = getattr(like, "sharding", None) if like_is_array else None
    if kind == "key":
        impl = str(jax.random.key_impl(like)) if isinstance(like, jax.Array) else None
        if impl is not None and impl != entry["impl"]:
            raise _mismatch(
                path,
                f"saved key implementation {entry['impl']}, `like` has {impl}",
                source,
            )
        key = jax.random.wrap_key_data(jnp.asarray(data), impl=entry["impl"])
        return key if sharding is None else jax.device_put(key, sharding)
    if not isinstance(like, bool | int | float | complex):
        like_dtype = np.dtype(like.dtype)
        if like_dtype != dtype:
            raise _mismatch(
                path,
                f"saved dtype {dtype}, `like` has {like_dtype} (was one run in float64 "
                "and the other not?)",
                source,
            )
    if like_is_array:
        out = jnp.asarray(data)
        if entry.get("weak") and data.ndim == 0:
            # Weak typing steers dtype promotion; a scalar keeps it via .item().
            weak = jnp.asarray(data.item())
            out = weak if weak.dtype == out.dtype else out
        return out if sharding is None else jax.device_put(out, sharding)
    if isinstance(like, np.ndarray):
        return np.array(data)
    if isinstance(like, np.generic):
        return data[()]
    return type(like)(data.item())


def load_checkpoint(
    path: str | Path, like: PyTree
) -> tuple[PyTree, int, dict[str, Any]]:
    """Restore a checkpoint into the structure of `like`.

    **Arguments:**

    - `path`: a run's checkpoint directory (its latest checkpoint is loaded) or one
        checkpoint file.
    - `like`: a pytree of the saved structure, e.g. what the trainer's `init`
        returns or `eqx.filter_eval_shape` of it. Its array leaves give the type
        (JAX array, NumPy array, Python scalar) and, for JAX arrays, the sharding of
        the restored leaves; its other leaves are returned as they are.

    **Returns:** `(state, step, metadata)`; `state` has `like`'s structure and the
    saved values, bit for bit. Typed PRNG keys keep their implementation; weakly
    typed scalars (`jnp.asarray(1.0)`) stay weakly typed, so dtype promotion and
    jit caches behave as before the restart (weakly typed arrays of higher rank,
    rare in a training state, come back strongly typed).

    Given a directory, a damaged newest checkpoint (truncated, corrupt, unreadable)
    is skipped for the newest intact one, with a `DamagedCheckpointWarning` naming
    both; files are never unpickled.

    **Raises:** `FileNotFoundError` if there is no checkpoint; `ValueError` if none
    is intact, or naming the first leaf whose path, kind, shape, dtype or key
    implementation differs from `like`'s.
    """
    path = Path(path)
    if path.is_dir():
        newest = latest_checkpoint(path)
        older = [p for _, p in reversed(list_checkpoints(path)) if p != newest]
        candidates = ([newest] if newest is not None else []) + older
    else:
        candidates = [path] if path.is_file() else []
    if not candidates:
        raise FileNotFoundError(f"load_checkpoint: no checkpoint found at {path}.")
    damaged: list[str] = []
    for source in candidates:
        try:
            header, stored = _read(source)
        except _DAMAGE as e:
            damaged.append(f"{source.name} ({type(e).__name__}: {e})")
            continue
        if damaged:
            warnings.warn(
                f"load_checkpoint: damaged, skipped: {'; '.join(damaged)}; restored "
                f"from {source} instead.",
                DamagedCheckpointWarning,
                stacklevel=2,
            )
        return _restore(header, stored, like, source)
    raise ValueError(
        f"load_checkpoint: no intact checkpoint at {path}: {'; '.join(damaged)}."
    )


def _read(source: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header and every stored array of one checkpoint file (never pickle)."""
    # the file opened here, so it is closed however np.load fails on it
    with open(source, "rb") as f, np.load(f, allow_pickle=False) as npz:
        header = json.loads(str(npz[_HEADER]))
        if header.get("format") != FORMAT or header.get("version") != VERSION:
            raise ValueError("not a gridflex checkpoint")
        stored = {name: npz[name] for name in npz.files if name != _HEADER}
    return header, stored


def _restore(header, stored, like, source: Path):
    """`like` filled from a checkpoint's header and arrays (see `load_checkpoint`)."""
    leaves, treedef = jtu.tree_flatten_with_path(like)
    like_paths = [jtu.keystr(p) for p, _ in leaves]
    saved_paths = [e["path"] for e in header["leaves"]]
    if like_paths != saved_paths:
        missing = [p for p in saved_paths if p not in like_paths]
        extra = [p for p in like_paths if p not in saved_paths]
        if missing:
            problem = f"leaf {missing[0]} is in the checkpoint but not in `like`"
        elif extra:
            problem = f"leaf {extra[0]} is in `like` but not in the checkpoint"
        else:
            first = next(a for a, b in zip(saved_paths, like_paths) if a != b)
            problem = f"leaf {first} is in a different position"
        raise ValueError(
            f"load_checkpoint: the structure of `like` does not match {source}: "
            f"{problem} ({len(saved_paths)} leaves saved, {len(like_paths)} in "
            "`like`). Build `like` with the same configuration as the saved run."
        )
    restored = [
        _decode(entry, stored.get(f"leaf_{i}"), leaf, source)
        for i, (entry, (_, leaf)) in enumerate(zip(header["leaves"], leaves))
    ]
    return (
        jtu.tree_unflatten(treedef, restored),
        int(header["step"]),
        header["metadata"],
    )
