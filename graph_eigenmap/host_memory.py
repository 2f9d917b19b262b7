"""Keep freed host memory inside the process, so that CPU training does not page-fault every step.

A training step on a CPU allocates and frees tens of megabytes of activations. glibc's malloc hands
large freed blocks back to the kernel (``munmap``, and trimming the top of the heap), so the next
step's allocations fault in every 4 KiB page again and the kernel zeroes each one. The default fit
of coauthor_cs on 2 CPU cores took 8.9 million minor page faults and 44.5 s of training that way,
against 0.14 million and 36-39 s with freed memory kept (benchmarks/results/cpu_default_fit.md).
The cost: the process keeps its peak heap until it exits.

:func:`keep_freed_host_memory` sets glibc's ``M_MMAP_MAX`` to 0 (every block comes from the heap)
and ``M_TRIM_THRESHOLD`` to 2 GiB (the heap is not trimmed below that). The setting is process-wide, so
the library never applies it on its own: the ``graph-eigenmap`` command calls it before training on a
CPU (unless the environment sets ``GRAPH_EIGENMAP_KEEP_FREED_MEMORY=0``), and a Python program opts in
by calling it once before :func:`graph_eigenmap.neural_eigenmap` or ``NeuralEigenmap.fit``::

    from graph_eigenmap.host_memory import keep_freed_host_memory
    keep_freed_host_memory()

Elsewhere than Linux with glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
TRIM_THRESHOLD_BYTES = 2**31 - 1  # mallopt takes an int
_applied = False


def keep_freed_host_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse, for the rest of the process.

    Returns:
        True when the setting is in effect; False where it cannot apply (not Linux with glibc) or
        where ``GRAPH_EIGENMAP_KEEP_FREED_MEMORY=0`` declines it.
    """
    global _applied
    if _applied:
        return True
    if os.environ.get("GRAPH_EIGENMAP_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl, ...)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    _applied = mallopt(M_MMAP_MAX, 0) == 1 and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
    return _applied
