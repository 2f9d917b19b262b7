"""graph_eigenmap: spectral node embeddings of large graphs learned as neural eigenfunctions.

Quick start::

    from graph_eigenmap import load_graph, normalized_adjacency
    graph = load_graph("csbm")                 # built-in synthetic graph, no download
    kernel = normalized_adjacency(graph)      # D^-1/2 A D^-1/2 as scipy CSR
    model = NeuralEigenmap(k=16).fit(graph)   # NeuralEF: model.embedding_ [n, 16], model.eigenvalues_
"""

from graph_eigenmap.errors import DataError, DatasetUnavailableError, GraphEigenmapError
from graph_eigenmap.data import Graph, load_graph
from graph_eigenmap.kernel import KernelReport, graph_report, normalized_adjacency, to_torch_csr
from graph_eigenmap.config import TrainConfig
from graph_eigenmap.api import FitResult, NeuralEigenmap, NotFittedError, neural_eigenmap

__version__ = "0.1.0"


def __getattr__(name: str):
    """``AddNeuralEigenmapPE`` on first use, so that ``import graph_eigenmap`` does not import torch_geometric."""
    if name == "AddNeuralEigenmapPE":
        from graph_eigenmap.transforms import AddNeuralEigenmapPE

        return AddNeuralEigenmapPE
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AddNeuralEigenmapPE",
    "FitResult",
    "NeuralEigenmap",
    "NotFittedError",
    "TrainConfig",
    "neural_eigenmap",
    "DataError",
    "DatasetUnavailableError",
    "Graph",
    "GraphEigenmapError",
    "KernelReport",
    "graph_report",
    "load_graph",
    "normalized_adjacency",
    "to_torch_csr",
    "__version__",
]
