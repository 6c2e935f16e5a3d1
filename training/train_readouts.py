"""Readout training: depth, point-track and camera-pose heads on a (frozen by default) 4DS encoder.

    python -m training.train_readouts --backbone runs/S/encoder --name 4ds-s-readouts
    python -m training.train_readouts --size tiny --clip 4x32x32 --steps 200 --out /tmp/m

The backbone is any model dir in our format: our MAE encoder (`<run>/encoder`) or an imported
official checkpoint (`fourds-ros import`). Without --backbone a randomly initialised encoder of
--size is used (tests, smoke runs). Training data are synthetic labelled clips
(training.data.SyntheticLabelledClips); a disjoint seed range is the held-aside split evaluated
every --eval-every steps. The output `models/<name>/` holds model.safetensors + config.json
(save_checkpoint, loadable by the node unchanged) and a README.md model card.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader

from fourds_ros.model import FourDS, ModelConfig, default_heads, init_weights, load_checkpoint, save_checkpoint
from fourds_ros.model.config import HEAD_TYPES

from .data import RGBDClips, SyntheticLabelledClips
from .losses import depth_loss, geodesic_angle, pose_loss, track_loss

REPO = Path(__file__).resolve().parents[1]
VAL_SEED_OFFSET = 10_000_000  # held-aside scenes never overlap the training seeds


def build_model(backbone: str | None, size: str, clip: tuple[int, int, int], heads: list[str],
                readout_width: int, readout_heads: int, patch_size=(2, 16, 16), seed: int = 0) -> FourDS:
    """A FourDS with freshly initialised `heads` on the backbone's encoder weights."""
    unknown = set(heads) - set(HEAD_TYPES)
    if unknown or not heads:
        raise ValueError(f"heads must be a non-empty subset of {list(HEAD_TYPES)}, got {heads}")
    all_heads = default_heads(readout_width, readout_heads)
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


def compute_losses(model: FourDS, batch: dict, finetune: bool) -> tuple[torch.Tensor, dict]:
    video = batch["video"]
    if finetune:
        feats = model.features(video)
    else:
        with torch.no_grad():
            feats = model.features(video)
    total = video.new_zeros(())
    logs: dict[str, float] = {}
    if "depth" in model.heads:
        loss, parts = depth_loss(model.heads["depth"](feats), batch["depth"])
        total, logs = total + loss, {**logs, **parts}
    if "tracks" in model.heads:
        out = model.heads["tracks"](feats, batch["query_points"])
        loss, parts = track_loss(out, batch["tracks_xy"], batch["tracks_visible"])
        total, logs = total + loss, {**logs, **parts}
    if "pose" in model.heads:
        loss, parts = pose_loss(model.heads["pose"](feats), batch["pose_rotation"], batch["pose_translation"])
        total, logs = total + loss, {**logs, **parts}
    return total, {k: float(v) for k, v in logs.items()}


@torch.no_grad()
def evaluate(model: FourDS, loader: DataLoader) -> dict:
    """Metrics on the held-aside split: depth AbsRel, track end-point error (px, visible),
    visibility accuracy, pose rotation (deg) and translation (m) error (frames 1..T-1)."""
    model.eval()
    sums: dict[str, list[float]] = {}
    for batch in loader:
        out = model(batch["video"], batch["query_points"] if "tracks" in model.heads else None)
        if "depth" in out:
            valid = batch["depth"] > 0
            rel = ((out["depth"] - batch["depth"]).abs() / batch["depth"].clamp_min(1e-3))[valid]
            sums.setdefault("depth_abs_rel", []).append(float(rel.mean()))
        if "track_xy" in out:
            vis = batch["tracks_visible"] > 0.5
            err = (out["track_xy"] - batch["tracks_xy"]).norm(dim=-1)[vis]
            sums.setdefault("track_epe_px", []).append(float(err.mean()))
            acc = ((out["track_visibility"] > 0.5) == vis).float().mean()
            sums.setdefault("visibility_accuracy", []).append(float(acc))
        if "pose_rotation" in out:
            angle = geodesic_angle(out["pose_rotation"], batch["pose_rotation"])[:, 1:]
            sums.setdefault("pose_rotation_deg", []).append(float(torch.rad2deg(angle).mean()))
            trans = (out["pose_translation"] - batch["pose_translation"]).norm(dim=-1)[:, 1:]
            sums.setdefault("pose_translation_m", []).append(float(trans.mean()))
    return {k: float(np.mean(v)) for k, v in sums.items()}


def model_card(name: str, args: argparse.Namespace, model: FourDS, history: list, metrics: dict,
               command: str, seconds: float) -> str:
    cfg = model.config
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in metrics.items())
    return f"""# {name}

4DS-{cfg.size} encoder ({'fine-tuned' if args.finetune else 'frozen'}) with readout heads: {', '.join(cfg.heads)}.
Clip {cfg.num_frames}x{cfg.image_size[0]}x{cfg.image_size[1]}, tubelets {cfg.patch_size}.
Loads unchanged with `fourds_ros.model.load_checkpoint` / the node's `model_dir`.

## Data
- Backbone: {args.backbone or f'random init (size {args.size}, seed {args.seed})'}
- Train: {args.train_clips} synthetic clips (training.data.synthetic, seeds 0..{args.train_clips - 1}),
  {cfg.num_frames} frames, {args.num_tracks} tracks per clip.
- Real: {', '.join(f'{p} ({n} clips)' for p, n in zip(args.real or [], getattr(args, 'real_clips', []))) or 'none'}
  (geometric tracks from depth + pose; 7-Scenes depth is not registered to RGB).
- Held-aside: {args.val_clips} synthetic clips from seed {VAL_SEED_OFFSET}.

## Training
- Steps: {len(history)}, batch {args.batch_size}, AdamW lr {args.lr}, {seconds:.0f} s wall.
- Losses: depth scale-invariant + L1; tracks Huber + visibility BCE; pose geodesic + translation + NLL.
- Command: `{command}`

## Held-aside metrics (final)
| metric | value |
| --- | --- |
{rows}

Final training loss: {history[-1]:.4f} (first: {history[0]:.4f}).
"""


def train(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    clip = tuple(int(v) for v in args.clip.split("x"))
    model = build_model(args.backbone, args.size, clip, args.heads, args.readout_width,
                        args.readout_heads, tuple(args.patch_size), seed=args.seed)
    cfg = model.config
    for p in model.encoder.parameters():
        p.requires_grad_(args.finetune)
    scene = {"num_tracks": args.num_tracks}
    train_set = SyntheticLabelledClips(cfg, scene, args.train_clips, offset=0)
    real_sets = []
    for spec in args.real or []:
        # PATH[:STRIDE]; overlapping clips (hop = half a clip) from real RGB-D sequences.
        path, _, stride = spec.partition(":")
        real_sets.append(RGBDClips(path, cfg.num_frames, cfg.image_size, stride=int(stride or 1),
                                   num_tracks=args.num_tracks, seed=args.seed,
                                   hop=max(1, cfg.num_frames * int(stride or 1) // 2)))
    if real_sets:
        train_set = ConcatDataset([train_set, *real_sets])
        args.real_clips = [len(r) for r in real_sets]
    val_set = SyntheticLabelledClips(cfg, scene, args.val_clips, offset=VAL_SEED_OFFSET)
    gen = torch.Generator().manual_seed(args.seed)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, generator=gen, drop_last=False)
    val_loader = DataLoader(val_set, batch_size=args.batch_size)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=args.lr, weight_decay=args.weight_decay)
    warmup = max(1, args.steps // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + np.cos(np.pi * min(1.0, s / args.steps)))
    )
    history: list[float] = []
    evals: list[dict] = []
    start = time.perf_counter()
    from tqdm import tqdm

    bar = tqdm(total=args.steps, desc="readouts", disable=args.no_progress)
    while len(history) < args.steps:
        for batch in train_loader:
            model.train()
            if not args.finetune:
                model.encoder.eval()
            loss, logs = compute_losses(model, batch, args.finetune)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            history.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(loss=f"{history[-1]:.4f}")
            if args.eval_every and len(history) % args.eval_every == 0:
                evals.append({"step": len(history), **evaluate(model, val_loader)})
            if len(history) >= args.steps:
                break
    bar.close()
    metrics = evaluate(model, val_loader)
    seconds = time.perf_counter() - start
    out = Path(args.out) if args.out else REPO / "models" / args.name
    save_checkpoint(model.eval(), out, metadata={"steps": len(history), "finetune": args.finetune})
    command = "python -m training.train_readouts " + " ".join(shlex.quote(a) for a in args.argv)
    (out / "README.md").write_text(model_card(args.name, args, model, history, metrics, command, seconds))
    (out / "training_log.json").write_text(json.dumps({"loss": history, "evals": evals, "final": metrics}) + "\n")
    return {"out": str(out), "loss": history, "metrics": metrics, "evals": evals}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.train_readouts", description=__doc__.split("\n")[0])
    p.add_argument("--backbone", help="model dir (ours or imported official); default: random init")
    p.add_argument("--size", default="tiny", help="encoder size without --backbone")
    p.add_argument("--clip", default="4x32x32", help="TxHxW without --backbone")
    p.add_argument("--patch-size", type=int, nargs=3, default=[2, 8, 8])
    p.add_argument("--heads", nargs="+", default=["depth", "tracks", "pose"])
    p.add_argument("--finetune", action="store_true", help="unfreeze the encoder")
    p.add_argument("--readout-width", type=int, default=64)
    p.add_argument("--readout-heads", type=int, default=2)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--train-clips", type=int, default=64)
    p.add_argument("--val-clips", type=int, default=8)
    p.add_argument("--real", nargs="*", metavar="PATH[:STRIDE]",
                   help="real RGB-D sequences (7-Scenes, HoloLens, TUM) added to the training set")
    p.add_argument("--num-tracks", type=int, default=32)
    p.add_argument("--eval-every", type=int, default=0)
    p.add_argument("--name", default="readouts")
    p.add_argument("--out", help="output dir (default models/<name>)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    args.argv = list(argv)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = train(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"saved {result['out']}; loss {result['loss'][0]:.4f} -> {result['loss'][-1]:.4f}; {result['metrics']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
