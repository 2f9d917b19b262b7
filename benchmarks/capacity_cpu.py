"""Does a larger feature MLP help graph-free Neural Eigenmap? A small CPU look, not a sweep: a lead for the next one.

    PYTHONPATH=. python benchmarks/capacity_cpu.py --data ../shared/data --out DIR [--datasets cora citeseer --threads 1]

On the OGB layout (100-d features) of each graph: the nontrivial kernel, the node's own features as inputs
(graph-free), k = 64, stop-gradient on and off, and the MLP at the library's defaults (width 256, depth 2, 500
steps) against a wider, a deeper and a longer one. Two fits per setting (seeds 0, 1); for each, the probe on the
64 eigenfunctions at 100 % labels (1 run) and 10 % (3 runs). Means over the two fits of valid and test
accuracy; settings are to be read on valid. Writes DIR/capacity_cpu.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import time
import warnings
from pathlib import Path

import numpy as np

SETTINGS = {"defaults": {}, "steps 2000": dict(steps=2000), "width 512": dict(width=512), "depth 3": dict(depth=3)}
SEEDS = (0, 1)


def measure(graph, options: dict, stop_gradient: bool) -> dict:
    """Mean over :data:`SEEDS` of the probe's valid/test accuracy (100 % and 10 % labels) and the fit's seconds."""
    from graph_eigenmap import neural_eigenmap
    from graph_eigenmap.evaluation.probe import evaluate_embeddings

    values = []
    for seed in SEEDS:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = neural_eigenmap(graph, k=64, device="cpu", stop_gradient=stop_gradient, estimator="full",
                                     inputs="features", kernel="nontrivial", seed=seed, progress=False, **options)
        seconds = time.perf_counter() - start
        full, tenth = (evaluate_embeddings(fitted.embedding, graph, label_ratio=ratio, runs=runs)
                       for ratio, runs in ((1.0, 1), (0.1, 3)))
        values.append([full.valid_acc_mean, full.test_acc_mean, tenth.valid_acc_mean, tenth.test_acc_mean, seconds])
    mean = np.mean(values, 0)
    return dict(valid_100=round(mean[0], 4), test_100=round(mean[1], 4), valid_10=round(mean[2], 4),
                test_10=round(mean[3], 4), fit_s=round(mean[4], 1))


def to_markdown(report: dict) -> str:
    lines = ["# Graph-free Neural Eigenmap with a larger MLP (CPU, OGB layout, nontrivial kernel)", "",
             f"{report['date']}, {report['device']}. `{report['command']}`", "",
             f"Mean of {len(SEEDS)} fits; probe accuracy (%) of the 64 eigenfunctions, valid / test. A lead, not a sweep: "
             "two graphs, two fits, no choice made from it.", "",
             "| graph | setting | stop-gradient | 100 % labels | 10 % labels | fit (s) |", "|---|---|---|---|---|---|"]
    for row in report["rows"]:
        lines.append(f"| {row['graph']} | {row['setting']} | {'on' if row['stop_gradient'] else 'off'} | "
                     f"{100 * row['valid_100']:.1f} / {100 * row['test_100']:.1f} | "
                     f"{100 * row['valid_10']:.1f} / {100 * row['test_10']:.1f} | {row['fit_s']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    import sys

    import torch

    from graph_eigenmap import load_graph

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--datasets", nargs="+", default=["cora", "citeseer"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    report = dict(command="PYTHONPATH=. python " + " ".join(sys.argv), device="CPU",
                  date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), rows=[])
    for name in args.datasets:
        graph = load_graph(Path(args.data) / "ogb" / f"ogbn_{name}")
        for setting, options in SETTINGS.items():
            for stop_gradient in (True, False):
                row = dict(graph=name, setting=setting, stop_gradient=stop_gradient) | measure(graph, options, stop_gradient)
                print(json.dumps(row), flush=True)
                report["rows"].append(row)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "capacity_cpu.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "capacity_cpu.md").write_text(to_markdown(report))
    print(to_markdown(report))


if __name__ == "__main__":
    main()
