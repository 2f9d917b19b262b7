"""A built :class:`Graph` kept on disk as plain ``.npy`` arrays, memory-mapped when read again.

One cache entry is a folder::

    meta.json                   stamp, name, shape, cleaning report, feature layout
    indptr.npy indices.npy data.npy        the symmetric CSR adjacency
    features.npy                dense features, or features_{indptr,indices,data}.npy when kept sparse
    labels.npy split_train.npy split_valid.npy split_test.npy
    components.npy              component id of each node, where it was computed before the write

No pickles: every array is read with ``allow_pickle=False``. Reading maps the large arrays
copy-on-write (``mmap_mode="c"``): a later load of an ogbn-products-sized graph costs the time to
map the files, and pages are read when first used (from the page cache when they were recently).
The entry is written into a temporary folder and renamed into place, so a reader sees a whole
entry or none; where it cannot be written (read-only cache), nothing is left and only speed is lost.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from graph_eigenmap.data.components import components
from graph_eigenmap.data.graph import CleaningReport, Derived, Graph

MAPPED = ("indptr", "indices", "data", "features", "features_indptr", "features_indices", "features_data")
"""Arrays memory-mapped when read (the rest are small and read whole)."""


def write_graph_cache(graph: Graph, entry: Path, stamp: str) -> None:
    """Store ``graph`` as the cache folder ``entry``; ``stamp`` identifies its sources. Silently skipped on OSError."""
    created = _missing_parents(entry)
    try:
        write_graph_arrays(graph, entry, stamp)
    except OSError:
        for folder in created:  # innermost first
            with contextlib.suppress(OSError):
                folder.rmdir()


def write_graph_arrays(graph: Graph, entry: Path, stamp: str) -> None:
    """Store ``graph`` as the folder ``entry`` (written beside it under a temporary name, then renamed into place).

    Raises:
        OSError: the folder could not be written (nothing of it is left).
    """
    a = graph.adjacency
    arrays = dict(indptr=a.indptr, indices=a.indices, data=a.data, labels=graph.labels,
                  **{f"split_{part}": ids for part, ids in graph.split.items()})
    if "components" in graph.extra:  # computed already: stored with the graph
        arrays["components"] = components(graph)
    features = graph.features
    if sp.issparse(features):
        arrays.update(features_indptr=features.indptr, features_indices=features.indices, features_data=features.data)
    elif features is not None:
        arrays["features"] = features
    meta = dict(stamp=stamp, name=graph.name, shape=list(a.shape), cleaning=asdict(graph.cleaning),
                features="sparse" if sp.issparse(features) else ("dense" if features is not None else None),
                features_shape=None if features is None else list(features.shape), source=graph.source,
                synthetic=graph.synthetic, spec=graph.extra.get("spec"))
    temporary = entry.with_name(f".{entry.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        temporary.mkdir(parents=True)
        for key, array in arrays.items():
            with open(temporary / f"{key}.npy", "xb") as handle:
                np.save(handle, np.ascontiguousarray(array), allow_pickle=False)
                handle.flush()
                os.fsync(handle.fileno())
        (temporary / "meta.json").write_text(json.dumps(meta))
        if entry.exists():  # a stale entry of the same sources
            shutil.rmtree(entry)
        os.replace(temporary, entry)
    except OSError:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def read_graph_cache(entry: Path, stamp: str, *, mmap_mode: str = "c") -> Graph | None:
    """The graph :func:`write_graph_cache` stored in ``entry``, or None when absent, stale or unreadable.

    ``mmap_mode="c"`` (the cache): the large arrays (:data:`MAPPED`) are mapped copy-on-write, the rest read whole.
    ``mmap_mode="r"`` (a graph shared by the processes of one host): every array is mapped read-only, so that
    processes reading the same folder hold one copy of it in the page cache between them.
    """
    try:
        meta = json.loads((entry / "meta.json").read_text())
        if meta.get("stamp") != stamp:
            return None

        def load(key: str) -> np.ndarray:
            mapped = key in MAPPED or mmap_mode == "r"
            return np.load(entry / f"{key}.npy", mmap_mode=mmap_mode if mapped else None, allow_pickle=False)

        adjacency = sp.csr_matrix((load("data"), load("indices"), load("indptr")), shape=tuple(meta["shape"]))
        if meta["features"] == "sparse":
            features = sp.csr_matrix((load("features_data"), load("features_indices"), load("features_indptr")),
                                     shape=tuple(meta["features_shape"]))
        else:
            features = load("features") if meta["features"] == "dense" else None
        split = {part: load(f"split_{part}") for part in ("train", "valid", "test")}
        graph = Graph(adjacency=adjacency, features=features, labels=load("labels"), split=split, name=meta["name"],
                      source=meta.get("source", ""), cleaning=CleaningReport(**meta["cleaning"]),
                      synthetic=meta.get("synthetic", False))
        if meta.get("spec") is not None:
            graph.extra["spec"] = meta["spec"]
        if (entry / "components.npy").is_file():
            graph.extra["components"] = Derived((adjacency,), load("components"))
        return graph
    except (OSError, ValueError, KeyError, TypeError, EOFError):
        return None


def _missing_parents(path: Path) -> list[Path]:
    """The folders above ``path`` that do not exist yet, innermost first."""
    missing, folder = [], path.parent
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing
