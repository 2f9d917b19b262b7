"""Every code block of the README runs as written, twice in a row, from a checkout beside ``../shared/data``.

The blocks run in order in one temporary folder laid out like a checkout (``repo/`` beside ``shared/data``,
a link to the real data), each ``bash`` block with ``bash -e`` and each ``python`` block as a script,
then the whole sequence again: the second pass is what a user who runs the README twice meets (outputs
and checkpoints of the first pass in place). Set-up block: its installs are what ``.ci/run`` itself
does and its second command is the command that runs this test, so from it the test runs what follows
the installs of command 1 (``graph-eigenmap fit ...``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from conftest import shared_data_or_skip

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```(bash|python)\n(.*?)^```", re.S | re.M)


def readme_blocks() -> list[tuple[str, str]]:
    """``[(language, code)]`` of the README's fenced bash and python blocks, in order; the set-up block reduced."""
    blocks = BLOCK.findall(README.read_text())
    setup_language, setup = blocks[0]
    assert setup_language == "bash" and "pip install" in setup, "the README must open with the set-up commands"
    main_job = [part for line in setup.splitlines() if not line.startswith("#")
                for part in line.split(" && ") if part.startswith("graph-eigenmap ")]
    assert len(main_job) == 1, f"set-up command 1 should end in one graph-eigenmap command; found {main_job}"
    return [("bash", main_job[0] + "\n")] + blocks[1:]


def test_the_readme_has_the_blocks_this_test_expects():
    languages = [language for language, _ in readme_blocks()]
    assert languages.count("python") >= 2 and languages.count("bash") >= 3
    assert "graph-eigenmap fit --out runs/csbm" in readme_blocks()[0][1]


def test_every_readme_block_runs_twice(tmp_path):
    data = shared_data_or_skip()  # the README's examples read ../shared/data
    checkout = tmp_path / "repo"
    checkout.mkdir()
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "data").symlink_to(data.resolve(), target_is_directory=True)
    env = dict(os.environ, GRAPH_EIGENMAP_CACHE=str(tmp_path / "cache"), PYTHONWARNINGS="ignore")
    bin_dir = str(Path(sys.executable).parent)  # graph-eigenmap lives beside this interpreter
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    for attempt in (1, 2):
        for number, (language, code) in enumerate(readme_blocks(), start=1):
            command = ["bash", "-e", "-c", code] if language == "bash" else [sys.executable, "-c", code]
            done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True, timeout=900)
            assert done.returncode == 0, (f"README block {number} ({language}) failed on run {attempt}:\n{code}\n"
                                          f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}")
    assert (checkout / "runs" / "csbm" / "embeddings.npy").exists()
    assert (checkout / "new_embeddings.npy").exists()


def test_the_readme_classification_tables_are_the_committed_results():
    """The README's two node-classification tables hold the rows the quality suite's summary makes of them."""
    sys.path.insert(0, str(README.parent))
    from benchmarks.quality import summary

    text = README.read_text()
    for layout in ("ogb", "npz"):
        folder = README.parent / "benchmarks" / "results" / "quality" / "compare_current" / layout
        graphs = sorted(path.parent.name for path in folder.glob("*/compare.json"))
        rows = [line for line in summary(folder, layout, graphs).splitlines() if line.startswith("| ") and "graph" not in line]
        assert len(rows) == len(graphs) == 5
        missing = [row for row in rows if row not in text]
        assert not missing, f"README rows not from {folder}: {missing}"
