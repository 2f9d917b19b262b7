"""What the model reads for each node: its features, or its features propagated over the graph.

``inputs="features"`` (default): row i of the model's input is x_i, the node's own features; a new
node needs nothing but its features.

``inputs="propagated:K"``: row i is [x_i, (ÂX)_i, …, (Â^K X)_i] (SIGN-style), Â = D̃^-1/2 (A + I) D̃^-1/2
the GCN-normalized adjacency, computed once before training by K sparse products. The model stays an
MLP, but it now sees its neighbourhood's features: a feature MLP cannot express structure its inputs
lack. A new node then needs its edges to known nodes: hop k of a new node v is
Σ_u Â_vu H_{k-1}(u) over v and its known neighbours u, with H_{k-1} the training graph's hop k − 1
(kept with the fitted model), the known nodes' degrees those of the training graph plus one, and v's
own degree its number of given edges plus one. For a node of the training graph given with its own
edges this reproduces its training row exactly (tests/test_inputs.py).

``inputs="svd:D"`` and ``"svd:D+propagated:K"``: the features are first reduced to D columns, X V with V the
top-D right singular vectors of X (scikit-learn's truncated SVD, not centred, as suits bag-of-words rows), and
then propagated if asked. V is kept with the fitted model (``input_projection.npy``): a new node's features are
reduced by the same V. On the raw bag-of-words `.npz` features of cora and citeseer this is what the MLP needs:
propagated raw features of 1,433 and 3,703 columns left Neural Eigenmap 2 and 6 points behind GCN, the reduced ones
at or within 1.2 points of it (``benchmarks/results/quality/compare_current/vs_gcn.md``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from graph_eigenmap.data.graph import Derived, Graph, derived
from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.kernel import normalized_adjacency, to_torch_csr
from graph_eigenmap.registry import InputSpec, parse_inputs
from graph_eigenmap.transfer import tensor_view


def reduce_features(features, rank: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Truncated SVD of ``[n, d]`` features (dense or sparse, not centred, as for bag-of-words):
    ``([n, D]`` float32 reduced features X V, ``[d, D]`` float32 projection V``)`` (scikit-learn's randomized
    solver, seeded).

    A new node's reduced features are its features times V, so the model reads the same columns for it.
    """
    from sklearn.decomposition import TruncatedSVD  # deferred: scikit-learn takes seconds to import

    n, d = features.shape
    if not 1 <= rank < min(n, d):
        raise GraphEigenmapError(f"`inputs=svd:{rank}` needs 1 <= D < min(nodes, features) = {min(n, d)}; "
                                 "choose a smaller D.")
    svd = TruncatedSVD(rank, algorithm="randomized", random_state=seed).fit(features)
    projection = np.ascontiguousarray(svd.components_.T, dtype=np.float32)
    return np.asarray(features @ projection, dtype=np.float32), projection


def gcn_degrees(adjacency: sp.spmatrix) -> np.ndarray:
    """``[n]`` float64 degrees of A + I (weighted), the normalization of Â."""
    return np.asarray(sp.csr_matrix(adjacency).sum(axis=1), dtype=np.float64).ravel() + 1.0


PROPAGATE_HOST_BLOCK_BYTES = 1 << 26
"""Bytes of the blocks of columns :func:`propagate` works on at once on a CPU (two of them, float32)."""


def propagate(features: np.ndarray, adjacency: sp.spmatrix, hops: int, *, device: str | torch.device = "cpu",
              chunk_columns: int | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """``[n, (K + 1) d]`` float32 [X, ÂX, …, Â^K X] for ``[n, d]`` features and the ``[n, n]`` adjacency A.

    The products run on ``device`` (a GPU at ogbn-products' size), ``chunk_columns`` feature columns at a time
    (default: 4096 on a GPU, so that wide raw features never need K + 1 copies there; on a CPU as many as take
    :data:`PROPAGATE_HOST_BLOCK_BYTES`, since each hop's block is host memory). Each column is its own product, so
    the result does not depend on the chunks. ``out``: where to write the result
    (a float32 ``[n, (K + 1) d]`` array, memory-mapped for a large graph: :func:`model_input_graph`); None: a new array.
    """
    kernel = to_torch_csr(normalized_adjacency(adjacency, self_loops=True), device=device, compact=True)
    n, d = features.shape
    if chunk_columns is None:
        chunk_columns = 4096 if torch.device(device).type == "cuda" else max(1, PROPAGATE_HOST_BLOCK_BYTES // (8 * n))
    out = np.empty((n, (hops + 1) * d), dtype=np.float32) if out is None else out
    for begin in range(0, d, chunk_columns):
        end = min(d, begin + chunk_columns)
        block = tensor_view(np.ascontiguousarray(features[:, begin:end], dtype=np.float32)).to(device)
        out[:, begin:end] = block.cpu().numpy()
        for hop in range(1, hops + 1):
            block = kernel @ block
            out[:, hop * d + begin:hop * d + end] = block.cpu().numpy()
    del kernel
    return out


def propagate_new_nodes(features: np.ndarray, edges: np.ndarray, known: np.ndarray, known_degrees: np.ndarray,
                        hops: int) -> np.ndarray:
    """``[m, (K + 1) d]`` propagated inputs of m new nodes from their features and their edges to known nodes.

    Args:
        features: ``[m, d]`` the new nodes' features.
        edges: ``[2, E]`` int: row 0 the new node (0..m-1), row 1 the known node it links to (0..n-1).
            Each edge once; the new nodes are not linked to each other.
        known: ``[n, (K + 1) d]`` the training graph's propagated inputs [X, ÂX, …, Â^K X].
        known_degrees: ``[n]`` degrees of A + I in the training graph (:func:`gcn_degrees`).
        hops: K.

    Returns:
        float32 rows laid out as :func:`propagate`'s.

    Only the known rows the edges reach are read (``known`` may be memory-mapped): the cost grows with the edges, not
    with n (1,000 new nodes of a 300,000-node graph: 0.4 s when every known row was read per hop).
    """
    m, d = features.shape
    new, old = _check_edges(edges, m, known.shape[0])
    reached, column = np.unique(old, return_inverse=True)  # the known neighbours, and each edge's among them
    degree = np.bincount(new, minlength=m).astype(np.float64) + 1.0
    weights = 1.0 / np.sqrt(degree[new] * known_degrees[old])
    gather = sp.csr_matrix((weights, (new, column.ravel())), shape=(m, len(reached)))
    neighbours = np.asarray(known[reached, :hops * d], dtype=np.float64)  # [u, K d]: hops 0 .. K - 1 of them
    rows = [np.asarray(features, dtype=np.float64)]
    for hop in range(1, hops + 1):
        rows.append(gather @ neighbours[:, (hop - 1) * d:hop * d] + rows[-1] / degree[:, None])
    return np.hstack(rows).astype(np.float32)


def _check_edges(edges, m: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    edges = np.asarray(edges)
    if edges.ndim != 2 or edges.shape[0] != 2 or not np.issubdtype(edges.dtype, np.integer):
        raise GraphEigenmapError(f"`edges` must be an integer array of shape [2, E] (new node, known node); got "
                                 f"{edges.dtype} {list(edges.shape)}.")
    new, old = edges[0].astype(np.int64), edges[1].astype(np.int64)
    if new.size and (new.min() < 0 or new.max() >= m):
        bad = new.min() if new.min() < 0 else new.max()
        raise GraphEigenmapError(f"`edges`: row 0 must hold new-node indices in [0, {m}) (one per row of the "
                                 f"features); found {bad}.")
    if old.size and (old.min() < 0 or old.max() >= n):
        bad = old.min() if old.min() < 0 else old.max()
        raise GraphEigenmapError(f"`edges`: row 1 must hold known-node ids in [0, {n}) (the training graph); "
                                 f"found {bad}.")
    return new, old


def model_input_graph(graph: Graph, inputs: InputSpec | str, device: str | torch.device = "cpu", *,
                      file: str | Path | None = None) -> Graph:
    """``graph`` with its features replaced by what the model reads (the graph itself for ``"features"``).

    The reduced and propagated features are computed once per graph, features and ``inputs`` value (kept in
    ``graph.extra``, :func:`~graph_eigenmap.data.graph.derived`). ``file``: a new ``.npy`` file that receives the
    propagated ``[n, (K + 1) D]`` rows, which then come back memory-mapped read-only: the largest array of a fit
    (four times the features at K = 3) is then pages of a file, which the kernel can drop and write back, not
    anonymous memory, and the fit's ``known_inputs.npy`` is that file (:func:`graph_eigenmap.files.save_array`).
    """
    spec = parse_inputs(inputs)
    if spec.name == "features" or graph.features is None:
        return graph

    def compute():
        base = graph.features if not spec.rank else input_projection(graph, spec.rank)[0]
        if not spec.hops:
            rows = base
        elif file is None:
            rows = propagate(base, graph.adjacency, spec.hops, device=device)
        else:
            written = np.lib.format.open_memmap(file, mode="w+", dtype=np.float32,
                                                shape=(base.shape[0], spec.width(base.shape[1])))
            propagate(base, graph.adjacency, spec.hops, device=device, out=written)
            written.flush()
            del written
            rows = np.load(file, mmap_mode="r", allow_pickle=False)
        return dataclasses.replace(graph, features=rows, extra=graph.extra)

    return derived(graph, f"inputs:{spec.name}", (graph.features, graph.adjacency), compute)


def with_model_inputs(graph: Graph, inputs: InputSpec | str, rows: np.ndarray,
                      projection: np.ndarray | None = None) -> None:
    """Give ``graph`` model inputs computed elsewhere (the ranks of a data-parallel run map the ones their launcher
    wrote, :func:`graph_eigenmap.api.neural_eigenmap_on_processes`): :func:`model_input_graph` then returns them
    instead of computing them. ``rows``: ``[n, (K + 1) D]`` as :func:`model_input_graph` makes them; ``projection``:
    the ``[d, D]`` projection of ``svd:D`` (its reduced features are the first D columns of ``rows``)."""
    spec = parse_inputs(inputs)
    if spec.name == "features" or graph.features is None:
        return
    if spec.rank:
        graph.extra[f"svd:{spec.rank}"] = Derived((graph.features,), (rows[:, :spec.rank], projection))
    graph.extra[f"inputs:{spec.name}"] = Derived((graph.features, graph.adjacency),
                                                 dataclasses.replace(graph, features=rows, extra=graph.extra))


def input_projection(graph: Graph, rank: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`reduce_features` of ``graph``'s features, computed once per graph and features."""
    return derived(graph, f"svd:{rank}", (graph.features,), lambda: reduce_features(graph.features, rank))


@dataclass
class KnownInputs:
    """What a new node's model inputs are made from: the training graph's propagated inputs ``[n, (K + 1) D]`` and
    degrees of A + I ``[n]`` (with ``propagated:K``; None otherwise) and the ``[d, D]`` projection of ``svd:D``
    (None without it)."""

    inputs: np.ndarray | None
    degrees: np.ndarray | None
    hops: int
    projection: np.ndarray | None = None

    @property
    def needs_edges(self) -> bool:
        return self.hops > 0

    def new_node_inputs(self, features, edges=None) -> np.ndarray:
        """``[m, (K + 1) D]`` model inputs of m new nodes from ``[m, d]`` features (and ``[2, E]`` edges to known nodes
        with ``propagated:K``, :func:`graph_eigenmap.inputs.propagate_new_nodes`)."""
        x = features.toarray() if sp.issparse(features) else features
        x = np.asarray(x, dtype=np.float32)
        width = self.projection.shape[0] if self.projection is not None else self.inputs.shape[1] // (self.hops + 1)
        if x.ndim != 2 or x.shape[1] != width:
            raise GraphEigenmapError(f"`features` must have shape [m, {width}] (the width the model was fitted on); "
                                     f"got {list(x.shape)}.")
        if self.projection is not None:
            x = x @ self.projection
        if not self.hops:
            return x
        return propagate_new_nodes(x, edges, self.inputs, self.degrees, self.hops)
