"""Does reordering the outputs during training (``TrainConfig.reorder``) put the stop-gradient outputs in order?

    PYTHONPATH=. python benchmarks/reorder_effect.py --data ../shared/data --out DIR [--device cuda]

For each of the five shared graphs in both layouts: one fit at the library's defaults with
``reorder=False`` and one with ``reorder=True`` (the default), same seed. For each: the neighbouring
pairs of outputs whose exact Rayleigh quotient rises by more than 0.01 when training ends, the
largest rise, whether the recorded last step sorted the outputs and the rising pairs after it, how many
times the outputs were permuted, the largest gap between an eigenvalue estimate and its quotient,
and the linear probe (OGB protocol, 100 % labels) on the first 16 outputs and on all 64, valid and test.
Writes DIR/reorder_effect.{json,md}.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

from graph_eigenmap import load_graph, neural_eigenmap
from graph_eigenmap.api import order_violations, resolve_device
from graph_eigenmap.evaluation import evaluate_embeddings

from compare_shared import DATASETS, dataset_path  # the shared graphs and their paths in each layout


def measure(graph, reorder: bool, device) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = neural_eigenmap(graph, device=device, progress=False, reorder=reorder)
    violations = fitted.metadata["order_violations_in_training"]  # before the recorded last sort
    final = order_violations(fitted.rayleigh_quotients)
    probes = {m: evaluate_embeddings(fitted.embedding[:, :m], graph, runs=1, device=device) for m in (16, 64)}
    return dict(reorder=reorder, inputs=fitted.config.inputs, rising_pairs=len(violations),
                largest_rise=round(max([v["rise"] for v in violations], default=0.0), 4),
                sorted_last=fitted.metadata["final_sort"] is not None, rising_pairs_final=len(final),
                reorders=fitted.metadata["reorders"],
                estimate_gap=round(float(np.abs(fitted.eigenvalues - fitted.rayleigh_quotients).max()), 4),
                **{f"first_{m}_{part}": round(getattr(result, f"{part}_acc_mean"), 4)
                   for m, result in probes.items() for part in ("valid", "test")})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--layouts", nargs="+", default=["ogb", "npz"])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    args = parser.parse_args()
    device = resolve_device(args.device)
    report = dict(command="PYTHONPATH=. python " + " ".join(sys.argv),
                  date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  device=torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU", rows=[])
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for layout in args.layouts:
        for name in args.datasets:
            graph = load_graph(dataset_path(Path(args.data), layout, name))
            for reorder in (False, True):
                row = dict(layout=layout, graph=name) | measure(graph, reorder, device)
                report["rows"].append(row)
                print(json.dumps(row), flush=True)
                (out / "reorder_effect.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "reorder_effect.md").write_text(to_markdown(report))
    print(to_markdown(report))


def to_markdown(report: dict) -> str:
    lines = ["# Reordering the outputs during training: order and probes at the library's defaults", "",
             f"{report['date']}, {report['device']}. `{report['command']}`", "",
             "| layout | graph | inputs | reorder | rising pairs (> 0.01) when training ends | largest rise | permutations | "
             "sorted as the last step | rising pairs after it | max abs(estimate − quotient) | "
             "probe, first 16: valid / test (%) | probe, all 64: valid / test (%) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        lines.append(f"| {r['layout']} | {r['graph']} | {r['inputs']} | {'on' if r['reorder'] else 'off'} | "
                     f"{r['rising_pairs']} | {r['largest_rise']} | {r['reorders']} | {'yes' if r['sorted_last'] else 'no'} | "
                     f"{r['rising_pairs_final']} | {r['estimate_gap']} | "
                     f"{100 * r['first_16_valid']:.1f} / {100 * r['first_16_test']:.1f} | "
                     f"{100 * r['first_64_valid']:.1f} / {100 * r['first_64_test']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
