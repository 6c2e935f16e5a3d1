"""Typed readout-training configuration: a frozen dataclass built from the command line
(`python -m training.train_readouts --help`), validated before any model is built or clip rendered."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

from fourds_ros.model.config import HEAD_TYPES

from .losses import TEACHER_HOLDS
from .typed_config import ConfigError


def recording_spec(spec: str, option: str = "--real") -> tuple[Path, int]:
    """PATH[:STRIDE] -> (PATH, STRIDE): the last colon's part is the stride when it is a whole number (a path
    may hold colons itself: a run named by its ISO time), else ConfigError; no colon or an empty stride: 1."""
    path, colon, stride = spec.rpartition(":")
    if not colon:
        return Path(spec), 1
    stride = stride.strip()
    if not stride:
        return Path(path), 1
    if not (stride.isascii() and stride.isdigit() and int(stride) >= 1):
        raise ConfigError(f"{option} {spec}: STRIDE must be an integer >= 1 (PATH[:STRIDE]; a PATH that holds ':' "
                          "needs its :STRIDE, e.g. :1)")
    return Path(path), int(stride)


# The files that hold a recording's poses and intrinsics in fourds_ros.rgbd.read_sequence's formats (TUM,
# HoloLens, 7-Scenes' camera-intrinsics.txt; its per-frame poses are frame-*.pose.txt, recording_fingerprint).
POSE_FILES = ("groundtruth.txt", "poses.txt")
INTRINSICS_FILES = ("K.txt", "camera-intrinsics.txt")


def recording_fingerprint(root: Path) -> str | None:
    """A hash of a recording's poses and intrinsics files: the same recording wherever it lies (a copy, another
    mount); None where the folder holds no poses (not a recording, not there)."""
    poses = [root / name for name in POSE_FILES if (root / name).is_file()] + sorted(root.glob("frame-*.pose.txt"))
    if not poses:
        return None
    digest = hashlib.sha256()
    for path in poses + [root / name for name in INTRINSICS_FILES if (root / name).is_file()]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class ReadoutsConfig:
    """One readout-training run; each field is the command-line option of the same name."""

    backbone: str | None = None
    init: str | None = None
    size: str = "tiny"
    clip: tuple[int, int, int] = (4, 32, 32)
    patch_size: tuple[int, int, int] = (2, 8, 8)
    heads: tuple[str, ...] = ("depth", "tracks", "pose")
    finetune: bool = False
    finetune_blocks: int = 0
    readout_width: int = 64
    readout_heads: int = 2
    steps: int = 200
    batch_size: int = 4
    lr: float = 1e-3
    weight_decay: float = 1e-4
    train_clips: int = 64
    val_clips: int = 8
    real: tuple[str, ...] = ()
    pseudo_tracks: tuple[str, ...] = ()
    sfm_depth: tuple[str, ...] = ()
    photometric: tuple[str, ...] = ()
    photometric_weight: float = 1.0
    photometric_batch: int = 2
    photometric_stride: int = 2
    select_on: tuple[str, ...] = ()
    select_no_worse: tuple[str, ...] = ()
    num_tracks: int = 32
    eval_every: int = 0
    name: str = "readouts"
    out: str | None = None
    seed: int = 0
    device: str = "auto"
    workers: int = 1
    real_fraction: float = 0.25
    real_hop: int = 0
    real_appearance: int = 0
    real_colour: int = 0
    real_zoom: tuple[float, float] | None = None
    still_clips: bool = False
    covered_clips: bool = False
    reverse: bool = False
    encoder_lr_scale: float = 1.0
    flip: bool = False
    first_frame_queries: float = 0.0
    train_heads: tuple[str, ...] | None = None
    softargmax_temperature: float | None = None
    canonical_focal_px: float | None = None
    synthetic_fov: tuple[float, float] | None = None
    synthetic_realism: tuple[str, ...] | None = None
    depth_ssi_weight: float = 0.0
    depth_grad_weight: float = 0.5
    depth_teacher: str | None = None
    depth_teacher_weight: float = 1.0
    depth_teacher_holds: str = "depth"
    pose_direction_weight: float = 0.0
    save_every: int = 0
    cache_features: bool = False
    time_budget: float = 0.0
    no_progress: bool = False
    argv: tuple[str, ...] = ()  # the command line, for the model card
    steps_before: int = 0  # not an option: the steps a continued run's --init progress had trained (train())
    run_id: str = ""  # not an option: the run's own id (train()), in its resume file, progress and log

    def __post_init__(self):
        check_heads(self.heads)
        if self.cache_features and self.finetune:
            raise ConfigError("--cache-features needs a frozen encoder: drop --finetune (--finetune-blocks N "
                              "caches the input of the last N blocks instead)")
        if self.finetune_blocks < 0 or (self.finetune_blocks and self.finetune):
            raise ConfigError("--finetune-blocks N (>= 0) trains the last N encoder blocks, --finetune all of it: "
                              "give one")
        if self.train_heads is not None and not set(self.train_heads) <= set(self.heads):
            raise ConfigError(f"--train-heads {list(self.train_heads)}: the model has heads {sorted(self.heads)}")
        if self.held_heads and self.init is None:
            raise ConfigError("a head held out of --train-heads while the encoder trains keeps its weights and "
                              "shapes the encoder: give --init, so that they are trained weights")
        if min(self.steps, self.batch_size, self.train_clips, self.val_clips, self.workers) < 1:
            raise ConfigError("--steps, --batch-size, --train-clips, --val-clips and --workers must be >= 1")
        if not 0.0 <= self.real_fraction <= 1.0 or not 0.0 <= self.first_frame_queries <= 1.0:
            raise ConfigError("--real-fraction and --first-frame-queries must be in [0, 1]")
        if self.real_zoom is not None and not (self.real and 1.0 <= self.real_zoom[0] <= self.real_zoom[1] <= 8.0):
            raise ConfigError("--real-zoom LOW HIGH needs --real and 1 <= LOW <= HIGH <= 8")
        if self.synthetic_fov is not None and not 0 < self.synthetic_fov[0] <= self.synthetic_fov[1] < 180:
            raise ConfigError("--synthetic-fov LOW HIGH needs 0 < LOW <= HIGH < 180 degrees")
        if self.canonical_focal_px is not None and not self.canonical_focal_px > 0:
            raise ConfigError("--canonical-focal-px must be > 0")
        if not 0 <= self.time_budget < math.inf:  # NaN and inf crashed at step 25, a negative one ended the run there
            raise ConfigError(f"--time-budget must be a finite number of seconds >= 0 (0: off), got {self.time_budget}")
        self._check_recordings()
        weights = (self.depth_ssi_weight, self.depth_grad_weight, self.pose_direction_weight, self.save_every,
                   self.real_appearance, self.real_colour, self.photometric_weight, self.depth_teacher_weight)
        if not all(w >= 0 for w in weights):  # NaN too (min() let it through, by its place in the list)
            raise ConfigError("--depth-ssi-weight, --depth-grad-weight, --pose-direction-weight, --save-every, "
                              "--real-appearance, --real-colour, --photometric-weight and --depth-teacher-weight "
                              "must be >= 0")
        self._check_what_is_kept()

    def _check_what_is_kept(self) -> None:
        """--select-no-worse and --depth-teacher: what a run must not lose, and what it needs for that."""
        if self.select_no_worse:
            from .selection import SELECTION_METRICS  # here: selection imports this module

            if not self.select_on or not set(self.select_no_worse) <= set(SELECTION_METRICS):
                raise ConfigError(f"--select-no-worse takes metrics of {list(SELECTION_METRICS)} and needs --select-on")
            if self.init is None:  # the start is then no candidate: a run where no step passes has nothing to keep
                raise ConfigError("--select-no-worse keeps no step worse than the --init model's: give --init")
        if self.depth_teacher is not None and (not (self.finetune or self.finetune_blocks)
                                               or "depth" not in self.loss_heads):
            raise ConfigError("--depth-teacher keeps the depth head's output while the encoder trains: it needs "
                              "--finetune or --finetune-blocks, and depth in --train-heads")

    def _check_strides(self) -> None:
        """--real and --select-on's PATH[:STRIDE] (recording_spec): 0 failed only after every clip was rendered;
        -2 trained on clips wrapped from the recording's end."""
        for option, specs in (("--real", self.real), ("--select-on", self.select_on)):
            for spec in specs:
                recording_spec(spec, option)

    def _check_recordings(self) -> None:
        """--real, --still-clips, --covered-clips, --reverse, --pseudo-tracks, --photometric and --select-on fit together."""
        self._check_strides()
        if (self.still_clips or self.covered_clips or self.reverse) and not self.real:
            raise ConfigError("--still-clips, --covered-clips and --reverse are made of the --real clips: give --real")
        if self.photometric and ("depth" not in self.trained_heads or "pose" not in self.heads):
            raise ConfigError("--photometric trains the depth head through the model's pose head's copy: "
                              "the model needs a pose head and --train-heads must include depth")
        if self.photometric and min(self.photometric_batch, self.photometric_stride) < 1:
            raise ConfigError("--photometric-batch and --photometric-stride must be >= 1")
        if self.pseudo_tracks and set(self.loss_heads) != {"tracks"}:
            raise ConfigError("--pseudo-tracks labels tracks only (no depth or pose): add --train-heads tracks")
        if self.sfm_depth and (set(self.loss_heads) != {"depth"} or self.depth_ssi_weight <= 0):
            raise ConfigError("--sfm-depth labels relative depth only (no metres, tracks or pose): add "
                              "--train-heads depth and --depth-ssi-weight > 0")
        # Folders compared resolved: ./x, x/., an absolute path or a/../x are the folder x (as strings they were
        # other recordings, and a checkpoint was chosen on frames the run trained on).
        trained_on = {recording_spec(spec)[0].resolve() for spec in self.real}
        if overlap := [spec for spec in self.select_on if recording_spec(spec)[0].resolve() in trained_on]:
            raise ConfigError(f"--select-on {sorted(overlap)} is also trained on (--real): choose on "
                              "recordings the run never trains on")
        self._check_copies()
        # The video options train on every source found under their paths (video.find_sources): a path in the
        # recording (its rgb/), or one holding it (the data root), trained on the frames chosen on.
        chosen = [recording_spec(spec)[0].resolve() for spec in self.select_on]
        videos = (("--pseudo-tracks", self.pseudo_tracks), ("--sfm-depth", self.sfm_depth),
                  ("--photometric", self.photometric), ("--synthetic-realism", self.synthetic_realism or ()))
        for option, paths in videos:
            for path in paths:
                video = Path(path).resolve()
                if hit := next((c for c in chosen if video == c or c in video.parents or video in c.parents), None):
                    raise ConfigError(f"{option} {path} trains on the --select-on recording {hit} (the same "
                                      "folder, one in it, or one holding it): choose on recordings the run never "
                                      "trains on")

    def _check_copies(self) -> None:
        """--select-on refused where it is a --real recording under another path (the same poses and intrinsics,
        recording_fingerprint): samples/hololens_000 and ../shared/data/hololens_dvmvs_000_f00305-00334 hold the
        same 30 frames, and a checkpoint was chosen on frames the run trained on."""
        if not (self.real and self.select_on):
            return
        trained = {fp: spec for spec in self.real if (fp := recording_fingerprint(recording_spec(spec)[0]))}
        for spec in self.select_on:
            if (fp := recording_fingerprint(recording_spec(spec)[0])) in trained:
                raise ConfigError(f"--select-on {spec} is the --real recording {trained[fp]} under another path (the "
                                  "same poses and intrinsics): choose on recordings the run never trains on")

    @property
    def trains_encoder(self) -> bool:
        """The encoder trains, wholly (--finetune) or its last blocks (--finetune-blocks)."""
        return self.finetune or self.finetune_blocks > 0

    @property
    def trained_heads(self) -> tuple[str, ...]:
        """The heads whose weights train (--train-heads, default all)."""
        return self.heads if self.train_heads is None else self.train_heads

    @property
    def loss_heads(self) -> tuple[str, ...]:
        """The heads whose losses train the model: every head when the encoder trains (a head
        held out of --train-heads keeps its weights, and its loss keeps the moving encoder serving
        it), else the trained heads (the others are not even run)."""
        return self.heads if self.trains_encoder else self.trained_heads

    @property
    def held_heads(self) -> tuple[str, ...]:
        """The heads whose losses train the encoder while their weights stay as --init gave them."""
        return tuple(h for h in self.loss_heads if h not in self.trained_heads)


def check_heads(heads) -> None:
    unknown = set(heads) - set(HEAD_TYPES)
    if unknown or not heads:
        raise ConfigError(f"heads must be a non-empty subset of {list(HEAD_TYPES)}, got {list(heads)}")


def parse_clip(text: str) -> tuple[int, int, int]:
    try:
        t, h, w = (int(v) for v in text.split("x"))
    except ValueError as e:
        raise ConfigError(f"--clip must be TxHxW, e.g. 4x32x32, got {text!r}") from e
    return t, h, w


def _add_recording_args(p: argparse.ArgumentParser) -> None:
    """The real recordings a run trains on, and those it chooses its checkpoint on."""
    p.add_argument("--real", nargs="*", metavar="PATH[:STRIDE]", default=[],
                   help="real RGB-D sequences (7-Scenes, HoloLens, TUM) added to the training set")
    p.add_argument("--real-appearance", type=int, default=0, metavar="N",
                   help="add N copies of each --real sequence's clips, each clip developed again with its "
                        "own exposure, motion blur, sensor noise and JPEG (training/data/appearance.py "
                        "redevelop; labels unchanged)")
    p.add_argument("--real-colour", type=int, default=0, metavar="N",
                   help="add N copies of each --real sequence's clips, each clip in another camera's colours: "
                        "a white balance and a saturation, grey in a quarter of them (training/data/appearance.py "
                        "recolour; labels unchanged)")
    p.add_argument("--real-zoom", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                   help="each --real sequence's clips also as zoomed views: a window of 1/z of the frame, z "
                        "drawn per clip in [LOW, HIGH], e.g. 1.25 2.5 (training/data/datasets.zoom_window): "
                        "with --canonical-focal-px the depth head sees near-looking views of the far rooms")
    p.add_argument("--still-clips", action="store_true",
                   help="one more real bank: each --real clip's first frame held for the whole clip, with "
                        "fresh sensor noise in every frame, identity motion and tracks that stay put (a "
                        "camera standing still, which the pose head otherwise reads as fast motion; "
                        "readouts_data.still_bank)")
    p.add_argument("--reverse", action="store_true",
                   help="each --real sequence's clips also played backwards, labels included (twice as many "
                        "clips; readouts_data.played_backwards): the same images with the opposite motion, so "
                        "that the pose head reads motion instead of recalling its recordings'")
    p.add_argument("--covered-clips", action="store_true",
                   help="one more real bank: the --real clips with a side of the view dark (a part of the lens "
                        "covered; no depth or visible track there), as likely as one sequence")
    p.add_argument("--pseudo-tracks", nargs="*", metavar="PATH", default=[],
                   help="unlabelled real video (mp4 files or frame folders, or folders of them) with LK "
                        "track labels (training/data/pseudo_tracks.py), one more real bank; needs "
                        "--train-heads tracks")
    p.add_argument("--sfm-depth", nargs="*", metavar="PATH", default=[],
                   help="unlabelled real video (mp4 files or frame folders, or folders of them) with sparse depth "
                        "triangulated from its own parallax (training/data/sfm_depth.py), one more real bank, "
                        "learnt through the scale-and-shift-invariant terms only; needs --train-heads depth and "
                        "--depth-ssi-weight > 0")
    p.add_argument("--photometric", nargs="*", metavar="PATH", default=[],
                   help="unlabelled real video (mp4 files or frame folders, or folders of them): the depth "
                        "head also learns from view synthesis on their clips (training/photometric.py), "
                        "with poses from a throw-away copy of the pose head; needs depth in --train-heads")
    p.add_argument("--photometric-weight", type=float, default=1.0, help="weight of the photometric loss")
    p.add_argument("--photometric-batch", type=int, default=2, help="--photometric clips per step")
    p.add_argument("--photometric-stride", type=int, default=2,
                   help="frames between a --photometric clip's frames (more parallax than 1 at 30 Hz)")
    p.add_argument("--select-on", nargs="*", metavar="PATH[:STRIDE]", default=[],
                   help="validation RGB-D recordings (never --real): the model is scored on their clips "
                        "at every --save-every step and at the end, and the run writes the weights that "
                        "scored best, the starting ones included (training/selection.py)")
    p.add_argument("--select-no-worse", nargs="*", metavar="METRIC", default=[],
                   help="--select-on: a checkpoint is chosen only where these metrics are no worse than the "
                        "start's, e.g. depth_abs_rel_scaled depth_abs_rel (training/selection.py)")


def _add_loss_args(p: argparse.ArgumentParser) -> None:
    """The loss terms beyond each head's own: depth's relative terms and teacher, pose's direction."""
    p.add_argument("--depth-ssi-weight", type=float, default=0.0,
                   help="weight of the scale-and-shift-invariant inverse-depth loss (0: off)")
    p.add_argument("--depth-grad-weight", type=float, default=0.5,
                   help="multi-scale gradient-matching term, relative to the SSI loss")
    p.add_argument("--depth-teacher", default=None, metavar="MODEL_DIR",
                   help="a frozen model (usually the --init one) whose depth on every training clip the depth "
                        "head is also held to (training/losses.depth_teacher_loss): what the encoder learns for "
                        "tracks and pose must not cost depth where no label says so (session 41's GPU run did)")
    p.add_argument("--depth-teacher-weight", type=float, default=1.0,
                   help="weight of the --depth-teacher term")
    p.add_argument("--depth-teacher-holds", choices=TEACHER_HOLDS, default="depth",
                   help="what the --depth-teacher term holds: depth (its metres and shape) or shape (its depth up "
                        "to one factor a frame, so that the labels teach the scale: with --real-zoom, whose nearer "
                        "views teach a scale the teacher does not have)")
    p.add_argument("--pose-direction-weight", type=float, default=0.0,
                   help="weight of the pose head's translation-direction term, 1 - cos on frames that "
                        "moved 5 mm or more (0: off)")


def _add_synthetic_args(p: argparse.ArgumentParser) -> None:
    """How the synthetic training clips look and move."""
    p.add_argument("--synthetic-fov", type=float, nargs=2, default=None, metavar=("LOW", "HIGH"),
                   help="synthetic clips' horizontal field of view drawn per clip in [LOW, HIGH] degrees, "
                        "e.g. 45 100 (default: a fixed 60)")
    p.add_argument("--synthetic-realism", nargs="*", default=None, metavar="TEXTURES",
                   help="synthetic clips as SceneConfig.realistic(): lighting, exposure, motion blur, "
                        "sensor noise, JPEG, 45-100 deg field of view (unless --synthetic-fov), pure "
                        "rotation, fast turns and hand-held shake; surfaces textured with crops of the "
                        "frames of the videos / image folders TEXTURES (none: procedural textures)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.train_readouts",
                                description="Readout training: depth, point-track and camera-pose heads on a 4DS encoder.")
    p.add_argument("--backbone", help="model dir (ours or imported official); default: random init")
    p.add_argument("--init", help="full model dir (encoder and heads) to start a new run from; its model replaces --backbone, "
                        "--size, --clip, --patch-size and --readout-width/-heads (given, they must match it). A "
                        "stopped run resumes by its own command run again (OUT/resume.pt), not with --init")
    p.add_argument("--size", default="tiny", help="encoder size without --backbone (with it: the backbone's, or left out)")
    p.add_argument("--clip", default="4x32x32", help="TxHxW without --backbone (with it: the backbone's, or left out)")
    p.add_argument("--patch-size", type=int, nargs=3, default=[2, 8, 8])
    p.add_argument("--heads", nargs="+", default=["depth", "tracks", "pose"])
    p.add_argument("--finetune", action="store_true", help="unfreeze the encoder")
    p.add_argument("--finetune-blocks", type=int, default=0, metavar="N", help="unfreeze only the last N "
                   "encoder blocks the readout uses (--cache-features caches their input: a CPU can afford it)")
    p.add_argument("--readout-width", type=int, default=64)
    p.add_argument("--readout-heads", type=int, default=2)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--train-clips", type=int, default=64)
    p.add_argument("--val-clips", type=int, default=8)
    _add_recording_args(p)
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
                   help="train only these heads; the rest keep their weights (their losses still train a tuned encoder)")
    p.add_argument("--softargmax-temperature", type=float, default=None,
                   help="tracks head: temperature of its windowed soft-argmax (0: the learned matching one)")
    p.add_argument("--canonical-focal-px", type=float, default=None,
                   help="depth head: predict depth as a camera of this fx (model pixels) sees it; metric "
                        "depth is rescaled by each camera's fx (default: the model's config, else off)")
    _add_synthetic_args(p)
    _add_loss_args(p)
    p.add_argument("--save-every", type=int, default=0,
                   help="steps between checkpoints in OUT/checkpoint, with the run's resume state in "
                        "OUT/resume.pt: the same command run again resumes a stopped run (0: only the final model, and the progress when a stop signal ends the run)")
    p.add_argument("--cache-features", action="store_true",
                   help="run the frozen encoder once per clip and train the heads on its cached features")
    p.add_argument("--time-budget", type=float, default=0.0,
                   help="seconds: fit --steps to this budget once the step time is known, the "
                        "--select-on scorings included (0: off)")
    p.add_argument("--no-progress", action="store_true")
    return p


def given_options(argv: tuple[str, ...] | list[str]) -> set[str]:
    """The config fields that the command line `argv` gives (however abbreviated), not left at their defaults."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(list(argv))))


def parse_args(argv: list[str]) -> ReadoutsConfig:
    """The validated config of a command line (argparse exits on a malformed one; a
    ConfigError, a ValueError, names a value that does not fit)."""
    ns = vars(build_parser().parse_args(argv))
    ns["clip"] = parse_clip(ns["clip"])
    for key in ("patch_size", "heads", "real", "pseudo_tracks", "sfm_depth", "photometric", "select_on", "select_no_worse"):
        ns[key] = tuple(ns[key])
    ns["train_heads"] = None if ns["train_heads"] is None else tuple(ns["train_heads"])
    ns["synthetic_fov"] = None if ns["synthetic_fov"] is None else tuple(ns["synthetic_fov"])
    ns["real_zoom"] = None if ns["real_zoom"] is None else tuple(ns["real_zoom"])
    ns["synthetic_realism"] = None if ns["synthetic_realism"] is None else tuple(ns["synthetic_realism"])
    known = {f.name for f in dataclasses.fields(ReadoutsConfig)}
    return ReadoutsConfig(**{k: v for k, v in ns.items() if k in known}, argv=tuple(argv))
