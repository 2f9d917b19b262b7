"""The CSBM generator: exact sizes, a clean symmetric graph, and the homophily and SNR asked for."""

import numpy as np
import pytest

from graph_eigenmap.data import csbm, load_graph, parse_csbm_spec
from graph_eigenmap.errors import DataError


def test_exact_edge_count_symmetric_no_loops():
    graph = csbm(3000, 20_000, 5, 8, seed=1)
    a = graph.adjacency
    assert graph.num_nodes == 3000 and graph.num_edges == 20_000 and a.nnz == 40_000
    assert (a != a.T).nnz == 0 and a.diagonal().sum() == 0 and a.max() == 1
    assert graph.synthetic and graph.features.shape == (3000, 8) and graph.features.dtype == np.float32


@pytest.mark.parametrize("homophily", [0.2, 0.9])
def test_homophily_matches_parameter(homophily):
    graph = csbm(5000, 50_000, 4, 4, homophily=homophily, seed=0)
    coo = graph.adjacency.tocoo()
    same = (graph.labels[coo.row] == graph.labels[coo.col]).mean()
    assert same == pytest.approx(homophily, abs=0.02)


def test_feature_means_have_requested_norm():
    graph = csbm(20_000, 40_000, 3, 50, feature_snr=2.0, degree_spread=0.0, seed=0)
    for c in range(3):
        mean = graph.features[graph.labels == c].mean(0)
        assert np.linalg.norm(mean) == pytest.approx(2.0, rel=0.25)
    noise = graph.features - np.stack([graph.features[graph.labels == c].mean(0) for c in range(3)])[graph.labels]
    assert noise.std() == pytest.approx(1.0, rel=0.02)


def test_seeded():
    a, b, c = csbm(500, 2000, seed=3), csbm(500, 2000, seed=3), csbm(500, 2000, seed=4)
    assert (a.adjacency != b.adjacency).nnz == 0 and np.array_equal(a.features, b.features)
    assert (a.adjacency != c.adjacency).nnz > 0


def test_spec_parsing_and_bad_options():
    params = parse_csbm_spec("csbm-products:seed=2,homophily=0.5")
    assert params["num_nodes"] == 2_449_029 and params["num_edges"] == 61_859_140 and params["seed"] == 2
    assert load_graph("csbm:num_nodes=300,num_edges=900").num_edges == 900
    papers = parse_csbm_spec("csbm-papers100m")
    assert (papers["num_nodes"], papers["num_edges"], papers["num_features"], papers["num_classes"]) == (
        111_059_956, 1_615_685_872, 128, 172)
    small = load_graph("csbm-papers100m:num_nodes=2000,num_edges=9000")  # its classes and features, fewer nodes
    assert (small.num_features, small.num_classes, small.num_edges, small.synthetic) == (128, 172, 9000, True)
    with pytest.raises(DataError, match="bad csbm option"):
        parse_csbm_spec("csbm:nodes=3")
    with pytest.raises(DataError, match="num_edges"):
        csbm(10, 10_000)
