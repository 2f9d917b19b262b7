"""Put the outputs in eigenvalue order during training: a permutation of the output units, then more training.

Why the stop-gradient outputs come out unordered. With ψ_i held constant in output j's penalty
(:mod:`graph_eigenmap.objective`), output j maximizes its Rayleigh quotient among functions
Ā-orthogonal to outputs 1..j−1. Outputs that each hold an eigenfunction, in any order, make R
diagonal: every such state has zero gradient. Only the descending order is stable; in another,
output i holding a lower eigenvalue than a later output j sits at a saddle whose way out (output i
rotating towards output j's eigenfunction) grows like exp(lr · (λ_j − λ_i) · steps). With gaps of
0.01-0.2 between neighbouring eigenvalues and a few hundred steps of a decaying learning rate, a
pair that lands in the wrong order early stays there: the eigenvalue estimates match the exact
quotients, yet neighbouring quotients rise (``benchmarks/results/order_*.md``).

The fix. Swapping two outputs that hold eigenfunctions leaves the loss unchanged (R stays
diagonal, its trace the same) and moves the state from the saddle to the stable ordering. So every
:data:`REORDER_EVERY` steps of the first :data:`REORDER_UNTIL` of training (:mod:`graph_eigenmap.train`), if
the running eigenvalue estimates are not descending,
the output units are permuted into descending order — head rows and bias (or the table's columns),
their optimizer moments, the L2-BN running RMS and the estimates — and training goes on, so that
each output is refined against the right earlier outputs for the rest of the run. The last steps
run without permutations; the order the outputs end in is the training's, measured afterwards
(``order_violations`` in metadata.json). On the shared graphs this removes most but not all rising
pairs (``benchmarks/results/reorder_effect.md``).
"""

from __future__ import annotations

import torch

from graph_eigenmap.models import EmbeddingTable, NeuralEigenfunctions


@torch.no_grad()
def reorder_outputs(model: NeuralEigenfunctions, optimizer: torch.optim.Optimizer, eigenvalues: torch.Tensor,
                    tolerance: float = 0.0) -> bool:
    """Permute the output units into descending ``eigenvalues`` order if they rise anywhere by more than ``tolerance``.

    Args:
        model: the network being trained (a linear head, or an identity table whose columns are the outputs).
        optimizer: its optimizer; per-parameter state tensors of the output units are permuted alike.
        eigenvalues: ``[k]`` running eigenvalue estimates, permuted in place.

    Returns:
        whether a permutation was applied.
    """
    if not bool((eigenvalues[1:] - eigenvalues[:-1] > tolerance).any()):
        return False
    order = torch.argsort(eigenvalues, descending=True, stable=True)
    for parameter, dim in _output_parameters(model):
        _permute(parameter, order, dim)
        for value in optimizer.state.get(parameter, {}).values():
            if isinstance(value, torch.Tensor) and value.shape == parameter.shape:
                _permute(value, order, dim)
    _permute(model.norm.running_rms, order, 0)
    _permute(eigenvalues, order, 0)
    return True

REORDER_EVERY = 25
"""Steps between checks of the output order (``TrainConfig.reorder``); each check syncs with the device."""
REORDER_UNTIL = 0.8
"""Fraction of training during which outputs are reordered; the rest refines the final order."""


def _output_parameters(model: NeuralEigenfunctions) -> list[tuple[torch.Tensor, int]]:
    """Each parameter with one slice per output unit, and the dimension that indexes the outputs."""
    if isinstance(model.backbone, EmbeddingTable):
        return [(model.backbone.weight, 1)]  # [n, k]
    return [(model.head.weight, 0), (model.head.bias, 0)]  # [k, h], [k]


def _permute(tensor: torch.Tensor, order: torch.Tensor, dim: int) -> None:
    tensor.copy_(tensor.index_select(dim, order.to(tensor.device)))
