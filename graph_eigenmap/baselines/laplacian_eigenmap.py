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


def chebyshev_eigenpairs(kernel, k: int, *, oversample: int = 32, degree: int = 16, max_iterations: int = 60,
                         tol: float = 1e-4, seed: int = 0, lower: float = -1.0):
    """Top-k eigenpairs of a symmetric matrix by Chebyshev-filtered subspace iteration, in torch.

    For graphs where ARPACK is too slow: only sparse-dense products and QR of ``[n, k + oversample]``
    blocks, so it runs on a GPU. Each round filters the block with a degree-``degree`` Chebyshev
    polynomial that damps the spectrum in ``[lower, c]`` (c: the smallest current Ritz value) and
    amplifies everything above, then does a Rayleigh-Ritz step. The spectrum of D^-1/2 A D^-1/2
    lies in [-1, 1], hence ``lower = -1``.

    Args:
        kernel: ``[n, n]`` symmetric torch tensor (sparse CSR or dense) on the device to use.
        k: number of eigenpairs.
        oversample: extra block columns; they speed convergence when eigenvalues cluster near the k-th.
        degree: Chebyshev polynomial degree per round.
        max_iterations: rounds before giving up (with a warning).
        tol: stop when every residual ‖Āv − λv‖ of the top k is below ``tol``.
        seed: seeds the start block.

    Returns:
        ``([k]`` eigenvalues descending (float64 numpy), ``[n, k]`` float32 torch eigenvectors,
        dict with ``iterations`` and ``max_residual``).
    """
    import torch

    n = kernel.shape[0]
    width = min(n, k + oversample)
    generator = torch.Generator(device=kernel.device).manual_seed(seed)
    block = torch.randn(n, width, generator=generator, device=kernel.device)
    block, _ = torch.linalg.qr(block)
    residual = float("inf")
    for iteration in range(1, max_iterations + 1):
        values, block, residuals = _rayleigh_ritz(kernel, block)
        residual = float(residuals[:k].max())
        if residual < tol:
            break
        block = _chebyshev_filter(kernel, block, degree, lower, float(values[-1]), float(values[0]))
        block, _ = torch.linalg.qr(block)
    else:
        warnings.warn(f"Chebyshev subspace iteration stopped after {max_iterations} rounds with residual "
                      f"{residual:.2e} > tol {tol:.0e}", RuntimeWarning)
    vectors = block[:, :k]
    return values[:k].double().cpu().numpy(), vectors, dict(iterations=iteration, max_residual=residual)


def _rayleigh_ritz(kernel, block):
    import torch

    product = kernel @ block
    small = (block.T @ product).double()
    small = (small + small.T) / 2
    values, rotation = torch.linalg.eigh(small)
    values, rotation = values.flip(0), rotation.flip(1).to(block.dtype)
    block, product = block @ rotation, product @ rotation
    residuals = torch.linalg.vector_norm(product - block * values.to(block.dtype), dim=0)
    return values, block, residuals


def _chebyshev_filter(kernel, block, degree, low, cut, top):
    """p(Ā) X with p the Chebyshev polynomial of the first kind on [low, cut], scaled to avoid overflow."""
    center, half = (cut + low) / 2, (cut - low) / 2
    sigma = half / (top - center) if top > center else 1.0  # Zhou & Saad's scaling
    sigma_1 = sigma
    previous = block
    current = (kernel @ block - center * block) * (sigma_1 / half)
    for _ in range(2, degree + 1):
        sigma_next = 1.0 / (2.0 / sigma_1 - sigma)
        following = (kernel @ current - center * current) * (2 * sigma_next / half) - (sigma * sigma_next) * previous
        previous, current, sigma = current, following, sigma_next
    return current
