"""OGB node-property datasets: by name (``ogbn-arxiv``, ``ogbn-products``, ...) or from a folder.

Both paths read the folder's files as ``ogb.nodeproppred.NodePropPredDataset`` does, but without that class,
so that nothing of ogb needs patching: the CSV layout with pandas, as ogb's ``read_csv_graph_raw`` reads it, but
every file checked as it is read and named in any message (ogb's reader turns a fractional node id in
``raw/edge.csv.gz`` into an integer, and cuts edges and feature rows to the counts of ``num-edge-list.csv.gz`` and
``num-node-list.csv.gz``, without a word); binary datasets such as ogbn-papers100M with ogb's
``read_binary_graph_raw``. Every graph then goes through :mod:`graph_eigenmap.data.validate` (its labels below
``meta.json``'s ``"num classes"``, a split without repeats or overlaps):

* no ``input()`` prompt can appear (ogb asks one when a folder lacks ``RELEASE_v1.txt`` or a download
  is over 1 GB): we check the folder's state ourselves and download without asking;
* a dataset that is not on disk fails within seconds when its server cannot be reached (we probe
  it with a short timeout; ogb sets none), and a failed download leaves nothing behind;
* nothing is ever written into a source folder such as ``../shared/data/ogb/ogbn_cora`` (ogb keeps
  its ``processed/`` files there): the built graph goes to a pickle-free cache file of ours.

The node count is read first, so that an empty graph gets a clear message rather than a parser's. A cache that
cannot be written (a read-only ``GRAPH_EIGENMAP_CACHE``) only costs the next load its speed, and a failed load
writes nothing there.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from pathlib import Path

import numpy as np

from graph_eigenmap.data.cache import read_graph_cache, write_graph_cache
from graph_eigenmap.data.components import components
from graph_eigenmap.data.graph import Graph, build_graph
from graph_eigenmap.data.validate import count
from graph_eigenmap.errors import DataError, DatasetUnavailableError

REQUIRED_RAW_FILES = ("edge.csv.gz", "num-node-list.csv.gz", "num-edge-list.csv.gz", "node-label.csv.gz")
REQUIRED_BINARY_FILES = ("data.npz", "node-label.npz")
NETWORK_PROBE_TIMEOUT_S = 5.0
DOWNLOAD_TIMEOUT_S = 60.0
CACHE_VERSION = "checked-2"
"""Part of every cache entry's stamp: graphs cached before the checks of :mod:`graph_eigenmap.data.validate` (a
split whose parts overlap, a label above meta.json's class count) are read and checked again."""
GRAPH_CACHE = "graph"
"""Name of the cached graph (a folder of ``.npy`` arrays, :mod:`graph_eigenmap.data.cache`) in
``<cache>/ogb-folders/<folder>-<hash>/``."""


def default_cache_dir() -> Path:
    """Where processed files go: ``$GRAPH_EIGENMAP_CACHE`` or ``~/.cache/graph_eigenmap``."""
    return Path(os.environ.get("GRAPH_EIGENMAP_CACHE", Path.home() / ".cache" / "graph_eigenmap"))


def ogb_master() -> dict[str, dict]:
    """ogb's table of known node-property datasets: name -> meta_dict.

    Read from ogb's ``nodeproppred/master.csv`` without importing ``ogb.nodeproppred`` (which imports
    torch_geometric, seconds of start-up).
    """
    import importlib.util  # deferred: with pandas, only for the OGB layout

    import pandas as pd  # deferred: pandas takes a second to import

    spec = importlib.util.find_spec("ogb")
    if spec is None or spec.origin is None:
        raise DataError("OGB datasets need the ogb package; pip install ogb.")
    table = pd.read_csv(Path(spec.origin).parent / "nodeproppred" / "master.csv", index_col=0, keep_default_na=False)
    return {name: dict(table[name]) for name in table.columns}


def homogeneous_ogb_names() -> list[str]:
    return sorted(name for name, meta in ogb_master().items() if meta["is hetero"] != "True")


def load_ogb_dataset(name: str, root: str | Path = "dataset", *, cache_dir: str | Path | None = None) -> Graph:
    """Load an OGB node-property dataset by name, downloading it to ``root`` if needed.

    Args:
        name: a homogeneous ``ogbn-*`` name, e.g. ``"ogbn-arxiv"`` or ``"ogbn-products"``.
        root: folder that holds (or will hold) ``<root>/ogbn_<name>/``, the layout ogb downloads.
        cache_dir: where the built graph is cached (default :func:`default_cache_dir`).

    Raises:
        DataError: unknown name, or a folder left incomplete.
        DatasetUnavailableError: not on disk and no network; the message says what to put where.
    """
    master = ogb_master()
    if name not in master or master[name]["is hetero"] == "True":
        raise DataError(
            f"unknown OGB node-property dataset '{name}'; homogeneous ones are: "
            f"{', '.join(homogeneous_ogb_names())}."
        )
    meta = master[name]
    root = Path(root)
    folder = root / name.replace("-", "_")  # ogb's own folder name, e.g. ogbn_arxiv
    release = folder / f"RELEASE_v{meta['version']}.txt"
    if folder.is_dir() and not release.exists():
        raise DataError(
            f"{folder} exists but has no {release.name} (an interrupted download leaves this state); "
            f"delete the folder to download again, or copy the complete dataset there."
        )
    if not _has_dataset_files(folder, meta):
        if folder.exists():
            raise DataError(f"{folder} has {release.name} but no raw/ files; delete the folder to download again, "
                            "or copy the complete dataset there.")
        _check_download_possible(name, meta, root, folder)
        _download(name, meta, root, folder)
    return _load_layout(folder, meta, cache_dir, display_name=name)


def load_ogb_folder(path: str | Path, *, cache_dir: str | Path | None = None) -> Graph:
    """Load a folder in OGB node-property layout (``raw/*.csv.gz``, ``split/<type>/*.csv.gz``).

    The folder's ``meta.json`` (ogb's ``meta_dict``) describes it; without one, a folder named
    like an ogb dataset (``ogbn_arxiv``) uses ogb's own entry. The source folder is only read.

    Args:
        path: the dataset folder.
        cache_dir: where the built graph is cached (default :func:`default_cache_dir`).

    Raises:
        DataError: a missing, incomplete, empty or unreadable folder (one line naming the file).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise DataError(f"no such dataset folder: {folder}; give a folder in OGB layout (raw/, split/, meta.json).")
    meta = _folder_meta(folder)
    return _load_layout(folder, meta, cache_dir, display_name=folder.name.removeprefix("ogbn_"))


def _load_layout(folder: Path, meta: dict, cache_dir: str | Path | None, *, display_name: str) -> Graph:
    """The graph in an OGB-layout folder, from our cache when its files have not changed."""
    binary = _is_binary(meta)
    required = REQUIRED_BINARY_FILES if binary else REQUIRED_RAW_FILES
    missing = [f"raw/{f}" for f in required if not (folder / "raw" / f).is_file()]
    split_dir = folder / "split" / meta["split"]
    missing += [f"split/{meta['split']}/{p}.csv.gz" for p in ("train", "valid", "test")
                if not (split_dir / f"{p}.csv.gz").is_file()]
    if missing:
        raise DataError(f"{folder} is not a complete OGB node-property folder: missing {', '.join(missing)}.")
    cache = _cache_file(folder, Path(cache_dir) if cache_dir else default_cache_dir())
    stamp = f"{CACHE_VERSION};classes={meta.get('num classes')};{_split_stamp(split_dir)}"
    graph = read_graph_cache(cache, stamp)
    if graph is None:
        graph = _read_raw(folder, meta, split_dir, display_name)
        components(graph)  # every report and kernel needs them: computed once, kept in the cache
        write_graph_cache(graph, cache, stamp)
    graph.source = str(folder)
    graph.synthetic = (folder / SYNTHETIC_MARKER).is_file()
    return graph


SYNTHETIC_MARKER = "SYNTHETIC.txt"
"""A file of this name in an OGB-layout folder marks its graph as generated (benchmarks/write_products_shape.py)."""


def _is_binary(meta: dict) -> bool:
    return str(meta.get("binary", "False")) == "True"


def _read_raw(folder: Path, meta: dict, split_dir: Path, name: str) -> Graph:
    """Read the raw and split files, each checked as it is read, and build the graph (every check names its file)."""
    raw = folder / "raw"
    if _is_binary(meta):
        arrays = _read_binary(folder)
    else:
        arrays = _read_csv_layout(raw)
    split = {part: _read_table(split_dir / f"{part}.csv.gz", "one node id", columns=1, integral=True,
                               empty_ok=True)[:, 0] for part in ("train", "valid", "test")}
    return build_graph(
        arrays["edge_index"],
        arrays["num_nodes"],
        features=arrays["node_feat"],
        labels=arrays["labels"],
        split=split,
        name=name,
        source=str(folder),
        origin=dict(arrays["origin"], num_classes=str(folder / "meta.json"),
                    **{part: str(split_dir / f"{part}.csv.gz") for part in ("train", "valid", "test")}),
        num_classes=_num_classes(meta, folder),
    )


def _read_csv_layout(raw: Path) -> dict:
    """The CSV layout's arrays, read as ogb's ``read_csv_graph_raw`` reads them (pandas), but each file checked
    before any conversion: ogb's reader turns a fractional node id into an integer and cuts edges and feature
    rows to the counts of ``num-edge-list.csv.gz`` and ``num-node-list.csv.gz`` without a word."""
    num_nodes = _read_count(raw / "num-node-list.csv.gz", "the graph's node count")
    if num_nodes == 0:
        raise DataError(f"{raw / 'num-node-list.csv.gz'}: the graph is empty (0 nodes); check the node count file.")
    edges = _read_table(raw / "edge.csv.gz", "two node ids, source,target", columns=2, integral=True, empty_ok=True)
    if len(edges) == 0:
        raise DataError(f"{raw / 'edge.csv.gz'}: the graph has no edges (the file is empty), so every eigenvalue of "
                        "its kernel is 0 and there is nothing to learn; check the edge list.")
    num_edges = _read_count(raw / "num-edge-list.csv.gz", "the number of rows of edge.csv.gz")
    if num_edges != len(edges):
        raise DataError(f"{raw / 'num-edge-list.csv.gz'} says {num_edges:,} edges but {raw / 'edge.csv.gz'} holds "
                        f"{len(edges):,} rows; make them agree.")
    features = None
    if (raw / "node-feat.csv.gz").is_file():
        features = _read_table(raw / "node-feat.csv.gz", "one node's features, numbers", empty_ok=True)
        features = np.zeros((num_nodes, 0)) if features.size == 0 else features  # 0 columns: refused as such
        features = features.astype(np.int64 if features.dtype.kind in "iu" else np.float32, copy=False)
    labels = _read_table(raw / "node-label.csv.gz", "one class id (empty where unknown)")
    origin = dict(num_nodes=str(raw / "num-node-list.csv.gz"), edges=str(raw / "edge.csv.gz"),
                  features=str(raw / "node-feat.csv.gz"), labels=str(raw / "node-label.csv.gz"))
    return dict(edge_index=edges.T.astype(np.int64), num_nodes=num_nodes, node_feat=features, labels=labels,
                origin=origin)


def _read_binary(folder: Path) -> dict:
    """The binary layout's arrays (ogbn-papers100M) through ogb's ``read_binary_graph_raw``."""
    raw = folder / "raw"
    try:
        from ogb.io.read_graph_raw import read_binary_graph_raw  # deferred: ogb imports torch_geometric
    except ImportError:
        raise DataError(f"reading {folder} needs the ogb package; pip install ogb.") from None
    try:
        chatter = io.StringIO()  # the reader's prints and its one-step progress bar
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            graph_dict = read_binary_graph_raw(str(raw), add_inverse_edge=False)[0]
            with np.load(raw / "node-label.npz", allow_pickle=False) as stored:
                labels = stored["node_label"]
    except (DataError, KeyboardInterrupt):
        raise
    except Exception as err:  # noqa: BLE001 - every reader failure becomes one clear line
        raise _explain_read_error(err, folder) from None
    data = raw / "data.npz"
    origin = dict(num_nodes=f"{data} (num_nodes_list)", edges=f"{data} (edge_index)", features=f"{data} (node_feat)",
                  labels=str(raw / "node-label.npz"))
    return dict(graph_dict, labels=labels, origin=origin)


def _num_classes(meta: dict, folder: Path) -> int | None:
    """``meta["num classes"]`` as an int (None where it is not a count: multi-task datasets)."""
    value = meta.get("num classes")
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise DataError(f"{folder / 'meta.json'}: \"num classes\" must be a whole number; got {value!r}.") from None
    if count < 1:
        raise DataError(f"{folder / 'meta.json'}: \"num classes\" must be at least 1; got {count}.")
    return count if int(meta.get("num tasks", 1)) == 1 else None


def _read_count(path: Path, what: str) -> int:
    """The one whole number a ``num-*-list.csv.gz`` file holds."""
    counts = _gzip_text(path).split()
    if len(counts) != 1 or not counts[0].isdigit():
        raise DataError(f"{path} must hold one whole number, {what}; found {' '.join(counts)[:40]!r}.")
    return int(counts[0])


def _read_table(path: Path, what: str, *, columns: int | None = None, integral: bool = False,
                empty_ok: bool = False) -> np.ndarray:
    """A header-less ``.csv.gz`` as ogb reads it (pandas), ``[rows, columns]``, checked: ``columns`` columns,
    numbers in every cell (NaN for an empty one), and with ``integral`` whole numbers only.

    Args:
        what: what one row must hold, in words, for messages.
        empty_ok: an empty file is ``[0, columns or 1]`` instead of an error.
    """
    import pandas as pd  # deferred: pandas takes a second to import

    try:
        values = pd.read_csv(path, compression="gzip", header=None).values
    except pd.errors.EmptyDataError:
        if empty_ok:
            return np.zeros((0, columns or 1), dtype=np.int64)
        raise DataError(f"{path} is empty; every row must hold {what}, one row per node.") from None
    except pd.errors.ParserError as err:
        detail = str(err).strip().splitlines()[-1].removeprefix("Error tokenizing data. C error: ")
        raise DataError(f"{path}: rows of different lengths ({detail}); every row must hold {what}.") from None
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as err:
        raise DataError(f"{path} is truncated or corrupt ({type(err).__name__}: {err}); "
                        "copy or download it again.") from None
    if columns is not None and values.shape[1] != columns:
        raise DataError(f"{path} has {values.shape[1]} columns; every row must hold {what}.")
    if values.dtype.kind == "O":
        row, cell = _first_non_number(values)
        raise DataError(f"{path}: row {row + 1} holds {cell!r}, not a number; every row must hold {what}.")
    if integral and values.dtype.kind == "f":
        bad = ~np.isfinite(values) | (np.round(values) != values)
        if bad.any():
            row, column = (int(i) for i in np.argwhere(bad)[0])
            found = "an empty field" if np.isnan(values[row, column]) else f"{values[row, column]:g}"
            raise DataError(f"{path}: row {row + 1} holds {found} where a whole number belongs "
                            f"({count(bad.sum(), 'such value')}); every row must hold {what}.")
    return values


def _first_non_number(values: np.ndarray) -> tuple[int, str]:
    """Row and text of the first cell of an object-typed table that is not a number."""
    import pandas as pd  # deferred: as in _read_table

    for column in range(values.shape[1]):
        cells = pd.Series(values[:, column])
        bad = pd.to_numeric(cells, errors="coerce").isna() & cells.notna()
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            return row, str(values[row, column])
    return 0, str(values[0, 0])


def _gzip_text(path: Path, limit: int = -1) -> str:
    try:
        with gzip.open(path, "rt") as stream:
            return stream.read(limit)
    except (OSError, EOFError, ValueError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is truncated or corrupt ({type(err).__name__}: {err}); "
                        "copy or download it again.") from None


def _cache_file(folder: Path, cache_root: Path) -> Path:
    """Where the graph built from ``folder`` is cached.

    The folder name carries a hash of the source's path and of its raw files' sizes and
    modification times, so an edited source gets a fresh cache; the split files are covered by
    the stamp stored inside (:func:`_split_stamp`).
    """
    source = folder.resolve()
    stamp = hashlib.sha1(str(source).encode())
    for f in sorted((source / "raw").iterdir()):
        st = f.stat()
        stamp.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return cache_root / "ogb-folders" / f"{folder.name}-{stamp.hexdigest()[:12]}" / GRAPH_CACHE


def _split_stamp(split_dir: Path) -> str:
    """Sizes and modification times of the split files (the cache folder's name covers raw/)."""
    return ";".join(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in sorted(split_dir.iterdir()))


def _folder_meta(folder: Path) -> dict:
    meta_file = folder / "meta.json"
    if meta_file.exists():
        try:
            meta = json.loads(meta_file.read_text())
        except json.JSONDecodeError as err:
            raise DataError(f"{meta_file} is not valid JSON ({err}); fix or regenerate it.") from None
        if not isinstance(meta, dict):
            raise DataError(f"{meta_file} must hold a JSON object (ogb's meta_dict); fix or regenerate it.")
    else:
        known = ogb_master().get(folder.name.replace("_", "-"))
        if known is None:
            raise DataError(
                f"{folder} has no meta.json and is not named like an OGB dataset; add a meta.json "
                "(ogb's meta_dict: version, num classes, add_inverse_edge, split, ...)."
            )
        meta = known
    required = ("version", "add_inverse_edge", "split", "num classes")
    lacking = [k for k in required if k not in meta]
    if lacking:
        raise DataError(f"{meta_file} lacks the keys {lacking}; see ogb's master.csv for their meaning.")
    if str(meta.get("is hetero", "False")) == "True":
        raise DataError(f"{folder} holds a heterogeneous graph; only homogeneous graphs are supported.")
    defaults = {
        "download_name": folder.name, "num tasks": 1, "eval metric": "acc", "task type": "multiclass classification",
        "additional node files": "None", "additional edge files": "None", "is hetero": "False", "binary": "False",
        "url": "none",
    }
    return {**defaults, **meta}


def _has_dataset_files(folder: Path, meta: dict) -> bool:
    first = REQUIRED_BINARY_FILES[0] if _is_binary(meta) else REQUIRED_RAW_FILES[0]
    return (folder / "raw" / first).exists()


def _check_download_possible(name: str, meta: dict, root: Path, folder: Path) -> None:
    """Fail within seconds, with what to put where, when the dataset cannot be downloaded."""
    url = meta["url"]
    reason = _unreachable(url)
    if reason is None:
        return
    raise DatasetUnavailableError(
        f"{name} is not in {folder} and cannot be downloaded from {url} ({reason}); on a machine "
        f"with network, download that zip, unzip it and rename its folder {meta['download_name']}/ to {folder} "
        f"(so that {folder}/raw/{REQUIRED_BINARY_FILES[0] if _is_binary(meta) else REQUIRED_RAW_FILES[0]} and "
        f"{folder}/RELEASE_v{meta['version']}.txt exist), or give `root` the folder that holds {folder.name}/."
    )


def _download(name: str, meta: dict, root: Path, folder: Path) -> None:
    """Download and unzip ``meta["url"]`` into ``folder``; on any failure nothing new is left under ``root``.

    The zip goes to a staging folder inside ``root`` and its ``download_name/`` folder is renamed to
    ``folder`` only once complete, so an interrupted download never leaves a half dataset.
    """
    url = meta["url"]
    created = [p for p in (root, *root.parents) if not p.exists()]  # innermost first
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-download-", dir=root))
    except OSError as err:
        if created:
            shutil.rmtree(created[-1], ignore_errors=True)
        raise DataError(f"cannot download {name} into {root} ({err.strerror or type(err).__name__}); give `root` a "
                        "folder you can write to.") from None
    complete = False
    try:
        archive = staging / "download.zip"
        print(f"downloading {name} from {url} to {folder} ...", file=sys.stderr, flush=True)
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, open(archive, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(staging)  # zipfile keeps every member inside staging
        extracted = staging / meta["download_name"]
        if not (extracted / "raw").is_dir():
            raise DataError(f"the archive at {url} holds no {meta['download_name']}/raw/ folder; it is not an "
                            "OGB node-property dataset.")
        extracted.rename(folder)
        complete = True
    except (OSError, zipfile.BadZipFile) as err:  # URLError and timeouts are OSErrors
        raise DatasetUnavailableError(f"downloading {name} from {url} failed ({type(err).__name__}: {err}); "
                                      f"try again, or unzip the dataset into {folder} by hand.") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if not complete and created:
            shutil.rmtree(created[-1], ignore_errors=True)


def _unreachable(url: str) -> str | None:
    """Why ``url``'s server cannot be reached within the probe timeout, or None if it can.

    The probe runs in a daemon thread so that a slow name lookup (which socket timeouts do
    not cover) cannot hold us longer than the timeout.
    """
    host = urllib.parse.urlparse(url).hostname or ""
    port = urllib.parse.urlparse(url).port or (443 if url.startswith("https") else 80)
    outcome: list[str | None] = []

    def probe():
        try:
            socket.create_connection((host, port), timeout=NETWORK_PROBE_TIMEOUT_S).close()
            outcome.append(None)
        except OSError as err:
            outcome.append(f"{type(err).__name__}: {err}")

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(NETWORK_PROBE_TIMEOUT_S + 1)
    return outcome[0] if outcome else f"no answer from {host} in {NETWORK_PROBE_TIMEOUT_S + 1:.0f} s"


def _explain_read_error(err: Exception, folder: Path) -> DataError:
    for f in sorted(folder.glob("raw/*.csv.gz")) + sorted(folder.glob("split/*/*.csv.gz")):
        problem = _gzip_problem(f)
        if problem:
            return DataError(f"{f} is truncated or corrupt ({problem}); copy or download it again.")
    detail = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return DataError(f"could not read the OGB dataset in {folder} ({type(err).__name__}: {detail}); check its files.")


def _gzip_problem(path: Path) -> str | None:
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(1 << 20):
                pass
        return None
    except (OSError, EOFError, ValueError) as err:
        return f"{type(err).__name__}: {err}"
