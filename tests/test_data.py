"""gridflex.data: the shipped dataset, scenarios, splits, and the CSV readers."""

import hashlib
import pathlib
import re

import equinox as eqx
import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given

import gridflex as gf
import gridflex.data as gd


SHARED = pathlib.Path(__file__).resolve().parents[2] / "shared/data/timeseries"
IMPORT_LEVELS = (0.0399, 0.1176, 0.672)  # LCL dToU Low / Normal / High, GBP/kWh


@pytest.fixture(scope="module")
def shipped():
    return gd.default_scenarios()


@pytest.fixture(scope="module")
def population():
    return gd.default_scenarios(1000, seed=0)


def host_episode(sc: gd.Scenarios, days) -> dict[str, np.ndarray]:
    """The gather `Scenarios.episode` does, written out on the host with loops."""
    load = np.asarray(sc.load_profiles_kw)
    pv = np.asarray(sc.pv_profiles_kw_per_kwp)
    profile, pv_profile = np.asarray(sc.load_profile), np.asarray(sc.pv_profile)
    shift, scale, kwp = map(np.asarray, (sc.day_shift, sc.load_scale, sc.pv_kwp))
    n = sc.n_days
    out_load = np.empty((len(days), 96, sc.n_homes))
    out_pv = np.empty_like(out_load)
    for e, d in enumerate(days):
        for h in range(sc.n_homes):
            i = int(d) + int(shift[h])
            while not 0 <= i < n:  # reflect at the ends of the span
                i = -i if i < 0 else 2 * (n - 1) - i
            out_load[e, :, h] = scale[h] * load[profile[h], i]
            out_pv[e, :, h] = kwp[h] * pv[pv_profile[h], d]
    return {
        "load_kw": out_load,
        "pv_kw": out_pv,
        "temperature_c": np.asarray(sc.temperature_c)[days],
        "price_import": np.asarray(sc.price_import)[days],
        "price_export": np.asarray(sc.price_export)[days],
        "day_of_year": np.asarray(sc.day_of_year)[days],
    }


def test_data_layer_imports_no_other_gridflex_layer():
    import ast

    for path in pathlib.Path(gd.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1, f"{path.name} imports from {node.module}"
            elif isinstance(node, ast.Import | ast.ImportFrom):
                names = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
                assert not any(n.startswith("gridflex") for n in names), path.name


# -- the shipped dataset ----------------------------------------------------------


def test_shipped_span_and_shapes(shipped):
    assert (shipped.n_profiles, shipped.n_homes, shipped.n_days) == (17, 17, 365)
    assert (shipped.start_date, shipped.end_date) == ("2013-01-01", "2013-12-31")
    assert np.all(np.diff(shipped.dates) == np.timedelta64(1, "D"))
    assert shipped.currency == "GBP"
    assert shipped.load_profiles_kw.shape == (17, 365, gd.STEPS_PER_DAY)
    assert shipped.temperature_c.shape == (365, 96) and gd.STEP_MINUTES == 15
    assert shipped.load_profiles_kw.dtype == jnp.float64  # the default float (x64 on)
    np.testing.assert_array_equal(shipped.day_of_year, np.arange(1, 366))
    assert shipped.profile_names[0] == "citylearn_2022/Building_1"
    np.testing.assert_array_equal(shipped.pv_kwp, [4] * 3 + [5] + [4] * 5 + [5] * 8)


def test_shipped_values_are_physical(shipped):
    load = np.asarray(shipped.load_profiles_kw)
    pv = np.asarray(shipped.pv_profiles_kw_per_kwp)
    assert load.min() >= 0 and load.max() < 15  # kW for one home
    assert pv.min() >= 0 and pv.max() < 1.1  # kW per kWp
    # Annual energies as the sources document them (SOURCES.md of the shared data).
    annual_load = load.sum(axis=(1, 2)) * 0.25 / 1000
    annual_pv = pv.sum(axis=(1, 2)) * 0.25
    assert annual_load.min() > 6.4 and annual_load.max() < 14.8  # MWh
    healthy = np.delete(annual_pv, [13, 14])  # kWh per kWp
    assert healthy.min() > 1200 and healthy.max() < 1900
    # As measured (SOURCES.md): Building 14 yields a third, Building 15 almost nothing.
    assert 400 < annual_pv[13] < 600 and annual_pv[14] < 50
    night = pv[:, :, :12]  # 00:00-03:00
    assert night.max() == 0
    temp = np.asarray(shipped.temperature_c)
    assert -10 < temp.min() and temp.max() < 40
    assert temp[:31].mean() < temp[181:212].mean()  # January colder than July
    price = np.asarray(shipped.price_import)
    assert set(np.unique(price).round(6)) == set(IMPORT_LEVELS)
    export = np.asarray(shipped.price_export)
    assert (export[:90] == 0.045).all() and (export[90:] == 0.0464).all()


def test_shipped_resampling_keeps_each_days_energy(shipped):
    with np.load(gd.DATASET_PATH) as raw:
        hourly = raw["load_kwh_per_h"].astype(np.float64).reshape(17, 365, 24)
        price = raw["price_import_gbp_per_kwh"].reshape(365, 48)
    np.testing.assert_allclose(
        np.asarray(shipped.load_profiles_kw).sum(axis=-1) * 0.25,
        hourly.sum(axis=-1),
        rtol=1e-12,
    )
    steps = np.asarray(shipped.price_import)  # held over each half hour
    np.testing.assert_array_equal(steps[:, ::2], price)
    np.testing.assert_array_equal(steps[:, 1::2], price)


def test_shipped_file_is_small_and_matches_its_checksum():
    data = gd.DATASET_PATH.read_bytes()
    assert len(data) < 2_000_000
    sources = (gd.DATASET_PATH.parent / "SOURCES.md").read_text()
    recorded = re.search(r"sha256[^0-9a-f]*([0-9a-f]{64})", sources)
    assert recorded is not None
    assert hashlib.sha256(data).hexdigest() == recorded.group(1)


@pytest.mark.skipif(not SHARED.exists(), reason="needs ../shared/data/timeseries")
def test_build_script_reproduces_the_shipped_file(tmp_path):
    import importlib.util

    path = pathlib.Path(__file__).resolve().parents[1] / "scripts/build_dataset.py"
    spec = importlib.util.spec_from_file_location("build_dataset", path)
    assert spec is not None and spec.loader is not None
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    rebuilt = build.build(SHARED)
    with np.load(gd.DATASET_PATH) as shipped:
        assert sorted(shipped.files) == sorted(rebuilt)
        for name, array in rebuilt.items():
            np.testing.assert_array_equal(shipped[name], array, strict=True)
    # Byte for byte too, given the same zlib.
    data = build.write(rebuilt, tmp_path / "x.npz")
    assert (
        hashlib.sha256(data).digest()
        == hashlib.sha256(gd.DATASET_PATH.read_bytes()).digest()
    )


# -- split by date ----------------------------------------------------------------


def test_split_of_the_shipped_year(population):
    train, test = population.split(train_months=11, test_months=1)
    assert (train.start_date, train.end_date) == ("2013-01-01", "2013-11-30")
    assert (test.start_date, test.end_date) == ("2013-12-01", "2013-12-31")
    assert (train.n_days, test.n_days) == (334, 31)
    assert not set(train.dates.tolist()) & set(test.dates.tolist())
    assert test.dates[0] == train.dates[-1] + 1
    assert np.all(np.diff(test.dates) == np.timedelta64(1, "D"))
    np.testing.assert_array_equal(test.day_of_year, np.arange(335, 366))
    for field in ("load_profile", "day_shift", "load_scale", "pv_kwp"):
        np.testing.assert_array_equal(getattr(train, field), getattr(population, field))
    np.testing.assert_array_equal(test.price_import, population.price_import[334:])
    assert population.split(train_months=None)[1].start_date == "2013-12-01"


def test_split_needing_more_data_says_what_is_there(shipped):
    with pytest.raises(ValueError, match=r"12 calendar months.*needs 13") as info:
        shipped.split()  # 12 + 1 months
    assert "2013-01-01 to 2013-12-31" in str(info.value)
    assert "at most 11" in str(info.value)


def _days_series(first: str, n_days: int, values=None, name="x", unit="kW"):
    index = pd.date_range(first, periods=96 * n_days, freq="15min")
    if values is None:
        values = np.random.default_rng(n_days).uniform(0.1, 2.0, len(index))
    series = pd.Series(values, index=index, name=name)
    series.attrs["unit"] = unit
    return series


def test_split_of_longer_data_uses_twelve_months_then_one():
    # 15 Jan 2012 to 31 Mar 2013: a partial first month, then 14 complete ones.
    n_days = (pd.Timestamp("2013-04-01") - pd.Timestamp("2012-01-15")).days
    load = _days_series("2012-01-15", n_days)
    sc = gd.Scenarios.from_series(
        load={"a": load},
        pv=None,
        temperature=_days_series("2012-01-15", n_days, unit="degC"),
        price_import=0.2,
        price_export=0.05,
        currency="EUR",
    )
    train, test = sc.split(train_months=12, test_months=1)
    assert (train.start_date, train.end_date) == ("2012-01-15", "2012-12-31")
    assert (test.start_date, test.end_date) == ("2013-01-01", "2013-01-31")
    train, test = sc.split(train_months=None, test_months=2)
    assert (train.end_date, test.start_date, test.end_date) == (
        "2013-01-31",
        "2013-02-01",
        "2013-03-31",
    )
    shorter = sc.take_days(0, sc.n_days - 3)  # ends 28 March: March is incomplete
    with pytest.raises(ValueError, match="2013-03 is incomplete"):
        shorter.split(train_months=14, test_months=1)


# -- populations ------------------------------------------------------------------


def _assignment(sc):
    fields = ("load_profile", "pv_profile", "day_shift", "load_scale", "pv_kwp")
    return [np.asarray(getattr(sc, f)) for f in fields]


def test_population_is_seeded(shipped):
    same = [shipped.for_homes(7, 100), shipped.for_homes(7, 100)]
    for a, b in zip(*map(_assignment, same)):
        np.testing.assert_array_equal(a, b)
    other = shipped.for_homes(8, 100)
    assert any(
        not np.array_equal(a, b)
        for a, b in zip(_assignment(same[0]), _assignment(other))
    )
    by_key = [shipped.for_homes(jax.random.key(3), 50) for _ in range(2)]
    np.testing.assert_array_equal(by_key[0].day_shift, by_key[1].day_shift)
    raw_key = shipped.for_homes(jax.random.PRNGKey(3), 50)
    np.testing.assert_array_equal(by_key[0].day_shift, raw_key.day_shift)


def test_population_homes_differ(population):
    profile, _, shift, scale, kwp = _assignment(population)
    counts = np.bincount(profile, minlength=17)
    assert counts.max() - counts.min() <= 1
    # The first round is the measured homes as they are.
    assert sorted(profile[:17]) == list(range(17))
    assert (shift[:17] == 0).all() and (scale[:17] == 1).all()
    np.testing.assert_array_equal(kwp[:17], population.profile_pv_kwp[profile[:17]])
    # Variants: nonzero shifts within +-30 days, scales and PV sizes in range.
    assert (shift[17:] != 0).all() and np.abs(shift).max() <= 30
    assert (0.7 <= scale).all() and (scale <= 1.3).all()
    ratio = kwp / np.asarray(population.profile_pv_kwp)[profile]
    assert (0.5 <= ratio).all() and (ratio <= 1.5).all()
    # With 61 shifts for at most 59 homes per profile, no two homes share their days.
    assert len(set(zip(profile.tolist(), shift.tolist()))) == 1000
    ep = population.episode(np.arange(0, 365, 30))
    rows = np.asarray(ep.load_kw).transpose(2, 0, 1).reshape(1000, -1)
    assert len(np.unique(rows, axis=0)) == 1000


def test_population_arguments_are_checked(shipped):
    with pytest.raises(ValueError, match="n_homes=0"):
        shipped.for_homes(0, 0)
    with pytest.raises(ValueError, match="load_scale"):
        shipped.for_homes(0, 40, load_scale=(1.5, 1.0))


# -- episodes ---------------------------------------------------------------------


def test_episode_under_jit_and_vmap_matches_a_host_gather(shipped):
    train, test = shipped.for_homes(1, 60).split(train_months=11)
    for part, days in ((train, [0, 5, 333, 170]), (test, [0, 1, 30])):
        days = np.array(days)
        expected = host_episode(part, days)
        ep = jax.jit(gd.Scenarios.episode)(part, jnp.asarray(days))
        assert ep.load_kw.shape == (len(days), 96, 60)
        assert ep.price_import.shape == (len(days), 96)
        for name, value in expected.items():
            np.testing.assert_allclose(getattr(ep, name), value, rtol=1e-12)
        batched = jax.jit(jax.vmap(gd.Scenarios.episode, in_axes=(None, 0)))(
            part, jnp.asarray(days)[:, None]
        )
        np.testing.assert_allclose(batched.load_kw[:, 0], expected["load_kw"])
        np.testing.assert_allclose(
            batched.temperature_c[:, 0], expected["temperature_c"]
        )
        assert (
            str(part.dates[days[-1]])
            == {True: "2013-12-31", False: "2013-06-20"}[part is test]
        )


def test_episode_refuses_days_outside_the_span(shipped):
    _, test = shipped.split(train_months=11)
    with pytest.raises(Exception, match="outside"):
        eqx.filter_jit(test.episode)(jnp.array([31]))


# -- statistics ---------------------------------------------------------------------


def test_stats_bound_the_training_data(shipped):
    train, _ = shipped.for_homes(2, 30).split(train_months=11)
    stats = train.stats()
    ep = host_episode(train, np.arange(train.n_days))
    net = ep["load_kw"] - ep["pv_kw"]
    np.testing.assert_allclose(stats.load_kw_max, ep["load_kw"].max(axis=(0, 1)))
    np.testing.assert_allclose(stats.pv_kw_min, ep["pv_kw"].min(axis=(0, 1)))
    np.testing.assert_allclose(stats.net_kw_min, net.min(axis=(0, 1)))
    np.testing.assert_allclose(stats.net_kw_max, net.max(axis=(0, 1)))
    for name in ("load_kw", "pv_kw", "net_kw", "temperature_c", "price_import"):
        x = net if name == "net_kw" else ep[name]
        scaled = np.asarray(stats.normalise(name, jnp.asarray(x)))
        assert scaled.min() == pytest.approx(0) and scaled.max() == pytest.approx(1)
    # A constant series (one export price over the span) maps to 0.
    winter = train.take_days(0, 31)
    assert np.all(winter.stats().normalise("price_export", winter.price_export) == 0)
    with pytest.raises(ValueError, match="use one of"):
        stats.normalise("wind", jnp.zeros(3))


# -- resampling -------------------------------------------------------------------


def _series(values, interval_minutes: int) -> pd.Series:
    """A series of `interval_minutes` intervals from midnight, 1 January 2013."""
    index = pd.date_range(
        "2013-01-01", periods=len(values), freq=f"{interval_minutes}min"
    )
    return pd.Series(values, index=index)


def _steps(series: pd.Series, method: str) -> pd.Series:
    # Any magnitude (drawn values may be all zero, which the readers would question).
    return gf.data.to_steps(series, unit="kW", method=method, plausible=(-1e3, 1e3))


@given(
    interval=st.sampled_from([30, 60, 180]),
    data=st.data(),
)
def test_linear_upsampling_keeps_energy_and_sign(interval, data):
    n = 24 * 60 // interval
    values = data.draw(
        hnp.arrays(np.float64, n, elements=st.floats(0, 20, allow_subnormal=False))
    )
    steps = _steps(_series(values, interval), "linear")
    assert steps.shape == (96,)
    assert steps.sum() * 15 == pytest.approx(values.sum() * interval, abs=1e-9)
    assert steps.min() >= 0
    # A price holds over its period: each step has the value its start falls in.
    held = _steps(_series(values, interval), "hold")
    expected = _series(values, interval).reindex(held.index, method="ffill")
    np.testing.assert_array_equal(held.to_numpy(), expected.to_numpy())


@given(values=hnp.arrays(np.float64, 288, elements=st.floats(-5, 5)))
def test_finer_series_are_averaged_over_steps(values):
    steps = _steps(_series(values, 5), "linear")
    np.testing.assert_allclose(steps, values.reshape(96, 3).mean(axis=1))


def test_point_readings_are_read_at_step_midpoints():
    readings = _series([0.0, 4.0, 8.0], 30)  # at 00:00, 00:30, 01:00
    steps = gf.data.to_steps(readings, unit="degC", method="point", min_days=0.01)
    np.testing.assert_allclose(steps, [1, 3, 5, 7, 8, 8])  # flat after the last


def test_intervals_that_do_not_tile_steps_are_refused():
    with pytest.raises(gf.data.TimeSeriesError, match="interval of 20 min"):
        gf.data.to_steps(_series(np.zeros(72), 20), unit="kW", method="linear")


# -- readers ------------------------------------------------------------------------


def _write_lcl(path, households, start="2013-03-01", n_days=2, seed=0):
    rng = np.random.default_rng(seed)
    rows, energy = [], {}
    times = pd.date_range(start, periods=48 * n_days, freq="30min")
    for h in households:
        kwh = rng.uniform(0.02, 1.5, len(times)).round(3)
        energy[h] = kwh
        for t, e in zip(times, kwh):
            rows.append(f"{h},Std,{t}.0000000,{e}")
    path.write_text(
        "LCLid,stdorToU,DateTime,KWH/hh (per half hour) \n" + "\n".join(rows)
    )
    return energy


def test_lcl_csv_round_trips_to_kw_at_15_minutes(tmp_path):
    path = tmp_path / "lcl.csv"
    energy = _write_lcl(path, ["MAC000002", "MAC000003"])
    homes = gd.read_lcl_households(path)
    assert list(homes) == ["MAC000002", "MAC000003"]
    for name, series in homes.items():
        assert isinstance(series.index, pd.DatetimeIndex) and len(series) == 192
        assert series.index[0] == pd.Timestamp("2013-03-01")
        assert (series.index[1] - series.index[0]) == pd.Timedelta("15min")
        assert series.attrs["unit"] == "kW" and series.name == name
        daily = series.to_numpy().reshape(2, 96).sum(axis=1) * 0.25
        np.testing.assert_allclose(daily, energy[name].reshape(2, 48).sum(axis=1))
    with pytest.raises(gd.TimeSeriesError, match="holds 2 households"):
        gd.read_lcl_csv(path)
    one = gd.read_lcl_csv(path, household="MAC000003")
    pd.testing.assert_series_equal(one, homes["MAC000003"])
    with pytest.raises(gd.TimeSeriesError, match="no household MAC9"):
        gd.read_lcl_csv(path, household="MAC9")


def test_lcl_file_of_one_household_without_id_column(tmp_path):
    # The shape of the shared MAC000060.csv: the index saved as an unnamed column.
    times = pd.date_range("2013-01-01", periods=96, freq="30min")
    kwh = np.full(96, 0.25)
    path = tmp_path / "MAC000060.csv"
    pd.DataFrame({"KWH/hh (per half hour) ": kwh}, index=times).to_csv(path)
    series = gd.read_lcl_csv(path)
    assert series.name == "MAC000060"
    np.testing.assert_allclose(series, 0.5)  # 0.25 kWh per half hour = 0.5 kW


def _write_csv(path, times, values, time_column="time", value_column="value"):
    pd.DataFrame({time_column: times, value_column: values}).to_csv(path, index=False)


def test_generic_csv_converts_units(tmp_path):
    times = pd.date_range("2013-06-01", periods=48, freq="h")
    path = tmp_path / "pv.csv"
    watts = np.r_[np.zeros(6), np.linspace(0, 3000, 12), np.linspace(3000, 0, 12)]
    watts = np.r_[watts, np.zeros(18)]
    _write_csv(path, times, watts)
    pv = gd.read_timeseries_csv(
        path, time_column="time", value_column="value", unit="W"
    )
    assert pv.attrs["unit"] == "kW" and len(pv) == 192
    assert pv.sum() * 0.25 == pytest.approx(watts.sum() / 1000)  # kWh kept
    energy = tmp_path / "energy.csv"
    _write_csv(energy, times, watts / 1000)  # kWh per hour
    per_interval = gd.read_timeseries_csv(
        energy, time_column="time", value_column="value", unit="kWh"
    )
    pd.testing.assert_series_equal(per_interval, pv, check_names=False)
    kelvin = tmp_path / "t.csv"
    _write_csv(kelvin, times, np.full(48, 283.15))
    temp = gd.read_timeseries_csv(
        kelvin, time_column="TIME", value_column="value", unit="K"
    )
    np.testing.assert_allclose(temp, 10.0)
    pence = tmp_path / "price.csv"
    _write_csv(pence, times, np.arange(48.0))
    price = gd.read_timeseries_csv(
        pence, time_column="time", value_column="value", unit="p/kWh"
    )
    np.testing.assert_allclose(price, np.repeat(np.arange(48.0), 4) / 100)
    assert price.attrs["unit"] == "currency/kWh"


def test_end_labels_shift_intervals_back(tmp_path):
    times = pd.date_range("2013-01-01 00:30", periods=48, freq="30min")  # ends
    path = tmp_path / "x.csv"
    _write_csv(path, times, np.ones(48))
    series = gd.read_timeseries_csv(
        path, time_column="time", value_column="value", unit="kWh", label="end"
    )
    assert series.index[0] == pd.Timestamp("2013-01-01") and len(series) == 96


def _hourly(tmp_path, values, times=None, name="load.csv"):
    if times is None:
        times = pd.date_range("2013-01-01", periods=len(values), freq="h")
    path = tmp_path / name
    _write_csv(path, [str(t) for t in times], values)
    return path


def _read(path, **kwargs):
    kwargs.setdefault("unit", "kW")
    return gd.read_timeseries_csv(
        path, time_column="time", value_column="value", **kwargs
    )


def test_gaps_are_named_or_repaired(tmp_path):
    times = pd.date_range("2013-01-01", periods=50, freq="h").delete([10, 11])
    path = _hourly(tmp_path, np.arange(48.0) / 10 + 1, times)
    with pytest.raises(gd.TimeSeriesError) as info:
        _read(path)
    message = str(info.value)
    assert str(path) in message and "'value'" in message
    assert "2 missing timestamp(s) in 1 gap(s)" in message
    assert "2013-01-01 10:00:00 to 2013-01-01 12:00:00" in message
    with pytest.warns(gd.RepairWarning, match="interpolated 1 gap"):
        fixed = _read(path, repair="interpolate", max_gap="2h")
    assert fixed.attrs["repairs"] and len(fixed) == 50 * 4
    # 09:00 reads 1.9, 12:00 reads 2.0: the filled hours lie on the line between.
    hours = fixed.to_numpy().reshape(50, 4).mean(axis=1)
    assert 1.9 < hours[10] < hours[11] < 2.0
    with pytest.raises(gd.TimeSeriesError, match="longer than max_gap=1h"):
        _read(path, repair="interpolate", max_gap="1h")


def test_missing_values_are_named_with_their_lines(tmp_path):
    values = [1.0] * 30
    values[4] = "Null"  # pyright: ignore[reportCallIssue, reportArgumentType]
    values[7] = ""  # pyright: ignore[reportCallIssue, reportArgumentType]
    path = _hourly(tmp_path, values)
    with pytest.raises(gd.TimeSeriesError) as info:
        _read(path)
    message = str(info.value)
    assert "2 missing or unreadable value(s): line 6 (2013-01-01 04:00:00)" in message
    assert "line 6 (2013-01-01 04:00:00): 'Null'" in message
    with pytest.warns(gd.RepairWarning):
        fixed = _read(path, repair="interpolate")
    np.testing.assert_allclose(fixed, 1.0)


def test_wrong_units_are_refused_with_a_hint(tmp_path):
    watts = _hourly(tmp_path, np.full(48, 850.0))  # W, declared kW
    with pytest.raises(gd.TimeSeriesError, match="W given as kW\\? pass unit='W'"):
        _read(watts)
    kw_as_w = _hourly(tmp_path, np.full(48, 0.85), name="small.csv")  # kW, declared W
    with pytest.raises(gd.TimeSeriesError, match="implausibly small"):
        _read(kw_as_w, unit="W")
    kelvin = _hourly(tmp_path, np.full(48, 280.0), name="t.csv")
    with pytest.raises(gd.TimeSeriesError, match="look like kelvin"):
        _read(kelvin, unit="degC")
    per_mwh = _hourly(tmp_path, np.full(48, 95.0), name="p.csv")
    with pytest.raises(gd.TimeSeriesError, match="currency/MWh"):
        _read(per_mwh, unit="currency/kWh")
    assert _read(watts, plausible=(0, 1000)).max() == 850  # a big site, on purpose
    with pytest.raises(ValueError, match="unit='kw' is not known"):
        _read(watts, unit="kw")


def test_duplicated_and_unsorted_timestamps(tmp_path):
    times = list(pd.date_range("2013-01-01", periods=30, freq="h"))
    values = list(np.linspace(1, 2, 30))
    dup = _hourly(tmp_path, values + [values[5]], times + [times[5]], "dup.csv")
    with pytest.raises(gd.TimeSeriesError, match="1 duplicated timestamp.*same value"):
        _read(dup)
    with pytest.warns(gd.RepairWarning, match="dropped 1 exact duplicate"):
        assert len(_read(dup, repair="interpolate")) == 120
    clash = _hourly(tmp_path, values + [9.0], times + [times[5]], "clash.csv")
    with pytest.raises(gd.TimeSeriesError, match="different values: line 32"):
        _read(clash, repair="interpolate")  # no guess between two readings
    order = [*range(10), 11, 10, *range(12, 30)]
    shuffled = _hourly(
        tmp_path, [values[i] for i in order], [times[i] for i in order], "u.csv"
    )
    with pytest.raises(gd.TimeSeriesError, match="not in increasing order.*line 13"):
        _read(shuffled)
    with pytest.warns(gd.RepairWarning, match="sorted"):
        pd.testing.assert_series_equal(
            _read(shuffled, repair="interpolate"), _read(_hourly(tmp_path, values))
        )


def test_too_short_and_malformed_files(tmp_path):
    short = _hourly(tmp_path, np.ones(6))
    with pytest.raises(gd.TimeSeriesError, match="too short.*06:00:00.*1 day"):
        _read(short)
    assert len(_read(short, min_days=0.25)) == 24
    with pytest.raises(gd.TimeSeriesError, match="no such column; the file has"):
        gd.read_timeseries_csv(short, time_column="t", value_column="value", unit="kW")
    bad_time = tmp_path / "bad.csv"
    bad_time.write_text("time,value\n2013-01-01 00:00,1\nyesterday,1\n")
    with pytest.raises(gd.TimeSeriesError, match="could not be read: line 3"):
        _read(bad_time)
    odd = _hourly(
        tmp_path, np.ones(48), pd.date_range("2013-01-01 00:10", periods=48, freq="h")
    )
    with pytest.raises(gd.TimeSeriesError, match="15-minute boundaries"):
        _read(odd)
    lcl = tmp_path / "hourly_lcl.csv"
    _write_csv(lcl, pd.date_range("2013-01-01", periods=48, freq="h"), np.ones(48))
    lcl.write_text(lcl.read_text().replace("time,value", "DateTime,KWH/hh"))
    with pytest.raises(
        gd.TimeSeriesError, match="every 60 min; this format is every 30"
    ):
        gd.read_lcl_csv(lcl)


def test_in_memory_series_are_checked_too():
    index = pd.date_range("2013-01-01", periods=48, freq="30min")
    series = pd.Series(np.full(48, 0.5, dtype=np.float32), index=index, name="meter")
    np.testing.assert_array_equal(gd.to_steps(series, unit="kWh"), 1.0)
    series.iloc[3] = np.nan
    with pytest.raises(gd.TimeSeriesError, match="(?s)series 'meter'.*01:30"):
        gd.to_steps(series, unit="kWh")


def test_public_signatures_are_type_checked(shipped):
    with pytest.raises(Exception, match="Type-check error"):
        shipped.episode([0, 1])  # pyright: ignore[reportArgumentType]


# -- scenarios from users' series -------------------------------------------------


def test_scenarios_from_read_series(tmp_path):
    path = tmp_path / "lcl.csv"
    _write_lcl(path, ["A", "B"], start="2013-01-01", n_days=3)
    homes = gd.read_lcl_households(path)
    day = np.clip(np.sin(np.linspace(-np.pi / 2, 3 * np.pi / 2, 96)), 0, None) * 0.8
    pv = _days_series("2013-01-01", 3, np.tile(day, 3), name="pv")
    temperature = _days_series("2013-01-01", 3, np.linspace(0, 5, 288), unit="degC")
    price = _days_series("2013-01-01", 3, np.full(288, 0.2), unit="currency/kWh")
    sc = gd.Scenarios.from_series(
        load=homes,
        pv=pv,
        pv_kwp={"A": 3.0, "B": 4.0},
        temperature=temperature,
        price_import=price,
        price_export=0.05,
        currency="GBP",
    )
    assert (sc.n_homes, sc.n_days, sc.start_date) == (2, 3, "2013-01-01")
    ep = sc.episode(jnp.array([2]))
    np.testing.assert_allclose(ep.load_kw[0, :, 0], homes["A"].to_numpy()[192:])
    np.testing.assert_allclose(ep.pv_kw[0, :, 1], 4.0 * day)
    np.testing.assert_allclose(ep.price_export, 0.05)
    bigger = sc.for_homes(0, 10)
    assert bigger.n_homes == 10 and (np.asarray(bigger.pv_profile) == 0).all()

    def scenarios(**kw):
        given = dict(
            load=homes,
            pv=None,
            temperature=temperature,
            price_import=0.2,
            price_export=0.05,
            currency="GBP",
        )
        return gd.Scenarios.from_series(**(given | kw))

    # Spans that differ are named, with the whole days they share.
    with pytest.raises(
        ValueError, match="first_day='2013-01-02', last_day='2013-01-03'"
    ):
        scenarios(temperature=temperature.iloc[96:])
    part = scenarios(
        temperature=temperature.iloc[96:], first_day="2013-01-02", last_day="2013-01-03"
    )
    assert part.n_days == 2 and float(part.pv_kwp.max()) == 0
    with pytest.raises(ValueError, match="temperature is in kW; degC expected"):
        scenarios(temperature=homes["A"])
    with pytest.raises(ValueError, match="pv_kwp"):
        scenarios(pv=pv)
    # a negative household load (generation netted in, or a sign slip) is refused
    netted = dict(homes)
    netted["B"] = homes["B"] - 5.0 * pv.to_numpy()
    with pytest.raises(
        ValueError,
        match=r"load_profiles_kw is negative at \d+ step\(s\), first .* kW in profile "
        r"'B' on 2013-01-01 step \d+; household load is consumption .*give "
        "generation as `pv`",
    ):
        scenarios(load=netted)


def test_an_empty_csv_names_the_file(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ValueError, match="empty.csv: the file is empty"):
        gd.read_lcl_csv(empty)
    with pytest.raises(ValueError, match="empty.csv: the file is empty"):
        gd.read_timeseries_csv(empty, time_column="t", value_column="v", unit="kW")


def test_a_misspelt_option_is_refused_by_name(tmp_path):
    # the readers take their options as keywords (ReadOptions, RepairOptions): a
    # misspelt one raises as Python does, and names the ones there are
    series = pd.Series(
        np.ones(96), index=pd.date_range("2024-01-01", periods=96, freq="15min")
    )
    with pytest.raises(TypeError, match="to_steps.*'reapir'.*max_gap, method"):
        gd.to_steps(series, unit="kW", reapir="interpolate")  # pyright: ignore
    lcl = tmp_path / "lcl.csv"
    lcl.write_text("LCLid,DateTime,KWH/hh (per half hour)\nMAC1,2024-01-01 00:00,1\n")
    with pytest.raises(TypeError, match="read_lcl_csv.*'method'.*label, max_gap"):
        gd.read_lcl_csv(lcl, method="hold")  # pyright: ignore
