"""After training: embed every node, measure the exact Rayleigh quotients, sort the outputs, write the fit's files.

:func:`finish_fit` is the post-fit pipeline of :func:`graph_eigenmap.api.neural_eigenmap`:

1. every node's ``[n, k]`` eigenfunctions and ``[n, h]`` backbone features (into memory, or for graphs too large for
   that straight into the output files, :func:`graph_eigenmap.inference.embed_to_files`);
2. their exact Rayleigh quotients ψ_jᵀĀψ_j / ψ_jᵀψ_j;
3. with stop-gradient, the recorded last step: outputs whose quotients still rise by more than
   :data:`ORDER_TOLERANCE` are sorted, model included (:func:`graph_eigenmap.reorder.sort_outputs`);
4. ``metadata.json`` and the files of :func:`graph_eigenmap.artifacts.save_fit`.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import secrets
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from graph_eigenmap.artifacts import (
    BACKBONE,
    EMBEDDINGS,
    REPRESENTATION,
    environment,
    model_config,
    save_fit,
    streamed_outputs,
)
from graph_eigenmap.config import TrainConfig
from graph_eigenmap.data.graph import Graph
from graph_eigenmap.distributed import Ranks
from graph_eigenmap.host_memory import mark_phase
from graph_eigenmap.inference import (
    BACKBONE_MAX_BYTES,
    RowFile,
    all_node_inputs,
    embed_nodes,
    embed_to_files,
    keeps_outputs_on_device,
    permute_columns,
    streams_outputs,
)
from graph_eigenmap.inputs import KnownInputs, gcn_degrees, input_projection, model_input_graph
from graph_eigenmap.kernel import full_kernel
from graph_eigenmap.metrics import rayleigh_quotients, rayleigh_quotients_by_columns
from graph_eigenmap.models import NeuralEigenfunctions
from graph_eigenmap.recipe import explain
from graph_eigenmap.registry import KERNELS, REPRESENTATIONS
from graph_eigenmap.reorder import sort_outputs
from graph_eigenmap.representation import node_representation
from graph_eigenmap.train import TrainResult

ORDER_TOLERANCE = 0.01
"""A rise of the exact Rayleigh quotient from output j to j + 1 above this counts as an order violation."""


class OrderWarning(UserWarning):
    """Stop-gradient outputs whose exact Rayleigh quotients are not descending."""


@dataclass
class FitResult:
    """A fitted model and what it says about the graph.

    Attributes:
        embedding: float32 ``[n, k]``; row i node i, column j the j-th eigenfunction.
        backbone: float32 ``[n, h]`` penultimate features (the table itself for identity features).
        eigenvalues: ``[k]`` moving-average estimates of R_jj from training.
        rayleigh_quotients: ``[k]`` ψ_jᵀĀψ_j / ψ_jᵀψ_j of the final embedding, computed exactly.
        model: the network (eval mode).
        config: the resolved :class:`TrainConfig`.
        metadata: what ``metadata.json`` holds.
        known_inputs: with ``inputs="propagated:K"``, what embedding a new node needs from the
            training graph (:class:`KnownInputs`); None otherwise.
    """

    embedding: np.ndarray
    backbone: np.ndarray
    eigenvalues: np.ndarray
    rayleigh_quotients: np.ndarray
    model: NeuralEigenfunctions
    config: TrainConfig
    metadata: dict
    known_inputs: KnownInputs | None = None


def finish_fit(graph: Graph, trained: TrainResult, *, out_dir: str | Path | None, save_backbone: bool | None,
               ranks: Ranks, started: float) -> FitResult:
    """Steps 1-4 of the module docstring for a finished training run (on rank 0 of a data-parallel one).

    Args:
        graph: the training graph (with its own features; the model's inputs are derived again, cached).
        trained: what :func:`graph_eigenmap.train.train` returned.
        out_dir: the folder for the fit's files; None keeps everything in memory.
        save_backbone: see :func:`graph_eigenmap.api.neural_eigenmap`.
        ranks: the processes that trained (recorded in metadata.json).
        started: ``time.perf_counter()`` when the fit began (for ``wall_time_s``).
    """
    mark_phase("outputs")
    config = trained.config
    device = next(trained.model.parameters()).device  # a rank's own GPU in data-parallel runs
    model_graph = graph if config.identity else model_input_graph(graph, config.inputs, device)
    kernel = trained.kernel if trained.kernel is not None else full_kernel(graph, config.kernel, device)
    streamed = out_dir is not None and streams_outputs(graph.num_nodes, trained.model)
    writes_backbone = out_dir is not None and _writes_backbone(save_backbone, graph.num_nodes, trained.model)
    with streamed_outputs(out_dir if streamed else None) as files:
        embedding, backbone, quotients, kept = _embed_and_measure(trained.model, all_node_inputs(model_graph, config),
                                                                  kernel, files, writes_backbone)
        in_training = order_violations(quotients)
        order = (sort_outputs(trained.model, quotients, ORDER_TOLERANCE) if config.stop_gradient and config.reorder
                 else None)
        if order is not None:  # the recorded last step (graph_eigenmap.reorder): outputs by descending quotient
            embedding, quotients = permute_columns(embedding, order, source=kept), quotients[order]
            trained.eigenvalues = trained.eigenvalues[order]
        metadata = fit_metadata(graph, trained, quotients, device, time.perf_counter() - started)
        metadata.update(order_violations_in_training=in_training,
                        final_sort=None if order is None else [int(j) for j in order], outputs_streamed=streamed,
                        backbone_saved=writes_backbone, processes=ranks.world_size,
                        peak_gpu_gib=_peak_gpu_gib(device), history=[list(entry) for entry in trained.history])
        _warn_about_order(metadata, config)
        metadata["representation"] = _recommended(graph, config, embedding, backbone, out_dir=out_dir,
                                                  backbone_written=writes_backbone)
        known = None if model_graph is graph else _known_inputs(graph, model_graph, config)
        if out_dir is not None:
            save_fit(out_dir, embedding=None if streamed else embedding,
                     backbone=None if streamed or not writes_backbone else backbone, model=trained.model,
                     model_config=model_config(config, model_graph), metadata=metadata, known_inputs=known)
    if streamed:
        embedding = np.load(Path(out_dir) / EMBEDDINGS, mmap_mode="c", allow_pickle=False)
        backbone = np.load(Path(out_dir) / BACKBONE, mmap_mode="c", allow_pickle=False) if writes_backbone else None
    return FitResult(embedding, backbone, trained.eigenvalues, quotients, trained.model, config, metadata, known)


def _recommended(graph: Graph, config: TrainConfig, embedding, backbone, *, out_dir: str | Path | None,
                 backbone_written: bool) -> dict:
    """What metadata.json says of the representation the fit recommends (``config.representation``, resolved by
    :mod:`graph_eigenmap.recipe`): its name, its parts, the file that holds it (None where none does), and the
    label-free figures that chose it. One part is its own file (embeddings.npy, backbone.npy); several go side by
    side to ``representation.npy``, written here a block of rows at a time (:func:`write_side_by_side`) when the fit
    has an output folder, the parts are at hand and the file takes at most
    :data:`~graph_eigenmap.inference.BACKBONE_MAX_BYTES`."""
    name = config.representation
    parts = REPRESENTATIONS[name].parts
    record = dict(name=name, parts=list(parts), recipe=explain(config, graph))
    if parts == ("embedding",):
        return dict(record, file=EMBEDDINGS)
    if parts == ("backbone",):
        return dict(record, file=BACKBONE if backbone_written else None)
    given = dict(embedding=embedding, backbone=backbone, features=graph.features)
    if out_dir is None or any(given[part] is None for part in parts):
        return dict(record, file=None)
    if 4 * graph.num_nodes * sum(given[part].shape[1] for part in parts) > BACKBONE_MAX_BYTES:
        return dict(record, file=None)  # too large to duplicate its parts on disk
    blocks = write_side_by_side(Path(out_dir) / REPRESENTATION, name, given)
    return dict(record, file=REPRESENTATION, blocks=list(blocks))


def write_side_by_side(path: Path, name: str, parts: dict, *, chunk_rows: int = 1 << 16) -> tuple[int, ...]:
    """Write the representation ``name`` of ``parts`` (``{"embedding": [n, k], "backbone": ..., "features": ...}``,
    memory-mapped or not) to ``path``, a block of rows at a time, atomically; returns its block widths."""
    n = next(iter(parts.values())).shape[0]
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        rows = None
        for begin in range(0, n, chunk_rows):
            rows_of = {part: None if part_rows is None else part_rows[begin:begin + chunk_rows]
                       for part, part_rows in parts.items()}
            block, blocks = node_representation(name, **rows_of)
            rows = rows or RowFile(temporary, (n, block.shape[1]))
            rows.write(begin, block)
        rows.close()
        with open(temporary, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    return blocks


def _embed_and_measure(model: NeuralEigenfunctions, inputs: torch.Tensor, kernel, files, writes_backbone: bool):
    """``(embedding [n, k], backbone [n, h] or None, exact quotients [k], the embedding kept on the GPU or None)``;
    with ``files`` (temporary paths of :func:`~graph_eigenmap.artifacts.streamed_outputs`) the outputs go straight
    into them and come back memory-mapped."""
    device = next(model.parameters()).device
    if files is None:
        embedding, backbone = embed_nodes(model, inputs)
        return embedding, backbone, rayleigh_quotients(torch.from_numpy(embedding).to(device), kernel), None
    kept = None  # a streamed fit's outputs, also on the GPU when they fit: measured and sorted without rereading
    if keeps_outputs_on_device(inputs.shape[0], model, device):
        kept = torch.empty(inputs.shape[0], model.k, device=device)
    embedding, backbone = embed_to_files(model, inputs, files[0], files[1] if writes_backbone else None, keep=kept)
    quotients = rayleigh_quotients_by_columns(kept if kept is not None else embedding, kernel, device)
    return embedding, backbone, quotients, kept


def _known_inputs(graph: Graph, model_graph: Graph, config: TrainConfig) -> KnownInputs:
    """What a new node's model inputs are made from (:class:`KnownInputs`)."""
    spec = config.inputs
    projection = input_projection(graph, spec.rank)[1] if spec.rank else None
    if not spec.hops:
        return KnownInputs(None, None, 0, projection)
    return KnownInputs(model_graph.features, gcn_degrees(graph.adjacency), spec.hops, projection)


def _writes_backbone(asked: bool | None, num_nodes: int, model: NeuralEigenfunctions) -> bool:
    """Whether a fit writes backbone.npy (see :func:`graph_eigenmap.api.neural_eigenmap`'s ``save_backbone``)."""
    if asked is not None:
        return asked
    size = 4 * num_nodes * model.backbone.out_features
    if size <= BACKBONE_MAX_BYTES:
        return True
    print(f"backbone.npy not written: its [{num_nodes:,}, {model.backbone.out_features}] float32 would take "
          f"{size / 2**30:.0f} GiB; pass `save_backbone=True` to write it.", file=sys.stderr)
    return False


def _peak_gpu_gib(device: torch.device) -> float | None:
    """GiB torch allocated at most on ``device`` since training started (:func:`~graph_eigenmap.train.train` resets
    it)."""
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None


def fit_metadata(graph: Graph, trained: TrainResult, quotients: np.ndarray, device: torch.device,
                 wall_time: float) -> dict:
    """What ``metadata.json`` holds about the graph, the run and its eigenvalues (:func:`finish_fit` adds the rest)."""
    config = trained.config
    return dict(
        dataset=graph.source, dataset_spec=graph.extra.get("spec"), dataset_name=graph.name, synthetic=graph.synthetic,
        num_nodes=graph.num_nodes, num_edges=graph.num_edges, k=config.k,
        kernel=KERNELS[config.kernel].formula,
        estimator=config.estimator, stop_gradient=config.stop_gradient, features=config.features,
        inputs=str(config.inputs), head="rayleigh-ritz" if config.rayleigh_ritz else "trained",
        eigenvalues=[float(v) for v in trained.eigenvalues], rayleigh_quotients=[float(v) for v in quotients],
        order_violations=order_violations(quotients),
        seed=config.seed, steps=trained.steps, reorders=trained.reorders, wall_time_s=round(wall_time, 3),
        training_time_s=round(trained.wall_time_s, 3),
        device=(torch.cuda.get_device_name(device) if device.type == "cuda"
                else f"cpu ({torch.get_num_threads()} threads)"),
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        versions=environment(), config=config.to_dict(),
    )


def order_violations(quotients) -> list[dict]:
    """Each j where the exact Rayleigh quotient rises from output j to j + 1 by more than :data:`ORDER_TOLERANCE`.

    Args:
        quotients: ``[k]`` exact Rayleigh quotients of the outputs, in output order.

    Returns:
        ``[{"output": j, "quotient": q_j, "next": q_{j+1}, "rise": q_{j+1} - q_j}]`` (0-based j).
    """
    q = np.asarray(quotients, dtype=np.float64)
    rises = np.diff(q)
    return [dict(output=int(j), quotient=round(float(q[j]), 6), next=round(float(q[j + 1]), 6),
                 rise=round(float(rises[j]), 6)) for j in np.flatnonzero(rises > ORDER_TOLERANCE)]


def _warn_about_order(metadata: dict, config: TrainConfig) -> None:
    violations = metadata["order_violations"]
    if config.stop_gradient and violations:
        worst = max(violations, key=lambda v: v["rise"])
        warnings.warn(f"{len(violations)} of {config.k - 1} neighbouring outputs are out of order (exact Rayleigh "
                      f"quotient rising by more than {ORDER_TOLERANCE}; the largest, {worst['rise']:.3f}, after output "
                      f"{worst['output']}); see order_violations in metadata.json.", OrderWarning, stacklevel=4)
