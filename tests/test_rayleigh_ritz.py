"""The Rayleigh–Ritz output layer: exactly ordered, Ā-orthogonal outputs whose eigenvalue estimates are their quotients."""

import numpy as np
import pytest

from graph_eigenmap import neural_eigenmap
from graph_eigenmap.data import load_graph
from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.kernel import normalized_adjacency


@pytest.fixture(scope="module")
def graph():
    return load_graph("csbm:num_nodes=1500,num_edges=9000,num_classes=4,num_features=12,homophily=0.8,feature_snr=2")


@pytest.mark.parametrize("estimator", ["full", "sampled"])
def test_rayleigh_ritz_outputs_are_ordered_orthogonal_and_exact(graph, estimator):
    result = neural_eigenmap(graph, k=8, steps=60, width=32, estimator=estimator, batch_size=256, rayleigh_ritz=True,
                             device="cpu")
    kernel = normalized_adjacency(graph).astype(np.float64)
    psi = result.embedding.astype(np.float64)
    n = graph.num_nodes
    np.testing.assert_allclose(psi.T @ psi / n, np.eye(8), atol=2e-3)  # unit mean square, orthogonal
    r = psi.T @ (kernel @ psi) / n
    np.testing.assert_allclose(r - np.diag(np.diag(r)), 0, atol=2e-3)  # Ā-orthogonal
    assert np.all(np.diff(result.rayleigh_quotients) <= 1e-6)  # descending: no order violation at all
    np.testing.assert_allclose(result.eigenvalues, result.rayleigh_quotients, atol=1e-3)
    assert result.metadata["head"] == "rayleigh-ritz" and result.metadata["order_violations"] == []


def test_rayleigh_ritz_beats_no_other_subspace_of_the_backbone(graph):
    """The Ritz values are the best k values any outputs on this backbone can reach: sum ≥ the trained head's trace."""
    trained = neural_eigenmap(graph, k=6, steps=60, width=32, estimator="full", device="cpu")
    solved = neural_eigenmap(graph, k=6, steps=60, width=32, estimator="full", rayleigh_ritz=True, device="cpu")
    np.testing.assert_allclose(trained.backbone, solved.backbone, atol=1e-5)  # same training, only the head differs
    q, _ = np.linalg.qr(trained.embedding.astype(np.float64))
    trace = np.trace(q.T @ (normalized_adjacency(graph).astype(np.float64) @ q))
    assert solved.rayleigh_quotients.sum() >= trace - 1e-6


def test_rayleigh_ritz_needs_an_mlp(graph):
    with pytest.raises(GraphEigenmapError, match="`rayleigh_ritz` needs an MLP"):
        neural_eigenmap(graph, k=4, steps=2, features="identity", rayleigh_ritz=True, device="cpu")
