"""Where the inputs live while training: the same rows from every storage, half precision only rounding them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.feature_store import FeatureStore, resolve_feature_storage


def test_every_storage_serves_the_same_rows():
    x = np.random.default_rng(0).normal(size=(50, 6)).astype(np.float32)
    ids = torch.tensor([4, 0, 49, 4])
    expected = torch.from_numpy(x)[ids]
    for storage in ("float32", "host"):
        store = FeatureStore(x, torch.device("cpu"), storage)
        assert torch.equal(store.rows(ids), expected) and torch.equal(store.all(), torch.from_numpy(x))
    half = FeatureStore(x, torch.device("cpu"), "bfloat16")
    assert half.inputs.dtype == torch.bfloat16 and half.inputs.element_size() == 2
    torch.testing.assert_close(half.rows(ids).float(), expected, rtol=1e-2, atol=1e-2)


def test_auto_keeps_inputs_on_the_device_while_they_fit():
    x = np.zeros((1000, 100), dtype=np.float32)  # 400 kB
    assert resolve_feature_storage("auto", x, torch.device("cpu"), None) == "float32"
    assert resolve_feature_storage("auto", x, torch.device("cuda"), free_bytes=10**7) == "float32"
    assert resolve_feature_storage("auto", x, torch.device("cuda"), free_bytes=10**6) == "bfloat16"  # 200 kB < half
    assert resolve_feature_storage("auto", x, torch.device("cuda"), free_bytes=3 * 10**5) == "host"
    assert resolve_feature_storage("bfloat16", x, torch.device("cuda"), free_bytes=10**6) == "bfloat16"


def test_fits_from_half_precision_or_host_inputs_match_the_float32_fit():
    from graph_eigenmap import neural_eigenmap

    graph = "csbm:num_nodes=800,num_edges=4000,num_classes=4,num_features=16,seed=2"
    options = dict(k=6, steps=40, estimator="sampled", batch_size=128, inputs="features", device="cpu", progress=False)
    plain = neural_eigenmap(graph, **options)
    host = neural_eigenmap(graph, feature_storage="host", **options)
    half = neural_eigenmap(graph, feature_storage="bfloat16", **options)
    assert plain.config.feature_storage == "float32" and host.config.feature_storage == "host"
    np.testing.assert_allclose(host.embedding, plain.embedding, atol=1e-5)  # the same rows, moved differently
    np.testing.assert_allclose(half.rayleigh_quotients, plain.rayleigh_quotients, atol=0.02)  # rounded inputs only


def test_host_storage_needs_a_sampling_estimator():
    from graph_eigenmap import neural_eigenmap

    with pytest.raises(GraphEigenmapError, match="needs a sampling estimator"):
        neural_eigenmap("csbm:num_nodes=300,num_edges=1500,num_features=8", k=4, steps=2, estimator="full",
                        feature_storage="host", device="cpu", progress=False)
    with pytest.raises(GraphEigenmapError, match="feature_storage"):
        neural_eigenmap("csbm:num_nodes=300,num_edges=1500,num_features=8", k=4, steps=2, feature_storage="disk",
                        device="cpu", progress=False)
