"""`power_flow`: the differentiable three-phase Z-Bus power flow.

The state Optimistix iterates on is the per-unit voltage at the ports only (the
injection nodes, then the node pairs delta loads sit across), stacked as real and
imaginary parts (Optimistix's complex support gave wrong gradients through LU and
BiCGStab adjoints). Voltages elsewhere are linear in the port currents and are formed
once after convergence: `v = w + Z[:, inj] K i_port`.
"""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optimistix as optx
from jaxtyping import Array, ArrayLike, Complex, Float, Int

from .._misc import complex_dtype, default_float, format_names, is_concrete
from ..feeders import Feeder
from ._failure import failure_on_gradients
from ._linear_solvers import guard_adjoint, Guarded, Neumann
from ._results import RESULTS
from ._solvers import AbstractPowerFlowSolver, default_tolerance, ZBus


class PowerFlowSolution(eqx.Module):
    """The result of `power_flow`.

    **Attributes:**

    - `v`: complex phase-to-neutral node voltages in volts, aligned with
        `feeder.node_names`.
    - `v_pu`: voltage magnitudes on each node's line-to-neutral base.
    - `s_source_kva`: complex power delivered by the source into the network, per
        slack phase (kW + j kvar).
    - `result`: a `gridflex.powerflow.RESULTS`; `RESULTS[sol.result]` is a message.
    - `iterations`: iterations the solver took.
    """

    v: Complex[Array, " node"]
    v_pu: Float[Array, " node"]
    s_source_kva: Complex[Array, " slack"]
    result: RESULTS
    iterations: Int[Array, ""]


class _Terms(eqx.Module):
    """Loads drawn row by row: `s` (W, var) at nominal voltage `vnom` times
    `f(x) = sum_j coef[:, :, j] x ** exp[:, :, j]` (rows P and Q), times the ZIPV
    drop-out where `cutoff > 0` (see `gridflex.feeders.LoadModel`)."""

    s: Float[Array, "2 row"]
    vnom: Float[Array, " row"]
    coef: Float[Array, "2 row 3"]
    exp: Float[Array, "2 row 3"]
    cutoff: Float[Array, " row"]

    def power(self, mag2: Float[Array, " row"]) -> Float[Array, "2 row"]:
        """Powers drawn at squared voltage magnitudes `mag2` across the rows."""
        # as x * x, not mag2 / vnom², so models 2 and 5 round as they always have
        x = jnp.sqrt(mag2) / self.vnom
        x2 = x * x
        # the ZIP exponents exactly (x², x, 1), anything else as a power
        x2b = jnp.broadcast_to(x2[None, :, None], self.exp.shape)
        xb = jnp.broadcast_to(x[None, :, None], self.exp.shape)
        terms = jnp.where(
            self.exp == 2,
            x2b,
            jnp.where(self.exp == 1, xb, jnp.where(self.exp == 0, 1.0, xb**self.exp)),
        )
        f = jnp.sum(self.coef * terms, axis=-1)
        drop = jnp.where(
            self.cutoff > 0, 0.5 * (1 + jnp.tanh(500 * (x - self.cutoff))), 1.0
        )
        return self.s * f * drop[None, :]


class _Network(eqx.Module):
    """The per-solve data of the Z-Bus map on the feeder's ports (see
    `gridflex.feeders.Ports`), in the working dtype."""

    w_pu: Float[Array, " state"]  # no-load port voltages, stacked re/im, per unit
    # -[[Mr, -Mi], [Mi, Mr]]^T, M = K^T Z K / c: transposed, so that under `vmap` the
    # batch is the product's leading axis (`i @ M^T`) and XLA moves no data around it
    # (M @ i put the batch last and cost a transpose per iteration, +60 % on IEEE 123)
    m_t: Float[Array, "state state"]
    # The ZIP loads' power over (c |y|^2) is `coef[0] / |y|^2 + coef[1] / |y| +
    # coef[2]` (rows P and Q): the constant-power, constant-current and
    # constant-impedance coefficients in the port's units
    coef: Float[Array, "3 2 port"]
    c: Float[Array, " port"]  # port base volts
    term_pos: Int[Array, " row"]  # ports of the rows drawn one by one
    terms: _Terms
    has_current: bool = eqx.field(static=True)


def _zbus_map(y: Float[Array, " state"], net: _Network) -> Float[Array, " state"]:
    """`y -> w + M i(y)` on stacked real/imaginary per-unit port voltages."""
    return net.w_pu + _drawn(y, net) @ net.m_t


def _drawn(y: Float[Array, " state"], net: _Network) -> Float[Array, " state"]:
    """Currents drawn (amps, stacked re/im) by the loads at port voltages `y`."""
    n = net.c.shape[0]
    yr, yi = y[:n], y[n:]
    mag2 = yr * yr + yi * yi
    inv = 1 / mag2
    # i = conj(S) v / |v|^2 = conj(S / (c |y|^2)) y, with v = c y
    sr = net.coef[0, 0] * inv + net.coef[2, 0]
    si = net.coef[0, 1] * inv + net.coef[2, 1]
    if net.has_current:
        rs = jax.lax.rsqrt(mag2)
        sr = sr + net.coef[1, 0] * rs
        si = si + net.coef[1, 1] * rs
    if net.term_pos.shape[0]:
        pos = net.term_pos
        c = net.c[pos]
        rows = net.terms.power(mag2[pos] * c * c) / (c * mag2[pos])[None, :]
        sr = sr.at[pos].add(rows[0])
        si = si.at[pos].add(rows[1])
    # The barrier keeps the currents one array: XLA otherwise splits the product of
    # a concatenation into two half-width matmuls, 2.5x slower on IEEE 123.
    return jax.lax.optimization_barrier(
        jnp.concatenate([sr * yr + si * yi, sr * yi - si * yr])
    )


class _FiniteStop(optx.AbstractFixedPointSolver):
    """Delegates to an Optimistix fixed-point solver, but a diverged solve stops at a
    finite point.

    Optimistix ends a diverged iteration on its first non-finite iterate, and the
    implicit adjoint linearises there: `0 * NaN` then reaches the adjoint's linear
    solve even from a scenario the caller masked out, and Lineax refuses the whole
    batch. The stop point of a diverged solve is replaced by the no-load point (the
    solve is still reported diverged), so masked scenarios pass back exact zeros.
    Root finders (`Newton`) are left as they are: beyond the feeder's loadability
    they run out of steps at finite iterates instead.
    """

    inner: optx.AbstractFixedPointSolver
    rtol: float
    atol: float
    norm: Callable

    def init(self, fn, y, args, options, f_struct, aux_struct, tags):
        return self.inner.init(fn, y, args, options, f_struct, aux_struct, tags)

    def step(self, fn, y, args, options, state, tags):
        return self.inner.step(fn, y, args, options, state, tags)

    def terminate(self, fn, y, args, options, state, tags):
        return self.inner.terminate(fn, y, args, options, state, tags)

    def postprocess(self, fn, y, aux, args, options, state, tags, result):
        y, aux, stats = self.inner.postprocess(
            fn, y, aux, args, options, state, tags, result
        )
        return jnp.where(jnp.all(jnp.isfinite(y)), y, args.w_pu), aux, stats


def _finite_stop(
    solver: AbstractPowerFlowSolver, rtol: float, atol: float
) -> optx.AbstractFixedPointSolver | optx.AbstractRootFinder:
    inner = solver.to_optimistix(rtol, atol)
    if not isinstance(inner, optx.AbstractFixedPointSolver):
        return inner
    return _FiniteStop(inner=inner, rtol=inner.rtol, atol=inner.atol, norm=inner.norm)


def _stacked(a: Complex[Array, " n"]) -> Float[Array, " two_n"]:
    """`[Re a, Im a]`: a complex vector as the solver's real state."""
    return jnp.concatenate([jnp.real(a), jnp.imag(a)])


def _stacked_t(a: Complex[Array, "m n"]) -> Float[Array, "two_n two_m"]:
    """`[[Re a, -Im a], [Im a, Re a]]^T`: `x @ _stacked_t(a)` is `a x` on stacked
    real/imaginary parts, with the batch leading under `vmap`."""
    re, im = jnp.real(a), jnp.imag(a)
    return jnp.block([[re, -im], [im, re]]).T


def _network(
    feeder: Feeder,
    p_kw: Float[Array, " node"],
    q_kvar: Float[Array, " node"],
    load_scale: Float[Array, " load"],
) -> _Network:
    dtype = default_float()
    ports = feeder.ports
    inj = np.asarray(feeder.injection_nodes, dtype=np.int64)
    c = jnp.asarray(ports.base_v, dtype=dtype)
    c_c = c.astype(complex_dtype())
    mat = -jnp.asarray(ports.z, complex_dtype()) / c_c[:, None]
    w = jnp.asarray(ports.w, complex_dtype()) / c_c
    scale = jnp.asarray(load_scale, dtype=dtype)
    if ports.zip_dense is not None:
        coef = scale @ jnp.asarray(ports.zip_dense, dtype)
    else:  # a big feeder: row by row
        rows = jnp.asarray(ports.zip_coef, dtype) * scale[ports.zip_load][:, None, None]
        coef = jax.ops.segment_sum(rows, ports.zip_port, num_segments=c.shape[0])
        coef = jnp.moveaxis(coef, 0, -1).reshape(-1)
    coef = (coef + jnp.asarray(ports.zip_fixed, dtype)).reshape(3, 2, -1)
    # the extra injections are constant power at the injection nodes
    extra = jnp.stack([p_kw[inj], q_kvar[inj]]).astype(dtype) * 1e3
    coef = coef.at[0, :, : inj.size].add(extra / c[None, : inj.size])

    # the rows drawn one by one (models beyond ZIP, or with a ZIPV drop-out)
    loads = feeder.loads
    rows = jnp.asarray(ports.term_rows, dtype=jnp.int32)
    s = jnp.asarray(loads.s_kva, dtype=complex_dtype())[rows] * 1e3
    row_scale = scale[jnp.asarray(loads.load, dtype=jnp.int32)[rows]]
    q_scale = jnp.where(jnp.asarray(loads.fixed_q)[rows], 1.0, row_scale)
    return _Network(
        w_pu=_stacked(w),
        m_t=_stacked_t(mat),
        coef=coef,
        c=c,
        term_pos=jnp.asarray(ports.term_port, dtype=jnp.int32),
        terms=_Terms(
            s=jnp.stack([jnp.real(s) * row_scale, jnp.imag(s) * q_scale]),
            vnom=jnp.asarray(loads.v_nom_v, dtype)[rows],
            coef=jnp.moveaxis(jnp.asarray(loads.coefficient, dtype)[rows], 1, 0),
            exp=jnp.moveaxis(jnp.asarray(loads.exponent, dtype)[rows], 1, 0),
            cutoff=jnp.asarray(loads.cutoff_pu, dtype)[rows],
        ),
        has_current=ports.has_current,
    )


def _check_injections(feeder: Feeder, p_kw, q_kvar):
    """Injections outside `feeder.injection_nodes` would be silently ignored: refuse."""
    outside = np.setdiff1d(np.arange(feeder.n_nodes), feeder.injection_nodes)
    if outside.size == 0:
        return p_kw
    if is_concrete(p_kw, q_kvar):
        bad = outside[
            (np.asarray(p_kw)[outside] != 0) | (np.asarray(q_kvar)[outside] != 0)
        ]
        if bad.size:
            names = [feeder.node_names[i] for i in bad]
            raise ValueError(
                f"p_kw/q_kvar are non-zero at node(s) {format_names(names)}, which are "
                "not injection nodes of this feeder. Use "
                "`feeder.with_injection_nodes([...])` to allow injections there."
            )
        return p_kw
    pred = jnp.any(p_kw[outside] != 0) | jnp.any(q_kvar[outside] != 0)
    return eqx.error_if(
        p_kw,
        pred,
        "p_kw/q_kvar are non-zero at nodes that are not injection nodes of this "
        "feeder; use `feeder.with_injection_nodes([...])` to allow injections there.",
    )


def _check_finite(feeder: Feeder, p_kw, q_kvar, load_scale) -> None:
    """Non-finite inputs, named where they are known (outside `jit`); under `jit`
    they give the result `non_finite_input` instead."""
    if not is_concrete(p_kw, q_kvar, load_scale):
        return
    bad = ~(np.isfinite(np.asarray(p_kw)) & np.isfinite(np.asarray(q_kvar)))
    if bad.any():
        names = [feeder.node_names[i] for i in np.flatnonzero(bad)]
        raise ValueError(
            f"p_kw/q_kvar are not finite (NaN or infinite) at node(s) "
            f"{format_names(names)}."
        )
    bad = ~np.isfinite(np.asarray(load_scale))
    if bad.any():
        names = [feeder.loads.names[i] for i in np.flatnonzero(bad)]
        raise ValueError(
            f"load_scale is not finite (NaN or infinite) for load(s) "
            f"{format_names(names)}."
        )


def default_adjoint() -> optx.ImplicitAdjoint:
    """Implicit adjoint: the Neumann series, guarded, at the working precision.

    The Z-Bus map is a contraction wherever the fixed-point iteration converged, so
    the series converges in a handful of vector-Jacobian products and keeps no Krylov
    basis: under `vmap` it is the cheapest correct choice (2.7x the forward solve on
    IEEE 123, against 6.2x for GMRES: the adjoint table in docs/power-flow.md).
    `Guarded` normalises the right-hand side (tolerances relative to the loss's
    cotangent, whatever its scale), answers zero for zero, and falls back to LU for
    any solve that fails.
    """
    tol = default_tolerance()
    return optx.ImplicitAdjoint(
        linear_solver=Guarded(Neumann(rtol=tol, atol=tol, max_steps=100))
    )


def _checked_inputs(feeder: Feeder, p_kw, q_kvar, load_scale):
    """The injections and load scales as arrays of the default float, their shapes
    and values checked against the feeder (`p` with the injections' checks)."""
    dtype = default_float()
    n = feeder.n_nodes
    p = jnp.zeros(n, dtype) if p_kw is None else jnp.asarray(p_kw, dtype=dtype)
    q = jnp.zeros(n, dtype) if q_kvar is None else jnp.asarray(q_kvar, dtype=dtype)
    if p.shape != (n,) or q.shape != (n,):
        raise ValueError(
            f"p_kw and q_kvar need shape ({n},) (one entry per node of "
            f"{feeder.name!r}); got {p.shape} and {q.shape}."
        )
    n_loads = feeder.loads.n_loads
    scale = (
        jnp.ones(n_loads, dtype)
        if load_scale is None
        else jnp.asarray(load_scale, dtype=dtype)
    )
    if scale.shape != (n_loads,):
        raise ValueError(
            f"load_scale needs shape ({n_loads},), one per base load; got "
            f"{scale.shape}."
        )
    p = _check_injections(feeder, p, q)
    _check_finite(feeder, p, q, scale)
    return p, q, scale


def _outcome(solver_result, v, finite):
    """The solve's `RESULTS` code, and whether it diverged: Optimistix's result,
    then the power-flow reasons (out of steps, diverged, a non-finite input, in
    rising order of what to report)."""
    result = RESULTS.promote(solver_result)
    result = RESULTS.where(
        solver_result == optx.RESULTS.nonlinear_max_steps_reached,
        RESULTS.power_flow_max_steps,
        result,
    )
    diverged = (solver_result == optx.RESULTS.nonfinite) | ~jnp.all(jnp.isfinite(v))
    result = RESULTS.where(diverged, RESULTS.power_flow_diverged, result)
    # a bad input is not a voltage collapse: say which it is
    result = RESULTS.where(~finite, RESULTS.non_finite_input, result)
    return result, diverged


def power_flow(
    feeder: Feeder,
    p_kw: Float[ArrayLike, " node"] | None = None,
    q_kvar: Float[ArrayLike, " node"] | None = None,
    *,
    load_scale: Float[ArrayLike, " load"] | None = None,
    v_init: Complex[ArrayLike, " node"] | None = None,
    solver: AbstractPowerFlowSolver = ZBus(),
    adjoint: optx.AbstractAdjoint | None = None,
    max_steps: int = 256,
    throw: bool = True,
) -> PowerFlowSolution:
    """Solve the three-phase unbalanced power flow of `feeder`.

    Differentiable (w.r.t. `p_kw`, `q_kvar`, `load_scale`) through the implicit
    function theorem; works under `jax.jit` and `jax.vmap`, in float32 and float64.

    **Arguments:**

    - `feeder`: the network and its base loads.
    - `p_kw`, `q_kvar`: extra wye constant-power loads per node (positive =
        consumption), aligned with `feeder.node_names`, on top of the base loads.
        Non-zero only at `feeder.injection_nodes` (anything else is an error).
    - `load_scale`: multipliers of the base loads, one per `feeder.loads.names`.
    - `v_init`: initial voltages (complex volts per node); default the no-load ones.
    - `solver`: `ZBus()` (default) or `Newton()`; tolerances live on the solver.
    - `adjoint`: how gradients are computed: `optimistix.ImplicitAdjoint(linear_solver=
        ...)` with any Lineax solver (Krylov solvers are wrapped in `Guarded`), or
        `optimistix.RecursiveCheckpointAdjoint()` to differentiate through the
        iterations. Default: `default_adjoint()`, the implicit adjoint with a guarded
        Neumann series.
    - `max_steps`: iteration limit.
    - `throw`: raise if the solve fails (under `jax.grad` too, from the gradient
        path). With `False`, failures are reported in `result` (per scenario under
        `vmap`) and the voltages are not to be trusted (NaN after a diverged solve
        or a non-finite input); gradients through a failed solve are NaN, unless the
        caller masks its outputs out (`ok = sol.result == RESULTS.successful`;
        `jnp.where(ok, sol.v_pu, 1.0)`, as the environment does), which gives exact
        zeros from it.

    **Returns:**

    A `PowerFlowSolution`.
    """
    # Long: its docstring documents every argument and the failure contract; the code
    # (81 lines) is the solve's one path: inputs, warm start, fixed point, voltages,
    # outcome, gradient guard
    dtype = default_float()
    n = feeder.n_nodes
    p, q, scale = _checked_inputs(feeder, p_kw, q_kvar, load_scale)
    # Under `jit` or `grad` a non-finite input is only known at run time: solve a
    # finite stand-in (no load added) so that neither the solve nor its adjoint sees
    # a NaN, and report `non_finite_input` below.
    finite = jnp.all(jnp.isfinite(p)) & jnp.all(jnp.isfinite(q))
    finite = finite & jnp.all(jnp.isfinite(scale))
    net = _network(
        feeder,
        jnp.where(finite, p, 0.0),
        jnp.where(finite, q, 0.0),
        jnp.where(finite, scale, 1.0),
    )
    inj = np.asarray(feeder.injection_nodes, dtype=np.int64)
    if v_init is None:
        y0 = net.w_pu
    else:
        # the ports' voltages: `K^T v` over their bases
        ports = jnp.asarray(feeder.ports.incidence, complex_dtype()).T
        v0 = jnp.asarray(v_init, complex_dtype())[inj]
        y0 = _stacked(ports @ v0).astype(dtype) / jnp.tile(net.c, 2)
    adj = default_adjoint() if adjoint is None else guard_adjoint(adjoint)
    rtol, atol = solver.tolerances()
    sol = optx.fixed_point(
        _zbus_map,
        _finite_stop(solver, rtol, atol),
        y0,
        net,
        max_steps=max_steps,
        adjoint=adj,
        throw=False,
    )
    y = sol.value
    # every node's voltage from the ports' currents, `w + Z K i` (`Z K` formed on the
    # host), as one real product with the batch leading (see `_Network.m_t`)
    zk_t = _stacked_t(jnp.asarray(feeder.ports.node_z, complex_dtype()))
    v_ri = _stacked(jnp.asarray(feeder.w, complex_dtype())) - _drawn(y, net) @ zk_t
    v = jax.lax.complex(v_ri[:n], v_ri[n:])
    v_pu = jnp.sqrt(v_ri[:n] ** 2 + v_ri[n:] ** 2) / jnp.asarray(feeder.base_v, dtype)
    cdtype = complex_dtype()
    v_slack = jnp.asarray(feeder.v_slack, dtype=cdtype)
    i_source = jnp.asarray(feeder.y0, dtype=cdtype) @ jnp.concatenate([v_slack, v])
    s_source = v_slack * jnp.conj(i_source) / 1e3

    result, diverged = _outcome(sol.result, v, finite)
    # A failed solve's outputs pass no gradient back through the adjoint (which would
    # differentiate at a point that is not a solution); its gradients are NaN instead,
    # unless the caller masked it out (see `_failure.py`).
    failed = result != RESULTS.successful
    inputs = (p, q, scale)

    def guarded(x):
        flag = failure_on_gradients(result, inputs, x, throw).astype(x.dtype)
        # no operating point exists: the values say so too (`_FiniteStop` kept the
        # stop point finite for the adjoint; a `where` passes no NaN back)
        x = jnp.where(diverged, jnp.nan, x)
        return jnp.where(failed, jax.lax.stop_gradient(x), x) + flag

    out = PowerFlowSolution(
        v=guarded(v),
        v_pu=guarded(v_pu),
        s_source_kva=guarded(s_source),
        result=result,
        iterations=jnp.asarray(sol.stats["num_steps"]),
    )
    if throw:
        out = result.error_if(out, result != RESULTS.successful)
    return out
