"""Batched power flow against OpenDSS, on the same feeders and the same load draws.

    python benchmarks/powerflow.py                      # IEEE 123 and European LV
    python benchmarks/powerflow.py --feeders ieee123 --batch 4096 --draws 2000

gridflex solves a batch of random load draws (each load scaled uniformly in
[0.3, 1.5]) with `jax.vmap`, forward and forward + adjoint (the gradient of a
voltage-violation loss w.r.t. the load scales). OpenDSS (AltDSS engine, through
opendssdirect.py) solves the same draws one by one in the same run, two ways: a Python
loop that sets every load and solves (what a script does), and its own time-series
loop (yearly mode over per-load load shapes, no Python in the loop; faster, the
figure the speed-up is computed against). OpenDSS keeps its default tolerance (1e-4,
looser than ours), controls off, loads at their stated model. gridflex's float32
solve runs twice: at its own tolerance (1e-6) and at OpenDSS's rule (no node voltage
moving by more than 1e-4 pu between iterations), the like-for-like figure.

Compile time is reported apart from run time (median of `--repeats` warm runs).
Results go to `benchmarks/results/powerflow.json` and a PNG beside it; the adjoint
table alone (`--feeders --adjoints`) to `powerflow_adjoints.json`.
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np


# OpenDSS's default convergence tolerance: the largest change of any node voltage
# between iterations, per unit.
OPENDSS_TOLERANCE = 1e-4


def _time(fn, *args, repeats: int):
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    compile_s = time.perf_counter() - t0
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        runs.append(time.perf_counter() - t0)
    return compile_s, statistics.median(runs)


def gridflex_figures(
    name: str, scales: np.ndarray, repeats: int, x64: bool, solver=None
) -> dict:
    import gridflex as gf

    feeder = getattr(gf.feeders, name)()
    dtype = jnp.float64 if x64 else jnp.float32
    s = jnp.asarray(scales, dtype=dtype)
    solver = gf.powerflow.ZBus() if solver is None else solver

    def solve(x):
        return gf.power_flow(feeder, load_scale=x, solver=solver, throw=False)

    def v_pu(batch):
        return jax.vmap(lambda x: solve(x).v_pu)(batch)

    def loss(batch):
        v = v_pu(batch)
        return jnp.mean(
            jnp.sum(jax.nn.relu(0.95 - v) ** 2 + jax.nn.relu(v - 1.05) ** 2, axis=1)
        )

    forward = jax.jit(v_pu)
    both = jax.jit(jax.value_and_grad(loss))
    c_f, t_f = _time(forward, s, repeats=repeats)
    c_b, t_b = _time(both, s, repeats=repeats)
    sol = jax.jit(jax.vmap(solve))(s)
    ok = int(np.sum(np.asarray(sol.result == gf.powerflow.RESULTS.successful)))
    n = scales.shape[0]
    return {
        "dtype": "float64" if x64 else "float32",
        "batch": n,
        "converged": ok,
        "rtol": solver.tolerances()[0],
        "atol": solver.tolerances()[1],
        "iterations_max": int(np.max(np.asarray(sol.iterations))),
        "iterations_mean": round(float(np.mean(np.asarray(sol.iterations))), 2),
        "forward_compile_s": round(c_f, 3),
        "forward_s": round(t_f, 5),
        "forward_solves_per_s": round(n / t_f, 1),
        "forward_adjoint_compile_s": round(c_b, 3),
        "forward_adjoint_s": round(t_b, 5),
        "forward_adjoint_solves_per_s": round(n / t_b, 1),
        "adjoint_overhead": round(t_b / t_f, 2),
        "v_pu": np.asarray(forward(s)),
    }


def adjoint_table(name: str, scales: np.ndarray, repeats: int) -> dict:
    """Forward + adjoint time of each adjoint, relative to the forward solve."""
    import lineax as lx
    import optimistix as optx

    import gridflex as gf

    feeder = getattr(gf.feeders, name)()
    s = jnp.asarray(scales, dtype=jnp.float32)
    forward = jax.jit(
        jax.vmap(lambda x: gf.power_flow(feeder, load_scale=x, throw=False).v_pu)
    )
    _, t_forward = _time(forward, s, repeats=repeats)
    adjoints = {
        "default (guarded Neumann)": None,
        "GMRES restart 5": optx.ImplicitAdjoint(
            lx.GMRES(rtol=1e-6, atol=1e-6, restart=5, max_steps=256)
        ),
        "BiCGStab": optx.ImplicitAdjoint(lx.BiCGStab(rtol=1e-6, atol=1e-6)),
        "LU": optx.ImplicitAdjoint(lx.LU()),
        "unrolled": optx.RecursiveCheckpointAdjoint(),
    }
    out = {"forward_s": round(t_forward, 5)}
    for label, adjoint in adjoints.items():

        def loss(batch, adjoint=adjoint):
            v = jax.vmap(
                lambda x: (
                    gf.power_flow(
                        feeder, load_scale=x, throw=False, adjoint=adjoint
                    ).v_pu
                )
            )(batch)
            return jnp.mean(
                jnp.sum(jax.nn.relu(0.95 - v) ** 2 + jax.nn.relu(v - 1.05) ** 2, axis=1)
            )

        _, t = _time(jax.jit(jax.value_and_grad(loss)), s, repeats=repeats)
        out[label] = {
            "forward_adjoint_s": round(t, 5),
            "ratio": round(t / t_forward, 2),
        }
        print(label, out[label], flush=True)
    return out


def opendss_figures(name: str, scales: np.ndarray) -> dict:
    import gridflex as gf
    from gridflex.feeders import builtin_master, compile_reference, regulated_taps

    feeder = getattr(gf.feeders, name)()
    master = builtin_master(name)
    taps = regulated_taps(name)
    n, loads = scales.shape[0], feeder.loads.names

    # 1. A Python loop: set every load, solve, read the voltages.
    dss = compile_reference(master, taps=taps, tolerance=None)
    base = {}
    for ld in loads:
        dss.Loads.Name(ld)
        base[ld] = (dss.Loads.kW(), dss.Loads.kvar())
    dss.Solution.Solve()
    names = [x.lower() for x in dss.Circuit.AllNodeNames()]
    order = [names.index(x) for x in feeder.node_names]
    v_loop = np.zeros((n, feeder.n_nodes))
    t0 = time.perf_counter()
    for k in range(n):
        for j, ld in enumerate(loads):
            dss.Loads.Name(ld)
            dss.Loads.kW(base[ld][0] * scales[k, j])
            dss.Loads.kvar(base[ld][1] * scales[k, j])
        dss.Solution.Solve()
        v_loop[k] = np.asarray(dss.Circuit.AllBusMagPu())[order]
    loop_s = time.perf_counter() - t0

    # 2. OpenDSS's own loop: yearly mode over one load shape per load.
    dss = compile_reference(master, taps=taps, tolerance=None)
    with tempfile.TemporaryDirectory() as tmp:
        for j, ld in enumerate(loads):
            path = os.path.join(tmp, f"s{j}.csv")
            np.savetxt(path, scales[:, j], fmt="%.9f")
            dss.Text.Command(
                f"new loadshape.bench{j} npts={n} interval=1 mult=(file={path})"
            )
            dss.Text.Command(f"edit load.{ld} yearly=bench{j}")
        dss.Text.Command(f"set mode=yearly number={n} stepsize=1h")
        t0 = time.perf_counter()
        dss.Solution.Solve()
        qsts_s = time.perf_counter() - t0
    return {
        "batch": n,
        "loop_s": round(loop_s, 4),
        "loop_solves_per_s": round(n / loop_s, 1),
        "qsts_s": round(qsts_s, 4),
        "qsts_solves_per_s": round(n / qsts_s, 1),
        "v_pu_loop": v_loop,
    }


def measure(name: str, args) -> dict:
    """One round on one feeder: gridflex and OpenDSS on the same draws."""
    import gridflex as gf

    feeder = getattr(gf.feeders, name)()
    rng = np.random.default_rng(args.seed)
    scales = rng.uniform(0.3, 1.5, (args.batch, feeder.loads.n_loads))
    row: dict = {
        "nodes": feeder.n_nodes,
        "injection_nodes": len(feeder.injection_nodes),
        "loads": feeder.loads.n_loads,
    }
    f32 = gridflex_figures(name, scales, args.repeats, x64=False)
    # OpenDSS's own convergence rule (no node voltage moves by more than 1e-4 pu
    # between iterations), the like-for-like setting for the speed-up
    f32_dss_tol = gridflex_figures(
        name,
        scales,
        args.repeats,
        x64=False,
        solver=gf.powerflow.ZBus(rtol=0.0, atol=OPENDSS_TOLERANCE),
    )
    with jax.enable_x64(True):
        f64 = gridflex_figures(name, scales, args.repeats, x64=True)
    dss = opendss_figures(name, scales[: args.draws])
    k = args.draws
    row["float32_max_abs_error_vs_opendss_pu"] = float(
        np.max(np.abs(f32.pop("v_pu")[:k] - dss["v_pu_loop"]))
    )
    row["float32_opendss_tolerance_max_abs_error_vs_opendss_pu"] = float(
        np.max(np.abs(f32_dss_tol.pop("v_pu")[:k] - dss["v_pu_loop"]))
    )
    row["float64_max_abs_error_vs_opendss_pu"] = float(
        np.max(np.abs(f64.pop("v_pu")[:k] - dss.pop("v_pu_loop")))
    )
    row["gridflex_float32"] = f32
    row["gridflex_float32_opendss_tolerance"] = f32_dss_tol
    row["gridflex_float64"] = f64
    row["opendss"] = dss
    for tag, fig in (("", f32), ("_opendss_tolerance", f32_dss_tol)):
        for way in ("loop", "qsts"):
            row[f"speedup_float32{tag}_forward_vs_opendss_{way}"] = round(
                fig["forward_solves_per_s"] / dss[f"{way}_solves_per_s"], 1
            )
    best = max(dss["loop_solves_per_s"], dss["qsts_solves_per_s"])
    row["speedup_float32_forward_vs_opendss"] = round(
        f32["forward_solves_per_s"] / best, 1
    )
    row["speedup_float32_forward_adjoint_vs_opendss"] = round(
        f32["forward_adjoint_solves_per_s"] / best, 1
    )
    return row


def _median_of(rounds: list[dict]) -> dict:
    """Every figure as its median over the rounds (this machine's timings swing by
    tens of percent from one minute to the next, OpenDSS's as much as ours)."""
    out = {}
    for key, value in rounds[0].items():
        if isinstance(value, dict):
            out[key] = _median_of([r[key] for r in rounds])
        elif isinstance(value, bool | str) or value is None:
            out[key] = value
        else:
            out[key] = statistics.median(r[key] for r in rounds)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--feeders", nargs="*", default=["ieee123", "european_lv"])
    p.add_argument("--batch", type=int, default=4096, help="gridflex batch size")
    p.add_argument("--draws", type=int, default=2000, help="OpenDSS draws")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="measure everything this many times; report medians and every round",
    )
    p.add_argument(
        "--adjoints",
        action="store_true",
        help="also time every adjoint linear solver (IEEE 123, float32, batch 1024)",
    )
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = p.parse_args(argv)
    import gridflex as gf

    report = {
        "command": "python benchmarks/powerflow.py " + " ".join(sys.argv[1:]),
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "jax": jax.__version__,
            "backend": jax.default_backend(),
            "gridflex": gf.__version__,
        },
        "feeders": {},
    }
    for name in args.feeders:
        rounds = [measure(name, args) for _ in range(args.rounds)]
        row = _median_of(rounds)
        row["rounds"] = rounds
        report["feeders"][name] = row
        print(json.dumps({name: row}, indent=1), flush=True)
    if args.adjoints:
        feeder = gf.feeders.ieee123()
        scales = np.random.default_rng(args.seed).uniform(
            0.3, 1.5, (1024, feeder.loads.n_loads)
        )
        report["adjoints_ieee123_float32_batch1024"] = adjoint_table(
            "ieee123", scales, args.repeats
        )
    os.makedirs(args.out, exist_ok=True)
    # the adjoint table alone (`--feeders --adjoints`) has a file of its own, so that
    # it never overwrites the feeders' comparison with OpenDSS
    stem = "powerflow" if args.feeders else "powerflow_adjoints"
    path = os.path.join(args.out, f"{stem}.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=1)
    if args.feeders:
        _plot(report, os.path.join(args.out, f"{stem}.png"))
    print(f"wrote {path}")
    return 0


def _plot(report: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["feeders"])
    bars = [
        ("OpenDSS, Python loop", lambda r: r["opendss"]["loop_solves_per_s"]),
        (
            "OpenDSS, its own time-series loop",
            lambda r: r["opendss"]["qsts_solves_per_s"],
        ),
        (
            "gridflex float32, solve",
            lambda r: r["gridflex_float32"]["forward_solves_per_s"],
        ),
        (
            "gridflex float32, solve at OpenDSS's tolerance",
            lambda r: r["gridflex_float32_opendss_tolerance"]["forward_solves_per_s"],
        ),
        (
            "gridflex float32, solve + gradient",
            lambda r: r["gridflex_float32"]["forward_adjoint_solves_per_s"],
        ),
        (
            "gridflex float64, solve",
            lambda r: r["gridflex_float64"]["forward_solves_per_s"],
        ),
    ]
    fig, ax = plt.subplots(figsize=(8, 4.6))
    width = 0.8 / len(bars)
    for i, (label, value) in enumerate(bars):
        vals = [value(report["feeders"][name]) for name in names]
        x = np.arange(len(names)) + (i - (len(bars) - 1) / 2) * width
        ax.bar(x, vals, width, label=label)
    batch = report["feeders"][names[0]]["gridflex_float32"]["batch"]
    ax.set_xticks(np.arange(len(names)), names)
    ax.set_xlabel(f"feeder (gridflex: one batch of {batch:,} random load draws)")
    ax.set_yscale("log")
    ax.set_ylabel("power flows solved per second")
    rounds = len(report["feeders"][names[0]].get("rounds", [None]))
    ax.set_title(
        "Three-phase power flow, gridflex against OpenDSS on the same draws\n"
        f"({report['machine']['cpus']} CPU cores, median of {rounds} rounds)"
    )
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
