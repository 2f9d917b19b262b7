"""How scipy's eigsh (ARPACK, CPU) scales on CSBM graphs of ogbn-products' density (synthetic).

    python benchmarks/eigsh_scaling.py [--sizes 25000 50000 100000 200000] [--k 64]

Times eigsh(which='LA', k) of D^-1/2 A D^-1/2 at mean degree 50.5 (products' 2m/n) for growing n,
fits seconds = a · n^b on the sizes that finished within the limit, and extrapolates to
2,449,029 nodes. Writes benchmarks/results/eigsh_scaling.json.
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
from scipy.sparse.linalg import eigsh

from graph_eigenmap import normalized_adjacency
from graph_eigenmap.data import csbm
from graph_eigenmap.data.synthetic import PRODUCTS_SHAPE

ROOT = Path(__file__).resolve().parents[1]
MEAN_DEGREE = 2 * PRODUCTS_SHAPE["num_edges"] / PRODUCTS_SHAPE["num_nodes"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", nargs="+", type=int, default=[25_000, 50_000, 100_000, 200_000])
    parser.add_argument("--k", type=int, default=64)
    parser.add_argument("--limit-s", type=float, default=600)
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        graph = csbm(n, int(n * MEAN_DEGREE / 2), 47, 8, seed=0)
        kernel = normalized_adjacency(graph).astype(np.float64)
        start = time.perf_counter()
        eigsh(kernel, k=args.k, which="LA", v0=np.random.default_rng(0).normal(size=n), tol=1e-6)
        seconds = time.perf_counter() - start
        rows.append(dict(num_nodes=n, num_edges=graph.num_edges, seconds=round(seconds, 2)))
        print(json.dumps(rows[-1]), flush=True)
        if seconds > args.limit_s / 4:
            break
    n = np.array([r["num_nodes"] for r in rows], dtype=float)
    t = np.array([r["seconds"] for r in rows])
    slope, intercept = np.polyfit(np.log(n), np.log(t), 1)
    full = float(np.exp(intercept) * PRODUCTS_SHAPE["num_nodes"] ** slope)
    result = dict(command="python " + " ".join(sys.argv), date=datetime.date.today().isoformat(),
                  device=f"cpu {platform.processor()} (2 cores)", synthetic=True, k=args.k, mean_degree=round(MEAN_DEGREE, 2),
                  runs=rows, fit=f"seconds = {np.exp(intercept):.3g} * n^{slope:.2f}",
                  extrapolated_products_shape_s=round(full, 0))
    print(json.dumps(result))
    (ROOT / "benchmarks" / "results" / "eigsh_scaling.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
