"""Write a **synthetic** graph of ogbn-products' shape in ogbn-products' exact on-disk layout.

    PYTHONPATH=. python benchmarks/write_products_shape.py --root DIR [--num-nodes N --num-edges M]

The ``csbm-products`` generator (2,449,029 nodes, 61,859,140 undirected edges, 100 features, 47 classes;
synthetic) written where ogb would put the real dataset, so that ``graph-eigenmap info ogbn-products --root
DIR`` reads it through the same path as the real one:

    DIR/ogbn_products/RELEASE_v1.txt
    DIR/ogbn_products/raw/{edge,node-feat,node-label,num-node-list,num-edge-list}.csv.gz
    DIR/ogbn_products/split/sales_ranking/{train,valid,test}.csv.gz
    DIR/ogbn_products/SYNTHETIC.txt      (says what this is; ogb ignores it)

As in the real files: each undirected edge once (ogb adds the reverse: ``add_inverse_edge``), no headers,
features as decimal text, a 8/2/90 % split. Gzip level 1 (the real files use more; reading costs the same).
"""

from __future__ import annotations

import argparse
import gzip
import time
from pathlib import Path

import numpy as np


def write_csv(path: Path, array: np.ndarray, fmt: str) -> None:
    """``[r, c]`` (or ``[r]``) array as gzipped CSV text without header, in chunks of about a million values."""
    array = array.reshape(len(array), -1)
    rows_per_chunk = max(1, 1_000_000 // array.shape[1])
    line = ",".join([fmt] * array.shape[1]) + "\n"
    with gzip.open(path, "wt", compresslevel=1) as out:
        for begin in range(0, len(array), rows_per_chunk):
            block = array[begin:begin + rows_per_chunk]
            out.write((line * len(block)) % tuple(block.ravel().tolist()))


def write(root: str | Path, shape: dict, seed: int = 0, log=print) -> Path:
    """The csbm generator at ``shape`` (``num_nodes``, ``num_edges``, ``num_classes``, ``num_features``) written as
    ``root/ogbn_products`` in ogbn-products' layout; returns that folder."""
    from graph_eigenmap.data.synthetic import csbm  # deferred: --help answers without torch

    started = time.perf_counter()
    graph = csbm(**shape, seed=seed, name="ogbn-products")
    log(f"generated {graph} in {time.perf_counter() - started:.0f} s")
    folder = Path(root) / "ogbn_products"
    (folder / "raw").mkdir(parents=True, exist_ok=True)
    (folder / "split" / "sales_ranking").mkdir(parents=True, exist_ok=True)
    upper = graph.adjacency.tocoo()
    once = upper.row < upper.col
    edges = np.stack([upper.row[once], upper.col[once]], axis=1).astype(np.int64)
    del upper, once
    n = graph.num_nodes
    write_csv(folder / "raw" / "num-node-list.csv.gz", np.array([n]), "%d")
    write_csv(folder / "raw" / "num-edge-list.csv.gz", np.array([len(edges)]), "%d")
    write_csv(folder / "raw" / "node-label.csv.gz", graph.labels, "%d")
    write_csv(folder / "raw" / "edge.csv.gz", edges, "%d")
    log(f"edges written at {time.perf_counter() - started:.0f} s")
    del edges
    write_csv(folder / "raw" / "node-feat.csv.gz", graph.features, "%.6g")
    log(f"features written at {time.perf_counter() - started:.0f} s")
    order = np.random.default_rng(seed).permutation(n)
    train, valid = int(0.08 * n), int(0.02 * n)
    for part, ids in (("train", order[:train]), ("valid", order[train:train + valid]), ("test", order[train + valid:])):
        write_csv(folder / "split" / "sales_ranking" / f"{part}.csv.gz", np.sort(ids), "%d")
    (folder / "RELEASE_v1.txt").write_text("# Release note for ogbn-products\n")
    (folder / "SYNTHETIC.txt").write_text(
        f"Synthetic: graph_eigenmap's csbm generator at ogbn-products' shape ({shape}, seed {seed}), written "
        "by benchmarks/write_products_shape.py in ogbn-products' on-disk layout. Not the real dataset.\n")
    log(f"done in {time.perf_counter() - started:.0f} s: {folder}")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True)
    parser.add_argument("--num-nodes", type=int, default=None, help="default: ogbn-products' 2,449,029")
    parser.add_argument("--num-edges", type=int, default=None, help="default: ogbn-products' 61,859,140")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from graph_eigenmap.data.synthetic import PRESETS  # deferred: --help answers without torch

    shape = {key: PRESETS["csbm-products"][key] for key in ("num_nodes", "num_edges", "num_classes", "num_features")}
    shape.update({k: v for k, v in (("num_nodes", args.num_nodes), ("num_edges", args.num_edges)) if v})
    write(args.root, shape, args.seed, log=lambda line: print(line, flush=True))


if __name__ == "__main__":
    main()
