"""The NeuralSVD objective against its definition and exact eigendecompositions, and beside NeuralEF (CPU, seconds)."""

import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from typer.testing import CliRunner

from graph_eigenmap import neural_eigenmap
from graph_eigenmap.data import from_scipy
from graph_eigenmap.kernel import normalized_adjacency
from graph_eigenmap.metrics import principal_angle_cosines
from graph_eigenmap.models import L2BatchNorm
from graph_eigenmap.objectives.neuralsvd import neuralsvd_loss
from graph_eigenmap_cli.main import app


def _dense_kernel(n, seed=0):
    generator = torch.Generator().manual_seed(seed)
    kernel = torch.rand(n, n, dtype=torch.float64, generator=generator)
    return (kernel + kernel.T) / n


def test_sequential_nesting_gradient_matches_the_definition():
    # output m follows d/df_m of L_m = -2 Σ_{j≤m} R_jj + Σ_{j,l≤m} G_jl² with f_j (j < m) constant:
    # (1/n) (-4 K f_m + 4 Σ_{l≤m} G_lm f_l), with R = FᵀKF/n and G = FᵀF/n
    torch.manual_seed(0)
    n, k = 50, 4
    kernel = _dense_kernel(n)
    psi = torch.randn(n, k, dtype=torch.float64, requires_grad=True)
    loss, _ = neuralsvd_loss(psi, kernel @ psi, exact=True)
    loss.backward()
    p = psi.detach()
    gram = p.T @ p / n
    expected = torch.zeros_like(p)
    for m in range(k):
        expected[:, m] = -4 * kernel @ p[:, m] / n + 4 * sum(gram[i, m] * p[:, i] for i in range(m + 1)) / n
    torch.testing.assert_close(psi.grad, expected)


@pytest.mark.parametrize("stop_gradient", [True, False])
def test_value_is_the_low_rank_loss_and_r_holds_the_rayleigh_quotients(stop_gradient):
    torch.manual_seed(1)
    n, k = 40, 3
    kernel = _dense_kernel(n, seed=1)
    psi = torch.randn(n, k, dtype=torch.float64) * torch.tensor([3.0, 1.0, 0.2], dtype=torch.float64)
    loss, quotients = neuralsvd_loss(psi, kernel @ psi, stop_gradient=stop_gradient, exact=True)
    r, gram = psi.T @ kernel @ psi / n, psi.T @ psi / n
    # the objective works in float32, as the estimators' A and C are
    torch.testing.assert_close(loss, -2 * torch.trace(r) + gram.pow(2).sum(), check_dtype=False)
    torch.testing.assert_close(torch.diagonal(quotients), torch.diagonal(r) / torch.diagonal(gram), check_dtype=False)


@pytest.mark.parametrize("nesting", ["sequential", "joint", "none"])
def test_one_sided_loss_has_the_two_sided_value_and_gradient_on_the_full_graph(nesting):
    torch.manual_seed(2)
    n, k = 60, 4
    kernel = _dense_kernel(n, seed=2)
    psi = torch.randn(n, k, dtype=torch.float64, requires_grad=True)
    two, r_two = neuralsvd_loss(psi, kernel @ psi, nesting=nesting, exact=True)
    one, r_one = neuralsvd_loss(psi, kernel @ psi.detach(), nesting=nesting, exact=True, c_has_gradient=False)
    (two_grad,) = torch.autograd.grad(two, psi)
    (one_grad,) = torch.autograd.grad(one, psi)
    torch.testing.assert_close(one.detach(), two.detach())
    torch.testing.assert_close(r_one, r_two)
    torch.testing.assert_close(one_grad, two_grad, rtol=1e-5, atol=1e-7)


def test_rows_drawn_uniformly_give_an_unbiased_loss_and_the_plain_square_does_not():
    # the U-statistic for G² is unbiased over uniform draws of b rows with replacement; squaring the batch's Gram
    # (what exact=True does, right only for the full graph) is biased upwards by its variance. With b = 2 every
    # draw can be enumerated: the mean over all n² ordered pairs is the expectation itself.
    torch.manual_seed(3)
    n, k = 12, 3
    kernel = _dense_kernel(n, seed=3)
    psi = torch.randn(n, k, dtype=torch.float64) * torch.tensor([1.5, 1.0, 0.5], dtype=torch.float64)
    exact, _ = neuralsvd_loss(psi, kernel @ psi, exact=True)
    product = kernel @ psi
    pairs = [torch.tensor([u, v]) for u in range(n) for v in range(n)]
    unbiased = torch.stack([neuralsvd_loss(psi[pair], product[pair])[0] for pair in pairs]).mean()
    plain = torch.stack([neuralsvd_loss(psi[pair], product[pair], exact=True)[0] for pair in pairs]).mean()
    torch.testing.assert_close(unbiased, exact, rtol=1e-5, atol=1e-5)
    assert plain - exact > 0.1 * abs(exact), (plain, exact)


def test_the_minimizer_is_the_top_psd_eigenvectors_scaled_by_root_eigenvalue():
    # eigenvalues 0.9, 0.6, 0.3, then negative: with k = 4 the fourth output has no positive eigenvalue to take
    # and goes to zero; the others converge to √λ_j v_j, each in its own place (nesting orders them). The fourth
    # decays slowly: along v_1..v_3 its linear terms cancel (λ_j c − √λ_j · √λ_j c) and only the cubic one is left.
    rng = np.random.default_rng(4)
    n, k = 30, 4
    basis = np.linalg.qr(rng.standard_normal((n, n)))[0]
    values = np.concatenate([[0.9, 0.6, 0.3], -np.linspace(0.1, 0.9, n - 3)])
    kernel = torch.from_numpy(n * basis @ np.diag(values) @ basis.T)  # R = FᵀKF/n: Ā's eigenvalues are `values`
    unit = np.sqrt(n) * basis  # eigenfunctions with mean square 1
    psi = torch.tensor(0.3 * rng.standard_normal((n, k)), requires_grad=True)
    for _ in range(500):  # gradient descent; the step n/8 makes it f ← f + (Āf − f·G-terms)/2
        (gradient,) = torch.autograd.grad(neuralsvd_loss(psi, kernel @ psi / n, exact=True)[0], psi)
        psi = (psi - n / 8 * gradient).detach().requires_grad_()
    learned = psi.detach().numpy()
    for j in range(3):
        sign = np.sign(learned[:, j] @ unit[:, j])
        np.testing.assert_allclose(sign * learned[:, j], np.sqrt(values[j]) * unit[:, j], atol=5e-3)
    assert np.sqrt(np.mean(learned[:, 3] ** 2)) < 0.05  # against √0.3 = 0.55 for the third


def test_l2_batch_norm_without_dividing_in_training_tracks_the_scale():
    norm = L2BatchNorm(2, momentum=0.9, divide_in_training=False)
    y = torch.tensor([[3.0, 4.0], [3.0, 4.0], [100.0, 100.0]])
    torch.testing.assert_close(norm(y, num_stat_rows=2), y)  # no division in training
    torch.testing.assert_close(norm.running_rms, torch.tensor([3.0, 4.0]))
    torch.testing.assert_close(norm.like_last_batch(y), y)
    norm.eval()
    torch.testing.assert_close(norm(y[:1]), torch.tensor([[1.0, 1.0]]))


@pytest.fixture(scope="module")
def sbm():
    """The 340-node SBM of tests/test_training.py (top eigenvalues 1, 0.806, 0.721, 0.620, then 0.427), with features
    that hold its top-8 eigenvectors in a random basis: the best linear function of them is the exact answer."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), [40, 70, 100, 130])
    probability = np.array([[.3, .04, .01, .005], [.04, .2, .03, .01], [.01, .03, .15, .02], [.005, .01, .02, .1]])
    upper = np.triu(rng.random((340, 340)) < probability[labels][:, labels], 1)
    adjacency = sp.csr_matrix((upper | upper.T).astype(float))
    values, vectors = np.linalg.eigh(normalized_adjacency(adjacency).toarray().astype(np.float64))
    values, vectors = values[::-1], vectors[:, ::-1]
    mix = np.linalg.qr(rng.standard_normal((8, 8)))[0]
    features = (np.sqrt(340) * vectors[:, :8] @ mix).astype(np.float32)
    return from_scipy(adjacency, features=features, labels=labels), values, vectors


def _errors(result, values, vectors, k):
    unit = result.embedding / np.linalg.norm(result.embedding, axis=0)
    return dict(quotient=float(np.abs(result.rayleigh_quotients - values[:k]).max()),
                estimate=float(np.abs(result.eigenvalues - values[:k]).max()),
                cosine=float(np.abs(np.sum(unit * vectors[:, :k], axis=0)).min()),
                span=float(principal_angle_cosines(result.embedding, vectors[:, :k]).min()),
                mean_square=result.embedding.astype(np.float64).__pow__(2).mean(0))


@pytest.mark.parametrize("features, options", [
    ("identity", dict(estimator="full")),
    ("identity", dict(estimator="rows", batch_size=64)),
    ("input", dict(estimator="full", inputs="features", width=32)),
], ids=["table-full", "table-rows", "mlp-full"])
def test_neuralsvd_learns_the_ordered_eigenpairs_at_least_as_well_as_neuralef(sbm, features, options):
    """At equal steps (400). Measured at seed 0, max quotient error NeuralSVD / NeuralEF: table-full 0 / 0,
    table-rows 0.0037 / 0.0099, mlp-full 0.0068 / 0.0177."""
    graph, values, vectors = sbm
    k = 4
    errors = {objective: _errors(neural_eigenmap(graph, k=k, features=features, steps=400, objective=objective,
                                                 device="cpu", progress=False, **options), values, vectors, k)
              for objective in ("neuralef", "neuralsvd")}
    svd = errors["neuralsvd"]
    assert svd["quotient"] <= 0.01 and svd["estimate"] <= 0.015, svd
    assert svd["cosine"] >= 0.97 and svd["span"] >= 0.98, svd
    assert svd["quotient"] <= errors["neuralef"]["quotient"] + 1e-4, errors
    for objective in errors:  # normalized after training by the running RMS, a moving average of batch RMS
        np.testing.assert_allclose(errors[objective]["mean_square"], 1.0, rtol=0.1, err_msg=objective)


def test_cli_accepts_neuralsvd_and_refuses_an_unknown_objective(tmp_path):
    runner = CliRunner()
    small = "csbm:num_nodes=400,num_edges=2000,num_classes=3,num_features=8"
    result = runner.invoke(app, ["fit", "--dataset", small, "--out", str(tmp_path / "run"), "--k", "4", "--steps", "20",
                                 "--width", "16", "--objective", "neuralsvd", "--device", "cpu", "--quiet"])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "run" / "metadata.json").read_text())
    assert meta["config"]["objective"] == "neuralsvd"
    assert np.all(np.diff(meta["rayleigh_quotients"]) <= 0.01)  # the final sort holds for NeuralSVD too
    bad = runner.invoke(app, ["fit", "--dataset", small, "--out", str(tmp_path / "bad"), "--objective", "spin",
                              "--device", "cpu", "--quiet"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "--objective" in lines[0] and "neuralsvd" in lines[0], bad.stderr
    assert not (tmp_path / "bad").exists()
