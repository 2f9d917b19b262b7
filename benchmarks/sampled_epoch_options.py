"""Sampled epoch on the products shape (synthetic) against batch size and ``--compile``, on one GPU.

    PYTHONPATH=. python benchmarks/sampled_epoch_options.py --out DIR [--steps 400]

The speed suite's model and estimator (benchmarks/speed.py: MLP 100-512-512, k = 64, bf16, fanout 8,
one-sided gradient, inputs = features), trained ``--steps`` steps in each ``--settings`` entry (default: eager at 65,536 and
131,072 seeds per step, compiled at 131,072). Seconds per epoch (every node a seed once) from the loop's
own history, after its first logged interval (warm-up and compilation). The papers100M-shaped step costs
what the products-shaped one does (benchmarks/results/speed_papers100m_shape.md), so these ratios are
what the same settings would give there. Writes DIR/sampled_epoch_options.json after each setting.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.speed import fit, step_seconds  # noqa: E402
from graph_eigenmap.data import csbm  # noqa: E402
from graph_eigenmap.data.synthetic import PRODUCTS_SHAPE  # noqa: E402

SETTINGS = ["65536", "131072", "131072c"]
"""Seeds per step; a trailing ``c`` compiles the network."""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--settings", nargs="+", default=SETTINGS, help="seeds per step, 'c' appended to compile")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    report = dict(device=torch.cuda.get_device_name(), torch=torch.__version__, synthetic=True,
                  date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                  command="PYTHONPATH=. python " + " ".join(sys.argv), graph=PRODUCTS_SHAPE, steps=args.steps, runs=[])
    graph = csbm(**PRODUCTS_SHAPE, device="cuda", name="csbm-products")
    n = graph.num_nodes
    for text in args.settings:
        setting = dict(batch_size=int(text.rstrip("c")), compile=text.endswith("c"))
        result, peak = fit(graph, estimator="sampled", inputs="features", steps=args.steps, **setting)
        per_step = step_seconds(result.history)
        row = dict(setting, step_ms=round(1000 * per_step, 2), epoch_s=round(per_step * n / setting["batch_size"], 3),
                   peak_gpu_gib=round(peak, 2), final_objective=round(result.history[-1][2], 4))
        report["runs"].append(row)
        print(json.dumps(row), flush=True)
        (out / "sampled_epoch_options.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
