"""The paper's comparison (§V, Figs. 6–8): GradMAP, GradMA, GradMA-RPO, IPPO and MAPPO,
and the naive rule, by a protocol fixed before the runs.

    python benchmarks/paper.py --case ieee13:10 --seeds 0 1 2      # runs, then report
    python benchmarks/paper.py --case ieee13:10 --only ippo:0       # one run
    python benchmarks/paper.py --case ieee13:10 --timing            # seconds per step
    python benchmarks/paper.py --case ieee13:10 --report            # stored runs
    python benchmarks/paper.py --agents-figure ieee13:10 \\
        european_lv_reduced:100:b50 ieee123:1000:b4                  # Fig. 8
    python benchmarks/paper.py --case ieee123:1000 --batch 16 --scale mappo
    python benchmarks/paper.py --case european_lv_reduced:100 --batch 16 \\
        --dual-steps 10 --critics                                  # MAPPO's critics

The protocol (the same for every method; `benchmarks/trainers.py` is its two-method
form):

1. Runs. Each method trains with its defaults (paper Table I: GradMAP and GradMA-RPO
   20 x 10 primal steps, GradMA 20 x 60, IPPO and MAPPO 40 x 30; 500 episodes per
   primal step) on the case's environment (built-in feeder, regulators at
   `taps="homes"`), for each seed; the seed draws the placement, the devices, the
   data, the initial policies and every rollout. A case too large for this CPU at
   batch 500 runs every method at the same smaller `--batch`, stated in the result:
   the batch at which its slowest run (IPPO's) ends within one working session of
   about 2.5 h on the 2-core machine, because nothing outside the repository (run
   checkpoints included) outlives a session there. Fixed on 2026-12-07, before any
   run of these cases at these batches: European LV / 100 at batch 50 (IPPO about
   4 s a step, 1,200 steps), IEEE 123 / 1,000 at batch 4 (IPPO 6.1 s a step with
   the cores shared three ways; 11.1 s at batch 8, too long for a session).
   Every primal step's training-rollout cost and voltage violation is kept. After
   training, the final policies act with their mean on the held-out month, days
   chained (`gridflex.evaluation.evaluate`); the naive rule likewise.
2. Time. A run's time to a step is the step count times the method's seconds per
   primal step measured warm and alone (`--timing`, compilation reported apart).
3. Targets. A run's final level (cost and violation separately) is its mean over its
   last 10 % of primal steps. For each method M other than GradMAP, the *pairwise
   joint target* of a seed is, per figure, the worse of M's and GradMAP's final
   levels; a run reaches it at the first step whose trailing 10-step means of cost
   and violation are both at or below it. GradMAP's speed-up over M is M's time to
   that target over GradMAP's ("never" when one does not reach it).
4. Summary. Per case, the median and range over seeds of each speed-up; the
   held-out table (total cost, voltage violation max and sum, battery and heat-pump
   end-of-day violations) per method, median over seeds, with the naive rule.
5. Figures. Fig. 6: cost and violation of every method (first seed) against primal
   steps and run time. Fig. 7: cumulative held-out cost (first seed) with the naive
   rule. Fig. 8: GradMAP's speed-up over each method against the number of agents.

Besides the five, `--methods` and `--only` take `mappo_per_agent`: MAPPO with one
centralised critic per agent (the MAPPO authors' `separated` runner), the design the
shared critic is compared with (issue 10), run and reported like the others.
`--critics` runs the two designs side by side and reports them against each other
(`critics`); `--dual-steps N` shortens every method's schedule to its first N dual
steps, the same for all and stated in the folder name (`_d<N>`).

`--scale METHOD`: seconds per primal step and peak memory of one method on a case at
a batch (a subprocess, warm steps after the first), e.g. MAPPO at 1,000 agents.
`--tiny` shrinks every schedule (for the end-to-end test), `--results DIR` redirects
the output.

Results: `benchmarks/results/paper/<case>/<method>_seed<k>.json` (per-step metrics
and the held-out figures), `benchmarks/results/paper_<case>.json` (the report),
`paper_<case>_curves.png` (Fig. 6), `paper_<case>_cumulative_cost.png` (Fig. 7),
`paper_agents.png` (Fig. 8). Each run checkpoints under
`runs/benchmarks/paper/<case>/<method>_seed<k>/` (ignored by git; under `--results`
when that is given); the same command resumes a killed run from its last checkpoint.
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import trainers as two  # noqa: E402  (the two-method benchmark's analysis)


METHODS = ("gradmap", "gradma", "gradma_rpo", "ippo", "mappo")
# Variants a run can name besides the five (`--methods`, `--only`): the trainer and
# the settings that differ from its defaults. MAPPO with one centralised critic per
# agent is the MAPPO authors' `separated` design, compared with the shared critic.
VARIANTS = {"mappo_per_agent": ("mappo", {"critic": "per_agent"})}
CHOICES = METHODS + tuple(VARIANTS)
VARIANT_NAMES = {"mappo_per_agent": "MAPPO, per-agent critics"}


def display(method: str) -> str:
    """A method as legends and tables name it: the trainer's `display_name`."""
    from gridflex.training import TRAINERS

    return VARIANT_NAMES.get(method) or TRAINERS[method].display_name


HELD_OUT = (
    "cost_total",
    "voltage_violation_max_pu",
    "voltage_violation_sum_pu",
    "battery_end_violation",
    "heat_pump_end_violation",
    "failed_days",
)
PPO_KEPT = (
    "lagrangian",
    "value_loss",
    "explained_variance",
    "approx_kl",
    "clip_fraction",
    "entropy",
)
"""Per-step metrics a stored run keeps besides `trainers.py`'s: the Lagrangian and
PPO's own (the critic comparison reads them)."""
TINY = {
    "all": {"n_dual": 2, "n_primal": 3, "batch": 4},
    "gradmap": {"inner_steps": 4, "minibatch": 2, "curvature_samples": 16},
    "gradma_rpo": {"inner_steps": 4, "minibatch": 2},
    "ippo": {"ppo": {"epochs": 1, "minibatches": 2}},
    "mappo": {"ppo": {"epochs": 1, "minibatches": 2}},
}
"""`--tiny`: schedules that run end to end in seconds (the test of this script)."""

RESULTS = two.RESULTS


def _name(case: str, batch: int | None, dual_steps: int | None = None) -> str:
    """The folder and file stem: `<feeder>_<agents>[_b<batch>][_d<dual steps>]`."""
    name = os.path.basename(two._case_dir(case, batch))
    return name + (f"_d{dual_steps}" if dual_steps else "")


def _trainer(method: str, batch: int | None, tiny: bool, dual_steps: int | None = None):
    from gridflex.training import PPOConfig, TRAINERS

    base, variant = VARIANTS.get(method, (method, {}))
    settings: dict = dict(variant)
    if tiny:
        settings.update(TINY["all"])
        for k, v in TINY.get(base, {}).items():
            settings[k] = PPOConfig(**v) if k == "ppo" else v
    if batch is not None:
        settings["batch"] = batch
    if dual_steps is not None:
        settings["n_dual"] = dual_steps
    return TRAINERS[base](**settings)


def _held_out(env, policy, days: int | None) -> dict:
    from gridflex.env import PolicyController
    from gridflex.evaluation import evaluate, NAIVE, naive_evaluation

    out = {}
    for label, ev in (
        (
            "policy",
            evaluate(env, PolicyController(policy, deterministic=True), days=days),
        ),
        (NAIVE, naive_evaluation(env, days=days)),
    ):
        summary = ev.summary()
        out[label] = {k: summary[k] for k in HELD_OUT} | {
            "daily_cost": [round(c, 2) for c in summary["daily_cost"]]
        }
    return out


def one_run(case, method, seed, batch, results, tiny=False, dual_steps=None) -> str:
    env = two._environment(case, seed)
    trainer = _trainer(method, batch, tiny, dual_steps)
    name = _name(case, batch, dual_steps)
    # Checkpoints beside trainers.py's, in a folder of their own (the two scripts
    # share method names); with --results elsewhere (the test), under it.
    root = os.path.join(two.CHECKPOINTS, "paper")
    if results != RESULTS:
        root = os.path.join(results, "runs")
    run_dir = os.path.join(root, name, f"{method}_seed{seed}")
    result = two.resumable_fit(env, trainer, seed, run_dir, progress=not tiny)
    folder = os.path.join(results, "paper", name)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{method}_seed{seed}.json")
    record = {
        "command": "python benchmarks/paper.py " + " ".join(sys.argv[1:]),
        "commit": two.commit(),
        "case": case,
        "method": method,
        "seed": seed,
        "batch": trainer.batch,
        "schedule": [trainer.n_dual, trainer.n_primal],
        "train_seconds": round(result.train_seconds, 1),
        "held_out": _held_out(env, result.state.policy, 2 if tiny else None),
    }
    two.write_run(path, record, result.metrics, keep=two._KEPT + PPO_KEPT)
    print(f"{method} seed {seed}: {len(result.metrics)} steps", flush=True)
    return path


# --- timing and scale ----------------------------------------------------------------


def timing(case, batch, results, tiny=False, repeats=5, methods=METHODS) -> dict:
    """Seconds per primal step of each of `methods`, added to the case's timing
    file (methods timed before keep their figures)."""
    import equinox as eqx
    import jax

    from gridflex.env import use_mesh
    from gridflex.training import mesh_for

    env = two._environment(case, 0)
    path = os.path.join(results, f"paper_timing_{_name(case, batch)}.json")
    out: dict = {"case": case, "batch": batch or 500}
    if os.path.exists(path):
        with open(path) as f:
            out = json.load(f) | out
    for method in methods:
        trainer = _trainer(method, batch, tiny)
        mesh = mesh_for(trainer)  # the devices `fit` spreads the runs' episodes over
        with use_mesh(mesh):
            state = trainer.init(env, jax.random.key(0))
            first, median = two.clock(
                eqx.filter_jit(trainer.step), env, state, repeats=1 if tiny else repeats
            )
        out[method] = {
            "compile_s": round(first - median, 2),
            "primal_step_s": round(median, 3),
            "devices": int(mesh.devices.size),
        }
        print(method, out[method], flush=True)
    out["command"] = "python benchmarks/paper.py " + " ".join(sys.argv[1:])
    two.write_json(path, out)
    return out


def scale_point(case, method, batch, steps, tiny=False) -> dict:
    import equinox as eqx
    import jax

    env = two._environment(case, 0)
    trainer = _trainer(method, batch, tiny)
    figures, state = two.timed_steps(env, trainer, steps)
    critic = None if state.extra is None else state.extra.critic
    n_params = sum(
        x.size
        for x in jax.tree.leaves(eqx.filter((state.policy, critic), eqx.is_array))
    )
    return {
        "case": case,
        "method": method,
        "batch": trainer.batch,
        **figures,
        "parameters_actors_and_critic": int(n_params),
        "command": "python benchmarks/paper.py " + " ".join(sys.argv[1:]),
    }


def scale(case, method, batch, steps, results, tiny=False) -> dict:
    """`scale_point` in a subprocess of its own, so that its peak memory is the one
    method's; written to `paper_scale_<case>_<method>.json`."""
    cmd = [sys.executable, __file__, "--case", case, "--point", method]
    cmd += ["--steps", str(steps)] + (["--batch", str(batch)] if batch else [])
    cmd += ["--tiny"] if tiny else []
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"--scale {method} failed:\n{done.stderr[-3000:]}")
    point = json.loads(done.stdout.strip().splitlines()[-1])
    two.write_json(_scale_path(results, case, batch, method), point)
    return point


def _scale_path(results: str, case: str, batch: int | None, method: str) -> str:
    """Where `scale` writes one method's time and memory (and `--critics --report`
    reads them back)."""
    return os.path.join(results, f"paper_scale_{_name(case, batch)}_{method}.json")


# --- the critic comparison ------------------------------------------------------------

FIRST = ("cost", "voltage_violation")
"""What the critic comparison also reports over the first tenth of the primal steps,
beside the final levels: how far learning went."""
CRITIC_DESIGNS = ("mappo", "mappo_per_agent")
"""MAPPO's shared centralised critic (gridflex's default, the one that runs at 1,000
agents) and one centralised critic per agent (the MAPPO authors' `separated`
runner)."""


def critics(
    case, batch, dual_steps, seeds, results, tiny=False, stored_scale=False
) -> dict:
    """MAPPO with its shared critic against MAPPO with one critic per agent, on the
    same case, batch, schedule and seeds (issue 10's comparison at 100 agents).

    Per design: what it costs (seconds per primal step and peak memory, each design
    alone in a subprocess, and its parameters); how well the critic fits (value loss
    and explained variance, means over the last tenth of the primal steps); what the
    actors learn with it (cost and violation over the first tenth of the primal
    steps, and rule 3's final levels; not the Lagrangian, which grows with the
    duals); and the held-out month. Medians over
    the seeds; every seed's figures beside them. Writes
    `paper_critics_<case>.json` and `paper_critics_<case>.png` (the first seed's
    curves against primal steps and run time = steps x s/step). `stored_scale`
    (`--critics --report`): the seconds per step and memory measured before, from
    `paper_scale_<case>_<design>.json`, instead of measuring them again (which wants
    an idle machine)."""
    from gridflex.evaluation import NAIVE
    from gridflex.plots import plot_training_curves

    name = _name(case, batch, dual_steps)
    folder = os.path.join(results, "paper", name)
    for seed in seeds:
        for m in CRITIC_DESIGNS:
            if not os.path.exists(os.path.join(folder, f"{m}_seed{seed}.json")):
                one_run(case, m, seed, batch, results, tiny, dual_steps)
    out: dict = {
        "command": "python benchmarks/paper.py " + " ".join(sys.argv[1:]),
        "case": case,
        "seeds": list(seeds),
        "designs": {},
        "median": {},
    }
    curves = {}
    for m in CRITIC_DESIGNS:
        stored = _scale_path(results, case, batch, m)
        if stored_scale and os.path.exists(stored):
            with open(stored) as f:
                point = json.load(f)
        else:
            point = scale(case, m, batch, 1 if tiny else 3, results, tiny)
        per_seed = {}
        for seed in seeds:
            record, rows = two.read_run(os.path.join(folder, f"{m}_seed{seed}.json"))
            out["batch"], out["schedule"] = record["batch"], record["schedule"]
            tenth = max(1, len(rows) // 10)
            held = record["held_out"]
            first = {k: float(np.mean([r[k] for r in rows[:tenth]])) for k in FIRST}
            per_seed[str(seed)] = {
                # the critic's fit: means over the last tenth, as rule 3's levels
                **two.final_levels(rows, ("value_loss", "explained_variance")),
                **{f"first_{k}": v for k, v in first.items()},
                **{f"final_{k}": v for k, v in two.final_levels(rows).items()},
                "held_out_cost": held["policy"]["cost_total"],
                "held_out_voltage_sum": held["policy"]["voltage_violation_sum_pu"],
                "naive_held_out_cost": held[NAIVE]["cost_total"],
            }
            if seed == seeds[0]:
                step_s = point["seconds_per_primal_step"]
                curves[display(m)] = _timed_rows(rows, record, step_s)
        out["designs"][m] = {
            "seconds_per_primal_step": point["seconds_per_primal_step"],
            "first_step_s": point["first_step_s"],
            "peak_rss_mb": point["peak_rss_mb"],
            "parameters_actors_and_critic": point["parameters_actors_and_critic"],
            "per_seed": per_seed,
        }
        out["median"][m] = {
            k: _median([s[k] for s in per_seed.values()])
            for k in next(iter(per_seed.values()))
        } | {k: point[k] for k in ("seconds_per_primal_step", "peak_rss_mb")}
    stem = os.path.join(results, f"paper_critics_{name}")
    two.write_json(stem + ".json", out)
    plot_training_curves(
        curves,
        stem + ".png",
        keys=("cost", "voltage_violation", "explained_variance", "value_loss"),
        title=f"MAPPO's critic designs on {_case_title(case, out['batch'])}, seed "
        f"{seeds[0]}\n(run time = steps × idle s/step)",
        smooth=10,
    )
    return out


# --- analysis -----------------------------------------------------------------------


def analyse_seed(runs: dict[str, list[dict]], seconds: dict[str, float]) -> dict:
    """Rule 3 for one seed: each method's pairwise joint target with GradMAP; and,
    as context, how many inner updates the methods that reuse a cached gradient made
    per primal step (`inner_updates`: whether their trust region stops them)."""
    fin = {m: two.final_levels(r) for m, r in runs.items()}
    out = {"final": fin, "pairwise": {}, "inner_updates": {}}
    for m, rows in runs.items():
        if rows and "inner_steps_made" in rows[0]:
            made = np.array([r["inner_steps_made"] for r in rows])
            p10, p50, p90 = np.percentile(made, [10, 50, 90])
            out["inner_updates"][m] = {
                "mean": round(float(made.mean()), 2),
                "p10": float(p10),
                "median": float(p50),
                "p90": float(p90),
                "single_update_share": round(float(np.mean(made == 1)), 3),
            }
    for m in runs:
        if m == "gradmap":
            continue
        target = {k: max(fin[m][k], fin["gradmap"][k]) for k in fin[m]}
        reach = {x: two.time_to(runs[x], target, seconds[x]) for x in ("gradmap", m)}
        out["pairwise"][m] = {
            "target": target,
            "reached": reach,
            "gradmap_speedup": two._ratio(reach[m], reach["gradmap"]),
        }
    return out


def _case_title(case: str, batch: int) -> str:
    """`ieee13:10` at batch 500 as a reader reads it."""
    feeder, agents = case.split(":")
    return f"{feeder}, {int(agents):,} homes, {batch} episodes per step"


def _timed_rows(rows: list[dict], record: dict, step_s: float) -> list[dict]:
    """A stored run's rows with rule 2's run time and the dual step of each row."""
    return two.timed_rows(rows, step_s, n_primal=record["schedule"][1])


def _median(values: list) -> float | None:
    known = [v for v in values if v is not None]
    return round(float(np.median(known)), 4) if known else None


def report(case, batch, seeds, results, dual_steps=None) -> dict:
    from gridflex.evaluation import NAIVE
    from gridflex.plots import plot_cumulative_cost, plot_training_curves

    name = _name(case, batch, dual_steps)
    folder = os.path.join(results, "paper", name)
    # seconds per step do not depend on the schedule's length
    timing_path = os.path.join(results, f"paper_timing_{_name(case, batch)}.json")
    if not os.path.exists(timing_path):
        raise SystemExit(f"run --timing first: {timing_path} is missing")
    with open(timing_path) as f:
        measured = json.load(f)
    per_seed, stored = {}, {}
    for seed in seeds:
        runs, records = {}, {}
        for m in CHOICES:
            path = os.path.join(folder, f"{m}_seed{seed}.json")
            if os.path.exists(path):
                records[m], runs[m] = two.read_run(path)
        if "gradmap" not in runs:
            print(f"seed {seed}: no GradMAP run in {folder}", file=sys.stderr)
            continue
        seconds = {m: measured[m]["primal_step_s"] for m in runs}
        per_seed[seed] = analyse_seed(runs, seconds)
        stored[seed] = (runs, records, seconds)
    if not per_seed:
        raise SystemExit(f"no seed with a GradMAP run in {folder}")
    methods = [m for m in CHOICES if any(m in s[0] for s in stored.values())]
    speedups = {
        m: [per_seed[s]["pairwise"].get(m, {}).get("gradmap_speedup") for s in per_seed]
        for m in methods
        if m != "gradmap"
    }
    # each method's own held-out rows, and the naive rule's (stored with GradMAP's run)
    held = {
        m: [rec[m]["held_out"]["policy"] for _, rec, _ in stored.values() if m in rec]
        for m in methods
    }
    held[NAIVE] = [rec["gradmap"]["held_out"][NAIVE] for _, rec, _ in stored.values()]
    table = {
        m: {k: _median([r[k] for r in rows]) for k in HELD_OUT}
        for m, rows in held.items()
    }
    out = {
        "command": "python benchmarks/paper.py " + " ".join(sys.argv[1:]),
        "case": case,
        "batch": batch or 500,
        "seeds": sorted(per_seed),
        "seconds_per_primal_step": {m: measured[m]["primal_step_s"] for m in methods},
        "gradmap_speedup": {
            m: {
                "per_seed": v,
                "median": _median(v),
                "range": [min(k), max(k)]
                if (k := [x for x in v if x is not None])
                else None,
            }
            for m, v in speedups.items()
        },
        "held_out_median_over_seeds": table,
        "per_seed": {str(k): v for k, v in per_seed.items()},
    }
    stem = os.path.join(results, f"paper_{name}")
    two.write_json(stem + ".json", out)
    first = min(stored)
    runs, records, seconds = stored[first]
    curves = {display(m): _timed_rows(runs[m], records[m], seconds[m]) for m in runs}
    plot_training_curves(
        curves,
        stem + "_curves.png",
        title=f"{', '.join(curves)} on {_case_title(case, batch or 500)}, seed "
        f"{first}\n(run time = steps × idle s/step)",
        smooth=10,
    )
    costs = {
        display(m): records[m]["held_out"]["policy"]["daily_cost"] for m in records
    }
    costs[NAIVE] = records["gradmap"]["held_out"][NAIVE]["daily_cost"]
    plot_cumulative_cost(
        costs,
        stem + "_cumulative_cost.png",
        baseline=NAIVE,
        title=f"Held-out month, days chained\n{_case_title(case, batch or 500)}, "
        f"seed {first}",
    )
    print(json.dumps({k: out[k] for k in ("gradmap_speedup",)}, indent=1))
    return out


def agents_figure(cases: list[str], results: str) -> str:
    """Fig. 8: GradMAP's median speed-up over each method against the number of
    agents, from the stored reports (`feeder:agents[:bN]`)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.8))
    points: dict[str, list[tuple[int, float]]] = {}
    ticks: dict[int, str] = {}
    for spec in cases:
        feeder, agents, *rest = spec.split(":")
        batch = int(rest[0][1:]) if rest else None
        path = os.path.join(results, f"paper_{_name(f'{feeder}:{agents}', batch)}.json")
        with open(path) as f:
            rep = json.load(f)
        for m, s in rep["gradmap_speedup"].items():
            if s["median"] is not None:
                points.setdefault(m, []).append((int(agents), s["median"]))
        # the case, its batch and its seeds: they change with the agents here
        n = len(rep["seeds"])
        ticks[int(agents)] = (
            f"{int(agents):,}\n{feeder}\nbatch {rep['batch']}, "
            f"{n} seed{'s' if n > 1 else ''}"
        )
    for m, pts in points.items():
        x, y = zip(*sorted(pts))
        ax.plot(x, y, "o-", label=f"over {display(m)}")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sorted(ticks), [ticks[k] for k in sorted(ticks)], fontsize="small")
    ax.minorticks_off()
    ax.set_xlabel("agents (homes), case")
    ax.set_ylabel("GradMAP's speed-up to the pairwise target [×]")
    title = (
        "GradMAP's wall-clock speed-up to the pairwise joint target,\n"
        "median over seeds (below 1: the other method is faster)"
    )
    ax.set_title(title)
    ax.legend()
    ax.grid(True, alpha=0.3)
    out = os.path.join(results, "paper_agents.png")
    fig.tight_layout()
    fig.savefig(out, dpi=90, metadata={"Title": title.replace("\n", " ")})
    plt.close(fig)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--case", default="ieee13:10", help="feeder:agents")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--batch", type=int, help="episodes per primal step (all methods)")
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=CHOICES)
    p.add_argument("--only", metavar="METHOD:SEED", help="make one run and stop")
    p.add_argument("--report", action="store_true", help="report the stored runs")
    p.add_argument("--timing", action="store_true", help="seconds per primal step")
    p.add_argument("--scale", metavar="METHOD", help="time and memory of one method")
    p.add_argument("--steps", type=int, default=3, help="timed steps for --scale")
    p.add_argument("--agents-figure", nargs="+", metavar="CASE", help="Fig. 8")
    p.add_argument(
        "--critics", action="store_true", help="MAPPO: shared against per-agent critic"
    )
    p.add_argument(
        "--dual-steps", type=int, help="every method's first N dual steps (shortened)"
    )
    p.add_argument("--tiny", action="store_true", help="tiny schedules (tests)")
    p.add_argument("--results", default=RESULTS, help="output folder")
    p.add_argument("--point", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    os.makedirs(args.results, exist_ok=True)
    if args.point:
        point = scale_point(args.case, args.point, args.batch, args.steps, args.tiny)
        print(json.dumps(point))
        return 0
    if args.scale:
        point = scale(args.case, args.scale, args.batch, args.steps, args.results)
        print(json.dumps(point, indent=1))
        return 0
    if args.critics:
        out = critics(
            args.case,
            args.batch,
            args.dual_steps,
            args.seeds,
            args.results,
            args.tiny,
            stored_scale=args.report,
        )
        print(json.dumps(out["median"], indent=1))
        return 0
    if args.agents_figure:
        print(agents_figure(args.agents_figure, args.results))
        return 0
    if args.timing:
        timing(args.case, args.batch, args.results, args.tiny, methods=args.methods)
        return 0
    if args.only:
        method, seed = args.only.split(":")
        one_run(
            args.case,
            method,
            int(seed),
            args.batch,
            args.results,
            args.tiny,
            args.dual_steps,
        )
        return 0
    if not args.report:
        name = _name(args.case, args.batch, args.dual_steps)
        folder = os.path.join(args.results, "paper", name)
        for seed in args.seeds:
            for m in args.methods:
                if not os.path.exists(os.path.join(folder, f"{m}_seed{seed}.json")):
                    one_run(
                        args.case,
                        m,
                        seed,
                        args.batch,
                        args.results,
                        args.tiny,
                        args.dual_steps,
                    )
        timing_path = os.path.join(
            args.results, f"paper_timing_{_name(args.case, args.batch)}.json"
        )
        timed = {}
        if os.path.exists(timing_path):
            with open(timing_path) as f:
                timed = json.load(f)
        missing = [m for m in args.methods if m not in timed]
        if missing:
            timing(args.case, args.batch, args.results, args.tiny, methods=missing)
    report(args.case, args.batch, args.seeds, args.results, args.dual_steps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
