"""`benchmarks/paper.py` runs end to end on a tiny case: five methods trained, the
held-out month (two days here) evaluated for each and for the naive rule, the report
and its figures written."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .helpers import load_benchmark


ROOT = Path(__file__).resolve().parents[1]
METHODS = ("gradmap", "gradma", "gradma_rpo", "ippo", "mappo")


@pytest.mark.slow
def test_paper_benchmark_runs_end_to_end(tmp_path):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    script = str(ROOT / "benchmarks" / "paper.py")
    base = [sys.executable, script, "--case", "ieee13:3", "--results", str(tmp_path)]
    # GradMAP's run was killed before its first checkpoint: one metrics row, no
    # checkpoint. The same command starts it afresh instead of refusing the folder.
    killed = tmp_path / "runs" / "ieee13_3" / "gradmap_seed0"
    killed.mkdir(parents=True)
    (killed / "metrics.jsonl").write_text('{"step": 1, "cost": 1e9}\n')
    done = subprocess.run(
        [*base, "--seeds", "0", "--tiny"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((tmp_path / "paper_ieee13_3.json").read_text())
    assert set(report["gradmap_speedup"]) == set(METHODS) - {"gradmap"}
    # the methods that reuse a cached gradient report their inner updates per step
    inner = report["per_seed"]["0"]["inner_updates"]
    assert set(inner) == {"gradmap", "gradma_rpo"}
    for made in inner.values():
        assert 1 <= made["p10"] <= made["median"] <= made["p90"]
        assert 0 <= made["single_update_share"] <= 1
    table = report["held_out_median_over_seeds"]
    assert set(table) == {*METHODS, "naive"}
    for figures in table.values():
        assert math.isfinite(figures["cost_total"]) and figures["cost_total"] > 0
        assert figures["failed_days"] == 0
    for m in METHODS:
        run = json.loads(
            (tmp_path / "paper" / "ieee13_3" / f"{m}_seed0.json").read_text()
        )
        assert len(run["metrics"]["cost"]) == 6  # 2 dual x 3 primal steps
        assert max(run["metrics"]["cost"]) < 1e9  # the killed run's row is gone
        assert len(run["held_out"]["policy"]["daily_cost"]) == 2
        # the naive rule's held-out days are the same whoever trained
        np.testing.assert_allclose(
            run["held_out"]["naive"]["cost_total"], table["naive"]["cost_total"]
        )
    for name in ("curves", "cumulative_cost"):  # titled with the case and seed
        title = Image.open(tmp_path / f"paper_ieee13_3_{name}.png").text["Title"]
        assert "ieee13, 3 homes" in title and "seed 0" in title, title
    done = subprocess.run(
        [*base, "--agents-figure", "ieee13:3"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    title = Image.open(tmp_path / "paper_agents.png").text["Title"]
    assert title.startswith("GradMAP's wall-clock speed-up"), title
    # MAPPO's two critic designs side by side (the shared one's run is reused)
    done = subprocess.run(
        [*base, "--critics", "--tiny", "--seeds", "0"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads((tmp_path / "paper_critics_ieee13_3.json").read_text())
    assert out["schedule"] == [2, 3] and out["seeds"] == [0]
    shared, per_agent = out["designs"]["mappo"], out["designs"]["mappo_per_agent"]
    # one critic for all agents against one per agent, each fed all observations
    # (3 agents x 8): the per-agent design holds about three times the critic
    assert (
        per_agent["parameters_actors_and_critic"]
        > 2 * (shared["parameters_actors_and_critic"])
    )
    for design in (shared, per_agent):
        assert design["seconds_per_primal_step"] > 0 and design["peak_rss_mb"] > 0
        seed = design["per_seed"]["0"]
        assert all(math.isfinite(v) for v in seed.values())
        assert seed["held_out_cost"] > 0
    run = json.loads(
        (tmp_path / "paper" / "ieee13_3" / "mappo_per_agent_seed0.json").read_text()
    )
    assert len(run["metrics"]["explained_variance"]) == 6
    title = Image.open(tmp_path / "paper_critics_ieee13_3.png").text["Title"]
    assert title.startswith("MAPPO's critic designs on ieee13, 3 homes"), title
    # --report redraws from the stored runs and the stored measurements: the same
    # seconds per step, not a new measurement
    stored = tmp_path / "paper_scale_ieee13_3_mappo.json"
    point = json.loads(stored.read_text())
    stored.write_text(json.dumps({**point, "seconds_per_primal_step": 123.0}))
    done = subprocess.run(
        [*base, "--critics", "--tiny", "--seeds", "0", "--report"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    again = json.loads((tmp_path / "paper_critics_ieee13_3.json").read_text())
    assert again["designs"]["mappo"]["seconds_per_primal_step"] == 123.0
    assert again["designs"]["mappo_per_agent"] == per_agent


def test_paper_benchmark_variant_is_mappo_with_per_agent_critics():
    from gridflex.training import MAPPO

    paper = load_benchmark("paper")

    trainer = paper._trainer("mappo_per_agent", 16, tiny=False)
    assert isinstance(trainer, MAPPO) and trainer.critic == "per_agent"
    assert (
        trainer.batch == 16 and paper._trainer("mappo", None, False).critic == "shared"
    )
    assert "mappo_per_agent" in paper.CHOICES
    assert paper.display("mappo_per_agent") == "MAPPO, per-agent critics"
    assert paper.display("gradma_rpo") == "GradMA-RPO"
    # a shortened schedule (--dual-steps) keeps the primal steps and names its folder
    short = paper._trainer("ippo", 16, tiny=False, dual_steps=3)
    assert (short.n_dual, short.n_primal) == (3, 30)
    assert paper._name("ieee13:10", 16, 3) == "ieee13_10_b16_d3"
    assert paper._name("ieee13:10", None) == "ieee13_10"
