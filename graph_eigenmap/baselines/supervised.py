"""Supervised baselines on the OGB protocol: GCN (uses the graph at test time) and an MLP on raw features.

Both: 3 layers, 256 hidden, ReLU, dropout 0.5, batch normalization between layers, Adam (lr 0.01),
full batch, early stopping on validation accuracy (at most 500 epochs, patience 50); the epoch with
the best validation accuracy gives the test accuracy (as OGB's ogbn-products examples). Features are
scaled as the probe scales them (:mod:`graph_eigenmap.scaling`, statistics of the train split).
GCN is PyG's ``GCNConv`` on the GCN-normalized adjacency D̃^-1/2 (A + I) D̃^-1/2, computed once by
:func:`graph_eigenmap.kernel.normalized_adjacency` and passed as a sparse CSR matrix, so each layer
is one sparse-dense product instead of PyG's gather-scatter over an edge list (same output:
tests/test_evaluation.py checks it).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from graph_eigenmap.data.graph import Graph
from graph_eigenmap.data.sparse import dense_features
from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.kernel import normalized_adjacency, to_torch_csr
from graph_eigenmap.protocol import MethodResult, RunPrediction, score_runs, train_subset
from graph_eigenmap.scaling import fit_scaling


class GCN(nn.Module):
    """``layers`` GCNConv layers: ``[n, d]`` features and the ``[n, n]`` normalized adjacency -> ``[n, C]`` logits."""

    def __init__(self, in_features: int, hidden: int, classes: int, layers: int = 3, dropout: float = 0.5):
        super().__init__()
        from torch_geometric.nn import GCNConv  # deferred: torch_geometric takes seconds to import

        sizes = [in_features] + [hidden] * (layers - 1) + [classes]
        self.convs = nn.ModuleList(GCNConv(a, b, normalize=False) for a, b in zip(sizes[:-1], sizes[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(layers - 1))
        self.dropout = dropout

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        for conv, norm in zip(self.convs[:-1], self.norms):
            x = nn.functional.dropout(torch.relu(norm(conv(x, adjacency))), self.dropout, self.training)
        return self.convs[-1](x, adjacency)


class MLP(nn.Module):
    """``layers`` linear layers on node features alone: ``[n, d]`` -> ``[n, C]`` logits."""

    def __init__(self, in_features: int, hidden: int, classes: int, layers: int = 3, dropout: float = 0.5):
        super().__init__()
        sizes = [in_features] + [hidden] * (layers - 1) + [classes]
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(layers - 1))
        self.dropout = dropout

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor | None = None) -> torch.Tensor:
        for linear, norm in zip(self.linears[:-1], self.norms):
            x = nn.functional.dropout(torch.relu(norm(linear(x))), self.dropout, self.training)
        return self.linears[-1](x)


def gcn_adjacency(graph: Graph, device) -> torch.Tensor:
    """``[n, n]`` sparse CSR D̃^-1/2 (A + I) D̃^-1/2 on ``device``."""
    return to_torch_csr(normalized_adjacency(graph, self_loops=True), device=device)


def standardized_features(graph: Graph, device, train: np.ndarray | None = None) -> torch.Tensor:
    """``[n, d]`` features scaled by :func:`graph_eigenmap.scaling.fit_scaling` on the ``train`` rows (default: all)."""
    x = torch.from_numpy(dense_features(graph, "the supervised baselines")).to(device)
    rows = x if train is None else x[torch.from_numpy(train).to(device)]
    return fit_scaling(rows).apply(x)


def supervised_runs(graph: Graph, kind: str, *, label_ratio: float = 1.0, runs: int = 10, max_epochs: int = 500,
                    patience: int = 50, hidden: int = 256, layers: int = 3, device="cpu") -> Iterator[RunPrediction]:
    """Train GCN (``kind="gcn"``) or MLP (``kind="mlp"``) once per seed, with early stopping on valid.

    Each run trains on its label subset for at most ``max_epochs`` epochs and stops once valid
    accuracy has not improved for ``patience`` epochs; the epoch with the best valid accuracy
    gives the run's predictions.

    Yields:
        :class:`RunPrediction` with ``[n, C]`` softmax outputs of the best epoch; ``details`` hold
        ``best_epoch``, ``epochs`` run, ``seconds`` and ``parameters``.
    """
    if kind not in ("gcn", "mlp"):
        raise GraphEigenmapError(f"supervised baseline must be gcn or mlp; got {kind!r}.")
    device = torch.device(device)
    x = standardized_features(graph, device, graph.split["train"])
    edges = gcn_adjacency(graph, device) if kind == "gcn" else None
    labels = torch.from_numpy(np.maximum(graph.labels, 0)).to(device)
    valid = torch.from_numpy(graph.split["valid"]).to(device)
    for seed in range(runs):
        torch.manual_seed(seed)
        model = (GCN if kind == "gcn" else MLP)(x.shape[1], hidden, graph.num_classes, layers).to(device)
        train_nodes = train_subset(graph.split["train"], label_ratio, seed, graph.num_classes)
        started = time.perf_counter()
        best_logits, best_epoch, epochs = _train_early_stopping(model, x, edges, labels,
                                                                torch.from_numpy(train_nodes).to(device), valid,
                                                                max_epochs, patience)
        details = dict(best_epoch=best_epoch, epochs=epochs, seconds=round(time.perf_counter() - started, 2),
                       parameters=sum(p.numel() for p in model.parameters()))
        yield RunPrediction(seed, train_nodes, torch.softmax(best_logits, 1), details)


CHECK_EVERY = 16
"""Epochs between the host's looks at the early-stopping state (kept on the device, so an epoch never waits)."""


def _train_early_stopping(model, x, edges, labels, train, valid, max_epochs: int, patience: int):
    """Full-batch Adam (lr 0.01) until valid accuracy has not improved for ``patience`` epochs.

    The best valid accuracy, its epoch and its logits are tracked on the device (``torch.where``), and the
    host reads whether training has stopped every :data:`CHECK_EVERY` epochs: the epochs run past the stop
    change nothing that is returned.

    Returns ``([n, C]`` logits of the best epoch, the best epoch, the epochs run until the stop``)``.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    device = x.device
    best_valid = torch.tensor(-1.0, device=device)
    best_epoch = torch.tensor(0, device=device)
    stopped_at = torch.tensor(max_epochs, device=device)
    best_logits = None
    for epoch in range(max_epochs):
        model.train()
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x, edges)[train], labels[train]).backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            logits = model(x, edges)
            valid_acc = (logits[valid].argmax(1) == labels[valid]).float().mean()  # selection only
            running = stopped_at == max_epochs
            improved = running & (valid_acc > best_valid)
            best_logits = logits if best_logits is None else torch.where(improved, logits, best_logits)
            best_valid = torch.where(improved, valid_acc, best_valid)
            best_epoch = torch.where(improved, epoch, best_epoch)
            stops = running & ~improved & (epoch - best_epoch >= patience)
            stopped_at = torch.where(stops, epoch + 1, stopped_at)
        if (epoch + 1) % CHECK_EVERY == 0 and int(stopped_at) < max_epochs:
            break
    return best_logits, int(best_epoch), int(stopped_at)


def supervised_baseline(graph: Graph, kind: str, *, label_ratio: float = 1.0, runs: int = 10, max_epochs: int = 500,
                        patience: int = 50, hidden: int = 256, layers: int = 3, device="cpu") -> MethodResult:
    """GCN (``kind="gcn"``) or MLP (``kind="mlp"``) accuracy on the OGB protocol (see :func:`supervised_runs`)."""
    predictions = supervised_runs(graph, kind, label_ratio=label_ratio, runs=runs, max_epochs=max_epochs,
                                  patience=patience, hidden=hidden, layers=layers, device=device)
    return score_runs(predictions, graph, method=kind, label_ratio=label_ratio, runs=runs)[0]
