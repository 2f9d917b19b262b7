"""Evaluating a trained model on many nodes, in chunks: into memory, or straight into ``.npy`` files."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from graph_eigenmap.artifacts import load_known_inputs, load_model
from graph_eigenmap.config import TrainConfig
from graph_eigenmap.data.graph import Graph
from graph_eigenmap.data.sparse import as_model_input, take_rows
from graph_eigenmap.errors import GraphEigenmapError, InputWarning
from graph_eigenmap.models import NeuralEigenfunctions
from graph_eigenmap.registry import parse_inputs


@torch.no_grad()
def embed_nodes(model: NeuralEigenfunctions, inputs: torch.Tensor, *, chunk_size: int = 65536,
                with_backbone: bool = True, to_host: bool = True, bf16: bool = False):
    """Evaluate a trained model on ``[m, d]`` features (dense or sparse CSR; or ``[m]`` node ids), in chunks.

    Args:
        to_host: return float32 numpy arrays (default); False keeps ``[m, k]`` tensors on the
            model's device (for consumers there, and for throughput measurements).
        bf16: bfloat16 autocast on a GPU (faster; about 1e-2 relative error, so not for exact reproduction).

    Returns:
        ``([m, k]`` eigenfunctions, ``[m, h]`` backbone features or None``)``.
    """
    model.eval()
    device = next(model.parameters()).device
    if not to_host:
        outputs, backbones = [], []
    else:  # filled chunk by chunk: no list of chunks joined into a second copy
        outputs = torch.empty(inputs.shape[0], model.k)
        backbones = torch.empty(inputs.shape[0], model.backbone.out_features) if with_backbone else None
    for begin in range(0, inputs.shape[0], chunk_size):
        chunk = take_rows(inputs, slice(begin, begin + chunk_size)).to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16 and device.type == "cuda"):
            psi, h = model.forward_with_backbone(chunk)
        if to_host:
            outputs[begin:begin + len(psi)] = psi.float()
            if with_backbone:
                backbones[begin:begin + len(h)] = h.float()
            continue
        outputs.append(psi)
        if with_backbone:
            backbones.append(h)
    if not to_host:
        return torch.cat(outputs), (torch.cat(backbones) if with_backbone else None)
    return outputs.numpy(), (backbones.numpy() if with_backbone else None)


def embed_features(model: NeuralEigenfunctions, features, feature_mode: str,
                   with_backbone: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Embed new nodes from their model inputs: ``[m, d]`` (dense, or scipy sparse) -> float32 ``([m, k], [m, h] or
    None)``, after checking them against the model (``feature_mode``: the fit's ``features``)."""
    if feature_mode == "identity":
        raise GraphEigenmapError("this model was fitted with identity features (one free vector per training "
                                 "node); it cannot embed new nodes. Refit with node features to embed new nodes.")
    x = sp.csr_matrix(features, dtype=np.float32) if sp.issparse(features) else np.asarray(features)
    expected = model.backbone.in_features
    if x.ndim != 2 or x.shape[1] != expected:
        raise GraphEigenmapError(f"`features` must have shape [m, {expected}] (the width the model was fitted on); "
                                 f"got {list(x.shape)}.")
    if not np.isfinite(x.data if sp.issparse(x) else x).all():
        raise GraphEigenmapError("`features` hold NaN or inf; impute or drop those rows first.")
    return embed_nodes(model, as_model_input(x), with_backbone=with_backbone)


def embed_with_saved_model(model_dir: str | Path, features, edges=None, *, device: str | torch.device = "cpu",
                           with_backbone: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Embed new nodes with a model folder written by a fit: ``[m, d]`` features (and, for a model fitted with
    ``propagated:K`` inputs, ``[2, E]`` edges to known nodes) -> float32 ``([m, k], [m, h] or None)``.

    Raises:
        GraphEigenmapError: a damaged folder, features of the wrong width, or edges missing where they are needed.
    """
    network, config = load_model(model_dir, device=device)
    spec = parse_inputs(config.get("inputs", "features"))
    if spec.hops and edges is None:
        raise GraphEigenmapError(f"{model_dir} was fitted with `inputs={spec}`: pass the new nodes' edges to known "
                                 "nodes, `edges` ([2, E] integers).")
    if edges is not None and not spec.hops:
        warnings.warn(f"`edges` are not used: {model_dir} was fitted with inputs '{spec}', which read a node's own "
                      "features only; drop `edges`.", InputWarning, stacklevel=2)
    if spec.name != "features":
        features = load_known_inputs(model_dir, spec).new_node_inputs(features, edges if spec.hops else None)
    return embed_features(network, features, config["features"], with_backbone=with_backbone)


def all_node_inputs(graph: Graph, config: TrainConfig) -> torch.Tensor:
    """The model's inputs for every node: features ``[n, d]`` (dense, or sparse CSR) or ids ``[n]``."""
    if config.identity:
        return torch.arange(graph.num_nodes)
    return as_model_input(graph.features)


STREAM_OUTPUTS_BYTES = int(os.environ.get("GRAPH_EIGENMAP_STREAM_OUTPUTS_BYTES", 0))
"""Saved outputs whose ``[n, k]`` + ``[n, h]`` float32 arrays exceed this are written chunk by chunk and read back
memory-mapped: by default every fit with an output folder (4 GiB before issue 29: a fit of a million nodes then held
its outputs, and joined them from chunks into a second copy, in anonymous memory). Outputs without a folder are
held in memory."""


def streams_outputs(num_nodes: int, model: NeuralEigenfunctions) -> bool:
    """Whether a fit's embeddings and backbone features go straight to files (:func:`embed_to_files`)."""
    return 4 * num_nodes * (model.k + model.backbone.out_features) > STREAM_OUTPUTS_BYTES


BACKBONE_MAX_BYTES = int(os.environ.get("GRAPH_EIGENMAP_BACKBONE_MAX_BYTES", 16 * 2**30))
"""A fit writes backbone.npy by itself only up to this size (:func:`graph_eigenmap.api.neural_eigenmap`)."""


FILE_CHUNK_ROWS = 1 << 18
"""Rows :func:`embed_to_files` embeds at once on a GPU."""
FILE_CHUNK_ROWS_HOST = 1 << 15
"""The same on a CPU: the activations of 2^18 rows of a 256-wide MLP took 0.7 GB of host memory."""


@torch.no_grad()
def embed_to_files(model: NeuralEigenfunctions, inputs: torch.Tensor, embedding_path: Path, backbone_path: Path | None,
                   *, chunk_size: int | None = None,
                   keep: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Embed every row of ``inputs`` into ``.npy`` files, chunk by chunk, never holding all rows in memory.

    Args:
        inputs: ``[n, d]`` features (dense or sparse CSR) or ``[n]`` node ids, on the host.
        chunk_size: rows embedded at once (default :data:`FILE_CHUNK_ROWS`, on a CPU :data:`FILE_CHUNK_ROWS_HOST`).
        embedding_path, backbone_path: new files for the float32 ``[n, k]`` eigenfunctions and ``[n, h]``
            backbone features (written a block of rows at a time by :class:`RowFile`); ``backbone_path`` None
            skips the backbone.
        keep: an ``[n, k]`` float32 tensor (on the model's device) that also receives the eigenfunctions, so
            that they can be measured there without reading the file back; None: no copy.

    Returns:
        the files memory-mapped for reading and writing (``mode="r+"``), flushed (None for a skipped backbone).
    """
    n = inputs.shape[0]
    if chunk_size is None:  # on a CPU the chunk's activations are host memory
        chunk_size = FILE_CHUNK_ROWS if next(model.parameters()).device.type == "cuda" else FILE_CHUNK_ROWS_HOST
    embedding = RowFile(embedding_path, (n, model.k))
    backbone = None if backbone_path is None else RowFile(backbone_path, (n, model.backbone.out_features))
    for begin in range(0, n, chunk_size):
        psi, h = embed_nodes(model, take_rows(inputs, slice(begin, begin + chunk_size)), chunk_size=chunk_size,
                             with_backbone=backbone is not None, to_host=False)
        if keep is not None:
            keep[begin:begin + len(psi)] = psi
        embedding.write(begin, psi.float().cpu().numpy())
        if backbone is not None:
            backbone.write(begin, h.float().cpu().numpy())
    return embedding.close(), None if backbone is None else backbone.close()


class RowFile:
    """A float32 ``[n, w]`` ``.npy`` file written a block of rows at a time with plain writes.

    Written through a memory map instead, every row written would count as this process's resident memory
    until the kernel writes it back (28 GB for papers100M's embeddings, beside the graph's 100 GB).

    Args:
        path: a new file (created with its ``.npy`` header), or an existing float32 ``.npy`` of ``shape``.
        shape: ``(n, w)``.
    """

    def __init__(self, path: Path, shape: tuple[int, int], *, create: bool = True):
        array = np.lib.format.open_memmap(path, mode="w+" if create else "r+", dtype=np.float32,
                                          shape=shape if create else None)
        if array.shape != tuple(shape) or array.dtype != np.float32:
            raise ValueError(f"{path} holds {array.dtype} {array.shape}, not float32 {tuple(shape)}")
        self.path, self.offset, self.row_bytes = Path(path), array.offset, 4 * shape[1]
        del array
        self.handle = open(path, "r+b")

    def write(self, begin: int, rows: np.ndarray) -> None:
        """Rows ``begin .. begin + len(rows) - 1`` (``[m, w]``)."""
        data = memoryview(np.ascontiguousarray(rows, dtype=np.float32)).cast("B")
        position = self.offset + begin * self.row_bytes
        while data:
            written = os.pwrite(self.handle.fileno(), data, position)
            data, position = data[written:], position + written

    def close(self) -> np.ndarray:
        """Close the file; returns it memory-mapped for reading and writing (``mode="r+"``)."""
        self.handle.close()
        return np.load(self.path, mmap_mode="r+", allow_pickle=False)


def permute_columns(array: np.ndarray, order: np.ndarray, *, chunk_rows: int = 1 << 20,
                    source: torch.Tensor | None = None) -> np.ndarray:
    """``array[:, order]``; a memory-mapped ``[n, k]`` array is permuted in place, a block of rows at a time
    (read from ``source``, a copy of it on a device, when given: the file is then written, not read)."""
    if not isinstance(array, np.memmap):
        return array[:, order]
    if source is None:
        for begin in range(0, array.shape[0], chunk_rows):
            array[begin:begin + chunk_rows] = array[begin:begin + chunk_rows][:, order]
        return array
    array.flush()  # then written with plain writes (RowFile): the mapped pages are not made resident
    columns = torch.from_numpy(np.asarray(order, dtype=np.int64)).to(source.device)
    rows = RowFile(Path(array.filename), array.shape, create=False)
    for begin in range(0, array.shape[0], chunk_rows):
        rows.write(begin, source[begin:begin + chunk_rows].index_select(1, columns).cpu().numpy())
    return rows.close()


def keeps_outputs_on_device(num_nodes: int, model: NeuralEigenfunctions, device: torch.device) -> bool:
    """Whether a streamed fit also keeps its float32 ``[n, k]`` outputs on the GPU to measure them there:
    when they take under a fifth of its free memory (papers100M's 111M × 64: 28 GB of an H100's 80)."""
    if device.type != "cuda":
        return False
    free, _ = torch.cuda.mem_get_info(device)
    return 4 * num_nodes * model.k < 0.2 * free
