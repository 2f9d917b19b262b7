"""Where a training step's time goes on the GPU: per-kernel profiles of each estimator, one command.

    PYTHONPATH=. python benchmarks/profile_steps.py --out DIR [--small]

On the products-shaped CSBM (synthetic; ``--small``: 200k nodes), MLP 100-512-512, k = 64, bf16,
for the sampled estimator (4,096 and 65,536 seeds per step) and the full graph, each with the
one-sided and the two-sided gradient: ms per step (from the training loop's own history) and the
top kernels by device time over a profiled run of 10 steps (its setup included: the host-to-device
copies of the graph), none for compiled cases (each run would compile again); then out-of-sample
embedding, eager and compiled. Writes
DIR/profile_steps.json (step times) and DIR/profile_steps.txt (the kernel tables); prints both.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from graph_eigenmap.config import TrainConfig
from graph_eigenmap.data import csbm
from graph_eigenmap.data.synthetic import PRODUCTS_SHAPE
from graph_eigenmap.evaluation.cost import median_seconds
from graph_eigenmap.inference import embed_nodes
from graph_eigenmap.train import train

CASES = {
    "sampled_b65536_compiled": dict(estimator="sampled", batch_size=65536, compile=True),
    "sampled_b131072_compiled": dict(estimator="sampled", batch_size=131072, compile=True),
    "sampled_b131072_one_sided": dict(estimator="sampled", batch_size=131072, one_sided_gradient=True),
    "full_compiled": dict(estimator="full", compile=True),
    "sampled_b4096_one_sided": dict(estimator="sampled", batch_size=4096, one_sided_gradient=True),
    "sampled_b4096_two_sided": dict(estimator="sampled", batch_size=4096, one_sided_gradient=False),
    "sampled_b65536_one_sided": dict(estimator="sampled", batch_size=65536, one_sided_gradient=True),
    "sampled_b65536_two_sided": dict(estimator="sampled", batch_size=65536, one_sided_gradient=False),
    "full_one_sided": dict(estimator="full", one_sided_gradient=True),
    "full_two_sided": dict(estimator="full", one_sided_gradient=False),
}


def step_ms(history) -> float:
    (s0, t0, _, _), (s1, t1, _, _) = history[0], history[-1]
    return 1000 * (t1 - t0) / (s1 - s0)


def kernel_table(run, rows: int = 15) -> str:
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        run()
        torch.cuda.synchronize()
    return prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=rows, max_name_column_width=60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--cases", nargs="*", default=list(CASES))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shape = dict(PRODUCTS_SHAPE, num_nodes=200_000, num_edges=5_000_000) if args.small else PRODUCTS_SHAPE
    graph = csbm(device="cuda", name="csbm-products", **shape)
    base = dict(k=64, width=512, depth=2, fanout=8, checkpoint_every=0)
    times = dict(device=torch.cuda.get_device_name(), date=datetime.date.today().isoformat(),
                 command="PYTHONPATH=. python " + " ".join(sys.argv), synthetic=True)
    tables = []
    for name in args.cases:
        config = TrainConfig(**base, **CASES[name], steps=args.steps)
        torch.cuda.reset_peak_memory_stats()
        result = train(graph, config, device="cuda", progress=False, log_every=10)
        times[name] = dict(step_ms=round(step_ms(result.history), 2), peak_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2),
                           final_loss=round(result.history[-1][2], 4))
        print(name, times[name], flush=True)
        if config.compile:
            times[name]["first_10_steps_s"] = round(result.history[0][1], 1)  # compilation included
            continue
        table = kernel_table(lambda: train(graph, TrainConfig(**base, **CASES[name], steps=10), device="cuda", progress=False))
        tables.append(f"## {name}: {times[name]}\n{table}")
    model = result.model
    features = torch.from_numpy(graph.features).cuda()
    oos = lambda: embed_nodes(model, features, chunk_size=1 << 20, with_backbone=False, to_host=False, bf16=True)  # noqa: E731
    times["oos_nodes_per_s"] = round(graph.num_nodes / median_seconds(oos, 5, device="cuda"))
    tables.append(f"## out-of-sample, bf16: {times['oos_nodes_per_s']} nodes/s\n{kernel_table(oos)}")
    model.compile_network()
    times["oos_nodes_per_s_compiled"] = round(graph.num_nodes / median_seconds(oos, 5, device="cuda"))
    tables.append(f"## out-of-sample, bf16, compiled: {times['oos_nodes_per_s_compiled']} nodes/s\n{kernel_table(oos)}")
    (out / "profile_steps.json").write_text(json.dumps(times, indent=1) + "\n")
    (out / "profile_steps.txt").write_text("\n\n".join(tables) + "\n")
    print("\n\n".join(tables))
    print(json.dumps(times, indent=1))


if __name__ == "__main__":
    main()
