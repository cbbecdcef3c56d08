"""The built-in feeders: IEEE 13, IEEE 123 and the IEEE European LV feeder (full and
reduced), compiled by OpenDSS from the models shipped in `feeders/data/` (provenance,
licence and checksums in `data/SOURCES.md`) through `from_opendss`, the path every
OpenDSS model takes.

They are compiled from a copy of the data without `Solve` commands (IEEE 13's script
solves with its regulator controls on, which would move the taps), whose load shapes
are constants (the European LV model's one-minute profile files are not shipped, and a
snapshot power flow does not use them). Each is compiled once per process and cached;
a `Feeder` is immutable, so sharing it is safe.

Regulator taps: gridflex keeps regulators at fixed taps. The IEEE feeders'
scripts leave the taps to OpenDSS's `RegControl`s (IEEE 13's script even solves with
them), so a built-in feeder carries, by default, the taps those controls settle at for
the feeder's nominal load: the usual reference operating point. `taps="homes"` gives
the taps the same controls settle at for the households' mean net demand, the
operating point of a feeder whose spot loads homes replace (what `gridflex train`
uses: at the nominal taps the regulators boost for a peak the homes almost never
draw). Both were computed with OpenDSS by `scripts/regulator_taps.py` and are stored
in `data/regulator_taps.json`.
"""

import functools
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import get_args, Literal

from ._feeder import Feeder
from ._opendss import _import
from ._reference import solve_free_copy


BUILTIN_DATA = Path(__file__).parent / "data"
"""The folder of the shipped OpenDSS models as published, with `SOURCES.md` (where
each file comes from, its licence and checksum) and `regulator_taps.json`. The
feeders are compiled from a copy without `Solve` commands (`builtin_master`)."""
DEFAULT_FEEDER = "ieee13"
"""The built-in feeder every default uses (the README's main job, the CLI, the
PettingZoo environment): IEEE 13, small enough to train on a laptop."""
_MASTERS = {
    "ieee13": "ieee13/IEEE13Nodeckt.dss",
    "ieee123": "ieee123/IEEE123Master.dss",
    "european_lv": "european_lv/Master.dss",
    "european_lv_reduced": "european_lv_reduced/Master_reduced.dss",
}

BUILTIN_FEEDERS: tuple[str, ...] = tuple(_MASTERS)
"""The built-in feeders' names, each a function of this module (`feeders.ieee13()`)."""

TapChoice = Literal["regulated", "homes", "file"]
TAP_CHOICES: tuple[str, ...] = get_args(TapChoice)
"""The named regulator-tap settings a built-in feeder takes (`taps=`), besides a
mapping of transformer name to tap(s): the CLI's `--taps` choices come from here."""
Taps = TapChoice | Mapping[str, float | Sequence[float]]


def regulated_taps(
    name: str, at: Literal["nominal", "homes"] = "nominal"
) -> dict[str, list[float]]:
    """The taps OpenDSS's regulator controls settle at for built-in feeder `name`
    (empty for feeders without regulators): for its nominal load, or (`at="homes"`)
    with every spot load at the households' mean net demand (`loadmult` 0.097, see
    `scripts/regulator_taps.py`)."""
    record = json.loads((BUILTIN_DATA / "regulator_taps.json").read_text()).get(
        name, {}
    )
    if at == "homes":
        record = record.get("homes", {})
    elif at != "nominal":
        raise ValueError(f"at={at!r}: use 'nominal' or 'homes'.")
    return record.get("taps", {})


def resolve_taps(
    name: str, taps: str | Mapping[str, float | Sequence[float]]
) -> Mapping[str, float | Sequence[float]] | None:
    """Built-in feeder `name`'s taps (a `TapChoice` or a mapping; any other string is
    an error) as transformer name to tap(s), or `None` for the taps written in the
    model (`"file"`)."""
    if not isinstance(taps, str):
        return taps
    if taps == "regulated":
        return regulated_taps(name)
    if taps == "homes":
        return regulated_taps(name, "homes")
    if taps != "file":
        raise ValueError(
            f"taps={taps!r}: use 'regulated' (the taps OpenDSS's regulator controls "
            "settle at for the nominal load), 'homes' (settled for the households' "
            "mean net demand), 'file' (the taps written in the model) or a mapping "
            "of transformer name to tap(s)."
        )
    return None


def builtin_master(name: str) -> str:
    """The OpenDSS master file of built-in feeder `name`, in the copy of the data
    without `Solve` commands and with constant load shapes (see the module's
    docstring): the file the feeder is compiled from, and the one to replay it in."""
    if name not in _MASTERS:
        raise ValueError(
            f"{name!r} is not a built-in feeder ({', '.join(_MASTERS)}); pass the "
            "master .dss file the feeder was imported from."
        )
    return os.path.join(solve_free_copy(str(BUILTIN_DATA)), _MASTERS[name])


def _read(name: str, taps: Taps) -> Feeder:
    return _import(builtin_master(name), resolve_taps(name, taps), None, None, name)


@functools.cache
def _cached(name: str, taps: TapChoice) -> Feeder:
    return _read(name, taps)


def _feeder(name: str, taps: Taps) -> Feeder:
    return _cached(name, taps) if isinstance(taps, str) else _read(name, taps)


def ieee13(*, taps: Taps = "regulated") -> Feeder:
    """The IEEE 13-node test feeder (4.16 kV, 60 Hz; 41 nodes, 15 loads).

    Its OpenDSS script (the one distributed with OpenDSS) includes the stiff 115 kV
    source, the substation transformer and the three single-phase regulators at bus
    650, and it solves with the regulator controls on.

    **Arguments:**

    - `taps`: `"regulated"` (default): the taps OpenDSS's controls settle at for the
        nominal load (regulators 1, 2, 3 at +9, +6, +9 steps of 0.625%);
        `"homes"`: the taps they settle at for the households' mean net demand
        (+3, +2, +2), the operating point for homes that replace the spot loads;
        `"file"`: the taps as written in the model (all 1.0, since the script leaves
        them to its `Solve`); or a mapping of transformer name to tap(s), as
        `gridflex.feeders.from_opendss`'s `taps`.

    **Returns:**

    The `Feeder` (cached for `"regulated"`, `"homes"` and `"file"`).
    """
    return _feeder("ieee13", taps)


def ieee123(*, taps: Taps = "regulated") -> Feeder:
    """The IEEE 123-node test feeder (4.16 kV, 60 Hz; 278 nodes, 91 loads).

    The normally-open switches are modelled, as in OpenDSS's script, as closed
    switches to separate open-point buses (`300_open`, `94_open`).

    **Arguments:**

    - `taps`: `"regulated"` (default): the taps OpenDSS's seven regulator controls
        settle at for the nominal load, with the control settings of the first script
        of `Run_IEEE123Bus.DSS` (one step per control iteration, the head regulator
        first); `"homes"`: the taps the same controls settle at for the households'
        mean net demand; `"file"`: the taps written in the model (all 1.0); or a
        mapping of transformer name to tap(s).

    **Returns:**

    The `Feeder` (cached for `"regulated"`, `"homes"` and `"file"`).
    """
    return _feeder("ieee123", taps)


def european_lv(*, taps: Taps = "regulated") -> Feeder:
    """The IEEE European low-voltage test feeder (416 V, 50 Hz; 906 LV buses, 2,721
    nodes, 55 single-phase loads of 1 kW at pf 0.95) with its 11/0.416 kV transformer.

    The loads are the base loads of the model; the one-minute load profiles of the
    original distribution are not shipped (the model's `LoadShape`s are ignored).

    **Arguments:**

    - `taps`: as for `ieee13`; the feeder has no regulators, so `"regulated"`,
        `"homes"` and `"file"` are the same feeder (its transformer `tr1` at tap 1.0,
        the source at 1.05 pu), and a mapping sets `tr1`'s taps.

    **Returns:**

    The `Feeder` (cached unless `taps` is a mapping).
    """
    return _feeder("european_lv", taps)


def european_lv_reduced(*, taps: Taps = "regulated") -> Feeder:
    """The IEEE European LV test feeder reduced to 111 buses (333 nodes), all 55 loads
    kept: dead-end branches without loads removed and chains of line segments merged
    into single lines with the exact summed impedance. Load-node voltages equal the
    full feeder's to 4.3e-6 pu over a day of one-minute load profiles.

    **Arguments:**

    - `taps`: as for `european_lv`.

    **Returns:**

    The `Feeder` (cached unless `taps` is a mapping).
    """
    return _feeder("european_lv_reduced", taps)
