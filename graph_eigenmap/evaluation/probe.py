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
"""L-BFGS iterations per C (and per batch of runs) before a fit is reported unconverged."""

SMALL_PROBLEM = 1_000_000
"""Training rows × dimensions up to which the probe runs on the CPU (see :func:`probe_runs`)."""

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
    """

    weight: torch.Tensor
    bias: torch.Tensor
    inverse_strength: float
    iterations: int
    gradient_norm: float
    converged: bool

    def logits(self, x: torch.Tensor, chunk: int = 1 << 18) -> torch.Tensor:
        """``[m, d]`` representations -> ``[m, C]`` logits, ``chunk`` rows at a time."""
        return torch.cat([x[i:i + chunk].float() @ self.weight + self.bias for i in range(0, x.shape[0], chunk)])

    def summary(self) -> dict:
        return dict(C=self.inverse_strength, iterations=self.iterations,
                    gradient_norm=float(f"{self.gradient_norm:.3g}"), converged=self.converged)


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

    The R problems of one C are independent, so they are solved as one sum by L-BFGS; each run's
    part of the gradient is its own problem's gradient, and each run's convergence is checked on
    its own part. One batched product per step instead of R small ones. The sum shares one line
    search and one curvature history, so it can stall (its objective stops changing in float64)
    while one run's gradient is still above ``tol``: such a run is then finished alone, warm-started
    from the batch's solution, and its iterations are the batch's plus its own.

    Args:
        trains: ``[R, t]`` node ids, one training set per row.

    Returns:
        ``R`` lists of one :class:`FittedProbe` per C, in the order of ``Cs``.
    """
    scales = [fit_scaling(x[train], scaling, blocks) for train in trains]
    shift = torch.stack([scale.shift for scale in scales])  # [R, d]
    factor = torch.stack([scale.factor for scale in scales])
    z = ((x[trains].float() - shift[:, None]) * factor[:, None]).double()  # [R, t, d]
    y = labels[trains]
    absent = torch.nn.functional.one_hot(y, num_classes).sum(1) == 0  # [R, C]: classes no training node has
    params = torch.zeros(len(trains), z.shape[2] + 1, num_classes, device=x.device, dtype=torch.float64)
    fitted = {}
    for inverse_strength in sorted(set(float(c) for c in Cs)):
        strength = 1.0 / (2 * inverse_strength * y.shape[1])
        params, iterations, gradient_norms = _lbfgs(z, y, absent, params, strength, tol, max_iter)
        iterations = [iterations] * len(trains)
        for r in [r for r, norm in enumerate(gradient_norms) if norm > tol]:
            params[r:r + 1], alone, (gradient_norms[r],) = _lbfgs(z[r:r + 1], y[r:r + 1], absent[r:r + 1],
                                                                   params[r:r + 1], strength, tol, max_iter)
            iterations[r] += alone
        weight = params[:, :-1].float() * factor[:, :, None]  # [R, d, C] in the raw representation's space
        bias = (params[:, -1].float() - torch.einsum("rd,rdc->rc", shift, weight)).masked_fill(absent, -torch.inf)
        fitted[inverse_strength] = [FittedProbe(weight[r], bias[r], inverse_strength, iterations[r], norm, norm <= tol)
                                    for r, norm in enumerate(gradient_norms)]
        _warn_unconverged(inverse_strength, max(iterations), max(gradient_norms), tol)
    return [[fitted[float(c)][r] for c in Cs] for r in range(len(trains))]


def _lbfgs(z: torch.Tensor, y: torch.Tensor, absent: torch.Tensor, start: torch.Tensor, strength: float, tol: float,
           max_iter: int) -> tuple[torch.Tensor, int, list[float]]:
    """Minimize Σ_r [mean CE(z_r W_r + b_r, y_r) + strength · ‖W_r‖²] over ``[R, d + 1, C]`` params (last row: b).

    The classes ``absent`` (``[R, C]``) from a run's training nodes are left out of its softmax, as
    scikit-learn fits only the classes it sees: otherwise their unpenalized biases fall without end
    and the problem has no minimum (L-BFGS then crawls until float64 cannot see the objective fall).
    Their parameters get no gradient and stay at the start's.

    Returns the solution, the iterations, and each run's largest absolute gradient entry.
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
    closure()
    iterations = int(optimizer.state[params].get("n_iter", 0))
    return params.detach(), iterations, params.grad.abs().amax((1, 2)).tolist()


def _warn_unconverged(inverse_strength: float, iterations: int, gradient_norm: float, tol: float) -> None:
    if gradient_norm > tol:
        warnings.warn(f"linear probe with C={inverse_strength:g} stopped after {iterations} L-BFGS iterations with "
                      f"gradient {gradient_norm:.2e} > tol {tol:g}; raise max_iter or lower C",
                      ProbeConvergenceWarning, stacklevel=3)


def probe_runs(embeddings: np.ndarray | torch.Tensor, graph: Graph, *, label_ratio: float = 1.0, runs: int = 10,
               device: str | torch.device = "cpu", Cs=CS, scaling: str = "auto", blocks=None,
               max_iter: int = MAX_ITER, first_seed: int = 0) -> Iterator[RunPrediction]:
    """Per run: fit the probes, choose C on valid, and yield the chosen probe's class probabilities.

    Runs with the same training nodes share one fit; the others of a label ratio are fitted
    together (:func:`fit_probe_batch`), in batches of at most about 2 GiB of training rows.
    Problems of at most :data:`SMALL_PROBLEM` training entries per run (rows × dimensions) are
    solved on the CPU whatever ``device`` says: L-BFGS takes hundreds of small steps, and on a GPU
    each is bound by kernel launches (on one H100 shared by five such jobs, 10 runs on cora's 64
    exact eigenvectors at 10 % labels took 22.6 s; on 2 CPU cores 1.4 s). Wide ones stay on the
    GPU: on the CPU of that machine (5 threads, two other jobs beside it), coauthor_cs's 6,805 raw
    features (1,833 × 6,805) took 59 s with C&S.

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
    x = _as_tensor(x, device if len(trains[0]) * x.shape[1] > SMALL_PROBLEM else "cpu")
    labels = torch.from_numpy(np.maximum(graph.labels, 0)).to(x.device)
    distinct = {train.tobytes(): train for train in trains}
    fits = {}
    for batch in _batches(list(distinct.values()), x.shape[1]):
        stacked = torch.from_numpy(np.stack(batch)).to(x.device)
        for train, probes in zip(batch, fit_probe_batch(x, labels, stacked, graph.num_classes, Cs=Cs, scaling=scaling,
                                                        blocks=blocks, max_iter=max_iter)):
            fits[train.tobytes()] = _choose_on_valid(probes, x, labels, graph)
    for seed, train in zip(seeds, trains):
        probe, details = fits[train.tobytes()]
        yield RunPrediction(seed, train, torch.softmax(probe.logits(x), 1), details)


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
