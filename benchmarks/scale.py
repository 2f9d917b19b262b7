"""Scale suite: what it takes to reach, solve, probe and fit graphs of ogbn-products' and ogbn-papers100M's size.

    python -m benchmarks.scale --out DIR --parts generate load eigsh probe [--device cuda]
    python -m benchmarks.scale --out DIR --parts fit --graph csbm-papers100m --device cuda --fit-args "--steps 3000"
    python -m benchmarks.scale --out DIR --small              # CI's small form: every part, tiny graphs, CPU

Parts (each writes OUT/scale_<part>.{json,md}; ``--nodes`` / ``--edges`` change the products shape of the first four):

* ``generate``: generating the products-shaped CSBM (synthetic: 2,449,029 nodes, 61,859,140 edges, 100 features,
  47 classes) on ``--device``: seconds, the process's peak resident host memory, peak GPU memory.
* ``load``: that graph written in ogbn-products' exact on-disk layout (``benchmarks/write_products_shape.py``, into
  ``--root`` or a temporary folder), then ``graph-eigenmap info ogbn-products --root ROOT --json`` timed in a fresh
  process twice: with an empty cache (ogb's readers, cleaning, our cache written) and again (our cache); wall time and
  peak resident memory of each, against the products-scale targets.
* ``eigsh``: scipy's eigsh (ARPACK, CPU) of D^-1/2 A D^-1/2 for k = 64 on CSBM graphs of products' mean degree at
  growing n (``--sizes``), a fit seconds = a · n^b and its extrapolation to 2,449,029 nodes.
* ``probe``: the OGB-protocol linear probe (7 values of C, each to convergence) at 100 / 10 / 1 % labels, ``--runs``
  runs, and Correct & Smooth (one run), on a 2,048-wide representation of every node (a fixed random 2-layer network
  of the features: the probe's cost depends on the shape, not on what the columns mean).
* ``fit``: the one command a user runs, ``graph-eigenmap fit -d GRAPH --device DEVICE [--fit-args]``, in its own
  process: wall time and peak resident host memory, and from its metadata.json steps per second, seconds per epoch
  (sampled estimator: n seeds), time to plateau, peak GPU memory and the order of its outputs; with ``--score``,
  the captured spectrum against the exact top-k and the linear probe on its embeddings (graphs of up to some
  hundred thousand nodes); with ``--memory``, the fit again, sampled from outside: peak anonymous memory (RssAnon) and
  PSS over its processes, per phase (``benchmarks/host_memory.py``).
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import tempfile
from pathlib import Path

from benchmarks.common import (
    Report,
    cli_command,
    markdown_header,
    measured_run,
    parse_suite_args,
    plateau_entry,
    provenance,
    step_seconds,
    timed,
    write_result,
)

PARTS = ("generate", "load", "eigsh", "probe", "fit")
LOAD_TARGETS = dict(first_load_s=90.0, cached_load_s=10.0, peak_rss_gib=8.0)
"""The products-scale targets of loading, on a 2-core machine with 24 GB."""
SMALL = ["--nodes", "1000", "--edges", "5000", "--sizes", "1000", "3000", "--k", "8", "--width", "32", "--runs", "2",
         "--graph", "csbm:num_nodes=1000,num_edges=5000,num_classes=4,num_features=16", "--fit-args", "--steps 20 --k 8",
         "--score", "--memory", "--device", "cpu"]
"""What ``--small`` adds (CI's form)."""


def shape_of(args: argparse.Namespace) -> dict:
    from graph_eigenmap.data.synthetic import PRODUCTS_SHAPE

    return dict(PRODUCTS_SHAPE, **{key: value for key, value in (("num_nodes", args.nodes), ("num_edges", args.edges))
                                   if value is not None})


def peak_host_gib() -> float:
    """This process's peak resident memory so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def generate(args: argparse.Namespace, report: Report) -> None:
    import torch  # deferred: --help answers without torch

    from graph_eigenmap.data import csbm

    device = torch.device(args.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    graph, seconds = timed(lambda: csbm(device=device, name="csbm-products", **shape_of(args)), device)
    report.update(synthetic=True, graph=shape_of(args), num_nodes=graph.num_nodes, num_edges=graph.num_edges)
    report.put("generation_s", seconds, digits=2)
    report.put("peak_host_gib", peak_host_gib(), digits=2)
    if device.type == "cuda":
        report.put("peak_gpu_gib", torch.cuda.max_memory_allocated(device) / 2**30, digits=2)


def load(args: argparse.Namespace, report: Report) -> None:
    from benchmarks.write_products_shape import write

    with tempfile.TemporaryDirectory(prefix="scale-load-") as scratch:
        root = Path(args.root) if args.root else Path(scratch) / "root"
        if not (root / "ogbn_products" / "RELEASE_v1.txt").exists():
            _, seconds = timed(lambda: write(root, shape_of(args), log=lambda line: print(line, flush=True)))
            report.put("write_layout_s", seconds, digits=1)
        cache = Path(scratch) / "cache"
        command = [*cli_command(), "info", "ogbn-products", "--root", str(root), "--cache-dir", str(cache), "--json"]
        report["timed_command"] = shlex.join(["graph-eigenmap", *command[3:]])
        runs = [measured_run(command) for _ in range(2)]
    for run in runs:
        if run["exit_code"] != 0:
            raise SystemExit(f"{report['timed_command']} failed ({run['exit_code']}):\n{run['stderr'][-2000:]}")
    info = json.loads(runs[0]["stdout"])
    report.update(synthetic=True, num_nodes=info.get("num_nodes"), num_edges=info.get("num_edges"))
    report.put("first_load_s", runs[0]["wall_s"], digits=2)
    report.put("cached_load_s", runs[1]["wall_s"], digits=2)
    report.put("first_peak_rss_gib", runs[0]["peak_rss_gib"], digits=2)
    report.put("cached_peak_rss_gib", runs[1]["peak_rss_gib"], digits=2)
    report.put("peak_rss_gib", max(run["peak_rss_gib"] for run in runs), digits=2)
    report.update({f"{key}_target": value for key, value in LOAD_TARGETS.items()})
    report["meets_targets"] = all(report[key] <= value for key, value in LOAD_TARGETS.items())


def eigsh(args: argparse.Namespace, report: Report) -> None:
    import numpy as np
    from scipy.sparse.linalg import eigsh as arpack

    from graph_eigenmap import normalized_adjacency
    from graph_eigenmap.data import csbm
    from graph_eigenmap.data.synthetic import PRODUCTS_SHAPE

    mean_degree = 2 * PRODUCTS_SHAPE["num_edges"] / PRODUCTS_SHAPE["num_nodes"]
    runs = []
    for n in args.sizes:
        graph = csbm(n, int(n * mean_degree / 2), 47, 8, seed=0)
        kernel = normalized_adjacency(graph).astype(np.float64)
        _, seconds = timed(lambda: arpack(kernel, k=args.k, which="LA", v0=np.random.default_rng(0).normal(size=n),
                                          tol=1e-6))
        runs.append(dict(num_nodes=n, num_edges=graph.num_edges, seconds=round(seconds, 3)))
        print(json.dumps(runs[-1]), flush=True)
        if seconds > args.eigsh_limit_s / 4:
            break
    sizes, seconds = np.array([r["num_nodes"] for r in runs], float), np.array([r["seconds"] for r in runs])
    slope, intercept = np.polyfit(np.log(sizes), np.log(np.maximum(seconds, 1e-6)), 1) if len(runs) > 1 else (1.0, 0.0)
    report.update(synthetic=True, k=args.k, mean_degree=round(mean_degree, 2), runs=runs,
                  fit=f"seconds = {np.exp(intercept):.3g} * n^{slope:.2f}", exponent=round(float(slope), 3),
                  extrapolated_products_shape_s=round(float(np.exp(intercept) * PRODUCTS_SHAPE["num_nodes"] ** slope)))


def backbone_like(features, width: int, seed: int = 0, chunk: int = 1 << 18):
    """``[n, width]`` float32: a fixed random 2-layer GELU network of the ``[n, d]`` features."""
    import torch  # deferred: --help answers without torch

    generator = torch.Generator(device=features.device).manual_seed(seed)
    first = torch.randn(features.shape[1], width, generator=generator, device=features.device) / features.shape[1] ** 0.5
    second = torch.randn(width, width, generator=generator, device=features.device) / width ** 0.5
    out = torch.empty(features.shape[0], width, device=features.device)
    for i in range(0, features.shape[0], chunk):
        out[i:i + chunk] = torch.nn.functional.gelu(torch.nn.functional.gelu(features[i:i + chunk] @ first) @ second)
    return out


def probe(args: argparse.Namespace, report: Report) -> None:
    import torch  # deferred: --help answers without torch

    from graph_eigenmap.data import csbm
    from graph_eigenmap.evaluation.correct_and_smooth import CorrectAndSmooth
    from graph_eigenmap.evaluation.probe import probe_runs
    from graph_eigenmap.protocol import score_runs

    device = torch.device(args.device)
    graph = csbm(device=device, name="csbm-products", **shape_of(args))
    x = backbone_like(torch.from_numpy(graph.features).to(device), args.width)
    report.update(synthetic=True, num_nodes=graph.num_nodes, dimension=args.width, runs=args.runs,
                  train_nodes=int(len(graph.split["train"])), probe=[])
    for ratio in (1.0, 0.1, 0.01):
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        (result, _), seconds = timed(lambda: score_runs(probe_runs(x, graph, label_ratio=ratio, runs=args.runs,
                                                                   device=device), graph, method="probe",
                                                        label_ratio=ratio, runs=args.runs), device)
        fits = [fit for run in result.extra["runs"] for fit in run["fits"]]
        report["probe"].append(dict(
            label_ratio=ratio, seconds=round(seconds, 3), test_acc_mean=round(result.test_acc_mean, 4),
            chosen_C=[run["C"] for run in result.extra["runs"]],
            converged=all(run["converged"] for run in result.extra["runs"]),
            max_iterations=max(fit["iterations"] for fit in fits),
            peak_gpu_gib=round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None))
        print(json.dumps(report["probe"][-1]), flush=True)
    smoother = CorrectAndSmooth(graph, device)
    run = next(probe_runs(x, graph, runs=1, device=device))
    smoothed, seconds = timed(lambda: smoother(run), device)
    report.put("correct_and_smooth_one_run_s", seconds, digits=3)
    report["correct_and_smooth_alpha"] = [smoothed.details["correction_alpha"], smoothed.details["smoothing_alpha"]]


def fit(args: argparse.Namespace, report: Report) -> None:
    """The one fit command in its own process, and what its metadata.json says."""
    with tempfile.TemporaryDirectory(prefix="scale-fit-") as scratch:
        folder = Path(args.fit_dir) if args.fit_dir else Path(scratch) / "fit"
        command = [*cli_command(), "fit", "-d", args.graph, "--device", args.device, "--out", str(folder), "--quiet",
                   *shlex.split(args.fit_args)]
        report["fit_command"] = shlex.join(["graph-eigenmap", *command[3:]])
        print(report["fit_command"], flush=True)
        run = measured_run(command, timeout=args.fit_timeout)
        report.update(fit_exit_code=run["exit_code"])
        if run["exit_code"] != 0:
            raise SystemExit(f"{report['fit_command']} failed ({run['exit_code']}):\n{run['stderr'][-2000:]}")
        report.put("fit_wall_s", run["wall_s"], digits=2)
        report.put("fit_peak_host_gib", run["peak_rss_gib"], digits=2)
        if args.memory:
            anonymous_memory(command, Path(scratch), args, report)
        read_fit(json.loads((folder / "metadata.json").read_text()), report)
        if args.score:
            score(args, folder, report)


def anonymous_memory(command: list[str], scratch: Path, args: argparse.Namespace, report: Report) -> None:
    """The fit once more, sampled from outside at 1 Hz: peak anonymous memory (RssAnon: pages of memory-mapped files
    the kernel can drop do not count) and PSS, summed over its processes, overall and per phase of the fit."""
    import os

    from benchmarks.host_memory import measure, read_phases, summarize

    folder = scratch / "fit-memory"
    command = [*command[:command.index("--out") + 1], str(folder), *command[command.index("--out") + 2:]]
    phases = scratch / "phases.txt"
    measured = measure(command, dict(os.environ, GRAPH_EIGENMAP_PHASE_FILE=str(phases)), 1.0, scratch / "memory.log",
                       timeout=args.fit_timeout)
    if measured["exit_code"] != 0 or not measured["samples"]:
        raise SystemExit(f"{report['fit_command']} (memory sampled) failed ({measured['exit_code']}):\n"
                         + (scratch / "memory.log").read_text()[-2000:])
    memory = summarize(measured["samples"], read_phases(phases), measured["start"])
    report.put("fit_peak_rss_anon_gib", memory["peak_rss_anon_gib"], digits=2)
    report.put("fit_peak_pss_gib", memory["peak_pss_gib"], digits=2)
    report["fit_memory_phases"] = [dict(phase=name, **values) for name, values in memory["phases"].items()]


def read_fit(meta: dict, report: Report) -> None:
    history, config = meta["history"], meta["config"]
    per_step = step_seconds(history) if len(history) > 1 else meta["training_time_s"] / max(1, meta["steps"])
    report.update(synthetic=meta["synthetic"], num_nodes=meta["num_nodes"], num_edges=meta["num_edges"], k=meta["k"],
                  estimator=meta["estimator"], inputs=meta["inputs"], feature_storage=config.get("feature_storage"),
                  steps=meta["steps"], fit_device=meta["device"])
    report.put("steps_per_s", 1 / per_step, digits=2)
    if meta["estimator"] in ("sampled", "rows", "block"):
        report.put("epoch_s", per_step * meta["num_nodes"] / config["batch_size"], digits=3)
    plateau_step, plateau_s = plateau_entry(history)[:2]
    report.put("time_to_plateau_s", plateau_s, digits=2)
    report["time_to_plateau_steps"] = plateau_step
    report.put("training_s", meta["training_time_s"], digits=2)
    report.put("fit_s_after_loading", meta["wall_time_s"], digits=2)
    if meta.get("peak_gpu_gib") is not None:
        report.put("peak_gpu_gib", meta["peak_gpu_gib"], digits=2)
    quotients = meta["rayleigh_quotients"]
    report.update(final_objective=round(history[-1][2], 4), rayleigh_quotients_first=[round(q, 4) for q in quotients[:4]],
                  rayleigh_quotient_last=round(quotients[-1], 4), order_violations=len(meta["order_violations"]))


def score(args: argparse.Namespace, folder: Path, report: Report) -> None:
    """Captured spectrum against the exact top-k of the graph's kernel, and the probe on the embeddings (3 runs)."""
    import numpy as np

    from graph_eigenmap import load_graph, normalized_adjacency
    from graph_eigenmap.baselines import top_eigenpairs
    from graph_eigenmap.evaluation.probe import evaluate_embeddings
    from graph_eigenmap.metrics import captured_spectrum

    graph = load_graph(args.graph)
    embedding = np.load(folder / "embeddings.npy")
    kernel = normalized_adjacency(graph)
    exact, _ = top_eigenpairs(kernel, embedding.shape[1])
    report["captured_spectrum"] = round(captured_spectrum(embedding, kernel, exact), 4)
    report["probe_test_acc"] = round(evaluate_embeddings(embedding, graph, runs=3).test_acc_mean, 4)


def to_markdown(part: str, report: Report) -> str:
    """The report's settings as a list, its flat figures as one table, and each list of rows as a table of its own."""
    lines = markdown_header(f"Scale: {part}", report)
    header = ("suite", "command", "date", "commit", "device", "seeds", "part", "versions")
    lines += [f"- {key}: {value}" for key, value in report.items() if key not in header and
              not isinstance(value, (int, float)) and not (isinstance(value, list) and value and
                                                           isinstance(value[0], dict))] + [""]
    lines += ["| figure | value |", "|---|---|"] + [
        f"| {key} | {value} |" for key, value in report.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool)]
    for key, rows in report.items():
        if isinstance(rows, list) and rows and isinstance(rows[0], dict):
            lines += ["", f"{key}:", "", "| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
            lines += ["| " + " | ".join(str(row.get(column)) for column in rows[0]) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS)
    parser.add_argument("--small", action="store_true", help="CI's small form: " + " ".join(SMALL))
    parser.add_argument("--device", default="cpu", help="generate, probe, fit: where they run")
    parser.add_argument("--threads", type=int, default=None, help="torch threads of this process")
    parser.add_argument("--nodes", type=int, default=None, help="another number of nodes than products' (a check)")
    parser.add_argument("--edges", type=int, default=None)
    parser.add_argument("--root", default=None, help="load: a folder holding ogbn_products/ (default: written anew)")
    parser.add_argument("--sizes", nargs="+", type=int, default=[25_000, 50_000, 100_000, 200_000],
                        help="eigsh: the graph sizes")
    parser.add_argument("--k", type=int, default=64, help="eigsh: eigenpairs")
    parser.add_argument("--eigsh-limit-s", type=float, default=600, help="eigsh: stop after a size taking a quarter")
    parser.add_argument("--width", type=int, default=2048, help="probe: the representation's width")
    parser.add_argument("--runs", type=int, default=10, help="probe: runs per label ratio")
    parser.add_argument("--graph", default="csbm-papers100m", help="fit: the graph (anything `-d` takes)")
    parser.add_argument("--fit-args", default="", help="fit: more options of graph-eigenmap fit")
    parser.add_argument("--fit-dir", default=None, help="fit: its output folder (default: a temporary one)")
    parser.add_argument("--fit-timeout", type=float, default=None)
    parser.add_argument("--score", action="store_true", help="fit: captured spectrum and probe (small graphs)")
    parser.add_argument("--memory", action="store_true",
                        help="fit: run it again sampled from outside (Linux /proc) for peak RssAnon and PSS per phase")
    return parse_suite_args(parser, argv, SMALL)


def main(argv: list[str] | None = None) -> dict:
    import torch  # deferred: --help answers without torch

    args = parse(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    parts = {"generate": generate, "load": load, "eigsh": eigsh, "probe": probe, "fit": fit}
    reports = {}
    for part in args.parts:
        seeds = [0] if part != "probe" else list(range(args.runs))
        report = Report(provenance("scale", args.argv, args.device if part in ("generate", "probe", "fit") else "cpu",
                                   seeds=seeds), part=part)
        parts[part](args, report)
        write_result(args.out, f"scale_{part}", report, to_markdown(part, report))
        print(f"{part} done", flush=True)
        reports[part] = report
    return reports


if __name__ == "__main__":
    main()
