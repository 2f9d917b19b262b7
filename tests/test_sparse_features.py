"""Wide sparse features kept sparse: the same rows, scaling, network outputs, gradients and fits as dense ones."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graph_eigenmap.errors import GraphEigenmapError


def _bag_of_words(n: int, d: int, seed: int, density: float = 0.05, topics=None) -> sp.csr_matrix:
    """Binary words [n, d]; with ``topics`` [n] (labels), node i also uses a block of words of its topic, so the
    features are smooth on a homophilous graph as real bags of words are."""
    x = sp.random(n, d, density=density, format="csr", dtype=np.float32, random_state=seed)
    if topics is not None:
        rng = np.random.default_rng(seed)
        block = d // (int(topics.max()) + 1)
        words = topics[:, None] * block + rng.integers(0, block, size=(n, 4))
        x = x + sp.csr_matrix((np.ones(words.size, np.float32), (np.repeat(np.arange(n), 4), words.ravel())),
                              shape=(n, d))
    x.data[:] = 1.0  # binary words
    return x


def _graph(dense_features: bool, n: int = 400, d: int = 300):
    from graph_eigenmap.data import load_graph
    from graph_eigenmap.data.graph import build_graph

    base = load_graph(f"csbm:num_nodes={n},num_edges={6 * n},num_classes=4,num_features=8,seed=5")
    coo = base.adjacency.tocoo()
    return build_graph(np.vstack([coo.row, coo.col]), n, features=_bag_of_words(n, d, seed=1, topics=base.labels), labels=base.labels,
                       split=base.split, name="bow", source="test", dense_features=dense_features)


def test_take_rows_of_a_sparse_tensor_equals_dense_indexing():
    from graph_eigenmap.data.sparse import as_model_input, take_rows

    x = sp.random(60, 25, density=0.2, format="csr", dtype=np.float32, random_state=2)
    sparse, dense = as_model_input(x), torch.from_numpy(x.toarray())
    ids = torch.tensor([5, 0, 59, 5, 17])
    assert take_rows(sparse, ids).layout == torch.sparse_csr
    assert torch.equal(take_rows(sparse, ids).to_dense(), dense[ids])
    assert torch.equal(take_rows(sparse, slice(3, 9)).to_dense(), dense[3:9])
    assert torch.equal(take_rows(sparse, slice(50, 100)).to_dense(), dense[50:])
    assert take_rows(sparse, slice(9, 9)).shape == (0, 25)
    assert torch.equal(take_rows(dense, ids), dense[ids])


@pytest.mark.parametrize("kind", ["maxabs", "standard"])
def test_scaling_of_sparse_features_equals_the_dense_one(kind):
    from graph_eigenmap.scaling import fit_scaling

    x = sp.random(200, 40, density=0.3, format="csr", dtype=np.float32, random_state=1)
    if kind == "standard":
        x.data -= 0.4  # negative values: not bag-of-words
    dense, sparse = fit_scaling(torch.from_numpy(x.toarray())), fit_scaling(x)
    assert dense.kind == sparse.kind == kind
    torch.testing.assert_close(sparse.shift, dense.shift, atol=1e-6, rtol=0)
    torch.testing.assert_close(sparse.factor, dense.factor, atol=0, rtol=1e-5)


def test_mlp_on_a_sparse_batch_gives_the_dense_outputs_and_gradients():
    from graph_eigenmap.data.sparse import as_model_input
    from graph_eigenmap.models import MLPBackbone

    x = sp.random(60, 25, density=0.2, format="csr", dtype=np.float32, random_state=3)
    x.data -= 0.2
    torch.manual_seed(0)
    model = MLPBackbone(25, 16, 2)
    model.fit_standardization(x)
    assert float(model.input_mean.abs().max()) > 0  # the shift is exercised: it is folded into the bias
    outputs, gradients = [], []
    for batch in (torch.from_numpy(x.toarray()), as_model_input(x)):
        model.zero_grad()
        y = model(batch)
        (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
        outputs.append(y.detach())
        gradients.append([p.grad.clone() for p in model.parameters()])
    torch.testing.assert_close(outputs[1], outputs[0], atol=1e-5, rtol=1e-5)
    for sparse_grad, dense_grad in zip(gradients[1], gradients[0]):
        torch.testing.assert_close(sparse_grad, dense_grad, atol=1e-5, rtol=1e-4)


def test_build_graph_keeps_sparse_features_sparse_only_when_too_large(monkeypatch):
    import graph_eigenmap.data.sparse as sparse_features

    assert isinstance(_graph(dense_features=None).features, np.ndarray)  # 400 x 300 floats: far below the limit
    monkeypatch.setattr(sparse_features, "DENSE_FEATURES_MAX_BYTES", 1000)
    kept = _graph(dense_features=None)
    assert sp.isspmatrix_csr(kept.features) and kept.features.dtype == np.float32
    assert kept.num_features == 300
    np.testing.assert_array_equal(kept.features.toarray(), _graph(dense_features=True).features)


def test_npz_features_stay_sparse_when_too_large(tmp_path, monkeypatch):
    import graph_eigenmap.data.sparse as sparse_features
    from graph_eigenmap.data import load_graph

    adjacency = sp.random(50, 50, density=0.1, format="csr", random_state=4)
    adjacency = ((adjacency + adjacency.T) > 0).astype(np.float32).tocsr()
    features = _bag_of_words(50, 30, seed=2, density=0.1)
    path = tmp_path / "bow.npz"
    np.savez(path, adj_data=adjacency.data, adj_indices=adjacency.indices, adj_indptr=adjacency.indptr,
             adj_shape=adjacency.shape, attr_data=features.data, attr_indices=features.indices,
             attr_indptr=features.indptr, attr_shape=features.shape, labels=np.arange(50) % 3)
    monkeypatch.setattr(sparse_features, "DENSE_FEATURES_MAX_BYTES", 100)
    graph = load_graph(str(path))
    assert sp.issparse(graph.features)
    np.testing.assert_array_equal(graph.features.toarray(), features.toarray())


@pytest.mark.parametrize("estimator", ["full", "rows", "sampled"])
def test_fit_on_sparse_features_equals_the_fit_on_dense_ones(estimator):
    from graph_eigenmap import neural_eigenmap

    options = dict(k=8, steps=30, estimator=estimator, batch_size=128, device="cpu", progress=False)
    sparse = neural_eigenmap(_graph(dense_features=False), inputs="features", **options)  # the sparse first layer
    same_inputs = neural_eigenmap(_graph(dense_features=True), inputs="features", **options)
    np.testing.assert_allclose(sparse.embedding, same_inputs.embedding, atol=2e-3)
    np.testing.assert_allclose(sparse.rayleigh_quotients, same_inputs.rayleigh_quotients, atol=1e-4)


def test_sparse_features_refuse_propagated_inputs_and_compile():
    from graph_eigenmap import neural_eigenmap

    narrow = _graph(dense_features=False, d=200)  # under 256 columns: auto reads sparse features themselves
    assert neural_eigenmap(narrow, k=4, steps=2, device="cpu", progress=False).config.inputs == "features"
    assert neural_eigenmap(_graph(dense_features=True, d=200), k=4, steps=2, device="cpu",
                           progress=False).config.inputs == "propagated:3"  # dense: auto propagates
    graph = _graph(dense_features=False)  # 300 columns: auto reduces them by SVD, then propagates the dense result
    assert neural_eigenmap(graph, k=4, steps=2, device="cpu", progress=False).config.inputs == "svd:100+propagated:3"
    with pytest.raises(GraphEigenmapError, match="use `inputs='features'`"):
        neural_eigenmap(graph, k=4, steps=2, inputs="propagated:2", device="cpu", progress=False)
    with pytest.raises(GraphEigenmapError, match="use `compile=False`"):
        neural_eigenmap(graph, k=4, steps=2, compile=True, device="cpu", progress=False)


def test_new_nodes_with_sparse_features_embed_as_their_dense_rows():
    from graph_eigenmap import NeuralEigenmap

    graph = _graph(dense_features=False)
    new = graph.features[:7]
    for inputs in ("features", "svd:10"):  # the sparse first layer; the SVD projection of sparse rows
        model = NeuralEigenmap(k=6, steps=20, inputs=inputs, device="cpu", representation="embedding").fit(graph, progress=False)
        np.testing.assert_allclose(model.transform(new), model.embedding_[:7], atol=1e-5)
        np.testing.assert_allclose(model.transform(new.toarray()), model.embedding_[:7], atol=1e-5)


def test_bench_compare_says_which_groups_need_dense_features(tmp_path):
    from graph_eigenmap.evaluation.compare import compare

    with pytest.raises(GraphEigenmapError, match="`methods=features,gcn` needs dense node features"):
        compare(_graph(dense_features=False), out_dir=tmp_path, methods=["features", "ne", "gcn"], runs=1)
    assert not any(tmp_path.iterdir())  # refused before any work


def test_cli_embeds_new_nodes_from_a_sparse_npz(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import graph_eigenmap.data.sparse as sparse_features
    from graph_eigenmap_cli.main import app

    monkeypatch.setattr(sparse_features, "DENSE_FEATURES_MAX_BYTES", 1000)
    graph = _graph(dense_features=None)
    assert sp.issparse(graph.features)
    from graph_eigenmap import neural_eigenmap

    neural_eigenmap(graph, k=4, steps=10, inputs="features", device="cpu", out_dir=tmp_path / "run", progress=False)
    sp.save_npz(tmp_path / "new.npz", graph.features[:5])
    result = CliRunner().invoke(app, ["embed", "--model", str(tmp_path / "run"), "--features", str(tmp_path / "new.npz"),
                                      "--out", str(tmp_path / "new.npy"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(np.load(tmp_path / "new.npy"), np.load(tmp_path / "run" / "embeddings.npy")[:5], atol=1e-5)
    np.savez(tmp_path / "plain.npz", values=np.arange(3))  # an .npz that save_npz did not write
    result = CliRunner().invoke(app, ["embed", "--model", str(tmp_path / "run"), "--features", str(tmp_path / "plain.npz"),
                                      "--out", str(tmp_path / "bad.npy"), "--device", "cpu"])
    assert result.exit_code == 2 and "not a scipy sparse .npz" in result.output
