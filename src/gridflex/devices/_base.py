"""The device interface: what every controllable home device provides.

A device is one home's controllable asset. It knows nothing of the network or of
policies; the environment gives it a decoded command and the step's exogenous inputs
and gets back the next state, the AC power drawn at the meter, a violation signal and
a device cost. A population of devices is the same Module with a leading agent axis
on every array leaf, applied with `eqx.filter_vmap`.
"""

import abc
from typing import Generic, TYPE_CHECKING, TypeVar

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray, PyTree, Real

from .._misc import as_float


if TYPE_CHECKING:
    from typing import ClassVar as AbstractClassVar
else:
    from equinox import AbstractClassVar


_State = TypeVar("_State")
_Device = TypeVar("_Device", bound="AbstractDevice")


class DeviceInputs(eqx.Module):
    """The exogenous inputs a device may use at one step.

    **Arguments:**

    - `step`: the step within the day, `0 .. n_steps - 1`.
    - `n_steps`: steps per day (static; 96 for 15-minute steps).
    - `dt_h`: step length in hours (static; 0.25).
    - `temperature_c`: outdoor temperature at this step, °C.

    A device acts on one home, so `step` and `temperature_c` are scalars inside the
    vmap; the environment may build them with a leading axis and vmap over it.
    """

    step: Int[Array, "..."]
    n_steps: int = eqx.field(static=True)
    dt_h: float = eqx.field(static=True)
    temperature_c: Float[Array, "..."]

    def __init__(
        self,
        step: Int[ArrayLike, "..."],
        n_steps: int,
        dt_h: float,
        temperature_c: Real[ArrayLike, "..."],
    ):
        self.step = jnp.asarray(step)
        self.n_steps = int(n_steps)
        self.dt_h = float(dt_h)
        self.temperature_c = as_float(temperature_c)

    def __check_init__(self):
        if self.n_steps < 1:
            raise ValueError(f"DeviceInputs.n_steps = {self.n_steps} must be >= 1.")
        if not self.dt_h > 0:
            raise ValueError(f"DeviceInputs.dt_h = {self.dt_h} h must be > 0.")
        if not jnp.issubdtype(self.step.dtype, jnp.integer):
            raise ValueError(
                f"DeviceInputs.step has dtype {self.step.dtype}; pass the step index "
                "as an integer."
            )

    def steps_left(self) -> Float[Array, "..."]:
        """Steps from this one to the end of the day, this one included (>= 1)."""
        left = jnp.maximum(self.n_steps - self.step, 1)
        return left.astype(self.temperature_c.dtype)


class DeviceStep(eqx.Module):
    """What a device returns for one step.

    **Arguments:**

    - `state`: the physical next state (clipped to the device's bounds).
    - `p_kw`: AC power actually drawn over the step, kW; positive = consumption, so a
        generator's output is negative.
    - `violation`: the per-step violation of the *implied* next state (the state the
        raw command would have reached without the device's physical limits),
        normalised to be dimensionless; zero exactly when the command is feasible.
    - `cost`: the device's own cost of the step (degradation, wear, fuel) in the
        currency of the tariff; the meter cost is the environment's business.
    """

    state: PyTree
    p_kw: Float[Array, ""]
    violation: Float[Array, ""]
    cost: Float[Array, ""]


class AbstractDevice(eqx.Module, Generic[_State]):
    """Base class of controllable home devices.

    Every device follows one pattern (DESIGN §5): the raw command gives an *implied*
    next state; the device's physical limits clip it to the *actual* next state; the
    AC power is back-calculated from the actual state change; the violation signal
    comes from the implied state (so that a policy pushing against a limit still gets
    a gradient pushing back); the cost is the device's own.

    A device acts on one home: every parameter is a scalar array. A population is the
    same Module with a leading agent axis on every array leaf (`Battery.sample(key, n)`
    builds one), applied with `eqx.filter_vmap`. Every method is pure, jittable and
    differentiable with respect to the command.

    To write a new device, subclass this (final classes only: no further subclassing,
    no `super()`), set the two channel names, declare each parameter once as a field
    with `param` (default, valid range, unit, how it scales) with `init_params(self)`
    in `__post_init__` (which also checks the declared ranges), and implement every
    method; see `examples/ev_charger.py` and `docs/devices.md`. A rule that is not a
    range goes in the device's own `__check_init__`.
    """

    step_channel: AbstractClassVar[str]
    """Name of the violation channel `DeviceStep.violation` feeds, e.g.
    `"battery_energy"`. Devices of one kind share a channel."""

    terminal_channel: AbstractClassVar[str | None]
    """Name of the channel `terminal_violation` feeds, or `None` for a device
    without an end-of-day requirement."""

    @abc.abstractmethod
    def initial_state(self) -> _State:
        """The nominal state at the start of the day."""

    @abc.abstractmethod
    def randomise_state(self, key: PRNGKeyArray, state: _State) -> _State:
        """A random start-of-day state for training, within the physical bounds.

        **Arguments:**

        - `key`: a PRNG key (one per home when vmapped).
        - `state`: a state of this device; fields that are not randomised are kept.
        """

    @abc.abstractmethod
    def decode(self, u: Float[Array, ""]) -> Float[Array, ""]:
        """Map a policy output `u`, already clipped to [-1, 1], linearly onto the
        device's command range."""

    @abc.abstractmethod
    def step(
        self, state: _State, command: Float[Array, ""], inputs: DeviceInputs
    ) -> DeviceStep:
        """Advance one step under a decoded command.

        **Arguments:**

        - `state`: the state at the start of the step.
        - `command`: the decoded command (the output of `decode`, or `naive_command`).
        - `inputs`: the step's exogenous inputs.

        **Returns:** a `DeviceStep`.
        """

    @abc.abstractmethod
    def terminal_violation(self, state: _State) -> Float[Array, ""]:
        """End-of-day violation of the terminal requirement, normalised, >= 0 (zero
        for a device without one)."""

    @abc.abstractmethod
    def observe(self, state: _State) -> Float[Array, ""]:
        """The device state scaled to about [0, 1], for the policy's observation."""

    @abc.abstractmethod
    def urgency(self, state: _State, inputs: DeviceInputs) -> Float[Array, ""]:
        """Terminal-state urgency in [0, 1]: the share of the remaining time the
        device would need, acting as hard as it can, to meet its terminal requirement
        (1 when it cannot be met in time; 0 when it is met or there is none)."""

    @abc.abstractmethod
    def naive_command(self, state: _State, inputs: DeviceInputs) -> Float[Array, ""]:
        """The naive baseline's decoded command (DESIGN §7)."""

    @abc.abstractmethod
    def scaled(self: _Device, k: Real[ArrayLike, "*agent"]) -> _Device:
        """The same device standing for `k` identical homes.

        Power and energy ratings are multiplied by `k` and cost coefficients adjusted
        so that the scaled device under command `k * c` draws `k` times the power and
        costs `k` times as much as the original under `c`, with the same violations
        and the same intensive state (temperature, state of charge).
        """
