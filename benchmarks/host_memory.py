"""Host memory suite: ``graph-eigenmap fit`` in one process against ``--nproc N``, peak PSS and anonymous memory, per
phase (issue 29, item 3: several processes on one host share one copy of the graph).

    python -m benchmarks.host_memory --out DIR [--nproc 1 2] [--name host_memory]
        [--dataset csbm:num_nodes=1000000,num_edges=10000000,num_classes=5,num_features=100]
        [--fit-args "--estimator sampled --batch-size 1024 --steps 30 --k 16 --device cpu"] [--interval 0.1]
    python -m benchmarks.host_memory --out DIR --small     # CI's small form: a tiny csbm, N = 1 and 2 (gloo), CPU

Each run is ``graph-eigenmap fit -d DATASET --out SCRATCH/fit-N [--nproc N] FIT_ARGS`` as a subprocess. Every
``--interval`` seconds the suite reads, for the command's process and all its descendants (the ranks of ``--nproc``),
``/proc/PID/status`` (RssAnon, RssFile, RssShmem) and ``/proc/PID/smaps_rollup`` (Pss, Pss_Anon, Pss_File,
Pss_Shmem), and sums them over the tree. Reported per run:

* **peak PSS** (summed proportional set size, the figure of issue 29 item 3): a page several processes map counts
  once in the sum, split among them, so the ranks' shared, memory-mapped graph counts once; and its ratio to the one
  process's peak (``peak_pss_vs_one_process``, the target at most :data:`PSS_RATIO_TARGET`);
* **peak RssAnon** (summed): anonymous memory only, which the kernel can neither drop nor share; pages of
  memory-mapped files do not count (item 2's figure);
* the same peaks per process, and per **phase** of the fit: the library writes ``<time> <pid> <rank> <phase>`` lines
  to ``$GRAPH_EIGENMAP_PHASE_FILE`` (:func:`graph_eigenmap.host_memory.mark_phase`, the names of
  :data:`graph_eigenmap.host_memory.PHASES`). A sample belongs to the latest phase rank 0 (or the only process)
  has entered; ``start`` before the first mark (the interpreter and its imports);
* the size of the fit's **data**, what no fit can do without (CSR arrays, features, the model's inputs, labels and
  split; bytes from n, m, the feature and input widths), and the peaks per node and against the data;
* the figure at **ogbn-products' shape** (2,449,029 nodes, 61,859,140 edges, 100 features), **extrapolated**, not
  measured: what each process holds before any data (the interpreter, torch) as measured, the rest of each peak
  scaled by the data at that shape (computed the same way) over the measured data (:func:`products_shape`).

Writes DIR/NAME.json and DIR/NAME.md (provenance of :mod:`benchmarks.common`), rewritten after each run. Linux only
(/proc). Reading smaps_rollup walks a process's page tables: at 10 Hz on fits of some GB the sampler takes about 0.4
of a core (a 2-core machine's fits then run slower; the memory figures do not change). At products' shape on such a
machine one fit takes over 10 minutes (generation 160 s, the propagated inputs over 4 minutes when the cores are
shared): the suite's full form stays at a million nodes and states products' figure by extrapolation.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import cli_command, markdown_header, parse_suite_args, provenance, write_result

DATASET = "csbm:num_nodes=1000000,num_edges=10000000,num_classes=5,num_features=100"
FIT_ARGS = "--estimator sampled --batch-size 1024 --steps 30 --k 16 --device cpu"
SMALL = ["--dataset", "csbm:num_nodes=2000,num_edges=10000,num_classes=4,num_features=16",
         "--fit-args", "--estimator sampled --batch-size 128 --steps 3 --k 4 --width 32 --device cpu",
         "--nproc", "1", "2", "--interval", "0.1", "--name", "host_memory_small"]
"""What ``--small`` adds (CI's form)."""
PSS_RATIO_TARGET = 1.3
"""Issue 29 item 3: the summed peak PSS of ``--nproc 2`` at most this many times that of one process."""
EXTRAPOLATION_MAX_SCALE = 20
"""The figure at products' shape is stated (in the Markdown) only from a graph with at least 1/20 of its data."""
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
    """The latest phase rank 0 (or a process without a rank: the one of a one-process fit, the launcher of
    ``--nproc``) entered by ``when``; ``start`` before any."""
    current = "start"
    for time_, _, rank, phase in marks:
        if time_ > when:
            break
        if rank in ("0", "-"):
            current = phase
    return current


def measure(command: list[str], env: dict, interval: float, log: Path, timeout: float | None = None) -> dict:
    """Run ``command``, sampling its process tree every ``interval`` seconds: the samples, its pid and exit code, the
    lowest MemAvailable seen (the command is killed after ``timeout`` seconds: ``timed_out``)."""
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
    return dict(samples=samples, pid=process.pid, exit_code=process.returncode, wall_s=round(time.time() - start, 1),
                start=start, timed_out=timed_out, lowest_available_gib=round(lowest_available / GIB, 2))


def summarize(samples: list, marks: list, start: float, root: int | None = None) -> dict:
    """Peaks of the summed and per-process figures (bytes, and GiB to 3 places), overall and per phase; ``root``
    (the command's pid) is named the launcher among the processes."""
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
    root = next(iter(processes)) if root is None else root
    return dict(
        samples=len(samples),
        peak_pss_bytes=total(peak[1], "Pss"), peak_pss_gib=round(total(peak[1], "Pss") / GIB, 3),
        peak_pss_at_s=round(peak[0] - start, 1), peak_pss_phase=phase_at(marks, peak[0]),
        peak_pss_parts_gib={key: round(total(peak[1], key) / GIB, 3) for key in ROLLUP_KEYS[1:]},
        peak_rss_anon_bytes=total(peak_anon[1], "RssAnon"),
        peak_rss_anon_gib=round(total(peak_anon[1], "RssAnon") / GIB, 3),
        peak_rss_anon_at_s=round(peak_anon[0] - start, 1), peak_rss_anon_phase=phase_at(marks, peak_anon[0]),
        processes=[dict(pid=pid, rank=process_role(pid, root, ranks),
                        **{f"peak_{key.lower()}_gib": round(value / GIB, 3) for key, value in values.items()})
                   for pid, values in processes.items()],
        phases=phase_peaks(samples, marks, start))


def process_role(pid: int, root: int, ranks: dict[int, str]) -> str:
    """``"0"``, ``"1"``, ... for a rank; ``"launcher"`` for the command's process when ranks run under it, ``"single"``
    when it fits alone; ``"helper"`` for another (multiprocessing's resource tracker)."""
    if pid == root:
        return "launcher" if any(rank.isdigit() for rank in ranks.values()) else "single"
    return ranks.get(pid, "helper")


def phase_peaks(samples: list, marks: list, start: float) -> dict[str, dict]:
    """``{phase: {first_s, last_s, samples, peak_pss_gib, peak_rss_anon_gib}}``, summed over the processes."""
    phases: dict[str, dict] = {}
    for when, tree in samples:
        entry = phases.setdefault(phase_at(marks, when), dict(first_s=round(when - start, 1), samples=0,
                                                              peak_pss_gib=0.0, peak_rss_anon_gib=0.0))
        entry["samples"] += 1
        entry["last_s"] = round(when - start, 1)
        entry["peak_pss_gib"] = max(entry["peak_pss_gib"], round(sum(v["Pss"] for v in tree.values()) / GIB, 3))
        entry["peak_rss_anon_gib"] = max(entry["peak_rss_anon_gib"],
                                         round(sum(v["RssAnon"] for v in tree.values()) / GIB, 3))
    return phases


def data_bytes(num_nodes: int, num_edges: int, num_features: int, inputs: str) -> dict:
    """Bytes of what a fit cannot do without: the CSR arrays (2m stored entries: int32 ids where they fit, float32
    weights), the float32 features and model inputs (none apart from the features for ``inputs='features'``), the
    int64 labels and split (n each)."""
    from graph_eigenmap.registry import parse_inputs  # deferred: --help answers without the library

    spec = parse_inputs(inputs)
    width = spec.width(num_features)
    index = 4 if num_nodes < 2**31 and 2 * num_edges < 2**31 else 8
    sizes = dict(graph_bytes=(num_nodes + 1) * index + 2 * num_edges * (index + 4),
                 features_bytes=4 * num_nodes * num_features,
                 inputs_bytes=0 if spec.name == "features" else 4 * num_nodes * width,
                 labels_split_bytes=16 * num_nodes)
    total = sum(sizes.values())
    return dict(num_nodes=num_nodes, num_edges=num_edges, num_features=num_features, inputs=spec.name,
                input_width=width, **sizes, total_bytes=total, total_gib=round(total / GIB, 3))


def fit_data(folder: Path, dataset: str) -> dict:
    """:func:`data_bytes` of a fit from its metadata.json and model.json (the features' width: the csbm spec's, else
    the input width over the propagation's hops + 1)."""
    from graph_eigenmap.data import parse_csbm_spec  # deferred: --help answers without the library
    from graph_eigenmap.registry import parse_inputs

    meta = json.loads((folder / "metadata.json").read_text())
    width = json.loads((folder / "model.json").read_text())["num_features"]
    spec = parse_inputs(meta["inputs"])
    features = parse_csbm_spec(dataset)["num_features"] if dataset.startswith("csbm") else width // (spec.hops + 1)
    return data_bytes(meta["num_nodes"], meta["num_edges"], features, meta["inputs"])


def run(nproc: int, args: argparse.Namespace, scratch: Path) -> dict:
    """One fit on ``nproc`` processes, sampled from outside: its row of the report."""
    folder, phase_file, log = scratch / f"fit-{nproc}", scratch / f"phases-{nproc}.txt", scratch / f"fit-{nproc}.log"
    command = [*cli_command(), "fit", "-d", args.dataset, "--out", str(folder), "--quiet",
               *(["--nproc", str(nproc)] if nproc > 1 else []), *shlex.split(args.fit_args)]
    shown = shlex.join(["graph-eigenmap", *command[3:]]).replace(str(scratch), "SCRATCH")
    print(shown, flush=True)
    measured = measure(command, dict(os.environ, GRAPH_EIGENMAP_PHASE_FILE=str(phase_file)), args.interval, log,
                       timeout=args.fit_timeout)
    row = dict(nproc=nproc, command=shown, exit_code=measured["exit_code"], timed_out=measured["timed_out"],
               wall_s=measured["wall_s"], lowest_available_gib=measured["lowest_available_gib"])
    if measured["samples"]:
        row.update(summarize(measured["samples"], read_phases(phase_file), measured["start"], measured["pid"]))
    if measured["exit_code"] == 0:
        row["data"] = data = fit_data(folder, args.dataset)
        row["rayleigh_quotients"] = json.loads((folder / "metadata.json").read_text())["rayleigh_quotients"]
        n = data["num_nodes"]
        row["peak_pss_bytes_per_node"] = round(row["peak_pss_bytes"] / n, 1)
        row["peak_rss_anon_bytes_per_node"] = round(row["peak_rss_anon_bytes"] / n, 1)
        row["peak_pss_vs_data"] = round(row["peak_pss_bytes"] / data["total_bytes"], 3)
        row["peak_rss_anon_vs_data"] = round(row["peak_rss_anon_bytes"] / data["total_bytes"], 3)
    else:
        row["log_tail"] = log.read_text()[-2000:]
    print(json.dumps({key: value for key, value in row.items() if key not in ("processes", "phases")}), flush=True)
    return row


def compare_runs(report: dict) -> None:
    """Each run's peak PSS against the one process's, whether ``--nproc`` meets :data:`PSS_RATIO_TARGET`, and the
    figures extrapolated to products' shape."""
    runs = [r for r in report["runs"] if r["exit_code"] == 0 and "peak_pss_bytes" in r]
    base = next((r for r in runs if r["nproc"] == 1), None)
    if base is None:
        return
    for r in runs:
        r["peak_pss_vs_one_process"] = round(r["peak_pss_bytes"] / base["peak_pss_bytes"], 3)
    several = [r for r in report["runs"] if r["nproc"] > 1]
    report["peak_pss_vs_one_process"] = {str(r["nproc"]): r.get("peak_pss_vs_one_process") for r in several}
    report["meets_target"] = bool(several) and all(r["exit_code"] == 0 and r["peak_pss_vs_one_process"]
                                                   <= PSS_RATIO_TARGET for r in several)
    report["products_shape"] = products_shape(runs, base["data"])


def products_shape(runs: list[dict], measured: dict) -> dict:
    """The peaks at ogbn-products' shape, **extrapolated**: each run's peak less what its processes hold before any
    data (the interpreter and its imports: the one process's peak in phase ``start``, once per process: the launcher
    and the ranks), scaled by products' data over the measured data (:func:`data_bytes`, the measured run's inputs),
    that part added back."""
    from graph_eigenmap.data.synthetic import PRODUCTS_SHAPE  # deferred: --help answers without the library

    n = PRODUCTS_SHAPE["num_nodes"]
    data = data_bytes(n, PRODUCTS_SHAPE["num_edges"], PRODUCTS_SHAPE["num_features"], measured["inputs"])
    scale = data["total_bytes"] / measured["total_bytes"]
    start = next(r for r in runs if r["nproc"] == 1)["phases"].get("start", {})
    runtime = dict(pss=start.get("peak_pss_gib", 0.0) * GIB, anon=start.get("peak_rss_anon_gib", 0.0) * GIB)
    rows = []
    for r in runs:
        processes = r["nproc"] + (r["nproc"] > 1)
        fixed = {key: processes * value for key, value in runtime.items()}
        pss = fixed["pss"] + max(0.0, r["peak_pss_bytes"] - fixed["pss"]) * scale
        anon = fixed["anon"] + max(0.0, r["peak_rss_anon_bytes"] - fixed["anon"]) * scale
        rows.append(dict(nproc=r["nproc"], processes=processes, peak_pss_gib=round(pss / GIB, 2),
                         peak_pss_bytes_per_node=round(pss / n), peak_rss_anon_gib=round(anon / GIB, 2),
                         peak_rss_anon_bytes_per_node=round(anon / n)))
    base = rows[[r["nproc"] for r in runs].index(1)]
    for row in rows:
        row["peak_pss_vs_one_process"] = round(row["peak_pss_gib"] / base["peak_pss_gib"], 3)
    return dict(extrapolated=True, meaningful=scale <= EXTRAPOLATION_MAX_SCALE, shape=dict(PRODUCTS_SHAPE), data=data,
                data_scale=round(scale, 4),
                data_bytes_per_node=round(data["total_bytes"] / n, 1),
                measured_data_bytes_per_node=round(measured["total_bytes"] / measured["num_nodes"], 1),
                runtime_pss_gib_per_process=round(runtime["pss"] / GIB, 3),
                runtime_rss_anon_gib_per_process=round(runtime["anon"] / GIB, 3),
                rule="peak = R + (measured peak - R) x products' data / measured data, R = the processes' runtime "
                     "(one process's peak in phase start, per process)", runs=rows)


def to_markdown(report: dict) -> str:
    lines = markdown_header("Host memory of `graph-eigenmap fit`: one process against `--nproc N`", report) + [
        f"Dataset `{report['dataset']}`, fit options `{report['fit_args']}`; host memory {report['host_memory_gib']} "
        f"GiB. Sampled every {report['interval_s']} s from outside (/proc status and smaps_rollup, summed over the "
        "process tree). PSS counts a page mapped by several processes once, split among them; RssAnon is anonymous "
        f"memory only. Target: peak PSS of N > 1 at most {PSS_RATIO_TARGET}x that of one process.", "",
        "| N | exit | wall s | peak PSS GiB (phase) | of which anon / file | peak RssAnon GiB (phase) | data GiB | "
        "PSS / data | PSS bytes per node | RssAnon bytes per node | PSS vs N = 1 | lowest MemAvailable GiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["runs"]:
        if "peak_pss_gib" not in r:
            lines.append(f"| {r['nproc']} | {r['exit_code']} | {r['wall_s']} |" + " |" * 9)
            continue
        parts, data = r["peak_pss_parts_gib"], r.get("data", {}).get("total_gib", "")
        lines.append(f"| {r['nproc']} | {r['exit_code']} | {r['wall_s']} | {r['peak_pss_gib']:.2f} "
                     f"({r['peak_pss_phase']}) | {parts['Pss_Anon']:.2f} / {parts['Pss_File']:.2f} | "
                     f"{r['peak_rss_anon_gib']:.2f} ({r['peak_rss_anon_phase']}) | {data} | "
                     f"{r.get('peak_pss_vs_data', '')} | {r.get('peak_pss_bytes_per_node', '')} | "
                     f"{r.get('peak_rss_anon_bytes_per_node', '')} | {r.get('peak_pss_vs_one_process', '')} | "
                     f"{r['lowest_available_gib']} |")
    if "meets_target" in report:
        lines += ["", f"Meets the target: {'yes' if report['meets_target'] else 'no'} "
                  f"(peak PSS against one process: {report['peak_pss_vs_one_process']})."]
    lines += data_lines(report) + products_lines(report.get("products_shape"))
    for r in report["runs"]:
        lines += phase_lines(r)
    return "\n".join(lines) + "\n"


def data_lines(report: dict) -> list[str]:
    data = next((r["data"] for r in report["runs"] if "data" in r), None)
    if data is None:
        return []
    return ["", f"Data ({data['num_nodes']:,} nodes, {data['num_edges']:,} edges, {data['num_features']} features, "
            f"inputs `{data['inputs']}` of {data['input_width']} columns): graph {data['graph_bytes'] / GIB:.3f} GiB, "
            f"features {data['features_bytes'] / GIB:.3f}, model inputs {data['inputs_bytes'] / GIB:.3f}, labels "
            f"and split {data['labels_split_bytes'] / GIB:.3f}; in all {data['total_gib']} GiB."]


def products_lines(products: dict | None) -> list[str]:
    if not products:
        return []
    data, shape = products["data"], products["shape"]
    if not products["meaningful"]:
        return ["", f"No figure at ogbn-products' shape: its data is {products['data_scale']:.0f}x the measured "
                f"graph's, more than the {EXTRAPOLATION_MAX_SCALE}x an extrapolation is stated for."]
    lines = ["", "## At ogbn-products' shape: an extrapolation, not a measurement", "",
             f"{shape['num_nodes']:,} nodes, {shape['num_edges']:,} edges, {shape['num_features']} features, inputs "
             f"`{data['inputs']}` ({data['input_width']} columns): data {data['total_gib']} GiB, "
             f"{products['data_bytes_per_node']:,} bytes per node against the measured graph's "
             f"{products['measured_data_bytes_per_node']:,} ({products['data_scale']}x the data). Rule: "
             f"{products['rule']}; R = {products['runtime_pss_gib_per_process']} GiB PSS "
             f"({products['runtime_rss_anon_gib_per_process']} GiB RssAnon) per process. It assumes that all "
             "the rest, transients included, grows with the data, as the arrays do.", "",
             "| N | processes | peak PSS GiB | PSS bytes per node | peak RssAnon GiB | RssAnon bytes per node | "
             "PSS vs N = 1 |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['nproc']} | {r['processes']} | {r['peak_pss_gib']} | {r['peak_pss_bytes_per_node']:,} | "
              f"{r['peak_rss_anon_gib']} | {r['peak_rss_anon_bytes_per_node']:,} | {r['peak_pss_vs_one_process']} |"
              for r in products["runs"]]
    return lines


def phase_lines(r: dict) -> list[str]:
    if not r.get("phases"):
        return [] if r["exit_code"] == 0 else ["", f"N = {r['nproc']} failed:", "", "```", r.get("log_tail", ""),
                                               "```"]
    lines = ["", f"## Phases, N = {r['nproc']}", "", "Summed over the processes; a sample belongs to the phase rank 0 "
             "(or the one process, or the launcher before the ranks start) last entered.", "",
             "| phase | from s | to s | peak PSS GiB | peak RssAnon GiB |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {p['first_s']} | {p['last_s']} | {p['peak_pss_gib']:.2f} | {p['peak_rss_anon_gib']:.2f} |"
              for name, p in r["phases"].items()]
    lines += ["", "| process | rank | peak PSS GiB | peak RssAnon GiB | peak RssFile GiB |", "|---|---|---|---|---|"]
    lines += [f"| {p['pid']} | {p['rank']} | {p['peak_pss_gib']:.2f} | {p['peak_rssanon_gib']:.2f} | "
              f"{p['peak_rssfile_gib']:.2f} |" for p in r["processes"]]
    return lines


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.host_memory", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--small", action="store_true", help="CI's small form: " + " ".join(SMALL))
    parser.add_argument("--dataset", default=DATASET, help="anything `fit -d` takes")
    parser.add_argument("--fit-args", default=FIT_ARGS, help="options passed to fit (one string)")
    parser.add_argument("--nproc", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between samples")
    parser.add_argument("--name", default="host_memory", help="stem of the result files")
    parser.add_argument("--scratch", default=None, help="folder for the fits' outputs (default: a temporary one)")
    parser.add_argument("--fit-timeout", type=float, default=None, help="seconds before a fit is killed")
    return parse_suite_args(parser, argv, SMALL)


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    report = dict(provenance("host_memory", args.argv, "cpu", seeds=[0]), dataset=args.dataset,
                  fit_args=args.fit_args, interval_s=args.interval,
                  host_memory_gib=round(read_kib("/proc/meminfo", ("MemTotal",))["MemTotal"] / GIB, 1),
                  pss_ratio_target=PSS_RATIO_TARGET, runs=[])
    with tempfile.TemporaryDirectory(prefix="host-memory-", dir=args.scratch) as scratch:
        for nproc in args.nproc:
            report["runs"].append(run(nproc, args, Path(scratch)))
            compare_runs(report)
            write_result(args.out, args.name, report, to_markdown(report))
    print(to_markdown(report))
    return report


if __name__ == "__main__":
    main()
