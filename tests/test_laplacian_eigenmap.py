"""Laplacian Eigenmap, top and nontrivial variants, against dense numpy eigh on small multi-component graphs.

The reference for ``nontrivial``: Q an orthonormal basis of the complement of span{u_c}
(u_c = √d / √vol(c) on each component with an edge), eigh(Qᵀ Ā Q), eigenvectors Q W.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.linalg import null_space, subspace_angles
from scipy.sparse.csgraph import connected_components

from graph_eigenmap import load_graph, normalized_adjacency, to_torch_csr
from graph_eigenmap.baselines import chebyshev_eigenpairs, laplacian_eigenmap, top_eigenpairs
from graph_eigenmap.kernel import TrivialEigenvectors, trivial_eigenvectors

le_module = importlib.import_module("graph_eigenmap.baselines.laplacian_eigenmap")  # the module, not the function

SIZES = dict(big=60, path=6, pair=2, clique=4, isolated=3)  # components of the test graph


def _multi_component_graph(weighted: bool = False) -> sp.csr_matrix:
    """A 60-node connected random graph, a 6-node path, a 2-node edge, K4 and 3 isolated nodes, shuffled."""
    rng = np.random.default_rng(7)
    big = SIZES["big"]
    edges = [(i, (i + 1) % big) for i in range(big)]  # a ring keeps it connected
    edges += [tuple(pair) for pair in rng.integers(0, big, size=(90, 2)) if pair[0] != pair[1]]
    offset = big
    edges += [(offset + i, offset + i + 1) for i in range(SIZES["path"] - 1)]
    offset += SIZES["path"]
    edges += [(offset, offset + 1)]
    offset += SIZES["pair"]
    edges += [(offset + i, offset + j) for i in range(4) for j in range(i + 1, 4)]
    n = offset + SIZES["clique"] + SIZES["isolated"]
    rows, cols = np.array(edges).T
    weights = rng.uniform(0.2, 3.0, size=len(rows)) if weighted else np.ones(len(rows))
    upper = sp.coo_matrix((weights, (rows, cols)), shape=(n, n)).tocsr()
    adjacency = upper + upper.T  # repeated edges add their weights
    if not weighted:
        adjacency.data[:] = 1.0
    permutation = rng.permutation(n)
    return sp.csr_matrix(adjacency[permutation][:, permutation], dtype=np.float32)


def _dense_indicators(adjacency, self_loops=False) -> np.ndarray:
    """``[n, C]`` u_c = √d / √vol(c), built densely from the definition (components with an edge only)."""
    dense = adjacency.toarray().astype(np.float64) + (np.eye(adjacency.shape[0]) if self_loops else 0)
    degrees = dense.sum(axis=1)
    _, labels = connected_components(sp.csr_matrix(dense), directed=False)
    columns = []
    for label in np.unique(labels):
        inside = (labels == label) & (degrees > 0)
        if inside.any():
            u = np.where(inside, np.sqrt(degrees), 0.0)
            columns.append(u / np.sqrt(degrees[inside].sum()))
    return np.stack(columns, axis=1)


def _reference(kernel, indicators=None):
    """Dense eigenpairs of Ā (restricted to the complement of ``indicators`` if given), descending."""
    dense = kernel.toarray().astype(np.float64)
    basis = np.eye(dense.shape[0]) if indicators is None else null_space(indicators.T)
    values, rotation = np.linalg.eigh(basis.T @ dense @ basis)
    return values[::-1], (basis @ rotation)[:, ::-1]


def _assert_gap(values, k, gap=1e-3):
    assert values[k - 1] - values[k] > gap, f"test graph has no spectral gap after {k}: {values[k - 1:k + 1]}"


def _assert_same_subspace(vectors, reference, tol):
    assert np.abs(vectors.T @ vectors - np.eye(vectors.shape[1])).max() < 10 * tol
    assert subspace_angles(np.asarray(vectors, dtype=np.float64), reference).max() < tol


@pytest.fixture(scope="module", params=[False, True], ids=["unweighted", "weighted"])
def graph(request):
    return _multi_component_graph(weighted=request.param)


def test_trivial_eigenvectors_match_definition(graph):
    trivial = trivial_eigenvectors(graph)
    indicators = _dense_indicators(graph)
    assert trivial.count == 4 == indicators.shape[1]
    assert trivial.num_components == 4 + SIZES["isolated"]
    np.testing.assert_allclose(trivial.values, indicators.sum(axis=1), rtol=1e-12, atol=0)
    assert (trivial.values == 0).sum() == SIZES["isolated"]
    kernel = normalized_adjacency(graph).astype(np.float64)
    np.testing.assert_allclose(kernel @ indicators, indicators, atol=1e-6)  # eigenvalue 1


@pytest.mark.parametrize("self_loops", [False, True], ids=["plain", "gcn"])
def test_projector_numpy_and_torch_match_dense_indicators(graph, self_loops):
    trivial = trivial_eigenvectors(graph, self_loops=self_loops)
    indicators = _dense_indicators(graph, self_loops=self_loops)
    assert trivial.count == indicators.shape[1] == (7 if self_loops else 4)
    block = np.random.default_rng(0).normal(size=(graph.shape[0], 5))
    expected = block - indicators @ (indicators.T @ block)
    np.testing.assert_allclose(trivial.project(block), expected, atol=1e-12)
    np.testing.assert_allclose(trivial.project(block[:, 0]), expected[:, 0], atol=1e-12)
    assert np.abs(indicators.T @ trivial.project(block)).max() < 1e-12
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        projected = trivial.project_torch(torch.from_numpy(block).to(device))
        assert projected.dtype == torch.float64 and projected.device.type == device
        np.testing.assert_allclose(projected.cpu().numpy(), expected, atol=1e-12)
        project32 = trivial.torch_projector(device, torch.float32)
        np.testing.assert_allclose(project32(torch.from_numpy(block).float().to(device)).cpu().numpy(), expected,
                                   atol=1e-5)


@pytest.mark.parametrize("dense_limit", [2000, 5], ids=["dense", "arpack"])
def test_nontrivial_top_eigenpairs_match_dense_reference(graph, dense_limit):
    kernel = normalized_adjacency(graph)
    ref_values, ref_vectors = _reference(kernel, _dense_indicators(graph))
    k = 8
    _assert_gap(ref_values, k)
    values, vectors = top_eigenpairs(kernel, k, trivial=trivial_eigenvectors(graph), dense_limit=dense_limit)
    np.testing.assert_allclose(values, ref_values[:k], atol=1e-8)
    assert values.max() < 1 - 1e-3
    _assert_same_subspace(vectors, ref_vectors[:, :k], 1e-6)


def test_nontrivial_all_pairs_are_the_complement(graph):
    """k = n − C: every nontrivial eigenvalue (the 2-node's −1, K4's −1/3, the isolated nodes' 0) comes back."""
    kernel = normalized_adjacency(graph)
    indicators = _dense_indicators(graph)
    ref_values, _ = _reference(kernel, indicators)
    k = graph.shape[0] - indicators.shape[1]
    values, vectors = top_eigenpairs(kernel, k, trivial=trivial_eigenvectors(graph), dense_limit=5)
    np.testing.assert_allclose(values, ref_values, atol=1e-8)
    assert np.isclose(values, -1.0, atol=1e-8).sum() >= 1 and np.isclose(values, 0.0, atol=1e-8).sum() >= 3
    assert np.abs(indicators.T @ vectors).max() < 1e-10
    assert np.abs(vectors.T @ vectors - np.eye(k)).max() < 1e-8
    assert k == 71
    with pytest.raises(ValueError, match=r"k must be in \[1, 71\], got 72 \(75 nodes less 4 trivial"):
        top_eigenpairs(kernel, k + 1, trivial=trivial_eigenvectors(graph))


def test_laplacian_eigenmap_variants(graph):
    indicators = _dense_indicators(graph)
    kernel = normalized_adjacency(graph)
    values, vectors = laplacian_eigenmap(graph, 6, variant="nontrivial")
    assert values.dtype == np.float64 and vectors.dtype == np.float32 and vectors.shape == (graph.shape[0], 6)
    assert np.abs(indicators.T @ vectors).max() < 1e-6  # orthogonal to every u_c
    ref_values, ref_vectors = _reference(kernel, indicators)
    _assert_gap(ref_values, 6)
    np.testing.assert_allclose(values, ref_values[:6], atol=1e-8)
    _assert_same_subspace(vectors, ref_vectors[:, :6], 1e-5)
    signs = vectors[np.abs(vectors).argmax(axis=0), np.arange(6)]
    assert (signs > 0).all()

    top_values, top_vectors = laplacian_eigenmap(graph, 6, variant="top")
    np.testing.assert_allclose(top_values[:4], 1.0, atol=1e-6)  # multiplicity = components with edges
    np.testing.assert_allclose(top_values[4:], ref_values[:2], atol=1e-8)
    _assert_same_subspace(top_vectors[:, :4], indicators, 1e-5)
    all_values, _ = _reference(kernel)
    np.testing.assert_allclose(top_values, all_values[:6], atol=1e-8)


def test_gcn_kernel_nontrivial(graph):
    """Self-loops: the isolated nodes get eigenvalue 1 too, and are removed as trivial vectors."""
    kernel = normalized_adjacency(graph, self_loops=True)
    indicators = _dense_indicators(graph, self_loops=True)
    assert indicators.shape[1] == 7
    all_values, _ = _reference(kernel)
    assert np.isclose(all_values, 1.0, atol=1e-6).sum() == 7
    ref_values, ref_vectors = _reference(kernel, indicators)
    _assert_gap(ref_values, 5)
    values, vectors = laplacian_eigenmap(graph, 5, variant="nontrivial", self_loops=True)
    np.testing.assert_allclose(values, ref_values[:5], atol=1e-8)
    _assert_same_subspace(vectors, ref_vectors[:, :5], 1e-5)
    assert np.abs(indicators.T @ vectors).max() < 1e-6


def test_chebyshev_nontrivial_on_cpu_torch(graph):
    kernel = normalized_adjacency(graph)
    indicators = _dense_indicators(graph)
    ref_values, ref_vectors = _reference(kernel, indicators)
    k = 4
    _assert_gap(ref_values, k)
    project = trivial_eigenvectors(graph).torch_projector("cpu")
    values, vectors, info = chebyshev_eigenpairs(to_torch_csr(kernel), k, oversample=8, tol=1e-5, project=project)
    assert info["max_residual"] < 1e-5
    np.testing.assert_allclose(values, ref_values[:k], atol=1e-5)
    vectors = vectors.double().numpy()
    assert np.abs(indicators.T @ vectors).max() < 1e-5
    _assert_same_subspace(vectors, ref_vectors[:, :k], 1e-3)
    plain_values, _, _ = chebyshev_eigenpairs(to_torch_csr(kernel), k, oversample=8, tol=1e-5)
    np.testing.assert_allclose(plain_values, 1.0, atol=1e-5)  # without projection: the 4 indicators


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_laplacian_eigenmap_gpu_path(graph, monkeypatch):
    monkeypatch.setattr(le_module, "GPU_MIN_NODES", 0)  # the Chebyshev path on a small graph
    indicators = _dense_indicators(graph)
    ref_values, ref_vectors = _reference(normalized_adjacency(graph), indicators)
    values, vectors = laplacian_eigenmap(graph, 4, variant="nontrivial", device="cuda")
    np.testing.assert_allclose(values, ref_values[:4], atol=1e-5)
    assert np.abs(indicators.T @ vectors).max() < 1e-5
    _assert_same_subspace(vectors, ref_vectors[:, :4], 1e-2)
    top_values, _ = laplacian_eigenmap(graph, 4, variant="top", device="cuda")
    np.testing.assert_allclose(top_values, 1.0, atol=1e-5)


@pytest.mark.filterwarnings("ignore:The problem size:UserWarning")  # scipy solves the 6-node path densely
def test_lobpcg_fallback_keeps_the_complement(graph, monkeypatch):
    def no_convergence(*args, **kwargs):
        raise le_module.ArpackNoConvergence("forced", np.empty(0), np.empty((0, 0)))

    monkeypatch.setattr(le_module, "eigsh", no_convergence)
    kernel = normalized_adjacency(graph)
    indicators = _dense_indicators(graph)
    ref_values, ref_vectors = _reference(kernel, indicators)
    with pytest.warns(RuntimeWarning, match="LOBPCG"):
        values, vectors = top_eigenpairs(kernel, 3, trivial=trivial_eigenvectors(graph), dense_limit=5)
    _assert_gap(ref_values, 3)
    np.testing.assert_allclose(values, ref_values[:3], atol=1e-7)
    assert np.abs(indicators.T @ vectors).max() < 1e-10
    _assert_same_subspace(vectors, ref_vectors[:, :3], 1e-4)


def test_bad_arguments(graph):
    with pytest.raises(ValueError, match=r"'top', 'nontrivial'.*'smallest'"):
        laplacian_eigenmap(graph, 4, variant="smallest")
    with pytest.raises(ValueError, match="self_loops"):  # GCN trivial vectors with the plain kernel
        top_eigenpairs(normalized_adjacency(graph), 4, trivial=trivial_eigenvectors(graph, self_loops=True))
    wrong_size = TrivialEigenvectors(component=np.zeros(3, dtype=np.int64), values=np.ones(3) / np.sqrt(3), count=1)
    with pytest.raises(ValueError, match="3 nodes"):
        top_eigenpairs(normalized_adjacency(graph), 4, trivial=wrong_size)


def test_cora_nontrivial_and_top(shared_data):
    graph = load_graph(shared_data / "ogb" / "ogbn_cora")
    trivial = trivial_eigenvectors(graph)
    assert trivial.count == 78
    values, vectors = laplacian_eigenmap(graph, 8, variant="nontrivial")
    assert (values < 1 - 1e-9).all() and (np.diff(values) <= 0).all() and values[-1] > 0.9
    assert np.abs(trivial.project(vectors) - vectors).max() < 1e-6  # orthogonal to the 78 indicators
    top_values, top_vectors = laplacian_eigenmap(graph, 64, variant="top")
    np.testing.assert_allclose(top_values, 1.0, atol=1e-6)
    assert np.abs(trivial.project(top_vectors)).max() < 1e-5  # inside span{u_c}
