"""The nontrivial kernel Ā' = Ā − Σ_c u_c u_cᵀ: exact products, estimators, training against exact eigenvectors."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graph_eigenmap import neural_eigenmap
from graph_eigenmap.baselines.laplacian_eigenmap import laplacian_eigenmap
from graph_eigenmap.data import from_scipy
from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.estimators import BlockEstimator, FullGraphEstimator, NeighborSampledEstimator, RowBatchEstimator
from graph_eigenmap.kernel import DeflatedKernel, normalized_adjacency, to_torch_csr, trivial_eigenvectors
from graph_eigenmap.metrics import principal_angle_cosines
from graph_eigenmap.train import ComponentWarning


@pytest.fixture(scope="module")
def components():
    """Three SBM-like components of 120, 90 and 60 nodes plus 5 isolated nodes; exact Ā' dense."""
    rng = np.random.default_rng(0)
    blocks = []
    for size in (120, 90, 60):
        halves = np.arange(size) < size // 2
        probability = np.where(halves[:, None] == halves[None, :], 0.15, 0.02)
        upper = np.triu(rng.random((size, size)) < probability, 1)
        blocks.append(sp.csr_matrix((upper | upper.T).astype(float)))
    adjacency = sp.block_diag(blocks + [sp.csr_matrix((5, 5))]).tocsr()
    graph = from_scipy(adjacency, labels=np.zeros(adjacency.shape[0], dtype=np.int64))
    trivial = trivial_eigenvectors(graph)
    dense_u = np.zeros((graph.num_nodes, trivial.num_components))
    dense_u[np.arange(graph.num_nodes), trivial.component] = trivial.values
    deflated = normalized_adjacency(graph).toarray().astype(np.float64) - dense_u @ dense_u.T
    return graph, trivial, deflated


def test_deflated_kernel_product_is_the_dense_one(components):
    graph, trivial, deflated = components
    x = torch.randn(graph.num_nodes, 5, dtype=torch.float32, generator=torch.Generator().manual_seed(1))
    product = DeflatedKernel(to_torch_csr(normalized_adjacency(graph)), trivial) @ x
    np.testing.assert_allclose(product.numpy(), deflated @ x.numpy().astype(np.float64), atol=1e-5)


@pytest.mark.parametrize("make", [FullGraphEstimator, lambda adj, **kw: RowBatchEstimator(adj, batch_size=64, **kw)])
def test_full_and_rows_estimators_use_the_exact_deflated_product(components, make):
    graph, trivial, deflated = components
    estimator = make(graph.adjacency, trivial=trivial)
    psi = torch.randn(graph.num_nodes, 4, generator=torch.Generator().manual_seed(2))
    draw = estimator.draw(torch.Generator().manual_seed(3))
    rows = draw.node_ids[:draw.num_a_rows]
    a, c = estimator.estimate(psi[draw.node_ids], draw, c_has_gradient=False)
    np.testing.assert_allclose(c.numpy(), (deflated @ psi.numpy().astype(np.float64))[rows.numpy()], atol=1e-5)


@pytest.mark.parametrize("make", [lambda adj, **kw: NeighborSampledEstimator(adj, batch_size=64, fanout=4, **kw),
                                  lambda adj, **kw: BlockEstimator(adj, batch_size=64, **kw)])
def test_sampling_estimators_of_the_deflated_kernel_are_unbiased_for_a_fixed_psi(components, make):
    """The moving average of earlier batches makes the correction unbiased; the batch's own estimate would not be."""
    graph, trivial, deflated = components
    n = graph.num_nodes
    psi = torch.randn(n, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4)).float()
    exact = psi.double().numpy().T @ deflated @ psi.double().numpy() / n
    estimator = make(graph.adjacency, trivial=trivial)
    generator = torch.Generator().manual_seed(5)
    samples = []
    for _ in range(2500):
        draw = estimator.draw(generator)
        a, c = estimator.estimate(psi[draw.node_ids], draw, c_has_gradient=False)
        m = (a.T @ c).double().numpy() / a.shape[0]
        samples.append((m + m.T) / 2)
    samples = np.array(samples)
    mean, standard_error = samples.mean(0), samples.std(0) / np.sqrt(len(samples))
    assert (np.abs(mean - exact) < 4 * standard_error + 1e-9).all(), (mean - exact, standard_error)

    # the same-batch estimate of s_c instead: biased by about (components hit) / b, visible here
    estimator = make(graph.adjacency, trivial=trivial)
    estimator.component_sums.momentum = 0.0  # the average is then the batch's own estimate ...
    naive = np.zeros((3, 3))
    for _ in range(800):
        draw = estimator.draw(generator)
        estimator.component_sums.sums = None  # ... of this very batch
        a, c = estimator.estimate(psi[draw.node_ids], draw, c_has_gradient=False)
        m = (a.T @ c).double().numpy() / a.shape[0]
        naive += (m + m.T) / 2
    naive_bias = np.diag(naive / 800 - exact)
    assert (np.abs(naive_bias) > 6 * np.diag(standard_error)).all(), (naive_bias, standard_error)


def test_identity_features_learn_the_exact_nontrivial_eigenvectors(components):
    from graph_eigenmap.metrics import captured_spectrum

    graph, trivial, deflated = components
    k = 4
    values, vectors = laplacian_eigenmap(graph, k + 1, variant="nontrivial")
    assert values[k - 1] - values[k] > 0.03  # a gap after the k-th: the subspace is well defined
    result = neural_eigenmap(graph, k=k, features="identity", kernel="nontrivial", estimator="full", steps=600,
                             device="cpu", stop_gradient=False)
    assert principal_angle_cosines(result.embedding, vectors[:, :k]).min() >= 0.98
    assert np.abs(trivial.project(result.embedding) - result.embedding).max() < 0.05 * np.abs(result.embedding).max()
    assert captured_spectrum(result.embedding, deflated, values[:k]) >= 0.995
    assert result.metadata["kernel"].startswith("D^-1/2 A D^-1/2 - sum_c")


def test_sampled_training_on_the_nontrivial_kernel_nears_the_exact_eigenvalues(components):
    from graph_eigenmap.metrics import captured_spectrum

    graph, _, deflated = components
    values, _ = laplacian_eigenmap(graph, 3, variant="nontrivial")
    result = neural_eigenmap(graph, k=3, features="identity", kernel="nontrivial", estimator="sampled",
                             batch_size=128, fanout=8, steps=800, device="cpu", stop_gradient=False)
    assert result.config.one_sided_gradient  # forced for the nontrivial kernel with sampling
    assert captured_spectrum(result.embedding, deflated, values) >= 0.95


def test_many_components_warn_and_the_nontrivial_kernel_does_not(components):
    graph, _, _ = components
    with pytest.warns(ComponentWarning, match="`kernel=.nontrivial.`"):
        neural_eigenmap(graph, k=3, features="identity", steps=2, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ComponentWarning)
        neural_eigenmap(graph, k=3, features="identity", kernel="nontrivial", steps=2, device="cpu")
        neural_eigenmap(graph, k=4, features="identity", steps=2, device="cpu")  # 3 components < k


def test_two_sided_gradient_with_sampling_is_refused_for_the_nontrivial_kernel(components):
    graph, _, _ = components
    with pytest.raises(GraphEigenmapError, match="one-sided"):
        neural_eigenmap(graph, k=2, features="identity", kernel="nontrivial", estimator="sampled",
                        one_sided_gradient=False, steps=2, device="cpu")


def test_resume_restores_the_component_sums(components, tmp_path, monkeypatch):
    import graph_eigenmap.objectives.neuralef as train_module

    graph, _, _ = components
    options = dict(k=3, features="identity", kernel="nontrivial", estimator="sampled", batch_size=64, device="cpu",
                   checkpoint_every=10, steps=40)
    straight = neural_eigenmap(graph, out_dir=tmp_path / "a", **options)
    calls = []
    original = train_module.neuralef_loss

    def interrupted(*args, **kwargs):  # stop the run after its step-20 checkpoint
        calls.append(1)
        if len(calls) > 25:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(train_module, "neuralef_loss", interrupted)
    with pytest.raises(KeyboardInterrupt):
        neural_eigenmap(graph, out_dir=tmp_path / "b", **options)
    payload = torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=True)
    assert payload["step"] == 20
    assert payload["component_sums"].shape == (trivial_eigenvectors(graph).num_components, 3)
    monkeypatch.setattr(train_module, "neuralef_loss", original)
    resumed = neural_eigenmap(graph, out_dir=tmp_path / "b", resume=True, **options)
    np.testing.assert_allclose(resumed.embedding, straight.embedding, atol=1e-5)
