"""Data-parallel NeuralEF over several processes with ``torch.distributed``: one step of N ranks × b seeds is one
step of N·b.

Each rank sees the whole graph (launched by :func:`launch` through ``fit --nproc``, it maps the one copy its launcher
wrote, :mod:`graph_eigenmap.shared_graph`) and holds the model, draws its own seeds, and the ranks make one step
together:

* the model is wrapped in :class:`torch.nn.parallel.DistributedDataParallel`, which averages gradients;
* the two places where NeuralEF couples the drawn nodes are averaged over ranks with a differentiable
  all-reduce (:func:`mean_over_ranks`): the L2-BN mean squares
  (:class:`graph_eigenmap.models.L2BatchNorm`) and the ``[k, k]`` estimate of R
  (:func:`graph_eigenmap.objectives.neuralef.neuralef_loss`); the nontrivial kernel's component sums are
  averaged too (without gradient).

Why the gradients come out right: with every rank drawing b seeds, R over N·b seeds is the mean of the
ranks' R, and so is the mean square of each output. The all-reduce's backward sums the (identical)
gradients of all ranks, so rank r's parameter gradient is N times the part of the true gradient that
comes through its own seeds; DDP's average divides by N and adds the parts: the gradient of one process
with all N·b seeds (``tests/test_distributed.py`` checks loss, gradients and updated weights to 1e-5).
The eigenvalue averages, reorderings and L2-BN running RMS are then identical on every rank.

Launching: ``graph-eigenmap fit --nproc N`` starts N processes (:func:`launch`); under ``torchrun``
the variables ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (and ``MASTER_ADDR``/``MASTER_PORT``) are read
instead. NCCL on GPUs (rank r on ``cuda:LOCAL_RANK``), gloo on CPUs. Collectives time out after
:data:`TIMEOUT_S`, so a rank that dies ends the others with an error instead of a hang. Rank 0 writes
checkpoints and outputs.
"""

from __future__ import annotations

import datetime
import os
import socket
from dataclasses import dataclass

import torch

from graph_eigenmap.errors import GraphEigenmapError

TIMEOUT_S = float(os.environ.get("GRAPH_EIGENMAP_DISTRIBUTED_TIMEOUT_S", 600))
"""Seconds a collective waits for the other ranks before the run fails."""


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    forced: bool = False
    """Use the process group and DDP even for one process (``GRAPH_EIGENMAP_DISTRIBUTED=1``): to measure their cost."""

    @property
    def main(self) -> bool:
        """Rank 0: the one that writes checkpoints and outputs."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1 or self.forced


def ranks_from_environment() -> Ranks:
    """:class:`Ranks` from ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` (one process when they are unset)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return Ranks(rank, world, int(os.environ.get("LOCAL_RANK", str(rank))),
                 forced=os.environ.get("GRAPH_EIGENMAP_DISTRIBUTED") == "1")


def check_process_count(nproc: int, device: torch.device) -> None:
    """Fail before any work when ``nproc`` processes on ``device`` cannot each have a GPU of their own."""
    if nproc > 1 and device.type == "cuda" and nproc > torch.cuda.device_count():
        raise GraphEigenmapError(f"`nproc={nproc}` needs {nproc} GPUs (one per process); torch sees "
                                 f"{torch.cuda.device_count()}. Give `nproc={torch.cuda.device_count()}` or "
                                 "`device='cpu'`.")


def start(ranks: Ranks, device: torch.device) -> torch.device:
    """Join the process group (if not joined yet) and return this rank's device (``cuda:LOCAL_RANK`` on GPUs)."""
    import torch.distributed as dist  # deferred: only data-parallel runs need it

    if device.type == "cuda":
        device = torch.device("cuda", ranks.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=ranks.rank,
                                world_size=ranks.world_size, timeout=datetime.timedelta(seconds=TIMEOUT_S))
    return device


class _SumOverRanks(torch.autograd.Function):
    """All-reduce (sum) whose backward all-reduces (sums) the gradient: the adjoint of summing over ranks."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone(memory_format=torch.contiguous_format)  # NCCL takes contiguous tensors only
        torch.distributed.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone(memory_format=torch.contiguous_format)
        torch.distributed.all_reduce(total)
        return total


def mean_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of ``tensor`` over all ranks, with gradient (its backward sums the ranks' gradients)."""
    return _SumOverRanks.apply(tensor) / torch.distributed.get_world_size()


def mean_over_ranks_(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of ``tensor`` over all ranks, in place and without gradient."""
    torch.distributed.all_reduce(tensor)
    return tensor.div_(torch.distributed.get_world_size())


def free_port() -> int:
    """A TCP port on this host that nothing listens on now (for ``MASTER_PORT``)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch(nproc: int, target, *args) -> None:
    """Run ``target(ranks, *args)`` in ``nproc`` new processes on this host, as ``torchrun`` would, and wait.

    A rank that fails ends the others (``torch.multiprocessing`` terminates them) and this call raises.
    """
    import torch.multiprocessing as mp  # deferred: only data-parallel runs need it

    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ["MASTER_PORT"] = str(free_port())
    mp.start_processes(_run_rank, args=(nproc, target, args), nprocs=nproc, join=True, start_method="spawn")


def _run_rank(rank: int, nproc: int, target, args) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(nproc), LOCAL_RANK=str(rank))
    try:
        target(Ranks(rank, nproc, rank), *args)
        if torch.distributed.is_initialized():
            # No rank tears down while another still talks to it: a rank that left first took its gloo pairs
            # (and, rank 0, the store) with it, and a peer's worker thread then aborted the process now and
            # then ("terminate called without an active exception", SIGABRT). Not after a failure: the other
            # ranks may never arrive, and torch.multiprocessing ends them.
            torch.distributed.barrier()
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
