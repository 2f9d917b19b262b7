"""One copy of the graph per host for the processes of a data-parallel fit (``fit --nproc N``).

The launcher (:func:`graph_eigenmap.api.neural_eigenmap_on_processes`) loads the graph once, makes the choices that
decide what the model reads (``inputs="auto"``, :mod:`graph_eigenmap.recipe`), computes the model's inputs and the
graph's components, and writes all of it as ``.npy`` files into a folder (:func:`share_graph`): the CSR arrays
(int32 indices where the ids fit), features, labels, split, components, the propagated inputs and, for ``svd:D``,
the projection. It then frees its own copy and starts the ranks; each maps the files read-only
(:func:`read_shared_graph`, ``np.load(..., mmap_mode="r")``). The pages of a file mapped by N processes are one
copy in the page cache, counted once in their summed proportional set size (PSS), and they are file pages, which the
kernel can drop and read again rather than anonymous memory. Before, every rank loaded (or generated) the graph and
propagated the features itself: N copies, and on a 24 GB machine ``--nproc 2`` on a million-node csbm ran out of
memory; now the two processes hold no more than one (``benchmarks/results/scale/host_memory_cpu.md``).

Nothing is written into a mapped array: torch tensors over them are made with
:func:`graph_eigenmap.transfer.tensor_view`, and scipy builds new arrays for what it derives. The folder lives in the
fit's output folder under a temporary name and is removed when the ranks finish; the fit's ``known_inputs.npy`` is a
hard link to its inputs file (:func:`graph_eigenmap.files.save_array`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

from graph_eigenmap.config import TrainConfig, defaults
from graph_eigenmap.data import Graph, load_graph
from graph_eigenmap.data.cache import read_graph_cache, write_graph_arrays
from graph_eigenmap.data.components import components
from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.host_memory import mark_phase
from graph_eigenmap.inputs import input_projection, model_input_graph, with_model_inputs
from graph_eigenmap.recipe import graph_smoothness, remember_smoothness, resolve
from graph_eigenmap.registry import InputSpec

STAMP = "shared"
INPUTS, PROJECTION, CHOICES = "inputs.npy", "projection.npy", "choices.json"


def share_graph(graph, load_options: dict, fit_options: dict, folder: Path) -> dict:
    """Load ``graph`` (a :class:`Graph` or a spec for :func:`~graph_eigenmap.data.load_graph` with ``load_options``)
    and write it, its components and the model's inputs into the new folder ``folder``.

    Args:
        fit_options: the keyword arguments of :func:`~graph_eigenmap.api.neural_eigenmap` (the training options
            among them decide the inputs).

    Returns:
        ``fit_options`` for the ranks, with ``inputs`` set to the value resolved here (so that every rank reads the
        files written here, whatever the memory it sees when it starts).

    Raises:
        GraphEigenmapError: options that do not go with the graph (before any process starts).
        OSError: the folder could not be written.
    """
    mark_phase("load")
    generated = folder.with_name(folder.name + ".graph")  # a large synthetic graph's arrays, generated into files
    try:
        graph = graph if isinstance(graph, Graph) else load_graph(graph, arrays_dir=generated, **load_options)
        return _write_shared(graph, fit_options, folder)
    finally:
        shutil.rmtree(generated, ignore_errors=True)


def _write_shared(graph: Graph, fit_options: dict, folder: Path) -> dict:
    mark_phase("share")
    fields = {name: value for name, value in fit_options.items() if name in defaults()}
    config = resolve(TrainConfig(**fields), graph, torch.device("cpu"))
    components(graph)
    smoothness = None if graph.features is None else graph_smoothness(graph)
    write_graph_arrays(graph, folder, STAMP)
    spec = InputSpec() if config.identity else config.inputs
    if spec.name != "features" and graph.features is not None:
        rows = model_input_graph(graph, spec, "cpu", file=folder / INPUTS if spec.hops else None).features
        if not spec.hops:  # svd:D alone: the reduced features, computed in memory
            np.save(folder / INPUTS, rows, allow_pickle=False)
        if spec.rank:
            np.save(folder / PROJECTION, input_projection(graph, spec.rank)[1], allow_pickle=False)
    (folder / CHOICES).write_text(json.dumps(dict(inputs=spec.name, feature_smoothness=smoothness)))
    return dict(fit_options, inputs=spec.name)


def read_shared_graph(folder: Path) -> Graph:
    """The graph :func:`share_graph` wrote to ``folder``, every array memory-mapped read-only, with its model inputs
    and the figures of the automatic choices already in place (nothing is computed again).

    Raises:
        GraphEigenmapError: the folder is missing or damaged.
    """
    graph = read_graph_cache(folder, STAMP, mmap_mode="r")
    try:
        choices = json.loads((folder / CHOICES).read_text())
    except (OSError, ValueError):
        graph = None
    if graph is None:
        raise GraphEigenmapError(f"{folder}, the graph the launcher shared with the training processes, is missing or "
                                 "damaged; run the fit again.")
    if choices["feature_smoothness"] is not None:
        remember_smoothness(graph, choices["feature_smoothness"])
    spec = choices["inputs"]
    if (folder / INPUTS).is_file():
        projection = np.load(folder / PROJECTION, allow_pickle=False) if (folder / PROJECTION).is_file() else None
        with_model_inputs(graph, spec, np.load(folder / INPUTS, mmap_mode="r", allow_pickle=False), projection)
    return graph

