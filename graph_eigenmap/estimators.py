"""Estimates of R = (1/n) Ψᵀ Ā Ψ from one training step's draw of nodes.

Each estimator draws the nodes a step embeds (``draw``) and, from ψ at those nodes, returns
``(A, C)``, two ``[b, k]`` matrices with R ≈ (AᵀC + CᵀA) / (2b) unbiased
(:func:`graph_eigenmap.objectives.estimate_r`):

* :class:`FullGraphEstimator`: every node, C = ĀΨ by one sparse-dense product. Exact.
* :class:`RowBatchEstimator`: C = ĀΨ exact from a pass over all n nodes without autograd, A at b
  rows drawn uniformly, the only ones that carry gradient (one-sided gradient only). Unbiased;
  a step costs a forward pass over the graph plus a backward pass over b rows.
* :class:`NeighborSampledEstimator`: b seeds u drawn uniformly, f neighbours each drawn from
  N(u) with replacement (∝ edge weight), C(u) = √d_u · (1/f) Σ_s ψ(v_s)/√d_{v_s}. Unbiased;
  L2-BN statistics come from the seeds only (neighbours are drawn ∝ degree).
* :class:`BlockEstimator`: the reference's two independent uniform batches I, J and the block
  Ā[I, J]; C = (n/|J|) Ā[I, J] ψ(J). Unbiased, but few nonzeros fall in a block of a sparse
  graph, so its variance is high.

With the one-sided gradient (:func:`graph_eigenmap.objectives.neuralef.neuralef_loss`, the default for MLPs)
only the rows A reads (``Draw.num_a_rows``) need autograd: the sampled estimator's neighbours and
the block estimator's J are embedded forward-only, and the full graph's C = ĀΨ is a plain product
of detached Ψ.

Each is registered by name in :data:`graph_eigenmap.registry.ESTIMATORS` and built from a configuration by its
``from_config``; :func:`make_estimator` picks it. The sampler is plain PyTorch on a CSR graph held on the model's
device (no torch-sparse, no pyg-lib).
The kernel variants of :mod:`graph_eigenmap.kernel` are supported: pass the adjacency the
kernel normalizes (A, or A + I for GCN normalization), ``shift=True`` for (I + Ā)/2, and the
graph's trivial eigenvectors (``trivial=``) for the nontrivial kernel Ā' = Ā − Σ_c u_c u_cᵀ:

* full and rows: exact, C = Ā'Ψ by :class:`~graph_eigenmap.kernel.DeflatedKernel`;
* sampled and block: C(u) − u_u s̄_{c(u)}, where s̄_c estimates s_c = u_cᵀΨ = Σ_{i∈c} u_i ψ(i) by a
  moving average (:class:`ComponentSums`) of the unbiased batch estimates (n/b) Σ_{seeds i∈c} u_i ψ(i)
  of *earlier* steps. Because s̄ does not depend on the current draw, the correction's expectation is
  (1/n) Σ_c s_c E[s̄_c]ᵀ, and E[s̄_c] = s_c whenever Ψ stands still: the estimate is unbiased for a
  fixed Ψ and consistent as training settles; its bias is the lag of the average behind a moving Ψ
  (measured in tests/test_nontrivial_kernel.py). Plugging the current batch's own estimate in
  instead would be biased by Σ_c Var(ŝ_c)/n, about (number of components hit) / b. These two
  estimators need the one-sided gradient (the average carries no gradient; twice the drawn rows'
  share is the gradient, as for Ā).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from graph_eigenmap.config import TrainConfig
from graph_eigenmap.kernel import (
    DeflatedKernel,
    RowBlockKernel,
    TrivialEigenvectors,
    normalized_adjacency,
    to_torch_csr,
)
from graph_eigenmap.registry import ESTIMATORS
from graph_eigenmap.transfer import to_device


@dataclass
class Draw:
    """The nodes one step embeds.

    Attributes:
        node_ids: ``[m]`` int64 ids; the first ``num_stat_rows`` were drawn uniformly and give
            the L2-BN statistics.
        num_stat_rows: see above.
        num_a_rows: the first rows, which A reads; the rest only feed C, so with a one-sided
            gradient (:func:`graph_eigenmap.objectives.neuralef.neuralef_loss`) they need no autograd.
        pairs: estimator-specific index tensors (neighbour weights, block pairs).
        every_node: the draw is every node in order (the full graph): the model reads all inputs, no gather.
    """

    node_ids: torch.Tensor
    num_stat_rows: int
    num_a_rows: int
    pairs: tuple = ()
    every_node: bool = False


class _GraphOnDevice:
    """CSR structure, edge weights and degrees of the adjacency the kernel normalizes, kept lean on the device.

    Row pointers are int64 (positions may pass 2³¹ at papers100M's 3.2 billion entries), column ids and
    neighbour counts int32 where the node count allows (half the bytes of int64: 13 instead of 26 GB
    at papers100M's size), and an unweighted graph stores no weights (``weights`` is None).
    """

    def __init__(self, adjacency: sp.csr_matrix, device):
        csr = sp.csr_matrix(adjacency)
        self.num_nodes = csr.shape[0]
        ids = torch.int32 if self.num_nodes < 2**31 else torch.int64
        self.indptr = torch.from_numpy(csr.indptr.astype(np.int64)).to(device)
        self.indices = to_device(csr.indices, device, ids)
        self.unweighted = bool(np.all(csr.data == 1))
        self.weights = None if self.unweighted else torch.from_numpy(csr.data.astype(np.float32)).to(device)
        degree = torch.from_numpy(np.asarray(csr.sum(axis=1), dtype=np.float32).ravel()).to(device)
        self.count = (self.indptr[1:] - self.indptr[:-1]).to(ids)
        self.degree = degree
        self.inv_sqrt_degree = torch.where(degree > 0, degree.clamp(min=1e-30).rsqrt(), torch.zeros_like(degree))
        self.cum_weights = None if self.unweighted else torch.cumsum(self.weights.double(), 0)
        self.device = device

    def kernel(self, *, shift: bool = False, trivial: TrivialEigenvectors | None = None):
        """The kernel these arrays normalize, as a product (:class:`~graph_eigenmap.kernel.RowBlockKernel`;
        :class:`~graph_eigenmap.kernel.DeflatedKernel` of it for ``trivial``), sharing their memory."""
        kernel = RowBlockKernel(self.indptr, self.indices, self.weights, self.inv_sqrt_degree, shift=shift)
        return kernel if trivial is None else DeflatedKernel(kernel, trivial)

    def expand_rows(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For ``[b]`` rows: ``(position in rows, index into indices)`` of all their entries."""
        counts = self.count[rows].long()
        position = torch.repeat_interleave(torch.arange(rows.numel(), device=rows.device), counts)
        first = torch.cumsum(counts, 0) - counts
        offset = torch.arange(position.numel(), device=rows.device) - first[position]
        return position, self.indptr[rows][position] + offset


class SymmetricProduct(torch.autograd.Function):
    """``kernel @ x`` for a symmetric sparse kernel, whose gradient is ``kernel @ grad``.

    torch's own backward for a CSR product forms the transpose of the kernel on every step (a sort
    of all its nonzeros); symmetry makes that transpose the kernel itself.
    """

    @staticmethod
    def forward(ctx, kernel: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.kernel = kernel
        return kernel @ x

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return None, ctx.kernel @ grad


class FullGraphEstimator:
    """Exact R from all n nodes: C = Ā Ψ."""

    name = "full"

    def __init__(self, adjacency: sp.csr_matrix, *, shift: bool = False, trivial: TrivialEigenvectors | None = None,
                 device="cpu"):
        self.num_nodes = adjacency.shape[0]
        self.kernel = to_torch_csr(normalized_adjacency(adjacency, shift=shift), device=device, compact=True)
        if trivial is not None:
            self.kernel = DeflatedKernel(self.kernel, trivial)
        self.all_ids = torch.arange(self.num_nodes, device=device)

    @classmethod
    def from_config(cls, adjacency: sp.csr_matrix, config: TrainConfig, **common) -> "FullGraphEstimator":
        return cls(adjacency, **common)

    def draw(self, generator: torch.Generator) -> Draw:
        return Draw(self.all_ids, self.num_nodes, self.num_nodes, every_node=True)

    def estimate(self, psi: torch.Tensor, draw: Draw, c_has_gradient: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """``psi``: ``[n, k]`` -> ``(Ψ, ĀΨ)``; without ``c_has_gradient`` no backward product is recorded."""
        psi = psi.float()
        if not c_has_gradient:
            return psi, self.kernel @ psi.detach()
        return psi, SymmetricProduct.apply(self.kernel, psi)


class RowBatchEstimator(FullGraphEstimator):
    """Unbiased R from b uniform rows against the exact C = ĀΨ of all n nodes.

    The draw holds the b rows, then every node in order; with the one-sided gradient (required)
    the model embeds the b rows with autograd and all n nodes without, so the backward pass
    covers b rows instead of n. Stochastic only through the rows: C is exact.

    Args:
        adjacency: ``[n, n]`` symmetric adjacency the kernel normalizes.
        batch_size: b rows per step, drawn with replacement.
        shift: estimate for (I + Ā)/2 instead of Ā.
    """

    name = "rows"

    def __init__(self, adjacency: sp.csr_matrix, *, batch_size: int = 4096, shift: bool = False,
                 trivial: TrivialEigenvectors | None = None, device="cpu"):
        super().__init__(adjacency, shift=shift, trivial=trivial, device=device)
        self.batch_size = batch_size

    @classmethod
    def from_config(cls, adjacency: sp.csr_matrix, config: TrainConfig, **common) -> "RowBatchEstimator":
        return cls(adjacency, batch_size=config.batch_size, **common)

    def draw(self, generator: torch.Generator) -> Draw:
        rows = torch.randint(self.num_nodes, (self.batch_size,), generator=generator, device=self.all_ids.device)
        return Draw(torch.cat([rows, self.all_ids]), self.batch_size, self.batch_size, (rows,))

    def estimate(self, psi: torch.Tensor, draw: Draw,
                 c_has_gradient: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """``psi``: ``[b + n, k]`` (the rows, then every node) -> ``([b, k]`` A, ``[b, k]`` C``)``."""
        if c_has_gradient:
            raise ValueError("the row-batch estimator works with the one-sided gradient only")
        (rows,) = draw.pairs
        b = rows.numel()
        return psi[:b].float(), (self.kernel @ psi[b:].detach().float())[rows]


class NeighborSampledEstimator:
    """Unbiased R from b uniform seeds and f neighbours per seed (see module docstring).

    Args:
        adjacency: ``[n, n]`` symmetric adjacency the kernel normalizes.
        batch_size: b seeds per step.
        fanout: f neighbours per seed, drawn with replacement.
        shift: estimate for (I + Ā)/2 instead of Ā.
        device: where the CSR graph lives and sampling runs.
    """

    name = "sampled"

    def __init__(self, adjacency: sp.csr_matrix, *, batch_size: int = 4096, fanout: int = 8,
                 shift: bool = False, trivial: TrivialEigenvectors | None = None, device="cpu"):
        self.graph = _GraphOnDevice(adjacency, device)
        self.num_nodes = self.graph.num_nodes
        self.batch_size = batch_size
        self.fanout = fanout
        self.shift = shift
        self.component_sums = None if trivial is None else ComponentSums(trivial, device)

    @classmethod
    def from_config(cls, adjacency: sp.csr_matrix, config: TrainConfig, **common) -> "NeighborSampledEstimator":
        return cls(adjacency, batch_size=config.batch_size, fanout=config.fanout, **common)

    def draw(self, generator: torch.Generator) -> Draw:
        g, b, f = self.graph, self.batch_size, self.fanout
        seeds = torch.randint(g.num_nodes, (b,), generator=generator, device=g.device)
        u = torch.rand(b, f, generator=generator, device=g.device)
        start = g.indptr[seeds]
        if g.unweighted:
            offset = (u * g.count[seeds, None]).long().clamp(max=(g.count[seeds, None] - 1).clamp(min=0))
            entry = start[:, None] + offset
        else:  # draw ∝ weight: inverse CDF within the row
            low = torch.where(start > 0, g.cum_weights[(start - 1).clamp(min=0)],
                              torch.zeros_like(start, dtype=torch.float64))
            target = low[:, None] + u.double() * g.degree[seeds, None].double()
            entry = torch.searchsorted(g.cum_weights, target).clamp(min=start[:, None],
                                                                    max=(g.indptr[seeds + 1] - 1).clamp(min=0)[:, None])
        has_neighbours = g.count[seeds] > 0
        entry = torch.where(has_neighbours[:, None], entry, torch.zeros_like(entry))
        neighbours = g.indices[entry].long() if g.indices.numel() else seeds[:, None].expand(b, f)
        neighbours = torch.where(has_neighbours[:, None], neighbours, seeds[:, None])
        # C(u) = sqrt(d_u) / f * sum_s psi(v_s) / sqrt(d_v): one weight per sampled neighbour
        weight = (g.degree[seeds].sqrt() / f)[:, None] * g.inv_sqrt_degree[neighbours]
        weight = torch.where(has_neighbours[:, None], weight, torch.zeros_like(weight))
        return Draw(torch.cat([seeds, neighbours.reshape(-1)]), b, b, (weight,))

    def estimate(self, psi: torch.Tensor, draw: Draw, c_has_gradient: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """``psi``: ``[b (1 + f), k]`` (seeds, then their neighbours) -> ``([b, k]`` A, ``[b, k]`` C``)``."""
        b, f = self.batch_size, self.fanout
        (weight,) = draw.pairs
        a = psi[:b].float()
        c = torch.einsum("bf,bfk->bk", weight, psi[b:].float().view(b, f, -1))
        if self.component_sums is not None:
            c = c - self.component_sums.correction(draw.node_ids[:b], a, c_has_gradient)
        return a, _shifted(a, c) if self.shift else c


class BlockEstimator:
    """The reference's estimator: R ≈ (n / |I||J|) ψ(I)ᵀ Ā[I, J] ψ(J) for uniform batches I, J.

    Args:
        adjacency: ``[n, n]`` symmetric adjacency the kernel normalizes.
        batch_size: |I| = |J|.
        shift: estimate for (I + Ā)/2 instead of Ā.
    """

    name = "block"

    def __init__(self, adjacency: sp.csr_matrix, *, batch_size: int = 4096, shift: bool = False,
                 trivial: TrivialEigenvectors | None = None, device="cpu"):
        self.graph = _GraphOnDevice(adjacency, device)
        self.num_nodes = self.graph.num_nodes
        self.batch_size = batch_size
        self.shift = shift
        self.component_sums = None if trivial is None else ComponentSums(trivial, device)

    @classmethod
    def from_config(cls, adjacency: sp.csr_matrix, config: TrainConfig, **common) -> "BlockEstimator":
        return cls(adjacency, batch_size=config.batch_size, **common)

    def draw(self, generator: torch.Generator) -> Draw:
        g, b = self.graph, self.batch_size
        ids = torch.randint(g.num_nodes, (2 * b,), generator=generator, device=g.device)
        rows, cols = ids[:b], ids[b:]
        cols_sorted, cols_order = torch.sort(cols)
        position, entry = g.expand_rows(rows)
        targets = g.indices[entry].long()
        low = torch.searchsorted(cols_sorted, targets, right=False)
        high = torch.searchsorted(cols_sorted, targets, right=True)
        hits = high - low  # how many members of J equal this neighbour
        pair_row = torch.repeat_interleave(position, hits)
        pair_entry = torch.repeat_interleave(entry, hits)
        first = torch.repeat_interleave(low, hits)
        rank = (torch.arange(pair_row.numel(), device=g.device)
                - torch.repeat_interleave(torch.cumsum(hits, 0) - hits, hits))
        pair_col = cols_order[first + rank]
        rows_src, cols_dst = rows[pair_row], cols[pair_col]
        value = g.inv_sqrt_degree[rows_src] * g.inv_sqrt_degree[cols_dst]
        if g.weights is not None:
            value = g.weights[pair_entry] * value
        return Draw(ids, 2 * b, b, (pair_row, pair_col, value))

    def estimate(self, psi: torch.Tensor, draw: Draw, c_has_gradient: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """``psi``: ``[2b, k]`` (I, then J) -> ``([b, k]`` A, ``[b, k]`` C``)``."""
        b, n = self.batch_size, self.num_nodes
        pair_row, pair_col, value = draw.pairs
        a, psi_j = psi[:b].float(), psi[b:].float()
        c = torch.zeros_like(a).index_add_(0, pair_row, value[:, None] * psi_j[pair_col]) * (n / b)
        if self.component_sums is not None:
            c = c - self.component_sums.correction(draw.node_ids[:b], a, c_has_gradient)
        return a, _shifted(a, c) if self.shift else c


class ComponentSums:
    """Moving average s̄ ``[C, k]`` of s_c = u_cᵀΨ = Σ_{i∈c} u_i ψ(i), from uniformly drawn rows (see module docstring).

    Args:
        trivial: the graph's trivial eigenvectors (u_c and each node's component).
        device: where the sums live.
        momentum: weight of the past in the average (0.9, as L2-BN's running RMS).
    """

    def __init__(self, trivial: TrivialEigenvectors, device, momentum: float = 0.9):
        self.component = torch.from_numpy(trivial.component.astype(np.int64)).to(device)
        self.values = torch.from_numpy(trivial.values).to(device=device, dtype=torch.float32)
        self.num_components = trivial.num_components
        self.momentum = momentum
        self.sums: torch.Tensor | None = None
        self.reduce_ = None  # data-parallel training: the in-place mean over ranks of each batch's sums

    def correction(self, seeds: torch.Tensor, a: torch.Tensor, c_has_gradient: bool = False) -> torch.Tensor:
        """``[b, k]`` u_u s̄_{c(u)} for ``[b]`` uniformly drawn ``seeds`` with ψ ``a``; then folds this batch into s̄.

        The first call has no earlier batches and uses its own estimate (biased for that one step).
        """
        if c_has_gradient:
            raise ValueError("the nontrivial kernel with a sampling estimator needs the one-sided gradient")
        n, b = self.values.numel(), seeds.numel()
        values, component = self.values[seeds, None], self.component[seeds]
        batch = a.new_zeros(self.num_components, a.shape[1]).index_add_(0, component, values * a.detach()) * (n / b)
        if self.reduce_ is not None:
            self.reduce_(batch)
        earlier = batch if self.sums is None else self.sums
        self.sums = batch if self.sums is None else self.momentum * self.sums + (1 - self.momentum) * batch
        return values * earlier[component]


def _shifted(a: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """C for (I + Ā)/2 from C for Ā: AᵀA / b estimates ΨᵀΨ / n without bias, since A is a uniform draw."""
    return 0.5 * (a + c)


def make_estimator(config: TrainConfig, adjacency: sp.csr_matrix, *, shift: bool, device,
                   trivial: TrivialEigenvectors | None = None):
    """The estimator ``config.estimator`` names (:data:`graph_eigenmap.registry.ESTIMATORS`) on the adjacency the
    kernel normalizes, with the kernel's ``shift`` and, for the nontrivial kernel, the ``trivial`` eigenvectors to
    remove (see the module docstring)."""
    return ESTIMATORS.load(config.estimator).from_config(adjacency, config, shift=shift, trivial=trivial, device=device)
