"""Supervised baselines on the OGB protocol: GCN (uses the graph at test time) and an MLP on raw features.

Both: 3 layers, 256 hidden, ReLU, dropout 0.5, batch normalization between layers, Adam (lr 0.01),
full batch, ``epochs`` epochs; the epoch with the best validation accuracy gives the test
accuracy (as OGB's ogbn-products examples). GCN is PyG's ``GCNConv`` on the GCN-normalized
adjacency D̃^-1/2 (A + I) D̃^-1/2, computed once by :func:`graph_eigenmap.kernel.normalized_adjacency`
and passed as a sparse CSR matrix, so each layer is one sparse-dense product instead of PyG's
gather-scatter over an edge list (same output: tests/test_evaluation.py checks it).
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from graph_eigenmap.data.graph import Graph
from graph_eigenmap.kernel import normalized_adjacency, to_torch_csr
from graph_eigenmap.evaluation.protocol import Accuracy, MethodResult, train_subset


class GCN(nn.Module):
    """``layers`` GCNConv layers: ``[n, d]`` features and the ``[n, n]`` normalized adjacency -> ``[n, C]`` logits."""

    def __init__(self, in_features: int, hidden: int, classes: int, layers: int = 3, dropout: float = 0.5):
        super().__init__()
        from torch_geometric.nn import GCNConv

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


def standardized_features(graph: Graph, device) -> torch.Tensor:
    x = torch.from_numpy(graph.features).to(device)
    return (x - x.mean(0)) / x.std(0).clamp(min=1e-6)


def supervised_baseline(graph: Graph, kind: str, *, label_ratio: float = 1.0, runs: int = 10, epochs: int = 300,
                        hidden: int = 256, layers: int = 3, device="cpu") -> MethodResult:
    """GCN (``kind="gcn"``) or MLP (``kind="mlp"``) accuracy on the OGB protocol."""
    device = torch.device(device)
    x = standardized_features(graph, device)
    edges = gcn_adjacency(graph, device) if kind == "gcn" else None
    labels = torch.from_numpy(np.maximum(graph.labels, 0)).to(device)
    accuracy = Accuracy(graph)
    result = MethodResult(kind, label_ratio, runs, extra=dict(best_epoch=[], seconds=[]))
    valid, test = graph.split["valid"], graph.split["test"]
    valid_t = torch.from_numpy(valid).to(device)
    for seed in range(runs):
        torch.manual_seed(seed)
        model_class = GCN if kind == "gcn" else MLP
        model = model_class(x.shape[1], hidden, graph.num_classes, layers).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        train = torch.from_numpy(train_subset(graph.split["train"], label_ratio, seed)).to(device)
        best_valid, best_epoch, best_predicted = -1.0, 0, None
        started = time.perf_counter()
        for epoch in range(epochs):
            model.train()
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(x, edges)[train], labels[train])
            loss.backward()
            optimizer.step()
            model.eval()
            with torch.no_grad():
                predicted = model(x, edges).argmax(1)
            valid_acc = float((predicted[valid_t] == labels[valid_t]).float().mean())  # selection only
            if valid_acc > best_valid:
                best_valid, best_epoch, best_predicted = valid_acc, epoch, predicted
        best_predicted = best_predicted.cpu().numpy()
        result.valid_acc.append(accuracy(graph.labels[valid], best_predicted[valid]))
        result.test_acc.append(accuracy(graph.labels[test], best_predicted[test]))
        result.extra["best_epoch"].append(best_epoch)
        result.extra["seconds"].append(round(time.perf_counter() - started, 2))
    result.extra["parameters"] = sum(p.numel() for p in model.parameters())
    return result
