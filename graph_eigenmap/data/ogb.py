"""OGB node-property datasets: by name (``ogbn-arxiv``, ``ogbn-products``, ...) or from a folder.

Both paths read through ``ogb``'s own reader (``ogb.nodeproppred.NodePropPredDataset``) and
guard against three habits of ogb 1.3.6:

* it calls ``input()`` when a dataset folder lacks ``RELEASE_v1.txt`` or a download is over
  1 GB: we check those states first and never let a prompt appear;
* it sets no network timeout and leaves an empty folder behind after a failed download (which
  would prompt next time): we probe the server with a short timeout first and remove any folder
  a failed download created;
* its ``torch.load`` of the processed files it wrote fails under torch >= 2.6 (weights-only by
  default): we load those files, which ogb itself wrote, with ``weights_only=False``.

A folder (such as ``../shared/data/ogb/ogbn_cora``) is never written to: ogb works in a cache
folder of ours that links to the source's ``raw/`` and ``split/`` and keeps ``processed/``.
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
import threading
import urllib.parse
import warnings
from dataclasses import asdict
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from graph_eigenmap.data.graph import CleaningReport, Graph, build_graph
from graph_eigenmap.errors import DataError, DatasetUnavailableError

REQUIRED_RAW_FILES = ("edge.csv.gz", "num-node-list.csv.gz", "num-edge-list.csv.gz", "node-label.csv.gz")
NETWORK_PROBE_TIMEOUT_S = 5.0
DOWNLOAD_TIMEOUT_S = 60.0


def default_cache_dir() -> Path:
    """Where processed files go: ``$GRAPH_EIGENMAP_CACHE`` or ``~/.cache/graph_eigenmap``."""
    return Path(os.environ.get("GRAPH_EIGENMAP_CACHE", Path.home() / ".cache" / "graph_eigenmap"))


def ogb_master() -> dict[str, dict]:
    """ogb's table of known node-property datasets: name -> meta_dict."""
    import pandas as pd
    from ogb import nodeproppred

    table = pd.read_csv(Path(nodeproppred.__file__).parent / "master.csv", index_col=0, keep_default_na=False)
    return {name: dict(table[name]) for name in table.columns}


def homogeneous_ogb_names() -> list[str]:
    return sorted(name for name, meta in ogb_master().items() if meta["is hetero"] != "True")


def load_ogb_dataset(name: str, root: str | Path = "dataset") -> Graph:
    """Load an OGB node-property dataset by name, downloading it to ``root`` if needed.

    Args:
        name: a homogeneous ``ogbn-*`` name, e.g. ``"ogbn-arxiv"`` or ``"ogbn-products"``.
        root: folder that holds (or will hold) ``<root>/ogbn_<name>/``.

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
    created = not folder.exists()
    if not _has_dataset_files(folder):
        _check_download_possible(name, meta, root, folder)
    try:
        return _read_with_ogb(name, meta=None, root=root, folder=folder, display_name=name)
    except BaseException:
        if created and folder.exists():
            shutil.rmtree(folder, ignore_errors=True)  # never leave the empty folder that would prompt
        raise


def load_ogb_folder(path: str | Path, *, cache_dir: str | Path | None = None) -> Graph:
    """Load a folder in OGB node-property layout (``raw/*.csv.gz``, ``split/<type>/*.csv.gz``).

    The folder's ``meta.json`` (ogb's ``meta_dict``) describes it; without one, a folder named
    like an ogb dataset (``ogbn_arxiv``) uses ogb's own entry. The source folder is only read.

    Args:
        path: the dataset folder.
        cache_dir: where ogb's processed files go (default :func:`default_cache_dir`).
    """
    folder = Path(path)
    if not folder.is_dir():
        raise DataError(f"no such dataset folder: {folder}; give a folder in OGB layout (raw/, split/, meta.json).")
    meta = _folder_meta(folder)
    missing = [f"raw/{f}" for f in REQUIRED_RAW_FILES if not (folder / "raw" / f).exists()]
    split_dir = folder / "split" / meta["split"]
    missing += [f"split/{meta['split']}/{p}.csv.gz" for p in ("train", "valid", "test") if not (split_dir / f"{p}.csv.gz").exists()]
    if missing:
        raise DataError(f"{folder} is not a complete OGB node-property folder: missing {', '.join(missing)}.")
    work = _cache_folder(folder, meta, Path(cache_dir) if cache_dir else default_cache_dir())
    stamp = _split_stamp(split_dir)
    cached = _read_graph_cache(work / GRAPH_CACHE, stamp)
    if cached is not None:
        cached.source = str(folder)
        return cached
    meta = dict(meta, dir_path=str(work))
    name = folder.name.removeprefix("ogbn_")
    graph = _read_with_ogb(name, meta=meta, root=work.parent, folder=folder, display_name=name)
    graph.source = str(folder)
    _write_graph_cache(graph, work / GRAPH_CACHE, stamp)
    return graph


GRAPH_CACHE = "graph_eigenmap_graph.npz"


def _split_stamp(split_dir: Path) -> str:
    """Sizes and modification times of the split files (the work folder's name covers raw/)."""
    return ";".join(f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in sorted(split_dir.iterdir()))


def _write_graph_cache(graph: Graph, path: Path, stamp: str) -> None:
    """The built graph as a pickle-free .npz beside ogb's processed files, written atomically.

    A later load reads it without importing ogb and torch_geometric (about 5 s on 2 cores).
    """
    a = graph.adjacency
    arrays = dict(indptr=a.indptr, indices=a.indices, data=a.data, shape=np.array(a.shape), labels=graph.labels,
                  stamp=np.array(stamp), name=np.array(graph.name), cleaning=np.array(json.dumps(asdict(graph.cleaning))),
                  **{f"split_{part}": ids for part, ids in graph.split.items()})
    if graph.features is not None:
        arrays["features"] = graph.features
    temporary = path.with_name(path.name + ".tmp.npz")
    try:
        np.savez(temporary, **arrays)
        os.replace(temporary, path)
    except OSError:  # a read-only cache only costs the next load its speed
        temporary.unlink(missing_ok=True)


def _read_graph_cache(path: Path, stamp: str) -> Graph | None:
    """The graph :func:`_write_graph_cache` stored, or None when absent, stale or unreadable."""
    if not path.exists():
        return None
    try:
        with np.load(path) as stored:
            if str(stored["stamp"]) != stamp:
                return None
            shape = tuple(int(v) for v in stored["shape"])
            adjacency = sp.csr_matrix((stored["data"], stored["indices"], stored["indptr"]), shape=shape)
            split = {key.removeprefix("split_"): stored[key] for key in stored.files if key.startswith("split_")}
            return Graph(adjacency=adjacency, features=stored["features"] if "features" in stored.files else None,
                         labels=stored["labels"], split=split, name=str(stored["name"]), source="",
                         cleaning=CleaningReport(**json.loads(str(stored["cleaning"]))))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _folder_meta(folder: Path) -> dict:
    meta_file = folder / "meta.json"
    if meta_file.exists():
        try:
            meta = json.loads(meta_file.read_text())
        except json.JSONDecodeError as err:
            raise DataError(f"{meta_file} is not valid JSON ({err}); fix or regenerate it.") from None
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


def _cache_folder(folder: Path, meta: dict, cache_root: Path) -> Path:
    """A work folder for ogb: links to the source's raw/ and split/, its own processed/.

    Its name carries a hash of the source's path, file sizes and modification times, so an
    edited source gets fresh processed files.
    """
    source = folder.resolve()
    stamp = hashlib.sha1(str(source).encode())
    for f in sorted((source / "raw").iterdir()):
        st = f.stat()
        stamp.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    work = cache_root / "ogb-folders" / f"{folder.name}-{stamp.hexdigest()[:12]}"
    (work / "processed").mkdir(parents=True, exist_ok=True)
    for sub in ("raw", "split"):
        link = work / sub
        if not link.exists():
            link.symlink_to(source / sub, target_is_directory=True)
    (work / f"RELEASE_v{meta['version']}.txt").touch()
    return work


def _has_dataset_files(folder: Path) -> bool:
    return (folder / "raw" / "edge.csv.gz").exists() or (folder / "processed" / "data_processed").exists()


def _check_download_possible(name: str, meta: dict, root: Path, folder: Path) -> None:
    """Fail within seconds, with what to put where, when the dataset cannot be downloaded."""
    url = meta["url"]
    reason = _unreachable(url)
    if reason is None:
        return
    raise DatasetUnavailableError(
        f"{name} is not in {folder} and cannot be downloaded from {url} ({reason}); on a machine "
        f"with network, download that zip, unzip it and rename its folder {meta['download_name']}/ to {folder} "
        f"(so that {folder}/raw/edge.csv.gz and {folder}/RELEASE_v{meta['version']}.txt exist), "
        f"or give --root the folder that holds {folder.name}/."
    )


def _unreachable(url: str) -> str | None:
    """Why ``url``'s server cannot be reached within the probe timeout, or None if it can.

    The probe runs in a daemon thread so that a slow name lookup (which socket timeouts do
    not cover) cannot hold us longer than the timeout.
    """
    host = urllib.parse.urlparse(url).hostname or ""
    port = 443 if url.startswith("https") else 80
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


def _no_prompt(*_args, **_kwargs):
    raise DataError("ogb asked an interactive question; graph_eigenmap never answers prompts: report this as a bug.")


@contextlib.contextmanager
def _ogb_guards():
    """ogb without prompts, with a download timeout, and able to read its own processed files."""
    import ogb.nodeproppred.dataset as ogb_dataset
    import ogb.utils.url as ogb_url

    saved = {
        "decide": ogb_dataset.decide_download,
        "timeout": socket.getdefaulttimeout(),
        "env": os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"),
    }
    ogb_dataset.decide_download = lambda url: True  # the size question; we checked the network already
    ogb_dataset.input = ogb_url.input = _no_prompt
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = "1"  # files ogb wrote itself; see module docstring
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD.*")
            yield ogb_dataset
    finally:
        ogb_dataset.decide_download = saved["decide"]
        del ogb_dataset.input, ogb_url.input
        socket.setdefaulttimeout(saved["timeout"])
        if saved["env"] is None:
            os.environ.pop("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", None)
        else:
            os.environ["TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"] = saved["env"]


def _read_with_ogb(name: str, *, meta: dict | None, root: Path, folder: Path, display_name: str) -> Graph:
    work = Path(meta["dir_path"]) if meta else folder
    for attempt in range(2):
        if work.is_dir():
            (work / "processed").mkdir(exist_ok=True)  # ogb saves there but never creates it
        try:
            chatter = io.StringIO()  # ogb's prints and one-step progress bars
            with _ogb_guards() as ogb_dataset, contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
                dataset = ogb_dataset.NodePropPredDataset(name, root=str(root), meta_dict=meta)
                split = dataset.get_idx_split()
            break
        except (DataError, KeyboardInterrupt):
            raise
        except Exception as err:  # noqa: BLE001 - every reader failure becomes one clear line
            processed = work / "processed"
            if attempt == 0 and processed.exists() and _is_unreadable_processed(err):
                shutil.rmtree(processed, ignore_errors=True)  # a half-written cache: rebuild once
                continue
            raise _explain_read_error(err, folder) from err
    graph_dict, labels = dataset[0]
    return build_graph(
        graph_dict["edge_index"],
        graph_dict["num_nodes"],
        features=graph_dict.get("node_feat"),
        labels=labels,
        split=split,
        name=display_name,
        source=str(folder),
    )


def _is_unreadable_processed(err: Exception) -> bool:
    import pickle

    return isinstance(err, (EOFError, RuntimeError, pickle.UnpicklingError, OSError))


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

