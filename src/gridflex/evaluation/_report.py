"""The end of a run: evaluate the trained policies next to the naive baseline on the
held-out month, write `eval.json` and the figures."""

from pathlib import Path
from typing import Any

import numpy as np

from ..env import Environment, PolicyController
from ..plots import (
    plot_agent_power,
    plot_cumulative_cost,
    plot_training_curves,
    plot_voltage_envelope,
)
from ._evaluate import (
    evaluate,
    Evaluation,
    NAIVE,
    naive_evaluation,
    write_evaluation,
)


def report_run(
    env: Environment,
    policy,
    *,
    method: str,
    feeder: str,
    out_dir: str | Path,
    metrics: list[dict[str, Any]] | None = None,
    train_seconds: float | None = None,
    primal_steps: int | None = None,
    days: int | None = None,
    plots: bool = True,
    label: str | None = None,
) -> tuple[dict[str, Any], Evaluation, Evaluation]:
    """Evaluate `policy` (acting with its mean) and the naive baseline on the
    held-out days, chained; write `out_dir/eval.json` and the PNG figures.

    `eval.json` holds `method`, `feeder`, `agents`, `train_seconds`, `primal_steps`,
    `cost_total`, `voltage_violation_max_pu`, `voltage_violation_sum_pu`,
    `battery_end_violation`, `heat_pump_end_violation` (and a few more), and the
    same figures for the naive baseline under `naive`.

    `label` names the method in the figures (default `method`; the CLI gives the
    trainer's `display_name`).

    **Returns:** `(summary, trained, naive)`.
    """
    out = Path(out_dir)
    trained = evaluate(
        env, PolicyController(policy, deterministic=True), method=method, days=days
    )
    naive = naive_evaluation(env, days=days)
    summary = trained.summary()
    summary["feeder"] = feeder
    summary["train_seconds"] = (
        None if train_seconds is None else round(train_seconds, 2)
    )
    summary["primal_steps"] = primal_steps
    naive_summary = naive.summary()
    naive_summary["feeder"] = feeder
    summary[NAIVE] = naive_summary
    write_evaluation(out, summary)
    if plots:
        write_figures(env, out, trained, naive, metrics, label or method, feeder=feeder)
    return summary, trained, naive


def write_figures(
    env: Environment,
    out: Path,
    trained: Evaluation,
    naive: Evaluation,
    metrics: list[dict[str, Any]] | None,
    method: str,
    *,
    feeder: str = "",
) -> list[Path]:
    """The run's figures: training curves, every agent's power on the held-out day
    with the naive baseline's largest voltage violation, that day's voltage envelope,
    and the cumulative out-of-sample cost; each titled with `method` and, when
    given, the `feeder` and the number of homes. **Returns:** the PNGs' paths."""
    case = f" on {feeder}, {env.n_agents} homes" if feeder else ""
    paths = []
    if metrics:
        paths.append(out / "training_curves.png")
        plot_training_curves(
            metrics,
            paths[-1],
            title=f"{method}{case}: training curves",
            currency=env.test.currency,
        )
    day = int(np.argmax(naive.daily_voltage_violation_pu))
    paths.append(out / "agent_power.png")
    plot_agent_power(
        np.stack([naive.power_pu[day], trained.power_pu[day]]),
        paths[-1],
        labels=[NAIVE, method],
        kinds=list(trained.kinds),
        title=f"{method} and the naive rule: every agent's power on held-out day "
        f"{day + 1}{case} (the naive rule's worst voltage day)",
        dt_h=env.config.dt_h,
    )
    paths.append(out / "voltage_envelope.png")
    plot_voltage_envelope(
        trained.v_min_pu[day],
        trained.v_max_pu[day],
        paths[-1],
        limits=(env.config.v_min_pu, env.config.v_max_pu),
        other=(naive.v_min_pu[day], naive.v_max_pu[day]),
        labels=(method, NAIVE),
        title=f"{method} and the naive rule: lowest and highest node voltage, "
        f"held-out day {day + 1}{case}",
        dt_h=env.config.dt_h,
    )
    paths.append(out / "cumulative_cost.png")
    plot_cumulative_cost(
        {method: trained.daily_cost, NAIVE: naive.daily_cost},
        paths[-1],
        baseline=NAIVE,
        currency=env.test.currency,
        title=f"Cumulative held-out cost, {method} and the naive rule{case}",
    )
    return paths
