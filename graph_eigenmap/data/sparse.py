"""Sparse matrices as the data layer holds them: scipy CSR to torch (:func:`to_torch_csr`), row blocks of a large
CSR matrix (:func:`row_blocks`), and wide sparse node features that are never densified.

Sparse features: rows of a CSR matrix, on the host or the device.

Raw features are often a bag of words: thousands of columns, mostly zero (6,805 columns for coauthor_cs,
about 0.9 % of them non-zero per node). When the dense ``[n, d]`` float32 matrix would not fit
(:data:`DENSE_FEATURES_MAX_BYTES`), a :class:`~graph_eigenmap.data.Graph` keeps its features as a scipy
CSR matrix, and training and inference read rows of a ``torch.sparse_csr_tensor``: the MLP's first layer
is then one sparse-dense product (:class:`graph_eigenmap.models.MLPBackbone`), with the input scaling
folded into its weights, so no dense ``[b, d]`` block is ever formed.

torch has no row indexing for sparse CSR tensors; :func:`take_rows` gathers rows from the row pointers
in a few tensor operations (on the device where the tensor is).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import scipy.sparse as sp
import torch

from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.transfer import tensor_view

DENSE_FEATURES_MAX_BYTES = int(os.environ.get("GRAPH_EIGENMAP_DENSE_FEATURES_MAX_BYTES", 4 * 2**30))
"""Sparse features whose dense float32 matrix would exceed this (4 GiB unless the variable says) stay sparse."""


def to_torch_csr(matrix: sp.spmatrix, *, device: str | torch.device = "cpu", dtype=torch.float32,
                 compact: bool = False) -> torch.Tensor:
    """A scipy sparse matrix as a ``torch.sparse_csr_tensor`` on ``device``.

    Indices are int64, or with ``compact`` int32 where the matrix's size and entries allow (half the bytes: the
    kernels' products, which are bitwise the same with either). Arrays already of the wanted dtypes (memory-mapped
    ones included) are shared on the host, not copied.
    """
    csr = sp.csr_matrix(matrix)
    fits = compact and max(csr.shape) < 2**31 and csr.nnz < 2**31
    index = np.int32 if fits else np.int64
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            tensor_view(csr.indptr.astype(index, copy=False)),
            tensor_view(csr.indices.astype(index, copy=False)),
            tensor_view(csr.data.astype(np.float32, copy=False)),
            size=csr.shape,
            dtype=dtype,
            check_invariants=False,
        ).to(device)


def row_blocks(indptr: np.ndarray, block_entries: int) -> list[tuple[int, int]]:
    """``[(first, last), ...]``: consecutive row ranges covering all rows of a CSR matrix with ``indptr``, each
    holding about ``block_entries`` stored entries (a range starts at the row holding entry j·block_entries;
    one row longer than that is a block of its own)."""
    indptr = np.asarray(indptr)
    n = len(indptr) - 1
    starts = np.searchsorted(indptr, np.arange(0, indptr[-1], block_entries), side="right") - 1
    bounds = np.unique(np.r_[0, starts, n])
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def keep_sparse(features, dense_features: bool | None = None) -> bool:
    """Whether scipy-sparse ``[n, d]`` features stay sparse: ``dense_features`` if given, else by the dense size."""
    if not sp.issparse(features):
        return False
    if dense_features is not None:
        return not dense_features
    n, d = features.shape
    return 4 * n * d > DENSE_FEATURES_MAX_BYTES


def dense_features(graph, what: str) -> np.ndarray:
    """``graph.features`` as the dense ``[n, d]`` array that ``what`` needs; one-line error when they are kept
    sparse."""
    if sp.issparse(graph.features):
        raise GraphEigenmapError(f"{what} needs dense node features, but {graph.name}'s {graph.num_nodes:,} x "
                                 f"{graph.num_features:,} features are kept sparse (their dense matrix would exceed "
                                 f"{DENSE_FEATURES_MAX_BYTES / 2**30:g} GiB); use Neural Eigenmap with "
                                 "inputs='features', or raise GRAPH_EIGENMAP_DENSE_FEATURES_MAX_BYTES.")
    return graph.features


def is_sparse(x) -> bool:
    """True for a scipy sparse matrix or a torch sparse (CSR or COO) tensor."""
    return sp.issparse(x) or (isinstance(x, torch.Tensor) and x.layout != torch.strided)


def as_model_input(features) -> torch.Tensor:
    """``[n, d]`` features as what the model reads: a dense float32 tensor, or a float32 sparse CSR tensor."""
    if sp.issparse(features):
        return to_torch_csr(features)
    return tensor_view(np.ascontiguousarray(features, dtype=np.float32))


def take_rows(x: torch.Tensor, rows) -> torch.Tensor:
    """Rows of a dense tensor or of a sparse CSR tensor, in the given order.

    Args:
        x: ``[n, d]`` dense, or ``torch.sparse_csr_tensor``.
        rows: ``[b]`` int64 row ids (on x's device), or a ``slice`` with step 1.

    Returns:
        ``[b, d]`` of the same layout: row i is ``x[rows[i]]``.
    """
    if x.layout == torch.strided:
        return x[rows]
    crow, col, val = x.crow_indices(), x.col_indices(), x.values()
    if isinstance(rows, slice):
        begin, end, _ = rows.indices(x.shape[0])
        end = max(begin, end)
        first, last = int(crow[begin]), int(crow[end])
        return _csr(crow[begin:end + 1] - first, col[first:last], val[first:last], (end - begin, x.shape[1]))
    rows = rows.to(crow.device, torch.int64)
    starts, lengths = crow[rows], crow[rows + 1] - crow[rows]
    new_crow = torch.zeros(rows.numel() + 1, dtype=torch.int64, device=crow.device)
    torch.cumsum(lengths, 0, out=new_crow[1:])
    # position p of the gathered entries comes from starts[row of p] + (p - new_crow[row of p])
    row_of_entry = torch.repeat_interleave(torch.arange(rows.numel(), device=crow.device), lengths)
    source = starts[row_of_entry] + torch.arange(row_of_entry.numel(), device=crow.device) - new_crow[row_of_entry]
    return _csr(new_crow, col[source], val[source], (rows.numel(), x.shape[1]))


def _csr(crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, val, size=size, check_invariants=False)


def column_statistics(features: sp.spmatrix) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, bool]:
    """Per-column mean, standard deviation and largest absolute value of scipy-sparse ``[n, d]`` features.

    Returns:
        ``(mean [d], std [d], max_abs [d], zero fraction, all non-negative)``, in float64, without densifying.
    """
    csr = sp.csr_matrix(features, dtype=np.float64)
    n = csr.shape[0]
    mean = np.asarray(csr.sum(axis=0)).ravel() / n
    mean_square = np.asarray(csr.multiply(csr).sum(axis=0)).ravel() / n
    std = np.sqrt(np.maximum(mean_square - mean**2, 0.0))
    max_abs = np.asarray(abs(csr).max(axis=0).todense()).ravel()
    zeros = 1.0 - np.count_nonzero(csr.data) / max(1, n * csr.shape[1])
    return mean, std, max_abs, zeros, bool((csr.data >= 0).all())


def dense_column_moments(x: np.ndarray, columns=None, *, block_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-column float64 mean and standard deviation of dense ``[n, d]`` rows (of ``columns`` only, when given), read
    ``block_rows`` rows at a time in two passes (sums, then squared deviations): no float64 copy of all of ``x``,
    which may be memory-mapped."""
    n = x.shape[0]

    def block(begin: int) -> np.ndarray:
        rows = x[begin:begin + block_rows]
        return np.asarray(rows if columns is None else rows[:, columns], dtype=np.float64)

    total = sum(block(begin).sum(0) for begin in range(0, n, block_rows))
    mean = total / n
    squares = sum(((block(begin) - mean) ** 2).sum(0) for begin in range(0, n, block_rows))
    return mean, np.sqrt(squares / n)
