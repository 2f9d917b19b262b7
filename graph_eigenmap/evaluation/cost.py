"""Test-time cost: predicting test nodes with Neural Eigenmap against GCN (needs neighbours).

Seconds are medians over repeats after a warm-up, synchronized on GPUs. For one new node, GCN
must first gather the node's ``layers``-hop neighbourhood (PyG's ``k_hop_subgraph``) and normalize
that subgraph; that gathering is part of its cost. Neural Eigenmap on the node's own features
embeds them with the MLP and applies the probe. Neural Eigenmap with propagated inputs
(``inputs="propagated:K"``): for all test nodes, the K sparse products [X, ÂX, …, Â^K X] over the
whole graph (as if the graph were new), then the MLP on the test rows; for one new node, its
inputs from its edges to known nodes and their stored propagated rows
(:func:`graph_eigenmap.inputs.propagate_new_nodes`, on the host as ``transform`` does), then the MLP.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

from graph_eigenmap.baselines.supervised import GCN, gcn_adjacency, standardized_features
from graph_eigenmap.data.sparse import dense_features
from graph_eigenmap.inputs import gcn_degrees, propagate, propagate_new_nodes


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
def test_time_cost(graph, ne_model, *, device="cpu", hidden=256, layers=3, propagated_model=None,
                   hops: int = 0) -> dict:
    """Seconds to predict all test nodes and one new node: Neural Eigenmap vs GCN; parameter counts.

    Neural Eigenmap: the fitted MLP's backbone features times a linear probe ``[h, C]``; GCN: the
    baseline's architecture. Costs do not depend on the weights' values, so the probe and GCN
    weights here are freshly initialized.

    Args:
        ne_model: a model fitted on the node's own features (``inputs="features"``).
        propagated_model, hops: optionally a model fitted with ``inputs="propagated:K"`` and its K;
            adds ``ne_propagated_*`` entries.
    """
    device = torch.device(device)
    ne_model = ne_model.to(device).eval()
    test = torch.from_numpy(graph.split["test"]).to(device)
    x = torch.from_numpy(dense_features(graph, "the test-time cost benchmark")).to(device)
    weight = torch.randn(ne_model.backbone.out_features, graph.num_classes, device=device)
    coo = graph.adjacency.tocoo()
    edge_index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))  # the resident edge list

    def ne_predict(rows):
        return (ne_model.backbone(x[rows]) @ weight).argmax(1)

    gcn = GCN(graph.num_features, hidden, graph.num_classes, layers).to(device).eval()
    adjacency = gcn_adjacency(graph, device)
    features = standardized_features(graph, device)
    one = test[:1]
    propagated = {} if propagated_model is None else _propagated_costs(graph, propagated_model, hops, weight, test,
                                                                        int(one[0]), device)
    return propagated | dict(
        ne_all_test_s=median_seconds(lambda: ne_predict(test), device=device),
        ne_one_node_s=median_seconds(lambda: ne_predict(one), device=device),
        gcn_all_test_s=median_seconds(lambda: gcn(features, adjacency)[test].argmax(1), device=device),
        gcn_one_node_s=median_seconds(lambda: _gcn_one_node(gcn, edge_index, graph.num_nodes, features, int(one[0]),
                                                            layers, device), device=device),
        ne_parameters=parameter_count(ne_model.backbone) + weight.numel(),
        gcn_parameters=parameter_count(gcn),
        test_nodes=int(test.numel()),
    )


def _propagated_costs(graph, model, hops: int, weight: torch.Tensor, test: torch.Tensor, node: int, device) -> dict:
    """Neural Eigenmap with propagated inputs: all test nodes (propagation included) and one new node."""
    model = model.to(device).eval()
    known = propagate(graph.features, graph.adjacency, hops, device=device)  # stored by a server, like GCN's graph
    degrees = gcn_degrees(graph.adjacency)
    row = graph.adjacency[node]
    edges = np.vstack([np.zeros(row.nnz, dtype=np.int64), row.indices.astype(np.int64)])  # the node, as if new
    features = graph.features[node:node + 1]

    def all_test():
        x = torch.from_numpy(propagate(graph.features, graph.adjacency, hops, device=device)).to(device)
        return (model.backbone(x[test]) @ weight).argmax(1)

    def one_new_node():
        x = torch.from_numpy(propagate_new_nodes(features, edges, known, degrees, hops)).to(device)
        return (model.backbone(x) @ weight).argmax(1)

    return dict(ne_propagated_all_test_s=median_seconds(all_test, repeats=5, device=device),
                ne_propagated_one_node_s=median_seconds(one_new_node, device=device),
                ne_propagated_parameters=parameter_count(model.backbone) + weight.numel(),
                ne_propagated_stored_floats=int(known.size), propagation_hops=hops)


def _gcn_one_node(gcn, edge_index, num_nodes: int, features, node: int, layers: int, device):
    return gcn_on_nodes(gcn, edge_index.to(device), num_nodes, features, torch.tensor([node], device=device),
                        layers).argmax(1)


@torch.no_grad()
def gcn_on_nodes(gcn, edge_index: torch.Tensor, num_nodes: int, features: torch.Tensor, nodes: torch.Tensor,
                 layers: int, degree: torch.Tensor | None = None) -> torch.Tensor:
    """GCN logits ``[m, C]`` for ``[m]`` nodes from their ``layers``-hop neighbourhood alone.

    Gathers the neighbourhood (PyG's ``k_hop_subgraph`` on the ``[2, E]`` symmetric edge list, on
    its device), normalizes the subgraph's edges with self-loops by the full graph's degrees,
    D̃^-1/2 (A + I) D̃^-1/2 (the subgraph's own degrees are short at its boundary), and runs ``gcn``
    on it: what serving a GCN costs for nodes that arrive after training. Equals the full-graph
    GCN's logits at those nodes when ``layers`` is the GCN's depth (their receptive field lies
    inside the subgraph).

    Args:
        degree: ``[n]`` full-graph degrees plus one (the self-loop), kept with the graph by a
            server; None counts them from ``edge_index`` on every call.
    """
    from torch_geometric.utils import k_hop_subgraph  # deferred: torch_geometric takes seconds to import

    subset, sub_edges, mapping, _ = k_hop_subgraph(nodes, layers, edge_index, relabel_nodes=True, num_nodes=num_nodes)
    if degree is None:
        degree = torch.bincount(edge_index[0], minlength=num_nodes).float() + 1
    m = subset.numel()
    loops = torch.arange(m, device=subset.device)
    rows, cols = torch.cat([sub_edges[0], loops]), torch.cat([sub_edges[1], loops])
    scale = degree[subset].rsqrt()
    adjacency = torch.sparse_coo_tensor(torch.stack([rows, cols]), scale[rows] * scale[cols],
                                        (m, m)).coalesce().to_sparse_csr()
    return gcn(features[subset], adjacency)[mapping]
