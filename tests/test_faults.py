"""The fault corpus: bad inputs (commands, values, files) and the message each must
produce (docs/failure-modes.md).

The command line answers a user's mistake in one line, exit code 2, no traceback,
and leaves no half-made run folder behind (`--debug` shows the traceback). The
library refuses bad values and files with one message naming the file, element or
field and the fix. (Faults that need a solve or a training run live beside what they
exercise: failed solves and their gradients in test_power_flow.py, non-finite
actions in test_env.py, killed, corrupted and resumed runs in test_runs.py and
test_training.py, OpenDSS import refusals in test_opendss.py.)"""

import functools
import re

import numpy as np
import pytest

import gridflex as gf
import gridflex.runs as gr
import gridflex.training as gt
from gridflex.cli import main


CASES = [
    ("train --set gradmap.lrx=1", "unknown config key 'gradmap.lrx'.*did you mean"),
    ("train --set gradmap.lr=abc", "'gradmap.lr' .*must be a float"),
    ("train --agents -3", "n_homes=-3: at least one home"),
    ("train --feeder nowhere.dss", "unknown feeder 'nowhere.dss'"),
    ("train --set run.taps=bogus", "taps 'bogus': give one of regulated, homes, file"),
    ("train --config missing.toml", "missing.toml"),
    ("train --config {bad}", "bad.toml"),
    ("train --resume", "holds no run to resume"),
    ("train --out {file}", "is a file; give a folder"),
    ("train --out {file}/run", "run: part of this path is a file, not a folder; give"),
    ("evaluate {tmp}", "is not a training run"),
    ("evaluate --method naive --feeder {tmp}", "is a folder; give the master .dss"),
    ("powerflow --feeder nowhere.dss", "unknown feeder"),
    ("powerflow --load-scale nan", "--load-scale nan: give a finite multiplier"),
]


@pytest.mark.parametrize("command,message", CASES, ids=[c[0] for c in CASES])
def test_user_errors_are_one_line(tmp_path, capsys, command, message):
    afile = tmp_path / "afile"
    afile.write_text("")
    bad = tmp_path / "bad.toml"
    bad.write_text("[gradmap\nlr = \n")
    out = tmp_path / "run"
    argv = command.format(tmp=tmp_path, file=afile, bad=bad).split()
    if argv[0] == "train" and "--out" not in argv:
        argv += ["--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith(f"gridflex {argv[0]}: ")
    assert re.search(message, err), err
    assert len(err.strip().splitlines()) == 1, err
    assert not out.exists()  # no half-made run


def test_options_against_a_resumed_run_are_refused_and_the_run_is_kept(
    tmp_path, capsys
):
    from gridflex.runs import save_config

    out = tmp_path / "run"
    save_config(out, gt.default_config())
    argv = ["train", "--out", str(out), "--resume", "--set", "gradmap.lr=0.5"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("gridflex train: --resume: the run continues with its saved")
    assert "drop the conflicting options" in err and "Traceback" not in err
    assert (out / "config.toml").exists()  # an existing run is never cleaned away


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="n_homes=-3"):
        main(["--debug", "train", "--agents", "-3", "--out", str(tmp_path / "r")])


def test_a_failed_power_flow_still_prints_valid_json(capsys):
    import json

    assert main(["powerflow", "--load-scale", "50"]) == 1
    report = json.loads(capsys.readouterr().out)  # NaN would not parse
    assert report["converged"] is False and "loadability" in report["message"]


def test_a_broken_dependency_says_how_to_mend_it(tmp_path, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "opendssdirect", None)  # import fails
    args = "evaluate --method naive --feeder ieee13 --agents 10 --days 1"
    out = tmp_path / "cc"
    assert main([*args.split(), "--crosscheck", "0", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "pip install 'opendssdirect.py" in err


# --- the library: values and files -------------------------------------------------


@functools.cache
def _ieee13():
    return gf.feeders.ieee13()


def _at_node(value, injection=True):
    f = _ieee13()
    nodes = (
        f.injection_nodes
        if injection
        else np.setdiff1d(np.arange(f.n_nodes), f.injection_nodes)
    )
    p = np.zeros(f.n_nodes)
    p[nodes[1]] = value
    return p, f.node_names[nodes[1]]


def _nan_injection():
    p, _ = _at_node(np.nan)
    gf.power_flow(_ieee13(), p)


def _outside_injection():
    p, _ = _at_node(5.0, injection=False)
    gf.power_flow(_ieee13(), p)


def _inf_load_scale():
    f = _ieee13()
    scale = np.ones(f.loads.n_loads)
    scale[0] = np.inf
    gf.power_flow(f, load_scale=scale)


def _short_injection():
    gf.power_flow(_ieee13(), np.zeros(3))


def _floating_node():
    gf.feeders.ieee123().with_injection_nodes(["610.1"])


def _empty_csv(tmp_path):
    (tmp_path / "load.csv").write_text("")
    gf.data.read_timeseries_csv(
        tmp_path / "load.csv", time_column="t", value_column="kw", unit="kW"
    )


def _csv_with_a_gap(tmp_path):
    rows = ["t,kw"] + [
        f"2013-01-01 {h:02d}:{m:02d},0.5" for h in range(24) for m in (0, 30)
    ]
    del rows[10]
    (tmp_path / "load.csv").write_text("\n".join(rows) + "\n")
    gf.data.read_timeseries_csv(
        tmp_path / "load.csv", time_column="t", value_column="kw", unit="kW"
    )


def _battery_out_of_range():
    gf.devices.Battery(capacity_kwh=10.0, p_max_kw=5.0, e_min_kwh=11.0)


def _unknown_config_key(tmp_path):
    (tmp_path / "run.toml").write_text("[gradmap]\nlrx = 0.1\n")
    gr.load_config(tmp_path / "run.toml", defaults=gt.default_config())


def _garbage_checkpoint(tmp_path):
    (tmp_path / "checkpoint_000000003.npz").write_bytes(b"not a checkpoint")
    gr.load_checkpoint(tmp_path, like={"x": np.zeros(2)})


def _no_checkpoint(tmp_path):
    gr.load_checkpoint(tmp_path, like={"x": np.zeros(2)})


def _torn_metrics_middle(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2\n{"step": 3}\n')
    gr.read_metrics(tmp_path)


LIBRARY = [
    (_nan_injection, ValueError, rf"not finite .* node\(s\) {_at_node(0)[1]}"),
    (_outside_injection, ValueError, r"not injection nodes.*with_injection_nodes"),
    (_inf_load_scale, ValueError, r"load_scale is not finite .* load\(s\) \w+"),
    (_short_injection, ValueError, r"need shape \(\d+,\) \(one entry per node of"),
    (_floating_node, ValueError, r"610\.1.*no path to ground.*delta-delta"),
    (_empty_csv, ValueError, r"load\.csv: the file is empty"),
    (_csv_with_a_gap, gf.data.TimeSeriesError, r"load\.csv, column 'kw':\n.*gap"),
    (_battery_out_of_range, ValueError, r"Battery.*e_min_kwh = 11 kWh must lie in"),
    (
        _unknown_config_key,
        ValueError,
        r"unknown config key 'gradmap\.lrx'.*gradmap\.lr",
    ),
    (_garbage_checkpoint, ValueError, r"no intact checkpoint.*checkpoint_000000003"),
    (_no_checkpoint, FileNotFoundError, r"no checkpoint found at"),
    (_torn_metrics_middle, ValueError, r"metrics\.jsonl line 2 is not valid JSON"),
]


@pytest.mark.parametrize(
    "make, error, message", LIBRARY, ids=[c[0].__name__[1:] for c in LIBRARY]
)
def test_bad_values_and_files_are_named(tmp_path, make, error, message):
    args = (tmp_path,) if make.__code__.co_argcount else ()
    with pytest.raises(error) as info:
        make(*args)
    text = str(info.value)
    assert re.search(message, text, flags=re.S), text
    assert "Traceback" not in text
