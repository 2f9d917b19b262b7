"""The NeuralEF objective (Deng, Shi, Zhu, ICML 2022), registered as ``"neuralef"``.

From the estimator's A and C (:mod:`graph_eigenmap.objectives`), R ≈ (AᵀC + CᵀA) / (2b) and

    loss = − Σ_j R_jj + α Σ_{i<j} R̂_ij²

where R̂_ij treats ψ_i as a constant (stop-gradient) and ψ_j as live: output j is then pushed to the
j-th eigenfunction, orthogonal to the earlier ones, and the outputs come out ordered by eigenvalue.
Without stop-gradient (``stop_gradient=False``) the penalty uses R itself, and the outputs learn
the span of the top-k eigenfunctions (the "linear-probe" variant).

Choosing α. Write ψ_j = cos θ e_j + sin θ e_i (i < j, ψ_i = e_i exact): the objective for output
j becomes λ_j + (λ_i − λ_j − α λ_i²) sin²θ, so e_j is a stable optimum only when
α > (λ_i − λ_j) / λ_i² for every i < j ≤ k. The reference's α = 0.3 satisfies this on the packed
spectra of large real graphs (top-k eigenvalues within 0.3 of 1) but not on graphs whose top-k
spread further: there output j copies output 1. Our default α = 1 is safe whenever the top-k
eigenvalues exceed 1/4 (λ_i − λ_i² ≤ 1/4). NeuralEF's original scaling R̂_ij² / R̂_ii was tried and
dropped: it leaves earlier eigenfunctions' directions flat instead of repelling them, and in a
development experiment on the 340-node SBM of tests/test_training.py it converged far more slowly.
"""

from __future__ import annotations

import torch

from graph_eigenmap.objectives import estimate_r


def neuralef_loss(a: torch.Tensor, c: torch.Tensor, *, alpha: float = 1.0, stop_gradient: bool = True,
                  c_has_gradient: bool = True, reduce=None, exact: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """The NeuralEF loss and the (detached) ``[k, k]`` estimate of R.

    Args:
        a: ``[b, k]`` ψ at uniformly drawn nodes (float32).
        c: ``[b, k]`` estimate of (ĀΨ) at those nodes.
        alpha: weight of the orthogonality penalty (default 1; the reference used 0.3; see above).
        stop_gradient: order the outputs (default) or learn only their span.
        c_has_gradient: False when ``c`` was computed without autograd (see below).
        reduce: for data-parallel training, the differentiable mean over ranks applied to every ``[k, k]``
            estimate (:func:`graph_eigenmap.distributed.mean_over_ranks`), so that N ranks of b rows give
            the loss of one batch of N·b rows; None: one process.
        exact: ``a`` holds every node once (the full graph); not used here (R̂² is squared as it is).

    Returns:
        ``(loss, r)``: scalar loss, ``[k, k]`` R estimate without gradient.

    One-sided gradient (``c_has_gradient=False``). Every term of the gradient of R_ij has an
    A-share (dψ at the drawn nodes) and a C-share (dψ at the nodes C reads). Because Ā is
    symmetric the two are equal: exactly for the full graph (a_iᵀ Ā dψ_j = (Āψ_i)ᵀ dψ_j), in
    expectation for the sampled and block estimators. So twice the A-share is the gradient, and
    C needs no backward: the sampled estimator embeds its f neighbours per seed forward-only, the
    full-graph one skips the backward sparse product. The returned loss has the value of the
    two-sided loss and the gradient of the one-sided surrogate.
    """
    a, c = a.float(), c.float()
    reduce = reduce or (lambda matrix: matrix)
    r = reduce(estimate_r(a, c))
    if c_has_gradient:
        if stop_gradient:
            m = a.detach().T @ c + c.detach().T @ a  # entry (i, j): ψ_i constant, ψ_j live
            penalty_terms = reduce(m / (2 * a.shape[0]))
        else:
            penalty_terms = r
        return -torch.diagonal(r).sum() + alpha * torch.triu(penalty_terms, diagonal=1).pow(2).sum(), r.detach()
    m = reduce(a.T @ c.detach() / a.shape[0])  # m_ij = a_iᵀ c_j / b: twice the A-share of ∂R_ij through a_i
    r_surrogate = m + m.T  # the gradient of R
    penalty_surrogate = m.T if stop_gradient else r_surrogate  # with ψ_i constant only a_j moves: m_ji
    r_value = r.detach()
    upper = torch.triu(r_value, diagonal=1)  # no boolean indexing: it would wait for the device
    surrogate = -torch.diagonal(r_surrogate).sum() + 2 * alpha * (upper * penalty_surrogate).sum()
    value = -torch.diagonal(r_value).sum() + alpha * upper.pow(2).sum()
    return value + (surrogate - surrogate.detach()), r_value
