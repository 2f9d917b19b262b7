"""A PyG transform that attaches a Neural Eigenmap representation to a ``Data`` object as a positional encoding.

:class:`AddNeuralEigenmapPE` is to Neural Eigenmap what PyG's ``AddLaplacianEigenvectorPE`` is to an
exact eigensolver: it computes ``[n, w]`` node vectors from the graph and stores them under
``attr_name`` (or appends them to ``data.x`` when ``attr_name`` is None). It differs in what it
computes: the representation a fit of :func:`~graph_eigenmap.api.neural_eigenmap` recommends (by default an MLP
on ``data.x``; the backbone features, or where the features mislead the eigenfunctions beside them; with
``representation="embedding"`` the top-k eigenfunctions of D^-1/2 A D^-1/2 themselves), deterministic for a seed,
where PyG's transform takes the eigenvectors of the Laplacian after the trivial one and flips their signs at random.

Training takes seconds to minutes, so use it as a dataset's ``pre_transform`` (computed once and
stored with the processed files) or call it once on a ``Data``; as ``transform=`` it would train again
on every access.

Importing this module imports torch_geometric; ``import graph_eigenmap`` does not (the package
exposes the class lazily).

Example:
    >>> from torch_geometric.datasets import KarateClub   # built in, no download
    >>> from graph_eigenmap.transforms import AddNeuralEigenmapPE
    >>> data = AddNeuralEigenmapPE(k=4, steps=50, device="cpu")(KarateClub()[0])
    >>> data.neural_eigenmap_pe.shape                     # row i node i
    torch.Size([34, 4])
    >>> AddNeuralEigenmapPE(k=4, attr_name=None, steps=50)(KarateClub()[0]).x.shape   # appended to x
    torch.Size([34, 38])
"""

from __future__ import annotations

import numpy as np
import torch

try:
    from torch_geometric.data import Data
    from torch_geometric.transforms import BaseTransform
except ImportError as err:  # pragma: no cover - torch_geometric is a dependency; this guards broken installs
    raise ImportError("graph_eigenmap.transforms needs torch_geometric: pip install torch-geometric.") from err

from graph_eigenmap.api import neural_eigenmap, unknown_params_message
from graph_eigenmap.config import defaults
from graph_eigenmap.data import from_pyg
from graph_eigenmap.distributed import Ranks
from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.representation import node_representation


class AddNeuralEigenmapPE(BaseTransform):
    """Add the recommended Neural Eigenmap representation of each node to a ``Data`` object (a positional encoding).

    Row i of the added ``[n, w]`` float32 tensor is node i. It is the representation the fit recommends (the
    ``representation`` option; ``NeuralEigenmap.transform`` returns the same): with ``representation="embedding"``
    it equals ``neural_eigenmap(data, k=k, **options).embedding``, w = k, column j the j-th eigenfunction.
    The graph is read from ``edge_index`` (symmetrized, self-loops dropped), ``edge_weight`` and ``x``
    only (other attributes, labels and masks included, are left alone and not read).

    Args:
        k: number of eigenfunctions.
        attr_name: the attribute to store the ``[n, w]`` encoding in (default
            ``"neural_eigenmap_pe"``); None appends it to ``data.x`` as w more columns (cast to
            ``x``'s dtype), or makes it ``data.x`` when there is none.
        device: where training runs: ``"auto"`` (a GPU when torch sees one), ``"cpu"``, ``"cuda"``, ...
            The encoding is put on ``edge_index``'s device.
        progress: progress bar on/off, on stderr (None: on once the run is expected to take 5 s or more).
        **options: fields of :class:`~graph_eigenmap.config.TrainConfig` (``steps``, ``features``,
            ``inputs``, ``seed``, ...), with its defaults.

    Raises:
        GraphEigenmapError: an unknown option (at construction), or a graph or option that
            :func:`~graph_eigenmap.api.neural_eigenmap` refuses (when called).
    """

    def __init__(self, k: int, attr_name: str | None = "neural_eigenmap_pe", *, device: str = "auto",
                 progress: bool | None = None, **options) -> None:
        valid = [name for name in defaults() if name != "k"]
        unknown = {name: value for name, value in options.items() if name not in valid}
        if unknown:
            raise GraphEigenmapError(unknown_params_message(unknown, valid, type(self).__name__))
        self.k = k
        self.attr_name = attr_name
        self.device = device
        self.progress = progress
        self.options = options

    def forward(self, data: Data) -> Data:
        """Train on ``data``'s graph and attach the encoding (to the shallow copy ``__call__`` passes)."""
        if getattr(data, "edge_index", None) is None:
            raise GraphEigenmapError("AddNeuralEigenmapPE needs a homogeneous Data with edge_index [2, m]; "
                                     f"got a {type(data).__name__} without one.")
        graph_only = Data(edge_index=data.edge_index, x=data.x, edge_weight=getattr(data, "edge_weight", None),
                          num_nodes=data.num_nodes)
        graph = from_pyg(graph_only)
        result = neural_eigenmap(graph, k=self.k, device=self.device, progress=self.progress, ranks=Ranks(),
                                 **self.options)
        encoding, _ = node_representation(result.config.representation, embedding=result.embedding,
                                          backbone=result.backbone, features=graph.features)
        encoding = torch.from_numpy(np.ascontiguousarray(encoding, dtype=np.float32)).to(data.edge_index.device)
        if self.attr_name is not None:
            data[self.attr_name] = encoding
        elif data.x is None:
            data.x = encoding
        else:
            x = data.x.view(-1, 1) if data.x.dim() == 1 else data.x
            data.x = torch.cat([x, encoding.to(x.device, x.dtype)], dim=-1)
        return data

    def __repr__(self) -> str:
        options = "".join(f", {name}={value!r}" for name, value in self.options.items())
        return f"{type(self).__name__}(k={self.k}, attr_name={self.attr_name!r}{options})"
