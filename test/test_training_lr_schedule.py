"""The learning-rate schedule's ends, the fitted warm-up and the weight-decay groups."""
import pytest
import torch

from training.optim import fitted_lr_lambda, lr_lambda, param_groups


def test_lr_schedule_ends():
    f = lr_lambda(10, 100, 0.1)
    assert f(0) == pytest.approx(0.1)  # the first step already moves (1 / warmup of the peak)
    assert f(9) == pytest.approx(1.0)  # the last warmup step is at the peak
    assert f(100) == pytest.approx(0.1) and f(150) == pytest.approx(0.1)  # at and after the end: min_ratio, held
    assert f(55) == pytest.approx(0.1 + 0.9 * 0.5)  # half-way through the decay


def test_fitted_warmup_is_five_percent_of_the_fitted_total():
    import math

    f = fitted_lr_lambda(10, 100, 0.0)  # configured warmup 10, fitted total 100: the decay starts at step 5
    assert f(2) == pytest.approx(0.3)  # never above the configured ramp
    assert f(50) == pytest.approx(0.5 * (1 + math.cos(math.pi * 45 / 95)))


def test_biases_and_norms_take_no_weight_decay():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    decay, no_decay = param_groups(model, 0.05)
    assert [p.shape for p in decay["params"]] == [torch.Size([4, 3])]
    assert len(no_decay["params"]) == 3 and no_decay["weight_decay"] == 0.0
