"""Outputs too large to hold are written straight to their files: the same files and results as in memory."""

from __future__ import annotations

import functools

import numpy as np
import pytest


@pytest.mark.parametrize("features", ["input", "identity"])
def test_streamed_outputs_equal_the_in_memory_ones(tmp_path, monkeypatch, features):
    import graph_eigenmap.fit_outputs as api
    import graph_eigenmap.inference as inference
    from graph_eigenmap import load_graph, neural_eigenmap

    graph = load_graph("csbm:num_nodes=600,num_edges=3000,num_classes=4,num_features=16,seed=3")
    options = dict(k=12, steps=40, device="cpu", progress=False, features=features)  # 40 steps: the last sort runs
    monkeypatch.setattr(inference, "STREAM_OUTPUTS_BYTES", 10**12)  # held in memory (by default every fit streams)
    held = neural_eigenmap(graph, out_dir=tmp_path / "held", **options)
    monkeypatch.setattr(inference, "STREAM_OUTPUTS_BYTES", 1000)
    monkeypatch.setattr(api, "embed_to_files", functools.partial(inference.embed_to_files, chunk_size=97))  # 7 chunks
    streamed = neural_eigenmap(graph, out_dir=tmp_path / "streamed", **options)
    assert streamed.metadata["outputs_streamed"] and not held.metadata["outputs_streamed"]
    assert streamed.metadata["final_sort"] == held.metadata["final_sort"]
    if features == "input":
        assert held.metadata["final_sort"] is not None  # the in-place column permutation is exercised
    for name in ("embeddings.npy", "backbone.npy"):
        np.testing.assert_allclose(np.load(tmp_path / "streamed" / name), np.load(tmp_path / "held" / name), atol=1e-6)
    np.testing.assert_allclose(streamed.embedding, held.embedding, atol=1e-6)
    np.testing.assert_allclose(streamed.rayleigh_quotients, held.rayleigh_quotients, atol=1e-6)
    assert not [p.name for p in (tmp_path / "streamed").iterdir() if p.name.startswith(".")]


def test_a_failure_while_streaming_leaves_no_partial_output(tmp_path, monkeypatch):
    import graph_eigenmap.fit_outputs as api
    import graph_eigenmap.inference as inference
    from graph_eigenmap import load_graph, neural_eigenmap

    monkeypatch.setattr(inference, "STREAM_OUTPUTS_BYTES", 1000)

    def broken(*args, **kwargs):
        raise RuntimeError("disk gone")

    monkeypatch.setattr(api, "rayleigh_quotients_by_columns", broken)
    with pytest.raises(RuntimeError, match="disk gone"):
        neural_eigenmap(load_graph("csbm:num_nodes=300,num_edges=1500,num_features=8"), k=4, steps=5, device="cpu",
                        out_dir=tmp_path, progress=False)
    assert not [p.name for p in tmp_path.iterdir() if p.suffix == ".npy" or p.name.endswith(".tmp")]


def test_row_file_writes_blocks_of_rows_into_a_valid_npy(tmp_path):
    from graph_eigenmap.inference import RowFile

    rows = np.random.default_rng(0).normal(size=(1000, 7)).astype(np.float32)
    file = RowFile(tmp_path / "a.npy", (1000, 7))
    for begin in (600, 0, 300):  # any order
        file.write(begin, rows[begin:begin + 300])
    file.write(900, rows[900:].astype(np.float64))  # cast to float32 on the way
    mapped = file.close()
    assert np.array_equal(np.load(tmp_path / "a.npy"), rows) and np.array_equal(mapped, rows)
    again = RowFile(tmp_path / "a.npy", (1000, 7), create=False)
    again.write(10, np.zeros((2, 7)))
    assert np.array_equal(again.close()[10:12], np.zeros((2, 7))) and np.array_equal(np.load(tmp_path / "a.npy")[12:], rows[12:])
    with pytest.raises(ValueError, match="not float32"):
        RowFile(tmp_path / "a.npy", (999, 7), create=False)

