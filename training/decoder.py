"""MAE decoder with coarse-grid decoding tokens (kept apart from the training loop, as in
facebookresearch/mae's models_mae.py vs main_pretrain.py).

Design. The standard MAE decoder appends one mask token per masked tubelet and runs its blocks
over all N = t*h*w positions. Here the decoder instead gets the N_vis kept encoder tokens (projected
to the decoder width, plus a decoder position embedding at their fine-grid position) and
N / r learned queries on a *coarser* grid (r = prod(coarse_factor), default (1, 2, 2) -> r = 4).
Each coarse query owns an ft x fh x fw block of tubelets and predicts all of its pixels
(r * pt*ph*pw*3 values) with one linear layer; the loss is then taken per fine tubelet
(normalised pixels, masked tubelets only), exactly as for a fine decoder.

Cost per decoder block with width d and L tokens: ~ 24 L d^2 (projections + MLP at 4x)
+ 4 L^2 d (attention) FLOPs. Standard MAE: L = N. Coarse grid: L = N_vis + N / r.
At 95 % masking and r = 4: L = 0.05 N + 0.25 N = 0.3 N, so ~3.3x fewer projection/MLP FLOPs and
~11x fewer attention FLOPs; the larger output layer adds only 2 d * r*P per query (P = pixels x 3
per tubelet), the same total as a fine decoder's output layer. The price is that nearby masked
tubelets share one query's features, which MAE's blurry reconstructions do not miss in practice.
"""

from __future__ import annotations

import torch
from einops import rearrange, repeat
from torch import Tensor, nn

from fourds_ros.model.blocks import run_blocks
from fourds_ros.model.config import EncoderSpec
from fourds_ros.model.encoder import Block, layer_norm


class CoarseGridDecoder(nn.Module):
    """tokens: (B, N_vis, D_enc) kept encoder output; ids_keep: (B, N_vis) their fine-grid index.
    Returns predictions (B, N, pt*ph*pw*3) for every fine tubelet, time slowest."""

    def __init__(self, encoder_width: int, token_grid: tuple[int, int, int],
                 patch_size: tuple[int, int, int], width: int = 256, depth: int = 4,
                 num_heads: int = 8, mlp_dim: int | None = None,
                 coarse_factor: tuple[int, int, int] = (1, 2, 2), checkpoint_blocks: bool = False):
        super().__init__()
        t, h, w = token_grid
        ft, fh, fw = coarse_factor
        if t % ft or h % fh or w % fw:
            raise ValueError(f"coarse_factor {coarse_factor} must divide the token grid {token_grid}")
        self.token_grid, self.coarse_factor = tuple(token_grid), tuple(coarse_factor)
        self.coarse_grid = (t // ft, h // fh, w // fw)
        pt, ph, pw = patch_size
        self.pixels_per_tubelet = pt * ph * pw * 3
        spec = EncoderSpec(width, depth, mlp_dim or 4 * width, num_heads)
        self.embed = nn.Linear(encoder_width, width)
        self.posenc = nn.Parameter(torch.zeros(t * h * w, width))
        num_queries = self.coarse_grid[0] * self.coarse_grid[1] * self.coarse_grid[2]
        self.query = nn.Parameter(torch.zeros(num_queries, width))
        self.blocks = nn.ModuleList(Block(spec) for _ in range(depth))
        self.norm = layer_norm(width)
        self.predict = nn.Linear(width, ft * fh * fw * self.pixels_per_tubelet)
        self.checkpoint_blocks = checkpoint_blocks

    def forward(self, tokens: Tensor, ids_keep: Tensor) -> Tensor:
        b = tokens.shape[0]
        pos = self.posenc[ids_keep]  # (B, N_vis, width)
        x = torch.cat([self.embed(tokens) + pos, repeat(self.query, "n d -> b n d", b=b)], dim=1)
        x = run_blocks(self.blocks, x, self.checkpoint_blocks and self.training)
        out = self.predict(self.norm(x[:, tokens.shape[1]:]))
        tc, hc, wc = self.coarse_grid
        ft, fh, fw = self.coarse_factor
        return rearrange(
            out, "b (tc hc wc) (ft fh fw p) -> b (tc ft hc fh wc fw) p",
            tc=tc, hc=hc, wc=wc, ft=ft, fh=fh, fw=fw,
        )
