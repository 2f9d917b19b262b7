"""The checks every graph and every array read from a file goes through, one function per class of input.

Every loader (OGB folders and names, gnn-benchmark ``.npz``, PyG ``Data``, scipy arrays, the CSBM generator)
builds its graph through these checks, and the command line reads its ``.npy`` inputs with
:func:`read_array`. A failed check raises :class:`~graph_eigenmap.errors.DataError` with one line: where the
values came from (the file, such as ``.../raw/edge.csv.gz``, or the array's name), what was found, what is
expected. The classes:

* **node ids** (edge lists, split files, new nodes' edges): integers (integral floats are taken as they are),
  in ``[0, n)``;
* **edge weights**: finite and non-negative; an entry of weight 0 is no edge and is dropped;
* **features**: numbers, finite, one row per node and at least one column (a graph without features is given no
  features: it is then fitted with ``features='identity'``, a free vector per node);
* **labels**: integral class ids in ``[0, C)``, C declared (an OGB folder's ``meta.json``) or the largest id + 1;
  :data:`MISSING_LABEL` (-1), any other negative value or NaN marks a node whose class is unknown (a negative
  value other than -1 is said once, as an :class:`~graph_eigenmap.errors.InputWarning`);
* **splits**: train, valid and test node ids, each node listed once, in range, in one part only;
* **arrays read from files**: a ``.npy`` readable without pickles, numbers, the expected number of dimensions,
  finite, and as many rows as the graph has nodes where rows are nodes (:func:`check_rows`).

Legal input that is likely a mistake (labels that leave most class ids empty, unknown labels written as -3) is
said once, on stderr from the command line, as an :class:`~graph_eigenmap.errors.InputWarning`.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from graph_eigenmap.data.sparse import keep_sparse
from graph_eigenmap.errors import DataError, InputWarning
from graph_eigenmap.files import file_kind

MISSING_LABEL = -1
"""The label of a node whose class is unknown. Sources may also write NaN or another negative value."""
SPLIT_NAMES = ("train", "valid", "test")
NUMERIC_KINDS = "biuf"
"""numpy dtype kinds that hold numbers (bool, signed, unsigned, float)."""


def count(number, noun: str) -> str:
    """``count(1, "row")`` -> "1 row", ``count(3, "row")`` -> "3 rows" (thousands separated)."""
    number = int(number)
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def check_num_nodes(num_nodes, where: str) -> int:
    """``num_nodes`` as an int >= 1."""
    try:
        n = int(num_nodes)
        whole = n == num_nodes
    except (TypeError, ValueError, OverflowError):
        whole = False
    if not whole:
        raise DataError(f"{where}: the node count must be an integer; got {num_nodes!r}.")
    if n <= 0:
        detail = "the graph is empty (0 nodes)" if n == 0 else f"the node count must be positive; got {n}"
        raise DataError(f"{where}: {detail}; check the node count file or the input arrays.")
    return n


def check_edge_index(edge_index, num_nodes: int, where: str) -> torch.Tensor:
    """``[2, m]`` int64 node ids (on the device of ``edge_index``), every one in ``[0, num_nodes)``.

    Args:
        edge_index: ``[2, m]`` numpy array or tensor, (source, target) per column; integral floats are accepted.
        where: the file or array the ids came from, for messages.
    """
    if isinstance(edge_index, np.ndarray) and edge_index.dtype.kind not in NUMERIC_KINDS:
        raise DataError(f"{where}: holds {edge_index.dtype} values, not node ids; give integer node ids.")
    edges = torch.as_tensor(edge_index)
    if edges.dim() != 2 or edges.shape[0] != 2:
        hint = " (one row per edge: transpose it)" if edges.dim() == 2 and edges.shape[1] == 2 else ""
        raise DataError(f"{where}: edges must have shape [2, m], one (source, target) column per edge; got "
                        f"{list(edges.shape)}{hint}.")
    if edges.dtype == torch.bool or edges.is_complex():
        raise DataError(f"{where}: holds {edges.dtype} values, not node ids; give integer node ids.")
    if edges.is_floating_point():
        _check_integral_tensor(edges, where, "node id")
    edges = edges.long()
    check_ids_in_range(edges, num_nodes, where)
    return edges


def _check_integral_tensor(values: torch.Tensor, where: str, what: str) -> None:
    bad = (~torch.isfinite(values) | (values != torch.round(values))).reshape(-1)
    if bool(bad.any()):
        first = int(torch.nonzero(bad)[0])
        raise DataError(f"{where}: {what}s must be integers; found {float(values.reshape(-1)[first]):g} (edge "
                        f"{first % values.shape[-1]}, {count(bad.sum(), 'such value')}); fix the file.")


def check_ids_in_range(ids, num_nodes: int, where: str, what: str = "node id") -> None:
    """Every entry of ``ids`` (numpy array or tensor of integers) in ``[0, num_nodes)``."""
    if ids.numel() == 0 if isinstance(ids, torch.Tensor) else ids.size == 0:
        return
    low, high = int(ids.min()), int(ids.max())
    if low < 0 or high >= num_nodes:
        bad = low if low < 0 else high
        raise DataError(f"{where}: {what} {bad} is out of range for {num_nodes:,} nodes (ids must be "
                        f"0..{num_nodes - 1}); fix the ids or the node count.")


def check_edge_weights(edge_weight, num_edges: int, where: str, device=None) -> tuple[torch.Tensor | None, object]:
    """``[m]`` float weights, finite and >= 0; and which entries to keep (those of weight 0 are no edge).

    Returns:
        ``(weights or None, keep)``: ``keep`` is a boolean ``[m]`` tensor, or None when every entry stays.
    """
    if edge_weight is None:
        return None, None
    if isinstance(edge_weight, np.ndarray) and edge_weight.dtype.kind not in NUMERIC_KINDS:
        raise DataError(f"{where}: edge weights hold {edge_weight.dtype} values; give numbers.")
    weight = torch.as_tensor(edge_weight, device=device).reshape(-1)
    if weight.numel() != num_edges:
        raise DataError(f"{where}: {weight.numel():,} edge weights for {num_edges:,} edges; give one weight per edge.")
    weight = weight.float()
    bad = ~torch.isfinite(weight) | (weight < 0)
    if bool(bad.any()):
        first = int(torch.nonzero(bad)[0])
        raise DataError(f"{where}: edge weights must be finite and non-negative; found {float(weight[first]):g} "
                        f"(edge {first}, {count(bad.sum(), 'such weight')}); fix or drop those edges.")
    zero = weight == 0
    return weight, (~zero if bool(zero.any()) else None)


def check_features(features, num_nodes: int, where: str, dense_features: bool | None = None):
    """``[n, d]`` float32 features, dense or scipy CSR (:func:`~graph_eigenmap.data.sparse.keep_sparse`), or None.

    Raises:
        DataError: not numbers, not one row per node, no column, or NaN / inf.
    """
    if features is None:
        return None
    if keep_sparse(features, dense_features):
        x = sp.csr_matrix(features)
        _check_numeric(x.dtype, where, "features")
        x = x.astype(np.float32)
        _check_feature_shape(x.shape, num_nodes, where)
        if not np.isfinite(x.data).all():
            rows = np.unique(np.repeat(np.arange(num_nodes), np.diff(x.indptr))[~np.isfinite(x.data)])
            _not_finite(rows, where)
        x.sum_duplicates()
        x.sort_indices()
        return x
    x = np.asarray(features.toarray() if sp.issparse(features) else features)
    _check_numeric(x.dtype, where, "features")
    x = x[:, None] if x.ndim == 1 else x
    _check_feature_shape(x.shape, num_nodes, where)
    x = np.ascontiguousarray(x, dtype=np.float32)
    finite = np.isfinite(x)
    if not finite.all():
        _not_finite(np.flatnonzero(~finite.all(axis=1)), where)
    return x


def _check_numeric(dtype, where: str, what: str) -> None:
    if np.dtype(dtype).kind not in NUMERIC_KINDS:
        raise DataError(f"{where}: {what} hold {np.dtype(dtype)} values, not numbers; give numeric {what}.")


def _check_feature_shape(shape: tuple, num_nodes: int, where: str) -> None:
    if len(shape) != 2 or shape[0] != num_nodes:
        rows = shape[0] if len(shape) else 0
        raise DataError(f"{where}: features have {rows:,} rows but the graph has {num_nodes:,} nodes; "
                        "give one feature row per node, in node-id order.")
    if shape[1] == 0:
        raise DataError(f"{where}: features have 0 columns; give at least one column per node, or leave the "
                        "features out (a graph without features is fitted with `features='identity'`, a free "
                        "vector per node).")


def _not_finite(rows: np.ndarray, where: str) -> None:
    raise DataError(f"{where}: features hold NaN or inf in {count(rows.size, 'row')} (first: node {rows[0]}); "
                    "impute or drop them before loading.")


def check_labels(labels, num_nodes: int, where: str, *, num_classes: int | None = None,
                 declared_by: str | None = None) -> np.ndarray:
    """``[n]`` int64 class ids in ``[0, C)``, :data:`MISSING_LABEL` where unknown.

    Args:
        labels: ``[n]`` or ``[n, 1]`` numbers; NaN or a negative value means unknown. None: all unknown.
        num_classes: C where the source declares it (an OGB ``meta.json``); None: the largest id + 1.
        declared_by: what declared ``num_classes`` (a file), for messages.

    Raises:
        DataError: not one integral label per node, a label >= the declared C, or (undeclared) a class id larger
            than the node count.
    """
    if labels is None:
        return np.full(num_nodes, MISSING_LABEL, dtype=np.int64)
    y = np.asarray(labels)
    y = y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1 or y.shape[0] != num_nodes:
        raise DataError(f"{where}: {y.shape[0] if y.ndim else 0:,} labels (shape {list(y.shape)}) for "
                        f"{num_nodes:,} nodes; give one label per node (-1 or NaN where unknown).")
    if y.dtype.kind not in NUMERIC_KINDS:
        raise DataError(f"{where}: labels hold {y.dtype} values, not class ids; give integer class ids "
                        "(-1 where unknown).")
    if y.dtype.kind == "f":
        unknown = np.isnan(y)
        bad = ~unknown & (~np.isfinite(y) | (np.round(y) != y))
        if bad.any():
            node = int(np.flatnonzero(bad)[0])
            raise DataError(f"{where}: labels must be integer class ids; found {y[node]:g} at node {node} "
                            f"({count(bad.sum(), 'such label')}); fix them (-1 or NaN where unknown).")
        y = np.where(unknown, MISSING_LABEL, y)
    y = y.astype(np.int64, copy=False)
    _say_unusual_missing(y, where)
    unknown = y < 0
    if unknown.any():  # a new array: the caller's stays as given
        y = np.where(unknown, MISSING_LABEL, y)
    _check_class_ids(y, num_nodes, where, num_classes, declared_by)
    return y


def _say_unusual_missing(y: np.ndarray, where: str) -> None:
    unusual = y < MISSING_LABEL
    if unusual.any():
        node = int(np.flatnonzero(unusual)[0])
        warnings.warn(f"{where}: {count(unusual.sum(), 'label')} below -1 (first: {y[node]} at node {node}) read as "
                      "unknown, as -1 and NaN are; fix them if they are meant to be classes.",
                      InputWarning, stacklevel=4)


def _check_class_ids(y: np.ndarray, num_nodes: int, where: str, num_classes: int | None,
                     declared_by: str | None) -> None:
    known = y >= 0
    if not known.any():
        return
    largest = int(y.max())
    node = int(np.argmax(y))
    if num_classes is not None:
        if largest >= num_classes:
            raise DataError(f"{where}: label {largest} at node {node} is not one of the {num_classes} classes "
                            f"{declared_by or 'declared'} declares (ids 0..{num_classes - 1}); fix the label or "
                            "the class count.")
        return
    if largest >= num_nodes:
        raise DataError(f"{where}: label {largest} at node {node} is not a class id: with {num_nodes:,} nodes, "
                        f"ids must be 0..C-1 for C classes; fix the label.")
    used = np.unique(y[known]).size
    if largest + 1 > 2 * used:
        warnings.warn(f"{where}: labels use {used} of the class ids 0..{largest} (largest: {largest} at node "
                      f"{node}), so {largest + 1 - used} classes have no node; if that label is a typo, fix it.",
                      InputWarning, stacklevel=4)


def check_split(split: dict, num_nodes: int, where: dict | str) -> dict[str, np.ndarray]:
    """Train, valid and test node ids: each in range, listed once, and in one part only.

    Args:
        split: ``{"train", "valid", "test"}`` -> ``[k]`` node ids or ``[n]`` boolean masks.
        where: per part, the file or array it came from (or one text for all), for messages.

    Returns:
        ``{part: [k] int64 node ids}``.
    """
    names = {part: where[part] if isinstance(where, dict) else f"{where} ({part} split)" for part in SPLIT_NAMES}
    missing = [part for part in SPLIT_NAMES if part not in split]
    if missing:
        raise DataError(f"{next(iter(names.values()))}: the split lacks {missing}; give 'train', 'valid' and "
                        "'test' node ids.")
    out = {part: _split_ids(split[part], num_nodes, names[part]) for part in SPLIT_NAMES}
    owner = np.full(num_nodes, -1, dtype=np.int8)  # one byte per node: papers100M's 111M nodes take 111 MB
    for index, part in enumerate(SPLIT_NAMES):
        ids = out[part]
        taken = owner[ids] >= 0
        if taken.any():
            node = int(ids[np.argmax(taken)])
            other = SPLIT_NAMES[owner[node]]
            raise DataError(f"{names[other]} and {names[part]} share {count(taken.sum(), 'node')} (first: {node}); "
                            "a node belongs to one of train, valid and test: fix the split.")
        owner[ids] = index
        if np.count_nonzero(owner == index) != ids.size:  # fewer distinct nodes than ids: some repeat
            _repeated(ids, names[part])
    return out


def _repeated(ids: np.ndarray, where: str) -> None:
    """Raise the error that names the first repeated id of ``ids`` and how many repeats there are."""
    values, counts = np.unique(ids, return_counts=True)
    first = int(ids[np.isin(ids, values[counts > 1])][0])
    raise DataError(f"{where}: node {first} is listed {int(counts[values == first][0])} times "
                    f"({count((counts - 1).sum(), 'repeated id')} in all); list each node once.")


def _split_ids(ids, num_nodes: int, where: str) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.dtype == bool:
        if ids.shape != (num_nodes,):
            raise DataError(f"{where}: the mask has shape {list(ids.shape)} for {num_nodes:,} nodes; give one "
                            "entry per node.")
        return np.flatnonzero(ids).astype(np.int64)
    if ids.ndim == 2 and ids.shape[1] == 1:
        ids = ids[:, 0]
    if ids.ndim > 1:
        raise DataError(f"{where}: node ids must be one column; got shape {list(ids.shape)}.")
    if ids.dtype.kind not in NUMERIC_KINDS:
        raise DataError(f"{where}: holds {ids.dtype} values, not node ids; give integer node ids.")
    if ids.dtype.kind == "f":
        bad = ~np.isfinite(ids) | (np.round(ids) != ids)
        if bad.any():
            raise DataError(f"{where}: node ids must be integers; found {ids[np.argmax(bad)]:g} "
                            f"({count(bad.sum(), 'such value')}); fix the split.")
    ids = ids.astype(np.int64, copy=False).reshape(-1)
    check_ids_in_range(ids, num_nodes, where)
    return ids


def check_rows(x, num_nodes: int, where: str, graph_name: str) -> None:
    """An array of one row per node has exactly ``num_nodes`` rows."""
    if x.shape[0] != num_nodes:
        raise DataError(f"{where} has {x.shape[0]:,} rows but {graph_name} has {num_nodes:,} nodes; give one row per "
                        "node, row i for node i.")


def read_array(path: str | Path, what: str, *, ndim: int = 2, integral: bool = False) -> np.ndarray:
    """A ``.npy`` array read without pickles and checked: numbers, ``ndim`` dimensions, no empty axis, finite.

    Args:
        path: the file.
        what: what it should hold, in words with its shape ("node features [m, d]"), for messages.
        ndim: the number of dimensions it must have.
        integral: node ids: integers (or floats that are whole numbers), returned as int64.

    Raises:
        DataError: one line naming the file, what it holds and how to write the array expected.
    """
    path = Path(path)
    _check_is_file(path, what, "a .npy file")
    kind = file_kind(path)
    if kind != "npy":
        raise DataError(_not_npy(path, kind, what))
    try:
        x = np.load(path, allow_pickle=False)
    except ValueError as err:
        if "pickle" in str(err) or "object" in str(err).lower():
            raise DataError(f"{path} holds Python objects (dtype object), not numbers; save {what} as a numeric "
                            "array with numpy.save.") from None
        raise DataError(f"{path} is truncated or corrupt ({err}); write it again with numpy.save.") from None
    except (OSError, EOFError) as err:
        raise DataError(f"{path} is truncated or corrupt ({type(err).__name__}); write it again with "
                        "numpy.save.") from None
    return _check_array(x, path, what, ndim, integral)


def _check_array(x: np.ndarray, path: Path, what: str, ndim: int, integral: bool) -> np.ndarray:
    if x.dtype.kind not in NUMERIC_KINDS:
        raise DataError(f"{path} holds {x.dtype} values, not numbers; save {what} as a numeric array.")
    if x.ndim != ndim:
        raise DataError(f"{path} holds an array of shape {list(x.shape)}; expected {what} ({ndim} dimensions).")
    if x.size == 0:
        raise DataError(f"{path} holds an empty array (shape {list(x.shape)}); expected {what}.")
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x) if not integral else ~np.isfinite(x) | (np.round(x) != x)
        if bad.any():
            index = tuple(int(i) for i in np.argwhere(bad)[0])
            found = "NaN or inf" if not integral or not np.isfinite(x[index]) else f"{x[index]:g}"
            expected = "node ids, integers" if integral else "finite numbers"
            raise DataError(f"{path} holds {found} at {list(index)} ({count(bad.sum(), 'such value')}); {what} must be "
                            f"{expected}: fix or drop those entries.")
    return x.astype(np.int64) if integral else x


def read_sparse(path: str | Path, what: str) -> sp.csr_matrix:
    """A scipy sparse ``.npz`` (``scipy.sparse.save_npz``) as CSR, checked: numbers, no empty axis, finite."""
    path = Path(path)
    _check_is_file(path, what, "a scipy sparse .npz file")
    kind = file_kind(path)
    if kind != "zip":
        raise DataError(f"{path} is {_KIND_WORDS.get(kind, 'not a zip archive')}, not a scipy sparse .npz; save "
                        f"{what} with scipy.sparse.save_npz (or as a .npy array).")
    try:
        x = sp.csr_matrix(sp.load_npz(path))
    except (ValueError, OSError, EOFError, KeyError) as err:
        raise DataError(f"{path} is not a scipy sparse .npz of {what} ({type(err).__name__}: {err}); save it with "
                        "scipy.sparse.save_npz.") from None
    if x.dtype.kind not in NUMERIC_KINDS:
        raise DataError(f"{path} holds {x.dtype} values, not numbers; save numeric {what}.")
    if 0 in x.shape:
        raise DataError(f"{path} holds an empty matrix (shape {list(x.shape)}); expected {what}.")
    if not np.isfinite(x.data).all():
        raise DataError(f"{path} holds NaN or inf; {what} must be finite numbers: fix or drop those entries.")
    return x


def _check_is_file(path: Path, what: str, form: str) -> None:
    if path.is_dir():
        raise DataError(f"{path} is a folder; give {what} as {form}.")
    if not path.is_file():
        raise DataError(f"no such file: {path}; give {what} as {form}.")


_KIND_WORDS = {
    "zip": "a zip archive (a .npz holds several arrays: give the .npy of one, or a scipy sparse .npz where taken)",
    "pickle": "a pickle, which can run code when loaded and is refused",
    "json": "a JSON file",
    "gzip": "a gzip file",
    "empty": "empty",
    "binary": "not a .npy array (unknown binary content)",
}


def _not_npy(path: Path, kind: str, what: str) -> str:
    """Why ``path`` (of :func:`~graph_eigenmap.files.file_kind` ``kind``) is not a .npy file, and how to make one."""
    if kind == "text":
        with open(path, "rb") as stream:
            first = stream.readline(80).decode("utf-8", "replace").strip()
        delimiter = ", delimiter=','" if "," in first else ""
        target = path.with_name(f"{path.stem}_array.npy")
        return (f"{path} is a text file (first line {first!r}), not a .npy array; convert it once in Python: "
                f"numpy.save('{target}', numpy.loadtxt('{path}'{delimiter})).")
    return f"{path} is {_KIND_WORDS.get(kind, kind)}, not a .npy array; save {what} with numpy.save."
