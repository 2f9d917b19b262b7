"""Outputs permuted into eigenvalue order during training (graph_eigenmap.reorder)."""

import numpy as np
import scipy.sparse as sp
import torch

from graph_eigenmap.kernel import normalized_adjacency, to_torch_csr
from graph_eigenmap.models import EmbeddingTable, MLPBackbone, NeuralEigenfunctions
from graph_eigenmap.objectives.neuralef import neuralef_loss
from graph_eigenmap.reorder import exact_quotients, reorder_outputs


def test_reordering_permutes_outputs_optimizer_moments_and_estimates_together():
    torch.manual_seed(0)
    model = NeuralEigenfunctions(MLPBackbone(5, width=16, depth=2), k=3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    x = torch.randn(50, 5)
    model(x).pow(2).sum().backward()  # one step: moments exist and differ per output
    optimizer.step()
    model.eval()
    before = model(x).detach()
    moments = optimizer.state[model.head.weight]["exp_avg"].clone()
    estimates = torch.tensor([0.5, 0.9, 0.7])

    assert reorder_outputs(model, optimizer, estimates)
    order = [1, 2, 0]
    torch.testing.assert_close(estimates, torch.tensor([0.9, 0.7, 0.5]))
    torch.testing.assert_close(model(x).detach(), before[:, order])
    torch.testing.assert_close(optimizer.state[model.head.weight]["exp_avg"], moments[order])
    assert not reorder_outputs(model, optimizer, estimates)  # already descending: nothing moves


def test_reordering_by_a_key_orders_by_the_key_and_permutes_the_estimates_alike():
    torch.manual_seed(0)
    model = NeuralEigenfunctions(MLPBackbone(5, width=16, depth=2), k=3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.eval()
    x = torch.randn(50, 5)
    before = model(x).detach()
    estimates = torch.tensor([0.9, 0.7, 0.5])  # descending, but the key (exact quotients) says otherwise
    assert reorder_outputs(model, optimizer, estimates, key=torch.tensor([0.5, 0.9, 0.7]))
    torch.testing.assert_close(model(x).detach(), before[:, [1, 2, 0]])
    torch.testing.assert_close(estimates, torch.tensor([0.7, 0.5, 0.9]))
    assert not reorder_outputs(model, optimizer, estimates, key=torch.tensor([0.9, 0.7, 0.5]))


def test_exact_quotients_are_those_of_the_evaluated_outputs_and_touch_no_statistic():
    from graph_eigenmap.inference import embed_nodes
    from graph_eigenmap.metrics import rayleigh_quotients

    kernel, _, _ = _path_of_cliques()
    torch.manual_seed(1)
    model = NeuralEigenfunctions(MLPBackbone(7, width=16, depth=2, dropout=0.5), k=4)
    x = torch.randn(kernel.shape[0], 7)
    model.train()
    model(x)  # sets L2-BN's running RMS away from ones
    rms = model.norm.running_rms.clone()
    quotients = exact_quotients(model, x, to_torch_csr(sp.csr_matrix(kernel)), chunk_size=5)
    assert model.training and torch.equal(model.norm.running_rms, rms)
    psi, _ = embed_nodes(model, x)  # eval mode: no dropout, scaled by the running RMS
    np.testing.assert_allclose(quotients.numpy(), rayleigh_quotients(psi, kernel), rtol=1e-5)


def _path_of_cliques():
    """Four cliques of 6 nodes joined in a path: top eigenvalues of Ā distinct and well separated."""
    blocks = [np.ones((6, 6)) - np.eye(6) for _ in range(4)]
    adjacency = sp.lil_matrix(sp.block_diag(blocks))
    for left in range(3):
        adjacency[6 * left + 5, 6 * left + 6] = adjacency[6 * left + 6, 6 * left + 5] = 1
    kernel = normalized_adjacency(sp.csr_matrix(adjacency)).toarray()
    values, vectors = np.linalg.eigh(kernel)
    return kernel, values[::-1], vectors[:, ::-1]


def _train_table(start: np.ndarray, kernel: np.ndarray, steps: int, reorder: bool) -> np.ndarray:
    """The training loop's pieces on a free table started at ``start`` ([n, k]); returns the exact quotients."""
    n, k = start.shape
    model = NeuralEigenfunctions(EmbeddingTable(n, k), k)
    with torch.no_grad():
        model.backbone.weight.copy_(torch.from_numpy(start * np.sqrt(n)).float())
    optimizer = torch.optim.SGD(model.parameters(), lr=0.2 * n)
    operator = to_torch_csr(sp.csr_matrix(kernel))
    estimates = torch.zeros(k)
    for step in range(steps):
        psi = model(torch.arange(n))
        loss, r = neuralef_loss(psi, operator @ psi.detach(), c_has_gradient=False)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        estimates = torch.diagonal(r) if step == 0 else 0.95 * estimates + 0.05 * torch.diagonal(r)
        if reorder and (step + 1) % 25 == 0:
            reorder_outputs(model, optimizer, estimates)
    psi = model.backbone.weight.detach().double().numpy()
    return np.einsum("nk,nk->k", psi, kernel @ psi) / np.einsum("nk,nk->k", psi, psi)


def test_outputs_started_in_the_wrong_order_stay_there_unless_reordered():
    """Exact eigenvectors in the wrong order are a stationary point of the stop-gradient game: training alone
    keeps them; with reordering they end in descending order, each still an exact eigenvector."""
    kernel, values, vectors = _path_of_cliques()
    assert np.diff(values[:4]).max() < -0.01
    wrong = vectors[:, [2, 0, 3, 1]]
    plain = _train_table(wrong, kernel, steps=200, reorder=False)
    np.testing.assert_allclose(plain, values[[2, 0, 3, 1]], atol=1e-4)
    fixed = _train_table(wrong, kernel, steps=200, reorder=True)
    np.testing.assert_allclose(fixed, values[:4], atol=1e-4)


def test_the_recorded_last_sort_orders_quotients_model_and_saved_embedding_alike(tmp_path):
    from graph_eigenmap import load_graph, neural_eigenmap
    from graph_eigenmap.artifacts import load_model
    from graph_eigenmap.fit_outputs import order_violations
    from graph_eigenmap.inference import embed_nodes

    graph = load_graph("csbm:num_nodes=600,num_edges=3000,num_classes=4,num_features=16,seed=3")
    # 40 steps: far from converged, so training leaves neighbours out of order for the last step to sort
    fitted = neural_eigenmap(graph, k=12, steps=40, device="cpu", out_dir=tmp_path, progress=False)
    before = fitted.metadata["order_violations_in_training"]
    order = fitted.metadata["final_sort"]
    assert before and order is not None and sorted(order) == list(range(12)) and order != list(range(12))
    assert order_violations(fitted.rayleigh_quotients) == fitted.metadata["order_violations"] == []
    assert np.all(np.diff(fitted.rayleigh_quotients) <= 0.01)
    # the model itself was permuted: embedding the nodes again gives the saved, sorted columns
    inputs = torch.from_numpy(fitted.known_inputs.inputs)  # inputs='auto': the propagated rows the model reads
    again, _ = embed_nodes(fitted.model, inputs)
    np.testing.assert_allclose(again, fitted.embedding, atol=1e-5)
    np.testing.assert_allclose(np.load(tmp_path / "embeddings.npy"), fitted.embedding, atol=1e-6)
    reloaded, _ = load_model(tmp_path)
    np.testing.assert_allclose(embed_nodes(reloaded, inputs)[0], fitted.embedding, atol=1e-5)


def test_no_sort_without_reordering():
    from graph_eigenmap import load_graph, neural_eigenmap

    graph = load_graph("csbm:num_nodes=600,num_edges=3000,num_classes=4,num_features=16,seed=3")
    fitted = neural_eigenmap(graph, k=12, steps=40, device="cpu", reorder=False, progress=False)
    assert fitted.metadata["final_sort"] is None
    assert fitted.metadata["order_violations"] == fitted.metadata["order_violations_in_training"]
