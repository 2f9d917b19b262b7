"""`graph-eigenmap info`, and one clear line with a non-zero exit for every kind of bad input."""

import gzip
import json

import numpy as np
import pytest
import scipy.sparse as sp
from helpers import toy_arrays, write_npz, write_ogb_folder
from typer.testing import CliRunner

from graph_eigenmap.data import ogb as ogb_loader
from graph_eigenmap_cli.main import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, list(map(str, args)))


def test_info_json_on_csbm():
    result = invoke("info", "csbm:num_nodes=500,num_edges=2000,num_classes=3", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["num_nodes"], report["num_edges"], report["num_classes"]) == (500, 2000, 3)
    assert report["split_sizes"] == [50, 50, 400] and report["synthetic"] is True
    for key in ("num_features", "isolated_nodes", "components"):
        assert key in report


def test_info_text_on_folder(tmp_path):
    edges, features, labels = toy_arrays()
    folder = write_ogb_folder(tmp_path / "ogbn_toy", edges, 12, features, labels)
    result = invoke("info", folder)
    assert result.exit_code == 0 and "isolated nodes     1" in result.stdout


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _rewrite_gz(path, text):
    with gzip.open(path, "wt") as f:
        f.write(text)


def _folder(tmp_path, edit=None, **kwargs):
    edges, features, labels = toy_arrays()
    arrays = dict(edges=edges, num_nodes=12, features=features, labels=labels)
    arrays.update(kwargs)
    folder = write_ogb_folder(tmp_path / "ogbn_bad", **arrays)
    if edit:
        edit(folder)
    return folder


def _npz(tmp_path, edit=None):
    edges, features, labels = toy_arrays()
    adjacency = sp.coo_matrix((np.ones(len(edges)), edges.T), shape=(12, 12)).tocsr()
    path = write_npz(tmp_path / "g.npz", adjacency, sp.csr_matrix(features), labels)
    if edit:
        edit(path)
    return path


BAD_INPUTS = {
    "unknown name": (lambda t: "not-a-dataset", "give one of"),
    "unknown ogb name": (lambda t: "ogbn-nope", "unknown OGB"),
    "missing folder": (lambda t: t / "absent" / "x.npz", "no such file"),
    "incomplete folder": (lambda t: _folder(t, lambda f: (f / "raw" / "edge.csv.gz").unlink()), "missing raw/edge.csv.gz"),
    "truncated csv.gz": (lambda t: _folder(t, lambda f: _truncate(f / "raw" / "node-feat.csv.gz")), "truncated or corrupt"),
    "corrupt npz": (lambda t: _npz(t, _truncate), "truncated or corrupt"),
    "pickled npz": (lambda t: np.savez(t / "p.npz", labels=np.array([None], dtype=object)) or t / "p.npz", "pickled"),
    "edge ids out of range": (lambda t: _folder(t, edges=np.array([[0, 1], [1, 40]])), "out of range"),
    "feature rows != nodes": (lambda t: _folder(t, features=np.ones((9, 4))), "rows"),
    "nan features": (lambda t: _folder(t, features=np.where(np.eye(12, 4) > 0, np.nan, 1.0)), "NaN"),
    "label count mismatch": (lambda t: _folder(t, labels=np.zeros(7, dtype=int)), "labels"),
    "empty graph": (lambda t: _folder(t, lambda f: _rewrite_gz(f / "raw" / "num-node-list.csv.gz", "0\n")), "empty"),
    "folder without edges": (lambda t: _folder(t, lambda f: _rewrite_gz(f / "raw" / "edge.csv.gz", "")), "no edges"),
    "npz without edges": (lambda t: write_npz(t / "e.npz", sp.csr_matrix((12, 12)), None, np.zeros(12, dtype=int)), "no edges"),
    "meta.json not an object": (lambda t: _folder(t, lambda f: (f / "meta.json").write_text("[]")), "JSON object"),
    "bad csbm option": (lambda t: "csbm:nodes=5", "bad csbm option"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_one_line_nonzero_no_traceback(tmp_path, case):
    make, message = BAD_INPUTS[case]
    result = invoke("info", make(tmp_path))
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr


def test_ogb_offline_message_says_what_to_put_where(tmp_path, monkeypatch):
    monkeypatch.setattr(ogb_loader, "_unreachable", lambda url: "no network (test)")
    result = invoke("info", "ogbn-arxiv", "--root", tmp_path)
    assert result.exit_code == 2
    assert f"{tmp_path}/ogbn_arxiv/raw/edge.csv.gz" in result.stderr


def test_debug_variable_shows_traceback(monkeypatch):
    monkeypatch.setenv("GRAPH_EIGENMAP_DEBUG", "1")
    result = invoke("info", "not-a-dataset")
    assert result.exit_code == 2 and "Traceback" in result.stderr
