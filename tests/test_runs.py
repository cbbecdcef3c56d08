"""Runs: bit-exact checkpoints of any pytree, atomicity under injected failures,
structure errors, durable metrics, checked configuration, the progress line."""

import io
import os
import tomllib
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, strategies as st
from jaxtyping import Array

import gridflex.runs as gr
from gridflex.policies import GaussianMLPPolicy, sample_actions


class Holder(eqx.Module):
    """A module with an array, a function leaf and a static field."""

    w: Array
    fn: Callable
    name: str = eqx.field(static=True)


def make_state(hidden=(16,), dtype=jnp.float64):
    rng = np.random.default_rng(0)
    policy = GaussianMLPPolicy.init(jax.random.key(0), 4, hidden=hidden)
    opt = optax.adam(1e-3)
    opt_state = opt.init(eqx.filter(policy, eqx.is_array))
    grads = jax.tree.map(lambda x: jnp.ones(x.shape, x.dtype), policy)
    # Optax's bias correction raises a float to an int32 power: not strict-clean.
    with jax.numpy_dtype_promotion("standard"):
        _, opt_state = jax.jit(opt.update)(grads, opt_state)  # count, mu, nu != 0
    # Awkward bits: NaN, -0.0, a subnormal, infinities.
    odd = np.array([np.nan, -0.0, 5e-324, np.inf, -np.inf, 1 / 3])
    return dict(
        policy=policy,
        opt_state=opt_state,
        key=jax.random.key(7),
        keys=jax.random.split(jax.random.key(8), 3),
        rbg_key=jax.random.key(9, impl="rbg"),
        duals={"voltage": jnp.asarray(150.0, dtype), "battery": jnp.zeros((), dtype)},
        beta=jnp.asarray(1.0),  # weakly typed
        counters=(3, jnp.asarray(7, jnp.int32), np.int64(11)),
        numpy=rng.normal(size=(2, 3)),
        odd=(jnp.asarray(odd), jnp.asarray(odd.astype(np.float32))),
        flags=(True, 0.25),
        holder=Holder(
            jnp.asarray(rng.normal(size=4).astype(np.float32)), jnp.tanh, "h"
        ),
    )


@pytest.fixture(scope="module")
def state():
    return make_state()


def abstract_state(**kwargs):
    """The structure of `make_state(**kwargs)`, without computing it."""
    return eqx.filter_eval_shape(lambda: make_state(**kwargs))


def bits(x):
    if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
        return str(jax.random.key_impl(x)), np.asarray(jax.random.key_data(x)).tobytes()
    a = np.asarray(x)
    return a.dtype.str, a.shape, a.tobytes()


def assert_bit_exact(restored, original, *, same_types=True):
    assert jax.tree.structure(restored) == jax.tree.structure(original)
    for r, o in zip(jax.tree.leaves(restored), jax.tree.leaves(original)):
        assert (
            not same_types
            or type(r) is type(o)
            or (isinstance(r, jax.Array) and isinstance(o, jax.Array))
        )
        if callable(o) and not isinstance(o, jax.Array):
            assert r is o
            continue
        assert bits(r) == bits(o)
        if isinstance(o, jax.Array):
            assert getattr(r, "weak_type", None) == getattr(o, "weak_type", None)


# --- checkpoints ------------------------------------------------------------------


def test_round_trip_is_bit_exact(tmp_path, state):
    meta = {"wall_s": 12.5, "config_hash": "abc", "nested": [1, 2]}
    path = gr.save_checkpoint(tmp_path, state, step=42, metadata=meta)
    assert path == tmp_path / "checkpoint_000000042.npz"
    assert gr.latest_checkpoint(tmp_path) == path
    like = jax.tree.map(lambda x: x, state)  # same structure, other containers
    restored, step, metadata = gr.load_checkpoint(tmp_path, like)
    assert step == 42 and metadata == meta
    assert_bit_exact(restored, state)
    assert str(jax.random.key_impl(restored["rbg_key"])) == "rbg"
    # A file path works as well as the directory.
    again, _, _ = gr.load_checkpoint(path, state)
    assert_bit_exact(again, state)


def test_round_trip_into_abstract_like(tmp_path, state):
    # `like` may be eqx.filter_eval_shape of the trainer's init: no arrays needed.
    gr.save_checkpoint(tmp_path, state, step=1)
    like = abstract_state()
    restored, _, _ = gr.load_checkpoint(tmp_path, like)
    # NumPy leaves are abstract arrays in `like`, so they come back as JAX arrays.
    assert_bit_exact(restored, state, same_types=False)
    assert isinstance(restored["numpy"], jax.Array)


def test_float32_round_trip(tmp_path):
    state = {"x": jnp.asarray(np.random.default_rng(1).normal(size=5), jnp.float32)}
    gr.save_checkpoint(tmp_path, state, step=0)
    restored, _, _ = gr.load_checkpoint(tmp_path, state)
    assert_bit_exact(restored, state)


@given(cut=st.floats(0.0, 0.999), flip=st.booleans())
def test_damaged_latest_checkpoint_is_named_and_skipped(tmp_path_factory, cut, flip):
    """Any truncation of the newest checkpoint (or a flipped byte inside it) is
    reported by name, and the state comes back from the newest intact one."""
    folder = tmp_path_factory.mktemp("ckpt")
    old = {"x": jnp.arange(300.0), "k": jax.random.key(1)}
    new = {"x": jnp.arange(300.0) + 1, "k": jax.random.key(2)}
    gr.save_checkpoint(folder, old, step=1)
    gr.save_checkpoint(folder, new, step=2)
    latest = folder / "checkpoint_000000002.npz"
    raw = latest.read_bytes()
    if flip:  # corrupt the stored data, keep the length
        at = int(cut * (len(raw) - 1))
        latest.write_bytes(raw[:at] + bytes([raw[at] ^ 0xFF]) + raw[at + 1 :])
    else:
        latest.write_bytes(raw[: int(cut * len(raw))])
    try:
        with pytest.warns(gr.DamagedCheckpointWarning, match="checkpoint_000000002"):
            restored, step, _ = gr.load_checkpoint(folder, new)
    except pytest.fail.Exception:
        # a flipped byte in padding or in a name can leave the file readable and
        # its values intact: then it must load as the newest, bit for bit
        assert flip
        restored, step, _ = gr.load_checkpoint(folder, new)
        assert step == 2
        assert_bit_exact(restored, new)
        return
    assert step == 1
    assert_bit_exact(restored, old)


def test_no_intact_checkpoint_is_an_error(tmp_path):
    gr.save_checkpoint(tmp_path, {"x": jnp.arange(3.0)}, step=1)
    (tmp_path / "checkpoint_000000001.npz").write_bytes(b"PK\x03\x04 torn")
    with pytest.raises(ValueError, match="no intact checkpoint.*checkpoint_000000001"):
        gr.load_checkpoint(tmp_path, {"x": jnp.arange(3.0)})


def test_keep_last_n_and_abandoned_branch(tmp_path):
    state = {"x": jnp.arange(3.0)}
    for step in range(1, 6):
        gr.save_checkpoint(tmp_path, state, step=step, keep=2)
    assert [s for s, _ in gr.list_checkpoints(tmp_path)] == [4, 5]
    assert gr.latest_checkpoint(tmp_path) == tmp_path / "checkpoint_000000005.npz"
    # Resumed from step 4: its step-5 checkpoint belongs to an abandoned future.
    gr.save_checkpoint(tmp_path, state, step=4, keep=2)
    assert [s for s, _ in gr.list_checkpoints(tmp_path)] == [4]
    gr.save_checkpoint(tmp_path, state, step=6, keep=None)
    assert [s for s, _ in gr.list_checkpoints(tmp_path)] == [4, 6]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "checkpoint_000000004.npz",
        "checkpoint_000000006.npz",
        "latest",
    ]


@pytest.mark.parametrize("fail_at", ["checkpoint", "pointer", "savez"])
def test_failure_mid_save_keeps_previous(tmp_path, monkeypatch, fail_at):
    old = {"x": jnp.arange(3.0), "step": 1}
    new = {"x": jnp.arange(3.0) + 10, "step": 2}
    first = gr.save_checkpoint(tmp_path, old, step=1)

    real_replace, real_savez = os.replace, np.savez
    calls = []

    def replace(src, dst):
        calls.append(dst)
        if fail_at == "checkpoint" or (fail_at == "pointer" and len(calls) == 2):
            raise OSError("disk full (injected)")
        real_replace(src, dst)

    def savez(f, **arrays):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError("killed (injected)")

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(np, "savez", savez if fail_at == "savez" else real_savez)
    with pytest.raises(OSError, match="injected"):
        gr.save_checkpoint(tmp_path, new, step=2)
    monkeypatch.undo()

    # No temporary file is left behind, and `latest` still names the old checkpoint.
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert (tmp_path / "latest").read_text().strip() == first.name
    if fail_at == "pointer":  # the new checkpoint is whole: resume from it
        assert gr.latest_checkpoint(tmp_path) == tmp_path / "checkpoint_000000002.npz"
        assert gr.load_checkpoint(tmp_path, old)[1] == 2
        return
    assert gr.latest_checkpoint(tmp_path) == first
    restored, step, _ = gr.load_checkpoint(tmp_path, old)
    assert step == 1 and restored["step"] == 1
    np.testing.assert_array_equal(restored["x"], old["x"])
    # And the run carries on.
    gr.save_checkpoint(tmp_path, new, step=2)
    assert gr.load_checkpoint(tmp_path, old)[1] == 2


def test_latest_without_pointer_and_stale_temporaries(tmp_path):
    assert gr.latest_checkpoint(tmp_path / "missing") is None
    assert gr.latest_checkpoint(tmp_path) is None
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        gr.load_checkpoint(tmp_path, {})
    state = {"x": jnp.zeros(2)}
    gr.save_checkpoint(tmp_path, state, step=3)
    gr.save_checkpoint(tmp_path, state, step=8)
    (tmp_path / "latest").unlink()  # killed between the checkpoint and the pointer
    assert gr.latest_checkpoint(tmp_path) == tmp_path / "checkpoint_000000008.npz"
    (tmp_path / "latest").write_text("checkpoint_000000099.npz\n")  # stale
    assert gr.latest_checkpoint(tmp_path) == tmp_path / "checkpoint_000000008.npz"
    (tmp_path / "latest").write_text("checkpoint_000000003.npz\n")  # one behind
    assert gr.latest_checkpoint(tmp_path) == tmp_path / "checkpoint_000000008.npz"
    # A temporary file from a killed writer is cleaned up by the next save.
    (tmp_path / ".checkpoint_000000009.npz.abc.tmp").write_bytes(b"partial")
    gr.save_checkpoint(tmp_path, state, step=9)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_structure_mismatch_names_the_leaf(tmp_path, state):
    gr.save_checkpoint(tmp_path, state, step=1)
    with pytest.raises(
        ValueError, match=r"mlp\.layers\[0\]\.weight.*saved shape \(4, 16, 8\)"
    ):
        gr.load_checkpoint(tmp_path, abstract_state(hidden=(8,)))
    with pytest.raises(
        ValueError, match=r"mlp\.layers\[2\]\.weight is in `like` but not"
    ):
        gr.load_checkpoint(tmp_path, abstract_state(hidden=(8, 8)))
    with pytest.raises(
        ValueError, match=r"\['duals'\]\['battery'\].*saved dtype float64.*float32"
    ):
        gr.load_checkpoint(tmp_path, abstract_state(dtype=jnp.float32))
    like = abstract_state()
    like["duals"]["generator"] = jax.ShapeDtypeStruct((), jnp.float64)
    with pytest.raises(ValueError, match=r"\['duals'\]\['generator'\] is in `like`"):
        gr.load_checkpoint(tmp_path, like)
    like = abstract_state()
    like["key"] = jax.ShapeDtypeStruct((2,), jnp.uint32)
    with pytest.raises(ValueError, match=r"\['key'\].*typed PRNG key"):
        gr.load_checkpoint(tmp_path, like)
    like = abstract_state()
    like["rbg_key"] = jax.random.key(9)  # concrete: its implementation is known
    with pytest.raises(ValueError, match=r"\['rbg_key'\].*implementation rbg"):
        gr.load_checkpoint(tmp_path, like)


def test_bad_saves_raise(tmp_path):
    with pytest.raises(ValueError, match="step"):
        gr.save_checkpoint(tmp_path, {}, step=-1)
    with pytest.raises(ValueError, match="keep"):
        gr.save_checkpoint(tmp_path, {}, step=1, keep=0)
    with pytest.raises(TypeError, match="JSON"):
        gr.save_checkpoint(tmp_path, {}, step=1, metadata={"x": jnp.zeros(2)})
    with pytest.raises(TypeError, match="tracer"):
        jax.jit(lambda x: gr.save_checkpoint(tmp_path, {"x": x}, step=1))(jnp.ones(2))
    assert gr.latest_checkpoint(tmp_path) is None


# --- metrics ----------------------------------------------------------------------


def test_metrics_round_trip_and_append(tmp_path):
    with gr.MetricsWriter(tmp_path) as w:  # a directory means metrics.jsonl in it
        w.write({"step": 1, "wall_s": 0.5, "cost": np.float32(2.5)})
        w.write({"step": 2, "wall_s": 1.0, "cost": jnp.asarray(3.0), "v": np.ones(2)})
    path = tmp_path / gr.METRICS_FILE
    with gr.MetricsWriter(path) as w:  # a resumed run appends, never truncates
        w.write({"step": 3, "wall_s": 1.5, "cost": float("nan")})
    rows = gr.read_metrics(path)
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert rows[0]["cost"] == 2.5 and rows[1]["v"] == [1.0, 1.0]
    assert np.isnan(rows[2]["cost"])
    assert [r["step"] for r in gr.read_metrics(tmp_path, max_step=2)] == [1, 2]
    with pytest.raises(ValueError, match="closed"):
        w.write({"step": 4})
    with gr.MetricsWriter(path) as w, pytest.raises(TypeError, match="object"):
        w.write({"step": 5, "x": object()})
    assert len(gr.read_metrics(path)) == 3


def test_metrics_are_fsynced_per_line(tmp_path, monkeypatch):
    synced = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    with gr.MetricsWriter(tmp_path / "m.jsonl") as w:
        for step in range(3):
            w.write({"step": step})
    assert len(synced) == 3


def test_metrics_torn_last_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    with gr.MetricsWriter(path) as w:
        w.write({"step": 1, "cost": 1.0})
        w.write({"step": 2, "cost": 2.0})
    with open(path, "a") as f:
        f.write('{"step": 3, "co')  # killed mid-write
    assert [r["step"] for r in gr.read_metrics(path)] == [1, 2]
    with gr.MetricsWriter(path) as w:  # the torn fragment goes before appending
        w.write({"step": 3, "cost": 3.0})
    assert [r["step"] for r in gr.read_metrics(path)] == [1, 2, 3]
    assert path.read_text().count("\n") == 3
    # A terminated but garbled last line (zeros from a lost block) is torn too...
    with open(path, "a") as f:
        f.write("\0\0\0\n")
    assert len(gr.read_metrics(path)) == 3
    # ...but damage before the last line is corruption, and says where.
    path.write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(ValueError, match="line 2"):
        gr.read_metrics(path)


def test_metrics_truncate_after_step(tmp_path):
    path = tmp_path / "metrics.jsonl"
    with gr.MetricsWriter(path) as w:
        w.write({"event": "start"})
        for step in range(1, 6):
            w.write({"step": step, "cost": float(step)})
    # The run died after step 5; its last checkpoint was at step 3.
    with gr.MetricsWriter(path, truncate_after_step=3) as w:
        assert [r.get("step") for r in gr.read_metrics(path)] == [None, 1, 2, 3]
        for step in range(4, 7):
            w.write({"step": step, "cost": 10.0 * step})
    rows = gr.read_metrics(path)
    assert [r.get("step") for r in rows] == [None, 1, 2, 3, 4, 5, 6]
    assert rows[-1]["cost"] == 60.0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# --- configuration ----------------------------------------------------------------

DEFAULTS = {
    "seed": 0,
    "run": {"dir": "runs/x", "checkpoint_every": 5, "resume": False},
    "trainer": {"name": "gradmap", "lr": 1e-3, "hidden": [16], "max_wall_s": None},
    "env": {"feeder": {"name": "ieee13", "n_agents": 10}},
}


def test_config_file_and_overrides(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text(
        "seed = 3\n"
        "[trainer]\nlr = 1\nhidden = [32, 32]\n"
        '[env.feeder]\nname = "ieee123"\n'
    )
    cfg = gr.load_config(
        toml,
        {"trainer.lr": 3e-3, "run.resume": "true", "env.feeder.n_agents": "1000"},
        defaults=DEFAULTS,
    )
    assert cfg["seed"] == 3
    assert cfg["trainer"] == {
        "name": "gradmap",
        "lr": 3e-3,
        "hidden": [32, 32],
        "max_wall_s": None,
    }
    assert cfg["run"]["resume"] is True and cfg["env"]["feeder"]["n_agents"] == 1000
    assert cfg["env"]["feeder"]["name"] == "ieee123"
    # The file's int went to a float setting as a float; defaults are untouched.
    assert gr.load_config(toml, defaults=DEFAULTS)["trainer"]["lr"] == 1.0
    assert DEFAULTS["trainer"]["hidden"] == [16]
    assert (
        gr.load_config(None, {"trainer": {"lr": 0.5}}, defaults=DEFAULTS)["trainer"][
            "lr"
        ]
        == 0.5
    )
    assert gr.parse_override("trainer.hidden=[8, 8]") == ("trainer.hidden", [8, 8])
    assert gr.parse_override(" trainer.name = ippo") == ("trainer.name", "ippo")


@pytest.mark.parametrize(
    "overrides, error, match",
    [
        (
            {"trainer.lrr": 1.0},
            ValueError,
            r"did you mean 'trainer\.lr'.*trainer\.hidden",
        ),
        (
            {"trainr.lr": 1.0},
            ValueError,
            r"unknown config key 'trainr\.lr'.*Valid keys",
        ),
        ({"seed.x": 1}, ValueError, "unknown config key 'seed.x'"),
        ({"trainer.lr": "fast"}, TypeError, r"'trainer\.lr'.*must be a float.*'fast'"),
        ({"seed": 1.5}, TypeError, "must be a int"),
        ({"run.resume": 1}, TypeError, "must be a bool"),
        ({"trainer.hidden": [16, "a"]}, TypeError, r"trainer\.hidden\[1\]"),
        ({"trainer": 3}, TypeError, "is a table"),
    ],
)
def test_config_errors(overrides, error, match):
    with pytest.raises(error, match=match):
        gr.load_config(None, overrides, defaults=DEFAULTS)


def test_config_file_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[trainer]\nlearning_rate = 1e-3\n")
    with pytest.raises(ValueError, match=rf"learning_rate.*{bad.name}"):
        gr.load_config(bad, defaults=DEFAULTS)
    bad.write_text("[trainer\n")
    with pytest.raises(ValueError, match="config file"):
        gr.load_config(bad, defaults=DEFAULTS)
    with pytest.raises(TypeError, match="default"):
        gr.load_config(None, defaults={"x": object()})


def test_save_config_round_trip(tmp_path):
    cfg = gr.load_config(None, {"trainer.max_wall_s": 900.0}, defaults=DEFAULTS)
    cfg["extra"] = {
        "text": 'quote " backslash \\ newline \n tab \t del \x7f unicode °C',
        "weird key": [1.5, float("inf"), -float("inf")],
        "big": 1e300,
        "tiny": 5e-324,
        "empty": {},
    }
    path = gr.save_config(tmp_path, cfg)
    assert path == tmp_path / "config.toml"
    back = tomllib.loads(path.read_text())
    assert back == cfg
    # A saved run's config.toml loads back through the same checks.
    defaults = DEFAULTS | {"extra": cfg["extra"]}
    assert gr.load_config(path, defaults=defaults) == cfg
    with pytest.raises(TypeError, match="cannot be written as TOML"):
        gr.to_toml({"x": {"y": [{"a": 1}]}})


# --- progress ---------------------------------------------------------------------


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


class Terminal(io.StringIO):
    def isatty(self):
        return True


FIELDS = {"dual": (3, 20), "primal": (7, 10), "cost": 123.4, "V": np.float64(0.012)}


def test_progress_line_in_a_log():
    clock, out = FakeClock(), io.StringIO()
    bar = gr.ProgressBar(out, clock=clock)
    clock.t += 83
    bar.update(FIELDS)
    clock.t += 0.01
    bar.update(FIELDS | {"cost": jnp.asarray(99.5)})
    bar.close()
    lines = out.getvalue().splitlines()
    assert lines == [
        "dual 3/20 primal 7/10 | cost 123.4 | V 0.012 | 01:23 elapsed",
        "dual 3/20 primal 7/10 | cost 99.5 | V 0.012 | 01:23 elapsed",
    ]
    assert "\r" not in out.getvalue()


def test_progress_line_on_a_terminal():
    clock, out = FakeClock(), Terminal()
    with gr.ProgressBar(out, clock=clock, elapsed_offset_s=3600) as bar:
        bar.update({"step": (1, 5), "cost": 1234567.0})
        clock.t += 0.01
        bar.update({"step": (2, 5), "cost": 2.0})  # held back: too soon
        assert "2/5" not in out.getvalue()
        clock.t += 1
        bar.update({"step": (3, 5), "cost": 3.0, "note": "ok"})
        clock.t += 0.01
        bar.update({"step": (4, 5), "cost": 4.0})
    text = out.getvalue()
    assert text.startswith("\rstep 1/5 | cost 1.235e+06 | 1:00:00 elapsed")
    assert text.count("\r") == 3 and text.endswith("\n") and text.count("\n") == 1
    assert "step 3/5 | cost 3 | note ok | 1:00:01 elapsed" in text
    assert text.rstrip().endswith("step 4/5 | cost 4 | 1:00:01 elapsed")
    assert gr.format_elapsed(59.9) == "00:59"


def test_progress_defaults_to_stderr(capsys):
    gr.ProgressBar().update({"x": 1})
    assert "x 1 | 00:00 elapsed" in capsys.readouterr().err


# --- kill and resume, end to end ----------------------------------------------------

OPT = optax.adam(1e-2)


def init_training():
    policy = GaussianMLPPolicy.init(jax.random.key(0), 4)
    arrays = dict(
        policy=policy,
        opt_state=OPT.init(eqx.filter(policy, eqx.is_array)),
        key=jax.random.key(1),
        dual=jnp.zeros(()),
    )
    # Committed to a device like the step's outputs, so the step compiles only once.
    return jax.device_put(arrays, jax.devices()[0]) | {"step": 0}


@eqx.filter_jit
def train_step(state):
    # (The Python step counter stays outside: filter_jit would recompile per value.)
    key, k_obs, k_eps = jax.random.split(state["key"], 3)
    obs = jax.random.uniform(k_obs, (4, 8))
    eps = jax.random.normal(k_eps, (4,))

    def loss(policy):
        a = sample_actions(*policy(obs), eps)
        return jnp.mean((a - 0.5) ** 2) + state["dual"] * jnp.mean(a), a

    grads, a = eqx.filter_grad(loss, has_aux=True)(state["policy"])
    with jax.numpy_dtype_promotion("standard"):  # Optax's bias correction
        updates, opt_state = OPT.update(grads, state["opt_state"])
    policy = eqx.apply_updates(state["policy"], updates)
    dual = jnp.maximum(0.0, state["dual"] + 0.1 * jnp.mean(a))
    return dict(policy=policy, opt_state=opt_state, key=key, dual=dual), jnp.mean(a)


def run(directory, state, until, *, crash_after=None, every=2):
    """Train to step `until`, checkpointing every `every` steps, logging each step."""
    resumed = state["step"]
    with gr.MetricsWriter(directory, truncate_after_step=resumed) as metrics:
        while state["step"] < until:
            arrays = {k: v for k, v in state.items() if k != "step"}
            state, mean_action = train_step(arrays)
            state["step"] = resumed = resumed + 1
            metrics.write({"step": resumed, "wall_s": 0.0, "a": mean_action})
            if resumed % every == 0:
                gr.save_checkpoint(directory, state, step=resumed)
            if resumed == crash_after:
                with open(metrics.path, "a") as f:
                    f.write('{"step": 6, "a"')  # killed mid-line
                return state
    return state


def test_kill_and_resume_is_exact(tmp_path):
    straight = run(tmp_path / "straight", init_training(), 8)
    # A run killed after step 5: its last checkpoint is step 4, its metrics reach 5.
    run(tmp_path / "killed", init_training(), 8, crash_after=5)
    like = init_training()
    state, step, _ = gr.load_checkpoint(tmp_path / "killed", like)
    assert step == 4 and state["step"] == 4
    resumed = run(tmp_path / "killed", state, 8)
    assert_bit_exact(resumed, straight)
    rows = gr.read_metrics(tmp_path / "killed")
    assert [r["step"] for r in rows] == list(range(1, 9))
    assert rows == gr.read_metrics(tmp_path / "straight")
