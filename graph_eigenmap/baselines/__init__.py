"""Baselines: exact Laplacian Eigenmap (eigenvectors of the kernel), top or nontrivial spectrum."""

from graph_eigenmap.baselines.laplacian_eigenmap import (
    VARIANTS,
    chebyshev_eigenpairs,
    laplacian_eigenmap,
    top_eigenpairs,
)

__all__ = ["VARIANTS", "chebyshev_eigenpairs", "laplacian_eigenmap", "top_eigenpairs"]
