"""Test-time cost: predicting test nodes with Neural Eigenmap (features only) against GCN (needs neighbours).

Seconds are medians over repeats after a warm-up, synchronized on GPUs. For one new node, GCN
must first gather the node's ``layers``-hop neighbourhood (PyG's ``k_hop_subgraph``) and normalize
that subgraph; that gathering is part of its cost. Neural Eigenmap embeds the node's features
with the MLP and applies the probe.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from graph_eigenmap.baselines.supervised import GCN, gcn_adjacency, standardized_features
from graph_eigenmap.kernel import normalized_adjacency, to_torch_csr


def median_seconds(function, repeats: int = 10, device=None) -> float:
    """Median wall time of ``function()`` after one warm-up call."""
    def sync():
        if device is not None and torch.device(device).type == "cuda":
            torch.cuda.synchronize()

    function()
    sync()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        sync()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@torch.no_grad()
def test_time_cost(graph, ne_model, *, device="cpu", hidden=256, layers=3) -> dict:
    """Seconds to predict all test nodes and one new node: Neural Eigenmap vs GCN; parameter counts.

    Neural Eigenmap: the fitted MLP's backbone features times a linear probe ``[h, C]``; GCN: the
    baseline's architecture. Costs do not depend on the weights' values, so the probe and GCN
    weights here are freshly initialized.
    """
    device = torch.device(device)
    ne_model = ne_model.to(device).eval()
    test = torch.from_numpy(graph.split["test"]).to(device)
    x = torch.from_numpy(graph.features).to(device)
    weight = torch.randn(ne_model.backbone.out_features, graph.num_classes, device=device)
    coo = graph.adjacency.tocoo()
    edge_index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))  # the resident edge list

    def ne_predict(rows):
        return (ne_model.backbone(x[rows]) @ weight).argmax(1)

    gcn = GCN(graph.num_features, hidden, graph.num_classes, layers).to(device).eval()
    adjacency = gcn_adjacency(graph, device)
    features = standardized_features(graph, device)
    one = test[:1]
    return dict(
        ne_all_test_s=median_seconds(lambda: ne_predict(test), device=device),
        ne_one_node_s=median_seconds(lambda: ne_predict(one), device=device),
        gcn_all_test_s=median_seconds(lambda: gcn(features, adjacency)[test].argmax(1), device=device),
        gcn_one_node_s=median_seconds(lambda: _gcn_one_node(gcn, edge_index, graph.num_nodes, features, int(one[0]),
                                                            layers, device), device=device),
        ne_parameters=parameter_count(ne_model.backbone) + weight.numel(),
        gcn_parameters=parameter_count(gcn),
        test_nodes=int(test.numel()),
    )


def _gcn_one_node(gcn, edge_index, num_nodes: int, features, node: int, layers: int, device):
    """Gather the node's ``layers``-hop neighbourhood, normalize it, and run the GCN on it."""
    import scipy.sparse as sp
    from torch_geometric.utils import k_hop_subgraph

    subset, sub_edges, mapping, _ = k_hop_subgraph(node, layers, edge_index, relabel_nodes=True, num_nodes=num_nodes)
    m = len(subset)
    sub_adjacency = sp.csr_matrix((np.ones(sub_edges.shape[1], dtype=np.float32), sub_edges.numpy()), shape=(m, m))
    adjacency = to_torch_csr(normalized_adjacency(sub_adjacency, self_loops=True), device=device)
    return gcn(features[subset.to(device)], adjacency)[mapping].argmax(1)
