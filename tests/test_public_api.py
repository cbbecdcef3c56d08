"""The public API is one obvious place per name: `import gridflex` gives every
subpackage, each subpackage lists its public names in `__all__`, and every one of them
has a docstring (as the API pages render it, read with griffe, mkdocstrings' own
reader) and a page of its own in `docs/api/`."""

import pathlib
import re
import subprocess
import sys

import griffe
import pytest

import gridflex


ROOT = pathlib.Path(__file__).resolve().parents[1]
SUBPACKAGES = (
    "cli",
    "data",
    "devices",
    "env",
    "evaluation",
    "export",
    "feeders",
    "marl",
    "plots",
    "policies",
    "powerflow",
    "runs",
    "training",
)


@pytest.fixture(scope="module")
def package():
    return griffe.load("gridflex", search_paths=[str(ROOT / "src")])


def _public_names():
    for sub in SUBPACKAGES:
        for name in getattr(gridflex, sub).__all__:
            yield sub, name


def test_import_gridflex_gives_every_subpackage_and_nothing_else():
    # A fresh interpreter: in this one the tests have imported the subpackages.
    # (Under pytest, jaxtyping's import hook adds a name to every module it checks.)
    code = (
        "import gridflex\n"
        "print(' '.join(sorted(gridflex.__all__)))\n"
        "print(' '.join(sorted(n for n in vars(gridflex) if n[0] != '_')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    exported, public = (set(line.split()) for line in out.stdout.splitlines())
    assert set(SUBPACKAGES) <= exported
    assert public == exported, public ^ exported


def test_every_subpackage_lists_names_that_exist():
    for sub in SUBPACKAGES:
        module = getattr(gridflex, sub)
        names = module.__all__
        assert len(names) == len(set(names)), sub
        for name in names:
            assert hasattr(module, name), f"gridflex.{sub}.{name}"
        # Everything the subpackage re-exports from its private modules is listed.
        public = {
            n
            for n, v in vars(module).items()
            if not n.startswith("_")
            and getattr(v, "__module__", "").startswith(f"gridflex.{sub}._")
        }
        assert public <= set(names), f"gridflex.{sub}: {sorted(public - set(names))}"


def test_every_public_name_has_a_docstring(package):
    missing = []
    for sub, name in _public_names():
        obj = package[f"{sub}.{name}"]
        obj = obj.final_target if obj.is_alias else obj
        if obj.docstring is None or not obj.docstring.value.strip():
            missing.append(f"gridflex.{sub}.{name}")
    assert not missing, missing


def test_every_public_name_is_on_an_api_page():
    shown = set()
    for page in (ROOT / "docs" / "api").glob("*.md"):
        shown |= set(re.findall(r"^::: (gridflex\.[\w.]+)", page.read_text(), re.M))
    missing = [
        f"gridflex.{sub}.{name}"
        for sub, name in _public_names()
        if f"gridflex.{sub}.{name}" not in shown
    ]
    assert not missing, missing


def test_no_test_benchmark_or_example_reaches_for_a_private_name():
    """What the suite, the benchmarks and the examples use is what users can use
    (also in code they run in a subprocess: the text is searched, not only imports)."""
    private = re.compile(
        r"\bgridflex(?:\.[a-z]\w*)*\._(?!_)|from gridflex\S* import [_]"
    )
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for folder in ("tests", "benchmarks", "examples", "scripts")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if private.search(line)
    ]
    assert not found, found
