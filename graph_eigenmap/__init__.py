"""graph_eigenmap: spectral node embeddings of large graphs learned as neural eigenfunctions.

Quick start::

    from graph_eigenmap import NeuralEigenmap, load_graph, normalized_adjacency
    graph = load_graph("csbm")                 # built-in synthetic graph, no download
    kernel = normalized_adjacency(graph)      # D^-1/2 A D^-1/2 as scipy CSR
    model = NeuralEigenmap(k=16).fit(graph)   # NeuralEF: model.embedding_ [n, 16], model.eigenvalues_

Every name below is imported on first use (PEP 562), so ``import graph_eigenmap`` and its light modules
(``graph_eigenmap.config``, ``graph_eigenmap.registry``) do not import torch: the command line answers
``--help`` at once. ``docs/architecture.md`` shows where each step of the pipeline lives.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_PUBLIC = {
    "DataError": "graph_eigenmap.errors",
    "DatasetUnavailableError": "graph_eigenmap.errors",
    "GraphEigenmapError": "graph_eigenmap.errors",
    "Graph": "graph_eigenmap.data",
    "load_graph": "graph_eigenmap.data",
    "KernelReport": "graph_eigenmap.kernel",
    "graph_report": "graph_eigenmap.kernel",
    "normalized_adjacency": "graph_eigenmap.kernel",
    "to_torch_csr": "graph_eigenmap.data.sparse",
    "TrainConfig": "graph_eigenmap.config",
    "FitResult": "graph_eigenmap.fit_outputs",
    "NeuralEigenmap": "graph_eigenmap.api",
    "NotFittedError": "graph_eigenmap.api",
    "neural_eigenmap": "graph_eigenmap.api",
    "AddNeuralEigenmapPE": "graph_eigenmap.transforms",
}
"""Public name -> the module that defines it."""


def __getattr__(name: str):
    """A public name, imported from its module on first use (and kept in the package's namespace)."""
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_PUBLIC))


__all__ = [*_PUBLIC, "__version__"]
