"""Small dependency-free helpers."""

import jax
import jax.numpy as jnp
import numpy as np


def default_float() -> type:
    """JAX's default floating dtype right now (float64 under `jax_enable_x64`)."""
    return jnp.float64 if jax.config.read("jax_enable_x64") else jnp.float32


def complex_dtype() -> type:
    """The complex dtype matching `default_float()`."""
    return jnp.complex128 if jax.config.read("jax_enable_x64") else jnp.complex64


def as_float(x) -> jax.Array:
    """Cast to JAX's default real dtype (feeder data is stored in float64 NumPy)."""
    return jnp.asarray(x, dtype=default_float())


def is_concrete(*xs) -> bool:
    """True if none of `xs` is a tracer, so their values can be read on the host."""
    return not any(isinstance(x, jax.Array) and not _is_concrete_array(x) for x in xs)


def _is_concrete_array(x) -> bool:
    try:
        x.__array__()
    except jax.errors.TracerArrayConversionError:
        return False
    return True


def format_names(names, limit: int = 8) -> str:
    """`a, b, c and 5 more`: keeps error messages short on 1,000-node feeders."""
    names = [str(n) for n in names]
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f" and {len(names) - limit} more"


def np_complex(x) -> np.ndarray:
    return np.asarray(x, dtype=np.complex128)
