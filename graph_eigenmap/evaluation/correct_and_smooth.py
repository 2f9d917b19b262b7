"""Correct & Smooth (Huang et al. 2021, arXiv 2010.13993) on top of any method's predictions, many runs at once.

A base predictor's class probabilities Z are first *corrected*: the residuals Y − Z on the
training nodes are propagated over the normalized graph D^-1/2 A D^-1/2 and added back
(autoscaled); then *smoothed*: the training nodes' rows are set to their one-hot labels and the
result is propagated again. The two steps are those of PyG's
:class:`torch_geometric.nn.models.CorrectAndSmooth` (its ``correct`` with ``autoscale`` and its ``smooth``;
``tests/test_correct_and_smooth.py`` checks the scores against PyG's own), computed here for many runs and
every α at once: the propagation is linear column by column, so the runs' residuals for each α₁ sit side by side
as columns of one ``[n, runs · α₁ · C]`` matrix and take one sparse product per layer, and so do the smoothings.
Runs that share their training nodes and their scores (every run of a probe at label ratio 1) are
post-processed once.

Settings: 50 correction and 50 smoothing layers with PyG's default autoscale, as in the C&S
paper; the two propagation weights are chosen on valid for each run from α₁ ∈ {0.5, 0.8, 1.0} ×
α₂ ∈ {0.5, 0.8, 0.9} (the paper tunes them per dataset; its ogbn-products values 1.0 / 0.8 are in
the grid). α₁ = 1.0 alone can be far from the best: with few labels on a connected graph the
residuals spread over the whole component and add one class to every node (a 4-class
synthetic graph at 10 % labels: 30 % test accuracy with α₁ = 1.0, 69 % with the choice on valid;
a development check, ``tests/test_correct_and_smooth.py`` asserts the gain). Only the run's
training labels are propagated; valid labels only choose α. The test nodes' predictions depend
on the whole graph around them: C&S rows are transductive.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from graph_eigenmap.data.graph import Graph
from graph_eigenmap.data.sparse import to_torch_csr
from graph_eigenmap.protocol import RunPrediction

BUDGET_BYTES = 1 << 30
"""Largest ``[n, columns]`` float32 block propagated at once; runs are post-processed in groups that fit."""


@dataclass(frozen=True)
class CorrectAndSmoothSettings:
    """Hyperparameters of :class:`torch_geometric.nn.models.CorrectAndSmooth`; each α pair is tried, the best on
    valid kept."""

    correction_layers: int = 50
    correction_alphas: tuple[float, ...] = (0.5, 0.8, 1.0)
    smoothing_layers: int = 50
    smoothing_alphas: tuple[float, ...] = (0.5, 0.8, 0.9)
    autoscale: bool = True

    def to_dict(self) -> dict:
        return asdict(self)


class CorrectAndSmooth:
    """Post-processes runs of a method on one graph: ``CorrectAndSmooth(graph, device)(run) -> RunPrediction``,
    or :meth:`many` for a list of runs (what :func:`~graph_eigenmap.protocol.score_runs` hands over, up to
    :attr:`runs_at_once` at a time).

    Holds the graph's normalized adjacency D^-1/2 A D^-1/2 (A: 0/1 entries, no self-loops; degrees and
    products in float32 as PyG's ``gcn_norm``) once on ``device`` as a ``[n, n]`` torch sparse CSR matrix.
    """

    def __init__(self, graph: Graph, device: str | torch.device = "cpu",
                 settings: CorrectAndSmoothSettings = CorrectAndSmoothSettings()):
        if not settings.autoscale:
            raise ValueError("CorrectAndSmooth supports autoscale=True only (PyG's default, the paper's setting)")
        self.settings = settings
        adjacency = graph.adjacency.tocsr().copy()
        adjacency.data = np.ones_like(adjacency.data, dtype=np.float32)
        adjacency = to_torch_csr(adjacency, device=device)
        rows = torch.repeat_interleave(torch.arange(graph.num_nodes, device=adjacency.device),
                                       adjacency.crow_indices().diff())
        columns, values = adjacency.col_indices(), adjacency.values()
        degree = torch.zeros(graph.num_nodes, device=adjacency.device).index_add_(0, columns, values)
        inverse_root = degree.pow(-0.5).masked_fill_(degree == 0, 0.0)
        self.adjacency = torch.sparse_csr_tensor(adjacency.crow_indices(), columns,
                                                 inverse_root[rows] * values * inverse_root[columns],
                                                 size=adjacency.shape, check_invariants=False)
        self.labels = torch.from_numpy(np.maximum(graph.labels, 0)).to(device)
        self.valid = torch.from_numpy(graph.split["valid"]).to(device)
        widest = len(settings.correction_alphas) * len(settings.smoothing_alphas) * graph.num_classes
        self.runs_at_once = max(1, int(BUDGET_BYTES // (4 * graph.num_nodes * widest)))

    def __call__(self, run: RunPrediction) -> RunPrediction:
        """The run's ``[n, C]`` probabilities corrected and smoothed with the α pair best on valid (ties: the first)."""
        return self.many([run])[0]

    @torch.no_grad()
    def many(self, runs: list[RunPrediction]) -> list[RunPrediction]:
        """:meth:`__call__` for each run, :attr:`runs_at_once` runs propagated together."""
        distinct: dict = {}
        for run in runs:
            distinct.setdefault((run.train.tobytes(), id(run.scores)), run)
        done = {}
        unique = list(distinct.items())
        for start in range(0, len(unique), self.runs_at_once):
            group = unique[start:start + self.runs_at_once]
            for (key, _), result in zip(group, self._group([run for _, run in group])):
                done[key] = result
        return [RunPrediction(run.seed, run.train, *done[(run.train.tobytes(), id(run.scores))]) for run in runs]

    def _group(self, runs: list[RunPrediction]) -> list[tuple[torch.Tensor, dict]]:
        """``(scores, details)`` of each run: all α₁ corrected at once, then per α₁ all α₂ smoothed at once."""
        s = self.settings
        device = self.adjacency.device
        probabilities = torch.stack([run.scores.to(device, torch.float32) for run in runs], 1)  # [n, R, C]
        trains = [torch.from_numpy(run.train).to(device) for run in runs]
        onehots = [torch.nn.functional.one_hot(self.labels[train], probabilities.shape[2]).float() for train in trains]
        corrected = self._correct(probabilities, trains, onehots)  # [n, R, A1, C]
        best_acc = torch.full((len(runs),), -1.0, device=device)
        best = [None] * len(runs)
        for i, alpha_1 in enumerate(s.correction_alphas):
            start = corrected[:, :, i, None, :].expand(-1, -1, len(s.smoothing_alphas), -1).clone()  # [n, R, A2, C]
            for r, (train, onehot) in enumerate(zip(trains, onehots)):
                start[train, r] = onehot[:, None, :]
            scores = self._propagate(start, s.smoothing_alphas, s.smoothing_layers, 0.0, 1.0)
            accuracy = (scores[self.valid].argmax(3) == self.labels[self.valid, None, None]).float().mean(0)  # [R, A2]
            for j, alpha_2 in enumerate(s.smoothing_alphas):
                better = (accuracy[:, j] > best_acc).tolist()
                best_acc = torch.maximum(best_acc, accuracy[:, j])
                for r in [r for r, flag in enumerate(better) if flag]:
                    best[r] = (scores[:, r, j].clone(), alpha_1, alpha_2)
        accuracies = best_acc.tolist()
        return [(scores, dict(correction_alpha=alpha_1, smoothing_alpha=alpha_2, valid_acc=round(accuracy, 6)))
                for (scores, alpha_1, alpha_2), accuracy in zip(best, accuracies)]

    def _correct(self, probabilities: torch.Tensor, trains, onehots) -> torch.Tensor:
        """PyG's ``correct`` with autoscale for every run and α₁: ``[n, R, C]`` -> ``[n, R, A1, C]``."""
        alphas = self.settings.correction_alphas
        error = torch.zeros(*probabilities.shape[:2], len(alphas), probabilities.shape[2],
                            device=probabilities.device)
        sigma = torch.empty(len(trains), device=probabilities.device)
        for r, (train, onehot) in enumerate(zip(trains, onehots)):
            residual = onehot - probabilities[train, r]
            error[train, r] = residual[:, None, :]
            sigma[r] = residual.abs().sum() / len(train)
        smoothed = self._propagate(error, alphas, self.settings.correction_layers, -1.0, 1.0)
        scale = sigma[None, :, None, None] / smoothed.abs().sum(3, keepdim=True)
        scale[scale.isinf() | (scale > 1000)] = 1.0
        return probabilities[:, :, None, :] + scale * smoothed

    def _propagate(self, start: torch.Tensor, alphas, layers: int, low: float, high: float) -> torch.Tensor:
        """PyG's label propagation of ``[n, R, A, C]`` with α = ``alphas[a]`` for block a: ``layers`` times
        ``out = α Â out + (1 − α) start``, clamped to ``[low, high]`` after each."""
        shape = start.shape
        alpha = torch.tensor([float(a) for a in alphas], device=start.device)[:, None]  # float32 α, as PyG's
        keep = torch.tensor([1.0 - float(a) for a in alphas], device=start.device)[:, None]
        columns = start.reshape(shape[0], -1)
        rest = (keep * start).reshape(shape[0], -1)
        alpha = alpha.expand(shape[1], -1, shape[3]).reshape(-1)
        out = columns
        for _ in range(layers):
            out = (self.adjacency @ out).mul_(alpha).add_(rest).clamp_(low, high)
        return out.view(shape)
