"""Free host memory for ``estimator="auto"``: psutil / /proc/meminfo and cgroup v2 / v1 limits, from faked readings."""

import sys
from types import SimpleNamespace

import pytest
import torch

from graph_eigenmap import host_memory
from graph_eigenmap.config import TrainConfig
from graph_eigenmap.host_memory import host_available_memory
from graph_eigenmap.recipe import resolve

GiB = 1 << 30


@pytest.fixture
def host(tmp_path, monkeypatch):
    """A fake /proc/self and cgroup tree under tmp_path, psutil reporting 10 GiB available."""
    proc = tmp_path / "proc"
    proc.mkdir()
    monkeypatch.setattr(host_memory, "PROC_SELF", proc)
    monkeypatch.setattr(host_memory, "MEMINFO", tmp_path / "meminfo")
    monkeypatch.setitem(sys.modules, "psutil", SimpleNamespace(virtual_memory=lambda: SimpleNamespace(available=10 * GiB)))

    def write(path, text):
        path = tmp_path / path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def mount(version, root, point):
        fstype, options = ("cgroup2", "rw") if version == 2 else ("cgroup", "rw,memory")
        return f"35 31 0:32 {root} {tmp_path / point} rw,relatime - {fstype} cgroup {options}\n"

    return SimpleNamespace(write=write, mount=mount, proc=proc)


def test_without_cgroups_psutil_decides(host):
    assert host_available_memory() == 10 * GiB  # no /proc/self/cgroup at all
    host.write("proc/cgroup", "0::/\n")
    host.write("proc/mountinfo", host.mount(2, "/", "cg2"))
    host.write("cg2/memory.max", "max\n")
    assert host_available_memory() == 10 * GiB


def test_cgroup_v2_limit_minus_working_set(host):
    host.write("proc/cgroup", "0::/user/job\n")
    host.write("proc/mountinfo", host.mount(2, "/", "cg2"))
    host.write("cg2/user/job/memory.max", f"{2 * GiB}\n")
    host.write("cg2/user/job/memory.current", f"{3 * GiB // 2}\n")
    host.write("cg2/user/job/memory.stat", f"anon {GiB}\nfile {GiB // 2}\ninactive_file {GiB // 4}\n")
    assert host_available_memory() == 2 * GiB - (3 * GiB // 2 - GiB // 4)  # inactive page cache is reclaimable
    host.write("cg2/user/memory.max", f"{GiB}\n")  # a parent's limit binds too
    host.write("cg2/user/memory.current", f"{GiB * 9 // 10}\n")
    assert host_available_memory() == GiB - GiB * 9 // 10
    host.write("cg2/user/memory.current", f"{2 * GiB}\n")  # over the limit: no room, never negative
    assert host_available_memory() == 0


def test_cgroup_v1_limit_with_the_container_mount_at_its_own_cgroup(host):
    host.write("proc/cgroup", "4:memory:/docker/abc\n0::/\n")
    host.write("proc/mountinfo", host.mount(1, "/docker/abc", "memory"))  # the container sees its cgroup as the root
    host.write("memory/memory.limit_in_bytes", "9223372036854771712\n")  # v1's "unset"
    host.write("memory/memory.usage_in_bytes", f"{GiB}\n")
    assert host_available_memory() == 10 * GiB
    host.write("memory/memory.limit_in_bytes", f"{3 * GiB}\n")
    host.write("memory/memory.stat", f"inactive_file 5\ntotal_inactive_file {GiB // 2}\n")
    assert host_available_memory() == 3 * GiB - GiB // 2


def test_cgroup_v1_nested_path_under_a_host_style_mount(host):
    host.write("proc/cgroup", "4:memory:/jobs/7\n")
    host.write("proc/mountinfo", host.mount(1, "/", "memory"))
    host.write("memory/jobs/7/memory.limit_in_bytes", f"{4 * GiB}\n")
    host.write("memory/jobs/7/memory.usage_in_bytes", f"{GiB}\n")
    assert host_available_memory() == 3 * GiB
    host.write("memory/jobs/7/memory.limit_in_bytes", f"{64 * GiB}\n")  # more than the machine has
    assert host_available_memory() == 10 * GiB


def test_without_psutil_meminfo_then_the_limit(host, monkeypatch):
    monkeypatch.setitem(sys.modules, "psutil", None)  # import psutil raises ImportError
    host.write("meminfo", "MemTotal:       16384000 kB\nMemFree:          100000 kB\nMemAvailable:    6000000 kB\n")
    assert host_available_memory() == 6000000 * 1024
    host.write("proc/cgroup", "0::/\n")
    host.write("proc/mountinfo", host.mount(2, "/", "cg2"))
    host.write("cg2/memory.max", f"{GiB}\n")
    host.write("cg2/memory.current", "0\n")
    assert host_available_memory() == GiB


def test_auto_estimator_samples_when_the_cgroup_leaves_too_little_room(host):
    from graph_eigenmap.data import load_graph

    graph = load_graph("csbm:num_nodes=1000,num_edges=5000,num_features=8")
    cpu = torch.device("cpu")
    assert resolve(TrainConfig(batch_size=256), graph, cpu).estimator == "rows"  # 10 GiB free
    host.write("proc/cgroup", "0::/\n")
    host.write("proc/mountinfo", host.mount(2, "/", "cg2"))
    host.write("cg2/memory.max", f"{64 << 20}\n")
    host.write("cg2/memory.current", f"{60 << 20}\n")  # 4 MiB left: a full-graph step needs more than half of it
    assert resolve(TrainConfig(batch_size=256), graph, cpu).estimator == "sampled"
