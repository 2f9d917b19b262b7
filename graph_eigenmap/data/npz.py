"""gnn-benchmark ``.npz`` files (Shchur et al., "Pitfalls of GNN evaluation").

Keys read: ``adj_data, adj_indices, adj_indptr, adj_shape`` (CSR adjacency), optionally
``attr_data, attr_indices, attr_indptr, attr_shape`` (CSR features: densified to float32 unless too large, see
:mod:`graph_eigenmap.data.sparse`) or a
dense ``attr_matrix``, and ``labels``. Files are opened with ``allow_pickle=False``: a file that
needs pickles is refused. No split is stored, so :func:`~graph_eigenmap.data.graph.random_split`
makes the seeded 10/10/80 one.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from graph_eigenmap.data.graph import Graph, build_graph
from graph_eigenmap.errors import DataError
from graph_eigenmap.files import KIND_NAMES, file_kind


def load_npz(path: str | Path, *, split_seed: int = 0) -> Graph:
    """Load a gnn-benchmark ``.npz`` graph.

    Args:
        path: the ``.npz`` file.
        split_seed: seed of the 10/10/80 train/valid/test split.

    Raises:
        DataError: missing, truncated or pickled file, or inconsistent arrays.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"no such file: {path}; give the path of a gnn-benchmark .npz file.")
    arrays = _read_arrays(path)
    if not {"adj_data", "adj_indices", "adj_indptr", "adj_shape"} <= arrays.keys():
        raise DataError(
            f"{path} has no CSR adjacency (keys adj_data, adj_indices, adj_indptr, adj_shape); found {sorted(arrays)}."
        )
    adjacency = _csr(arrays, "adj", path)
    if adjacency.shape[0] != adjacency.shape[1]:
        raise DataError(f"{path}: the adjacency is {adjacency.shape[0]} x {adjacency.shape[1]}, not square; "
                        "fix adj_shape.")
    coo = adjacency.tocoo()
    weights = coo.data if not np.all(coo.data == 1) else None
    if "attr_data" in arrays:
        features = _csr(arrays, "attr", path)  # build_graph densifies it unless that would be too large
        features_origin = f"{path} (attr_*)"
    else:
        features = arrays.get("attr_matrix")
        features_origin = f"{path} (attr_matrix)"
    return build_graph(
        np.vstack([coo.row, coo.col]),
        adjacency.shape[0],
        features=features,
        labels=arrays.get("labels"),
        edge_weight=weights,
        name=path.stem,
        source=str(path),
        split_seed=split_seed,
        origin=dict(num_nodes=f"{path} (adj_shape)", edges=f"{path} (adj_*)", features=features_origin,
                    labels=f"{path} (labels)"),
    )


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    kind = file_kind(path)
    if kind != "zip":
        raise DataError(f"{path} is not a .npz archive: it holds {KIND_NAMES[kind]}; give a gnn-benchmark .npz "
                        "file (numpy.savez of the adj_* arrays, labels and features).")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except ValueError as err:
        if "allow_pickle" in str(err) or "pickle" in str(err).lower():
            raise DataError(
                f"{path} stores pickled objects, which can run code when loaded; refusing it. "
                "Re-save it with plain arrays (numpy.savez with CSR parts as separate arrays)."
            ) from None
        raise DataError(f"{path} is not a readable .npz file ({err}); copy or download it again.") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as err:
        raise DataError(f"{path} is truncated or corrupt ({type(err).__name__}: {err}); "
                        "copy or download it again.") from None


def _csr(arrays: dict, prefix: str, path: Path) -> sp.csr_matrix:
    """The CSR matrix of the ``{prefix}_data, _indices, _indptr, _shape`` arrays, after checking that they form one
    (scipy itself checks the column indices only later, with a traceback)."""
    keys = [f"{prefix}_{part}" for part in ("data", "indices", "indptr", "shape")]
    missing = [key for key in keys if key not in arrays]
    if missing:
        raise DataError(f"{path} lacks {', '.join(missing)}; a CSR matrix needs all of {', '.join(keys)}.")
    data, indices, indptr, shape = (np.asarray(arrays[key]) for key in keys)
    problem = _csr_problem(data, indices, indptr, shape, prefix)
    if problem:
        raise DataError(f"{path}: {problem}; the file is inconsistent: write it again.")
    return sp.csr_matrix((data, indices.astype(np.int64), indptr.astype(np.int64)),
                         shape=(int(shape[0]), int(shape[1])))


def _csr_problem(data, indices, indptr, shape, prefix: str) -> str | None:
    """What keeps the four arrays from forming a CSR matrix, in words; None when they do."""
    if shape.shape != (2,) or shape.dtype.kind not in "iu" or (shape < 0).any():
        return f"{prefix}_shape must be two non-negative integers; got {shape.tolist()}"
    rows, cols = int(shape[0]), int(shape[1])
    for key, array in ((f"{prefix}_indices", indices), (f"{prefix}_indptr", indptr)):
        if array.ndim != 1 or array.dtype.kind not in "iu":
            return f"{key} must be a 1-D integer array; got {array.dtype} of shape {list(array.shape)}"
    if data.ndim != 1 or data.dtype.kind not in "biuf":
        return f"{prefix}_data must be a 1-D array of numbers; got {data.dtype} of shape {list(data.shape)}"
    if indptr.size != rows + 1 or indptr[0] != 0 or (np.diff(indptr) < 0).any():
        return (f"{prefix}_indptr must rise from 0 in {rows + 1:,} entries (rows + 1, from {prefix}_shape); got "
                f"{indptr.size:,} entries")
    if not indptr[-1] == indices.size == data.size:
        return (f"{prefix}_indptr ends at {int(indptr[-1]):,} but {prefix}_indices holds {indices.size:,} and "
                f"{prefix}_data {data.size:,} entries")
    if indices.size and (indices.min() < 0 or indices.max() >= cols):
        bad = int(indices.min() if indices.min() < 0 else indices.max())
        return (f"{prefix}_indices holds column {bad}, out of range for {cols:,} columns ({prefix}_shape "
                f"{rows} x {cols})")
    return None
