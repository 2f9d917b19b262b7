"""Baselines: exact Laplacian Eigenmap (eigenvectors of the kernel)."""

from graph_eigenmap.baselines.laplacian_eigenmap import top_eigenpairs

__all__ = ["top_eigenpairs"]
