"""Objectives suite: NeuralSVD against NeuralEF at equal training time (issue 26 item 4).

    python -m benchmarks.objectives --data ../shared/data --layout ogb --out DIR --device cuda --seconds 60 \\
        --graphs cora citeseer amazon_photo amazon_computers coauthor_cs blogcatalog uai
    python -m benchmarks.objectives --data ../shared/data --layout ogb --out DIR --device cpu --seconds 8 --runs 3 \\
        --graphs cora csbm:num_nodes=3000,num_edges=30000
    python -m benchmarks.objectives --out DIR --small      # CI's small form: a 300-node CSBM, CPU, 0.5 s per fit

(``PYTHONPATH=. python benchmarks/objectives.py ...`` runs the same.)

For each graph, kernel and model (``--features``): the exact top-k eigenpairs of the kernel (scipy's eigsh per
component, :func:`graph_eigenmap.baselines.laplacian_eigenmap`; Chebyshev subspace iteration on a GPU for large
graphs), then each objective fitted for the same training time. Equal time: each objective first runs
``--calibration-steps`` steps (which also warms everything up); its median seconds per step, over the 10-step
stretches after the 10th, give the steps that fill ``--seconds``, and the fit runs those steps (the warm-up +
cosine schedule spans them). ``--steps N`` gives every fit N steps instead (a machine shared with other work times
nothing well). Everything else is the library's default (inputs, estimator, optimizer, learning rate), k = 64.
Reported per fit:

* eigenvalue errors: |q_j − λ_j| of the exact Rayleigh quotients q_j of the outputs against the exact λ_j
  (mean, max and per output, with both arrays), and of training's running estimates;
* captured spectrum tr(QᵀĀQ) / Σλ of the whole embedding and of its prefixes (m = k/8, k/4, k/2: 1.0 means the
  first m outputs span the top-m eigenspace, which only ordered outputs do);
* order: neighbouring outputs whose exact quotients rise by more than 0.01 as training left them, and whether the
  fit's final sort had to permute them;
* the linear probe's test accuracy (``graph_eigenmap.evaluation.evaluate_representation``, model chosen on valid,
  ``--runs`` seeds 0..runs-1) on the k eigenfunctions and, for the MLP, on its backbone.

Writes OUT/objectives_<cpu|gpu>[_npz].json and .md (``--small``: objectives_small; ``--stem`` names them otherwise),
rewritten after every fit, so that a run cut short keeps the fits it finished.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from benchmarks.common import (
    LAYOUTS,
    ROOT,
    SHARED_GRAPHS,
    dataset_path,
    markdown_header,
    parse_suite_args,
    provenance,
    write_result,
)
from graph_eigenmap.registry import KERNELS, OBJECTIVES

SMALL = ["--graphs", "csbm:num_nodes=300,num_edges=1500,num_classes=3,num_features=12,seed=2", "--seconds", "0.5",
         "--calibration-steps", "20", "--k", "8", "--runs", "1", "--device", "cpu"]
"""What ``--small`` adds (CI's form); what is given besides overrides it."""
PREFIX_FRACTIONS = (8, 4, 2, 1)
"""The captured spectrum is reported for the first k/8, k/4, k/2 and all k outputs."""


def graph_source(name: str, data: Path | str, layout: str):
    """A shared graph's path in ``layout``, or the name itself (a csbm spec, an OGB name) for load_graph."""
    return dataset_path(data, layout, name) if name in SHARED_GRAPHS else name


def prefixes(k: int) -> list[int]:
    """The prefix sizes whose captured spectrum a fit reports, ascending: k/8, k/4, k/2, k (those at least 1)."""
    return sorted({k // fraction for fraction in PREFIX_FRACTIONS if k // fraction >= 1})


def exact_top(graph, kernel: str, k: int, device):
    """The exact top-k eigenvalues of the kernel ``kernel`` names, descending (float64 numpy)."""
    from graph_eigenmap.baselines import laplacian_eigenmap  # deferred: --help answers without torch

    choice = KERNELS[kernel]
    values, _ = laplacian_eigenmap(graph, k, variant="nontrivial" if choice.nontrivial else "top", device=device,
                                   self_loops=choice.self_loops)
    values = np.asarray(values, dtype=np.float64)
    return (1 + values) / 2 if choice.shift else values


def median_step_seconds(result) -> float:
    """Median seconds per step of a fit over its 10-step stretches after the 10th (one-time costs and other
    processes' bursts left out)."""
    history = np.array([entry[:2] for entry in result.metadata["history"]])  # (step, seconds since start) every 10
    return float(np.median(np.diff(history[:, 1]) / np.diff(history[:, 0]))) if len(history) > 1 else float("nan")


def timed_fit(graph, objective: str, args: argparse.Namespace, options: dict):
    """``(fit, calibration seconds per step)`` of ``objective``: ``args.steps`` steps (no calibration), or as many
    as fill ``args.seconds`` of training at the calibration run's median step time (see the module docstring)."""
    from graph_eigenmap import neural_eigenmap  # deferred: --help answers without torch

    steps, per_step = args.steps, None
    if steps is None:
        calibration = neural_eigenmap(graph, objective=objective, steps=args.calibration_steps, progress=False,
                                      **options)
        per_step = median_step_seconds(calibration)
        steps = max(args.calibration_steps, int(args.seconds / max(per_step, 1e-6)))
    return neural_eigenmap(graph, objective=objective, steps=steps, progress=False, **options), per_step


def measure(result, exact, kernel_matrix, device) -> dict:
    """Eigenvalue errors, captured spectrum (whole and prefixes) and order of a fit (see the module docstring)."""
    import torch  # deferred: --help answers without torch

    from graph_eigenmap.fit_outputs import order_violations
    from graph_eigenmap.metrics import captured_spectrum

    quotients = np.asarray(result.rayleigh_quotients, dtype=np.float64)
    estimates = np.asarray(result.eigenvalues, dtype=np.float64)
    errors = np.abs(quotients - exact)
    embedding = torch.from_numpy(np.ascontiguousarray(result.embedding)).to(device)
    meta = result.metadata
    return dict(
        quotient_error_mean=float(errors.mean()), quotient_error_max=float(errors.max()),
        quotient_errors=[round(float(e), 6) for e in errors],
        estimate_error_max=float(np.abs(estimates - exact).max()),
        exact=[round(float(v), 8) for v in exact], quotients=[round(float(v), 8) for v in quotients],
        estimates=[round(float(v), 8) for v in estimates],
        captured={str(m): round(captured_spectrum(embedding[:, :m], kernel_matrix, exact[:m]), 6)
                  for m in prefixes(len(exact))},
        order_violations_in_training=len(meta["order_violations_in_training"]),
        order_violations=len(order_violations(quotients)), final_sort=meta["final_sort"] is not None,
    )


def probes(result, graph, features: str, ratios, runs: int, device) -> dict:
    """The probe's accuracy (fractions in [0, 1]) on the eigenfunctions and, for an MLP, its backbone, per label
    ratio: ``{"embedding@1": {test_acc_mean, test_acc_std, valid_acc_mean}, ...}``."""
    from graph_eigenmap.evaluation import evaluate_representation  # deferred: --help answers without torch

    representations = {"embedding": result.embedding}
    if features != "identity" and result.backbone is not None:
        representations["backbone"] = result.backbone
    scores = {}
    for name, x in representations.items():
        for ratio in ratios:
            row = evaluate_representation(np.asarray(x), graph, label_ratio=ratio, runs=runs, device=device)
            scores[f"{name}@{ratio:g}"] = {key: round(float(row[key]), 4)
                                           for key in ("test_acc_mean", "test_acc_std", "valid_acc_mean")}
    return scores


def fit_row(graph, name: str, kernel: str, features: str, objective: str, exact, kernel_matrix,
            args: argparse.Namespace, device) -> dict:
    """One fit of ``objective`` measured: its settings, steps and times, then :func:`measure` and :func:`probes`."""
    started = time.perf_counter()
    options = dict(k=args.k, kernel=kernel, features=features, device=device, seed=args.seed)
    result, calibration_per_step = timed_fit(graph, objective, args, options)
    row = dict(graph=name, layout=args.layout if name in SHARED_GRAPHS else "-", kernel=kernel, features=features,
               inputs=str(result.config.inputs) if features != "identity" else "-",
               estimator=result.config.estimator, objective=objective, steps=result.config.steps,
               calibration_seconds_per_step=None if calibration_per_step is None else round(calibration_per_step, 5),
               seconds_per_step=round(median_step_seconds(result), 5),
               training_time_s=round(result.metadata["training_time_s"], 2))
    row.update(measure(result, exact, kernel_matrix, device))
    row["probe"] = probes(result, graph, features, args.label_ratios, args.runs, device)
    row["wall_time_s"] = round(time.perf_counter() - started, 1)
    return row


def run_graph(name: str, args: argparse.Namespace, device):
    """Each fit's row on graph ``name``, as it is measured: kernels × models × objectives."""
    from graph_eigenmap import load_graph  # deferred: --help answers without torch
    from graph_eigenmap.kernel import full_kernel

    graph = load_graph(graph_source(name, args.data, args.layout))
    for kernel in args.kernels:
        exact = exact_top(graph, kernel, args.k, device)
        kernel_matrix = full_kernel(graph, kernel, device)
        for features in args.features:
            for objective in args.objectives:
                yield fit_row(graph, name, kernel, features, objective, exact, kernel_matrix, args, device)


def to_markdown(report: dict) -> str:
    rows = report["results"]
    probe_keys = sorted({key for row in rows for key in row["probe"]},
                        key=lambda key: (key.split("@")[0] != "embedding", -float(key.split("@")[1])))
    budget = (f"Each fit trains for about {report['seconds']} s (steps from a {report['calibration_steps']}-step "
              "calibration run of the same objective)" if report["seconds"] else
              f"Each fit trains {report['steps']} steps (equal steps)")
    lines = markdown_header("NeuralSVD against NeuralEF at equal training time", report) + [
        budget + f"; k = {report['k']}, the library's defaults otherwise. s/step: the fit's median over its 10-step "
        "stretches. Quotient error: |exact Rayleigh quotient of output j − exact λ_j|, mean and max over the k "
        "outputs. Captured@m: tr(QᵀĀQ)/Σλ of the first m outputs (1 = the top-m eigenspace). Order: neighbouring "
        "outputs whose quotients rise by > 0.01 as training left them (the final sort then permutes them). Probe: "
        f"test accuracy % of the linear probe, mean ± std of {report['probe_runs']} runs, on the k outputs "
        "(embedding) or the backbone, at the label ratio after @.", ""]
    if not rows:
        return "\n".join(lines + ["No fit finished yet."]) + "\n"
    lines += ["| graph | kernel | model | objective | steps | train s | s/step | quotient error mean / max | captured@"
              + "/".join(rows[0]["captured"]) + " | order | " + " | ".join(probe_keys) + " |",
              "|---|---|---|---|---|---|---|---|---|---|" + "---|" * len(probe_keys)]
    for r in rows:
        model = "table" if r["features"] == "identity" else f"MLP ({r['inputs']}, {r['estimator']})"
        captured = " / ".join(f"{value:.4f}" for value in r["captured"].values())
        probe_cells = " | ".join(f"{100 * r['probe'][key]['test_acc_mean']:.1f} ± "
                                 f"{100 * r['probe'][key]['test_acc_std']:.1f}" if key in r["probe"] else "-"
                                 for key in probe_keys)
        lines.append(f"| {r['graph']} ({r['layout']}) | {r['kernel']} | {model} | {r['objective']} | {r['steps']} | "
                     f"{r['training_time_s']} | {r['seconds_per_step']:.4f} | {r['quotient_error_mean']:.4f} / "
                     f"{r['quotient_error_max']:.4f} | {captured} | {r['order_violations_in_training']} | "
                     f"{probe_cells} |")
    return "\n".join(lines) + "\n"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.objectives", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data"),
                        help="the shared data folder (holds ogb/ and npz/)")
    parser.add_argument("--layout", choices=LAYOUTS, default="ogb", help="of the shared graphs")
    parser.add_argument("--graphs", nargs="+", default=list(SHARED_GRAPHS), help="shared graph names or csbm/OGB specs")
    parser.add_argument("--out", required=True)
    parser.add_argument("--stem", default=None, help="file names (default objectives_<cpu|gpu>[_npz])")
    parser.add_argument("--small", action="store_true", help="CI's small form: " + " ".join(SMALL))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seconds", type=float, default=30.0, help="training time per fit")
    parser.add_argument("--calibration-steps", type=int, default=60, help="at least 20")
    parser.add_argument("--steps", type=int, default=None,
                        help="equal steps instead of equal time (a machine shared with other work times nothing well)")
    parser.add_argument("--objectives", nargs="+", default=list(OBJECTIVES.names()), choices=OBJECTIVES.names())
    parser.add_argument("--kernels", nargs="+", default=["adjacency", "nontrivial"], choices=KERNELS.names())
    parser.add_argument("--features", nargs="+", default=["input"], choices=("input", "identity"),
                        help="input (the MLP) and/or identity (a table)")
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--runs", type=int, default=10, help="probe runs (seeds 0..runs-1)")
    parser.add_argument("--label-ratios", nargs="+", type=float, default=[1.0])
    parser.add_argument("--seed", type=int, default=0, help="the fits' seed")
    args = parse_suite_args(parser, argv, SMALL)
    if args.steps is None and args.calibration_steps < 20:
        parser.error("--calibration-steps must be at least 20 (two 10-step stretches give the step time)")
    return args


def default_stem(args: argparse.Namespace, device) -> str:
    if args.stem:
        return args.stem
    if args.small:
        return "objectives_small"
    return f"objectives_{'gpu' if device.type == 'cuda' else 'cpu'}" + ("_npz" if args.layout == "npz" else "")


def main(argv: list[str] | None = None) -> dict:
    args = parse(argv)
    from graph_eigenmap.transfer import resolve_device  # deferred: --help answers without torch

    device = resolve_device(args.device)
    stem = default_stem(args, device)
    report = dict(provenance("objectives", args.argv, device, seeds=[args.seed]),
                  form="small" if args.small else "full", layout=args.layout, graphs=args.graphs,
                  seconds=None if args.steps else args.seconds, steps=args.steps,
                  calibration_steps=None if args.steps else args.calibration_steps, k=args.k,
                  probe_runs=args.runs, probe_seeds=list(range(args.runs)), label_ratios=args.label_ratios,
                  results=[])
    for name in args.graphs:
        for row in run_graph(name, args, device):
            report["results"].append(row)
            print(json.dumps({key: value for key, value in row.items()
                              if key not in ("quotient_errors", "exact", "quotients", "estimates")}), flush=True)
            write_result(args.out, stem, report, to_markdown(report))
    write_result(args.out, stem, report, to_markdown(report))
    return report


if __name__ == "__main__":
    main()
