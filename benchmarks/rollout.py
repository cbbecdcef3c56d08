"""One rollout of the environment at the paper's scale: wall-clock and peak memory.

    python benchmarks/rollout.py          # 500 episodes, 1,000 homes, IEEE 123
    python benchmarks/rollout.py --episodes 100 --chunk 50

Runs in separate processes (so that each figure's peak memory is its own): the
forward rollout (96 steps of observe -> act -> devices -> meters -> power flow, for
every episode) and the forward rollout plus the gradient of the Lagrangian with
respect to every agent's policy outputs at every step and episode (what GradMAP caches;
through the implicit adjoint of every power flow). The controller is the policy the
trainers use (per-agent Gaussian MLPs, 16 tanh units). Compile time is reported apart.
The episodes are spread over the local devices as `gridflex train` spreads them (all
of them, or the most that divide the episodes; `--devices N`: the first N).
Results: `benchmarks/results/rollout.json` (`rollout_chunk<N>.json` with `--chunk
N`, `..._devices<N>.json` with `--devices N`).

    XLA_FLAGS=--xla_force_host_platform_device_count=2 python benchmarks/rollout.py \
        --devices 2                     # this CPU's two cores as two devices

    python benchmarks/rollout.py --profile --episodes 100   # where the time goes

`--profile` traces one warm run of each mode with JAX's profiler and splits the time
of XLA's operations by where they come from (HLO metadata): the per-agent policies,
the power flow's iterations and adjoint, and the rest of the environment (devices,
meters, observations, the scan's bookkeeping), scatters and gathers apart
(`rollout_profile.json`).
"""

import argparse
import collections
import glob
import gzip
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time


def _run(
    mode: str,
    feeder: str,
    agents: int,
    episodes: int,
    chunk: int | None,
    profile: bool = False,
    devices: int | None = None,
) -> dict:
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    import gridflex as gf
    from gridflex.env import (
        EnvConfig,
        episode_mesh,
        make_environment,
        PolicyController,
        use_mesh,
    )
    from gridflex.policies import GaussianMLPPolicy

    t0 = time.perf_counter()
    env = make_environment(
        getattr(gf.feeders, feeder)(),
        agents,
        seed=0,
        config=EnvConfig(episode_chunk=chunk),
    )
    build_s = time.perf_counter() - t0
    policy = GaussianMLPPolicy.init(jax.random.key(1), agents)
    controller = PolicyController(policy)
    lambdas = {c: jnp.asarray(1.0) for c in env.channels}
    days = jnp.arange(episodes) % env.train.n_days
    shift = jnp.zeros((episodes, env.config.n_steps, agents, 2))

    if mode == "forward":

        @eqx.filter_jit
        def fn(key):
            r = env.rollout(controller, lambdas, key, days)
            return r.lagrangian, r.n_failed

    else:

        @eqx.filter_jit
        def fn(key):
            def lag(s):
                r = env.rollout(controller, lambdas, key, days, shift=s)
                return r.lagrangian, r.n_failed

            return jax.value_and_grad(lag, has_aux=True)(shift)

    mesh = episode_mesh(devices, batch=episodes)  # as `gridflex train` spreads them
    n = int(mesh.devices.size)
    with use_mesh(mesh):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(jax.random.key(2)))
        first_s = time.perf_counter() - t0
        if profile:
            split = _split(fn)
            return {"mode": mode, "episodes": episodes, "devices": n, **split}
        t0 = time.perf_counter()
        out = jax.block_until_ready(fn(jax.random.key(3)))
        run_s = time.perf_counter() - t0
    failed = int(out[1] if mode == "forward" else out[0][1])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "mode": mode,
        "devices": n,
        "devices_visible": jax.device_count(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "build_environment_s": round(build_s, 2),
        "compile_s": round(first_s - run_s, 2),
        "run_s": round(run_s, 2),
        "power_flows": episodes * env.config.n_steps,
        "power_flows_per_s": round(episodes * env.config.n_steps / run_s, 1),
        "failed_episodes": failed,
        "peak_rss_mb": round(peak_mb, 1),
    }


def _split(fn) -> dict:
    """Seconds of XLA operations in one warm run, by origin (see the docstring)."""
    import jax

    fn = jax.jit(fn)  # Equinox's compiled stage keeps no HLO text; this one does
    key = jax.random.key(3)
    jax.block_until_ready(fn(key))
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp):
            jax.block_until_ready(fn(key))
        (path,) = glob.glob(f"{tmp}/**/*.trace.json.gz", recursive=True)
        with gzip.open(path) as f:
            events = json.load(f)["traceEvents"]
    origin = {}
    for line in fn.lower(key).compile().as_text().splitlines():
        m = re.match(r'\s*(?:ROOT )?%([\w.\-]+) = .*?op_name="([^"]*)"', line)
        if m:
            origin.setdefault(m.group(1), m.group(2))
    seconds: collections.Counter = collections.Counter()
    for e in events:
        name = e.get("name", "")
        if e.get("ph") != "X" or name not in origin or name.startswith("while"):
            continue  # runtime events, and loops (their bodies are counted)
        op = origin[name]
        if "_forward" in op:
            part = "policies"
        elif "fixed_point" in op:
            part = "power flow (iterations and adjoint)"
        else:
            part = "environment"
        if "scatter" in name or "gather" in name:
            part += ", scatter/gather"
        seconds[part] += e["dur"] * 1e-6
    total = sum(seconds.values())
    return {
        "operations_s": round(total, 3),
        "split": {
            k: {"s": round(v, 3), "share": round(v / total, 3)}
            for k, v in seconds.most_common()
        },
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--feeder", default="ieee123")
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--episodes", type=int, default=500)
    p.add_argument("--chunk", type=int, default=None, help="EnvConfig.episode_chunk")
    p.add_argument("--mode", choices=("forward", "gradient"), default=None)
    p.add_argument(
        "--devices",
        type=int,
        help="spread the episodes over the first N local devices (default: all of "
        "them, or the most that divide them, as `gridflex train`)",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="split each mode's time by origin instead (rollout_profile.json)",
    )
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    args = p.parse_args(argv)
    if args.devices is not None and args.devices < 1:
        p.error(f"--devices {args.devices}: give 1 or more")
    if args.mode is not None:  # a child process
        print(
            json.dumps(
                _run(
                    args.mode,
                    args.feeder,
                    args.agents,
                    args.episodes,
                    args.chunk,
                    args.profile,
                    args.devices,
                )
            )
        )
        return 0
    import jax

    import gridflex as gf

    report = {
        "command": "python benchmarks/rollout.py " + " ".join(sys.argv[1:]),
        "feeder": args.feeder,
        "agents": args.agents,
        "episodes": args.episodes,
        "steps": 96,
        "episode_chunk": args.chunk,
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "jax": jax.__version__,
            "backend": jax.default_backend(),
            "gridflex": gf.__version__,
        },
    }
    for mode in ("forward", "gradient"):
        cmd = [sys.executable, __file__, "--mode", mode, "--feeder", args.feeder]
        cmd += ["--agents", str(args.agents), "--episodes", str(args.episodes)]
        if args.chunk:
            cmd += ["--chunk", str(args.chunk)]
        if args.profile:
            cmd += ["--profile"]
        if args.devices:
            cmd += ["--devices", str(args.devices)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode:
            print(done.stderr[-3000:], file=sys.stderr)
            report[mode] = {"error": done.stderr[-500:]}
            continue
        report[mode] = json.loads(done.stdout.strip().splitlines()[-1])
        print(mode, report[mode], flush=True)
    os.makedirs(args.out, exist_ok=True)
    name = f"rollout_chunk{args.chunk}.json" if args.chunk else "rollout.json"
    if args.profile:
        name = "rollout_profile.json"
    if args.devices:
        name = name.replace(".json", f"_devices{args.devices}.json")
    path = os.path.join(args.out, name)
    with open(path, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
