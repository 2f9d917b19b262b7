"""The host memory suite's small form end to end (a tiny csbm, ``fit`` in one process and with ``--nproc 2`` on gloo,
CPU), sampled from outside through /proc: the values it reports and the arithmetic between them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import host_memory  # noqa: E402
from graph_eigenmap.host_memory import PHASES  # noqa: E402

GIB = 2**30
pytestmark = pytest.mark.skipif(not Path("/proc/self/smaps_rollup").exists(), reason="reads Linux /proc")


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The small form's report and its output folder (one torch thread in the fits: CI has 2 cores)."""
    out = tmp_path_factory.mktemp("host-memory")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OMP_NUM_THREADS", "1")
        report = host_memory.main(["--out", str(out), "--small"])
    return report, out


def test_both_runs_finish_and_report_positive_peaks_from_named_phases(small):
    report, out = small
    assert {"suite", "command", "date", "commit", "device", "seeds", "versions"} <= set(report)
    assert report["suite"] == "host_memory" and report["command"].startswith("python -m benchmarks.host_memory ")
    assert json.loads((out / "host_memory_small.json").read_text()) == json.loads(json.dumps(report))
    one, two = report["runs"]
    assert (one["nproc"], two["nproc"]) == (1, 2)
    for run in (one, two):
        assert run["exit_code"] == 0 and not run["timed_out"], run.get("log_tail")
        assert run["peak_pss_bytes"] > 0 and run["peak_rss_anon_bytes"] > 0
        assert run["peak_pss_gib"] == round(run["peak_pss_bytes"] / GIB, 3)
        assert run["peak_rss_anon_gib"] == round(run["peak_rss_anon_bytes"] / GIB, 3)
        assert set(run["peak_pss_parts_gib"]) == {"Pss_Anon", "Pss_File", "Pss_Shmem"}
        assert sum(run["peak_pss_parts_gib"].values()) == pytest.approx(run["peak_pss_gib"], abs=0.004)
        # phases: the library's names (and "start" before its first mark); the overall peak is the highest phase's
        assert set(run["phases"]) <= {"start", *PHASES} and "start" in run["phases"]
        assert run["peak_pss_phase"] in run["phases"] and run["peak_rss_anon_phase"] in run["phases"]
        assert max(p["peak_pss_gib"] for p in run["phases"].values()) == run["peak_pss_gib"]
        assert max(p["peak_rss_anon_gib"] for p in run["phases"].values()) == run["peak_rss_anon_gib"]
        assert run["phases"][run["peak_pss_phase"]]["peak_pss_gib"] == run["peak_pss_gib"]
        assert sum(p["samples"] for p in run["phases"].values()) == run["samples"]
        # no process holds more than the sum at the sampled peak allows; the peaks of the parts sum to at least it
        assert sum(p["peak_pss_gib"] for p in run["processes"]) >= run["peak_pss_gib"] - 0.002 * len(run["processes"])
        assert all(p["peak_pss_gib"] <= run["peak_pss_gib"] + 0.001 for p in run["processes"])
    assert [p["rank"] for p in one["processes"]] == ["single"]
    assert {"launcher", "0", "1"} <= {p["rank"] for p in two["processes"]}
    assert {"share", "map"} & set(two["phases"]) and not {"share", "map"} & set(one["phases"])


def test_the_two_process_ratio_is_that_of_the_two_peaks(small):
    report, out = small
    one, two = report["runs"]
    ratio = two["peak_pss_bytes"] / one["peak_pss_bytes"]
    assert one["peak_pss_vs_one_process"] == 1.0
    assert two["peak_pss_vs_one_process"] == report["peak_pss_vs_one_process"]["2"] == pytest.approx(ratio, abs=6e-4)
    assert ratio > 1.0  # two interpreters with torch, and a launcher, against one: more, on a graph this small
    assert report["meets_target"] == (ratio <= host_memory.PSS_RATIO_TARGET)
    text = (out / "host_memory_small.md").read_text()
    assert f"| 2 | 0 | {two['wall_s']} | {two['peak_pss_gib']:.2f} ({two['peak_pss_phase']}) |" in text
    assert f"| {two['peak_pss_vs_one_process']} |" in text


def test_the_data_is_the_size_of_the_graphs_arrays(small):
    from graph_eigenmap import load_graph
    from graph_eigenmap.registry import parse_inputs

    report, _ = small
    spec = report["dataset"]
    graph = load_graph(spec)
    n, m = graph.num_nodes, graph.adjacency.nnz // 2
    for run in report["runs"]:
        data = run["data"]
        assert (data["num_nodes"], data["num_edges"], data["num_features"]) == (2000, m, 16) and n == 2000
        width = data["input_width"]
        assert width == parse_inputs(data["inputs"]).width(16) and width > 16  # propagated inputs beside the features
        csr = graph.adjacency
        assert data["graph_bytes"] == csr.indptr.nbytes + csr.indices.nbytes + csr.data.nbytes == 2001 * 4 + 2 * m * 8
        assert data["features_bytes"] == graph.features.nbytes == 4 * n * 16
        assert data["inputs_bytes"] == 4 * n * width
        assert data["labels_split_bytes"] == graph.labels.nbytes + sum(part.nbytes for part in graph.split.values())
        assert data["total_bytes"] == sum(data[key] for key in ("graph_bytes", "features_bytes", "inputs_bytes",
                                                                 "labels_split_bytes"))
        assert run["peak_pss_bytes_per_node"] == pytest.approx(run["peak_pss_bytes"] / n, abs=0.06)
        assert run["peak_rss_anon_bytes_per_node"] == pytest.approx(run["peak_rss_anon_bytes"] / n, abs=0.06)
        assert run["peak_pss_vs_data"] == pytest.approx(run["peak_pss_bytes"] / data["total_bytes"], abs=6e-4)


def test_the_products_figure_follows_its_stated_rule(small):
    report, out = small
    products = report["products_shape"]
    assert products["extrapolated"] and products["data"]["num_nodes"] == 2_449_029
    assert products["data"]["graph_bytes"] == 2_449_030 * 4 + 2 * 61_859_140 * 8
    assert products["data"]["inputs_bytes"] == 4 * 2_449_029 * 400  # propagated:3 of 100 features
    one_data = report["runs"][0]["data"]["total_bytes"]
    assert products["data_scale"] == pytest.approx(products["data"]["total_bytes"] / one_data, rel=1e-4)
    runtime = products["runtime_pss_gib_per_process"] * GIB
    assert runtime == pytest.approx(report["runs"][0]["phases"]["start"]["peak_pss_gib"] * GIB)
    for run, row in zip(report["runs"], products["runs"]):
        fixed = row["processes"] * runtime
        expected = fixed + max(0.0, run["peak_pss_bytes"] - fixed) * products["data"]["total_bytes"] / one_data
        assert row["peak_pss_gib"] == pytest.approx(expected / GIB, abs=0.006)
        assert row["peak_pss_bytes_per_node"] == pytest.approx(expected / 2_449_029, rel=1e-3)
    assert [row["processes"] for row in products["runs"]] == [1, 3]
    assert not products["meaningful"]  # 2,000 nodes say nothing of 2.4 million: the Markdown says so
    assert "No figure at ogbn-products' shape" in (out / "host_memory_small.md").read_text()


def test_the_suite_answers_help_and_names_its_small_form(capsys):
    with pytest.raises(SystemExit) as done:
        host_memory.parse(["--help"])
    assert done.value.code == 0 and "--small" in capsys.readouterr().out
