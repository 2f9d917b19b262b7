"""The OGB-protocol probe, the supervised baselines, and the evaluate / bench compare commands."""

import json
import re

import numpy as np
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from graph_eigenmap.baselines.supervised import supervised_baseline
from graph_eigenmap.data import build_graph, load_graph
from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.evaluation import evaluate_embeddings
from graph_eigenmap.evaluation.truncation import prefix_sizes
from graph_eigenmap.protocol import train_subset
from graph_eigenmap_cli.main import app


def _separable_graph(n=600, flip_test=0.1):
    """Labels = sign of feature 0; exactly ``flip_test`` of the test labels flipped: best accuracy 1 - flip_test."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 5)).astype(np.float32)
    x[:, 0] += np.sign(x[:, 0]) * 0.5  # a margin
    labels = (x[:, 0] > 0).astype(np.int64)
    edges = np.array([np.arange(n - 1), np.arange(1, n)])
    graph = build_graph(edges, n, features=x, labels=labels, name="separable", source="test")
    test = graph.split["test"]
    flipped = test[: int(flip_test * len(test))]
    graph.labels[flipped] = 1 - graph.labels[flipped]
    return graph


def test_probe_reaches_the_known_accuracy():
    graph = _separable_graph(2000)
    result = evaluate_embeddings(graph.features, graph, runs=3)
    expected = 1 - int(0.1 * len(graph.split["test"])) / len(graph.split["test"])
    assert result.test_acc_mean == pytest.approx(expected, abs=1e-9)
    assert result.valid_acc_mean == 1.0 and len(result.test_acc) == 3 and result.test_acc_std == 0.0


def test_probe_on_noise_is_at_chance():
    graph = _separable_graph(flip_test=0.0)
    noise = np.random.default_rng(1).normal(size=(graph.num_nodes, 5))
    assert abs(evaluate_embeddings(noise, graph, runs=2).test_acc_mean - 0.5) < 0.1


def test_label_ratio_subsets_are_seeded_fractions():
    train = np.arange(1000)
    subset = train_subset(train, 0.1, seed=3)
    assert len(subset) == 100 and np.array_equal(subset, train_subset(train, 0.1, seed=3))
    assert not np.array_equal(subset, train_subset(train, 0.1, seed=4))
    assert len(train_subset(train, 0.0001, seed=0)) == 1
    with pytest.raises(GraphEigenmapError):
        train_subset(train, 1.5, seed=0)


def test_wrong_shaped_embeddings_are_refused():
    graph = _separable_graph()
    with pytest.raises(GraphEigenmapError, match="shape"):
        evaluate_embeddings(np.zeros((5, 2)), graph)


def test_gcn_learns_a_csbm_well_above_chance_and_beats_the_mlp():
    graph = load_graph("csbm:num_nodes=1500,num_edges=9000,num_classes=4,num_features=8,homophily=0.9,feature_snr=0.7")
    gcn = supervised_baseline(graph, "gcn", runs=2, max_epochs=60)
    mlp = supervised_baseline(graph, "mlp", runs=2, max_epochs=60)
    assert gcn.test_acc_mean > 0.7  # chance is 0.25
    assert gcn.test_acc_mean > mlp.test_acc_mean + 0.1


def test_prefix_sizes():
    assert prefix_sizes(64) == [1, 2, 4, 8, 16, 32, 64]
    assert prefix_sizes(48) == [1, 2, 4, 8, 16, 32, 48]
    assert prefix_sizes(1) == [1]


def test_cli_evaluate_and_bench_compare(tmp_path):
    spec = "csbm:num_nodes=600,num_edges=3000,num_classes=3,num_features=8"
    graph = load_graph(spec)
    np.save(tmp_path / "x.npy", graph.features)
    runner = CliRunner()
    result = runner.invoke(app, ["evaluate", "--embeddings", str(tmp_path / "x.npy"), "-d", spec, "--runs", "2",
                                 "--label-ratio", "0.5", "--output", str(tmp_path / "e.json"), "--device", "cpu",
                                 "--correct-and-smooth"])
    assert result.exit_code == 0, result.output
    payload = json.loads((tmp_path / "e.json").read_text())
    for key in ("test_acc_mean", "test_acc_std", "valid_acc_mean", "runs", "label_ratio", "test_acc", "valid_acc"):
        assert key in payload and key in payload["correct_and_smooth"]
    assert payload["runs"] == 2 and payload["label_ratio"] == 0.5 and "(synthetic)" in result.stdout
    for run in payload["extra"]["runs"]:
        assert run["C"] in [fit["C"] for fit in run["fits"]] and run["converged"]
        assert all(fit["iterations"] >= 0 and fit["gradient_norm"] <= 1e-6 for fit in run["fits"])
    assert {"correction_alpha", "smoothing_alpha"} <= payload["correct_and_smooth"]["extra"]["runs"][0].keys()
    assert "50% of the train labels" in result.stdout and "probe + C&S" in result.stdout

    out = tmp_path / "compare"
    result = runner.invoke(app, ["bench", "compare", "-d", spec, "--out", str(out), "--runs", "2", "--k", "4",
                                 "--steps", "20", "--label-ratios", "1,0.5", "--max-epochs", "10",
                                 "--truncation-runs", "1", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "compare.json").read_text())
    methods = {row["method"] for row in report["results"]}
    assert {"GCN (supervised)", "GCN (supervised) + C&S", "Laplacian Eigenmap, top + features",
            "Laplacian Eigenmap, nontrivial", "NE stop-grad: backbone", "NE stop-grad: backbone + C&S",
            "NE no stop-grad: eigenfunctions", "NE stop-grad: backbone, inductive"} <= methods
    assert len(report["results"]) == 2 * len(methods)
    assert (out / "truncation.png").stat().st_size > 1000 and "(synthetic)" in (out / "compare.md").read_text()
    assert [row["m"] for row in report["truncation"]["stop-gradient"]] == [1, 2, 4]


def test_gcn_layer_on_precomputed_adjacency_equals_pyg_on_the_edge_list():
    import torch
    from torch_geometric.nn import GCNConv

    from graph_eigenmap.baselines.supervised import gcn_adjacency

    graph = load_graph("csbm:num_nodes=300,num_edges=1500,num_features=6")
    coo = graph.adjacency.tocoo()
    edge_index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    x = torch.from_numpy(graph.features)
    torch.manual_seed(0)
    reference = GCNConv(6, 4)  # PyG's own normalization with self-loops, on the edge list
    ours = GCNConv(6, 4, normalize=False)
    ours.load_state_dict(reference.state_dict())
    torch.testing.assert_close(ours(x, gcn_adjacency(graph, "cpu")), reference(x, edge_index), atol=1e-5, rtol=1e-5)


def test_gcn_on_new_nodes_from_their_neighbourhood_equals_the_full_graph_gcn():
    import torch

    from graph_eigenmap.baselines.supervised import GCN, gcn_adjacency, standardized_features
    from graph_eigenmap.evaluation.cost import gcn_on_nodes

    graph = load_graph("csbm:num_nodes=2000,num_edges=6000,num_features=6,degree_spread=1")
    coo = graph.adjacency.tocoo()
    edge_index = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    x = standardized_features(graph, "cpu")
    torch.manual_seed(0)
    gcn = GCN(6, 16, graph.num_classes, layers=2).eval()
    with torch.no_grad():
        full = gcn(x, gcn_adjacency(graph, "cpu"))
    nodes = torch.tensor([3, 500, 1999, 7])
    torch.testing.assert_close(gcn_on_nodes(gcn, edge_index, graph.num_nodes, x, nodes, layers=2), full[nodes],
                               atol=1e-5, rtol=1e-5)
    # one hop is too few for two layers: the check above can tell a truncated neighbourhood
    assert not torch.allclose(gcn_on_nodes(gcn, edge_index, graph.num_nodes, x, nodes, layers=1), full[nodes], atol=1e-3)


def _many_components_npz(tmp_path):
    """A written .npz of 8 random blocks (8 components), 4 classes, 20 binary (bag-of-words-like) features."""
    from helpers import write_npz

    rng = np.random.default_rng(3)
    blocks = [sp.random(30, 30, density=0.15, random_state=int(s)) for s in rng.integers(0, 1000, size=8)]
    adjacency = sp.block_diag(blocks).tocsr()
    adjacency = ((adjacency + adjacency.T) > 0).astype(np.float32)
    adjacency.setdiag(0)
    adjacency.eliminate_zeros()
    features = sp.csr_matrix((rng.random((240, 20)) < 0.2).astype(np.float32))
    return write_npz(tmp_path / "unseen.npz", adjacency, features, np.repeat(np.arange(4), 60))


def test_bench_compare_runs_a_subset_of_methods_with_nontrivial_le_and_cs_rows(tmp_path):
    """A graph the project has never seen (a written .npz with many components): only the asked methods run."""
    path = _many_components_npz(tmp_path)
    out = tmp_path / "compare"
    result = CliRunner().invoke(app, ["bench", "compare", "-d", str(path), "--out", str(out), "--runs", "2", "--k", "8",
                                      "--methods", "features,le-nontrivial,gcn", "--label-ratios", "1,0.5",
                                      "--max-epochs", "30", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "compare.json").read_text())
    methods = {row["method"] for row in report["results"]}
    assert methods == {"Features (linear probe)", "Features (linear probe) + C&S", "Laplacian Eigenmap, nontrivial",
                       "Laplacian Eigenmap, nontrivial + features", "GCN (supervised)", "GCN (supervised) + C&S"}
    needs = {row["method"]: row["needs_at_test_time"] for row in report["results"]}
    assert needs["Features (linear probe)"] == "features only" and needs["GCN (supervised)"] == "graph at test time"
    assert needs["Laplacian Eigenmap, nontrivial"] == "transductive" and needs["GCN (supervised) + C&S"] == "transductive"
    for row in report["results"]:
        assert {"method", "label_ratio", "test_acc_mean", "test_acc_std", "needs_at_test_time"} <= row.keys()
        if row["method"].startswith(("Features (linear probe)", "Laplacian")) and "C&S" not in row["method"]:
            assert len(row["chosen_C"]) == 2 and row["probe_converged"] is True
    assert "truncation" not in report and not (out / "truncation.png").exists()
    assert "fit Neural Eigenmap" not in result.output  # nothing that was not asked for
    assert "elapsed" in result.output


def test_bench_compare_probes_eigenvectors_beside_the_features_block_by_block(tmp_path):
    """LE + features and the ne-features group: eigenvectors standardized, the binary words left as they are."""
    from graph_eigenmap.baselines.laplacian_eigenmap import laplacian_eigenmap

    path = _many_components_npz(tmp_path)
    out = tmp_path / "compare"
    result = CliRunner().invoke(app, ["bench", "compare", "-d", str(path), "--out", str(out), "--runs", "2", "--k", "8",
                                      "--steps", "20", "--methods", "le-nontrivial,ne-features,ne-nontrivial-features", "--label-ratios", "1",
                                      "--device", "cpu"])
    assert result.exit_code == 0, result.output
    rows = {row["method"]: row for row in json.loads((out / "compare.json").read_text())["results"]}
    for prefix in ("NE stop-grad", "NE no stop-grad", "NE stop-grad, nontrivial kernel", "NE no stop-grad, nontrivial kernel"):
        assert rows[f"{prefix}: eigenfunctions + features"]["needs_at_test_time"] == "features only"
    graph = load_graph(path)
    _, vectors = laplacian_eigenmap(graph, 8, variant="nontrivial")
    x = np.hstack([vectors, np.asarray(graph.features)])
    blocks, one_block = (evaluate_embeddings(x, graph, runs=2, blocks=widths) for widths in ((8, 20), None))
    assert rows["Laplacian Eigenmap, nontrivial + features"]["test_acc_mean"] == pytest.approx(blocks.test_acc_mean)
    assert blocks.test_acc_mean != pytest.approx(one_block.test_acc_mean)  # the two scalings can be told apart here
    assert len(rows) == 6


def test_bench_compare_refuses_unknown_methods(tmp_path):
    result = CliRunner().invoke(app, ["bench", "compare", "--out", str(tmp_path / "c"), "--methods", "ne,gat"])
    assert result.exit_code == 2 and "--methods" in result.output and not (tmp_path / "c").exists()


def test_bench_compare_neural_eigenmap_variants_say_what_they_need(tmp_path):
    spec = "csbm:num_nodes=500,num_edges=2500,num_classes=3,num_features=6"
    out = tmp_path / "variants"
    result = CliRunner().invoke(app, ["bench", "compare", "-d", spec, "--out", str(out), "--runs", "1", "--k", "4",
                                      "--steps", "10", "--methods", "ne-nontrivial,ne-propagated,cost", "--label-ratios", "1",
                                      "--propagation-hops", "1", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    rows = {row["method"]: row for row in json.loads((out / "compare.json").read_text())["results"]}
    assert rows["NE stop-grad, nontrivial kernel: backbone"]["needs_at_test_time"] == "features only"
    assert rows["NE no stop-grad, propagated:1: eigenfunctions"]["needs_at_test_time"] == "graph at test time"
    assert rows["NE stop-grad, propagated:1: backbone + C&S"]["needs_at_test_time"] == "transductive"
    assert len(rows) == 16 and "fit Neural Eigenmap (stop-gradient on, inputs propagated:1)" in result.output
    report = json.loads((out / "compare.json").read_text())
    assert report["neural_eigenmap_config"]["inputs"] == "features"  # the graph-free groups read features only
    cost = report["test_time_cost"]
    assert cost["propagation_hops"] == 1 and cost["ne_propagated_stored_floats"] == 500 * 2 * 6
    assert cost["ne_propagated_parameters"] > cost["ne_parameters"]  # its first layer reads [X, ÂX]: 12 columns
    assert all(cost[key] > 0 for key in ("ne_propagated_all_test_s", "ne_propagated_one_node_s", "gcn_one_node_s"))
    assert "Neural Eigenmap, propagated:1" in (out / "compare.md").read_text()


def test_bench_compare_help_names_every_method_group():
    from graph_eigenmap.evaluation.compare import METHOD_GROUPS

    result = CliRunner().invoke(app, ["bench", "compare", "--help"], terminal_width=200)
    text = re.sub(r"-\s+", "-", " ".join(result.output.split()))  # rich may wrap a line after a hyphen
    listed = {name.strip(" ,.():") for name in text.split("run:", 1)[1].split("(default")[0].split(",")}
    assert listed == set(METHOD_GROUPS), listed ^ set(METHOD_GROUPS)


def test_bench_compare_fit_per_run_probes_run_r_on_the_fit_from_seed_r(tmp_path):
    """With fit_per_run the 100 %-label runs differ by their fits; run r's accuracy is the probe on seed r's fit."""
    from graph_eigenmap.api import neural_eigenmap
    from graph_eigenmap.evaluation.compare import compare
    from graph_eigenmap.evaluation.probe import probe_runs
    from graph_eigenmap.protocol import score_runs

    graph = load_graph("csbm:num_nodes=400,num_edges=2000,num_classes=3,num_features=6")
    options = dict(steps=15)
    once, per_run = (compare(graph, out_dir=tmp_path / str(flag), methods=["ne"], label_ratios=(1.0,), runs=2, k=4,
                             fit_options=options, fit_per_run=flag, log=lambda _: None) for flag in (False, True))
    row = {r["method"]: r for r in per_run["results"]}["NE stop-grad: eigenfunctions"]
    expected = []
    for seed in range(2):
        fitted = neural_eigenmap(graph, k=4, seed=seed, device="cpu", progress=False, inputs="features", **options)
        result, _ = score_runs(probe_runs(fitted.embedding, graph, runs=1, first_seed=seed), graph, method="x",
                               label_ratio=1.0, runs=1)
        expected.append(result.test_acc[0])
    assert row["test_acc"] == pytest.approx(expected) and expected[0] != expected[1]
    same = {r["method"]: r for r in once["results"]}["NE stop-grad: eigenfunctions"]
    assert same["test_acc"][0] == same["test_acc"][1] == pytest.approx(expected[0])  # one fit, one training set
    assert per_run["neural_eigenmap_fits"].startswith("one per run")
    assert "Neural Eigenmap fits: one per run" in (tmp_path / "True" / "compare.md").read_text()
