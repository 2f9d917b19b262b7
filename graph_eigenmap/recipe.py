"""The automatic choices: what ``"auto"`` and None in a :class:`~graph_eigenmap.config.TrainConfig` mean for a
given graph and device, and the checks that need the graph (:func:`resolve`).

The rules, each measured where the option's help says:

* ``features="auto"``: an MLP on the node features when the graph has them, else the identity table.
* ``inputs="auto"``: :data:`DEFAULT_PROPAGATED_INPUTS` for an MLP on features narrower than
  :data:`WIDE_FEATURES`, :data:`DEFAULT_WIDE_INPUTS` for wider ones, ``"features"`` for the identity table, for
  narrower features kept sparse (their propagation would be dense) and where the K + 1 propagated copies would not
  fit in a quarter of the host's available memory (papers100M's: 227 GB); and graph-free (the same without the
  propagation: ``"features"``, or ``"svd:100"`` for wide features) where the features mislead
  (:func:`features_mislead`): propagating them would average away what a node knows.
* ``representation="auto"``: ``"embedding+features"`` (the eigenfunctions beside the node's own features) where the
  features mislead, else ``"backbone"``. Label-free; ``graph-eigenmap evaluate --model`` then chooses among every
  registered representation on valid labels (:mod:`graph_eigenmap.evaluation.recommend`).
* ``estimator="auto"``: when a full-graph step fits in half the free device memory, ``"rows"`` for an MLP on a
  graph of at least 2 × batch_size nodes (exact ĀΨ, the gradient through batch_size rows: on coauthor_cs, 2 CPU
  cores, the default fit trains in 36-39 s against 51 s with ``"full"`` at the same probe accuracy;
  benchmarks/results/scale/cpu_default_fit.md) and ``"full"`` otherwise; else ``"sampled"``.
* ``optimizer="auto"``: AdamW for an MLP, SGD for the identity table; ``lr=None``: the optimizer's default.
* ``one_sided_gradient=None``: on, except for the identity table with an estimator that does not hold the kernel,
  where the two-sided gradient also moves the rows of the neighbours a step reads.
* ``feature_storage="auto"``: float32 for the full and rows estimators, else by the device's free memory
  (:func:`graph_eigenmap.feature_store.resolve_feature_storage`).

An option set away from its default that the resolved run does not read (``fanout`` without the sampled
estimator, ``batch_size`` with the full one, the MLP's shape for the identity table) is said once, as an
:class:`~graph_eigenmap.errors.InputWarning` (:func:`warn_ignored`).
"""

from __future__ import annotations

import dataclasses
import warnings

import torch

from graph_eigenmap.config import TrainConfig, defaults, validate_options
from graph_eigenmap.data.graph import Derived, Graph, derived
from graph_eigenmap.data.sparse import is_sparse
from graph_eigenmap.errors import GraphEigenmapError, InputWarning
from graph_eigenmap.feature_store import resolve_feature_storage
from graph_eigenmap.host_memory import host_available_memory
from graph_eigenmap.kernel import feature_smoothness
from graph_eigenmap.registry import ESTIMATORS, KERNELS, OPTIMIZERS, InputSpec, parse_inputs

DEFAULT_PROPAGATED_INPUTS = "propagated:3"
"""What ``inputs="auto"`` means for an MLP on node features narrower than :data:`WIDE_FEATURES`. K = 3 was chosen on
valid accuracy across the five shared graphs in both layouts (benchmarks/results/quality/representation_sweep/: 64
outputs, 100 % labels, valid 82.2 % against 79.1 % for ``"features"``)."""
SMOOTH_FEATURES_MIN = 0.015
"""Features whose main directions are less smooth on the graph than this
(:func:`graph_eigenmap.kernel.feature_smoothness`)
mislead: the fit reads them graph-free and recommends them beside the eigenfunctions. Label-free, set between the
shared graphs' figures (``benchmarks/results/feature_smoothness.md``): blogcatalog 0.004-0.007 in both layouts,
where GCN falls below a probe on the features, against 0.10-0.57 on the other six real graphs (uai included, whose
labels are not smooth though its features are: there only labels tell) and 0.02-0.06 on the synthetic CSBM presets,
whose many noisy columns hide a smooth signal."""
WIDE_FEATURES = 256
"""From this many feature columns on, ``inputs="auto"`` reduces them first (:data:`DEFAULT_WIDE_INPUTS`)."""
DEFAULT_WIDE_INPUTS = "svd:100+" + DEFAULT_PROPAGATED_INPUTS
"""``auto`` for features of :data:`WIDE_FEATURES` columns or more (the raw bag of words of the shared `.npz` graphs,
745-6,805 columns). Chosen on valid: over those five graphs, the stop-gradient eigenfunctions probe at 83.1 % mean
valid accuracy with it against 80.0 % with ``propagated:3`` of the raw columns (100 % labels; 68.8 against 66.5 % at
10 %; ``benchmarks/results/quality/compare_current/npz``)."""


def resolve(config: TrainConfig, graph: Graph, device: torch.device) -> TrainConfig:
    """``config`` checked against ``graph`` with every ``"auto"`` and None choice made (see the module).

    Raises:
        GraphEigenmapError: a field outside its constraint, or options that do not go together on this graph.
    """
    validate_options(config, num_nodes=graph.num_nodes)
    features = config.features if config.features != "auto" else "input" if graph.features is not None else "identity"
    if features == "input" and graph.features is None:
        raise GraphEigenmapError(f"{graph.name} has no node features; use `features='identity'`.")
    inputs = config.inputs if config.inputs != "auto" else auto_inputs(graph) if features == "input" else InputSpec()
    _check_inputs(config, graph, features, inputs)
    optimizer = config.optimizer if config.optimizer != "auto" else "sgd" if features == "identity" else "adamw"
    lr = config.lr if config.lr is not None else OPTIMIZERS[optimizer].lr
    resolved = dataclasses.replace(config, features=features, inputs=inputs, optimizer=optimizer, lr=lr)
    if config.estimator == "auto":
        resolved = dataclasses.replace(resolved, estimator=auto_estimator(resolved, graph, device))
    estimator = ESTIMATORS[resolved.estimator]
    if config.one_sided_gradient is None:
        one_sided = not resolved.identity or estimator.holds_kernel or KERNELS[config.kernel].nontrivial
        resolved = dataclasses.replace(resolved, one_sided_gradient=one_sided)
    resolved = dataclasses.replace(resolved, feature_storage=_feature_storage(resolved, graph, device),
                                   representation=auto_representation(resolved, graph))
    _check_combinations(resolved)
    warn_ignored(config, resolved)
    return resolved


MLP_OPTIONS = ("width", "depth", "residual", "norm", "dropout", "activation")
"""The options of the MLP, which the identity table (``features="identity"``) does not have."""


def warn_ignored(config: TrainConfig, resolved: TrainConfig) -> None:
    """One InputWarning per option of ``config`` set away from its default that the ``resolved`` run does not read."""
    given = [name for name, default in defaults().items() if getattr(config, name) != default]
    estimator = ESTIMATORS[resolved.estimator]
    chosen = " (chosen by `estimator='auto'`)" if config.estimator == "auto" else ""
    for name in given:
        if name in ("batch_size", "fanout") and name not in estimator.reads:
            readers = [choice.name for choice in ESTIMATORS if name in choice.reads]
            only = (f"only the {readers[0]} estimator reads it" if len(readers) == 1
                    else f"the {', '.join(readers)} estimators read it")
            warnings.warn(f"`{name}` is ignored: the {resolved.estimator} estimator{chosen} does not read it, "
                          f"{only}; drop it, or choose `estimator='{readers[0]}'`.", InputWarning, stacklevel=3)
        elif name in MLP_OPTIONS and resolved.identity:
            why = "" if config.identity else ", as the graph has no node features"
            warnings.warn(f"`{name}` is ignored: this run learns a free vector per node (`features='identity'`{why}), "
                          "which has no MLP; drop it.", InputWarning, stacklevel=3)


def graph_smoothness(graph: Graph) -> float | None:
    """:func:`~graph_eigenmap.kernel.feature_smoothness` of ``graph``, computed once per graph and features."""
    return derived(graph, "feature_smoothness", (graph.features, graph.adjacency), lambda: feature_smoothness(graph))


def remember_smoothness(graph: Graph, value: float) -> None:
    """Give ``graph`` its :func:`graph_smoothness` computed elsewhere (by the launcher of a data-parallel fit)."""
    graph.extra["feature_smoothness"] = Derived((graph.features, graph.adjacency), value)


def features_mislead(graph: Graph) -> bool:
    """Whether the node features are too little smooth on the graph (below :data:`SMOOTH_FEATURES_MIN`) for inputs
    propagated over it: a node's neighbours then say little about its own features."""
    smoothness = graph_smoothness(graph)
    return smoothness is not None and smoothness < SMOOTH_FEATURES_MIN


def auto_representation(config: TrainConfig, graph: Graph) -> str:
    """``representation="auto"``: the eigenfunctions beside the features where those mislead, else the backbone."""
    if config.representation != "auto":
        return config.representation
    return "embedding+features" if not config.identity and features_mislead(graph) else "backbone"


def explain(config: TrainConfig, graph: Graph) -> dict:
    """The label-free figures behind a resolved configuration's automatic choices, for metadata.json."""
    return dict(feature_smoothness=None if graph.features is None else round(graph_smoothness(graph), 6),
                smooth_features_min=SMOOTH_FEATURES_MIN, features_mislead=features_mislead(graph),
                inputs=str(config.inputs), representation=config.representation)


def _check_inputs(config: TrainConfig, graph: Graph, features: str, inputs: InputSpec) -> None:
    """What ``inputs`` asks of the features: an MLP on them, enough columns for the SVD, dense ones to propagate."""
    if features == "identity" and inputs.name != "features":
        raise GraphEigenmapError(f"`inputs={inputs}` needs node features; drop it for `features='identity'`.")
    if inputs.rank and inputs.rank >= min(graph.num_nodes, graph.num_features):
        raise GraphEigenmapError(f"`inputs={inputs}`: the SVD keeps fewer columns than {graph.name}'s "
                                 f"{graph.num_features:,} features (and nodes); choose D < "
                                 f"{min(graph.num_nodes, graph.num_features):,}.")
    sparse = features == "input" and is_sparse(graph.features)
    if sparse and inputs.hops and not inputs.rank:
        raise GraphEigenmapError(f"{graph.name}'s features are sparse and kept sparse because their dense matrix "
                                 f"({graph.num_nodes:,} x {graph.num_features:,}) would be too large, and propagated "
                                 "inputs [X, ÂX, ...] would be dense; use `inputs='features'` or reduce them first, "
                                 "`inputs='svd:100+propagated:3'`.")
    if sparse and config.compile:
        raise GraphEigenmapError("`compile` does not take sparse features (torch.compile has no sparse CSR inputs); "
                                 "use `compile=False`.")


def _feature_storage(config: TrainConfig, graph: Graph, device: torch.device) -> str:
    """``feature_storage`` resolved: float32 where every node's inputs are read each step, else by free memory."""
    if config.feature_storage != "auto" or config.identity:
        return config.feature_storage
    if ESTIMATORS[config.estimator].holds_kernel:
        return "float32"
    return resolve_feature_storage("auto", graph.features, device,
                                   free_memory(device) if device.type == "cuda" else None)


def _check_combinations(config: TrainConfig) -> None:
    """Options that are valid alone but not together."""
    estimator = ESTIMATORS[config.estimator]
    if config.rayleigh_ritz and config.identity:
        raise GraphEigenmapError("`rayleigh_ritz` needs an MLP (node features); "
                                 "the identity table has no output layer.")
    if KERNELS[config.kernel].nontrivial and not estimator.holds_kernel and not config.one_sided_gradient:
        raise GraphEigenmapError("`kernel='nontrivial'` with a sampled or block estimator needs the one-sided "
                                 "gradient; use `one_sided_gradient=True`.")
    if config.feature_storage == "host" and estimator.holds_kernel:
        raise GraphEigenmapError(f"`feature_storage='host'` needs a sampling estimator (the {config.estimator} "
                                 "estimator reads every node's inputs each step); "
                                 "use `estimator='sampled'` or 'block'.")
    if estimator.one_sided_only and not config.one_sided_gradient:
        raise GraphEigenmapError(f"the {config.estimator} estimator needs the one-sided gradient; use "
                                 "`one_sided_gradient=True` or `estimator='full'`.")


def auto_estimator(config: TrainConfig, graph: Graph, device: torch.device) -> str:
    """``"rows"`` or ``"full"`` when a full-graph step needs under half the free device memory, else ``"sampled"``."""
    n = graph.num_nodes
    if config.identity:
        per_node = config.k * 4 * 8  # table, gradient, two Adam moments, outputs and their gradients
    else:
        spec = parse_inputs(config.inputs)
        width_in = spec.width(graph.num_features)
        if is_sparse(graph.features) and not spec.rank:
            # kept sparse: 12 bytes per stored entry (value and int64 column)
            width_in = 3 * graph.features.nnz / max(1, n)
        per_node = 4 * (width_in + 8 * config.width * config.depth + 6 * config.k)
    needed = n * per_node + graph.adjacency.nnz * 24
    if needed >= 0.5 * free_memory(device):
        return "sampled"
    rows = not config.identity and n >= 2 * config.batch_size and config.one_sided_gradient is not False
    return "rows" if rows else "full"


def auto_inputs(graph: Graph) -> InputSpec:
    """``inputs="auto"`` for a feature MLP (see the module)."""
    wide = graph.num_features >= WIDE_FEATURES and graph.num_nodes > parse_inputs(DEFAULT_WIDE_INPUTS).rank
    inputs = parse_inputs(DEFAULT_WIDE_INPUTS if wide else DEFAULT_PROPAGATED_INPUTS)
    if is_sparse(graph.features) and not inputs.rank:
        return InputSpec()
    if not propagated_inputs_fit(graph, inputs):
        return InputSpec()
    return InputSpec(rank=inputs.rank) if features_mislead(graph) else inputs


def propagated_inputs_fit(graph: Graph, inputs: InputSpec | str = DEFAULT_PROPAGATED_INPUTS) -> bool:
    """Whether the float32 ``[n, (K + 1) D]`` model inputs of ``inputs`` fit in a quarter of host memory."""
    return 4.0 * graph.num_nodes * parse_inputs(inputs).width(graph.num_features) <= 0.25 * host_available_memory()


def free_memory(device: torch.device) -> int:
    """Bytes a run on ``device`` may still allocate: the GPU's free memory, or the host's available memory."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free
    return host_available_memory()
