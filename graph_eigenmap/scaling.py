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
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from graph_eigenmap.errors import GraphEigenmapError

SCALINGS = ("auto", "standard", "maxabs", "none")


@dataclass(frozen=True)
class Scaling:
    """``z = (x − shift) · factor`` per column: ``shift`` ``[d]``, ``factor`` ``[d]``, and the rule's name."""

    shift: torch.Tensor
    factor: torch.Tensor
    kind: str

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """``[m, d]`` -> ``[m, d]`` float32 scaled rows."""
        return (x.float() - self.shift) * self.factor


def fit_scaling(x_train: torch.Tensor, kind: str = "auto") -> Scaling:
    """Column scaling from the ``[t, d]`` training rows (statistics in float64).

    ``auto`` is ``maxabs`` when every training value is non-negative and at least half are zero
    (bag of words, counts), else ``standard``. Columns that are constant on the training rows
    keep factor 1 (``standard``) or are left alone (``maxabs`` of an all-zero column).
    """
    if kind not in SCALINGS:
        raise GraphEigenmapError(f"scaling must be one of {', '.join(SCALINGS)}; got {kind!r}.")
    x = x_train.double()
    d = x.shape[1]
    if kind == "auto":
        kind = "maxabs" if bool((x >= 0).all()) and float((x == 0).double().mean()) >= 0.5 else "standard"
    zero, one = torch.zeros(d, dtype=x.dtype, device=x.device), torch.ones(d, dtype=x.dtype, device=x.device)
    if kind == "none":
        return Scaling(zero.float(), one.float(), kind)
    if kind == "maxabs":
        top = x.abs().amax(0)
        return Scaling(zero.float(), torch.where(top > 0, top.reciprocal(), one).float(), kind)
    mean = x.mean(0)
    std = x.std(0, unbiased=False)
    constant = std <= 1e-7 * mean.abs().clamp(min=1.0)
    return Scaling(mean.float(), torch.where(constant, one, std.reciprocal()).float(), kind)
