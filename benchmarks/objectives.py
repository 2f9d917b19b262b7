"""NeuralSVD against NeuralEF at equal wall time (issue 26 item 4): eigenvalue errors, captured spectrum, order, probes.

For each graph, kernel and model (``--features``): the exact top-k eigenpairs of the kernel (scipy's eigsh per
component, :func:`graph_eigenmap.baselines.laplacian_eigenmap`; Chebyshev subspace iteration on a GPU for large
graphs), then each objective fitted for the same training time. Equal time: each objective first runs
``--calibration-steps`` steps (which also warms everything up); its median seconds per step, over the 10-step
stretches after the 10th, give the steps that fill ``--seconds``, and the fit runs those steps (the warm-up +
cosine schedule spans them). Everything else is the library's default (inputs, estimator, optimizer, learning
rate, k = 64). Reported per fit:

* eigenvalue errors: |q_j − λ_j| of the exact Rayleigh quotients q_j of the outputs against the exact λ_j
  (mean, max and per output), and of training's running estimates;
* captured spectrum tr(QᵀĀQ) / Σλ of the whole embedding and of its prefixes (m = k/8, k/4, k/2: 1.0 means the
  first m outputs span the top-m eigenspace, which only ordered outputs do);
* order: neighbouring outputs whose exact quotients rise by more than 0.01 as training left them, and whether the
  fit's final sort had to permute them;
* the linear probe's test accuracy (``graph_eigenmap.evaluation.evaluate_representation``, model chosen on valid)
  on the k eigenfunctions and, for the MLP, on its backbone.

    PYTHONPATH=. python benchmarks/objectives.py --data ../shared/data --layout ogb --out benchmarks/results/quality \\
        --graphs cora csbm:num_nodes=3000,num_edges=30000 --seconds 10 --runs 3 --device cpu
    PYTHONPATH=. python benchmarks/objectives.py --data ../shared/data --layout ogb --out benchmarks/results/quality \\
        --device cuda --seconds 60 --graphs cora citeseer amazon_photo amazon_computers coauthor_cs blogcatalog uai

Writes OUT/objectives_<cpu|gpu>[_npz].json and .md (``--stem`` to name them otherwise).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from graph_eigenmap import load_graph, neural_eigenmap
from graph_eigenmap.baselines import laplacian_eigenmap
from graph_eigenmap.evaluation import evaluate_representation
from graph_eigenmap.fit_outputs import order_violations
from graph_eigenmap.kernel import full_kernel
from graph_eigenmap.metrics import captured_spectrum
from graph_eigenmap.registry import KERNELS, OBJECTIVES
from graph_eigenmap.transfer import resolve_device

ROOT = Path(__file__).resolve().parents[1]
SHARED = ("cora", "citeseer", "amazon_photo", "amazon_computers", "coauthor_cs", "blogcatalog", "uai")


def graph_source(name: str, data: Path, layout: str):
    """A shared graph's path in ``layout``, or the name itself (a csbm spec, an OGB name) for load_graph."""
    if name not in SHARED:
        return name
    return data / "ogb" / f"ogbn_{name}" if layout == "ogb" else data / "npz" / f"{name}.npz"


def exact_top(graph, kernel: str, k: int, device) -> np.ndarray:
    """The exact top-k eigenvalues of the kernel ``kernel`` names, descending."""
    choice = KERNELS[kernel]
    values, _ = laplacian_eigenmap(graph, k, variant="nontrivial" if choice.nontrivial else "top", device=device,
                                   self_loops=choice.self_loops)
    return (1 + values) / 2 if choice.shift else values


def median_step_seconds(result) -> float:
    """Median seconds per step of a fit over its 10-step stretches after the 10th (one-time costs and other
    processes' bursts left out)."""
    history = np.array([entry[:2] for entry in result.metadata["history"]])  # (step, seconds since start) every 10
    return float(np.median(np.diff(history[:, 1]) / np.diff(history[:, 0]))) if len(history) > 1 else float("nan")


def timed_fit(graph, objective: str, args: argparse.Namespace, options: dict):
    """The fit of ``objective``: ``args.steps`` steps, or as many as fill ``args.seconds`` of training (see the
    module docstring)."""
    steps = args.steps
    if steps is None:
        probe = neural_eigenmap(graph, objective=objective, steps=args.calibration_steps, progress=False, **options)
        steps = max(args.calibration_steps, int(args.seconds / max(median_step_seconds(probe), 1e-6)))
    return neural_eigenmap(graph, objective=objective, steps=steps, progress=False, **options)


def measure(result, exact: np.ndarray, kernel_matrix, device) -> dict:
    """Eigenvalue errors, captured spectrum (whole and prefixes) and order of a fit (see the module docstring)."""
    k = len(exact)
    quotients = np.asarray(result.rayleigh_quotients, dtype=np.float64)
    errors = np.abs(quotients - exact)
    embedding = torch.from_numpy(np.ascontiguousarray(result.embedding)).to(device)
    prefixes = sorted({m for m in (k // 8, k // 4, k // 2, k) if m >= 1})
    meta = result.metadata
    return dict(
        quotient_error_mean=float(errors.mean()), quotient_error_max=float(errors.max()),
        quotient_errors=[round(float(e), 6) for e in errors],
        estimate_error_max=float(np.abs(np.asarray(result.eigenvalues) - exact).max()),
        captured={str(m): round(captured_spectrum(embedding[:, :m], kernel_matrix, exact[:m]), 6) for m in prefixes},
        order_violations_in_training=len(meta["order_violations_in_training"]),
        order_violations=len(order_violations(quotients)), final_sort=meta["final_sort"] is not None,
        quotients_first=[round(float(v), 5) for v in quotients[:4]], quotient_last=round(float(quotients[-1]), 5),
    )


def probes(result, graph, features: str, ratios, runs: int, device) -> dict:
    """Test accuracy (%) of the probe on the eigenfunctions and, for an MLP, its backbone, per label ratio."""
    representations = {"embedding": result.embedding}
    if features != "identity" and result.backbone is not None:
        representations["backbone"] = result.backbone
    scores = {}
    for name, x in representations.items():
        for ratio in ratios:
            row = evaluate_representation(np.asarray(x), graph, label_ratio=ratio, runs=runs, device=device)
            scores[f"{name}@{ratio:g}"] = dict(test=round(100 * row["test_acc_mean"], 2),
                                               test_std=round(100 * row["test_acc_std"], 2),
                                               valid=round(100 * row["valid_acc_mean"], 2))
    return scores


def run_graph(name: str, args: argparse.Namespace, device) -> list[dict]:
    graph = load_graph(graph_source(name, Path(args.data), args.layout))
    rows = []
    for kernel in args.kernels:
        exact = exact_top(graph, kernel, args.k, device)
        kernel_matrix = full_kernel(graph, kernel, device)
        for features in args.features:
            options = dict(k=args.k, kernel=kernel, features=features, device=device, seed=args.seed)
            for objective in args.objectives:
                started = time.perf_counter()
                result = timed_fit(graph, objective, args, options)
                row = dict(graph=name, layout=args.layout if name in SHARED else "-", kernel=kernel, features=features,
                           inputs=str(result.config.inputs) if features != "identity" else "-",
                           estimator=result.config.estimator, objective=objective, steps=result.config.steps,
                           seconds_per_step=round(median_step_seconds(result), 5),
                           training_time_s=round(result.metadata["training_time_s"], 2),
                           exact_first=[round(float(v), 5) for v in exact[:4]], exact_last=round(float(exact[-1]), 5))
                row.update(measure(result, exact, kernel_matrix, device))
                row["probe"] = probes(result, graph, features, args.label_ratios, args.runs, device)
                row["wall_time_s"] = round(time.perf_counter() - started, 1)
                print(json.dumps({key: value for key, value in row.items() if key != "quotient_errors"}), flush=True)
                rows.append(row)
    return rows


def to_markdown(report: dict) -> str:
    rows = report["results"]
    probe_keys = sorted({key for row in rows for key in row["probe"]}, key=lambda key: (key.split("@")[0] != "embedding",
                                                                                        -float(key.split("@")[1])))
    lines = [f"# NeuralSVD against NeuralEF at equal training time ({report['device']}, {report['date']})", "",
             f"Commit {report['commit']}. Command: `{report['command']}`", "",
             (f"Each fit trains for about {report['seconds']} s (steps from a {report['calibration_steps']}-step "
              "calibration run of the same objective)" if report.get("seconds") else
              f"Each fit trains {report['steps']} steps (equal steps; s/step is the median over 10-step stretches)")
             + "; k = " + str(report["k"]) + ", the library's defaults otherwise. "
             "Quotient error: |exact Rayleigh quotient of output j − exact λ_j|, mean and max over the k outputs. "
             "Captured@m: tr(QᵀĀQ)/Σλ of the first m outputs (1 = the top-m eigenspace). Order: neighbouring outputs "
             "whose quotients rise by > 0.01 as training left them (the final sort then permutes them). Probe: test "
             f"accuracy % of the linear probe, mean of {report['runs']} runs, on the k outputs (embedding) or the "
             "backbone, at the label ratio after @.", "",
             "| graph | kernel | model | objective | steps | train s | s/step | quotient error mean / max | captured@"
             + "/".join(rows[0]["captured"]) + " | order | " + " | ".join(probe_keys) + " |",
             "|---|---|---|---|---|---|---|---|---|---|" + "---|" * len(probe_keys)]
    for r in rows:
        model = "table" if r["features"] == "identity" else f"MLP ({r['inputs']}, {r['estimator']})"
        captured = " / ".join(f"{value:.4f}" for value in r["captured"].values())
        probes_text = " | ".join(f"{r['probe'][key]['test']:.1f} ± {r['probe'][key]['test_std']:.1f}"
                                 if key in r["probe"] else "-" for key in probe_keys)
        lines.append(f"| {r['graph']} ({r['layout']}) | {r['kernel']} | {model} | {r['objective']} | {r['steps']} | "
                     f"{r['training_time_s']} | {r['seconds_per_step']:.4f} | {r['quotient_error_mean']:.4f} / {r['quotient_error_max']:.4f} | "
                     f"{captured} | {r['order_violations_in_training']} | {probes_text} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"), help="the shared data folder")
    parser.add_argument("--layout", choices=("ogb", "npz"), default="ogb")
    parser.add_argument("--graphs", nargs="+", default=list(SHARED), help="shared graph names or csbm/OGB specs")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--stem", default=None, help="file names (default objectives_<cpu|gpu>[_npz])")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seconds", type=float, default=30.0, help="training time per fit")
    parser.add_argument("--calibration-steps", type=int, default=60, help="at least 20")
    parser.add_argument("--steps", type=int, default=None,
                        help="equal steps instead of equal time (a machine shared with other work times nothing well)")
    parser.add_argument("--objectives", nargs="+", default=list(OBJECTIVES.names()))
    parser.add_argument("--kernels", nargs="+", default=["adjacency", "nontrivial"])
    parser.add_argument("--features", nargs="+", default=["input"], help="input (the MLP) and/or identity (a table)")
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--runs", type=int, default=10, help="probe runs")
    parser.add_argument("--label-ratios", nargs="+", type=float, default=[1.0])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    device = resolve_device(args.device)
    tag = "gpu" if device.type == "cuda" else "cpu"
    stem = args.stem or f"objectives_{tag}" + ("_npz" if args.layout == "npz" else "")
    report = dict(
        command="PYTHONPATH=. python " + " ".join(sys.argv),
        commit=subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True).stdout.strip(),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        device=(torch.cuda.get_device_name(device) if device.type == "cuda"
                else f"{platform.processor() or 'cpu'} ({torch.get_num_threads()} threads)"),
        seconds=None if args.steps else args.seconds, steps=args.steps, calibration_steps=args.calibration_steps,
        k=args.k, runs=args.runs, results=[])
    for name in args.graphs:
        report["results"] += run_graph(name, args, device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / f"{stem}.md").write_text(to_markdown(report))
    print(to_markdown(report))


if __name__ == "__main__":
    main()
