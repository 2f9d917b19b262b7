"""The kernel: the normalized adjacency Ā = D^-1/2 A D^-1/2, and a report on the graph behind it.

Ā is symmetric with spectrum in [-1, 1] (indefinite). Its top eigenvector on each connected
component is √d restricted to that component, with eigenvalue 1. A node of degree 0 has no
defined D^-1/2: it gets a zero row and column (eigenvalue 0), and the report counts it.

Variants:
    ``self_loops=True``: Ā = D̃^-1/2 (A + I) D̃^-1/2 with D̃ = D + I (GCN normalization).
    ``shift=True``: (I + Ā) / 2, positive semi-definite, same eigenvectors.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components

from graph_eigenmap.data.graph import Graph


@dataclass(frozen=True)
class KernelReport:
    """What the graph looks like and what normalizing it did.

    Attributes:
        num_nodes: n.
        num_edges: undirected edges after cleaning, each counted once, self-loops excluded.
        num_features: feature dimension (0 without features).
        num_classes: number of classes among known labels.
        input_edges, self_loops_dropped, duplicates_merged, reverse_edges_added: from cleaning.
        isolated_nodes: nodes of degree 0 (zero row and column in Ā, unless self-loops are added).
        components: connected components, an isolated node counting as one.
        degree_min, degree_mean, degree_max: weighted degrees of A (before self-loops).
        split_sizes: [train, valid, test].
        self_loops_added: True for the GCN-normalized variant.
    """

    name: str
    source: str
    synthetic: bool
    num_nodes: int
    num_edges: int
    num_features: int
    num_classes: int
    input_edges: int
    self_loops_dropped: int
    duplicates_merged: int
    reverse_edges_added: int
    isolated_nodes: int
    components: int
    degree_min: float
    degree_mean: float
    degree_max: float
    split_sizes: list[int]
    self_loops_added: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    def to_text(self) -> str:
        """A short human-readable summary, one fact per line."""
        tag = " (synthetic)" if self.synthetic else ""
        lines = [
            f"{self.name}{tag}  [{self.source}]",
            f"nodes              {self.num_nodes:,}",
            f"undirected edges   {self.num_edges:,}",
            f"features           {self.num_features}",
            f"classes            {self.num_classes}",
            f"split              train {self.split_sizes[0]:,} / valid {self.split_sizes[1]:,} / test {self.split_sizes[2]:,}",
            f"input edge entries {self.input_edges:,}",
            f"self-loops dropped {self.self_loops_dropped:,}",
            f"duplicates merged  {self.duplicates_merged:,}",
            f"reverses added     {self.reverse_edges_added:,}",
            f"isolated nodes     {self.isolated_nodes:,}  (zero row and column in the kernel)",
            f"components         {self.components:,}  (each adds one eigenvalue 1)",
            f"degree min/mean/max {self.degree_min:g} / {self.degree_mean:.2f} / {self.degree_max:g}",
        ]
        if self.self_loops_added:
            lines.append("kernel             D~^-1/2 (A + I) D~^-1/2 (GCN normalization)")
        return "\n".join(lines)


def graph_report(graph: Graph, *, self_loops: bool = False) -> KernelReport:
    """Count what a user should know before trusting a spectral embedding of ``graph``."""
    degrees = graph.degrees
    components, _ = connected_components(graph.adjacency, directed=False)
    cleaning = graph.cleaning
    return KernelReport(
        name=graph.name,
        source=graph.source,
        synthetic=graph.synthetic,
        num_nodes=graph.num_nodes,
        num_edges=graph.num_edges,
        num_features=graph.num_features,
        num_classes=graph.num_classes,
        input_edges=cleaning.input_edges,
        self_loops_dropped=cleaning.self_loops_dropped,
        duplicates_merged=cleaning.duplicates_merged,
        reverse_edges_added=cleaning.reverse_edges_added,
        isolated_nodes=int((degrees == 0).sum()),
        components=int(components),
        degree_min=float(degrees.min()),
        degree_mean=float(degrees.mean()),
        degree_max=float(degrees.max()),
        split_sizes=[int(len(graph.split[s])) for s in ("train", "valid", "test")],
        self_loops_added=self_loops,
    )


def normalized_adjacency(
    graph: Graph | sp.spmatrix, *, self_loops: bool = False, shift: bool = False
) -> sp.csr_matrix:
    """Ā = D^-1/2 A D^-1/2 as a float32 scipy CSR matrix.

    Args:
        graph: a :class:`Graph` or a symmetric ``[n, n]`` scipy sparse adjacency.
        self_loops: add I before normalizing (GCN normalization); no node is then isolated.
        shift: return (I + Ā) / 2 (PSD) instead of Ā.

    Returns:
        ``[n, n]`` symmetric CSR; rows and columns of isolated nodes are exactly zero
        (with ``shift``, their diagonal is 1/2).
    """
    adjacency = graph.adjacency if isinstance(graph, Graph) else sp.csr_matrix(graph)
    n = adjacency.shape[0]
    if self_loops:
        adjacency = adjacency + sp.eye(n, dtype=adjacency.dtype, format="csr")
    degrees = np.asarray(adjacency.sum(axis=1), dtype=np.float64).ravel()
    inv_sqrt = np.zeros(n, dtype=np.float64)
    positive = degrees > 0
    inv_sqrt[positive] = 1.0 / np.sqrt(degrees[positive])
    kernel = sp.csr_matrix(adjacency, dtype=np.float64, copy=True)
    row_ids = np.repeat(np.arange(n), np.diff(kernel.indptr))
    kernel.data *= inv_sqrt[row_ids] * inv_sqrt[kernel.indices]
    kernel = kernel.astype(np.float32)
    if shift:
        kernel = ((kernel + sp.eye(n, dtype=np.float32, format="csr")) * 0.5).tocsr()
    return kernel


def to_torch_csr(matrix: sp.spmatrix, *, device: str | torch.device = "cpu", dtype=torch.float32) -> torch.Tensor:
    """A scipy sparse matrix as a ``torch.sparse_csr_tensor`` on ``device`` (int64 indices)."""
    csr = sp.csr_matrix(matrix)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.from_numpy(csr.indptr.astype(np.int64)),
            torch.from_numpy(csr.indices.astype(np.int64)),
            torch.from_numpy(csr.data.astype(np.float32)),
            size=csr.shape,
            dtype=dtype,
            check_invariants=False,
        ).to(device)
