"""The objectives suite's small form (benchmarks/objectives.py: NeuralSVD against NeuralEF at equal training time)
run in-process on a tiny CSBM: the values it reports checked against each other and against numpy's exact spectrum."""

from __future__ import annotations

import functools
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import common, objectives  # noqa: E402
from graph_eigenmap import load_graph  # noqa: E402

SMALL = dict(zip(objectives.SMALL[::2], objectives.SMALL[1::2]))
GRAPH, K, SECONDS = SMALL["--graphs"], int(SMALL["--k"]), float(SMALL["--seconds"])


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """The small form's report and output folder (one run shared by the tests here), on one torch thread."""
    out = tmp_path_factory.mktemp("objectives")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        report = objectives.main(["--out", str(out), "--small"])
    finally:
        torch.set_num_threads(threads)
    return report, out


@functools.lru_cache(maxsize=None)
def numpy_top(kernel: str, k: int) -> np.ndarray:
    """The top-k eigenvalues of D^-1/2 A D^-1/2 of the small graph by a dense numpy eigh; for ``nontrivial``, with
    eigenvalue 1 of each component that has an edge removed."""
    graph = load_graph(GRAPH)
    a = sp.csr_matrix(graph.adjacency, dtype=np.float64)
    degree = np.asarray(a.sum(axis=1)).ravel()
    scale = np.divide(1.0, np.sqrt(degree), out=np.zeros_like(degree), where=degree > 0)
    values = np.linalg.eigvalsh((sp.diags(scale) @ a @ sp.diags(scale)).toarray())[::-1]
    if kernel == "nontrivial":
        _, labels = connected_components(a, directed=False)
        trivial = len(np.unique(labels[degree > 0]))
        assert np.allclose(values[:trivial], 1.0, atol=1e-8)
        values = values[trivial:]
    return values[:k]


def test_provenance_and_the_written_files(small):
    report, out = small
    assert set(common.PROVENANCE_KEYS) == {"suite", "command", "date", "commit", "device", "seeds", "versions"}
    assert set(common.PROVENANCE_KEYS) <= set(report)
    assert report["suite"] == "objectives" and report["command"] == f"python -m benchmarks.objectives --out {out} --small"
    assert report["seeds"] == [0] and report["probe_seeds"] == [0] and report["probe_runs"] == 1
    assert report["versions"]["torch"] == torch.__version__ and "cuda" in report["versions"]
    assert report["device"].startswith("CPU") and report["date"][:2] == "20" and report["commit"]
    assert (report["form"], report["k"], report["seconds"], report["calibration_steps"]) == ("small", K, SECONDS, 20)
    assert json.loads((out / "objectives_small.json").read_text()) == json.loads(json.dumps(report))
    text = (out / "objectives_small.md").read_text()
    assert text.startswith("# NeuralSVD against NeuralEF at equal training time\n")
    assert f"Command: `{report['command']}`" in text
    table = [line for line in text.splitlines() if line.startswith(f"| {GRAPH} (-) |")]
    assert len(table) == len(report["results"]) == 4
    first = report["results"][0]
    assert f"| {first['quotient_error_mean']:.4f} / {first['quotient_error_max']:.4f} |" in table[0]
    assert f"| {100 * first['probe']['embedding@1']['test_acc_mean']:.1f} ± 0.0 |" in table[0]


def test_both_objectives_for_each_graph_and_kernel(small):
    report, _ = small
    fits = [(row["graph"], row["kernel"], row["objective"]) for row in report["results"]]
    assert sorted(fits) == sorted((GRAPH, kernel, objective) for kernel in ("adjacency", "nontrivial")
                                  for objective in ("neuralef", "neuralsvd"))
    assert all(row["layout"] == "-" and row["features"] == "input" for row in report["results"])


def test_exact_eigenvalues_agree_with_numpy(small):
    report, _ = small
    for row in report["results"]:
        assert np.allclose(row["exact"], numpy_top(row["kernel"], K), atol=1e-5), row["kernel"]


def test_quotient_errors_are_recomputed_from_the_reported_arrays(small):
    report, _ = small
    for row in report["results"]:
        exact, quotients, estimates = (np.array(row[key]) for key in ("exact", "quotients", "estimates"))
        errors = np.array(row["quotient_errors"])
        assert len(exact) == len(quotients) == len(estimates) == len(errors) == K
        assert np.isfinite(errors).all() and (errors >= 0).all()
        assert np.allclose(errors, np.abs(quotients - exact), atol=2e-6)
        assert row["quotient_error_mean"] == pytest.approx(errors.mean(), abs=2e-6)
        assert row["quotient_error_max"] == pytest.approx(errors.max(), abs=2e-6)
        assert row["estimate_error_max"] == pytest.approx(np.abs(estimates - exact).max(), abs=2e-6)
        assert quotients.max() <= exact[0] + 1e-5  # no Rayleigh quotient above the kernel's top eigenvalue
        assert row["order_violations"] == int((np.diff(quotients) > 0.01).sum())
        assert row["order_violations_in_training"] >= 0 and isinstance(row["final_sort"], bool)


def test_captured_spectrum_and_its_prefixes_are_consistent(small):
    report, _ = small
    for row in report["results"]:
        exact, quotients = np.array(row["exact"]), np.array(row["quotients"])
        assert list(row["captured"]) == ["1", "2", "4", "8"] == [str(m) for m in objectives.prefixes(K)]
        captured = {int(m): value for m, value in row["captured"].items()}
        assert all(0.0 <= value <= 1.0 + 1e-6 for value in captured.values())
        # one output: Q is ψ_1 / |ψ_1|, so tr(QᵀĀQ) is its Rayleigh quotient
        assert captured[1] == pytest.approx(quotients[0] / exact[0], abs=1e-5)
        # tr(QᵀĀQ) of nested prefixes: what m' − m more orthonormal columns add is at most the top m' − m eigenvalues'
        # sum (Ky Fan) and at least −(m' − m) (Ā's eigenvalues are >= −1)
        trace = {m: value * exact[:m].sum() for m, value in captured.items()}
        for m, wider in zip(sorted(trace), sorted(trace)[1:]):
            added = trace[wider] - trace[m]
            assert -(wider - m) - 1e-5 <= added <= exact[:wider - m].sum() + 1e-5, (row["kernel"], m, wider)


def test_steps_fill_the_seconds_at_the_calibrated_rate_and_probes_are_accuracies(small):
    report, _ = small
    for row in report["results"]:
        per_step = row["calibration_seconds_per_step"]
        assert per_step > 0 and row["seconds_per_step"] > 0 and row["training_time_s"] > 0
        assert row["steps"] > 0 and abs(row["steps"] - max(20, SECONDS / per_step)) <= 2
        assert set(row["probe"]) == {"embedding@1", "backbone@1"}
        for scores in row["probe"].values():
            assert 0.0 <= scores["test_acc_mean"] <= 1.0 and 0.0 <= scores["valid_acc_mean"] <= 1.0
            assert scores["test_acc_std"] == 0.0  # one run
            assert math.isfinite(scores["test_acc_mean"])


def test_a_run_cut_short_keeps_the_fits_it_finished(small, tmp_path, monkeypatch):
    report, _ = small
    finished = iter(report["results"][:2])

    def fit_row(*args, **kwargs):
        row = next(finished, None)
        if row is None:
            raise KeyboardInterrupt  # the third fit never ends
        return row

    monkeypatch.setattr(objectives, "fit_row", fit_row)
    with pytest.raises(KeyboardInterrupt):
        objectives.main(["--out", str(tmp_path), "--small"])
    written = json.loads((tmp_path / "objectives_small.json").read_text())
    assert written["results"] == json.loads(json.dumps(report["results"][:2]))
    assert sum(line.startswith(f"| {GRAPH}") for line in (tmp_path / "objectives_small.md").read_text().splitlines()) == 2


def test_help_answers_without_torch_and_names_the_small_form():
    code = ("import sys\nfrom benchmarks import objectives\ntry:\n    objectives.parse(['--help'])\n"
            "except SystemExit as done:\n    assert done.code == 0\nprint('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "--small" in done.stdout and done.stdout.splitlines()[-1] == "False"


def test_default_file_names_say_the_device_and_layout():
    args = objectives.parse(["--out", "x"])
    assert objectives.default_stem(args, torch.device("cpu")) == "objectives_cpu"
    assert objectives.default_stem(objectives.parse(["--out", "x", "--layout", "npz"]), torch.device("cuda")) == \
        "objectives_gpu_npz"
    assert objectives.default_stem(objectives.parse(["--out", "x", "--small"]), torch.device("cpu")) == \
        "objectives_small"
    with pytest.raises(SystemExit):
        objectives.parse(["--out", "x", "--calibration-steps", "10"])
