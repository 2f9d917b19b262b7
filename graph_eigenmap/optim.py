"""Optimizers and the learning-rate schedule.

AdamW for MLPs (the default: robust across widths and depths), plain SGD for the identity table
(the default there: with a per-row learning rate each step is a damped power iteration, which finds
the exact eigenvectors of the 340-node SBM of tests/test_training.py in 400 full-graph steps; AdamW
had not converged there after thousands in development), and LARS (the reference's choice for large
batches: SGD with momentum 0.9 and a layer-wise trust ratio, none on biases and normalization
parameters). Schedule: linear warm-up over ``warmup`` of the steps, then cosine decay to zero.
"""

from __future__ import annotations

import math

import torch


def make_optimizer(model: torch.nn.Module, config, rows_per_step: int) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for parameter in model.parameters():
        (no_decay if parameter.ndim <= 1 else decay).append(parameter)
    groups = [dict(params=decay, weight_decay=config.weight_decay),
              dict(params=no_decay, weight_decay=0.0, lars_exclude=True)]
    if config.optimizer == "lars":
        return LARS(groups, lr=config.lr)
    plain = [{k: v for k, v in g.items() if k != "lars_exclude"} for g in groups]
    if config.optimizer == "sgd":
        return torch.optim.SGD(plain, lr=config.lr * rows_per_step)
    on_gpu = all(p.is_cuda for g in plain for p in g["params"])
    return torch.optim.AdamW(plain, lr=config.lr, fused=on_gpu or None)  # fused: one launch for all parameters


class LARS(torch.optim.Optimizer):
    """SGD with momentum and a layer-wise trust ratio (You et al., 2017).

    For each weight matrix the step is scaled by ``eta * ||w|| / (||g|| + wd ||w||)``; parameters of
    groups with ``lars_exclude=True`` (biases, normalization) take plain momentum SGD steps.
    """

    def __init__(self, params, lr: float, momentum: float = 0.9, eta: float = 0.001, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, eta=eta, weight_decay=weight_decay, lars_exclude=False))

    @torch.no_grad()
    def step(self, closure=None):
        """One update from the gradients in ``p.grad``; returns the closure's loss (None without one).

        Args:
            closure: as for ``torch.optim`` optimizers, a callable that zeroes the gradients,
                computes the loss, calls ``backward()`` and returns the loss; evaluated first, with
                gradients enabled, so that the step uses the gradients it leaves.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if not group["lars_exclude"]:
                    grad = grad.add(p, alpha=group["weight_decay"])
                    w_norm, g_norm = torch.norm(p), torch.norm(grad)
                    trust = torch.where((w_norm > 0) & (g_norm > 0), group["eta"] * w_norm / g_norm,
                                        torch.ones_like(w_norm))
                    grad = grad * trust
                buf = self.state[p].get("momentum")
                if buf is None:
                    buf = self.state[p]["momentum"] = torch.clone(grad)
                else:
                    buf.mul_(group["momentum"]).add_(grad)
                p.add_(buf, alpha=-group["lr"])
        return loss


def warmup_cosine(total: int, warmup: float):
    warm = max(1, int(warmup * total))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, total - warm)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor
