"""The attention head count of each official 4DS size is pinned. It shapes no weight, so a
checkpoint loads under any head count and computes something else; the parameter counts of test_model.py
cannot see it, and an official checkpoint of that size would no longer be recognised by import-official."""

from __future__ import annotations

import numpy as np
import pytest

from fourds_ros.model import ENCODER_SIZES
from fourds_ros.model.official import convert_encoder

# Kauldron kauldron/modules/vit.py VIT_SIZES (width, depth, mlp_dim, num_heads): the shapes of the
# official scaling4d checkpoints.
KAULDRON = {
    "Ti": (192, 12, 768, 3), "S": (384, 12, 1536, 6), "B": (768, 12, 3072, 12), "L": (1024, 24, 4096, 16),
    "H": (1280, 32, 5120, 16), "G": (1664, 48, 8192, 16), "e": (1792, 56, 15360, 16),
}


@pytest.mark.parametrize("size", list(KAULDRON))
def test_official_sizes_match_kauldron(size):
    s = ENCODER_SIZES[size]
    assert (s.width, s.depth, s.mlp_dim, s.num_heads) == KAULDRON[size]


def _official_arrays(width, depth, mlp, heads, grid=(1, 1, 1)):
    """Zero arrays with the key layout and shapes of a backbone-only official file."""
    hd = width // heads
    a = {"encoder/patch_embedding/Conv_0/kernel": (2, 16, 16, 3, width), "encoder/patch_embedding/Conv_0/bias": (width,),
         "encoder/posenc/embeddings": (*grid, width)}
    for i in range(depth):
        f = f"processor/layers_{i}"
        for n in ("attention_norm", "mlp_norm"):
            a[f"{f}/{n}/scale"] = a[f"{f}/{n}/bias"] = (width,)
        for n in ("query", "key", "value"):
            a[f"{f}/attention/{n}/kernel"], a[f"{f}/attention/{n}/bias"] = (width, heads, hd), (heads, hd)
        a[f"{f}/attention/out/kernel"], a[f"{f}/attention/out/bias"] = (heads, hd, width), (width,)
        a[f"{f}/mlp/dense_in/kernel"], a[f"{f}/mlp/dense_in/bias"] = (width, mlp), (mlp,)
        a[f"{f}/mlp/dense_out/kernel"], a[f"{f}/mlp/dense_out/bias"] = (mlp, width), (width,)
    return {k: np.zeros(v, np.float32) for k, v in a.items()}


@pytest.mark.parametrize("size", ["S", "B"])
def test_an_official_backbone_is_recognised_by_its_size(size):
    assert convert_encoder(_official_arrays(*KAULDRON[size])).size == size
