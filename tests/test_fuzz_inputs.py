"""Hostile input by class (issue 27): bad files generated for every class of input, each run through every
command that reads it.

Each bad input must give exit code 2 and one `error:` line that names the file (or option) and what was found,
no traceback, with every input unchanged byte for byte and nothing written (no output, no cache entry, no
temporary file). The classes: graphs (OGB folders file by file, gnn-benchmark .npz, PyG and scipy objects, the
synthetic spec), splits, arrays read from .npy files, output paths. Legal input that is likely a mistake gets one
`warning:` line and runs. Everything runs in-process (typer's CliRunner) on 12-node graphs: the module takes
seconds.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from helpers import toy_arrays, write_npz, write_ogb_folder
from typer.testing import CliRunner

from graph_eigenmap.errors import DataError
from graph_eigenmap_cli.main import app

runner = CliRunner()
FIT = ("--k", 2, "--width", 8, "--steps", 5, "--device", "cpu", "--quiet")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def digest(folder: Path) -> dict:
    """Every path below ``folder`` with the SHA-1 of its bytes (None for folders)."""
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else None
            for p in sorted(folder.rglob("*"))}


def assert_refused(result, *needles) -> str:
    """Exit code 2 and exactly one `error:` line on stderr holding every needle, no traceback, nothing on stdout."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output and result.stdout == ""
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def _gz(path: Path, text: str) -> None:
    with gzip.open(path, "wt") as stream:
        stream.write(text)


def _text(path: Path) -> str:
    return gzip.open(path, "rt").read()


def _rows(path: Path, change) -> None:
    """Rewrite a .csv.gz through ``change(list of lines) -> list of lines``."""
    _gz(path, "".join(line + "\n" for line in change(_text(path).splitlines())))


def _meta(folder: Path, **changes) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, **changes}))


RAW, SPLIT = "raw", "split/random"
OGB_CASES = {
    # node ids in raw/edge.csv.gz: integral, in range, two per row, as many rows as num-edge-list says
    "edge fractional id": (f"{RAW}/edge.csv.gz", lambda f: _rows(f, lambda r: ["0.9,1"] + r[1:]), ["0.9", "whole number"]),
    "edge text": (f"{RAW}/edge.csv.gz", lambda f: _rows(f, lambda r: ["a,b"] + r[1:]), ["'a'", "not a number"]),
    "edge empty field": (f"{RAW}/edge.csv.gz", lambda f: _rows(f, lambda r: ["0,"] + r[1:]), ["empty field"]),
    "edge three columns": (f"{RAW}/edge.csv.gz", lambda f: _rows(f, lambda r: [x + ",1" for x in r]), ["3 columns"]),
    "edge ragged rows": (f"{RAW}/edge.csv.gz", lambda f: _rows(f, lambda r: r[:-1] + ["1,2,3"]), ["different lengths"]),
    "edge negative id": (f"{RAW}/edge.csv.gz", lambda f: _rows(f, lambda r: ["-1,3"] + r[1:]), ["-1", "out of range"]),
    "edge id = n": (f"{RAW}/edge.csv.gz", lambda f: _rows(f, lambda r: ["0,12"] + r[1:]), ["12", "out of range"]),
    "edge not gzip": (f"{RAW}/edge.csv.gz", lambda f: f.write_text("0,1\n"), ["corrupt"]),
    "edge truncated": (f"{RAW}/edge.csv.gz", lambda f: f.write_bytes(f.read_bytes()[:30]), ["corrupt"]),
    "edge count disagrees": (f"{RAW}/num-edge-list.csv.gz", lambda f: _gz(f, "5\n"), ["edge.csv.gz", "5"]),
    "node count text": (f"{RAW}/num-node-list.csv.gz", lambda f: _gz(f, "many\n"), ["one whole number"]),
    "node count two graphs": (f"{RAW}/num-node-list.csv.gz", lambda f: _gz(f, "6\n6\n"), ["one whole number"]),
    # features: numbers, finite, one row per node, at least one column
    "features NaN": (f"{RAW}/node-feat.csv.gz", lambda f: _rows(f, lambda r: ["nan,1,2,3"] + r[1:]), ["NaN"]),
    "features text": (f"{RAW}/node-feat.csv.gz", lambda f: _rows(f, lambda r: ["x,1,2,3"] + r[1:]), ["'x'"]),
    "features extra row": (f"{RAW}/node-feat.csv.gz", lambda f: _rows(f, lambda r: r + r[:1]), ["13 rows"]),
    "features no column": (f"{RAW}/node-feat.csv.gz", lambda f: _gz(f, ""), ["0 columns", "identity"]),
    # labels: integral class ids below meta.json's count, one per node
    "label above class count": (f"{RAW}/node-label.csv.gz", lambda f: _rows(f, lambda r: ["1000"] + r[1:]),
                                ["1000", "meta.json", "3 classes"]),
    "label fractional": (f"{RAW}/node-label.csv.gz", lambda f: _rows(f, lambda r: ["1.5"] + r[1:]), ["1.5"]),
    "label text": (f"{RAW}/node-label.csv.gz", lambda f: _rows(f, lambda r: ["cat"] + r[1:]), ["'cat'"]),
    "label missing row": (f"{RAW}/node-label.csv.gz", lambda f: _rows(f, lambda r: r[1:]), ["11 labels"]),
    "label two columns": (f"{RAW}/node-label.csv.gz", lambda f: _rows(f, lambda r: [x + ",0" for x in r]),
                          ["shape [12, 2]"]),
    "class count text": ("meta.json", lambda f: _meta(f.parent, **{"num classes": "many"}), ["num classes"]),
    # splits: ids in range, each node once, train / valid / test disjoint
    "train holds test ids": (f"{SPLIT}/train.csv.gz", lambda f: _rows(f, lambda r: r + ["8", "9"]),
                             ["train.csv.gz", "test.csv.gz", "share 2 nodes"]),
    "valid holds train ids": (f"{SPLIT}/valid.csv.gz", lambda f: _rows(f, lambda r: r + ["0"]),
                              ["train.csv.gz", "valid.csv.gz", "share 1 node ("]),
    "train repeats a node": (f"{SPLIT}/train.csv.gz", lambda f: _rows(f, lambda r: r + r[:1]), ["listed 2 times"]),
    "test id = n": (f"{SPLIT}/test.csv.gz", lambda f: _rows(f, lambda r: r + ["12"]), ["12", "out of range"]),
    "valid negative id": (f"{SPLIT}/valid.csv.gz", lambda f: _rows(f, lambda r: r + ["-2"]), ["-2", "out of range"]),
    "train fractional id": (f"{SPLIT}/train.csv.gz", lambda f: _rows(f, lambda r: r + ["2.5"]), ["2.5"]),
    "train text": (f"{SPLIT}/train.csv.gz", lambda f: _rows(f, lambda r: r + ["x"]), ["'x'"]),
    "test two columns": (f"{SPLIT}/test.csv.gz", lambda f: _rows(f, lambda r: [x + ",1" for x in r]), ["2 columns"]),
}


def _npz_arrays() -> dict:
    edges, features, labels = toy_arrays()
    adjacency = sp.csr_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(12, 12))
    return dict(adj_data=adjacency.data, adj_indices=adjacency.indices, adj_indptr=adjacency.indptr,
                adj_shape=np.array(adjacency.shape), attr_matrix=features, labels=labels)


def _set(key, make):
    def change(arrays):
        arrays[key] = make(arrays[key].copy())
        return arrays
    return change


def _put(array, index, value):
    array = array.astype(np.result_type(array, np.asarray(value)))
    array[index] = value
    return array


NPZ_CASES = {
    "adjacency column -1": (_set("adj_indices", lambda a: _put(a, 3, -1)), ["adj_indices", "-1"]),
    "adjacency column = n": (_set("adj_indices", lambda a: _put(a, 3, 5000)), ["adj_indices", "5000"]),
    "adjacency indptr short": (_set("adj_indptr", lambda a: a[:-1]), ["adj_indptr"]),
    "adjacency not square": (_set("adj_shape", lambda a: np.array([12, 13])), ["not square"]),
    "adjacency shape fractional": (_set("adj_shape", lambda a: np.array([12.5, 12.5])), ["adj_shape"]),
    "negative weight": (_set("adj_data", lambda a: _put(a, 0, -2.0)), ["non-negative", "-2"]),
    "NaN weight": (_set("adj_data", lambda a: _put(a, 0, np.nan)), ["non-negative", "nan"]),
    "features NaN": (_set("attr_matrix", lambda a: _put(a, (2, 1), np.inf)), ["attr_matrix", "node 2"]),
    "features no column": (_set("attr_matrix", lambda a: a[:, :0]), ["attr_matrix", "0 columns"]),
    "features extra row": (_set("attr_matrix", lambda a: np.vstack([a, a[:1]])), ["13 rows"]),
    "features text": (_set("attr_matrix", lambda a: a.astype(str)), ["attr_matrix", "not numbers"]),
    "label fractional": (_set("labels", lambda a: _put(a, 4, 0.5)), ["(labels)", "0.5", "node 4"]),
    "label larger than the graph": (_set("labels", lambda a: _put(a, 4, 50)), ["(labels)", "50"]),
    "label text": (_set("labels", lambda a: a.astype(str)), ["(labels)", "not class ids"]),
    "labels one short": (_set("labels", lambda a: a[1:]), ["11 labels"]),
}
NPZ_FILES = {
    "npz that is text": (lambda p: p.write_text("adj_data,1,2\n"), ["not a .npz archive", "text file"]),
    "npz that is a .npy": (lambda p: np.save(open(p, "wb"), np.zeros(3)), ["not a .npz archive", ".npy array"]),
    "npz truncated": (lambda p: p.write_bytes(_valid_npz_bytes()[:200]), ["corrupt"]),
    "npz with pickles": (lambda p: np.savez(p, adj_data=np.array([{"a": 1}], dtype=object)), ["pickled"]),
}


def _valid_npz_bytes() -> bytes:
    import io

    stream = io.BytesIO()
    np.savez(stream, **_npz_arrays())
    return stream.getvalue()


@pytest.fixture(scope="module")
def bad_graphs(tmp_path_factory):
    """``{case: (graph path, needles)}`` and the inputs folder holding them, plus a valid [12, 4] embedding."""
    base = tmp_path_factory.mktemp("fuzz")
    inputs = base / "inputs"
    inputs.mkdir()
    edges, features, labels = toy_arrays()
    cases = {}
    for index, (case, (relative, damage, needles)) in enumerate(OGB_CASES.items()):
        folder = write_ogb_folder(inputs / f"ogbn_bad{index}", edges, 12, features, labels)
        damage(folder / relative)
        cases[f"ogb: {case}"] = (folder, [relative.rsplit("/", 1)[-1], *needles])
    for index, (case, (change, needles)) in enumerate(NPZ_CASES.items()):
        path = inputs / f"bad{index}.npz"
        np.savez(path, **change(_npz_arrays()))
        cases[f"npz: {case}"] = (path, [path.name, *needles])
    for index, (case, (write, needles)) in enumerate(NPZ_FILES.items()):
        path = inputs / f"file{index}.npz"
        write(path)
        cases[f"npz: {case}"] = (path, [path.name, *needles])
    np.save(inputs / "embedding.npy", np.ones((12, 4), dtype=np.float32))
    return base, cases


COMMANDS = {
    "info": lambda g, t: ("info", g, "--cache-dir", t / "new" / "cache"),
    "fit": lambda g, t: ("fit", "--dataset", g, "--out", t / "new" / "run", "--cache-dir", t / "new" / "cache", *FIT),
    "evaluate": lambda g, t: ("evaluate", "--embeddings", t / "inputs" / "embedding.npy", "-d", g, "--runs", 1,
                              "--device", "cpu", "--output", t / "new" / "r.json", "--cache-dir", t / "new" / "cache"),
    "bench compare": lambda g, t: ("bench", "compare", "-d", g, "--out", t / "new" / "cmp", "--methods", "features",
                                   "--runs", 1, "--device", "cpu", "--cache-dir", t / "new" / "cache"),
}
GRAPH_CASES = [f"ogb: {case}" for case in OGB_CASES] + [f"npz: {case}" for case in (*NPZ_CASES, *NPZ_FILES)]


@pytest.mark.parametrize("case", GRAPH_CASES)
def test_every_command_refuses_a_bad_graph_file_naming_it(bad_graphs, case):
    base, cases = bad_graphs
    graph, needles = cases[case]
    before = digest(base)
    for command, make in COMMANDS.items():
        line = assert_refused(invoke(*make(graph, base)), *needles)
        assert digest(base) == before, (command, line)  # inputs unchanged, no output, cache or temporary file


# --- the same classes from Python objects: PyG Data and scipy ---------------------------------------------------

def _pyg(**changes):
    import torch
    from torch_geometric.data import Data

    masks = [torch.zeros(12, dtype=torch.bool) for _ in range(3)]
    for mask, part in zip(masks, (range(0, 4), range(4, 8), range(8, 12))):
        mask[list(part)] = True
    edges, features, labels = toy_arrays()
    fields = dict(edge_index=torch.from_numpy(edges.T.copy()), x=torch.from_numpy(features), y=torch.from_numpy(labels),
                  train_mask=masks[0], val_mask=masks[1], test_mask=masks[2], num_nodes=12)
    fields.update(changes)
    return Data(**fields)


@pytest.mark.parametrize("change, needles", [
    (dict(edge_index=lambda d: d.edge_index.double() + 0.5), ["data.edge_index", "integers"]),
    (dict(edge_index=lambda d: d.edge_index * 2), ["data.edge_index", "out of range"]),
    (dict(edge_index=lambda d: d.edge_index.T), ["data.edge_index", "[2, m]", "transpose"]),
    (dict(edge_weight=lambda d: -d.edge_index[0].double()), ["data.edge_index", "non-negative"]),
    (dict(x=lambda d: d.x[:, :0]), ["data.x", "0 columns"]),
    (dict(x=lambda d: d.x * float("nan")), ["data.x", "NaN"]),
    (dict(y=lambda d: d.y.double() / 2), ["data.y", "0.5"]),
    (dict(val_mask=lambda d: d.val_mask | d.test_mask), ["data.val_mask", "data.test_mask", "share 4 nodes"]),
    (dict(train_mask=lambda d: d.train_mask[:5]), ["data.train_mask", "shape [5]"]),
])
def test_pyg_data_goes_through_the_same_checks(change, needles):
    from graph_eigenmap.data import from_pyg

    data = _pyg()
    for key, make in change.items():
        data[key] = make(data)
    kept = {key: data[key].clone() for key in data.keys() if hasattr(data[key], "clone")}
    with pytest.raises(DataError) as caught:
        from_pyg(data)
    message = str(caught.value)
    assert "\n" not in message and all(needle in message for needle in needles), message
    assert all(bool((data[key] == kept[key]).all()) or data[key].isnan().any() for key in kept)


@pytest.mark.parametrize("adjacency, arrays, needles", [
    (sp.csr_matrix(np.ones((3, 4))), {}, ["3 x 4", "square"]),
    (sp.csr_matrix(np.array([[0, -1.0], [1.0, 0]])), {}, ["non-negative", "-1"]),
    (sp.csr_matrix(np.array([[0, np.inf], [1.0, 0]])), {}, ["non-negative", "inf"]),
    (sp.csr_matrix(np.array([[0, 1.0], [1.0, 0]])), dict(labels=np.array([0, 7])), ["label 7", "2 nodes"]),
    (sp.csr_matrix(np.array([[0, 1.0], [1.0, 0]])),
     dict(split=dict(train=np.array([0]), valid=np.array([0]), test=np.array([1]))), ["share 1 node ("]),
    (sp.csr_matrix(np.array([[0, 1.0], [1.0, 0]])), dict(features=np.zeros((2, 0))), ["0 columns"]),
])
def test_scipy_arrays_go_through_the_same_checks(adjacency, arrays, needles):
    from graph_eigenmap.data import from_scipy

    with pytest.raises(DataError) as caught:
        from_scipy(adjacency, **arrays)
    message = str(caught.value)
    assert "\n" not in message and all(needle in message for needle in needles), message


@pytest.mark.parametrize("spec, needle", [
    ("csbm:feature_snr=inf", "feature_snr"), ("csbm:degree_spread=nan", "degree_spread"),
    ("csbm:seed=-1,num_nodes=300,num_edges=1000", "seed"), ("csbm:num_features=0", "num_features"),
    ("csbm:num_classes=0", "num_classes"), ("csbm:num_nodes=1e3", "expected a number"), ("csbm:nodes=3", "key=value"),
])
def test_bad_synthetic_specs(tmp_path, spec, needle):
    for command in (("info", spec), ("fit", "--dataset", spec, "--out", tmp_path / "run", *FIT)):
        assert_refused(invoke(*command), needle)
    assert list(tmp_path.iterdir()) == []


def test_zero_weight_entries_are_no_edges():
    from graph_eigenmap.data import from_scipy

    adjacency = sp.csr_matrix(np.array([[0, 2.0, 0], [2.0, 0, 1.0], [0, 1.0, 0]]))
    adjacency.data[adjacency.data == 1.0] = 0.0  # explicit zeros, kept by scipy
    assert adjacency.nnz == 4
    graph = from_scipy(adjacency)
    np.testing.assert_array_equal(graph.adjacency.toarray(), [[0, 2, 0], [2, 0, 0], [0, 0, 0]])


# --- arrays read from files: embed --features / --edges, evaluate --embeddings --------------------------------

def _write(path: Path, content) -> Path:
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        np.save(path, content, allow_pickle=True)
    return path


def _npy_bytes(array) -> bytes:
    import io

    stream = io.BytesIO()
    np.save(stream, array)
    return stream.getvalue()


ARRAY_FILES = {
    "text": ("1,2,3,4\n5,6,7,8\n", ["text file", "numpy.loadtxt"]),
    "pickle": (pickle.dumps([[1.0, 2.0]]), ["pickle", "refused"]),
    "object dtype": (np.array([[{"a": 1}]], dtype=object), ["Python objects"]),
    "strings": (np.array([["a", "b", "c", "d"]]), ["<U1", "not numbers"]),
    "complex": (np.ones((2, 4), dtype=complex), ["complex128", "not numbers"]),
    "one dimension": (np.ones(4, dtype=np.float32), ["shape [4]", "2 dimensions"]),
    "three dimensions": (np.ones((2, 4, 1), dtype=np.float32), ["shape [2, 4, 1]"]),
    "no rows": (np.ones((0, 4), dtype=np.float32), ["empty array"]),
    "NaN": (np.array([[1, 2, np.nan, 4]], dtype=np.float32), ["NaN or inf", "[0, 2]"]),
    "inf": (np.array([[1, 2, 3, 4], [np.inf, 0, 0, 0]]), ["NaN or inf", "[1, 0]"]),
    "zip": (_valid_npz_bytes(), ["zip archive"]),
    "truncated": (_npy_bytes(np.ones((50, 4)))[:150], ["truncated or corrupt"]),
    "empty file": (b"", ["empty"]),
}
EDGE_FILES = {  # for a model fitted with propagated inputs (12 known nodes), 2 new nodes
    "fractional ids": (np.array([[0, 1], [2.5, 3]]), ["2.5", "integers"]),
    "NaN ids": (np.array([[0, 1], [np.nan, 3]]), ["NaN"]),
    "three rows": (np.array([[0, 1], [2, 3], [4, 5]]), ["--edges", "[2, E]"]),
    "new node out of range": (np.array([[0, 2], [2, 3]]), ["--edges", "row 0", "found 2"]),
    "known node out of range": (np.array([[0, 1], [2, 12]]), ["--edges", "row 1", "found 12"]),
    "negative known node": (np.array([[0, 1], [-1, 3]]), ["--edges", "row 1", "found -1"]),
    "text": ("0,1\n2,3\n", ["text file"]),
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A fit with propagated inputs and one on the features only, on the 12-node OGB-layout toy graph."""
    base = tmp_path_factory.mktemp("models")
    edges, features, labels = toy_arrays()
    graph = write_ogb_folder(base / "ogbn_toy", edges, 12, features, labels)
    for name, inputs in (("propagated", "propagated:1"), ("features", "features")):
        result = invoke("fit", "--dataset", graph, "--out", base / name, "--inputs", inputs, *FIT)
        assert result.exit_code == 0, result.output
    np.save(base / "x.npy", np.ones((2, 4), dtype=np.float32))
    np.save(base / "edges.npy", np.array([[0, 1], [2, 3]]))
    return base


@pytest.mark.parametrize("case", sorted(ARRAY_FILES))
def test_bad_array_files_for_embed_and_evaluate(tmp_path, models, case):
    content, needles = ARRAY_FILES[case]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    bad = _write(inputs / "bad.npy", content)
    before = digest(tmp_path)
    embed = invoke("embed", "--model", models / "propagated", "--features", bad, "--edges", models / "edges.npy",
                   "--out", tmp_path / "new" / "e.npy", "--device", "cpu")
    evaluate = invoke("evaluate", "--embeddings", bad, "-d", models / "ogbn_toy", "--runs", 1, "--device", "cpu",
                      "--output", tmp_path / "new" / "r.json")
    for result in (embed, evaluate):
        assert_refused(result, str(bad), *needles)
        assert digest(tmp_path) == before


@pytest.mark.parametrize("case", sorted(EDGE_FILES))
def test_bad_edge_files_for_embed(tmp_path, models, case):
    content, needles = EDGE_FILES[case]
    bad = _write(tmp_path / "bad_edges.npy", content)
    before = digest(tmp_path)
    result = invoke("embed", "--model", models / "propagated", "--features", models / "x.npy", "--edges", bad,
                    "--out", tmp_path / "new" / "e.npy", "--device", "cpu")
    assert_refused(result, *needles)
    assert digest(tmp_path) == before


@pytest.mark.parametrize("rows, columns, needles", [
    (11, 4, ["11 rows", "12 nodes"]), (13, 4, ["13 rows"]), (12, 0, ["empty array"]),
])
def test_evaluate_needs_one_row_per_node(tmp_path, models, rows, columns, needles):
    np.save(tmp_path / "x.npy", np.ones((rows, columns), dtype=np.float32))
    result = invoke("evaluate", "--embeddings", tmp_path / "x.npy", "-d", models / "ogbn_toy", "--runs", 1,
                    "--device", "cpu", "--output", tmp_path / "r.json")
    assert_refused(result, "x.npy", *needles)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]


def test_embed_with_wrong_width_names_the_option(tmp_path, models):
    np.save(tmp_path / "x.npy", np.ones((2, 5), dtype=np.float32))
    result = invoke("embed", "--model", models / "features", "--features", tmp_path / "x.npy", "--out",
                    tmp_path / "e.npy", "--device", "cpu")
    assert_refused(result, "--features", "[m, 4]", "[2, 5]")
    assert not (tmp_path / "e.npy").exists()


# --- output paths: never an input of the same command, never an existing file of another kind -------------------

def _link(source: Path, target: Path) -> Path:
    target.symlink_to(source)
    return target


def _hard_link(source: Path, target: Path) -> Path:
    os.link(source, target)
    return target


OUTPUT_CASES = {
    "embed --out is --features": (
        lambda m, t: ("embed", "--model", m / "propagated", "--features", t / "x.npy", "--edges", t / "edges.npy",
                      "--out", t / "x.npy"), ["--out", "also --features"]),
    "embed --out is --edges": (
        lambda m, t: ("embed", "--model", m / "propagated", "--features", t / "x.npy", "--edges", t / "edges.npy",
                      "--out", t / "edges.npy"), ["--out", "also --edges"]),
    "embed --backbone is --features": (
        lambda m, t: ("embed", "--model", m / "features", "--features", t / "x.npy", "--out", t / "new.npy",
                      "--backbone", t / "x.npy"), ["--backbone", "also --features"]),
    "embed --out links to --features": (
        lambda m, t: ("embed", "--model", m / "features", "--features", t / "x.npy", "--out",
                      _link(t / "x.npy", t / "link.npy")), ["--out", "also --features"]),
    "embed --out inside --model": (
        lambda m, t: ("embed", "--model", t / "model", "--features", t / "x.npy", "--out",
                      t / "model" / "embeddings.npy"), ["--out", "--model", "part of an input"]),
    "embed --out is a JSON file": (
        lambda m, t: ("embed", "--model", m / "features", "--features", t / "x.npy", "--out", t / "result.json"),
        ["--out", "a JSON file", "a .npy array"]),
    "embed --out is a text file": (
        lambda m, t: ("embed", "--model", m / "features", "--features", t / "x.npy", "--out", t / "notes.txt"),
        ["--out", "a text file"]),
    "evaluate --output is --embeddings": (
        lambda m, t: ("evaluate", "--embeddings", t / "emb.npy", "-d", m / "ogbn_toy", "--output", t / "emb.npy"),
        ["--output", "also --embeddings"]),
    "evaluate --output hard-links --embeddings": (
        lambda m, t: ("evaluate", "--embeddings", t / "emb.npy", "-d", m / "ogbn_toy", "--output",
                      _hard_link(t / "emb.npy", t / "hard.json")), ["--output", "also --embeddings"]),
    "evaluate --output is a .npy": (
        lambda m, t: ("evaluate", "--embeddings", t / "emb.npy", "-d", m / "ogbn_toy", "--output", t / "x.npy"),
        ["--output", "a .npy array", "a JSON file"]),
    "evaluate --output is the dataset": (
        lambda m, t: ("evaluate", "--embeddings", t / "emb.npy", "-d", t / "graph.npz", "--output", t / "graph.npz"),
        ["--output", "also --dataset"]),
    "evaluate --output inside --model": (
        lambda m, t: ("evaluate", "--model", t / "model", "-d", m / "ogbn_toy", "--output", t / "model" / "metadata.json"),
        ["--output", "--model", "part of an input"]),
    "fit --out is the dataset": (
        lambda m, t: ("fit", "--dataset", t / "ogbn_copy", "--out", t / "ogbn_copy", *FIT), ["--out", "also --dataset"]),
    "bench --out is the dataset": (
        lambda m, t: ("bench", "compare", "-d", t / "ogbn_copy", "--out", t / "ogbn_copy"), ["--out", "also --dataset"]),
}


@pytest.mark.parametrize("case", sorted(OUTPUT_CASES))
def test_outputs_never_replace_inputs_or_other_files(tmp_path, models, case):
    shutil.copytree(models / "features", tmp_path / "model")
    shutil.copytree(models / "ogbn_toy", tmp_path / "ogbn_copy")
    shutil.copy(models / "x.npy", tmp_path / "x.npy")
    shutil.copy(models / "edges.npy", tmp_path / "edges.npy")
    np.save(tmp_path / "emb.npy", np.ones((12, 4), dtype=np.float32))
    write_npz(tmp_path / "graph.npz", sp.csr_matrix(np.ones((3, 3))), None, [0, 1, 0])
    (tmp_path / "result.json").write_text('{"a": 1}\n')
    (tmp_path / "notes.txt").write_text("keep me\n")
    make, needles = OUTPUT_CASES[case]
    args = make(models, tmp_path)
    before = digest(tmp_path)
    assert_refused(invoke(*args, "--device", "cpu") if "fit" not in args else invoke(*args), *needles)
    assert digest(tmp_path) == before


def test_an_existing_output_of_the_same_kind_is_replaced(tmp_path, models):
    np.save(tmp_path / "e.npy", np.zeros(3))
    result = invoke("embed", "--model", models / "features", "--features", models / "x.npy", "--out", tmp_path / "e.npy",
                    "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "e.npy").shape == (2, 2)


# --- legal but likely a mistake: one warning line, and the run goes on ----------------------------------------------

def _warnings(result) -> list[str]:
    assert result.exit_code == 0, result.output
    lines = result.stderr.strip().splitlines()
    assert all(line.startswith("warning: ") for line in lines), result.stderr
    return lines


def test_edges_given_to_a_features_only_model_are_said_to_be_ignored(tmp_path, models):
    result = invoke("embed", "--model", models / "features", "--features", models / "x.npy", "--edges",
                    models / "edges.npy", "--out", tmp_path / "e.npy", "--device", "cpu")
    assert _warnings(result) == [f"warning: --edges are not used: {models / 'features'} was fitted with inputs "
                                 "'features', which read a node's own features only; drop --edges."]
    assert np.load(tmp_path / "e.npy").shape == (2, 2)


def test_a_label_ratio_below_one_label_per_class_is_said_once(models):
    np.save(models / "emb12.npy", np.random.default_rng(0).normal(size=(12, 3)).astype(np.float32))
    result = invoke("evaluate", "--embeddings", models / "emb12.npy", "-d", models / "ogbn_toy", "--runs", 3,
                    "--label-ratio", 0.3, "--device", "cpu")
    # 4 train nodes: round(0.3 * 4) = 1 labelled node for 3 classes, in each of the 3 runs: said once
    assert _warnings(result) == ["warning: a label ratio of 0.3 leaves 1 labelled training node for 3 classes, so the "
                                 "classifier cannot see every class; use a ratio of at least 0.75 (3 of the 4 train "
                                 "nodes)."]
    quiet = invoke("evaluate", "--embeddings", models / "emb12.npy", "-d", models / "ogbn_toy", "--runs", 1,
                   "--label-ratio", 0.75, "--device", "cpu")
    assert _warnings(quiet) == []


def test_options_the_run_does_not_read_are_said_to_be_ignored(tmp_path, models):
    result = invoke("fit", "--dataset", models / "ogbn_toy", "--out", tmp_path / "a", "--estimator", "full",
                    "--fanout", 3, "--batch-size", 64, *FIT)
    lines = _warnings(result)
    assert "warning: --fanout is ignored: the full estimator does not read it, only the sampled estimator reads it; " \
        "drop it, or choose --estimator sampled." in lines
    assert any(line.startswith("warning: --batch-size is ignored: the full estimator does not read it") for line in lines)
    identity = invoke("fit", "--dataset", models / "ogbn_toy", "--out", tmp_path / "b", "--features", "identity",
                      "--depth", 3, *FIT)
    assert any(line.startswith("warning: --depth is ignored") and "--features identity" in line
               for line in _warnings(identity))
    plain = invoke("fit", "--dataset", models / "ogbn_toy", "--out", tmp_path / "c", *FIT)
    assert not any("ignored" in line for line in _warnings(plain))


def test_correct_and_smooth_with_a_model_is_said_to_be_ignored(models):
    # said before any work: an unknown dataset then stops the command, so the test does not run the recipe
    result = invoke("evaluate", "--model", models / "features", "--runs", 1, "--correct-and-smooth", "-d",
                    "no-such-dataset", "--device", "cpu")
    warning, error = result.stderr.strip().splitlines()
    assert warning.startswith("warning: --correct-and-smooth is ignored with --model") and "drop the option" in warning
    assert result.exit_code == 2 and error.startswith("error: unknown dataset 'no-such-dataset'")


def test_negative_labels_other_than_minus_one_are_said_to_be_unknown(tmp_path):
    edges, features, labels = toy_arrays()
    labels = labels.copy()
    labels[[0, 5]] = [-3, -1]
    folder = write_ogb_folder(tmp_path / "ogbn_neg", edges, 12, features, labels)
    result = invoke("info", folder, "--json", "--cache-dir", tmp_path / "cache")
    assert _warnings(result) == [f"warning: {folder}/raw/node-label.csv.gz: 1 label below -1 (first: -3 at node 0) "
                                 "read as unknown, as -1 and NaN are; fix them if they are meant to be classes."]
    from graph_eigenmap.data import load_graph

    assert load_graph(folder, cache_dir=tmp_path / "cache").labels[[0, 5]].tolist() == [-1, -1]


def test_labels_that_leave_most_class_ids_empty_are_said(tmp_path):
    labels = np.array([0, 1, 2, 9, 0, 1, 2, 0, 1, 2, 0, 1])
    path = write_npz(tmp_path / "sparse_labels.npz", sp.csr_matrix(np.ones((12, 12))), None, labels)
    lines = _warnings(invoke("info", path))
    assert lines == [f"warning: {path} (labels): labels use 4 of the class ids 0..9 (largest: 9 at node 3), so 6 "
                     "classes have no node; if that label is a typo, fix it."]


def test_a_value_in_a_message_is_never_made_a_flag(tmp_path):
    line = assert_refused(invoke("fit", "--out", tmp_path / "run", "--inputs", "foo"), "'foo'")
    assert "'features'" in line and "--features" not in line
