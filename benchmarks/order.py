"""Are the stop-gradient outputs ordered? Trained head against the Rayleigh–Ritz head, at the library's defaults.

    PYTHONPATH=. python benchmarks/order.py --data ../shared/data --out benchmarks/results [--layout ogb] [--kernel adjacency]

Per graph: one default fit with stop-gradient (``neural_eigenmap`` defaults, the given kernel), then
the same network with its output layer replaced by the Rayleigh–Ritz solution
(:mod:`graph_eigenmap.rayleigh_ritz`), and one default fit without stop-gradient. For each: the
exact Rayleigh quotients of the outputs, the neighbouring pairs whose quotient rises by more than
0.01, the largest gap between eigenvalue estimate and quotient among the first 8 outputs, and the
truncation curve (probe on the first m outputs, label ratio 1). Writes order_<layout>_<kernel>.{json,md}.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from compare_shared import DATASETS, dataset_path  # the shared graphs and their paths in each layout

from graph_eigenmap import load_graph, neural_eigenmap
from graph_eigenmap.evaluation.truncation import truncation_curve
from graph_eigenmap.fit_outputs import order_violations
from graph_eigenmap.inference import embed_nodes
from graph_eigenmap.inputs import model_input_graph
from graph_eigenmap.kernel import full_kernel
from graph_eigenmap.metrics import rayleigh_quotients
from graph_eigenmap.rayleigh_ritz import rayleigh_ritz_head


def summary(label: str, embedding: np.ndarray, eigenvalues: np.ndarray, quotients: np.ndarray, graph, device) -> dict:
    violations = order_violations(quotients)
    curve = truncation_curve(embedding, graph, runs=1, device=device)
    return dict(head=label, rising_pairs=len(violations),
                largest_rise=round(max([v["rise"] for v in violations], default=0.0), 4),
                estimate_gap_first8=round(float(np.abs(eigenvalues[:8] - quotients[:8]).max()), 4),
                quotients_first8=[round(float(q), 4) for q in quotients[:8]], quotient_last=round(float(quotients[-1]), 4),
                truncation={row["m"]: round(row["test_acc_mean"], 4) for row in curve})


def run_graph(graph, kernel_name: str, device: torch.device) -> list[dict]:
    rows = []
    start = time.perf_counter()
    fitted = neural_eigenmap(graph, device=device, progress=False, kernel=kernel_name)
    rows.append(summary("trained (stop-gradient)", fitted.embedding, fitted.eigenvalues, fitted.rayleigh_quotients,
                        graph, device) | dict(fit_s=round(time.perf_counter() - start, 1)))
    model = copy.deepcopy(fitted.model)
    inputs = torch.from_numpy(model_input_graph(graph, fitted.config.inputs, device).features)
    kernel = full_kernel(graph, fitted.config.kernel, device)
    start = time.perf_counter()
    ritz = rayleigh_ritz_head(model, inputs, kernel)
    seconds = time.perf_counter() - start
    embedding, _ = embed_nodes(model, inputs, with_backbone=False)
    quotients = rayleigh_quotients(torch.from_numpy(embedding).to(device), kernel)
    rows.append(summary("Rayleigh-Ritz (stop-gradient backbone)", embedding, ritz, quotients, graph, device)
                | dict(rayleigh_ritz_s=round(seconds, 2)))
    start = time.perf_counter()
    span = neural_eigenmap(graph, device=device, progress=False, kernel=kernel_name, stop_gradient=False)
    rows.append(summary("trained (no stop-gradient)", span.embedding, span.eigenvalues, span.rayleigh_quotients,
                        graph, device) | dict(fit_s=round(time.perf_counter() - start, 1)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--layout", choices=("ogb", "npz"), default="ogb")
    parser.add_argument("--kernel", default="adjacency")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    report = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  machine=torch.cuda.get_device_name(device) if device.type == "cuda"
                  else f"{platform.machine()} CPU, {torch.get_num_threads()} threads",
                  command="PYTHONPATH=. python " + " ".join(sys.argv), layout=args.layout, kernel=args.kernel, graphs={})
    stem = f"order_{args.layout}_{args.kernel}"
    for name in args.datasets:
        graph = load_graph(dataset_path(Path(args.data), args.layout, name))
        report["graphs"][name] = run_graph(graph, args.kernel, device)
        print(json.dumps({name: report["graphs"][name]}), flush=True)
        (Path(args.out) / f"{stem}.json").write_text(json.dumps(report, indent=1) + "\n")
    (Path(args.out) / f"{stem}.md").write_text(to_markdown(report))
    print(to_markdown(report))


def to_markdown(report: dict) -> str:
    lines = [f"# Order of the outputs at defaults ({report['layout']} layout, kernel {report['kernel']})", "",
             f"{report['date']}, {report['machine']}. `{report['command']}`", "",
             "| graph | head | rising pairs (> 0.01) | largest rise | max abs(estimate − quotient), first 8 | "
             "probe on first m = 1 / 2 / 4 / 8 / 16 / 64 (%) |", "|---|---|---|---|---|---|"]
    for name, rows in report["graphs"].items():
        for row in rows:
            curve = " / ".join(f"{100 * row['truncation'][m]:.1f}" for m in sorted(row["truncation"], key=int))
            lines.append(f"| {name} | {row['head']} | {row['rising_pairs']} | {row['largest_rise']} | "
                         f"{row['estimate_gap_first8']} | {curve} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
