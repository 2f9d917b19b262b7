"""What determines a training run: :class:`TrainConfig`, its checks and its ``"auto"`` choices."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from graph_eigenmap.data.graph import Graph
from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.feature_store import FEATURE_STORAGES, resolve_feature_storage
from graph_eigenmap.inputs import parse_inputs
from graph_eigenmap.data.sparse import is_sparse

KERNELS = ("adjacency", "gcn", "shifted", "nontrivial")
DEFAULT_LR = {"adamw": 3e-3, "lars": 0.3, "sgd": 0.2}
DEFAULT_PROPAGATED_INPUTS = "propagated:3"
"""What ``inputs="auto"`` means for an MLP on node features narrower than :data:`WIDE_FEATURES` (see :class:`TrainConfig`)."""
WIDE_FEATURES = 256
"""From this many feature columns on, ``inputs="auto"`` reduces them first (:data:`DEFAULT_WIDE_INPUTS`)."""
DEFAULT_WIDE_INPUTS = "svd:100+" + DEFAULT_PROPAGATED_INPUTS
"""``auto`` for features of :data:`WIDE_FEATURES` columns or more (the raw bag of words of the shared `.npz` graphs,
745-6,805 columns). Chosen on valid: over those five graphs, the stop-gradient eigenfunctions probe at 83.1 % mean
valid accuracy with it against 80.0 % with ``propagated:3`` of the raw columns (100 % labels; 68.8 against 66.5 % at
10 %; ``benchmarks/results/compare_current/npz``)."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run.

    Attributes:
        k: number of eigenfunctions (default 64).
        features: ``"auto"`` (node features when the graph has them, else identity), ``"input"``
            (the node features, through an MLP) or ``"identity"`` (a free table per node).
        width, depth, residual, norm, dropout, activation: the MLP (default 256 wide, 2 layers,
            no skips, LayerNorm, no dropout, GELU). With ``inputs="features"`` on graphs of thousands to
            tens of thousands of nodes, width 1024 probes better on valid
            (``benchmarks/results/capacity_sweep``); the large-graph figures are measured at 256 and 512.
        inputs: what the MLP reads: ``"auto"`` (default: ``"propagated:3"`` for an MLP on node
            features, ``"svd:100+propagated:3"`` for features of 256 columns or more, ``"features"`` for the
            identity table), ``"features"`` (the node's own
            features: a new node needs nothing else), ``"propagated:K"`` ([X, ÂX, …, Â^K X], see
            :mod:`graph_eigenmap.inputs`; a new node then needs its edges to known nodes), ``"svd:D"`` or
            ``"svd:D+propagated:K"`` (the features first reduced to D columns by truncated SVD, X V; V is kept
            with the fit, so a new node's features are reduced alike; for wide raw bag-of-words features). K = 3
            was chosen on valid accuracy across the five shared graphs in both layouts
            (benchmarks/results/representation_sweep/: 64 outputs, 100 % labels, valid 82.2 %
            against 79.1 % for ``"features"``); the SVD for wide features on the raw `.npz` graphs
            (:data:`DEFAULT_WIDE_INPUTS`). Narrower sparse features kept sparse (too large to densify,
            :mod:`graph_eigenmap.data.sparse`) take ``"features"``: their propagation would be dense;
            so do features whose K + 1 propagated copies would not fit in a quarter of the host's
            available memory (papers100M's: 227 GB).
        kernel: ``"adjacency"`` (D^-1/2 A D^-1/2, default), ``"gcn"`` (with self-loops),
            ``"shifted"`` ((I + Ā)/2) or ``"nontrivial"`` (Ā − Σ_c u_c u_cᵀ: each connected
            component's trivial eigenvector u_c = √d / √vol(c) removed, so that a graph with many
            components is not described by component indicators; see :mod:`graph_eigenmap.estimators`).
        estimator: ``"auto"``, ``"full"``, ``"rows"``, ``"sampled"`` or ``"block"``
            (:mod:`graph_eigenmap.estimators`). ``"auto"``: when a full-graph step fits in half
            the free device memory, ``"rows"`` for an MLP on a graph of at least 2 × batch_size
            nodes (exact ĀΨ, gradient through batch_size rows: on coauthor_cs, 2 CPU cores, the
            default fit trains in 36-39 s against 51 s with ``"full"``, captured spectrum 0.574
            against 0.605, probe accuracy 0.916 against 0.914; benchmarks/results/cpu_default_fit.md)
            and ``"full"`` otherwise; else ``"sampled"``.
        batch_size: rows with gradient per step for the rows estimator, seeds for the sampled
            one, |I| = |J| for the block one (4096).
        fanout: neighbours per seed for the sampled estimator (8).
        steps: optimizer steps (default 500: about a minute for a full-graph MLP on 18k nodes on 2 CPU cores).
        optimizer: ``"auto"`` (AdamW for an MLP, SGD for the identity table), ``"adamw"``, ``"lars"``
            or ``"sgd"``.
        lr: learning rate; None picks 3e-3 (AdamW), 0.3 (LARS) or 0.2 (SGD). For SGD the rate is
            per row: it is multiplied by the rows a step averages over (n for the full graph, the
            batch size otherwise), so that lr = 0.2 moves the identity table by 0.4 (ĀΨ − ΨR) per
            step, a damped power iteration, whatever the graph's size.
        weight_decay: decoupled weight decay (0).
        warmup: fraction of steps of linear warm-up (0.05).
        alpha: weight of the orthogonality penalty (1.0; the reference's 0.3 can let outputs copy
            the first eigenfunction when the spectrum spreads: see :mod:`graph_eigenmap.objective`).
        stop_gradient: ordered eigenfunctions (True) or only their span (False).
        reorder: with stop-gradient, every :data:`~graph_eigenmap.reorder.REORDER_EVERY` steps of the first
            :data:`~graph_eigenmap.reorder.REORDER_UNTIL` of training, permute the output units into descending order of
            their eigenvalue estimates when they are not (:mod:`graph_eigenmap.reorder`: outputs in
            the wrong order sit at a saddle that training alone leaves too slowly); then, as a
            recorded last step, sort the outputs by their exact Rayleigh quotients where
            neighbours still rise by more than 0.01 (``final_sort`` in metadata.json) (True).
        rayleigh_ritz: after training, replace the MLP's output layer by the Rayleigh–Ritz solution
            on the backbone's span (:mod:`graph_eigenmap.rayleigh_ritz`): outputs exactly ordered and
            Ā-orthogonal, eigenvalue estimates equal to their Rayleigh quotients (False).
        one_sided_gradient: compute the estimate of ĀΨ without autograd and take twice the
            gradient through the drawn nodes: the same gradient (exactly for the full graph, in
            expectation when sampling) for a fraction of the work, since sampled neighbours are
            embedded forward-only and the full graph needs no backward sparse product (see
            :func:`graph_eigenmap.objectives.neuralef.neuralef_loss`). None (default): on, except for the
            identity table with a sampling estimator, where the two-sided gradient also moves the
            rows of the neighbours a step reads (on the 340-node SBM of tests/test_training.py
            it found the 2nd and 3rd eigenvectors to cosines 0.96 / 0.91 against 0.86 / 0.81
            one-sided, in a development check of 1000 steps).
        seed: seeds the model's initialization and the sampler.
        bf16: bfloat16 autocast for the network on a GPU (ignored on a CPU).
        compile: run the network through ``torch.compile`` (fused layers; the first steps of each
            shape compile, which takes seconds to a minute: worth it for long runs on a GPU).
        checkpoint_every: steps between checkpoints (when an output folder is given; 0 = never).
        feature_storage: where the MLP's inputs live while training: ``"auto"`` (default), ``"float32"``,
            ``"bfloat16"``/``"float16"`` (on the device in half the bytes) or ``"host"`` (host memory, rows
            copied each step; sampling estimators only); see :mod:`graph_eigenmap.feature_store`.
    """

    k: int = 64
    features: str = "auto"
    width: int = 256
    depth: int = 2
    residual: bool = False
    norm: str = "layer"
    dropout: float = 0.0
    activation: str = "gelu"
    kernel: str = "adjacency"
    inputs: str = "auto"
    estimator: str = "auto"
    batch_size: int = 4096
    fanout: int = 8
    steps: int = 500
    optimizer: str = "auto"
    lr: float | None = None
    weight_decay: float = 0.0
    warmup: float = 0.05
    alpha: float = 1.0
    reorder: bool = True
    stop_gradient: bool = True
    rayleigh_ritz: bool = False
    one_sided_gradient: bool | None = None
    seed: int = 0
    bf16: bool = True
    compile: bool = False
    checkpoint_every: int = 200
    feature_storage: str = "auto"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def resolved(self, graph: Graph, device: torch.device) -> "TrainConfig":
        """Check every field against ``graph`` and fill in ``"auto"`` and None choices."""
        _validate(self, graph)
        features = self.features
        if features == "auto":
            features = "input" if graph.features is not None else "identity"
        if features == "input" and graph.features is None:
            raise GraphEigenmapError(f"{graph.name} has no node features; use --features identity.")
        inputs = self.inputs
        sparse = features == "input" and is_sparse(graph.features)
        if inputs == "auto":
            inputs = _auto_inputs(graph) if features == "input" else "features"
        spec = parse_inputs(inputs)
        if features == "identity" and spec.name != "features":
            raise GraphEigenmapError(f"--inputs {inputs} needs node features; drop it for --features identity.")
        if spec.rank and spec.rank >= min(graph.num_nodes, graph.num_features):
            raise GraphEigenmapError(f"--inputs {inputs}: the SVD keeps fewer columns than {graph.name}'s "
                                     f"{graph.num_features:,} features (and nodes); choose D < "
                                     f"{min(graph.num_nodes, graph.num_features):,}.")
        if sparse and spec.hops and not spec.rank:
            raise GraphEigenmapError(f"{graph.name}'s features are sparse and kept sparse because their dense matrix "
                                     f"({graph.num_nodes:,} x {graph.num_features:,}) would be too large, and "
                                     "propagated inputs [X, ÂX, ...] would be dense; use --inputs features or reduce "
                                     "them first, --inputs svd:100+propagated:3.")
        if sparse and self.compile:
            raise GraphEigenmapError("--compile does not take sparse features (torch.compile has no sparse CSR "
                                     "inputs); drop --compile.")
        optimizer = self.optimizer
        if optimizer == "auto":
            optimizer = "sgd" if features == "identity" else "adamw"
        lr = self.lr if self.lr is not None else DEFAULT_LR[optimizer]
        resolved = dataclasses.replace(self, features=features, inputs=inputs, optimizer=optimizer, lr=lr)
        if self.estimator == "auto":
            resolved = dataclasses.replace(resolved, estimator=_auto_estimator(resolved, graph, device))
        sampling = resolved.estimator in ("sampled", "block")
        if self.one_sided_gradient is None:
            one_sided = features != "identity" or not sampling or self.kernel == "nontrivial"
            resolved = dataclasses.replace(resolved, one_sided_gradient=one_sided)
        if self.rayleigh_ritz and features == "identity":
            raise GraphEigenmapError("--rayleigh-ritz needs an MLP (node features); the identity table has no output layer.")
        if self.kernel == "nontrivial" and sampling and not resolved.one_sided_gradient:
            raise GraphEigenmapError("--kernel nontrivial with a sampled or block estimator needs the one-sided gradient; "
                                     "drop --two-sided-gradient.")
        storage = self.feature_storage
        if storage == "auto" and features == "input":
            storage = "float32" if resolved.estimator in ("full", "rows") else resolve_feature_storage(
                "auto", graph.features, device, _free_memory(device) if device.type == "cuda" else None)
        if storage == "host" and resolved.estimator in ("full", "rows"):
            raise GraphEigenmapError(f"--feature-storage host needs a sampling estimator (the {resolved.estimator} "
                                     "estimator reads every node's inputs each step); use --estimator sampled or block.")
        resolved = dataclasses.replace(resolved, feature_storage=storage)
        if resolved.estimator == "rows" and not resolved.one_sided_gradient:
            raise GraphEigenmapError("the rows estimator needs the one-sided gradient; drop --two-sided-gradient "
                                     "or use --estimator full.")
        return resolved


def _validate(config: TrainConfig, graph: Graph) -> None:
    n = graph.num_nodes
    rules = [
        (isinstance(config.k, int) and 1 <= config.k <= n, f"'k' must be an int in [1, {n}] (the number of nodes); got {config.k}"),
        (config.features in ("auto", "input", "identity"), f"'features' must be auto, input or identity; got {config.features!r}"),
        (config.kernel in KERNELS, f"'kernel' must be one of {KERNELS}; got {config.kernel!r}"),
        (config.estimator in ("auto", "full", "rows", "sampled", "block"),
         f"'estimator' must be auto, full, rows, sampled or block; got {config.estimator!r}"),
        (config.optimizer in ("auto", *DEFAULT_LR), f"'optimizer' must be auto, adamw, lars or sgd; got {config.optimizer!r}"),
        (config.norm in ("layer", "batch", "none"), f"'norm' must be layer, batch or none; got {config.norm!r}"),
        (config.activation in ("gelu", "relu"), f"'activation' must be gelu or relu; got {config.activation!r}"),
        (config.steps >= 1, f"'steps' must be >= 1; got {config.steps}"),
        (config.width >= 1 and config.depth >= 1, "'width' and 'depth' must be >= 1"),
        (config.batch_size >= 2 and config.fanout >= 1, "'batch_size' must be >= 2 and 'fanout' >= 1"),
        (config.lr is None or config.lr > 0, f"'lr' must be > 0; got {config.lr}"),
        (0 <= config.warmup < 1 and 0 <= config.dropout < 1, "'warmup' and 'dropout' must lie in [0, 1)"),
        (config.alpha >= 0, f"'alpha' must be >= 0; got {config.alpha}"),
        (config.feature_storage in FEATURE_STORAGES,
         f"'feature_storage' must be one of {', '.join(FEATURE_STORAGES)}; got {config.feature_storage!r}"),
    ]
    problems = [message for ok, message in rules if not ok]
    try:
        if config.inputs != "auto":
            parse_inputs(config.inputs)
    except GraphEigenmapError as err:
        problems.append(str(err).rstrip("."))
    if problems:
        raise GraphEigenmapError("; ".join(problems) + ".")


def _auto_estimator(config: TrainConfig, graph: Graph, device: torch.device) -> str:
    """``"rows"`` or ``"full"`` when a full-graph step needs under half the free device memory, else ``"sampled"``."""
    n = graph.num_nodes
    if config.features == "identity":
        per_node = config.k * 4 * 8  # table, gradient, two Adam moments, outputs and their gradients
    else:
        spec = parse_inputs(config.inputs)
        width_in = (spec.rank or graph.num_features) * (spec.hops + 1)
        if is_sparse(graph.features) and not spec.rank:  # kept sparse: 12 bytes per stored entry (value and int64 column)
            width_in = 3 * graph.features.nnz / max(1, n)
        per_node = 4 * (width_in + 8 * config.width * config.depth + 6 * config.k)
    needed = n * per_node + graph.adjacency.nnz * 24
    if needed >= 0.5 * _free_memory(device):
        return "sampled"
    rows = config.features == "input" and n >= 2 * config.batch_size and config.one_sided_gradient is not False
    return "rows" if rows else "full"


def _auto_inputs(graph: Graph) -> str:
    """``inputs="auto"`` for a feature MLP: :data:`DEFAULT_WIDE_INPUTS` for features of :data:`WIDE_FEATURES` columns or
    more, :data:`DEFAULT_PROPAGATED_INPUTS` for narrower dense ones, ``"features"`` where those inputs would not fit
    (:func:`_propagated_inputs_fit`) or for narrower features kept sparse (their propagation would be dense)."""
    wide = graph.num_features >= WIDE_FEATURES and graph.num_nodes > parse_inputs(DEFAULT_WIDE_INPUTS).rank
    inputs = DEFAULT_WIDE_INPUTS if wide else DEFAULT_PROPAGATED_INPUTS
    if is_sparse(graph.features) and inputs == DEFAULT_PROPAGATED_INPUTS:
        return "features"
    return inputs if _propagated_inputs_fit(graph, inputs) else "features"


def _propagated_inputs_fit(graph: Graph, inputs: str = DEFAULT_PROPAGATED_INPUTS) -> bool:
    """Whether the float32 ``[n, (K + 1) D]`` model inputs of ``inputs`` fit in a quarter of host memory."""
    spec = parse_inputs(inputs)
    width = (spec.rank or graph.num_features) * (spec.hops + 1)
    return 4.0 * graph.num_nodes * width <= 0.25 * host_available_memory()


def _free_memory(device: torch.device) -> int:
    """Bytes a run on ``device`` may still allocate: the GPU's free memory, or :func:`host_available_memory`."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free
    return host_available_memory()


PROC_SELF = Path("/proc/self")
"""Where :func:`host_available_memory` reads this process's cgroups (``cgroup``) and the mounts (``mountinfo``)."""
MEMINFO = Path("/proc/meminfo")
UNSET_CGROUP_LIMIT = 1 << 60
"""cgroup v1 reports an unset limit as about 2^63 bytes; any limit from here up counts as unset."""
_CGROUP_FILES = {2: ("memory.max", "memory.current", "inactive_file"),
                 1: ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file")}


def host_available_memory() -> int:
    """Bytes this process can still allocate on the host (a guess of 8 GiB where nothing can be read).

    The smaller of the system's available memory (``psutil.virtual_memory().available``; without
    psutil, MemAvailable of /proc/meminfo: free memory plus the page cache the kernel can drop) and,
    for each memory cgroup holding this process and each of its ancestors with a limit set (cgroup v2
    ``memory.max``, v1 ``memory.limit_in_bytes``), the limit minus the usage (``memory.current``, v1
    ``memory.usage_in_bytes``). Usage counts the cgroup's page cache too, so its inactive file
    pages (``memory.stat``), which the kernel reclaims before it runs out, are not counted as used:
    the working set that container runtimes compare with the limit.
    """
    available = _system_available_memory()
    room = _cgroup_room()
    return available if room is None else min(available, room)


def _system_available_memory() -> int:
    try:
        import psutil
    except ImportError:  # optional: /proc/meminfo holds the same figure on Linux
        psutil = None
    if psutil is not None:
        return int(psutil.virtual_memory().available)
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


def _cgroup_room() -> int | None:
    """The smallest limit minus working set over this process's memory cgroups; None where no limit is set."""
    try:
        memberships = (PROC_SELF / "cgroup").read_text().splitlines()
        mounts = (PROC_SELF / "mountinfo").read_text().splitlines()
    except OSError:
        return None
    paths = {}  # cgroup version -> this process's path in that hierarchy
    for line in memberships:
        number, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if number == "0" and controllers == "":
            paths[2] = path
        elif "memory" in controllers.split(","):
            paths[1] = path
    rooms = []
    for version, mount_root, mount_point in _memory_mounts(mounts):
        if version not in paths:
            continue
        path, root = paths[version], mount_root.rstrip("/")
        relative = path[len(root):].lstrip("/") if path == root or path.startswith(root + "/") else ""
        directory = mount_point / relative if (mount_point / relative).is_dir() else mount_point
        while True:  # the process's cgroup and each ancestor up to the mount: a parent's limit binds too
            room = _room_in(directory, *_CGROUP_FILES[version])
            if room is not None:
                rooms.append(room)
            if directory == mount_point or mount_point not in directory.parents:
                break
            directory = directory.parent
    return max(0, min(rooms)) if rooms else None


def _memory_mounts(mountinfo: list[str]) -> list[tuple[int, str, Path]]:
    """``(version, root in the hierarchy, mount point)`` of the cgroup v2 and v1 memory mounts in /proc/self/mountinfo."""
    mounts = []
    for line in mountinfo:
        fields = line.split()
        if "-" not in fields or len(fields) < 5:
            continue
        after = fields[fields.index("-") + 1:]
        fstype, options = after[0] if after else "", after[2].split(",") if len(after) > 2 else []
        if fstype == "cgroup2":
            mounts.append((2, fields[3], Path(fields[4])))
        elif fstype == "cgroup" and "memory" in options:
            mounts.append((1, fields[3], Path(fields[4])))
    return mounts


def _room_in(directory: Path, limit_file: str, usage_file: str, reclaimable_key: str) -> int | None:
    try:
        limit = (directory / limit_file).read_text().strip()
        if limit == "max" or int(limit) >= UNSET_CGROUP_LIMIT:
            return None
        usage = int((directory / usage_file).read_text())
    except (OSError, ValueError):
        return None
    reclaimable = 0
    try:
        for line in (directory / "memory.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == reclaimable_key:
                reclaimable = int(value)
    except (OSError, ValueError):
        pass
    return int(limit) - max(usage - reclaimable, 0)
