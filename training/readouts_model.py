"""Readout training's model and loss: a FourDS with heads on a backbone, the heads' summed loss,
and the held-aside metrics."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from fourds_ros.model import FourDS, ModelConfig, default_heads, init_weights, load_checkpoint

from .losses import depth_loss, geodesic_angle, pose_loss, track_loss
from .readouts_config import ReadoutsConfig, check_heads


def with_temperature(model: FourDS, temperature: float) -> FourDS:
    """The same weights in a model whose tracks head has this soft-argmax temperature (a config
    change only)."""
    tracks = dataclasses.replace(model.config.heads["tracks"], softargmax_temperature=temperature)
    state = model.state_dict()
    model = FourDS(model.config.replace(heads={**model.config.heads, "tracks": tracks}))
    model.load_state_dict(state)
    return model


def build_model(backbone: str | None, size: str, clip: tuple[int, int, int], heads: list[str],
                readout_width: int, readout_heads: int, patch_size=(2, 16, 16), seed: int = 0,
                init: str | None = None, softargmax_temperature: float | None = None) -> FourDS:
    """A FourDS with freshly initialised `heads` on the backbone's encoder weights; with `init`
    (a full model dir: encoder and heads) that model, to train further. softargmax_temperature:
    the tracks head's (TrackHeadConfig), when not the config's."""
    check_heads(heads)
    if init:
        model = load_checkpoint(init).float()
        if set(model.config.heads) != set(heads):
            raise ValueError(f"--init {init} has heads {sorted(model.config.heads)}, not the requested {sorted(heads)}")
        if softargmax_temperature is not None and "tracks" in heads:
            model = with_temperature(model, softargmax_temperature)
        return model
    all_heads = default_heads(readout_width, readout_heads)
    if softargmax_temperature is not None and "tracks" in all_heads:
        all_heads["tracks"] = dataclasses.replace(all_heads["tracks"], softargmax_temperature=softargmax_temperature)
    chosen = {h: all_heads[h] for h in heads}
    if backbone:
        base = load_checkpoint(backbone)
        config = base.config.replace(heads=chosen)
    else:
        base = None
        config = ModelConfig(size=size, num_frames=clip[0], image_size=clip[1:], patch_size=tuple(patch_size), heads=chosen)
    model = init_weights(FourDS(config), seed=seed)
    if base is not None:
        model.encoder.load_state_dict(base.encoder.state_dict())
    return model


def model_for(cfg: ReadoutsConfig) -> FourDS:
    """build_model for a run, with only the trained parts (encoder with --finetune, the
    --train-heads) requiring gradients."""
    model = build_model(cfg.backbone, cfg.size, cfg.clip, list(cfg.heads), cfg.readout_width,
                        cfg.readout_heads, cfg.patch_size, seed=cfg.seed, init=cfg.init,
                        softargmax_temperature=cfg.softargmax_temperature)
    for p in model.encoder.parameters():
        p.requires_grad_(cfg.finetune)
    for name, head in model.heads.items():
        for p in head.parameters():
            p.requires_grad_(name in cfg.trained_heads)
    return model


def compute_losses(model: FourDS, batch: dict, finetune: bool, heads: list[str] | None = None
                   ) -> tuple[torch.Tensor, dict]:
    """batch["features"], when present, are the frozen encoder's cached readout features. heads:
    the heads to train (default: all of the model's); the others are not even run."""
    heads = list(model.heads) if heads is None else heads
    video = batch["video"]
    if "features" in batch:
        feats = batch["features"].float()
    elif finetune:
        feats = model.features(video)
    else:
        with torch.no_grad():
            feats = model.features(video)
    total = video.new_zeros(())
    logs: dict[str, float] = {}
    if "depth" in heads:
        loss, parts = depth_loss(model.heads["depth"](feats), batch["depth"])
        total, logs = total + loss, {**logs, **parts}
    if "tracks" in heads:
        head = model.heads["tracks"]
        out = head(feats, batch["query_points"], video)
        loss, parts = track_loss(out, batch["tracks_xy"], batch["tracks_visible"],
                                 head.spatial_weights(batch["tracks_xy"]))
        total, logs = total + loss, {**logs, **parts}
    if "pose" in heads:
        loss, parts = pose_loss(model.heads["pose"](feats), batch["pose_rotation"], batch["pose_translation"])
        total, logs = total + loss, {**logs, **parts}
    return total, {k: float(v) for k, v in logs.items()}


def batch_metrics(out: dict, batch: dict) -> dict[str, float]:
    """One batch's held-aside metrics (see evaluate)."""
    metrics = {}
    if "depth" in out:
        valid = batch["depth"] > 0
        rel = ((out["depth"] - batch["depth"]).abs() / batch["depth"].clamp_min(1e-3))[valid]
        metrics["depth_abs_rel"] = float(rel.mean())
    if "track_xy" in out:
        vis = batch["tracks_visible"] > 0.5
        metrics["track_epe_px"] = float((out["track_xy"] - batch["tracks_xy"]).norm(dim=-1)[vis].mean())
        still = batch["query_points"][:, :, None, [2, 1]].expand_as(batch["tracks_xy"])
        metrics["track_epe_stay_still_px"] = float((still - batch["tracks_xy"]).norm(dim=-1)[vis].mean())
        metrics["visibility_accuracy"] = float(((out["track_visibility"] > 0.5) == vis).float().mean())
    if "pose_rotation" in out:
        angle = geodesic_angle(out["pose_rotation"], batch["pose_rotation"])[:, 1:]
        metrics["pose_rotation_deg"] = float(torch.rad2deg(angle).mean())
        trans = (out["pose_translation"] - batch["pose_translation"]).norm(dim=-1)[:, 1:]
        metrics["pose_translation_m"] = float(trans.mean())
    return metrics


@torch.no_grad()
def evaluate(model: FourDS, loader: list[dict]) -> dict:
    """Metrics on the held-aside split, averaged over batches: depth AbsRel, track end-point
    error (px, visible; and of predicting no motion, the floor a tracker must beat), visibility
    accuracy, pose rotation (deg) and translation (m) error (frames 1..T-1)."""
    model.eval()
    sums: dict[str, list[float]] = {}
    for batch in loader:
        out = model(batch["video"], batch["query_points"] if "tracks" in model.heads else None)
        for key, value in batch_metrics(out, batch).items():
            sums.setdefault(key, []).append(value)
    return {k: float(np.mean(v)) for k, v in sums.items()}
