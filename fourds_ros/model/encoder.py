"""The 4DS video encoder: tubelet embedding, learned space-time position embedding, pre-norm ViT.

Matches the official representations4d `Model(Tokenizer, GeneralizedTransformer)` numerically
(see test/test_parity.py). It returns the official list of intermediate states rather than a
final output, and it can drop masked tokens before the blocks (MAE pre-training).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .blocks import run_blocks
from .config import EncoderSpec
from .masking import TokenMask, gather_tokens

if TYPE_CHECKING:  # shapes for readers and type checkers; the node does not need jaxtyping at run time
    from jaxtyping import Float, Int

# Flax's LayerNorm default; PyTorch's 1e-5 shows as ~1e-4 error against the official model.
LAYER_NORM_EPS = 1e-6


def layer_norm(dim: int) -> nn.LayerNorm:
    return nn.LayerNorm(dim, eps=LAYER_NORM_EPS)


class PatchEmbedding(nn.Module):
    """Non-overlapping tubelets -> tokens. video: (B, T, H, W, 3) -> (B, t, h, w, D)."""

    def __init__(self, patch_size: tuple[int, int, int], width: int):
        super().__init__()
        self.patch_size = tuple(patch_size)
        self.proj = nn.Conv3d(3, width, kernel_size=patch_size, stride=patch_size)

    def forward(self, video: Float[Tensor, "B T H W 3"]) -> Float[Tensor, "B t h w D"]:
        x = self.proj(rearrange(video, "b t h w c -> b c t h w"))
        return rearrange(x, "b d t h w -> b t h w d")


class Attention(nn.Module):
    """Multi-head self-attention with separate biased q/k/v/out projections (Kauldron layout)."""

    def __init__(self, width: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.query = nn.Linear(width, width)
        self.key = nn.Linear(width, width)
        self.value = nn.Linear(width, width)
        self.out = nn.Linear(width, width)

    def forward(self, x: Float[Tensor, "B N D"]) -> Float[Tensor, "B N D"]:
        q, k, v = (
            rearrange(proj(x), "b n (h d) -> b h n d", h=self.num_heads)
            for proj in (self.query, self.key, self.value)
        )
        # Default scale 1/sqrt(head_dim), as the official code's q / sqrt(head_dim).
        y = F.scaled_dot_product_attention(q, k, v)
        return self.out(rearrange(y, "b h n d -> b n (h d)"))


class MLP(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.dense_in = nn.Linear(width, hidden)
        self.dense_out = nn.Linear(hidden, width)

    def forward(self, x: Float[Tensor, "B N D"]) -> Float[Tensor, "B N D"]:
        # JAX's gelu defaults to the tanh approximation; exact GELU differs by ~3e-3.
        return self.dense_out(F.gelu(self.dense_in(x), approximate="tanh"))


class Block(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, spec: EncoderSpec):
        super().__init__()
        self.attention_norm = layer_norm(spec.width)
        self.attention = Attention(spec.width, spec.num_heads)
        self.mlp_norm = layer_norm(spec.width)
        self.mlp = MLP(spec.width, spec.mlp_dim)

    def forward(self, x: Float[Tensor, "B N D"]) -> Float[Tensor, "B N D"]:
        x = x + self.attention(self.attention_norm(x))
        return x + self.mlp(self.mlp_norm(x))


@dataclass
class EncoderOutput:
    """states: the official intermediate list; states[0] is the embedded tokens and states[i]
    (i >= 1) is the input of block i-1, so the last block's output is not in it.
    output: the last block's output when every block ran (MAE pre-training needs it), else None.
    mask: the token mask when tokens were dropped, else None. Token tensors are (B, N, D) with
    N the kept tokens in `mask.ids_keep` order, or all t*h*w tokens (time slowest) unmasked."""

    states: list[Float[Tensor, "B N D"]]
    output: Float[Tensor, "B N D"] | None
    grid: tuple[int, int, int]
    mask: TokenMask | None = None


class Encoder(nn.Module):
    """The 4DS encoder. No CLS token, no final norm."""

    def __init__(
        self,
        spec: EncoderSpec,
        patch_size: tuple[int, int, int],
        posenc_grid: tuple[int, int, int],
        checkpoint_blocks: bool = False,
    ):
        super().__init__()
        self.spec = spec
        self.patch_size = tuple(patch_size)
        self.patch_embedding = PatchEmbedding(patch_size, spec.width)
        # Channels-last (t, h, w, D), the official layout, added to the (B, t, h, w, D) grid.
        self.posenc = nn.Parameter(torch.zeros(*posenc_grid, spec.width))
        self.blocks = nn.ModuleList(Block(spec) for _ in range(spec.depth))
        # Activation checkpointing trades compute for memory in pre-training of large sizes.
        self.checkpoint_blocks = checkpoint_blocks

    @property
    def num_states(self) -> int:
        return self.spec.depth + 1

    def position_embedding(self, grid: tuple[int, int, int]) -> Float[Tensor, "t h w D"]:
        """The learned (t, h, w, D) embedding at `grid`.

        Other clip shapes than the trained one use trilinear interpolation of the embedding grid
        (align_corners=False, i.e. cell centres are aligned), the 3-D analogue of the bilinear
        position-embedding resize that ViTs use for new resolutions.
        """
        if tuple(self.posenc.shape[:3]) == tuple(grid):
            return self.posenc
        x = rearrange(self.posenc, "t h w d -> 1 d t h w")
        x = F.interpolate(x, size=tuple(grid), mode="trilinear", align_corners=False)
        return rearrange(x, "1 d t h w -> t h w d")

    def embed(self, video: Float[Tensor, "B T H W 3"]) -> tuple[Float[Tensor, "B N D"], tuple[int, int, int]]:
        """video: (B, T, H, W, 3) -> tokens (B, t*h*w, D) with time slowest, and the grid."""
        x = self.patch_embedding(video)
        grid = tuple(x.shape[1:4])
        x = x + self.position_embedding(grid)
        return rearrange(x, "b t h w d -> b (t h w) d"), grid

    def embed_kept(self, video: Float[Tensor, "B T H W 3"], ids_keep: Int[Tensor, "B K"]
                   ) -> tuple[Float[Tensor, "B K D"], tuple[int, int, int]]:
        """video: (B, T, H, W, 3), ids_keep: (B, N_keep) -> the kept tokens (B, N_keep, D) of
        `embed(video)` (same maths, up to float rounding) and the grid.

        The tubelet embedding is a Conv3d with stride = kernel, i.e. one linear map per tubelet,
        so it is applied to the kept tubelets only: on CPU the Conv3d backward over the whole
        clip otherwise dominates a 95 %-masked MAE step (seconds for 4DS-S at 16x224x224)."""
        conv = self.patch_embedding.proj
        pt, ph, pw = self.patch_size
        # (c pt ph pw) is the order of the Conv3d weight's input dims, flattened below.
        tubelets = rearrange(video, "b (t pt) (h ph) (w pw) c -> b (t h w) (c pt ph pw)", pt=pt, ph=ph, pw=pw)
        kept = gather_tokens(tubelets, ids_keep)
        grid = (video.shape[1] // pt, video.shape[2] // ph, video.shape[3] // pw)
        posenc = rearrange(self.position_embedding(grid), "t h w d -> (t h w) d")
        return F.linear(kept, conv.weight.flatten(1), conv.bias) + posenc[ids_keep], grid

    def forward(
        self,
        video: Float[Tensor, "B T H W 3"],
        mask: TokenMask | None = None,
        num_states: int | None = None,
    ) -> EncoderOutput:
        """video: (B, T, H, W, 3) float in [0, 1].

        mask: drop the masked tokens before the blocks (MAE); only kept tokens are processed.
        num_states: stop once states[:num_states] exist; a readout that needs states[11] of a
        12-block model runs 10 blocks, not 12.
        """
        if mask is None:
            tokens, grid = self.embed(video)
        else:
            tokens, grid = self.embed_kept(video, mask.ids_keep)
        total = self.num_states if num_states is None else num_states
        if not 1 <= total <= self.num_states:
            raise ValueError(f"num_states must be in [1, {self.num_states}], got {total}")
        run_all = total == self.num_states
        # states[i] (i >= 1) is the input of block i-1: states[:total] needs blocks 0..total-3 to
        # run, plus the output of the last of them; every block runs when all states are asked.
        ran = len(self.blocks) if run_all else max(0, total - 2)
        states = [tokens]
        x = run_blocks(self.blocks[:ran], tokens, self.checkpoint_blocks and self.training, inputs=states)
        if not run_all and total >= 2:
            states.append(x)
        return EncoderOutput(states=states, output=x if run_all else None, grid=grid, mask=mask)
