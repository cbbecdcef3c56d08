"""The test run type-checks gridflex's public signatures (jaxtyping + beartype)."""

import numpy as np
import pytest

import gridflex as gf


def test_public_signatures_are_checked():
    feeder = gf.feeders.ieee13()
    # A string where a float array is annotated must be refused by the type checker,
    # before any of our own validation runs.
    with pytest.raises(Exception, match="Type-check error"):
        gf.power_flow(feeder, p_kw="100")  # pyright: ignore[reportArgumentType]


def test_ints_are_accepted_where_floats_are_annotated():
    # PEP 484's numeric tower: users write `kw=100`, not `kw=100.0`.
    b = gf.feeders.FeederBuilder("t", voltage_bases_kv=[4.16])
    b.source("s", kv=4.16)
    b.line("l", "s", "b", length_km=1, z_ohm_per_km=np.eye(3) * (0.3 + 0.6j))
    b.load("ld", "b.1", kw=100, kvar=20, kv=2.4)
    assert b.build().loads.n_loads == 1
