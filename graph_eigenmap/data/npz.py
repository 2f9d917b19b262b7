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
    else:
        features = arrays.get("attr_matrix")
    return build_graph(
        np.vstack([coo.row, coo.col]),
        adjacency.shape[0],
        features=features,
        labels=arrays.get("labels"),
        edge_weight=weights,
        name=path.stem,
        source=str(path),
        split_seed=split_seed,
    )


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
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
    try:
        return sp.csr_matrix(
            (arrays[f"{prefix}_data"], arrays[f"{prefix}_indices"], arrays[f"{prefix}_indptr"]),
            shape=tuple(int(s) for s in arrays[f"{prefix}_shape"]),
        )
    except (KeyError, ValueError, TypeError) as err:
        raise DataError(f"{path}: the {prefix}_* arrays do not form a CSR matrix ({err}); "
                        "the file is inconsistent.") from None
