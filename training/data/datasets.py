"""torch Datasets indexed by a global sample index; item i is a pure function of (seed, i).

That property is what makes distributed runs equal single-process runs at the same global batch,
and resumed runs equal uninterrupted ones: no data-loader state has to be saved.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from fourds_ros.model import make_mask

from fourds_ros.rgbd import (DatasetFormatError, RGBDSequence, crop_resize_intrinsics, read_sequence, relative_poses,
                             resize_frames)
from .synthetic import SceneConfig, SceneGenerator
from .tracks import geometric_tracks
from .video import VideoClips


def _scene_config(model_cfg, data_cfg: dict) -> SceneConfig:
    extra = dict(data_cfg.get("scene") or {})
    return SceneConfig(num_frames=model_cfg.num_frames, image_size=tuple(model_cfg.image_size), **extra)


class PretrainClips(Dataset):
    """Unlabelled clips plus their MAE token mask.

    data_cfg: {"source": "synthetic"|"video"|"mixed", "root": folder or list of folders (video),
    "num_scenes": N (synthetic items cycle through N scenes; 0 = a new scene per sample; video clips
    never cycle), "stride",
    "crop_scale", "synthetic_every": k (mixed: sample i is synthetic when i % k == 0, else video)}.
    Items: video (T, H, W, 3) float32 in [0, 1]; ids_keep (K,), ids_restore (N,), masked (N,) bool.
    """

    def __init__(self, model_cfg, data_cfg: dict, mask_kind: str, mask_ratio: float, seed: int,
                 length: int = 1 << 40):
        self.model_cfg, self.mask_kind, self.mask_ratio = model_cfg, mask_kind, mask_ratio
        self.seed, self.length = seed, length
        self.source = data_cfg.get("source", "synthetic")
        self.num_scenes = int(data_cfg.get("num_scenes", 0))
        self._cache: dict[int, np.ndarray] = {}
        if self.source not in ("synthetic", "video", "mixed"):
            raise ValueError(f"unknown pre-training data source {self.source!r} (synthetic, video, mixed)")
        self.synthetic_every = int(data_cfg.get("synthetic_every", 2))
        if self.source in ("synthetic", "mixed"):
            self.generator = SceneGenerator(_scene_config(model_cfg, data_cfg))
        if self.source in ("video", "mixed"):
            self.clips = VideoClips(
                data_cfg["root"], model_cfg.num_frames, model_cfg.image_size,
                stride=int(data_cfg.get("stride", 2)),
                crop_scale=tuple(data_cfg.get("crop_scale", (0.5, 1.0))), seed=seed,
            )

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        synthetic = self.source == "synthetic" or (
            self.source == "mixed" and index % self.synthetic_every == 0
        )
        # Each kind counts its own items densely. Counting both by `index` (and wrapping videos with
        # num_scenes) drew mixed runs' video clips from odd indices only: 128 clips of 256, and with
        # an even number of sources only every second source (the 7-Scenes kitchen never).
        nth = index
        if self.source == "mixed":
            k = self.synthetic_every
            nth = index // k if synthetic else index - (index + k - 1) // k
        scene = nth % self.num_scenes if synthetic and self.num_scenes else nth
        if synthetic and scene in self._cache:
            video = self._cache[scene]
        elif synthetic:
            video = self.generator.generate(self.seed * 1_000_003 + scene).rgb.astype(np.float32) / 255
            if 0 < self.num_scenes <= 256:  # a small fixed scene set is rendered once
                self._cache[scene] = video
        else:
            video = self.clips.clip(scene)
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        mask = make_mask(self.mask_kind, 1, self.model_cfg.token_grid, self.mask_ratio, generator=gen)
        return {
            "video": torch.from_numpy(np.ascontiguousarray(video)),
            "ids_keep": mask.ids_keep[0],
            "ids_restore": mask.ids_restore[0],
            "masked": mask.masked[0],
        }


def _labels(video_u8, depth, k, c2w, query_points, tracks_xy, visible, known=None) -> dict:
    """known: (Q, T) where the track labels hold (default: everywhere; geometric_tracks: not over
    depth holes)."""
    rotation, translation = relative_poses(c2w)
    f = torch.from_numpy
    return {
        "video": f(np.ascontiguousarray(video_u8)).float() / 255,
        "depth": f(np.nan_to_num(depth).astype(np.float32)),
        "depth_metric": torch.ones(()),  # the depth is in metres (sfm_depth.py's is up to a scale)
        "query_points": f(query_points.astype(np.float32)),
        "tracks_xy": f(np.nan_to_num(tracks_xy).astype(np.float32)),
        "tracks_visible": f(visible.astype(np.float32)),
        "tracks_known": torch.ones(visible.shape) if known is None else f(known.astype(np.float32)),
        "pose_rotation": f(rotation.astype(np.float32)),
        "pose_translation": f(translation.astype(np.float32)),
        "intrinsics": f(k.astype(np.float32)),
    }


class SyntheticLabelledClips(Dataset):
    """Labelled synthetic clips for all three heads: `length` scenes starting at seed `offset`
    (the train and held-aside splits use disjoint offsets). Items (T frames, Q tracks):
    video (T, H, W, 3) in [0, 1]; depth (T, H, W) m (0 = invalid); query_points (Q, 3) (t, y, x);
    tracks_xy (Q, T, 2); tracks_visible (Q, T) {0, 1}; pose_rotation (T, 3, 3) and
    pose_translation (T, 3) of T_first_from_t; intrinsics (3, 3)."""

    def __init__(self, model_cfg, scene: dict | None, length: int, offset: int):
        cfg = _scene_config(model_cfg, {"scene": scene})
        self.generator, self.length, self.offset = SceneGenerator(cfg), length, offset
        self.cache: dict[int, dict] = {}

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if index not in self.cache:  # small sets are revisited every epoch; render once
            c = self.generator.generate(self.offset + index)
            self.cache[index] = _labels(c.rgb, c.depth, c.intrinsics, c.camera_to_world,
                                        c.query_points, c.tracks_xy, c.tracks_visible)
        return self.cache[index]


class BagSequence:
    """A labelled recording in the evaluation layout (`fourds-ros bag convert` or `bag import` of a
    team's own RGB-D camera, fourds_ros.evaluation.bag) as an RGB-D sequence: the frames that carry
    both depth and a pose, with the recording's one K. What RGBDClips reads of an RGBDSequence:
    len, rgb(i), depth(i) (metres, 0 invalid), intrinsics, camera_to_world, name."""

    def __init__(self, path: str | Path):
        from fourds_ros.evaluation.bag import BagError, check_scorable, read_bag

        try:  # what eval cannot score (lens distortion, a roi window) is not trained on either
            data = check_scorable(read_bag(path))
        except BagError as exc:
            raise DatasetFormatError(str(exc)) from exc
        self.stamps = labelled_stamps(data)
        if not self.stamps:
            raise DatasetFormatError(f"{path}: no frame has both depth (/gt/depth) and a pose (/gt/pose)")
        self.intrinsics = data.intrinsics(self.stamps[0])
        if any(not np.allclose(data.intrinsics(s), self.intrinsics) for s in self.stamps):
            raise DatasetFormatError(f"{path}: the camera_info K changes within the recording; train on each part")
        self.camera_to_world = np.stack([data.gt_pose[s] for s in self.stamps])
        self._data, self.name = data, Path(path).name

    def __len__(self) -> int:
        return len(self.stamps)

    def rgb(self, i: int) -> np.ndarray:
        return self._data.images[self.stamps[i]]

    def depth(self, i: int) -> np.ndarray:
        depth = self._data.gt_depth[self.stamps[i]]
        return np.where(np.isfinite(depth) & (depth > 0), depth, 0).astype(np.float32)


def labelled_stamps(data) -> list[int]:
    """A bag's frames that BagSequence trains on: those that carry both depth and a pose."""
    return [s for s in data.stamps if s in data.gt_depth and s in data.gt_pose]


def is_bag(path: Path) -> bool:
    return (path / "metadata.yaml").is_file() or (path.is_file() and path.suffix in (".mcap", ".bag"))


def open_sequence(path: str | Path) -> RGBDSequence | BagSequence:
    """A labelled recording: a bag in the evaluation layout (a folder with metadata.yaml, an .mcap
    or a ROS 1 .bag), else a 7-Scenes, HoloLens or TUM folder (fourds_ros.rgbd.read_sequence)."""
    path = Path(path)
    return BagSequence(path) if is_bag(path) else read_sequence(path)


def count_frames(path: str | Path) -> int:
    """len(open_sequence(path)) without its images: a folder's reader lists its frames (file names, poses), a
    bag is read without its camera images. Raises what open_sequence raises for a recording it cannot read."""
    path = Path(path)
    if not is_bag(path):
        return len(read_sequence(path))
    from fourds_ros.evaluation.bag import read_bag

    return len(labelled_stamps(read_bag(path, images=False)))


def clip_span(num_frames: int, stride: int) -> int:
    """The frames of a recording that one clip of num_frames frames, every stride-th, spans."""
    return (num_frames - 1) * stride + 1


def zoom_window(rgb: np.ndarray, depth: np.ndarray, intrinsics: np.ndarray, rng: np.random.Generator,
                low: float, high: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A window of 1/z of the frames' width and height, z drawn in [low, high], at a random place,
    the same for every frame: rgb (T, H, W, 3), depth (T, H, W) -> the windows and their intrinsics.
    Resized to the model's input, the window is what a camera with a z times longer focal length
    sees, at the same depths: with a canonical-focal depth head (--canonical-focal-px) its target is
    z times nearer, so the head learns depth from how large things look, in a room that is far."""
    z = rng.uniform(low, high)
    h, w = rgb.shape[1:3]
    ch, cw = max(1, round(h / z)), max(1, round(w / z))
    y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    window = (slice(None), slice(y0, y0 + ch), slice(x0, x0 + cw))
    return rgb[window], depth[window], crop_resize_intrinsics(intrinsics, x0, y0, 1.0, 1.0)


class RGBDClips(Dataset):
    """Labelled clips cut from a real static RGB-D sequence (7-Scenes, HoloLens, TUM, or a bag:
    open_sequence); tracks are
    geometric (training.data.tracks). 7-Scenes depth is not registered to RGB, so its labels
    are approximate on RGB."""

    def __init__(self, sequence: RGBDSequence | str, num_frames: int, image_size, stride: int = 1,
                 num_tracks: int = 64, seed: int = 0, hop: int | None = None,
                 zoom: tuple[float, float] | None = None):
        """zoom: (low, high): each clip is a window of 1/z of its frames' width and height, z drawn per
        clip in [low, high], at a random place: the same camera with a z times longer focal length
        (zoom_window). None: the whole frames."""
        self.seq = open_sequence(sequence) if isinstance(sequence, str | Path) else sequence
        self.num_frames, self.image_size, self.stride = num_frames, tuple(image_size), stride
        self.num_tracks, self.seed, self.zoom = num_tracks, seed, zoom
        span = clip_span(num_frames, stride)
        if len(self.seq) < span:
            raise ValueError(f"sequence {self.seq.name} has {len(self.seq)} frames, a clip needs {span}")
        # hop: frames between clip starts (default: non-overlapping clips).
        self.starts = list(range(0, len(self.seq) - span + 1, hop or span))

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int) -> dict:
        idx = list(range(self.starts[index], self.starts[index] + self.num_frames * self.stride, self.stride))
        rgb = np.stack([self.seq.rgb(i) for i in idx])
        depth = np.stack([self.seq.depth(i) for i in idx])
        k = self.seq.intrinsics
        if self.zoom is not None:
            rgb, depth, k = zoom_window(rgb, depth, k, np.random.default_rng([self.seed, index, 1]), *self.zoom)
        rgb, depth, k = resize_frames(rgb, depth, k, self.image_size)
        c2w = self.seq.camera_to_world[idx]
        rng = np.random.default_rng([self.seed, index])
        t, h, w = depth.shape
        # Queries only where depth is valid, so every track has a defined 3-D point.
        cand = np.argwhere(depth > 0)
        pick = cand[rng.choice(len(cand), size=min(self.num_tracks, len(cand)), replace=False)]
        query = pick.astype(np.float32)
        xy, visible, _, known = geometric_tracks(depth, k, c2w, query)
        return _labels(rgb, depth, k, c2w, query, xy, visible, known)
