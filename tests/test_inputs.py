"""Propagated inputs [X, ÂX, …, Â^K X]: exact values, new nodes from their edges, the fit and embed paths."""

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from graph_eigenmap import NeuralEigenmap
from graph_eigenmap.data import load_graph
from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.inputs import InputSpec, gcn_degrees, parse_inputs, propagate, propagate_new_nodes, reduce_features
from graph_eigenmap.kernel import normalized_adjacency
from graph_eigenmap_cli.main import app

SPEC = "csbm:num_nodes=600,num_edges=3000,num_classes=3,num_features=6,degree_spread=1"


@pytest.fixture(scope="module")
def graph():
    return load_graph(SPEC)


def _new_node_edges(graph, nodes):
    """Each of ``nodes`` as a new node (0..m-1) with its edges to the training graph, [2, E]."""
    rows = [np.stack([np.full(len(neighbours), i), neighbours])
            for i, neighbours in enumerate(graph.adjacency[nodes].tolil().rows)]
    return np.hstack(rows).astype(np.int64)


def test_propagation_equals_the_dense_powers(graph):
    a_hat = normalized_adjacency(graph, self_loops=True).toarray().astype(np.float64)
    x = graph.features.astype(np.float64)
    expected = np.hstack([x, a_hat @ x, a_hat @ a_hat @ x])
    np.testing.assert_allclose(propagate(graph.features, graph.adjacency, 2, chunk_columns=4), expected, atol=1e-5)


def test_new_nodes_given_their_own_edges_reproduce_their_training_rows(graph):
    known = propagate(graph.features, graph.adjacency, 3)
    nodes = np.array([0, 17, 250, 599])
    rows = propagate_new_nodes(graph.features[nodes], _new_node_edges(graph, nodes), known,
                               gcn_degrees(graph.adjacency), 3)
    np.testing.assert_allclose(rows, known[nodes], atol=1e-5)
    # one edge missing changes the row: the check can tell
    edges = _new_node_edges(graph, nodes)[:, 1:]
    changed = propagate_new_nodes(graph.features[nodes], edges, known, gcn_degrees(graph.adjacency), 3)
    assert not np.allclose(changed[0], known[nodes[0]], atol=1e-3)


def test_transform_with_edges_reproduces_the_embedding(graph):
    model = NeuralEigenmap(k=4, steps=30, width=32, inputs="propagated:2", device="cpu", representation="embedding").fit(graph)
    assert model.model_.backbone.in_features == 3 * graph.num_features
    nodes = np.array([3, 100, 420])
    embedded = model.transform(graph.features[nodes], edges=_new_node_edges(graph, nodes))
    np.testing.assert_allclose(embedded, model.embedding_[nodes], atol=1e-4)
    with pytest.raises(GraphEigenmapError, match="edges"):
        model.transform(graph.features[nodes])


def test_bad_inputs_are_refused_in_one_line():
    assert parse_inputs("features").hops == 0 and parse_inputs("propagated:3").hops == 3
    for bad in ("propagated", "propagated:0", "propagated:x", "sign:2"):
        with pytest.raises(GraphEigenmapError, match="`inputs"):
            parse_inputs(bad)
    with pytest.raises(GraphEigenmapError, match="row 1"):
        propagate_new_nodes(np.zeros((1, 2)), np.array([[0], [99]]), np.zeros((5, 4)), np.ones(5), 1)


def test_cli_fit_and_embed_with_edges(graph, tmp_path):
    runner = CliRunner()
    out = tmp_path / "fit"
    result = runner.invoke(app, ["fit", "-d", SPEC, "--out", str(out), "--k", "4", "--steps", "20", "--width", "16",
                                 "--inputs", "propagated:1", "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    nodes = np.array([5, 6])
    np.save(tmp_path / "x.npy", graph.features[nodes])
    np.save(tmp_path / "edges.npy", _new_node_edges(graph, nodes))
    result = runner.invoke(app, ["embed", "--model", str(out), "--features", str(tmp_path / "x.npy"), "--edges",
                                 str(tmp_path / "edges.npy"), "--out", str(tmp_path / "e.npy"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(np.load(tmp_path / "e.npy"), np.load(out / "embeddings.npy")[nodes], atol=1e-4)
    result = runner.invoke(app, ["embed", "--model", str(out), "--features", str(tmp_path / "x.npy"),
                                 "--out", str(tmp_path / "f.npy"), "--device", "cpu"])
    assert result.exit_code == 2 and "--edges" in result.output and not (tmp_path / "f.npy").exists()


def test_auto_inputs_propagate_for_feature_mlps_and_not_for_the_identity_table():
    import torch

    from graph_eigenmap.config import TrainConfig
    from graph_eigenmap.data import load_graph
    from graph_eigenmap.recipe import DEFAULT_PROPAGATED_INPUTS, DEFAULT_WIDE_INPUTS, resolve

    graph = load_graph("csbm:num_nodes=300,num_edges=1500,num_features=8")
    cpu = torch.device("cpu")
    assert TrainConfig().inputs == "auto"
    assert resolve(TrainConfig(k=4), graph, cpu).inputs == DEFAULT_PROPAGATED_INPUTS == "propagated:3"
    assert resolve(TrainConfig(k=4, features="identity"), graph, cpu).inputs == "features"
    assert resolve(TrainConfig(k=4, inputs="features"), graph, cpu).inputs == "features"
    wide = load_graph("csbm:num_nodes=300,num_edges=1500,num_features=256,feature_snr=6")  # a wide bag of words is reduced
    assert resolve(TrainConfig(k=4), wide, cpu).inputs == DEFAULT_WIDE_INPUTS == "svd:100+propagated:3"


def test_a_copy_with_other_features_gets_its_own_propagated_inputs():
    """dataclasses.replace shares ``extra``: what was derived from the old features must not be reused."""
    import dataclasses

    from graph_eigenmap import load_graph
    from graph_eigenmap.inputs import model_input_graph

    graph = load_graph("csbm:num_nodes=200,num_edges=800,num_features=5,seed=1")
    first = model_input_graph(graph, "propagated:2")
    assert model_input_graph(graph, "propagated:2") is first  # computed once per graph and features
    doubled = dataclasses.replace(graph, features=2 * graph.features)
    np.testing.assert_allclose(model_input_graph(doubled, "propagated:2").features, 2 * first.features, rtol=1e-5)


def test_svd_inputs_parse_and_name_themselves():
    assert parse_inputs("svd:100+propagated:3") == InputSpec(hops=3, rank=100)
    assert parse_inputs("svd:8") == InputSpec(hops=0, rank=8) and parse_inputs("svd:8").name == "svd:8"
    assert parse_inputs("svd:100+propagated:3").name == "svd:100+propagated:3"
    for bad in ("propagated:3+svd:100", "svd:0", "svd:x", "svd:4+svd:4", "svd:4+", "svd"):
        with pytest.raises(GraphEigenmapError, match="`inputs"):
            parse_inputs(bad)


def test_svd_reduction_is_scikit_learns_truncated_svd_as_a_projection(graph):
    from sklearn.decomposition import TruncatedSVD

    reduced, projection = reduce_features(graph.features, 5)
    np.testing.assert_allclose(projection.T @ projection, np.eye(5), atol=1e-5)  # orthonormal columns
    np.testing.assert_allclose(reduced, graph.features @ projection, rtol=1e-5, atol=1e-5)
    expected = TruncatedSVD(5, algorithm="randomized", random_state=0).fit_transform(graph.features)
    np.testing.assert_allclose(np.abs(reduced), np.abs(expected), rtol=1e-3, atol=1e-3)
    with pytest.raises(GraphEigenmapError, match="svd:16"):
        reduce_features(graph.features, 16)  # not fewer columns than the 16 features


@pytest.mark.parametrize("inputs", ["svd:4", "svd:4+propagated:2"])
def test_transform_of_svd_inputs_reproduces_the_embedding(graph, inputs, tmp_path):
    from graph_eigenmap.artifacts import load_known_inputs

    model = NeuralEigenmap(k=4, steps=30, width=32, inputs=inputs, device="cpu", representation="embedding").fit(graph)
    spec = parse_inputs(inputs)
    assert model.model_.backbone.in_features == 4 * (spec.hops + 1)
    nodes = np.array([3, 100, 420])
    edges = _new_node_edges(graph, nodes) if spec.hops else None
    np.testing.assert_allclose(model.transform(graph.features[nodes], edges=edges), model.embedding_[nodes], atol=1e-4)
    # the projection travels with a saved fit: embed from its folder the same way
    from graph_eigenmap import neural_eigenmap

    neural_eigenmap(graph, k=4, steps=5, width=16, inputs=inputs, device="cpu", out_dir=tmp_path, progress=False)
    saved = np.load(tmp_path / "embeddings.npy")
    runner = CliRunner()
    np.save(tmp_path / "x.npy", graph.features[nodes])
    command = ["embed", "--model", str(tmp_path), "--features", str(tmp_path / "x.npy"), "--out", str(tmp_path / "e.npy"),
               "--device", "cpu"]
    if spec.hops:
        np.save(tmp_path / "edges.npy", edges)
        command += ["--edges", str(tmp_path / "edges.npy")]
    result = runner.invoke(app, command)
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(np.load(tmp_path / "e.npy"), saved[nodes], atol=1e-4)
    assert load_known_inputs(tmp_path, inputs).projection.shape == (graph.num_features, 4)


def test_an_svd_as_wide_as_the_features_is_refused_before_training(graph):
    from graph_eigenmap.config import TrainConfig
    from graph_eigenmap.recipe import resolve

    with pytest.raises(GraphEigenmapError, match="choose D < 6"):
        resolve(TrainConfig(k=4, inputs="svd:6"), graph, torch.device("cpu"))
