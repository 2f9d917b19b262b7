"""Freed host memory stays in the process once training on a CPU asked for it (Linux, glibc)."""

import subprocess
import sys

import pytest

SCRIPT = """
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from graph_eigenmap.host_memory import keep_freed_host_memory
    assert keep_freed_host_memory()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def step():  # like a training step: ten 20 MiB activations written, then all freed
    blocks = [np.ones(20 << 17) for _ in range(10)]
    del blocks
step()
before = faults()
for _ in range(3):
    step()
print(faults() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc only")
def test_kept_memory_is_reused_without_page_faults():
    counts = {mode: int(subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True,
                                       check=True).stdout) for mode in ("keep", "system")}
    if counts["system"] < 1000:  # 600 MiB written: 150k faults in 4 KiB pages, fewer with huge pages
        pytest.skip(f"this libc already reuses freed memory ({counts})")
    assert counts["keep"] < counts["system"] / 10, counts


def test_phase_marks_are_lines_of_time_pid_rank_and_a_named_phase(tmp_path, monkeypatch):
    import os
    import time

    from graph_eigenmap.host_memory import PHASE_FILE_VARIABLE, PHASES, mark_phase

    monkeypatch.delenv(PHASE_FILE_VARIABLE, raising=False)
    mark_phase("load")  # no file named: nothing written, nothing raised
    path = tmp_path / "phases.txt"
    monkeypatch.setenv(PHASE_FILE_VARIABLE, str(path))
    monkeypatch.setenv("RANK", "1")
    before = time.time()
    for name in ("load", "train"):
        mark_phase(name)
    lines = [line.split() for line in path.read_text().splitlines()]
    assert [fields[1:] for fields in lines] == [[str(os.getpid()), "1", "load"], [str(os.getpid()), "1", "train"]]
    assert all(before - 0.01 <= float(fields[0]) <= time.time() + 0.001 for fields in lines)  # written to 1 ms
    with pytest.raises(ValueError, match="unknown phase 'training'"):
        mark_phase("training")
    assert len(path.read_text().splitlines()) == 2 and len(set(PHASES)) == len(PHASES)
