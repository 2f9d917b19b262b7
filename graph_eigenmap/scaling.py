"""Column scaling of node representations, fitted on training rows: what the probe and the supervised baselines read.

* ``standard``: centre each column and divide it by its standard deviation, as scikit-learn's
  ``StandardScaler`` (a column constant on the training rows keeps factor 1 instead of being
  multiplied by a huge number).
* ``maxabs``: divide each column by its largest absolute value, as ``MaxAbsScaler``: binary
  bag-of-words columns stay as they are. Standardizing them would multiply a word seen in 1 of
  140 training documents by 12 and make rare words the cheapest to use.
* ``auto`` (default): ``maxabs`` when every training value is non-negative and at least half of
  them are zero (bag of words, counts), else ``standard``.
* ``none``: leave the representation alone.

A representation made of side-by-side blocks (eigenvectors next to a bag of words) is scaled block by
block (``blocks``: their widths), each block by the rule on its own: standardizing the words because
the eigenvectors beside them are signed would undo what ``maxabs`` is for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from graph_eigenmap.data.sparse import column_statistics
from graph_eigenmap.errors import GraphEigenmapError
from graph_eigenmap.transfer import tensor_view

SCALINGS = ("auto", "standard", "maxabs", "none")
STATISTICS_BLOCK_ELEMENTS = 1 << 22
"""Values of dense rows read at once in float64 by :func:`dense_column_statistics` (32 MiB)."""


@dataclass(frozen=True)
class Scaling:
    """``z = (x − shift) · factor`` per column: ``shift`` ``[d]``, ``factor`` ``[d]``, and the rule's name."""

    shift: torch.Tensor
    factor: torch.Tensor
    kind: str

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``[m, d]`` -> ``[m, d]`` float32 scaled rows."""
        return (x.float() - self.shift) * self.factor


def fit_scaling(x_train, kind: str = "auto", blocks=None) -> Scaling:
    """Column scaling from the ``[t, d]`` training rows (statistics in float64).

    ``blocks``: widths of consecutive column blocks summing to d (e.g. ``(k, f)`` for k eigenvectors
    beside f features), each scaled by ``kind`` on its own; None: the d columns are one block.

    ``x_train`` is a tensor, or a scipy sparse matrix (statistics computed without densifying it).
    ``auto`` is ``maxabs`` when every training value is non-negative and at least half are zero
    (bag of words, counts), else ``standard``. Columns that are constant on the training rows
    keep factor 1 (``standard``) or are left alone (``maxabs`` of an all-zero column).
    """
    if kind not in SCALINGS:
        raise GraphEigenmapError(f"scaling must be one of {', '.join(SCALINGS)}; got {kind!r}.")
    if blocks is not None:
        return _fit_blocks(x_train, kind, [int(width) for width in blocks])
    if sp.issparse(x_train):
        mean, std, top, zeros, non_negative = (torch.as_tensor(v) if isinstance(v, np.ndarray) else v
                                               for v in column_statistics(x_train))
    else:
        mean, std, top, zeros, non_negative = dense_column_statistics(x_train)
    if kind == "auto":
        kind = "maxabs" if non_negative and zeros >= 0.5 else "standard"
    zero, one = torch.zeros_like(mean), torch.ones_like(mean)
    if kind == "none":
        return Scaling(zero.float(), one.float(), kind)
    if kind == "maxabs":
        return Scaling(zero.float(), torch.where(top > 0, top.reciprocal(), one).float(), kind)
    constant = std <= 1e-7 * mean.abs().clamp(min=1.0)
    return Scaling(mean.float(), torch.where(constant, one, std.reciprocal()).float(), kind)


def dense_column_statistics(x, block_elements: int | None = None) -> tuple:
    """Per-column mean, standard deviation and largest absolute value of dense ``[n, d]`` rows (float64 tensors),
    the fraction of zero values and whether all are non-negative.

    Up to ``block_elements`` values (default :data:`STATISTICS_BLOCK_ELEMENTS`) in one float64 piece; more a block
    of rows at a time, in two passes (sums, then squared deviations from the mean), so that the float64 copies of
    products-sized inputs (2.4M × 400: three of 7.7 GB each) are never made. ``x`` may be memory-mapped.
    """
    x = tensor_view(x)
    n, d = x.shape
    limit = STATISTICS_BLOCK_ELEMENTS if block_elements is None else block_elements
    if x.numel() <= limit:
        x = x.double()
        return (x.mean(0), x.std(0, unbiased=False), x.abs().amax(0), float((x == 0).double().mean()),
                bool((x >= 0).all()))
    rows = max(1, limit // max(d, 1))
    total, top = torch.zeros(d, dtype=torch.float64), torch.zeros(d, dtype=torch.float64)
    zero_count, non_negative = 0, True
    for begin in range(0, n, rows):
        block = x[begin:begin + rows].double()
        total += block.sum(0)
        top = torch.maximum(top, block.abs().amax(0))
        zero_count += int((block == 0).sum())
        non_negative = non_negative and bool((block >= 0).all())
    mean = total / n
    squares = torch.zeros(d, dtype=torch.float64)
    for begin in range(0, n, rows):
        squares += (x[begin:begin + rows].double() - mean).pow_(2).sum(0)
    return mean, (squares / n).sqrt(), top, zero_count / max(1, n * d), non_negative


def _fit_blocks(x_train, kind: str, widths: list[int]) -> Scaling:
    """One :class:`Scaling` per block of columns, joined; its ``kind`` lists the blocks' rules (``standard+maxabs``)."""
    if sum(widths) != x_train.shape[1] or min(widths, default=0) < 1:
        raise GraphEigenmapError(f"scaling blocks {widths} must be positive widths summing to the representation's "
                                 f"{x_train.shape[1]} columns.")
    x_train = x_train.tocsc() if sp.issparse(x_train) else x_train
    edges = np.cumsum([0] + widths)
    parts = [fit_scaling(x_train[:, start:stop], kind) for start, stop in zip(edges[:-1], edges[1:])]
    return Scaling(torch.cat([part.shift for part in parts]), torch.cat([part.factor for part in parts]),
                   "+".join(part.kind for part in parts))
