"""The command line answers a user's mistake in one line, exit code 2, no traceback,
and leaves no half-made run folder behind (`--debug` shows the traceback)."""

import pytest

from gridflex._cli import main


CASES = [
    ("train --set gradmap.lrx=1", "unknown config key 'gradmap.lrx'.*did you mean"),
    ("train --set gradmap.lr=abc", "'gradmap.lr' .*must be a float"),
    ("train --agents -3", "n_homes=-3: at least one home"),
    ("train --feeder nowhere.dss", "unknown feeder 'nowhere.dss'"),
    ("train --config missing.toml", "missing.toml"),
    ("train --resume", "holds no run to resume"),
    ("train --out {file}", "is a file; give a folder"),
    ("evaluate {tmp}", "is not a training run"),
    ("evaluate --method naive --feeder {tmp}", "file not found"),
    ("powerflow --feeder nowhere.dss", "unknown feeder"),
    ("powerflow --load-scale nan", "--load-scale nan: give a finite multiplier"),
]


@pytest.mark.parametrize("command,message", CASES, ids=[c[0] for c in CASES])
def test_user_errors_are_one_line(tmp_path, capsys, command, message):
    import re

    afile = tmp_path / "afile"
    afile.write_text("")
    out = tmp_path / "run"
    argv = command.format(tmp=tmp_path, file=afile).split()
    if argv[0] == "train" and "--out" not in argv:
        argv += ["--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith(f"gridflex {argv[0]}: ")
    assert re.search(message, err), err
    assert len(err.strip().splitlines()) <= 2
    assert not out.exists()  # no half-made run


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(ValueError, match="n_homes=-3"):
        main(["--debug", "train", "--agents", "-3", "--out", str(tmp_path / "r")])


def test_a_failed_power_flow_still_prints_valid_json(capsys):
    import json

    assert main(["powerflow", "--load-scale", "50"]) == 1
    report = json.loads(capsys.readouterr().out)  # NaN would not parse
    assert report["converged"] is False and "loadability" in report["message"]


def test_a_missing_optional_dependency_says_how_to_install_it(
    tmp_path, capsys, monkeypatch
):
    import sys

    monkeypatch.setitem(sys.modules, "opendssdirect", None)  # import fails
    args = "evaluate --method naive --feeder ieee13 --agents 10 --days 1"
    out = tmp_path / "cc"
    assert main([*args.split(), "--crosscheck", "0", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "pip install 'gridflex[opendss]'" in err
