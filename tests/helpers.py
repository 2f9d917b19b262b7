"""Small writers of on-disk datasets for tests (OGB layout and gnn-benchmark .npz)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp

META = {
    "version": 1, "download_name": "toy", "num tasks": 1, "num classes": 3, "eval metric": "acc",
    "task type": "multiclass classification", "add_inverse_edge": "True", "split": "random",
    "additional node files": "None", "additional edge files": "None", "is hetero": "False",
    "binary": "False", "has_node_attr": "True", "has_edge_attr": "False", "url": "none",
}


def _write_csv_gz(path: Path, rows) -> None:
    with gzip.open(path, "wt") as f:
        for row in rows:
            f.write(",".join(str(v) for v in np.atleast_1d(row)) + "\n")


def write_ogb_folder(path: Path, edges, num_nodes, features, labels, split=None, meta=None) -> Path:
    """An OGB node-property folder: raw/*.csv.gz, split/random/*.csv.gz, RELEASE_v1.txt, meta.json."""
    (path / "raw").mkdir(parents=True)
    (path / "split" / "random").mkdir(parents=True)
    edges = np.asarray(edges)
    _write_csv_gz(path / "raw" / "edge.csv.gz", edges)
    _write_csv_gz(path / "raw" / "num-node-list.csv.gz", [num_nodes])
    _write_csv_gz(path / "raw" / "num-edge-list.csv.gz", [len(edges)])
    _write_csv_gz(path / "raw" / "node-feat.csv.gz", np.asarray(features))
    _write_csv_gz(path / "raw" / "node-label.csv.gz", np.asarray(labels))
    if split is None:
        ids = np.arange(num_nodes)
        split = {"train": ids[: num_nodes // 3], "valid": ids[num_nodes // 3: 2 * num_nodes // 3], "test": ids[2 * num_nodes // 3:]}
    for part, ids in split.items():
        _write_csv_gz(path / "split" / "random" / f"{part}.csv.gz", ids)
    (path / "RELEASE_v1.txt").write_text("toy\n")
    (path / "meta.json").write_text(json.dumps({**META, **(meta or {})}))
    return path


def toy_arrays(num_nodes=12, seed=0):
    """A small graph with a ring, a chord and one isolated node (the last)."""
    rng = np.random.default_rng(seed)
    ring = [(i, (i + 1) % (num_nodes - 1)) for i in range(num_nodes - 1)]
    edges = np.array(ring + [(0, 5)])
    features = rng.normal(size=(num_nodes, 4)).round(4)
    labels = rng.integers(0, 3, size=num_nodes)
    return edges, features, labels


def write_npz(path: Path, adjacency: sp.csr_matrix, features: sp.csr_matrix | None, labels, **extra) -> Path:
    arrays = dict(
        adj_data=adjacency.data, adj_indices=adjacency.indices, adj_indptr=adjacency.indptr, adj_shape=np.array(adjacency.shape),
        labels=np.asarray(labels),
    )
    if features is not None:
        arrays.update(attr_data=features.data, attr_indices=features.indices, attr_indptr=features.indptr,
                      attr_shape=np.array(features.shape))
    arrays.update(extra)
    np.savez(path, **arrays)
    return path


def scikit_learn_probe(x: np.ndarray, graph, train: np.ndarray | None = None, blocks=None) -> float:
    """Test accuracy of scikit-learn's probe with C chosen on valid (the first best): the independent reference.

    scikit-learn's own scaler (MaxAbsScaler where our ``auto`` rule sees bag of words, else
    StandardScaler) fitted on the train split, then ``LogisticRegression(C=c)`` (lbfgs, tol 1e-7) for
    every C of our grid, ascending, each warm-started from the previous solution (the problems are
    strictly convex: the optimum does not depend on the start). ``train``: the run's training nodes (default: the whole train split).
    ``blocks``: widths of side-by-side column blocks, each given its own scaler by the same rule (a ``ColumnTransformer``).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import MaxAbsScaler, StandardScaler

    from graph_eigenmap.evaluation.probe import CS

    valid, test = graph.split["valid"], graph.split["test"]
    train = graph.split["train"] if train is None else train
    def rule(columns: np.ndarray):
        bag_of_words = (columns >= 0).all() and (columns == 0).mean() >= 0.5
        return MaxAbsScaler() if bag_of_words else StandardScaler()

    if blocks is None:
        scaler = rule(x[train]).fit(x[train])
    else:
        from sklearn.compose import ColumnTransformer

        edges = np.cumsum([0, *blocks])
        scaler = ColumnTransformer([(f"block{i}", rule(x[train][:, a:b]), list(range(a, b)))
                                    for i, (a, b) in enumerate(zip(edges[:-1], edges[1:]))]).fit(x[train])
    z = {part: scaler.transform(x[nodes]) for part, nodes in (("train", train), ("valid", valid), ("test", test))}
    best_valid, best_test = -1.0, None
    model = LogisticRegression(tol=1e-7, max_iter=10_000, warm_start=True)  # same optima, fewer iterations
    for c in sorted(CS):
        model.set_params(C=c).fit(z["train"], graph.labels[train])
        valid_acc = model.score(z["valid"], graph.labels[valid])
        if valid_acc > best_valid:
            best_valid, best_test = valid_acc, model.score(z["test"], graph.labels[test])
    return best_test
