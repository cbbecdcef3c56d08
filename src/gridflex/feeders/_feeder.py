"""The `Feeder`: everything a three-phase power-flow solve needs, nothing about devices.

A feeder is a bus admittance matrix over *nodes* (one node per bus and phase, named as
OpenDSS names them, `bus.phase`, lower case) plus the slack (the source's internal
voltages) and the base loads. The Z-Bus solve needs `YNN^{-1}` only through its
columns at the nodes that carry injections, and the no-load voltages `w`; both are
computed once here, on the host in float64, so no solve ever factorises a matrix.
"""

import enum
import re
from collections.abc import Sequence
from typing import Any

import equinox as eqx
import numpy as np
import scipy.sparse as sp
import scipy.sparse.csgraph as csgraph
import scipy.sparse.linalg as spla
from jaxtyping import Complex, Float, Int

from .._custom_types import AnyArray
from .._misc import format_names


_NODE_NAME = re.compile(r"^[^.\s]+\.[1-9][0-9]*$")


class LoadModel(enum.IntEnum):
    """Voltage dependence of a load, numbered as OpenDSS numbers its load models.

    At voltage magnitude `|u|` across the load (`x = |u| / v_nom`) it draws
    `P = P0 f_P(x)` and `Q = Q0 f_Q(x)`:

    | model | `f_P(x)` | `f_Q(x)` |
    |---|---|---|
    | 1 constant power | 1 | 1 |
    | 2 constant impedance | x² | x² |
    | 3 motor | 1 | x² |
    | 4 exponential (CVR) | x^cvr_watts | x^cvr_vars |
    | 5 constant current | x | x |
    | 6 fixed Q | 1 | 1, not scaled by load multipliers |
    | 7 fixed reactance | 1 | x², not scaled by load multipliers |
    | 8 ZIPV | z_p x² + i_p x + p_p | z_q x² + i_q x + p_q |

    A ZIPV load's seventh coefficient, a cut-off voltage `x_c > 0`, scales its
    power by OpenDSS's smooth drop-out `(1 + tanh(500 (x - x_c))) / 2`.
    """

    CONSTANT_POWER = 1
    CONSTANT_IMPEDANCE = 2
    MOTOR = 3
    EXPONENTIAL = 4
    CONSTANT_CURRENT = 5
    FIXED_Q = 6
    FIXED_REACTANCE = 7
    ZIPV = 8


_MODEL_ALIASES = {
    "p": 1, "pq": 1, "power": 1, "constant_power": 1,
    "z": 2, "impedance": 2, "constant_impedance": 2,
    "motor": 3,
    "exponential": 4, "cvr": 4,
    "i": 5, "current": 5, "constant_current": 5,
    "fixed_q": 6,
    "fixed_reactance": 7, "fixed_x": 7,
    "zipv": 8, "zip": 8,
}  # fmt: skip


def load_model(model: "int | str | LoadModel") -> LoadModel:
    """Parse a load model given as an OpenDSS number (1 to 8), a name or a
    `LoadModel`."""
    if isinstance(model, str):
        key = model.strip().lower().replace(" ", "_").replace("-", "_")
        if key.isdigit():
            model = int(key)
        elif key in _MODEL_ALIASES:
            model = _MODEL_ALIASES[key]
        else:
            raise ValueError(
                f"Unknown load model {model!r}; use an OpenDSS model number (1 to 8) "
                f"or one of {', '.join(repr(k) for k in _MODEL_ALIASES if len(k) > 2)}."
            )
    try:
        return LoadModel(int(model))
    except ValueError:
        raise ValueError(
            f"Load model {model} does not exist; OpenDSS numbers its load models 1 "
            "to 8 (see gridflex.feeders.LoadModel)."
        ) from None


# Largest `Ports.zip_dense` kept (entries): 8 MB in float64. Beyond it, a feeder's
# loads are summed per port row by row (a scatter, but linear in the loads).
_DENSE_ZIP_MAX = 2**20

# The powers of x = |u| / v_nom a load's terms multiply, as in `Loads.exponent`.
_ZIP_EXPONENTS = (2.0, 1.0, 0.0)


def load_terms(
    model: "int | str | LoadModel",
    *,
    cvr_watts: float = 1.0,
    cvr_vars: float = 2.0,
    zipv: Sequence[float] | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """A load model as `(coefficient, exponent, cutoff_pu)`: `[2, 3]` arrays whose rows
    are P and Q, so `f(x) = sum_j coefficient[:, j] * x ** exponent[:, j]`
    (`LoadModel` has the table). `cvr_watts`, `cvr_vars`: model 4's exponents;
    `zipv`: model 8's seven coefficients (OpenDSS's `ZIPV`), which it needs."""
    m = load_model(model)
    exponent = np.tile(np.asarray(_ZIP_EXPONENTS), (2, 1))
    coefficient = np.zeros((2, 3))
    cutoff = 0.0
    if m is LoadModel.ZIPV:
        if zipv is None:
            raise ValueError(
                "load model 8 (ZIPV) needs its seven coefficients: zipv=[z_p, i_p, "
                "p_p, z_q, i_q, p_q, cutoff_pu]."
            )
        z = np.asarray(zipv, dtype=np.float64).reshape(-1)
        if z.shape != (7,) or not np.all(np.isfinite(z)):
            raise ValueError(
                f"zipv needs seven finite numbers (z_p, i_p, p_p, z_q, i_q, p_q, "
                f"cutoff_pu); got {list(np.asarray(zipv).reshape(-1))}."
            )
        coefficient = z[:6].reshape(2, 3)
        cutoff = float(z[6])
    elif m is LoadModel.EXPONENTIAL:
        for label, e in (("cvr_watts", cvr_watts), ("cvr_vars", cvr_vars)):
            if not np.isfinite(e):
                raise ValueError(f"{label} must be finite; got {e}.")
        exponent[:, 0] = (cvr_watts, cvr_vars)
        coefficient[:, 0] = 1.0
    else:
        # index into _ZIP_EXPONENTS (2, 1, 0) of P's and Q's single term
        p, q = {1: (2, 2), 2: (0, 0), 3: (2, 0), 5: (1, 1), 6: (2, 2), 7: (2, 0)}[m]
        coefficient[0, p] = coefficient[1, q] = 1.0
    return coefficient, exponent, cutoff


# Volts per kW a wye injection may move its own node by, in pu, before the node is
# called floating: about 3e-4 at the most remote nodes of the shipped feeders, 2e4
# behind IEEE 123's ungrounded delta-delta transformer (bus 610).
_FLOATING_PU_PER_KW = 1.0


def _check_grounded(feeder: "Feeder", nodes: Sequence[int]) -> None:
    """Refuse declared injection nodes whose zero sequence floats: a wye (to ground)
    injection there has no return path, so the solve fails at healthy voltages."""
    column = {n: k for k, n in enumerate(feeder.injection_nodes)}
    bad = []
    for i in nodes:
        z = abs(feeder.z_inj[i, column[i]])
        pu_per_kw = z * 1e3 / feeder.base_v[i] ** 2
        if pu_per_kw > _FLOATING_PU_PER_KW:
            bad.append((feeder.node_names[i], pu_per_kw))
    if bad:
        names = format_names([n for n, _ in bad])
        raise ValueError(
            f"Injection node(s) {names} of feeder {feeder.name!r}: a wye injection "
            f"there has no path to ground (1 kW would move the node by "
            f"{bad[0][1]:.1e} pu): its zero sequence floats, as behind an ungrounded "
            "delta-delta transformer. Inject elsewhere, or ground the network there."
        )


class SparseMatrix(eqx.Module):
    """A complex matrix in coordinate form, kept on the host.

    Feeders are sparse (a few entries per row); storing admittances densely would cost
    118 MB for the 906-bus European LV feeder. Use `todense()` or `to_scipy()`.
    """

    rows: Int[np.ndarray, " nnz"]
    cols: Int[np.ndarray, " nnz"]
    values: Complex[np.ndarray, " nnz"]
    shape: tuple[int, int] = eqx.field(static=True)

    @classmethod
    def from_any(cls, matrix) -> "SparseMatrix":
        """From a dense array, a SciPy sparse matrix or a `SparseMatrix`."""
        if isinstance(matrix, SparseMatrix):
            return matrix
        coo = sp.coo_array(matrix, dtype=np.complex128)
        coo.sum_duplicates()
        coo.eliminate_zeros()
        rows, cols = coo.coords
        shape: tuple[int, int] = coo.shape  # pyright: ignore[reportAssignmentType]
        return cls(
            rows=np.asarray(rows, dtype=np.int64),
            cols=np.asarray(cols, dtype=np.int64),
            values=np.asarray(coo.data, dtype=np.complex128),
            shape=(int(shape[0]), int(shape[1])),
        )

    def to_scipy(self) -> sp.csc_array:
        return sp.csc_array((self.values, (self.rows, self.cols)), shape=self.shape)

    def todense(self) -> np.ndarray:
        return self.to_scipy().toarray()


class Loads(eqx.Module):
    """Base loads of a feeder, one row per phase element ("connection").

    A wye phase element connects a node to ground (`node_b == -1`); a delta phase
    element (or a wye load whose neutral is a phase node) connects two nodes and draws
    its current from `node_a` into `node_b`. `s_kva` is the complex power (kW + j kvar,
    positive = consumption) at the nominal voltage magnitude `v_nom_v` across the
    element, so a three-phase 300 kW load appears as three 100 kW rows.

    Each row's voltage dependence (its OpenDSS `model`, see `LoadModel`) is kept as
    terms: at `x = |u| / v_nom_v` it draws `Re(s_kva) f_P(x) + j Im(s_kva) f_Q(x)`,
    `f = sum_j coefficient[:, j] * x ** exponent[:, j]` (rows P and Q), times the
    ZIPV drop-out where `cutoff_pu > 0`. Left out, they follow from `model` (model 8
    has no default: give its terms, `load_terms(8, zipv=...)`).
    """

    names: tuple[str, ...] = eqx.field(static=True)
    load: Int[np.ndarray, " conn"]
    node_a: Int[np.ndarray, " conn"]
    node_b: Int[np.ndarray, " conn"]
    s_kva: Complex[np.ndarray, " conn"]
    v_nom_v: Float[np.ndarray, " conn"]
    model: Int[np.ndarray, " conn"]
    coefficient: Float[np.ndarray, "conn 2 3"]
    exponent: Float[np.ndarray, "conn 2 3"]
    cutoff_pu: Float[np.ndarray, " conn"]

    def __init__(
        self,
        names,
        load,
        node_a,
        node_b,
        s_kva,
        v_nom_v,
        model,
        coefficient=None,
        exponent=None,
        cutoff_pu=None,
    ):
        self.names = tuple(str(n) for n in names)
        self.load = np.asarray(load, dtype=np.int64).reshape(-1)
        self.node_a = np.asarray(node_a, dtype=np.int64).reshape(-1)
        self.node_b = np.asarray(node_b, dtype=np.int64).reshape(-1)
        self.s_kva = np.asarray(s_kva, dtype=np.complex128).reshape(-1)
        self.v_nom_v = np.asarray(v_nom_v, dtype=np.float64).reshape(-1)
        self.model = np.asarray(
            [int(load_model(int(m))) for m in np.asarray(model).reshape(-1)],
            dtype=np.int64,
        )
        if coefficient is None or exponent is None or cutoff_pu is None:
            terms = [load_terms(int(m)) for m in self.model]
            coefficient = [t[0] for t in terms] if coefficient is None else coefficient
            exponent = [t[1] for t in terms] if exponent is None else exponent
            cutoff_pu = [t[2] for t in terms] if cutoff_pu is None else cutoff_pu
        n = self.model.shape[0]
        self.coefficient = np.asarray(coefficient, dtype=np.float64).reshape(n, 2, 3)
        self.exponent = np.asarray(exponent, dtype=np.float64).reshape(n, 2, 3)
        self.cutoff_pu = np.asarray(cutoff_pu, dtype=np.float64).reshape(-1)

    def __check_init__(self):
        n = self.load.shape[0]
        for field in ("node_a", "node_b", "s_kva", "v_nom_v", "model", "cutoff_pu"):
            if getattr(self, field).shape != (n,):
                raise ValueError(
                    f"Loads.{field} has shape {getattr(self, field).shape}; every "
                    f"per-connection array needs shape ({n},)."
                )
        terms = np.concatenate(
            [self.coefficient.ravel(), self.exponent.ravel(), self.cutoff_pu]
        )
        if not np.all(np.isfinite(terms)):
            raise ValueError(
                "Load model terms (coefficients, exponents) must be finite."
            )
        if n and (self.load.min() < 0 or self.load.max() >= len(self.names)):
            raise ValueError("Loads.load indexes outside Loads.names.")
        if len(set(self.names)) != len(self.names):
            raise ValueError("Load names must be unique.")
        bad = ~(np.isfinite(self.v_nom_v) & (self.v_nom_v > 0))
        if bad.any():
            which = sorted({self.names[i] for i in self.load[bad]})
            raise ValueError(
                f"Loads {format_names(which)} have a non-positive nominal voltage; "
                "give each load its rated kV."
            )
        if not np.all(np.isfinite(self.s_kva)):
            raise ValueError("Load powers must be finite.")
        if np.any((self.node_a == self.node_b) | (self.node_a < 0)):
            raise ValueError("A load connection needs two distinct terminals.")

    @classmethod
    def empty(cls) -> "Loads":
        return cls((), [], [], [], [], [], [])

    @property
    def n_loads(self) -> int:
        return len(self.names)

    def select(self, keep: Sequence[str]) -> "Loads":
        """The loads named in `keep`, in their original order."""
        keep_set = set(keep)
        unknown = keep_set - set(self.names)
        if unknown:
            raise ValueError(f"Unknown load(s): {format_names(sorted(unknown))}.")
        old = [i for i, n in enumerate(self.names) if n in keep_set]
        new_index = {o: k for k, o in enumerate(old)}
        rows = np.array([li in new_index for li in self.load], dtype=bool)
        return Loads(
            names=[self.names[i] for i in old],
            load=[new_index[li] for li in self.load[rows]],
            node_a=self.node_a[rows],
            node_b=self.node_b[rows],
            s_kva=self.s_kva[rows],
            v_nom_v=self.v_nom_v[rows],
            model=self.model[rows],
            coefficient=self.coefficient[rows],
            exponent=self.exponent[rows],
            cutoff_pu=self.cutoff_pu[rows],
        )

    @property
    def fixed_q(self) -> Any:
        """Rows whose reactive power ignores load multipliers (models 6 and 7)."""
        # comparisons, not np.isin: inside a traced function `model` is a tracer
        return (self.model == LoadModel.FIXED_Q) | (
            self.model == LoadModel.FIXED_REACTANCE
        )


class Ports(eqx.Module):
    """The feeder as the power flow iterates on it, formed once on the host.

    A *port* is a voltage loads are connected across: each injection node (to
    ground), then each distinct node pair that loads sit across (delta loads). The
    power flow's state is the ports' voltages, a pair's taken as a port of its own
    rather than gathered from its two nodes at every iteration, and a pair's current
    enters through the same matrix rather than being scattered onto them: an
    iteration is one dense mat-vec plus elementwise work, with no gather or scatter
    (which, under `vmap`, cost more than the mat-vec on IEEE 123). At the solution a
    pair's voltage is its nodes' difference, so the result is the same.

    **Attributes:**

    - `incidence`: `K = [I, H]` (injection node x port): port currents to injection
        node currents (`H`: +1 at a pair's first node, -1 at its second).
    - `base_v`: each port's base volts: its node's base, or a pair's no-load voltage
        difference.
    - `z`: `K^T Z K` in ohms, `Z` the Z-Bus matrix at the injection nodes.
    - `w`: the no-load port voltages `K^T w` (complex volts).
    - `node_z`: `Z[:, inj] K`, every node's voltage response to the port currents.
    - `zip_load`, `zip_port`, `zip_coef`, `zip_fixed`, `zip_dense`: the ZIP loads
        (rows whose terms are x², x, 1 only), summed per port by the power flow
        into the coefficients of the constant-power, constant-current and
        constant-impedance terms (P and Q) of the power drawn over
        `base_v * |y|^2`, `y` the per-unit port voltage, shape `(3, 2, port)`:
        each row's coefficients `zip_coef` times its load's multiplier, summed at
        `zip_port`, plus `zip_fixed` (the reactive power of models 6 and 7, which
        ignores multipliers). `zip_dense` is the same sum as one matrix
        (`load_scale @ zip_dense`, load x 6·port), kept when it is small: one small
        product per solve under `vmap` instead of a scatter.
    - `term_rows`, `term_port`: the load rows drawn one by one (models beyond ZIP,
        or a ZIPV drop-out) and their ports.
    - `has_current`: whether any ZIP load has a constant-current term.
    """

    incidence: Float[np.ndarray, "inj port"]
    base_v: Float[np.ndarray, " port"]
    z: Complex[np.ndarray, "port port"]
    w: Complex[np.ndarray, " port"]
    node_z: Complex[np.ndarray, "node port"]
    zip_load: Int[np.ndarray, " zip"]
    zip_port: Int[np.ndarray, " zip"]
    zip_coef: Float[np.ndarray, "zip 3 2"]
    zip_dense: Float[np.ndarray, "load coef"] | None
    zip_fixed: Float[np.ndarray, " coef"]
    term_rows: Int[np.ndarray, " term"]
    term_port: Int[np.ndarray, " term"]
    has_current: bool = eqx.field(static=True)

    @property
    def n_ports(self) -> int:
        return self.base_v.shape[0]


def _ports(feeder: "Feeder") -> Ports:
    loads = feeder.loads
    inj = np.asarray(feeder.injection_nodes, dtype=np.int64)
    m = inj.size
    pos = np.full(feeder.n_nodes, -1, dtype=np.int64)
    pos[inj] = np.arange(m)
    wye = loads.node_b < 0
    pairs, pair_of_row = np.unique(
        np.stack([loads.node_a[~wye], loads.node_b[~wye]], axis=1),
        axis=0,
        return_inverse=True,
    )
    n_pair = pairs.shape[0]
    port = np.empty(wye.size, dtype=np.int64)
    port[wye] = pos[loads.node_a[wye]]
    port[~wye] = m + pair_of_row.reshape(-1)
    k = np.zeros((m, m + n_pair))
    k[np.arange(m), np.arange(m)] = 1.0
    k[pos[pairs[:, 0]], m + np.arange(n_pair)] = 1.0
    k[pos[pairs[:, 1]], m + np.arange(n_pair)] = -1.0
    across = np.abs(feeder.w[pairs[:, 0]] - feeder.w[pairs[:, 1]])
    node_base = feeder.base_v[pairs[:, 0]]
    c = np.concatenate(
        [feeder.base_v[inj], np.where(across > 0.1 * node_base, across, node_base)]
    )
    zip_rows = np.all(np.isin(loads.exponent, _ZIP_EXPONENTS), axis=(1, 2)) & (
        loads.cutoff_pu == 0
    )
    current = (loads.exponent[zip_rows] == 1.0) & (loads.coefficient[zip_rows] != 0)
    # without node pairs K is the identity: share `z_inj` rather than copy it (n x m
    # complex, the largest array of a big feeder)
    node_z = feeder.z_inj if n_pair == 0 else feeder.z_inj @ k
    return Ports(
        incidence=k,
        base_v=c,
        z=k.T @ node_z[inj],
        w=k.T @ feeder.w[inj],
        node_z=node_z,
        **_zip_per_port(loads, zip_rows, port, c),
        term_rows=np.flatnonzero(~zip_rows),
        term_port=port[~zip_rows],
        has_current=bool(np.any(current)),
    )


def _zip_per_port(
    loads: Loads, zip_rows: np.ndarray, port: np.ndarray, c: np.ndarray
) -> dict:
    """`Ports.zip_*`: every ZIP row's coefficients in its port's units, and their
    sums as one matrix when it is small."""
    rows = np.flatnonzero(zip_rows)
    port, load = port[rows], loads.load[rows]
    s = loads.s_kva[rows] * 1e3
    fixed = np.asarray(loads.fixed_q)[rows]  # models 6 and 7: Q ignores multipliers
    coef = np.zeros((rows.size, 3, 2))
    for term, exponent in enumerate((0.0, 1.0, 2.0)):
        # the coefficient of x**exponent per volt**exponent, in the port's units: over
        # c for constant power, times c for constant impedance
        on = loads.exponent[rows] == exponent
        weight = np.sum(np.where(on, loads.coefficient[rows], 0.0), axis=-1)
        weight = weight / loads.v_nom_v[rows, None] ** exponent
        weight = weight * c[port, None] ** (exponent - 1)
        coef[:, term, 0] = np.real(s) * weight[:, 0]
        coef[:, term, 1] = np.imag(s) * weight[:, 1]
    const = np.zeros((3, 2, c.size))
    for term in range(3):
        np.add.at(const[term, 1], port[fixed], coef[fixed, term, 1])
    coef[fixed, :, 1] = 0.0
    dense = None
    if loads.n_loads * 6 * c.size <= _DENSE_ZIP_MAX:
        dense = np.zeros((loads.n_loads, 3, 2, c.size))
        for term in range(3):
            for part in range(2):
                np.add.at(dense[:, term, part], (load, port), coef[:, term, part])
        dense = dense.reshape(loads.n_loads, 6 * c.size)
    return {
        "zip_load": load,
        "zip_port": port,
        "zip_coef": coef,
        "zip_dense": dense,
        "zip_fixed": const.reshape(6 * c.size),
    }


class Feeder(eqx.Module):
    """A three-phase unbalanced distribution feeder, ready for the Z-Bus power flow.

    Build one with `gridflex.feeders.FeederBuilder`, import one with
    `gridflex.feeders.from_opendss`, or load a built-in one
    (`gridflex.feeders.ieee13()`).
    Feeders are immutable: methods such as `with_injection_nodes` return new ones.

    **Attributes:**

    - `name`: a label.
    - `node_names`: the non-slack nodes, `bus.phase` in lower case (OpenDSS spelling).
    - `slack_names`: the slack nodes: the source's internal (EMF) voltages, behind its
        Thevenin impedance, as OpenDSS models a `Vsource`.
    - `base_v`: each node's line-to-neutral base voltage in volts.
    - `v_slack`: the slack voltages, complex volts.
    - `y`: the bus admittance matrix in siemens over `slack_names + node_names` (slack
        first); the blocks are `y00`, `y0n`, `yn0`, `ynn`.
    - `loads`: the base loads (`Loads`).
    - `frequency_hz`: the system frequency the admittances were computed at.
    - `injection_nodes`: indices of the nodes the power flow iterates on: every node a
        base load touches, plus nodes where extra injections (`p_kw`, `q_kvar`) may be
        non-zero. The cost of a solve grows with this set, not with the feeder size.
    - `w`: no-load voltages, `-YNN^{-1} YN0 v_slack` (complex volts).
    - `z_inj`: the columns of `YNN^{-1}` at `injection_nodes` (ohms).
    - `y0`: the slack rows of `y` (dense; gives the source's current).
    - `ports`: the feeder as the power flow iterates on it (`Ports`), formed once.
    """

    name: str = eqx.field(static=True)
    node_names: tuple[str, ...] = eqx.field(static=True)
    slack_names: tuple[str, ...] = eqx.field(static=True)
    base_v: Float[np.ndarray, " node"]
    v_slack: Complex[np.ndarray, " slack"]
    y: SparseMatrix
    loads: Loads
    frequency_hz: float = eqx.field(static=True)
    injection_nodes: tuple[int, ...] = eqx.field(static=True)
    w: Complex[np.ndarray, " node"]
    z_inj: Complex[np.ndarray, "node inj"]
    y0: Complex[np.ndarray, "slack all"]
    ports: Ports

    def __init__(
        self,
        *,
        node_names: Sequence[str],
        slack_names: Sequence[str],
        y,
        v_slack: Complex[AnyArray, " slack"] | Sequence[complex],
        base_v: Float[AnyArray, " node"] | Sequence[float],
        loads: Loads | None = None,
        injection_nodes: Sequence[str] | None = None,
        frequency_hz: float = 60.0,
        name: str = "feeder",
    ):
        """**Arguments:**

        - `node_names`, `slack_names`, `v_slack`, `base_v`, `loads`, `frequency_hz`,
            `name`: as the attributes.
        - `y`: the full admittance matrix (slack first), dense, SciPy sparse or
            `SparseMatrix`, in siemens.
        - `injection_nodes`: names of nodes where extra injections may be placed, in
            addition to the nodes that carry base loads. Default: none beyond those.
        """
        self.name = str(name)
        self.node_names = tuple(str(n) for n in node_names)
        self.slack_names = tuple(str(n) for n in slack_names)
        self.base_v = np.asarray(base_v, dtype=np.float64).reshape(-1)
        self.v_slack = np.asarray(v_slack, dtype=np.complex128).reshape(-1)
        self.y = SparseMatrix.from_any(y)
        self.loads = Loads.empty() if loads is None else loads
        self.frequency_hz = float(frequency_hz)
        _validate(self)
        index = {n: i for i, n in enumerate(self.node_names)}
        extra = []
        for n in injection_nodes or ():
            key = str(n).lower()
            if key not in index:
                raise ValueError(
                    f"Injection node {n!r} is not a node of feeder {self.name!r}; "
                    "nodes are named 'bus.phase', e.g. "
                    f"{self.node_names[0]!r}."
                )
            extra.append(index[key])
        touched = set(self.loads.node_a.tolist()) | set(
            int(b) for b in self.loads.node_b if b >= 0
        )
        self.injection_nodes = tuple(sorted(touched | set(extra)))
        self.w, self.z_inj = _zbus(self)
        _check_grounded(self, sorted(set(extra) - touched))
        self.y0 = self.y.to_scipy()[: self.n_slack, :].toarray()
        self.ports = _ports(self)

    # --- sizes and blocks -----------------------------------------------------------

    @property
    def n_nodes(self) -> int:
        return len(self.node_names)

    @property
    def n_slack(self) -> int:
        return len(self.slack_names)

    @property
    def y00(self) -> np.ndarray:
        return self._block(slice(0, self.n_slack), slice(0, self.n_slack))

    @property
    def y0n(self) -> np.ndarray:
        return self._block(slice(0, self.n_slack), slice(self.n_slack, None))

    @property
    def yn0(self) -> np.ndarray:
        return self._block(slice(self.n_slack, None), slice(0, self.n_slack))

    @property
    def ynn(self) -> np.ndarray:
        """Dense `YNN` (siemens). Large on big feeders: prefer `ynn_sparse`."""
        return self.ynn_sparse.toarray()

    @property
    def ynn_sparse(self) -> sp.csc_array:
        s = self.n_slack
        return sp.csc_array(self.y.to_scipy()[s:, s:])

    def _block(self, rows: slice, cols: slice) -> np.ndarray:
        return self.y.to_scipy()[rows, cols].toarray()

    @property
    def bus_names(self) -> tuple[str, ...]:
        """Buses in order of first appearance among the nodes."""
        return tuple(dict.fromkeys(n.split(".")[0] for n in self.node_names))

    def node_index(self, names: str | Sequence[str]) -> np.ndarray:
        """Indices of nodes by name (`bus.phase`, case-insensitive)."""
        single = isinstance(names, str)
        wanted = [names] if single else list(names)
        index = {n: i for i, n in enumerate(self.node_names)}
        missing = [n for n in wanted if str(n).lower() not in index]
        if missing:
            raise ValueError(
                f"Unknown node(s) {format_names(missing)} in feeder {self.name!r}; "
                "nodes are named 'bus.phase' in lower case, e.g. "
                f"{self.node_names[0]!r}."
            )
        return np.array([index[str(n).lower()] for n in wanted], dtype=np.int64)

    @property
    def injection_node_names(self) -> tuple[str, ...]:
        return tuple(self.node_names[i] for i in self.injection_nodes)

    # --- derived feeders ------------------------------------------------------------

    def with_injection_nodes(self, names: Sequence[str]) -> "Feeder":
        """A copy whose power flow accepts extra injections at `names` as well."""
        return self._replace(
            injection_nodes=list(self.injection_node_names) + [str(n) for n in names]
        )

    def with_loads(self, loads: Loads) -> "Feeder":
        """A copy with other base loads; the current injection nodes stay valid."""
        return self._replace(loads=loads, injection_nodes=self.injection_node_names)

    def without_loads(self, names: Sequence[str] | None = None) -> "Feeder":
        """A copy without the named base loads (all if `None`).

        Their nodes stay injection nodes, so whatever replaces them (homes placed by
        the environment) can inject there.
        """
        drop = set(self.loads.names if names is None else names)
        keep = [n for n in self.loads.names if n not in drop]
        return self.with_loads(self.loads.select(keep))

    def _replace(self, **changes) -> "Feeder":
        kwargs: dict[str, Any] = dict(
            node_names=self.node_names,
            slack_names=self.slack_names,
            y=self.y,
            v_slack=self.v_slack,
            base_v=self.base_v,
            loads=self.loads,
            injection_nodes=self.injection_node_names,
            frequency_hz=self.frequency_hz,
            name=self.name,
        )
        kwargs.update(changes)
        return Feeder(**kwargs)


def _validate(f: Feeder) -> None:
    n, s = f.n_nodes, f.n_slack
    if n == 0 or s == 0:
        raise ValueError("A feeder needs at least one slack node and one other node.")
    bad_names = [x for x in f.node_names + f.slack_names if not _NODE_NAME.match(x)]
    if bad_names:
        raise ValueError(
            f"Node names {format_names(bad_names)} are not of the form 'bus.phase' "
            "(phase a positive integer), e.g. '632.1'."
        )
    upper = [x for x in f.node_names + f.slack_names if x != x.lower()]
    if upper:
        raise ValueError(f"Node names must be lower case: {format_names(upper)}.")
    all_names = f.slack_names + f.node_names
    if len(set(all_names)) != len(all_names):
        dup = sorted({x for x in all_names if all_names.count(x) > 1})
        raise ValueError(f"Duplicate node names: {format_names(dup)}.")
    if f.y.shape != (n + s, n + s):
        raise ValueError(
            f"The admittance matrix has shape {f.y.shape}; with {s} slack and {n} "
            f"other nodes it must be ({n + s}, {n + s})."
        )
    if not np.all(np.isfinite(f.y.values)):
        raise ValueError("The admittance matrix has non-finite entries.")
    if f.base_v.shape != (n,):
        raise ValueError(f"base_v has shape {f.base_v.shape}; expected ({n},).")
    zero = [f.node_names[i] for i in np.flatnonzero(~(f.base_v > 0))]
    if zero:
        raise ValueError(
            f"Nodes {format_names(zero)} have a zero or negative base voltage; every "
            "node needs a positive line-to-neutral base (set the voltage bases)."
        )
    if f.v_slack.shape != (s,) or not np.all(np.isfinite(f.v_slack)):
        raise ValueError(f"v_slack must be {s} finite complex voltages.")
    if f.loads.node_a.size and (f.loads.node_a.max() >= n or f.loads.node_b.max() >= n):
        raise ValueError("A load refers to a node index outside the feeder.")
    # Islanded nodes: no path through non-zero admittances to any slack node.
    adjacency = sp.csr_array(
        (np.ones(f.y.values.size), (f.y.rows, f.y.cols)), shape=f.y.shape
    )
    _, labels = csgraph.connected_components(adjacency, directed=False)
    live = set(labels[:s].tolist())
    islanded = [f.node_names[i] for i in range(n) if labels[s + i] not in live]
    if islanded:
        cut = {i for i in range(n) if labels[s + i] not in live}
        rows = np.isin(f.loads.node_a, list(cut)) | np.isin(f.loads.node_b, list(cut))
        loads = sorted({f.loads.names[i] for i in f.loads.load[rows]})
        with_loads = f", carrying load(s) {format_names(loads)}" if loads else ""
        raise ValueError(
            f"Feeder {f.name!r} has islanded nodes with no path to the source: "
            f"{format_names(islanded)}{with_loads}. Remove the de-energised part "
            "(open switches or disabled elements can cut it off) or connect it."
        )


def _zbus(f: Feeder) -> tuple[np.ndarray, np.ndarray]:
    """No-load voltages and the Z-Bus columns at the injection nodes, in float64."""
    s = f.n_slack
    y = f.y.to_scipy()
    ynn = sp.csc_array(y[s:, s:])
    yn0 = y[s:, :s].toarray()
    singular = ValueError(
        f"YNN of feeder {f.name!r} is singular: some node has no reference to ground "
        "or to the source through admittances (for example a floating delta winding "
        "or an ungrounded wye neutral). Ground it or remove it."
    )
    try:
        lu = spla.splu(ynn)
    except RuntimeError as e:
        raise singular from e
    w = lu.solve(-(yn0 @ f.v_slack).astype(np.complex128))
    inj = np.asarray(f.injection_nodes, dtype=np.int64)
    rhs = np.zeros((f.n_nodes, inj.size), dtype=np.complex128)
    rhs[inj, np.arange(inj.size)] = 1.0
    z_inj = lu.solve(rhs) if inj.size else rhs
    # A matrix that factorises but is numerically singular shows in the residual.
    check = np.concatenate([w[:, None], z_inj], axis=1)
    target = np.concatenate([-(yn0 @ f.v_slack)[:, None], rhs], axis=1)
    resid = np.abs(ynn @ check - target).max() if check.size else 0.0
    scale = np.max(np.abs(ynn.data)) * max(np.abs(check).max(), 1.0)
    if not (np.all(np.isfinite(check)) and resid <= 1e-8 * scale):
        raise singular
    return w, z_inj
