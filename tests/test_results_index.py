"""benchmarks/results/README.md names every committed result file, and every path the docs and code cite exists."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
INDEX = RESULTS / "README.md"
NOT_RESULT_SECTIONS = ("The suites", "Removed scripts")
"""Sections of the index whose tables name scripts, not result files."""
CITING = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "graph_eigenmap").rglob("*.py")),
          *sorted((ROOT / "cli").rglob("*.py")), *sorted((ROOT / "benchmarks").glob("*.py"))]
"""Where a reader meets paths under benchmarks/: the README, the notes, the library, the CLI and the suites."""


def sections(text: str) -> dict[str, str]:
    """``{heading: body}`` of the index's ``##`` sections (the text before the first one under ``""``)."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return {"": parts[0], **{parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}}


def first_cells(body: str) -> list[str]:
    """The backquoted names in the first cell of each table row."""
    cells = [line.split("|")[1] for line in body.splitlines() if line.startswith("| `")]
    return [name for cell in cells for name in re.findall(r"`([^`]+)`", cell)]


def index_entries() -> list[str]:
    return [name for heading, body in sections(INDEX.read_text()).items() if heading not in NOT_RESULT_SECTIONS
            for name in first_cells(body)]


def removed_scripts() -> set[str]:
    return set(first_cells(sections(INDEX.read_text())["Removed scripts"]))


def covers(entry: str, relative: str) -> bool:
    if entry.endswith("/"):
        return relative.startswith(entry)
    if "*" in entry:
        return fnmatch.fnmatch(relative, entry) or fnmatch.fnmatch(relative.split("/")[0], entry)
    return relative == entry


def test_the_index_names_every_result_file():
    entries = index_entries()
    files = sorted(path.relative_to(RESULTS).as_posix() for path in RESULTS.rglob("*") if path.is_file())
    unnamed = [name for name in files if not any(covers(entry, name) for entry in entries)]
    assert not unnamed, f"files in benchmarks/results/ that benchmarks/results/README.md does not name: {unnamed}"


def test_every_index_entry_names_something_that_exists():
    missing = [entry for entry in index_entries() if "*" not in entry and not (RESULTS / entry).exists()]
    assert not missing, f"benchmarks/results/README.md names what is not there: {missing}"


def test_covers_reads_folders_globs_and_files():
    assert covers("quality/compare/", "quality/compare/ogb/cora/compare.json")
    assert not covers("quality/compare/", "quality/compare_current/ogb/cora/compare.json")
    assert covers("default_recipe*", "default_recipe/ogb/cora/compare.json")
    assert covers("default_recipe*", "default_recipe_ogb.md")
    assert covers("speed/speed_products_shape.md", "speed/speed_products_shape.md")
    assert not covers("speed/speed_products_shape.md", "speed/speed_products_shape.json")


def cited(pattern: str) -> list[tuple[str, str]]:
    """``(file, path)`` for each match of ``pattern`` in the citing files, trailing punctuation dropped."""
    found = []
    for path in CITING:
        for match in re.findall(pattern, path.read_text()):
            found.append((path.relative_to(ROOT).as_posix(), match.rstrip(".,:;")))
    return found


def test_every_cited_result_path_exists():
    cites = cited(r"benchmarks/results/[A-Za-z0-9_./*-]*")
    assert len(cites) > 20  # the README, the notes and the library cite results
    missing = [(where, path) for where, path in cites if not list(ROOT.glob(path.rstrip("/") or "."))]
    assert not missing, f"cited result paths that do not exist (moved? see benchmarks/results/README.md): {missing}"


def test_every_cited_benchmark_script_exists_or_is_listed_as_removed():
    removed = removed_scripts()
    assert {"compare_shared.py", "speed_papers100m_shape.py"} <= removed
    missing = [(where, path) for where, path in cited(r"benchmarks/[a-z_0-9]+\.py")
               if not (ROOT / path).exists() and Path(path).name not in removed]
    assert not missing, f"cited scripts neither in benchmarks/ nor in the index's removed scripts: {missing}"
