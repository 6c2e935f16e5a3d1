"""From encoder states to per-frame features, and the cross-attention readout.

`EncoderToReadout` and `AttentionReadout` match the official representations4d modules of the
same names (models/model.py, models/readout.py) numerically; see test/test_parity.py.
"""

from __future__ import annotations


import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .encoder import MLP, layer_norm


def readout_state_index(num_states: int, readout_depth: float) -> int:
    """Official rule: int(len(states) * readout_depth) - 1 (11 of 13 for 12-block models)."""
    index = int(num_states * readout_depth) - 1
    if not 0 <= index < num_states:
        raise ValueError(f"readout_depth {readout_depth} selects no state of {num_states}")
    return index


def _keys_cubic(d: np.ndarray, a: float = -0.5) -> np.ndarray:
    d = np.abs(d)
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d < 1, near, np.where(d < 2, far, 0.0))


def cubic_resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """W (n_in, n_out) with out = in @ W: `jax.image.resize(..., "cubic")` along one axis.

    Half-pixel centres, Keys kernel a = -0.5, taps outside [0, n_in) dropped and the remaining
    weights renormalised. Only upsampling or identity (downsampling would need the antialiased,
    widened kernel, which nothing here uses).
    """
    if n_out < n_in:
        raise ValueError(f"cubic_resize_matrix only upsamples, got {n_in} -> {n_out}")
    scale = n_out / n_in
    centres = (np.arange(n_out) + 0.5) / scale - 0.5
    w = _keys_cubic(centres[None, :] - np.arange(n_in)[:, None])
    return (w / w.sum(axis=0, keepdims=True)).astype(np.float64)


class EncoderToReadout(nn.Module):
    """Pick the state at the readout depth, unflatten time, upsample time t -> num_frames.

    tokens: (B, t*h*w, D) -> (B, num_frames, h*w, D).
    """

    def __init__(self, token_frames: int, num_frames: int, readout_depth: float = 0.95):
        super().__init__()
        self.token_frames = token_frames
        self.num_frames = num_frames
        self.readout_depth = readout_depth
        matrix = torch.from_numpy(cubic_resize_matrix(token_frames, num_frames)).float()
        self.register_buffer("time_resize", matrix, persistent=False)

    def state_index(self, num_states: int) -> int:
        return readout_state_index(num_states, self.readout_depth)

    def forward(self, tokens: Tensor) -> Tensor:
        x = rearrange(tokens, "b (t n) d -> b t n d", t=self.token_frames)
        if self.token_frames == self.num_frames:
            return x
        return torch.einsum("btnd,ts->bsnd", x, self.time_resize)


class AttentionReadout(nn.Module):
    """V-JEPA-style cross-attention readout (official match_vjepa_implementation=True).

    features: (B, T, N, D_in); queries are learned (num_queries given) or external
    (queries: (B, Q, query_dim), projected by `query_projection`). Returns (B, Q, num_classes),
    or, with `output_shape`/`decoding_patch_size`, a dense (B, *output_shape) video.
    """

    def __init__(
        self,
        input_dim: int,
        num_params: int,
        num_heads: int,
        num_classes: int,
        num_frames: int,
        num_queries: int | None = None,
        query_dim: int | None = None,
        output_shape: tuple[int, ...] | None = None,
        decoding_patch_size: tuple[int, int, int] | None = None,
    ):
        super().__init__()
        if num_params % num_heads:
            raise ValueError(f"num_params {num_params} not divisible by num_heads {num_heads}")
        if (num_queries is None) == (query_dim is None):
            raise ValueError("give exactly one of num_queries (learned) or query_dim (external)")
        self.num_heads = num_heads
        self.output_shape = tuple(output_shape) if output_shape else None
        self.decoding_patch_size = tuple(decoding_patch_size) if decoding_patch_size else None
        self.input_norm = layer_norm(input_dim)
        self.temporal_posenc = nn.Parameter(torch.zeros(num_frames, 1, input_dim))
        if num_queries is not None:
            # (Q, heads * head_dim), head-major, the flattening of the official (Q, heads, dim).
            self.query = nn.Parameter(torch.zeros(num_queries, num_params))
            self.query_projection = None
        else:
            self.query = None
            self.query_projection = nn.Linear(query_dim, num_params)
        self.key_embedding = nn.Linear(input_dim, num_params)
        self.value_embedding = nn.Linear(input_dim, num_params)
        self.projection = nn.Linear(num_params, num_params)
        self.mlp_norm = layer_norm(num_params)
        self.mlp = MLP(num_params, 4 * num_params)
        self.head = nn.Linear(num_params, num_classes)

    def forward(self, features: Tensor, queries: Tensor | None = None) -> Tensor:
        b = features.shape[0]
        x = self.input_norm(features) + self.temporal_posenc
        x = rearrange(x, "b t n d -> b (t n) d")
        if self.query is not None:
            q = self.query.expand(b, -1, -1)
        else:
            if queries is None:
                raise ValueError("this readout takes external queries (B, Q, query_dim)")
            q = self.query_projection(queries)
        k = self.key_embedding(x)
        v = self.value_embedding(x)
        heads = self.num_heads
        attn = F.scaled_dot_product_attention(
            rearrange(q, "b q (h d) -> b h q d", h=heads),
            rearrange(k, "b n (h d) -> b h n d", h=heads),
            rearrange(v, "b n (h d) -> b h n d", h=heads),
        )
        # Query residual: the unscaled query plus the projected attention output.
        token = q + self.projection(rearrange(attn, "b h q d -> b q (h d)"))
        token = token + self.mlp(self.mlp_norm(token))
        out = self.head(token)
        if self.decoding_patch_size is None:
            return out
        return self.unpatchify(out)

    def unpatchify(self, out: Tensor) -> Tensor:
        """(B, Q, pt*ph*pw*C) -> (B, T, H, W, C); query index is (time, row, column) blocks."""
        pt, ph, pw = self.decoding_patch_size
        t, h, w, _ = self.output_shape
        return rearrange(
            out,
            "b (a y x) (p r s c) -> b (a p) (y r) (x s) c",
            a=t // pt, y=h // ph, x=w // pw, p=pt, r=ph, s=pw,
        )
