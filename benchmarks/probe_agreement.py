"""Our linear probe against scikit-learn's on every kind of representation of the five shared graphs.

    PYTHONPATH=.:tests python benchmarks/probe_agreement.py --data ../shared/data --out benchmarks/results

Kinds: the raw features of the ``.npz`` layout, the 100-d features of the OGB layout, the exact
nontrivial Laplacian Eigenmap (k = 64, OGB layout), and Neural Eigenmap's eigenfunctions and
backbone (``neural_eigenmap`` defaults, OGB layout). For each: test accuracy of our probe and of the
independent scikit-learn reference (``tests/helpers.py::scikit_learn_probe``: scikit-learn's scaler,
``LogisticRegression`` per C of the same grid, C chosen on valid), at 100 % labels (one run: the
problem is convex and every run has the same training nodes) and at 10 % labels (mean of 3 runs,
the same label subsets); the C our probe chose; seconds of each. Writes probe_agreement.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from helpers import scikit_learn_probe

from graph_eigenmap import load_graph, neural_eigenmap
from graph_eigenmap.baselines.laplacian_eigenmap import laplacian_eigenmap
from graph_eigenmap.evaluation.probe import CS, evaluate_embeddings
from graph_eigenmap.protocol import train_subset

DATASETS = ("cora", "citeseer", "amazon_photo", "amazon_computers", "coauthor_cs")


def representations(data: Path, name: str):
    """(kind, graph, [n, d] array) for each kind of representation of one graph."""
    raw = load_graph(data / "npz" / f"{name}.npz")
    yield "raw features (.npz)", raw, raw.features
    graph = load_graph(data / "ogb" / f"ogbn_{name}")
    yield "features (OGB layout, 100-d)", graph, graph.features
    yield "Laplacian Eigenmap, nontrivial (k=64)", graph, laplacian_eigenmap(graph, 64, variant="nontrivial")[1]
    fitted = neural_eigenmap(graph, device="cpu", progress=False)
    yield "NE eigenfunctions (defaults)", graph, fitted.embedding
    yield "NE backbone (defaults)", graph, fitted.backbone


def compare_at(x: np.ndarray, graph, ratio: float, runs: int) -> dict:
    start = time.perf_counter()
    ours = evaluate_embeddings(x, graph, label_ratio=ratio, runs=runs)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    theirs = [scikit_learn_probe(np.asarray(x, dtype=np.float64), graph,
                                 train=train_subset(graph.split["train"], ratio, seed)) for seed in range(runs)]
    return dict(label_ratio=ratio, runs=runs, ours=round(ours.test_acc_mean, 4), scikit_learn=round(float(np.mean(theirs)), 4),
                difference_points=round(100 * (ours.test_acc_mean - float(np.mean(theirs))), 2),
                chosen_C=[run["C"] for run in ours.extra["runs"]],
                converged=all(run["converged"] for run in ours.extra["runs"]),
                ours_s=round(ours_s, 2), scikit_learn_s=round(time.perf_counter() - start, 2))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    args = parser.parse_args()
    torch.set_num_threads(2)
    report = dict(date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  machine=f"{platform.machine()}, {torch.get_num_threads()} torch threads, CPU",
                  command="PYTHONPATH=.:tests python " + " ".join(sys.argv), Cs=list(CS), rows=[])
    for name in args.datasets:
        for kind, graph, x in representations(Path(args.data), name):
            for ratio, runs in ((1.0, 1), (0.1, 3)):
                row = dict(graph=name, kind=kind, dimension=int(x.shape[1]), **compare_at(x, graph, ratio, runs))
                print(json.dumps(row), flush=True)
                report["rows"].append(row)
    out = Path(args.out)
    (out / "probe_agreement.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "probe_agreement.md").write_text(to_markdown(report))
    print(to_markdown(report))


def to_markdown(report: dict) -> str:
    rows = report["rows"]
    worst = max(abs(r["difference_points"]) for r in rows)
    lines = [f"# Linear probe against scikit-learn ({report['date']}, {report['machine']})", "",
             f"`{report['command']}`. Grid C in {report['Cs']}, chosen on valid by each side on its own. "
             f"Largest difference: {worst:.2f} points.", "",
             "| graph | representation | d | labels | ours % | scikit-learn % | difference (points) | C chosen (ours) | converged | ours s | scikit-learn s |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        chosen = ", ".join(f"{c:g}" for c in r["chosen_C"])
        lines.append(f"| {r['graph']} | {r['kind']} | {r['dimension']} | {100 * r['label_ratio']:g}% ({r['runs']} runs) | "
                     f"{100 * r['ours']:.2f} | {100 * r['scikit_learn']:.2f} | {r['difference_points']:+.2f} | {chosen} | "
                     f"{r['converged']} | {r['ours_s']} | {r['scikit_learn_s']} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
