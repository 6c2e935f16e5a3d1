"""The model card (README.md) that readout training writes beside the weights."""

from __future__ import annotations

from fourds_ros.model import FourDS

from .data.synthetic import REALISTIC
from .readouts_config import ReadoutsConfig
from .readouts_data import VAL_SEED_OFFSET


def fov_words(args: ReadoutsConfig) -> str:
    fov = args.synthetic_fov
    if fov is None and args.synthetic_realism is not None:
        fov = REALISTIC["fov_range_deg"]
    words = "60 deg" if fov is None else f"{fov[0]:g}-{fov[1]:g} deg (uniform per clip)"
    if args.synthetic_realism is not None:
        textures = ", ".join(args.synthetic_realism) or "procedural"
        words += (f"; realistic synthetic clips (SceneConfig.realistic: lighting, exposure, blur, noise, "
                  f"JPEG, rotation/turn/shake motions; textures: {textures})")
    return words


def depth_terms(args: ReadoutsConfig, model: FourDS) -> str:
    """The depth loss in words: its terms and the camera its metric target is in."""
    terms = "scale-invariant log + L1"
    if args.depth_ssi_weight > 0:
        terms += (f" + {args.depth_ssi_weight} x (scale-and-shift-invariant inverse depth"
                  f" + {args.depth_grad_weight} x multi-scale gradient matching)")
    if args.depth_teacher:
        kept = "" if args.depth_teacher_holds == "depth" else ", each frame's mean log ratio taken out"
        terms += (f" + {args.depth_teacher_weight} x |log depth - log depth of {args.depth_teacher}|{kept} "
                  f"(frozen teacher, holds {args.depth_teacher_holds})")
    head = model.config.heads.get("depth")
    if head is not None and head.canonical_focal_px is not None:
        terms += f", metric target in a canonical camera of fx {head.canonical_focal_px} model px"
    return terms


def pseudo_words(args: ReadoutsConfig, real_clips: list[int]) -> str:
    """The --pseudo-tracks sources and their clip count (the bank after the --real ones), or 'none'."""
    if not args.pseudo_tracks:
        return "none"
    return f"{', '.join(args.pseudo_tracks)} ({real_clips[len(args.real)]} clips)"


def sfm_words(args: ReadoutsConfig, real_clips: list[int]) -> str:
    """The --sfm-depth sources and their clip count (the bank after the --pseudo-tracks one), or 'none'."""
    if not args.sfm_depth:
        return "none"
    return f"{', '.join(args.sfm_depth)} ({real_clips[len(args.real) + bool(args.pseudo_tracks)]} clips)"


def photometric_words(args: ReadoutsConfig) -> str:
    """The --photometric sources, weight, clips per step and frame stride, or 'none'."""
    if not args.photometric:
        return "none"
    return (f"{', '.join(args.photometric)} (weight {args.photometric_weight}, {args.photometric_batch} clips a "
            f"step, every {args.photometric_stride} frames; poses from a copy of the pose head, not saved)")


def encoder_words(args: ReadoutsConfig) -> str:
    if args.finetune_blocks:
        return f"frozen but for its last {args.finetune_blocks} readout blocks, fine-tuned (--finetune-blocks)"
    return "fine-tuned" if args.finetune else "frozen"


def held_words(args: ReadoutsConfig) -> str:
    """The heads that keep their --init weights while their loss trains the tuned encoder, or ''."""
    held = args.held_heads
    return f" ({', '.join(held)} held: weights as --init gave them, loss still training the encoder)" if held else ""


def cache_words(args: ReadoutsConfig) -> str:
    if not args.cache_features:
        return ""
    what = "the tokens before the tuned blocks" if args.finetune_blocks else "their encoder features"
    return f" and caching {what} (--cache-features)"


def model_card(name: str, args: ReadoutsConfig, model: FourDS, history: list, metrics: dict,
               command: str, seconds: float, data_seconds: float, hardware: str,
               real_clips: list[int], selection: dict | None = None) -> str:
    cfg = model.config
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in metrics.items())
    return f"""# {name}

4DS-{cfg.size} encoder ({encoder_words(args)}) with readout heads: {', '.join(cfg.heads)}{held_words(args)}.
Clip {cfg.num_frames}x{cfg.image_size[0]}x{cfg.image_size[1]}, tubelets {cfg.patch_size}.
Loads unchanged with `fourds_ros.model.load_checkpoint` / the node's `model_dir`.

## Data
- {f'Initialised from: {args.init} (encoder and heads)' if args.init else 'Backbone: ' + (args.backbone or f'random init (size {args.size}, seed {args.seed})')}
- Train: {args.train_clips} synthetic clips (training.data.synthetic, seeds 0..{args.train_clips - 1}),
  {cfg.num_frames} frames, {args.num_tracks} tracks per clip, horizontal field of view {fov_words(args)}.
- Real: {', '.join(f'{p} ({n} clips)' for p, n in zip(args.real, real_clips)) or 'none'}
  (geometric tracks from depth + pose; 7-Scenes depth registered to RGB on read since session 17){'; each counts its clips played backwards too (--reverse, readouts_data.played_backwards)' if args.reverse else ''}.
- Zoomed real views (--real-zoom, training/data/datasets.zoom_window): {f"each --real clip also as a window of 1/z of its frames, z in [{args.real_zoom[0]}, {args.real_zoom[1]}] (counted in the clips above)" if args.real_zoom else "none"}
- Unlabelled video with LK track labels (--pseudo-tracks, training/data/pseudo_tracks.py): {pseudo_words(args, real_clips)}
- Unlabelled video with triangulated relative depth (--sfm-depth, training/data/sfm_depth.py): {sfm_words(args, real_clips)}
- Unlabelled video for the depth head's photometric loss (--photometric, training/photometric.py): {photometric_words(args)}
- Still camera (--still-clips, readouts_data.still_bank): {f"{real_clips[-1 - args.covered_clips]} clips" if args.still_clips else "none"}
- A part of the lens covered (--covered-clips, readouts_data.covered_bank): {f"{real_clips[-1]} clips" if args.covered_clips else "none"}
- Held-aside: {args.val_clips} synthetic clips from seed {VAL_SEED_OFFSET}.

## Training
- Steps: {len(history)}, batch {args.batch_size} ({args.real_fraction:.0%} real when --real is given),
  AdamW lr {args.lr} ({f'encoder x{args.encoder_lr_scale}' if args.trains_encoder else 'encoder frozen'}), mirror augmentation {'on' if args.flip else 'off'}.
- Hardware: {hardware}. Wall: {data_seconds:.0f} s rendering clips{cache_words(args)}, {seconds:.0f} s training.
- Losses: depth {depth_terms(args, model)}; tracks Huber + correlation cross-entropy + visibility and
  confidence BCE; pose geodesic + translation + NLL.
- Command: `{command}`

## Held-aside metrics (final)
| metric | value |
| --- | --- |
{rows}

{loss_words(history, selection)}
{selection_words(args, selection)}"""


def loss_words(history: list[float], selection: dict | None) -> str:
    """The training loss of the run's last step and, where --select-on chose another, of the step shipped. Why:
    the card gave the last step's loss as "final" beside the weights of the step chosen."""
    words = f"Training loss at the last step ({len(history)}): {history[-1]:.4f} (first: {history[0]:.4f})."
    step = (selection or {}).get("selected_step", len(history))
    if step != len(history):
        words += (f" The weights are step {step}'s: training loss there {history[step - 1]:.4f}." if step >= 1 else
                  " The weights are the start's (step 0), before any training step.")
    return words


def selection_words(args: ReadoutsConfig, selection: dict | None) -> str:
    """The checkpoint choice on the --select-on validation recordings (training/selection.py)."""
    if not selection:
        return ""
    rows = "\n".join(f"| {c['step']}{'' if c.get('candidate', True) else ' (reference only)'} | {c['score']:.4f} | "
                     f"{c.get('depth_abs_rel_scaled', float('nan')):.4f} | "
                     f"{c.get('depth_abs_rel', float('nan')):.4f} | {c.get('track_epe_px', float('nan')):.3f} | "
                     f"{c.get('pose_rotation_deg', float('nan')):.3f} | {c.get('pose_translation_m', float('nan')):.4f} | "
                     f"{c.get('pose_direction_deg', float('nan')):.1f} |" for c in selection["candidates"])
    return f"""
## Checkpoint choice (validation: {', '.join(args.select_on)})
These weights are step {selection['selected_step']}'s, the best score below (mean ratio to step 0's
metrics over those of the heads whose losses train ({', '.join(args.loss_heads)}): depth AbsRel
median-scaled and metric, track end-point error, pose rotation and translation error and
translation direction; lower is better). Step 0 is a candidate only when the run starts from
trained heads (--init).

| step | score | depth AbsRel scaled | depth AbsRel metric | track EPE px | rotation deg | translation m | direction deg |
| --- | --- | --- | --- | --- | --- | --- | --- |
{rows}
"""
