"""Loaders: every supported source becomes one :class:`Graph` through :func:`load_graph`.

Accepted dataset specs:
    * ``csbm`` (the default, synthetic, no download), ``csbm-products`` (ogbn-products' shape),
      ``csbm-papers100m`` (ogbn-papers100M's shape: 111M nodes, 1.6B edges; generate it on a GPU),
      optionally with parameters: ``csbm:num_nodes=5000,homophily=0.6,seed=1``;
    * an OGB node-property name, ``ogbn-arxiv``, ``ogbn-products``, ... (with ``root``);
    * a folder in OGB node-property layout (``raw/``, ``split/``, ``meta.json``);
    * a gnn-benchmark ``.npz`` file;
    * in Python also a ``torch_geometric.data.Data`` or a :class:`Graph`
      (and :func:`from_scipy` for a scipy adjacency with numpy arrays).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from graph_eigenmap.data.arrays import from_pyg, from_scipy
from graph_eigenmap.data.graph import CleaningReport, Graph, build_graph, random_split
from graph_eigenmap.data.npz import load_npz
from graph_eigenmap.data.ogb import load_ogb_dataset, load_ogb_folder
from graph_eigenmap.data.synthetic import PRESETS, csbm, csbm_bytes
from graph_eigenmap.errors import DataError

ACCEPTED_FORMS = (
    "csbm[:key=value,...], csbm-products, csbm-papers100m, an OGB name such as ogbn-arxiv (with `root`), "
    "a folder in OGB node-property layout, or a gnn-benchmark .npz file"
)


def load_graph(
    spec,
    *,
    root: str | Path | None = None,
    cache_dir: str | Path | None = None,
    split_seed: int = 0,
    device: str | torch.device = "cpu",
    arrays_dir: str | Path | None = None,
) -> Graph:
    """Load any supported source as a :class:`Graph`.

    Args:
        spec: a dataset spec string or path (see the module docstring), a PyG ``Data`` or a Graph.
        root: folder of OGB datasets (for ``ogbn-*`` names; default ``./dataset``).
        cache_dir: where graphs read from OGB-layout folders and ``ogbn-*`` datasets are cached
            (default ``$GRAPH_EIGENMAP_CACHE`` or ``~/.cache/graph_eigenmap``; a read-only cache only costs speed).
        split_seed: seed of the 10/10/80 split for sources that store none (``.npz``, PyG without masks).
        device: where the synthetic generator runs.
        arrays_dir: for a synthetic graph whose arrays take at least :data:`FILE_BACKED_MIN_BYTES`, a folder where
            they are written as they are made and memory-mapped read-only from (file pages, not anonymous memory;
            :func:`~graph_eigenmap.data.synthetic.csbm`); the caller removes it when done. None: in memory.

    Raises:
        DataError: an unknown spec (the message lists the accepted forms) or an unreadable source.

    Example:
        >>> graph = load_graph("csbm:num_nodes=2000,num_edges=10000,seed=3")
        >>> graph.num_nodes, graph.synthetic
        (2000, True)
    """
    if isinstance(spec, Graph):
        return spec
    if hasattr(spec, "edge_index"):
        return from_pyg(spec, split_seed=split_seed)
    if not isinstance(spec, (str, Path)):
        raise DataError(f"cannot load a {type(spec).__name__}; give one of: {ACCEPTED_FORMS}.")
    text = str(spec)
    if text.split(":", 1)[0] in PRESETS:
        params = parse_csbm_spec(text)
        large = arrays_dir is not None and csbm_bytes(**params) >= FILE_BACKED_MIN_BYTES
        return _with_spec(csbm(device=device, arrays_dir=arrays_dir if large else None, **params), text)
    if text.startswith("ogbn-"):
        return _with_spec(load_ogb_dataset(text, root if root is not None else "dataset", cache_dir=cache_dir), text)
    path = Path(text).expanduser()
    if path.suffix == ".npz":
        return _with_spec(load_npz(path, split_seed=split_seed), str(path.resolve()))
    if path.is_dir():
        return _with_spec(load_ogb_folder(path, cache_dir=cache_dir), str(path.resolve()))
    if path.exists():
        raise DataError(f"cannot tell the format of {path}; give one of: {ACCEPTED_FORMS}.")
    raise DataError(f"unknown dataset '{text}' (no such file or folder); give one of: {ACCEPTED_FORMS}.")


def _with_spec(graph: Graph, spec: str) -> Graph:
    """``graph`` remembering the spec that loads it again (``graph.extra["spec"]``; a fit records it in metadata)."""
    graph.extra["spec"] = spec
    return graph


FILE_BACKED_MIN_BYTES = int(os.environ.get("GRAPH_EIGENMAP_FILE_BACKED_MIN_BYTES", 2**30))
"""Synthetic graphs whose arrays take at least this many bytes are generated into files when ``load_graph`` is given
an ``arrays_dir`` (``graph-eigenmap fit`` gives one in its output folder)."""
GPU_GENERATION_MIN_EDGES = 1 << 28
"""Synthetic graphs with at least this many edges are generated on the run's GPU (:func:`generation_device`)."""


def generation_device(spec, device: str | torch.device) -> str | torch.device:
    """Where the command line generates ``spec``: the run's CUDA ``device`` for a synthetic graph of at least
    :data:`GPU_GENERATION_MIN_EDGES` edges (``csbm-papers100m``: minutes there, hours on a CPU), else the CPU
    (CPU and CUDA generators draw different graphs from the same seed, so smaller graphs stay the same
    whatever the device of the run). Under ``torchrun`` the GPU is this process's ``LOCAL_RANK``."""
    device = torch.device(device)
    text = str(spec)
    if device.type != "cuda" or not isinstance(spec, (str, Path)) or text.split(":", 1)[0] not in PRESETS:
        return "cpu"
    if parse_csbm_spec(text)["num_edges"] < GPU_GENERATION_MIN_EDGES:
        return "cpu"
    local_rank = os.environ.get("LOCAL_RANK")
    return torch.device("cuda", int(local_rank)) if local_rank is not None and device.index is None else device


def parse_csbm_spec(text: str) -> dict:
    """``"csbm-products:seed=1"`` -> keyword arguments of :func:`csbm`."""
    preset, _, options = text.partition(":")
    params = dict(PRESETS[preset])
    params["name"] = preset
    allowed = set(PRESETS["csbm"]) | {"seed"}
    for item in filter(None, (part.strip() for part in options.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key not in allowed:
            raise DataError(f"bad csbm option '{item}'; use key=value with key in {sorted(allowed)}.")
        try:
            params[key] = (int(value) if key in ("num_nodes", "num_edges", "num_classes", "num_features", "seed")
                           else float(value))
        except ValueError:
            raise DataError(f"bad value in csbm option '{item}'; expected a number.") from None
    return params


__all__ = [
    "ACCEPTED_FORMS", "CleaningReport", "Graph", "build_graph", "csbm", "from_pyg", "from_scipy", "generation_device",
    "load_graph", "load_npz", "load_ogb_dataset", "load_ogb_folder", "parse_csbm_spec", "random_split",
]
