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
import contextlib
import dataclasses
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from fourds_ros.model import FourDS, ModelConfig, default_heads, init_weights, load_checkpoint, save_checkpoint
from fourds_ros.engine.factory import resolve_device
from fourds_ros.model.config import HEAD_TYPES

from .budget import steps_within_budget
from .data import RGBDClips, SyntheticLabelledClips
from .losses import depth_loss, geodesic_angle, pose_loss, track_loss

REPO = Path(__file__).resolve().parents[1]
VAL_SEED_OFFSET = 10_000_000  # held-aside scenes never overlap the training seeds


def build_model(backbone: str | None, size: str, clip: tuple[int, int, int], heads: list[str],
                readout_width: int, readout_heads: int, patch_size=(2, 16, 16), seed: int = 0,
                init: str | None = None, softargmax_temperature: float | None = None) -> FourDS:
    """A FourDS with freshly initialised `heads` on the backbone's encoder weights; with `init`
    (a full model dir: encoder and heads) that model, to train further. softargmax_temperature:
    the tracks head's (TrackHeadConfig), when not the config's."""
    unknown = set(heads) - set(HEAD_TYPES)
    if unknown or not heads:
        raise ValueError(f"heads must be a non-empty subset of {list(HEAD_TYPES)}, got {heads}")
    if init:
        model = load_checkpoint(init).float()
        if set(model.config.heads) != set(heads):
            raise ValueError(f"--init {init} has heads {sorted(model.config.heads)}, not the requested {sorted(heads)}")
        if softargmax_temperature is not None and "tracks" in heads:
            # A config change only (no weights): the same weights in a model built with it.
            tracks = dataclasses.replace(model.config.heads["tracks"], softargmax_temperature=softargmax_temperature)
            state = model.state_dict()
            model = FourDS(model.config.replace(heads={**model.config.heads, "tracks": tracks}))
            model.load_state_dict(state)
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


@torch.no_grad()
def evaluate(model: FourDS, loader: list[dict]) -> dict:
    """Metrics on the held-aside split: depth AbsRel, track end-point error (px, visible; and of
    predicting no motion, the floor a tracker must beat),
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
            still = batch["query_points"][:, :, None, [2, 1]].expand_as(batch["tracks_xy"])
            sums.setdefault("track_epe_stay_still_px", []).append(float((still - batch["tracks_xy"]).norm(dim=-1)[vis].mean()))
            acc = ((out["track_visibility"] > 0.5) == vis).float().mean()
            sums.setdefault("visibility_accuracy", []).append(float(acc))
        if "pose_rotation" in out:
            angle = geodesic_angle(out["pose_rotation"], batch["pose_rotation"])[:, 1:]
            sums.setdefault("pose_rotation_deg", []).append(float(torch.rad2deg(angle).mean()))
            trans = (out["pose_translation"] - batch["pose_translation"]).norm(dim=-1)[:, 1:]
            sums.setdefault("pose_translation_m", []).append(float(trans.mean()))
    return {k: float(np.mean(v)) for k, v in sums.items()}


def model_card(name: str, args: argparse.Namespace, model: FourDS, history: list, metrics: dict,
               command: str, seconds: float, data_seconds: float, hardware: str) -> str:
    cfg = model.config
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in metrics.items())
    return f"""# {name}

4DS-{cfg.size} encoder ({'fine-tuned' if args.finetune else 'frozen'}) with readout heads: {', '.join(cfg.heads)}.
Clip {cfg.num_frames}x{cfg.image_size[0]}x{cfg.image_size[1]}, tubelets {cfg.patch_size}.
Loads unchanged with `fourds_ros.model.load_checkpoint` / the node's `model_dir`.

## Data
- {f'Initialised from: {args.init} (encoder and heads)' if args.init else 'Backbone: ' + (args.backbone or f'random init (size {args.size}, seed {args.seed})')}
- Train: {args.train_clips} synthetic clips (training.data.synthetic, seeds 0..{args.train_clips - 1}),
  {cfg.num_frames} frames, {args.num_tracks} tracks per clip.
- Real: {', '.join(f'{p} ({n} clips)' for p, n in zip(args.real or [], getattr(args, 'real_clips', []))) or 'none'}
  (geometric tracks from depth + pose; 7-Scenes depth is not registered to RGB).
- Held-aside: {args.val_clips} synthetic clips from seed {VAL_SEED_OFFSET}.

## Training
- Steps: {len(history)}, batch {args.batch_size} ({args.real_fraction:.0%} real when --real is given),
  AdamW lr {args.lr} ({f'encoder x{args.encoder_lr_scale}' if args.finetune else 'encoder frozen'}), mirror augmentation {'on' if args.flip else 'off'}.
- Hardware: {hardware}. Wall: {data_seconds:.0f} s rendering clips{' and caching their encoder features (--cache-features)' if args.cache_features else ''}, {seconds:.0f} s training.
- Losses: depth scale-invariant + L1; tracks Huber + correlation cross-entropy + visibility and
  confidence BCE; pose geodesic + translation + NLL.
- Command: `{command}`

## Held-aside metrics (final)
| metric | value |
| --- | --- |
{rows}

Final training loss: {history[-1]:.4f} (first: {history[0]:.4f}).
"""


def _init_worker() -> None:
    torch.set_num_threads(1)  # the pool is the parallelism


def _render(dataset, index: int) -> dict:
    return {k: v.numpy() for k, v in dataset[index].items()}


def materialize(dataset, workers: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Every item of `dataset` rendered once (in `workers` processes) and stacked on `device`:
    clips are re-read every epoch, so rendering them once is what keeps a GPU busy. video is
    kept as uint8 (4x smaller; it was uint8 before `_labels` scaled it). The pool spawns rather
    than forks: a forked child deadlocks in torch's OpenMP pool once the parent has used it."""
    if workers > 1 and len(dataset) > 1:
        import functools
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
            items = pool.map(functools.partial(_render, dataset), range(len(dataset)),
                             chunksize=max(1, len(dataset) // (4 * workers)))
    else:
        items = [_render(dataset, i) for i in range(len(dataset))]
    bank = {k: torch.from_numpy(np.stack([it[k] for it in items])) for k in items[0]}
    bank["video"] = (bank["video"] * 255).round().to(torch.uint8)
    return {k: v.to(device) for k, v in bank.items()}


@torch.no_grad()
def cache_features(model: FourDS, bank: dict[str, torch.Tensor], flip: bool, chunk: int = 8) -> dict[str, torch.Tensor]:
    """The bank with the frozen encoder's readout features of every clip (float16), so that the
    heads train without an encoder pass per step: on a CPU that pass is most of a step. With
    flip, the bank is doubled by its mirror image (labels included) instead of mirroring
    batches at random, since mirrored clips have features of their own."""
    if flip:
        bank = concat_banks([bank, mirror(bank, torch.ones(bank["video"].shape[0], dtype=torch.bool,
                                                            device=bank["video"].device))])
    model.encoder.eval()
    feats = [model.features(bank["video"][i:i + chunk].float() / 255).half()
             for i in range(0, bank["video"].shape[0], chunk)]
    return bank | {"features": torch.cat(feats)}


def take(bank: dict[str, torch.Tensor], index: torch.Tensor) -> dict[str, torch.Tensor]:
    batch = {k: v[index] for k, v in bank.items()}
    batch["video"] = batch["video"].float() / 255
    return batch


def concat_banks(banks: list[dict]) -> dict[str, torch.Tensor]:
    return {k: torch.cat([b[k] for b in banks]) for k in banks[0]}


def balanced_indices(sizes: list[int], n: int, gen: torch.Generator) -> torch.Tensor:
    """n indices into the concatenation of parts of `sizes` items, each part equally likely
    whatever its size: a short real sequence (the 30-frame HoloLens sample) would otherwise be a
    few percent of the real clips."""
    sizes_t = torch.tensor(sizes, dtype=torch.long)
    starts = torch.cumsum(sizes_t, 0) - sizes_t
    part = torch.randint(0, len(sizes), (n,), generator=gen)
    return starts[part] + (torch.rand(n, generator=gen) * sizes_t[part]).long().clamp_max(sizes_t[part] - 1)


def mirror(batch: dict[str, torch.Tensor], flip: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mirror the clips where flip (B,) is true, labels included: x -> W-1-x; in camera space
    the reflection M = diag(-1, 1, 1) turns T_first_from_t (R, t) into (M R M, M t)."""
    w = batch["video"].shape[3]
    out = dict(batch)
    f4 = flip[:, None, None, None]
    out["video"] = torch.where(f4[..., None], batch["video"].flip(3), batch["video"])
    out["depth"] = torch.where(f4, batch["depth"].flip(3), batch["depth"])
    qp = batch["query_points"].clone()
    qp[..., 2] = torch.where(flip[:, None], w - 1 - qp[..., 2], qp[..., 2])
    out["query_points"] = qp
    xy = batch["tracks_xy"].clone()
    xy[..., 0] = torch.where(flip[:, None, None], w - 1 - xy[..., 0], xy[..., 0])
    out["tracks_xy"] = xy
    m = torch.tensor([-1.0, 1.0, 1.0], device=flip.device)
    rot = batch["pose_rotation"] * m[:, None] * m[None, :]
    out["pose_rotation"] = torch.where(flip[:, None, None, None], rot, batch["pose_rotation"])
    out["pose_translation"] = torch.where(flip[:, None, None], batch["pose_translation"] * m, batch["pose_translation"])
    return out


def requery_first_frame(batch: dict[str, torch.Tensor], chosen: torch.Tensor) -> dict[str, torch.Tensor]:
    """Move each chosen query (chosen: (B, Q) bool) whose point is visible in frame 0 to that
    frame: same track, same labels, a different query. The node asks every query at a clip's
    first frame under its default hop (new seeds there, chained tracks at the one shared frame),
    while the clips sample query frames uniformly."""
    move = chosen & (batch["tracks_visible"][:, :, 0] > 0.5)
    x0, y0 = batch["tracks_xy"][:, :, 0, 0], batch["tracks_xy"][:, :, 0, 1]
    first = torch.stack([torch.zeros_like(x0), y0, x0], dim=-1)
    return dict(batch) | {"query_points": torch.where(move[..., None], first, batch["query_points"])}


def train(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    device = torch.device(resolve_device(args.device))
    clip = tuple(int(v) for v in args.clip.split("x"))
    model = build_model(args.backbone, args.size, clip, args.heads, args.readout_width,
                        args.readout_heads, tuple(args.patch_size), seed=args.seed, init=args.init,
                        softargmax_temperature=args.softargmax_temperature).to(device)
    cfg = model.config
    if args.cache_features and args.finetune:
        raise ValueError("--cache-features needs a frozen encoder: drop --finetune")
    for p in model.encoder.parameters():
        p.requires_grad_(args.finetune)
    # Checked before any clip is rendered.
    train_heads = args.train_heads or list(model.heads)
    if not set(train_heads) <= set(model.heads):
        raise ValueError(f"--train-heads {train_heads}: the model has heads {sorted(model.heads)}")
    if args.finetune and set(train_heads) != set(model.heads):
        raise ValueError("--train-heads needs a frozen encoder: the other heads would see it move")
    for name, head in model.heads.items():
        for p in head.parameters():
            p.requires_grad_(name in train_heads)
    scene = {"num_tracks": args.num_tracks}
    t_data = time.perf_counter()
    synthetic = materialize(SyntheticLabelledClips(cfg, scene, args.train_clips, offset=0), args.workers, device)
    real_banks, args.real_clips = [], []
    for spec in args.real or []:
        # PATH[:STRIDE]; overlapping clips (every --real-hop frames) from real RGB-D sequences.
        path, _, stride = spec.partition(":")
        stride = int(stride or 1)
        hop = args.real_hop or max(1, cfg.num_frames * stride // 2)
        real = RGBDClips(path, cfg.num_frames, cfg.image_size, stride=stride, num_tracks=args.num_tracks,
                         seed=args.seed, hop=hop)
        real_banks.append(materialize(real, args.workers, device))
        args.real_clips.append(len(real))
    if args.cache_features:
        synthetic = cache_features(model, synthetic, args.flip)
        real_banks = [cache_features(model, b, args.flip) for b in real_banks]
    real_sizes = [b["video"].shape[0] for b in real_banks]
    real_bank = concat_banks(real_banks) if real_banks else None
    val = materialize(SyntheticLabelledClips(cfg, scene, args.val_clips, offset=VAL_SEED_OFFSET), args.workers, device)
    data_seconds = time.perf_counter() - t_data
    n_syn = synthetic["video"].shape[0]
    n_real = 0 if real_bank is None else real_bank["video"].shape[0]
    real_per_batch = 0 if not n_real else max(1, round(args.batch_size * args.real_fraction))
    gen = torch.Generator(device="cpu").manual_seed(args.seed)

    def next_batch() -> dict:
        idx = torch.randint(0, n_syn, (args.batch_size - real_per_batch,), generator=gen)
        parts = [take(synthetic, idx.to(device))]
        if real_per_batch:
            ridx = balanced_indices(real_sizes, real_per_batch, gen)
            parts.append(take(real_bank, ridx.to(device)))
        batch = concat_banks(parts)
        if args.flip and not args.cache_features:  # cached banks hold their mirror images
            batch = mirror(batch, (torch.rand(args.batch_size, generator=gen) < 0.5).to(device))
        if args.first_frame_queries:
            chosen = torch.rand(batch["query_points"].shape[:2], generator=gen) < args.first_frame_queries
            batch = requery_first_frame(batch, chosen.to(device))
        return batch

    encoder_params = [p for p in model.encoder.parameters() if p.requires_grad]
    head_params = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("encoder.")]
    groups = [{"params": head_params, "lr": args.lr}]
    if encoder_params:
        groups.append({"params": encoder_params, "lr": args.lr * args.encoder_lr_scale})
    params = head_params + encoder_params
    optimizer = torch.optim.AdamW(groups, weight_decay=args.weight_decay)
    total = [args.steps]  # shortened once, by --time-budget

    def schedule(s: int) -> float:
        warmup = max(1, total[0] // 20)
        return min(1.0, (s + 1) / warmup) * 0.5 * (1 + np.cos(np.pi * min(1.0, s / total[0])))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else contextlib.nullcontext())
    val_loader = [take(val, torch.arange(i, min(i + args.batch_size, args.val_clips), device=device))
                  for i in range(0, args.val_clips, args.batch_size)]
    history: list[float] = []
    evals: list[dict] = []
    start = time.perf_counter()
    from tqdm import tqdm

    bar = tqdm(total=args.steps, desc="readouts", disable=args.no_progress)
    while len(history) < total[0]:
        model.train()
        if not args.finetune:
            model.encoder.eval()
        with autocast:
            loss, logs = compute_losses(model, next_batch(), args.finetune, train_heads)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        history.append(float(loss.detach()))
        bar.update(1)
        bar.set_postfix(loss=f"{history[-1]:.4f}")
        if args.time_budget and len(history) == 20:
            total[0] = steps_within_budget(args.steps, 20, time.perf_counter() - start, args.time_budget)
            bar.total = total[0]
        if args.eval_every and len(history) % args.eval_every == 0:
            evals.append({"step": len(history), **evaluate(model, val_loader)})
    bar.close()
    metrics = evaluate(model, val_loader)
    seconds = time.perf_counter() - start
    out = Path(args.out) if args.out else REPO / "models" / args.name
    model = model.float().cpu().eval()
    save_checkpoint(model, out, metadata={"steps": len(history), "finetune": args.finetune})
    command = "python -m training.train_readouts " + " ".join(shlex.quote(a) for a in args.argv)
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({os.cpu_count()} cores)"
    (out / "README.md").write_text(model_card(args.name, args, model, history, metrics, command, seconds,
                                              data_seconds, hardware))
    (out / "training_log.json").write_text(json.dumps({"loss": history, "evals": evals, "final": metrics}) + "\n")
    return {"out": str(out), "loss": history, "metrics": metrics, "evals": evals}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m training.train_readouts", description=__doc__.split("\n")[0])
    p.add_argument("--backbone", help="model dir (ours or imported official); default: random init")
    p.add_argument("--init", help="full model dir (encoder and heads) to train further; replaces --backbone")
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
    p.add_argument("--device", default="auto", help="auto (cuda when available) | cpu | cuda[:N]")
    p.add_argument("--workers", type=int, default=1, help="processes that render the training clips")
    p.add_argument("--real-fraction", type=float, default=0.25,
                   help="share of each batch from --real clips (each sequence an equal part of it)")
    p.add_argument("--real-hop", type=int, default=0, help="frames between real clip starts (0: half a clip)")
    p.add_argument("--encoder-lr-scale", type=float, default=1.0, help="encoder lr / head lr with --finetune")
    p.add_argument("--flip", action="store_true", help="mirror half the clips (labels included)")
    p.add_argument("--first-frame-queries", type=float, default=0.0, metavar="SHARE",
                   help="move this share of training queries to frame 0 where their point is visible "
                        "(the node's query frame under its default hop); validation is unchanged")
    p.add_argument("--train-heads", nargs="+", default=None,
                   help="train only these heads (frozen encoder); the rest keep their weights")
    p.add_argument("--softargmax-temperature", type=float, default=None,
                   help="tracks head: temperature of its windowed soft-argmax (0: the learned matching one)")
    p.add_argument("--cache-features", action="store_true",
                   help="run the frozen encoder once per clip and train the heads on its cached features")
    p.add_argument("--time-budget", type=float, default=0.0,
                   help="seconds: fit --steps to this budget once the step time is known (0: off)")
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
