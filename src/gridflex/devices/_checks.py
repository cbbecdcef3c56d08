"""Device parameters: declared once, as fields, with their range and how they scale.

A device's parameter is a field whose converter is a `param` (its valid range, unit,
how it scales with the homes a device stands for, a derived default):
`init_params`, called in the device's `__post_init__`, casts and broadcasts them,
fills the derived defaults and checks every range; `scale_params` is `scaled(k)`. So
a parameter is written in one place, not in the class, the constructor, the range
checks and `scaled` again.

Checks read values on the host, so they run only on concrete arrays: a device built
under `jit` (traced parameters, e.g. `device.scaled(k)` with a traced `k`) skips them.
Shapes are always known and always checked.
"""

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Real

from .._misc import as_float, is_concrete


_Device = TypeVar("_Device", bound=eqx.Module)


class Param(eqx.Module):
    """What `param` declares of one device parameter; see `param`.

    It is the field's converter so that type checkers (and `__init__`'s signature)
    see what the parameter accepts: a number, an array, or `None` for a derived
    default. Equinox calls it after `__post_init__`, when `init_params` has cast the
    value, so it returns the value as it is.
    """

    lo: float | str
    hi: float | str
    lo_open: bool
    hi_open: bool
    unit: str
    scale: int
    integer: bool
    derive: Callable[[Mapping[str, Array]], ArrayLike] | None

    def __call__(self, value: Real[ArrayLike, "..."] | None) -> Any:
        return value


def param(
    *,
    lo: float | str = -math.inf,
    hi: float | str = math.inf,
    lo_open: bool = False,
    hi_open: bool = False,
    unit: str = "",
    scale: int = 0,
    integer: bool = False,
    derive: Callable[[Mapping[str, Array]], ArrayLike] | None = None,
) -> Param:
    """Declare a device parameter, as the converter of its field:

    ```python
    capacity_kwh: Float[Array, "*agent"] = eqx.field(
        converter=param(lo=0.0, lo_open=True, unit="kWh", scale=1)
    )
    eta_max: Float[Array, "*agent"] = eqx.field(
        default=0.95, converter=param(lo=0.0, hi=1.0, lo_open=True)
    )
    ```

    Every parameter is a scalar for one home or an array with a leading agent axis
    for a population (scalars broadcast to it). Declared this way, the device takes
    and checks the parameter (`init_params`) and scales it (`scale_params`) without
    listing it again.

    **Arguments:**

    - `lo`, `hi`: the valid range (inclusive unless `lo_open` / `hi_open`). A bound
        may name another parameter (`hi="capacity_kwh"`), checked element by element.
    - `unit`: the unit, for error messages.
    - `scale`: the power of `k` the parameter is multiplied by in `scaled(k)` (1 for
        powers and energies, -1 for a thermal resistance, 0 for intensive values).
    - `integer`: an integer parameter (a step index); otherwise a float in JAX's
        default dtype.
    - `derive`: for an optional parameter (`default=None` on the field), its value
        when it is not given, from the other parameters (a mapping of their cast
        values, those declared before it); e.g. `derive=lambda p: p["capacity_kwh"]`.

    **Returns:** the `Param`, for the field's `converter`.
    """
    if integer and scale != 0:
        raise TypeError(
            "param(integer=True, scale=...): an integer parameter (a step index) "
            "cannot scale with the homes a device stands for; give scale=0."
        )
    return Param(lo, hi, lo_open, hi_open, unit, scale, integer, derive)


def _params(device: object) -> dict[str, Param]:
    return {
        f.name: f.metadata["converter"]
        for f in dataclasses.fields(device)  # pyright: ignore[reportArgumentType]
        if isinstance(f.metadata.get("converter"), Param)
    }


def init_params(device: object) -> None:
    """Cast every parameter of `device` (declared with `param`), fill the derived
    defaults in the order of the class body, broadcast all to one shape, and check
    every declared range (a parameter after those its bounds name). Call it in the
    device's `__post_init__`; a rule that is not a range goes in the device's own
    `__check_init__`, which Equinox runs afterwards."""
    owner = type(device).__name__
    params = _params(device)
    values: dict[str, Array] = {}
    for name, spec in params.items():
        value = getattr(device, name)
        if value is None and spec.derive is not None:
            try:
                value = spec.derive(values)
            except KeyError as e:
                if e.args and e.args[0] in values:
                    raise
                raise TypeError(
                    f"{owner}.{name}: its derived default reads {e}, which is not a "
                    f"parameter declared before it ({', '.join(values) or 'none'})."
                ) from None
        if spec.integer:
            values[name] = _as_integer(owner, name, value)
        else:
            values[name] = as_number(owner, name, value)
    for name, value in _broadcast(owner, values).items():
        setattr(device, name, value)
    _check_params(device, params)


def _check_params(device: object, params: dict[str, Param]) -> None:
    owner = type(device).__name__
    done: set[str] = set()

    def check(name: str) -> None:
        if name in done:
            return
        done.add(name)
        spec = params[name]
        bounds = {}
        for side, bound in (("lo", spec.lo), ("hi", spec.hi)):
            if isinstance(bound, str) and bound not in params:
                raise TypeError(
                    f"{owner}.{name}: param({side}={bound!r}) names no parameter of "
                    f"{owner}; its parameters are {', '.join(params)}."
                )
            if isinstance(bound, str):
                check(bound)  # a bound is itself valid before it judges another
                bounds[side] = getattr(device, bound)
                bounds[f"{side}_name"] = bound
            else:
                bounds[side] = bound
        check_range(
            owner,
            name,
            getattr(device, name),
            lo_open=spec.lo_open,
            hi_open=spec.hi_open,
            unit=spec.unit,
            **bounds,
        )

    for name in params:
        check(name)


def scale_params(device: _Device, k: Real[ArrayLike, "*agent"]) -> _Device:
    """`device.scaled(k)`: every parameter times `k ** scale` (`param`'s `scale`),
    built and checked anew."""
    owner = type(device).__name__
    check_positive_scale(owner, k)
    k = as_float(k)
    # Dividing for a negative power (not multiplying by k ** -1) rounds as `x / k`.
    changes = {
        name: (
            getattr(device, name) * k**spec.scale
            if spec.scale > 0
            else getattr(device, name) / k ** (-spec.scale)
        )
        for name, spec in _params(device).items()
        if spec.scale != 0
    }
    return dataclasses.replace(device, **changes)


def _as_integer(owner: str, name: str, value) -> Array:
    message = (
        f"{owner}: {name}={value!r} is not an integer; give an int, or an array of "
        "ints with one entry per home."
    )
    try:
        as_int = jnp.asarray(value, dtype=int)
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if is_concrete(value) and not np.array_equal(np.asarray(value), as_int):
        raise ValueError(message)  # 2.7 is not a step index; casting would say 2
    return as_int


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


def _broadcast(owner: str, arrays: dict[str, Array]) -> dict[str, Array]:
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
    value: Real[ArrayLike, "..."],
    *,
    lo: Real[ArrayLike, "..."] = -math.inf,
    hi: Real[ArrayLike, "..."] = math.inf,
    lo_open: bool = False,
    hi_open: bool = False,
    lo_name: str | None = None,
    hi_name: str | None = None,
    unit: str = "",
) -> None:
    """Raise `ValueError` unless every element of `value` lies in the range: the
    check `param` declares, for a device's own rules in its `__check_init__`.

    The message gives the parameter, the first bad value, its index in a population
    and the valid range, e.g. `HeatPump.theta_max_c = 18 °C must be > theta_min_c =
    18 °C.` Traced values (a device built under `jit`) are not checked: their values
    are unknown.

    **Arguments:**

    - `owner`, `name`: the device's class name and the parameter (or rule) checked.
    - `value`: the values, a scalar or one per home.
    - `lo`, `hi`: the bounds (inclusive unless `lo_open` / `hi_open`); an array
        bound (another parameter) is compared element by element.
    - `lo_name`, `hi_name`: the names of array bounds, for the message.
    - `unit`: the unit, for the message.
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
