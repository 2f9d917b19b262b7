"""The linear probe: multinomial logistic regression on frozen node representations, as scikit-learn fits it.

Per run (OGB protocol, :mod:`graph_eigenmap.protocol`):

1. **Scale** the representation with statistics of the run's training nodes
   (:func:`graph_eigenmap.scaling.fit_scaling`): standardized columns for dense representations,
   columns divided by their largest absolute value for bag-of-words-like ones; a representation
   of side-by-side blocks (eigenvectors + features) block by block.
2. **Fit** one L2-regularized multinomial logistic regression per inverse strength C in ``Cs``,
   each its own full-batch L-BFGS problem with scikit-learn's objective
   ``mean cross-entropy + ‖W‖² / (2 · C · t)`` (t training nodes, bias not penalized; classes with no
   training node left out of the softmax, as scikit-learn fits only the classes it sees), solved from
   the strongest regularization to the weakest, each warm-started from the previous solution,
   until the gradient's largest entry is below ``tol`` (scikit-learn's ``lbfgs`` criterion), in float64
   so that the stopping test is not limited by rounding (the ``[t, d]`` training rows only).
   Every fit records its iterations and final gradient norm; one that stops unconverged warns.
   The runs of one label ratio are solved together as one sum of independent problems
   (:func:`fit_probe_batch`); each run's convergence is checked on its own part of the gradient,
   and a run the sum left short of ``tol`` is finished alone.
3. **Choose** C on validation accuracy (ties: the smaller C) and report that probe's test accuracy.

The problem is convex, so the fit does not depend on the seed: runs with the same training nodes
(every run at label ratio 1) share one fit. Runs in torch, on the GPU when one is given and the
problem is large (small ones are faster on the CPU): the scaling is folded into the weights, so a
``[2.4M, 2048]`` representation is never copied.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from graph_eigenmap.data.graph import Graph
from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.evaluation.correct_and_smooth import CorrectAndSmooth
from graph_eigenmap.protocol import MethodResult, RunPrediction, score_runs, train_subset
from graph_eigenmap.scaling import fit_scaling

CS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
"""Inverse L2 strengths tried (scikit-learn's C); the best on valid is kept (ties: the smallest).

Chosen on valid: on the raw and 100-d features of the five shared graphs at 100 / 10 / 1 % labels,
the picks spread over the whole range, 1000 included at 1-10 % labels on bag-of-words features
(``benchmarks/results/quality/probe_agreement.md``)."""

TOL = 1e-6
"""Converged when no entry of the objective's gradient exceeds this. scikit-learn's default, 1e-4, and
even 1e-5 stop weakly regularized problems visibly short of their optimum: on amazon_computers' raw
bag of words at 10 % labels (C = 1000 chosen, 3 runs) the probe scored 63.72 % at 1e-5, 62.80 % at 1e-6
and 62.46 % at 1e-7, against 62.44 % for scikit-learn run to 1e-7 (a development check)."""

MAX_ITER = 3000
"""Newton steps and L-BFGS iterations per C (and per batch of runs) before a fit is reported unconverged."""

NEWTON_MAX_ITER = 100
"""Newton steps per C before L-BFGS takes over from where they stopped."""

NEWTON_SHORTFALL = 1e-3
"""Newton goes on until the gradient is below ``tol`` times this: one step or two more, as it converges
quadratically, and its optimum is then the problem's to well below a point of accuracy even where weak
regularization leaves it flat (C = 1000: at ``tol`` alone two solvers' predictions differ by up to 0.3 points of
accuracy on amazon_computers' raw features at 10 % labels, at ``tol`` × 1e-3 by none)."""

NEWTON_STEPS, LBFGS_ITERATIONS = 40, 3000
"""Steps over the seven Cs, warm-started, that :func:`newton_pays` expects of each solver: on amazon_computers' raw
features at 10 % labels (3 runs, batched) Newton took 29 to ``tol`` and 36 to ``tol`` × 1e-3 and L-BFGS 5,360; at
100 % labels L-BFGS 1,530."""

DEVICE_COSTS = {"cpu": (1e10, 2e-3, 2e-4), "cuda": (2e13, 3e-3, 1e-3)}
"""Per device type: float64 flops per second, and the fixed seconds of one L-BFGS iteration and of one Newton
step (kernel launches, and on a GPU the host syncs of torch's line search and two-loop recursion)."""

HESSIAN_BUDGET_BYTES = 4 * 2**30
"""Newton's Hessians and their Cholesky factors held at once; runs are solved in chunks that fit."""

STEP_HALVINGS, ARMIJO, ROUNDING = 20, 1e-4, 1e-12
"""Newton's line search: steps 1, 1/2, ..., 2^-19 tried at once; Armijo's sufficient decrease; the float64
rounding allowance on the objective."""

ProbeResult = MethodResult


class ProbeConvergenceWarning(RuntimeWarning):
    """An L-BFGS probe stopped before its gradient fell below the tolerance."""


@dataclass
class FittedProbe:
    """One logistic regression in the raw representation's space: ``logits = x @ weight + bias``.

    Attributes:
        weight: ``[d, C]`` (the scaling folded in).
        bias: ``[C]``; ``-inf`` for the classes no training node has (never predicted, as in scikit-learn).
        inverse_strength: the C it was fitted with.
        iterations: L-BFGS iterations used.
        gradient_norm: largest absolute entry of the objective's gradient at the end.
        converged: ``gradient_norm <= tol``.
        solver: ``newton``, ``lbfgs``, or ``newton+lbfgs`` (L-BFGS finished what Newton left short of tol).
    """

    weight: torch.Tensor
    bias: torch.Tensor
    inverse_strength: float
    iterations: int
    gradient_norm: float
    converged: bool
    solver: str = "lbfgs"

    def logits(self, x: torch.Tensor, chunk: int = 1 << 18) -> torch.Tensor:
        """``[m, d]`` representations -> ``[m, C]`` logits, ``chunk`` rows at a time."""
        return torch.cat([x[i:i + chunk].float() @ self.weight + self.bias for i in range(0, x.shape[0], chunk)])

    def summary(self) -> dict:
        return dict(C=self.inverse_strength, iterations=self.iterations,
                    gradient_norm=float(f"{self.gradient_norm:.3g}"), converged=self.converged,
                    solver=self.solver)


def fit_probes(x: torch.Tensor, labels: torch.Tensor, train: torch.Tensor, num_classes: int, *,
               Cs=CS, scaling: str = "auto", blocks=None, tol: float = TOL,
               max_iter: int = MAX_ITER) -> list[FittedProbe]:
    """Fit one multinomial logistic regression per C on the ``train`` rows, as scikit-learn's ``lbfgs``.

    Args:
        x: ``[n, d]`` representations of all nodes (float; only ``train`` rows are read).
        labels: ``[n]`` int64 classes.
        train: ``[t]`` node ids to fit on.
        num_classes: C, the number of classes (logit columns).
        Cs: inverse L2 strengths, as scikit-learn's ``C``; fitted in ascending order, each
            warm-started from the previous solution.
        scaling: ``auto``, ``standard``, ``maxabs`` or ``none`` (:func:`graph_eigenmap.scaling.fit_scaling`).
        blocks: widths of side-by-side column blocks, each scaled on its own (e.g. ``(k, f)`` for k
            eigenvectors beside f bag-of-words features); None: one block.
        tol: converged when the objective's gradient has no entry larger than this.
        max_iter: L-BFGS iterations per C before giving up (with a :class:`ProbeConvergenceWarning`).

    Returns:
        One :class:`FittedProbe` per C, in the order of ``Cs``.
    """
    return fit_probe_batch(x, labels, train[None], num_classes, Cs=Cs, scaling=scaling, blocks=blocks, tol=tol,
                           max_iter=max_iter)[0]


def fit_probe_batch(x: torch.Tensor, labels: torch.Tensor, trains: torch.Tensor, num_classes: int, *,
                    Cs=CS, scaling: str = "auto", blocks=None, tol: float = TOL,
                    max_iter: int = MAX_ITER) -> list[list[FittedProbe]]:
    """:func:`fit_probes` for R training sets of one size at once (the runs of one label ratio).

    Each run's problem is solved in the span of its own scaled training rows when they are fewer than the
    columns (:func:`row_space`), by Newton's method where it costs less than L-BFGS (:func:`newton_pays`),
    else by L-BFGS on the R problems as one sum (:func:`_lbfgs_runs`). Every run's convergence is judged on
    its own gradient in the full space of the scaled columns.

    Args:
        trains: ``[R, t]`` node ids, one training set per row.

    Returns:
        ``R`` lists of one :class:`FittedProbe` per C, in the order of ``Cs``.
    """
    scales = [fit_scaling(x[train], scaling, blocks) for train in trains]
    shift = torch.stack([scale.shift for scale in scales])  # [R, d]
    factor = torch.stack([scale.factor for scale in scales])
    basis, z = row_space(((x[trains].float() - shift[:, None]) * factor[:, None]).double())  # [R, t, r]
    problem = _Problem(z, labels[trains], num_classes, basis)
    newton = newton_pays(z.shape[1], z.shape[2], num_classes, x.device)
    params = torch.zeros(len(trains), z.shape[2] + 1, num_classes, device=x.device, dtype=torch.float64)
    fitted = {}
    for inverse_strength in sorted(set(float(c) for c in Cs)):
        strength = 1.0 / (2 * inverse_strength * z.shape[1])
        params, iterations, gradient_norms, solvers = _solve(problem, params, strength, tol, max_iter, newton)
        weight = params[:, :-1] if basis is None else basis @ params[:, :-1]
        weight = weight.float() * factor[:, :, None]  # [R, d, C] in the raw representation's space
        bias = params[:, -1].float() - torch.einsum("rd,rdc->rc", shift, weight)
        bias = bias.masked_fill(problem.absent, -torch.inf)
        fitted[inverse_strength] = [FittedProbe(weight[r], bias[r], inverse_strength, iterations[r], norm, norm <= tol,
                                                solvers[r]) for r, norm in enumerate(gradient_norms)]
        _warn_unconverged(inverse_strength, max(iterations), max(gradient_norms), tol, "/".join(sorted(set(solvers))))
    return [[fitted[float(c)][r] for c in Cs] for r in range(len(trains))]


def row_space(z: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
    """``[R, t, d]`` scaled training rows -> ``(basis, rows)``: an orthonormal ``[R, d, t]`` basis of each run's row
    span and the ``[R, t, t]`` rows in it (``rows = z @ basis``), when t < d; else ``(None, z)``.

    The representer reduction: the objective's gradient in W is ``zᵀ(P − Y) / t + 2 λ W``, so the optimum
    ``W = −zᵀ(P − Y) / (2 λ t)`` lies in the span of the training rows, and ``W = basis @ U`` loses nothing. The
    penalty is unchanged (``‖basis U‖ = ‖U‖``), the logits of the training rows are ``rows @ U``, and those of any
    other node ``x`` are ``x @ basis @ U``: the same problem, the same optimum and the same predictions, with t
    columns instead of d (on coauthor_cs's 6,805 raw columns at 10 % labels: 183). From a QR factorization of
    ``zᵀ``, so no threshold on small singular values is needed.
    """
    if z.shape[1] >= z.shape[2]:
        return None, z
    basis, triangle = torch.linalg.qr(z.mT)  # zᵀ = basis @ triangle
    return basis, triangle.mT


class _Problem:
    """The R training problems of one label ratio: ``[R, t, r]`` rows (a column of ones appended for the bias),
    ``[R, t, C]`` one-hot labels, ``[R, C]`` classes absent from a run's training rows, the optional row basis."""

    def __init__(self, z: torch.Tensor, y: torch.Tensor, num_classes: int, basis: torch.Tensor | None):
        self.z, self.y, self.basis = z, y, basis
        self.rows = torch.cat([z, z.new_ones(*z.shape[:2], 1)], 2)
        self.onehot = torch.nn.functional.one_hot(y, num_classes).to(z.dtype)
        self.absent = self.onehot.sum(1) == 0

    def subset(self, runs: torch.Tensor) -> _Problem:
        return _Problem(self.z[runs], self.y[runs], self.onehot.shape[2],
                        None if self.basis is None else self.basis[runs])

    def evaluate(self, params: torch.Tensor, strength: float):
        """``(loss [R], gradient [R, r + 1, C], logits [R, t, C], probabilities [R, t, C])`` at ``params``."""
        logits = (self.rows @ params).masked_fill(self.absent[:, None], -torch.inf)
        log_norm = torch.logsumexp(logits, 2, keepdim=True)
        probabilities = torch.exp(logits - log_norm)
        loss = ((log_norm[..., 0] - (logits.masked_fill(self.absent[:, None], 0) * self.onehot).sum(2)).mean(1)
                + strength * params[:, :-1].pow(2).sum((1, 2)))
        gradient = self.rows.mT @ (probabilities - self.onehot) / self.rows.shape[1]
        gradient[:, :-1] += 2 * strength * params[:, :-1]
        return loss, gradient, logits, probabilities

    def gradient_norms(self, gradient: torch.Tensor) -> torch.Tensor:
        """``[R]`` largest absolute entry of each run's gradient in the full space of the scaled columns."""
        weights = gradient[:, :-1] if self.basis is None else self.basis @ gradient[:, :-1]
        return torch.maximum(weights.abs().amax((1, 2)), gradient[:, -1].abs().amax(1))


def newton_pays(rows: int, width: int, classes: int, device: torch.device) -> bool:
    """Whether Newton's method is expected to take less time than L-BFGS on a problem of ``rows`` training rows,
    ``width`` columns and ``classes`` classes on ``device`` (and its Hessian fits :data:`HESSIAN_BUDGET_BYTES`).

    A Newton step costs ``2 P² t + P³ / 3`` flops (P = (width + 1) · classes: the Hessian and its Cholesky
    factor) and an L-BFGS iteration ``4 t P`` plus a fixed latency, which dominates small problems on a GPU
    (kernel launches and host syncs in the line search). Over the seven Cs, warm-started, Newton takes some
    :data:`NEWTON_STEPS` steps where L-BFGS takes some :data:`LBFGS_ITERATIONS` iterations (amazon_computers'
    raw features at 10 % labels: 34 against 3,500). The device's rate and latencies are
    :data:`DEVICE_COSTS`.
    """
    params = (width + 1) * classes
    if 2 * 8 * params ** 2 > HESSIAN_BUDGET_BYTES:
        return False
    rate, lbfgs_latency, newton_latency = DEVICE_COSTS["cpu" if device.type == "cpu" else "cuda"]
    newton = NEWTON_STEPS * ((2 * params ** 2 * rows + params ** 3 / 3) / rate + newton_latency)
    lbfgs = LBFGS_ITERATIONS * (4 * rows * params / rate + lbfgs_latency)
    return newton <= lbfgs


def _solve(problem: _Problem, start: torch.Tensor, strength: float, tol: float, max_iter: int, newton: bool):
    """One C for every run: Newton where it pays, L-BFGS for the rest (and for any run Newton left short of tol).

    Returns the ``[R, r + 1, C]`` solution, and per run its iterations, gradient norm and solver's name.
    """
    runs = start.shape[0]
    params, iterations, solvers = start, [0] * runs, ["lbfgs"] * runs
    left = list(range(runs))
    if newton:
        chunk = max(1, int(HESSIAN_BUDGET_BYTES // (2 * 8 * (start.shape[1] * start.shape[2]) ** 2)))
        parts = [_newton(problem.subset(torch.arange(i, min(i + chunk, runs), device=start.device)),
                         start[i:i + chunk], strength, tol, min(max_iter, NEWTON_MAX_ITER))
                 for i in range(0, runs, chunk)]
        params = torch.cat([part[0] for part in parts])
        iterations = [count for part in parts for count in part[1]]
        norms = torch.cat([part[2] for part in parts]).tolist()
        solvers = ["newton"] * runs
        left = [r for r in range(runs) if norms[r] > tol]
    if left and max_iter > max(iterations):
        index = torch.tensor(left, device=start.device)
        part, counts = _lbfgs_runs(problem.subset(index), params[index], strength, tol, max_iter - max(iterations))
        params = params.clone()
        params[index] = part
        for r, count in zip(left, counts):
            iterations[r] += count
            solvers[r] = "newton+lbfgs" if newton else "lbfgs"
    norms = problem.gradient_norms(problem.evaluate(params, strength)[1]).tolist()
    return params, iterations, norms, solvers


def _newton(problem: _Problem, start: torch.Tensor, strength: float, tol: float, max_iter: int):
    """Newton's method with a backtracking line search on every run at once; a run stops once its gradient is
    below ``tol`` × :data:`NEWTON_SHORTFALL` (or when no step lowers its objective: where that leaves it above
    ``tol``, L-BFGS takes over).

    The Hessian in ``(class, column)`` order is ``Σ_i (diag p_i − p_i p_iᵀ) ⊗ x_i x_iᵀ / t + 2 λ`` (no penalty on
    the bias). It is singular along the biases of the classes present moved together (the softmax ignores a
    shift), and the gradient has no part along that direction, so ``u uᵀ`` (u: that direction, unit) is added:
    the step is the Newton step of least norm. Absent classes get the identity and a zero gradient: they stay.
    The line search tries steps 1, 1/2, 1/4, ... at once (the trial logits are linear in the step) and takes
    the longest that satisfies Armijo's condition.

    Returns the solution, each run's steps, and its ``[R]`` gradient norms.
    """
    runs, rows, width = problem.rows.shape
    classes = start.shape[2]
    params, active = start, torch.ones(runs, dtype=torch.bool, device=start.device)
    diagonal, shift = _newton_constants(problem.absent, width, strength)
    steps = 0.5 ** torch.arange(STEP_HALVINGS, dtype=start.dtype, device=start.device)
    counts = torch.zeros(runs, dtype=torch.long, device=start.device)
    for _ in range(max_iter + 1):
        loss, gradient, logits, probabilities = problem.evaluate(params, strength)
        norms = problem.gradient_norms(gradient)
        active &= norms > tol * NEWTON_SHORTFALL
        if not bool(active.any()):
            break
        if int(counts.max()) >= max_iter:
            break
        spread = (probabilities[:, :, :, None] * problem.rows[:, :, None, :]).reshape(runs, rows, -1)  # [R, t, P]
        hessian = spread.mT @ spread
        hessian.mul_(-1.0 / rows).diagonal(0, 1, 2).add_(diagonal)
        blocks = (spread.mT @ problem.rows).div_(rows).view(runs, classes, width, width)
        hessian.view(runs, classes, width, classes, width).diagonal(0, 1, 3).add_(blocks.permute(0, 2, 3, 1))
        hessian.baddbmm_(shift[:, :, None], shift[:, None, :])
        factor, info = torch.linalg.cholesky_ex(hessian)
        flat = gradient.mT.reshape(runs, -1, 1)
        direction = -torch.cholesky_solve(flat, factor).view(runs, classes, width).mT
        usable = active & (info == 0)
        direction = torch.where(usable[:, None, None], direction, 0.0)
        step = _line_search(problem, logits, loss, gradient, params, direction, strength, steps)
        params = params + step[:, None, None] * direction
        counts += usable & (step > 0)
        active &= step > 0
    return params, counts.tolist(), norms


def _newton_constants(absent: torch.Tensor, width: int, strength: float):
    """The Hessian's ``[R, P]`` constant diagonal (2 λ on weights, 1 on absent classes' biases, in ``(class,
    column)`` order) and ``[R, P]`` unit direction of the present classes' biases moved together."""
    runs, classes = absent.shape
    diagonal = torch.full((runs, classes, width), 2 * strength, dtype=torch.float64, device=absent.device)
    diagonal[:, :, -1] = absent.double()
    shift = torch.zeros_like(diagonal)
    shift[:, :, -1] = (~absent).double()
    shift /= shift.norm(dim=(1, 2), keepdim=True)
    return diagonal.reshape(runs, -1), shift.reshape(runs, -1)


def _line_search(problem: _Problem, logits, loss, gradient, params, direction, strength: float, steps):
    """``[R]`` the longest of ``steps`` that satisfies Armijo's condition for each run (0 where none does).

    A rounding allowance of :data:`ROUNDING` × (1 + |loss|) lets a step through whose decrease is below what
    float64 resolves: near the optimum, where the full Newton step is right."""
    moved = problem.rows @ direction  # [R, t, C]
    trial = (logits[:, None] + steps[None, :, None, None] * moved[:, None]).masked_fill(
        problem.absent[:, None, None], -torch.inf)  # [R, S, t, C]
    cross_entropy = (torch.logsumexp(trial, 3) - (trial.masked_fill(problem.absent[:, None, None], 0)
                                                  * problem.onehot[:, None]).sum(3)).mean(2)
    weights, moves = params[:, :-1], direction[:, :-1]
    penalty = strength * (weights.pow(2).sum((1, 2))[:, None] + 2 * steps * (weights * moves).sum((1, 2))[:, None]
                          + steps ** 2 * moves.pow(2).sum((1, 2))[:, None])
    slope = (gradient * direction).sum((1, 2))
    allowed = loss + ROUNDING * (1 + loss.abs())
    armijo = cross_entropy + penalty <= (allowed[:, None] + ARMIJO * steps * slope[:, None])
    first = armijo.int().argmax(1)
    return torch.where(armijo.any(1) & (slope < 0), steps[first], 0.0)


def _lbfgs_runs(problem: _Problem, start: torch.Tensor, strength: float, tol: float, max_iter: int):
    """L-BFGS on the runs as one sum (:func:`_lbfgs`); a run the sum left short of ``tol`` is finished alone.

    The sum shares one line search and one curvature history, so it can stall (its objective stops changing in
    float64) while one run's gradient is still above ``tol``: such a run is then finished alone, warm-started
    from the batch's solution, and its iterations are the batch's plus its own. In a reduced row space the
    stopping test is on the reduced gradient; where the full one is still above ``tol`` the run goes on with a
    tolerance lowered by the ratio.

    Returns the solution and each run's iterations.
    """
    params, iterations = _lbfgs(problem.z, problem.y, problem.absent, start, strength, tol, max_iter)
    counts = [iterations] * start.shape[0]
    norms = problem.gradient_norms(problem.evaluate(params, strength)[1]).tolist()
    for r in [r for r, norm in enumerate(norms) if norm > tol]:
        one, reduced_tol = problem.subset(torch.tensor([r], device=start.device)), tol
        for _ in range(4):
            params[r:r + 1], alone = _lbfgs(one.z, one.y, one.absent, params[r:r + 1], strength, reduced_tol,
                                            max_iter)
            counts[r] += alone
            norm = float(one.gradient_norms(one.evaluate(params[r:r + 1], strength)[1])[0])
            if norm <= tol or alone == 0:
                break
            reduced_tol *= 0.5 * tol / norm
    return params, counts


def _lbfgs(z: torch.Tensor, y: torch.Tensor, absent: torch.Tensor, start: torch.Tensor, strength: float, tol: float,
           max_iter: int) -> tuple[torch.Tensor, int]:
    """Minimize Σ_r [mean CE(z_r W_r + b_r, y_r) + strength · ‖W_r‖²] over ``[R, d + 1, C]`` params (last row: b).

    The classes ``absent`` (``[R, C]``) from a run's training nodes are left out of its softmax, as
    scikit-learn fits only the classes it sees: otherwise their unpenalized biases fall without end
    and the problem has no minimum (L-BFGS then crawls until float64 cannot see the objective fall).
    Their parameters get no gradient and stay at the start's.

    Returns the solution and the iterations.
    """
    params = start.clone().requires_grad_()
    optimizer = torch.optim.LBFGS([params], lr=1, max_iter=max_iter, history_size=20, line_search_fn="strong_wolfe",
                                  tolerance_grad=tol, tolerance_change=1e-15)
    runs, classes = params.shape[0], params.shape[2]

    def closure():
        optimizer.zero_grad()
        logits = torch.baddbmm(params[:, -1:], z, params[:, :-1]).masked_fill(absent[:, None], -torch.inf)  # [R, t, C]
        cross_entropy = torch.nn.functional.cross_entropy(logits.reshape(-1, classes), y.reshape(-1))
        loss = runs * cross_entropy + strength * params[:, :-1].pow(2).sum()  # every run has t rows
        loss.backward()
        return loss

    optimizer.step(closure)
    return params.detach(), int(optimizer.state[params].get("n_iter", 0))


def _warn_unconverged(inverse_strength: float, iterations: int, gradient_norm: float, tol: float,
                      solver: str) -> None:
    if gradient_norm > tol:
        warnings.warn(f"linear probe with C={inverse_strength:g} stopped after {iterations} iterations ({solver}) with "
                      f"gradient {gradient_norm:.2e} > tol {tol:g}; raise max_iter or lower C",
                      ProbeConvergenceWarning, stacklevel=3)


def probe_runs(embeddings: np.ndarray | torch.Tensor, graph: Graph, *, label_ratio: float = 1.0, runs: int = 10,
               device: str | torch.device = "cpu", Cs=CS, scaling: str = "auto", blocks=None,
               max_iter: int = MAX_ITER, first_seed: int = 0) -> Iterator[RunPrediction]:
    """Per run: fit the probes, choose C on valid, and yield the chosen probe's class probabilities.

    Runs with the same training nodes share one fit and one prediction (the same tensor is yielded for each);
    the others of a label ratio are fitted together (:func:`fit_probe_batch`), in batches of at most about
    2 GiB of training rows.

    Args:
        embeddings: ``[n, d]``, row i for node i.
        graph: supplies labels and the train/valid/test split.
        label_ratio: fraction of the train split each run uses (1.0, 0.1, 0.01, ...).
        runs: seeds ``first_seed``..``first_seed + runs - 1`` (they draw the label subsets).
        device: where the probe runs.
        Cs, scaling, blocks, max_iter: see :func:`fit_probes`.

    Yields:
        :class:`RunPrediction` with ``[n, C]`` softmax probabilities of the chosen probe and, in
        ``details``, the chosen C, every C's fit summary and validation accuracy.
    """
    x = _check(embeddings, graph)
    seeds = range(first_seed, first_seed + runs)
    trains = [train_subset(graph.split["train"], label_ratio, seed, graph.num_classes) for seed in seeds]
    x = _as_tensor(x, device)
    labels = torch.from_numpy(np.maximum(graph.labels, 0)).to(x.device)
    distinct = {train.tobytes(): train for train in trains}
    fits = {}
    for batch in _batches(list(distinct.values()), x.shape[1]):
        stacked = torch.from_numpy(np.stack(batch)).to(x.device)
        for train, probes in zip(batch, fit_probe_batch(x, labels, stacked, graph.num_classes, Cs=Cs, scaling=scaling,
                                                        blocks=blocks, max_iter=max_iter)):
            fits[train.tobytes()] = _choose_on_valid(probes, x, labels, graph)
    shared = {}
    for seed, train in zip(seeds, trains):
        probe, details = fits[train.tobytes()]
        if train.tobytes() not in shared:
            probabilities = torch.softmax(probe.logits(x), 1)
            shared = {train.tobytes(): probabilities}  # runs sharing a fit follow each other (every run at ratio 1)
        yield RunPrediction(seed, train, shared[train.tobytes()], details)


def _batches(trains: list[np.ndarray], dimension: int, budget_bytes: float = 2 * 2**30) -> list[list[np.ndarray]]:
    per_run = max(1, len(trains[0]) * dimension * 8)
    size = max(1, int(budget_bytes // per_run))
    return [trains[i:i + size] for i in range(0, len(trains), size)]


def _choose_on_valid(probes: list[FittedProbe], x, labels, graph: Graph) -> tuple[FittedProbe, dict]:
    """The probe with the best valid accuracy (ties: the first, the smallest C) and the run's record."""
    valid = torch.from_numpy(graph.split["valid"]).to(x.device)
    valid_accs = [float((p.logits(x[valid]).argmax(1) == labels[valid]).float().mean()) for p in probes]
    best = int(np.argmax(valid_accs))
    fits = [dict(p.summary(), valid_acc=round(a, 6)) for p, a in zip(probes, valid_accs)]
    return probes[best], dict(C=probes[best].inverse_strength, converged=all(p.converged for p in probes), fits=fits)


def evaluate_embeddings(embeddings: np.ndarray | torch.Tensor, graph: Graph, *, label_ratio: float = 1.0,
                        runs: int = 10, device: str | torch.device = "cpu", Cs=CS, scaling: str = "auto",
                        blocks=None, method: str = "probe") -> MethodResult:
    """OGB-protocol linear-probe accuracy of ``[n, d]`` node representations.

    Returns:
        :class:`MethodResult` with per-run test/valid accuracies; ``extra`` holds per run the chosen
        C, whether every fit converged, and each C's iterations, gradient norm and valid accuracy.
    """
    predictions = probe_runs(embeddings, graph, label_ratio=label_ratio, runs=runs, device=device, Cs=Cs,
                             scaling=scaling, blocks=blocks)
    return score_runs(predictions, graph, method=method, label_ratio=label_ratio, runs=runs)[0]


def evaluate_representation(x: np.ndarray, graph: Graph, *, label_ratio: float = 1.0, runs: int = 10,
                            device: str | torch.device = "cpu", correct_and_smooth: bool = False,
                            method: str = "representation") -> dict:
    """The probe's test and valid accuracy of an ``[n, d]`` representation over ``runs`` seeds, and with
    ``correct_and_smooth`` the probe post-processed by C&S (:mod:`graph_eigenmap.evaluation.correct_and_smooth`).

    Returns:
        The probe's :class:`~graph_eigenmap.protocol.MethodResult` as a dict (``method``, per-run accuracies, means)
        with ``dataset`` and ``synthetic``, and under ``"correct_and_smooth"`` the post-processed row and its settings.
    """
    predictions = probe_runs(x, graph, label_ratio=label_ratio, runs=runs, device=device)
    smoother = CorrectAndSmooth(graph, device) if correct_and_smooth else None
    result, smoothed = score_runs(predictions, graph, method=method, label_ratio=label_ratio, runs=runs,
                                  postprocess=smoother, postprocessed_method=f"{method} + C&S")
    payload = dict(result.to_dict(), dataset=graph.name, synthetic=graph.synthetic)
    if smoothed is not None:
        payload["correct_and_smooth"] = dict(smoothed.to_dict(), settings=smoother.settings.to_dict())
    return payload


def _as_tensor(x, device) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(device)
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(device)


def _check(embeddings, graph: Graph):
    x = embeddings if isinstance(embeddings, torch.Tensor) else np.asarray(embeddings)
    if x.ndim != 2 or x.shape[0] != graph.num_nodes:
        raise GraphEigenmapError(f"embeddings must have shape [{graph.num_nodes}, d] (one row per node of "
                                 f"{graph.name}); got {list(x.shape)}.")
    finite = bool(torch.isfinite(x).all()) if isinstance(x, torch.Tensor) else bool(np.isfinite(x).all())
    if not finite:
        raise GraphEigenmapError("embeddings hold NaN or inf; refit or drop those columns.")
    for part in ("train", "valid", "test"):
        if len(graph.split[part]) == 0:
            raise GraphEigenmapError(f"{graph.name} has an empty {part} split; "
                                     "the probe needs train, valid and test nodes.")
        if (graph.labels[graph.split[part]] < 0).any():
            raise GraphEigenmapError(f"{graph.name}: some {part} nodes have no label; the probe needs labels there.")
    return x
