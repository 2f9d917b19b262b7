"""Host memory: how much this process may still allocate (:func:`host_available_memory`, cgroups included), and
keeping freed memory inside the process so that CPU training does not page-fault every step.

A training step on a CPU allocates and frees tens of megabytes of activations. glibc's malloc hands
large freed blocks back to the kernel (``munmap``, and trimming the top of the heap), so the next
step's allocations fault in every 4 KiB page again and the kernel zeroes each one. The default fit
of coauthor_cs on 2 CPU cores took 8.9 million minor page faults and 44.5 s of training that way,
against 0.14 million and 36-39 s with freed memory kept (benchmarks/results/scale/cpu_default_fit.md).
The cost: the process keeps its peak heap until it exits.

:func:`keep_freed_host_memory` sets glibc's ``M_MMAP_MAX`` to 0 (every block comes from the heap)
and ``M_TRIM_THRESHOLD`` to 2 GiB (the heap is not trimmed below that). The setting is process-wide, so
the library never applies it on its own: the ``graph-eigenmap`` command calls it before training on a
CPU (unless the environment sets ``GRAPH_EIGENMAP_KEEP_FREED_MEMORY=0``), and a Python program opts in
by calling it once before :func:`graph_eigenmap.neural_eigenmap` or ``NeuralEigenmap.fit``::

    from graph_eigenmap.host_memory import keep_freed_host_memory
    keep_freed_host_memory()

Elsewhere than Linux with glibc it does nothing.

:func:`mark_phase` notes where a fit is (loading, model inputs, training, outputs) in the file named by
``GRAPH_EIGENMAP_PHASE_FILE``, when set: ``benchmarks/host_memory.py`` samples a fit's memory from outside and
attributes each sample to the phase it fell in.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time
from pathlib import Path

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


def release_freed_host_memory() -> bool:
    """Hand the memory this process has freed back to the system now (glibc's ``malloc_trim``).

    With :func:`keep_freed_host_memory` in effect, what loading and preparing a run allocated and freed stays in
    the heap; training then keeps its peak for the rest of the process. Called before training's first step: the
    steps' own allocations are kept from then on. Returns False where there is no glibc (nothing done).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim(0)
    return True


PHASE_FILE_VARIABLE = "GRAPH_EIGENMAP_PHASE_FILE"
"""The environment variable naming the file :func:`mark_phase` appends to."""
PHASES = ("load", "share", "map", "resolve", "inputs", "setup", "train", "outputs", "done")
"""The phases a fit marks, in the order it enters them: loading or generating the graph; writing the copy the ranks of
``--nproc`` share (the launcher); mapping it (each rank); the automatic choices; the model's inputs (propagated
features); the estimator and model; training; the outputs (every node embedded, exact quotients, sort, files); the
end."""


def mark_phase(name: str) -> None:
    """Append ``<unix time> <pid> <RANK> <name>`` to the file ``$GRAPH_EIGENMAP_PHASE_FILE`` (nothing when unset);
    ``name`` is one of :data:`PHASES`.

    One short line per call, written with one ``write`` in append mode, so the ranks of a data-parallel run can share
    the file. An unwritable file is ignored: the marks only serve measurements.
    """
    if name not in PHASES:
        raise ValueError(f"unknown phase {name!r}: one of {', '.join(PHASES)}")
    path = os.environ.get(PHASE_FILE_VARIABLE)
    if not path:
        return
    line = f"{time.time():.3f} {os.getpid()} {os.environ.get('RANK', '-')} {name}\n"
    try:
        with open(path, "a") as handle:
            handle.write(line)
    except OSError:
        pass


PROC_SELF = Path("/proc/self")
"""Where :func:`host_available_memory` reads this process's cgroups (``cgroup``) and the mounts (``mountinfo``)."""
MEMINFO = Path("/proc/meminfo")
UNSET_CGROUP_LIMIT = 1 << 60
"""cgroup v1 reports an unset limit as about 2^63 bytes; any limit from here up counts as unset."""
_CGROUP_FILES = {2: ("memory.max", "memory.current", "inactive_file"),
                 1: ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")}


def host_available_memory() -> int:
    """Bytes this process can still allocate on the host (a guess of 8 GiB where nothing can be read).

    The smaller of the system's available memory (``psutil.virtual_memory().available``; without
    psutil, MemAvailable of /proc/meminfo: free memory plus the page cache the kernel can drop) and,
    for each memory cgroup holding this process and each of its ancestors with a limit set (cgroup v2
    ``memory.max``, v1 ``memory.limit_in_bytes``), the limit minus the usage (``memory.current``, v1
    ``memory.usage_in_bytes``). Usage counts the cgroup's page cache too, so its inactive file
    pages (``memory.stat``), which the kernel reclaims before it runs out, are not counted as used:
    the working set that container runtimes compare with the limit.
    """
    available = _system_available_memory()
    room = _cgroup_room()
    return available if room is None else min(available, room)


def _system_available_memory() -> int:
    try:
        import psutil  # deferred: an optional dependency, only read when memory is asked about
    except ImportError:  # optional: /proc/meminfo holds the same figure on Linux
        psutil = None
    if psutil is not None:
        return int(psutil.virtual_memory().available)
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def _cgroup_room() -> int | None:
    """The smallest limit minus working set over this process's memory cgroups; None where no limit is set."""
    try:
        memberships = (PROC_SELF / "cgroup").read_text().splitlines()
        mounts = (PROC_SELF / "mountinfo").read_text().splitlines()
    except OSError:
        return None
    paths = {}  # cgroup version -> this process's path in that hierarchy
    for line in memberships:
        number, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if number == "0" and controllers == "":
            paths[2] = path
        elif "memory" in controllers.split(","):
            paths[1] = path
    rooms = []
    for version, mount_root, mount_point in _memory_mounts(mounts):
        if version not in paths:
            continue
        path, root = paths[version], mount_root.rstrip("/")
        relative = path[len(root):].lstrip("/") if path == root or path.startswith(root + "/") else ""
        directory = mount_point / relative if (mount_point / relative).is_dir() else mount_point
        while True:  # the process's cgroup and each ancestor up to the mount: a parent's limit binds too
            room = _room_in(directory, *_CGROUP_FILES[version])
            if room is not None:
                rooms.append(room)
            if directory == mount_point or mount_point not in directory.parents:
                break
            directory = directory.parent
    return max(0, min(rooms)) if rooms else None


def _memory_mounts(mountinfo: list[str]) -> list[tuple[int, str, Path]]:
    """``(version, root in the hierarchy, mount point)`` of the cgroup v2 and v1 memory mounts in
    /proc/self/mountinfo."""
    mounts = []
    for line in mountinfo:
        fields = line.split()
        if "-" not in fields or len(fields) < 5:
            continue
        after = fields[fields.index("-") + 1:]
        fstype, options = after[0] if after else "", after[2].split(",") if len(after) > 2 else []
        if fstype == "cgroup2":
            mounts.append((2, fields[3], Path(fields[4])))
        elif fstype == "cgroup" and "memory" in options:
            mounts.append((1, fields[3], Path(fields[4])))
    return mounts


def _room_in(directory: Path, limit_file: str, usage_file: str, reclaimable_key: str) -> int | None:
    try:
        limit = (directory / limit_file).read_text().strip()
        if limit == "max" or int(limit) >= UNSET_CGROUP_LIMIT:
            return None
        usage = int((directory / usage_file).read_text())
    except (OSError, ValueError):
        return None
    reclaimable = 0
    try:
        for line in (directory / "memory.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == reclaimable_key:
                reclaimable = int(value)
    except (OSError, ValueError):
        pass
    return int(limit) - max(usage - reclaimable, 0)
