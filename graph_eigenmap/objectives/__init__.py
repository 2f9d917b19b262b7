"""The losses a training step minimizes, one module each, registered by name
(:data:`graph_eigenmap.registry.OBJECTIVES`).

Every estimator (:mod:`graph_eigenmap.estimators`) returns two ``[b, k]`` matrices A and C such that
R = ΨᵀĀΨ / n ≈ (AᵀC + CᵀA) / (2b) (:func:`estimate_r`): A holds ψ at b uniformly drawn nodes and C an
unbiased estimate of ĀΨ there. An objective is a function of them::

    loss(a, c, *, alpha, stop_gradient, c_has_gradient, reduce, exact) -> (scalar loss, [k, k] R estimate, detached)

``c_has_gradient=False``: C was computed without autograd (the one-sided gradient); ``reduce``: the differentiable
mean over data-parallel ranks of every ``[k, k]`` estimate, or None; ``exact``: A holds every node once (the
full graph), not rows drawn uniformly, so a product of two estimates is exact. The returned R is the matrix of
Rayleigh quotients of the outputs (its diagonal: the eigenvalue estimates training averages). An objective whose
outputs must not be normalized in training (``normalized_outputs=False`` in its registration) gets them raw;
the model's L2-BN then only tracks their scale, and normalizes them after training. Adding one: a module here and one
``OBJECTIVES.register`` line in :mod:`graph_eigenmap.registry`.
"""

from __future__ import annotations

import torch


def estimate_r(a: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """``[k, k]`` symmetric estimate (AᵀC + CᵀA) / (2b) of R, from ``a``, ``c``: ``[b, k]``."""
    m = a.T @ c
    return (m + m.T) / (2 * a.shape[0])
