"""Put the outputs in eigenvalue order during training: a permutation of the output units, then more training.

Why the stop-gradient outputs come out unordered. With ψ_i held constant in output j's penalty
(:mod:`graph_eigenmap.objective`), output j maximizes its Rayleigh quotient among functions
Ā-orthogonal to outputs 1..j−1. Outputs that each hold an eigenfunction, in any order, make R
diagonal: every such state has zero gradient. Only the descending order is stable; in another,
output i holding a lower eigenvalue than a later output j sits at a saddle whose way out (output i
rotating towards output j's eigenfunction) grows like exp(lr · (λ_j − λ_i) · steps). With gaps of
0.01-0.2 between neighbouring eigenvalues and a few hundred steps of a decaying learning rate, a
pair that lands in the wrong order early stays there: the eigenvalue estimates match the exact
quotients, yet neighbouring quotients rise (``benchmarks/results/quality/order_*.md``).

The fix. Swapping two outputs that hold eigenfunctions leaves the loss unchanged (R stays
diagonal, its trace the same) and moves the state from the saddle to the stable ordering. So every
:data:`REORDER_EVERY` steps of the first :data:`REORDER_UNTIL` of training (:mod:`graph_eigenmap.train`), if
the outputs are not in descending order of their eigenvalues, they are permuted into it. The order is
read from the outputs' exact Rayleigh quotients (:func:`exact_quotients`, one pass over all nodes and one
product with the kernel) where the estimator holds the kernel on the device (full graph, rows) and the
graph has at most :data:`EXACT_ORDER_MAX_NODES` nodes, and from the running eigenvalue estimates otherwise
(sampled, block): those lag and carry the estimator's noise, up to about 0.01 at the defaults, and sorting
by them left pairs of neighbours whose quotients rise by as much. The output units are permuted —
head rows and bias (or the table's columns), their optimizer moments, the L2-BN running RMS and the
estimates — and training goes on, so that each output is refined against the right earlier outputs for
the rest of the run. The last steps run without permutations.

How long to reorder, and what is left. Outputs keep leaving order while training goes on: at the
default 500 steps they are far from converged (amazon_photo's leading quotients 0.945 at 500 steps,
0.999 at 1500) and each climbs at its own pace, so 10-25 pairs rise again within 25 steps of a sort.
Reordering during the first 80 % of training and then none left 40 rising pairs (> 0.01) over the ten
shared cases (five graphs × two layouts, ``benchmarks/results/quality/reorder_effect.md``); through the first
:data:`REORDER_UNTIL` = 95 %, 3 (none in 8 of 10 cases, the largest rise 0.015), with a higher sum of
quotients and the same probes. The other candidate causes were measured against the 80 % window:
three times the steps leaves 1 rising pair, but its first 16 outputs probe 10 points worse on valid
(60.8 against 70.4 %) and all 64 three points worse; the two-sided gradient 52 and α = 2 34, so neither the
one-sided gradient nor the penalty's weight is the cause. The last 5 % of training (25 steps at the default,
at a learning rate below 1 % of its peak) runs without permutations.

The recorded last step. The order the outputs end training in is measured exactly afterwards
(``order_violations_in_training`` in metadata.json). Where a neighbouring quotient still rises by more
than 0.01, the outputs are put in descending order of their exact Rayleigh quotients
(:func:`sort_outputs`), model included, and the permutation is recorded (``final_sort``), so that
every prefix of the saved embedding and of ``transform`` is the best prefix training found.
"""

from __future__ import annotations

import numpy as np
import torch

from graph_eigenmap.data.sparse import take_rows
from graph_eigenmap.metrics import rayleigh_quotients
from graph_eigenmap.models import EmbeddingTable, NeuralEigenfunctions

REORDER_EVERY = 25
"""Steps between checks of the output order (``TrainConfig.reorder``); each check syncs with the device."""
REORDER_UNTIL = 0.95
"""Fraction of training during which outputs are reordered (0.8 before 2026-12-01; see above); the rest runs without."""


@torch.no_grad()
def reorder_outputs(model: NeuralEigenfunctions, optimizer: torch.optim.Optimizer, eigenvalues: torch.Tensor,
                    tolerance: float = 0.0, key: torch.Tensor | None = None) -> bool:
    """Permute the output units into descending order of ``key`` if it rises anywhere by more than ``tolerance``.

    Args:
        model: the network being trained (a linear head, or an identity table whose columns are the outputs).
        optimizer: its optimizer; per-parameter state tensors of the output units are permuted alike.
        eigenvalues: ``[k]`` running eigenvalue estimates, permuted in place.
        key: ``[k]`` what to order by (the outputs' exact Rayleigh quotients, :func:`exact_quotients`);
            None orders by ``eigenvalues``.

    Returns:
        whether a permutation was applied.
    """
    key = eigenvalues if key is None else key.to(eigenvalues)
    if not bool((key[1:] - key[:-1] > tolerance).any()):
        return False
    order = torch.argsort(key, descending=True, stable=True)
    permute_outputs(model, order, optimizer)
    _permute(eigenvalues, order, 0)
    return True


@torch.no_grad()
def permute_outputs(model: NeuralEigenfunctions, order: torch.Tensor,
                    optimizer: torch.optim.Optimizer | None = None) -> None:
    """Make output j of ``model`` the former output ``order[j]``.

    Args:
        model: the network (a linear head, or an identity table whose columns are the outputs).
        order: ``[k]`` a permutation of 0..k-1.
        optimizer: its optimizer, if training goes on; per-parameter state tensors of the output
            units are permuted alike.
    """
    for parameter, dim in _output_parameters(model):
        _permute(parameter, order, dim)
        state = optimizer.state.get(parameter, {}) if optimizer is not None else {}
        for value in state.values():
            if isinstance(value, torch.Tensor) and value.shape == parameter.shape:
                _permute(value, order, dim)
    _permute(model.norm.running_rms, order, 0)


EXACT_ORDER_MAX_NODES = 1 << 24
"""Nodes up to which a run whose estimator holds the kernel on the device orders its outputs by exact quotients."""


@torch.no_grad()
def exact_quotients(model: NeuralEigenfunctions, inputs: torch.Tensor, kernel, chunk_size: int = 65536) -> torch.Tensor:
    """``[k]`` exact Rayleigh quotients ψ_jᵀĀψ_j / ψ_jᵀψ_j of the model's outputs on all n nodes, in float32 and
    eagerly.

    Args:
        model: the network being trained; left in training mode. The outputs are taken before L2-BN, which only
            scales each column and so leaves its quotient unchanged; no running statistic is touched.
        inputs: ``[n, d]`` inputs of every node (or ``[n]`` node ids for an identity table), on the model's device.
        kernel: the ``[n, n]`` kernel on that device (a torch sparse matrix or anything with ``@``).
    """
    was_training = model.training
    model.eval()  # no dropout
    try:
        psi = torch.cat([model.head(model.backbone(take_rows(inputs, slice(begin, begin + chunk_size)))).float()
                         for begin in range(0, inputs.shape[0], chunk_size)])
    finally:
        model.train(was_training)
    return torch.from_numpy(rayleigh_quotients(psi, kernel)).to(psi.device, torch.float32)


def sort_outputs(model: NeuralEigenfunctions, quotients: np.ndarray, tolerance: float) -> np.ndarray | None:
    """The recorded last step: outputs into descending order of their exact Rayleigh quotients.

    Args:
        model: the trained network, permuted in place.
        quotients: ``[k]`` exact Rayleigh quotients of its outputs, in output order.
        tolerance: sort only when some neighbouring quotient rises by more than this.

    Returns:
        ``[k]`` the permutation applied (new output j = old output ``order[j]``), or None when the
        outputs were already in order.
    """
    if not (np.diff(quotients) > tolerance).any():
        return None
    order = np.argsort(-np.asarray(quotients), kind="stable")
    permute_outputs(model, torch.from_numpy(order))
    return order

def _output_parameters(model: NeuralEigenfunctions) -> list[tuple[torch.Tensor, int]]:
    """Each parameter with one slice per output unit, and the dimension that indexes the outputs."""
    if isinstance(model.backbone, EmbeddingTable):
        return [(model.backbone.weight, 1)]  # [n, k]
    return [(model.head.weight, 0), (model.head.bias, 0)]  # [k, h], [k]


def _permute(tensor: torch.Tensor, order: torch.Tensor, dim: int) -> None:
    tensor.copy_(tensor.index_select(dim, order.to(tensor.device)))
