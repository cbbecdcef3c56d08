"""Helpers for drawing device populations from documented parameter ranges."""

import functools
from collections.abc import Mapping

import jax
import numpy as np
from jaxtyping import Array, Int, PRNGKeyArray

from .._misc import default_float


def resolve_ranges(
    owner: str,
    defaults: Mapping[str, tuple[float, float]],
    overrides: Mapping[str, tuple[float, float]] | None,
) -> dict[str, tuple[float, float]]:
    """The default ranges with the user's overrides, each checked to be `(lo, hi)`."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ValueError(
            f"{owner}.sample: unknown range(s) {', '.join(unknown)}; the ranges are "
            f"{', '.join(defaults)}."
        )
    ranges = {**defaults, **overrides}
    for name, value in ranges.items():
        lo, hi = (float(v) for v in value)
        if not lo <= hi:
            raise ValueError(
                f"{owner}.sample: range {name} = ({lo:g}, {hi:g}) needs lo <= hi."
            )
        ranges[name] = (lo, hi)
    return ranges


_ROWS, _CHUNK = 16, 1024


@functools.partial(jax.jit, static_argnums=1)
def _uniform_chunk(key: PRNGKeyArray, rows: int, chunk: Int[Array, ""]) -> Array:
    key = jax.lax.cond(chunk == 0, lambda: key, lambda: jax.random.fold_in(key, chunk))
    return jax.random.uniform(key, (rows, _CHUNK), dtype=default_float())


@jax.jit
def _fold_in(key: PRNGKeyArray, data: Int[Array, ""]) -> PRNGKeyArray:
    return jax.random.fold_in(key, data)


def fold_in(key: PRNGKeyArray, data: int) -> PRNGKeyArray:
    """`jax.random.fold_in`, compiled once (eager random ops compile per call site)."""
    return _fold_in(key, np.int32(data & 0x7FFFFFFF))


def uniform_block(key: PRNGKeyArray, m: int, n: int) -> np.ndarray:
    """`(m, n)` uniform draws on [0, 1) as float64 NumPy.

    Drawn in fixed `(16, 1024)` chunks (chunk `c > 0` from `fold_in(key, c)`), so one
    compile serves every population size; the same key gives the same draws, and the
    first homes' draws do not depend on `n`.
    """
    rows = max(_ROWS, m)
    chunks = [
        np.asarray(_uniform_chunk(key, rows, np.int32(c)), dtype=np.float64)
        for c in range(max(1, -(-n // _CHUNK)))
    ]
    return np.concatenate(chunks, axis=1)[:m, :n]


def draw_uniform(
    key: PRNGKeyArray, ranges: Mapping[str, tuple[float, float]], n: int
) -> dict[str, np.ndarray]:
    """`n` independent uniform draws for every named range, as float64 NumPy arrays.

    Sampling runs on the host, once per population: the draws come from
    `uniform_block` and the derived parameters are computed in NumPy. The same key
    gives the same draws.
    """
    if n < 0:
        raise ValueError(f"Cannot sample {n} homes; n must be >= 0.")
    u = uniform_block(key, len(ranges), n)
    return {
        name: lo + (hi - lo) * u[i] for i, (name, (lo, hi)) in enumerate(ranges.items())
    }
