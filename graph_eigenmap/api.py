"""The two-tier Python API: :func:`neural_eigenmap` for one-off use, :class:`NeuralEigenmap` for the life cycle.

Example:
    >>> from graph_eigenmap import NeuralEigenmap, load_graph
    >>> graph = load_graph("csbm:num_nodes=2000,num_edges=10000,num_features=16")
    >>> model = NeuralEigenmap(k=8, steps=50).fit(graph)
    >>> model.embedding_.shape, model.eigenvalues_.shape
    ((2000, 8), (8,))
    >>> model.transform(graph.features[:5]).shape   # nodes embedded from their features alone
    (5, 8)
"""

from __future__ import annotations

import dataclasses
import datetime
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from graph_eigenmap.artifacts import environment, save_fit
from graph_eigenmap.data import Graph, load_graph
from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.inputs import KnownInputs, gcn_degrees, model_input_graph, parse_inputs
from graph_eigenmap.metrics import rayleigh_quotients
from graph_eigenmap.models import NeuralEigenfunctions
from graph_eigenmap.reorder import sort_outputs
from graph_eigenmap.config import TrainConfig
from graph_eigenmap.inference import all_node_inputs, embed_nodes
from graph_eigenmap.train import full_kernel, train

ORDER_TOLERANCE = 0.01
"""A rise of the exact Rayleigh quotient from output j to j + 1 above this counts as an order violation."""
KERNEL_NAMES = {"adjacency": "D^-1/2 A D^-1/2", "gcn": "D~^-1/2 (A+I) D~^-1/2", "shifted": "(I + D^-1/2 A D^-1/2)/2",
                "nontrivial": "D^-1/2 A D^-1/2 - sum_c u_c u_c^T (components' trivial eigenvectors removed)"}


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


def _known_inputs(graph: Graph, model_graph: Graph, inputs: str) -> KnownInputs:
    return KnownInputs(model_graph.features, gcn_degrees(graph.adjacency), parse_inputs(inputs).hops)



def neural_eigenmap(
    graph,
    *,
    k: int = 64,
    device: str = "auto",
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool | None = None,
    **options,
) -> FitResult:
    """Learn the top-k eigenfunctions of D^-1/2 A D^-1/2 with NeuralEF.

    Args:
        graph: a :class:`Graph` or any spec :func:`~graph_eigenmap.data.load_graph` accepts.
        k: number of eigenfunctions (default 64).
        device: ``"auto"`` (GPU when present), ``"cpu"``, ``"cuda"``, ...
        out_dir: folder for checkpoints and outputs (embeddings.npy, backbone.npy,
            metadata.json, model.pt, model.json); None keeps everything in memory.
        resume: continue the checkpoint in ``out_dir``.
        progress: progress bar on/off (None: on for graphs of 10,000 nodes or more).
        **options: any other field of :class:`TrainConfig` (steps, features, estimator, ...).

    Returns:
        :class:`FitResult`.
    """
    graph = graph if isinstance(graph, Graph) else load_graph(graph)
    config = _config(k, options)
    device = resolve_device(device)
    started = time.perf_counter()
    trained = train(graph, config, device=device, checkpoint_dir=out_dir, resume=resume, progress=progress)
    model_graph = model_input_graph(graph, trained.config.inputs, device) if trained.config.features == "input" else graph
    embedding, backbone = embed_nodes(trained.model, all_node_inputs(model_graph, trained.config))
    kernel = trained.kernel if trained.kernel is not None else full_kernel(graph, trained.config, device)
    quotients = rayleigh_quotients(torch.from_numpy(embedding).to(device), kernel)
    in_training = order_violations(quotients)
    order = sort_outputs(trained.model, quotients, ORDER_TOLERANCE) if trained.config.stop_gradient and \
        trained.config.reorder else None
    if order is not None:  # the recorded last step (graph_eigenmap.reorder): outputs by descending quotient
        embedding, quotients, trained.eigenvalues = embedding[:, order], quotients[order], trained.eigenvalues[order]
    metadata = _metadata(graph, trained, quotients, device, time.perf_counter() - started)
    metadata.update(order_violations_in_training=in_training,
                    final_sort=None if order is None else [int(j) for j in order])
    _warn_about_order(metadata, trained.config)
    known = _known_inputs(graph, model_graph, trained.config.inputs) if model_graph is not graph else None
    if out_dir is not None:
        save_fit(out_dir, embedding=embedding, backbone=backbone, model=trained.model,
                 model_config=model_config(trained.config, model_graph), metadata=metadata, known_inputs=known)
    return FitResult(embedding, backbone, trained.eigenvalues, quotients, trained.model, trained.config, metadata, known)


class NeuralEigenmap:
    """Neural eigenfunctions of a graph's normalized adjacency, scikit-learn style.

    Args:
        k: number of eigenfunctions (default 64).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ...
        **options: fields of :class:`TrainConfig`.

    Attributes (after :meth:`fit`):
        embedding_: float32 ``[n, k]`` eigenfunctions at the training nodes.
        backbone_: float32 ``[n, h]`` backbone features.
        eigenvalues_: ``[k]`` eigenvalue estimates, descending with stop-gradient.
        rayleigh_quotients_: ``[k]`` exact Rayleigh quotients of ``embedding_``'s columns.
        model_: the network; config_: the resolved TrainConfig; metadata_: run facts.
    """

    def __init__(self, k: int = 64, *, device: str = "auto", **options):
        self.k = k
        self.device = device
        self.options = options
        _config(k, options)  # fail early on unknown options

    def fit(self, graph, *, out_dir: str | Path | None = None, resume: bool = False,
            progress: bool | None = None) -> "NeuralEigenmap":
        result = neural_eigenmap(graph, k=self.k, device=self.device, out_dir=out_dir, resume=resume,
                                 progress=progress, **self.options)
        self.embedding_, self.backbone_ = result.embedding, result.backbone
        self.eigenvalues_, self.rayleigh_quotients_ = result.eigenvalues, result.rayleigh_quotients
        self.model_, self.config_, self.metadata_ = result.model, result.config, result.metadata
        self.known_inputs_ = result.known_inputs
        return self

    def transform(self, features, edges=None) -> np.ndarray:
        """Embed nodes the model never saw: ``[m, d]`` features -> float32 ``[m, k]``.

        Args:
            features: ``[m, d]`` the new nodes' features.
            edges: with ``inputs="propagated:K"`` (required then): ``[2, E]`` int, row 0 the new node
                (0..m-1), row 1 the training-graph node it links to. Ignored otherwise.
        """
        if not hasattr(self, "model_"):
            raise GraphEigenmapError("this NeuralEigenmap is not fitted yet; call fit(graph) first.")
        if self.known_inputs_ is not None:
            if edges is None:
                raise GraphEigenmapError(f"this model reads {self.config_.inputs} inputs: pass the new nodes' edges to "
                                         "known nodes, transform(features, edges=[2, E] array).")
            features = self.known_inputs_.new_node_inputs(features, edges)
        return embed_features(self.model_, features, self.config_.features)[0]


def embed_features(model: NeuralEigenfunctions, features, feature_mode: str,
                   with_backbone: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Check ``[m, d]`` features against the model and embed them (eval mode, float32)."""
    if feature_mode == "identity":
        raise GraphEigenmapError("this model was fitted with identity features (one free vector per training "
                                 "node); it cannot embed new nodes. Refit with node features to embed new nodes.")
    x = np.asarray(features)
    expected = model.backbone.in_features
    if x.ndim != 2 or x.shape[1] != expected:
        raise GraphEigenmapError(f"features must have shape [m, {expected}] (the width the model was fitted on); got {list(x.shape)}.")
    if not np.isfinite(x).all():
        raise GraphEigenmapError("features hold NaN or inf; impute or drop those rows first.")
    return embed_nodes(model, torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), with_backbone=with_backbone)


def model_config(config: TrainConfig, graph: Graph) -> dict:
    """What :func:`graph_eigenmap.artifacts.load_model` needs to rebuild the network."""
    return dict(config.to_dict(), num_features=graph.num_features, num_nodes=graph.num_nodes)


def resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GraphEigenmapError(f"device {device} asked for a GPU but torch sees none; use --device cpu.")
    return device


def _config(k: int, options: dict) -> TrainConfig:
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise GraphEigenmapError(f"unknown option(s) {unknown}; valid ones: {sorted(known - {'k'})}.")
    return TrainConfig(k=k, **options)


def _metadata(graph: Graph, trained, quotients: np.ndarray, device: torch.device, wall_time: float) -> dict:
    config = trained.config
    return dict(
        dataset=graph.source, dataset_name=graph.name, synthetic=graph.synthetic,
        num_nodes=graph.num_nodes, num_edges=graph.num_edges, k=config.k,
        kernel=KERNEL_NAMES[config.kernel],
        estimator=config.estimator, stop_gradient=config.stop_gradient, features=config.features,
        inputs=config.inputs, head="rayleigh-ritz" if config.rayleigh_ritz else "trained",
        eigenvalues=[float(v) for v in trained.eigenvalues], rayleigh_quotients=[float(v) for v in quotients],
        order_violations=order_violations(quotients),
        seed=config.seed, steps=trained.steps, reorders=trained.reorders, wall_time_s=round(wall_time, 3),
        training_time_s=round(trained.wall_time_s, 3),
        device=torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
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
                      f"{worst['output']}); see order_violations in metadata.json.", OrderWarning, stacklevel=3)
