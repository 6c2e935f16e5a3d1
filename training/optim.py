"""AdamW parameter groups and the warmup + cosine learning-rate schedule of MAE pre-training."""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import nn


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """No weight decay on biases, norms, position embeddings and queries (as MAE)."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        skip = p.ndim < 2 or "posenc" in name or name.endswith("query")
        (no_decay if skip else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_lambda(warmup: int, total: int, min_ratio: float = 0.0) -> Callable[[int], float]:
    """Linear warmup from 0, then cosine decay to min_ratio of the peak at `total` steps."""
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return f


def fitted_lr_lambda(warmup: int, total: int, min_ratio: float = 0.0) -> Callable[[int], float]:
    """lr_lambda for a total fitted to a time budget mid-run (or resumed with one): its warmup at most 5 % of
    the fitted total, and the factor never above the configured warmup's ramp. Why: a total at or below the
    configured warmup (the default recipe's 100 steps, on a CPU's tens of steps) was all ramp, and the run
    ended part way up it, never decayed; the fit comes during the warmup, so a shorter warmup alone would jump
    the rate up to its peak in one step. Where the configured warmup is 5 % of the total or less, this is
    lr_lambda itself."""
    if warmup <= 0:  # no warmup to shorten (the config's default)
        return lr_lambda(0, total, min_ratio)
    shortened = lr_lambda(min(warmup, max(1, total // 20)), total, min_ratio)
    return lambda step: min((step + 1) / warmup, shortened(step))
