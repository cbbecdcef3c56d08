"""Episodes spread over devices (`fit(..., devices=N)`, `gridflex train --devices N`):
a rollout's gradient (on 1 and 4 devices) and the same GradMAP training on 1, 2 and
4 devices give the same values and parameters to float rounding (GradMAP's
Gauss–Newton inverse once deadlocked jaxlib's batched CPU LAPACK on several devices),
and the batch really is split. Forced host devices need `XLA_FLAGS` before JAX is
imported, so the runs happen in a subprocess."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from gridflex.runs import read_metrics

from .helpers import train_process


SCRIPT = """
import json, sys
import equinox as eqx, jax, numpy as np
jax.config.update("jax_enable_x64", True)
import gridflex as gf
from gridflex.env import make_environment, PolicyController
from gridflex.policies import GaussianMLPPolicy
from gridflex.training import GradMAP, fit, mesh_for

assert len(jax.devices()) == 4
env = make_environment(gf.feeders.ieee13(taps="homes"), 4, seed=0)
trainer = GradMAP(n_dual=1, n_primal=3, batch=4, inner_steps=5)
out = {}
# the gradient of a rollout's Lagrangian w.r.t. every output, episodes sharded
controller = PolicyController(GaussianMLPPolicy.init(jax.random.key(3), 4))
lambdas = {c: jax.numpy.asarray(0.5) for c in env.channels}
shift = jax.numpy.zeros((4, env.config.n_steps, 4, 2))
lagrangian = lambda s: env.rollout(
    controller, lambdas, jax.random.key(4), jax.numpy.arange(4), shift=s
).lagrangian
# (computed on 1 and 4 devices, lowered only on 2, to keep the suite's time: the
# training below runs on all three)
gradients, lowered_text = {}, {}
for n in (1, 2, 4):
    with jax.set_mesh(gf.env.episode_mesh(n)):
        lowered = jax.jit(jax.grad(lagrangian)).lower(shift)
        lowered_text[n] = lowered.as_text()  # the layout asked of XLA
        if n != 2:
            gradients[n] = np.ravel(lowered.compile()(shift)).tolist()
for n in (1, 2, 4):
    r = fit(env, trainer, key=jax.random.key(0), progress=False, devices=n)
    leaves = jax.tree.leaves(eqx.filter(r.state.policy, eqx.is_array))
    out[n] = {
        "params": np.concatenate([np.ravel(x) for x in leaves]).tolist(),
        "cost": [m["cost"] for m in r.metrics],
        "rollout_gradient": gradients.get(n),
    }
# by default all devices, or the most of them that divide the batch
out["default"] = [mesh_for(GradMAP(batch=b)).devices.size for b in (8, 6, 5)]
out["episode_mesh"] = [gf.env.episode_mesh(batch=b).devices.size for b in (8, 6, 5)]
# a one-device mesh is entered as no mesh at all; a larger one is set
with gf.env.use_mesh(gf.env.episode_mesh(1)):
    out["one_device_mesh_set"] = not jax.sharding.get_abstract_mesh().empty
with gf.env.use_mesh(gf.env.episode_mesh(2)):
    out["two_device_mesh_set"] = not jax.sharding.get_abstract_mesh().empty
out["sharding"] = any(
    "sharding_constraint" in line and '[{"episodes"}' in line
    for line in lowered_text[2].splitlines()
)
try:
    fit(env, GradMAP(n_dual=1, n_primal=1, batch=5), key=jax.random.key(0),
        progress=False, devices=2)
except ValueError as e:
    out["refused"] = str(e)
json.dump(out, sys.stdout)
"""


@pytest.mark.slow
def test_training_agrees_on_one_two_and_four_devices():
    flags = "--xla_force_host_platform_device_count=4"
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=flags)
    run = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    one = out["1"]
    assert one["cost"][0] != one["cost"][-1]  # the steps did something
    assert max(map(abs, one["rollout_gradient"])) > 0  # the gradient is not trivial
    assert out["4"]["rollout_gradient"] == pytest.approx(
        one["rollout_gradient"], rel=1e-9, abs=1e-12
    )
    for n in ("2", "4"):
        assert out[n]["cost"] == pytest.approx(one["cost"], rel=1e-12)
        assert out[n]["params"] == pytest.approx(one["params"], rel=1e-9, abs=1e-12)
    assert out["default"] == [4, 3, 1]
    assert out["episode_mesh"] == [4, 3, 1]  # the rule lives in `episode_mesh`
    assert out["one_device_mesh_set"] is False
    assert out["two_device_mesh_set"] is True
    assert out["sharding"] is True  # the batch was split over the devices
    assert "batch = 5 episodes do not split over 2 devices" in out["refused"]
    assert "spreading episodes over 2 CPU devices" in run.stderr  # it says so


def _cli_train(out, *extra: str) -> subprocess.Popen:
    settings = {"batch": 4, "n_dual": 1, "n_primal": 3}
    return train_process(out, "gradma", settings, *extra, stderr=subprocess.PIPE)


def _hosts(out, *extra: str) -> None:
    """One run over two processes on localhost, as on a cluster without a manager."""
    with socket.socket() as s:  # a free port for the coordinator
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    procs = [
        _cli_train(
            out,
            "--coordinator",
            f"localhost:{port}",
            "--num-processes",
            "2",
            "--process-id",
            str(i),
            *extra,
        )  # fmt: skip
        for i in range(2)
    ]
    for p in procs:
        _finish(p)


def _finish(p: subprocess.Popen) -> None:
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-3000:]


@pytest.mark.slow
def test_two_processes_train_and_resume_as_one(tmp_path):
    """`jax.distributed` on localhost (Gloo collectives on CPU): two processes, one
    device each, train as one process does, process 0 alone writes the run, and
    both resume from its checkpoint."""
    single = _cli_train(tmp_path / "single")  # beside the two-process run
    _hosts(tmp_path / "hosts", "--max-steps", "2")
    _finish(single)
    assert [r["step"] for r in read_metrics(tmp_path / "hosts")] == [1, 2]
    _hosts(tmp_path / "hosts", "--resume")
    one, two = read_metrics(tmp_path / "single"), read_metrics(tmp_path / "hosts")
    assert [r["step"] for r in two] == [1, 2, 3]
    for a, b in zip(one, two, strict=True):
        assert b["cost"] == pytest.approx(a["cost"], rel=1e-5)
    assert one[0]["cost"] != one[-1]["cost"]
    ckpts = sorted(p.name for p in (tmp_path / "hosts" / "checkpoints").iterdir())
    assert ckpts[-1] == "latest" and "checkpoint_000000003.npz" in ckpts
    # and they end where one process does: every array of the final state
    # (parameters, optimiser moments, duals, PRNG state), to float32 rounding
    single_state = _checkpoint_arrays(tmp_path / "single")
    hosts_state = _checkpoint_arrays(tmp_path / "hosts")
    assert single_state.keys() == hosts_state.keys() and single_state
    for name, value in single_state.items():
        np.testing.assert_allclose(hosts_state[name], value, rtol=1e-5, atol=1e-7)


def _checkpoint_arrays(run) -> dict[str, np.ndarray]:
    """Every array of a run's step-3 checkpoint, by its place in the state."""
    with np.load(run / "checkpoints" / "checkpoint_000000003.npz") as saved:
        return {k: saved[k] for k in saved.files if k.startswith("leaf_")}
