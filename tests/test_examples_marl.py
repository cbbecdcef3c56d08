"""The functional-API example runs as users run it, and its outside-style loop
learns. (The PettingZoo example is run in `test_marl.py`, beside the tests that
compile the same environment.)"""

import importlib.util
import pathlib
import sys

import jax
import numpy as np


EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_example", EXAMPLES / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_functional_policy_gradient_learns():
    example = _load("functional_policy_gradient.py")
    # Optax's Adam mixes its int32 step count with floats: fine under JAX's default
    # promotion, which users have; the suite runs strict.
    with jax.numpy_dtype_promotion("standard"):
        history = example.main(iterations=15, episodes=16)
    returns = np.array([h["return"] for h in history])
    first, last = returns[:3].mean(), returns[-3:].mean()
    # returns are negative (minus a Lagrangian): learning shrinks them by a third
    assert last > first + abs(first) / 3, (first, last)
