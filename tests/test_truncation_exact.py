"""benchmarks/truncation_exact.py: the regularized kernel's eigenvectors against a dense construction."""

import importlib.util
import sys
from pathlib import Path

import numpy as np

from graph_eigenmap.data import build_graph

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # its imports: shared_cases, truncation_at_defaults
_SPEC = importlib.util.spec_from_file_location("truncation_exact", BENCHMARKS / "truncation_exact.py")
truncation_exact = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(truncation_exact)


def test_regularized_vectors_span_the_dense_kernels_top_nontrivial_eigenvectors():
    rng = np.random.default_rng(0)
    # three components (a dense block, a path, an edge) and an isolated node: 30 nodes
    block = [(i, j) for i in range(15) for j in range(i + 1, 15) if rng.random() < 0.4]
    path = [(i, i + 1) for i in range(15, 26)]
    graph = build_graph(np.array(block + path + [(27, 28)]).T, 30, name="toy", source="test")
    multiple, k = 0.5, 5
    a = graph.adjacency.toarray()
    degrees = a.sum(1)
    tau = multiple * degrees.mean()
    regularized = a + tau / 30 * np.ones((30, 30))
    scale = 1 / np.sqrt(degrees + tau)
    dense = scale[:, None] * regularized * scale[None, :]
    trivial = np.sqrt(degrees + tau) / np.sqrt((degrees + tau).sum())
    assert np.allclose(dense @ trivial, trivial)  # its eigenvalue-1 eigenvector, removed below
    values, vectors = np.linalg.eigh(dense - np.outer(trivial, trivial))
    expected = vectors[:, np.argsort(-values)[:k]]

    found = truncation_exact.regularized_vectors(graph, multiple, k=k)
    cosines = np.linalg.svd(expected.T @ found, compute_uv=False)
    assert cosines.min() > 1 - 1e-6
    assert np.abs(found.T @ trivial).max() < 1e-6


def test_falls_is_the_largest_drop_between_neighbouring_prefixes():
    curve = [dict(test=t) for t in (0.30, 0.50, 0.45, 0.47, 0.40)]
    assert truncation_exact.falls(curve) == 0.07
    assert truncation_exact.falls([dict(test=t) for t in (0.1, 0.2, 0.2)]) == 0.0
