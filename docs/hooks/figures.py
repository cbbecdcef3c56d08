"""MkDocs hook: the benchmark figures under `benchmarks/results/` appear in the site
as `figures/<name>.png`, so the docs show the figures the benchmarks wrote, without a
second copy of them in `docs/`."""

from pathlib import Path

from mkdocs.structure.files import File


RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def on_files(files, config):
    for png in sorted(RESULTS.glob("*.png")):
        files.append(
            File.generated(config, f"figures/{png.name}", abs_src_path=str(png))
        )
    return files
