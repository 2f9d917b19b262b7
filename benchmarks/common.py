"""What the benchmark suites share: the provenance every result file records, writing it, timing and floors, the
shared graphs, the command line as a subprocess, and cases run side by side.

Every suite's report starts with :func:`provenance` (command, date, commit, device, seeds, and the torch, PyG and
CUDA versions) and is written by :func:`write_result`: ``<stem>.json`` and, beside it, ``<stem>.md`` headed by the
same facts (:func:`markdown_header`).
"""

from __future__ import annotations

import argparse
import datetime
import functools
import importlib.util
import multiprocessing
import os
import platform
import shlex
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_GRAPHS = ("cora", "citeseer", "amazon_photo", "amazon_computers", "coauthor_cs", "blogcatalog", "uai")
"""The real graphs of ``../shared/data``, each in two layouts (``ogb/ogbn_<name>``: 100-d features; ``npz/<name>.npz``:
the raw features)."""
LAYOUTS = ("ogb", "npz")
PROVENANCE_KEYS = ("suite", "command", "date", "commit", "device", "seeds", "versions")
"""What every result file of a suite holds at its top level (``versions``: torch, torch_geometric, cuda, ...)."""


def dataset_path(data: Path | str, layout: str, name: str) -> Path:
    """Where shared graph ``name`` lies in ``layout`` under the data folder ``data``."""
    return Path(data) / "ogb" / f"ogbn_{name}" if layout == "ogb" else Path(data) / "npz" / f"{name}.npz"


def commit() -> str:
    """The checkout's short commit, ``+dirty`` when tracked files differ from it; ``BENCHMARK_COMMIT`` where the
    checkout is a copy without ``.git`` (a device machine); else ``"unknown"``."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                               text=True, check=True).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("BENCHMARK_COMMIT", "unknown")


def device_name(device) -> str:
    """A GPU's name (and how many there are), or the CPU's cores and torch threads."""
    import torch  # deferred: the suites' --help answers without torch

    device = torch.device(device)
    if device.type == "cuda":
        count = torch.cuda.device_count()
        return torch.cuda.get_device_name(device) + (f" (one of {count})" if count > 1 else "")
    return (f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"{torch.get_num_threads()} torch threads)")


def versions() -> dict:
    """torch, PyG, CUDA (None for a CPU build), graph_eigenmap, numpy, scipy, Python."""
    import torch  # deferred: the suites' --help answers without torch

    def installed(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return dict(torch=torch.__version__, torch_geometric=installed("torch-geometric"), cuda=torch.version.cuda,
                graph_eigenmap=installed("graph-eigenmap"), numpy=installed("numpy"), scipy=installed("scipy"),
                python=platform.python_version())


def command_line(suite: str, argv: list[str] | None) -> str:
    """The command that reproduces this run: ``python -m benchmarks.<suite> <arguments>``."""
    arguments = sys.argv[1:] if argv is None else argv
    return shlex.join(["python", "-m", f"benchmarks.{suite}", *map(str, arguments)])


def provenance(suite: str, argv: list[str] | None, device, seeds) -> dict:
    """The facts every result file starts with (:data:`PROVENANCE_KEYS`)."""
    return dict(suite=suite, command=command_line(suite, argv),
                date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), commit=commit(),
                device=device_name(device), seeds=list(seeds), versions=versions())


def markdown_header(title: str, report: dict) -> list[str]:
    """The first lines of a suite's Markdown: the title and the provenance of ``report``."""
    v = report["versions"]
    return [f"# {title}", "",
            f"Device: {report['device']}. Date: {report['date']}. Commit: {report['commit']}. "
            f"Seeds: {', '.join(map(str, report['seeds'])) or 'none'}.",
            f"Versions: torch {v['torch']}, PyG {v['torch_geometric']}, CUDA {v['cuda'] or 'none (CPU build)'}.",
            f"Command: `{report['command']}`", ""]


def write_result(out: Path | str, stem: str, report: dict, markdown: str | None = None) -> Path:
    """``out/<stem>.json`` (and ``out/<stem>.md`` when given); returns the JSON's path. Rewritten as a run goes,
    so that a run cut short keeps what it measured; each file is replaced atomically."""
    from graph_eigenmap.files import atomic_write, save_json  # deferred: the suites' --help answers without torch

    out = Path(out)
    path = out / f"{stem}.json"
    save_json(path, report)
    if markdown is not None:
        atomic_write(out / f"{stem}.md", lambda handle: handle.write(markdown.encode()))
    return path


def figure_rows(report: dict, *, skip=()) -> list[str]:
    """Markdown rows ``| figure | value | floor | ratio to floor |`` of the report's flat numbers."""
    rows = ["| figure | value | floor | ratio to floor |", "|---|---|---|---|"]
    for key, value in report.items():
        if (isinstance(value, (int, float)) and not isinstance(value, bool) and key not in skip
                and not key.endswith(("_floor", "_ratio_to_floor"))):
            rows.append(f"| {key} | {value} | {report.get(key + '_floor', '')} | "
                        f"{report.get(key + '_ratio_to_floor', '')} |")
    return rows


class Report(dict):
    """Flat figures, each optionally with its floor (``<key>_floor``) and ratio (``<key>_ratio_to_floor``).

    For a time the floor is the least possible time and the ratio is value / floor; for a rate (``rate=True``) it is
    the greatest possible rate and the ratio is floor / value: either way, how many times slower than the floor.
    """

    def put(self, key: str, value: float, floor: float | None = None, digits: int = 3, rate: bool = False) -> None:
        self[key] = round(value, digits)
        if floor:
            self[f"{key}_floor"] = round(floor, digits + 2) if digits else round(floor)
            self[f"{key}_ratio_to_floor"] = round(floor / value if rate else value / floor, 1)


def synchronize(device) -> None:
    import torch  # deferred: the suites' --help answers without torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(function, device="cpu"):
    """``(function(), seconds)``, the device synchronized before and after."""
    synchronize(device)
    start = time.perf_counter()
    value = function()
    synchronize(device)
    return value, time.perf_counter() - start


def ceilings(device, size: int = 8192, copy_elements: int = 2**28) -> dict:
    """The device's measured bf16 matrix-multiply rate (``flops``, FLOP/s; float32 on a CPU) and copy bandwidth
    (``bytes``, bytes/s read + written): what the floors of the speed figures are made of."""
    import torch  # deferred: the suites' --help answers without torch

    from graph_eigenmap.evaluation.cost import median_seconds

    dtype = torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    matmul = median_seconds(lambda: a @ b, 5, device=device)
    source = torch.randn(copy_elements, device=device)
    target = torch.empty_like(source)
    copy = median_seconds(lambda: target.copy_(source), 5, device=device)
    return dict(flops=2 * size**3 / matmul, bytes=2 * source.numel() * 4 / copy)


def floor_seconds(peak: dict, flops: float, moved: float) -> float:
    """The least time for ``flops`` operations and ``moved`` bytes: the larger of the two at the measured ceilings."""
    return max(flops / peak["flops"], moved / peak["bytes"])


def mlp_multiply_adds(d: int, width: int, depth: int, k: int) -> int:
    """Multiply-adds per row of the MLP's forward pass (``d`` inputs, ``depth`` layers of ``width``, ``k`` outputs)."""
    return d * width + (depth - 1) * width * width + width * k


def spmm_bytes(nnz: int, n: int, columns: int) -> int:
    """One CSR product read once: int64 column index + float32 value per nonzero, input and output."""
    return nnz * 12 + 2 * n * columns * 4


def step_seconds(history) -> float:
    """Seconds per step from a training history ``[(step, seconds, loss, R_11)]``, leaving out the first interval
    (warm-up and compilation)."""
    (s0, t0, _, _), (s1, t1, _, _) = history[0], history[-1]
    return (t1 - t0) / (s1 - s0)


def plateau_entry(history) -> tuple:
    """The history entry at which the objective first comes within 1 % of its final value (the mean of the last 5 %
    of the history)."""
    tail = history[-max(3, len(history) // 20):]
    final = sum(entry[2] for entry in tail) / len(tail)
    return next((entry for entry in history if abs(entry[2] - final) <= 0.01 * abs(final)), history[-1])


def cli_command() -> list[str]:
    """``[python, -m, <the CLI module>]``: the installed ``graph_eigenmap_cli``, else this checkout's ``cli`` (with the
    checkout on ``PYTHONPATH``, as on a device machine where nothing is installed)."""
    module = "graph_eigenmap_cli.main" if importlib.util.find_spec("graph_eigenmap_cli") else "cli.main"
    return [sys.executable, "-m", module]


MEASURE = r"""
import resource, subprocess, sys, time
started = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
elapsed = time.perf_counter() - started
sys.stderr.write(done.stderr)
print(done.returncode, round(elapsed, 3), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(done.stdout)
"""


def measured_run(command: list[str], env: dict | None = None, timeout: float | None = None) -> dict:
    """Run ``command`` in a fresh process: ``{exit_code, wall_s, peak_rss_gib, stdout, stderr}``, the peak resident
    memory that of the command alone (a middle process reads its children's)."""
    try:
        done = subprocess.run([sys.executable, "-c", MEASURE, *command], capture_output=True, text=True,
                              env=env, timeout=timeout)
    except subprocess.TimeoutExpired as expired:
        return dict(exit_code="timed out", wall_s=timeout, peak_rss_gib=None, stdout="", stderr=str(expired))
    lines = done.stdout.splitlines()
    code, seconds, max_rss_kib = lines[0].split() if lines else ("failed", "nan", "0")
    return dict(exit_code=int(code) if code.lstrip("-").isdigit() else code, wall_s=float(seconds),
                peak_rss_gib=int(max_rss_kib) / 2**20, stdout="\n".join(lines[1:]), stderr=done.stderr)


def run_side_by_side(function, jobs: list, parallel: int = 1, threads: int | None = None) -> list:
    """``[function(job) for job in jobs]``, ``parallel`` at a time in spawned processes (``threads`` torch threads
    each); in this process when ``parallel`` is 1."""
    if parallel <= 1:
        return [function(job) for job in jobs]
    with multiprocessing.get_context("spawn").Pool(parallel) as pool:
        return pool.map(functools.partial(_with_threads, function, threads), jobs)


def _with_threads(function, threads: int | None, job):
    import torch  # deferred: only a worker process needs it here

    if threads:
        torch.set_num_threads(threads)
    return function(job)


def parse_suite_args(parser: argparse.ArgumentParser, argv: list[str] | None, small: list[str]) -> argparse.Namespace:
    """``parser``'s arguments from ``argv`` (default: the command line), with ``small`` put first when ``--small`` is
    given (so what is given overrides the small form's settings); ``args.argv`` keeps what was given."""
    given = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args([*small, *given] if "--small" in given else given)
    args.argv = given
    return args
