"""AddNeuralEigenmapPE: the PyG transform stores what neural_eigenmap learns, under attr_name or appended to x."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from graph_eigenmap import neural_eigenmap
from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.transforms import AddNeuralEigenmapPE

OPTIONS = dict(steps=12, width=16, estimator="full", device="cpu", representation="embedding")


@pytest.fixture(scope="module")
def data():
    """A 150-node PyG graph, 5 features, with attributes the transform must leave alone."""
    generator = torch.Generator().manual_seed(0)
    edge_index = torch.randint(0, 150, (2, 600), generator=generator)
    x = torch.randn(150, 5, generator=generator)
    return Data(x=x, edge_index=edge_index, y=torch.randint(0, 3, (150,), generator=generator))


def test_attribute_equals_neural_eigenmap_for_the_same_seed(data):
    out = AddNeuralEigenmapPE(k=4, seed=2, **OPTIONS)(data)
    expected = neural_eigenmap(data, k=4, seed=2, **OPTIONS).embedding
    assert out.neural_eigenmap_pe.dtype == torch.float32 and out.neural_eigenmap_pe.shape == (150, 4)
    np.testing.assert_array_equal(out.neural_eigenmap_pe.numpy(), expected)
    assert torch.equal(out.x, data.x) and torch.equal(out.y, data.y)
    assert "neural_eigenmap_pe" not in data  # BaseTransform works on a shallow copy
    other_seed = AddNeuralEigenmapPE(k=4, seed=3, **OPTIONS)(data).neural_eigenmap_pe
    assert (other_seed - out.neural_eigenmap_pe).abs().max() > 1e-3


def test_custom_name_and_appending_to_x(data):
    named = AddNeuralEigenmapPE(k=3, attr_name="pe", **OPTIONS)(data)
    appended = AddNeuralEigenmapPE(k=3, attr_name=None, **OPTIONS)(data)
    assert appended.x.shape == (150, 8)
    assert torch.equal(appended.x[:, :5], data.x) and torch.equal(appended.x[:, 5:], named.pe)
    assert "neural_eigenmap_pe" not in appended


def test_without_x_the_encoding_becomes_x():
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5, 0, 3], [1, 2, 0, 4, 5, 3, 3, 0]])
    out = AddNeuralEigenmapPE(k=2, attr_name=None, **OPTIONS)(Data(edge_index=edge_index, num_nodes=6))
    expected = neural_eigenmap(Data(edge_index=edge_index, num_nodes=6), k=2, **OPTIONS).embedding
    np.testing.assert_array_equal(out.x.numpy(), expected)  # the identity table: one learned vector per node


def test_reads_only_the_graph_so_unusual_masks_do_not_matter(data):
    """Several splits as 2-D masks (WikiCS-style) stop neural_eigenmap(data) but not the transform."""
    with_masks = data.clone()
    with_masks.train_mask = with_masks.val_mask = with_masks.test_mask = torch.zeros(150, 3, dtype=torch.bool)
    with pytest.raises(GraphEigenmapError, match="only one split"):
        neural_eigenmap(with_masks, k=2, **OPTIONS)
    out = AddNeuralEigenmapPE(k=2, **OPTIONS)(with_masks)
    np.testing.assert_array_equal(out.neural_eigenmap_pe.numpy(), neural_eigenmap(data, k=2, **OPTIONS).embedding)


def test_unknown_option_and_missing_edges_are_refused():
    with pytest.raises(GraphEigenmapError, match=r"unknown option.*AddNeuralEigenmapPE.*did you mean 'steps'"):
        AddNeuralEigenmapPE(k=2, stepz=3)
    with pytest.raises(GraphEigenmapError, match="edge_index"):
        AddNeuralEigenmapPE(k=2, **OPTIONS)(Data(x=torch.randn(4, 2)))
    assert repr(AddNeuralEigenmapPE(4, steps=7)) == "AddNeuralEigenmapPE(k=4, attr_name='neural_eigenmap_pe', steps=7)"


def test_package_import_stays_light():
    """``import graph_eigenmap`` imports neither torch_geometric (the transform is lazy) nor scikit-learn."""
    code = ("import sys, graph_eigenmap; print('torch_geometric' in sys.modules, 'sklearn' in sys.modules); "
            "graph_eigenmap.AddNeuralEigenmapPE; print('torch_geometric' in sys.modules)")
    lines = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert lines[:2] == ["False False", "True"]
