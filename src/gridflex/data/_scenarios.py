"""`Scenarios`: the exogenous series of a population of homes, compact and gathered
inside `jit`.

A population of 1,000 homes over 13 months would be 1,000 copies of 13 months of
15-minute data. Instead a `Scenarios` holds a few real *profiles* (load in kW, PV in kW
per kWp installed, each `[profile, day, step]`), the shared `[day, step]` outdoor
temperature and import/export prices, and per home a small *assignment*: which profile,
a day shift of its load, a scale of its load and its PV size. `episode(days)` gathers
the arrays of a batch of days for all homes, inside `jit`.

Days are consecutive calendar days starting at `start_date`; step `t` of a day stands
for `[t * 15 min, (t + 1) * 15 min)` in the data's own clock (see `docs/data.md`).
Units: load and PV in kW (load positive = consumption, PV positive = generation),
temperature in degC, prices in `currency` per kWh.
"""

import dataclasses
import math
from collections.abc import Mapping

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jaxtyping import Array, Float, Int, PRNGKeyArray

from ._resample import STEP_MINUTES, STEPS_PER_DAY


_STATS_FIELDS = (
    "load_kw",
    "pv_kw",
    "net_kw",
    "temperature_c",
    "price_import",
    "price_export",
)


def _float(x) -> jax.Array:
    return jnp.asarray(x, dtype=jax.dtypes.canonicalize_dtype(np.float64))


def _int(x) -> jax.Array:
    return jnp.asarray(x, dtype=jax.dtypes.canonicalize_dtype(np.int64))


def _reflect(i: jax.Array, n: int) -> jax.Array:
    """Map any integer day index into `[0, n)` by reflection at the ends: a shifted
    day stays within the span (no test day in training) and near its season."""
    if n == 1:
        return jnp.zeros_like(i)
    period = 2 * (n - 1)
    i = jnp.mod(i, period)
    return jnp.where(i >= n, period - i, i)


class EpisodeData(eqx.Module):
    """Exogenous inputs of a batch of episodes (one day each), for every home.

    Load and PV are in kW (load positive = consumption, PV positive = generation),
    temperature in degC, prices in the scenarios' currency per kWh. `day` indexes the
    scenarios' days; `day_of_year` is the calendar day of the year (1 = 1 January).
    """

    load_kw: Float[Array, "episode step home"]
    pv_kw: Float[Array, "episode step home"]
    temperature_c: Float[Array, "episode step"]
    price_import: Float[Array, "episode step"]
    price_export: Float[Array, "episode step"]
    day: Int[Array, " episode"]
    day_of_year: Int[Array, " episode"]


class ScenarioStats(eqx.Module):
    """Minimum and maximum of each series over a scenarios' days (per home for load,
    PV and net demand `load - pv`), for normalising observations to about [0, 1].

    Compute them on the training split only and use them for both splits.
    """

    load_kw_min: Float[Array, " home"]
    load_kw_max: Float[Array, " home"]
    pv_kw_min: Float[Array, " home"]
    pv_kw_max: Float[Array, " home"]
    net_kw_min: Float[Array, " home"]
    net_kw_max: Float[Array, " home"]
    temperature_c_min: Float[Array, ""]
    temperature_c_max: Float[Array, ""]
    price_import_min: Float[Array, ""]
    price_import_max: Float[Array, ""]
    price_export_min: Float[Array, ""]
    price_export_max: Float[Array, ""]

    def bounds(self, name: str) -> tuple[Array, Array]:
        """`(min, span)` of series `name`, the affine map `normalise` applies (a
        constant series gets span 1, so it maps to 0)."""
        if name not in _STATS_FIELDS:
            raise ValueError(f"name={name!r}: use one of {', '.join(_STATS_FIELDS)}.")
        lo, hi = getattr(self, f"{name}_min"), getattr(self, f"{name}_max")
        return lo, jnp.where(hi > lo, hi - lo, jnp.ones_like(hi))

    def normalise(
        self, name: str, x: Float[Array | np.ndarray, "*batch"]
    ) -> Float[Array, "*batch"]:
        """`(x - min) / (max - min)` for series `name` (`"load_kw"`, `"pv_kw"`,
        `"net_kw"`, `"temperature_c"`, `"price_import"`, `"price_export"`); per-home
        statistics broadcast over the last axis of `x` (homes). A constant series
        maps to 0."""
        lo, span = self.bounds(name)
        x = jnp.asarray(x)
        if lo.ndim:
            lo = jnp.broadcast_to(lo, x.shape)
            span = jnp.broadcast_to(span, x.shape)
        return (x - lo) / span


class Scenarios(eqx.Module):
    """Exogenous series of a population of homes at 15-minute steps (96 per day).

    Build one with `gridflex.data.default_scenarios` (the shipped real dataset) or
    `Scenarios.from_series` (your own data); give it a population with `for_homes`,
    split it by date with `split`, gather episodes with `episode` (inside `jit`).

    Per home `h` on day `d`:
    `load_kw = load_scale[h] * load_profiles_kw[load_profile[h], d', :]`, where
    `d' = d + day_shift[h]` reflected into the span, and
    `pv_kw = pv_kwp[h] * pv_profiles_kw_per_kwp[pv_profile[h], d, :]` (PV is not
    shifted: homes on one feeder share the weather).
    """

    load_profiles_kw: Float[Array, "profile day step"]
    pv_profiles_kw_per_kwp: Float[Array, "pv_profile day step"]
    temperature_c: Float[Array, "day step"]
    price_import: Float[Array, "day step"]
    price_export: Float[Array, "day step"]
    day_of_year: Int[Array, " day"]
    profile_pv_kwp: Float[Array, " profile"]
    load_profile: Int[Array, " home"]
    pv_profile: Int[Array, " home"]
    day_shift: Int[Array, " home"]
    load_scale: Float[Array, " home"]
    pv_kwp: Float[Array, " home"]
    start_date: str = eqx.field(static=True)
    currency: str = eqx.field(static=True)
    profile_names: tuple[str, ...] = eqx.field(static=True)
    name: str = eqx.field(static=True, default="scenarios")

    def __check_init__(self):
        n_profiles, n_days, n_steps = self.load_profiles_kw.shape
        if n_steps != STEPS_PER_DAY:
            raise ValueError(
                f"{self.name}: {n_steps} steps per day; gridflex uses "
                f"{STEPS_PER_DAY} steps of 15 minutes."
            )
        if len(self.profile_names) != n_profiles:
            raise ValueError(
                f"{self.name}: {len(self.profile_names)} profile names for "
                f"{n_profiles} load profiles."
            )
        n_pv = self.pv_profiles_kw_per_kwp.shape[0]
        if n_pv not in (1, n_profiles):
            raise ValueError(
                f"{self.name}: {n_pv} PV profiles; give one shared PV profile or one "
                f"per load profile ({n_profiles})."
            )
        try:
            start = np.datetime64(self.start_date, "D")
        except ValueError:
            raise ValueError(
                f"{self.name}: start_date={self.start_date!r} is not a date "
                "(YYYY-MM-DD)."
            ) from None
        if _concrete(self.load_profiles_kw, self.pv_profiles_kw_per_kwp):
            for field, names, what, fix in (
                (
                    "load_profiles_kw",
                    self.profile_names,
                    "household load is consumption",
                    "give generation as `pv`, not as negative load",
                ),
                (
                    "pv_profiles_kw_per_kwp",
                    (),
                    "PV output is generation",
                    "give it as a positive output per kWp",
                ),
            ):
                x = np.asarray(getattr(self, field))
                neg = x < 0
                if neg.any():
                    p_, d_, t_ = np.argwhere(neg)[0]
                    which = f"profile {names[p_]!r}" if names else f"profile {p_}"
                    when = np.datetime64(self.start_date, "D") + int(d_)
                    raise ValueError(
                        f"{self.name}: {field} is negative at {int(neg.sum())} "
                        f"step(s), first {x[p_, d_, t_]:.4g} kW in {which} on {when} "
                        f"step {int(t_)}; {what} (>= 0): {fix}."
                    )
        if _concrete(self.load_profile, self.pv_profile, self.day_of_year):
            for field, bound in (("load_profile", n_profiles), ("pv_profile", n_pv)):
                idx = np.asarray(getattr(self, field))
                if idx.size and (idx.min() < 0 or idx.max() >= bound):
                    raise ValueError(
                        f"{self.name}: {field} holds indices outside [0, {bound})."
                    )
            if not np.array_equal(
                np.asarray(self.day_of_year), _day_of_year(start, n_days)
            ):
                raise ValueError(
                    f"{self.name}: day_of_year does not match start_date "
                    f"{self.start_date} (days must be consecutive)."
                )

    # -- shape and calendar (host side) ------------------------------------------

    @property
    def n_profiles(self) -> int:
        return self.load_profiles_kw.shape[0]

    @property
    def n_days(self) -> int:
        return self.load_profiles_kw.shape[1]

    @property
    def n_homes(self) -> int:
        return self.load_profile.shape[0]

    @property
    def dates(self) -> np.ndarray:
        """The calendar date of each day, `datetime64[D]`."""
        return np.datetime64(self.start_date, "D") + np.arange(self.n_days)

    @property
    def end_date(self) -> str:
        """The last day, `YYYY-MM-DD`."""
        return str(self.dates[-1])

    # -- gathering (inside jit) ---------------------------------------------------

    def episode(self, days: Int[Array | np.ndarray, " episode"]) -> EpisodeData:
        """Gather the exogenous inputs of the given days (indices into this scenarios'
        days, `0 <= day < n_days`) for every home. Works under `jit` and `vmap`; an
        index out of range raises (through `equinox.error_if`).

        **Returns:**

        `EpisodeData` with `load_kw`, `pv_kw` `[episode, step, home]` and
        `temperature_c`, `price_import`, `price_export` `[episode, step]`.
        """
        d = jnp.asarray(days).astype(self.day_shift.dtype)
        d = eqx.error_if(
            d,
            (d < 0) | (d >= self.n_days),
            f"episode(days): a day index is outside [0, {self.n_days}) "
            f"({self.start_date} to {self.end_date}).",
        )
        shifted = _reflect(d[:, None] + self.day_shift[None, :], self.n_days)
        load = self.load_profiles_kw[self.load_profile[None, :], shifted]
        load = load * self.load_scale[None, :, None]
        pv = self.pv_profiles_kw_per_kwp[self.pv_profile[None, :], d[:, None]]
        pv = pv * self.pv_kwp[None, :, None]
        return EpisodeData(
            load_kw=jnp.swapaxes(load, 1, 2),
            pv_kw=jnp.swapaxes(pv, 1, 2),
            temperature_c=self.temperature_c[d],
            price_import=self.price_import[d],
            price_export=self.price_export[d],
            day=d,
            day_of_year=self.day_of_year[d],
        )

    def stats(self) -> ScenarioStats:
        """Minimum and maximum of every series over these days (per home for load,
        PV and net demand), for observation normalisation. Call it on the training
        split."""
        return _stats(self)

    # -- populations and splits (host side) ---------------------------------------

    def for_homes(
        self,
        key_or_seed: int | PRNGKeyArray,
        n_homes: int,
        *,
        max_shift_days: int = 30,
        load_scale: tuple[float, float] = (0.7, 1.3),
        pv_scale: tuple[float, float] = (0.5, 1.5),
    ) -> "Scenarios":
        """A population of `n_homes` homes drawn from the profiles, seeded.

        Profiles are dealt out in rounds, each a seeded permutation of all profiles,
        so each profile serves `n_homes / n_profiles` homes, give or take one. The
        first round's homes are the measured homes as they are (no shift, scale 1,
        their own PV size). Later homes are variants of their profile: the load is
        shifted by a nonzero whole number of days in `[-max_shift_days,
        max_shift_days]` (the variants of one profile take distinct shifts until all
        are used, so with the defaults the first 61 homes of a profile all differ in
        their days), scaled by a factor uniform in `load_scale`, and the PV size is the
        profile's own times a factor uniform in `pv_scale`.

        **Arguments:**

        - `key_or_seed`: an integer seed or a JAX PRNG key. The same seed gives the
            same population.
        - `n_homes`: the number of homes.
        - `max_shift_days`, `load_scale`, `pv_scale`: the variants' ranges.
        """
        if n_homes < 1:
            raise ValueError(f"n_homes={n_homes}: at least one home is needed.")
        if max_shift_days < 0:
            raise ValueError(f"max_shift_days={max_shift_days} must be >= 0.")
        for label, (lo, hi) in (("load_scale", load_scale), ("pv_scale", pv_scale)):
            if not 0 <= lo <= hi:
                raise ValueError(f"{label}=({lo}, {hi}): need 0 <= low <= high.")
        rng = _rng(key_or_seed)
        n_profiles = self.n_profiles
        rounds = math.ceil(n_homes / n_profiles)
        profile = np.concatenate([rng.permutation(n_profiles) for _ in range(rounds)])
        profile = profile[:n_homes]
        variant = np.arange(n_homes) >= n_profiles
        shifts = np.concatenate(
            [np.arange(-max_shift_days, 0), np.arange(1, max_shift_days + 1)]
        )
        shift = np.zeros(n_homes, dtype=np.int64)
        for p in range(n_profiles):
            homes = np.flatnonzero(variant & (profile == p))
            if homes.size and shifts.size:
                deals = math.ceil(homes.size / shifts.size)
                draws = np.concatenate([rng.permutation(shifts) for _ in range(deals)])
                shift[homes] = draws[: homes.size]
        scale = np.where(variant, rng.uniform(*load_scale, n_homes), 1.0)
        pv_factor = np.where(variant, rng.uniform(*pv_scale, n_homes), 1.0)
        pv_profile = (
            profile if self.pv_profiles_kw_per_kwp.shape[0] > 1 else 0 * profile
        )
        kwp = np.asarray(self.profile_pv_kwp)[profile] * pv_factor
        return dataclasses.replace(
            self,
            load_profile=_int(profile),
            pv_profile=_int(pv_profile),
            day_shift=_int(shift),
            load_scale=_float(scale),
            pv_kwp=_float(kwp),
        )

    def split(
        self, train_months: int | None = 12, test_months: int = 1
    ) -> tuple["Scenarios", "Scenarios"]:
        """Split by date: the first `train_months` calendar months for training, the
        following `test_months` for testing (consecutive days, to be chained).

        Months are counted from the month of the first day (a partial first month
        counts as one); the test months must be complete. `train_months=None` takes
        every month before the last `test_months` complete months. The homes are the
        same in both; a home's shifted load days stay inside its own split.

        The shipped 2013 dataset covers twelve months: use `split(train_months=11)`
        (January to November for training, December held out).
        """
        dates = self.dates
        months = dates.astype("datetime64[M]").astype(str)  # "YYYY-MM"
        unique = list(dict.fromkeys(months.tolist()))
        last_complete = str((dates[-1] + 1).astype("datetime64[M]")) != months[-1]
        n_usable = len(unique) - (0 if last_complete else 1)
        if train_months is None:
            train_months = n_usable - test_months
        if train_months < 1 or test_months < 1:
            raise ValueError(
                f"split(train_months={train_months}, test_months={test_months}): "
                "need at least one month of each."
            )
        need = train_months + test_months
        if need > n_usable:
            covered = (
                f"{len(unique)} calendar months, {self.start_date} to {self.end_date} "
                f"({self.n_days} days"
                + ("" if last_complete else f"; {unique[-1]} is incomplete")
                + ")"
            )
            raise ValueError(
                f"{self.name} covers {covered}; split(train_months={train_months}, "
                f"test_months={test_months}) needs {need} complete months. Use fewer "
                f"training months (at most {n_usable - test_months}; "
                "train_months=None takes all before the test months) or longer data."
            )
        index = {m: i for i, m in enumerate(unique)}
        month_of_day = np.array([index[m] for m in months.tolist()])
        train_days = np.flatnonzero(month_of_day < train_months)
        test_days = np.flatnonzero(
            (month_of_day >= train_months) & (month_of_day < need)
        )
        train = self.take_days(int(train_days[0]), int(train_days[-1]) + 1)
        test = self.take_days(int(test_days[0]), int(test_days[-1]) + 1)
        return train, test

    def take_days(self, start: int, stop: int) -> "Scenarios":
        """Days `[start, stop)` (indices into `dates`), the same homes: a season, a
        month, a shorter span to train or evaluate on (`split` cuts by months)."""
        return dataclasses.replace(
            self,
            load_profiles_kw=self.load_profiles_kw[:, start:stop],
            pv_profiles_kw_per_kwp=self.pv_profiles_kw_per_kwp[:, start:stop],
            temperature_c=self.temperature_c[start:stop],
            price_import=self.price_import[start:stop],
            price_export=self.price_export[start:stop],
            day_of_year=self.day_of_year[start:stop],
            start_date=str(self.dates[start]),
        )

    # -- construction ------------------------------------------------------------

    @classmethod
    def from_series(
        cls,
        *,
        load: Mapping[str, pd.Series],
        pv: Mapping[str, pd.Series] | pd.Series | None,
        temperature: pd.Series,
        price_import: pd.Series | float,
        price_export: pd.Series | float,
        currency: str,
        pv_kwp: Mapping[str, float] | float | None = None,
        first_day: str | None = None,
        last_day: str | None = None,
        name: str = "user data",
    ) -> "Scenarios":
        """Scenarios from 15-minute pandas series (as `read_lcl_csv`,
        `read_timeseries_csv` and `to_steps` return them), one home per load profile.
        Give it a larger population with `for_homes`.

        **Arguments:**

        - `load`: `{name: load in kW}`, one per profile.
        - `pv`: PV output **per kWp installed** (kW/kWp): one series per load profile
            (same keys), one series shared by all, or `None` (no PV).
        - `pv_kwp`: each profile's PV size in kWp (a mapping with the keys of `load`
            or one number for all); needed with `pv`.
        - `temperature`: outdoor temperature, degC.
        - `price_import`, `price_export`: currency per kWh; a number is a flat price.
        - `currency`: the currency's name, e.g. `"GBP"`.
        - `first_day`, `last_day`: the span to use (`YYYY-MM-DD`, inclusive); each
            series must cover it. Without them every series must cover the same whole
            days, midnight to midnight.
        - `name`: a name for messages.
        """
        # Long: its docstring documents every argument; the code is 63 lines
        if not load:
            raise ValueError("from_series: `load` is empty; give at least one profile.")
        names = list(load)
        series = _named_series(load, pv, temperature, price_import, price_export)
        first, n_days = _span(series, first_day, last_day)

        def steps(key: str) -> np.ndarray:
            return _day_array(key, series[key], first, n_days)

        load_arr = np.stack([steps(f"load[{k!r}]") for k in names])
        if pv is None:
            pv_arr = np.zeros((1, n_days, STEPS_PER_DAY))
            kwp = np.zeros(len(names))
        else:
            if pv_kwp is None:
                raise ValueError(
                    "from_series: `pv_kwp` is needed with `pv` (the installed size of "
                    "each profile's PV, in kWp)."
                )
            keys = (
                ["pv"] if isinstance(pv, pd.Series) else [f"pv[{k!r}]" for k in names]
            )
            pv_arr = np.stack([steps(k) for k in keys])
            if isinstance(pv_kwp, Mapping):
                if set(pv_kwp) != set(names):
                    raise ValueError(
                        f"from_series: `pv_kwp` must have the keys of `load` ({names})."
                    )
                kwp = np.array([float(pv_kwp[k]) for k in names])
            else:
                kwp = np.full(len(names), float(pv_kwp))

        def shared(key: str, value: pd.Series | float) -> np.ndarray:
            if isinstance(value, pd.Series):
                return steps(key)
            return np.full((n_days, STEPS_PER_DAY), float(value))

        return _from_arrays(
            load_profiles_kw=load_arr,
            pv_profiles_kw_per_kwp=pv_arr,
            profile_pv_kwp=kwp,
            temperature_c=steps("temperature"),
            price_import=shared("price_import", price_import),
            price_export=shared("price_export", price_export),
            start_date=str(first.date()),
            currency=currency,
            profile_names=tuple(names),
            name=name,
        )


def _named_series(load, pv, temperature, price_import, price_export):
    """Every given series under the name messages use (`load['A']`, `pv`, ...),
    each checked to be in gridflex's unit for it when it says its unit."""
    names = list(load)
    series: dict[str, pd.Series] = {f"load[{k!r}]": load[k] for k in names}
    if isinstance(pv, pd.Series):
        series["pv"] = pv
    elif pv is not None:
        if set(pv) != set(names):
            raise ValueError(
                "from_series: `pv` must have the keys of `load` (one PV profile "
                "per load profile) or be one series shared by all; got "
                f"{list(pv)} for {names}."
            )
        series |= {f"pv[{k!r}]": pv[k] for k in names}
    series["temperature"] = temperature
    for key, value in (
        ("price_import", price_import),
        ("price_export", price_export),
    ):
        if isinstance(value, pd.Series):
            series[key] = value
    expected = {"load": "kW", "pv": "kW", "temperature": "degC"}
    for key, s in series.items():
        unit = s.attrs.get("unit")
        want = expected.get(key.split("[")[0], "currency/kWh")
        if unit is not None and unit != want:
            raise ValueError(f"from_series: {key} is in {unit}; {want} expected.")
    return series


def _day_of_year(start: np.datetime64, n_days: int) -> np.ndarray:
    dates = start + np.arange(n_days)
    return (dates - dates.astype("datetime64[Y]")).astype(np.int64) + 1


def _from_arrays(
    *,
    load_profiles_kw: np.ndarray,
    pv_profiles_kw_per_kwp: np.ndarray,
    profile_pv_kwp: np.ndarray,
    temperature_c: np.ndarray,
    price_import: np.ndarray,
    price_export: np.ndarray,
    start_date: str,
    currency: str,
    profile_names: tuple[str, ...],
    name: str,
) -> Scenarios:
    """One home per profile, as measured; arrays at 15-minute steps `[.., day, 96]`."""
    n_profiles, n_days = load_profiles_kw.shape[:2]
    n_pv = pv_profiles_kw_per_kwp.shape[0]
    homes = np.arange(n_profiles)
    return Scenarios(
        load_profiles_kw=_float(load_profiles_kw),
        pv_profiles_kw_per_kwp=_float(pv_profiles_kw_per_kwp),
        temperature_c=_float(temperature_c),
        price_import=_float(price_import),
        price_export=_float(price_export),
        day_of_year=_int(_day_of_year(np.datetime64(start_date, "D"), n_days)),
        profile_pv_kwp=_float(profile_pv_kwp),
        load_profile=_int(homes),
        pv_profile=_int(homes if n_pv > 1 else 0 * homes),
        day_shift=_int(0 * homes),
        load_scale=_float(np.ones(n_profiles)),
        pv_kwp=_float(profile_pv_kwp),
        start_date=start_date,
        currency=currency,
        profile_names=profile_names,
        name=name,
    )


def _concrete(*xs: jax.Array) -> bool:
    """True if none of `xs` is a tracer (so their values can be checked here)."""
    try:
        for x in xs:
            np.asarray(x)
    except jax.errors.TracerArrayConversionError:
        return False
    return True


def _rng(key_or_seed: int | PRNGKeyArray) -> np.random.Generator:
    """A NumPy generator from a seed or a JAX key (host draws do not depend on JAX's
    float width, so a seed gives the same homes with and without float64)."""
    if isinstance(key_or_seed, int):
        return np.random.default_rng(key_or_seed)
    key = key_or_seed
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.random.default_rng(np.asarray(key).ravel().tolist())


@jax.jit
def _stats(scenarios: Scenarios) -> ScenarioStats:
    def body(carry, day):
        ep = scenarios.episode(day[None])
        load, pv = ep.load_kw[0], ep.pv_kw[0]  # [step, home]
        out = []
        for i, x in enumerate((load, pv, load - pv)):
            out.append(jnp.minimum(carry[2 * i], x.min(axis=0)))
            out.append(jnp.maximum(carry[2 * i + 1], x.max(axis=0)))
        return tuple(out), None

    inf = jnp.full(scenarios.n_homes, jnp.inf, dtype=scenarios.load_scale.dtype)
    days = jnp.arange(scenarios.n_days, dtype=scenarios.day_shift.dtype)
    (lmin, lmax, pmin, pmax, nmin, nmax), _ = jax.lax.scan(body, (inf, -inf) * 3, days)
    return ScenarioStats(
        load_kw_min=lmin,
        load_kw_max=lmax,
        pv_kw_min=pmin,
        pv_kw_max=pmax,
        net_kw_min=nmin,
        net_kw_max=nmax,
        temperature_c_min=scenarios.temperature_c.min(),
        temperature_c_max=scenarios.temperature_c.max(),
        price_import_min=scenarios.price_import.min(),
        price_import_max=scenarios.price_import.max(),
        price_export_min=scenarios.price_export.min(),
        price_export_max=scenarios.price_export.max(),
    )


def _span(
    series: Mapping[str, pd.Series], first_day: str | None, last_day: str | None
) -> tuple[pd.Timestamp, int]:
    """The whole days to use (first day, number of days): given, or the one span all
    series share exactly."""
    spans: dict[str, tuple[pd.Timestamp, pd.Timestamp]] = {}
    for key, s in series.items():
        index = s.index
        if not isinstance(index, pd.DatetimeIndex) or index.tz is not None:
            raise ValueError(
                f"from_series: {key} needs a tz-naive DatetimeIndex at 15-minute "
                "steps (use gridflex.data.to_steps or the CSV readers)."
            )
        seconds = index.to_numpy("datetime64[s]").astype(np.int64)
        if len(seconds) < 2 or not (np.diff(seconds) == 60 * STEP_MINUTES).all():
            raise ValueError(
                f"from_series: {key} is not at regular, increasing 15-minute steps "
                "(resample it with gridflex.data.to_steps)."
            )
        end = int(seconds[-1]) + 60 * STEP_MINUTES
        spans[key] = (_seconds(int(seconds[0])), _seconds(end))
    if first_day is not None or last_day is not None:
        if first_day is None or last_day is None:
            raise ValueError(
                "from_series: give both first_day and last_day, or neither."
            )
        first = _date(first_day, "first_day")
        n_days = (_date(last_day, "last_day") - first).days + 1
        if n_days < 1:
            raise ValueError(
                f"from_series: last_day {last_day} is before first_day {first_day}."
            )
        return first, n_days
    starts = {a for a, _ in spans.values()}
    ends = {b for _, b in spans.values()}
    if len(starts) == len(ends) == 1:
        (a,), (b,) = starts, ends
        if a == a.normalize() and b == b.normalize():
            return a, (b - a).days
    listing = "; ".join(f"{k}: {a} to {b}" for k, (a, b) in spans.items())
    common_a = max(starts).ceil("D")
    common_b = min(ends).floor("D") - pd.Timedelta(days=1)
    hint = (
        f" They share the whole days {common_a.date()} to {common_b.date()}: pass "
        f"first_day='{common_a.date()}', last_day='{common_b.date()}'."
        if common_b >= common_a
        else " They share no whole day."
    )
    raise ValueError(
        "from_series: the series do not cover the same whole days (midnight to "
        f"midnight): {listing}.{hint}"
    )


def _seconds(seconds: int) -> pd.Timestamp:
    stamp = pd.Timestamp(np.datetime64(seconds, "s"))
    assert isinstance(stamp, pd.Timestamp)
    return stamp


def _date(text: str, name: str) -> pd.Timestamp:
    day = pd.Timestamp(text)
    if not isinstance(day, pd.Timestamp) or day != day.normalize():
        raise ValueError(f"from_series: {name}={text!r} is not a date (YYYY-MM-DD).")
    return day


def _day_array(key: str, s: pd.Series, first: pd.Timestamp, n_days: int) -> np.ndarray:
    """`[n_days, 96]` from a regular 15-minute series covering the days from `first`."""
    want = pd.date_range(first, periods=n_days * STEPS_PER_DAY, freq="15min")
    values = np.asarray(s.reindex(want), dtype=np.float64)
    if np.isnan(values).any():
        first_missing = want[np.flatnonzero(np.isnan(values))[0]]
        raise ValueError(
            f"from_series: {key} does not cover {first.date()} to "
            f"{(first + pd.Timedelta(days=n_days - 1)).date()} without gaps (first "
            f"missing step: {first_missing}; it covers {s.index[0]} to "
            f"{s.index[-1]})."
        )
    return values.reshape(n_days, STEPS_PER_DAY)
