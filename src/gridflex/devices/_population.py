"""A population of homes: one device per home, grouped by kind."""

import zlib
from collections.abc import Callable, Mapping

import equinox as eqx
import jax.tree_util as jtu
import numpy as np
from jaxtyping import ArrayLike, Int, PRNGKeyArray, Real

from ._base import AbstractDevice
from ._battery import Battery
from ._generator import Generator
from ._heat_pump import HeatPump
from ._sampling import fold_in, uniform_block


DEFAULT_MIX: dict[str, float] = {
    "battery": 1 / 3,
    "heat_pump": 1 / 3,
    "generator": 1 / 3,
}
"""The default population: a third each of batteries, heat pumps and generators."""

SAMPLERS: dict[str, Callable[[PRNGKeyArray, int], AbstractDevice]] = {
    "battery": Battery.sample,
    "heat_pump": HeatPump.sample,
    "generator": Generator.sample,
}
"""The built-in device kinds and how `sample_population` draws each."""


def _leading(device: AbstractDevice) -> set[int]:
    leaves = jtu.tree_leaves(eqx.filter(device, eqx.is_array))
    return {int(leaf.shape[0]) if leaf.ndim else -1 for leaf in leaves}


class Population(eqx.Module):
    """One controllable device per home, stored as one stacked device per kind.

    **Arguments:**

    - `groups`: kind name -> a device whose array leaves have a leading axis over the
        homes of that kind (apply it with `eqx.filter_vmap`).
    - `kind`: for each home, the name of its group.
    - `index`: for each home, its position along its group's leading axis.
    """

    groups: dict[str, AbstractDevice]
    kind: tuple[str, ...] = eqx.field(static=True)
    index: Int[np.ndarray, " home"]

    def __init__(
        self,
        groups: Mapping[str, AbstractDevice],
        kind: tuple[str, ...] | list[str],
        index: Int[np.ndarray, " home"] | list[int],
    ):
        self.groups = dict(groups)
        self.kind = tuple(str(k) for k in kind)
        self.index = np.asarray(index, dtype=np.int64).reshape(-1)

    def __check_init__(self):
        if len(self.kind) != self.index.shape[0]:
            raise ValueError(
                f"Population.kind has {len(self.kind)} homes but Population.index has "
                f"{self.index.shape[0]}; give one kind and one index per home."
            )
        unknown = sorted(set(self.kind) - set(self.groups))
        if unknown:
            raise ValueError(
                f"Population.kind names {', '.join(unknown)}, which are not groups "
                f"({', '.join(self.groups)})."
            )
        kind = np.asarray(self.kind, dtype=object)
        for name, device in self.groups.items():
            sizes = _leading(device)
            if len(sizes) != 1 or -1 in sizes:
                raise ValueError(
                    f"Population group {name!r} must have one leading agent axis on "
                    f"every array leaf; got leading sizes {sorted(sizes)}."
                )
            members = np.sort(self.index[kind == name])
            (size,) = sizes
            if not np.array_equal(members, np.arange(size)):
                raise ValueError(
                    f"Population group {name!r} has {size} devices, but the homes of "
                    f"that kind index it as {members.tolist()[:8]}...; each device "
                    "must belong to exactly one home."
                )

    @property
    def n_homes(self) -> int:
        return len(self.kind)

    def homes(self, kind: str) -> Int[np.ndarray, " member"]:
        """The homes of one kind, in the order of their group's leading axis."""
        kinds = np.asarray(self.kind, dtype=object)
        members = np.flatnonzero(kinds == kind)
        return members[np.argsort(self.index[members], kind="stable")]

    def scaled(self, k: Real[ArrayLike, "*home"]) -> "Population":
        """Every home's device scaled by its `k` (one number, or one per home): an
        agent standing for `k` homes. See `AbstractDevice.scaled`."""
        k = np.broadcast_to(np.asarray(k, dtype=np.float64), (self.n_homes,))
        groups = {
            name: device.scaled(k[self.homes(name)])
            for name, device in self.groups.items()
        }
        return Population(groups, self.kind, self.index)

    def device(self, home: int) -> AbstractDevice:
        """The (unstacked) device of one home."""
        group = self.groups[self.kind[home]]
        i = int(self.index[home])
        return jtu.tree_map(lambda x: x[i] if eqx.is_array(x) else x, group)


def _counts(n: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Largest-remainder apportionment of `n` homes over the kinds."""
    names = list(weights)
    w = np.array([float(weights[k]) for k in names])
    exact = n * w / w.sum()
    counts = np.floor(exact).astype(int)
    remainder = exact - counts
    order = np.argsort(-remainder, kind="stable")
    counts[order[: n - counts.sum()]] += 1
    return dict(zip(names, (int(c) for c in counts)))


def sample_population(
    key: PRNGKeyArray,
    n_homes: int,
    mix: Mapping[str, float] | None = None,
    *,
    samplers: Mapping[str, Callable[[PRNGKeyArray, int], AbstractDevice]] | None = None,
) -> Population:
    """Draw `n_homes` homes, each with one device, in the proportions of `mix`.

    Every device's parameters are drawn from its kind's documented ranges
    (`Battery.sample`, `HeatPump.sample`, `Generator.sample`), so 1,000 homes are
    1,000 different devices. Kinds are assigned to homes in a random order. Groups
    that receive no home are left out of `Population.groups`.

    **Arguments:**

    - `key`: PRNG key; the same key gives the same population. Each kind's devices
        come from a key derived from the kind's name, so changing the mix does not
        change how a kind's parameters are drawn.
    - `n_homes`: number of homes (>= 0).
    - `mix`: kind name -> share (non-negative, normalised); default a third each of
        `"battery"`, `"heat_pump"` and `"generator"`.
    - `samplers`: extra or replacement kinds, name -> `sample(key, n)` returning a
        stacked device (e.g. `{"ev": EVCharger.sample}`).

    **Returns:** a `Population`.
    """
    mix = dict(DEFAULT_MIX if mix is None else mix)
    samplers = {**SAMPLERS, **(samplers or {})}
    if n_homes < 0:
        raise ValueError(f"n_homes = {n_homes} must be >= 0.")
    unknown = sorted(set(mix) - set(samplers))
    if unknown:
        raise ValueError(
            f"No sampler for device kind(s) {', '.join(unknown)}; known kinds are "
            f"{', '.join(samplers)}. Pass samplers={{name: Device.sample}}."
        )
    bad = {k: v for k, v in mix.items() if not (np.isfinite(v) and v >= 0)}
    if bad or not mix or sum(mix.values()) <= 0:
        raise ValueError(
            f"mix = {mix} needs non-negative, finite shares with a positive sum."
        )
    counts = _counts(n_homes, mix)
    key_order, key_devices = fold_in(key, 0), fold_in(key, 1)
    kinds = np.repeat(np.array(list(counts), dtype=object), list(counts.values()))
    order = np.argsort(uniform_block(key_order, 1, n_homes)[0], kind="stable")
    kind = tuple(str(k) for k in kinds[order])
    kind_arr = np.asarray(kind, dtype=object)
    index = np.zeros(n_homes, dtype=np.int64)
    groups: dict[str, AbstractDevice] = {}
    for name, count in counts.items():
        if count == 0:
            continue
        members = np.flatnonzero(kind_arr == name)
        index[members] = np.arange(count)
        subkey = fold_in(key_devices, zlib.crc32(name.encode()))
        groups[name] = samplers[name](subkey, count)
    return Population(groups, kind, index)
