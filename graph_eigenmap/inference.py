"""Evaluating a trained model on many nodes, in chunks."""

from __future__ import annotations

import torch

from graph_eigenmap.config import TrainConfig
from graph_eigenmap.data.graph import Graph
from graph_eigenmap.models import NeuralEigenfunctions
from graph_eigenmap.sparse_features import as_model_input, take_rows


@torch.no_grad()
def embed_nodes(model: NeuralEigenfunctions, inputs: torch.Tensor, *, chunk_size: int = 65536,
                with_backbone: bool = True, to_host: bool = True, bf16: bool = False):
    """Evaluate a trained model on ``[m, d]`` features (dense or sparse CSR; or ``[m]`` node ids), in chunks.

    Args:
        to_host: return float32 numpy arrays (default); False keeps ``[m, k]`` tensors on the
            model's device (for consumers there, and for throughput measurements).
        bf16: bfloat16 autocast on a GPU (faster; about 1e-2 relative error, so not for exact reproduction).

    Returns:
        ``([m, k]`` eigenfunctions, ``[m, h]`` backbone features or None``)``.
    """
    model.eval()
    device = next(model.parameters()).device
    outputs, backbones = [], []
    for begin in range(0, inputs.shape[0], chunk_size):
        chunk = take_rows(inputs, slice(begin, begin + chunk_size)).to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16 and device.type == "cuda"):
            psi, h = model.forward_with_backbone(chunk)
        outputs.append(psi.float().cpu() if to_host else psi)
        if with_backbone:
            backbones.append(h.float().cpu() if to_host else h)
    if not to_host:
        return torch.cat(outputs), (torch.cat(backbones) if with_backbone else None)
    psi = torch.cat(outputs).numpy()
    return psi, (torch.cat(backbones).numpy() if with_backbone else None)


def all_node_inputs(graph: Graph, config: TrainConfig) -> torch.Tensor:
    """The model's inputs for every node: features ``[n, d]`` (dense, or sparse CSR) or ids ``[n]``."""
    if config.features == "identity":
        return torch.arange(graph.num_nodes)
    return as_model_input(graph.features)
