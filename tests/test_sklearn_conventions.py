"""NeuralEigenmap in scikit-learn's conventions: explicit hyperparameters, get/set_params, clone, fit forms, not-fitted."""

import dataclasses
import inspect

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from graph_eigenmap import NeuralEigenmap, NotFittedError, TrainConfig
from graph_eigenmap.data import from_scipy
from graph_eigenmap.errors import GraphEigenmapError

sklearn = pytest.importorskip("sklearn")  # a dev extra: the estimator itself never imports it
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError as SklearnNotFittedError  # noqa: E402
from sklearn.utils.validation import check_is_fitted  # noqa: E402

SMALL = dict(steps=15, width=16, inputs="features", estimator="full", device="cpu", representation="embedding")


@pytest.fixture(scope="module")
def arrays():
    """A 200-node graph with two communities and 6 features that reveal them."""
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 100)
    upper = np.triu(rng.random((200, 200)) < np.where(labels[:, None] == labels[None, :], 0.08, 0.01), 1)
    adjacency = sp.csr_matrix((upper | upper.T).astype(np.float32))
    features = (rng.normal(size=(200, 6)) + 2 * labels[:, None]).astype(np.float32)
    return adjacency, features, labels


def test_signature_lists_every_train_config_field_with_its_default():
    parameters = inspect.signature(NeuralEigenmap.__init__).parameters
    named = {name: p for name, p in parameters.items() if name != "self" and p.kind != p.VAR_KEYWORD}
    fields = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    assert set(named) == set(fields) | {"device"}
    assert {name: named[name].default for name in fields} == fields
    assert named["device"].default == "auto"
    assert list(named)[0] == "k" and named["k"].kind == inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert all(p.kind == inspect.Parameter.KEYWORD_ONLY for name, p in named.items() if name != "k")
    assert NeuralEigenmap(8).get_params() == dict(fields, k=8, device="auto")


def test_get_params_set_params_and_unknown_names():
    model = NeuralEigenmap(8, steps=20, lr=1e-3)
    assert model.get_params()["k"] == 8 and model.get_params()["steps"] == 20 and model.get_params()["lr"] == 1e-3
    assert model.set_params(steps=30, seed=3) is model
    assert (model.steps, model.seed, model.get_params(deep=False)["steps"]) == (30, 3, 30)
    with pytest.raises(GraphEigenmapError, match=r"unknown option\(s\) \['stepz'\].*did you mean 'steps'"):
        model.set_params(stepz=3)
    with pytest.raises(GraphEigenmapError, match="unknown option.*valid ones: \\['k', 'features'"):
        NeuralEigenmap(8, widht=3)
    assert repr(model) == "NeuralEigenmap(k=8, steps=30, lr=0.001, seed=3)"
    assert repr(NeuralEigenmap()) == "NeuralEigenmap()"


def test_clone_gives_an_unfitted_estimator_with_equal_params(arrays):
    adjacency, features, _ = arrays
    model = NeuralEigenmap(k=8)
    copy = clone(model)
    assert copy is not model and type(copy) is NeuralEigenmap
    assert copy.get_params() == model.get_params()
    fitted = NeuralEigenmap(3, seed=4, **SMALL).fit(adjacency, features=features)
    fresh = clone(fitted)
    assert fresh.get_params() == fitted.get_params()
    assert not hasattr(fresh, "embedding_") and not hasattr(fresh, "model_")
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(fresh)
    check_is_fitted(fitted)
    np.testing.assert_array_equal(fresh.fit(adjacency, features=features).embedding_, fitted.embedding_)  # same seed


def test_not_fitted_error(arrays):
    model = NeuralEigenmap(4)
    with pytest.raises(NotFittedError, match="This NeuralEigenmap instance is not fitted yet. Call 'fit'") as info:
        model.transform(arrays[1])
    assert isinstance(info.value, ValueError) and isinstance(info.value, AttributeError)  # as sklearn's is
    with pytest.raises(SklearnNotFittedError, match="NeuralEigenmap instance is not fitted"):
        check_is_fitted(model)


def test_fit_forms_agree_scipy_graph_and_pyg(arrays):
    from torch_geometric.data import Data

    adjacency, features, _ = arrays
    from_sparse = NeuralEigenmap(4, **SMALL).fit(adjacency, features=features)
    graph = from_scipy(adjacency, features=features)
    from_graph = NeuralEigenmap(4, **SMALL).fit(graph)
    coo = adjacency.tocoo()
    data = Data(x=torch.from_numpy(features), edge_index=torch.tensor(np.vstack([coo.row, coo.col]), dtype=torch.long))
    from_data = NeuralEigenmap(4, **SMALL).fit(data)
    from_array = NeuralEigenmap(4, **SMALL).fit(sp.csr_array(adjacency), features=features)  # sparse arrays too
    for other in (from_graph, from_data, from_array):
        np.testing.assert_allclose(other.embedding_, from_sparse.embedding_, atol=1e-6)
    assert from_sparse.n_features_in_ == 6 and from_data.n_features_in_ == 6
    np.testing.assert_allclose(from_sparse.transform(features), from_sparse.embedding_, atol=1e-5)


def test_fit_transform_returns_the_embedding_of_the_same_fit(arrays):
    adjacency, features, _ = arrays
    embedding = NeuralEigenmap(4, **SMALL).fit_transform(adjacency, features=features)
    assert embedding.shape == (200, 4) and embedding.dtype == np.float32
    np.testing.assert_array_equal(embedding, NeuralEigenmap(4, **SMALL).fit(adjacency, features=features).embedding_)


def test_set_params_changes_the_next_fit(arrays):
    adjacency, features, _ = arrays
    model = NeuralEigenmap(4, **SMALL).fit(adjacency, features=features)
    first = model.embedding_
    model.set_params(seed=1, steps=10).fit(adjacency, features=features)
    assert (model.config_.seed, model.metadata_["seed"], model.metadata_["steps"]) == (1, 1, 10)
    assert np.abs(model.embedding_ - first).max() > 1e-3
    np.testing.assert_array_equal(model.embedding_,
                                  NeuralEigenmap(4, **dict(SMALL, seed=1, steps=10)).fit(adjacency, features=features).embedding_)
    model.set_params(k=3).fit(adjacency, features=features)
    assert model.embedding_.shape == (200, 3) and model.eigenvalues_.shape == (3,)


def test_without_features_the_identity_table_is_learned(arrays):
    adjacency, _, _ = arrays
    model = NeuralEigenmap(3, steps=10, device="cpu").fit(adjacency)
    assert model.config_.features == "identity" and model.n_features_in_ == 0
    assert model.embedding_.shape == (200, 3)


def test_fit_refuses_ambiguous_inputs_with_the_fix(arrays):
    adjacency, features, _ = arrays
    model = NeuralEigenmap(4, **SMALL)
    with pytest.raises(GraphEigenmapError, match=r"second argument is y.*fit\(adjacency, features=X\)"):
        model.fit(adjacency, features)
    with pytest.raises(GraphEigenmapError, match="features= goes with a scipy sparse adjacency"):
        model.fit(from_scipy(adjacency), features=features)
    with pytest.raises(GraphEigenmapError, match=r"dense ndarray of shape \(200, 200\).*csr_array"):
        model.fit(adjacency.toarray())
    with pytest.raises(GraphEigenmapError, match="`steps` must be an int >= 1; got 0"):  # checked in fit, not __init__
        NeuralEigenmap(4, **dict(SMALL, steps=0)).fit(adjacency, features=features)


def test_in_a_scikit_learn_pipeline(arrays):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    adjacency, features, labels = arrays
    pipeline = make_pipeline(NeuralEigenmap(4, **SMALL), LogisticRegression()).fit(adjacency, labels)
    embedding = pipeline[0].embedding_
    assert pipeline[-1].n_features_in_ == 4
    reference = LogisticRegression().fit(embedding, labels)  # Pipeline passed fit_transform's embedding on
    np.testing.assert_allclose(pipeline[-1].coef_, reference.coef_)
