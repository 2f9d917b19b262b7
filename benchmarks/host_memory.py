"""Host memory of ``graph-eigenmap fit``, one process against ``--nproc N``: peak PSS and anonymous memory, per phase.

    PYTHONPATH=. python benchmarks/host_memory.py --out DIR [--nproc 1 2]
        [--dataset csbm:num_nodes=1000000,num_edges=10000000,num_classes=5,num_features=100]
        [--fit-args "--estimator sampled --batch-size 1024 --steps 30 --k 16 --device cpu"] [--interval 0.1]

Each run is the command ``graph-eigenmap fit -d DATASET --out DIR/fit-N --nproc N FIT_ARGS`` as a subprocess. Every
``--interval`` seconds (10 Hz) the benchmark reads, for the command's process and all its descendants (the ranks of
``--nproc``), ``/proc/PID/status`` (RssAnon, RssFile, RssShmem) and ``/proc/PID/smaps_rollup`` (Pss, Pss_Anon,
Pss_File, Pss_Shmem), and sums them over the tree. Reported per run:

* **peak PSS** (summed proportional set size, the figure of issue 29 item 3): a page several processes map counts
  once in the sum, split among them, so the ranks' shared, memory-mapped graph counts once;
* **peak RssAnon** (summed): anonymous memory only, which the kernel cannot drop or share; pages of memory-mapped
  files do not count (item 2's figure);
* the same peaks per process, and per **phase** of the fit: the library writes ``<time> <pid> <rank> <phase>`` lines
  to ``$GRAPH_EIGENMAP_PHASE_FILE`` (:func:`graph_eigenmap.host_memory.mark_phase`): load, resolve (the automatic
  choices), inputs (propagated features), setup (estimator, model), train, outputs (embedding every node, exact
  quotients, sort, files), done. A sample belongs to the latest phase rank 0 (or the only process) has entered;
* the size of the fit's data (CSR arrays, features, the model's inputs, labels and split: what no fit can do
  without), and the peaks per node.

Writes DIR/host_memory.json and DIR/host_memory.md (device, date, commit and commands recorded), rewritten after
each run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.common import cli_command  # noqa: E402

DATASET = "csbm:num_nodes=1000000,num_edges=10000000,num_classes=5,num_features=100"
FIT_ARGS = "--estimator sampled --batch-size 1024 --steps 30 --k 16 --device cpu"
STATUS_KEYS = ("RssAnon", "RssFile", "RssShmem")
ROLLUP_KEYS = ("Pss", "Pss_Anon", "Pss_File", "Pss_Shmem")
GIB = 2**30


def descendants(root: int) -> list[int]:
    """``root`` and every process below it (from ``/proc/PID/task/TID/children``)."""
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                queue += [int(child) for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
            except (OSError, ValueError):
                pass
    return found


def read_kib(path: str, keys: tuple[str, ...]) -> dict[str, int] | None:
    """``{key: bytes}`` for the ``key: N kB`` lines of a /proc file; None when the process is gone."""
    values = dict.fromkeys(keys, 0)
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in values:
            values[key] = int(rest.split()[0]) * 1024
    return values


def sample(root: int) -> dict[int, dict[str, int]]:
    """``{pid: {RssAnon, RssFile, RssShmem, Pss, Pss_Anon, Pss_File, Pss_Shmem}}`` (bytes) for the tree under ``root``."""
    out = {}
    for pid in descendants(root):
        status = read_kib(f"/proc/{pid}/status", STATUS_KEYS)
        rollup = read_kib(f"/proc/{pid}/smaps_rollup", ROLLUP_KEYS)
        if status is not None and rollup is not None:
            out[pid] = {**status, **rollup}
    return out


def read_phases(path: Path) -> list[tuple[float, int, str, str]]:
    """``[(time, pid, rank, phase)]`` from the phase file, in time order."""
    if not path.exists():
        return []
    marks = []
    for line in path.read_text().splitlines():
        fields = line.split()
        if len(fields) == 4:
            marks.append((float(fields[0]), int(fields[1]), fields[2], fields[3]))
    return sorted(marks)


def phase_at(marks: list, when: float) -> str:
    """The latest phase rank 0 (or a process without a rank: the one of a one-process fit) entered by ``when``."""
    current = "start"
    for time_, _, rank, phase in marks:
        if time_ > when:
            break
        if rank in ("0", "-"):
            current = phase
    return current


def measure(command: list[str], env: dict, interval: float, log: Path, timeout: float | None = None) -> dict:
    """Run ``command``, sampling its process tree every ``interval`` seconds; the samples and its exit code (the
    command is killed after ``timeout`` seconds: ``timed_out``)."""
    samples, lowest_available, timed_out = [], None, False
    start = time.time()
    with open(log, "w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env=env)
        while True:
            tick = time.time()
            tree = sample(process.pid)
            if tree:
                samples.append((tick, tree))
            available = read_kib("/proc/meminfo", ("MemAvailable",))["MemAvailable"]
            lowest_available = available if lowest_available is None else min(lowest_available, available)
            if process.poll() is not None:
                break
            if timeout is not None and tick - start > timeout:
                process.kill()
                process.wait()
                timed_out = True
                break
            time.sleep(max(0.0, interval - (time.time() - tick)))
    return dict(samples=samples, exit_code=process.returncode, wall_s=round(time.time() - start, 1), start=start,
                timed_out=timed_out, lowest_available_gib=round(lowest_available / GIB, 2))


def summarize(samples: list, marks: list, start: float) -> dict:
    """Peaks of the summed and per-process figures, overall and per phase (GiB)."""
    def total(tree, key):
        return sum(values[key] for values in tree.values())

    peak = max(samples, key=lambda item: total(item[1], "Pss"))
    peak_anon = max(samples, key=lambda item: total(item[1], "RssAnon"))
    processes: dict[int, dict[str, int]] = {}
    for _, tree in samples:
        for pid, values in tree.items():
            kept = processes.setdefault(pid, dict.fromkeys(("Pss", "RssAnon", "RssFile"), 0))
            for key in kept:
                kept[key] = max(kept[key], values[key])
    ranks = {pid: rank for _, pid, rank, _ in marks}
    phases: dict[str, dict] = {}
    for when, tree in samples:
        name = phase_at(marks, when)
        entry = phases.setdefault(name, dict(first_s=round(when - start, 1), samples=0, peak_pss_gib=0.0,
                                             peak_rss_anon_gib=0.0))
        entry["samples"] += 1
        entry["last_s"] = round(when - start, 1)
        entry["peak_pss_gib"] = max(entry["peak_pss_gib"], round(total(tree, "Pss") / GIB, 3))
        entry["peak_rss_anon_gib"] = max(entry["peak_rss_anon_gib"], round(total(tree, "RssAnon") / GIB, 3))
    return dict(
        samples=len(samples),
        peak_pss_gib=round(total(peak[1], "Pss") / GIB, 3), peak_pss_at_s=round(peak[0] - start, 1),
        peak_pss_phase=phase_at(marks, peak[0]),
        peak_pss_parts_gib={key: round(total(peak[1], key) / GIB, 3) for key in ROLLUP_KEYS[1:]},
        peak_rss_anon_gib=round(total(peak_anon[1], "RssAnon") / GIB, 3), peak_rss_anon_at_s=round(peak_anon[0] - start, 1),
        peak_rss_anon_phase=phase_at(marks, peak_anon[0]),
        processes=[dict(pid=pid, rank=ranks.get(pid, "launcher" if index == 0 else "?"),
                        **{f"peak_{key.lower()}_gib": round(value / GIB, 3) for key, value in values.items()})
                   for index, (pid, values) in enumerate(processes.items())],
        phases=phases)


def data_bytes(folder: Path, dataset_features: int | None) -> dict:
    """Bytes of what the fit cannot do without, from its metadata.json and model.json."""
    meta = json.loads((folder / "metadata.json").read_text())
    model = json.loads((folder / "model.json").read_text())
    n, m = meta["num_nodes"], meta["num_edges"]
    width = model["num_features"]
    index = 4 if n < 2**31 and 2 * m < 2**31 else 8
    graph = (n + 1) * index + 2 * m * (index + 4)
    inputs = 4 * n * width
    features = 4 * n * dataset_features if dataset_features and dataset_features != width else 0
    labels_and_split = 16 * n
    return dict(num_nodes=n, num_edges=m, input_width=width, graph_gib=round(graph / GIB, 3),
                features_gib=round(features / GIB, 3), inputs_gib=round(inputs / GIB, 3),
                total_gib=round((graph + inputs + features + labels_and_split) / GIB, 3))


def dataset_feature_count(spec: str) -> int | None:
    """``num_features`` of a csbm spec (None for another dataset)."""
    if not spec.startswith("csbm"):
        return None
    for item in spec.partition(":")[2].split(","):
        key, _, value = item.partition("=")
        if key.strip() == "num_features":
            return int(value)
    return 100


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def run(nproc: int, args, scratch: Path) -> dict:
    folder = scratch / f"fit-{nproc}"
    phase_file = scratch / f"phases-{nproc}.txt"
    command = [*cli_command(), "fit", "-d", args.dataset, "--out", str(folder), "--quiet",
               *(["--nproc", str(nproc)] if nproc > 1 else []), *shlex.split(args.fit_args)]
    env = dict(os.environ, GRAPH_EIGENMAP_PHASE_FILE=str(phase_file))
    print("graph-eigenmap " + " ".join(command[3:]), flush=True)
    measured = measure(command, env, args.interval, scratch / f"fit-{nproc}.log")
    row = dict(nproc=nproc, command="graph-eigenmap " + " ".join(command[3:]).replace(str(scratch), "SCRATCH"),
               exit_code=measured["exit_code"], wall_s=measured["wall_s"],
               lowest_available_gib=measured["lowest_available_gib"])
    if measured["samples"]:
        row.update(summarize(measured["samples"], read_phases(phase_file), measured["start"]))
    if measured["exit_code"] == 0:
        row["data"] = data_bytes(folder, dataset_feature_count(args.dataset))
        meta = json.loads((folder / "metadata.json").read_text())
        row["rayleigh_quotients"] = meta["rayleigh_quotients"]
        n = row["data"]["num_nodes"]
        row["peak_pss_bytes_per_node"] = round(row["peak_pss_gib"] * GIB / n, 1)
        row["peak_rss_anon_bytes_per_node"] = round(row["peak_rss_anon_gib"] * GIB / n, 1)
    else:
        row["log_tail"] = (scratch / f"fit-{nproc}.log").read_text()[-2000:]
    print(json.dumps({key: value for key, value in row.items() if key not in ("processes", "phases")}), flush=True)
    return row


def markdown(report: dict) -> str:
    lines = ["# Host memory of `graph-eigenmap fit`: one process against `--nproc N`", "",
             f"{report['date']}, commit {report['commit']}, {report['device']}. `{report['command']}`", "",
             f"Dataset `{report['dataset']}`, fit options `{report['fit_args']}`; sampled at "
             f"{1 / report['interval_s']:g} Hz (/proc status and smaps_rollup, summed over the process tree).", "",
             "| N | exit | wall s | peak PSS GiB (phase) | of which anon / file | peak RssAnon GiB (phase) | data GiB | "
             "PSS / data | PSS bytes per node | RssAnon bytes per node | PSS vs N = 1 |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["runs"]:
        if "peak_pss_gib" not in r:
            lines.append(f"| {r['nproc']} | {r['exit_code']} | {r['wall_s']} | | | | | | | | |")
            continue
        parts, data = r["peak_pss_parts_gib"], r.get("data", {}).get("total_gib")
        ratio = f"{r['peak_pss_gib'] / data:.2f}" if data else ""
        lines.append(f"| {r['nproc']} | {r['exit_code']} | {r['wall_s']} | {r['peak_pss_gib']:.2f} ({r['peak_pss_phase']}) "
                     f"| {parts['Pss_Anon']:.2f} / {parts['Pss_File']:.2f} | {r['peak_rss_anon_gib']:.2f} "
                     f"({r['peak_rss_anon_phase']}) | {data or ''} | {ratio} "
                     f"| {r.get('peak_pss_bytes_per_node', '')} | {r.get('peak_rss_anon_bytes_per_node', '')} "
                     f"| {r.get('peak_pss_vs_one_process', '')} |")
    for r in report["runs"]:
        if not r.get("phases"):
            continue
        lines += ["", f"Phases, N = {r['nproc']} (summed over the processes; a sample belongs to the phase rank 0, or "
                  "the launcher before it, last entered):", "",
                  "| phase | from s | to s | peak PSS GiB | peak RssAnon GiB |", "|---|---|---|---|---|"]
        for name, p in r["phases"].items():
            lines.append(f"| {name} | {p['first_s']} | {p.get('last_s', p['first_s'])} | {p['peak_pss_gib']:.2f} | "
                         f"{p['peak_rss_anon_gib']:.2f} |")
        lines += ["", "| process | rank | peak PSS GiB | peak RssAnon GiB | peak RssFile GiB |", "|---|---|---|---|---|"]
        for p in r["processes"]:
            lines.append(f"| {p['pid']} | {p['rank']} | {p['peak_pss_gib']:.2f} | {p['peak_rssanon_gib']:.2f} | "
                         f"{p['peak_rssfile_gib']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--dataset", default=DATASET)
    parser.add_argument("--fit-args", default=FIT_ARGS, help="options passed to fit (one string)")
    parser.add_argument("--nproc", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between samples")
    parser.add_argument("--name", default="host_memory", help="stem of the result files")
    parser.add_argument("--scratch", default=None, help="folder for the fits' outputs (default: a temporary one)")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = dict(command="PYTHONPATH=. python benchmarks/" + " ".join([Path(sys.argv[0]).name, *map(shlex.quote,
                                                                                                      sys.argv[1:])]),
                  date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  commit=git_commit(), device=f"cpu ({os.cpu_count()} cores, {platform.machine()}, "
                  f"{read_kib('/proc/meminfo', ('MemTotal',))['MemTotal'] / GIB:.1f} GiB)",
                  dataset=args.dataset, fit_args=args.fit_args, interval_s=args.interval, runs=[])
    with tempfile.TemporaryDirectory(prefix="host-memory-", dir=args.scratch) as scratch:
        for nproc in args.nproc:
            report["runs"].append(run(nproc, args, Path(scratch)))
            base = next((r for r in report["runs"] if r["nproc"] == 1 and r.get("peak_pss_gib")), None)
            for r in report["runs"]:
                if base and r.get("peak_pss_gib"):
                    r["peak_pss_vs_one_process"] = round(r["peak_pss_gib"] / base["peak_pss_gib"], 3)
            (out / f"{args.name}.json").write_text(json.dumps(report, indent=1) + "\n")
            (out / f"{args.name}.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
