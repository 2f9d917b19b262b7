"""LARS: the layer-wise trust ratio by hand, and ``step(closure)`` as torch.optim optimizers do it."""

import copy

import torch

from graph_eigenmap.optim import LARS


def _model_and_data():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    x, target = torch.randn(16, 5), torch.randn(16, 2)
    return model, x, target


def _lars(model, **kwargs):
    matrices = [p for p in model.parameters() if p.ndim > 1]
    vectors = [p for p in model.parameters() if p.ndim <= 1]
    return LARS([dict(params=matrices), dict(params=vectors, lars_exclude=True)], lr=0.5, eta=0.01, **kwargs)


def test_first_step_scales_matrices_by_the_trust_ratio_and_leaves_biases_plain():
    model, x, target = _model_and_data()
    optimizer = _lars(model, weight_decay=0.1)
    torch.nn.functional.mse_loss(model(x), target).backward()
    before = [(p.detach().clone(), p.grad.clone()) for p in model.parameters()]
    optimizer.step()
    for (w, g), p in zip(before, model.parameters()):
        if w.ndim > 1:  # d = g + wd w, scaled by eta ||w|| / ||d||; the first momentum buffer is d itself
            d = g + 0.1 * w
            expected = w - 0.5 * (0.01 * w.norm() / d.norm()) * d
        else:
            expected = w - 0.5 * g
        torch.testing.assert_close(p.detach(), expected, rtol=1e-6, atol=1e-7)


def test_step_with_closure_makes_the_same_steps_and_returns_the_loss():
    model, x, target = _model_and_data()
    twin = copy.deepcopy(model)
    plain, with_closure = _lars(model), _lars(twin)

    def closure():
        with_closure.zero_grad()
        loss = torch.nn.functional.mse_loss(twin(x), target)
        loss.backward()
        return loss

    for _ in range(3):  # momentum buffers included
        plain.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), target)
        loss.backward()
        assert plain.step() is None
        returned = with_closure.step(closure)  # step is no_grad: the closure's backward needs enable_grad
        assert isinstance(returned, torch.Tensor)
        assert returned.item() == loss.item()
        for p, q in zip(model.parameters(), twin.parameters()):
            assert torch.equal(p, q)
