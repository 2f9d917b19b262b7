"""Laplacian Eigenmap: the exact top-k eigenpairs of the kernel Ā (largest algebraic eigenvalues).

The kernel is block diagonal over connected components, and every component with an edge has
eigenvalue 1; on a graph with many components that multiplicity stalls ARPACK. So the solver works
one component at a time (dense ``eigh`` for components of at most ``dense_limit`` nodes, ARPACK
``eigsh(which='LA')`` with a seeded start vector for larger ones, falling back to LOBPCG with a
warning when ARPACK does not converge) and merges the per-component spectra. Signs are made
deterministic: the largest-magnitude entry of each eigenvector is positive.

Two variants (:func:`laplacian_eigenmap`): ``top``, the top-k eigenpairs of Ā, and ``nontrivial``, the
top-k of Ā restricted to the orthogonal complement of the component indicators u_c = √d / √vol(c)
(:func:`~graph_eigenmap.kernel.trivial_eigenvectors`). Each solver takes that restriction as an option:
:func:`top_eigenpairs` (``trivial=``) per component, :func:`chebyshev_eigenpairs` (``project=``) on the
whole block.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh, lobpcg

from graph_eigenmap.data.graph import Graph
from graph_eigenmap.kernel import TrivialEigenvectors, normalized_adjacency, to_torch_csr, trivial_eigenvectors

VARIANTS = ("top", "nontrivial")
GPU_MIN_NODES = 10_000
"""Above this many nodes, :func:`laplacian_eigenmap` on a CUDA device uses :func:`chebyshev_eigenpairs`.

On amazon_computers (13,752 nodes, k = 64) Chebyshev and per-component ARPACK agree to 5e-5 in
eigenvalues and 0.99999 in every principal cosine (a development check on the CPU, where ARPACK took
5.5 s for ``top`` and 20 s for ``nontrivial``; on the H100 the CPU path took 77-79 s on coauthor_cs
with other jobs beside it, ``benchmarks/results/quality/compare/npz`` logs)."""


def laplacian_eigenmap(graph: Graph | sp.spmatrix, k: int, *, variant: str = "top",
                       device: str | torch.device = "cpu", self_loops: bool = False,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Exact Laplacian Eigenmap: the top-k eigenvectors of Ā = D^-1/2 A D^-1/2, in one of two variants.

    ``variant="top"``: the k largest eigenpairs of Ā. Every connected component with an edge
    contributes eigenvalue 1 with eigenvector u_c = √d / √vol(c), constant information about "which
    component"; a graph with at least k such components (cora 78, citeseer 438) gets only those
    indicators, which say nothing about classes within a component.

    ``variant="nontrivial"``: the k largest eigenpairs of Ā restricted to the orthogonal complement of
    span{u_c}, i.e. of Ā − Σ_c u_c u_cᵀ with the u_c themselves excluded. Isolated nodes have no u_c
    (their eigenvalue-0 vectors e_i stay candidates). On cora a linear probe on the top-64 scores
    31.5 %, on the nontrivial top-64 77.6 % (docs/METHOD.md, "Components").

    Solved on the CPU one component at a time (:func:`top_eigenpairs`), or by Chebyshev subspace
    iteration in torch (:func:`chebyshev_eigenpairs`) when ``device`` is CUDA and the graph has more
    than :data:`GPU_MIN_NODES` nodes.

    Args:
        graph: a :class:`Graph` or a symmetric ``[n, n]`` scipy sparse adjacency.
        k: number of eigenpairs; at most n, or n minus the number of components with edges for
            ``nontrivial``.
        variant: ``"top"`` or ``"nontrivial"``.
        device: ``"cpu"`` or a CUDA device.
        self_loops: use the GCN kernel D̃^-1/2 (A + I) D̃^-1/2 (its u_c are √(d+1), normalized).
        seed: seeds the solvers' start vectors.

    Returns:
        ``([k]`` float64 eigenvalues descending, ``[n, k]`` float32 orthonormal eigenvectors``)``,
        the largest-magnitude entry of each column positive.
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {', '.join(map(repr, VARIANTS))}, got {variant!r}")
    kernel = normalized_adjacency(graph, self_loops=self_loops)
    trivial = trivial_eigenvectors(graph, self_loops=self_loops) if variant == "nontrivial" else None
    device = torch.device(device)
    if device.type == "cuda" and kernel.shape[0] > GPU_MIN_NODES:
        project = None if trivial is None else trivial.torch_projector(device)
        values, vectors, _ = chebyshev_eigenpairs(to_torch_csr(kernel, device=device), k, seed=seed, project=project)
        vectors = vectors.double().cpu().numpy()
    else:
        values, vectors = top_eigenpairs(kernel, k, trivial=trivial, seed=seed)
    return np.asarray(values, dtype=np.float64), _fix_signs(vectors).astype(np.float32)


def top_eigenpairs(kernel: sp.spmatrix, k: int, *, trivial: TrivialEigenvectors | None = None,
                   dense_limit: int = 2000, seed: int = 0, tol: float = 1e-8) -> tuple[np.ndarray, np.ndarray]:
    """The k largest eigenvalues of a symmetric sparse matrix and their eigenvectors.

    With ``trivial``, each component's trivial eigenvector u (eigenvalue 1, simple on a connected
    component) is excluded: the component is solved for the operator P B P − 2 u uᵀ (B its block of
    the kernel, P = I − u uᵀ), which has B's other eigenpairs exactly in the complement of u and moves u
    to eigenvalue −2, below the spectrum [-1, 1] of Ā, where a top-``want`` solve never reaches it.

    Args:
        kernel: ``[n, n]`` symmetric (e.g. :func:`~graph_eigenmap.kernel.normalized_adjacency`).
        k: how many, 1 <= k <= n (n − ``trivial.count`` with ``trivial``).
        trivial: the kernel's eigenvalue-1 vectors (:func:`~graph_eigenmap.kernel.trivial_eigenvectors`,
            built with the kernel's ``self_loops``) to remove; ``None`` keeps them.
        dense_limit: components up to this size are solved densely.
        seed: seeds ARPACK's start vectors.
        tol: ARPACK's relative tolerance.

    Returns:
        ``([k]`` eigenvalues descending, ``[n, k]`` float64 orthonormal eigenvectors``)``;
        column j belongs to eigenvalue j.
    """
    kernel = sp.csr_matrix(kernel, dtype=np.float64)
    n = kernel.shape[0]
    available = n if trivial is None else n - trivial.count
    if not 1 <= k <= available:
        raise ValueError(f"k must be in [1, {available}], got {k}" + ("" if trivial is None else
                         f" ({n} nodes less {trivial.count} trivial eigenvectors)"))
    if trivial is not None:
        _check_trivial(kernel, trivial)
    _, component = connected_components(kernel, directed=False)
    order = np.argsort(component, kind="stable")
    bounds = np.flatnonzero(np.r_[True, np.diff(component[order]) != 0, True])
    values, vectors = [], []
    rng = np.random.default_rng(seed)
    for begin, end in zip(bounds[:-1], bounds[1:]):
        nodes = order[begin:end]
        block = kernel[nodes][:, nodes]
        trivial_u = None if trivial is None else _unit_or_none(trivial.values[nodes])
        want = min(k, len(nodes) - (trivial_u is not None))
        if want == 0:  # a single node whose only eigenvector is trivial (GCN kernel)
            continue
        block_values, block_vectors = _block_top(block, want, dense_limit, rng, tol, trivial_u)
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


def _block_top(block, want, dense_limit, rng, tol, trivial_u=None):
    """Top ``want`` eigenpairs of one component's block, without ``trivial_u`` (unit ``[size]``) if given."""
    size = block.shape[0]
    if size <= dense_limit or want >= size - 1:
        dense = block.toarray() if trivial_u is None else _restricted_dense(block, trivial_u)
        values, vectors = np.linalg.eigh(dense)
        return values[::-1][:want], _complement(vectors[:, ::-1][:, :want], trivial_u)
    operator = block if trivial_u is None else _restricted_operator(block, trivial_u)
    v0 = _complement(rng.normal(size=size), trivial_u)
    try:
        values, vectors = eigsh(operator, k=want, which="LA", v0=v0, tol=tol, ncv=min(size, max(2 * want + 1, 20)))
    except ArpackNoConvergence:
        warnings.warn(f"ARPACK did not converge for a component of {size} nodes; falling back to LOBPCG",
                      RuntimeWarning, stacklevel=2)
        start = _complement(rng.normal(size=(size, want)), trivial_u)
        values, vectors = lobpcg(operator, start, largest=True, tol=1e-6, maxiter=2000)
    ordering = np.argsort(-values)
    return values[ordering], _complement(vectors[:, ordering], trivial_u)


def _unit_or_none(u):
    norm = np.linalg.norm(u)
    return u / norm if norm > 0 else None


def _check_trivial(kernel, trivial):
    """Ā u = u for the stored u (one product for all components, their supports being disjoint)."""
    if trivial.values.shape != (kernel.shape[0],):
        raise ValueError(f"trivial eigenvectors are for {trivial.values.shape[0]} nodes, "
                         f"the kernel has {kernel.shape[0]}")
    error = np.abs(kernel @ trivial.values - trivial.values).max()
    if error > 1e-4:
        raise ValueError(f"the trivial vectors are not eigenvalue-1 eigenvectors of the kernel (max |Āu − u| = "
                         f"{error:.1e}); build them from the same graph with the kernel's self_loops")


def _complement(x, u):
    """x − u uᵀ x (``x``: ``[size]`` or ``[size, w]``; unchanged when ``u`` is None)."""
    return x if u is None else x - np.multiply.outer(u, u @ x)


def _restricted_dense(block, u):
    """P B P − 2 u uᵀ as a dense array, P = I − u uᵀ (B symmetric, u unit)."""
    dense = block.toarray()
    bu = dense @ u
    return dense - np.outer(u, bu) - np.outer(bu, u) + (u @ bu - 2.0) * np.outer(u, u)


def _restricted_operator(block, u):
    """x ↦ P B P x − 2 u uᵀ x as a scipy LinearOperator, P = I − u uᵀ."""
    def matmat(x):
        coefficients = u @ x
        product = _complement(block @ (x - np.outer(u, coefficients)), u)
        return product - 2.0 * np.outer(u, coefficients)

    return LinearOperator(block.shape, matvec=lambda x: matmat(x.reshape(-1, 1)).ravel(), matmat=matmat,
                          dtype=np.float64)


def _fix_signs(vectors: np.ndarray) -> np.ndarray:
    rows = np.abs(vectors).argmax(axis=0)
    signs = np.sign(vectors[rows, np.arange(vectors.shape[1])])
    signs[signs == 0] = 1
    return vectors * signs


def chebyshev_eigenpairs(kernel, k: int, *, oversample: int = 32, degree: int = 16, max_iterations: int = 60,
                         tol: float = 1e-4, seed: int = 0, lower: float = -1.0,
                         project: Callable[[torch.Tensor], torch.Tensor] | None = None):
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
        project: optional ``[n, w] -> [n, w]`` linear projection (e.g.
            :meth:`~graph_eigenmap.kernel.TrivialEigenvectors.torch_projector`) applied to the start
            block and after every filter, before orthonormalization and the Rayleigh-Ritz step: the
            iteration then runs in its range, which must be invariant under the kernel and have
            dimension at least ``k + oversample`` (or n).

    Returns:
        ``([k]`` eigenvalues descending (float64 numpy), ``[n, k]`` float32 torch eigenvectors,
        dict with ``iterations`` and ``max_residual``).
    """
    n = kernel.shape[0]
    width = min(n, k + oversample)
    project = project or (lambda block: block)
    generator = torch.Generator(device=kernel.device).manual_seed(seed)
    block = project(torch.randn(n, width, generator=generator, device=kernel.device))
    block, _ = torch.linalg.qr(block)
    residual = float("inf")
    for iteration in range(1, max_iterations + 1):  # noqa: B007 - the count is reported after the loop
        values, block, residuals = _rayleigh_ritz(kernel, block)
        residual = float(residuals[:k].max())
        if residual < tol:
            break
        block = project(_chebyshev_filter(kernel, block, degree, lower, float(values[-1]), float(values[0])))
        block, _ = torch.linalg.qr(block)
    else:
        warnings.warn(f"Chebyshev subspace iteration stopped after {max_iterations} rounds with residual "
                      f"{residual:.2e} > tol {tol:.0e}", RuntimeWarning, stacklevel=2)
    vectors = block[:, :k]
    return values[:k].double().cpu().numpy(), vectors, dict(iterations=iteration, max_residual=residual)


def _rayleigh_ritz(kernel, block):
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
