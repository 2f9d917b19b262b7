"""Loaders on small datasets written by the tests: OGB-layout folders, .npz, OGB names offline."""

import time

import numpy as np
import pytest
import scipy.sparse as sp
from helpers import toy_arrays, write_npz, write_ogb_folder

from graph_eigenmap.data import load_graph, load_npz, load_ogb_folder
from graph_eigenmap.data import ogb as ogb_loader
from graph_eigenmap.errors import DataError, DatasetUnavailableError


def test_any_ogb_layout_folder(tmp_path):
    edges, features, labels = toy_arrays()
    folder = write_ogb_folder(tmp_path / "ogbn_toy", edges, 12, features, labels)
    graph = load_ogb_folder(folder)
    assert graph.num_nodes == 12 and graph.num_edges == len(edges) and graph.num_features == 4
    np.testing.assert_array_equal(graph.labels, labels)
    np.testing.assert_allclose(graph.features, features, atol=1e-6)
    assert graph.degrees[11] == 0
    assert [len(graph.split[p]) for p in ("train", "valid", "test")] == [4, 4, 4]


def test_directed_folder_is_symmetrized(tmp_path):
    edges, features, labels = toy_arrays()
    folder = write_ogb_folder(tmp_path / "d", edges, 12, features, labels, meta={"add_inverse_edge": "False"})
    graph = load_graph(folder)
    assert graph.num_edges == len(edges) and graph.cleaning.reverse_edges_added == len(edges)


def test_folder_reload_uses_cache_and_refreshes_when_source_changes(tmp_path):
    edges, features, labels = toy_arrays()
    folder = write_ogb_folder(tmp_path / "f", edges, 12, features, labels)
    cache = tmp_path / "cache"
    assert load_ogb_folder(folder, cache_dir=cache).num_edges == len(edges)
    assert len(list(cache.rglob("meta.json"))) == 1
    (folder / "raw" / "edge.csv.gz").unlink()
    fewer = edges[:-1]
    import gzip
    with gzip.open(folder / "raw" / "edge.csv.gz", "wt") as f:
        f.writelines(f"{u},{v}\n" for u, v in fewer)
    with gzip.open(folder / "raw" / "num-edge-list.csv.gz", "wt") as f:
        f.write(f"{len(fewer)}\n")
    assert load_ogb_folder(folder, cache_dir=cache).num_edges == len(fewer)


def test_cached_folder_graph_equals_the_ogb_read_and_follows_split_edits(tmp_path):
    import gzip
    import subprocess
    import sys

    edges, features, labels = toy_arrays()
    folder = write_ogb_folder(tmp_path / "f", edges, 12, features, labels)
    cache = tmp_path / "cache"
    first = load_ogb_folder(folder, cache_dir=cache)  # through ogb; writes the cache
    second = load_ogb_folder(folder, cache_dir=cache)
    assert (first.adjacency != second.adjacency).nnz == 0 and first.cleaning == second.cleaning
    np.testing.assert_array_equal(first.features, second.features)
    np.testing.assert_array_equal(first.labels, second.labels)
    assert all(np.array_equal(first.split[p], second.split[p]) for p in ("train", "valid", "test"))
    assert (second.name, second.source) == (first.name, first.source)
    script = (f"import sys; from graph_eigenmap.data import load_ogb_folder; load_ogb_folder({str(folder)!r}, "
              f"cache_dir={str(cache)!r}); print('ogb' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.strip() == "False"
    with gzip.open(folder / "split" / "random" / "train.csv.gz", "wt") as f:
        f.write("0\n1\n")
    assert load_ogb_folder(folder, cache_dir=cache).split["train"].tolist() == [0, 1]


def test_npz_roundtrip_and_split(tmp_path):
    edges, features, labels = toy_arrays()
    adjacency = sp.coo_matrix((np.ones(len(edges)), edges.T), shape=(12, 12)).tocsr()
    path = write_npz(tmp_path / "toy.npz", adjacency + adjacency.T, sp.csr_matrix(features), labels)
    graph = load_npz(path, split_seed=0)
    assert graph.num_edges == len(edges) and graph.num_features == 4
    np.testing.assert_array_equal(graph.split["train"], np.random.default_rng(0).permutation(12)[:1])


def test_pickled_npz_is_refused(tmp_path):
    path = tmp_path / "pickled.npz"
    np.savez(path, adj_data=np.array([object()], dtype=object))
    with pytest.raises(DataError, match="pickled"):
        load_npz(path)


def test_ogb_name_offline_fails_fast_and_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(ogb_loader, "_unreachable", lambda url: "no network (test)")
    start = time.monotonic()
    with pytest.raises(DatasetUnavailableError, match="ogbn_arxiv/raw/edge.csv.gz"):
        load_graph("ogbn-arxiv", root=tmp_path)
    assert time.monotonic() - start < 20
    assert list(tmp_path.iterdir()) == []


def test_network_probe_gives_up_within_its_timeout():
    start = time.monotonic()
    reason = ogb_loader._unreachable("http://192.0.2.1/nothing.zip")  # TEST-NET-1: never answers
    assert reason is not None
    assert time.monotonic() - start < ogb_loader.NETWORK_PROBE_TIMEOUT_S + 3


def test_interrupted_download_folder_is_reported_not_prompted(tmp_path):
    (tmp_path / "ogbn_arxiv").mkdir()  # what a failed ogb download leaves behind
    with pytest.raises(DataError, match="RELEASE_v1.txt"):
        load_graph("ogbn-arxiv", root=tmp_path)


def test_ogb_dataset_already_in_place_loads_without_network(tmp_path, monkeypatch):
    edges, features, labels = toy_arrays()
    folder = write_ogb_folder(tmp_path / "ogbn_arxiv", edges, 12, features, labels)
    import gzip
    with gzip.open(folder / "raw" / "node_year.csv.gz", "wt") as f:  # arxiv's additional node file
        f.writelines("2020\n" for _ in range(12))
    (folder / "split" / "random").rename(folder / "split" / "time")  # arxiv's split type
    monkeypatch.setattr(ogb_loader, "_unreachable", lambda url: pytest.fail("must not touch the network"))
    graph = load_graph("ogbn-arxiv", root=tmp_path)
    assert graph.num_nodes == 12 and graph.name == "ogbn-arxiv"
