"""Connected components: :func:`components` of any graph, by scipy or, for graphs too large for scipy, by label
propagation with pointer jumping in torch (:func:`components_by_propagation`).

scipy's ``connected_components`` copies the adjacency to float64 and works with 32-bit indices, which a
graph of 3.2 billion stored entries (ogbn-papers100M's shape) does not fit. :func:`components_by_propagation`
runs on any torch device (a GPU at that size) over the CSR arrays in blocks of rows.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components

from graph_eigenmap.data.graph import Graph, derived
from graph_eigenmap.data.sparse import row_blocks
from graph_eigenmap.transfer import to_device

BLOCK_ENTRIES = 1 << 28
"""Stored entries handled at once (their row and column ids as int64: 4 GiB)."""
SCIPY_COMPONENTS_MAX_ENTRIES = 2**31 - 1
"""Stored entries up to which :func:`components` uses scipy."""


def components(graph: Graph | sp.spmatrix) -> np.ndarray:
    """``[n]`` int64 connected-component id of each node (an isolated node is a component of its own).

    For a :class:`Graph` computed once and kept in ``graph.extra`` (and in its cache, :mod:`graph_eigenmap.data.cache`).
    The adjacency is symmetric, so its strongly connected components are its components: scipy finds
    them without the transposed copy its undirected search makes (on ogbn-products' shape, 2 cores:
    9.5 s against 17.6 s). Graphs of more than :data:`SCIPY_COMPONENTS_MAX_ENTRIES` stored entries
    (beyond scipy's 32-bit indices) go to :func:`components_by_propagation`,
    on a GPU when torch sees one.
    """
    if not isinstance(graph, Graph):
        matrix = sp.csr_matrix(graph)
        if matrix.nnz > SCIPY_COMPONENTS_MAX_ENTRIES:
            return components_by_propagation(matrix, "cuda" if torch.cuda.is_available() else "cpu")
        # its structure with one shared value: scipy's float64 copy of the weights (8 bytes an entry) is not made
        pattern = sp.csr_matrix((np.broadcast_to(np.float64(1), (matrix.nnz,)), matrix.indices, matrix.indptr),
                                shape=matrix.shape)
        return connected_components(pattern, directed=True, connection="strong")[1].astype(np.int64)
    return derived(graph, "components", (graph.adjacency,), lambda: components(graph.adjacency))


@torch.no_grad()
def components_by_propagation(adjacency: sp.csr_matrix, device: str | torch.device = "cpu", *,
                              block_entries: int = BLOCK_ENTRIES) -> np.ndarray:
    """``[n]`` int64 component ids (``0 .. C - 1``, numbered by each component's smallest node id).

    Each node starts with its own id as its label. One round, over every stored entry (u, v): the label
    of u, and the label of the node u's label points to, take the smallest label among u's neighbours
    (min-label propagation with hooking); then every label is replaced by its label's label until
    nothing changes (pointer jumping). A label is always the id of a node in the same component and
    never grows, so the rounds stop, and when one changes nothing, labels agree across every edge:
    one label per component. Rounds needed grow with the logarithm of the diameter, not the diameter.

    Args:
        adjacency: ``[n, n]`` symmetric scipy CSR matrix (its values are not read).
        device: where the rounds run.
        block_entries: stored entries per block of rows.
    """
    device = torch.device(device)
    n = adjacency.shape[0]
    index_dtype = torch.int32 if n < 2**31 else torch.int64
    indptr = np.asarray(adjacency.indptr, dtype=np.int64)
    indices = to_device(adjacency.indices, device, index_dtype)
    counts = torch.from_numpy(np.diff(indptr)).to(device)
    blocks = row_blocks(indptr, block_entries)
    label = torch.arange(n, device=device)
    while True:
        new = label.clone()
        for first, last in blocks:
            rows = torch.repeat_interleave(torch.arange(first, last, device=device), counts[first:last])
            neighbour_label = label[indices[indptr[first]:indptr[last]].long()]
            new.scatter_reduce_(0, rows, neighbour_label, "amin")
            new.scatter_reduce_(0, label[rows], neighbour_label, "amin")
        while True:  # pointer jumping
            jumped = new[new]
            if torch.equal(jumped, new):
                break
            new = jumped
        if torch.equal(new, label):
            break
        label = new
    return torch.unique(label, return_inverse=True)[1].cpu().numpy().astype(np.int64)
