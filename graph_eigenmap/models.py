"""Neural eigenfunctions ψ: node inputs -> R^k, with L2 batch normalization of each output.

Two backbones:
    * :class:`MLPBackbone` on node features (plain or residual), the inductive model: it embeds
      nodes it never saw from their features alone;
    * :class:`EmbeddingTable` on node ids ("identity features"): a free vector per node, which
      makes NeuralEF a scalable, nonparametric Laplacian Eigenmap.

:class:`NeuralEigenfunctions` puts a linear head of k outputs and :class:`L2BatchNorm` on a backbone.
"""

from __future__ import annotations

import scipy.sparse as sp
import torch
from torch import nn

from graph_eigenmap.data.sparse import take_rows
from graph_eigenmap.registry import OBJECTIVES
from graph_eigenmap.scaling import fit_scaling
from graph_eigenmap.transfer import tensor_view


class L2BatchNorm(nn.Module):
    """Divide each of k outputs by its root mean square over the batch (NeuralEF's L2-BN).

    Training: ``y[:, j] / rms_j`` with ``rms_j = sqrt(mean_b y[b, j]^2)`` over the first
    ``num_stat_rows`` rows (the uniformly drawn nodes), gradient flowing through ``rms_j``; a moving
    average ``running_rms`` (momentum 0.9) is kept. Evaluation: ``y / running_rms``.
    So E_u[ψ_j(u)^2] = 1 over nodes u drawn uniformly.

    ``divide_in_training=False`` (objectives whose outputs carry their own scale, such as NeuralSVD's
    √λ_j): training returns ``y`` itself and only keeps the running RMS, so evaluation still divides
    by it and a trained model's outputs have unit mean square either way.
    """

    def __init__(self, num_outputs: int, momentum: float = 0.9, eps: float = 1e-8, *,
                 divide_in_training: bool = True):
        super().__init__()
        self.momentum = momentum
        self.eps = eps
        self.divide_in_training = divide_in_training
        self.register_buffer("running_rms", torch.ones(num_outputs))
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        # the RMS of the latest training batch, for rows embedded without gradient
        self.last_rms: torch.Tensor | None = None
        self.reduce = None  # data-parallel training: the differentiable mean over ranks (graph_eigenmap.distributed)

    def forward(self, y: torch.Tensor, num_stat_rows: int | None = None) -> torch.Tensor:
        """``y``: ``[b, k]`` -> ``[b, k]`` with unit mean square per column (training) or scaled by the running RMS."""
        if not self.training:
            return y / self.running_rms.to(y.dtype)
        stats = y if num_stat_rows is None else y[:num_stat_rows]
        mean_square = stats.float().pow(2).mean(0)
        if self.reduce is not None:  # every rank draws as many rows: the mean of the ranks' means
            mean_square = self.reduce(mean_square)
        rms = torch.sqrt(mean_square + self.eps)
        self.last_rms = rms.detach()
        with torch.no_grad():  # no host sync: the first batch sets the average, later ones update it
            averaged = self.momentum * self.running_rms + (1 - self.momentum) * rms
            self.running_rms.copy_(torch.where(self.initialized, averaged, rms))
            self.initialized.fill_(True)
        return y / rms.to(y.dtype) if self.divide_in_training else y

    def like_last_batch(self, y: torch.Tensor) -> torch.Tensor:
        """Rows embedded without autograd, scaled as the latest training batch was (or by the running RMS in
        evaluation)."""
        if not self.training:
            return y / self.running_rms.to(y.dtype)
        return y / self.last_rms.to(y.dtype) if self.divide_in_training else y


class LayerNorm(nn.LayerNorm):
    """:class:`torch.nn.LayerNorm` that keeps a bfloat16 (or float16) input in that precision.

    Autocast runs layer norm in float32, which doubles the bytes every normalized activation
    moves (and those of the activation after it). The CUDA kernel accumulates its statistics in
    float32 whatever the input's type, so a half-precision output loses nothing but the rounding
    of the output itself. Parameters stay float32 (same state dict as ``nn.LayerNorm``).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype not in (torch.bfloat16, torch.float16):
            return super().forward(x)
        with torch.autocast(x.device.type, enabled=False):
            return nn.functional.layer_norm(x, self.normalized_shape, self.weight.to(x.dtype),
                                            self.bias.to(x.dtype), self.eps)


class MLPBackbone(nn.Module):
    """An MLP on node features: ``[b, d] -> [b, width]``.

    Args:
        in_features: d.
        width: hidden width (default 512).
        depth: number of linear layers (default 3, at least 1).
        residual: add a skip connection around each hidden layer after the first.
        norm: ``"layer"`` (default), ``"batch"`` or ``"none"``, after each linear layer.
        activation: ``"gelu"`` (default) or ``"relu"``, after each normalization.
        dropout: dropout probability after each activation (default 0).

    Inputs are scaled per feature with statistics of the training graph (buffers set by
    :meth:`fit_standardization`, saved with the weights). The input may be a dense ``[b, d]`` tensor
    or a ``torch.sparse_csr_tensor`` (wide sparse features, :mod:`graph_eigenmap.data.sparse`):
    then the first layer is one sparse-dense product with the scaling folded into its weights,
    ((x − μ)·s) Wᵀ + b = x (s·W)ᵀ + (b − (μ·s) Wᵀ), in float32, and x is never densified.
    """

    def __init__(self, in_features: int, width: int = 512, depth: int = 3, *, residual: bool = False,
                 norm: str = "layer", dropout: float = 0.0, activation: str = "gelu"):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self.register_buffer("input_mean", torch.zeros(in_features))
        self.register_buffer("input_scale", torch.ones(in_features))
        self.in_features = in_features
        self.residual = residual
        self.layers = nn.ModuleList()
        for i in range(depth):
            self.layers.append(nn.Sequential(
                nn.Linear(in_features if i == 0 else width, width),
                _norm(norm, width),
                _activation(activation),
                nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
            ))
        self.out_features = width

    @torch.no_grad()
    def fit_standardization(self, features) -> None:  # features: [n, d] tensor, array or scipy sparse
        """Set the input shift and scale from ``[n, d]`` training features (:func:`graph_eigenmap.scaling.fit_scaling`).

        Dense features are standardized; bag-of-words-like ones (non-negative, mostly zero) are divided
        by each column's largest value, so binary words stay 0/1 and a word rare in the training graph
        is not multiplied by 1/std (a column never seen there would be multiplied by 10⁶). Dense
        features of more than :data:`STATISTICS_MAX_ROWS` rows are summarized by that many rows
        drawn uniformly (:func:`statistics_rows`).
        """
        scaling = fit_scaling(features if sp.issparse(features) else statistics_rows(tensor_view(features)))
        self.input_mean.copy_(scaling.shift)
        self.input_scale.copy_(scaling.factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.layout == torch.sparse_csr:
            h = self._sparse_first_layer(x)
        else:
            h = self.layers[0]((x - self.input_mean) * self.input_scale)
        for layer in self.layers[1:]:
            h = h + layer(h) if self.residual else layer(h)
        return h


    def _sparse_first_layer(self, x: torch.Tensor) -> torch.Tensor:
        """The first layer on a ``[b, d]`` sparse CSR batch: the folded linear map, then its norm and activation."""
        linear, rest = self.layers[0][0], self.layers[0][1:]
        with torch.autocast(x.device.type, enabled=False):
            weight = linear.weight.float() * self.input_scale  # [width, d]: s·W
            bias = linear.bias.float() - (self.input_mean * self.input_scale) @ linear.weight.float().T
            h = torch.sparse.mm(x.float(), weight.T) + bias
        return rest(h)


class EmbeddingTable(nn.Module):
    """A free vector per node ("identity features"): ``[b]`` node ids -> ``[b, dim]``.

    Initialized with N(0, 1) entries; the head is the identity, so ``dim`` equals k.
    """

    def __init__(self, num_nodes: int, dim: int, generator: torch.Generator | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_nodes, dim, generator=generator))
        self.out_features = dim

    def forward(self, node_ids: torch.Tensor) -> torch.Tensor:
        return self.weight[node_ids]


class NeuralEigenfunctions(nn.Module):
    """ψ = L2BN(head(backbone(x))): the top-k eigenfunctions of the kernel, column j the j-th.

    Args:
        backbone: :class:`MLPBackbone` or :class:`EmbeddingTable`.
        k: number of eigenfunctions.
        normalized_outputs: L2-BN divides the outputs in training (NeuralEF); False: it only tracks their scale
            (:class:`L2BatchNorm`'s ``divide_in_training``; NeuralSVD). Evaluation normalizes them either way.
    """

    def __init__(self, backbone: nn.Module, k: int, *, normalized_outputs: bool = True):
        super().__init__()
        self.backbone = backbone
        self.k = k
        self.head = nn.Identity() if isinstance(backbone, EmbeddingTable) else nn.Linear(backbone.out_features, k)
        self.norm = L2BatchNorm(k, divide_in_training=normalized_outputs)
        self._compiled = None  # (outputs, outputs with backbone) once compile_network() ran

    def compile_network(self) -> "NeuralEigenfunctions":
        """Run backbone and head through ``torch.compile`` from now on (not saved with the weights).

        Inductor fuses each layer's normalization, activation and casts into one pass over the
        activations; the first call for each input shape and grad mode compiles (seconds to a
        minute). The L2-BN stays eager: its statistics and running average change every step.
        """
        self._compiled = (torch.compile(self._outputs, dynamic=False),
                          torch.compile(self._outputs_with_backbone, dynamic=False))
        return self

    def _outputs(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))

    def _outputs_with_backbone(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.backbone(x)
        return self.head(h), h

    def _network(self, x: torch.Tensor) -> torch.Tensor:
        """``[b, d]`` -> ``[b, k]`` outputs before L2-BN."""
        return self._outputs(x) if self._compiled is None else self._compiled[0](x)

    @property
    def uses_node_ids(self) -> bool:
        return isinstance(self.backbone, EmbeddingTable)

    def forward(self, x: torch.Tensor, num_stat_rows: int | None = None, num_live_rows: int | None = None
                ) -> torch.Tensor:
        """``x``: ``[b, d]`` features (or ``[b]`` node ids) -> ``[b, k]`` eigenfunction values.

        Args:
            num_stat_rows: the first rows, drawn uniformly, that give the L2-BN statistics in training.
            num_live_rows: rows from this one on are embedded without autograd (no activations
                kept, no backward), normalized by the live rows' statistics; None: all rows live.
        """
        if num_live_rows is None or num_live_rows >= x.shape[0]:
            return self.norm(self._network(x), num_stat_rows)
        live = self.norm(self._network(take_rows(x, slice(0, num_live_rows))), num_stat_rows)
        with torch.no_grad():
            rest = self._network(take_rows(x, slice(num_live_rows, x.shape[0])))
            rest = self.norm.like_last_batch(rest)
        return torch.cat([live, rest.to(live.dtype)])

    def forward_with_backbone(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``([b, k]`` eigenfunctions, ``[b, h]`` backbone features)``, for evaluation."""
        y, h = self._outputs_with_backbone(x) if self._compiled is None else self._compiled[1](x)
        return self.norm(y), h


STATISTICS_MAX_ROWS = 1 << 22
"""Rows the input standardization reads at most (4,194,304: every row of ogbn-products' 2.4M)."""


def statistics_rows(features: torch.Tensor, max_rows: int | None = None) -> torch.Tensor:
    """``[m, d]``: all rows of ``[n, d]`` ``features`` if n <= ``max_rows`` (default :data:`STATISTICS_MAX_ROWS`),
    else ``max_rows`` of them drawn uniformly without replacement (seed 0, in id order).

    Column means and deviations from 4M rows are within about 5e-4 standard deviations of those of all
    rows; reading all of papers100M's 111M × 128 features in float64 would take 114 GB.
    """
    n = features.shape[0]
    max_rows = STATISTICS_MAX_ROWS if max_rows is None else max_rows
    if n <= max_rows:
        return features
    picked = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:max_rows].sort().values
    return features[picked]


def build_model(config, num_features: int, num_nodes: int, generator: torch.Generator | None = None,
                features=None) -> NeuralEigenfunctions:
    """The model a :class:`~graph_eigenmap.config.TrainConfig` describes.

    Args:
        config: a resolved TrainConfig (``features`` is ``"input"`` or ``"identity"``).
        num_features, num_nodes: input width of the MLP; rows of the identity table.
        generator: seeds the initialization.
        features: ``[n, d]`` training features for the input standardization (MLP only).
    """
    if config.features == "identity":
        backbone = EmbeddingTable(num_nodes, config.k, generator=generator)
    else:
        if generator is not None:
            torch.manual_seed(int(torch.randint(2**31, (1,), generator=generator)))
        backbone = MLPBackbone(num_features, config.width, config.depth, residual=config.residual,
                               norm=config.norm, dropout=config.dropout,
                               activation=getattr(config, "activation", "gelu"))
        if features is not None:
            backbone.fit_standardization(features)
    objective = OBJECTIVES[getattr(config, "objective", "neuralef")]  # a model.json from before the option: NeuralEF
    return NeuralEigenfunctions(backbone, config.k, normalized_outputs=objective.normalized_outputs)


def _norm(kind: str, width: int) -> nn.Module:
    if kind == "layer":
        return LayerNorm(width)
    if kind == "batch":
        return nn.BatchNorm1d(width)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'layer', 'batch' or 'none', got {kind!r}")


def _activation(kind: str) -> nn.Module:
    if kind == "gelu":
        return nn.GELU()
    if kind == "relu":
        return nn.ReLU()
    raise ValueError(f"activation must be 'gelu' or 'relu', got {kind!r}")
