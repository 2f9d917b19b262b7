"""Correct & Smooth through PyG: the same answer as PyG's own edge-list path, and the gain it is known for."""

import numpy as np
import torch

from graph_eigenmap.baselines.supervised import supervised_runs
from graph_eigenmap.data import load_graph
from graph_eigenmap.evaluation.correct_and_smooth import CorrectAndSmooth, CorrectAndSmoothSettings
from graph_eigenmap.evaluation.probe import probe_runs
from graph_eigenmap.protocol import RunPrediction, score_runs

HOMOPHILOUS = "csbm:num_nodes=1500,num_edges=9000,num_classes=4,num_features=8,homophily=0.9,feature_snr=0.7"


def test_correct_and_smooth_equals_pyg_on_the_edge_list():
    """Our wrapper hands PyG a CSR adjacency; PyG's documented input is the [2, E] edge list."""
    from torch_geometric.nn.models import CorrectAndSmooth as PygCorrectAndSmooth

    graph = load_graph("csbm:num_nodes=400,num_edges=1600,num_classes=3,num_features=4,degree_spread=1")
    probabilities = torch.softmax(torch.randn(graph.num_nodes, 3, generator=torch.Generator().manual_seed(0)), 1)
    train = graph.split["train"]
    settings = CorrectAndSmoothSettings(correction_alphas=(1.0,), smoothing_alphas=(0.8,))
    ours = CorrectAndSmooth(graph, settings=settings)(RunPrediction(0, train, probabilities))
    assert ours.details["correction_alpha"] == 1.0 and ours.details["smoothing_alpha"] == 0.8

    reference = PygCorrectAndSmooth(settings.correction_layers, 1.0, settings.smoothing_layers, 0.8,
                                    autoscale=settings.autoscale)
    coo = graph.adjacency.tocoo()
    edge_index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    labels = torch.from_numpy(graph.labels[train])
    mask = torch.from_numpy(train)
    expected = reference.smooth(reference.correct(probabilities, labels, mask, edge_index), labels, mask, edge_index)
    torch.testing.assert_close(ours.scores, expected, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(ours.scores, probabilities, atol=1e-2)  # it did change the predictions


def test_the_alpha_pair_is_the_best_on_valid():
    graph = load_graph(HOMOPHILOUS)
    run = next(probe_runs(graph.features, graph, runs=1, label_ratio=0.1))
    chosen = CorrectAndSmooth(graph)(run)
    valid = graph.split["valid"]
    for alpha_1 in CorrectAndSmoothSettings().correction_alphas:
        for alpha_2 in CorrectAndSmoothSettings().smoothing_alphas:
            single = CorrectAndSmoothSettings(correction_alphas=(alpha_1,), smoothing_alphas=(alpha_2,))
            scores = CorrectAndSmooth(graph, settings=single)(run).scores
            assert (scores[valid].argmax(1).numpy() == graph.labels[valid]).mean() <= chosen.details["valid_acc"] + 1e-9
    # on this graph, few labels: alpha_1 = 1 spreads the residuals over the whole graph and loses
    assert chosen.details["correction_alpha"] < 1.0


def test_correct_and_smooth_lifts_a_weak_probe_on_a_homophilous_graph():
    """Features with little signal, a graph whose edges mostly join nodes of one class: C&S adds tens of points."""
    graph = load_graph(HOMOPHILOUS)
    probe, smoothed = score_runs(probe_runs(graph.features, graph, runs=2), graph, method="probe", label_ratio=1.0,
                                 runs=2, postprocess=CorrectAndSmooth(graph), postprocessed_method="probe + C&S")
    assert probe.test_acc_mean < 0.6
    assert smoothed.test_acc_mean > probe.test_acc_mean + 0.2
    assert smoothed.method == "probe + C&S" and len(smoothed.test_acc) == 2


def test_correct_and_smooth_uses_only_the_runs_training_labels():
    """Changing the labels of valid and test nodes must not change a single prediction."""
    graph = load_graph(HOMOPHILOUS)
    run = next(probe_runs(graph.features, graph, runs=1, label_ratio=0.5))
    single = CorrectAndSmoothSettings(correction_alphas=(0.8,), smoothing_alphas=(0.8,))  # no choice made on valid
    before = CorrectAndSmooth(graph, settings=single)(run).scores
    held_out = np.concatenate([graph.split["valid"], graph.split["test"]])
    graph.labels[held_out] = (graph.labels[held_out] + 1) % graph.num_classes
    torch.testing.assert_close(CorrectAndSmooth(graph, settings=single)(run).scores, before)


def test_supervised_runs_stop_early_on_valid():
    graph = load_graph(HOMOPHILOUS)
    runs = list(supervised_runs(graph, "mlp", runs=2, max_epochs=400, patience=10))
    for run in runs:
        assert run.details["epochs"] <= run.details["best_epoch"] + 11 < 400
        torch.testing.assert_close(run.scores.sum(1), torch.ones(graph.num_nodes))
