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
