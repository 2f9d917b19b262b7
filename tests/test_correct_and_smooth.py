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


def _pyg_choice(graph, run, settings):
    """PyG's C&S for each α pair, the best on valid (ties: the first), one run at a time: the reference."""
    from torch_geometric.nn.models import CorrectAndSmooth as PygCorrectAndSmooth

    coo = graph.adjacency.tocoo()
    edge_index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    train = torch.from_numpy(run.train)
    labels, valid = torch.from_numpy(graph.labels), torch.from_numpy(graph.split["valid"])
    best = (-1.0, None)
    for alpha_1 in settings.correction_alphas:
        corrected = PygCorrectAndSmooth(settings.correction_layers, alpha_1, 0, 0.0).correct(
            run.scores, labels[train], train, edge_index)
        for alpha_2 in settings.smoothing_alphas:
            scores = PygCorrectAndSmooth(0, 0.0, settings.smoothing_layers, alpha_2).smooth(
                corrected, labels[train], train, edge_index)
            accuracy = float((scores[valid].argmax(1) == labels[valid]).float().mean())
            if accuracy > best[0]:
                best = (accuracy, scores, (alpha_1, alpha_2))
    return best


def test_many_runs_at_once_equal_pyg_run_by_run():
    """Runs of different training nodes (and two sharing theirs and their scores) propagated side by side, every α
    pair at once: each run's chosen pair and scores are PyG's."""
    graph = load_graph(HOMOPHILOUS)
    settings = CorrectAndSmoothSettings(correction_layers=10, smoothing_layers=10)
    generator = torch.Generator().manual_seed(1)
    runs = [RunPrediction(seed, np.sort(np.random.default_rng(seed).choice(graph.split["train"], 40, replace=False)),
                          torch.softmax(2 * torch.randn(graph.num_nodes, 4, generator=generator), 1))
            for seed in range(3)]
    runs.append(RunPrediction(3, runs[0].train, runs[0].scores))
    smoother = CorrectAndSmooth(graph, settings=settings)
    smoother.runs_at_once = 2  # two groups
    smoothed = smoother.many(runs)
    for run, ours in zip(runs, smoothed):
        accuracy, scores, pair = _pyg_choice(graph, run, settings)
        assert (ours.details["correction_alpha"], ours.details["smoothing_alpha"]) == pair
        assert ours.details["valid_acc"] == round(accuracy, 6) and ours.seed == run.seed
        torch.testing.assert_close(ours.scores, scores, atol=1e-5, rtol=1e-4)
    assert smoothed[3].scores is smoothed[0].scores  # shared training nodes and scores: smoothed once
    assert len({pair for pair in ((r.details["correction_alpha"], r.details["smoothing_alpha"]) for r in smoothed)}) > 1


def test_early_stopping_on_the_device_equals_the_epoch_by_epoch_loop():
    """The best epoch, the epochs run and the best logits are those of the plain loop that reads valid accuracy on
    the host every epoch and stops at once."""
    from graph_eigenmap.baselines.supervised import MLP, _train_early_stopping, standardized_features

    graph = load_graph(HOMOPHILOUS)
    x = standardized_features(graph, "cpu", graph.split["train"])
    labels = torch.from_numpy(graph.labels)
    train, valid = torch.from_numpy(graph.split["train"][:60]), torch.from_numpy(graph.split["valid"])
    torch.manual_seed(0)
    model = MLP(x.shape[1], 32, 4)
    state = {key: value.clone() for key, value in model.state_dict().items()}
    torch.manual_seed(5)
    logits, best_epoch, epochs = _train_early_stopping(model, x, None, labels, train, valid, 300, 7)

    model.load_state_dict(state)
    torch.manual_seed(5)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    best = (-1.0, 0, None)
    for epoch in range(300):
        model.train()
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x)[train], labels[train]).backward()
        optimizer.step()
        model.eval()
        with torch.no_grad():
            current = model(x)
        accuracy = float((current[valid].argmax(1) == labels[valid]).float().mean())
        if accuracy > best[0]:
            best = (accuracy, epoch, current)
        elif epoch - best[1] >= 7:
            break
    assert (best_epoch, epochs) == (best[1], epoch + 1) and epochs < 300
    assert epochs % 16 != 0  # the stop fell between two of the host's looks: epochs ran past it and changed nothing
    torch.testing.assert_close(logits, best[2], atol=0, rtol=0)
