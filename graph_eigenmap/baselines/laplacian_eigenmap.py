"""Laplacian Eigenmap: the exact top-k eigenpairs of the kernel Ā (largest algebraic eigenvalues).

The kernel is block diagonal over connected components, and every component with an edge has
eigenvalue 1; on a graph with many components that multiplicity stalls ARPACK. So the solver works
one component at a time (dense ``eigh`` for components of at most ``dense_limit`` nodes, ARPACK
``eigsh(which='LA')`` with a seeded start vector for larger ones, falling back to LOBPCG with a
warning when ARPACK does not converge) and merges the per-component spectra. Signs are made
deterministic: the largest-magnitude entry of each eigenvector is positive.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import ArpackNoConvergence, eigsh, lobpcg


def top_eigenpairs(kernel: sp.spmatrix, k: int, *, dense_limit: int = 2000, seed: int = 0,
                   tol: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    """The k largest eigenvalues of a symmetric sparse matrix and their eigenvectors.

    Args:
        kernel: ``[n, n]`` symmetric (e.g. :func:`~graph_eigenmap.kernel.normalized_adjacency`).
        k: how many, 1 <= k <= n.
        dense_limit: components up to this size are solved densely.
        seed: seeds ARPACK's start vectors.
        tol: ARPACK's relative tolerance.

    Returns:
        ``([k]`` eigenvalues descending, ``[n, k]`` float64 orthonormal eigenvectors``)``;
        column j belongs to eigenvalue j.
    """
    kernel = sp.csr_matrix(kernel, dtype=np.float64)
    n = kernel.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    _, component = connected_components(kernel, directed=False)
    order = np.argsort(component, kind="stable")
    bounds = np.flatnonzero(np.r_[True, np.diff(component[order]) != 0, True])
    values, vectors = [], []
    rng = np.random.default_rng(seed)
    for begin, end in zip(bounds[:-1], bounds[1:]):
        nodes = order[begin:end]
        block = kernel[nodes][:, nodes]
        want = min(k, len(nodes))
        block_values, block_vectors = _block_top(block, want, dense_limit, rng, tol)
        values.append(block_values)
        vectors.append((nodes, block_vectors))
    all_values = np.concatenate(values)
    pick = np.argsort(-all_values, kind="stable")[:k]
    owner = np.concatenate([np.full(len(v), i) for i, v in enumerate(values)])
    column = np.concatenate([np.arange(len(v)) for v in values])
    eigenvectors = np.zeros((n, k))
    for out, index in enumerate(pick):
        nodes, block_vectors = vectors[owner[index]]
        eigenvectors[nodes, out] = block_vectors[:, column[index]]
    return all_values[pick], _fix_signs(eigenvectors)


def _block_top(block, want, dense_limit, rng, tol):
    size = block.shape[0]
    if size <= dense_limit or want >= size - 1:
        values, vectors = np.linalg.eigh(block.toarray())
        return values[::-1][:want], vectors[:, ::-1][:, :want]
    v0 = rng.normal(size=size)
    try:
        values, vectors = eigsh(block, k=want, which="LA", v0=v0, tol=tol, ncv=min(size, max(2 * want + 1, 20)))
    except ArpackNoConvergence:
        warnings.warn(f"ARPACK did not converge for a component of {size} nodes; falling back to LOBPCG", RuntimeWarning)
        values, vectors = lobpcg(block, rng.normal(size=(size, want)), largest=True, tol=1e-6, maxiter=2000)
    ordering = np.argsort(-values)
    return values[ordering], vectors[:, ordering]


def _fix_signs(vectors: np.ndarray) -> np.ndarray:
    rows = np.abs(vectors).argmax(axis=0)
    signs = np.sign(vectors[rows, np.arange(vectors.shape[1])])
    signs[signs == 0] = 1
    return vectors * signs
