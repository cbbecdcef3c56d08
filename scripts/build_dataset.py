"""Build gridflex's shipped dataset, `src/gridflex/data/data/gridflex_2013.npz`.

It packs, on the 2013 calendar of the Low Carbon London (LCL) tariff trial:

- hourly household load (kWh per hour) and rooftop-PV output (W per kW installed) of
    the 17 CityLearn 2022 homes, with their PV sizes (kWp) from CityLearn's schema.json;
- the half-hourly LCL dynamic time-of-use import tariff of 2013 (GBP/kWh) and the
    half-hourly London City Airport temperature (degC) that comes with it;
- a half-hourly export price: the GB Feed-in Tariff export rate for PV installations
    eligible from 1 August 2012, 4.5 p/kWh until 31 March 2013 and 4.64 p/kWh from
    1 April 2013 (its annual RPI uprating).

CityLearn's rows carry month, hour (1-24, hour ending) and day type but no year or day
of the month. Day boundaries are where `hour` returns to 1; days are numbered within
each month from the first full day (1 August), and the single row before it (month 7,
hour 24) is the last hour of 31 July. Each row is then placed on the 2013 calendar by
month, day of month and hour (hour h -> 2013-MM-DD (h-1):00, the hour it ends counted
from the hour it starts). The weekday sequence (1 August a Monday, 31 July a Monday)
fits August 2016 to July 2017; its weekdays do not follow 2013's. 31 July 2013 takes its
23:00 hour from CityLearn's first row and its other hours from the last day.

The file is written deterministically (fixed zip timestamps, sorted entries), so the
same sources give the same bytes; the script prints its size and sha256, which
`src/gridflex/data/data/SOURCES.md` records.

Usage, from the repository root:

    python scripts/build_dataset.py --source ../shared/data/timeseries
"""

import argparse
import calendar
import hashlib
import io
import json
import pathlib
import zipfile

import numpy as np
import pandas as pd


ROOT = pathlib.Path(__file__).resolve().parents[1]
OUT = ROOT / "src/gridflex/data/data/gridflex_2013.npz"
YEAR = 2013
N_BUILDINGS = 17
CITYLEARN = "citylearn_2022_phase_all"
LCL = "lcl/lcl_dtou_2013_price_temperature_aggdemand.csv"
# GB Feed-in Tariff export rate (PV eligible on or after 1 August 2012), GBP/kWh.
EXPORT_RATES = [("2013-01-01", 0.045), ("2013-04-01", 0.0464)]


def citylearn_on_2013(frame: pd.DataFrame) -> np.ndarray:
    """Row order that puts a CityLearn building file on the 2013 hours (hour
    beginning, 2013-01-01 00:00 first)."""
    month = frame["month"].to_numpy()
    hour = frame["hour"].to_numpy()
    if not ((hour >= 1) & (hour <= 24)).all():
        raise ValueError("CityLearn hours must be 1..24")
    block = np.cumsum(hour == 1)  # 0 for rows before the first full day
    dom = np.zeros(len(frame), dtype=np.int64)
    day, prev_month = 0, None
    for b in range(1, block.max() + 1):
        rows = block == b
        (m,) = np.unique(month[rows])
        day = day + 1 if m == prev_month else 1
        prev_month = m
        if not np.array_equal(hour[rows], np.arange(1, rows.sum() + 1)):
            raise ValueError(f"day {b} does not run through hours 1, 2, ...")
        dom[rows] = day
        if day > calendar.monthrange(YEAR, m)[1]:
            raise ValueError(f"month {m} has more than its days")
    head = block == 0
    if head.any():
        first = pd.Timestamp(YEAR, month[block == 1][0], 1) - pd.Timedelta(days=1)
        if not (month[head] == first.month).all():
            raise ValueError("rows before the first full day are not its eve")
        dom[head] = first.day
    stamps = pd.to_datetime(
        {"year": YEAR, "month": month, "day": dom, "hour": 0}
    ) + pd.to_timedelta(hour - 1, unit="h")
    order = np.argsort(stamps.to_numpy(), kind="stable")
    expected = pd.date_range(f"{YEAR}-01-01", periods=8760, freq="h")
    if not (stamps.to_numpy()[order] == expected.to_numpy()).all():
        raise ValueError("CityLearn rows do not cover each hour of 2013 exactly once")
    return order


def build(source: pathlib.Path) -> dict[str, np.ndarray]:
    schema = json.loads((source / CITYLEARN / "schema.json").read_text())
    names, loads, pvs, kwp = [], [], [], []
    for i in range(1, N_BUILDINGS + 1):
        name = f"Building_{i}"
        building = schema["buildings"][name]
        frame = pd.read_csv(source / CITYLEARN / building["energy_simulation"])
        order = citylearn_on_2013(frame)
        names.append(name)
        loads.append(frame["non_shiftable_load"].to_numpy()[order])
        pvs.append(frame["solar_generation"].to_numpy()[order])
        kwp.append(building["pv"]["attributes"]["nominal_power"])

    lcl = pd.read_csv(source / LCL, parse_dates=["datetime"])
    expected = pd.date_range(f"{YEAR}-01-01", periods=17520, freq="30min")
    if not (lcl["datetime"].to_numpy() == expected.to_numpy()).all():
        raise ValueError("the LCL file is not the half hours of 2013 in order")
    if lcl[["price_gbp_per_kwh", "temperature_c"]].isna().any().any():
        raise ValueError("the LCL file has missing values")
    export = np.zeros(len(expected))
    for start, rate in EXPORT_RATES:
        export[expected >= pd.Timestamp(start)] = rate

    return {
        "building": np.array(names),
        "pv_kwp": np.array(kwp, dtype=np.float32),
        "load_kwh_per_h": np.array(loads, dtype=np.float32),
        "pv_w_per_kw": np.array(pvs, dtype=np.float32),
        "price_import_gbp_per_kwh": lcl["price_gbp_per_kwh"].to_numpy(np.float64),
        "price_export_gbp_per_kwh": export,
        "temperature_c": lcl["temperature_c"].to_numpy(np.float32),
        "start": np.array(f"{YEAR}-01-01T00:00"),
    }


def write(arrays: dict[str, np.ndarray], out: pathlib.Path) -> bytes:
    """A `.npz` whose bytes depend only on the arrays."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            array = io.BytesIO()
            np.lib.format.write_array(array, arrays[name], allow_pickle=False)
            zf.writestr(info, array.getvalue(), compresslevel=9)
    data = buffer.getvalue()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--source",
        type=pathlib.Path,
        default=ROOT.parent / "shared/data/timeseries",
        help="the folder holding citylearn_2022_phase_all/ and lcl/",
    )
    parser.add_argument("--out", type=pathlib.Path, default=OUT)
    args = parser.parse_args()
    data = write(build(args.source), args.out)
    print(f"{args.out}: {len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
