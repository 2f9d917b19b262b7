"""The default recipe's representation, chosen on valid labels: every representation of one fit, probed.

A fit recommends a representation without labels (:mod:`graph_eigenmap.recipe`). Where labels are at hand
(``graph-eigenmap evaluate --model``, ``bench compare``'s ``default`` group), :func:`choose_representation`
decides among the small, fixed set :data:`graph_eigenmap.registry.REPRESENTATIONS` (the backbone, the
eigenfunctions, either beside the node's features) for one label ratio:

1. each candidate is probed over the runs (OGB protocol: seeds 0..runs-1; the label ratio subsamples train, never
   valid) and scored by its mean valid accuracy;
2. the best one is chosen (ties: the fit's own recommendation first, then the registry's order);
3. Correct & Smooth is applied to the chosen candidate's predictions and kept where it raises the mean valid
   accuracy; both rows are reported either way.

Test accuracy decides nothing: it is reported for the chosen pipeline only (and for both of its rows, with and
without C&S), and every candidate's valid accuracy is in the report.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from graph_eigenmap.artifacts import BACKBONE, EMBEDDINGS, METADATA
from graph_eigenmap.data.graph import Graph
from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.evaluation.correct_and_smooth import CorrectAndSmooth
from graph_eigenmap.evaluation.probe import probe_runs
from graph_eigenmap.protocol import score_runs
from graph_eigenmap.registry import REPRESENTATIONS
from graph_eigenmap.representation import node_representation


def fit_parts(model_dir: str | Path) -> dict:
    """What a fit folder offers to build representations from: ``embedding`` (``[n, k]``), ``backbone`` (``[n, h]``,
    None where the fit did not write it), both memory-mapped, and ``recommended``, the fit's own choice.

    Raises:
        GraphEigenmapError: the folder is not a fit's output folder.
    """
    folder = Path(model_dir)
    if not (folder / METADATA).is_file() or not (folder / EMBEDDINGS).is_file():
        raise GraphEigenmapError(f"{folder} is not the output folder of a fit (it lacks {METADATA} or {EMBEDDINGS}); "
                                 "give the folder `graph-eigenmap fit --out` wrote.")
    metadata = json.loads((folder / METADATA).read_text())
    backbone = np.load(folder / BACKBONE, mmap_mode="c") if (folder / BACKBONE).is_file() else None
    recommended = metadata.get("representation", {}).get("name", "backbone")  # folders of fits before the choice
    return dict(embedding=np.load(folder / EMBEDDINGS, mmap_mode="c"), backbone=backbone, recommended=recommended,
                dataset=metadata.get("dataset_spec"))


def candidates(parts: dict, graph: Graph, recommended: str) -> list[str]:
    """The representations that can be built from ``parts`` and ``graph``, the fit's recommendation first."""
    at_hand = dict(embedding=parts.get("embedding") is not None, backbone=parts.get("backbone") is not None,
                   features=graph.features is not None)
    names = [choice.name for choice in REPRESENTATIONS if all(at_hand[part] for part in choice.parts)]
    return sorted(names, key=lambda name: name != recommended)


def choose_representation(parts: dict, graph: Graph, *, label_ratio: float = 1.0, runs: int = 10,
                          device: str | torch.device = "cpu", log=None) -> dict:
    """Steps 1-3 of the module docstring for one label ratio.

    Args:
        parts: ``embedding`` ``[n, k]``, ``backbone`` ``[n, h]`` (or None) and ``recommended`` (:func:`fit_parts`).
        graph: the fitted graph, with labels, split and (for the ``+features`` candidates) features.
        label_ratio, runs, device: the protocol's (:mod:`graph_eigenmap.protocol`).
        log: called with one line per candidate scored (None: silent).

    Returns:
        ``{"label_ratio", "runs", "recommended_by_fit", "candidates": {name: mean valid accuracy}, "chosen",
        "correct_and_smooth": applied or not, "probe": row, "probe_cs": row, "test_acc_mean", "test_acc_std",
        "valid_acc_mean"}``; rows as :meth:`~graph_eigenmap.protocol.MethodResult.to_dict`, the last three of the
        chosen pipeline.
    """
    recommended = parts["recommended"]
    names = candidates(parts, graph, recommended)
    valid, kept = {}, None
    for name in names:
        x, blocks = _represent(name, parts, graph)
        held: list = []
        predictions = _holding(probe_runs(x, graph, label_ratio=label_ratio, runs=runs, device=device, blocks=blocks),
                               held)
        valid[name] = score_runs(predictions, graph, method=name, label_ratio=label_ratio, runs=runs)[0].valid_acc_mean
        if log is not None:
            log(f"{graph.name} @ {label_ratio:g}: {name}: valid {100 * valid[name]:.2f} %")
        if all(valid[name] > value for other, value in valid.items() if other != name):  # the first best so far
            kept = (name, held) if len(held) == runs else None
    chosen = max(names, key=lambda name: valid[name])  # max keeps the first of equals: the recommendation
    if kept is None or kept[0] != chosen:
        x, blocks = _represent(chosen, parts, graph)
        kept = (chosen, probe_runs(x, graph, label_ratio=label_ratio, runs=runs, device=device, blocks=blocks))
    probe, smoothed = score_runs(kept[1], graph, method=f"default recipe: {chosen}", label_ratio=label_ratio,
                                 runs=runs, postprocess=CorrectAndSmooth(graph, device),
                                 postprocessed_method=f"default recipe: {chosen} + C&S")
    use_cs = smoothed.valid_acc_mean > probe.valid_acc_mean
    final = smoothed if use_cs else probe
    return dict(label_ratio=label_ratio, runs=runs, recommended_by_fit=recommended,
                candidates={name: round(value, 6) for name, value in valid.items()}, chosen=chosen,
                correct_and_smooth=use_cs, probe=probe.to_dict(), probe_cs=smoothed.to_dict(),
                test_acc_mean=final.test_acc_mean, test_acc_std=final.test_acc_std,
                valid_acc_mean=final.valid_acc_mean)


KEEP_BYTES = 2 * 2**30
"""The best candidate's predictions are kept for its C&S rows up to this size (else its probe is fitted again)."""


def _holding(predictions, held: list):
    """``predictions`` passed through, each also appended to ``held`` while the distinct score tensors held (runs
    sharing a fit share one) stay within :data:`KEEP_BYTES`; past it ``held`` is emptied and no more is kept."""
    distinct: dict = {}
    for run in predictions:
        distinct[id(run.scores)] = run.scores.numel() * run.scores.element_size()
        if sum(distinct.values()) <= KEEP_BYTES:
            held.append(run)
        else:
            held.clear()
        yield run


def _represent(name: str, parts: dict, graph: Graph) -> tuple[np.ndarray, tuple[int, ...] | None]:
    """The candidate's ``[n, w]`` array and, for several parts side by side, the probe's block widths."""
    x, blocks = node_representation(name, embedding=parts.get("embedding"), backbone=parts.get("backbone"),
                                    features=graph.features)
    return x, blocks if len(blocks) > 1 else None
