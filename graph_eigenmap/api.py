"""The two-tier Python API: :func:`neural_eigenmap` for one-off use, :class:`NeuralEigenmap` for the life cycle.

Example:
    >>> from graph_eigenmap import NeuralEigenmap, load_graph
    >>> graph = load_graph("csbm:num_nodes=2000,num_edges=10000,num_features=16")
    >>> model = NeuralEigenmap(k=8, steps=50, inputs="features").fit(graph)
    >>> model.embedding_.shape, model.eigenvalues_.shape
    ((2000, 8), (8,))
    >>> model.transform(graph.features[:5]).shape   # inputs="features": nodes embedded from their features alone
    (5, 8)
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import inspect
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from graph_eigenmap import distributed
from graph_eigenmap.artifacts import BACKBONE, EMBEDDINGS, environment, save_fit, streamed_outputs
from graph_eigenmap.data import Graph, from_scipy, load_graph
from graph_eigenmap.distributed import Ranks, ranks_from_environment
from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.inputs import KnownInputs, gcn_degrees, input_projection, model_input_graph, parse_inputs
from graph_eigenmap.metrics import rayleigh_quotients, rayleigh_quotients_by_columns
from graph_eigenmap.models import NeuralEigenfunctions
from graph_eigenmap.reorder import sort_outputs
from graph_eigenmap.config import TrainConfig
from graph_eigenmap.inference import (BACKBONE_MAX_BYTES, all_node_inputs, embed_nodes, embed_to_files,
                                     keeps_outputs_on_device, permute_columns, streams_outputs)
from graph_eigenmap.data.sparse import as_model_input
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
    spec = parse_inputs(inputs)
    projection = input_projection(graph, spec.rank)[1] if spec.rank else None
    if not spec.hops:
        return KnownInputs(None, None, 0, projection)
    return KnownInputs(model_graph.features, gcn_degrees(graph.adjacency), spec.hops, projection)



def neural_eigenmap(
    graph,
    *,
    k: int = 64,
    device: str = "auto",
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool | None = None,
    ranks: Ranks | None = None,
    save_backbone: bool | None = None,
    **options,
) -> FitResult | None:
    """Learn the top-k eigenfunctions of D^-1/2 A D^-1/2 with NeuralEF.

    Args:
        graph: a :class:`Graph` or any spec :func:`~graph_eigenmap.data.load_graph` accepts.
        k: number of eigenfunctions (default 64).
        device: ``"auto"`` (GPU when present), ``"cpu"``, ``"cuda"``, ...
        out_dir: folder for checkpoints and outputs (embeddings.npy, backbone.npy,
            metadata.json, model.pt, model.json); None keeps everything in memory.
        resume: continue the checkpoint in ``out_dir``.
        progress: progress bar on/off, on stderr (None: on once the run is expected to take 5 s or more).
        ranks: data-parallel training (:mod:`graph_eigenmap.distributed`): this process's rank; None reads
            ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` (set by ``torchrun``), one process when they are unset.
        save_backbone: write ``backbone.npy`` to ``out_dir``; None (default) writes it unless its float32
            ``[n, h]`` would exceed :data:`~graph_eigenmap.inference.BACKBONE_MAX_BYTES` (papers100M's 111M × 256:
            114 GB), and then says so on stderr. Not written, ``FitResult.backbone`` is None for a streamed fit.
        **options: any other field of :class:`TrainConfig` (steps, features, estimator, ...).

    Returns:
        :class:`FitResult`; None on the ranks other than 0 of a data-parallel run (rank 0 embeds the nodes
        and writes ``out_dir``).
    """
    graph = graph if isinstance(graph, Graph) else load_graph(graph)
    config = _config(k, options)
    device = resolve_device(device)
    started = time.perf_counter()
    ranks = ranks if ranks is not None else ranks_from_environment()
    trained = train(graph, config, device=device, checkpoint_dir=out_dir, resume=resume, progress=progress,
                    ranks=ranks)
    if not ranks.main:
        return None
    device = next(trained.model.parameters()).device  # a rank's own GPU in data-parallel runs
    model_graph = model_input_graph(graph, trained.config.inputs, device) if trained.config.features == "input" else graph
    inputs = all_node_inputs(model_graph, trained.config)
    kernel = trained.kernel if trained.kernel is not None else full_kernel(graph, trained.config, device)
    streamed = out_dir is not None and streams_outputs(graph.num_nodes, trained.model)
    writes_backbone = out_dir is not None and _writes_backbone(save_backbone, graph.num_nodes, trained.model)
    with streamed_outputs(out_dir if streamed else None) as files:
        kept = None  # a streamed fit's outputs, also on the GPU when they fit: measured and sorted without rereading
        if streamed:  # too large to hold: straight into the output files (graph_eigenmap.inference.embed_to_files)
            if keeps_outputs_on_device(graph.num_nodes, trained.model, device):
                kept = torch.empty(graph.num_nodes, trained.model.k, device=device)
            embedding, backbone = embed_to_files(trained.model, inputs, files[0], files[1] if writes_backbone else None,
                                                 keep=kept)
            quotients = rayleigh_quotients_by_columns(kept if kept is not None else embedding, kernel, device)
        else:
            embedding, backbone = embed_nodes(trained.model, inputs)
            quotients = rayleigh_quotients(torch.from_numpy(embedding).to(device), kernel)
        in_training = order_violations(quotients)
        order = sort_outputs(trained.model, quotients, ORDER_TOLERANCE) if trained.config.stop_gradient and \
            trained.config.reorder else None
        if order is not None:  # the recorded last step (graph_eigenmap.reorder): outputs by descending quotient
            embedding, quotients = permute_columns(embedding, order, source=kept), quotients[order]
            trained.eigenvalues = trained.eigenvalues[order]
        metadata = _metadata(graph, trained, quotients, device, time.perf_counter() - started)
        metadata.update(order_violations_in_training=in_training,
                        final_sort=None if order is None else [int(j) for j in order], outputs_streamed=streamed,
                        backbone_saved=writes_backbone, processes=ranks.world_size,
                        peak_gpu_gib=_peak_gpu_gib(device), history=[list(entry) for entry in trained.history])
        _warn_about_order(metadata, trained.config)
        known = _known_inputs(graph, model_graph, trained.config.inputs) if model_graph is not graph else None
        if out_dir is not None:
            save_fit(out_dir, embedding=None if streamed else embedding,
                     backbone=None if streamed or not writes_backbone else backbone,
                     model=trained.model, model_config=model_config(trained.config, model_graph), metadata=metadata,
                     known_inputs=known)
    if streamed:
        embedding = np.load(Path(out_dir) / EMBEDDINGS, mmap_mode="c", allow_pickle=False)
        backbone = np.load(Path(out_dir) / BACKBONE, mmap_mode="c", allow_pickle=False) if writes_backbone else None
    return FitResult(embedding, backbone, trained.eigenvalues, quotients, trained.model, trained.config, metadata, known)


def _writes_backbone(asked: bool | None, num_nodes: int, model) -> bool:
    """Whether a fit writes backbone.npy (see :func:`neural_eigenmap`'s ``save_backbone``)."""
    if asked is not None:
        return asked
    size = 4 * num_nodes * model.backbone.out_features
    if size <= BACKBONE_MAX_BYTES:
        return True
    print(f"backbone.npy not written: its [{num_nodes:,}, {model.backbone.out_features}] float32 would take "
          f"{size / 2**30:.0f} GiB; pass --backbone (save_backbone=True) to write it.", file=sys.stderr)
    return False


def _peak_gpu_gib(device: torch.device) -> float | None:
    """GiB torch allocated at most on ``device`` since training started (:func:`~graph_eigenmap.train.train` resets it)."""
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None


def neural_eigenmap_on_processes(nproc: int, graph_spec, *, load_options: dict | None = None, **fit_options) -> None:
    """:func:`neural_eigenmap` on ``nproc`` new local processes that make each step together (data-parallel).

    Each process loads ``graph_spec`` (:func:`~graph_eigenmap.data.load_graph` with ``load_options``) and
    trains its rank; on a CPU each takes an equal share of the cores. Rank 0 writes ``fit_options["out_dir"]``.

    Raises:
        GraphEigenmapError: a rank failed (its error, in one line).
    """
    import torch.multiprocessing as mp

    try:
        distributed.launch(nproc, _fit_rank, graph_spec, dict(load_options or {}), fit_options)
    except mp.ProcessRaisedException as err:
        last = [line for line in str(err).strip().splitlines() if line.strip()][-1]
        raise GraphEigenmapError(f"a training process failed: {last.split(': ', 1)[-1]}") from None
    except mp.ProcessExitedException as err:
        raise GraphEigenmapError(f"a training process ended without finishing ({err}); the run did not complete.") from None


def _fit_rank(ranks: Ranks, graph_spec, load_options: dict, fit_options: dict) -> None:
    if str(fit_options.get("device", "auto")) == "cpu" or not torch.cuda.is_available():
        from graph_eigenmap.host_memory import keep_freed_host_memory

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // ranks.world_size))
        keep_freed_host_memory()  # as the CLI does for one process: no page faults on each step's activations
    neural_eigenmap(load_graph(graph_spec, **load_options), ranks=ranks, **fit_options)


class NotFittedError(GraphEigenmapError, AttributeError):
    """An estimator used before :meth:`~NeuralEigenmap.fit`.

    A ``ValueError`` and an ``AttributeError``, as scikit-learn's ``sklearn.exceptions.NotFittedError``
    is (that class is not raised here, since scikit-learn is not a runtime dependency: importing it takes
    seconds). ``sklearn.utils.validation.check_is_fitted(model)`` works on a :class:`NeuralEigenmap` and
    raises scikit-learn's own class.
    """


class NeuralEigenmap:
    """Neural eigenfunctions of a graph's normalized adjacency, scikit-learn style.

    An estimator in scikit-learn's conventions without depending on scikit-learn: every hyperparameter
    is an explicit keyword of ``__init__`` stored unchanged, so that :meth:`get_params`,
    :meth:`set_params` and ``sklearn.base.clone`` work; nothing is checked until :meth:`fit`, which
    returns ``self`` and sets the fitted attributes (names ending in ``_``).

    Args:
        k: number of eigenfunctions (default 64); the only positional argument.
        features, width, depth, residual, norm, dropout, activation, kernel, inputs, estimator,
            batch_size, fanout, steps, optimizer, lr, weight_decay, warmup, alpha, reorder,
            stop_gradient, rayleigh_ritz, one_sided_gradient, seed, bf16, compile, checkpoint_every,
            feature_storage: the fields of :class:`~graph_eigenmap.config.TrainConfig`, with its defaults and meaning.
        device: ``"auto"`` (a GPU when torch sees one), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...

    Attributes (after :meth:`fit`):
        embedding_: float32 ``[n, k]``; row i node i of the training graph, column j the j-th
            eigenfunction (descending eigenvalue with stop-gradient).
        backbone_: float32 ``[n, h]`` backbone features.
        eigenvalues_: ``[k]`` eigenvalue estimates, descending with stop-gradient.
        rayleigh_quotients_: ``[k]`` exact Rayleigh quotients of ``embedding_``'s columns.
        n_features_in_: width d of the node features the graph had (0 without features): the
            columns :meth:`transform` expects.
        model_: the network (eval mode); config_: the resolved TrainConfig; metadata_: run facts
            (what ``metadata.json`` holds); known_inputs_: with ``inputs="propagated:K"``, what a new
            node needs from the training graph, else None.

    Example:
        >>> import scipy.sparse as sp
        >>> from sklearn.base import clone
        >>> adjacency = sp.random(500, 500, density=0.02, random_state=0, format="csr")
        >>> model = NeuralEigenmap(8, steps=20, width=32, features="identity")
        >>> model.fit_transform(adjacency).shape             # the adjacency is symmetrized
        (500, 8)
        >>> clone(model).set_params(seed=1).get_params()["seed"]
        1
    """

    def __init__(
        self,
        k: int = 64,
        *,
        features: str = "auto",
        width: int = 256,
        depth: int = 2,
        residual: bool = False,
        norm: str = "layer",
        dropout: float = 0.0,
        activation: str = "gelu",
        kernel: str = "adjacency",
        inputs: str = "auto",
        estimator: str = "auto",
        batch_size: int = 4096,
        fanout: int = 8,
        steps: int = 500,
        optimizer: str = "auto",
        lr: float | None = None,
        weight_decay: float = 0.0,
        warmup: float = 0.05,
        alpha: float = 1.0,
        reorder: bool = True,
        stop_gradient: bool = True,
        rayleigh_ritz: bool = False,
        one_sided_gradient: bool | None = None,
        seed: int = 0,
        bf16: bool = True,
        compile: bool = False,
        checkpoint_every: int = 200,
        feature_storage: str = "auto",
        device: str = "auto",
        **unknown,
    ):
        if unknown:  # a one-line message naming the valid options instead of Python's TypeError
            raise GraphEigenmapError(_unknown_params_message(unknown, self._get_param_names()))
        self.k = k
        self.features = features
        self.width = width
        self.depth = depth
        self.residual = residual
        self.norm = norm
        self.dropout = dropout
        self.activation = activation
        self.kernel = kernel
        self.inputs = inputs
        self.estimator = estimator
        self.batch_size = batch_size
        self.fanout = fanout
        self.steps = steps
        self.optimizer = optimizer
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup = warmup
        self.alpha = alpha
        self.reorder = reorder
        self.stop_gradient = stop_gradient
        self.rayleigh_ritz = rayleigh_ritz
        self.one_sided_gradient = one_sided_gradient
        self.seed = seed
        self.bf16 = bf16
        self.compile = compile
        self.checkpoint_every = checkpoint_every
        self.feature_storage = feature_storage
        self.device = device

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The hyperparameters: ``__init__``'s named keywords, in signature order."""
        signature = inspect.signature(cls.__init__)
        return [p.name for p in signature.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD]

    def get_params(self, deep: bool = True) -> dict:
        """The hyperparameters as ``{name: value}`` (``deep`` is accepted for scikit-learn; nothing is nested)."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params) -> "NeuralEigenmap":
        """Set hyperparameters by name and return ``self``; the next :meth:`fit` uses them.

        Raises:
            GraphEigenmapError: a name that is not a hyperparameter (the message lists the valid ones).
        """
        valid = self._get_param_names()
        unknown = {name: value for name, value in params.items() if name not in valid}
        if unknown:
            raise GraphEigenmapError(_unknown_params_message(unknown, valid))
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = [(name, value) for name, value in self.get_params().items() if
                   not (value is defaults[name] or (type(value) is type(defaults[name]) and value == defaults[name]))]
        return f"{type(self).__name__}({', '.join(f'{name}={value!r}' for name, value in changed)})"

    def fit(self, graph, y=None, *, features=None, out_dir: str | Path | None = None, resume: bool = False,
            progress: bool | None = None) -> "NeuralEigenmap":
        """Learn the top-k eigenfunctions of ``graph`` and return ``self``.

        Args:
            graph: the graph, in any of these forms: a :class:`~graph_eigenmap.data.Graph`; a
                ``torch_geometric.data.Data`` (``edge_index``, optional ``x`` and ``edge_weight``);
                an ``[n, n]`` scipy sparse adjacency (matrix or array; symmetrized, diagonal dropped;
                non-unit entries are edge weights), with its node features as ``features=``; or a
                dataset spec :func:`~graph_eigenmap.data.load_graph` accepts (``"csbm"``, a path, ...).
            y: ignored; there so that scikit-learn's ``Pipeline`` can call ``fit(X, y)``.
            features: only with a scipy adjacency: ``[n, d]`` node features (row i node i), or None
                for a graph without features (then ``features="auto"`` learns one vector per node).
            out_dir: folder for checkpoints and outputs (see :func:`neural_eigenmap`); None keeps
                everything in memory.
            resume: continue the checkpoint in ``out_dir``.
            progress: progress bar on/off, on stderr (None: on once the run is expected to take 5 s or more).

        Raises:
            GraphEigenmapError: a graph in none of those forms, node features given as ``y`` or beside
                a Graph/Data, or a bad hyperparameter (checked here, not in ``__init__``).
        """
        graph = _as_graph(graph, y, features)
        result = neural_eigenmap(graph, k=self.k, device=self.device, out_dir=out_dir, resume=resume,
                                 progress=progress, ranks=Ranks(), **self._train_options())  # one process
        self.embedding_, self.backbone_ = result.embedding, result.backbone
        self.eigenvalues_, self.rayleigh_quotients_ = result.eigenvalues, result.rayleigh_quotients
        self.model_, self.config_, self.metadata_ = result.model, result.config, result.metadata
        self.known_inputs_ = result.known_inputs
        self.n_features_in_ = graph.num_features
        return self

    def fit_transform(self, graph, y=None, **fit_params) -> np.ndarray:
        """:meth:`fit` (same arguments), then return ``embedding_``: float32 ``[n, k]``, row i node i."""
        return self.fit(graph, y, **fit_params).embedding_

    def transform(self, features, edges=None) -> np.ndarray:
        """Embed nodes the model never saw: ``[m, d]`` features -> float32 ``[m, k]``.

        Args:
            features: ``[m, d]`` the new nodes' features (d = ``n_features_in_``).
            edges: with ``inputs="propagated:K"`` or ``"svd:D+propagated:K"`` (required then): ``[2, E]`` int, row 0 the new node
                (0..m-1), row 1 the training-graph node it links to. Ignored otherwise.

        Raises:
            NotFittedError: before :meth:`fit`.
        """
        self._check_fitted()
        if self.known_inputs_ is not None:
            if self.known_inputs_.needs_edges and edges is None:
                raise GraphEigenmapError(f"this model reads {self.config_.inputs} inputs: pass the new nodes' edges to "
                                         "known nodes, transform(features, edges=[2, E] array).")
            features = self.known_inputs_.new_node_inputs(features, edges)
        return embed_features(self.model_, features, self.config_.features)[0]

    def _train_options(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(TrainConfig) if f.name != "k"}

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate "
                                 "arguments before using this estimator.")

    def __sklearn_is_fitted__(self) -> bool:
        """For ``sklearn.utils.validation.check_is_fitted``."""
        return hasattr(self, "model_")

    def __sklearn_tags__(self):
        """scikit-learn >= 1.6 reads an estimator's tags (``get_tags``); only scikit-learn calls this."""
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    transformer_tags=TransformerTags(preserves_dtype=[]),
                    input_tags=InputTags(two_d_array=False, sparse=True, pairwise=True))


def _unknown_params_message(unknown: dict, valid: list[str]) -> str:
    hints = [f"{close[0]!r} for {name!r}" for name in unknown
             if (close := difflib.get_close_matches(name, valid, n=1))]
    hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
    return f"unknown option(s) {sorted(unknown)} for NeuralEigenmap{hint}; valid ones: {valid}."


def _as_graph(graph, y, features) -> Graph:
    """What :meth:`NeuralEigenmap.fit` accepts, as a :class:`Graph` (see its docstring)."""
    if y is not None and np.ndim(y) == 2:
        raise GraphEigenmapError("fit's second argument is y, ignored as in scikit-learn; pass node features by "
                                 "name: fit(adjacency, features=X).")
    if sp.issparse(graph):
        if sp.issparse(features):
            features = features.toarray()
        return from_scipy(graph, features=None if features is None else np.asarray(features))
    if features is not None:
        raise GraphEigenmapError(f"features= goes with a scipy sparse adjacency; a {type(graph).__name__} carries its "
                                 "own node features (Graph.features, Data.x): drop features=.")
    if isinstance(graph, (Graph, str, Path)) or hasattr(graph, "edge_index"):
        return load_graph(graph)
    if hasattr(graph, "shape"):
        raise GraphEigenmapError(f"fit got a dense {type(graph).__name__} of shape {tuple(graph.shape)}; pass the "
                                 "adjacency as scipy sparse, fit(scipy.sparse.csr_array(A), features=X).")
    raise GraphEigenmapError(f"fit cannot read a {type(graph).__name__}; give a Graph, a torch_geometric Data, a "
                             "scipy sparse adjacency (features=X for node features) or a dataset spec such as 'csbm'.")


def embed_features(model: NeuralEigenfunctions, features, feature_mode: str,
                   with_backbone: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """Check ``[m, d]`` features (dense, or scipy sparse) against the model and embed them (eval mode, float32)."""
    if feature_mode == "identity":
        raise GraphEigenmapError("this model was fitted with identity features (one free vector per training "
                                 "node); it cannot embed new nodes. Refit with node features to embed new nodes.")
    x = sp.csr_matrix(features, dtype=np.float32) if sp.issparse(features) else np.asarray(features)
    expected = model.backbone.in_features
    if x.ndim != 2 or x.shape[1] != expected:
        raise GraphEigenmapError(f"features must have shape [m, {expected}] (the width the model was fitted on); got {list(x.shape)}.")
    if not np.isfinite(x.data if sp.issparse(x) else x).all():
        raise GraphEigenmapError("features hold NaN or inf; impute or drop those rows first.")
    return embed_nodes(model, as_model_input(x), with_backbone=with_backbone)


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
