"""The one in-memory graph type every loader produces, and the checks that build it.

All loaders end in :func:`build_graph`, which validates the arrays by class (:mod:`graph_eigenmap.data.validate`:
node ids integral and in range, weights finite and non-negative, one finite feature row and one label per node,
labels within the class count, a split without repeats or overlaps, at least one node and one edge) and cleans
the edges: entries of weight 0 and self-loops dropped, repeated edges merged, and one-directional edges given their
reverse, so that :attr:`Graph.adjacency` is always a symmetric CSR matrix with an empty diagonal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from graph_eigenmap.data.validate import (
    SPLIT_NAMES,
    check_edge_index,
    check_edge_weights,
    check_features,
    check_labels,
    check_num_nodes,
    check_split,
)
from graph_eigenmap.errors import DataError


@dataclass(frozen=True)
class CleaningReport:
    """What :func:`build_graph` found in the input edges and did about it.

    Attributes:
        input_edges: edge entries as given (a directed list; an undirected edge given in both
            directions counts twice).
        self_loops_dropped: entries ``(u, u)`` removed.
        duplicates_merged: repeated entries of the same ordered pair ``(u, v)`` merged into one.
        reverse_edges_added: entries ``(u, v)`` whose reverse ``(v, u)`` was missing and added.
    """

    input_edges: int
    self_loops_dropped: int
    duplicates_merged: int
    reverse_edges_added: int


@dataclass
class Graph:
    """A node-classification graph: structure, features, labels and split.

    Attributes:
        adjacency: ``[n, n]`` scipy CSR, symmetric, empty diagonal, float32 weights (1.0 for
            unweighted graphs). Row ``i`` lists the neighbours of node ``i``.
        features: ``[n, d]`` float32 node features: a dense array, or a scipy CSR matrix when they are
            sparse and their dense matrix would be too large (:func:`graph_eigenmap.data.sparse.keep_sparse`);
            ``None`` for a graph without features.
        labels: ``[n]`` int64 class of each node, ``-1`` (:data:`~graph_eigenmap.data.validate.MISSING_LABEL`)
            where unknown.
        split: ``{"train", "valid", "test"}`` -> int64 node ids (may be empty arrays).
        name: short name, e.g. ``"cora"`` or ``"ogbn-arxiv"``.
        source: where the graph came from (a path, a dataset name, or generator settings).
        cleaning: what was done to the input edges to get :attr:`adjacency`.
        synthetic: True for generated graphs; results on them must say so.
    """

    adjacency: sp.csr_matrix
    features: np.ndarray | sp.csr_matrix | None
    labels: np.ndarray
    split: dict[str, np.ndarray]
    name: str
    source: str
    cleaning: CleaningReport
    synthetic: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def num_nodes(self) -> int:
        return int(self.adjacency.shape[0])

    @property
    def num_edges(self) -> int:
        """Undirected edges, each counted once (self-loops excluded)."""
        return int(self.adjacency.nnz // 2)

    @property
    def num_features(self) -> int:
        return 0 if self.features is None else int(self.features.shape[1])

    @property
    def num_classes(self) -> int:
        known = self.labels[self.labels >= 0]
        return int(known.max()) + 1 if known.size else 0

    @property
    def degrees(self) -> np.ndarray:
        """``[n]`` float64 weighted degree of each node (row sums of :attr:`adjacency`)."""
        return np.asarray(self.adjacency.sum(axis=1)).ravel()

    def __repr__(self) -> str:
        sizes = "/".join(str(len(self.split[s])) for s in SPLIT_NAMES)
        tag = ", synthetic" if self.synthetic else ""
        return (
            f"Graph(name={self.name!r}, nodes={self.num_nodes:,}, edges={self.num_edges:,}, "
            f"features={self.num_features}, classes={self.num_classes}, split={sizes}{tag})"
        )


def build_graph(
    edge_index: np.ndarray | torch.Tensor,
    num_nodes: int,
    *,
    features: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    split: dict[str, np.ndarray] | None = None,
    edge_weight: np.ndarray | torch.Tensor | None = None,
    name: str,
    source: str,
    synthetic: bool = False,
    split_seed: int = 0,
    dense_features: bool | None = None,
    origin: dict[str, str] | None = None,
    num_classes: int | None = None,
) -> Graph:
    """Validate arrays and clean edges into a :class:`Graph`.

    Args:
        edge_index: ``[2, m]`` integer edge list ``(source, target)``; may be directed, carry
            self-loops or repeated entries. On a GPU tensor the cleaning runs there.
        num_nodes: n; every edge id must lie in ``[0, n)``.
        features: ``[n, d]`` features (converted to float32, at least one column), dense or scipy sparse, or None.
        labels: ``[n]`` or ``[n, 1]`` integer classes; NaN or negative means unknown (-1 in the graph).
            None: all unknown.
        split: train/valid/test node ids (or boolean masks), each node at most once; None makes the seeded
            10/10/80 split of :func:`random_split`.
        edge_weight: ``[m]`` non-negative weights (0: no edge); None for an unweighted graph. Repeated entries
            are summed and a pair given in both directions keeps the larger weight.
        name, source: recorded on the graph.
        synthetic: mark the graph as generated.
        split_seed: seed of the split made when ``split`` is None.
        dense_features: for scipy-sparse ``features``: True densifies them, False keeps them sparse
            (CSR), None (default) keeps them sparse only when the dense matrix would exceed
            :data:`graph_eigenmap.data.sparse.DENSE_FEATURES_MAX_BYTES`.
        origin: where each array came from, for messages: keys ``num_nodes``, ``edges``, ``features``, ``labels``,
            ``train``, ``valid``, ``test``, ``num_classes`` (a file, or an array's name); missing keys are
            named after ``name`` and the argument.
        num_classes: the class count the source declares (an OGB ``meta.json``): every label must lie below it.

    Raises:
        DataError: with a one-line message naming where the problem is and the fix.
    """
    where = {key: f"{name} ({argument})" for key, argument in _ARGUMENTS.items()}
    where.update(origin or {})
    n = check_num_nodes(num_nodes, where["num_nodes"])
    edges = check_edge_index(edge_index, n, where["edges"])
    weight, keep = check_edge_weights(edge_weight, int(edges.shape[1]), where["edges"], device=edges.device)
    if keep is not None:
        edges, weight = edges[:, keep], weight[keep]
    adjacency, cleaning = clean_edges(edges, n, weight)
    if adjacency.nnz == 0:
        dropped = (f" once its {cleaning.self_loops_dropped:,} self-loops are dropped"
                   if cleaning.self_loops_dropped else "")
        raise DataError(
            f"{where['edges']}: the graph has no edges{dropped} ({n:,} nodes, 0 edges), so every eigenvalue of its "
            "kernel is 0 and there is nothing to learn; check the edge list (edge.csv.gz, or the adj_* arrays of a "
            ".npz)."
        )
    return Graph(
        adjacency=adjacency,
        features=check_features(features, n, where["features"], dense_features),
        labels=check_labels(labels, n, where["labels"], num_classes=num_classes,
                            declared_by=where.get("num_classes")),
        split=(check_split(split, n, {part: where[part] for part in SPLIT_NAMES}) if split is not None
               else random_split(n, seed=split_seed)),
        name=name,
        source=source,
        cleaning=cleaning,
        synthetic=synthetic,
    )


_ARGUMENTS = dict(num_nodes="num_nodes", edges="edge_index", features="features", labels="labels",
                  train="split['train']", valid="split['valid']", test="split['test']")
"""The arguments of :func:`build_graph` that messages name where ``origin`` names no file."""


@dataclass
class Derived:
    """A value computed from a graph, and the objects (adjacency, features, ...) it was computed from."""

    sources: tuple
    value: object


def derived(graph: Graph, key: str, sources: tuple, compute):
    """``compute()`` once per graph, kept in ``graph.extra[key]`` with the objects it was computed from.

    A copy made by ``dataclasses.replace(graph, features=...)`` shares ``extra``: the value is computed again
    when ``sources`` (the graph's adjacency, features, ...) are no longer the very objects it came from.
    """
    entry = graph.extra.get(key)
    if not (isinstance(entry, Derived) and len(entry.sources) == len(sources)
            and all(kept is given for kept, given in zip(entry.sources, sources))):
        entry = graph.extra[key] = Derived(tuple(sources), compute())
    return entry.value


def clean_edges(
    edge_index: torch.Tensor, num_nodes: int, edge_weight: torch.Tensor | None = None
) -> tuple[sp.csr_matrix, CleaningReport]:
    """Turn a raw edge list into a symmetric CSR adjacency with an empty diagonal.

    On a GPU the cleaning sorts edge keys there (fast at ogbn-products' size); on the host it builds
    the CSR matrix directly (:func:`_clean_on_host`: O(m) bucketing by row, then a sort of each row's
    few entries), which on a 2-core CPU is several times faster than a global sort of the keys.

    Args:
        edge_index: ``[2, m]`` int64, ids already checked to lie in ``[0, num_nodes)``.
        num_nodes: n.
        edge_weight: ``[m]`` weights or None (all ones).

    Returns:
        ``([n, n]`` scipy CSR float32 with sorted indices, :class:`CleaningReport`).
    """
    n = num_nodes
    m = int(edge_index.shape[1])
    src, dst = edge_index[0], edge_index[1]
    weight = None if edge_weight is None else edge_weight.float()
    if weight is not None and not bool(((weight > 0) & torch.isfinite(weight)).all()):
        raise DataError("edge weights must be finite and positive; drop or fix the offending edges.")
    keep = src != dst
    self_loops = m - int(keep.sum())
    if self_loops:
        src, dst, weight = src[keep], dst[keep], None if weight is None else weight[keep]
    del keep
    if src.device.type == "cpu":
        adjacency, duplicates, reverse_added = _clean_on_host(src.numpy(), dst.numpy(),
                                                              None if weight is None else weight.numpy(), n)
    else:
        adjacency, duplicates, reverse_added = _clean_by_sorting(src, dst, weight, n)
    return adjacency, CleaningReport(m, self_loops, duplicates, reverse_added)


def _clean_by_sorting(src: torch.Tensor, dst: torch.Tensor, weight: torch.Tensor | None, n: int
                      ) -> tuple[sp.csr_matrix, int, int]:
    """:func:`_clean_on_host`'s result by sorting keys ``row * n + col`` (on any device; the GPU path)."""
    unweighted = weight is None
    weight = torch.ones(src.numel(), device=src.device) if unweighted else weight
    keys, inverse = torch.unique(src * n + dst, sorted=True, return_inverse=True)
    duplicates = int(src.numel()) - int(keys.numel())
    merged = torch.zeros(keys.numel(), device=keys.device).index_add_(0, inverse, weight)
    if unweighted:
        merged.fill_(1.0)
    del src, dst, weight, inverse
    rows, cols = keys // n, keys % n
    both = torch.cat([keys, cols * n + rows])
    sym_keys, inverse = torch.unique(both, sorted=True, return_inverse=True)
    reverse_added = int(sym_keys.numel()) - int(keys.numel())
    sym_weight = torch.zeros(sym_keys.numel(), device=keys.device).scatter_reduce_(
        0, inverse, torch.cat([merged, merged]), reduce="amax", include_self=False
    )
    del both, inverse, keys, rows, cols, merged
    return csr_from_sorted_keys(sym_keys, sym_weight, n), duplicates, reverse_added


def _clean_on_host(src: np.ndarray, dst: np.ndarray, weight: np.ndarray | None, n: int
                   ) -> tuple[sp.csr_matrix, int, int]:
    """Symmetric CSR of directed entries without self-loops: duplicates summed, each pair the larger of its two weights.

    Args:
        src, dst: ``[m]`` int64 endpoints (no self-loops); weight: ``[m]`` float32 or None (all 1).

    Returns:
        ``(adjacency, duplicates merged, reverse entries added)``.
    """
    index = np.int32 if n < 2**31 and 2 * src.size < 2**31 else np.int64
    data = np.ones(src.size, dtype=np.float32) if weight is None else weight.astype(np.float32, copy=False)
    merged = sp.coo_matrix((data, (src.astype(index, copy=False), dst.astype(index, copy=False))), shape=(n, n))
    merged = merged.tocsr()  # sums duplicates and sorts each row's indices
    duplicates = int(src.size) - int(merged.nnz)
    if weight is None:
        merged.data[:] = 1.0
    symmetric = merged.maximum(merged.T.tocsr())
    symmetric.sort_indices()
    reverse_added = int(symmetric.nnz) - int(merged.nnz)
    if symmetric.indices.dtype != index:
        symmetric.indices, symmetric.indptr = symmetric.indices.astype(index), symmetric.indptr.astype(index)
    return symmetric, duplicates, reverse_added


def csr_from_sorted_keys(keys: torch.Tensor, weight: torch.Tensor, num_nodes: int) -> sp.csr_matrix:
    """Scipy CSR from sorted unique keys ``row * n + col`` and their weights (any device)."""
    n = num_nodes
    rows = keys // n
    indptr = torch.zeros(n + 1, dtype=torch.int64, device=keys.device)
    indptr[1:] = torch.bincount(rows, minlength=n).cumsum(0)
    index_dtype = torch.int32 if keys.numel() < 2**31 and n < 2**31 else torch.int64
    cols = (keys % n).to(index_dtype)
    return sp.csr_matrix(
        (weight.float().cpu().numpy(), cols.cpu().numpy(), indptr.to(index_dtype).cpu().numpy()),
        shape=(n, n),
    )


def mapped_file(array: np.ndarray, path: Path) -> np.ndarray:
    """``array`` as the ``.npy`` file ``path`` memory-mapped read-only: the file is written first unless ``array`` is a
    map of it already (then flushed). The pages are then the file's, not anonymous memory."""
    source = array
    while source is not None and not isinstance(source, np.memmap):  # scipy keeps plain views of the maps it is given
        source = getattr(source, "base", None)
    if source is not None and source.filename and Path(source.filename) == Path(path).resolve():
        source.flush()  # a map of that very file: writing it again would truncate what it maps
    else:
        with open(path, "wb") as handle:
            np.save(handle, np.ascontiguousarray(array), allow_pickle=False)
    return np.load(path, mmap_mode="r", allow_pickle=False)


def random_split(num_nodes: int, *, seed: int = 0, fractions=(0.1, 0.1)) -> dict[str, np.ndarray]:
    """The seeded split used wherever a source stores none.

    Rule: ``perm = numpy.random.default_rng(seed).permutation(n)``; train is
    ``perm[:int(0.1 n)]``, valid ``perm[int(0.1 n):int(0.2 n)]``, test the rest (80%).
    This reproduces the split sizes of the OGB-layout copies in ``../shared/data``.
    """
    perm = np.random.default_rng(seed).permutation(num_nodes).astype(np.int64)
    first = int(fractions[0] * num_nodes)
    second = int((fractions[0] + fractions[1]) * num_nodes)
    return {"train": perm[:first], "valid": perm[first:second], "test": perm[second:]}


def induced_subgraph(graph: Graph, nodes: np.ndarray, *, name: str | None = None) -> tuple[Graph, np.ndarray]:
    """The subgraph on ``nodes`` (edges among them only), with features, labels and the split restricted.

    Returns:
        ``(subgraph, nodes)``: node i of the subgraph is ``nodes[i]`` of ``graph`` (sorted ids).
    """
    nodes = np.unique(np.asarray(nodes, dtype=np.int64))
    position = np.full(graph.num_nodes, -1, dtype=np.int64)
    position[nodes] = np.arange(len(nodes))
    split = {part: position[ids][position[ids] >= 0] for part, ids in graph.split.items()}
    adjacency = graph.adjacency[nodes][:, nodes].tocsr()
    sub = Graph(
        adjacency=adjacency,
        features=None if graph.features is None else graph.features[nodes],
        labels=graph.labels[nodes],
        split=split,
        name=name or f"{graph.name}[{len(nodes)} nodes]",
        source=f"subgraph of {graph.source}",
        cleaning=CleaningReport(adjacency.nnz, 0, 0, 0),
        synthetic=graph.synthetic,
    )
    return sub, nodes
