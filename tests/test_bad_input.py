"""Bad input that used to escape: each gives one `error:` line naming the problem and the fix, exit code 2,
before any training, and leaves no output, temporary file or cache folder behind."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from helpers import toy_arrays, write_npz, write_ogb_folder
from typer.testing import CliRunner

from graph_eigenmap_cli.main import app

runner = CliRunner()
SMALL = "csbm:num_nodes=300,num_edges=1500,num_classes=3,num_features=8"
FAST = ("--k", 4, "--width", 16, "--inputs", "features", "--device", "cpu")
DIVERGING = ("--optimizer", "lars", "--lr", "1e9")
"""The loss becomes NaN by step 10 on SMALL, the first check. A learning rate near the edge of divergence (1e4
diverged at step 20 on one CPU and not at all on another) makes the test depend on the machine's rounding."""


def invoke(*args, env=None):
    return runner.invoke(app, list(map(str, args)), env=env)


def one_error_line(result, *needles):
    """Exit code 2, stderr exactly one `error:` line holding every needle, no traceback."""
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def tree(folder: Path) -> dict:
    """Every path below ``folder`` with its size (files) or None (folders)."""
    return {str(p.relative_to(folder)): (p.stat().st_size if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def _can_write(folder: Path) -> bool:
    probe = folder / ".write-probe"
    try:
        probe.touch()
    except OSError:
        return False
    probe.unlink()
    return True


@pytest.fixture
def read_only(tmp_path):
    """A folder in which this process cannot create anything: chmod 555, or /sys when running as root."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if not _can_write(folder):
            yield folder
            return
        if Path("/sys").is_dir() and not _can_write(Path("/sys")):
            yield Path("/sys")
            return
        pytest.skip("no read-only location here (root, and /sys is writable)")
    finally:
        folder.chmod(0o755)


def _npz_without_edges(path: Path) -> Path:
    _, features, labels = toy_arrays()
    return write_npz(path, sp.csr_matrix((12, 12)), sp.csr_matrix(features), labels)


def _ogb_folder(tmp_path: Path, name="ogbn_bad", **overrides) -> Path:
    edges, features, labels = toy_arrays()
    arrays = dict(edges=edges, num_nodes=12, features=features, labels=labels)
    arrays.update(overrides)
    return write_ogb_folder(tmp_path / name, **arrays)


def _fitted_model(folder: Path) -> Path:
    result = invoke("fit", "--dataset", SMALL, "--out", folder, "--steps", 10, *FAST, "--quiet")
    assert result.exit_code == 0, result.output
    return folder


# --- fit --out ---------------------------------------------------------------------------------------------

def test_fit_out_is_an_existing_file(tmp_path):
    target = tmp_path / "taken"
    target.write_text("keep me")
    # an unknown dataset would fail later: the --out error proves the check comes before loading and training
    line = one_error_line(invoke("fit", "--dataset", "no-such-dataset", "--out", target), "--out", "existing file")
    assert "folder" in line
    assert target.read_text() == "keep me" and tree(tmp_path) == {"taken": 7}


def test_fit_out_below_a_file(tmp_path):
    (tmp_path / "taken").write_text("x")
    one_error_line(invoke("fit", "--dataset", "no-such-dataset", "--out", tmp_path / "taken" / "run"), "--out", "is a file")
    assert tree(tmp_path) == {"taken": 1}


def test_fit_out_on_a_read_only_location(tmp_path, read_only):
    before = sorted(os.listdir(read_only))
    target = read_only / "graph_eigenmap_run"
    one_error_line(invoke("fit", "--dataset", "no-such-dataset", "--out", target), "--out", "cannot be written")
    assert sorted(os.listdir(read_only)) == before and not target.exists()


def test_fit_checkpoint_without_resume_is_refused_before_loading(tmp_path):
    run = _fitted_model(tmp_path / "run")
    before = tree(run)
    one_error_line(invoke("fit", "--dataset", "no-such-dataset", "--out", run), "--resume", "checkpoint.pt")
    assert tree(run) == before


# --- embed --out ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def model_and_features(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    model = _fitted_model(folder / "model")
    x = np.zeros((3, 8), dtype=np.float32)
    np.save(folder / "x.npy", x)
    return model, folder / "x.npy"


@pytest.mark.parametrize("option", ["--out", "--backbone"])
def test_embed_output_is_a_folder(tmp_path, model_and_features, option):
    model, x = model_and_features
    taken = tmp_path / "existing_folder"
    taken.mkdir()
    paths = {"--out": tmp_path / "e.npy", "--backbone": tmp_path / "b.npy"}
    paths[option] = taken
    result = invoke("embed", "--model", model, "--features", x, "--out", paths["--out"], "--backbone", paths["--backbone"],
                    "--device", "cpu")
    one_error_line(result, option, "is a folder")
    assert tree(tmp_path) == {"existing_folder": None}  # no stray .NAME.tmp, no half the outputs


def test_embed_out_on_a_read_only_location(tmp_path, model_and_features, read_only):
    model, x = model_and_features
    before = sorted(os.listdir(read_only))
    result = invoke("embed", "--model", model, "--features", x, "--out", read_only / "e.npy", "--device", "cpu")
    one_error_line(result, "--out", "cannot be written")
    assert sorted(os.listdir(read_only)) == before


# --- graphs without edges or nodes ---------------------------------------------------------------------------

def test_npz_without_edges_is_refused_before_training(tmp_path):
    path = _npz_without_edges(tmp_path / "noedges.npz")
    for command in (("info", path), ("fit", "--dataset", path, "--out", tmp_path / "run", *FAST)):
        one_error_line(invoke(*command), "no edges", "0 edges")
    assert not (tmp_path / "run").exists()


def test_npz_with_only_self_loops_has_no_edges(tmp_path):
    _, features, labels = toy_arrays()
    path = write_npz(tmp_path / "loops.npz", sp.eye(12, format="csr"), sp.csr_matrix(features), labels)
    one_error_line(invoke("info", path), "no edges", "self-loops")


def test_ogb_layout_without_edges(tmp_path):
    folder = _ogb_folder(tmp_path, edges=np.zeros((0, 2), dtype=np.int64))
    line = one_error_line(invoke("info", folder), "no edges", "edge.csv.gz")
    assert "EmptyDataError" not in line and "could not read" not in line


def test_ogb_layout_with_zero_nodes(tmp_path):
    folder = _ogb_folder(tmp_path, edges=np.zeros((0, 2), dtype=np.int64), num_nodes=0,
                         features=np.zeros((0, 4)), labels=np.zeros(0, dtype=int),
                         split={"train": [], "valid": [], "test": []})
    line = one_error_line(invoke("info", folder), "0 nodes", "num-node-list.csv.gz")
    assert "EmptyDataError" not in line and "could not read" not in line


# --- damaged model folders -----------------------------------------------------------------------------------

@pytest.mark.parametrize("content, needle", [
    (lambda text: text[: len(text) // 2], "not valid JSON"),
    (lambda text: "{}", "lacks features, k, num_features, num_nodes"),
    (lambda text: "[1, 2]", "not an object"),
])
def test_damaged_model_json(tmp_path, model_and_features, content, needle):
    import shutil

    model, x = model_and_features
    copy = tmp_path / "model"
    shutil.copytree(model, copy)
    (copy / "model.json").write_text(content((model / "model.json").read_text()))
    result = invoke("embed", "--model", copy, "--features", x, "--out", tmp_path / "e.npy", "--device", "cpu")
    one_error_line(result, "model.json", needle, "refit")
    assert not (tmp_path / "e.npy").exists()


def test_corrupt_model_pt_is_short_and_never_advises_unsafe_loading(tmp_path, model_and_features):
    import shutil

    model, x = model_and_features
    copy = tmp_path / "model"
    shutil.copytree(model, copy)
    weights = copy / "model.pt"
    weights.write_bytes(weights.read_bytes()[:100])
    result = invoke("embed", "--model", copy, "--features", x, "--out", tmp_path / "e.npy", "--device", "cpu")
    line = one_error_line(result, "model.pt", "refit")
    assert "weights_only" not in line and len(line) < 250, line
    assert not (tmp_path / "e.npy").exists()


# --- the cache ----------------------------------------------------------------------------------------------

def test_read_only_cache_only_costs_speed(tmp_path, read_only):
    folder = _ogb_folder(tmp_path, name="ogbn_toy")
    cache = read_only / "graph_eigenmap_cache"
    for _ in range(2):  # the second load cannot use a cache either, and still works
        result = invoke("info", folder, "--json", env={"GRAPH_EIGENMAP_CACHE": str(cache)})
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["num_nodes"] == 12 and result.stderr == ""
    assert not cache.exists()


def test_failed_load_leaves_nothing_in_the_cache(tmp_path):
    folder = _ogb_folder(tmp_path)
    data = (folder / "raw" / "node-feat.csv.gz").read_bytes()
    (folder / "raw" / "node-feat.csv.gz").write_bytes(data[: len(data) // 2])
    cache = tmp_path / "cache"
    one_error_line(invoke("info", folder, "--cache-dir", cache), "node-feat.csv.gz", "truncated or corrupt")
    assert not cache.exists()


# --- divergence ---------------------------------------------------------------------------------------------

def test_diverged_run_says_what_happened_and_the_retry_works_without_deleting(tmp_path):
    run = tmp_path / "run"
    result = invoke("fit", "--dataset", SMALL, "--out", run, "--steps", 30, "--checkpoint-every", 5, *FAST, *DIVERGING,
                    "--quiet")
    line = one_error_line(result, "diverged", "nan", "step 10", "--lr 1e+09", "--lr 3.3e+08")
    assert "nothing was kept" in line
    assert not run.exists()  # its checkpoint (step 5) went with it
    retry = invoke("fit", "--dataset", SMALL, "--out", run, "--steps", 30, "--checkpoint-every", 5, *FAST,
                   "--optimizer", "lars", "--quiet")
    assert retry.exit_code == 0, retry.output


def test_diverged_resume_keeps_the_checkpoint_and_says_so(tmp_path, monkeypatch):
    import graph_eigenmap.objectives.neuralef as training

    run = _fitted_model(tmp_path / "run")  # 10 healthy steps, checkpoint kept
    before = tree(run)
    real_loss, calls = training.neuralef_loss, []

    def loss_that_turns_nan(*args, **kwargs):  # the extension diverges after 5 more steps
        calls.append(1)
        loss, r = real_loss(*args, **kwargs)
        return (loss * float("nan") if len(calls) > 5 else loss), r

    monkeypatch.setattr(training, "neuralef_loss", loss_that_turns_nan)
    result = invoke("fit", "--dataset", SMALL, "--out", run, "--steps", 30, "--resume", *FAST, "--quiet")
    line = one_error_line(result, "diverged", "step 20", "checkpoint.pt", "--resume cannot change --lr", "another --out")
    assert tree(run) == before, line  # the user's checkpoint and the outputs of the 10-step run stay


# --- nothing left behind ---------------------------------------------------------------------------------------

FAILURES = {
    "fit into a file": lambda t: ("fit", "--dataset", SMALL, "--out", t / "inputs" / "file.txt", *FAST),
    "fit on a graph without edges": lambda t: ("fit", "--dataset", t / "inputs" / "noedges.npz", "--out",
                                               t / "new" / "deep" / "run", *FAST),
    "fit with a bad option value": lambda t: ("fit", "--dataset", SMALL, "--out", t / "new" / "run", *FAST, "--k", 10**6,
                                              "--quiet"),
    "fit that diverges": lambda t: ("fit", "--dataset", SMALL, "--out", t / "new" / "run", "--steps", 30,
                                    "--checkpoint-every", 5, *FAST, *DIVERGING, "--quiet"),
    "fit with an unknown option": lambda t: ("fit", "--dataset", SMALL, "--out", t / "new" / "run", "--nope"),
    "embed into a folder": lambda t: ("embed", "--model", t / "inputs" / "model", "--features", t / "inputs" / "x.npy",
                                      "--out", t / "inputs", "--device", "cpu"),
    "embed wrong width": lambda t: ("embed", "--model", t / "inputs" / "model", "--features", t / "inputs" / "wide.npy",
                                    "--out", t / "new" / "e.npy", "--device", "cpu"),
    "embed from a damaged model": lambda t: ("embed", "--model", t / "inputs" / "damaged", "--features",
                                             t / "inputs" / "x.npy", "--out", t / "new" / "e.npy", "--device", "cpu"),
    "evaluate with a bad label ratio": lambda t: ("evaluate", "--embeddings", t / "inputs" / "x.npy", "--label-ratio", 2,
                                                  "--output", t / "new" / "r.json"),
    "evaluate with the wrong row count": lambda t: ("evaluate", "--embeddings", t / "inputs" / "x.npy", "-d", SMALL,
                                                    "--runs", 1, "--output", t / "new" / "r.json", "--device", "cpu"),
    "info on a truncated folder": lambda t: ("info", t / "inputs" / "ogbn_truncated", "--cache-dir", t / "new" / "cache"),
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, model_and_features):
    import shutil

    base = tmp_path_factory.mktemp("failures")
    folder = base / "inputs"
    folder.mkdir()
    (folder / "file.txt").write_text("not a folder")
    _npz_without_edges(folder / "noedges.npz")
    model, x = model_and_features
    shutil.copytree(model, folder / "model")
    shutil.copytree(model, folder / "damaged")
    (folder / "damaged" / "model.json").write_text("{")
    shutil.copy(x, folder / "x.npy")
    np.save(folder / "wide.npy", np.zeros((3, 9), dtype=np.float32))
    truncated = _ogb_folder(folder, name="ogbn_truncated")
    data = (truncated / "raw" / "edge.csv.gz").read_bytes()
    (truncated / "raw" / "edge.csv.gz").write_bytes(data[: len(data) // 2])
    return base


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_no_output_or_temporary_file_remains_after_a_failure(inputs, case):
    before = tree(inputs)
    result = invoke(*FAILURES[case](inputs))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert tree(inputs) == before
