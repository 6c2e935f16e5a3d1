"""Readout training's data: labelled clips rendered once into tensor banks on the device,
optional cached encoder features, and the random batches drawn from them (mirroring,
first-frame queries, a fixed share of real clips)."""

from __future__ import annotations

import functools
import multiprocessing
from dataclasses import dataclass

import numpy as np
import torch

from fourds_ros.model import FourDS
from fourds_ros.model.checkpoint import load_config

from .data import RGBDClips, SyntheticLabelledClips, appearance
from .data.datasets import clip_span, count_frames
from .data.pseudo_tracks import PseudoTrackClips
from .data.sfm_depth import SfmDepthClips
from .data.video import SquareClips
from .data.synthetic import REALISTIC
from .readouts_config import ReadoutsConfig, recording_spec
from .readouts_model import trunk_tokens
from .typed_config import ConfigError

VAL_SEED_OFFSET = 10_000_000  # held-aside scenes never overlap the training seeds


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
        with multiprocessing.get_context("spawn").Pool(workers, initializer=_init_worker) as pool:
            items = pool.map(functools.partial(_render, dataset), range(len(dataset)),
                             chunksize=max(1, len(dataset) // (4 * workers)))
    else:
        items = [_render(dataset, i) for i in range(len(dataset))]
    bank = {k: torch.from_numpy(np.stack([it[k] for it in items])) for k in items[0]}
    bank["video"] = (bank["video"] * 255).round().to(torch.uint8)
    return {k: v.to(device) for k, v in bank.items()}


@torch.no_grad()
def cache_features(model: FourDS, bank: dict[str, torch.Tensor], flip: bool, chunk: int = 8,
                   tuned_blocks: int = 0) -> dict[str, torch.Tensor]:
    """The bank with the frozen encoder's readout features of every clip (float16), so that the
    heads train without an encoder pass per step: on a CPU that pass is most of a step. With
    tuned_blocks (--finetune-blocks), the tokens at the input of the last tuned_blocks blocks
    ("trunk") instead, which the step runs through those blocks. With flip, the bank is doubled
    by its mirror image (labels included) instead of mirroring batches at random, since mirrored
    clips have features of their own."""
    if flip:
        bank = concat_banks([bank, mirror(bank, torch.ones(bank["video"].shape[0], dtype=torch.bool,
                                                            device=bank["video"].device))])
    model.encoder.eval()
    if tuned_blocks:
        key, encode = "trunk", functools.partial(trunk_tokens, model, tuned_blocks=tuned_blocks)
    else:
        key, encode = "features", model.features
    cached = [encode(bank["video"][i:i + chunk].float() / 255).half() for i in range(0, bank["video"].shape[0], chunk)]
    return bank | {key: torch.cat(cached)}


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
    """Mirror the clips where flip (B,) is true, labels included: x -> W-1-x, the principal point too; in
    camera space the reflection M = diag(-1, 1, 1) turns T_first_from_t (R, t) into (M R M, M t). Unlabelled
    clips (no depth key) are video and a centred pinhole, which the mirror leaves as it is. Why the principal
    point: a zoomed or real clip's is off centre, and its mirror carried the unmirrored one (tracks
    reprojected 10 px off on a zoomed HoloLens clip)."""
    w = batch["video"].shape[3]
    out = dict(batch)
    f4 = flip[:, None, None, None]
    out["video"] = torch.where(f4[..., None], batch["video"].flip(3), batch["video"])
    if "intrinsics" in batch:
        k = batch["intrinsics"].clone()
        k[:, 0, 2] = torch.where(flip, w - 1 - k[:, 0, 2], k[:, 0, 2])
        out["intrinsics"] = k
    if "depth" not in batch:
        return out
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


@dataclass
class Banks:
    """The rendered training and held-aside clips. real_clips: clips cut from each --real
    sequence; real_sizes: bank items per sequence (twice as many with cached mirror images)."""

    synthetic: dict[str, torch.Tensor]
    real: dict[str, torch.Tensor] | None
    real_clips: list[int]
    real_sizes: list[int]
    val: dict[str, torch.Tensor]
    unlabelled: dict[str, torch.Tensor] | None = None  # --photometric clips: video, intrinsics


def rgbd_bank(spec: str, cfg: ReadoutsConfig, model: FourDS, device: torch.device,
              augment: bool = True) -> dict[str, torch.Tensor]:
    """The clips of one real RGB-D sequence PATH[:STRIDE], a clip starting every --real-hop
    frames (0: half a clip). augment: also the training copies the options ask for (--real-zoom,
    --real-appearance, --real-colour, --reverse); False: the recording's clips as they are (a
    validation recording is scored as a robot records it)."""
    frames, size = model.config.num_frames, model.config.image_size
    path, stride = recording_spec(spec)
    hop = cfg.real_hop or max(1, frames * stride // 2)
    real = RGBDClips(path, frames, size, stride=stride, num_tracks=cfg.num_tracks, seed=cfg.seed, hop=hop)
    bank = materialize(real, cfg.workers, device)
    if not augment:
        return bank
    if cfg.real_zoom is not None:  # the same clips again, each as a zoomed view
        zoomed = RGBDClips(real.seq, frames, size, stride=stride, num_tracks=cfg.num_tracks, seed=cfg.seed, hop=hop,
                           zoom=cfg.real_zoom)
        bank = concat_banks([bank, materialize(zoomed, cfg.workers, device)])
    bank = concat_banks([bank] + [redeveloped(bank, [cfg.seed, copy]) for copy in range(1, cfg.real_appearance + 1)]
                        + [recoloured(bank, [cfg.seed, 1000 + copy]) for copy in range(1, cfg.real_colour + 1)])
    return concat_banks([bank, played_backwards(bank)]) if cfg.reverse else bank


def clip_frames(cfg: ReadoutsConfig) -> int:
    """The frames of the run's model's clip (readouts_model.build_model's): --init's, else --backbone's, else
    --clip's. Read from the config.json alone."""
    source = cfg.init or cfg.backbone
    return load_config(source).num_frames if source else cfg.clip[0]


def check_recording_lengths(cfg: ReadoutsConfig) -> None:
    """ConfigError where a --real or --select-on recording is shorter than one clip of it (RGBDClips' rule:
    clip_span of the model's clip frames every STRIDE-th). Counted from the readers' frame lists, before anything
    is loaded. Why: `--select-on tum_fr1_rpy_f000-079:40` (80 frames; 8 every 40th span 281) failed after 5 min
    42 s of texture, real-clip and feature loading. A model or recording that cannot be read is left to the
    loading, which says why as before."""
    specs = [("--real", spec) for spec in cfg.real] + [("--select-on", spec) for spec in cfg.select_on]
    if not specs:
        return
    try:
        frames = clip_frames(cfg)
    except (OSError, ValueError):
        return
    for option, spec in specs:
        path, stride = recording_spec(spec, option)
        try:
            found = count_frames(path)
        except (OSError, ValueError, RuntimeError):  # DatasetFormatError, BagError
            continue
        # 0: a bag without a labelled frame, which its loading names as such
        if 0 < found < (span := clip_span(frames, stride)):
            widest = (found - 1) // (frames - 1) if found >= frames else 0  # the largest STRIDE a clip fits at
            raise ConfigError(f"{option} {spec}: the recording has {found} frames, a clip of {frames} frames every "
                              f"{stride} needs {span}" + (f" (give STRIDE {widest} or less)" if widest else
                                                          " (shorter than one clip at any STRIDE)"))


def played_backwards(bank: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every clip of a labelled bank played backwards, labels included: frame i of the result is
    frame T-1-i; a query at frame t moves to T-1-t; the motion is re-expressed from the new
    first frame (the old last): T'_first_from_i = T_{T-1}^-1 T_{T-1-i}, so that R'_i = R_L^T
    R_{T-1-i} and t'_i = R_L^T (t_{T-1-i} - t_L). Why: the pose head memorises the motion of its few
    real recordings (model card, session 36: the HoloLens walk played backwards, images it saw
    and a motion it did not, cost it 2.6x ORB VO's ATE); the same images with the opposite motion
    are meant to make it read the motion from the frames' order instead of recalling it (on the
    CPU's frozen features they did not: session 37, rule 27)."""
    t_len = bank["video"].shape[1]
    rotation, translation = bank["pose_rotation"].flip(1), bank["pose_translation"].flip(1)
    last_r_t = bank["pose_rotation"][:, -1].transpose(-1, -2)  # (B, 3, 3): R_L^T
    last_t = bank["pose_translation"][:, -1]  # (B, 3)
    query = bank["query_points"].clone()
    query[..., 0] = t_len - 1 - query[..., 0]
    return bank | {
        "video": bank["video"].flip(1),
        "depth": bank["depth"].flip(1),
        "query_points": query,
        "tracks_xy": bank["tracks_xy"].flip(2),
        "tracks_visible": bank["tracks_visible"].flip(2),
        "tracks_known": bank["tracks_known"].flip(2),
        "pose_rotation": last_r_t[:, None] @ rotation,
        "pose_translation": torch.einsum("bij,btj->bti", last_r_t, translation - last_t[:, None]),
    }


def redeveloped(bank: dict[str, torch.Tensor], seed) -> dict[str, torch.Tensor]:
    """The bank with every clip's video developed again (appearance.redevelop, one draw per clip
    from `seed`); the labels are the same tensors."""
    return _each_video(bank, seed, lambda clip, rng: appearance.redevelop(clip, rng, REALISTIC))


def recoloured(bank: dict[str, torch.Tensor], seed) -> dict[str, torch.Tensor]:
    """The bank with every clip's video in another camera's colours (appearance.recolour, one draw
    per clip from `seed`); the labels are the same tensors."""
    return _each_video(bank, seed, appearance.recolour)


def _each_video(bank: dict[str, torch.Tensor], seed, rewrite) -> dict[str, torch.Tensor]:
    """rewrite(clip (T, H, W, 3) uint8, rng) -> the clip's new video, for every clip of the bank."""
    rng = np.random.default_rng(seed)
    out = np.stack([rewrite(clip, rng) for clip in bank["video"].cpu().numpy()])
    return bank | {"video": torch.from_numpy(out).to(bank["video"].device)}


STILL_READ_NOISE = (1.0 / 255, 3.0 / 255)  # a camera's read noise, std in [0, 1] intensity
STILL_SHOT_NOISE = 1e-4  # and its shot noise (variance per unit intensity)


def still_bank(bank: dict[str, torch.Tensor], seed) -> dict[str, torch.Tensor]:
    """A camera standing still, from real clips: each clip's first frame held for all T frames, each
    frame with its own sensor noise (appearance.sensor_noise, read noise drawn per clip from
    STILL_READ_NOISE), so that no two frames are equal, as with a real camera; identity motion;
    every track stays where it is in frame 0, queried there, and known only where it is visible
    there. Depth and intrinsics: frame 0's."""
    rng = np.random.default_rng(seed)
    t_len = bank["video"].shape[1]
    first = bank["video"][:, :1].cpu().numpy().astype(np.float32) / 255
    video = np.stack([
        appearance.sensor_noise(np.repeat(clip, t_len, axis=0), STILL_SHOT_NOISE, rng.uniform(*STILL_READ_NOISE), rng)
        for clip in first])
    held = lambda x: x[:, :, :1].expand_as(x).clone()  # noqa: E731  (B, Q, T, ...) tracks: frame 0's
    xy0 = bank["tracks_xy"][:, :, 0]
    eye = torch.eye(3, dtype=bank["pose_rotation"].dtype, device=bank["pose_rotation"].device)
    return bank | {
        "video": torch.from_numpy((video * 255).round().astype(np.uint8)).to(bank["video"].device),
        "depth": bank["depth"][:, :1].expand_as(bank["depth"]).clone(),
        "query_points": torch.stack([torch.zeros_like(xy0[..., 0]), xy0[..., 1], xy0[..., 0]], dim=-1),
        "tracks_xy": held(bank["tracks_xy"]),
        "tracks_visible": held(bank["tracks_visible"]),
        "tracks_known": held(bank["tracks_known"] * bank["tracks_visible"]),
        "pose_rotation": eye.expand_as(bank["pose_rotation"]).clone(),
        "pose_translation": torch.zeros_like(bank["pose_translation"]),
    }


COVERED_SHARE = (0.25, 0.5)  # the share of the view a covered part of the lens hides
COVERED_LEVEL = (2.0 / 255, 20.0 / 255)  # how dark it is: a hand, a lens cap, a mud splash


def covered_bank(bank: dict[str, torch.Tensor], seed) -> dict[str, torch.Tensor]:
    """A part of the lens covered, from real clips: in each clip one side of the view (bottom,
    top, left or right, COVERED_SHARE of it, drawn per clip) is dark (COVERED_LEVEL) with sensor
    noise in every frame, the same part in every frame, as a hand or a cap over the lens would
    be. The camera moves as before; the depth there is unknown (0: not a target) and the tracks
    there are not visible (a track queried there is not known). The node counts such frames
    (preprocess.partly_blind) and they cost the shipped model most of its odometry (model card,
    session 24): these clips teach the model to read what the rest of the view shows."""
    rng = np.random.default_rng(seed)
    video = bank["video"].cpu().numpy().astype(np.float32) / 255
    n, t_len, h, w, _ = video.shape
    covered = np.zeros((n, h, w), bool)
    for i in range(n):
        side, share = rng.integers(4), rng.uniform(*COVERED_SHARE)
        rows, cols = round(h * share), round(w * share)
        covered[i, h - rows:] = side == 0
        covered[i, :rows] |= side == 1
        covered[i, :, :cols] |= side == 2
        covered[i, :, w - cols:] |= side == 3
        dark = np.full((t_len, int(covered[i].sum()), 3), rng.uniform(*COVERED_LEVEL), np.float32)
        video[i][:, covered[i]] = appearance.sensor_noise(dark, STILL_SHOT_NOISE, rng.uniform(*STILL_READ_NOISE), rng)
    mask = torch.from_numpy(covered).to(bank["depth"].device)
    xy = bank["tracks_xy"]  # (B, Q, T, 2) model pixels (x, y)
    col = xy[..., 0].round().long().clamp(0, w - 1)
    row = xy[..., 1].round().long().clamp(0, h - 1)
    hidden = mask[torch.arange(n, device=mask.device)[:, None, None], row, col]  # (B, Q, T)
    q = bank["query_points"]  # (B, Q, 3) (t, y, x)
    query_hidden = hidden.gather(2, q[..., 0].round().long().clamp(0, t_len - 1)[..., None])[..., 0]
    return bank | {
        "video": torch.from_numpy((np.clip(video, 0, 1) * 255).round().astype(np.uint8)).to(bank["video"].device),
        "depth": bank["depth"].masked_fill(mask[:, None], 0.0),
        "tracks_visible": bank["tracks_visible"] * ~hidden,
        "tracks_known": bank["tracks_known"] * ~query_hidden[..., None],
    }


def real_banks(cfg: ReadoutsConfig, model: FourDS, device: torch.device) -> list[dict[str, torch.Tensor]]:
    """One bank per --real PATH[:STRIDE]: overlapping clips (every --real-hop frames) of a real
    RGB-D sequence; one of every --pseudo-tracks video's clips with LK track labels; one of every
    --sfm-depth video's clips with triangulated relative depth; and last, with
    --still-clips, one of the --real clips held still (still_bank), and with --covered-clips one of
    them with a part of the lens covered (covered_bank), each as likely as one sequence."""
    banks = [rgbd_bank(spec, cfg, model, device) for spec in cfg.real]
    made = [concat_banks([still_bank(b, [cfg.seed, 7, i]) for i, b in enumerate(banks)])] if cfg.still_clips else []
    if cfg.covered_clips:
        made.append(concat_banks([covered_bank(b, [cfg.seed, 11, i]) for i, b in enumerate(banks)]))
    if cfg.pseudo_tracks:  # one bank for all the unlabelled video: as likely as one RGB-D sequence
        pseudo = PseudoTrackClips(list(cfg.pseudo_tracks), model.config.num_frames, model.config.image_size, num_tracks=cfg.num_tracks, seed=cfg.seed)
        banks.append(materialize(pseudo, cfg.workers, device))
    if cfg.sfm_depth:  # likewise one bank, of triangulated relative depth
        sfm = SfmDepthClips(list(cfg.sfm_depth), model.config.num_frames, model.config.image_size,
                            num_tracks=cfg.num_tracks)
        banks.append(materialize(sfm, cfg.workers, device))
    return banks + made


def synthetic_scene(cfg: ReadoutsConfig) -> dict:
    """SceneConfig fields of the synthetic clips, the held-aside ones too (scored over the same
    cameras and looks): --synthetic-realism's preset, then --synthetic-fov over its range."""
    scene = {"num_tracks": cfg.num_tracks}
    if cfg.synthetic_realism is not None:
        scene.update(REALISTIC, texture_sources=cfg.synthetic_realism)
    if cfg.synthetic_fov is not None:
        scene["fov_range_deg"] = cfg.synthetic_fov
    return scene


def load_banks(cfg: ReadoutsConfig, model: FourDS, device: torch.device) -> Banks:
    """Every clip rendered once (and, with --cache-features, its encoder features)."""
    scene = synthetic_scene(cfg)
    synthetic = materialize(SyntheticLabelledClips(model.config, scene, cfg.train_clips, offset=0), cfg.workers, device)
    reals = real_banks(cfg, model, device)
    real_clips = [b["video"].shape[0] for b in reals]
    if cfg.cache_features:
        synthetic = cache_features(model, synthetic, cfg.flip, tuned_blocks=cfg.finetune_blocks)
        reals = [cache_features(model, b, cfg.flip, tuned_blocks=cfg.finetune_blocks) for b in reals]
    unlabelled = None
    if cfg.photometric:
        clips = SquareClips(list(cfg.photometric), model.config.num_frames, model.config.image_size,
                            stride=cfg.photometric_stride)
        unlabelled = materialize(clips, cfg.workers, device)
        if cfg.cache_features:
            unlabelled = cache_features(model, unlabelled, cfg.flip, tuned_blocks=cfg.finetune_blocks)
    val = materialize(SyntheticLabelledClips(model.config, scene, cfg.val_clips, offset=VAL_SEED_OFFSET),
                      cfg.workers, device)
    real_sizes = [b["video"].shape[0] for b in reals]
    return Banks(synthetic, concat_banks(reals) if reals else None, real_clips, real_sizes, val, unlabelled)


class BatchSampler:
    """Random training batches: --batch-size clips, a --real-fraction share (at least one) from
    the real banks when there are any, each real sequence equally likely; mirrored at random
    with --flip (cached banks hold their mirror images instead), some queries moved to frame 0
    with --first-frame-queries."""

    def __init__(self, cfg: ReadoutsConfig, banks: Banks, device: torch.device):
        self.cfg, self.banks, self.device = cfg, banks, device
        n_real = 0 if banks.real is None else banks.real["video"].shape[0]
        self.real_per_batch = 0 if not n_real else max(1, round(cfg.batch_size * cfg.real_fraction))
        # A stopped run continued (--init OUT/checkpoint) draws other batches than the ones its start drew: with
        # the same --seed it replayed the stopped run's batches from the first.
        seed = cfg.seed if not cfg.steps_before else int(np.random.SeedSequence([cfg.seed, cfg.steps_before])
                                                         .generate_state(1)[0])
        self.gen = torch.Generator(device="cpu").manual_seed(seed)

    def __call__(self) -> dict[str, torch.Tensor]:
        cfg, banks, gen, device = self.cfg, self.banks, self.gen, self.device
        idx = torch.randint(0, banks.synthetic["video"].shape[0], (cfg.batch_size - self.real_per_batch,), generator=gen)
        parts = [take(banks.synthetic, idx.to(device))]
        if self.real_per_batch:
            ridx = balanced_indices(banks.real_sizes, self.real_per_batch, gen)
            parts.append(take(banks.real, ridx.to(device)))
        batch = self._mirrored(concat_banks(parts))
        if cfg.first_frame_queries:
            chosen = torch.rand(batch["query_points"].shape[:2], generator=gen) < cfg.first_frame_queries
            batch = requery_first_frame(batch, chosen.to(device))
        return batch

    def unlabelled(self) -> dict[str, torch.Tensor]:
        """--photometric-batch random --photometric clips (mirrored at random with --flip unless
        their mirror images are cached)."""
        cfg, bank = self.cfg, self.banks.unlabelled
        idx = torch.randint(0, bank["video"].shape[0], (cfg.photometric_batch,), generator=self.gen)
        return self._mirrored(take(bank, idx.to(self.device)))

    def _mirrored(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """With --flip, half the batch's clips mirrored at random, unless the banks are cached
        (cache_features doubled them with their mirror images instead)."""
        if not self.cfg.flip or self.cfg.cache_features:
            return batch
        n = batch["video"].shape[0]
        return mirror(batch, (torch.rand(n, generator=self.gen) < 0.5).to(self.device))


def in_batches(bank: dict[str, torch.Tensor], batch_size: int) -> list[dict[str, torch.Tensor]]:
    """Every clip of the bank, in order, in batches of batch_size (the last may be shorter)."""
    n, device = bank["video"].shape[0], bank["video"].device
    return [take(bank, torch.arange(i, min(i + batch_size, n), device=device)) for i in range(0, n, batch_size)]


def val_batches(cfg: ReadoutsConfig, banks: Banks) -> list[dict[str, torch.Tensor]]:
    return in_batches(banks.val, cfg.batch_size)


def selection_batches(cfg: ReadoutsConfig, model: FourDS, device: torch.device) -> list[dict[str, torch.Tensor]]:
    """Every clip of the --select-on recordings as recorded (none of the training copies: before
    session 47 they were zoomed, redeveloped, recoloured and reversed with the --real clips), in
    batches of --batch-size."""
    return [b for spec in cfg.select_on
            for b in in_batches(rgbd_bank(spec, cfg, model, device, augment=False), cfg.batch_size)]
