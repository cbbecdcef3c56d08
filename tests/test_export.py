"""Exported policies: every home's ONNX model and NumPy artefact act as gridflex's
deterministic policy does on the observations a held-out day produced, from the
measurements in physical units; bad input gets a one-line error."""

import functools
import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import onnxruntime
import pytest

import gridflex as gf
from gridflex.env import make_environment, PolicyController
from gridflex.export import deterministic_actions, export_policies, numpy_act
from gridflex.policies import GaussianMLPPolicy


@functools.cache
def setting():
    env = make_environment(gf.feeders.ieee13(taps="homes"), 10, seed=0)
    # Outputs of order one, so that the clip at [-1, 1] binds for some steps.
    policy = GaussianMLPPolicy.init(jax.random.key(3), env.n_agents, output_scale=8.0)
    day = jnp.array([4])
    r = eqx.filter_jit(
        lambda e, p: e.rollout(
            PolicyController(p, deterministic=True),
            e.zero_lambdas(),
            jax.random.key(0),
            day,
            split="test",
            record=True,
        )
    )(env, policy)
    assert r.episodes.trace is not None and r.episodes.trace.obs is not None
    obs = np.asarray(r.episodes.trace.obs[0])  # [step, agent, 8]
    # The measurements a home controller has, in physical units, taken from the
    # day's data (not from the observations) where the data has them.
    x = env.day_inputs(day[0], "test")
    raw = np.empty_like(obs)
    raw[..., 0] = np.asarray(x.t)[:, None] * env.config.dt_h
    raw[..., 1] = obs[..., 1]  # the device's own formula (manifest)
    raw[..., 2] = np.asarray(x.load_kw - x.pv_kw)
    raw[..., 3] = np.asarray(x.price_import)[:, None]
    raw[..., 4] = np.asarray(x.price_export)[:, None]
    raw[..., 5] = np.asarray(x.temperature_c)[:, None]
    raw[..., 6] = obs[..., 6]  # the device's own formula (manifest)
    raw[..., 7] = 0.9 + 0.2 * obs[..., 7]  # the local voltage at the previous step
    return env, policy, obs, raw


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    env, policy, _, _ = setting()
    out = tmp_path_factory.mktemp("export")
    return out, export_policies(env, policy, out, source={"test": True})


def test_actions_match_gridflex_from_physical_measurements(exported):
    env, policy, obs, raw = setting()
    out, manifest_path = exported
    expected = deterministic_actions(policy, obs)  # [step, agent]
    assert 0.05 < np.mean(np.abs(expected) == 1.0) < 0.95  # the clip is exercised
    manifest = json.loads(manifest_path.read_text())
    for i, home in enumerate(manifest["homes"]):
        params = dict(np.load(out / home["files"]["numpy"]))
        action, command = numpy_act(params, raw[:, i])
        np.testing.assert_allclose(action, expected[:, i], rtol=1e-9, atol=1e-12)
        session = onnxruntime.InferenceSession(str(out / home["files"]["onnx"]))
        a_onnx, c_onnx = session.run(None, {"inputs": raw[:, i].astype(np.float32)})
        np.testing.assert_allclose(a_onnx[:, 0], expected[:, i], atol=2e-5)
        # float32: the action's rounding, times the command range
        span = float(np.diff(params["command_kw"])[0])
        np.testing.assert_allclose(c_onnx[:, 0], command, rtol=0, atol=2e-5 * span)
    # the command is the device's own decoding of the action
    kind = manifest["homes"][0]["device"]["kind"]
    dev = env.population.groups[kind]
    j = int(np.flatnonzero(np.asarray(env.homes(kind)) == 0)[0])
    one = jax.tree.map(
        lambda leaf: leaf[j] if isinstance(leaf, jax.Array) else leaf, dev
    )
    params = dict(np.load(out / "home_0.npz"))
    a0, c0 = numpy_act(params, raw[10, 0])
    np.testing.assert_allclose(c0, float(one.decode(jnp.asarray(a0))), rtol=1e-9)


def test_manifest_says_which_home_is_which(exported):
    env, _, _, _ = setting()
    _, manifest_path = exported
    manifest = json.loads(manifest_path.read_text())
    assert [h["home"] for h in manifest["homes"]] == [
        f"home_{i}" for i in range(env.n_agents)
    ]
    table = env.placement.table()
    assert [h["node"] for h in manifest["homes"]] == [str(n) for n in table["node"]]
    assert [x["name"] for x in manifest["inputs"]][:3] == [
        "time_of_day_h",
        "device_state",
        "net_demand_kw",
    ]
    for home in manifest["homes"]:
        device = home["device"]
        assert device["kind"] in env.kinds and device["parameters"]
        assert (
            device["device_state"] and device["command_kw"][0] < device["command_kw"][1]
        )
    assert manifest["source"] == {"test": True}


def test_export_refuses_what_it_cannot_write(tmp_path, capsys):
    env, policy, _, _ = setting()
    with pytest.raises(ValueError, match="formats="):
        export_policies(env, policy, tmp_path, formats=("tflite",))
    from gridflex.cli import main

    assert main(["export", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not a training run" in err[0]
