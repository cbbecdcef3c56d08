"""The functional-API example runs as users run it, and its outside-style loop
learns. (The PettingZoo example is run in `test_marl.py`, beside the tests that
compile the same environment.)"""

import jax
import numpy as np
import pytest

from .helpers import load_example


@pytest.mark.slow
def test_functional_policy_gradient_learns():
    example = load_example("functional_policy_gradient.py")
    # Optax's Adam mixes its int32 step count with floats: fine under JAX's default
    # promotion, which users have; the suite runs strict.
    with jax.numpy_dtype_promotion("standard"):
        history = example.main(iterations=15, episodes=16)
    returns = np.array([h["return"] for h in history])
    first, last = returns[:3].mean(), returns[-3:].mean()
    # returns are negative (minus a Lagrangian): learning shrinks them by a third
    assert last > first + abs(first) / 3, (first, last)
