"""Baselines: exact Laplacian Eigenmap (eigenvectors of the kernel)."""

from graph_eigenmap.baselines.laplacian_eigenmap import chebyshev_eigenpairs, top_eigenpairs

__all__ = ["chebyshev_eigenpairs", "top_eigenpairs"]
