"""Trained policies as files a home controller runs without gridflex or JAX.

Each home gets its own artefact (the method's promise: every home acts on its own
local data and never communicates): an ONNX model and a NumPy `.npz` of the same
numbers, both taking the home's 8 local measurements in physical units, with the
observation scaling of training baked in, and returning the action in [-1, 1] and the
device command it decodes to. A `manifest.json` says which home is which (node,
phase, device kind and ratings), what each input is and in which unit.

The policy acts with its mean (as the held-out evaluation does): deployment is
deterministic.
"""

import dataclasses
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..env import Environment, OBS_NAMES, OBS_VOLTAGE_PU
from ..policies import GaussianMLPPolicy


MANIFEST = "manifest.json"
"""The name of the file, beside the exported policies, that lists every home with its
device, its policy's files and the inputs it must measure."""
FORMAT_VERSION = 1

# The inputs a home controller measures, in the order of `OBS_NAMES`, and how each is
# turned into the observation the policy was trained on. "device" rows are computed
# by the device's own formula (its docstring, copied into the manifest).
_INPUTS = (
    ("time_of_day_h", "h", "hours since local midnight, 0 <= x < 24"),
    ("device_state", "1", "device"),
    ("net_demand_kw", "kW", "household load minus PV, without the device"),
    ("price_import", "currency/kWh", "price paid per kWh imported, this step"),
    ("price_export", "currency/kWh", "price paid per kWh exported, this step"),
    ("temperature_c", "degC", "outdoor temperature"),
    ("urgency", "1", "device"),
    ("voltage_pu", "pu", "local voltage magnitude measured at the previous step"),
)

# ONNX operators for the hidden activations (gelu: ONNX's Gelu, opset 20).
_ONNX_ACTIVATIONS = ("tanh", "relu", "elu", "gelu", "silu", "softplus", "sigmoid")


def _scaling(env: Environment) -> tuple[np.ndarray, np.ndarray]:
    """Per home, `obs = (x - offset) * scale` for the 8 inputs of `_INPUTS`."""
    n = env.n_agents
    cfg = env.config
    offset = np.zeros((n, len(_INPUTS)))
    scale = np.ones((n, len(_INPUTS)))
    scale[:, 0] = 1.0 / (cfg.n_steps * cfg.dt_h)
    series = {2: "net_kw", 3: "price_import", 4: "price_export", 5: "temperature_c"}
    for col, name in series.items():
        lo, span = (np.asarray(b, np.float64) for b in env.stats.bounds(name))
        offset[:, col] = np.broadcast_to(lo, (n,))
        scale[:, col] = np.broadcast_to(1.0 / span, (n,))
    offset[:, 7] = OBS_VOLTAGE_PU[0]
    scale[:, 7] = 1.0 / OBS_VOLTAGE_PU[1]
    return offset, scale


def _device_rows(env: Environment) -> list[dict[str, Any]]:
    """Per home: device kind, its parameters as plain numbers, the command range and
    the formulas of its two device-defined inputs."""
    rows: list[dict[str, Any]] = [{} for _ in range(env.n_agents)]
    for kind, dev in env.population.groups.items():
        homes = np.asarray(env.homes(kind))
        cls = type(dev)
        low = np.asarray(eqx.filter_vmap(lambda d: d.decode(-jnp.ones(())))(dev))
        high = np.asarray(eqx.filter_vmap(lambda d: d.decode(jnp.ones(())))(dev))
        fields = [
            f.name
            for f in dataclasses.fields(dev)
            if eqx.is_array(getattr(dev, f.name))
            and getattr(dev, f.name).shape == (len(homes),)
        ]
        for j, home in enumerate(homes):
            rows[home] = {
                "kind": kind,
                "class": cls.__name__,
                "parameters": {
                    name: float(np.asarray(getattr(dev, name))[j]) for name in fields
                },
                "command_kw": [float(low[j]), float(high[j])],
                "device_state": _first_paragraph(cls.observe.__doc__),
                "urgency": _first_paragraph(cls.urgency.__doc__),
            }
    return rows


def _first_paragraph(doc: str | None) -> str:
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def _layers(policy: GaussianMLPPolicy, i: int) -> list[tuple[np.ndarray, np.ndarray]]:
    net = policy.agent(i)
    return [
        (np.asarray(layer.weight, np.float64), np.asarray(layer.bias, np.float64))
        for layer in net.layers
    ]


def numpy_act(
    params: dict[str, np.ndarray], x: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """A home's action and device command from its measurements, in NumPy alone.

    **Arguments:**

    - `params`: the arrays of the home's `.npz` (`np.load`): `offset`, `scale`,
        `w0`, `b0`, ... (input to output), `activation`, `command_kw`.
    - `x`: the 8 inputs of the manifest's `inputs`, shape `(8,)` or `(batch, 8)`.

    **Returns:** `(action in [-1, 1], command in kW)`.
    """
    h = (np.asarray(x, np.float64) - params["offset"]) * params["scale"]
    n_layers = sum(1 for k in params if k.startswith("w"))
    activation = _NUMPY_ACTIVATIONS[str(params["activation"])]
    for k in range(n_layers):
        h = h @ params[f"w{k}"].T + params[f"b{k}"]
        if k < n_layers - 1:
            h = activation(h)
    action = np.asarray(np.clip(h[..., 0], -1.0, 1.0))
    low, high = params["command_kw"]
    return action, np.asarray(low + (action + 1.0) / 2.0 * (high - low))


def _gelu(h: np.ndarray) -> np.ndarray:
    from math import erf, sqrt

    return h * 0.5 * (1.0 + np.vectorize(erf)(h / sqrt(2.0)))


_NUMPY_ACTIVATIONS = {
    "tanh": np.tanh,
    "relu": lambda h: np.maximum(h, 0.0),
    "elu": lambda h: np.where(h > 0, h, np.expm1(np.minimum(h, 0.0))),
    "gelu": _gelu,
    "silu": lambda h: h / (1.0 + np.exp(-h)),
    "softplus": lambda h: np.logaddexp(h, 0.0),
    "sigmoid": lambda h: 1.0 / (1.0 + np.exp(-h)),
}


def _onnx_model(params: dict[str, np.ndarray], name: str):
    import onnx
    from onnx import helper, numpy_helper, TensorProto

    f32 = np.float32
    inits = [
        numpy_helper.from_array(params["offset"].astype(f32), "offset"),
        numpy_helper.from_array(params["scale"].astype(f32), "scale"),
    ]
    nodes = [
        helper.make_node("Sub", ["inputs", "offset"], ["centred"]),
        helper.make_node("Mul", ["centred", "scale"], ["h_in"]),
    ]
    n_layers = sum(1 for k in params if k.startswith("w"))
    activation = str(params["activation"])
    h = "h_in"
    for k in range(n_layers):
        inits += [
            numpy_helper.from_array(params[f"w{k}"].T.astype(f32), f"w{k}"),
            numpy_helper.from_array(params[f"b{k}"].astype(f32), f"b{k}"),
        ]
        nodes += [
            helper.make_node("MatMul", [h, f"w{k}"], [f"z{k}"]),
            helper.make_node("Add", [f"z{k}", f"b{k}"], [f"a{k}"]),
        ]
        h = f"a{k}"
        if k < n_layers - 1:
            nodes += _onnx_activation(helper, activation, h, f"h{k}")
            h = f"h{k}"
    low, high = (float(v) for v in params["command_kw"])
    for value, label in ((-1.0, "minus_one"), (1.0, "one")):
        inits.append(numpy_helper.from_array(np.array(value, f32), label))
    inits += [
        numpy_helper.from_array(np.array([0], np.int64), "zero_index"),
        numpy_helper.from_array(np.array([1], np.int64), "axis"),
        numpy_helper.from_array(np.array(low, f32), "low"),
        numpy_helper.from_array(np.array((high - low) / 2.0, f32), "half_range"),
    ]
    nodes += [
        # mu is the first output; the second (log std) is not used when deployed.
        helper.make_node("Gather", [h, "zero_index"], ["mu"], axis=1),
        helper.make_node("Clip", ["mu", "minus_one", "one"], ["action"]),
        helper.make_node("Add", ["action", "one"], ["shifted"]),
        helper.make_node("Mul", ["shifted", "half_range"], ["spread"]),
        helper.make_node("Add", ["spread", "low"], ["command_kw"]),
    ]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("inputs", TensorProto.FLOAT, ["batch", 8])],
        [
            helper.make_tensor_value_info("action", TensorProto.FLOAT, ["batch", 1]),
            helper.make_tensor_value_info(
                "command_kw", TensorProto.FLOAT, ["batch", 1]
            ),
        ],
        inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 20)],
        producer_name="gridflex",
    )
    model.ir_version = 9  # what onnxruntime releases of 2024 on read
    onnx.checker.check_model(model)
    return model


def _onnx_activation(helper, activation: str, x: str, out: str) -> list:
    if activation == "silu":
        return [
            helper.make_node("Sigmoid", [x], [f"{out}_gate"]),
            helper.make_node("Mul", [x, f"{out}_gate"], [out]),
        ]
    op = {
        "tanh": "Tanh",
        "relu": "Relu",
        "elu": "Elu",
        "gelu": "Gelu",
        "softplus": "Softplus",
        "sigmoid": "Sigmoid",
    }[activation]
    return [helper.make_node(op, [x], [out])]


def _manifest(env: Environment, source: dict[str, Any] | None, homes: list) -> dict:
    """The manifest: the homes' rows, the feeder, the source, and what the eight
    inputs and the output are, with their units."""
    return {
        "format_version": FORMAT_VERSION,
        "feeder": env.feeder.name,
        "source": source or {},
        "step_minutes": env.config.dt_h * 60,
        "inputs": [
            {
                "index": k,
                "name": name,
                "unit": unit,
                "definition": text,
                "observation": OBS_NAMES[k],
            }
            for k, (name, unit, text) in enumerate(_INPUTS)
        ],
        "outputs": {
            "action": "the policy's mean, clipped to [-1, 1] (deterministic)",
            "command_kw": "the device command the action decodes to, kW: "
            "command_kw[0] + (action + 1) / 2 * (command_kw[1] - command_kw[0])",
        },
        "scaling": "observation = (input - offset) * scale, per home (in its files)",
        "homes": homes,
    }


def export_policies(
    env: Environment,
    policy: GaussianMLPPolicy,
    out_dir: str | os.PathLike,
    *,
    formats: Sequence[str] = ("onnx", "numpy"),
    source: dict[str, Any] | None = None,
) -> Path:
    """Write every home's trained policy as a self-contained artefact.

    **Arguments:**

    - `env`: the environment the policy was trained in (its homes, devices and
        observation statistics).
    - `policy`: the trained `GaussianMLPPolicy` (one network per home).
    - `out_dir`: the folder to write (created; existing artefacts are replaced).
    - `formats`: `"onnx"` (`home_<i>.onnx`, needs the `export` extra) and/or
        `"numpy"` (`home_<i>.npz`, run with `numpy_act`).
    - `source`: what to record as the artefacts' origin (e.g. the run folder and
        its configuration).

    **Returns:** the manifest's path.
    """
    unknown = set(formats) - {"onnx", "numpy"}
    if unknown or not formats:
        raise ValueError(f"formats={list(formats)!r}: use 'onnx' and/or 'numpy'.")
    if not isinstance(policy, GaussianMLPPolicy):
        raise TypeError(
            f"export_policies exports GaussianMLPPolicy policies; got "
            f"{type(policy).__name__}. Write your own policy's weights out directly."
        )
    if policy.n_agents != env.n_agents:
        raise ValueError(
            f"the policy has {policy.n_agents} agents, the environment {env.n_agents}."
        )
    activation = policy.mlp.activation
    if "onnx" in formats and activation not in _ONNX_ACTIVATIONS:
        raise ValueError(f"activation {activation!r} has no ONNX export.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    offset, scale = _scaling(env)
    devices = _device_rows(env)
    table = env.placement.table()
    homes = []
    for i in range(env.n_agents):
        params: dict[str, Any] = {
            "offset": offset[i],
            "scale": scale[i],
            "activation": np.array(activation),
            "command_kw": np.array(devices[i]["command_kw"]),
        }
        for k, (w, b) in enumerate(_layers(policy, i)):
            params[f"w{k}"], params[f"b{k}"] = w, b
        name = f"home_{i}"
        files = {}
        if "numpy" in formats:
            np.savez(out / f"{name}.npz", **params)
            files["numpy"] = f"{name}.npz"
        if "onnx" in formats:
            import onnx

            onnx.save(_onnx_model(params, name), out / f"{name}.onnx")
            files["onnx"] = f"{name}.onnx"
        row = table.iloc[i]
        homes.append(
            {
                "home": name,
                "bus": str(row["bus"]),
                "phase": str(row["phase"]),
                "node": str(row["node"]),
                "homes_represented": float(row["scale"]),
                "device": devices[i],
                "files": files,
            }
        )
    manifest = _manifest(env, source, homes)
    path = out / MANIFEST
    path.write_text(json.dumps(manifest, indent=1) + "\n")
    return path


def deterministic_actions(policy: GaussianMLPPolicy, obs: np.ndarray) -> np.ndarray:
    """gridflex's own deterministic actions for observations `[..., agent, obs]`
    (the reference an export is checked against)."""
    mu = jax.vmap(lambda o: policy(o)[0])(
        jnp.asarray(obs).reshape((-1,) + obs.shape[-2:])
    )
    return np.clip(np.asarray(mu), -1.0, 1.0).reshape(obs.shape[:-1])
