"""The NeuralSVD objective: nested low-rank approximation (Ryu, Xu, Erol, Bu, Zheng, Wornell, ICML 2024,
arXiv 2402.03655), registered as ``"neuralsvd"``.

What it minimizes. Nodes are drawn uniformly, so functions on nodes have the inner product ⟨f, g⟩ = fᵀg / n and
the kernel acts as Ā. For k outputs F = [f_1 .. f_k] (NOT normalized: no L2-BN in training), write

    R = FᵀĀF / n      (the estimators' R, from A and C: :func:`graph_eigenmap.objectives.estimate_r`)
    G = FᵀF / n       (from A alone: A holds F at uniformly drawn nodes, so AᵀA / b estimates G)

The rank-i low-rank approximation error of Ā by Σ_{j≤i} f_j f_jᵀ, up to the constant ‖Ā‖², is

    L_i = −2 Σ_{j≤i} R_jj + Σ_{j,l≤i} G_jl².

Its minimizers make F Fᵀ/n the best positive semi-definite rank-i approximation of Ā: with Ā = Σ λ_j v_j v_jᵀ
(⟨v_j, v_j⟩ = 1, λ descending), Σ_{j≤i} max(λ_j, 0) v_j v_jᵀ; only the span is fixed. *Nesting* asks every
prefix to be optimal at once, which pins output j to f_j = √λ_j · v_j (scaled, not normalized): the outputs come
out ordered, with no triangular penalty and no L2-BN. ``stop_gradient=True`` (the default) is *sequential
nesting*: output i follows the gradient of L_i with outputs j < i held constant,

    −2 R_ii + G_ii² + 2 Σ_{j<i} Ĝ_ji²      (Ĝ_ji: f_j under stop-gradient, f_i live),

summed over i into one surrogate whose value is L_k. ``stop_gradient=False`` drops the nesting and minimizes L_k
alone: the outputs learn the span of the top-k eigenfunctions in no particular basis (as NeuralEF's variant
without stop-gradient). :func:`neuralsvd_loss` also offers *joint nesting*, Σ_i w_i L_i with w_i = 1/k, which
orders the outputs without stop-gradient.

What it targets. The symmetric form (one network on both sides) approximates Ā by a positive semi-definite
matrix, so it learns the top-k *algebraic* eigenpairs of the kernel as long as the k-th is positive; an output
whose eigenvalue would be ≤ 0 is driven to zero, slowly (along the earlier outputs' eigenfunctions its linear
terms cancel and only the cubic one pulls), and its quotient is then meaningless. Ā = D^-1/2 A D^-1/2 has its
spectrum in [−1, 1]: on the shared graphs the top 64 eigenvalues are all above 0.5, so the plain kernel is fine;
``kernel='shifted'``, (I + Ā)/2, has the same eigenvectors and eigenvalues (1 + λ)/2 ≥ 0 and is always safe,
at half the spectral gaps. (The paper's two-network SVD form would target the largest |λ| instead; we do not
use it.)

How it meets the estimators. R comes from the estimators' A and C exactly as for NeuralEF, with the same
one-sided gradient (``c_has_gradient=False``: twice the A-share; Ā is symmetric). G and its squares come from A
alone: A's rows are drawn uniformly and independently (rows, sampled, block), so the square of the plain estimate
AᵀA / b would be biased upwards by its variance; the U-statistic

    G_jl² ≈ (B · Ĝ_jl² − D_jl) / (B − 1),   Ĝ = AᵀA / B,  D = (A∘A)ᵀ(A∘A) / B

(the pairs of distinct rows only; B rows over all data-parallel ranks) is unbiased, and so is its gradient. The
full-graph estimator's A is every node once (``exact=True``): there Ĝ is G itself. The paper splits the batch
in two halves for the same purpose; the U-statistic uses every pair.

Step sizes. Without L2-BN the scale of each output is learned, and the loss is quartic in it: for the identity
table with per-row SGD (learning rate η per row) the scale s_j of output j follows s ← s + 4η s (λ_j − s²), stable
at s² = λ_j only while 8 η λ_j < 2, i.e. η < 1/(4 λ_1). The default η = 0.2 is inside (0.25 for Ā); η = 0.3
diverged on cora where NeuralEF, whose outputs have no scale to learn, still trained at 0.4. The same step moves
NeuralSVD's outputs twice as far as NeuralEF's (−4Āf/n against −2Āψ/n). The block estimator's high variance
(a few nonzeros per block) likewise blew the table's scales up at η = 0.2 on the 340-node SBM of the tests; the
rows, sampled and full estimators trained. AdamW (the MLP's default) is insensitive to the gradient's scale.

What is reported. The returned ``[k, k]`` matrix is R / √(G_jj G_ll): its diagonal holds the outputs' Rayleigh
quotients, the eigenvalue estimates training averages, as NeuralEF's R does for normalized outputs. The model's
L2-BN keeps its running RMS in training without dividing by it (:class:`graph_eigenmap.models.L2BatchNorm`,
``divide_in_training=False``), so after training the outputs are normalized to unit mean square as NeuralEF's
are, and the post-fit pipeline (exact quotients, final sort, files) sees the same kind of embedding; the running
RMS squared is itself an estimate of λ_j. ``alpha`` is not used (nesting needs no weight).
"""

from __future__ import annotations

import torch

from graph_eigenmap.objectives import estimate_r

NESTINGS = ("sequential", "joint", "none")
"""How the prefixes are nested: by stop-gradient, by weights, or not at all (only the span is learned)."""


def neuralsvd_loss(a: torch.Tensor, c: torch.Tensor, *, alpha: float = 1.0, stop_gradient: bool = True,
                   c_has_gradient: bool = True, reduce=None, exact: bool = False,
                   nesting: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The NeuralSVD loss and the (detached) ``[k, k]`` matrix of Rayleigh quotients R / √(G_jj G_ll).

    Args:
        a: ``[b, k]`` outputs at uniformly drawn nodes (float32), not normalized.
        c: ``[b, k]`` estimate of (ĀF) at those nodes.
        alpha: ignored (the NeuralEF penalty's weight; nesting has none).
        stop_gradient: sequential nesting (default: ordered outputs) or none (the span only).
        c_has_gradient: False when ``c`` was computed without autograd (the one-sided gradient, as in
            :func:`graph_eigenmap.objectives.neuralef.neuralef_loss`).
        reduce: for data-parallel training, the differentiable mean over ranks of every estimate; None: one process.
        exact: ``a`` holds every node once (the full-graph estimator): products of estimates are then exact.
        nesting: ``"sequential"``, ``"joint"`` or ``"none"``; None: sequential with ``stop_gradient``, else none.

    Returns:
        ``(loss, quotients)``: scalar loss, whose value is the unnested L_k, and the ``[k, k]`` quotient matrix.
    """
    nesting = nesting or ("sequential" if stop_gradient else "none")
    if nesting not in NESTINGS:
        raise ValueError(f"nesting must be one of {', '.join(NESTINGS)}; got {nesting!r}")
    a, c = a.float(), c.float()
    rows = a.shape[0] * _world_size(reduce)
    reduce = reduce or (lambda matrix: matrix)
    k = a.shape[1]
    weights = _prefix_weights(k, a.device) if nesting == "joint" else torch.ones(k, device=a.device)
    r = reduce(estimate_r(a, c))
    operator = -2 * (weights * torch.diagonal(r)).sum()
    if not c_has_gradient:  # the gradient of R_jj is twice its A-share: 2 a_jᵀ c_j / b with c constant
        surrogate = -4 * (weights * reduce((a * c.detach()).sum(0) / a.shape[0])).sum()
        operator = operator.detach() + (surrogate - surrogate.detach())
    if nesting == "sequential":
        own = _squared_gram_diagonal(a, reduce, rows, exact)  # G_ii², both factors live
        earlier = _squared_gram(a.detach(), a, reduce, rows, exact)  # entry (j, i): f_j constant, f_i live
        metric = own.sum() + 2 * torch.triu(earlier, diagonal=1).sum()
    else:
        squared = _squared_gram(a, a, reduce, rows, exact)
        metric = (torch.minimum(weights[:, None], weights[None, :]) * squared).sum()
    scale = reduce(a.detach().pow(2).mean(0)).clamp(min=1e-12).rsqrt()  # 1 / √G_jj
    return operator + metric, (r.detach() * scale[:, None] * scale[None, :])


def _prefix_weights(k: int, device) -> torch.Tensor:
    """``[k]`` Σ_{i≥j} w_i for prefix weights w_i = 1/k: output j's weight in Σ_i w_i L_i (joint nesting); the pair
    (j, l)'s is that of max(j, l), the smaller of the two."""
    return torch.arange(k, 0, -1, device=device, dtype=torch.float32) / k


def _squared_gram(left: torch.Tensor, right: torch.Tensor, reduce, rows: int, exact: bool) -> torch.Tensor:
    """``[k, k]`` unbiased estimate of (E_u[left_j(u) right_l(u)])² from ``[b, k]`` uniformly drawn rows."""
    gram = reduce(left.T @ right / left.shape[0])
    if exact:
        return gram.pow(2)
    fourth = reduce(left.pow(2).T @ right.pow(2) / left.shape[0])
    return (rows * gram.pow(2) - fourth) / (rows - 1)


def _squared_gram_diagonal(a: torch.Tensor, reduce, rows: int, exact: bool) -> torch.Tensor:
    """``[k]`` the diagonal of :func:`_squared_gram` (a, a) in O(bk): (E_u[a_j(u)²])²."""
    second = reduce(a.pow(2).mean(0))
    if exact:
        return second.pow(2)
    return (rows * second.pow(2) - reduce(a.pow(4).mean(0))) / (rows - 1)


def _world_size(reduce) -> int:
    """Processes whose rows ``reduce`` pools (1 without data-parallel training)."""
    if reduce is None or not torch.distributed.is_available() or not torch.distributed.is_initialized():
        return 1
    return torch.distributed.get_world_size()
