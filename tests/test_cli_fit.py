"""`graph-eigenmap fit` and `embed`: outputs, reproduction, resume after SIGKILL, bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from graph_eigenmap.data import load_graph
from graph_eigenmap_cli.main import app

runner = CliRunner()
SMALL = "csbm:num_nodes=800,num_edges=4000,num_classes=3,num_features=12"


def invoke(*args):
    return runner.invoke(app, list(map(str, args)))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    out = tmp_path_factory.mktemp("fit")
    result = invoke("fit", "--dataset", SMALL, "--out", out, "--k", 6, "--steps", 60, "--width", 32,
                    "--inputs", "features", "--device", "cpu", "--quiet")  # embed from features alone
    assert result.exit_code == 0, result.output
    return out


def test_fit_writes_every_output(fitted):
    embedding = np.load(fitted / "embeddings.npy")
    backbone = np.load(fitted / "backbone.npy")
    meta = json.loads((fitted / "metadata.json").read_text())
    assert embedding.dtype == np.float32 and embedding.shape == (800, 6)
    assert backbone.dtype == np.float32 and backbone.shape == (800, 32)
    for key in ("dataset", "num_nodes", "k", "kernel", "estimator", "stop_gradient", "eigenvalues", "seed",
                "versions", "device", "wall_time_s", "steps"):
        assert key in meta
    assert meta["synthetic"] is True and meta["steps"] == 60 and len(meta["eigenvalues"]) == 6
    state = torch.load(fitted / "model.pt", weights_only=True)
    assert "norm.running_rms" in state
    assert not list(fitted.glob(".*.tmp"))


def test_embed_reproduces_training_rows(fitted, tmp_path):
    graph = load_graph(SMALL)
    np.save(tmp_path / "x.npy", graph.features)
    result = invoke("embed", "--model", fitted, "--features", tmp_path / "x.npy", "--out", tmp_path / "e.npy",
                    "--device", "cpu")
    assert result.exit_code == 0, result.output
    np.testing.assert_allclose(np.load(tmp_path / "e.npy"), np.load(fitted / "embeddings.npy"), atol=1e-4)


@pytest.mark.parametrize("case, message", [
    ("wide", "must have shape [m, 12]"),
    ("nan", "NaN"),
    ("missing", "no such file"),
    ("nomodel", "not a fitted model folder"),
])
def test_embed_bad_input(fitted, tmp_path, case, message):
    x = np.zeros((3, 13 if case == "wide" else 12), dtype=np.float32)
    if case == "nan":
        x[1, 2] = np.nan
    path = tmp_path / "x.npy"
    if case != "missing":
        np.save(path, x)
    model = tmp_path if case == "nomodel" else fitted
    result = invoke("embed", "--model", model, "--features", path, "--out", tmp_path / "e.npy", "--device", "cpu")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_existing_checkpoint_needs_resume_and_same_config(fitted):
    result = invoke("fit", "--dataset", SMALL, "--out", fitted, "--k", 6, "--steps", 60, "--width", 32, "--device", "cpu", "--quiet")
    assert result.exit_code == 2 and "--resume" in result.stderr
    result = invoke("fit", "--dataset", SMALL, "--out", fitted, "--k", 7, "--steps", 60, "--width", 32, "--device", "cpu",
                    "--quiet", "--resume")
    assert result.exit_code == 2 and "different configuration" in result.stderr and "k: 6" in result.stderr


def _fit_command(out, steps):
    return [sys.executable, "-m", "graph_eigenmap_cli.main", "fit", "--dataset", SMALL, "--out", str(out), "--k", "4",
            "--steps", str(steps), "--width", "32", "--checkpoint-every", "25", "--device", "cpu", "--quiet"]


def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    reference = tmp_path / "reference"
    subprocess.run(_fit_command(reference, 400), check=True, env=env, timeout=300)

    killed = tmp_path / "killed"
    process = subprocess.Popen(_fit_command(killed, 400), env=env)
    deadline = time.monotonic() + 120
    while not (killed / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "embeddings.npy").exists(), "the run finished before it could be killed"
    step = torch.load(killed / "checkpoint.pt", weights_only=True)["step"]
    assert 0 < step < 400

    subprocess.run(_fit_command(killed, 400) + ["--resume"], check=True, env=env, timeout=300)
    meta = json.loads((killed / "metadata.json").read_text())
    assert meta["steps"] == 400
    np.testing.assert_allclose(np.load(killed / "embeddings.npy"), np.load(reference / "embeddings.npy"), atol=1e-4)
