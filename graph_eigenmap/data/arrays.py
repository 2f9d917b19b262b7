"""Graphs from Python objects: a PyG ``Data``, or a scipy adjacency with numpy arrays."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from graph_eigenmap.data.graph import Graph, build_graph
from graph_eigenmap.errors import DataError


def from_pyg(data, *, name: str = "pyg", split_seed: int = 0) -> Graph:
    """A :class:`Graph` from a ``torch_geometric.data.Data``.

    Reads ``edge_index`` ``[2, m]``, ``x`` ``[n, d]`` (optional), ``y`` ``[n]`` (optional),
    ``edge_weight`` ``[m]`` (optional) and boolean ``train_mask/val_mask/test_mask`` ``[n]``
    (optional; without them the seeded 10/10/80 split is made).
    """
    if getattr(data, "edge_index", None) is None:
        raise DataError(f"{name}: the Data object has no edge_index; PyG graphs need edge_index [2, m].")
    num_nodes = data.num_nodes
    if num_nodes is None:
        raise DataError(f"{name}: cannot tell the number of nodes; set data.num_nodes.")
    split = None
    masks = [getattr(data, key, None) for key in ("train_mask", "val_mask", "test_mask")]
    if all(m is not None for m in masks):
        if any(m.dim() != 1 for m in masks):
            raise DataError(f"{name}: only one split is supported; give 1-D train/val/test masks.")
        split = {part: _numpy(m).astype(bool) for part, m in zip(("train", "valid", "test"), masks)}
    return build_graph(
        data.edge_index,
        num_nodes,
        features=_numpy(getattr(data, "x", None)),
        labels=_numpy(getattr(data, "y", None)),
        split=split,
        edge_weight=getattr(data, "edge_weight", None),
        name=name,
        source="torch_geometric.data.Data",
        split_seed=split_seed,
        origin=dict(num_nodes=f"{name} (data.num_nodes)", edges=f"{name} (data.edge_index)",
                    features=f"{name} (data.x)", labels=f"{name} (data.y)", train=f"{name} (data.train_mask)",
                    valid=f"{name} (data.val_mask)", test=f"{name} (data.test_mask)"),
    )


def from_scipy(
    adjacency: sp.spmatrix,
    *,
    features: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    split: dict[str, np.ndarray] | None = None,
    name: str = "arrays",
    split_seed: int = 0,
) -> Graph:
    """A :class:`Graph` from an ``[n, n]`` scipy sparse adjacency and numpy arrays.

    The adjacency may be directed or weighted (non-unit entries are kept as weights); it is
    symmetrized and its diagonal dropped, as for every source.
    """
    if not sp.issparse(adjacency):
        raise DataError(f"{name}: adjacency must be a scipy sparse matrix, got {type(adjacency).__name__}.")
    if adjacency.shape[0] != adjacency.shape[1]:
        raise DataError(f"{name}: adjacency is {adjacency.shape[0]} x {adjacency.shape[1]}; it must be square.")
    coo = sp.coo_matrix(adjacency)
    coo.eliminate_zeros()
    weights = None if np.all(coo.data == 1) else coo.data
    return build_graph(
        np.vstack([coo.row, coo.col]).astype(np.int64),
        adjacency.shape[0],
        features=features,
        labels=labels,
        split=split,
        edge_weight=weights,
        name=name,
        source="scipy.sparse",
        split_seed=split_seed,
        origin=dict(num_nodes=f"{name} (adjacency)", edges=f"{name} (adjacency)"),
    )


def _numpy(value):
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)
