"""Run configuration: TOML files and command-line overrides, checked against defaults.

A configuration is a nested dict of tables (dicts) and values (bool, int, float, str,
lists of these; `None` for "unset"). The defaults define which keys exist and what
type each holds, so a typo'd key or a wrong type fails at start-up with a message
that lists what is valid, not after an hour of training. The merged configuration is
saved as `config.toml` beside the checkpoints, so a resumed or reproduced run reads
exactly what the first one used.
"""

import copy
import difflib
import json
import math
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._atomic import atomic_write_text


CONFIG_FILE = "config.toml"
"""The settings file of a run folder (every setting, so that the run can be repeated
or resumed)."""
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_SCALARS = (bool, int, float, str)


def _leaf_keys(table: Mapping[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for k, v in table.items():
        dotted = f"{prefix}{k}"
        keys += _leaf_keys(v, dotted + ".") if isinstance(v, Mapping) else [dotted]
    return keys


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in table.items():
        dotted = f"{prefix}{k}"
        out |= _flatten(v, dotted + ".") if isinstance(v, Mapping) else {dotted: v}
    return out


def _check_default(key: str, value: Any) -> None:
    if value is None or isinstance(value, _SCALARS):
        return
    if isinstance(value, Mapping):
        for k, v in value.items():
            _check_default(f"{key}.{k}", v)
        return
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            if v is None or isinstance(v, Mapping):
                raise TypeError(f"default {key}[{i}] = {v!r}: lists hold values only.")
            _check_default(f"{key}[{i}]", v)
        return
    raise TypeError(
        f"default {key} = {value!r} has type {type(value).__name__}; configuration "
        "values are bool, int, float, str, lists of these, or None."
    )


def parse_value(text: str) -> Any:
    """A command-line value read as a TOML literal (`3e-3`, `true`, `[16, 16]`,
    `"gradmap"`), or the text itself if it is not one (so `gradmap` works unquoted).
    """
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_override(text: str) -> tuple[str, Any]:
    """Split a command-line override `section.key=value` into key and parsed value.

    **Arguments:**

    - `text`: e.g. `"gradmap.lr=3e-3"`.

    **Returns:** `("gradmap.lr", 0.003)`; the value is read by `parse_value`.
    """
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(
            f"config override {text!r} must look like section.key=value, e.g. "
            "gradmap.lr=3e-3."
        )
    return key.strip(), parse_value(value.strip())


def _type_name(default: Any) -> str:
    return "list" if isinstance(default, tuple) else type(default).__name__


def _coerce(key: str, default: Any, value: Any, source: str) -> Any:
    """`value` checked against (and converted to the type of) `default`."""
    if isinstance(value, str) and default is not None and not isinstance(default, str):
        value = parse_value(value)  # command-line text for a non-text setting

    def fail() -> TypeError:
        return TypeError(
            f"config key {key!r} (from {source}) must be a {_type_name(default)}, "
            f"like its default {default!r}; got {type(value).__name__} {value!r}."
        )

    if default is None:
        if isinstance(value, Mapping):
            raise fail()
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise fail()
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise fail()
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise fail()
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise fail()
        return value
    if isinstance(default, list | tuple):
        if not isinstance(value, list | tuple):
            raise fail()
        kinds = {type(d) for d in default}
        if len(kinds) == 1:  # a homogeneous default fixes the element type
            (example,) = default[:1]
            value = [
                _coerce(f"{key}[{i}]", example, v, source) for i, v in enumerate(value)
            ]
        return type(default)(value)
    raise fail()


def _set(
    config: dict[str, Any],
    defaults: Mapping[str, Any],
    key: str,
    value: Any,
    source: str,
) -> None:
    parts = key.split(".")
    node_default: Any = defaults
    node: Any = config
    for depth, part in enumerate(parts):
        if not isinstance(node_default, Mapping) or part not in node_default:
            table = ".".join(parts[:depth])
            close = difflib.get_close_matches(key, _leaf_keys(defaults), n=1)
            hint = f"; did you mean {close[0]!r}" if close else ""
            where = f" in table [{table}]" if table else ""
            # the keys of the table the typo is in (or the tables), not all ~100
            if isinstance(node_default, Mapping) and table:
                valid = _leaf_keys(node_default, table + ".")
            else:
                valid = [
                    f"{k}.*" if isinstance(v, Mapping) else k
                    for k, v in defaults.items()
                ]
            raise ValueError(
                f"unknown config key {key!r} (from {source}){where}{hint}? Valid keys: "
                f"{', '.join(valid)}."
            )
        if depth < len(parts) - 1:
            node_default, node = node_default[part], node[part]
    default = node_default[parts[-1]]
    if isinstance(default, Mapping):
        if not isinstance(value, Mapping):
            raise TypeError(
                f"config key {key!r} (from {source}) is a table; set its keys, e.g. "
                f"{_leaf_keys(default, key + '.')[:1]}."
            )
        for k, v in _flatten(value).items():
            _set(config, defaults, f"{key}.{k}", v, source)
        return
    node[parts[-1]] = _coerce(key, default, value, source)


def load_config(
    path: str | Path | None,
    overrides: Mapping[str, Any] | None = None,
    *,
    defaults: Mapping[str, Any],
) -> dict[str, Any]:
    """The run configuration: defaults, then a TOML file, then overrides.

    Every key set by the file or the overrides must exist in `defaults` and hold a
    value of the default's type (an int is accepted for a float and converted; a
    list's elements are checked against the default list's element type; a default
    of `None` accepts any value). String overrides for non-string keys are read as
    TOML literals, so command-line text (`"3e-3"`, `"[16, 16]"`) works directly.

    **Arguments:**

    - `path`: a TOML file, e.g. a saved run's `config.toml`, or `None`.
    - `overrides`: dotted keys to values, e.g. `{"gradmap.lr": 3e-3}`; nested dicts
        are accepted too. Applied after the file.
    - `defaults`: the complete default configuration, a nested dict of tables.

    **Returns:** a new nested dict with every key of `defaults`.

    **Raises:** `ValueError` for an unknown key (listing the valid keys and the
    closest match), `TypeError` for a value of the wrong type.
    """
    for k, v in defaults.items():
        _check_default(k, v)
    config = copy.deepcopy(_as_dicts(defaults))
    if path is not None:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"config file not found: {path}")
        with open(path, "rb") as f:
            try:
                data = tomllib.load(f)
            except tomllib.TOMLDecodeError as e:
                raise ValueError(f"config file {path}: {e}") from None
        for key, value in _flatten(data).items():
            _set(config, defaults, key, value, str(path))
    for key, value in (overrides or {}).items():
        _set(config, defaults, key, value, "overrides")
    return config


def _as_dicts(table: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _as_dicts(v) if isinstance(v, Mapping) else v for k, v in table.items()}


def _key(k: str) -> str:
    if not isinstance(k, str):
        raise TypeError(f"config keys must be strings, got {k!r}.")
    return k if _BARE_KEY.match(k) else _string(k)


def _string(s: str) -> str:
    # A JSON string is a TOML basic string, but for DEL, which TOML wants escaped.
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(key: str, v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_value(f"{key}[{i}]", x) for i, x in enumerate(v)) + "]"
    raise TypeError(
        f"config value {key} = {v!r} ({type(v).__name__}) cannot be written as TOML; "
        "use bool, int, float, str or lists of these."
    )


def to_toml(config: Mapping[str, Any]) -> str:
    """`config` as TOML text (`None` values are left out: TOML has no null).

    **Arguments:**

    - `config`: a nested dict of tables and values.

    **Returns:** text that `tomllib.loads` reads back to `config` (tuples as lists).
    """
    lines: list[str] = []

    def emit(table: Mapping[str, Any], prefix: str) -> None:
        values = {k: v for k, v in table.items() if not isinstance(v, Mapping)}
        tables = {k: v for k, v in table.items() if isinstance(v, Mapping)}
        if prefix and (values or not tables):
            lines.extend(["", f"[{prefix}]"] if lines else [f"[{prefix}]"])
        for k, v in values.items():
            if v is not None:
                lines.append(
                    f"{_key(k)} = {_value(prefix + '.' + k if prefix else k, v)}"
                )
        for k, v in tables.items():
            emit(v, f"{prefix}.{_key(k)}" if prefix else _key(k))

    emit(config, "")
    return "\n".join(lines) + "\n"


def save_config(directory: str | Path, config: Mapping[str, Any]) -> Path:
    """Write `config` as `config.toml` in `directory`, atomically.

    **Arguments:**

    - `directory`: the run directory (created if missing), beside the checkpoints.
    - `config`: the configuration, e.g. as `load_config` returned it.

    **Returns:** the path of the file.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CONFIG_FILE
    atomic_write_text(path, to_toml(config))
    return path
