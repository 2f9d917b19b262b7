"""NeuralEF training against exact eigendecompositions (CPU, seconds)."""

import shutil

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graph_eigenmap import NeuralEigenmap, neural_eigenmap
from graph_eigenmap.config import TrainConfig
from graph_eigenmap.data import from_scipy
from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.kernel import normalized_adjacency
from graph_eigenmap.metrics import captured_spectrum, principal_angle_cosines
from graph_eigenmap.recipe import resolve
from graph_eigenmap.train import train


@pytest.fixture(scope="module")
def sbm():
    """A 340-node SBM with unequal blocks: top eigenvalues 1, 0.806, 0.721, 0.620, then 0.427."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), [40, 70, 100, 130])
    probability = np.array([[.3, .04, .01, .005], [.04, .2, .03, .01], [.01, .03, .15, .02], [.005, .01, .02, .1]])
    upper = np.triu(rng.random((340, 340)) < probability[labels][:, labels], 1)
    graph = from_scipy(sp.csr_matrix((upper | upper.T).astype(float)), labels=labels)
    values, vectors = np.linalg.eigh(normalized_adjacency(graph).toarray().astype(np.float64))
    return graph, values[::-1], vectors[:, ::-1]


def test_stop_gradient_finds_the_eigenvalues_in_order(sbm):
    graph, values, vectors = sbm
    k = 4
    assert np.diff(values[: k + 1]).max() < -0.05  # distinct: the order is well defined
    result = neural_eigenmap(graph, k=k, features="identity", estimator="full", steps=400, device="cpu")
    np.testing.assert_allclose(result.eigenvalues, values[:k], rtol=0.02)
    unit = result.embedding / np.linalg.norm(result.embedding, axis=0)
    cosines = np.abs(np.sum(unit * vectors[:, :k], axis=0))
    assert cosines.min() >= 0.95, cosines
    np.testing.assert_allclose(result.rayleigh_quotients, values[:k], rtol=0.02)


def test_without_stop_gradient_the_span_is_found(sbm):
    graph, values, vectors = sbm
    k = 4
    result = neural_eigenmap(graph, k=k, features="identity", estimator="full", steps=400, stop_gradient=False, device="cpu")
    assert principal_angle_cosines(result.embedding, vectors[:, :k]).min() >= 0.99
    kernel = normalized_adjacency(graph)
    assert captured_spectrum(result.embedding, kernel, values[:k]) >= 0.995


def test_reference_alpha_copies_the_first_eigenfunction_on_a_spread_spectrum(sbm):
    """α = 0.3 is unstable here since λ_1 − λ_4 = 0.38 > 0.3 λ_1²: the objective's docstring explains."""
    graph, values, _ = sbm
    result = neural_eigenmap(graph, k=4, features="identity", estimator="full", steps=400, alpha=0.3, device="cpu")
    assert result.eigenvalues[3] > values[3] + 0.1


def test_mlp_on_features_nears_the_best_function_of_the_class():
    """Features reveal each node's block; the best block-constant functions are computed exactly."""
    import scipy.linalg

    from graph_eigenmap.data import load_graph

    graph = load_graph("csbm:num_nodes=3000,num_edges=30000,num_classes=4,num_features=16,"
                       "homophily=0.9,feature_snr=3,degree_spread=0")
    kernel = normalized_adjacency(graph).astype(np.float64)
    onehot = np.eye(4)[graph.labels]
    best = scipy.linalg.eigh(onehot.T @ (kernel @ onehot), onehot.T @ onehot, eigvals_only=True)[::-1]
    model = NeuralEigenmap(k=4, steps=150, width=64, device="cpu").fit(graph)
    assert model.rayleigh_quotients_.sum() >= 0.9 * best.sum(), (model.rayleigh_quotients_, best)
    assert model.rayleigh_quotients_[0] >= 0.95 * best[0]


def test_transform_reproduces_training_embedding():
    from graph_eigenmap.data import load_graph

    graph = load_graph("csbm:num_nodes=1000,num_edges=5000,num_features=8")
    model = NeuralEigenmap(k=4, steps=20, width=32, inputs="features", device="cpu", representation="embedding").fit(graph)  # graph-free transform
    np.testing.assert_allclose(model.transform(graph.features), model.embedding_, atol=1e-5)


def test_bad_options_are_refused():
    with pytest.raises(GraphEigenmapError, match="unknown option"):
        NeuralEigenmap(k=4, stepz=3)
    from graph_eigenmap.data import load_graph

    graph = load_graph("csbm:num_nodes=100,num_edges=300")
    with pytest.raises(GraphEigenmapError, match="`k` must be an int in \\[1, 100\\]"):
        train(graph, TrainConfig(k=0))
    with pytest.raises(GraphEigenmapError, match="`estimator`"):
        train(graph, TrainConfig(k=2, estimator="magic"))


def test_one_sided_gradient_trains_the_mlp_like_the_two_sided_one_on_the_full_graph():
    """On the full graph the two gradients are equal (objective tests), so the runs must agree."""
    from graph_eigenmap.data import load_graph

    graph = load_graph("csbm:num_nodes=500,num_edges=3000,num_features=8")
    runs = [train(graph, TrainConfig(k=4, width=32, steps=30, estimator="full", one_sided_gradient=one), progress=False)
            for one in (True, False)]
    np.testing.assert_allclose(runs[0].eigenvalues, runs[1].eigenvalues, rtol=1e-4)
    assert runs[0].config.one_sided_gradient and not runs[1].config.one_sided_gradient


def test_auto_estimator_and_the_rows_estimator_needs_the_one_sided_gradient():
    from graph_eigenmap.data import load_graph

    graph = load_graph("csbm:num_nodes=1000,num_edges=5000,num_features=8")
    cpu = torch.device("cpu")
    assert resolve(TrainConfig(batch_size=256), graph, cpu).estimator == "rows"
    assert resolve(TrainConfig(batch_size=512, one_sided_gradient=False), graph, cpu).estimator == "full"
    assert resolve(TrainConfig(batch_size=600), graph, cpu).estimator == "full"  # fewer than 2 batches of nodes
    assert resolve(TrainConfig(batch_size=256, features="identity"), graph, cpu).estimator == "full"
    with pytest.raises(GraphEigenmapError, match="one-sided"):
        resolve(TrainConfig(estimator="rows", one_sided_gradient=False), graph, cpu)


def test_rows_estimator_finds_the_mlp_eigenfunctions_like_the_full_graph():
    from graph_eigenmap.data import load_graph

    graph = load_graph("csbm:num_nodes=3000,num_edges=30000,num_classes=4,num_features=16,"
                       "homophily=0.9,feature_snr=3,degree_spread=0")
    runs = {e: neural_eigenmap(graph, k=4, steps=150, width=64, batch_size=256, estimator=e, device="cpu")
            for e in ("full", "rows")}
    np.testing.assert_allclose(runs["rows"].rayleigh_quotients, runs["full"].rayleigh_quotients, atol=0.03)


def test_one_sided_default_is_off_only_for_the_identity_table_when_sampling(sbm):
    graph, _, _ = sbm
    resolved = [resolve(TrainConfig(features=f, estimator=e), graph, torch.device("cpu")).one_sided_gradient
                for f, e in [("identity", "sampled"), ("identity", "block"), ("identity", "full")]]
    assert resolved == [False, False, True]


@pytest.mark.skipif(shutil.which("cc") is None, reason="torch.compile on a CPU needs a C compiler")
def test_compiled_network_trains_like_the_eager_one():
    from graph_eigenmap.data import load_graph
    from graph_eigenmap.inference import all_node_inputs, embed_nodes

    graph = load_graph("csbm:num_nodes=1000,num_edges=5000,num_features=8")
    runs = [train(graph, TrainConfig(k=4, width=32, steps=10, inputs="features", estimator="sampled", batch_size=128, compile=c), progress=False)
            for c in (False, True)]
    np.testing.assert_allclose([h[2] for h in runs[1].history], [h[2] for h in runs[0].history], rtol=1e-4)
    embeddings = [embed_nodes(run.model, all_node_inputs(graph, run.config))[0] for run in runs]
    np.testing.assert_allclose(embeddings[1], embeddings[0], atol=1e-4)
