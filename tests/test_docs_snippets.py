"""The Python snippets of the README and the docs run as users run them.

A snippet whose first line is an import is complete: it runs as written, in a fresh
namespace and working folder, in one subprocess with JAX's defaults (float32,
standard promotion: what users have, not the suite's strict float64). A snippet that
starts otherwise continues the text around it and is not run. `SHORTER` puts
the training quick-start on a schedule a test affords (the text each replaces must
still be in the docs), and `NOT_RUN` names the complete snippets that read files a
user brings, with the test that covers the same calls.
"""

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHORTER = {
    "gf.training.GradMAP()": "gf.training.GradMAP(n_dual=1, n_primal=2, batch=4)",
    "evaluation.evaluate(env, policy)": "evaluation.evaluate(env, policy, days=2)",
    "evaluation.naive_evaluation(env)": "evaluation.naive_evaluation(env, days=2)",
}
NOT_RUN = {
    "runs/default/export/home_0": "an exported run (tests/test_export.py)",
    'read_metrics("runs/gradmap")': "two training runs (tests/test_plots.py)",
}
RUNNER = textwrap.dedent(
    """
    import json, os, sys, traceback
    failed = {}
    snippets = json.load(open(sys.argv[1]))
    for i, (name, code) in enumerate(snippets.items()):
        os.makedirs(f"snippet_{i}")  # its own working folder: runs/ and all
        os.chdir(f"snippet_{i}")
        try:
            exec(compile(code, name, "exec"), {"__name__": "__main__"})
        except Exception:
            failed[name] = traceback.format_exc(limit=-3)
        os.chdir("..")
    print(json.dumps(failed))
    """
)


def _snippets() -> dict[str, str]:
    out = {}
    for page in PAGES:
        blocks = re.findall(r"^```python\n(.*?)^```", page.read_text(), re.S | re.M)
        for i, code in enumerate(blocks):
            out[f"{page.relative_to(ROOT)} #{i + 1}"] = code
    return out


def _complete(code: str) -> bool:
    return code.lstrip().startswith(("import ", "from "))


def test_the_lists_match_the_docs():
    text = "\n".join(_snippets().values())
    for old in [*SHORTER, *NOT_RUN]:
        assert old in text, f"{old!r} is no longer in any snippet: update this test"


@pytest.mark.slow
def test_every_complete_snippet_runs(tmp_path):
    runnable = {}
    for name, code in _snippets().items():
        if not _complete(code) or any(k in code for k in NOT_RUN):
            continue
        if code in runnable.values():
            continue  # the README repeats the index's quick-starts: run each once
        for old, new in SHORTER.items():
            code = code.replace(old, new)
        runnable[name] = code
    assert len(runnable) >= 9, sorted(runnable)
    (tmp_path / "snippets.json").write_text(json.dumps(runnable))
    env = {**os.environ, "MPLBACKEND": "Agg", "JAX_PLATFORMS": "cpu"}
    env.pop("JAX_ENABLE_X64", None)
    out = subprocess.run(
        [sys.executable, "-c", RUNNER, "snippets.json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    failed = json.loads(out.stdout.strip().splitlines()[-1])
    assert not failed, "\n".join(f"{k}:\n{v}" for k, v in failed.items())
