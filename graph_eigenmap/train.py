"""Training NeuralEF: the loop, its configuration, checkpoints and resume.

Optimizers: AdamW for MLPs (the default: robust across widths and depths), plain SGD for the
identity table (the default there: with a per-row learning rate each step is a damped power
iteration, which finds the exact eigenvectors of the 340-node SBM of tests/test_training.py in 400
full-graph steps; AdamW had not converged there after thousands in development), and LARS (the reference's choice for large batches: SGD with momentum 0.9 and a
layer-wise trust ratio, none on biases and normalization parameters). Schedule: linear warm-up over
``warmup`` of the steps, then cosine decay to zero.

Checkpoints hold the model, optimizer, schedule, sampler RNG state, eigenvalue estimates and the
configuration; they are written to a temporary file and renamed, so a killed run loses at most
one checkpoint interval and never leaves a half-written file. Resuming refuses a checkpoint made
with another configuration or graph.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from graph_eigenmap.data.graph import Graph
from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.estimators import make_estimator
from graph_eigenmap.host_memory import keep_freed_host_memory
from graph_eigenmap.inputs import model_input_graph, parse_inputs
from graph_eigenmap.reorder import reorder_outputs
from graph_eigenmap.kernel import (
    DeflatedKernel, TrivialEigenvectors, normalized_adjacency, to_torch_csr, trivial_eigenvectors,
)
from graph_eigenmap.models import NeuralEigenfunctions, build_model
from graph_eigenmap.objective import neuralef_loss
from graph_eigenmap.rayleigh_ritz import rayleigh_ritz_head

CHECKPOINT_NAME = "checkpoint.pt"
KERNELS = ("adjacency", "gcn", "shifted", "nontrivial")
EIGENVALUE_MOMENTUM = 0.95
REORDER_EVERY = 25
"""Steps between checks of the output order (``TrainConfig.reorder``); each check syncs with the device."""
REORDER_UNTIL = 0.8
"""Fraction of training during which outputs are reordered; the rest refines the final order."""
DEFAULT_LR = {"adamw": 3e-3, "lars": 0.3, "sgd": 0.2}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a training run.

    Attributes:
        k: number of eigenfunctions (default 64).
        features: ``"auto"`` (node features when the graph has them, else identity), ``"input"``
            (the node features, through an MLP) or ``"identity"`` (a free table per node).
        width, depth, residual, norm, dropout, activation: the MLP (default 256 wide, 2 layers,
            no skips, LayerNorm, no dropout, GELU).
        inputs: what the MLP reads: ``"features"`` (default, the node's own features) or
            ``"propagated:K"`` ([X, ÂX, …, Â^K X], see :mod:`graph_eigenmap.inputs`; a new node then
            needs its edges to known nodes).
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
        reorder: with stop-gradient, every :data:`REORDER_EVERY` steps of the first
            :data:`REORDER_UNTIL` of training, permute the output units into descending order of
            their eigenvalue estimates when they are not (:mod:`graph_eigenmap.reorder`: outputs in
            the wrong order sit at a saddle that training alone leaves too slowly) (True).
        rayleigh_ritz: after training, replace the MLP's output layer by the Rayleigh–Ritz solution
            on the backbone's span (:mod:`graph_eigenmap.rayleigh_ritz`): outputs exactly ordered and
            Ā-orthogonal, eigenvalue estimates equal to their Rayleigh quotients (False).
        one_sided_gradient: compute the estimate of ĀΨ without autograd and take twice the
            gradient through the drawn nodes: the same gradient (exactly for the full graph, in
            expectation when sampling) for a fraction of the work, since sampled neighbours are
            embedded forward-only and the full graph needs no backward sparse product (see
            :func:`graph_eigenmap.objective.neuralef_loss`). None (default): on, except for the
            identity table with a sampling estimator, where the two-sided gradient also moves the
            rows of the neighbours a step reads (on the 340-node SBM of tests/test_training.py
            it found the 2nd and 3rd eigenvectors to cosines 0.96 / 0.91 against 0.86 / 0.81
            one-sided, in a development check of 1000 steps).
        seed: seeds the model's initialization and the sampler.
        bf16: bfloat16 autocast for the network on a GPU (ignored on a CPU).
        compile: run the network through ``torch.compile`` (fused layers; the first steps of each
            shape compile, which takes seconds to a minute: worth it for long runs on a GPU).
        checkpoint_every: steps between checkpoints (when an output folder is given; 0 = never).
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
    inputs: str = "features"
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
        if features == "identity" and parse_inputs(self.inputs).hops:
            raise GraphEigenmapError("--inputs propagated:K needs node features; drop it for --features identity.")
        optimizer = self.optimizer
        if optimizer == "auto":
            optimizer = "sgd" if features == "identity" else "adamw"
        lr = self.lr if self.lr is not None else DEFAULT_LR[optimizer]
        resolved = dataclasses.replace(self, features=features, optimizer=optimizer, lr=lr)
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
        if resolved.estimator == "rows" and not resolved.one_sided_gradient:
            raise GraphEigenmapError("the rows estimator needs the one-sided gradient; drop --two-sided-gradient "
                                     "or use --estimator full.")
        return resolved


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes:
        model: the trained network (in eval mode, on the training device).
        config: the resolved configuration.
        eigenvalues: ``[k]`` moving-average estimates of R_jj (the eigenvalues, descending with stop-gradient).
        steps: optimizer steps taken in total (across resumes).
        wall_time_s: seconds of training in this process.
        history: ``[(step, seconds since start, loss, R_11)]`` every ``log_every`` steps.
        kernel: the full-graph estimator's ``[n, n]`` torch CSR kernel on the training device
            (None for the sampling estimators), so callers need not build it again.
        reorders: how many times the outputs were permuted into eigenvalue order (``TrainConfig.reorder``).
    """

    model: NeuralEigenfunctions
    config: TrainConfig
    eigenvalues: np.ndarray
    steps: int
    wall_time_s: float
    history: list = field(default_factory=list)
    kernel: torch.Tensor | None = None
    reorders: int = 0


def graph_trivial_eigenvectors(graph: Graph) -> TrivialEigenvectors:
    """The graph's :func:`~graph_eigenmap.kernel.trivial_eigenvectors`, computed once per graph object."""
    if "trivial_eigenvectors" not in graph.extra:
        graph.extra["trivial_eigenvectors"] = trivial_eigenvectors(graph)
    return graph.extra["trivial_eigenvectors"]


def _warn_about_components(trivial: TrivialEigenvectors, config: TrainConfig) -> None:
    """Warn when the top-k eigenfunctions of the kernel would be component indicators."""
    if config.kernel in ("adjacency", "shifted") and trivial.count >= config.k:
        warnings.warn(f"the graph has {trivial.count:,} connected components with edges, at least k = {config.k}: the "
                      "top-k eigenfunctions of D^-1/2 A D^-1/2 are then indicators of components, which say nothing "
                      "about nodes within a component. Use --kernel nontrivial (kernel='nontrivial') to remove them.",
                      ComponentWarning, stacklevel=3)


class ComponentWarning(UserWarning):
    """The kernel's top eigenfunctions would be component indicators."""


def full_kernel(graph: Graph, config: TrainConfig, device: torch.device):
    """The ``[n, n]`` kernel of ``config.kernel`` on ``device``, as a torch CSR matrix or a DeflatedKernel."""
    kernel = to_torch_csr(normalized_adjacency(kernel_adjacency(graph, config.kernel), shift=config.kernel == "shifted"),
                          device=device)
    return DeflatedKernel(kernel, graph_trivial_eigenvectors(graph)) if config.kernel == "nontrivial" else kernel


def kernel_adjacency(graph: Graph, kernel: str) -> sp.csr_matrix:
    """The adjacency whose normalization is the kernel: A, or A + I for ``"gcn"``."""
    if kernel == "gcn":
        return (graph.adjacency + sp.eye(graph.num_nodes, dtype=graph.adjacency.dtype, format="csr")).tocsr()
    return graph.adjacency


def train(
    graph: Graph,
    config: TrainConfig,
    *,
    device: str | torch.device = "cpu",
    checkpoint_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool | None = None,
    log_every: int = 10,
) -> TrainResult:
    """Learn the top-k eigenfunctions of the kernel of ``graph``.

    Args:
        graph: the graph (features used unless ``config.features == "identity"``).
        config: see :class:`TrainConfig`.
        device: where to train.
        checkpoint_dir: folder for ``checkpoint.pt`` (None: no checkpoints).
        resume: continue from the checkpoint in ``checkpoint_dir``.
        progress: show a progress bar; None shows it for graphs of 10,000 nodes or more.
        log_every: steps between entries of the loss history (each costs a device sync).

    Raises:
        GraphEigenmapError: bad configuration, or a checkpoint that does not match.
    """
    device = torch.device(device)
    config = config.resolved(graph, device)
    if config.features == "input":
        graph = model_input_graph(graph, config.inputs, device)
    if device.type == "cpu":
        keep_freed_host_memory()  # no page faults on every step's activations (see graph_eigenmap.host_memory)
    trivial = graph_trivial_eigenvectors(graph)
    _warn_about_components(trivial, config)
    estimator = make_estimator(config.estimator, kernel_adjacency(graph, config.kernel), batch_size=config.batch_size,
                               fanout=config.fanout, shift=config.kernel == "shifted", device=device,
                               trivial=trivial if config.kernel == "nontrivial" else None)
    init_generator = torch.Generator().manual_seed(config.seed)
    model = build_model(config, graph.num_features, graph.num_nodes, generator=init_generator, features=graph.features)
    model = model.to(device)
    if config.compile:
        model.compile_network()
    inputs = None if config.features == "identity" else torch.from_numpy(graph.features).to(device)
    optimizer = _optimizer(model, config, rows_per_step=graph.num_nodes if config.estimator == "full" else config.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(config.steps, config.warmup))
    sampler = torch.Generator(device=device).manual_seed(config.seed)
    eigenvalues = torch.zeros(config.k, device=device)
    state = dict(step=0, history=[])

    checkpoint = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir else None
    if checkpoint is not None and checkpoint.exists():
        if not resume:
            raise GraphEigenmapError(
                f"{checkpoint} exists from an earlier run; pass --resume to continue it, or choose another --out."
            )
        _load_checkpoint(checkpoint, config, graph, model, optimizer, schedule, sampler, eigenvalues, state, estimator)

    use_bf16 = config.bf16 and device.type == "cuda"
    show = progress if progress is not None else graph.num_nodes >= 10_000
    start = time.perf_counter()
    model.train()
    with _progress_bar(show, config.steps, state["step"]) as bar:
        for step in range(state["step"], config.steps):
            draw = estimator.draw(sampler)
            if inputs is None:
                x = draw.node_ids
            else:  # the full graph embeds every node in order: no gather
                x = inputs if estimator.name == "full" else inputs[draw.node_ids]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                psi = model(x, draw.num_stat_rows, draw.num_a_rows if config.one_sided_gradient else None)
            a, c = estimator.estimate(psi, draw, c_has_gradient=not config.one_sided_gradient)
            loss, r = neuralef_loss(a, c, alpha=config.alpha, stop_gradient=config.stop_gradient,
                                    c_has_gradient=not config.one_sided_gradient)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            diag = torch.diagonal(r)
            eigenvalues.copy_(diag if step == 0 else EIGENVALUE_MOMENTUM * eigenvalues + (1 - EIGENVALUE_MOMENTUM) * diag)
            state["step"] = step + 1
            if _reorder_due(config, step + 1) and reorder_outputs(model, optimizer, eigenvalues):
                state["reorders"] = state.get("reorders", 0) + 1
            if (step + 1) % log_every == 0 or step + 1 == config.steps:
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise GraphEigenmapError(f"the loss became {value} at step {step + 1}; lower --lr.")
                state["history"].append((step + 1, time.perf_counter() - start, value, float(eigenvalues[0])))
                bar.update(step + 1, value, eigenvalues)
            if checkpoint is not None and config.checkpoint_every and (step + 1) % config.checkpoint_every == 0:
                _save_checkpoint(checkpoint, config, graph, model, optimizer, schedule, sampler, eigenvalues, state, estimator)
    if checkpoint is not None and state["step"] % max(config.checkpoint_every, 1) != 0:
        _save_checkpoint(checkpoint, config, graph, model, optimizer, schedule, sampler, eigenvalues, state, estimator)
    model.eval()
    if config.rayleigh_ritz and inputs is not None:
        kernel = getattr(estimator, "kernel", None)
        if kernel is None:
            kernel = full_kernel(graph, config, device)
        eigenvalues = torch.from_numpy(rayleigh_ritz_head(model, inputs, kernel))
    return TrainResult(model, config, eigenvalues.cpu().numpy().astype(np.float64), state["step"],
                       time.perf_counter() - start, state["history"], getattr(estimator, "kernel", None),
                       state.get("reorders", 0))


def _reorder_due(config: TrainConfig, steps_done: int) -> bool:
    return (config.reorder and config.stop_gradient and steps_done % REORDER_EVERY == 0
            and steps_done <= REORDER_UNTIL * config.steps)


@torch.no_grad()
def embed_nodes(model: NeuralEigenfunctions, inputs: torch.Tensor, *, chunk_size: int = 65536,
                with_backbone: bool = True, to_host: bool = True, bf16: bool = False):
    """Evaluate a trained model on ``[m, d]`` features (or ``[m]`` node ids), in chunks.

    Args:
        to_host: return float32 numpy arrays (default); False keeps ``[m, k]`` tensors on the
            model's device (for consumers there, and for throughput measurements).
        bf16: bfloat16 autocast on a GPU (faster; about 1e-2 relative error, so not for exact reproduction).

    Returns:
        ``([m, k]`` eigenfunctions, ``[m, h]`` backbone features or None``)``.
    """
    model.eval()
    device = next(model.parameters()).device
    outputs, backbones = [], []
    for begin in range(0, inputs.shape[0], chunk_size):
        chunk = inputs[begin:begin + chunk_size].to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16 and device.type == "cuda"):
            psi, h = model.forward_with_backbone(chunk)
        outputs.append(psi.float().cpu() if to_host else psi)
        if with_backbone:
            backbones.append(h.float().cpu() if to_host else h)
    if not to_host:
        return torch.cat(outputs), (torch.cat(backbones) if with_backbone else None)
    psi = torch.cat(outputs).numpy()
    return psi, (torch.cat(backbones).numpy() if with_backbone else None)


def all_node_inputs(graph: Graph, config: TrainConfig) -> torch.Tensor:
    """The model's inputs for every node: features ``[n, d]`` or ids ``[n]``."""
    if config.features == "identity":
        return torch.arange(graph.num_nodes)
    return torch.from_numpy(graph.features)


# ---------------------------------------------------------------------------------------------
# configuration checks


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
    ]
    problems = [message for ok, message in rules if not ok]
    try:
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
        width_in = graph.num_features * (parse_inputs(config.inputs).hops + 1)
        per_node = 4 * (width_in + 8 * config.width * config.depth + 6 * config.k)
    needed = n * per_node + graph.adjacency.nnz * 24
    if needed >= 0.5 * _free_memory(device):
        return "sampled"
    rows = config.features == "input" and n >= 2 * config.batch_size and config.one_sided_gradient is not False
    return "rows" if rows else "full"


def _free_memory(device: torch.device) -> int:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 8 << 30


# ---------------------------------------------------------------------------------------------
# optimizers


def _optimizer(model: torch.nn.Module, config: TrainConfig, rows_per_step: int) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        (no_decay if parameter.ndim <= 1 else decay).append(parameter)
    groups = [dict(params=decay, weight_decay=config.weight_decay),
              dict(params=no_decay, weight_decay=0.0, lars_exclude=True)]
    if config.optimizer == "lars":
        return LARS(groups, lr=config.lr)
    plain = [{k: v for k, v in g.items() if k != "lars_exclude"} for g in groups]
    if config.optimizer == "sgd":
        return torch.optim.SGD(plain, lr=config.lr * rows_per_step)
    on_gpu = all(p.is_cuda for g in plain for p in g["params"])
    return torch.optim.AdamW(plain, lr=config.lr, fused=on_gpu or None)  # fused: one launch for all parameters


class LARS(torch.optim.Optimizer):
    """SGD with momentum and a layer-wise trust ratio (You et al., 2017).

    For each weight matrix the step is scaled by ``eta * ||w|| / (||g|| + wd ||w||)``; parameters of
    groups with ``lars_exclude=True`` (biases, normalization) take plain momentum SGD steps.
    """

    def __init__(self, params, lr: float, momentum: float = 0.9, eta: float = 0.001, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, eta=eta, weight_decay=weight_decay, lars_exclude=False))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if not group["lars_exclude"]:
                    grad = grad.add(p, alpha=group["weight_decay"])
                    w_norm, g_norm = torch.norm(p), torch.norm(grad)
                    trust = torch.where((w_norm > 0) & (g_norm > 0), group["eta"] * w_norm / g_norm, torch.ones_like(w_norm))
                    grad = grad * trust
                buf = self.state[p].get("momentum")
                if buf is None:
                    buf = self.state[p]["momentum"] = torch.clone(grad)
                else:
                    buf.mul_(group["momentum"]).add_(grad)
                p.add_(buf, alpha=-group["lr"])


def _warmup_cosine(total: int, warmup: float):
    warm = max(1, int(warmup * total))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, total - warm)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor


# ---------------------------------------------------------------------------------------------
# checkpoints


def _graph_fingerprint(graph: Graph) -> dict:
    return dict(name=graph.name, num_nodes=graph.num_nodes, num_edges=graph.num_edges, num_features=graph.num_features)


def _save_checkpoint(path: Path, config, graph, model, optimizer, schedule, sampler, eigenvalues, state,
                     estimator) -> None:
    sums = getattr(estimator, "component_sums", None)
    payload = dict(
        config=config.to_dict(),
        graph=_graph_fingerprint(graph),
        model=model.state_dict(),
        optimizer=optimizer.state_dict(),
        schedule=schedule.state_dict(),
        sampler=sampler.get_state(),
        eigenvalues=eigenvalues.cpu(),
        step=state["step"],
        reorders=state.get("reorders", 0),
        history=json.dumps(state["history"]),
        component_sums=None if sums is None or sums.sums is None else sums.sums.cpu(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    torch.save(payload, temporary)
    os.replace(temporary, path)


def _load_checkpoint(path: Path, config, graph, model, optimizer, schedule, sampler, eigenvalues, state,
                     estimator) -> None:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001
        raise GraphEigenmapError(f"{path} cannot be read ({type(err).__name__}); delete it to start over.") from None
    saved = payload["config"]
    differences = [f"{key}: {saved.get(key)!r} there, {value!r} now" for key, value in config.to_dict().items()
                   if key not in ("checkpoint_every", "compile") and saved.get(key) != value]
    if differences:
        raise GraphEigenmapError(
            f"{path} was made with a different configuration ({'; '.join(differences)}); "
            "rerun with the same options or choose another --out."
        )
    if payload["graph"] != _graph_fingerprint(graph):
        raise GraphEigenmapError(f"{path} was made on another graph ({payload['graph']}); choose another --out.")
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    schedule.load_state_dict(payload["schedule"])
    sampler.set_state(payload["sampler"])
    eigenvalues.copy_(payload["eigenvalues"])
    state["step"] = int(payload["step"])
    state["reorders"] = int(payload.get("reorders", 0))
    state["history"] = [tuple(entry) for entry in json.loads(payload["history"])]
    sums = getattr(estimator, "component_sums", None)
    if sums is not None and payload.get("component_sums") is not None:
        sums.sums = payload["component_sums"].to(eigenvalues.device)


# ---------------------------------------------------------------------------------------------
# progress


class _progress_bar:
    """A rich progress bar with the loss and the leading eigenvalue estimates; silent when off."""

    def __init__(self, enabled: bool, total: int, completed: int):
        self.enabled, self.total, self.completed = enabled, total, completed

    def __enter__(self):
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(TextColumn("fit"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                     TextColumn("{task.fields[status]}"), transient=False)
            self.progress.start()
            self.task = self.progress.add_task("fit", total=self.total, completed=self.completed, status="")
        return self

    def update(self, step: int, loss: float, eigenvalues: torch.Tensor) -> None:
        if self.enabled:
            leading = " ".join(f"{v:.4f}" for v in eigenvalues[:3].tolist())
            self.progress.update(self.task, completed=step, status=f"loss {loss:.4f}  λ {leading}")

    def __exit__(self, *exc):
        if self.enabled:
            self.progress.stop()
        return False
