"""The built-in feeders equal OpenDSS's circuits: system Y over the non-slack nodes
(loads out, controls off, the same regulator taps), node names and voltage bases;
their data are what SOURCES.md says."""

import hashlib
import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest

from gridflex.feeders import (
    BUILTIN_DATA as DATA,
    builtin_master,
    european_lv,
    european_lv_reduced,
    ieee13,
    ieee123,
    regulated_taps,
    resolve_taps,
)

from .helpers import assert_matches_opendss


SIZES = {
    "ieee13": (41, 15),
    "ieee123": (278, 91),
    "european_lv": (2721, 55),
    "european_lv_reduced": (333, 55),
}


@pytest.fixture(scope="module")
def feeders():
    """Each built-in feeder, parsed once."""
    return {
        "ieee13": ieee13(),
        "ieee13_file_taps": ieee13(taps="file"),
        "ieee123": ieee123(),
        "european_lv": european_lv(),
        "european_lv_reduced": european_lv_reduced(),
    }


CASES = {
    # feeder key: (built-in master, taps to set in OpenDSS)
    "ieee13": ("ieee13", "ieee13"),
    "ieee13_file_taps": ("ieee13", None),
    "ieee123": ("ieee123", "ieee123"),
    "european_lv": ("european_lv", None),
    "european_lv_reduced": ("european_lv_reduced", None),
}


@pytest.mark.parametrize("key", sorted(CASES))
def test_matches_opendss(feeders, key):
    import opendssdirect as dss

    master, taps_of = CASES[key]
    taps = regulated_taps(taps_of) if taps_of else None
    if taps_of:
        assert taps  # the feeders with regulators have recorded taps
    worst = assert_matches_opendss(
        feeders[key], builtin_master(master), taps=taps, rtol=1e-9
    )
    assert worst < 1e-12  # measured: 4.2e-14 or less
    names = {n.lower() for n in dss.Circuit.AllNodeNames()}
    assert set(feeders[key].node_names) == names


def test_sizes_and_names(feeders):
    for name, (nodes, loads) in SIZES.items():
        feeder = feeders[name]
        assert feeder.name == name
        assert (feeder.n_nodes, feeder.loads.n_loads) == (nodes, loads)
    assert feeders["ieee13"].frequency_hz == 60.0
    assert feeders["european_lv"].frequency_hz == 50.0


def test_taps_choices(feeders):
    taps = regulated_taps("ieee13")
    assert {k: v[1] for k, v in taps.items()} == {
        "reg1": 1.05625,
        "reg2": 1.0375,
        "reg3": 1.05625,
    }
    assert ieee13() is feeders["ieee13"]  # cached
    same = ieee13(taps={name: values[1] for name, values in taps.items()})
    np.testing.assert_array_equal(same.y.todense(), feeders["ieee13"].y.todense())
    file_taps = feeders["ieee13_file_taps"]
    assert np.abs(file_taps.y.todense() - feeders["ieee13"].y.todense()).max() > 1.0
    # (a name `ieee13` does not know; in this process beartype refuses the call to
    # `ieee13` itself first, so the message is checked where `ieee13` makes it)
    with pytest.raises(ValueError, match="taps='controls': use 'regulated'"):
        resolve_taps("ieee13", "controls")


def _regulator_script():
    path = Path(__file__).parents[1] / "scripts" / "regulator_taps.py"
    spec = importlib.util.spec_from_file_location("regulator_taps", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_recorded_taps_are_what_opendss_settles_at():
    script = _regulator_script()
    recorded = json.loads((DATA / "regulator_taps.json").read_text())
    for name, (master, settings) in script.CASES.items():
        again = script.regulator_taps(DATA / master, settings)
        assert again["taps"] == recorded[name]["taps"], name
        sha = hashlib.sha256((DATA / master).read_bytes()).hexdigest()
        assert recorded[name]["master_sha256"] == sha, f"rerun the script for {name}"


def test_sources_lists_every_shipped_file_with_its_checksum():
    text = (DATA / "SOURCES.md").read_text()
    listed = dict(
        (path, digest)
        for digest, path in re.findall(r"^([0-9a-f]{64})  (\S+)$", text, re.MULTILINE)
    )
    shipped = {
        str(p.relative_to(DATA))
        for p in DATA.rglob("*")
        if p.is_file() and p.parent != DATA
    }
    assert set(listed) == shipped
    for path, digest in listed.items():
        assert hashlib.sha256((DATA / path).read_bytes()).hexdigest() == digest, path
    assert (DATA / "LICENSE.txt").read_text().count("Electric Power Research") >= 2
