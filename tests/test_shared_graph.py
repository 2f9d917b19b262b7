"""One copy per host (issue 29): the ranks of ``--nproc`` map the launcher's files, and the fit's large arrays are
memory-mapped or computed in blocks, with the results of the paths that held them in memory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

GRAPH = "csbm:num_nodes=1500,num_edges=9000,num_classes=4,num_features=16,seed=4"
OPTIONS = dict(k=6, steps=20, estimator="sampled", batch_size=128, width=32, inputs="propagated:2", device="cpu",
               progress=False, checkpoint_every=0)
SHARED_ARRAYS = ("indptr.npy", "indices.npy", "data.npy", "features.npy", "inputs.npy")


def _own_copy_rank(ranks, out: str) -> None:
    """The path before issue 29: every rank loads the graph and propagates its features itself."""
    from graph_eigenmap import load_graph, neural_eigenmap

    torch.set_num_threads(1)
    neural_eigenmap(load_graph(GRAPH), ranks=ranks, out_dir=out, **OPTIONS)


def _mapping_rank(ranks, folder: str, out: str, rank_options: dict) -> None:
    """A rank of ``neural_eigenmap_on_processes`` (``api._fit_rank``), which also reports what it maps."""
    from graph_eigenmap import neural_eigenmap
    from graph_eigenmap.shared_graph import read_shared_graph

    torch.set_num_threads(1)
    graph = read_shared_graph(Path(folder))
    neural_eigenmap(graph, ranks=ranks, out_dir=out, **rank_options)
    mapped = {line.split()[-1] for line in Path("/proc/self/maps").read_text().splitlines()
              if line.split()[-1].startswith(folder)}
    inputs = graph.extra["inputs:propagated:2"].value.features
    arrays = dict(indices=graph.adjacency.indices, features=graph.features, inputs=inputs)
    report = dict(mapped=sorted(mapped), modes={name: _map_mode(array) for name, array in arrays.items()})
    Path(out, f"rank{ranks.rank}.json").write_text(json.dumps(report))


def _map_mode(array) -> str | None:
    """The mode of the memory map ``array`` is a view of (scipy keeps a plain view of the map), None for none."""
    while array is not None:
        if isinstance(array, np.memmap):
            return array.mode
        array = getattr(array, "base", None)
    return None


def test_the_ranks_map_the_same_files_and_find_what_ranks_with_their_own_copy_find(tmp_path):
    from graph_eigenmap import distributed
    from graph_eigenmap.shared_graph import share_graph

    distributed.launch(2, _own_copy_rank, str(tmp_path / "own"))
    folder = tmp_path / "mapped" / ".shared"
    (tmp_path / "mapped").mkdir()
    rank_options = share_graph(GRAPH, {}, OPTIONS, folder)
    distributed.launch(2, _mapping_rank, str(folder), str(tmp_path / "mapped"), rank_options)

    reports = [json.loads((tmp_path / "mapped" / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert reports[0]["mapped"] == reports[1]["mapped"]  # the same files, in both processes
    assert {Path(path).name for path in reports[0]["mapped"]} >= set(SHARED_ARRAYS)
    assert all(report["modes"] == dict(indices="r", features="r", inputs="r") for report in reports)

    own, mapped = (json.loads((tmp_path / name / "metadata.json").read_text()) for name in ("own", "mapped"))
    assert mapped["processes"] == own["processes"] == 2
    np.testing.assert_allclose(mapped["rayleigh_quotients"], own["rayleigh_quotients"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(mapped["eigenvalues"], own["eigenvalues"], rtol=0, atol=1e-6)
    for name in ("embeddings.npy", "backbone.npy"):
        np.testing.assert_allclose(np.load(tmp_path / "mapped" / name), np.load(tmp_path / "own" / name), atol=1e-6)
    known = np.load(tmp_path / "mapped" / "known_inputs.npy")
    assert np.array_equal(known, np.load(tmp_path / "own" / "known_inputs.npy"))
    assert os.stat(tmp_path / "mapped" / "known_inputs.npy").st_ino == os.stat(folder / "inputs.npy").st_ino  # a link


def test_a_fit_on_processes_removes_its_shared_folder_and_keeps_its_inputs(tmp_path):
    from graph_eigenmap.api import neural_eigenmap_on_processes

    neural_eigenmap_on_processes(2, GRAPH, out_dir=tmp_path / "run", **dict(OPTIONS, steps=5, inputs="auto"))
    names = sorted(path.name for path in (tmp_path / "run").iterdir())
    assert not [name for name in names if name.startswith(".")]  # the shared folder and temporary files are gone
    assert "known_inputs.npy" in names and np.load(tmp_path / "run" / "known_inputs.npy").shape == (1500, 64)
    assert json.loads((tmp_path / "run" / "metadata.json").read_text())["inputs"] == "propagated:3"


def test_propagated_inputs_mapped_from_a_file_equal_those_in_memory(tmp_path):
    from graph_eigenmap import load_graph
    from graph_eigenmap.files import save_array
    from graph_eigenmap.inputs import model_input_graph, propagate

    graph = load_graph(GRAPH)
    held = propagate(graph.features, graph.adjacency, 2)
    assert np.array_equal(propagate(graph.features, graph.adjacency, 2, chunk_columns=3), held)  # column blocks
    rows = model_input_graph(load_graph(GRAPH), "propagated:2", file=tmp_path / "rows.npy").features
    assert isinstance(rows, np.memmap) and rows.mode == "r" and np.array_equal(rows, held)
    save_array(tmp_path / "linked.npy", rows)  # the mapped file itself, linked
    assert os.stat(tmp_path / "linked.npy").st_ino == os.stat(tmp_path / "rows.npy").st_ino
    save_array(tmp_path / "copied.npy", rows[:10])  # part of it: written
    assert os.stat(tmp_path / "copied.npy").st_ino != os.stat(tmp_path / "rows.npy").st_ino
    assert np.array_equal(np.load(tmp_path / "copied.npy"), held[:10])


def test_statistics_and_smoothness_in_blocks_equal_those_in_one_piece(monkeypatch):
    import graph_eigenmap.kernel as kernel
    from graph_eigenmap import load_graph
    from graph_eigenmap.scaling import dense_column_statistics

    x = torch.randn(3000, 7, dtype=torch.float64) * 3 + 1
    x[:, 2], x[5, 3] = 0, 0
    whole = dense_column_statistics(x.float())
    blocked = dense_column_statistics(x.float(), block_elements=500)
    for one, other in zip(whole[:3], blocked[:3]):
        torch.testing.assert_close(one, other, rtol=1e-12, atol=1e-12)
    assert whole[3:] == blocked[3:]
    torch.testing.assert_close(whole[1], x.float().double().std(0, unbiased=False))  # against torch in one piece

    graph = load_graph("csbm:num_nodes=30000,num_edges=150000,num_classes=4,num_features=16,seed=1")
    one_piece = kernel.feature_smoothness(graph)
    monkeypatch.setattr(kernel, "SMOOTHNESS_BLOCK_BYTES", 100_000)  # 30,000 x 16 float32: 1.9 MB, in blocks
    assert kernel.feature_smoothness(graph) == pytest.approx(one_piece, rel=1e-4)


def test_the_normalized_adjacency_in_blocks_is_the_one_in_one_piece(monkeypatch):
    import scipy.sparse as sp

    import graph_eigenmap.kernel as kernel
    from graph_eigenmap import load_graph

    adjacency = load_graph("csbm:num_nodes=800,num_edges=4000,seed=2").adjacency.copy()
    adjacency.data = np.random.default_rng(0).random(adjacency.nnz).astype(np.float32) + 0.5
    adjacency = (adjacency + adjacency.T).tocsr()  # weighted, symmetric
    for self_loops in (False, True):
        with_loops = adjacency + sp.eye(800, dtype=np.float32, format="csr") if self_loops else adjacency
        degrees = np.asarray(with_loops.sum(axis=1), dtype=np.float64).ravel()
        inv_sqrt = np.where(degrees > 0, 1.0 / np.sqrt(np.maximum(degrees, 1e-300)), 0.0)  # isolated nodes: 0
        expected = (sp.diags(inv_sqrt) @ with_loops.astype(np.float64) @ sp.diags(inv_sqrt)).astype(np.float32)
        monkeypatch.setattr(kernel, "NORMALIZE_BLOCK_ENTRIES", 333)
        blocked = kernel.normalized_adjacency(adjacency, self_loops=self_loops)
        monkeypatch.setattr(kernel, "NORMALIZE_BLOCK_ENTRIES", 1 << 30)
        whole = kernel.normalized_adjacency(adjacency, self_loops=self_loops)
        assert np.array_equal(blocked.data, whole.data) and np.array_equal(blocked.indices, whole.indices)
        np.testing.assert_allclose(whole.toarray(), expected.toarray(), rtol=1e-6, atol=0)
    assert np.shares_memory(kernel.normalized_adjacency(adjacency).indices, adjacency.indices)  # no copy of it


@pytest.mark.parametrize("blocked", [False, True])
def test_a_large_synthetic_graph_is_generated_into_files_as_in_memory(tmp_path, monkeypatch, blocked):
    import graph_eigenmap.data as data
    import graph_eigenmap.data.synthetic as synthetic

    spec = "csbm:num_nodes=3000,num_edges=20000,num_classes=6,num_features=16,seed=4"
    if blocked:  # the row blocks of papers100M's shape: column ids and features written block by block
        monkeypatch.setattr(synthetic, "CSR_BLOCK_ENTRIES", 999)
        monkeypatch.setattr(synthetic, "FEATURE_BLOCK_ELEMENTS", 1000)
    held = data.load_graph(spec, arrays_dir=tmp_path / "small")  # below FILE_BACKED_MIN_BYTES: in memory
    assert not (tmp_path / "small").exists() and not isinstance(held.features, np.memmap)
    monkeypatch.setattr(data, "FILE_BACKED_MIN_BYTES", 0)
    mapped = data.load_graph(spec, arrays_dir=tmp_path / "large")
    assert sorted(p.name for p in (tmp_path / "large").iterdir()) == ["data.npy", "features.npy", "indices.npy",
                                                                      "indptr.npy"]
    for array in (mapped.features, mapped.adjacency.indices, mapped.adjacency.data, mapped.adjacency.indptr):
        assert _map_mode(array) == "r"
    assert mapped.adjacency.indices.dtype == np.int32
    assert np.array_equal(mapped.features, held.features) and (mapped.adjacency != held.adjacency).nnz == 0
    assert np.array_equal(mapped.adjacency.indices, held.adjacency.indices)
    assert np.array_equal(mapped.labels, held.labels) and mapped.extra["spec"] == spec


def _fit(out: Path, *extra: str, file_backed: bool = False) -> None:
    import subprocess
    import sys

    env = dict(os.environ, PYTHONWARNINGS="ignore")
    if file_backed:
        env["GRAPH_EIGENMAP_FILE_BACKED_MIN_BYTES"] = "0"
    command = [sys.executable, "-c", "from graph_eigenmap_cli.main import main; main()", "fit", "-d", GRAPH, "--out",
               str(out), "--k", "6", "--steps", "10", "--estimator", "sampled", "--batch-size", "128", "--width", "32",
               "--device", "cpu", "--quiet", *extra]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # generation folders and the like are gone


def test_the_command_fits_a_graph_generated_into_files_as_one_held_in_memory(tmp_path):
    _fit(tmp_path / "held")
    _fit(tmp_path / "files", file_backed=True)
    _fit(tmp_path / "files2", "--nproc", "2", file_backed=True)
    for name in ("embeddings.npy", "known_inputs.npy"):
        assert np.array_equal(np.load(tmp_path / "files" / name), np.load(tmp_path / "held" / name))
    assert json.loads((tmp_path / "files2" / "metadata.json").read_text())["processes"] == 2
