"""Typed MAE pre-training configuration: frozen dataclasses built from the YAML files in
training/configs (the source of every setting) plus `a.b=value` overrides, validated on load.
Defaults are those of keys a YAML file leaves out."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fourds_ros.model import ModelConfig
from fourds_ros.model.masking import MASKS

from .typed_config import ConfigError, from_dict, to_dict

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
PARALLEL_MODES = ("ddp", "fsdp")


@dataclass(frozen=True)
class ClipModel:
    """The encoder being pre-trained: its size and the clip shape."""

    size: str
    num_frames: int
    image_size: tuple[int, int]
    patch_size: tuple[int, int, int] = (2, 16, 16)

    def __post_init__(self):
        self.model_config()  # ModelConfig checks the size and that the tubelets divide the clip

    def model_config(self) -> ModelConfig:
        return ModelConfig(size=self.size, num_frames=self.num_frames, image_size=self.image_size,
                           patch_size=self.patch_size)


@dataclass(frozen=True)
class DecoderConfig:
    """training.decoder.CoarseGridDecoder's shape; mlp_dim None: 4 x width."""

    width: int = 256
    depth: int = 4
    num_heads: int = 8
    mlp_dim: int | None = None
    coarse_factor: tuple[int, int, int] = (1, 2, 2)


@dataclass(frozen=True)
class MaskConfig:
    kind: str = "random"
    ratio: float = 0.95

    def __post_init__(self):
        if self.kind not in MASKS:
            raise ConfigError(f"mask.kind must be one of {list(MASKS)}, got {self.kind!r}")
        if not 0.0 <= self.ratio < 1.0:
            raise ConfigError(f"mask.ratio must be in [0, 1), got {self.ratio}")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warmup then cosine decay to min_lr_ratio of lr; scale_lr: lr x batch / 256."""

    lr: float = 1.5e-4
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = 0
    steps: int = 100
    min_lr_ratio: float = 0.0
    clip_grad: float = 0.0
    scale_lr: bool = False

    def __post_init__(self):
        if self.steps < 1 or self.warmup_steps < 0:
            raise ConfigError(f"optim.steps must be >= 1 and warmup_steps >= 0, got {self.steps}, {self.warmup_steps}")
        if self.lr < 0 or self.weight_decay < 0 or self.clip_grad < 0:
            raise ConfigError("optim.lr, weight_decay and clip_grad must be >= 0")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"optim.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")

    def peak_lr(self, global_batch: int) -> float:
        return self.lr * global_batch / 256 if self.scale_lr else self.lr


@dataclass(frozen=True)
class PretrainConfig:
    """One pre-training run. batch_size is the global batch over all processes; micro_batch_size
    the per-process forward (None: the whole per-process batch), the rest gradient accumulation.
    data: training.data.PretrainClips' settings (source, root, num_scenes, ...), checked there.
    time_budget_s: fit the step count to this many seconds once the step time is known (0: off)."""

    model: ClipModel
    decoder: DecoderConfig = DecoderConfig()
    mask: MaskConfig = MaskConfig()
    data: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int = 8
    micro_batch_size: int | None = None
    optim: OptimConfig = OptimConfig()
    parallel: str = "ddp"
    activation_checkpointing: bool = False
    num_workers: int = 0
    save_every: int = 1000
    seed: int = 0
    resume: bool = True
    tensorboard: bool = True
    time_budget_s: float = 0.0

    def __post_init__(self):
        if self.parallel not in PARALLEL_MODES:
            raise ConfigError(f"parallel must be one of {PARALLEL_MODES}, got {self.parallel!r}")
        if self.batch_size < 1 or (self.micro_batch_size is not None and self.micro_batch_size < 1):
            raise ConfigError("batch_size and micro_batch_size must be >= 1")
        if self.save_every < 1 or self.num_workers < 0 or not 0 <= self.time_budget_s < math.inf:
            raise ConfigError("save_every must be >= 1, num_workers >= 0 and time_budget_s a finite number >= 0")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PretrainConfig:
        return from_dict(cls, data)

    def to_dict(self) -> dict:
        return to_dict(self)


def read_yaml(path: str | Path, overrides: list[str] | None = None) -> dict:
    """The YAML file (a path, or a name in training/configs) plus `a.b=value` overrides (values
    parsed as YAML), as a plain dict."""
    path = Path(path)
    if not path.is_file() and (CONFIG_DIR / f"{path}.yaml").is_file():
        path = CONFIG_DIR / f"{path}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"config {path} not found (known: {sorted(p.stem for p in CONFIG_DIR.glob('*.yaml'))})")
    cfg = yaml.safe_load(path.read_text()) or {}
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"override {item!r} is not key=value")
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = yaml.safe_load(value)
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> PretrainConfig:
    """The typed, validated config of a YAML file plus overrides."""
    return PretrainConfig.from_dict(read_yaml(path, overrides))
