"""The kernel D^-1/2 A D^-1/2 against a dense computation, and its known eigenpairs."""

import numpy as np
import pytest
import torch

from graph_eigenmap import graph_report, normalized_adjacency, to_torch_csr
from graph_eigenmap.data import build_graph


def _toy_graph():
    # two components (a triangle with a tail, and an edge) and one isolated node (5)
    edges = np.array([[0, 1, 2, 2, 3], [1, 2, 0, 6, 4]])
    return build_graph(edges, 7, name="toy", source="test")


def test_matches_dense_formula_with_zero_rows_at_isolated_nodes():
    graph = _toy_graph()
    a = graph.adjacency.toarray().astype(np.float64)
    d = a.sum(1)
    inv = np.where(d > 0, 1 / np.sqrt(np.where(d > 0, d, 1)), 0)
    expected = inv[:, None] * a * inv[None, :]
    kernel = normalized_adjacency(graph)
    np.testing.assert_allclose(kernel.toarray(), expected, atol=1e-7)
    assert not kernel[5].toarray().any() and not kernel[:, 5].toarray().any()


def test_sqrt_degree_is_eigenvector_with_eigenvalue_one():
    graph = _toy_graph()
    kernel = normalized_adjacency(graph).astype(np.float64)
    root_d = np.sqrt(graph.degrees)
    np.testing.assert_allclose(kernel @ root_d, root_d, atol=1e-7)
    eigenvalues = np.linalg.eigvalsh(kernel.toarray())
    # one eigenvalue 1 per component with an edge; the isolated node adds a 0
    assert np.isclose(eigenvalues, 1.0).sum() == 2
    assert eigenvalues.min() >= -1 - 1e-9


def test_self_loop_variant_is_gcn_normalization():
    graph = _toy_graph()
    a = graph.adjacency.toarray() + np.eye(7)
    d = a.sum(1)
    expected = a / np.sqrt(np.outer(d, d))
    np.testing.assert_allclose(normalized_adjacency(graph, self_loops=True).toarray(), expected, atol=1e-7)


def test_shifted_kernel_is_psd_with_same_eigenvectors():
    graph = _toy_graph()
    plain = normalized_adjacency(graph).toarray()
    shifted = normalized_adjacency(graph, shift=True).toarray()
    np.testing.assert_allclose(shifted, (np.eye(7) + plain) / 2, atol=1e-7)
    assert np.linalg.eigvalsh(shifted).min() >= -1e-7


def test_torch_csr_product_equals_scipy():
    graph = _toy_graph()
    kernel = normalized_adjacency(graph)
    x = np.random.default_rng(0).normal(size=(7, 3)).astype(np.float32)
    out = to_torch_csr(kernel) @ torch.from_numpy(x)
    np.testing.assert_allclose(out.numpy(), kernel @ x, atol=1e-6)


def test_report_counts():
    report = graph_report(_toy_graph())
    assert (report.num_nodes, report.num_edges, report.isolated_nodes, report.components) == (7, 5, 1, 3)
    assert (report.degree_min, report.degree_max) == (0.0, 3.0)
    assert report.degree_mean == pytest.approx(10 / 7)


def test_exact_eigenpairs_equal_numpy_eigh_up_to_sign():
    from graph_eigenmap.baselines import chebyshev_eigenpairs, top_eigenpairs
    from graph_eigenmap.data import csbm

    graph = csbm(400, 2000, 3, 4, seed=5)  # several components, some isolated nodes
    kernel = normalized_adjacency(graph)
    dense_values, dense_vectors = np.linalg.eigh(kernel.toarray().astype(np.float64))
    order = np.argsort(-dense_values)[:8]
    values, vectors = top_eigenpairs(kernel, 8, dense_limit=50)  # forces ARPACK on the large component
    np.testing.assert_allclose(values, dense_values[order], atol=1e-6)
    distinct = np.abs(np.diff(values)) > 1e-4
    for j in np.flatnonzero(distinct[1:] & distinct[:-1]) + 1:  # simple eigenvalues: vectors equal up to sign
        assert abs(vectors[:, j] @ dense_vectors[:, order[j]]) == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(vectors.T @ vectors, np.eye(8), atol=1e-6)
    fast_values, fast_vectors, info = chebyshev_eigenpairs(to_torch_csr(kernel), 8, tol=1e-5)
    np.testing.assert_allclose(fast_values, dense_values[order], atol=1e-5)
    assert info["max_residual"] < 1e-5
