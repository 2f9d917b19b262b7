"""The five real graphs of ../shared/data, in both layouts: counts and kernel properties.

Skipped with a reason where ../shared/data is absent.
"""

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import DATASET_NAMES
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import eigsh

from graph_eigenmap import graph_report, load_graph, normalized_adjacency

LAYOUTS = ("ogb", "npz")


def _path(shared_data, name, layout):
    return shared_data / "ogb" / f"ogbn_{name}" if layout == "ogb" else shared_data / "npz" / f"{name}.npz"


@pytest.fixture(scope="module", params=[(n, layout) for n in DATASET_NAMES for layout in LAYOUTS], ids=lambda p: f"{p[0]}-{p[1]}")
def loaded(request, shared_data):
    name, layout = request.param
    return name, layout, load_graph(_path(shared_data, name, layout))


def test_counts_match_datasets_json(loaded, expected_counts):
    name, layout, graph = loaded
    expected = expected_counts[name]
    report = graph_report(graph)
    assert report.num_nodes == expected["nodes"]
    assert report.num_edges == expected["undirected_edges"]
    assert report.num_features == expected["ogb_features" if layout == "ogb" else "raw_features"]
    assert report.num_classes == expected["classes"]
    assert report.isolated_nodes == expected["isolated_nodes"]
    assert report.components == expected["components"]
    assert report.split_sizes == expected["split"]
    assert graph.features.dtype == np.float32 and graph.labels.dtype == np.int64


def test_kernel_properties(loaded):
    _, _, graph = loaded
    kernel = normalized_adjacency(graph)
    assert np.isfinite(kernel.data).all()
    assert abs(kernel - kernel.T).max() == 0
    isolated = graph.degrees == 0
    row_nnz = np.diff(kernel.indptr)
    assert (row_nnz[isolated] == 0).all() and (kernel[:, np.flatnonzero(isolated)].nnz == 0)
    top, bottom = _extreme_eigenvalues(kernel.astype(np.float64), graph.adjacency)
    assert top == pytest.approx(1.0, abs=1e-6)
    assert bottom >= -1 - 1e-6


def _extreme_eigenvalues(kernel, adjacency):
    """Largest and smallest eigenvalue of a block-diagonal kernel, one connected component at a time.

    Eigenvalue 1 has one eigenvector per component, a multiplicity that stalls ARPACK on the whole
    matrix; per component it is simple. Small components are solved densely.
    """
    _, component = connected_components(adjacency, directed=False)
    order = np.argsort(component, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(component[order]) != 0])
    tops, bottoms = [], []
    for nodes in np.split(order, starts[1:]):
        block = kernel[nodes][:, nodes]
        if len(nodes) <= 500:
            values = np.linalg.eigvalsh(block.toarray())
            tops.append(values[-1]), bottoms.append(values[0])
        else:
            v0 = np.random.default_rng(0).normal(size=len(nodes))
            tops.append(eigsh(block, k=1, which="LA", tol=1e-10, v0=v0, return_eigenvectors=False)[0])
            bottoms.append(-eigsh(-block, k=1, which="LA", tol=1e-10, v0=v0, return_eigenvectors=False)[0])
    return max(tops), min(bottoms)

def test_sqrt_degree_is_top_eigenvector_on_every_component(loaded):
    _, _, graph = loaded
    kernel = normalized_adjacency(graph).astype(np.float64)
    root_d = np.sqrt(graph.degrees)
    _, component = connected_components(graph.adjacency, directed=False)
    for c in np.unique(component[root_d > 0]):
        v = np.where(component == c, root_d, 0.0)
        assert np.abs(kernel @ v - v).max() <= 1e-6 * max(1.0, np.abs(v).max())


def test_ogb_folder_is_never_written(shared_data):
    folder = _path(shared_data, "cora", "ogb")
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    load_graph(folder)
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before


def test_identity_fit_captures_the_coauthor_spectrum(shared_data, tmp_path):
    """The done-when of NeuralEF: fit on coauthor_cs, scored independently with scipy's eigsh."""
    from typer.testing import CliRunner

    from graph_eigenmap_cli.main import app

    folder = _path(shared_data, "coauthor_cs", "ogb")
    result = CliRunner().invoke(app, ["fit", "-d", str(folder), "--features", "identity", "--k", "16",
                                      "--out", str(tmp_path), "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    embedding = np.load(tmp_path / "embeddings.npy").astype(np.float64)
    graph = load_graph(folder)
    degrees = graph.degrees
    scale = 1 / np.sqrt(degrees)
    kernel = sp.diags(scale) @ graph.adjacency.astype(np.float64) @ sp.diags(scale)  # coauthor_cs: no isolated nodes
    exact = eigsh(kernel, k=16, which="LA", v0=np.ones(graph.num_nodes), return_eigenvectors=False)
    q, _ = np.linalg.qr(embedding)
    assert np.trace(q.T @ (kernel @ q)) / exact.sum() >= 0.98
    quotients = np.einsum("nk,nk->k", embedding, kernel @ embedding) / np.einsum("nk,nk->k", embedding, embedding)
    assert np.diff(quotients).max() <= 0.01, quotients
