"""The code paths that only papers100M-sized graphs take, run on small graphs with their thresholds lowered.

Each is checked against the path that smaller graphs take: the blocked generator's CSR against one sort,
label-propagation components against scipy, the row-block kernel against the torch CSR kernel, the lean
final measurement of a sampled fit against the default one, subsampled input statistics, the choice of
feature storage and inputs, and the backbone left out of a fit's outputs.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components


def _random_adjacency(n: int, m: int, seed: int, weighted: bool = False) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(0, n, m), rng.integers(0, n, m)
    values = rng.uniform(0.5, 2.0, m) if weighted else np.ones(m)
    matrix = sp.coo_matrix((values, (rows, cols)), shape=(n, n)).tocsr()
    matrix = matrix.maximum(matrix.T).tocsr() if weighted else ((matrix + matrix.T) > 0).astype(np.float32).tocsr()
    matrix.setdiag(0)
    matrix.eliminate_zeros()
    return matrix.astype(np.float32)


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    pairs = set(zip(a.tolist(), b.tolist()))
    return len(pairs) == len(set(a.tolist())) == len(set(b.tolist()))


@pytest.mark.parametrize("n, m", [(1000, 600), (3000, 9000), (5000, 2500)])
def test_components_by_propagation_match_scipy(n, m):
    from graph_eigenmap.data.components import components_by_propagation

    adjacency = _random_adjacency(n, m, seed=n)
    ours = components_by_propagation(adjacency, block_entries=257)  # many blocks of rows
    reference = connected_components(adjacency, directed=False)[1]
    assert _same_partition(ours, reference)
    assert ours.max() + 1 == len(np.unique(reference))
    first_nodes = [np.flatnonzero(ours == c)[0] for c in range(ours.max() + 1)]
    assert first_nodes == sorted(first_nodes)  # numbered by smallest node id


def test_components_by_propagation_on_a_long_path():
    from graph_eigenmap.data.components import components_by_propagation

    n = 4000  # diameter 3999 in one component, plus a separate pair and an isolated node
    path = sp.diags([np.ones(n - 1), np.ones(n - 1)], [1, -1], format="csr")
    adjacency = sp.block_diag([path, sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 0.0]])), sp.csr_matrix((1, 1))]).tocsr()
    labels = components_by_propagation(adjacency)
    assert labels[:n].tolist() == [0] * n and labels[n:].tolist() == [1, 1, 2]


def test_components_of_a_graph_beyond_scipy_use_propagation(monkeypatch):
    import graph_eigenmap.data.components as graph_module

    adjacency = _random_adjacency(2000, 1500, seed=1)
    reference = graph_module.components(adjacency)
    monkeypatch.setattr(graph_module, "SCIPY_COMPONENTS_MAX_ENTRIES", 10)
    import graph_eigenmap.data.components as components_module

    calls = []
    original = components_module.components_by_propagation
    monkeypatch.setattr(components_module, "components_by_propagation", lambda *a, **k: calls.append(1) or original(*a, **k))
    assert _same_partition(graph_module.components(adjacency), reference) and calls


def test_blocked_generation_builds_the_same_csr_and_valid_features(monkeypatch):
    import graph_eigenmap.data.synthetic as synthetic

    labels = torch.randint(6, (3000,), generator=torch.Generator().manual_seed(0))
    sampler = synthetic._ClassSampler(labels, 6, 1.0, torch.Generator().manual_seed(1))
    keys = synthetic._distinct_edges(sampler, 3000, 20000, 0.8, torch.Generator().manual_seed(2))
    direct = synthetic._symmetric_csr(keys, 3000)
    monkeypatch.setattr(synthetic, "CSR_BLOCK_ENTRIES", 999)
    monkeypatch.setattr(synthetic, "EDGE_DRAW_BLOCK", 777)
    blocked = synthetic._symmetric_csr(keys, 3000)
    assert (blocked != direct).nnz == 0 and blocked.nnz == 40000
    assert np.array_equal(blocked.indptr, direct.indptr) and np.array_equal(blocked.indices, direct.indices)

    monkeypatch.setattr(synthetic, "FEATURE_BLOCK_ELEMENTS", 1000)
    graph = synthetic.csbm(3000, 20000, 6, 16, seed=4)
    adjacency = graph.adjacency
    assert graph.num_edges == 20000 and abs(adjacency - adjacency.T).sum() == 0 and adjacency.diagonal().sum() == 0
    assert graph.features.shape == (3000, 16) and graph.features.dtype == np.float32
    centred = graph.features - graph.features.mean(0)
    assert 0.9 < centred.std() < 1.2  # unit noise around the class means: each block drew its own noise
    class_means = np.stack([graph.features[graph.labels == c].mean(0) for c in range(6)])
    assert np.linalg.norm(class_means - class_means.mean(0), axis=1).mean() > 0.8  # the means were added


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("shift", [False, True])
def test_row_block_kernel_equals_the_csr_kernel(weighted, shift):
    from graph_eigenmap.estimators import _GraphOnDevice
    from graph_eigenmap.kernel import (
        DeflatedKernel,
        RowBlockKernel,
        normalized_adjacency,
        to_torch_csr,
        trivial_eigenvectors,
    )

    adjacency = _random_adjacency(1500, 2000, seed=7, weighted=weighted)  # isolated nodes and several components
    x = torch.randn(1500, 5, generator=torch.Generator().manual_seed(0))
    reference = to_torch_csr(normalized_adjacency(adjacency, shift=shift))
    graph = _GraphOnDevice(adjacency, "cpu")
    assert (graph.weights is None) == (not weighted)
    torch.testing.assert_close(graph.kernel(shift=shift) @ x, reference @ x, atol=1e-5, rtol=1e-5)
    lean = RowBlockKernel(graph.indptr, graph.indices, graph.weights, graph.inv_sqrt_degree, shift=shift,
                          block_entries=301)
    assert len(lean.blocks) > 5
    torch.testing.assert_close(lean @ x, reference @ x, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(lean @ x[:, 0], (reference @ x)[:, 0], atol=1e-5, rtol=1e-5)
    trivial = trivial_eigenvectors(adjacency)
    torch.testing.assert_close(DeflatedKernel(lean, trivial) @ x, DeflatedKernel(reference, trivial) @ x,
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kernel", ["adjacency", "nontrivial"])
def test_a_sampled_fit_measured_with_the_lean_kernel_matches(monkeypatch, kernel):
    import graph_eigenmap.train as train_module
    from graph_eigenmap import load_graph, neural_eigenmap
    from graph_eigenmap.kernel import RowBlockKernel

    graph = load_graph("csbm:num_nodes=800,num_edges=3000,num_classes=4,num_features=12,seed=2")
    options = dict(k=6, steps=30, device="cpu", progress=False, estimator="sampled", batch_size=128, kernel=kernel,
                   rayleigh_ritz=True, width=32)
    default = neural_eigenmap(graph, **options)
    monkeypatch.setattr(train_module, "ROW_BLOCK_KERNEL_MIN_ENTRIES", 0)
    seen = []
    original = train_module._measuring_kernel
    monkeypatch.setattr(train_module, "_measuring_kernel", lambda *a: seen.append(original(*a)) or seen[-1])
    lean = neural_eigenmap(graph, **options)
    measuring = seen[0].kernel if kernel == "nontrivial" else seen[0]
    assert isinstance(measuring, RowBlockKernel)
    np.testing.assert_allclose(lean.rayleigh_quotients, default.rayleigh_quotients, atol=1e-5)
    np.testing.assert_allclose(lean.eigenvalues, default.eigenvalues, atol=1e-5)  # the Rayleigh–Ritz head too


def test_input_statistics_read_a_uniform_subsample_of_large_inputs():
    from graph_eigenmap.models import MLPBackbone, statistics_rows

    x = torch.randn(5000, 3, generator=torch.Generator().manual_seed(0)) * torch.tensor([1.0, 2.0, 3.0]) + 5
    assert statistics_rows(x) is x
    picked = statistics_rows(x, max_rows=1000)
    assert picked.shape == (1000, 3)
    assert torch.equal(picked, x[torch.isin(x[:, 0], picked[:, 0])])  # distinct rows of x, in id order
    assert torch.equal(statistics_rows(x, max_rows=1000), picked)  # seeded
    torch.testing.assert_close(picked.mean(0), x.mean(0), atol=0.3, rtol=0)

    import graph_eigenmap.models as models

    backbone = MLPBackbone(3, 8, 1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(models, "STATISTICS_MAX_ROWS", 1000)
        backbone.fit_standardization(x)
    torch.testing.assert_close(backbone.input_mean, picked.double().mean(0).float())
    torch.testing.assert_close(backbone.input_scale, picked.double().std(0, unbiased=False).reciprocal().float())


def test_feature_storage_auto_takes_bfloat16_when_float32_does_not_fit():
    from graph_eigenmap.feature_store import resolve_feature_storage

    features = np.zeros((1000, 10), dtype=np.float32)  # 40,000 bytes as float32, 20,000 as bfloat16
    cuda = torch.device("cuda")
    assert resolve_feature_storage("auto", features, cuda, 200_000) == "float32"
    assert resolve_feature_storage("auto", features, cuda, 100_000) == "bfloat16"
    assert resolve_feature_storage("auto", features, cuda, 30_000) == "host"
    assert resolve_feature_storage("auto", features, torch.device("cpu"), 10) == "float32"


def test_feature_store_half_precision_rows_equal_the_rounded_features():
    from graph_eigenmap.feature_store import FeatureStore
    from graph_eigenmap.transfer import to_device

    features = np.random.default_rng(0).normal(size=(300, 7)).astype(np.float32)
    store = FeatureStore(features, torch.device("cpu"), "bfloat16")
    ids = torch.tensor([5, 0, 299, 5])
    assert store.rows(ids).dtype == torch.bfloat16
    torch.testing.assert_close(store.rows(ids), torch.from_numpy(features[ids.numpy()]).bfloat16())
    assert torch.equal(to_device(features, "cpu"), torch.from_numpy(features))


def test_inputs_auto_are_the_features_when_their_propagation_would_not_fit(monkeypatch):
    import graph_eigenmap.recipe as config_module
    from graph_eigenmap import load_graph
    from graph_eigenmap.config import TrainConfig
    from graph_eigenmap.recipe import resolve

    graph = load_graph("csbm:num_nodes=500,num_edges=2000,num_features=10")  # propagated:3: 500 x 40 x 4 = 80,000 bytes
    cpu = torch.device("cpu")
    monkeypatch.setattr(config_module, "host_available_memory", lambda: 400_000)
    assert resolve(TrainConfig(steps=1), graph, cpu).inputs == "propagated:3"
    monkeypatch.setattr(config_module, "host_available_memory", lambda: 300_000)
    assert resolve(TrainConfig(steps=1), graph, cpu).inputs == "features"
    assert resolve(TrainConfig(steps=1, inputs="propagated:3"), graph, cpu).inputs == "propagated:3"  # asked: kept


def test_generation_device(monkeypatch):
    from graph_eigenmap.data import generation_device

    cuda = torch.device("cuda")
    assert generation_device("csbm-papers100m", cuda) == cuda
    assert generation_device("csbm-papers100m", torch.device("cpu")) == "cpu"
    assert generation_device("csbm-products", cuda) == "cpu"  # stays the graph every earlier result used
    assert generation_device("csbm:num_edges=300000000,num_nodes=100000000", cuda) == cuda
    assert generation_device("../shared/data/ogb/ogbn_cora", cuda) == "cpu"
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert generation_device("csbm-papers100m", cuda) == torch.device("cuda", 3)


def test_a_fit_leaves_out_a_backbone_too_large_to_write(tmp_path, monkeypatch, capsys):
    import graph_eigenmap.fit_outputs as api
    import graph_eigenmap.inference as inference
    from graph_eigenmap import load_graph, neural_eigenmap

    graph = load_graph("csbm:num_nodes=600,num_edges=3000,num_classes=4,num_features=16,seed=3")
    options = dict(k=4, steps=10, device="cpu", progress=False, width=32)
    monkeypatch.setattr(api, "BACKBONE_MAX_BYTES", 1000)
    monkeypatch.setattr(inference, "STREAM_OUTPUTS_BYTES", 1000)
    monkeypatch.setattr(api, "embed_to_files", functools.partial(inference.embed_to_files, chunk_size=97))
    streamed = neural_eigenmap(graph, out_dir=tmp_path / "streamed", **options)
    assert "backbone.npy not written" in capsys.readouterr().err
    assert not (tmp_path / "streamed" / "backbone.npy").exists() and streamed.backbone is None
    assert streamed.metadata["backbone_saved"] is False and (tmp_path / "streamed" / "embeddings.npy").exists()
    assert not [p.name for p in (tmp_path / "streamed").iterdir() if p.name.startswith(".")]
    forced = neural_eigenmap(graph, out_dir=tmp_path / "forced", save_backbone=True, **options)
    assert np.load(tmp_path / "forced" / "backbone.npy").shape == (600, 32) and forced.metadata["backbone_saved"]
    np.testing.assert_allclose(np.load(tmp_path / "forced" / "embeddings.npy"), streamed.embedding, atol=1e-6)
    monkeypatch.setattr(inference, "STREAM_OUTPUTS_BYTES", 10**12)
    held = neural_eigenmap(graph, out_dir=tmp_path / "held", save_backbone=False, **options)
    assert not (tmp_path / "held" / "backbone.npy").exists() and held.backbone is not None  # in memory all the same
    history = held.metadata["history"]
    assert [entry[0] for entry in history] == [10] and np.isfinite(history[0][2])


def test_row_sums_in_blocks_equal_scipy():
    from graph_eigenmap.kernel import row_sums

    matrix = sp.random(3000, 3000, density=0.01, format="csr", random_state=0, dtype=np.float32)
    matrix[5] = 0  # an empty row
    np.testing.assert_allclose(row_sums(matrix, block_entries=1000), np.asarray(matrix.astype(np.float64).sum(1)).ravel(),
                               rtol=0, atol=1e-12)


def test_streamed_outputs_measured_and_sorted_from_the_device_copy(tmp_path, monkeypatch):
    import graph_eigenmap.fit_outputs as api
    import graph_eigenmap.inference as inference
    from graph_eigenmap import load_graph, neural_eigenmap

    graph = load_graph("csbm:num_nodes=600,num_edges=3000,num_classes=4,num_features=16,seed=3")
    options = dict(k=12, steps=40, device="cpu", progress=False)  # 40 steps: the last sort runs
    monkeypatch.setattr(inference, "STREAM_OUTPUTS_BYTES", 10**12)  # held in memory (by default every fit streams)
    held = neural_eigenmap(graph, out_dir=tmp_path / "held", **options)
    monkeypatch.setattr(inference, "STREAM_OUTPUTS_BYTES", 1000)
    monkeypatch.setattr(api, "keeps_outputs_on_device", lambda *args: True)
    monkeypatch.setattr(api, "embed_to_files", functools.partial(inference.embed_to_files, chunk_size=97))
    kept = neural_eigenmap(graph, out_dir=tmp_path / "kept", **options)
    assert kept.metadata["outputs_streamed"] and held.metadata["final_sort"] is not None
    assert kept.metadata["final_sort"] == held.metadata["final_sort"]
    np.testing.assert_allclose(np.load(tmp_path / "kept" / "embeddings.npy"), held.embedding, atol=1e-6)
    np.testing.assert_allclose(kept.rayleigh_quotients, held.rayleigh_quotients, atol=1e-6)


def test_the_surplus_of_a_large_draw_is_dropped_uniformly(monkeypatch):
    import graph_eigenmap.data.synthetic as synthetic

    gen = torch.Generator().manual_seed(0)
    keep = synthetic._keep_mask(1000, 100, gen, "cpu")
    assert keep.dtype == torch.bool and int((~keep).sum()) == 100
    dropped = torch.zeros(1000)
    for _ in range(400):
        dropped += ~synthetic._keep_mask(1000, 100, gen, "cpu")
    assert abs(dropped.mean().item() - 40) < 1e-9 and dropped.std().item() < 12  # each position about 40 of 400 times
    monkeypatch.setattr(synthetic, "RANDPERM_MAX", 100)
    graph = synthetic.csbm(2000, 10000, 4, 8, seed=1)
    assert graph.num_edges == 10000 and graph.adjacency.has_sorted_indices


def test_row_blocks_cover_every_row_once_with_bounded_entries():
    from graph_eigenmap.data.sparse import row_blocks

    indptr = np.array([0, 0, 0, 5, 6, 20, 21])  # empty rows first, one row of 14 entries
    assert row_blocks(indptr, 4) == [(0, 2), (2, 4), (4, 5), (5, 6)]
    assert row_blocks(np.array([0, 0]), 4) == [(0, 1)] and row_blocks(np.array([0, 3, 3]), 100) == [(0, 2)]
    rng = np.random.default_rng(0)
    indptr = np.r_[0, np.cumsum(rng.integers(0, 9, 500))]
    blocks = row_blocks(indptr, 37)
    assert blocks[0][0] == 0 and blocks[-1][1] == 500 and all(a[1] == b[0] for a, b in zip(blocks, blocks[1:]))
    assert max(indptr[b] - indptr[a] for a, b in blocks) <= 37 + 8  # the block's entries plus one straddling row
