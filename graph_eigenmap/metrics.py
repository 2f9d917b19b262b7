"""How good learned eigenfunctions are, measured against the kernel itself."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def rayleigh_quotients(embedding: np.ndarray, kernel: sp.spmatrix) -> np.ndarray:
    """``[k]`` ψ_jᵀĀψ_j / ψ_jᵀψ_j for each column of ``[n, k]`` ``embedding``."""
    psi = np.asarray(embedding, dtype=np.float64)
    numerator = np.einsum("nk,nk->k", psi, kernel @ psi)
    return numerator / np.maximum(np.einsum("nk,nk->k", psi, psi), 1e-300)


def captured_spectrum(embedding: np.ndarray, kernel: sp.spmatrix, exact_top_eigenvalues: np.ndarray) -> float:
    """tr(QᵀĀQ) / Σ λ_j: Q an orthonormal basis of the embedding's columns (QR), λ the exact top-k.

    1.0 means the embedding spans the top-k eigenspace; a random subspace scores about 0.
    """
    q, _ = np.linalg.qr(np.asarray(embedding, dtype=np.float64))
    return float(np.trace(q.T @ (kernel @ q)) / np.sum(exact_top_eigenvalues))


def principal_angle_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosines of the principal angles between the column spans of ``[n, k]`` a and b (1 = same span)."""
    qa, _ = np.linalg.qr(np.asarray(a, dtype=np.float64))
    qb, _ = np.linalg.qr(np.asarray(b, dtype=np.float64))
    return np.linalg.svd(qa.T @ qb, compute_uv=False)
