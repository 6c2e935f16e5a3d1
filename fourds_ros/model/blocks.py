"""The transformer block loop shared by the encoder and the MAE decoder. Never imports rclpy."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch.utils.checkpoint
from torch import Tensor, nn

if TYPE_CHECKING:  # shapes for readers and type checkers; the node does not need jaxtyping at run time
    from jaxtyping import Float


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
