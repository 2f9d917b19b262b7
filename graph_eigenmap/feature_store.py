"""Where the model's inputs live while training: on the device (float32, or half precision when asked), or on the host.

``TrainConfig.feature_storage``:

* ``"float32"``: the ``[n, d]`` inputs copied to the device once; each step gathers its rows there.
* ``"bfloat16"`` / ``"float16"``: the same in half the bytes (papers100M's 111M × 128 features: 28 GB
  as float32, 14 GB as bfloat16); rows are gathered in that precision and widened by the network's
  first layer. The rounding (about 3 significant digits for bfloat16) is the only change.
* ``"host"``: the inputs stay in host memory (page-locked on a CUDA machine); each step gathers its
  rows on the host and copies them to the device asynchronously. For features that do not fit on the
  device; each step then waits for its node ids to reach the host.
* ``"auto"`` (default): ``"float32"`` when the inputs take under a quarter of the device's free
  memory (always on a CPU), else ``"bfloat16"`` when they take under half of it in that precision
  (papers100M's features on an 80 GB GPU), else ``"host"``.

Inputs go to the device a block of rows at a time, cast on the way (:func:`graph_eigenmap.transfer.to_device`):
no full half-precision or page-locked copy is ever made on the host.

Sparse inputs (:mod:`graph_eigenmap.data.sparse`) keep their float32 CSR values in every mode.
"""

from __future__ import annotations

import numpy as np
import torch

from graph_eigenmap.data.sparse import as_model_input, take_rows
from graph_eigenmap.transfer import to_device

FEATURE_STORAGES = ("auto", "float32", "bfloat16", "float16", "host")
HALF = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_feature_storage(storage: str, features, device: torch.device, free_bytes: int | None) -> str:
    """The storage ``"auto"`` means for ``[n, d]`` ``features`` on ``device`` (``free_bytes``: its free memory)."""
    if storage != "auto":
        return storage
    if device.type == "cpu" or free_bytes is None:
        return "float32"
    if hasattr(features, "nnz"):  # kept sparse: values and column ids stay float32 and int64
        return "float32" if features.data.nbytes * 3 < 0.25 * free_bytes else "host"
    size = float(np.prod(features.shape)) * 4
    if size < 0.25 * free_bytes:
        return "float32"
    return "bfloat16" if size / 2 < 0.5 * free_bytes else "host"


class FeatureStore:
    """The model's ``[n, d]`` inputs in one of :data:`FEATURE_STORAGES`, serving rows on the training device.

    Args:
        features: ``[n, d]`` float32 array or scipy CSR matrix.
        device: the training device.
        storage: a resolved storage (not ``"auto"``).
    """

    def __init__(self, features, device: torch.device, storage: str):
        self.device, self.storage = device, storage
        inputs = as_model_input(features)
        dense = inputs.layout == torch.strided
        if storage == "host":
            self.inputs = inputs.pin_memory() if device.type == "cuda" and dense else inputs
        elif dense:
            self.inputs = to_device(inputs, device, HALF.get(storage, torch.float32))
        else:
            self.inputs = inputs.to(device)

    def rows(self, ids: torch.Tensor) -> torch.Tensor:
        """``[b, d]`` inputs of the nodes ``ids`` (on the training device), in order."""
        if self.storage != "host":
            return take_rows(self.inputs, ids)
        picked = take_rows(self.inputs, ids.cpu())
        if self.device.type == "cuda" and picked.layout == torch.strided:
            picked = picked.pin_memory()
        return picked.to(self.device, non_blocking=True)

    def all(self) -> torch.Tensor:
        """``[n, d]`` inputs of every node on the training device (the full-graph estimator)."""
        return self.inputs if self.storage != "host" else self.inputs.to(self.device)
