"""Which Neural Eigenmap settings give the best representations? A sweep, selected on validation.

For each real graph and each setting (k, training length, kernel variant, stop-gradient, width),
fit Neural Eigenmap once and probe its backbone and eigenfunctions on the OGB protocol at label
ratios 1 and 0.1 (3 seeds). Choose settings by *validation* accuracy; test accuracy is reported too.

    PYTHONPATH=. python benchmarks/ne_sweep.py --data DIR --out DIR [--device cuda]

Writes ne_sweep.json and ne_sweep.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from pathlib import Path

import torch

from graph_eigenmap import load_graph, neural_eigenmap
from graph_eigenmap.evaluation import evaluate_embeddings

DATASETS = ("cora", "citeseer", "amazon_photo", "amazon_computers", "coauthor_cs")
SETTINGS = {
    "k64": dict(k=64),
    "k64-long": dict(k=64, steps=4000),
    "k256": dict(k=256),
    "k64-gcn-kernel": dict(k=64, kernel="gcn"),
    "k64-no-stop-grad": dict(k=64, stop_gradient=False),
    "k64-wide": dict(k=64, width=1024, depth=3),
    "k256-gcn-kernel-no-stop-grad": dict(k=256, kernel="gcn", stop_gradient=False),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help="folder holding ogb/ogbn_<name>/")
    parser.add_argument("--out", required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = dict(command="PYTHONPATH=. python " + " ".join(sys.argv), date=datetime.date.today().isoformat(),
                  device=torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
                  base=dict(steps=args.steps, width=args.width), rows=[])
    for name in args.datasets:
        graph = load_graph(Path(args.data) / "ogb" / f"ogbn_{name}")
        for setting in args.settings:
            options = dict(dict(steps=args.steps, width=args.width), **SETTINGS[setting])
            start = time.perf_counter()
            fitted = neural_eigenmap(graph, device=args.device, progress=False, **options)
            seconds = time.perf_counter() - start
            for representation in ("backbone", "embedding"):
                for ratio in (1.0, 0.1):
                    result = evaluate_embeddings(getattr(fitted, representation), graph, label_ratio=ratio, runs=3,
                                                 device=args.device)
                    row = dict(dataset=name, setting=setting, representation=representation, label_ratio=ratio,
                               valid=round(result.valid_acc_mean, 4), test=round(result.test_acc_mean, 4),
                               fit_seconds=round(seconds, 1))
                    print(json.dumps(row), flush=True)
                    report["rows"].append(row)
            (out / "ne_sweep.json").write_text(json.dumps(report, indent=1) + "\n")
    lines = [f"# Neural Eigenmap settings sweep ({report['device']}, {report['date']})", "",
             f"Command: `{report['command']}`", "", "Validation / test accuracy (%), mean of 3 probe seeds; "
             f"base: {args.steps} steps, width {args.width}.", "",
             "| graph | setting | probe on | valid @1 | test @1 | valid @0.1 | test @0.1 |", "|---|---|---|---|---|---|---|"]
    keyed = {(r["dataset"], r["setting"], r["representation"], r["label_ratio"]): r for r in report["rows"]}
    for (dataset, setting, representation, ratio), r in keyed.items():
        if ratio != 1.0:
            continue
        low = keyed[(dataset, setting, representation, 0.1)]
        lines.append(f"| {dataset} | {setting} | {representation} | {100 * r['valid']:.2f} | {100 * r['test']:.2f} | "
                     f"{100 * low['valid']:.2f} | {100 * low['test']:.2f} |")
    (out / "ne_sweep.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
