"""Readers for users' own time series: checked, converted to gridflex units and
resampled to 15-minute steps.

Every reader returns a `pandas.Series` whose `DatetimeIndex` labels the *start* of each
15-minute step, in kW (powers and energies), degC (temperatures) or currency/kWh
(prices). Nothing is dropped or filled silently: a problem (unreadable timestamps or
values, gaps, duplicated or unsorted timestamps, implausible magnitudes for the unit,
too short a span) raises one `TimeSeriesError` that names the file, the column and every
problem found; with `repair="interpolate"` the repairable ones are repaired, listed in
`series.attrs["repairs"]` and announced by a `RepairWarning`.
"""

import dataclasses
import datetime
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypedDict, Unpack

import numpy as np
import pandas as pd

from ._resample import check_interval, resample_day, STEP_MINUTES


Label = Literal["start", "end"]
Repair = Literal["interpolate"] | None
ResampleMethod = Literal["linear", "point", "hold"] | None

UNITS: dict[str, tuple[str, str, float, float]] = {
    "kW": ("power", "kW", 1.0, 0.0),
    "W": ("power", "kW", 1e-3, 0.0),
    "MW": ("power", "kW", 1e3, 0.0),
    "kWh": ("energy", "kW", 1.0, 0.0),  # per interval; then divided by its hours
    "Wh": ("energy", "kW", 1e-3, 0.0),
    "MWh": ("energy", "kW", 1e3, 0.0),
    "degC": ("temperature", "degC", 1.0, 0.0),
    "degF": ("temperature", "degC", 5 / 9, -32.0),
    "K": ("temperature", "degC", 1.0, -273.15),
    "currency/kWh": ("price", "currency/kWh", 1.0, 0.0),
    "currency/MWh": ("price", "currency/kWh", 1e-3, 0.0),
    "p/kWh": ("price", "currency/kWh", 0.01, 0.0),
    "cents/kWh": ("price", "currency/kWh", 0.01, 0.0),
}
"""The units the CSV readers accept, each as `(quantity, target unit, scale,
offset)`: a value `x` in the unit becomes `(x + offset) * scale` in gridflex's unit
for that quantity (kW, degC, currency/kWh). Energies per interval (kWh, ...) are
divided by the interval's hours afterwards, so they too become kW."""
_DEFAULT_METHOD = {
    "power": "linear",
    "energy": "linear",
    "temperature": "point",
    "price": "hold",
}
# Plausible magnitudes for one home, in the target unit (override with `plausible=`).
_PLAUSIBLE = {
    "power": (-50.0, 50.0),
    "energy": (-50.0, 50.0),
    "temperature": (-60.0, 60.0),
    "price": (-10.0, 10.0),
}
_SMALLEST_PEAK_KW = 0.005  # a home's load or PV peaks above 5 W over a day
_SHOW = 5  # problems of one kind listed before "and N more"


class TimeSeriesError(ValueError):
    """A time series could not be used as given. `problems` lists every problem found;
    `source` and `column` say where."""

    def __init__(self, source: str, column: str, problems: Sequence[str]):
        self.source = source
        self.column = column
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}, column {column!r}:\n{lines}")


class RepairWarning(UserWarning):
    """Emitted when `repair=` changed a series; the repairs are also listed in the
    returned series' `attrs["repairs"]`."""


def _more(items: Sequence[str]) -> str:
    shown = ", ".join(items[:_SHOW])
    return shown + (f" and {len(items) - _SHOW} more" if len(items) > _SHOW else "")


def _fmt_time(seconds: int | np.integer) -> str:
    return str(np.datetime64(int(seconds), "s")).replace("T", " ")


def _fmt_span(seconds: int | np.integer) -> str:
    """`2 days 1h30min`, `45min`."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    parts = [f"{days} day{'s' * (days != 1)}"] if days else []
    parts += [f"{hours}h"] if hours else []
    parts += [f"{rest // 60}min"] if rest // 60 or not parts else []
    return " ".join(parts)


def _parse_times(raw: pd.Series, date_format: str | None) -> np.ndarray:
    """Timestamps as int64 seconds since the epoch, NaT as the int64 minimum. Times with
    a UTC offset are converted to UTC."""
    fmt = date_format or "ISO8601"
    try:
        times = pd.to_datetime(raw, format=fmt, errors="coerce")
    except ValueError:  # mixed UTC offsets
        times = pd.to_datetime(raw, format=fmt, errors="coerce", utc=True)
    index = pd.DatetimeIndex(times)
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return index.to_numpy(dtype="datetime64[s]").astype(np.int64)


_NAT = np.iinfo(np.int64).min


class RepairOptions(TypedDict, total=False):
    """How a reader repairs a series and which span it needs (each documented on
    `to_steps`): `label`, `repair`, `max_gap`, `min_days`. The Low Carbon London
    readers take these; their unit and resampling are the format's."""

    label: Label
    repair: Repair
    max_gap: str | datetime.timedelta
    min_days: float


class ReadOptions(RepairOptions, total=False):
    """`RepairOptions` and how the values are resampled and bounded: `method`,
    `plausible` (see `to_steps`). `to_steps` and `read_timeseries_csv` take these."""

    method: ResampleMethod
    plausible: tuple[float, float] | None


@dataclasses.dataclass(frozen=True)
class _Options:
    """`ReadOptions` with every default filled in."""

    label: Label = "start"
    repair: Repair = None
    max_gap: str | datetime.timedelta = "1h"
    min_days: float = 1.0
    method: ResampleMethod = None
    plausible: tuple[float, float] | None = None


def _options(caller: str, given: Mapping[str, Any], allowed: type) -> _Options:
    """The options a reader was given, with the defaults; an unknown name raises as
    Python does for a misspelt keyword argument."""
    names = allowed.__required_keys__ | allowed.__optional_keys__
    unknown = sorted(set(given) - set(names))
    if unknown:
        raise TypeError(
            f"{caller}() got an unexpected keyword argument {unknown[0]!r}; its "
            f"options are {', '.join(sorted(names))}."
        )
    return _Options(**given)


class _Check:
    """One series on its way to 15-minute steps: each stage checks (and, with
    `repair="interpolate"`, repairs) one aspect, collecting every problem so that
    one error lists them all. The stages run in order (`_to_steps`); a stage after
    which nothing sensible can follow raises at once."""

    def __init__(self, times, lines, source: str, column: str, options: _Options):
        self.times, self.lines = times, lines
        self.source, self.column = source, column
        self.repair = options.repair
        self.gap_limit = int(pd.Timedelta(options.max_gap).total_seconds())
        self.min_days = options.min_days
        self.problems: list[str] = []
        self.repairs: list[str] = []

    def where(self, i, t=None) -> str:
        """Row i, at its time or at time t."""
        at = _fmt_time(int(self.times[i]) if t is None else int(t))
        return f"line {self.lines[i]} ({at})" if self.lines is not None else at

    def fail(self) -> TimeSeriesError:
        return TimeSeriesError(self.source, self.column, self.problems)

    def values(self, raw: pd.Series) -> None:
        """Numbers, or missing (empty, NaN, or text such as LCL's "Null"); rows with
        unreadable timestamps dropped."""
        bad_time = self.times == _NAT
        if pd.api.types.is_numeric_dtype(raw.dtype):
            values = np.asarray(raw, dtype=np.float64)
            self.text_values: list[str] = []
        else:
            text = raw.astype("string").str.strip().fillna("")
            values = np.asarray(pd.to_numeric(text, errors="coerce"), dtype=np.float64)
            self.text_values = [
                f"{self.where(i)}: {text.iloc[i]!r}"
                for i in np.flatnonzero(np.isnan(values) & ~bad_time)
                if text.iloc[i].lower() not in ("", "nan")
            ]
        if bad_time.any():
            rows = np.flatnonzero(bad_time)
            lines = self.lines
            at = [f"line {lines[i]}" if lines is not None else f"row {i}" for i in rows]
            self.problems.append(
                f"{len(rows)} timestamp(s) could not be read: {_more(at)}"
            )
        keep = ~bad_time
        self.rows = np.flatnonzero(keep)
        self.t, self.v = self.times[keep], values[keep]
        if len(self.t) < 2:
            self.problems.append(
                f"too short: {len(self.t)} readable row(s); at least "
                f"{self.min_days:g} day(s) needed"
            )
            raise self.fail()

    def order(self) -> None:
        back = np.flatnonzero(np.diff(self.t) < 0)
        if back.size:
            i, j = self.rows[back[0]], self.rows[back[0] + 1]
            what = (
                f"timestamps are not in increasing order ({back.size} place(s)); "
                f"first at {self.where(j)}, after {self.where(i)}"
            )
            if self.repair:
                self.repairs.append(f"sorted the rows by time: {what}")
            else:
                self.problems.append(what)
        perm = np.argsort(self.t, kind="stable")
        self.t, self.v, self.rows = self.t[perm], self.v[perm], self.rows[perm]

    def duplicates(self) -> None:
        t, v = self.t, self.v
        same = np.flatnonzero(np.diff(t) == 0)
        if same.size:
            exact, conflicting = [], []
            for k in same:
                a, b = v[k], v[k + 1]
                is_exact = a == b or (np.isnan(a) and np.isnan(b))
                (exact if is_exact else conflicting).append(
                    self.where(self.rows[k + 1])
                )
            if self.repair and exact:
                self.repairs.append(
                    f"dropped {len(exact)} exact duplicate row(s) (same time, same "
                    f"value): {_more(exact)}"
                )
            elif exact:
                self.problems.append(
                    f"{len(exact)} duplicated timestamp(s) with the same value: "
                    f"{_more(exact)} (repair='interpolate' drops exact duplicates)"
                )
            if conflicting:
                self.problems.append(
                    f"{len(conflicting)} duplicated timestamp(s) with different "
                    f"values: {_more(conflicting)}; resolve them in the file (e.g. a "
                    "daylight-saving change recorded in local time: give times in UTC)"
                )
            first = np.concatenate([[True], np.diff(t) != 0])
            self.t, self.v, self.rows = t[first], v[first], self.rows[first]
        if len(self.t) < 2:
            self.problems.append(
                f"too short: one distinct timestamp ({_fmt_time(self.t[0])})"
            )
            raise self.fail()

    def spacing(self, label: Label, expected_minutes: int | None) -> None:
        """The reading interval (the most common spacing), every timestamp on it,
        and the intervals on 15-minute boundaries."""
        diffs = np.diff(self.t)
        steps, counts = np.unique(diffs, return_counts=True)
        interval = int(steps[np.argmax(counts)])
        if interval % 60:
            self.problems.append(
                f"the most common spacing, {interval} s, is not whole minutes"
            )
            raise self.fail()
        minutes = interval // 60
        if expected_minutes is not None and minutes != expected_minutes:
            self.problems.append(
                f"readings are every {minutes} min; this format is every "
                f"{expected_minutes} min"
            )
            raise self.fail()
        try:
            check_interval(minutes)
        except ValueError as e:
            self.problems.append(str(e))
            raise self.fail() from None
        irregular = np.flatnonzero(diffs % interval != 0)
        if irregular.size:
            at = [self.where(self.rows[k + 1]) for k in irregular]
            self.problems.append(
                f"{irregular.size} timestamp(s) off the {minutes}-minute spacing of "
                f"the rest: {_more(at)}"
            )
            raise self.fail()
        starts = self.t - interval if label == "end" else self.t
        step_s = STEP_MINUTES * 60
        if minutes >= STEP_MINUTES:
            off = np.flatnonzero(starts % step_s != 0)
            if off.size:
                self.problems.append(
                    f"intervals must start on 15-minute boundaries (00, 15, 30, 45); "
                    f"{off.size} do not, first at {self.where(self.rows[off[0]])}"
                )
        elif starts[0] % step_s or (starts[-1] + interval) % step_s:
            self.problems.append(
                f"a series of {minutes}-minute readings must start and end on "
                f"15-minute boundaries; this one covers {_fmt_time(starts[0])} to "
                f"{_fmt_time(starts[-1] + interval)}"
            )
        self.interval, self.minutes, self.starts = interval, minutes, starts

    def gaps(self, hold: bool) -> None:
        """Missing timestamps and missing values on the full regular grid: filled
        up to `max_gap` when repairing (held for prices), listed otherwise."""
        interval, starts = self.interval, self.starts
        grid = np.arange(starts[0], starts[-1] + interval, interval)
        slot = (starts - starts[0]) // interval
        full = np.full(len(grid), np.nan)
        full[slot] = self.v
        present = np.zeros(len(grid), dtype=bool)
        present[slot] = True
        self.grid, self.full = grid, full
        runs = _runs(np.isnan(full))
        if not runs:
            return
        if self.repair:
            self._fill(runs, hold)
            return
        gaps = [
            f"{_fmt_time(grid[a])} to {_fmt_time(grid[b - 1] + interval)}"
            for a, b in _runs(~present)
        ]
        if gaps:
            self.problems.append(
                f"{int((~present).sum())} missing timestamp(s) in {len(gaps)} gap(s) "
                f"of the {self.minutes}-minute series: {_more(gaps)}"
            )
        empty = [
            self.where(self.rows[np.searchsorted(slot, i)])
            for i in np.flatnonzero(np.isnan(full) & present)
        ]
        if empty:
            self.problems.append(
                f"{len(empty)} missing or unreadable value(s): {_more(empty)}"
            )
        if self.text_values:
            self.problems.append(
                f"text where numbers were expected: {_more(self.text_values)}"
            )
        self.problems[-1] += (
            " (repair='interpolate' fills gaps up to max_gap, "
            f"now {_fmt_span(self.gap_limit)})"
        )

    def _fill(self, runs: list[tuple[int, int]], hold: bool) -> None:
        grid, full, interval = self.grid, self.full, self.interval
        filled = []
        for a, b in runs:
            span = (b - a) * interval
            label = f"{_fmt_time(grid[a])} to {_fmt_time(grid[b - 1] + interval)}"
            if a == 0 or b == len(grid):
                self.problems.append(
                    f"missing data at the {'start' if a == 0 else 'end'} of the "
                    f"series ({label}) cannot be interpolated; trim the file"
                )
            elif span > self.gap_limit:
                self.problems.append(
                    f"gap of {_fmt_span(span)} ({label}) is longer than "
                    f"max_gap={_fmt_span(self.gap_limit)}"
                )
            else:
                if hold:
                    full[a:b] = full[a - 1]
                else:
                    w = (np.arange(a, b) - (a - 1)) / (b - (a - 1))
                    full[a:b] = full[a - 1] * (1 - w) + full[b] * w
                filled.append(f"{label} ({b - a} interval(s))")
        if filled:
            how = "held the previous value over" if hold else "interpolated"
            self.repairs.append(f"{how} {len(filled)} gap(s): {_more(filled)}")

    def units(self, unit: str, plausible: tuple[float, float] | None) -> None:
        """Converted to gridflex's unit for the quantity, and checked plausible for
        one home."""
        quantity, target, scale, offset = UNITS[unit]
        full = (self.full + offset) * scale
        if quantity == "energy":
            full = full / (self.minutes / 60)
        self.full = full
        lo, hi = plausible if plausible is not None else _PLAUSIBLE[quantity]
        finite = full[np.isfinite(full)]
        if not finite.size:
            return
        low, high = float(finite.min()), float(finite.max())
        if low < lo or high > hi:
            self.problems.append(
                f"values from {low:.4g} to {high:.4g} {target} (as unit={unit!r}) are "
                f"outside the plausible range for one home, [{lo:g}, {hi:g}] {target}"
                f"{_unit_hint(quantity, unit, low, high)}; if they are right, pass "
                "plausible=(low, high)"
            )
        span_days = len(self.grid) * self.interval / 86400
        peak = max(abs(low), abs(high))
        if (
            plausible is None
            and quantity in ("power", "energy")
            and span_days >= 1
            and peak < _SMALLEST_PEAK_KW
        ):
            self.problems.append(
                f"the largest value is {peak:.3g} kW (as unit={unit!r}): implausibly "
                "small for a home's load or PV over a day; are the numbers in kW or "
                "kWh given as W or Wh? If they are right, pass plausible=(low, high)"
            )

    def span(self) -> None:
        grid, interval = self.grid, self.interval
        span = len(grid) * interval
        if span < self.min_days * 86400:
            self.problems.append(
                f"too short: {_fmt_time(grid[0])} to {_fmt_time(grid[-1] + interval)} "
                f"({_fmt_span(span)}); at least {self.min_days:g} day(s) needed"
            )


def _to_steps(
    times: np.ndarray,
    raw: pd.Series,
    *,
    lines: np.ndarray | None,
    source: str,
    column: str,
    name: str,
    unit: str,
    options: _Options,
    expected_interval_minutes: int | None = None,
) -> pd.Series:
    """Check, repair (if asked), convert and resample one series (see `to_steps`)."""
    if unit not in UNITS:
        raise ValueError(
            f"{source}, column {column!r}: unit={unit!r} is not known; use one of "
            f"{', '.join(UNITS)} (energies are per interval of the file)."
        )
    repair, label = options.repair, options.label
    if repair not in (None, "interpolate"):
        raise ValueError(f"repair={repair!r}: use None or 'interpolate'.")
    if label not in ("start", "end"):
        raise ValueError(f"label={label!r}: use 'start' or 'end'.")
    method = options.method or _DEFAULT_METHOD[UNITS[unit][0]]
    if method not in ("linear", "point", "hold"):
        raise ValueError(f"method={method!r}: use 'linear', 'point' or 'hold'.")
    check = _Check(times, lines, source, column, options)
    check.values(raw)
    check.order()
    check.duplicates()
    check.spacing(label, expected_interval_minutes)
    check.gaps(hold=method == "hold")
    check.units(unit, options.plausible)
    check.span()
    if check.problems:
        raise check.fail()
    # Resample each calendar day on its own (see _resample).
    day = check.grid // 86400
    cuts = np.flatnonzero(np.diff(day)) + 1
    pieces = [
        resample_day(piece, check.minutes, method)  # pyright: ignore[reportArgumentType]
        for piece in np.split(check.full, cuts)
    ]
    out = np.concatenate(pieces)
    index = pd.date_range(
        pd.Timestamp(int(check.grid[0]), unit="s"), periods=len(out), freq="15min"
    )
    series = pd.Series(out, index=index, name=name)
    target = UNITS[unit][1]
    repairs = check.repairs
    series.attrs.update(unit=target, source=source, column=column, repairs=repairs)
    if repairs:
        warnings.warn(
            RepairWarning(f"{source}, column {column!r}: " + "; ".join(repairs)),
            stacklevel=3,
        )
    return series


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(a), int(b)) for a, b in zip(starts, stops)]


def _unit_hint(quantity: str, unit: str, low: float, high: float) -> str:
    big = max(abs(low), abs(high))
    if quantity == "power" and unit == "kW":
        return " (W given as kW? pass unit='W')"
    if quantity == "energy" and unit == "kWh":
        return " (Wh given as kWh? pass unit='Wh')"
    if quantity == "temperature" and unit == "degC":
        if 200 <= low and high <= 340:
            return " (they look like kelvin: pass unit='K')"
        return " (Fahrenheit? pass unit='degF')" if high > 60 else ""
    if quantity == "price" and unit == "currency/kWh" and big > 10:
        return " (per MWh, or in pence or cents? pass unit='currency/MWh' or 'p/kWh')"
    return ""


def to_steps(
    series: pd.Series, *, unit: str, **options: Unpack[ReadOptions]
) -> pd.Series:
    """Check an in-memory series, convert it to gridflex units and resample it to
    15-minute steps (what the CSV readers do after reading).

    **Arguments:**

    - `series`: values indexed by a `DatetimeIndex` at a regular interval that divides
        15 minutes or is a multiple of 15 minutes dividing a day. Times with a UTC
        offset are converted to UTC; naive times are taken as given.
    - `unit`: one of `UNITS`: `"kW"`, `"W"`, `"MW"` (power); `"kWh"`, `"Wh"`, `"MWh"`
        (energy *per interval*, converted to average kW); `"degC"`, `"degF"`, `"K"`;
        `"currency/kWh"`, `"currency/MWh"`, `"p/kWh"`, `"cents/kWh"`.
    - `method`: `"linear"` (default for powers and energies), `"point"` (default for
        temperatures: readings at instants) or `"hold"` (default for prices: a price
        holds over its settlement period). See `gridflex.data` docs.
    - `label`: whether a timestamp marks the `"start"` (default) or the `"end"` of its
        interval.
    - `repair`: `None` (default) raises on any problem. `"interpolate"` sorts unsorted
        rows, drops exact duplicates (same time and value) and fills missing values and
        missing timestamps over gaps up to `max_gap` (linearly; prices hold the previous
        value); it still raises on what it cannot repair (conflicting duplicates,
        longer gaps, gaps at the ends, implausible units, too short a span).
    - `max_gap`: the longest gap `repair="interpolate"` fills, e.g. `"1h"`.
    - `min_days`: the shortest acceptable span, in days.
    - `plausible`: `(low, high)` in the target unit, replacing the one-home range
        (±50 kW, -60..60 degC, ±10 currency/kWh).

    The options after `unit` (`ReadOptions`) are keywords, each with the default
    above; the CSV readers take the same.

    **Returns:**

    A float64 `pandas.Series` at 15-minute steps, indexed by each step's start, in kW,
    degC or currency/kWh; `attrs` holds `unit`, `source`, `column` and `repairs`.

    **Raises:**

    `TimeSeriesError` naming the series and listing every problem found.
    """
    if not isinstance(series.index, pd.DatetimeIndex):
        raise TimeSeriesError(
            str(series.name), str(series.name), ["the index is not a DatetimeIndex"]
        )
    name = str(series.name) if series.name is not None else "series"
    times = _parse_times(pd.Series(series.index), None)
    return _to_steps(
        times,
        pd.Series(series.to_numpy()),
        lines=None,
        source=f"series {name!r}",
        column=name,
        name=name,
        unit=unit,
        options=_options("to_steps", options, ReadOptions),
    )


def _read_csv(path: str | os.PathLike, sep: str) -> tuple[pd.DataFrame, np.ndarray]:
    """All columns as text, blank lines dropped, with each row's line number."""
    try:
        frame = pd.read_csv(
            path, sep=sep, dtype=str, skip_blank_lines=False, keep_default_na=False
        )
    except pd.errors.EmptyDataError:
        raise ValueError(
            f"{path}: the file is empty (no header, no rows); expected a CSV file "
            "with a header line."
        ) from None
    lines = np.arange(len(frame)) + 2  # the header is line 1
    blank = np.asarray((frame.apply(lambda c: c.str.strip()) == "").all(axis=1))
    return frame.loc[~blank].reset_index(drop=True), lines[~blank]


def _get(frame: pd.DataFrame, column: str) -> pd.Series:
    series = frame[column]
    assert isinstance(series, pd.Series)
    return series


def _column(frame: pd.DataFrame, wanted: Sequence[str]) -> str | None:
    by_key = {str(c).strip().lower(): str(c) for c in frame.columns}
    for w in wanted:
        if w.strip().lower() in by_key:
            return by_key[w.strip().lower()]
    return None


def read_timeseries_csv(
    path: str | os.PathLike,
    *,
    time_column: str,
    value_column: str,
    unit: str,
    date_format: str | None = None,
    sep: str = ",",
    **options: Unpack[ReadOptions],
) -> pd.Series:
    """Read one timestamp/value column pair of a CSV file as 15-minute steps.

    **Arguments:**

    - `path`: the CSV file (a header line, then one row per reading).
    - `time_column`, `value_column`: column names (matched ignoring case and spaces
        around them).
    - `date_format`: a `strftime` format for the timestamps; ISO 8601 by default.
    - `sep`: the field separator.
    - the rest as in `to_steps`.

    **Returns:**

    A `pandas.Series` at 15-minute steps (see `to_steps`), named `value_column`.

    **Raises:**

    `TimeSeriesError` naming the file, the column and each problem (with line numbers).
    """
    frame, lines = _read_csv(path, sep)
    tcol, vcol = _column(frame, [time_column]), _column(frame, [value_column])
    if tcol is None or vcol is None:
        missing = [c for c, f in ((time_column, tcol), (value_column, vcol)) if not f]
        raise TimeSeriesError(
            str(path),
            ", ".join(missing),
            [f"no such column; the file has {', '.join(map(str, frame.columns))}"],
        )
    checked = _options("read_timeseries_csv", options, ReadOptions)
    return _to_steps(
        _parse_times(_get(frame, tcol), date_format),
        _get(frame, vcol),
        lines=lines,
        source=str(path),
        column=vcol,
        name=vcol,
        unit=unit,
        options=checked,
    )


_LCL_TIME = ("DateTime", "tstp")
_LCL_VALUE = ("KWH/hh (per half hour)", "energy(kWh/hh)", "KWH/hh")
_LCL_ID = ("LCLid",)


def read_lcl_households(
    path: str | os.PathLike,
    *,
    households: Sequence[str] | None = None,
    **options: Unpack[RepairOptions],
) -> dict[str, pd.Series]:
    """Read the households of a Low Carbon London smart-meter CSV file as load in kW at
    15-minute steps.

    The London Datastore files have columns `LCLid, stdorToU, DateTime, KWH/hh (per half
    hour)` (the Kaggle copy: `LCLid, tstp, energy(kWh/hh)`); a file without `LCLid`
    holds one household, named after the file. Readings are energy per half hour (kWh);
    they become average kW (x 2) and are resampled linearly (energy is conserved each
    day). LCL does not document whether `DateTime` marks the start or the end of its
    half hour: `label="start"` is the default reading, and `"end"` the alternative.
    LCL's "Null" readings count as missing values. `stdorToU` is not read.

    **Arguments:**

    - `path`: the CSV file.
    - `households`: the `LCLid`s to read (default: all, in file order).
    - the rest (`RepairOptions`: `label`, `repair`, `max_gap`, `min_days`) as in
        `to_steps`.

    **Returns:**

    `{LCLid: series}`, each as `to_steps` returns it.

    **Raises:**

    `TimeSeriesError` naming the file and, per household, each problem found.
    """
    checked = _options("read_lcl_households", options, RepairOptions)
    return _read_lcl(path, households, False, checked)


def read_lcl_csv(
    path: str | os.PathLike,
    *,
    household: str | None = None,
    **options: Unpack[RepairOptions],
) -> pd.Series:
    """Read one household of a Low Carbon London smart-meter CSV file as load in kW at
    15-minute steps (see `read_lcl_households`).

    **Arguments:**

    - `household`: its `LCLid`; needed when the file holds several households.
    - the rest as in `read_lcl_households`.
    """
    chosen = None if household is None else [household]
    checked = _options("read_lcl_csv", options, RepairOptions)
    (series,) = _read_lcl(path, chosen, True, checked).values()
    return series


def _read_lcl(
    path: str | os.PathLike,
    households: Sequence[str] | None,
    one: bool,
    options: _Options,
) -> dict[str, pd.Series]:
    frame, lines = _read_csv(path, ",")
    tcol = _column(frame, _LCL_TIME)
    if tcol is None and str(frame.columns[0]).startswith("Unnamed"):
        tcol = str(frame.columns[0])  # a household file saved with its index
    vcol, idcol = _column(frame, _LCL_VALUE), _column(frame, _LCL_ID)
    if tcol is None or vcol is None:
        raise TimeSeriesError(
            str(path),
            vcol or _LCL_VALUE[0],
            [
                "not a Low Carbon London file: expected a time column "
                f"({' or '.join(_LCL_TIME)}) and a reading column "
                f"({' or '.join(_LCL_VALUE[:2])}); the file has "
                f"{', '.join(map(str, frame.columns))}"
            ],
        )
    if idcol is None:
        ids = np.full(len(frame), os.path.splitext(os.path.basename(path))[0])
    else:
        ids = np.asarray(_get(frame, idcol).str.strip())
    available = list(dict.fromkeys(ids.tolist()))
    if one and households is None and len(available) > 1:
        raise TimeSeriesError(
            str(path),
            idcol or "LCLid",
            [
                f"the file holds {len(available)} households ({_more(available)}): "
                "pass household=, or use read_lcl_households"
            ],
        )
    chosen = available if households is None else list(households)
    unknown = [h for h in chosen if h not in available]
    if unknown:
        raise TimeSeriesError(
            str(path),
            idcol or "LCLid",
            [f"no household {_more(unknown)}; the file has {_more(available)}"],
        )
    times = _parse_times(_get(frame, tcol), None)
    out: dict[str, pd.Series] = {}
    problems: list[str] = []
    for household in chosen:
        rows = np.flatnonzero(ids == household)
        try:
            out[household] = _to_steps(
                times[rows],
                _get(frame, vcol).iloc[rows].reset_index(drop=True),
                lines=lines[rows],
                source=str(path),
                column=vcol,
                name=household,
                unit="kWh",
                options=dataclasses.replace(options, method="linear", plausible=None),
                expected_interval_minutes=30,
            )
        except TimeSeriesError as e:
            problems += [f"{household}: {p}" for p in e.problems]
    if problems:
        raise TimeSeriesError(str(path), vcol, problems)
    return out
