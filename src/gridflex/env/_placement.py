"""Placing homes on a feeder: which home sits on which node and phase.

Homes attach single-phase (wye) to the feeder's load buses in proportion to the spot
loads per bus and phase (a delta spot load counts half at each of its two phases), and
replace the spot loads they stand for. On a feeder whose spot loads are far larger
than a home (IEEE 13's 3.5 MW over ten agents) each agent stands for several homes:
its load, PV and device ratings are scaled by `scale`, so that the agent's peak
demand equals its share of the spot load (a test feeder's spot loads are its peak
loads). An agent is never scaled below one home.
"""

import warnings

import equinox as eqx
import numpy as np
from jaxtyping import Float, Int

from .._misc import format_names
from ..feeders import Feeder


class Placement(eqx.Module):
    """Where each home is. Inspect it with `table()`.

    **Attributes:**

    - `feeder`: the feeder the homes are on: the spot loads they replace are removed
        and their nodes are injection nodes.
    - `node`: each home's node (index into `feeder.node_names`).
    - `scale`: how many homes each agent stands for (>= 1): load, PV and device
        ratings are multiplied by it.
    - `replaced`: the spot loads the homes replaced (by name).
    - `kept`: spot loads left in place, because no home landed on their phases (only
        when there are fewer homes than loaded phases).
    """

    feeder: Feeder
    node: Int[np.ndarray, " home"]
    scale: Float[np.ndarray, " home"]
    replaced: tuple[str, ...] = eqx.field(static=True)
    kept: tuple[str, ...] = eqx.field(static=True)

    @property
    def n_homes(self) -> int:
        return int(self.node.shape[0])

    @property
    def node_names(self) -> tuple[str, ...]:
        return tuple(self.feeder.node_names[i] for i in self.node)

    def table(self):
        """A pandas DataFrame: home, bus, phase, node, scale."""
        import pandas as pd

        names = self.node_names
        return pd.DataFrame(
            {
                "home": np.arange(self.n_homes),
                "bus": [n.split(".")[0] for n in names],
                "phase": [int(n.split(".")[1]) for n in names],
                "node": list(names),
                "scale": np.asarray(self.scale),
            }
        )


_OVERLOAD = 1.5  # homes' total peak over the spot load they replace, before a warning


class PlacementWarning(UserWarning):
    """Emitted when homes are placed on a feeder whose spot loads are smaller than
    the homes' own peaks (more homes than the feeder's load carries at one each)."""


def spot_load_kva(feeder: Feeder) -> tuple[np.ndarray, dict[int, set[str]]]:
    """Spot load per node (kVA magnitude) and which loads touch each node: the
    weights `place_homes` draws homes' nodes in proportion to.

    A delta (or phase-to-phase) element counts half at each of its two nodes.

    **Returns:** `(weight, owners)`: the kVA per node (`feeder.node_names` order) and,
    for each node with load, the names of the loads on it.
    """
    weight = np.zeros(feeder.n_nodes)
    owners: dict[int, set[str]] = {}
    L = feeder.loads
    for row in range(L.load.shape[0]):
        s = abs(L.s_kva[row])
        name = L.names[L.load[row]]
        a, b = int(L.node_a[row]), int(L.node_b[row])
        if b < 0:
            weight[a] += s
            owners.setdefault(a, set()).add(name)
        else:
            weight[a] += s / 2
            weight[b] += s / 2
            owners.setdefault(a, set()).add(name)
            owners.setdefault(b, set()).add(name)
    return weight, owners


def _kva_at_nodes(feeder: Feeder, loads: set[str]) -> np.ndarray:
    """The apparent power of the named loads at each node, kVA: a wye load's at its
    node, a delta load's split between the two nodes it spans."""
    weight = np.zeros(feeder.n_nodes)
    L = feeder.loads
    for row in range(L.load.shape[0]):
        if L.names[L.load[row]] not in loads:
            continue
        s = abs(L.s_kva[row])
        a, b = int(L.node_a[row]), int(L.node_b[row])
        if b < 0:
            weight[a] += s
        else:
            weight[a] += s / 2
            weight[b] += s / 2
    return weight


def place_homes(
    feeder: Feeder,
    n_homes: int,
    *,
    seed: int = 0,
    home_peak_kw: float | Float[np.ndarray, " home"] = 5.0,
) -> Placement:
    """Attach `n_homes` homes to `feeder` in proportion to its spot loads.

    Each loaded phase gets its share of the homes by largest-remainder apportionment
    (so the counts are exactly proportional, rounded); which home lands on which of
    those slots is a seeded shuffle. A spot load is replaced when homes landed on
    every phase it touches; otherwise it stays (only with fewer homes than loaded
    phases). Each home at a node stands for `scale = max(1, S / (n * peak))` homes,
    where `S` is the spot load it replaces (kVA), `n` the homes sharing it and `peak`
    the home's own peak demand: on a medium-voltage feeder one agent stands for an
    aggregate of homes; on a low-voltage feeder it is one home.

    **Arguments:**

    - `feeder`: a feeder with base (spot) loads.
    - `n_homes`: number of homes (agents), >= 1.
    - `seed`: seeds which home goes where.
    - `home_peak_kw`: each home's peak demand (one number, or one per home), e.g.
        the 99th percentile of its load; `make_environment` computes it from the
        homes' data.

    **Returns:**

    A `Placement`.
    """
    # Long: its docstring documents every argument; the code is 77 lines
    if n_homes < 1:
        raise ValueError(f"n_homes = {n_homes}; place at least one home.")
    peak = np.broadcast_to(np.asarray(home_peak_kw, dtype=np.float64), (n_homes,))
    if not np.all(peak > 0):
        raise ValueError("home_peak_kw must be > 0 for every home.")
    weight, owners = spot_load_kva(feeder)
    nodes = np.flatnonzero(weight > 0)
    if nodes.size == 0:
        raise ValueError(
            f"Feeder {feeder.name!r} has no spot loads to place homes in proportion to."
        )
    share = n_homes * weight[nodes] / weight[nodes].sum()
    counts = np.floor(share).astype(int)
    order = np.argsort(-(share - counts), kind="stable")
    counts[order[: n_homes - counts.sum()]] += 1
    slots = np.repeat(nodes, counts)
    rng = np.random.default_rng(seed)
    home_node = slots[rng.permutation(n_homes)]

    homes_at = dict(zip(nodes.tolist(), counts.tolist()))
    covered = {int(n) for n, c in homes_at.items() if c > 0}
    replaced = sorted(
        {name for n in covered for name in owners[n]}
        - {name for n, c in homes_at.items() if c == 0 for name in owners[n]}
    )
    kept = sorted(set(feeder.loads.names) - set(replaced))
    # What each home stands for: the replaced load at its node, shared by the homes
    # there (a node whose loads are all kept is still where the home is, at scale 1).
    replaced_weight = _kva_at_nodes(feeder, set(replaced))
    per_home = np.array(
        [replaced_weight[n] / homes_at[int(n)] for n in home_node], dtype=np.float64
    )
    scale = np.maximum(1.0, per_home / peak)
    # More homes than spot loads, each drawing at least its own peak, well beyond the
    # spot load they replace: the feeder carries more than it was built for. (Fewer
    # homes than loads are aggregates or one home per load, as the feeder's design.)
    drawn, replaced_kva = (
        float(np.sum(np.maximum(peak, per_home))),
        float(np.sum(per_home)),
    )
    n_loads = len(feeder.loads.names)
    if n_homes > n_loads and drawn > _OVERLOAD * replaced_kva:
        median_peak, median_share = np.median(peak), np.median(per_home)
        ratio = drawn / max(replaced_kva, 1e-9)
        warnings.warn(
            PlacementWarning(
                f"{n_homes} homes on the {n_loads} spot loads of {feeder.name!r} "
                f"peak at {drawn:.4g} kW in all, {ratio:.1f}x "
                f"the {replaced_kva:.4g} kVA of spot load they replace (median home: "
                f"peak {median_peak:.3g} kW, replaces {median_share:.3g} kVA): the "
                "feeder will carry more load than it was built for. Place fewer homes, "
                "or expect voltages its own loads would not cause."
            ),
            stacklevel=2,
        )
    placed = feeder.without_loads(replaced).with_injection_nodes(
        [feeder.node_names[int(n)] for n in sorted(covered)]
    )
    if kept and len(kept) == len(feeder.loads.names):
        raise ValueError(
            f"No spot load of {feeder.name!r} could be replaced with {n_homes} homes; "
            f"loads: {format_names(kept)}."
        )
    return Placement(
        feeder=placed,
        node=home_node.astype(np.int64),
        scale=scale,
        replaced=tuple(replaced),
        kept=tuple(kept),
    )
