"""FourDS: one encoder pass, read out three ways (depth, point tracks, camera pose).

Inputs and outputs are named tensors; every inference backend (torch, ONNX Runtime, TensorRT)
uses exactly these names, so swapping backends never changes the caller.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from . import heads as _builtin_heads  # noqa: F401  (importing it registers depth, tracks, pose)
from .config import ModelConfig
from .encoder import Encoder
from .readout import EncoderToReadout
from .registry import HEADS, RegistryView, get_head, head_inputs, head_outputs, parse_shape

# Output name -> (shape with symbolic dims, meaning), every registered head's, in registration
# order. B batch, T clip frames, Q query points. Kept as names for compatibility; the registry
# (registry.HEADS, entries in heads.py) is the source.
OUTPUTS = RegistryView(lambda: head_outputs(HEADS), "OUTPUTS")
# Head name -> its output names.
HEAD_OUTPUTS = RegistryView(lambda: {name: tuple(e.outputs) for name, e in HEADS.items()}, "HEAD_OUTPUTS")


def _is_tracing() -> bool:
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling()


def check_video(video: Tensor, config: ModelConfig, check_range: bool = True) -> None:
    """Raise ValueError naming what was expected when video is not (B, T, H, W, 3) in [0, 1]."""
    expected = "(B, {}, {}, {}, 3) float in [0, 1]".format(*config.clip_shape[:3])
    if not isinstance(video, Tensor):
        raise TypeError(f"video must be a torch.Tensor {expected}, got {type(video).__name__}")
    if not video.is_floating_point():
        raise ValueError(f"video must be {expected}, got dtype {video.dtype} (divide uint8 by 255)")
    if video.ndim != 5 or tuple(video.shape[1:]) != config.clip_shape:
        raise ValueError(f"video must be {expected}, got shape {tuple(video.shape)}")
    if check_range and video.numel():
        lo, hi = float(video.min()), float(video.max())
        if not (lo >= -1e-3 and hi <= 1.0 + 1e-3):  # also catches NaN
            raise ValueError(f"video must be {expected}, got values in [{lo:.3g}, {hi:.3g}]")


class FourDS(nn.Module):
    def __init__(self, config: ModelConfig, checkpoint_blocks: bool = False):
        super().__init__()
        self.config = config
        # Input checks cost a host sync (min/max); CUDA graph capture forbids that, so a caller
        # that has validated its inputs once (bench, graph runners) may switch them off.
        self.check_inputs = True
        spec = config.encoder
        grid = config.token_grid
        self.encoder = Encoder(
            spec, config.patch_size, config.posenc_grid or grid, checkpoint_blocks=checkpoint_blocks
        )
        self.encoder_to_readout = EncoderToReadout(grid[0], config.num_frames, config.readout_depth)
        clip = (config.num_frames, *config.image_size)
        self.heads = nn.ModuleDict(
            {name: get_head(name).build(cfg, spec.width, clip, grid) for name, cfg in config.heads.items()}
        )

    @property
    def readout_state_index(self) -> int:
        return self.encoder_to_readout.state_index(self.encoder.num_states)

    @property
    def readout_blocks(self) -> int:
        """How many encoder blocks the readout state is the output of (states[i], i >= 2, is
        block i-2's output; states[0] and states[1] are the embedded tokens): 10 of 12 for 4DS-S/B."""
        return max(0, self.readout_state_index - 1)

    @property
    def output_names(self) -> list[str]:
        return list(head_outputs(self.heads))

    @property
    def input_names(self) -> list[str]:
        return ["video", *head_inputs(self.heads)]

    def features(self, video: Tensor) -> Tensor:
        """video: (B, T, H, W, 3) in [0, 1] -> readout features (B, T, h*w, D).

        Runs only the blocks the readout state needs (10 of 12 for 4DS-B).
        """
        index = self.readout_state_index
        states = self.encoder(video, num_states=index + 1).states
        return self.encoder_to_readout(states[index])

    def forward(self, video: Tensor, query_points: Tensor | None = None, **inputs: Tensor) -> dict[str, Tensor]:
        """video: (B, T, H, W, 3) float in [0, 1]; query_points: (B, Q, 3) (t, y, x) when the
        tracks head is enabled; other heads' extra inputs by name (registry.HeadEntry.inputs).
        Returns the named outputs of every enabled head (OUTPUTS), in output_names order."""
        if query_points is not None:
            inputs["query_points"] = query_points
        unknown = set(inputs) - set(head_inputs(HEADS))
        if unknown:  # a misspelt input would otherwise read as "missing" from the head
            raise TypeError(f"FourDS got inputs no head takes: {sorted(unknown)}")
        if self.check_inputs and not _is_tracing():
            check_video(video, self.config)
            self._check_extra_inputs(video, inputs)
        feats = self.features(video)
        out: dict[str, Tensor] = {}
        for name, head in self.heads.items():
            entry = get_head(name)
            out.update(entry.run(entry, head, feats, video, inputs))
        return out

    def _check_extra_inputs(self, video: Tensor, inputs: dict[str, Tensor]) -> None:
        """ValueError naming the input when one an enabled head needs is missing or misshapen.
        Letters other than B (Q) are free: the caller picks the number of queries."""
        for name, (shape, meaning) in head_inputs(self.heads).items():
            dims = parse_shape(shape)
            x = inputs.get(name)
            if x is None or x.ndim != len(dims) or any(
                isinstance(d, int) and x.shape[i] != d for i, d in enumerate(dims)
            ):
                raise ValueError(f"{name} must be ({', '.join(map(str, dims))}) as {meaning}")
            if "B" in dims and x.shape[dims.index("B")] != video.shape[0]:
                raise ValueError(f"{name} and video batch sizes differ")


def init_weights(model: nn.Module, seed: int | None = None) -> nn.Module:
    """MAE-style initialisation for training from scratch: xavier-uniform linears, zero biases,
    LayerNorm (1, 0), small normal position embeddings and queries."""
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    for name, p in model.named_parameters():
        with torch.no_grad():
            if p.ndim >= 2 and ("posenc" in name or name.endswith("query")):
                p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
            elif p.ndim >= 2:
                fan_out, fan_in = p.shape[0], p[0].numel()
                bound = (6.0 / (fan_in + fan_out)) ** 0.5
                p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * bound)
            elif "norm" in name and name.endswith("weight"):
                p.fill_(1.0)
            else:
                p.zero_()
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
