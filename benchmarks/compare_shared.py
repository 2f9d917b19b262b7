"""`graph-eigenmap bench compare` on every real graph of ../shared/data (OGB layout), one after another.

    PYTHONPATH=. python benchmarks/compare_shared.py --data ../shared/data --out benchmarks/results/compare [options]

For each graph this is the same as
    graph-eigenmap bench compare -d DATA/ogb/ogbn_<name> --out OUT/<name> [options]
and writes OUT/<name>/compare.{md,json} and truncation.png.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from graph_eigenmap import load_graph
from graph_eigenmap.api import resolve_device
from graph_eigenmap.evaluation.compare import compare

DATASETS = ("cora", "citeseer", "amazon_photo", "amazon_computers", "coauthor_cs")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--kernel", default="adjacency")
    parser.add_argument("--estimator", default="full", help="full (the committed results), rows, sampled, auto")
    parser.add_argument("--gnn-epochs", type=int, default=300)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    for name in args.datasets:
        graph = load_graph(Path(args.data) / "ogb" / f"ogbn_{name}")
        command = (f"graph-eigenmap bench compare -d ../shared/data/ogb/ogbn_{name} --out {args.out}/{name} "
                   f"--runs {args.runs} --k {args.k} --steps {args.steps} --width {args.width} --depth {args.depth} "
                   f"--kernel {args.kernel} --estimator {args.estimator} --gnn-epochs {args.gnn_epochs}")
        compare(graph, out_dir=Path(args.out) / name, runs=args.runs, k=args.k, device=device,
                fit_options=dict(steps=args.steps, width=args.width, depth=args.depth, kernel=args.kernel,
                                 estimator=args.estimator),
                gnn_epochs=args.gnn_epochs, command=command + f"  (run as: {shlex.join(sys.argv)})",
                log=lambda message: print(message, flush=True))
        print((Path(args.out) / name / "compare.md").read_text(), flush=True)


if __name__ == "__main__":
    main()
