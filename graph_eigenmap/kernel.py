"""The kernel: the normalized adjacency Ā = D^-1/2 A D^-1/2, and a report on the graph behind it.

Ā is symmetric with spectrum in [-1, 1] (indefinite). Its top eigenvector on each connected
component is √d restricted to that component, with eigenvalue 1. A node of degree 0 has no
defined D^-1/2: it gets a zero row and column (eigenvalue 0), and the report counts it.

Variants (registered by name in :data:`graph_eigenmap.registry.KERNELS`; :func:`full_kernel` builds any of them):
    ``self_loops=True``: Ā = D̃^-1/2 (A + I) D̃^-1/2 with D̃ = D + I (GCN normalization), ``"gcn"``.
    ``shift=True``: (I + Ā) / 2, positive semi-definite, same eigenvectors, ``"shifted"``.
    :class:`DeflatedKernel`: Ā without its trivial eigenvectors, ``"nontrivial"``.

:func:`trivial_eigenvectors` gives those eigenvalue-1 vectors (one per component) and a projector
that removes them from a block, for the "nontrivial" spectrum.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import scipy.sparse as sp
import torch

from graph_eigenmap.data.components import components
from graph_eigenmap.data.graph import Graph, derived
from graph_eigenmap.data.sparse import column_statistics, dense_column_moments, row_blocks, to_torch_csr
from graph_eigenmap.registry import KERNELS


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
            f"split              train {self.split_sizes[0]:,} / valid {self.split_sizes[1]:,} / "
            f"test {self.split_sizes[2]:,}",
            f"input edge entries {self.input_edges:,}",
            f"self-loops dropped {self.self_loops_dropped:,}",
            f"duplicates merged  {self.duplicates_merged:,}",
            f"reverses added     {self.reverse_edges_added:,}",
            f"isolated nodes     {self.isolated_nodes:,}  (zero row and column in the kernel)",
            f"components         {self.components:,}  ({self._components_note()})",
            f"degree min/mean/max {self.degree_min:g} / {self.degree_mean:.2f} / {self.degree_max:g}",
        ]
        if self.self_loops_added:
            lines.append("kernel             D~^-1/2 (A + I) D~^-1/2 (GCN normalization)")
        return "\n".join(lines)

    def _components_note(self) -> str:
        """What the components mean for the spectrum: eigenvalue 1 once per component with an edge."""
        if self.self_loops_added or self.isolated_nodes == 0:
            return "each adds one eigenvalue 1"
        with_edges = self.components - self.isolated_nodes
        return (f"{with_edges:,} with edges, each adding one eigenvalue 1; the {self.isolated_nodes:,} isolated "
                "nodes add eigenvalue 0")


def graph_report(graph: Graph, *, self_loops: bool = False) -> KernelReport:
    """Count what a user should know before trusting a spectral embedding of ``graph``."""
    degrees = graph.degrees
    component_count = int(components(graph).max()) + 1
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
        components=component_count,
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
    indptr, indices = adjacency.indptr, adjacency.indices
    # A + I is ours to overwrite; the graph's own weights are not
    data = adjacency.data if self_loops and adjacency.data.dtype == np.float32 else np.empty(adjacency.nnz, np.float32)
    for first, last in row_blocks(indptr, NORMALIZE_BLOCK_ENTRIES):
        begin, end = indptr[first], indptr[last]
        rows = np.repeat(np.arange(first, last), np.diff(indptr[first:last + 1]))
        block = adjacency.data[begin:end].astype(np.float64)
        block *= inv_sqrt[rows] * inv_sqrt[indices[begin:end]]
        data[begin:end] = block
    kernel = sp.csr_matrix((data, indices, indptr), shape=adjacency.shape)  # shares the index arrays
    if shift:
        kernel = ((kernel + sp.eye(n, dtype=np.float32, format="csr")) * 0.5).tocsr()
    return kernel


NORMALIZE_BLOCK_ENTRIES = 1 << 22
"""Stored entries :func:`normalized_adjacency` scales at once in float64 (its only copy beside the result's values)."""


@dataclass(frozen=True, eq=False)
class TrivialEigenvectors:
    """The trivial eigenvectors of Ā: one per connected component with an edge, and their projector.

    Component c has eigenvalue 1 with eigenvector u_c = √d / √vol(c) on c and zero elsewhere,
    vol(c) = Σ_{i in c} d_i (weighted degrees; d + 1 with self-loops). The u_c have disjoint supports,
    so they are stored as one ``[n]`` vector plus the component id of each node, and U Uᵀ x is a
    segment sum over components: O(n·w) for an ``[n, w]`` block, with no dense ``[n, C]`` U.

    Attributes:
        component: ``[n]`` int64 component id of each node (:func:`graph_eigenmap.data.graph.components`; an
            isolated node is a component of its own).
        values: ``[n]`` float64, entry i of the u_c of i's component, √d_i / √vol(c); 0 on isolated
            nodes (no edge and no self-loop), which have no trivial eigenvector to remove.
        count: number of components with an edge (or a self-loop), i.e. of nonzero u_c: the
            multiplicity of the eigenvalue 1 of Ā.
    """

    component: np.ndarray
    values: np.ndarray
    count: int

    @property
    def num_components(self) -> int:
        """All components, isolated nodes included (component ids are ``0 .. num_components - 1``)."""
        return int(self.component.max()) + 1 if len(self.component) else 0

    def project(self, block: np.ndarray) -> np.ndarray:
        """x − U Uᵀ x for a numpy block: removes every u_c from every column.

        Args:
            block: ``[n]`` or ``[n, w]`` array.

        Returns:
            float64 array of the same shape, orthogonal to every u_c.
        """
        columns = np.asarray(block, dtype=np.float64).reshape(len(self.values), -1)
        weighted = self.values[:, None] * columns
        coefficients = np.stack([np.bincount(self.component, weights=weighted[:, j], minlength=self.num_components)
                                 for j in range(columns.shape[1])], axis=1)  # [C, w] = Uᵀ x
        return (columns - self.values[:, None] * coefficients[self.component]).reshape(np.shape(block))

    def torch_projector(self, device: str | torch.device = "cpu",
                        dtype: torch.dtype = torch.float32) -> Callable[[torch.Tensor], torch.Tensor]:
        """A function x ↦ x − U Uᵀ x on torch blocks, with the index and values already on ``device``.

        Build it once and call it many times (e.g. every step of an iteration). The segment sum uses
        ``index_add_`` and runs in the block's dtype: use float64 blocks where float32 accumulation
        over a large component is not accurate enough.

        Args:
            device: where the blocks live.
            dtype: the blocks' usual dtype (the values are stored in it; blocks of another dtype work
                too, at the cost of a cast per call).

        Returns:
            ``project(x)``: ``[n]`` or ``[n, w]`` tensor on ``device`` -> same shape, orthogonal to every u_c.
        """
        component = torch.from_numpy(self.component.astype(np.int64)).to(device)
        values = torch.from_numpy(self.values).to(device=device, dtype=dtype)[:, None]
        num_components = self.num_components

        def project(block: torch.Tensor) -> torch.Tensor:
            columns = block.reshape(len(values), -1)
            weights = values.to(columns.dtype)  # no copy when the dtypes agree
            coefficients = columns.new_zeros(num_components, columns.shape[1])
            coefficients.index_add_(0, component, weights * columns)  # [C, w] = Uᵀ x
            return (columns - weights * coefficients[component]).reshape(block.shape)

        return project

    def project_torch(self, block: torch.Tensor) -> torch.Tensor:
        """x − U Uᵀ x for one ``[n]`` or ``[n, w]`` tensor on any device (see :meth:`torch_projector`)."""
        return self.torch_projector(block.device, block.dtype)(block)


def trivial_eigenvectors(graph: Graph | sp.spmatrix, *, self_loops: bool = False) -> TrivialEigenvectors:
    """The eigenvalue-1 eigenvectors u_c = √d / √vol(c) of :func:`normalized_adjacency`, one per component.

    Args:
        graph: a :class:`Graph` or a symmetric ``[n, n]`` scipy sparse adjacency (weights allowed).
        self_loops: match ``normalized_adjacency(..., self_loops=True)``: degrees d + 1, and every
            node (isolated ones too) is in a component with a trivial eigenvector.

    Returns:
        :class:`TrivialEigenvectors` of the graph.
    """
    adjacency = graph.adjacency if isinstance(graph, Graph) else sp.csr_matrix(graph)
    component = components(graph)
    degrees = row_sums(adjacency) + (1.0 if self_loops else 0.0)
    volumes = np.bincount(component, weights=degrees)
    values = np.zeros(len(degrees))
    positive = degrees > 0
    values[positive] = np.sqrt(degrees[positive] / volumes[component[positive]])
    return TrivialEigenvectors(component=component, values=values, count=int((volumes > 0).sum()))


def row_sums(adjacency: sp.csr_matrix, *, block_entries: int = 1 << 22) -> np.ndarray:
    """``[n]`` float64 row sums of a CSR matrix, a block of rows at a time (no float64 copy of all its values)."""
    indptr, n = adjacency.indptr, adjacency.shape[0]
    if adjacency.nnz <= block_entries:
        return np.asarray(adjacency.astype(np.float64).sum(axis=1)).ravel()
    sums = np.empty(n)
    for first, last in row_blocks(indptr, block_entries):
        begin, end = indptr[first], indptr[last]
        block = sp.csr_matrix((adjacency.data[begin:end].astype(np.float64), adjacency.indices[begin:end],
                               indptr[first:last + 1] - begin), shape=(last - first, adjacency.shape[1]))
        sums[first:last] = np.asarray(block.sum(axis=1)).ravel()
    return sums


class DeflatedKernel:
    """Ā' = Ā − Σ_c u_c u_cᵀ, the kernel without its trivial eigenvectors, as a product ``Ā' @ x``.

    Ā' has Ā's eigenpairs except that each component's u_c (eigenvalue 1) gets eigenvalue 0, so
    its top-k eigenfunctions are the top-k nontrivial ones (:mod:`graph_eigenmap.baselines.laplacian_eigenmap`).
    ``Ā' x = Ā x − U Uᵀ x``: one sparse product and one segment sum over components, O(nnz + n·w).
    Symmetric like Ā, so it serves wherever a symmetric kernel's product does.

    Args:
        kernel: ``[n, n]`` torch sparse CSR Ā (:func:`normalized_adjacency`, :func:`to_torch_csr`).
        trivial: the graph's :func:`trivial_eigenvectors` (built with the same ``self_loops``).
    """

    def __init__(self, kernel: torch.Tensor, trivial: TrivialEigenvectors):
        self.kernel = kernel
        self._complement = trivial.torch_projector(kernel.device, torch.float32)  # x ↦ x − U Uᵀ x

    @property
    def shape(self) -> torch.Size:
        return self.kernel.shape

    @property
    def device(self) -> torch.device:
        return self.kernel.device

    def __matmul__(self, x: torch.Tensor) -> torch.Tensor:
        """``[n, w]`` -> ``[n, w]`` Ā' x."""
        return self.kernel @ x - x + self._complement(x)


class RowBlockKernel:
    """Ā = D^-1/2 A D^-1/2 (or (I + Ā)/2) as a product ``Ā @ x``, from a lean CSR structure, a block of rows at a time.

    A torch CSR kernel stores an int64 column id and a float32 value per entry (12 bytes; 39 GB for
    papers100M's 3.2 billion entries, plus its scipy copy on the host). Here the structure is the one the
    sampling estimators hold anyway: int64 row pointers, int32 column ids and, for a weighted graph, float32
    weights (``None``: all ones); Ā x = D^-1/2 (A (D^-1/2 x)), each block of rows one cuSPARSE (or CPU)
    product of its own int32 CSR matrix, whose values are the weights or a reused buffer of ones.
    Symmetric like Ā, so it serves wherever a symmetric kernel's product does (:class:`DeflatedKernel` too).

    Args:
        indptr: ``[n + 1]`` int64 row pointers, on the device.
        indices: ``[nnz]`` int32 (or int64) column ids.
        weights: ``[nnz]`` float32 edge weights, or None for an unweighted graph.
        inv_sqrt_degree: ``[n]`` float32 d^-1/2 (0 for isolated nodes).
        shift: the product of (I + Ā)/2 instead.
        block_entries: stored entries per block of rows.
    """

    def __init__(self, indptr: torch.Tensor, indices: torch.Tensor, weights: torch.Tensor | None,
                 inv_sqrt_degree: torch.Tensor, *, shift: bool = False, block_entries: int = 1 << 28):
        self.indptr, self.indices, self.weights = indptr, indices, weights
        self.inv_sqrt_degree = inv_sqrt_degree
        self.shift = shift
        n = inv_sqrt_degree.numel()
        pointers = indptr.cpu().numpy()
        self.blocks = [(a, b, int(pointers[a]), int(pointers[b])) for a, b in row_blocks(pointers, block_entries)]
        largest = max((end - begin for _, _, begin, end in self.blocks), default=0)
        self.ones = None if weights is not None else torch.ones(largest, device=indptr.device)
        self._shape = torch.Size((n, n))

    @property
    def shape(self) -> torch.Size:
        return self._shape

    @property
    def device(self) -> torch.device:
        return self.indptr.device

    def __matmul__(self, x: torch.Tensor) -> torch.Tensor:
        """``[n]`` or ``[n, w]`` float32 -> the same shape, Ā x."""
        columns = x.reshape(x.shape[0], -1).float()
        scaled = self.inv_sqrt_degree[:, None] * columns
        out = torch.empty_like(columns)
        for first, last, begin, end in self.blocks:
            crow = (self.indptr[first:last + 1] - begin).to(torch.int32)
            col = self.indices[begin:end].to(torch.int32)
            values = self.weights[begin:end] if self.weights is not None else self.ones[:end - begin]
            with warnings.catch_warnings():  # torch's notes on beta support and on skipped invariant checks
                warnings.filterwarnings("ignore", message="Sparse (CSR tensor support is in beta|invariant checks)")
                block = torch.sparse_csr_tensor(crow, col, values, size=(last - first, self._shape[1]),
                                                check_invariants=False)
            out[first:last] = block @ scaled
        out *= self.inv_sqrt_degree[:, None]
        if self.shift:
            out = 0.5 * (columns + out)
        return out.reshape(x.shape)


def kernel_adjacency(graph: Graph, kernel: str) -> sp.csr_matrix:
    """The adjacency whose normalization is the kernel named ``kernel``: A, or A + I for a kernel with self-loops."""
    if KERNELS[kernel].self_loops:
        return (graph.adjacency + sp.eye(graph.num_nodes, dtype=graph.adjacency.dtype, format="csr")).tocsr()
    return graph.adjacency


def graph_trivial_eigenvectors(graph: Graph) -> TrivialEigenvectors:
    """The graph's :func:`trivial_eigenvectors`, computed once per graph object."""
    return derived(graph, "trivial_eigenvectors", (graph.adjacency,), lambda: trivial_eigenvectors(graph))


def full_kernel(graph: Graph, kernel: str, device: str | torch.device):
    """The ``[n, n]`` kernel named ``kernel`` on ``device``: a torch CSR matrix, or a :class:`DeflatedKernel`."""
    choice = KERNELS[kernel]
    matrix = to_torch_csr(normalized_adjacency(kernel_adjacency(graph, kernel), shift=choice.shift), device=device,
                          compact=True)
    return DeflatedKernel(matrix, graph_trivial_eigenvectors(graph)) if choice.nontrivial else matrix


SMOOTHNESS_BUDGET_BYTES = 1 << 30
"""Host memory the standardized feature columns of :func:`feature_smoothness` may take (float32)."""
SMOOTHNESS_SAMPLE_ROWS = 20_000
"""Rows whose standardized features give the principal directions of :func:`feature_smoothness`."""
SMOOTHNESS_BLOCK_BYTES = 1 << 26
"""Dense features beyond this many bytes (float32) are standardized and scored a block of rows at a time."""


def feature_smoothness(graph: Graph, *, components: int = 8, seed: int = 0) -> float | None:
    """How smooth the node features' main directions are on the graph: tr(PᵀĀP) / tr(PᵀP), Ā = D^-1/2 A D^-1/2.

    P holds the scores of the ``components`` leading principal directions of the standardized features (the
    directions from a seeded sample of :data:`SMOOTHNESS_SAMPLE_ROWS` rows, by randomized SVD; at most as many
    columns as fit in :data:`SMOOTHNESS_BUDGET_BYTES`). Leading directions, not every column: a column of a noisy
    bag of words is mostly noise, and noise is not smooth on any graph, whereas the directions the features share
    are where a graph's help shows. The value lies in [-1, 1]: 0.004-0.007 on blogcatalog, where the features say
    more than the neighbours, against 0.10-0.57 on the other six shared graphs (both layouts) and 0.02-0.06 on the
    synthetic CSBM presets (``benchmarks/results/feature_smoothness.md``). Label-free: it reads no labels.

    Returns:
        The ratio, or None for a graph without features or without a non-constant column.
    """
    from sklearn.utils.extmath import randomized_svd  # deferred: scikit-learn takes seconds to import

    if graph.features is None:
        return None
    x, n = graph.features, graph.num_nodes
    blocked = not sp.issparse(x) and 4 * x.size > SMOOTHNESS_BLOCK_BYTES
    block_rows = max(1, SMOOTHNESS_BLOCK_BYTES // (8 * max(1, x.shape[1])))
    if sp.issparse(x):
        std = column_statistics(x)[1]
    else:
        std = dense_column_moments(x, block_rows=block_rows)[1] if blocked else np.asarray(x, dtype=np.float64).std(0)
    varying = np.flatnonzero(std > 0)
    if varying.size == 0:
        return None
    rng = np.random.default_rng(seed)
    count = min(varying.size, max(components, SMOOTHNESS_BUDGET_BYTES // (4 * n)))
    columns = np.sort(rng.choice(varying, size=count, replace=False)) if count < varying.size else varying
    sample_rows = (np.sort(rng.choice(n, size=SMOOTHNESS_SAMPLE_ROWS, replace=False)) if n > SMOOTHNESS_SAMPLE_ROWS
                   else None)
    if blocked:  # the standardized columns a block of rows at a time: no [n, columns] copies
        scores = _blocked_scores(x, columns, sample_rows, components, seed, block_rows)
    else:
        block = x[:, columns]
        z = np.asarray(block.toarray() if sp.issparse(block) else block, dtype=np.float32)
        z = (z - z.mean(0)) / z.std(0)
        sample = z[sample_rows] if sample_rows is not None else z
        directions = randomized_svd(sample, min(components, *sample.shape), random_state=seed)[2].T  # [columns, r]
        scores = z @ directions.astype(np.float32)  # [n, r]
    degrees = row_sums(graph.adjacency)
    inv_sqrt = np.where(degrees > 0, 1.0 / np.sqrt(np.maximum(degrees, 1e-300)), 0.0).astype(np.float32)[:, None]
    smooth = inv_sqrt * (graph.adjacency @ (inv_sqrt * scores))
    return float(np.sum(scores.astype(np.float64) * smooth) / np.sum(scores.astype(np.float64) ** 2))


def _blocked_scores(x: np.ndarray, columns: np.ndarray, sample_rows: np.ndarray | None, components: int, seed: int,
                    block_rows: int) -> np.ndarray:
    """:func:`feature_smoothness`'s ``[n, r]`` principal scores of the standardized ``columns`` of dense ``x``, a block
    of rows at a time (column means and deviations in float64, then applied in float32 as the one-piece path does)."""
    from sklearn.utils.extmath import randomized_svd  # deferred: scikit-learn takes seconds to import

    mean, std = (value.astype(np.float32) for value in dense_column_moments(x, columns, block_rows=block_rows))

    def standardized(rows) -> np.ndarray:
        return (np.asarray(x[rows][:, columns], dtype=np.float32) - mean) / std

    sample = standardized(sample_rows if sample_rows is not None else slice(None))
    directions = randomized_svd(sample, min(components, *sample.shape), random_state=seed)[2].T.astype(np.float32)
    n = x.shape[0]
    scores = np.empty((n, directions.shape[1]), dtype=np.float32)
    for begin in range(0, n, block_rows):
        scores[begin:begin + block_rows] = standardized(slice(begin, begin + block_rows)) @ directions
    return scores
