"""The transformer block loop shared by the encoder and the MAE decoder. Never imports rclpy."""

from __future__ import annotations

from collections.abc import Iterable

import torch.utils.checkpoint
from jaxtyping import Float
from torch import Tensor, nn


def run_blocks(blocks: Iterable[nn.Module], x: Float[Tensor, "B N D"], checkpoint: bool,
               inputs: list[Tensor] | None = None) -> Float[Tensor, "B N D"]:
    """x (B, N, D) through each block in turn -> (B, N, D).

    checkpoint: activation checkpointing (recompute each block in the backward pass instead of
    keeping its activations; pre-training of large sizes). inputs: when given, each block's
    input is appended to it (the encoder's official intermediate states)."""
    for block in blocks:
        if inputs is not None:
            inputs.append(x)
        if checkpoint:
            x = torch.utils.checkpoint.checkpoint(block, x, use_reentrant=False)
        else:
            x = block(x)
    return x
