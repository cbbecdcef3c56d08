"""The `gridflex` command line.

- `gridflex powerflow`: solve a feeder (built-in name or OpenDSS file), report it.
- `gridflex evaluate --method naive`: the naive baseline over the held-out month.
- `gridflex train`: arrives with the trainers; until then it says so (status 2).
"""

import argparse
import json
import os
import sys
import time
from typing import Literal


BUILTIN = ("ieee13", "ieee123", "european_lv", "european_lv_reduced")


def load_feeder(spec: str, *, engine: Literal["native", "opendss"] = "native"):
    """A built-in feeder by name, or an OpenDSS master file by path."""
    from . import feeders

    if spec in BUILTIN:
        return getattr(feeders, spec)()
    if os.path.exists(spec):
        return feeders.from_opendss(spec, engine=engine)
    raise SystemExit(
        f"gridflex: unknown feeder {spec!r}: give one of {', '.join(BUILTIN)} or the "
        "path of an OpenDSS master file."
    )


def _powerflow(args: argparse.Namespace) -> int:
    import jax

    if args.x64:
        jax.config.update("jax_enable_x64", True)
    import numpy as np

    from . import power_flow

    feeder = load_feeder(args.feeder, engine=args.engine)
    scale = np.full(feeder.loads.n_loads, args.load_scale)
    t0 = time.perf_counter()
    sol = power_flow(feeder, load_scale=scale, throw=False)
    sol.v.block_until_ready()
    seconds = time.perf_counter() - t0
    from .powerflow import RESULTS

    v_pu = np.asarray(sol.v_pu)
    order = np.argsort(v_pu)
    report = {
        "feeder": feeder.name,
        "nodes": feeder.n_nodes,
        "loads": feeder.loads.n_loads,
        "load_scale": args.load_scale,
        "converged": bool(sol.result == RESULTS.successful),
        "message": RESULTS[sol.result] or "converged",
        "iterations": int(sol.iterations),
        "v_min_pu": float(v_pu[order[0]]),
        "v_min_node": feeder.node_names[order[0]],
        "v_max_pu": float(v_pu[order[-1]]),
        "v_max_node": feeder.node_names[order[-1]],
        "source_kw": float(np.real(np.asarray(sol.s_source_kva)).sum()),
        "source_kvar": float(np.imag(np.asarray(sol.s_source_kva)).sum()),
        "seconds_including_compile": round(seconds, 3),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "powerflow.json"), "w") as f:
            f.write(text + "\n")
        with open(os.path.join(args.out, "voltages.csv"), "w") as f:
            f.write("node,v_pu,v_re,v_im\n")
            v = np.asarray(sol.v)
            for name, m, c in zip(feeder.node_names, v_pu, v):
                f.write(f"{name},{m:.9f},{c.real:.6f},{c.imag:.6f}\n")
    return 0 if report["converged"] else 1


def _evaluate(args: argparse.Namespace) -> int:
    from .env import make_environment
    from .evaluation import naive_evaluation, write_evaluation

    if args.run is not None or args.method != "naive":
        print(
            "gridflex evaluate: only --method naive is available until the trainers "
            "land.",
            file=sys.stderr,
        )
        return 2
    feeder = load_feeder(args.feeder, engine=args.engine)
    t0 = time.perf_counter()
    env = make_environment(feeder, args.agents, seed=args.seed)
    result = naive_evaluation(env, days=args.days)
    summary = result.summary()
    summary["feeder"] = args.feeder if args.feeder in BUILTIN else feeder.name
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    path = write_evaluation(args.out, summary)
    print(json.dumps(summary, indent=2))
    print(f"wrote {path}", file=sys.stderr)
    return 0


def _not_yet(args: argparse.Namespace) -> int:
    print(
        f"gridflex {args.command}: not available yet (the trainers are being built); "
        "try `gridflex powerflow`.",
        file=sys.stderr,
    )
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridflex",
        description="Decentralised grid-edge control through a differentiable "
        "three-phase power flow.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("powerflow", help="solve a feeder's power flow and report it")
    p.add_argument("--feeder", default="ieee13", help="built-in name or .dss path")
    p.add_argument("--engine", default="native", choices=("native", "opendss"))
    p.add_argument("--load-scale", type=float, default=1.0, help="base-load multiplier")
    p.add_argument("--x64", action="store_true", help="solve in float64")
    p.add_argument("--out", help="folder for powerflow.json and voltages.csv")
    p.set_defaults(func=_powerflow)
    e = sub.add_parser("evaluate", help="evaluate a method on the held-out month")
    e.add_argument("run", nargs="?", help="a training run's folder (with trainers)")
    e.add_argument("--method", default="naive", help="naive (more with trainers)")
    e.add_argument("--feeder", default="ieee13", help="built-in name or .dss path")
    e.add_argument("--engine", default="native", choices=("native", "opendss"))
    e.add_argument("--agents", type=int, default=10, help="number of homes")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--days", type=int, default=None, help="first N held-out days")
    e.add_argument("--out", default="runs/eval", help="folder for eval.json")
    e.set_defaults(func=_evaluate)
    q = sub.add_parser("train", help="train policies (coming with the trainers)")
    q.add_argument("rest", nargs=argparse.REMAINDER)
    q.set_defaults(func=_not_yet)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
