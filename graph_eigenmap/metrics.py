"""How good learned eigenfunctions are, measured against the kernel itself.

Each function takes numpy arrays with a scipy kernel, or torch tensors with a torch (sparse) kernel
on any device (what a GPU needs at ogbn-products' size); results are float64.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.linalg import subspace_angles


def rayleigh_quotients(embedding, kernel) -> np.ndarray:
    """``[k]`` ψ_jᵀĀψ_j / ψ_jᵀψ_j for each column of the ``[n, k]`` embedding."""
    if isinstance(embedding, torch.Tensor):
        psi = embedding.float()
        numerator = (psi * (kernel @ psi)).double().sum(0)
        return (numerator / psi.double().pow(2).sum(0).clamp(min=1e-300)).cpu().numpy()
    psi = np.asarray(embedding, dtype=np.float64)
    numerator = np.einsum("nk,nk->k", psi, kernel @ psi)
    return numerator / np.maximum(np.einsum("nk,nk->k", psi, psi), 1e-300)


def rayleigh_quotients_by_columns(embedding, kernel, device, *, columns: int = 16) -> np.ndarray:
    """:func:`rayleigh_quotients` of an ``[n, k]`` host (or memory-mapped) array or tensor, ``columns`` columns at a
    time on ``device``.

    Only ``[n, columns]`` of the embedding is worked on at once (papers100M's 111M nodes × 64 outputs
    would be 28 GB in one piece, and the product as much again); ``kernel`` is the ``[n, n]`` kernel there.
    Sums are accumulated in float64.
    """
    numerator, denominator = [], []
    for begin in range(0, embedding.shape[1], columns):
        if isinstance(embedding, torch.Tensor):
            block = embedding[:, begin:begin + columns].to(device=device, dtype=torch.float32).contiguous()
        else:
            block = torch.from_numpy(np.ascontiguousarray(embedding[:, begin:begin + columns],
                                                          dtype=np.float32)).to(device)
        numerator.append((block * (kernel @ block)).sum(0, dtype=torch.float64))
        denominator.append(block.pow(2).sum(0, dtype=torch.float64))
    return (torch.cat(numerator) / torch.cat(denominator).clamp(min=1e-300)).cpu().numpy()


def captured_spectrum(embedding, kernel, exact_top_eigenvalues) -> float:
    """tr(QᵀĀQ) / Σ λ_j: Q an orthonormal basis of the embedding's columns (QR), λ the exact top-k.

    1.0 means the embedding spans the top-k eigenspace; a random subspace scores about 0.
    """
    total = float(np.sum(exact_top_eigenvalues))
    if isinstance(embedding, torch.Tensor):
        q, _ = torch.linalg.qr(embedding.double())
        q = q.float()
        return float((q * (kernel @ q)).double().sum()) / total
    q, _ = np.linalg.qr(np.asarray(embedding, dtype=np.float64))
    return float(np.trace(q.T @ (kernel @ q)) / total)


def principal_angle_cosines(a, b) -> np.ndarray:
    """Cosines of the principal angles between the column spans of ``[n, k_a]`` a and ``[n, k_b]`` b.

    Returns ``[min(k_a, k_b)]`` float64 cosines, largest first (1 = a shared direction; all 1 = the
    same span). The angles are scipy's :func:`scipy.linalg.subspace_angles`; use that directly
    where small angles matter, since a cosine rounds to 1 below an angle of about 1e-8.
    """
    return np.cos(subspace_angles(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)))[::-1]
