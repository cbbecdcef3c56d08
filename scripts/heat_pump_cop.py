"""Derive the heat-pump COP lines that `gridflex.devices.HeatPump.sample` draws from.

Reads the hplib database (511 real heat-pump models fitted to Keymark test data; MIT
licence) and writes one row per outdoor air/water model to
`src/gridflex/devices/data/heat_pump_cop.csv`: a straight line
`COP(t_out) = cop0 + cop_slope_per_c * t_out` fitted to the model's COP at a 35 °C
supply temperature (low-temperature radiators or underfloor heating) over outdoor
temperatures -10..15 °C, plus the model's electrical and thermal power at -7/35 °C.

hplib's COP model for a regulated or on-off air/water unit (hplib 1.9,
`hplib.simulate`, heating mode) is

    COP = p1 * t_in + p2 * t_out + p3 + p4 * t_amb,  with t_in = t_amb = outdoor air,

and its electrical power is `P_el_ref * (same form with the p*_P_el_h coefficients)`.
The COP is therefore exactly linear in the outdoor temperature and the least-squares
line reproduces it (the script prints the largest residual); the fit is kept so that
the same table could be made from a non-linear model.

Kept: outdoor air/water units (hplib groups 1 and 4), named models (hplib's averaged
"Generic" rows left out), one row per distinct set of COP coefficients (the same unit
sold under several names appears once), thermal output at -7/35 °C between 3 and
16 kW (single homes).

Usage, from the repository root:

    python scripts/heat_pump_cop.py [path/to/hplib_database.csv]
"""

import csv
import hashlib
import pathlib
import sys

import numpy as np


ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = ROOT.parent / "shared/data/timeseries/hplib/hplib_database.csv"
OUT = ROOT / "src/gridflex/devices/data/heat_pump_cop.csv"

SUPPLY_C = 35.0
FIT_RANGE_C = np.arange(-10.0, 15.0 + 1e-9, 1.0)
RATING_C = -7.0
P_TH_RANGE_KW = (3.0, 16.0)


def _linear(row: dict, prefix: str, t_in, t_out, t_amb):
    p1, p2, p3, p4 = (float(row[f"p{i}_{prefix}"]) for i in range(1, 5))
    return p1 * t_in + p2 * t_out + p3 + p4 * t_amb


def main(source: pathlib.Path) -> None:
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    with open(source, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    cop_cols = ("p1_COP [-]", "p2_COP [-]", "p3_COP [-]", "p4_COP [-]")
    el_cols = (
        "p1_P_el_h [1/°C]", "p2_P_el_h [1/°C]", "p3_P_el_h [-]", "p4_P_el_h [1/°C]"
    )  # fmt: skip
    out, seen, worst = [], set(), 0.0
    for row in rows:
        if row["Type"] != "Outdoor Air/Water" or row["Manufacturer"] == "Generic":
            continue
        if float(row["Group"]) not in (1.0, 4.0):
            continue
        key = tuple(row[c] for c in cop_cols)
        if key in seen:
            continue
        cop_row = {f"p{i + 1}_COP": row[c] for i, c in enumerate(cop_cols)}
        el_row = {f"p{i + 1}_el": row[c] for i, c in enumerate(el_cols)}
        t = FIT_RANGE_C
        cop = _linear(cop_row, "COP", t, SUPPLY_C, t)
        slope, intercept = np.polyfit(t, cop, 1)
        worst = max(worst, float(np.max(np.abs(intercept + slope * t - cop))))
        if not row["P_el_h_ref [W]"]:
            continue
        p_el = (
            float(row["P_el_h_ref [W]"])
            / 1000
            * _linear(el_row, "el", RATING_C, SUPPLY_C, RATING_C)
        )
        cop_rating = _linear(cop_row, "COP", RATING_C, SUPPLY_C, RATING_C)
        p_th = p_el * cop_rating
        if not (P_TH_RANGE_KW[0] <= p_th <= P_TH_RANGE_KW[1]):
            continue
        seen.add(key)
        out.append(
            {
                "manufacturer": row["Manufacturer"].strip(),
                "model": row["Model"].strip(),
                "hplib_group": int(float(row["Group"])),
                "cop0": f"{intercept:.6f}",
                "cop_slope_per_c": f"{slope:.6f}",
                "cop_at_m10c": f"{intercept - 10 * slope:.4f}",
                "cop_at_15c": f"{intercept + 15 * slope:.4f}",
                "p_el_kw_m7_35": f"{p_el:.4f}",
                "p_th_kw_m7_35": f"{p_th:.4f}",
                "mape_cop_percent": f"{float(row['MAPE_COP']):.3f}",
            }
        )
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(out[0]))
        writer.writeheader()
        writer.writerows(out)
    print(f"source sha256 {digest}")
    print(f"{len(out)} models written to {OUT.relative_to(ROOT)}")
    print(f"largest residual of the linear fit: {worst:.2e}")
    cop0 = np.array([float(r["cop0"]) for r in out])
    slope = np.array([float(r["cop_slope_per_c"]) for r in out])
    print(f"cop0 {cop0.min():.3f}..{cop0.max():.3f}, slope {slope.min():.4f}..")
    print(f"{slope.max():.4f}; COP at -10 °C >= {(cop0 - 10 * slope).min():.3f}")


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE)
