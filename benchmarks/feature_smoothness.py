"""The label-free figure behind the default recipe's choice: feature smoothness on every shared graph (CPU, seconds).

    PYTHONPATH=. python benchmarks/feature_smoothness.py --data ../shared/data --out benchmarks/results

For each of the seven shared graphs in both layouts, and the synthetic CSBM presets (labelled synthetic), the value of
:func:`graph_eigenmap.kernel.feature_smoothness` beside the threshold :data:`graph_eigenmap.recipe.SMOOTH_FEATURES_MIN`,
the edge homophily of the labels (read only to show what the figure cannot see: uai) and the inputs and representation
``fit`` picks at its defaults. Writes feature_smoothness.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from graph_eigenmap.config import TrainConfig
from graph_eigenmap.data import load_graph
from graph_eigenmap.kernel import feature_smoothness
from graph_eigenmap.recipe import SMOOTH_FEATURES_MIN, resolve

GRAPHS = ("cora", "citeseer", "amazon_photo", "amazon_computers", "coauthor_cs", "blogcatalog", "uai")
SYNTHETIC = ("csbm", "csbm-products:num_nodes=200000,num_edges=1000000")


def row(label: str, spec) -> dict:
    graph = load_graph(spec)
    sources, targets = graph.adjacency.nonzero()
    known = (graph.labels[sources] >= 0) & (graph.labels[targets] >= 0)
    config = resolve(TrainConfig(), graph, torch.device("cpu"))
    return dict(graph=label, synthetic=graph.synthetic, smoothness=round(feature_smoothness(graph), 4),
                homophily=round(float((graph.labels[sources][known] == graph.labels[targets][known]).mean()), 3),
                inputs=str(config.inputs), representation=config.representation)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    data = Path(args.data)
    cases = [(f"{name} ({layout})", data / ("ogb" if layout == "ogb" else "npz") /
              (f"ogbn_{name}" if layout == "ogb" else f"{name}.npz")) for layout in ("ogb", "npz") for name in GRAPHS]
    rows = [row(label, spec) for label, spec in cases + [(f"{spec} (synthetic)", spec) for spec in SYNTHETIC]]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    report = dict(threshold=SMOOTH_FEATURES_MIN, rows=rows, device=f"cpu ({platform.machine()})", commit=commit,
                  date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  command=shlex.join(["python", *sys.argv]), numpy=np.__version__, torch=torch.__version__)
    out = Path(args.out)
    (out / "feature_smoothness.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = ["# Feature smoothness: the default recipe's label-free figure", "",
             f"Commit {commit}, {report['date']}, {report['device']}. Command: `{report['command']}`", "",
             f"Below {SMOOTH_FEATURES_MIN} the features mislead: `fit` drops the propagation and recommends the "
             "eigenfunctions beside the features. Edge homophily reads labels and is shown only for comparison.", "",
             "| graph | feature smoothness | edge homophily | inputs at the defaults | representation |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['graph']} | {r['smoothness']:.4f} | {r['homophily']:.3f} | {r['inputs']} | {r['representation']} |"
              for r in rows]
    (out / "feature_smoothness.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
