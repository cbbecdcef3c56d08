"""Resampling of regular series to gridflex's 15-minute steps (NumPy, host side).

Every step value stands for the step's interval `[t, t + 15 min)`. Three methods:

- `"linear"` for powers and energies (interval averages): each source interval's average
    power is placed at the interval's midpoint and the steps are read off the straight
    lines between neighbouring midpoints (held flat beyond the first and last midpoint).
    Finer sources are averaged over each step. Either way a day's energy is conserved
    exactly: upsampled, each interval gains `a * (v[i+1] - 2 v[i] + v[i-1])`, which
    telescopes to zero over a day with flat ends. Nonnegative input stays nonnegative.
- `"point"` for readings at instants (temperature): linear interpolation of the readings
    at each step's midpoint (flat beyond the first and last reading); finer readings are
    averaged over the step.
- `"hold"` for prices: a tariff holds over its settlement period, so each step takes
    the price of the period that contains it; finer prices are averaged over the step.

Each calendar day is resampled on its own, so no value of one day moves a value of
another: a held-out month never leaks into the training days through interpolation, and
a day's energy is exactly its source energy.
"""

from typing import Literal

import numpy as np


STEP_MINUTES = 15
"""Length of one step of every time series and of the environment, in minutes (the
paper's 15-minute settlement period)."""
STEPS_PER_DAY = 24 * 60 // STEP_MINUTES
"""Steps in one day, an episode (96)."""

Method = Literal["linear", "point", "hold"]
METHODS: tuple[str, ...] = ("linear", "point", "hold")


def check_interval(interval_minutes: int) -> None:
    """Refuse source intervals that do not tile 15-minute steps and days."""
    ok = (
        interval_minutes > 0
        and (
            STEP_MINUTES % interval_minutes == 0 or interval_minutes % STEP_MINUTES == 0
        )
        and (24 * 60) % interval_minutes == 0
    )
    if not ok:
        raise ValueError(
            f"An interval of {interval_minutes} min cannot be resampled to 15-minute "
            "steps: gridflex resamples intervals that divide 15 minutes (1, 3, 5 min) "
            "or are multiples of 15 minutes that divide a day (30 min, 1 h, 3 h, "
            "1 day)."
        )


def resample_day(values: np.ndarray, interval_minutes: int, method: str) -> np.ndarray:
    """Resample the last axis of `values`, one day's (or part of a day's) consecutive
    intervals of `interval_minutes`, to 15-minute steps.

    The first source interval must start on a 15-minute boundary (the caller checks).
    """
    check_interval(interval_minutes)
    if method not in METHODS:
        raise ValueError(f"method={method!r}: use one of {', '.join(METHODS)}.")
    values = np.asarray(values, dtype=np.float64)
    if interval_minutes == STEP_MINUTES:
        return values.copy()
    if interval_minutes < STEP_MINUTES:
        per_step = STEP_MINUTES // interval_minutes
        n = values.shape[-1]
        if n % per_step:
            raise ValueError(
                f"{n} intervals of {interval_minutes} min do not fill whole 15-minute "
                "steps."
            )
        blocks = values.reshape(*values.shape[:-1], n // per_step, per_step)
        return blocks.mean(axis=-1)
    factor = interval_minutes // STEP_MINUTES
    if method == "hold":
        return np.repeat(values, factor, axis=-1)
    if method == "linear":
        # Sub-step offsets from the interval midpoint, in intervals: (j + 1/2)/k - 1/2.
        offsets = (np.arange(factor) + 0.5) / factor - 0.5
        padded = np.concatenate([values[..., :1], values, values[..., -1:]], axis=-1)
        left, mid, right = padded[..., :-2], padded[..., 1:-1], padded[..., 2:]
        neighbour = np.where(offsets < 0, left[..., None], right[..., None])
        out = mid[..., None] + np.abs(offsets) * (neighbour - mid[..., None])
        return out.reshape(*values.shape[:-1], -1)
    # "point": readings at the interval starts, read at step midpoints.
    n = values.shape[-1]
    position = (np.arange(n * factor) + 0.5) / factor
    lo = np.minimum(np.floor(position).astype(np.int64), n - 1)
    hi = np.minimum(lo + 1, n - 1)
    weight = np.clip(position - lo, 0.0, 1.0)
    weight = np.where(hi == lo, 0.0, weight)
    return values[..., lo] * (1 - weight) + values[..., hi] * weight


def resample_days(values: np.ndarray, interval_minutes: int, method: str) -> np.ndarray:
    """Resample whole days: the last axis holds `n_days * per_day` intervals starting
    at midnight; returns `[..., n_days, 96]`."""
    check_interval(interval_minutes)
    per_day = 24 * 60 // interval_minutes
    n = values.shape[-1]
    if n % per_day:
        raise ValueError(
            f"{n} intervals of {interval_minutes} min are not a whole number of days."
        )
    days = np.asarray(values).reshape(*values.shape[:-1], n // per_day, per_day)
    return resample_day(days, interval_minutes, method)
