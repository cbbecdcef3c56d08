"""The `gridflex` command line.

- `gridflex powerflow`: solve a feeder (built-in name or OpenDSS file), report it.
- `gridflex train`: train decentralised policies (the main job), then evaluate them
    next to the naive baseline on the held-out month.
- `gridflex evaluate RUN` (a trained run) or `gridflex evaluate --method naive`.
- `gridflex plot RUN [RUN ...]`: overlay runs' training curves and costs.
"""

import argparse
import contextlib
import errno
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path


__all__ = ["build_parser", "load_feeder", "main"]


class _UserError(Exception):
    """A mistake in what the user gave (a value, a file, a folder): one line, no
    traceback (`--debug` or `GRIDFLEX_DEBUG=1` shows it)."""


@contextlib.contextmanager
def _user_input(cleanup: Path | None = None) -> Iterator[None]:
    """The setup of a command (configuration, feeder, environment, trainer), where
    every error is the user's input: `ValueError` from validation, `TypeError` from
    a configuration value of the wrong type, `OSError` from a file or folder,
    `ImportError` from a dependency missing or broken. Errors
    later (training, evaluation) keep their traceback: they are ours. `cleanup`: a
    folder this command created, removed again so no half-made run is left."""
    try:
        yield
    except (ValueError, TypeError, OSError, ImportError) as e:
        if cleanup is not None:
            shutil.rmtree(cleanup, ignore_errors=True)
        raise _UserError(_os_message(e) if _bare_os_error(e) else str(e)) from e


def _bare_os_error(e: Exception) -> bool:
    """An `OSError` straight from the system ("[Errno 20] Not a directory: ...")."""
    return isinstance(e, OSError) and e.filename is not None and str(e).startswith("[")


_OS_FIX = {
    errno.ENOTDIR: "part of this path is a file, not a folder",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOENT: "no such file or folder",
    errno.ENOSPC: "no space left on the device",
}


def _os_message(e: Exception) -> str:
    assert isinstance(e, OSError)
    what = _OS_FIX.get(e.errno or 0, (e.strerror or "cannot be used").lower())
    hint = "" if e.errno == errno.ENOENT else "; give a path you can write to"
    return f"{e.filename}: {what}{hint}."


def load_feeder(spec: str, *, taps: str = "regulated"):
    """A built-in feeder by name (its regulators at `taps`: "regulated", "homes" or
    "file"), or an OpenDSS master file by path (taps as the file leaves them)."""
    from . import feeders

    if spec in feeders.BUILTIN_FEEDERS:
        # checked here, before the typed feeder function: under runtime type checking
        # (as the tests run) its signature, not `resolve_taps`, would refuse a bad
        # `run.taps`, in many lines
        if taps not in feeders.TAP_CHOICES:
            named = ", ".join(feeders.TAP_CHOICES)
            raise ValueError(f"taps {taps!r}: give one of {named}.")
        return getattr(feeders, spec)(taps=taps)
    if os.path.exists(spec):
        return feeders.from_opendss(spec)
    raise ValueError(
        f"unknown feeder {spec!r}: give one of {', '.join(feeders.BUILTIN_FEEDERS)} "
        "or the path of an OpenDSS master file."
    )


def _powerflow(args: argparse.Namespace) -> int:
    import jax

    if args.x64:
        jax.config.update("jax_enable_x64", True)
    import numpy as np

    from . import power_flow

    with _user_input():
        if not (np.isfinite(args.load_scale) and args.load_scale >= 0):
            raise ValueError(
                f"--load-scale {args.load_scale}: give a finite multiplier >= 0."
            )
        feeder = load_feeder(args.feeder)
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
    # valid JSON whatever the solve gave: a non-finite figure is null
    text = json.dumps(
        {
            k: None if isinstance(v, float) and not np.isfinite(v) else v
            for k, v in report.items()
        },
        indent=2,
    )
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


def _overrides(args: argparse.Namespace) -> dict:
    from .runs import parse_override

    out = {}
    for key in ("feeder", "agents", "method", "seed"):
        value = getattr(args, key, None)
        if value is not None:
            out[f"run.{key}"] = value
    for text in args.set or []:
        k, v = parse_override(text)
        out[k] = v
    return out


def _train(args: argparse.Namespace) -> int:
    import jax

    from .env import initialize_hosts, is_lead_process, sync_processes
    from .evaluation import report_run
    from .runs import CONFIG_FILE, load_config, METRICS_FILE, save_config
    from .training import (
        default_config,
        environment_from_config,
        fit,
        mesh_for,
        trainer_from_config,
    )

    if args.hosts or args.coordinator is not None:
        initialize_hosts(args.coordinator, args.num_processes, args.process_id)
    out = Path(args.out)
    saved = out / CONFIG_FILE
    if out.exists() and not out.is_dir():
        raise _UserError(f"--out {out} is a file; give a folder for the run.")
    if args.resume and not saved.exists():
        raise _UserError(
            f"--resume: {out} holds no run to resume (no {CONFIG_FILE}); drop "
            "--resume to start one there."
        )
    with _user_input(cleanup=None if out.exists() else out):
        overrides = _overrides(args)
        if args.resume:
            config = load_config(saved, defaults=default_config())
            changed = load_config(saved, overrides, defaults=default_config())
            if changed != config:
                raise _UserError(
                    "--resume: the run continues with its saved configuration "
                    f"({saved}); drop the conflicting options."
                )
        else:
            config = load_config(args.config, overrides, defaults=default_config())
            if (out / METRICS_FILE).exists():
                raise _UserError(
                    f"{out} already holds a run; pass --resume to continue it or "
                    "choose another --out."
                )
            sync_processes("gridflex.train.checked")
            if is_lead_process():
                save_config(out, config)
        run = config["run"]
        feeder = load_feeder(run["feeder"], taps=run["taps"])
        env = environment_from_config(config, feeder)
        trainer = trainer_from_config(config)
        mesh_for(trainer, args.devices)
    result = fit(
        env,
        trainer,
        key=jax.random.key(int(run["seed"])),
        out_dir=out,
        resume=args.resume,
        checkpoint_every=int(run["checkpoint_every"]),
        progress=not args.quiet,
        max_steps=args.max_steps,
        devices=args.devices,
    )
    if args.no_eval or not is_lead_process():
        return 0
    summary, _, _ = report_run(
        env,
        result.state.policy,
        method=run["method"],
        label=trainer.display_name,
        feeder=run["feeder"],
        out_dir=out,
        metrics=result.metrics,
        train_seconds=result.train_seconds,
        primal_steps=int(result.state.step),
        days=int(run["eval_days"]) or None,
        plots=not args.no_plots,
    )
    print(json.dumps(summary, indent=2))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from . import feeders
    from .env import make_environment
    from .evaluation import NAIVE, naive_evaluation, write_evaluation

    if args.run is not None:
        return _evaluate_run(args)
    if args.method != NAIVE:
        print(
            "gridflex evaluate: give a training run's folder to evaluate its "
            f"policies, or --method {NAIVE} for the baseline.",
            file=sys.stderr,
        )
        return 2
    with _user_input():
        feeder = load_feeder(args.feeder, taps=args.taps)
        t0 = time.perf_counter()
        env = make_environment(feeder, args.agents, seed=args.seed)
    result = naive_evaluation(env, days=args.days)
    summary = result.summary()
    builtin = args.feeder in feeders.BUILTIN_FEEDERS
    summary["feeder"] = args.feeder if builtin else feeder.name
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    path = write_evaluation(args.out or "runs/eval", summary)
    print(json.dumps(summary, indent=2))
    print(f"wrote {path}", file=sys.stderr)
    if args.crosscheck is not None:
        from .env import NaiveController

        out = Path(args.out or "runs/eval")
        _crosscheck(
            args.crosscheck, env, NaiveController(), args.feeder, args.taps, out
        )
    return 0


def _load_run(run_dir: Path):
    """A training run's configuration, environment and last checkpoint: `(config,
    env, state, step, meta)`; a folder that is not a run is the user's error."""
    import jax

    from .runs import CHECKPOINTS_DIR, CONFIG_FILE, load_checkpoint, load_config
    from .training import default_config, environment_from_config, trainer_from_config

    if not (run_dir / CONFIG_FILE).is_file():
        raise _UserError(
            f"{run_dir} is not a training run (no {CONFIG_FILE}); give a folder "
            "written by gridflex train."
        )
    with _user_input():
        config = load_config(run_dir / CONFIG_FILE, defaults=default_config())
        run = config["run"]
        feeder = load_feeder(run["feeder"], taps=run["taps"])
        env = environment_from_config(config, feeder)
        trainer = trainer_from_config(config)
    like = trainer.init(env, jax.random.key(int(run["seed"])))
    with _user_input():
        state, step, meta = load_checkpoint(run_dir / CHECKPOINTS_DIR, like=like)
    return config, env, state, step, meta


def _evaluate_run(args: argparse.Namespace) -> int:
    from .evaluation import report_run
    from .runs import METRICS_FILE, read_metrics
    from .training import TRAINERS

    run_dir = Path(args.run)
    config, env, state, step, meta = _load_run(run_dir)
    run = config["run"]
    metrics = read_metrics(run_dir) if (run_dir / METRICS_FILE).exists() else None
    summary, _, _ = report_run(
        env,
        state.policy,
        method=run["method"],
        label=TRAINERS[run["method"]].display_name,
        feeder=run["feeder"],
        out_dir=Path(args.out) if args.out else run_dir,
        metrics=metrics,
        train_seconds=float(meta.get("wall_s", 0.0)),
        primal_steps=step,
        days=args.days or (int(run["eval_days"]) or None),
    )
    print(json.dumps(summary, indent=2))
    if args.crosscheck is not None:
        from .env import PolicyController

        _crosscheck(
            args.crosscheck,
            env,
            PolicyController(state.policy, deterministic=True),
            run["feeder"],
            run["taps"],
            Path(args.out) if args.out else run_dir,
        )
    return 0


def _export(args: argparse.Namespace) -> int:
    from .export import export_policies

    run_dir = Path(args.run)
    if "onnx" in args.format:
        try:
            import onnx  # noqa: F401
        except ImportError:
            raise _UserError(
                "ONNX export needs the onnx package: pip install 'gridflex[export]', "
                "or --format numpy."
            ) from None
    config, env, state, step, _ = _load_run(run_dir)
    out = Path(args.out) if args.out else run_dir / "export"
    source = {"run": str(run_dir), "primal_steps": step, "run_config": config["run"]}
    with _user_input():
        path = export_policies(
            env, state.policy, out, formats=tuple(args.format), source=source
        )
    print(f"wrote {env.n_agents} homes' policies and {path}", file=sys.stderr)
    return 0


def _crosscheck(day: int, env, controller, feeder: str, taps: str, out: Path) -> None:
    """`--crosscheck DAY`: the held-out day replayed with OpenDSS solving each step."""
    from . import feeders
    from .evaluation import opendss_crosscheck
    from .feeders._opendss import _dss

    with _user_input():
        _dss()  # a broken install of opendssdirect.py: say how to mend it
    user_file = feeder not in feeders.BUILTIN_FEEDERS
    check = opendss_crosscheck(
        env,
        controller,
        taps=None if user_file else taps,
        master=feeder if user_file else None,
        day=day,
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / "crosscheck.json"
    path.write_text(json.dumps(check.summary(), indent=2) + "\n")
    print(json.dumps(check.summary(), indent=2))
    print(f"wrote {path}", file=sys.stderr)


def _plot(args: argparse.Namespace) -> int:
    import numpy as np

    from .evaluation import EVAL_FILE, NAIVE
    from .plots import plot_cumulative_cost, plot_training_curves
    from .runs import METRICS_FILE, read_metrics

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    curves, costs = {}, {}
    for run in args.runs:
        run_dir = Path(run)
        label = run_dir.name
        if (run_dir / METRICS_FILE).exists():
            curves[label] = read_metrics(run_dir)
        report = run_dir / EVAL_FILE
        if report.exists():
            summary = json.loads(report.read_text())
            costs[label] = np.asarray(summary["daily_cost"], dtype=float)
            costs.setdefault(
                NAIVE, np.asarray(summary[NAIVE]["daily_cost"], dtype=float)
            )
    written = []
    names = ", ".join(curves or costs)
    if curves:
        path = out / "training_curves.png"
        plot_training_curves(curves, path, title=f"Training curves: {names}")
        written.append(path)
    if costs:
        path = out / "cumulative_cost.png"
        plot_cumulative_cost(
            costs,
            path,
            baseline=NAIVE,
            title=f"Cumulative held-out cost: {', '.join(costs)}",
        )
        written.append(path)
    if not written:
        print("gridflex plot: no metrics.jsonl or eval.json found.", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The `gridflex` command's argument parser (every subcommand and option)."""
    # Long: one declaration per command and option, in the order `--help` lists them;
    # split up, one command's options would scatter over functions
    from .evaluation import NAIVE
    from .feeders import DEFAULT_FEEDER, TAP_CHOICES
    from .training import default_config, TRAINERS

    run = default_config()["run"]  # the defaults the options name
    parser = argparse.ArgumentParser(
        prog="gridflex",
        description="Decentralised grid-edge control through a differentiable "
        "three-phase power flow.",
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of an input error too (or GRIDFLEX_DEBUG=1)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("powerflow", help="solve a feeder's power flow and report it")
    p.add_argument("--feeder", default=DEFAULT_FEEDER, help="built-in name or .dss")
    p.add_argument("--load-scale", type=float, default=1.0, help="base-load multiplier")
    p.add_argument("--x64", action="store_true", help="solve in float64")
    p.add_argument("--out", help="folder for powerflow.json and voltages.csv")
    p.set_defaults(func=_powerflow)
    e = sub.add_parser("evaluate", help="evaluate on the held-out month")
    e.add_argument("run", nargs="?", help="a training run's folder")
    e.add_argument("--method", default=NAIVE, help=f"{NAIVE} (without a run folder)")
    e.add_argument("--feeder", default=run["feeder"], help="built-in name or .dss")
    e.add_argument("--agents", type=int, default=run["agents"], help="number of homes")
    e.add_argument(
        "--taps",
        default=run["taps"],
        choices=TAP_CHOICES,
        help=f"a built-in feeder's regulator taps (as run.taps; default {run['taps']})",
    )
    e.add_argument("--seed", type=int, default=run["seed"])
    e.add_argument("--days", type=int, default=None, help="first N held-out days")
    e.add_argument("--out", default=None, help="folder for eval.json (and figures)")
    e.add_argument(
        "--crosscheck",
        type=int,
        metavar="DAY",
        default=None,
        help="also replay held-out day DAY with OpenDSS solving every step's power "
        "flow; writes crosscheck.json (largest voltage difference from gridflex)",
    )
    e.set_defaults(func=_evaluate)
    t = sub.add_parser(
        "train",
        help="train decentralised policies, then evaluate them",
        description="Train one policy per home with primal-dual learning through "
        "the differentiable power flow, then evaluate on the held-out month. "
        "Settings: built-in defaults (paper Table I), then --config, then options.",
    )
    t.add_argument("--config", help="a TOML file of settings (see config.toml)")
    t.add_argument(
        "--feeder", help=f"built-in name or .dss path (default {run['feeder']})"
    )
    t.add_argument(
        "--agents", type=int, help=f"number of homes (default {run['agents']})"
    )
    t.add_argument(
        "--method", choices=tuple(TRAINERS), help=f"(default {run['method']})"
    )
    t.add_argument("--seed", type=int, help=f"(default {run['seed']})")
    t.add_argument("--out", default="runs/default", help="run folder")
    t.add_argument("--resume", action="store_true", help="continue a killed run")
    t.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override any setting, e.g. --set gradmap.batch=100",
    )
    t.add_argument("--max-steps", type=int, help="stop after N primal steps")
    t.add_argument(
        "--devices",
        type=int,
        help="spread each batch's episodes over the first N local devices (default: "
        "all of them, or the most that divide the batch; N must divide the batch)",
    )
    t.add_argument(
        "--hosts",
        action="store_true",
        help="one process of a multi-host run: join it through JAX's distributed "
        "runtime, detecting the cluster (Slurm, Open MPI); process 0 writes the run",
    )
    t.add_argument(
        "--coordinator",
        metavar="HOST:PORT",
        help="multi-host run without a cluster manager: process 0's address (with "
        "--num-processes and --process-id)",
    )
    t.add_argument("--num-processes", type=int, help="processes in the run")
    t.add_argument("--process-id", type=int, help="this process's id, 0 to N-1")
    t.add_argument("--no-eval", action="store_true", help="skip the evaluation")
    t.add_argument("--no-plots", action="store_true", help="skip the figures")
    t.add_argument("--quiet", action="store_true", help="no progress line")
    t.set_defaults(func=_train)
    x = sub.add_parser(
        "export",
        help="write each home's trained policy for deployment (ONNX and NumPy)",
        description="One self-contained artefact per home, runnable without "
        "gridflex or JAX: home_<i>.onnx (with the export extra) and home_<i>.npz, "
        "taking the home's 8 local measurements in physical units, and a "
        "manifest.json of homes, devices, inputs and units.",
    )
    x.add_argument("run", help="a training run's folder")
    x.add_argument("--out", help="folder for the artefacts (default RUN/export)")
    x.add_argument(
        "--format",
        nargs="+",
        default=["onnx", "numpy"],
        choices=("onnx", "numpy"),
        help="artefact formats (default both)",
    )
    x.set_defaults(func=_export)
    g = sub.add_parser(
        "plot", help="overlay several runs' training curves and out-of-sample costs"
    )
    g.add_argument("runs", nargs="+", help="run folders")
    g.add_argument("--out", default="runs/compare", help="folder for the figures")
    g.set_defaults(func=_plot)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the `gridflex` command with `argv` (default: the process's arguments).

    **Returns:** the exit code: 0 on success, 2 for a mistake in the input (reported
    in one line on stderr, no traceback unless `--debug`).
    """
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get("GRIDFLEX_DEBUG", "") not in ("", "0")
    try:
        return int(args.func(args))
    except _UserError as e:
        if debug:  # the original error, with its traceback
            raise (e.__cause__ or e) from None
        print(f"gridflex {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
