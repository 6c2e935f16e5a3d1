"""Named 4DS sizes (a timm-style registry) and the JSON-serialisable model config.

The config is the single source of truth for a checkpoint: `models/<name>/config.json` holds
`ModelConfig.to_dict()`, and the weights next to it must match the shapes it implies.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from .registry import HEADS, RegistryView, get_head


@dataclass(frozen=True)
class EncoderSpec:
    """Plain ViT shape: token width, number of blocks, MLP hidden size, attention heads."""

    width: int
    depth: int
    mlp_dim: int
    num_heads: int

    def __post_init__(self):
        if self.width % self.num_heads:
            raise ValueError(f"width {self.width} is not divisible by num_heads {self.num_heads}")


# Official Kauldron ViT shapes (kauldron/modules/vit.py VIT_SIZES) for the sizes 4DS uses.
# "j" (22B) is not a Kauldron size; we take the ViT-22B shape (Dehghani et al., 2023):
# width 6144, 48 blocks, MLP 24576, 48 heads of 128, in our standard (non-parallel, biased) block,
# which gives 21.8B parameters at 16x224x224.
ENCODER_SIZES: dict[str, EncoderSpec] = {
    "Ti": EncoderSpec(192, 12, 768, 3),
    "S": EncoderSpec(384, 12, 1536, 6),
    "B": EncoderSpec(768, 12, 3072, 12),
    "L": EncoderSpec(1024, 24, 4096, 16),
    "H": EncoderSpec(1280, 32, 5120, 16),
    "G": EncoderSpec(1664, 48, 8192, 16),
    "e": EncoderSpec(1792, 56, 15360, 16),
    "j": EncoderSpec(6144, 48, 24576, 48),
    # Test-only shapes: fast enough to build, train and export in unit tests.
    "tiny": EncoderSpec(64, 4, 128, 2),
    "micro": EncoderSpec(32, 2, 64, 2),
}

# Public names as in the paper ("4DS-B") map onto the registry keys.
PAPER_NAMES = {f"4DS-{k}": k for k in ("S", "B", "L", "H", "G", "e", "j")}


def encoder_spec(size: str) -> EncoderSpec:
    key = PAPER_NAMES.get(size, size)
    if key not in ENCODER_SIZES:
        known = ", ".join(list(ENCODER_SIZES) + list(PAPER_NAMES))
        raise ValueError(f"unknown 4DS size {size!r}; known sizes: {known}")
    return ENCODER_SIZES[key]


# The least value of each numeric field of the head configs (a field not listed: any finite number).
# (feature_stride: the tracks head's own check, which needs the image size.)
HEAD_FIELD_MINIMUM = {"num_params": 1, "num_heads": 1, "decoding_patch_size": 1, "feature_dim": 1,
                      "window_radius": 0, "softargmax_temperature": 0.0, "hidden": 1}


def check_head_fields(config) -> None:
    """Raise ValueError naming the field when a head config's value is not of its declared type (int, float,
    str, a tuple of ints, None where allowed) or below HEAD_FIELD_MINIMUM. Why: config.json is edited by
    hand, and window_radius -1 loaded, configured and put out NaN tracks (an empty soft-argmax window),
    while a "2" failed at the first forward with a TypeError that named neither the file nor the key."""
    hints = typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        value, kind = getattr(config, f.name), hints[f.name]
        options = typing.get_args(kind) if typing.get_origin(kind) in (typing.Union, types.UnionType) else ()
        if value is None and type(None) in options:
            continue
        kind = next((k for k in options if k is not type(None)), kind)
        items = value if typing.get_origin(kind) is tuple else (value,)
        item_kind = typing.get_args(kind)[0] if typing.get_origin(kind) is tuple else kind
        if typing.get_origin(kind) is tuple and (not isinstance(value, tuple)
                                                 or len(value) != len(typing.get_args(kind))):
            raise ValueError(f"{f.name} must be {len(typing.get_args(kind))} whole numbers, got {value!r}")
        for item in items:
            if item_kind in (int, float):
                whole = isinstance(item, int) and not isinstance(item, bool)
                number = whole or (item_kind is float and isinstance(item, float) and math.isfinite(item))
                if not number:
                    raise ValueError(f"{f.name} must be {'a whole number' if item_kind is int else 'a finite number'}, "
                                     f"got {value!r}")
                if f.name in HEAD_FIELD_MINIMUM and item < HEAD_FIELD_MINIMUM[f.name]:
                    raise ValueError(f"{f.name} must be >= {HEAD_FIELD_MINIMUM[f.name]}, got {value!r}")
            elif not isinstance(item, item_kind):
                raise ValueError(f"{f.name} must be a {item_kind.__name__}, got {value!r}")


@dataclass(frozen=True)
class ReadoutConfig:
    """Cross-attention readout width. The official depth readout of 4DS-B uses 1024/16."""

    num_params: int
    num_heads: int

    def __post_init__(self):
        check_head_fields(self)


@dataclass(frozen=True)
class DepthHeadConfig(ReadoutConfig):
    decoding_patch_size: tuple[int, int, int] = (2, 8, 8)
    # "identity" reproduces the official readout; "softplus" keeps trained depth positive.
    activation: str = "identity"
    # Camera-aware metric depth (the canonical camera of Metric3D and UniDepth): the head predicts
    # depth as a camera with this focal length in model pixels would see the clip, since an image
    # alone fixes depth only up to the focal length; metric depth is that times fx_model /
    # canonical_focal_px. None: the head's output is metric depth (every checkpoint before this).
    canonical_focal_px: float | None = None

    def __post_init__(self):
        check_head_fields(self)
        if self.canonical_focal_px is not None and not self.canonical_focal_px > 0:
            raise ValueError(f"canonical_focal_px must be > 0 or None, got {self.canonical_focal_px}")

    def metric_scale(self, focal_px):
        """Factor from the head's output to metric depth for a camera whose fx is focal_px model
        pixels (a float, array or tensor); 1 without a canonical focal."""
        return 1.0 if self.canonical_focal_px is None else focal_px / self.canonical_focal_px


@dataclass(frozen=True)
class TrackHeadConfig:
    """Correlation tracker (fourds_ros.model.heads.TrackHead). The encoder's 16-pixel tokens are
    too coarse to place a point, so the head matches query features on a finer map."""

    # Channels of the matching feature map.
    feature_dim: int = 64
    # Model-input pixels per feature-map cell (divides the image size).
    feature_stride: int = 4
    # Soft-argmax window around the correlation peak, in cells each side.
    window_radius: int = 2
    # Temperature of that soft-argmax (cosine x this). 0: the learned matching temperature. The
    # matching cross-entropy over all cells keeps that one soft (training took it from 20 to 1.7),
    # which rounds every position to the peak cell; a sharp window interpolates between cells.
    softargmax_temperature: float = 0.0
    # Width of the MLP that refines positions and predicts visibility and confidence.
    hidden: int = 128

    def __post_init__(self):
        check_head_fields(self)


@dataclass(frozen=True)
class PoseHeadConfig(ReadoutConfig):
    pass


# Head name -> config class, from the registry (the entries live next to their modules, heads.py).
HEAD_TYPES = RegistryView(lambda: {name: entry.config for name, entry in HEADS.items()}, "HEAD_TYPES")


# The largest clip a config may declare, num_frames x H x W: 64 frames at 1024x1024, 80x 4DS's own 16x224x224.
# Why a cap: a downloaded config.json asking for 32768x32768 loaded from a 784 KB folder, took 1.3 GB to build its
# tracks head's buffers and would have been killed for memory at its first clip, with no log line.
MAX_CLIP_PIXELS = 64 * 1024 * 1024


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a 4DS model: encoder size, clip shape and readout heads."""

    size: str = "S"
    num_frames: int = 16
    image_size: tuple[int, int] = (224, 224)
    patch_size: tuple[int, int, int] = (2, 16, 16)
    readout_depth: float = 0.95
    # Head name -> that registered head's config (registry.HeadEntry.config).
    heads: dict[str, object] = field(default_factory=dict)
    # Token grid of the stored position embedding when it differs from the clip's grid
    # (an imported 16x224x224 checkpoint run at 8x128x128). None: the clip's own grid.
    posenc_grid: tuple[int, int, int] | None = None

    def __post_init__(self):
        encoder_spec(self.size)
        pt, ph, pw = self.patch_size
        h, w = self.image_size
        sizes = (self.num_frames, h, w, pt, ph, pw)
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in sizes):
            # 0 % pt == 0 passed the divisibility below, then a bare ZeroDivisionError in the readout
            raise ValueError(f"num_frames, image_size and patch_size must be whole numbers >= 1, got clip "
                             f"{self.num_frames}x{h}x{w}, patch {self.patch_size}")
        if self.num_frames * h * w > MAX_CLIP_PIXELS:
            raise ValueError(f"clip {self.num_frames}x{h}x{w} (num_frames x image_size) is over {MAX_CLIP_PIXELS} "
                             "pixels: no 4DS model runs at that size, and building its buffers would exhaust the memory")
        if self.num_frames % pt or h % ph or w % pw:
            raise ValueError(
                f"clip {self.num_frames}x{h}x{w} is not divisible by patch size {self.patch_size}"
            )
        if not 0.0 < self.readout_depth <= 1.0:
            raise ValueError(f"readout_depth must be in (0, 1], got {self.readout_depth}")
        from .readout import readout_state_index  # here: readout imports the encoder, which imports this

        readout_state_index(self.encoder.depth + 1, self.readout_depth)  # raises when it selects no state
        for name, head in self.heads.items():
            entry = get_head(name)
            if not isinstance(head, entry.config):
                raise TypeError(f"head {name!r} needs a {entry.config.__name__}")
            if entry.check is not None:
                entry.check(head, (self.num_frames, h, w))

    @property
    def encoder(self) -> EncoderSpec:
        return encoder_spec(self.size)

    @property
    def token_grid(self) -> tuple[int, int, int]:
        pt, ph, pw = self.patch_size
        return (self.num_frames // pt, self.image_size[0] // ph, self.image_size[1] // pw)

    @property
    def clip_shape(self) -> tuple[int, int, int, int]:
        """(T, H, W, 3) of one input clip."""
        return (self.num_frames, *self.image_size, 3)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["heads"] = {name: dataclasses.asdict(h) for name, h in self.heads.items()}
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        d = dict(d)
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        heads = {}
        for name, h in (d.pop("heads", None) or {}).items():
            head_type = get_head(name).config
            # JSON has no tuples; the frozen head configs hold tuples (decoding_patch_size).
            h = {k: tuple(v) if isinstance(v, list) else v for k, v in h.items()}
            try:
                heads[name] = head_type(**h)
            except TypeError as exc:  # a config written by another version of the head
                raise ValueError(
                    f"head {name!r} config {sorted(h)} does not match {head_type.__name__}: {exc}"
                ) from exc
        for key in ("image_size", "patch_size", "posenc_grid"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        return cls(heads=heads, **d)

    def replace(self, **changes) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> ModelConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))


def default_heads(width: int, num_heads: int) -> dict[str, ReadoutConfig | TrackHeadConfig]:
    """All three heads: depth and pose readouts at one width, the default tracker (what training/ uses)."""
    return {
        "depth": DepthHeadConfig(width, num_heads, activation="softplus"),
        "tracks": TrackHeadConfig(),
        "pose": PoseHeadConfig(width, num_heads),
    }
