"""`power_flow`: the differentiable three-phase Z-Bus power flow.

The state Optimistix iterates on is the per-unit voltage at the injection nodes only,
stacked as real and imaginary parts (Optimistix's complex support gave wrong gradients
through LU and BiCGStab adjoints). Voltages elsewhere are linear in the injection
currents and are formed once after convergence: `v = w + Z[:, inj] i_inj`.
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
    """The per-solve data of the Z-Bus map, in the working dtype."""

    b: Float[Array, " inj"]  # base volts at injection nodes
    w_pu: Float[Array, " state"]  # no-load voltages, stacked re/im, per unit
    m_blk: Float[Array, "state state"]  # [[Mr, -Mi], [Mi, Mr]], M = Z_inj / b
    s_p: Float[Array, "2 inj"]  # constant-power coefficients (W, var), re/im rows
    s_i: Float[Array, "2 inj"]  # constant-current coefficients, per volt
    s_z: Float[Array, "2 inj"]  # constant-impedance coefficients, per volt^2
    wye_pos: Int[Array, " row"]  # wye rows not summed into s_p, s_i, s_z
    wye: _Terms
    pair_a: Int[Array, " pair"]
    pair_b: Int[Array, " pair"]
    pair: _Terms
    pair_h: Float[Array, "inj pair"]  # +1 at a, -1 at b: scatters pair currents


def _zbus_map(y: Float[Array, " state"], net: _Network) -> Float[Array, " state"]:
    """`y -> w + M i(y)` on stacked real/imaginary per-unit injection voltages."""
    return net.w_pu + net.m_blk @ _injection(y, net)


def _injection(y: Float[Array, " state"], net: _Network) -> Float[Array, " state"]:
    """Currents injected (amps, stacked re/im) by the loads at voltages `y`."""
    m = net.b.shape[0]
    vr, vi = net.b * y[:m], net.b * y[m:]
    mag2 = vr * vr + vi * vi
    mag = jnp.sqrt(mag2)
    sr = net.s_p[0] + net.s_i[0] * mag + net.s_z[0] * mag2
    si = net.s_p[1] + net.s_i[1] * mag + net.s_z[1] * mag2
    if net.wye_pos.shape[0]:
        rows = net.wye.power(mag2[net.wye_pos])
        sr = sr.at[net.wye_pos].add(rows[0])
        si = si.at[net.wye_pos].add(rows[1])
    # Drawn current conj(S / v) = conj(S) v / |v|^2.
    ir = (sr * vr + si * vi) / mag2
    ii = (sr * vi - si * vr) / mag2
    if net.pair_a.shape[0]:
        ur = vr[net.pair_a] - vr[net.pair_b]
        ui = vi[net.pair_a] - vi[net.pair_b]
        umag2 = ur * ur + ui * ui
        pr, pi = net.pair.power(umag2)
        ir = ir + net.pair_h @ ((pr * ur + pi * ui) / umag2)
        ii = ii + net.pair_h @ ((pr * ui - pi * ur) / umag2)
    return -jnp.concatenate([ir, ii])


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


def _network(
    feeder: Feeder,
    p_kw: Float[Array, " node"],
    q_kvar: Float[Array, " node"],
    load_scale: Float[Array, " load"],
) -> _Network:
    dtype = default_float()
    cdtype = complex_dtype()
    inj = np.asarray(feeder.injection_nodes, dtype=np.int64)
    m = inj.size
    base = jnp.asarray(feeder.base_v, dtype=dtype)
    b = base[inj]
    z = jnp.asarray(feeder.z_inj, dtype=cdtype)[inj, :]
    mr = jnp.real(z) / b[:, None]
    mi = jnp.imag(z) / b[:, None]
    m_blk = jnp.block([[mr, -mi], [mi, mr]])
    w = jnp.asarray(feeder.w, dtype=cdtype)[inj]
    w_pu = jnp.concatenate([jnp.real(w), jnp.imag(w)]) / jnp.tile(b, 2)

    loads = feeder.loads
    s = jnp.asarray(loads.s_kva, dtype=cdtype) * 1e3
    scale = jnp.asarray(load_scale, dtype=dtype)[
        jnp.asarray(loads.load, dtype=jnp.int32)
    ]
    # models 6 and 7: the reactive power ignores load multipliers
    s_re = jnp.real(s) * scale
    s_im = jnp.imag(s) * jnp.where(jnp.asarray(loads.fixed_q), 1.0, scale)
    vnom = jnp.asarray(loads.v_nom_v, dtype=dtype)
    coef = jnp.asarray(loads.coefficient, dtype=dtype)
    exps = jnp.asarray(loads.exponent, dtype=dtype)

    def terms(conn) -> _Terms:
        rows = jnp.asarray(conn, dtype=jnp.int32)
        return _Terms(
            s=jnp.stack([s_re[rows], s_im[rows]]),
            vnom=vnom[rows],
            coef=jnp.moveaxis(coef[rows], 1, 0),
            exp=jnp.moveaxis(exps[rows], 1, 0),
            cutoff=jnp.asarray(loads.cutoff_pu, dtype=dtype)[rows],
        )

    # Wye rows whose terms are all ZIP (x², x, 1) are summed per node into three
    # coefficient vectors (one pass per solve iteration whatever the number of
    # loads); the others (`feeder.term_conn`) are drawn row by row.
    idx = jnp.asarray(feeder.wye_conn, dtype=jnp.int32)
    pos = jnp.asarray(feeder.wye_pos, dtype=jnp.int32)

    def aggregate(exponent):
        # [row, 2]: the coefficients of x**exponent in P and Q
        weight = jnp.sum(jnp.where(exps[idx] == exponent, coef[idx], 0.0), axis=-1)
        weight = weight / vnom[idx, None] ** exponent
        re = jnp.zeros(m, dtype).at[pos].add(s_re[idx] * weight[:, 0])
        im = jnp.zeros(m, dtype).at[pos].add(s_im[idx] * weight[:, 1])
        return jnp.stack([re, im])

    extra = jnp.stack([p_kw[inj], q_kvar[inj]]).astype(dtype) * 1e3
    pa, pb = (
        jnp.asarray(feeder.pair_pos_a, dtype=jnp.int32),
        jnp.asarray(feeder.pair_pos_b, dtype=jnp.int32),
    )
    n_pair = feeder.pair_conn.shape[0]
    h = jnp.zeros((m, n_pair), dtype)
    h = h.at[pa, jnp.arange(n_pair)].add(1.0).at[pb, jnp.arange(n_pair)].add(-1.0)
    return _Network(
        b=b,
        w_pu=w_pu,
        m_blk=m_blk,
        s_p=aggregate(0.0) + extra,
        s_i=aggregate(1.0),
        s_z=aggregate(2.0),
        wye_pos=jnp.asarray(feeder.term_pos, dtype=jnp.int32),
        wye=terms(feeder.term_conn),
        pair_a=pa,
        pair_b=pb,
        pair=terms(feeder.pair_conn),
        pair_h=h,
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
    basis: under `vmap` it is the cheapest correct choice (about 2.5x the forward solve
    on IEEE 123, against about 7x for GMRES). `Guarded` normalises the right-hand side
    (tolerances relative to the loss's cotangent, whatever its scale), answers zero
    for zero, and falls back to LU for any solve that fails.
    """
    tol = default_tolerance()
    return optx.ImplicitAdjoint(
        linear_solver=Guarded(Neumann(rtol=tol, atol=tol, max_steps=100))
    )


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
        v0 = jnp.asarray(v_init)[inj]
        y0 = jnp.concatenate([jnp.real(v0), jnp.imag(v0)]).astype(dtype) / jnp.tile(
            net.b, 2
        )
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
    i_inj = _injection(y, net)
    m = inj.size
    cdtype = complex_dtype()
    z = jnp.asarray(feeder.z_inj, dtype=cdtype)
    i_c = jax.lax.complex(i_inj[:m], i_inj[m:])
    v = jnp.asarray(feeder.w, dtype=cdtype) + z @ i_c
    v_pu = jnp.abs(v) / jnp.asarray(feeder.base_v, dtype=dtype)
    v_slack = jnp.asarray(feeder.v_slack, dtype=cdtype)
    i_source = jnp.asarray(feeder.y0, dtype=cdtype) @ jnp.concatenate([v_slack, v])
    s_source = v_slack * jnp.conj(i_source) / 1e3

    result = RESULTS.promote(sol.result)
    result = RESULTS.where(
        sol.result == optx.RESULTS.nonlinear_max_steps_reached,
        RESULTS.power_flow_max_steps,
        result,
    )
    diverged = (sol.result == optx.RESULTS.nonfinite) | ~jnp.all(jnp.isfinite(v))
    result = RESULTS.where(diverged, RESULTS.power_flow_diverged, result)
    # a bad input is not a voltage collapse: say which it is
    result = RESULTS.where(~finite, RESULTS.non_finite_input, result)
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
