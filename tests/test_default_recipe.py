"""The default recipe: a label-free choice in fit (feature smoothness), the recommended representation written and
returned everywhere, and the choice among representations on valid labels (evaluate --model, bench compare)."""

import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from typer.testing import CliRunner

from graph_eigenmap import NeuralEigenmap, neural_eigenmap
from graph_eigenmap.config import TrainConfig
from graph_eigenmap.data import from_scipy, load_graph
from graph_eigenmap.evaluation.recommend import candidates, choose_representation
from graph_eigenmap.kernel import feature_smoothness, normalized_adjacency
from graph_eigenmap.recipe import SMOOTH_FEATURES_MIN, explain, resolve
from graph_eigenmap.registry import REPRESENTATIONS
from graph_eigenmap.representation import node_representation
from graph_eigenmap_cli.main import app

SMOOTH = "csbm:num_nodes=600,num_edges=3000,num_classes=3,num_features=8,homophily=0.9,feature_snr=4,seed=1"
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def misleading():
    """A graph whose features are pure noise with respect to it: smoothness near 0."""
    graph = load_graph(SMOOTH)
    rng = np.random.default_rng(0)
    return from_scipy(graph.adjacency, features=rng.normal(size=(graph.num_nodes, 6)).astype(np.float32),
                      labels=graph.labels, split=graph.split, name="noise")


def test_smoothness_of_the_leading_directions_computed_exactly():
    graph = load_graph(SMOOTH)
    x = np.asarray(graph.features, dtype=np.float64)
    z = (x - x.mean(0)) / x.std(0)
    _, _, vt = np.linalg.svd(z, full_matrices=False)
    scores = z @ vt[:4].T  # the four leading principal directions
    kernel = normalized_adjacency(graph).astype(np.float64)
    expected = np.trace(scores.T @ (kernel @ scores)) / np.trace(scores.T @ scores)
    assert feature_smoothness(graph, components=4) == pytest.approx(expected, rel=1e-3)
    assert expected > 3 * SMOOTH_FEATURES_MIN  # the CSBM's features follow its communities
    everything = np.trace(z.T @ (kernel @ z)) / np.trace(z.T @ z)
    assert expected > everything  # the leading directions are smoother than the noisy columns


def test_noise_features_mislead_and_the_fit_goes_graph_free(misleading):
    assert abs(feature_smoothness(misleading)) < SMOOTH_FEATURES_MIN
    config = resolve(TrainConfig(k=4), misleading, CPU)
    assert config.inputs == "features" and config.representation == "embedding+features"
    smooth = resolve(TrainConfig(k=4), load_graph(SMOOTH), CPU)
    assert smooth.inputs == "propagated:3" and smooth.representation == "backbone"
    asked = resolve(TrainConfig(k=4, inputs="propagated:2", representation="embedding"), misleading, CPU)
    assert asked.inputs == "propagated:2" and asked.representation == "embedding"  # what is asked is kept
    assert explain(config, misleading)["features_mislead"] and not explain(smooth, load_graph(SMOOTH))["features_mislead"]


def test_blogcatalog_misleads_and_the_homophilous_graphs_do_not(shared_data):
    for layout, spec in (("ogb", "ogb/ogbn_{}"), ("npz", "npz/{}.npz")):
        for name in ("blogcatalog", "cora", "uai"):
            graph = load_graph(shared_data / spec.format(name))
            assert (feature_smoothness(graph) < SMOOTH_FEATURES_MIN) == (name == "blogcatalog"), (layout, name)


def test_a_fit_writes_its_recommended_representation_and_says_why(misleading, tmp_path):
    result = neural_eigenmap(misleading, k=4, steps=20, width=16, device="cpu", out_dir=tmp_path, progress=False)
    record = json.loads((tmp_path / "metadata.json").read_text())["representation"]
    assert record["name"] == "embedding+features" and record["file"] == "representation.npy"
    assert record["blocks"] == [4, 6] and record["recipe"]["feature_smoothness"] < SMOOTH_FEATURES_MIN
    written = np.load(tmp_path / "representation.npy")
    np.testing.assert_array_equal(written, np.hstack([result.embedding, misleading.features]))


def test_transform_and_fit_transform_return_the_recommended_representation(misleading):
    model = NeuralEigenmap(4, steps=20, width=16, device="cpu").fit(misleading)
    assert model.representation_ == "embedding+features"
    new = misleading.features[:9]
    np.testing.assert_allclose(model.transform(new), np.hstack([model.embedding_[:9], new]), atol=1e-5)
    assert model.fit_transform(misleading).shape == (misleading.num_nodes, 4 + 6)
    backbone = NeuralEigenmap(4, steps=20, width=16, device="cpu", representation="backbone").fit(misleading)
    np.testing.assert_allclose(backbone.transform(new), backbone.backbone_[:9], atol=1e-5)


def test_side_by_side_parts_and_their_blocks():
    embedding, features = np.ones((3, 2), np.float32), sp.csr_matrix(np.eye(3, 4, dtype=np.float32))
    x, blocks = node_representation("embedding+features", embedding=embedding, features=features)
    assert blocks == (2, 4) and x.shape == (3, 6) and np.array_equal(x[:, 2:], np.eye(3, 4))
    assert node_representation("embedding", embedding=embedding)[0] is embedding  # one part: not copied
    with pytest.raises(Exception, match="needs the backbone"):
        node_representation("backbone+features", embedding=embedding, features=features)


def test_the_choice_on_valid_takes_the_best_candidate_and_cs_only_where_it_helps():
    graph = load_graph(SMOOTH)
    fitted = neural_eigenmap(graph, k=6, steps=40, width=32, device="cpu", progress=False)
    parts = dict(embedding=fitted.embedding, backbone=fitted.backbone, recommended=fitted.config.representation)
    report = choose_representation(parts, graph, label_ratio=0.1, runs=3, device="cpu")
    assert set(report["candidates"]) == set(REPRESENTATIONS.names())
    assert report["candidates"][report["chosen"]] == max(report["candidates"].values())
    probe, smoothed = report["probe"], report["probe_cs"]
    assert report["correct_and_smooth"] == (smoothed["valid_acc_mean"] > probe["valid_acc_mean"])
    final = smoothed if report["correct_and_smooth"] else probe
    assert report["test_acc_mean"] == final["test_acc_mean"] and report["valid_acc_mean"] == final["valid_acc_mean"]
    assert report["candidates"][report["chosen"]] == pytest.approx(probe["valid_acc_mean"], abs=1e-6)


def test_candidates_start_with_the_fit_recommendation_and_need_their_parts():
    graph = load_graph(SMOOTH)
    parts = dict(embedding=np.zeros((graph.num_nodes, 2)), backbone=None)
    assert candidates(parts, graph, "embedding+features") == ["embedding+features", "embedding"]


def test_evaluate_model_reports_every_candidate_and_the_choice(tmp_path):
    runner = CliRunner()
    fit = runner.invoke(app, ["fit", "-d", SMOOTH, "--k", "4", "--width", "16", "--steps", "20", "--device", "cpu",
                              "--out", str(tmp_path / "run"), "--quiet"])
    assert fit.exit_code == 0, fit.output
    result = runner.invoke(app, ["evaluate", "--model", str(tmp_path / "run"), "--runs", "2", "--label-ratio", "0.1",
                                 "--device", "cpu", "--output", str(tmp_path / "result.json")])
    assert result.exit_code == 0, result.output
    payload = json.loads((tmp_path / "result.json").read_text())
    assert payload["dataset"] == "csbm" and payload["recommended_by_fit"] == "backbone"  # -d from the fit's metadata
    assert payload["chosen"] in payload["candidates"] and "default recipe (" in result.stdout
    both = runner.invoke(app, ["evaluate", "--model", str(tmp_path / "run"), "--embeddings", "x.npy"])
    assert both.exit_code == 2 and "one of the two" in both.stderr


def _write_npz(path, graph) -> None:
    """``graph`` in the gnn-benchmark ``.npz`` layout (CSR adjacency and attributes, labels)."""
    adjacency, attributes = sp.csr_matrix(graph.adjacency), sp.csr_matrix(graph.features)
    np.savez(path, adj_data=adjacency.data, adj_indices=adjacency.indices, adj_indptr=adjacency.indptr,
             adj_shape=adjacency.shape, attr_data=attributes.data, attr_indices=attributes.indices,
             attr_indptr=attributes.indptr, attr_shape=attributes.shape, labels=graph.labels)


def test_the_default_recipe_benchmark_small_form(tmp_path):
    """benchmarks/default_recipe.py end to end on a tiny graph: every column of its table, consistent values."""
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "npz").mkdir()
    _write_npz(tmp_path / "npz" / "tiny.npz", load_graph("csbm:num_nodes=240,num_edges=1200,num_classes=3,"
                                                         "num_features=12,seed=2"))
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-m", "benchmarks.default_recipe", "--layout", "npz", "--data", str(tmp_path), "--out",
                           str(tmp_path / "out"), "--graphs", "tiny", "--runs", "2", "--device", "cpu", "--parallel", "1",
                           "--threads", "1", "--methods", "default,features,le-nontrivial,ne,ne-features,gcn,mlp",
                           "--compare-args", "--steps 20 --k 4 --label-ratios 1,0.1"],
                          capture_output=True, text=True, timeout=600, cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "default_recipe.json").read_text())
    assert {"device", "date", "commit", "command", "versions", "runs"} <= set(report)
    assert [(row["graph"], row["label_ratio"]) for row in report["rows"]] == [("tiny", 1.0), ("tiny", 0.1)]
    for row in report["rows"]:
        scores = [row["default"], row["best_variant_test"], row["graph_free"]["test"], *row["baselines"].values()]
        assert all(0.0 <= score <= 1.0 for score in scores)
        assert row["margin"] == pytest.approx(row["default"] - row["target"])
        assert row["best_variant"].startswith("NE ")  # the default row itself is not a variant
        assert set(row["graph_free"]["against"]) == {"Laplacian Eigenmap, nontrivial + features",
                                                     "MLP on features (supervised)"}
    assert "| tiny | 10% |" in (tmp_path / "out" / "default_recipe.md").read_text()


def test_the_default_recipe_drops_the_svd_groups_where_there_is_nothing_to_reduce(tmp_path):
    """100-d features (the OGB layout) make bench compare refuse the SVD groups by name; the benchmark leaves them out
    there and keeps them where the raw columns are wider."""
    from benchmarks.default_recipe import METHODS, methods_for

    narrow, wide = tmp_path / "narrow.npz", tmp_path / "wide.npz"
    _write_npz(narrow, load_graph("csbm:num_nodes=200,num_edges=800,num_classes=2,num_features=100,seed=1"))
    _write_npz(wide, load_graph("csbm:num_nodes=200,num_edges=800,num_classes=2,num_features=101,seed=1"))
    assert methods_for(wide, METHODS) == METHODS
    kept = methods_for(narrow, METHODS).split(",")
    assert kept == [group for group in METHODS.split(",") if not group.startswith("ne-svd")]
    assert "ne-propagated" in kept and len(kept) == len(METHODS.split(",")) - 2
