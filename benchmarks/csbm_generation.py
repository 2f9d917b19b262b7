"""Time and memory of generating the products-shaped CSBM (synthetic), for the csbm() docstring.

    python benchmarks/csbm_generation.py [--device cpu|cuda]

Measures wall time and peak resident memory of the process (ru_maxrss) for
csbm(2,449,029 nodes, 61,859,140 edges, 47 classes, 100 features); on CUDA also peak GPU memory.
Writes benchmarks/results/csbm_generation_<device>.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import resource
import sys
import time
from pathlib import Path

import torch

from graph_eigenmap.data.synthetic import PRODUCTS_SHAPE, csbm

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args()
    start = time.perf_counter()
    graph = csbm(device=args.device, name="csbm-products", **PRODUCTS_SHAPE)
    seconds = time.perf_counter() - start
    result = dict(
        command="python " + " ".join(sys.argv), date=datetime.date.today().isoformat(),
        device=torch.cuda.get_device_name() if args.device.startswith("cuda") else f"cpu {platform.processor()} ({torch.get_num_threads()} threads)",
        synthetic=True, num_nodes=graph.num_nodes, num_edges=graph.num_edges, seconds=round(seconds, 1),
        peak_host_gib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        peak_gpu_gib=round(torch.cuda.max_memory_allocated() / 2**30, 2) if args.device.startswith("cuda") else None,
    )
    print(json.dumps(result))
    tag = "gpu" if args.device.startswith("cuda") else "cpu"
    Path(args.out, f"csbm_generation_{tag}.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
