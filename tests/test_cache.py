"""The graph cache: plain .npy arrays, read back memory-mapped, equal to what was stored; stale or broken entries ignored."""

from __future__ import annotations

import mmap

import numpy as np
import scipy.sparse as sp

from graph_eigenmap.data import load_graph
from graph_eigenmap.data.cache import read_graph_cache, write_graph_cache
from graph_eigenmap.data.components import components
from graph_eigenmap.data.graph import build_graph


def _assert_same(a, b):
    assert (a.adjacency != b.adjacency).nnz == 0 and a.cleaning == b.cleaning and a.name == b.name
    if sp.issparse(a.features):
        assert sp.issparse(b.features) and (a.features != b.features).nnz == 0
    else:
        np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.labels, b.labels)
    for part in ("train", "valid", "test"):
        np.testing.assert_array_equal(a.split[part], b.split[part])


def _mapped(array) -> bool:
    """Whether ``array`` is a view of a memory-mapped file."""
    while array is not None:
        if isinstance(array, (np.memmap, mmap.mmap)):
            return True
        array = getattr(array, "base", None)
    return False


def test_a_cached_graph_reads_back_memory_mapped_and_equal(tmp_path):
    graph = load_graph("csbm:num_nodes=300,num_edges=1500,num_features=8,seed=2")
    expected_components = components(graph)
    entry = tmp_path / "cache" / "csbm-abc" / "graph"
    write_graph_cache(graph, entry, stamp="s1")
    again = read_graph_cache(entry, "s1")
    _assert_same(graph, again)
    kept = again.extra["components"].value  # read with the graph, not recomputed
    assert components(again) is kept
    np.testing.assert_array_equal(kept, expected_components)
    assert _mapped(again.features) and _mapped(again.adjacency.indices) and _mapped(again.adjacency.data)
    again.features[0, 0] = 7.0  # copy-on-write: the process may write, the file stays as it was
    assert read_graph_cache(entry, "s1").features[0, 0] == graph.features[0, 0]
    assert read_graph_cache(entry, "other sources") is None
    assert not [p for p in entry.parent.iterdir() if p.name.endswith(".tmp")]


def test_sparse_features_are_cached_sparse(tmp_path):
    features = sp.random(50, 40, density=0.1, format="csr", dtype=np.float32, random_state=0)
    edges = np.array([[0, 1, 2, 3], [1, 2, 3, 4]])
    graph = build_graph(edges, 50, features=features, name="bow", source="test", dense_features=False)
    write_graph_cache(graph, tmp_path / "graph", stamp="s")
    _assert_same(graph, read_graph_cache(tmp_path / "graph", "s"))


def test_components_are_those_of_the_undirected_search():
    from scipy.sparse.csgraph import connected_components

    graph = load_graph("csbm:num_nodes=400,num_edges=300,num_features=4,seed=3")  # sparse: many components
    count, undirected = connected_components(graph.adjacency, directed=False)
    ours = components(graph)
    assert count > 50 and ours.max() + 1 == count
    pairs = np.unique(np.stack([ours, undirected]), axis=1)  # the same partition: ids map one to one
    assert pairs.shape[1] == count


def test_a_broken_entry_is_ignored(tmp_path):
    graph = load_graph("csbm:num_nodes=200,num_edges=800,num_features=4,seed=1")
    entry = tmp_path / "graph"
    write_graph_cache(graph, entry, stamp="s")
    (entry / "indices.npy").write_bytes(b"not an array")
    assert read_graph_cache(entry, "s") is None
    assert read_graph_cache(tmp_path / "absent", "s") is None
