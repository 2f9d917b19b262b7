"""The NeuralEF loss and the three estimators of R, against exact computations."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graph_eigenmap.data import csbm
from graph_eigenmap.estimators import BlockEstimator, FullGraphEstimator, NeighborSampledEstimator, RowBatchEstimator
from graph_eigenmap.kernel import normalized_adjacency
from graph_eigenmap.models import L2BatchNorm
from graph_eigenmap.objectives import estimate_r
from graph_eigenmap.objectives.neuralef import neuralef_loss


def _mean_r(estimator, psi, draws, seed=0):
    generator = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(draws):
        draw = estimator.draw(generator)
        a, c = estimator.estimate(psi[draw.node_ids], draw, c_has_gradient=False)
        samples.append(estimate_r(a, c).double().numpy())
    samples = np.array(samples)
    return samples.mean(0), samples.std(0, ddof=1) / np.sqrt(draws)


def _exact_r(adjacency, psi, shift=False):
    kernel = normalized_adjacency(adjacency, shift=shift).toarray().astype(np.float64)
    p = psi.double().numpy()
    return p.T @ kernel @ p / p.shape[0]


@pytest.fixture(scope="module")
def small_graph():
    # heavy-tailed degrees and isolated nodes: the cases where a sampler goes wrong
    return csbm(300, 1200, 3, 4, degree_spread=1.0, seed=0).adjacency


@pytest.fixture(scope="module")
def psi():
    return torch.randn(300, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64).float()


def test_full_graph_estimator_is_exact(small_graph, psi):
    estimator = FullGraphEstimator(small_graph)
    mean, _ = _mean_r(estimator, psi, 1)
    np.testing.assert_allclose(mean, _exact_r(small_graph, psi), atol=1e-5)


@pytest.mark.parametrize("shift", [False, True])
@pytest.mark.parametrize("make", [
    lambda a, shift: NeighborSampledEstimator(a, batch_size=64, fanout=4, shift=shift),
    lambda a, shift: BlockEstimator(a, batch_size=64, shift=shift),
    lambda a, shift: RowBatchEstimator(a, batch_size=64, shift=shift),
], ids=["sampled", "block", "rows"])
def test_sampling_estimators_are_unbiased(small_graph, psi, make, shift):
    mean, standard_error = _mean_r(make(small_graph, shift), psi, 4000)
    exact = _exact_r(small_graph, psi, shift=shift)
    z = np.abs(mean - exact) / standard_error
    assert z.max() < 4.5, (mean, exact, z)


def test_weighted_neighbor_sampling_is_unbiased(psi):
    rng = np.random.default_rng(0)
    base = csbm(300, 1200, 3, 4, seed=2).adjacency.tocoo()
    weights = rng.uniform(0.1, 5.0, size=base.nnz)
    upper = base.row < base.col
    weighted = sp.coo_matrix((weights[upper], (base.row[upper], base.col[upper])), shape=base.shape)
    adjacency = (weighted + weighted.T).tocsr()
    mean, standard_error = _mean_r(NeighborSampledEstimator(adjacency, batch_size=64, fanout=4), psi, 4000)
    z = np.abs(mean - _exact_r(adjacency, psi)) / standard_error
    assert z.max() < 4.5, z


def test_stop_gradient_loss_gradients_match_the_definition():
    torch.manual_seed(0)
    n, k = 50, 3
    kernel = torch.rand(n, n, dtype=torch.float64)
    kernel = (kernel + kernel.T) / n
    psi = torch.randn(n, k, dtype=torch.float64, requires_grad=True)
    loss, _ = neuralef_loss(psi, kernel @ psi, alpha=0.7, stop_gradient=True)
    loss.backward()
    # by hand: d/dψ_j [-R_jj + α Σ_{i<j} R_ij²] with ψ_i (i<j) constant, R = ΨᵀKΨ/n
    r = (psi.T @ kernel @ psi / n).detach()
    p = psi.detach()
    expected = torch.zeros_like(p)
    for j in range(k):
        expected[:, j] = -2 * kernel @ p[:, j] / n
        for i in range(j):
            expected[:, j] += 0.7 * 2 * r[i, j] * (kernel @ p[:, i]) / n
    torch.testing.assert_close(psi.grad, expected)


def test_l2_batch_norm_uses_stat_rows_and_running_average():
    norm = L2BatchNorm(2, momentum=0.9)
    y = torch.tensor([[3.0, 4.0], [3.0, 4.0], [100.0, 100.0]])
    out = norm(y, num_stat_rows=2)
    torch.testing.assert_close(out[:2], torch.ones(2, 2))
    torch.testing.assert_close(norm.running_rms, torch.tensor([3.0, 4.0]))
    norm(2 * y, num_stat_rows=2)
    torch.testing.assert_close(norm.running_rms, torch.tensor([3.0 * 1.1, 4.0 * 1.1]))
    norm.eval()
    torch.testing.assert_close(norm(y[:1]), torch.tensor([[3 / 3.3, 4 / 4.4]]))


def test_symmetric_product_gradient_equals_dense_autograd(small_graph):
    from graph_eigenmap.estimators import SymmetricProduct
    from graph_eigenmap.kernel import to_torch_csr

    kernel = normalized_adjacency(small_graph)
    x = torch.randn(300, 3, requires_grad=True)
    weights = torch.randn(300, 3)
    (SymmetricProduct.apply(to_torch_csr(kernel), x) * weights).sum().backward()
    dense = torch.from_numpy(kernel.toarray())
    y = x.detach().clone().requires_grad_()
    ((dense @ y) * weights).sum().backward()
    torch.testing.assert_close(x.grad, y.grad, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("stop_gradient", [True, False])
def test_one_sided_loss_has_the_two_sided_value_and_gradient_on_the_full_graph(stop_gradient):
    # with C = ĀΨ exact, the C-share of the gradient equals the A-share (Ā symmetric), so doubling
    # the A-share must reproduce the two-sided gradient to rounding
    torch.manual_seed(0)
    n, k = 60, 4
    kernel = torch.rand(n, n, dtype=torch.float64)
    kernel = (kernel + kernel.T) / n
    psi = torch.randn(n, k, dtype=torch.float64, requires_grad=True)
    two_sided, r_two = neuralef_loss(psi, kernel @ psi, alpha=0.7, stop_gradient=stop_gradient)
    (two_sided_grad,) = torch.autograd.grad(two_sided, psi)
    one_sided, r_one = neuralef_loss(psi, kernel @ psi.detach(), alpha=0.7, stop_gradient=stop_gradient,
                                     c_has_gradient=False)
    (one_sided_grad,) = torch.autograd.grad(one_sided, psi)
    torch.testing.assert_close(one_sided.detach(), two_sided.detach())
    torch.testing.assert_close(r_one, r_two)
    torch.testing.assert_close(one_sided_grad, two_sided_grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("make", [
    lambda a: NeighborSampledEstimator(a, batch_size=64, fanout=4),
    lambda a: RowBatchEstimator(a, batch_size=64),
], ids=["sampled", "rows"])
def test_one_sided_sampled_gradient_is_unbiased(small_graph, make):
    # α = 0: the loss is -tr(R), whose gradient in Ψ is -2ĀΨ/n; the rows C reads carry no gradient
    n, k, draws = 300, 2, 3000
    psi = torch.randn(n, k, generator=torch.Generator().manual_seed(3))
    estimator = make(small_graph)
    generator = torch.Generator().manual_seed(0)
    grads = np.zeros((draws, n, k))
    for t in range(draws):
        leaf = psi.clone().requires_grad_(True)
        draw = estimator.draw(generator)
        b = draw.num_a_rows
        rows = torch.cat([leaf[draw.node_ids[:b]], leaf[draw.node_ids[b:]].detach()])
        a, c = estimator.estimate(rows, draw, c_has_gradient=False)
        loss, _ = neuralef_loss(a, c, alpha=0.0, c_has_gradient=False)
        (grads[t],) = [g.numpy() for g in torch.autograd.grad(loss, leaf)]
    kernel = normalized_adjacency(small_graph).toarray()
    exact = -2 * kernel @ psi.double().numpy() / n
    mean, standard_error = grads.mean(0), grads.std(0, ddof=1) / np.sqrt(draws)
    z = np.abs(mean - exact)[standard_error > 0] / standard_error[standard_error > 0]
    assert z.max() < 5.5, z.max()
    assert np.all(exact[standard_error == 0] == 0)  # nodes never reached have no gradient to estimate
    assert np.linalg.norm(mean - exact) < 0.2 * np.linalg.norm(exact)


def test_sampling_estimators_keep_the_graph_lean_on_the_device():
    """int32 column ids and counts, int64 row pointers, no weights for an unweighted graph; draws are real neighbours."""
    import scipy.sparse as sp

    from graph_eigenmap.data import load_graph
    from graph_eigenmap.estimators import BlockEstimator, NeighborSampledEstimator

    graph = load_graph("csbm:num_nodes=500,num_edges=3000,num_features=4,seed=1")
    sampled = NeighborSampledEstimator(graph.adjacency, batch_size=64, fanout=4)
    lean = sampled.graph
    assert (lean.indices.dtype, lean.count.dtype, lean.indptr.dtype) == (torch.int32, torch.int32, torch.int64)
    assert lean.weights is None and BlockEstimator(graph.adjacency, batch_size=64).graph.weights is None
    draw = sampled.draw(torch.Generator().manual_seed(0))
    seeds, neighbours = draw.node_ids[:64], draw.node_ids[64:].view(64, 4)
    assert draw.node_ids.dtype == torch.int64
    assert all(graph.adjacency[int(u), int(v)] == 1 for u, row in zip(seeds, neighbours) for v in row)
    weighted = graph.adjacency.copy()
    weighted.data = weighted.data * 2.0
    assert NeighborSampledEstimator(sp.csr_matrix(weighted), batch_size=8).graph.weights is not None
