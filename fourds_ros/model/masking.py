"""MAE token masks: which tokens the encoder keeps, and how to put them back in order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from einops import repeat
from torch import Tensor

if TYPE_CHECKING:  # shapes for readers and type checkers; the node does not need jaxtyping at run time
    from jaxtyping import Bool, Float, Int


@dataclass
class TokenMask:
    """ids_keep: (B, N_keep) indices of kept tokens, ascending.
    ids_restore: (B, N) position of each original token in [kept..., masked...] order.
    masked: (B, N) bool, True where the token was dropped."""

    ids_keep: Int[Tensor, "B K"]
    ids_restore: Int[Tensor, "B N"]
    masked: Bool[Tensor, "B N"]

    @property
    def num_tokens(self) -> int:
        return self.masked.shape[1]


def num_kept(num_tokens: int, mask_ratio: float) -> int:
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
    return max(1, int(round(num_tokens * (1.0 - mask_ratio))))


def _mask_from_scores(scores: Tensor, keep: int) -> TokenMask:
    """Keep the `keep` lowest-scoring tokens of each row of scores (B, N)."""
    shuffle = torch.argsort(scores, dim=1)
    ids_keep, _ = torch.sort(shuffle[:, :keep], dim=1)
    ids_drop, _ = torch.sort(shuffle[:, keep:], dim=1)
    order = torch.cat([ids_keep, ids_drop], dim=1)
    ids_restore = torch.argsort(order, dim=1)
    masked = torch.ones_like(scores, dtype=torch.bool)
    masked.scatter_(1, ids_keep, False)
    return TokenMask(ids_keep=ids_keep, ids_restore=ids_restore, masked=masked)


def random_mask(
    batch: int,
    grid: tuple[int, int, int],
    mask_ratio: float,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> TokenMask:
    """Independent random masking of t*h*w tokens; exactly num_kept tokens survive per clip."""
    n = grid[0] * grid[1] * grid[2]
    scores = torch.rand(batch, n, generator=generator, device=device)
    return _mask_from_scores(scores, num_kept(n, mask_ratio))


def tube_mask(
    batch: int,
    grid: tuple[int, int, int],
    mask_ratio: float,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> TokenMask:
    """The same spatial positions are masked in every time step (VideoMAE tube masking)."""
    t, h, w = grid
    spatial = torch.rand(batch, h * w, generator=generator, device=device)
    keep_spatial = num_kept(h * w, mask_ratio)
    # Rank each spatial score; tokens of one tube share the rank so whole tubes are kept.
    rank = torch.argsort(torch.argsort(spatial, dim=1), dim=1).float()
    scores = repeat(rank, "b n -> b (t n)", t=t)
    return _mask_from_scores(scores, keep_spatial * t)


MASKS = {"random": random_mask, "tube": tube_mask}


def make_mask(kind: str, batch: int, grid, mask_ratio: float, generator=None, device="cpu"):
    if kind not in MASKS:
        raise ValueError(f"unknown mask type {kind!r}; known: {', '.join(MASKS)}")
    return MASKS[kind](batch, grid, mask_ratio, generator=generator, device=device)


def gather_tokens(tokens: Float[Tensor, "B N D"], ids: Int[Tensor, "B K"]) -> Float[Tensor, "B K D"]:
    """tokens: (B, N, D), ids: (B, K) -> (B, K, D)."""
    return torch.gather(tokens, 1, repeat(ids, "b k -> b k d", d=tokens.shape[-1]))
