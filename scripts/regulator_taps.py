"""Record the regulator taps OpenDSS's controls settle at, for the built-in feeders.

gridflex keeps regulators at fixed taps (their controls off). A built-in
feeder should sit at the usual reference operating point, the taps OpenDSS's
`RegControl`s settle at under the feeder's nominal load, so this script solves each
feeder in OpenDSS with its controls on and writes those taps to
`src/gridflex/feeders/data/regulator_taps.json`, which `gridflex.feeders.ieee13()` and
`ieee123()` read.

- IEEE 13: the master script itself solves (snapshot, controls on); one more solve
    checks the taps have settled.
- IEEE 123: the master script, then the control settings of the first script of
    `Run_IEEE123Bus.DSS` (one tap step per control iteration, the head regulator first,
    `MaxControlIter=30`), as `shared/data/scripts/solve_feeders.py` applies them.

Each feeder gets two records: `taps`, settled for the nominal (spot, peak) load, and
`homes`, settled with every spot load at the households' mean net demand (`Set
loadmult=HOMES_LOADMULT`): the load the homes that replace the spot loads draw on
average. A home's peak equals its share of the spot load (`gridflex.env.place_homes`),
and over the shipped data's training months a household's mean demand net of its PV
is `HOMES_LOADMULT` (0.097) of its peak (the 17 measured homes: the sum of their mean
load minus PV over the sum of their 99th-percentile loads; `homes_loadmult()`
recomputes it). At the nominal taps the regulators boost for a peak the homes almost
never draw, and the feeder sits above 1.05 pu at every hour whatever the homes do.

Usage, from the repository root:

    python scripts/regulator_taps.py
"""

import hashlib
import json
import pathlib
import sys

import opendssdirect as dss


DATA = pathlib.Path(__file__).resolve().parents[1] / "src/gridflex/feeders/data"
OUT = DATA / "regulator_taps.json"

CASES = {
    "ieee13": ("ieee13/IEEE13Nodeckt.dss", []),
    "ieee123": (
        "ieee123/IEEE123Master.dss",
        [
            "RegControl.creg1a.maxtapchange=1 Delay=15",
            "RegControl.creg2a.maxtapchange=1 Delay=30",
            "RegControl.creg3a.maxtapchange=1 Delay=30",
            "RegControl.creg4a.maxtapchange=1 Delay=30",
            "RegControl.creg3c.maxtapchange=1 Delay=30",
            "RegControl.creg4b.maxtapchange=1 Delay=30",
            "RegControl.creg4c.maxtapchange=1 Delay=30",
            "Set MaxControlIter=30",
        ],
    ),
}


HOMES_LOADMULT = 0.097


def homes_loadmult() -> float:
    """Mean net demand (load - PV) over peak load (99th percentile) of the shipped
    data's 17 measured homes, over its training months."""
    import numpy as np

    from gridflex.data import default_scenarios

    train, _ = default_scenarios().split(11, 1)
    load = np.asarray(train.load_profiles_kw, dtype=np.float64)
    pv = np.asarray(train.pv_profiles_kw_per_kwp, dtype=np.float64)
    load = load[np.asarray(train.load_profile)]
    load = load * np.asarray(train.load_scale)[:, None, None]
    pv = pv[np.asarray(train.pv_profile)] * np.asarray(train.pv_kwp)[:, None, None]
    peak = np.quantile(load.reshape(load.shape[0], -1), 0.99, axis=1)
    return float((load - pv).mean(axis=(1, 2)).sum() / peak.sum())


def regulator_taps(master: pathlib.Path, settings: list[str]) -> dict:
    dss.Text.Command("clear")
    dss.Text.Command(f"redirect [{master}]")
    for command in settings:
        dss.Text.Command(command)
    dss.Solution.Solve()
    if not dss.Solution.Converged():
        sys.exit(f"{master.name}: OpenDSS did not converge.")
    taps, positions, controls = {}, {}, {}
    for control in dss.RegControls.AllNames():
        dss.RegControls.Name(control)
        transformer = str(dss.RegControls.Transformer()).lower()
        winding = dss.RegControls.Winding()
        dss.Transformers.Name(transformer)
        values = []
        for w in range(1, int(dss.Transformers.NumWindings() or 0) + 1):
            dss.Transformers.Wdg(w)
            values.append(round(float(dss.Transformers.Tap() or 0.0), 12))
        taps[transformer] = values
        positions[transformer] = dss.RegControls.TapNumber()
        controls[transformer] = {"regcontrol": control, "winding": winding}
    return {
        "taps": taps,
        "tap_positions": positions,
        "controls": controls,
        "control_iterations": dss.Solution.ControlIterations(),
        "master": str(master.relative_to(DATA)),
        "master_sha256": hashlib.sha256(master.read_bytes()).hexdigest(),
        "settings": settings,
    }


def main() -> None:
    out: dict[str, object] = {
        "about": (
            "Regulator taps (per unit, one per winding) at which OpenDSS's RegControls "
            "settle for each feeder's nominal load ('taps') and for the households' "
            "mean net demand ('homes': every spot load at 'loadmult'), snapshot "
            "solution. Written by scripts/regulator_taps.py; see "
            "feeders/data/SOURCES.md."
        ),
        "engine": f"opendssdirect.py {dss.__version__}; "
        + dss.Basic.Version().splitlines()[0],
    }
    loadmult = homes_loadmult()
    if round(loadmult, 3) != HOMES_LOADMULT:
        sys.exit(f"HOMES_LOADMULT is {HOMES_LOADMULT}; the data give {loadmult:.4f}.")
    for name, (master, settings) in CASES.items():
        record = regulator_taps(DATA / master, settings)
        homes = regulator_taps(
            DATA / master, [*settings, f"Set loadmult={HOMES_LOADMULT}"]
        )
        record["homes"] = {
            "loadmult": HOMES_LOADMULT,
            **{k: homes[k] for k in ("taps", "tap_positions", "control_iterations")},
        }
        out[name] = record
        print(name, record["tap_positions"], "homes:", homes["tap_positions"])
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
