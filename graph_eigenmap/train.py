"""Training NeuralEF: the loop that learns the top-k eigenfunctions of a graph's kernel.

One step: the estimator draws nodes, the model embeds them, the estimator gives the ``[k, k]``
estimates of ΨᵀΨ and ΨᵀĀΨ, the NeuralEF loss (:mod:`graph_eigenmap.objective`) is minimized by the
optimizer (:mod:`graph_eigenmap.optim`), the eigenvalue estimates are averaged and, early on, the
outputs are reordered (:mod:`graph_eigenmap.reorder`). The configuration lives in
:mod:`graph_eigenmap.config`, checkpoints in :mod:`graph_eigenmap.checkpoint`, and evaluating the
trained model on all nodes in :mod:`graph_eigenmap.inference`.
"""

from __future__ import annotations

import inspect
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from graph_eigenmap.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from graph_eigenmap import distributed
from graph_eigenmap.config import TrainConfig
from graph_eigenmap.distributed import Ranks
from graph_eigenmap.data.graph import Graph, derived
from graph_eigenmap.errors import GraphEigenmapError, TrainingDivergedError
from graph_eigenmap.estimators import make_estimator
from graph_eigenmap.inputs import model_input_graph
from graph_eigenmap.kernel import (
    DeflatedKernel, TrivialEigenvectors, normalized_adjacency, to_torch_csr, trivial_eigenvectors,
)
from graph_eigenmap.models import NeuralEigenfunctions, build_model
from graph_eigenmap.objective import neuralef_loss
from graph_eigenmap.optim import make_optimizer, warmup_cosine
from graph_eigenmap.progress import ProgressBar
from graph_eigenmap.rayleigh_ritz import rayleigh_ritz_head
from graph_eigenmap.reorder import EXACT_ORDER_MAX_NODES, REORDER_EVERY, REORDER_UNTIL, exact_quotients, reorder_outputs
from graph_eigenmap.feature_store import FeatureStore

EIGENVALUE_MOMENTUM = 0.95


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
    return derived(graph, "trivial_eigenvectors", (graph.adjacency,), lambda: trivial_eigenvectors(graph))


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
    ranks: Ranks | None = None,
) -> TrainResult:
    """Learn the top-k eigenfunctions of the kernel of ``graph``.

    Args:
        graph: the graph (features used unless ``config.features == "identity"``).
        config: see :class:`TrainConfig`.
        device: where to train.
        checkpoint_dir: folder for ``checkpoint.pt`` (None: no checkpoints).
        resume: continue from the checkpoint in ``checkpoint_dir``.
        progress: show a progress bar (on stderr); None shows it once the run is expected to take 5 s or more.
        log_every: steps between entries of the loss history (each costs a device sync).
        ranks: this process's place among data-parallel training processes (:mod:`graph_eigenmap.distributed`);
            None: one process. Every rank calls ``train`` with the same arguments; rank 0 writes checkpoints.

    Raises:
        GraphEigenmapError: bad configuration, or a checkpoint that does not match.
    """
    ranks = ranks or Ranks()
    device = torch.device(device)
    if ranks.active:
        device = distributed.start(ranks, device)
    config = config.resolved(graph, device)
    if ranks.active and config.estimator == "full":
        raise GraphEigenmapError("training on several processes needs an estimator that draws nodes (the full-graph "
                                 "one would repeat the same step on every rank); use --estimator sampled, block or rows.")
    if config.features == "input":
        graph = model_input_graph(graph, config.inputs, device)
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
    inputs = None if config.features == "identity" else FeatureStore(graph.features, device, config.feature_storage)
    optimizer = make_optimizer(model, config, rows_per_step=graph.num_nodes if config.estimator == "full" else config.batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(config.steps, config.warmup))
    sampler = torch.Generator(device=device).manual_seed(_sampler_seed(config.seed, ranks, 0))
    eigenvalues = torch.zeros(config.k, device=device)
    state = dict(step=0, history=[])

    checkpoint = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir else None
    if checkpoint is not None and checkpoint.exists():
        if not resume:
            raise GraphEigenmapError(
                f"{checkpoint} exists from an earlier run; pass --resume to continue it, or choose another --out."
            )
        load_checkpoint(checkpoint, config, graph, model, optimizer, schedule, sampler, eigenvalues, state, estimator)
        if ranks.active:  # the checkpoint holds rank 0's draws: each rank continues with its own
            sampler.manual_seed(_sampler_seed(config.seed, ranks, state["step"]))
    network = _data_parallel(model, estimator, ranks, device)
    reduce = distributed.mean_over_ranks if ranks.active else None
    saves = checkpoint is not None and ranks.main

    use_bf16 = config.bf16 and device.type == "cuda"
    if device.type == "cuda":  # the fit's metadata reports the peak of training and embedding (peak_gpu_gib)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    model.train()
    with ProgressBar(progress if ranks.main else False, config.steps, state["step"]) as bar:
        for step in range(state["step"], config.steps):
            draw = estimator.draw(sampler)
            loss, r = train_step(network, optimizer, estimator, draw, inputs, config, use_bf16=use_bf16, reduce=reduce)
            schedule.step()
            diag = torch.diagonal(r)
            eigenvalues.copy_(diag if step == 0 else EIGENVALUE_MOMENTUM * eigenvalues + (1 - EIGENVALUE_MOMENTUM) * diag)
            state["step"] = step + 1
            if _reorder_due(config, step + 1) and reorder_outputs(model, optimizer, eigenvalues,
                                                                  key=_order_key(model, estimator, inputs, reduce)):
                state["reorders"] = state.get("reorders", 0) + 1
            if (step + 1) % log_every == 0 or step + 1 == config.steps:
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise TrainingDivergedError(step + 1, value, config.lr)
                state["history"].append((step + 1, time.perf_counter() - start, value, float(eigenvalues[0])))
                bar.update(step + 1, value, eigenvalues)
            if saves and config.checkpoint_every and (step + 1) % config.checkpoint_every == 0:
                save_checkpoint(checkpoint, config, graph, model, optimizer, schedule, sampler, eigenvalues, state, estimator)
    if saves and state["step"] % max(config.checkpoint_every, 1) != 0:
        save_checkpoint(checkpoint, config, graph, model, optimizer, schedule, sampler, eigenvalues, state, estimator)
    model.eval()
    kernel = _measuring_kernel(graph, config, estimator, trivial)
    if config.rayleigh_ritz and inputs is not None and ranks.main:
        if kernel is None:
            kernel = full_kernel(graph, config, device)
        eigenvalues = torch.from_numpy(rayleigh_ritz_head(model, inputs.inputs, kernel))
    return TrainResult(model, config, eigenvalues.cpu().numpy().astype(np.float64), state["step"],
                       time.perf_counter() - start, state["history"], kernel, state.get("reorders", 0))


ROW_BLOCK_KERNEL_MIN_ENTRIES = 1 << 30
"""Stored adjacency entries from which a sampled or block run measures its result with the lean
:class:`~graph_eigenmap.kernel.RowBlockKernel` over the estimator's own arrays instead of :func:`full_kernel`
(a torch CSR copy of 12 bytes per entry on the device and a scipy one on the host)."""


def _measuring_kernel(graph: Graph, config: TrainConfig, estimator, trivial: TrivialEigenvectors):
    """The kernel a finished run is measured with (exact quotients, Rayleigh–Ritz): the estimator's own, the
    lean product over its arrays for large graphs, or None (the caller builds :func:`full_kernel`)."""
    kernel = getattr(estimator, "kernel", None)
    if kernel is None and hasattr(estimator, "graph") and graph.adjacency.nnz >= ROW_BLOCK_KERNEL_MIN_ENTRIES:
        kernel = estimator.graph.kernel(shift=config.kernel == "shifted",
                                        trivial=trivial if config.kernel == "nontrivial" else None)
    return kernel


def train_step(network, optimizer: torch.optim.Optimizer, estimator, draw, inputs, config: TrainConfig, *,
               use_bf16: bool = False, reduce=None) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on the nodes of ``draw``; returns ``(loss, [k, k] R estimate)``, both detached.

    Args:
        network: the model, or its :class:`~torch.nn.parallel.DistributedDataParallel` wrapper.
        inputs: the :class:`~graph_eigenmap.feature_store.FeatureStore` of node inputs, None for the identity table.
        reduce: the differentiable mean over ranks of data-parallel training (None: one process).
    """
    if inputs is None:
        x = draw.node_ids
    else:  # the full graph embeds every node in order: no gather
        x = inputs.all() if estimator.name == "full" else inputs.rows(draw.node_ids)
    device = draw.node_ids.device
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
        psi = network(x, draw.num_stat_rows, draw.num_a_rows if config.one_sided_gradient else None)
    a, c = estimator.estimate(psi, draw, c_has_gradient=not config.one_sided_gradient)
    loss, r = neuralef_loss(a, c, alpha=config.alpha, stop_gradient=config.stop_gradient,
                            c_has_gradient=not config.one_sided_gradient, reduce=reduce)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach(), r


def _data_parallel(model: NeuralEigenfunctions, estimator, ranks: Ranks, device: torch.device):
    """``model`` itself for one process; else its DDP wrapper, with L2-BN and component sums averaged over ranks."""
    if not ranks.active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    model.norm.reduce = distributed.mean_over_ranks
    if getattr(estimator, "component_sums", None) is not None:
        estimator.component_sums.reduce_ = distributed.mean_over_ranks_
    # the buffers (L2-BN's running RMS) are updated identically on every rank: no syncing them each forward
    no_buffer_sync = ({"forward_sync_buffers": False} if "forward_sync_buffers" in
                      inspect.signature(DistributedDataParallel.__init__).parameters else {"broadcast_buffers": False})
    return DistributedDataParallel(model, device_ids=[device] if device.type == "cuda" else None, **no_buffer_sync)


def _sampler_seed(seed: int, ranks: Ranks, step: int) -> int:
    """The seed of this rank's draws (rank 0 of one process: ``seed`` itself); ``step`` > 0 after a resume."""
    if not ranks.active:
        return seed
    return (seed * 1_000_003 + ranks.rank * 7_919 + step * 104_729) % 2**63


def _order_key(model: NeuralEigenfunctions, estimator, inputs: FeatureStore | None, reduce=None) -> torch.Tensor | None:
    """What the outputs are reordered by: their exact Rayleigh quotients where the estimator holds the kernel on
    the device (full graph, rows) and the graph has at most :data:`~graph_eigenmap.reorder.EXACT_ORDER_MAX_NODES`
    nodes, else None (the running estimates, whose error of up to about 0.01 left pairs out of order by as much;
    ``benchmarks/results/reorder_effect.md``). In data-parallel training the quotients are averaged over the ranks
    (``reduce``), so that every rank applies the same permutation even where rounding differs between them."""
    kernel = getattr(estimator, "kernel", None)
    if kernel is None or estimator.num_nodes > EXACT_ORDER_MAX_NODES:
        return None
    quotients = exact_quotients(model, estimator.all_ids if inputs is None else inputs.all(), kernel)
    return quotients if reduce is None else reduce(quotients)


def _reorder_due(config: TrainConfig, steps_done: int) -> bool:
    return (config.reorder and config.stop_gradient and steps_done % REORDER_EVERY == 0
            and steps_done <= REORDER_UNTIL * config.steps)


