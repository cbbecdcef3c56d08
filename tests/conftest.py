"""Test configuration: float64, strict dtype promotion, rank promotion raises.

Warnings are errors (pyproject `filterwarnings`), and jaxtyping + beartype check every
public signature in `gridflex` (pyproject `--jaxtyping-packages`).
"""

import jax
import pytest
from hypothesis import HealthCheck, settings


jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

# JAX compiles on first call; Hypothesis must not time that, and few examples keep the
# suite inside CI's budget (shapes are bucketed so compiles are shared).
settings.register_profile(
    "gridflex",
    deadline=None,
    max_examples=10,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=True,
)
settings.load_profile("gridflex")


@pytest.fixture
def getkey():
    """A fresh PRNG key per call, deterministic per test."""
    keys = iter(jax.random.split(jax.random.key(0), 1000))
    return lambda: next(keys)
