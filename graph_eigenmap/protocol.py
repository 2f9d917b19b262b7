"""The OGB leaderboard protocol shared by every method: seeds, label subsets, the Evaluator, summaries.

* Runs use seeds 0, 1, ..., runs − 1; results are the mean and the unbiased (ddof = 1) standard
  deviation over runs.
* With ``label_ratio < 1`` a run trains on a seeded random subset of the train split of size
  ``max(1, round(label_ratio · |train|))``; validation and test sets stay whole. A subset smaller than the number
  of classes (the classifier cannot see every class) is legal but said, as an
  :class:`~graph_eigenmap.errors.InputWarning`.
* Accuracy is computed by ``ogb.nodeproppred.Evaluator``: the graph's own OGB name when it has one,
  otherwise ``ogbn-arxiv``'s evaluator (the same metric: multi-class accuracy over one task).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from graph_eigenmap.data.ogb import ogb_master
from graph_eigenmap.errors import GraphEigenmapError, InputWarning


@dataclass
class MethodResult:
    """One method's row: per-run accuracies (fractions in [0, 1]) and their summary."""

    method: str
    label_ratio: float
    runs: int
    test_acc: list[float] = field(default_factory=list)
    valid_acc: list[float] = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def test_acc_mean(self) -> float:
        return float(np.mean(self.test_acc))

    @property
    def test_acc_std(self) -> float:
        return float(np.std(self.test_acc, ddof=1)) if len(self.test_acc) > 1 else 0.0

    @property
    def valid_acc_mean(self) -> float:
        return float(np.mean(self.valid_acc))

    def to_dict(self) -> dict:
        return dict(asdict(self), test_acc_mean=self.test_acc_mean, test_acc_std=self.test_acc_std,
                    valid_acc_mean=self.valid_acc_mean)


def train_subset(train: np.ndarray, label_ratio: float, seed: int, num_classes: int | None = None) -> np.ndarray:
    """The training nodes of one run: all of ``train`` or a seeded fraction of it.

    Args:
        num_classes: the graph's classes: a subset smaller than that is said once (an InputWarning).
    """
    if not 0 < label_ratio <= 1:
        raise GraphEigenmapError(f"label ratio must lie in (0, 1]; got {label_ratio}.")
    if label_ratio == 1:
        return np.sort(train)
    size = max(1, int(round(label_ratio * len(train))))
    if num_classes is not None and size < num_classes <= len(train):
        ratio = num_classes / len(train)
        step = 10.0 ** (math.floor(math.log10(ratio)) - 1)
        least = math.ceil(ratio / step) * step  # two digits, rounded up
        warnings.warn(f"a label ratio of {label_ratio:g} leaves {size} labelled training node{'s' * (size > 1)} for "
                      f"{num_classes} classes, so the classifier cannot see every class; use a ratio of at least "
                      f"{least:.2g} ({num_classes} of the {len(train):,} train nodes).", InputWarning, stacklevel=2)
    return np.sort(np.random.default_rng(seed).choice(train, size=size, replace=False))


class Accuracy:
    """``ogb.nodeproppred.Evaluator`` for a graph: accuracy of predicted classes on given nodes."""

    def __init__(self, graph):
        from ogb.nodeproppred import Evaluator  # deferred: ogb imports torch_geometric, seconds

        name = graph.name if graph.name in ogb_master() else "ogbn-arxiv"
        self.evaluator = Evaluator(name)
        self.evaluator_name = name

    def __call__(self, labels: np.ndarray, predicted: np.ndarray) -> float:
        result = self.evaluator.eval({"y_true": np.asarray(labels).reshape(-1, 1),
                                      "y_pred": np.asarray(predicted).reshape(-1, 1)})
        return float(result["acc"])


@dataclass
class RunPrediction:
    """What one run of a method predicts: class scores for every node.

    Attributes:
        seed: the run's seed.
        train: ``[t]`` node ids whose labels the run trained on.
        scores: ``[n, C]`` class scores of every node, the prediction being the largest: softmax
            probabilities for the probes and supervised models, propagated scores after C&S.
        details: what the method records about the run (chosen penalty, best epoch, ...).
    """

    seed: int
    train: np.ndarray
    scores: torch.Tensor
    details: dict = field(default_factory=dict)


def score_runs(predictions: Iterable[RunPrediction], graph, *, method: str, label_ratio: float, runs: int,
               postprocess: Callable[[RunPrediction], RunPrediction] | None = None,
               postprocessed_method: str = "") -> tuple[MethodResult, MethodResult | None]:
    """Valid and test accuracy of each run's predictions, and of their post-processed version.

    Args:
        predictions: one :class:`RunPrediction` per run, consumed one at a time (each can be large).
        graph: supplies labels and the split.
        method, label_ratio, runs: recorded on the results.
        postprocess: optional map from a run's prediction to a new one (e.g. Correct & Smooth); its
            accuracies form the second result, named ``postprocessed_method``. One with a ``many`` method (a
            list of runs to a list of runs) and ``runs_at_once`` gets the runs that many at a time.

    Returns:
        ``(result, postprocessed result or None)``; each run's ``details`` are listed in
        ``extra["runs"]``.
    """
    accuracy = Accuracy(graph)
    result = MethodResult(method, label_ratio, runs, extra=dict(evaluator=accuracy.evaluator_name, runs=[]))
    post = MethodResult(postprocessed_method, label_ratio, runs,
                        extra=dict(evaluator=accuracy.evaluator_name, runs=[])) \
        if postprocess is not None else None
    many = getattr(postprocess, "many", None)
    waiting: list[RunPrediction] = []
    for run in predictions:
        _append_scores(result, run, graph, accuracy)
        if post is not None and many is None:
            _append_scores(post, postprocess(run), graph, accuracy)
        elif post is not None:
            waiting.append(run)
            if len(waiting) >= postprocess.runs_at_once:
                for done in many(waiting):
                    _append_scores(post, done, graph, accuracy)
                waiting = []
    for done in many(waiting) if waiting else ():
        _append_scores(post, done, graph, accuracy)
    return result, post


def _append_scores(result: MethodResult, run: RunPrediction, graph, accuracy: Accuracy) -> None:
    for part, accuracies in (("valid", result.valid_acc), ("test", result.test_acc)):
        nodes = graph.split[part]
        predicted = run.scores[torch.from_numpy(nodes).to(run.scores.device)].argmax(1).cpu().numpy()
        accuracies.append(accuracy(graph.labels[nodes], predicted))
    result.extra["runs"].append(run.details)
