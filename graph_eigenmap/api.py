"""The two-tier Python API: :func:`neural_eigenmap` for one-off use, :class:`NeuralEigenmap` for the life cycle.

Both take the training options of :class:`~graph_eigenmap.config.TrainConfig` (declared once there) and share one
implementation: :func:`~graph_eigenmap.train.train`, then :func:`~graph_eigenmap.fit_outputs.finish_fit`.

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

import difflib
import gc
import inspect
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
import torch.multiprocessing as mp

from graph_eigenmap import distributed
from graph_eigenmap.config import TrainConfig, defaults
from graph_eigenmap.data import Graph, from_scipy, load_graph
from graph_eigenmap.distributed import Ranks, ranks_from_environment
from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.files import TEMPORARY_SUFFIX
from graph_eigenmap.fit_outputs import FitResult, finish_fit
from graph_eigenmap.host_memory import keep_freed_host_memory, mark_phase, release_freed_host_memory
from graph_eigenmap.inference import embed_features
from graph_eigenmap.representation import node_representation
from graph_eigenmap.shared_graph import read_shared_graph, share_graph
from graph_eigenmap.train import train
from graph_eigenmap.transfer import resolve_device


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
    if not isinstance(graph, Graph):
        mark_phase("load")
        graph = load_graph(graph)
    config = _config(k, options)
    device = resolve_device(device)
    started = time.perf_counter()
    ranks = ranks if ranks is not None else ranks_from_environment()
    inputs_file = None if out_dir is None else _inputs_file(Path(out_dir))
    try:
        trained = train(graph, config, device=device, checkpoint_dir=out_dir, resume=resume, progress=progress,
                        ranks=ranks, inputs_file=inputs_file)
        result = None if not ranks.main else finish_fit(graph, trained, out_dir=out_dir, save_backbone=save_backbone,
                                                         ranks=ranks, started=started)
    finally:  # known_inputs.npy, where written, is a link to it
        if inputs_file is not None:
            inputs_file.unlink(missing_ok=True)
    mark_phase("done")
    return result


def _inputs_file(out_dir: Path) -> Path:
    """A new name in ``out_dir`` (created) for the fit's memory-mapped model inputs, removed when the fit ends."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir / f".inputs.{os.getpid()}.{secrets.token_hex(4)}{TEMPORARY_SUFFIX}"


def neural_eigenmap_on_processes(nproc: int, graph_spec, *, load_options: dict | None = None, **fit_options) -> None:
    """:func:`neural_eigenmap` on ``nproc`` new local processes that make each step together (data-parallel).

    This process loads ``graph_spec`` (:func:`~graph_eigenmap.data.load_graph` with ``load_options``; or a
    :class:`Graph`), computes the model's inputs and writes both to a folder in ``out_dir``, then frees them and
    starts the processes, which map those files read-only: one copy of the graph on the host, not one per process
    (:mod:`graph_eigenmap.shared_graph`). On a CPU each process takes an equal share of the cores. Rank 0 writes
    ``fit_options["out_dir"]``; the shared folder is removed at the end.

    Raises:
        GraphEigenmapError: a rank failed (its error, in one line).
    """
    out_dir = fit_options.get("out_dir")
    if out_dir is None:
        folder = Path(tempfile.mkdtemp(prefix="graph_eigenmap-")) / "shared"
    else:
        folder = Path(out_dir) / f".shared-graph.{os.getpid()}.{secrets.token_hex(4)}{TEMPORARY_SUFFIX}"
        folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        rank_options = share_graph(graph_spec, dict(load_options or {}), fit_options, folder)
        gc.collect()  # the launcher's copy of the graph is gone before the ranks map theirs
        release_freed_host_memory()
        distributed.launch(nproc, _fit_rank, folder, rank_options)
    except mp.ProcessRaisedException as err:
        last = [line for line in str(err).strip().splitlines() if line.strip()][-1]
        raise GraphEigenmapError(f"a training process failed: {last.split(': ', 1)[-1]}") from None
    except mp.ProcessExitedException as err:
        raise GraphEigenmapError(f"a training process ended without finishing ({err}); "
                                 "the run did not complete.") from None
    finally:
        shutil.rmtree(folder if out_dir is not None else folder.parent, ignore_errors=True)


def _fit_rank(ranks: Ranks, folder: Path, fit_options: dict) -> None:
    if str(fit_options.get("device", "auto")) == "cpu" or not torch.cuda.is_available():
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // ranks.world_size))
        keep_freed_host_memory()  # as the CLI does for one process: no page faults on each step's activations
    mark_phase("map")
    neural_eigenmap(read_shared_graph(folder), ranks=ranks, **fit_options)


def _config(k: int, options: dict) -> TrainConfig:
    unknown = sorted(set(options) - set(defaults()))
    if unknown:
        raise GraphEigenmapError(f"unknown option(s) {unknown}; valid ones: {sorted(set(defaults()) - {'k'})}.")
    return TrainConfig(k=k, **options)


class NotFittedError(GraphEigenmapError, AttributeError):
    """An estimator used before :meth:`~NeuralEigenmap.fit`.

    A ``ValueError`` and an ``AttributeError``, as scikit-learn's ``sklearn.exceptions.NotFittedError``
    is (that class is not raised here, since scikit-learn is not a runtime dependency: importing it takes
    seconds). ``sklearn.utils.validation.check_is_fitted(model)`` works on a :class:`NeuralEigenmap` and
    raises scikit-learn's own class.
    """


class NeuralEigenmap:
    """Neural eigenfunctions of a graph's normalized adjacency, scikit-learn style.

    An estimator in scikit-learn's conventions without depending on scikit-learn: its hyperparameters are ``k``
    (the only positional one), every other field of :class:`~graph_eigenmap.config.TrainConfig` as a keyword with
    the same default and meaning, and ``device``; ``__init__``'s signature is made from that declaration, so
    :meth:`get_params`, :meth:`set_params` and ``sklearn.base.clone`` see them all. They are stored unchanged and
    checked in :meth:`fit`, which returns ``self`` and sets the fitted attributes (names ending in ``_``).

    Args:
        k: number of eigenfunctions (default 64).
        **params: the other fields of :class:`~graph_eigenmap.config.TrainConfig` (``help(TrainConfig)``), and
            ``device``: ``"auto"`` (a GPU when torch sees one), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...

    Attributes (after :meth:`fit`):
        embedding_: float32 ``[n, k]``; row i node i of the training graph, column j the j-th
            eigenfunction (descending eigenvalue with stop-gradient).
        backbone_: float32 ``[n, h]`` backbone features.
        eigenvalues_: ``[k]`` eigenvalue estimates, descending with stop-gradient.
        rayleigh_quotients_: ``[k]`` exact Rayleigh quotients of ``embedding_``'s columns.
        n_features_in_: width d of the node features the graph had (0 without features): the
            columns :meth:`transform` expects.
        representation_: the representation :meth:`transform` and :meth:`fit_transform` return (a name of
            :data:`graph_eigenmap.registry.REPRESENTATIONS`): the ``representation`` parameter, or for ``"auto"``
            the fit's label-free choice (:mod:`graph_eigenmap.recipe`; metadata_["representation"] says why).
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

    _defaults = dict(defaults(), device="auto")

    def __init__(self, k: int = 64, **params):
        unknown = {name: value for name, value in params.items() if name not in self._defaults}
        if unknown:  # a one-line message naming the valid options instead of Python's TypeError
            raise GraphEigenmapError(unknown_params_message(unknown, self._get_param_names(), type(self).__name__))
        self.k = k
        for name, default in self._defaults.items():
            if name != "k":
                setattr(self, name, params.get(name, default))

    @classmethod
    def _get_param_names(cls) -> list[str]:
        """The hyperparameters: ``__init__``'s named keywords, in signature order."""
        return [name for name in inspect.signature(cls.__init__).parameters if name != "self"]

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
            raise GraphEigenmapError(unknown_params_message(unknown, valid, type(self).__name__))
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        changed = [(name, value) for name, value in self.get_params().items()
                   if not _same(value, self._defaults[name])]
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
        options = {name: getattr(self, name) for name in defaults() if name != "k"}
        result = neural_eigenmap(graph, k=self.k, device=self.device, out_dir=out_dir, resume=resume,
                                 progress=progress, ranks=Ranks(), **options)  # one process
        self.embedding_, self.backbone_ = result.embedding, result.backbone
        self.eigenvalues_, self.rayleigh_quotients_ = result.eigenvalues, result.rayleigh_quotients
        self.model_, self.config_, self.metadata_ = result.model, result.config, result.metadata
        self.known_inputs_ = result.known_inputs
        self.n_features_in_ = graph.num_features
        self.representation_ = result.config.representation
        return self

    def fit_transform(self, graph, y=None, **fit_params) -> np.ndarray:
        """:meth:`fit` (same arguments), then return the training nodes' recommended representation
        (``representation_``): float32 ``[n, w]``, row i node i (``embedding_`` itself for ``"embedding"``)."""
        graph = _as_graph(graph, y, fit_params.pop("features", None))
        self.fit(graph, **fit_params)
        return node_representation(self.representation_, embedding=self.embedding_, backbone=self.backbone_,
                                   features=graph.features)[0]

    def transform(self, features, edges=None) -> np.ndarray:
        """Nodes the model never saw, in the recommended representation: ``[m, d]`` features -> float32 ``[m, w]``.

        The representation is ``representation_`` (set it with the ``representation`` parameter; by default chosen
        from the graph, :mod:`graph_eigenmap.recipe`): the ``[m, h]`` backbone features, the ``[m, k]``
        eigenfunctions, or either beside the ``[m, d]`` features themselves.

        Args:
            features: ``[m, d]`` the new nodes' features (d = ``n_features_in_``).
            edges: with ``inputs="propagated:K"`` or ``"svd:D+propagated:K"`` (required then): ``[2, E]`` int, row 0
                the new node (0..m-1), row 1 the training-graph node it links to. Ignored otherwise.

        Raises:
            NotFittedError: before :meth:`fit`.
        """
        self._check_fitted()
        model_inputs = features
        if self.known_inputs_ is not None:
            if self.known_inputs_.needs_edges and edges is None:
                raise GraphEigenmapError(f"this model reads {self.config_.inputs} inputs: pass the new nodes' edges to "
                                         "known nodes, transform(features, edges=[2, E] array).")
            model_inputs = self.known_inputs_.new_node_inputs(features, edges)
        embedding, backbone = embed_features(self.model_, model_inputs, self.config_.features, with_backbone=True)
        return node_representation(self.representation_, embedding=embedding, backbone=backbone, features=features)[0]

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate "
                                 "arguments before using this estimator.")

    def __sklearn_is_fitted__(self) -> bool:
        """For ``sklearn.utils.validation.check_is_fitted``."""
        return hasattr(self, "model_")

    def __sklearn_tags__(self):
        """scikit-learn >= 1.6 reads an estimator's tags (``get_tags``); only scikit-learn calls this."""
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags  # deferred: only scikit-learn calls this

        return Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    transformer_tags=TransformerTags(preserves_dtype=[]),
                    input_tags=InputTags(two_d_array=False, sparse=True, pairwise=True))


def _estimator_signature() -> inspect.Signature:
    """``(self, k=64, *, <every other TrainConfig field>=<its default>, device="auto")``: the estimator's
    hyperparameters as scikit-learn reads them, made from the one declaration of the options."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD),
                  inspect.Parameter("k", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=defaults()["k"],
                                    annotation=int)]
    parameters += [inspect.Parameter(name, keyword, default=default)
                   for name, default in defaults().items() if name != "k"]
    parameters.append(inspect.Parameter("device", keyword, default="auto", annotation=str))
    return inspect.Signature(parameters)


NeuralEigenmap.__init__.__signature__ = _estimator_signature()


def _same(value, default) -> bool:
    """Whether a hyperparameter still has its default (``1`` is not ``True``; ``1.0`` is ``1.0``)."""
    return value is default or (type(value) is type(default) and value == default)


def unknown_params_message(unknown: dict, valid: list[str], owner: str = "NeuralEigenmap") -> str:
    """One line naming unknown options, the closest valid names, and every valid one."""
    hints = [f"{close[0]!r} for {name!r}" for name in unknown
             if (close := difflib.get_close_matches(name, valid, n=1))]
    hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
    return f"unknown option(s) {sorted(unknown)} for {owner}{hint}; valid ones: {valid}."


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
