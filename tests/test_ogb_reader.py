"""OGB layout through ogb's own raw readers: the same graph as ogb's NodePropPredDataset, no patching of ogb,
no prompt, no folder of links, the source never written, a download that leaves nothing behind when it fails."""

import builtins
import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import META, _write_csv_gz, toy_arrays, write_ogb_folder

from graph_eigenmap.data import load_graph, load_ogb_folder
from graph_eigenmap.data import ogb as ogb_loader
from graph_eigenmap.errors import DataError, DatasetUnavailableError


def snapshot(folder: Path) -> dict:
    """Every path below ``folder`` with its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def toy_folder(path: Path) -> Path:
    edges, features, labels = toy_arrays()
    return write_ogb_folder(path, edges, 12, features, labels)


def ogb_reference(folder: Path, tmp_path: Path):
    """ogb's own NodePropPredDataset on a copy of ``folder`` (it writes processed/ into the folder it reads)."""
    import json

    from ogb.nodeproppred import NodePropPredDataset

    copy = tmp_path / "reference" / folder.name
    shutil.copytree(folder, copy)
    (copy / "processed").mkdir()  # ogb saves there but never creates it
    meta = dict(json.loads((folder / "meta.json").read_text()), dir_path=str(copy))
    dataset = NodePropPredDataset(folder.name, root=str(copy.parent), meta_dict=meta)
    graph, labels = dataset[0]
    return graph, labels, dataset.get_idx_split()


def assert_same_as_ogb(ours, graph_dict, labels, split):
    from graph_eigenmap.data import build_graph

    expected = build_graph(graph_dict["edge_index"], graph_dict["num_nodes"], features=graph_dict["node_feat"],
                           labels=labels, split=split, name=ours.name, source=ours.source)
    assert (ours.adjacency != expected.adjacency).nnz == 0
    # ogb's dataset holds each stored edge and its reverse; we read the stored edges once and add the reverse
    stored = graph_dict["edge_index"].shape[1] // 2
    assert ours.cleaning.input_edges == stored and ours.cleaning.reverse_edges_added == stored
    assert (ours.cleaning.self_loops_dropped, ours.cleaning.duplicates_merged) == (
        expected.cleaning.self_loops_dropped // 2, expected.cleaning.duplicates_merged // 2)
    np.testing.assert_array_equal(ours.features, expected.features)
    np.testing.assert_array_equal(ours.labels, expected.labels)
    for part in ("train", "valid", "test"):
        np.testing.assert_array_equal(ours.split[part], expected.split[part])


def test_reads_like_ogbs_raw_reader_and_matches_ogbs_dataset(tmp_path, monkeypatch):
    folder = toy_folder(tmp_path / "ogbn_toy")
    calls = []
    real = ogb_loader._read_csv_layout
    monkeypatch.setattr(ogb_loader, "_read_csv_layout", lambda *a, **k: calls.append(a) or real(*a, **k))
    cache = tmp_path / "cache"
    ours = load_ogb_folder(folder, cache_dir=cache)
    assert calls == [(folder / "raw",)]
    again = load_ogb_folder(folder, cache_dir=cache)
    assert len(calls) == 1  # the cached graph: no reader, same graph
    monkeypatch.undo()
    reference = ogb_reference(folder, tmp_path)
    assert_same_as_ogb(ours, *reference)
    assert_same_as_ogb(again, *reference)


def test_csv_layout_arrays_equal_ogbs_raw_reader_on_real_data(shared_data):
    """Our file-by-file reader against ogb's ``read_csv_graph_raw`` on a real folder: the same arrays and dtypes."""
    from ogb.io.read_graph_raw import read_csv_graph_raw

    raw = shared_data / "ogb" / "ogbn_cora" / "raw"
    theirs = read_csv_graph_raw(str(raw), add_inverse_edge=False)[0]
    ours = ogb_loader._read_csv_layout(raw)
    assert ours["num_nodes"] == theirs["num_nodes"]
    for key in ("edge_index", "node_feat"):
        assert ours[key].dtype == theirs[key].dtype
        np.testing.assert_array_equal(ours[key], theirs[key])


def test_real_folder_matches_ogbs_dataset_and_is_never_written(shared_data, tmp_path):
    folder = shared_data / "ogb" / "ogbn_cora"
    before = snapshot(folder)
    ours = load_ogb_folder(folder, cache_dir=tmp_path / "cache")
    load_ogb_folder(folder, cache_dir=tmp_path / "cache")
    assert snapshot(folder) == before and not (folder / "processed").exists()
    assert_same_as_ogb(ours, *ogb_reference(folder, tmp_path))


def test_cache_holds_plain_arrays_and_no_links(tmp_path):
    folder = toy_folder(tmp_path / "ogbn_toy")
    before = snapshot(folder)
    cache = tmp_path / "cache"
    load_ogb_folder(folder, cache_dir=cache)
    entries = list(cache.rglob("*"))
    assert not [p for p in entries if p.is_symlink()]
    files = [p for p in entries if p.is_file()]
    assert {p.parent.name for p in files} == {ogb_loader.GRAPH_CACHE}  # one entry: plain .npy arrays and meta.json
    assert sorted(p.suffix for p in files) == [".json"] + [".npy"] * (len(files) - 1)
    for array in files:
        if array.suffix == ".npy":
            np.load(array, allow_pickle=False)  # pickle-free
    assert np.load(files[0].parent / "indptr.npy").shape == (13,)
    assert snapshot(folder) == before


def test_no_release_file_needed_and_no_prompt_for_a_folder(tmp_path, monkeypatch):
    folder = toy_folder(tmp_path / "ogbn_toy")
    (folder / "RELEASE_v1.txt").unlink()  # ogb's NodePropPredDataset would ask "Will you update the dataset now?"
    monkeypatch.setattr(builtins, "input", lambda *a: pytest.fail("prompted"))
    assert load_ogb_folder(folder, cache_dir=tmp_path / "cache").num_nodes == 12


def test_named_dataset_in_place_is_read_without_writing_into_it(tmp_path, monkeypatch):
    folder = toy_folder(tmp_path / "root" / "ogbn_arxiv")
    (folder / "split" / "random").rename(folder / "split" / "time")  # arxiv's split type
    before = snapshot(folder)
    monkeypatch.setattr(ogb_loader, "_unreachable", lambda url: pytest.fail("must not touch the network"))
    graph = load_graph("ogbn-arxiv", root=tmp_path / "root", cache_dir=tmp_path / "cache")
    assert graph.num_nodes == 12 and graph.name == "ogbn-arxiv"
    assert snapshot(folder) == before and not (folder / "processed").exists()


def test_cache_root_that_is_a_file_only_costs_speed(tmp_path):
    folder = toy_folder(tmp_path / "ogbn_toy")
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("x")
    for _ in range(2):
        assert load_ogb_folder(folder, cache_dir=blocker).num_nodes == 12
    assert blocker.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["cache-is-a-file", "ogbn_toy"]


def test_binary_layout_uses_ogbs_binary_reader(tmp_path):
    edges, features, labels = toy_arrays()
    folder = toy_folder(tmp_path / "ogbn_bin")
    for name in ("edge.csv.gz", "num-node-list.csv.gz", "num-edge-list.csv.gz", "node-feat.csv.gz", "node-label.csv.gz"):
        (folder / "raw" / name).unlink()
    np.savez(folder / "raw" / "data.npz", edge_index=edges.T.astype(np.int64), num_nodes_list=np.array([12]),
             num_edges_list=np.array([len(edges)]), node_feat=features.astype(np.float32))
    np.savez(folder / "raw" / "node-label.npz", node_label=labels.reshape(-1, 1).astype(np.float32))
    import json
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps(dict(meta, binary="True", add_inverse_edge="False")))
    graph = load_ogb_folder(folder, cache_dir=tmp_path / "cache")
    assert graph.num_nodes == 12 and graph.num_edges == len(edges)
    np.testing.assert_array_equal(graph.labels, labels)


@pytest.fixture
def server(tmp_path):
    """A local HTTP server over tmp_path/served: toy.zip (an OGB download), broken.zip, and nothing else."""
    served = tmp_path / "served"
    served.mkdir()
    toy_folder(tmp_path / "zipped" / "toy")
    shutil.make_archive(str(served / "toy"), "zip", root_dir=tmp_path / "zipped")
    (served / "broken.zip").write_bytes(b"PK\x03\x04 not really a zip")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _offer(monkeypatch, url: str, download_name: str = "toy"):
    meta = dict(META, url=url, download_name=download_name, version=1, **{"is hetero": "False"})
    monkeypatch.setattr(ogb_loader, "ogb_master", lambda: {"ogbn-toy": {k: str(v) for k, v in meta.items()}})


def test_download_unzips_into_the_ogb_folder_and_loads(tmp_path, server, monkeypatch):
    _offer(monkeypatch, f"{server}/toy.zip")
    root = tmp_path / "root"
    graph = load_graph("ogbn-toy", root=root, cache_dir=tmp_path / "cache")
    assert graph.num_nodes == 12 and graph.name == "ogbn-toy"
    assert sorted(os.listdir(root)) == ["ogbn_toy"]  # no zip, no staging folder
    assert (root / "ogbn_toy" / "RELEASE_v1.txt").exists()
    assert load_graph("ogbn-toy", root=root, cache_dir=tmp_path / "cache").num_edges == graph.num_edges


@pytest.mark.parametrize("name, download_name, error", [
    ("missing.zip", "toy", DatasetUnavailableError),  # 404
    ("broken.zip", "toy", DatasetUnavailableError),
    ("toy.zip", "other", DataError),  # a good zip without the folder meta names
])
def test_failed_download_leaves_nothing_behind(tmp_path, server, monkeypatch, name, download_name, error):
    _offer(monkeypatch, f"{server}/{name}", download_name)
    root = tmp_path / "root" / "deeper"
    with pytest.raises(error) as info:
        load_graph("ogbn-toy", root=root, cache_dir=tmp_path / "cache")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "root").exists() and not (tmp_path / "cache").exists()


def test_papers100m_layout_by_name_binary_with_time_split_and_unlabelled_nodes(tmp_path):
    """ogbn-papers100M's own layout, as ogb downloads it: binary raw/ files, split/time, NaN labels off the split."""
    from graph_eigenmap.data import load_graph

    folder = tmp_path / "root" / "ogbn_papers100M"
    (folder / "raw").mkdir(parents=True)
    (folder / "split" / "time").mkdir(parents=True)
    edges = np.array([[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [1, 0]]).T  # directed citations; 0-1 both ways
    np.savez(folder / "raw" / "data.npz", edge_index=edges.astype(np.int64), num_nodes_list=np.array([7]),
             num_edges_list=np.array([edges.shape[1]]), node_feat=np.arange(7 * 3, dtype=np.float32).reshape(7, 3))
    labels = np.array([[3.0], [np.nan], [171.0], [0.0], [np.nan], [5.0], [np.nan]], dtype=np.float32)
    np.savez(folder / "raw" / "node-label.npz", node_label=labels)
    for part, ids in (("train", [0, 2]), ("valid", [3]), ("test", [5])):
        _write_csv_gz(folder / "split" / "time" / f"{part}.csv.gz", ids)
    (folder / "RELEASE_v1.txt").write_text("")
    graph = load_graph("ogbn-papers100M", root=tmp_path / "root", cache_dir=tmp_path / "cache")
    assert (graph.num_nodes, graph.num_edges, graph.num_features) == (7, 5, 3)
    assert graph.cleaning.reverse_edges_added == 4 and graph.cleaning.duplicates_merged == 0
    np.testing.assert_array_equal(graph.labels, [3, -1, 171, 0, -1, 5, -1])  # NaN: no label
    assert {part: list(ids) for part, ids in graph.split.items()} == {"train": [0, 2], "valid": [3], "test": [5]}
    assert graph.degrees[6] == 0
