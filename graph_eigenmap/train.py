"""Training: the loop that learns the top-k eigenfunctions of a graph's kernel.

One step: the estimator draws nodes, the model embeds them, the estimator gives the ``[b, k]`` A and C
whose product estimates R = ΨᵀĀΨ / n, the objective (:mod:`graph_eigenmap.objectives`, by name) is minimized by
the optimizer (:mod:`graph_eigenmap.optim`), the eigenvalue estimates are averaged and, early on, the outputs are
reordered (:mod:`graph_eigenmap.reorder`). The options and their automatic choices live in
:mod:`graph_eigenmap.config` and :mod:`graph_eigenmap.recipe`, checkpoints in :mod:`graph_eigenmap.checkpoint`,
and what a finished run writes in :mod:`graph_eigenmap.fit_outputs`.
"""

from __future__ import annotations

import inspect
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from graph_eigenmap import distributed
from graph_eigenmap.checkpoint import CHECKPOINT_NAME, load_checkpoint, save_checkpoint
from graph_eigenmap.config import TrainConfig
from graph_eigenmap.data.graph import Graph
from graph_eigenmap.distributed import Ranks
from graph_eigenmap.errors import GraphEigenmapError, TrainingDivergedError
from graph_eigenmap.estimators import make_estimator
from graph_eigenmap.feature_store import FeatureStore
from graph_eigenmap.host_memory import mark_phase, release_freed_host_memory
from graph_eigenmap.inputs import model_input_graph
from graph_eigenmap.kernel import TrivialEigenvectors, full_kernel, graph_trivial_eigenvectors, kernel_adjacency
from graph_eigenmap.models import NeuralEigenfunctions, build_model
from graph_eigenmap.optim import make_optimizer, warmup_cosine
from graph_eigenmap.progress import ProgressBar
from graph_eigenmap.rayleigh_ritz import rayleigh_ritz_head
from graph_eigenmap.recipe import resolve
from graph_eigenmap.registry import ESTIMATORS, KERNELS, OBJECTIVES
from graph_eigenmap.reorder import EXACT_ORDER_MAX_NODES, REORDER_EVERY, REORDER_UNTIL, exact_quotients, reorder_outputs

EIGENVALUE_MOMENTUM = 0.95
STEP_PHASES = ("draw", "gather", "forward", "estimate", "objective", "backward", "optimizer", "eigenvalues", "reorder",
               "log", "checkpoint")
"""The phases of a training step, in order, as :func:`train`'s ``mark`` is told each one ended: the estimator draws
the step's nodes, their inputs are gathered, the model embeds them (forward, with the rows of no gradient), the
estimator gives A and C, the objective its loss and R; the gradients are zeroed and the loss backpropagated, the
optimizer steps; then the schedule and the running eigenvalue estimates, reordering the outputs (when due), the loss
history (every ``log_every`` steps: a device sync) and the checkpoint (when due). ``benchmarks/speed.py`` profiles a
step by them."""


def _no_mark(phase: str) -> None:
    """The ``mark`` of a run that is not profiled."""


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


class ComponentWarning(UserWarning):
    """The kernel's top eigenfunctions would be component indicators."""


def _warn_about_components(trivial: TrivialEigenvectors, config: TrainConfig) -> None:
    """Warn when the top-k eigenfunctions of the kernel would be component indicators."""
    kernel = KERNELS[config.kernel]
    if not kernel.nontrivial and not kernel.self_loops and trivial.count >= config.k:
        warnings.warn(f"the graph has {trivial.count:,} connected components with edges, at least k = {config.k}: the "
                      "top-k eigenfunctions of D^-1/2 A D^-1/2 are then indicators of components, which say nothing "
                      "about nodes within a component. Use `kernel='nontrivial'` to remove them.",
                      ComponentWarning, stacklevel=3)


@dataclass
class _Run:
    """Everything one training run holds, built by :func:`_start_run` and saved in checkpoints."""

    graph: Graph
    config: TrainConfig
    model: NeuralEigenfunctions
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LambdaLR
    estimator: object
    sampler: torch.Generator
    inputs: FeatureStore | None
    trivial: TrivialEigenvectors
    eigenvalues: torch.Tensor
    state: dict

    def checkpoint_parts(self) -> tuple:
        """What :func:`~graph_eigenmap.checkpoint.save_checkpoint` and ``load_checkpoint`` read and fill."""
        return (self.config, self.graph, self.model, self.optimizer, self.schedule, self.sampler, self.eigenvalues,
                self.state, self.estimator)


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
    inputs_file: str | Path | None = None,
    mark: Callable[[str], None] | None = None,
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
        inputs_file: a new ``.npy`` file for propagated model inputs, which are then memory-mapped from it
            (:func:`~graph_eigenmap.inputs.model_input_graph`); None keeps them in memory.
        mark: for profiling: called with each phase's name (:data:`STEP_PHASES`) as it ends, every step, nothing
            synchronized for it (the profiler records the time, or a device event, there); None: not profiled.

    Raises:
        GraphEigenmapError: bad configuration, or a checkpoint that does not match.
    """
    ranks = ranks or Ranks()
    device = torch.device(device)
    if ranks.active:
        device = distributed.start(ranks, device)
    mark_phase("resolve")
    config = resolve(config, graph, device)
    if ranks.active and not ESTIMATORS[config.estimator].draws_nodes:
        raise GraphEigenmapError(f"training on several processes needs an estimator that draws nodes (the "
                                 f"{config.estimator} one would repeat the same step on every rank); use "
                                 "`estimator='sampled'`, 'block' or 'rows'.")
    run = _start_run(graph, config, device, ranks, inputs_file)
    checkpoint = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir else None
    if checkpoint is not None and checkpoint.exists():
        _resume_run(run, checkpoint, resume, ranks)
    if device.type == "cuda":  # the fit's metadata reports the peak of training and embedding (peak_gpu_gib)
        torch.cuda.reset_peak_memory_stats(device)
    mark_phase("train")
    release_freed_host_memory()  # what building the run allocated and freed: not kept through training
    start = time.perf_counter()
    _train_steps(run, ranks, progress, log_every, start, checkpoint if ranks.main else None, mark or _no_mark)
    run.model.eval()
    kernel = _measuring_kernel(run.graph, config, run.estimator, run.trivial)
    eigenvalues = run.eigenvalues
    if config.rayleigh_ritz and run.inputs is not None and ranks.main:
        if kernel is None:
            kernel = full_kernel(run.graph, config.kernel, device)
        eigenvalues = torch.from_numpy(rayleigh_ritz_head(run.model, run.inputs.inputs, kernel))
    return TrainResult(run.model, config, eigenvalues.cpu().numpy().astype(np.float64), run.state["step"],
                       time.perf_counter() - start, run.state["history"], kernel, run.state.get("reorders", 0))


def _start_run(graph: Graph, config: TrainConfig, device: torch.device, ranks: Ranks,
               inputs_file: str | Path | None = None) -> _Run:
    """The model (seeded), its inputs, the estimator, optimizer, schedule and sampler of a fresh run."""
    mark_phase("inputs")
    if not config.identity:
        graph = model_input_graph(graph, config.inputs, device, file=inputs_file)
    mark_phase("setup")
    trivial = graph_trivial_eigenvectors(graph)
    _warn_about_components(trivial, config)
    kernel = KERNELS[config.kernel]
    estimator = make_estimator(config, kernel_adjacency(graph, config.kernel), shift=kernel.shift, device=device,
                               trivial=trivial if kernel.nontrivial else None)
    model = build_model(config, graph.num_features, graph.num_nodes,
                        generator=torch.Generator().manual_seed(config.seed), features=graph.features).to(device)
    if config.compile:
        model.compile_network()
    inputs = None if config.identity else FeatureStore(graph.features, device, config.feature_storage)
    rows_per_step = config.batch_size if ESTIMATORS[config.estimator].draws_nodes else graph.num_nodes
    optimizer = make_optimizer(model, config, rows_per_step=rows_per_step)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(config.steps, config.warmup))
    sampler = torch.Generator(device=device).manual_seed(_sampler_seed(config.seed, ranks, 0))
    return _Run(graph, config, model, optimizer, schedule, estimator, sampler, inputs, trivial,
                torch.zeros(config.k, device=device), dict(step=0, history=[]))


def _resume_run(run: _Run, checkpoint: Path, resume: bool, ranks: Ranks) -> None:
    """Load ``checkpoint`` into ``run`` (``resume`` must ask for it)."""
    if not resume:
        raise GraphEigenmapError(f"{checkpoint} exists from an earlier run; pass `resume=True` to continue it, or "
                                 "choose another output folder.")
    load_checkpoint(checkpoint, *run.checkpoint_parts())
    if ranks.active:  # the checkpoint holds rank 0's draws: each rank continues with its own
        run.sampler.manual_seed(_sampler_seed(run.config.seed, ranks, run.state["step"]))


def _train_steps(run: _Run, ranks: Ranks, progress: bool | None, log_every: int, start: float,
                 checkpoint: Path | None, mark: Callable[[str], None] = _no_mark) -> None:
    """Steps from the run's current one to ``config.steps``, with logging, reordering and checkpoints; ``mark`` is
    told the end of each phase (:data:`STEP_PHASES`)."""
    config, state = run.config, run.state
    network = _data_parallel(run.model, run.estimator, ranks, run.eigenvalues.device)
    reduce = distributed.mean_over_ranks if ranks.active else None
    use_bf16 = config.bf16 and run.eigenvalues.device.type == "cuda"
    run.model.train()
    with ProgressBar(progress if ranks.main else False, config.steps, state["step"]) as bar:
        for step in range(state["step"], config.steps):
            draw = run.estimator.draw(run.sampler)
            mark("draw")
            loss, r = train_step(network, run.optimizer, run.estimator, draw, run.inputs, config, use_bf16=use_bf16,
                                 reduce=reduce, mark=mark)
            run.schedule.step()
            diag = torch.diagonal(r)
            run.eigenvalues.copy_(diag if step == 0 else
                                  EIGENVALUE_MOMENTUM * run.eigenvalues + (1 - EIGENVALUE_MOMENTUM) * diag)
            state["step"] = step + 1
            mark("eigenvalues")
            if _reorder_due(config, step + 1) and reorder_outputs(
                    run.model, run.optimizer, run.eigenvalues,
                    key=_order_key(run.model, run.estimator, run.inputs, reduce)):
                state["reorders"] = state.get("reorders", 0) + 1
            mark("reorder")
            if (step + 1) % log_every == 0 or step + 1 == config.steps:
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise TrainingDivergedError(step + 1, value, config.lr)
                state["history"].append((step + 1, time.perf_counter() - start, value, float(run.eigenvalues[0])))
                bar.update(step + 1, value, run.eigenvalues)
            mark("log")
            if checkpoint is not None and config.checkpoint_every and (step + 1) % config.checkpoint_every == 0:
                save_checkpoint(checkpoint, *run.checkpoint_parts())
            mark("checkpoint")
    if checkpoint is not None and state["step"] % max(config.checkpoint_every, 1) != 0:
        save_checkpoint(checkpoint, *run.checkpoint_parts())


ROW_BLOCK_KERNEL_MIN_ENTRIES = 1 << 30
"""Stored adjacency entries from which a sampled or block run measures its result with the lean
:class:`~graph_eigenmap.kernel.RowBlockKernel` over the estimator's own arrays instead of :func:`full_kernel`
(a torch CSR copy of 12 bytes per entry on the device and a scipy one on the host)."""


def _measuring_kernel(graph: Graph, config: TrainConfig, estimator, trivial: TrivialEigenvectors):
    """The kernel a finished run is measured with (exact quotients, Rayleigh–Ritz): the estimator's own, the
    lean product over its arrays for large graphs, or None (the caller builds :func:`full_kernel`)."""
    kernel = getattr(estimator, "kernel", None)
    if kernel is None and hasattr(estimator, "graph") and graph.adjacency.nnz >= ROW_BLOCK_KERNEL_MIN_ENTRIES:
        choice = KERNELS[config.kernel]
        kernel = estimator.graph.kernel(shift=choice.shift, trivial=trivial if choice.nontrivial else None)
    return kernel


def train_step(network, optimizer: torch.optim.Optimizer, estimator, draw, inputs, config: TrainConfig, *,
               use_bf16: bool = False, reduce=None, mark: Callable[[str], None] = _no_mark
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on the nodes of ``draw``; returns ``(loss, [k, k] R estimate)``, both detached.

    The loss is the objective ``config.objective`` names (:data:`graph_eigenmap.registry.OBJECTIVES`).

    Args:
        network: the model, or its :class:`~torch.nn.parallel.DistributedDataParallel` wrapper.
        inputs: the :class:`~graph_eigenmap.feature_store.FeatureStore` of node inputs, None for the identity table.
        reduce: the differentiable mean over ranks of data-parallel training (None: one process).
        mark: told the end of each of the step's phases from ``"gather"`` to ``"optimizer"`` (:data:`STEP_PHASES`).
    """
    if inputs is None:
        x = draw.node_ids
    else:  # the full graph embeds every node in order: no gather
        x = inputs.all() if draw.every_node else inputs.rows(draw.node_ids)
    mark("gather")
    device = draw.node_ids.device
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
        psi = network(x, draw.num_stat_rows, draw.num_a_rows if config.one_sided_gradient else None)
    mark("forward")
    a, c = estimator.estimate(psi, draw, c_has_gradient=not config.one_sided_gradient)
    mark("estimate")
    objective = OBJECTIVES.load(config.objective)
    loss, r = objective(a, c, alpha=config.alpha, stop_gradient=config.stop_gradient,
                        c_has_gradient=not config.one_sided_gradient, reduce=reduce, exact=draw.every_node)
    mark("objective")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    mark("backward")
    optimizer.step()
    mark("optimizer")
    return loss.detach(), r


def _data_parallel(model: NeuralEigenfunctions, estimator, ranks: Ranks, device: torch.device):
    """``model`` itself for one process; else its DDP wrapper, with L2-BN and component sums averaged over ranks."""
    if not ranks.active:
        return model
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
    ``benchmarks/results/quality/reorder_effect.md``). In data-parallel training the quotients are averaged over the
    ranks (``reduce``), so that every rank applies the same permutation even where rounding differs between them."""
    kernel = getattr(estimator, "kernel", None)
    if kernel is None or estimator.num_nodes > EXACT_ORDER_MAX_NODES:
        return None
    quotients = exact_quotients(model, estimator.all_ids if inputs is None else inputs.all(), kernel)
    return quotients if reduce is None else reduce(quotients)


def _reorder_due(config: TrainConfig, steps_done: int) -> bool:
    return (config.reorder and config.stop_gradient and steps_done % REORDER_EVERY == 0
            and steps_done <= REORDER_UNTIL * config.steps)


