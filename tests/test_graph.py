"""Cleaning and validation in build_graph, on tiny hand-written graphs with known answers."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graph_eigenmap.data import build_graph, from_pyg, from_scipy, random_split
from graph_eigenmap.errors import DataError


def test_cleaning_directed_loops_duplicates_isolated():
    # 5 nodes: 0->1, 1->0 (a proper pair), 1->2 (one direction only), 2->2 (loop),
    # 0->1 again (duplicate), 3->1 (one direction); node 4 isolated.
    edges = np.array([[0, 1, 1, 2, 0, 3], [1, 0, 2, 2, 1, 1]])
    graph = build_graph(edges, 5, name="toy", source="test")
    expected = np.zeros((5, 5))
    for u, v in [(0, 1), (1, 2), (1, 3)]:
        expected[u, v] = expected[v, u] = 1
    np.testing.assert_array_equal(graph.adjacency.toarray(), expected)
    assert graph.num_edges == 3
    c = graph.cleaning
    assert (c.input_edges, c.self_loops_dropped, c.duplicates_merged, c.reverse_edges_added) == (6, 1, 1, 2)


def test_weights_summed_for_repeats_and_max_across_directions():
    edges = np.array([[0, 0, 1], [1, 1, 0]])
    graph = build_graph(edges, 2, edge_weight=np.array([1.0, 2.0, 2.5]), name="w", source="test")
    # (0,1) appears twice: 1 + 2 = 3; (1,0) has 2.5; symmetrized with the larger: 3.
    np.testing.assert_allclose(graph.adjacency.toarray(), [[0, 3], [3, 0]])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(edge_index=np.array([[0, 1], [1, 7]]), num_nodes=5), "out of range"),
        (dict(edge_index=np.array([[0, -1], [1, 2]]), num_nodes=5), "out of range"),
        (dict(edge_index=np.array([[0], [1]]), num_nodes=0), "empty"),
        (dict(edge_index=np.array([[0], [1]]), num_nodes=3, features=np.ones((2, 4))), "rows"),
        (dict(edge_index=np.array([[0], [1]]), num_nodes=3, features=np.array([[1.0], [np.nan], [0.0]])), "NaN"),
        (dict(edge_index=np.array([[0], [1]]), num_nodes=3, features=np.array([[1.0], [np.inf], [0.0]])), "NaN or inf"),
        (dict(edge_index=np.array([[0], [1]]), num_nodes=3, labels=np.array([0, 1])), "labels"),
        (dict(edge_index=np.array([0, 1]), num_nodes=3), "shape"),
    ],
)
def test_bad_arrays_raise_one_clear_line(kwargs, message):
    with pytest.raises(DataError, match=message) as info:
        build_graph(name="bad", source="test", **kwargs)
    assert "\n" not in str(info.value)


def test_labels_nan_become_unknown():
    graph = build_graph(np.array([[0], [1]]), 3, labels=np.array([[0.0], [np.nan], [2.0]]), name="l", source="t")
    np.testing.assert_array_equal(graph.labels, [0, -1, 2])
    assert graph.num_classes == 3


def test_random_split_rule_is_seeded_and_partitions():
    split = random_split(2708, seed=0)
    assert [len(split[p]) for p in ("train", "valid", "test")] == [270, 271, 2167]
    all_ids = np.concatenate([split[p] for p in ("train", "valid", "test")])
    np.testing.assert_array_equal(np.sort(all_ids), np.arange(2708))
    np.testing.assert_array_equal(split["train"], random_split(2708, seed=0)["train"])
    assert not np.array_equal(split["train"], random_split(2708, seed=1)["train"])


def test_from_pyg_reads_masks_and_features():
    from torch_geometric.data import Data

    mask = torch.tensor([True, False, False, True])
    data = Data(edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]]), x=torch.eye(4), y=torch.tensor([0, 1, 0, 1]),
                train_mask=mask, val_mask=torch.tensor([False, True, False, False]),
                test_mask=torch.tensor([False, False, True, False]))
    graph = from_pyg(data)
    assert graph.num_edges == 3 and graph.num_features == 4
    np.testing.assert_array_equal(graph.split["train"], [0, 3])
    np.testing.assert_array_equal(graph.labels, [0, 1, 0, 1])


def test_from_scipy_symmetrizes_and_drops_diagonal():
    adjacency = sp.csr_matrix(np.array([[1, 1, 0], [0, 0, 1], [0, 0, 0]]))
    graph = from_scipy(adjacency, labels=np.array([0, 1, 1]))
    np.testing.assert_array_equal(graph.adjacency.toarray(), [[0, 1, 0], [1, 0, 1], [0, 1, 0]])
    assert graph.cleaning.self_loops_dropped == 1


@pytest.mark.parametrize("weighted", [False, True])
def test_host_cleaning_equals_cleaning_by_sorting_and_a_dense_reference(weighted):
    from graph_eigenmap.data.graph import _clean_by_sorting, _clean_on_host

    rng = np.random.default_rng(0)
    n = 300
    edges = rng.integers(0, n, (2, 4000))
    edges = np.concatenate([edges, edges[:, :200], edges[::-1, 200:260]], axis=1)  # duplicates, both directions
    edges = edges[:, edges[0] != edges[1]]
    weight = (rng.random(edges.shape[1]) + 0.1).astype(np.float32) if weighted else None
    host, host_duplicates, host_reverse = _clean_on_host(edges[0], edges[1], weight, n)
    sorted_, duplicates, reverse = _clean_by_sorting(torch.from_numpy(edges[0]), torch.from_numpy(edges[1]),
                                                     None if weight is None else torch.from_numpy(weight), n)
    dense = np.zeros((n, n))
    np.add.at(dense, (edges[0], edges[1]), 1.0 if weight is None else weight)
    dense = np.maximum(dense, dense.T) if weighted else (np.maximum(dense, dense.T) > 0).astype(float)
    np.testing.assert_allclose(host.toarray(), dense, rtol=1e-6)
    np.testing.assert_allclose(host.toarray(), sorted_.toarray(), rtol=1e-6)  # duplicates summed in another order
    assert host.nnz == sorted_.nnz and host.has_sorted_indices and host.dtype == np.float32
    assert (host_duplicates, host_reverse) == (duplicates, reverse) and duplicates >= 200
