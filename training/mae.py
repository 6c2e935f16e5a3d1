"""The MAE model and loss (as facebookresearch/mae's models_mae.py; the loop is training/pretrain.py).

The model is the 4DS encoder on the kept tubelets only (`Encoder(video, mask=...)`, the one masked
encoder path) plus `training.decoder.CoarseGridDecoder`; the loss is the mean squared error on
per-tubelet normalised pixels of the masked tubelets.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from fourds_ros.model import FourDS, ModelConfig, TokenMask, init_weights

from .decoder import CoarseGridDecoder
from .pretrain_config import DecoderConfig, PretrainConfig


def patchify(video: Tensor, patch_size: tuple[int, int, int]) -> Tensor:
    """video (B, T, H, W, 3) -> tubelet pixels (B, t*h*w, pt*ph*pw*3), time slowest."""
    pt, ph, pw = patch_size
    return rearrange(video, "b (t pt) (h ph) (w pw) c -> b (t h w) (pt ph pw c)", pt=pt, ph=ph, pw=pw)


def mae_loss(pred: Tensor, video: Tensor, masked: Tensor, patch_size, eps: float = 1e-6) -> Tensor:
    """Mean squared error on per-tubelet normalised pixels of the masked tubelets.

    pred: (B, N, P); video: (B, T, H, W, 3); masked: (B, N) bool. With no masked tubelet (mask
    ratio 0, benchmarks only) every tubelet counts."""
    target = patchify(video, patch_size)
    mean = target.mean(-1, keepdim=True)
    var = target.var(-1, keepdim=True, unbiased=False)
    target = (target - mean) / (var + eps).sqrt()
    per_tubelet = ((pred.float() - target) ** 2).mean(-1)
    weight = masked.float()
    if not bool(weight.any()):
        weight = torch.ones_like(weight)
    return (per_tubelet * weight).sum() / weight.sum()


class MAE(nn.Module):
    """The 4DS encoder plus the coarse-grid decoder.

    forward(video (B, T, H, W, 3) in [0, 1], mask) -> (loss, predictions (B, N, pt*ph*pw*3))."""

    def __init__(self, config: ModelConfig, decoder: DecoderConfig, checkpoint_blocks: bool = False):
        super().__init__()
        self.config = config
        self.encoder = FourDS(config, checkpoint_blocks=checkpoint_blocks).encoder
        self.decoder = CoarseGridDecoder(
            config.encoder.width, config.token_grid, config.patch_size,
            width=decoder.width, depth=decoder.depth, num_heads=decoder.num_heads,
            mlp_dim=decoder.mlp_dim, coarse_factor=decoder.coarse_factor,
            checkpoint_blocks=checkpoint_blocks,
        )

    def forward(self, video: Tensor, mask: TokenMask) -> tuple[Tensor, Tensor]:
        pred = self.decoder(self.encoder(video, mask=mask).output, mask.ids_keep)
        return mae_loss(pred, video, mask.masked, self.config.patch_size), pred

    def export_encoder(self, encoder_state: dict[str, Tensor] | None = None) -> FourDS:
        """A FourDS (no heads) holding this encoder's weights (or `encoder_state`, the encoder's
        gathered full state when the model is sharded), for save_checkpoint."""
        model = FourDS(self.config)
        model.encoder.load_state_dict(self.encoder.state_dict() if encoder_state is None else encoder_state)
        return model


def build_mae(cfg: PretrainConfig) -> MAE:
    model = MAE(cfg.model.model_config(), cfg.decoder, cfg.activation_checkpointing)
    return init_weights(model, seed=cfg.seed)
