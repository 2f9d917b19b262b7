"""The linear probe (and C&S) at ogbn-products' size on one GPU: 2,449,029 nodes × a 2,048-d representation.

    PYTHONPATH=. python benchmarks/probe_scale.py --out DIR

The graph is the products-shaped CSBM (**synthetic**: 2,449,029 nodes, 61,859,140 edges, 47
classes, its seeded 10/10/80 split); the representation is a fixed random 2-layer network
(100 -> 2048 -> 2048, GELU) applied to its features, standing in for a Neural Eigenmap backbone of
the reference's width: the probe's cost depends on the shape, not on what the columns mean.
Times the OGB-protocol probe (7 values of C, each to convergence) at 100 / 10 / 1 % labels with 10
runs, and Correct & Smooth (9 α pairs) on one run. Writes DIR/probe_scale.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import torch

from graph_eigenmap.data import csbm
from graph_eigenmap.data.synthetic import PRODUCTS_SHAPE
from graph_eigenmap.evaluation.correct_and_smooth import CorrectAndSmooth
from graph_eigenmap.evaluation.probe import probe_runs
from graph_eigenmap.protocol import score_runs


def backbone_like(features: torch.Tensor, width: int, seed: int = 0, chunk: int = 1 << 18) -> torch.Tensor:
    """``[n, width]`` float32: a fixed random 2-layer GELU network of the ``[n, d]`` features."""
    generator = torch.Generator(device=features.device).manual_seed(seed)
    first = torch.randn(features.shape[1], width, generator=generator, device=features.device) / features.shape[1] ** 0.5
    second = torch.randn(width, width, generator=generator, device=features.device) / width ** 0.5
    out = torch.empty(features.shape[0], width, device=features.device)
    for i in range(0, features.shape[0], chunk):
        out[i:i + chunk] = torch.nn.functional.gelu(torch.nn.functional.gelu(features[i:i + chunk] @ first) @ second)
    return out


def seconds(function):
    torch.cuda.synchronize()
    start = time.perf_counter()
    value = function()
    torch.cuda.synchronize()
    return value, round(time.perf_counter() - start, 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--width", type=int, default=2048)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda")
    graph = csbm(PRODUCTS_SHAPE["num_nodes"], PRODUCTS_SHAPE["num_edges"], PRODUCTS_SHAPE["num_classes"],
                 PRODUCTS_SHAPE["num_features"], device=device, name="csbm-products")
    x = backbone_like(torch.from_numpy(graph.features).to(device), args.width)
    report = dict(device=torch.cuda.get_device_name(), date=datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds"), command="PYTHONPATH=. python " + " ".join(sys.argv), synthetic=True,
        num_nodes=graph.num_nodes, dimension=args.width, train_nodes=int(len(graph.split["train"])), runs=args.runs,
        probe=[])
    for ratio in (1.0, 0.1, 0.01):
        torch.cuda.reset_peak_memory_stats()
        (result, _), took = seconds(lambda: score_runs(probe_runs(x, graph, label_ratio=ratio, runs=args.runs,
                                                                  device=device), graph, method="probe",
                                                       label_ratio=ratio, runs=args.runs))
        fits = [fit for run in result.extra["runs"] for fit in run["fits"]]
        row = dict(label_ratio=ratio, seconds=took, test_acc_mean=round(result.test_acc_mean, 4),
                   chosen_C=[run["C"] for run in result.extra["runs"]],
                   converged=all(run["converged"] for run in result.extra["runs"]),
                   max_iterations=max(fit["iterations"] for fit in fits),
                   peak_gpu_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2))
        print(json.dumps(row), flush=True)
        report["probe"].append(row)
    smoother = CorrectAndSmooth(graph, device)
    run = next(probe_runs(x, graph, runs=1, device=device))
    smoothed, took = seconds(lambda: smoother(run))
    report["correct_and_smooth_one_run_s"] = took
    report["correct_and_smooth_alpha"] = [smoothed.details["correction_alpha"], smoothed.details["smoothing_alpha"]]
    (out / "probe_scale.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = [f"# Linear probe at products size (synthetic CSBM), {report['device']}, {report['date']}", "",
             f"`{report['command']}`: {graph.num_nodes:,} nodes × {args.width} dimensions, "
             f"{report['train_nodes']:,} train nodes, {args.runs} runs per label ratio, 7 values of C each.", "",
             "| labels | seconds (all runs) | converged | most L-BFGS iterations | peak GPU GiB |", "|---|---|---|---|---|"]
    lines += [f"| {100 * r['label_ratio']:g}% | {r['seconds']} | {r['converged']} | {r['max_iterations']} | "
              f"{r['peak_gpu_gib']} |" for r in report["probe"]]
    lines += ["", f"Correct & Smooth, one run, 9 α pairs: {took} s."]
    (out / "probe_scale.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
