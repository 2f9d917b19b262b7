"""Devices: the one a run asks for (:func:`resolve_device`), and copying a large host array to it in pieces, cast on
the way, with bounded extra host memory (:func:`to_device`).

``tensor.to("cuda", torch.bfloat16)`` on papers100M's 111M × 128 float32 features would first make a
28 GB half-precision copy on the host (or a 57 GB pinned one), on a machine that holds the features
and the graph already. :func:`to_device` instead casts one block of rows at a time into one of two
reused page-locked buffers and copies it from there while the next block is cast.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from graph_eigenmap.errors import GraphEigenmapError

BLOCK_BYTES = 256 * 2**20
"""Bytes of one staged block (per buffer; two buffers)."""


def tensor_view(array) -> torch.Tensor:
    """``array`` as a host tensor sharing its memory (no copy), read-only memory maps included.

    ``torch.from_numpy`` warns on a non-writable array (a file mapped with ``mmap_mode="r"``, which the ranks of a
    data-parallel run share): the tensors made here are only read, never written, so the warning is silenced. A
    tensor is returned as it is.
    """
    if isinstance(array, torch.Tensor):
        return array
    array = np.asarray(array)
    if array.flags.writeable:
        return torch.from_numpy(array)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` (a GPU when torch sees one), ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ... as a torch device.

    Raises:
        GraphEigenmapError: a GPU asked for where torch sees none.
    """
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except RuntimeError:
        raise GraphEigenmapError(f"`device` must be auto, cpu, cuda or cuda:N; got {str(device)!r}.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GraphEigenmapError(f"`device={device}` asks for a GPU but torch sees none; use `device='cpu'`.")
    return device


def to_device(array: np.ndarray | torch.Tensor, device: str | torch.device, dtype: torch.dtype | None = None, *,
              block_bytes: int = BLOCK_BYTES) -> torch.Tensor:
    """``array`` as a ``dtype`` tensor on ``device``, copied a block of rows (dimension 0) at a time.

    Args:
        array: a host array or tensor of any shape (``[n, ...]``), e.g. ``[n, d]`` features or ``[nnz]`` ids.
        device: the destination. On a CPU this is a plain ``.to(dtype)`` (no copy when the dtype agrees).
        dtype: the destination dtype (default: the array's).
        block_bytes: bytes of the destination dtype staged per block.

    Returns:
        A tensor of ``array``'s shape on ``device``, equal to ``torch.as_tensor(array).to(dtype)``.
    """
    source = tensor_view(array)
    dtype = dtype or source.dtype
    device = torch.device(device)
    if device.type != "cuda" or source.numel() * dtype.itemsize <= block_bytes:
        return source.to(device=device, dtype=dtype)
    out = torch.empty(source.shape, dtype=dtype, device=device)
    row = max(1, source[0].numel() * dtype.itemsize)
    rows = max(1, block_bytes // row)
    buffers = [torch.empty((rows, *source.shape[1:]), dtype=dtype, pin_memory=True) for _ in range(2)]
    done = [None, None]
    stream = torch.cuda.current_stream(device)
    for number, begin in enumerate(range(0, source.shape[0], rows)):
        piece = source[begin:begin + rows]
        slot = number % 2
        if done[slot] is not None:
            done[slot].synchronize()  # the copy out of this buffer has finished
        staged = buffers[slot][:len(piece)]
        staged.copy_(piece)  # the cast happens here, on the host
        out[begin:begin + len(piece)].copy_(staged, non_blocking=True)
        done[slot] = stream.record_event()
    stream.synchronize()
    return out
