"""The shipped dataset: 17 real homes on the 2013 calendar of the Low Carbon London
tariff trial (provenance, licences, construction and checksum in `data/SOURCES.md`).

The file holds the series at their source resolution (hourly load and PV, half-hourly
tariff and temperature); they are resampled to 15-minute steps here, once per process:
load and PV linearly (energy kept each day), temperature linearly between readings,
prices held over their half hour.
"""

import functools
from pathlib import Path

import numpy as np
from jaxtyping import PRNGKeyArray

from ._resample import resample_days
from ._scenarios import _from_arrays, Scenarios


DATASET_PATH = Path(__file__).parent / "data" / "gridflex_2013.npz"
"""Where the shipped 2013 dataset lies (households, PV, temperature, prices; its
provenance and how to rebuild it: `scripts/build_dataset.py` and the data docs)."""


@functools.cache
def _arrays() -> dict[str, np.ndarray]:
    with np.load(DATASET_PATH, allow_pickle=False) as raw:
        f = {k: raw[k] for k in raw.files}
    out = {
        "load_profiles_kw": resample_days(f["load_kwh_per_h"], 60, "linear"),
        "pv_profiles_kw_per_kwp": resample_days(f["pv_w_per_kw"] / 1000, 60, "linear"),
        "profile_pv_kwp": f["pv_kwp"].astype(np.float64),
        "temperature_c": resample_days(f["temperature_c"], 30, "point"),
        "price_import": resample_days(f["price_import_gbp_per_kwh"], 30, "hold"),
        "price_export": resample_days(f["price_export_gbp_per_kwh"], 30, "hold"),
    }
    for array in out.values():
        array.flags.writeable = False
    out["profile_names"] = f["building"]
    out["start"] = f["start"]
    return out


def default_scenarios(
    n_homes: int | None = None, *, seed: int | PRNGKeyArray = 0
) -> Scenarios:
    """The shipped real dataset: 365 days (1 January to 31 December 2013) of 17
    CityLearn 2022 homes' load and PV, the Low Carbon London dynamic time-of-use import
    tariff and London temperature of 2013, and the GB Feed-in Tariff export rate, in
    GBP.

    Its twelve months are split with `split(train_months=11)`: January to November for
    training, December (31 days) held out.

    **Arguments:**

    - `n_homes`: the population size (see `Scenarios.for_homes`); `None` gives the 17
        measured homes as they are, in building order.
    - `seed`: an integer seed or a JAX PRNG key for the population.
    """
    a = _arrays()
    scenarios = _from_arrays(
        load_profiles_kw=a["load_profiles_kw"],
        pv_profiles_kw_per_kwp=a["pv_profiles_kw_per_kwp"],
        profile_pv_kwp=a["profile_pv_kwp"],
        temperature_c=a["temperature_c"],
        price_import=a["price_import"],
        price_export=a["price_export"],
        start_date=str(a["start"])[:10],
        currency="GBP",
        profile_names=tuple(f"citylearn_2022/{n}" for n in a["profile_names"].tolist()),
        name="gridflex 2013 dataset",
    )
    return scenarios if n_homes is None else scenarios.for_homes(seed, n_homes)
