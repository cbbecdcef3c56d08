"""Record the regulator taps OpenDSS's controls settle at, for the built-in feeders.

The native reader keeps regulators at fixed taps (their controls off). A built-in
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

Usage (needs `pip install opendssdirect.py`), from the repository root:

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
            "settle for each feeder's nominal load, snapshot solution. Written by "
            "scripts/regulator_taps.py; see feeders/data/SOURCES.md."
        ),
        "engine": f"opendssdirect.py {dss.__version__}; "
        + dss.Basic.Version().splitlines()[0],
    }
    for name, (master, settings) in CASES.items():
        record = regulator_taps(DATA / master, settings)
        out[name] = record
        print(name, record["tap_positions"])
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
