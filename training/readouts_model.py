"""Readout training's model and loss: a FourDS with heads on a backbone, the heads' summed loss,
and the held-aside metrics."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from fourds_ros.evaluation.metrics import depth_errors, mean_depth_errors
from fourds_ros.model import FourDS, ModelConfig, default_heads, init_weights, load_checkpoint
from fourds_ros.model.blocks import run_blocks

from .photometric import photometric_loss
from .losses import (depth_loss, depth_teacher_loss, geodesic_angle, pose_loss, ssi_depth_loss, track_loss,
                     translation_cosine)
from .readouts_config import ReadoutsConfig, check_heads, given_options
from .typed_config import ConfigError


def with_head_config(model: FourDS, name: str, **changes) -> FourDS:
    """The same weights in a model whose `name` head config has these changes (fields that
    change no weight shape: a temperature, a canonical focal)."""
    head = dataclasses.replace(model.config.heads[name], **changes)
    state = model.state_dict()
    model = FourDS(model.config.replace(heads={**model.config.heads, name: head}))
    model.load_state_dict(state)
    return model


def with_temperature(model: FourDS, temperature: float) -> FourDS:
    """The same weights in a model whose tracks head has this soft-argmax temperature (a config
    change only)."""
    return with_head_config(model, "tracks", softargmax_temperature=temperature)


def metric_factor(model: FourDS, batch: dict) -> torch.Tensor | float:
    """Factor from the depth head's output to metres, per clip: fx_model / canonical_focal_px,
    (B, 1, 1, 1) from batch["intrinsics"] (model pixels, after crop and resize); 1.0 when the
    head has no canonical focal. Training divides metric targets by it, so the head learns depth
    as the canonical camera would see each clip; evaluation and the pipeline multiply by it."""
    head = model.config.heads["depth"]
    if head.canonical_focal_px is None:
        return 1.0
    return head.metric_scale(batch["intrinsics"][:, 0, 0].float())[:, None, None, None]


def build_model(backbone: str | None, size: str, clip: tuple[int, int, int], heads: list[str],
                readout_width: int, readout_heads: int, patch_size=(2, 16, 16), seed: int = 0,
                init: str | None = None, softargmax_temperature: float | None = None,
                canonical_focal_px: float | None = None) -> FourDS:
    """A FourDS with freshly initialised `heads` on the backbone's encoder weights; with `init`
    (a full model dir: encoder and heads) that model, to train further. softargmax_temperature:
    the tracks head's (TrackHeadConfig), canonical_focal_px the depth head's (DepthHeadConfig),
    when not the config's."""
    check_heads(heads)
    if init:
        model = load_checkpoint(init).float()
        if set(model.config.heads) != set(heads):
            raise ValueError(f"--init {init} has heads {sorted(model.config.heads)}, not the requested {sorted(heads)}")
        if softargmax_temperature is not None and "tracks" in heads:
            model = with_temperature(model, softargmax_temperature)
        if canonical_focal_px is not None and "depth" in heads:
            model = with_head_config(model, "depth", canonical_focal_px=canonical_focal_px)
        return model
    all_heads = default_heads(readout_width, readout_heads)
    if softargmax_temperature is not None and "tracks" in all_heads:
        all_heads["tracks"] = dataclasses.replace(all_heads["tracks"], softargmax_temperature=softargmax_temperature)
    if canonical_focal_px is not None:
        all_heads["depth"] = dataclasses.replace(all_heads["depth"], canonical_focal_px=canonical_focal_px)
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


def replaced_mismatches(cfg: ReadoutsConfig, config, by: str, options: tuple[str, ...]) -> list[str]:
    """The `options` of the command line that the model `by` names (--init, --backbone) replaces and that differ
    from its `config`: "--option value (the <by> model's: ...)" each. Options left at their defaults are not
    compared."""
    given = given_options(cfg.argv)
    readouts = [h for h in config.heads.values() if hasattr(h, "num_params")]
    theirs = {"size": config.size, "clip": (config.num_frames, *config.image_size),
              "patch_size": tuple(config.patch_size),
              "readout_width": sorted({h.num_params for h in readouts}) or None,
              "readout_heads": sorted({h.num_heads for h in readouts}) or None}
    ours = {"size": cfg.size, "clip": tuple(cfg.clip), "patch_size": tuple(cfg.patch_size),
            "readout_width": [cfg.readout_width], "readout_heads": [cfg.readout_heads]}
    return [f"--{k.replace('_', '-')} {ours[k]} (the {by} model's: {theirs[k]})"
            for k in options if k in given and theirs[k] is not None and ours[k] != theirs[k]]


def init_mismatches(cfg: ReadoutsConfig, model: FourDS) -> list[str]:
    """The options of the command line that --init's model replaces and that differ from it
    (replaced_mismatches), and a --backbone whose encoder is not the model's."""
    found = replaced_mismatches(cfg, model.config, "--init",
                                ("size", "clip", "patch_size", "readout_width", "readout_heads"))
    if cfg.backbone:
        encoder = load_checkpoint(cfg.backbone).encoder.state_dict()
        own = model.encoder.state_dict()
        if encoder.keys() != own.keys() or not all(torch.equal(v.float(), own[k]) for k, v in encoder.items()):
            found.append(f"--backbone {cfg.backbone} (its encoder is not the --init model's)")
    return found


def model_for(cfg: ReadoutsConfig) -> FourDS:
    """build_model for a run, with only the trained parts (encoder with --finetune, its last
    blocks with --finetune-blocks, the --train-heads) requiring gradients. ConfigError where --init's
    model differs from an option it replaces (init_mismatches): the model card recorded a command that was
    not what ran."""
    model = build_model(cfg.backbone, cfg.size, cfg.clip, list(cfg.heads), cfg.readout_width,
                        cfg.readout_heads, cfg.patch_size, seed=cfg.seed, init=cfg.init,
                        softargmax_temperature=cfg.softargmax_temperature,
                        canonical_focal_px=cfg.canonical_focal_px)
    if cfg.init and (mismatches := init_mismatches(cfg, model)):
        raise ConfigError(f"--init {cfg.init} is trained further as it is, and these options say otherwise: "
                          f"{'; '.join(mismatches)}; drop them or give the model's own")
    # Why: the backbone's encoder sets its size and clip; a differing --size or --clip was silently ignored, and
    # the model card then recorded a command that was not what ran.
    if cfg.backbone and not cfg.init and (mismatches := replaced_mismatches(cfg, model.config, "--backbone",
                                                                            ("size", "clip", "patch_size"))):
        raise ConfigError(f"--backbone {cfg.backbone} sets the encoder, and these options say otherwise: "
                          f"{'; '.join(mismatches)}; drop them or give the backbone's own")
    for p in model.encoder.parameters():
        p.requires_grad_(cfg.finetune)
    if cfg.finetune_blocks:
        used = model.readout_blocks
        if cfg.finetune_blocks > used:
            raise ConfigError(f"--finetune-blocks {cfg.finetune_blocks}: the readout uses {used} encoder blocks")
        model.encoder.blocks[used - cfg.finetune_blocks:used].requires_grad_(True)
    for name, head in model.heads.items():
        for p in head.parameters():
            p.requires_grad_(name in cfg.trained_heads)
    return model


def depth_losses(model: FourDS, feats: torch.Tensor, batch: dict, ssi_weight: float = 0.0,
                 grad_weight: float = 0.5, teacher: DepthTeacher | None = None, teacher_weight: float = 1.0
                 ) -> tuple[torch.Tensor, dict]:
    """The depth head's loss: scale-invariant log + L1 against the metric target (in the
    canonical camera when the head has a canonical focal), plus ssi_weight x (scale-and-shift-
    invariant inverse-depth loss + grad_weight x gradient matching) when ssi_weight > 0, plus
    teacher_weight x depth_teacher_loss against a frozen `teacher`'s depth of the same clips.
    Clips whose batch["depth_metric"] is 0 (triangulated labels, up to a scale a frame) count in
    the relative terms only."""
    pred = model.heads["depth"](feats)
    metric = batch["depth"] > 0
    if "depth_metric" in batch:
        metric = metric & (batch["depth_metric"] > 0.5)[:, None, None, None]
    loss, parts = depth_loss(pred, batch["depth"] / metric_factor(model, batch), metric)
    if ssi_weight > 0:
        ssi, ssi_parts = ssi_depth_loss(pred, batch["depth"], grad_weight=grad_weight)
        loss, parts = loss + ssi_weight * ssi, {**parts, **ssi_parts}
    if teacher is not None:
        kept, kept_parts = depth_teacher_loss(pred, teacher_depth(teacher, model, batch), teacher.holds)
        loss, parts = loss + teacher_weight * kept, {**parts, **kept_parts}
    return loss, parts


@dataclasses.dataclass
class DepthTeacher:
    """--depth-teacher: a frozen model; trunk_blocks > 0 where its encoder below the last
    trunk_blocks readout blocks is the student's own frozen part (the teacher is the --init model),
    so that a cached trunk serves it too and a step runs those blocks instead of the whole encoder."""

    model: FourDS
    trunk_blocks: int = 0
    holds: str = "depth"  # losses.depth_teacher_loss: "depth" (scale and shape) or "shape" (up to a factor a frame)


def teacher_depth(teacher: DepthTeacher, model: FourDS, batch: dict) -> torch.Tensor:
    """A frozen teacher's depth of the batch's clips, (B, T, H, W) in the unit of `model`'s depth
    head (the two canonical cameras may differ: metres are the common ground)."""
    with torch.no_grad():
        if teacher.trunk_blocks and "trunk" in batch:
            feats = features_from_trunk(teacher.model, batch["trunk"].float(), teacher.trunk_blocks)
        else:
            feats = teacher.model.features(batch["video"])
        depth = teacher.model.heads["depth"](feats)
        return depth * metric_factor(teacher.model, batch) / metric_factor(model, batch)


def load_teacher(path: str, model: FourDS, tuned_blocks: int = 0, holds: str = "depth") -> DepthTeacher:
    """--depth-teacher: the frozen model, on `model`'s device, in eval mode; tuned_blocks: the
    student's --finetune-blocks (the trunk is shared where the parts below them are equal); holds:
    --depth-teacher-holds (losses.depth_teacher_loss)."""
    teacher = load_checkpoint(path).float()
    if "depth" not in teacher.heads:
        raise ValueError(f"--depth-teacher {path} has no depth head")
    if teacher.config.clip_shape != model.config.clip_shape:
        raise ValueError(f"--depth-teacher {path} reads clips of {teacher.config.clip_shape}, the model "
                         f"{model.config.clip_shape}")
    teacher = teacher.to(next(model.parameters()).device).eval().requires_grad_(False)
    first_tuned = model.readout_blocks - tuned_blocks
    own, theirs = model.encoder.state_dict(), teacher.encoder.state_dict()
    frozen = [k for k in own if not (k.startswith("blocks.") and int(k.split(".")[1]) >= first_tuned)]
    shared = bool(tuned_blocks) and own.keys() == theirs.keys() and all(torch.equal(own[k], theirs[k]) for k in frozen)
    return DepthTeacher(teacher, tuned_blocks if shared else 0, holds)


def trunk_tokens(model: FourDS, video: torch.Tensor, tuned_blocks: int) -> torch.Tensor:
    """video: (B, T, H, W, 3) in [0, 1] -> (B, N, D) tokens at the input of the last `tuned_blocks`
    blocks the readout uses (--finetune-blocks): the frozen part of the encoder, run once per clip
    by --cache-features."""
    with torch.no_grad():
        tokens, _ = model.encoder.embed(video)
        return run_blocks(model.encoder.blocks[:model.readout_blocks - tuned_blocks], tokens, False)


def features_from_trunk(model: FourDS, tokens: torch.Tensor, tuned_blocks: int) -> torch.Tensor:
    """trunk_tokens' output (B, N, D) -> readout features (B, T, h*w, D), through the tuned blocks
    (gradients reach them); features_from_trunk(trunk_tokens(v)) equals model.features(v)."""
    used = model.readout_blocks
    return model.encoder_to_readout(run_blocks(model.encoder.blocks[used - tuned_blocks:used], tokens, False))


def clip_features(model: FourDS, batch: dict, finetune: bool, tuned_blocks: int = 0) -> torch.Tensor:
    """The encoder's readout features of the batch's clips: the cached ones when the batch holds
    them, the cached trunk through the `tuned_blocks` last blocks (--finetune-blocks), else an
    encoder pass (with gradients only when the encoder trains, wholly or its last blocks)."""
    if "features" in batch:
        return batch["features"].float()
    if "trunk" in batch:
        return features_from_trunk(model, batch["trunk"].float(), tuned_blocks)
    if finetune or tuned_blocks:
        return model.features(batch["video"])
    with torch.no_grad():
        return model.features(batch["video"])


def photometric_losses(model: FourDS, pose_head: torch.nn.Module, batch: dict,
                       finetune: bool = False, tuned_blocks: int = 0) -> tuple[torch.Tensor, dict]:
    """The depth head's view-synthesis loss on unlabelled clips (training/photometric.py): depth
    in metres for each clip's camera, poses from `pose_head` (the throw-away copy of the model's
    pose head that --photometric trains beside the depth head); with finetune it reaches the
    encoder too (its last tuned_blocks with --finetune-blocks). batch: video, intrinsics and,
    when cached, features or trunk."""
    feats = clip_features(model, batch, finetune, tuned_blocks)
    depth = model.heads["depth"](feats) * metric_factor(model, batch)
    pose = pose_head(feats)
    return photometric_loss(batch["video"], depth, pose["rotation"], pose["translation"], batch["intrinsics"])


def compute_losses(model: FourDS, batch: dict, finetune: bool, heads: list[str] | None = None,
                   ssi_weight: float = 0.0, grad_weight: float = 0.5,
                   direction_weight: float = 0.0, tuned_blocks: int = 0, teacher: DepthTeacher | None = None,
                   teacher_weight: float = 1.0) -> tuple[torch.Tensor, dict]:
    """batch["features"], when present, are the frozen encoder's cached readout features (or
    batch["trunk"] its cached tokens before the last tuned_blocks blocks, clip_features). heads:
    the heads to train (default: all of the model's); the others are not even run.
    ssi_weight, grad_weight: the depth head's relative terms (depth_losses); direction_weight:
    the pose head's translation direction term (losses.pose_loss); teacher, teacher_weight: the
    depth head also held to a frozen model's depth (--depth-teacher, depth_losses)."""
    heads = list(model.heads) if heads is None else heads
    video = batch["video"]
    feats = clip_features(model, batch, finetune, tuned_blocks)
    total = video.new_zeros(())
    logs: dict[str, float] = {}
    if "depth" in heads:
        loss, parts = depth_losses(model, feats, batch, ssi_weight, grad_weight, teacher, teacher_weight)
        total, logs = total + loss, {**logs, **parts}
    if "tracks" in heads:
        head = model.heads["tracks"]
        out = head(feats, batch["query_points"], video)
        loss, parts = track_loss(out, batch["tracks_xy"], batch["tracks_visible"],
                                 head.spatial_weights(batch["tracks_xy"]), known=batch.get("tracks_known"))
        total, logs = total + loss, {**logs, **parts}
    if "pose" in heads:
        loss, parts = pose_loss(model.heads["pose"](feats), batch["pose_rotation"], batch["pose_translation"],
                                direction_weight)
        total, logs = total + loss, {**logs, **parts}
    return total, {k: float(v) for k, v in logs.items()}


def frame_abs_rel(pred: torch.Tensor, target: torch.Tensor, median_scaled: bool) -> float:
    """AbsRel over each frame's valid pixels, averaged over the frames that have any, by the
    evaluator's own code (metrics.depth_errors, mean_depth_errors: what `fourds-ros eval` reports);
    with median_scaled, each frame's prediction first scaled by median(target) / median(pred):
    relative depth. pred, target: (B, T, H, W) metres (target 0 where unlabelled)."""
    frames = zip(pred.detach().flatten(0, 1).float().cpu().numpy(), target.flatten(0, 1).float().cpu().numpy())
    value = mean_depth_errors([depth_errors(p, t, median_scale=median_scaled) for p, t in frames])["abs_rel"]
    return float("nan") if value is None else value


def batch_metrics(out: dict, batch: dict) -> dict[str, float]:
    """One batch's held-aside metrics (see evaluate)."""
    metrics = {}
    if "depth" in out:
        metrics["depth_abs_rel"] = frame_abs_rel(out["depth"], batch["depth"], median_scaled=False)
        metrics["depth_abs_rel_scaled"] = frame_abs_rel(out["depth"], batch["depth"], median_scaled=True)
    if "track_xy" in out:
        # The frames after each query, where the evaluator scores (TAP-Vid "query first"): at its own
        # frame a track returns its query, and the node tracks forward from frame 0.
        frames = torch.arange(batch["tracks_xy"].shape[2], device=batch["tracks_xy"].device)
        after = frames[None, None, :] > batch["query_points"][:, :, None, 0].round()
        vis = (batch["tracks_visible"] > 0.5) & after
        metrics["track_epe_px"] = float((out["track_xy"] - batch["tracks_xy"]).norm(dim=-1)[vis].mean())
        still = batch["query_points"][:, :, None, [2, 1]].expand_as(batch["tracks_xy"])
        metrics["track_epe_stay_still_px"] = float((still - batch["tracks_xy"]).norm(dim=-1)[vis].mean())
        agree = (out["track_visibility"] > 0.5) == (batch["tracks_visible"] > 0.5)
        known = batch["tracks_known"] > 0.5 if "tracks_known" in batch else torch.ones_like(agree)
        metrics["visibility_accuracy"] = float(agree[after & known].float().mean())  # not over depth holes
    if "pose_rotation" in out:
        angle = geodesic_angle(out["pose_rotation"], batch["pose_rotation"], exact=True)[:, 1:]
        metrics["pose_rotation_deg"] = float(torch.rad2deg(angle).mean())
        trans = (out["pose_translation"] - batch["pose_translation"]).norm(dim=-1)[:, 1:]
        metrics["pose_translation_m"] = float(trans.mean())
        # The direction alone, where the camera moved at least 5 mm: the Sim(3)-aligned ATE is
        # scale-free, and on the validation recording most of it is the direction of each clip's
        # translation (docs/results/pose_error_budget).
        cos, moved = translation_cosine(out["pose_translation"][:, 1:], batch["pose_translation"][:, 1:])
        if bool(moved.any()):
            metrics["pose_direction_deg"] = float(torch.rad2deg(torch.acos(cos[moved].clamp(-1.0, 1.0))).mean())
    return metrics


@torch.no_grad()
def evaluate(model: FourDS, loader: list[dict]) -> dict:
    """Metrics on the held-aside split, averaged over clips: depth AbsRel (metric, and median
    scaled per clip), track end-point
    error (px, visible; and of predicting no motion, the floor a tracker must beat), visibility
    accuracy, pose rotation (deg) and translation (m) error, and the angle between the predicted
    and true translation (deg, frames that moved losses.MOVED_M or more) (frames 1..T-1)."""
    model.eval()
    sums: dict[str, list[tuple[float, int]]] = {}
    for batch in loader:
        out = model(batch["video"], batch["query_points"] if "tracks" in model.heads else None)
        if "depth" in out:  # metres for each clip's camera, as the pipeline publishes them
            out = {**out, "depth": out["depth"] * metric_factor(model, batch)}
        for key, value in batch_metrics(out, batch).items():
            sums.setdefault(key, []).append((value, batch["video"].shape[0]))
    # Each clip weighs the same: a short last batch must not count as much as a full one. A
    # metric a batch cannot measure (pose_direction_deg of still clips) averages the others.
    return {k: float(np.average([x for x, _ in v], weights=[n for _, n in v])) for k, v in sums.items()}
