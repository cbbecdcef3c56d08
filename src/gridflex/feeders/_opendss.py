"""`from_opendss`: one entry point, two engines."""

import os
from collections.abc import Mapping, Sequence
from typing import Literal

from ._altdss import read_altdss
from ._dss_native import read_dss
from ._feeder import Feeder


def from_opendss(
    path: str | os.PathLike,
    *,
    engine: Literal["native", "opendss"] = "native",
    taps: Mapping[str, float | Sequence[float]] | None = None,
    injection_nodes: Sequence[str] | None = None,
    voltage_bases_kv: Sequence[float] | None = None,
) -> Feeder:
    """Import an OpenDSS model as a `Feeder`.

    **Arguments:**

    - `path`: the master `.dss` file.
    - `engine`: `"native"` (default) reads the file with gridflex's own reader: no
        OpenDSS needed, the element models reproduce OpenDSS's (lines, line codes,
        switches, transformers and regulators at fixed taps, capacitors, the source,
        loads of models 1, 2 and 5). `"opendss"` compiles it with the AltDSS engine
        (`pip install 'gridflex[opendss]'`) and reads every element's primitive
        admittance back, so anything OpenDSS can model as a branch (line geometries,
        wire data, reactors) comes in exactly, and loads of every OpenDSS model
        (1 to 8, `gridflex.feeders.LoadModel`).
    - `taps`: transformer taps by name: a number sets winding 2's tap (the regulated
        winding of a regulator), a sequence sets every winding's. Without it, taps
        are those written in the file (native) or those OpenDSS holds after running
        the file (`"opendss"`: a script that solves with regulator controls on moves
        them).
    - `injection_nodes`: nodes (`bus.phase`), besides those with loads, where the
        power flow may inject power.
    - `voltage_bases_kv`: line-to-line voltage bases, replacing the file's
        `Set voltagebases`.

    Regulator and capacitor controls are off; loads keep their model at every
    voltage. A malformed file raises an error naming the file, the line and the
    element.

    **Returns:**

    The `Feeder`.
    """
    if engine == "native":
        return read_dss(
            os.fspath(path),
            taps=taps,
            injection_nodes=injection_nodes,
            voltage_bases_kv=voltage_bases_kv,
        )
    if engine == "opendss":
        return read_altdss(
            path,
            taps=taps,
            injection_nodes=injection_nodes,
            voltage_bases_kv=voltage_bases_kv,
        )
    raise ValueError(f"engine={engine!r}: use 'native' or 'opendss'.")
