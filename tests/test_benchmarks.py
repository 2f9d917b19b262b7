"""Every benchmark suite's small form end to end (a tiny graph, CPU): the keys and the sanity of what it writes.

The full forms are what the committed results in benchmarks/results/ come from; these keep the suites from rotting.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import common, distributed, quality, scale, speed  # noqa: E402
from graph_eigenmap import load_graph  # noqa: E402
from graph_eigenmap.train import STEP_PHASES  # noqa: E402

PROVENANCE = {"suite", "command", "date", "commit", "device", "seeds", "versions"}


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """One torch thread here and in the suites' subprocesses: two would fight the other processes of a 2-core CI."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    torch.set_num_threads(threads)


def assert_provenance(report: dict, suite: str, seeds) -> None:
    assert PROVENANCE <= set(report)
    assert report["suite"] == suite and report["command"].startswith(f"python -m benchmarks.{suite} ")
    assert report["seeds"] == list(seeds)
    assert {"torch", "torch_geometric", "cuda"} <= set(report["versions"])
    assert report["versions"]["torch"] == torch.__version__
    assert report["commit"] and report["date"][:2] == "20" and report["device"].startswith("CPU")


def positive_figures(report: dict) -> dict:
    """The report's flat numbers, checked finite; rates, floors and ratios positive, times not negative (a time
    rounded to the report's digits can be 0 on a tiny graph)."""
    figures = {key: value for key, value in report.items()
               if isinstance(value, (int, float)) and not isinstance(value, bool)}
    assert all(math.isfinite(value) for value in figures.values())
    for key, value in figures.items():
        if key.endswith(("_per_s", "_floor", "_ratio_to_floor", "tflops")):
            assert value > 0, key
        if key.endswith(("_s", "_ms", "_gib")):
            assert value >= 0, key
    return figures


def test_speed_small_form_measures_out_of_sample_from_the_models_inputs(tmp_path):
    report = speed.main(["--out", str(tmp_path), "--small"])
    assert_provenance(report, "speed", [0])
    written = json.loads((tmp_path / "speed_small.json").read_text())
    assert written == json.loads(json.dumps(report))
    figures = positive_figures(report)
    # the model reads propagated:3 inputs of the 16 features, 64 columns, and out-of-sample feeds it those
    assert report["inputs"] == "propagated:3"
    assert report["input_columns"] == report["oos_input_columns"] == 4 * speed.SMALL.features
    assert report["model"].startswith("MLP 64-64-64")
    assert report["oos_new_node_inputs_max_abs_error"] < 1e-4  # graph nodes given with their edges: their own rows
    assert report["oos_new_nodes_batch"] == speed.SMALL.new_nodes
    for key in ("oos_nodes_per_s_eager", "oos_nodes_per_s_fp32_to_host", "oos_new_nodes_per_s_with_inputs",
                "oos_50_new_nodes_s", "oos_50_new_nodes_with_inputs_s", "gcn_inference_50_new_nodes_s",
                "gcn_inference_all_nodes_s", "eigensolver_k4_s", "reference_epoch_s", "block_step_ms_k4_eager",
                "rows_step_ms_k4_eager", "full_graph_step_ms_k8_eager", "epoch_s_sampled_k4_eager_two_sided"):
        assert key in figures, key
    n, batch = speed.SMALL.nodes, speed.SMALL.batch
    for k in speed.SMALL.ks:  # an epoch is n / batch steps at the measured rate (rounded to 0.1 step/s)
        assert report[f"epoch_s_sampled_k{k}_eager"] == pytest.approx(
            n / batch / report[f"steps_per_s_sampled_k{k}_eager"], rel=0.05)
        assert report[f"epoch_s_sampled_k{k}_eager_ratio_to_floor"] == pytest.approx(
            report[f"epoch_s_sampled_k{k}_eager"] / report[f"epoch_s_sampled_k{k}_eager_floor"], rel=0.1, abs=0.06)
    assert report["reference_epoch_s"] == pytest.approx(  # rounded to 0.1 s
        report["reference_step_ms"] / 1000 * (n / speed.SMALL.reference["batch_size"]) ** 2, rel=0.02, abs=0.05)
    assert [row["phase"] for row in report["profile"]["eager"]["phases"]] == list(STEP_PHASES)  # tests/test_speed_profile.py
    assert report["time_to_plateau_s"] == min(v for key, v in figures.items() if key.startswith("time_to_plateau_s_"))
    assert report["eigensolver_k4_iterations"] >= 1
    assert not any(key.startswith("peak_gpu") for key in report)  # no GPU figures from a CPU run
    text = (tmp_path / "speed_small.md").read_text()
    assert "1,000 nodes" in text and "| oos_nodes_per_s_eager |" in text and "inputs=propagated:3" in text


def write_npz(path: Path, graph) -> None:
    """``graph`` in the gnn-benchmark ``.npz`` layout (CSR adjacency and attributes, labels)."""
    adjacency, attributes = sp.csr_matrix(graph.adjacency), sp.csr_matrix(graph.features)
    np.savez(path, adj_data=adjacency.data, adj_indices=adjacency.indices, adj_indptr=adjacency.indptr,
             adj_shape=adjacency.shape, attr_data=attributes.data, attr_indices=attributes.indices,
             attr_indptr=attributes.indptr, attr_shape=attributes.shape, labels=graph.labels)


def test_quality_small_form_compares_and_draws_spectrum_and_truncation(tmp_path):
    (tmp_path / "npz").mkdir()
    write_npz(tmp_path / "npz" / "tiny.npz", load_graph("csbm:num_nodes=300,num_edges=1500,num_classes=3,"
                                                        "num_features=12,seed=2"))
    out = tmp_path / "out"
    reports = quality.main(["--data", str(tmp_path), "--layouts", "npz", "--datasets", "tiny", "--out", str(out),
                            "--small"])
    compare = json.loads((out / "compare" / "npz" / "tiny" / "compare.json").read_text())
    assert {"commit", "seeds", "suite_command", "versions", "device", "date", "command"} <= set(compare)
    assert compare["seeds"] == [0, 1] and "cuda" in compare["versions"]
    assert compare["label_ratios"] == [1.0, 0.1]
    rows = {(row["method"], row["label_ratio"]): row for row in compare["results"]}
    assert all(0.0 <= row["test_acc_mean"] <= 1.0 and len(row["test_acc"]) == 2 for row in rows.values())
    summary = reports["compare"]["npz"]
    assert_provenance(summary, "quality", [0, 1])
    probe = rows[("Features (linear probe)", 1.0)]["test_acc_mean"]
    assert summary["test_acc_mean"]["tiny"]["Features (linear probe)"] == {1.0: probe,
                                                                          0.1: rows[("Features (linear probe)", 0.1)]
                                                                          ["test_acc_mean"]}
    table = (out / "compare" / "npz" / "summary.md").read_text()
    assert f"| tiny | {100 * probe:.1f} / " in table and "GCN (supervised)" in table

    spectrum = reports["spectrum"]
    assert_provenance(spectrum, "quality", [0])
    assert [(row["k"], row["features"]) for row in spectrum["rows"]] == [
        (k, features) for k in (4, 8) for features in ("identity", "input", "input")]
    for row in spectrum["rows"]:
        assert 0.0 <= row["captured_spectrum"] <= 1.0 + 1e-6
        assert row["exact_first"][0] == pytest.approx(1.0, abs=1e-4)  # the trivial eigenvalue of a connected graph
        assert max(row["rayleigh_first"]) <= row["exact_first"][0] + 1e-3  # no quotient above the top eigenvalue
    assert [row["inputs"] for row in spectrum["rows"][:3]][::2] == ["-", "features"]

    truncation = reports["truncation"]
    assert_provenance(truncation, "quality", [0])
    (case,) = truncation["cases"]
    assert set(case["kernels"]) == set(quality.KERNELS)
    for result in case["kernels"].values():
        for curve in ("stop_gradient", "no_stop_gradient", "exact"):
            assert [point["m"] for point in result[curve]] == [1, 2, 4, 8]
            assert all(0.0 <= point["test"] <= 1.0 for point in result[curve])
        assert result["largest_fall"] == quality.largest_fall(result["stop_gradient"])
        assert result["monotone"] == (result["largest_fall"] == 0)
    assert "## nontrivial kernel" in (out / "truncation.md").read_text()


def test_scale_small_form_generates_loads_solves_probes_and_fits(tmp_path):
    reports = scale.main(["--out", str(tmp_path), "--small"])
    assert list(reports) == list(scale.PARTS)
    for part, report in reports.items():
        assert_provenance(report, "scale", [0, 1] if part == "probe" else [0])
        positive_figures(report)
        assert (tmp_path / f"scale_{part}.md").read_text().startswith(f"# Scale: {part}")
    generated = reports["generate"]
    assert (generated["num_nodes"], generated["num_edges"]) == (1000, 5000) and generated["peak_host_gib"] > 0
    loaded = reports["load"]  # the written ogbn-products layout read back by `graph-eigenmap info`
    assert (loaded["num_nodes"], loaded["num_edges"]) == (1000, 5000)
    assert loaded["peak_rss_gib"] == max(loaded["first_peak_rss_gib"], loaded["cached_peak_rss_gib"])
    assert loaded["meets_targets"] == all(loaded[key] <= value for key, value in scale.LOAD_TARGETS.items())
    solved = reports["eigsh"]
    assert [run["num_nodes"] for run in solved["runs"]] == [1000, 3000] and solved["k"] == 8
    probed = reports["probe"]
    assert [row["label_ratio"] for row in probed["probe"]] == [1.0, 0.1, 0.01]
    assert all(0.0 <= row["test_acc_mean"] <= 1.0 and len(row["chosen_C"]) == 2 for row in probed["probe"])
    fitted = reports["fit"]
    assert (fitted["steps"], fitted["k"], fitted["num_nodes"]) == (20, 8, 1000)
    assert fitted["fit_command"].startswith("graph-eigenmap fit -d csbm:num_nodes=1000")
    assert fitted["fit_wall_s"] >= fitted["fit_s_after_loading"] >= fitted["training_s"]
    assert 0.0 <= fitted["captured_spectrum"] <= 1.0 and 0.0 <= fitted["probe_test_acc"] <= 1.0
    assert len(fitted["rayleigh_quotients_first"]) == 4 and max(fitted["rayleigh_quotients_first"]) <= 1.0 + 1e-4
    # sampled from outside: anonymous memory within what the process held at its peak, phases named by the library
    assert 0 < fitted["fit_peak_rss_anon_gib"] <= fitted["fit_peak_host_gib"] * 1.5
    phases = {row["phase"] for row in fitted["fit_memory_phases"]}  # 1 Hz: a tiny fit shows some of its phases
    assert phases and phases <= {"start", "load", "map", "share", "resolve", "inputs", "setup", "train", "outputs",
                                 "done"}


def test_distributed_small_form_scales_one_and_two_processes(tmp_path):
    report = distributed.main(["--out", str(tmp_path), "--small"])
    assert_provenance(report, "distributed", [0])
    one, two = report["runs"]
    assert (one["nproc"], two["nproc"]) == (1, 2) and one["steps"] == two["steps"] == 10
    assert one["speedup"] == 1.0 and one["allreduce_bytes_per_step"] == 0 < two["allreduce_bytes_per_step"]
    assert two["efficiency"] == pytest.approx(two["speedup"] / 2, abs=1e-3)
    assert two["speedup"] == pytest.approx(one["epoch_s"] / two["epoch_s"], rel=0.01)
    for row in (one, two):  # an epoch is n / (N batch) steps; the objective is a sum of k quotients in [-1, 1]
        assert row["epoch_s"] == pytest.approx(row["step_s"] * 1000 / (row["nproc"] * 128), rel=0.02)
        assert 0.0 < row["final_objective"] <= 8.0
    assert "| nproc | 2 |" in (tmp_path / "distributed_scaling.md").read_text()


def test_plateau_is_the_first_entry_within_one_percent_of_the_final_objective():
    history = [(10 * i, float(i), loss, 0.0) for i, loss in enumerate([-1.0, -5.0, -9.0, -9.95, -10.0, -10.0, -10.0],
                                                                      start=1)]
    assert common.plateau_entry(history)[:2] == (40, 4.0)  # |-9.95 - (-10)| <= 0.1
    assert common.step_seconds(history) == pytest.approx(0.1)  # (7 - 1) s over 60 steps


def test_a_figure_and_its_floor_give_the_ratio_for_times_and_rates():
    report = common.Report()
    report.put("step_s", 2.0, floor=0.5)
    report.put("nodes_per_s", 100.0, floor=400.0, rate=True, digits=0)
    assert (report["step_s_floor"], report["step_s_ratio_to_floor"]) == (0.5, 4.0)
    assert (report["nodes_per_s_floor"], report["nodes_per_s_ratio_to_floor"]) == (400, 4.0)


def test_truncation_verdicts():
    rising = [dict(m=m, test=t) for m, t in ((1, 0.3), (2, 0.5), (4, 0.45), (8, 0.47), (16, 0.40))]
    assert quality.largest_fall(rising) == 0.07
    assert quality.largest_fall([dict(m=1, test=0.1), dict(m=2, test=0.2)]) == 0.0
    span = [dict(m=point["m"], test=point["test"] - 0.01) for point in rising]
    assert quality.verdict(rising, span) == dict(monotone=False, largest_fall=0.07, beats_span_small=True,
                                                 smallest_margin=0.01)
    assert quality.mean_curve([[dict(m=1, valid=0.2, test=0.4)], [dict(m=1, valid=0.4, test=0.6)]]) == [
        dict(m=1, valid=0.3, test=0.5)]


def test_every_suite_answers_help_and_names_its_small_form(capsys):
    for suite in (speed, quality, scale, distributed):
        with pytest.raises(SystemExit) as done:
            suite.parse(["--help"])
        assert done.value.code == 0
        assert "--small" in capsys.readouterr().out


def test_the_commit_is_read_from_git_or_the_environment(monkeypatch, tmp_path):
    if (ROOT / ".git").exists():
        assert common.commit() != "unknown"  # this checkout
    monkeypatch.setattr(common, "ROOT", tmp_path)  # not a checkout: the variable a device machine sets, or unknown
    monkeypatch.setenv("BENCHMARK_COMMIT", "abc1234")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert common.commit() == "abc1234"
    monkeypatch.delenv("BENCHMARK_COMMIT")
    assert common.commit() == "unknown"
