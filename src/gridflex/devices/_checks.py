"""Parameter validation for devices, for single devices and stacked populations.

Checks read values on the host, so they run only on concrete arrays: a device built
under `jit` (traced parameters, e.g. `device.scaled(k)` with a traced `k`) skips them.
Shapes are always known and always checked.
"""

import math

import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike

from .._misc import as_float, is_concrete


def as_number(owner: str, name: str, value) -> Array:
    """One parameter in the default float dtype; anything that is not a number (a
    string, `None`, a ragged list) is refused naming the parameter."""
    try:
        return as_float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{owner}: {name}={value!r} is not a number; give a float, or an array "
            "of floats with one entry per home."
        ) from None


def as_params(owner: str, **values: ArrayLike) -> dict[str, Array]:
    """Cast parameters to the default float dtype and broadcast them to one shape.

    A population passes arrays with a leading agent axis; scalars broadcast to it.
    """
    arrays = {name: as_number(owner, name, value) for name, value in values.items()}
    try:
        shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{n}{tuple(a.shape)}" for n, a in arrays.items())
        raise ValueError(
            f"{owner} parameters have shapes that do not broadcast: {shapes}. A "
            "population needs one leading agent axis of the same length on every "
            "parameter (or scalars)."
        ) from None
    return {name: jnp.broadcast_to(a, shape) for name, a in arrays.items()}


def set_params(module: object, owner: str, **values: ArrayLike) -> None:
    """Set each of a device's parameters on `module` (in its `__init__`), cast and
    broadcast by `as_params`: the parameters are listed once, in the call."""
    for name, value in as_params(owner, **values).items():
        setattr(module, name, value)


def check_shapes(owner: str, **values: Array) -> None:
    """Every parameter has the same shape (`()` for one home, `(n,)` for n homes)."""
    shapes = {name: tuple(jnp.shape(v)) for name, v in values.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"{n}{s}" for n, s in shapes.items())
        raise ValueError(f"{owner} parameters must share one shape; got {listed}.")


def _where(bad: np.ndarray) -> str:
    if bad.ndim == 0:
        return ""
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    return f" (population index {index[0] if len(index) == 1 else index})"


def _first(x: np.ndarray, bad: np.ndarray) -> float:
    return float(x[tuple(np.argwhere(bad)[0])] if x.ndim else x)


def _bound(value, name: str | None) -> tuple[np.ndarray, str]:
    arr = np.asarray(value, dtype=np.float64)
    return arr, (name if name is not None else "")


def check_range(
    owner: str,
    name: str,
    value: ArrayLike,
    *,
    lo: ArrayLike = -math.inf,
    hi: ArrayLike = math.inf,
    lo_open: bool = False,
    hi_open: bool = False,
    lo_name: str | None = None,
    hi_name: str | None = None,
    unit: str = "",
) -> None:
    """Raise `ValueError` unless every element of `value` lies in the range.

    Bounds may be arrays (another parameter, element by element); `lo_name` and
    `hi_name` name them in the message. The message gives the parameter, the first
    bad value, its index in a population and the valid range.
    """
    if not is_concrete(value, lo, hi):
        return
    x = np.asarray(value, dtype=np.float64)
    lo_arr, lo_label = _bound(lo, lo_name)
    hi_arr, hi_label = _bound(hi, hi_name)
    lo_b, hi_b = np.broadcast_to(lo_arr, x.shape), np.broadcast_to(hi_arr, x.shape)
    above = (x > lo_b) if lo_open else (x >= lo_b)
    below = (x < hi_b) if hi_open else (x <= hi_b)
    bad = np.asarray(~(np.isfinite(x) & above & below))
    if not bad.any():
        return

    def fmt(arr, label):
        v = _first(arr, bad) if arr.ndim else float(arr)
        return f"{label} = {v:g}{unit_text}" if label else f"{v:g}{unit_text}"

    unit_text = f" {unit}" if unit else ""
    lo_text, hi_text = fmt(lo_b, lo_label), fmt(hi_b, hi_label)
    has_lo = bool(np.isfinite(lo_b).any())
    has_hi = bool(np.isfinite(hi_b).any())
    if has_lo and has_hi:
        rule = (
            f"must lie in {'(' if lo_open else '['}{lo_text}, {hi_text}"
            f"{')' if hi_open else ']'}"
        )
    elif has_lo:
        rule = f"must be {'>' if lo_open else '>='} {lo_text}"
    elif has_hi:
        rule = f"must be {'<' if hi_open else '<='} {hi_text}"
    else:
        rule = "must be finite"
    raise ValueError(
        f"{owner}.{name} = {_first(x, bad):g}{unit_text}{_where(bad)} {rule}."
    )


def check_positive_scale(owner: str, k: ArrayLike) -> None:
    check_range(owner, "scaled(k): k", k, lo=0.0, lo_open=True)
