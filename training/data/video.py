"""Unlabelled video clips for MAE pre-training: folders of mp4 (decoded with PyAV) and folders
of image sequences. A clip is T frames taken every `stride` frames from a random start, with a
random crop (area fraction in `crop_scale`, aspect kept) resized to the model input.

Sampling is a pure function of the sample index and seed, so every process of a distributed
run, and every resumed run, sees exactly the same clips.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from fourds_ros.evaluation.datasets import default_K, upright_rgb
from fourds_ros.rgbd import natural_order, read_rgb

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".webm"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


class VideoSourceError(ValueError):
    """No usable video under a path, or a video that cannot be decoded."""


# Dataset folders keep labels beside the frames (7-Scenes: frame-N.depth.png next to
# frame-N.color.jpg; HoloLens and TUM: depth/; DAVIS: Annotations/ or Annotations_480p/): those are
# not RGB video. A folder is a label folder when its name's first word is one of these, a file when
# any word of its name is (words: the name split at anything but letters and digits). Why not any
# substring: a recording folder named after its segment or its labels (Waymo's
# segment-<id>_with_camera_labels) was dropped from the video without a word.
NON_RGB_WORDS = frozenset({"depth", "mask", "masks", "annotation", "annotations", "segmentation",
                           "segmentations", "label", "labels"})


def _words(name: str) -> list[str]:
    return [w for w in re.split(r"[^a-z0-9]+", name.lower()) if w]


def is_rgb_frame(path: Path, root: Path | None = None) -> bool:
    """An image that is a video frame, not a label: no NON_RGB_WORDS as a word of its name, nor as
    the first word of a folder between `root` and it (DAVIS masks sit in Annotations/480p/<clip>/,
    two levels down). Without root, only the file and its parent folder are checked."""
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return False
    try:
        folders = path.relative_to(root).parts[:-1] if root is not None else (path.parent.name,)
    except ValueError:  # not under root
        folders = (path.parent.name,)
    if any(word in NON_RGB_WORDS for word in _words(path.stem)):
        return False
    return not any((_words(folder) or [""])[0] in NON_RGB_WORDS for folder in folders)


def warn_too_short(sources: list[Path], lengths: list[int], span: int) -> None:
    """Say which videos are left out for having fewer frames than a clip spans: they were dropped unsaid."""
    short = [f"{source} ({n} frames)" for source, n in zip(sources, lengths) if n < span]
    if short:
        log.warning("%d of %d videos are left out, shorter than the %d frames a clip spans: %s",
                    len(short), len(sources), span, ", ".join(short))


def find_sources(root: str | Path | list) -> list[Path]:
    """Video files and image-sequence folders (folders holding >= 1 RGB image) under root (one
    path or a list of paths; a path may also be one video file), sorted."""
    if isinstance(root, (list, tuple)):
        return [s for r in root for s in find_sources(r)]
    root = Path(root)
    if not root.exists():
        raise VideoSourceError(f"video source {root} does not exist")
    if root.is_file() and root.suffix.lower() in VIDEO_SUFFIXES:
        return [root]
    sources = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES)
    folders = {p.parent for p in root.rglob("*") if is_rgb_frame(p, root)}
    sources += sorted(folders)
    if not sources:
        raise VideoSourceError(f"{root}: no video files ({', '.join(sorted(VIDEO_SUFFIXES))}) or image folders")
    return sources


def _mp4_frames(path: Path) -> Iterator[np.ndarray]:
    """A video's frames in order, decoded one at a time: (H, W, 3) uint8 RGB, upright."""
    import av  # only video files need PyAV; image folders do not

    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                yield upright_rgb(frame)
    except av.error.FFmpegError as e:
        raise VideoSourceError(f"{path}: cannot decode ({e})") from e


def _decode_mp4(path: Path, indices: list[int]) -> list[np.ndarray]:
    wanted = set(indices)
    frames = {}
    for i, frame in enumerate(_mp4_frames(path)):
        if i in wanted:
            frames[i] = frame
        if i >= max(indices):
            break
    if len(frames) < len(wanted):
        raise VideoSourceError(f"{path}: has fewer than {max(indices) + 1} frames")
    return [frames[i] for i in indices]


def count_frames(source: Path) -> int:
    """Frames a source really yields. For a video that means decoding it: the container's frame
    count and even its packet count can be more than the decoder gives (cotracker_pillow.mp4:
    149 claimed, 147 decoded; cotracker_teddy.mp4: 142 and 141), and a clip sampled past the
    real end would fail at training time."""
    if source.is_dir():
        return sum(1 for p in source.iterdir() if is_rgb_frame(p))
    import av

    try:
        with av.open(str(source)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # counting only: frames are decoded but never converted
            return sum(1 for _ in container.decode(stream))
    except (av.error.FFmpegError, IndexError) as e:
        raise VideoSourceError(f"{source}: cannot open video ({e})") from e


def _frame_files(folder: Path) -> list[Path]:
    # in frame order (2.png before 10.png: ffmpeg's %d), as eval's image-folder reader takes them
    return sorted((p for p in folder.iterdir() if is_rgb_frame(p)), key=natural_order)


def iter_frames(source: Path) -> Iterator[np.ndarray]:
    """Every frame of a source in order, one at a time: (H, W, 3) uint8 RGB. Why not read_frames over
    them all: a whole video held at once is about 11 GB a minute of 1080p."""
    if source.is_dir():
        yield from (read_rgb(path, VideoSourceError) for path in _frame_files(source))
    else:
        yield from _mp4_frames(source)


def read_frames(source: Path, indices: list[int]) -> np.ndarray:
    """(len(indices), H, W, 3) uint8 RGB frames."""
    if source.is_dir():
        files = _frame_files(source)
        frames = [read_rgb(files[i], VideoSourceError) for i in indices]
    else:
        frames = _decode_mp4(source, indices)
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        raise VideoSourceError(f"{source}: frames of different sizes {sorted(shapes)}")
    return np.stack(frames)


class SquareClips(Dataset):
    """Clips of T frames (every `stride` frames, a clip starting every `hop` frames) from every
    video under `roots` (mp4 files or frame folders), centre-cropped square. square_frames(index)
    -> (T, S, S, 3) uint8 at the source's resolution; items: video (T, H, W, 3) float in [0, 1] at
    `image_size` and intrinsics (3, 3) of a 60-degree pinhole (unlabelled video has no
    calibration). For the heads' training on unlabelled video (pseudo tracks, photometric)."""

    def __init__(self, roots, num_frames: int, image_size, stride: int = 1, hop: int = 4):
        self.sources = find_sources(roots)
        self.num_frames, self.stride = num_frames, stride
        self.image_size = tuple(image_size)
        if self.image_size[0] != self.image_size[1]:
            raise ValueError(f"{type(self).__name__} needs a square model input, got {self.image_size}")
        span = (num_frames - 1) * stride + 1
        lengths = [count_frames(s) for s in self.sources]
        warn_too_short(self.sources, lengths, span)
        self.clips = [(s, start) for s, n in zip(self.sources, lengths) for start in range(0, n - span + 1, hop)]
        if not self.clips:
            raise VideoSourceError(f"{roots}: no video has the {span} frames a clip needs")

    def __len__(self) -> int:
        return len(self.clips)

    @staticmethod
    def crop_box(h: int, w: int) -> tuple[int, int, int]:
        """(y0, x0, side) of the centred square crop of an (h, w) frame."""
        side = min(h, w)
        return (h - side) // 2, (w - side) // 2, side

    def square_frames(self, index: int) -> np.ndarray:
        source, start = self.clips[index]
        frames = read_frames(Path(source), list(range(start, start + self.num_frames * self.stride, self.stride)))
        y0, x0, side = self.crop_box(*frames.shape[1:3])
        return frames[:, y0:y0 + side, x0:x0 + side]

    def resized(self, frames: np.ndarray, size: int) -> np.ndarray:
        return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])

    def intrinsics(self) -> torch.Tensor:
        """(3, 3) the model image's K: no calibration, a 60-degree pinhole."""
        size = self.image_size[0]
        return torch.from_numpy(default_K(size, size).astype(np.float32))

    def __getitem__(self, index: int) -> dict:
        video = self.resized(self.square_frames(index), self.image_size[0])
        return {"video": torch.from_numpy(video.astype(np.float32) / 255), "intrinsics": self.intrinsics()}


class VideoClips:
    """clip(index) -> (T, H, W, 3) float32 in [0, 1] at `image_size`."""

    def __init__(self, root, num_frames: int, image_size: tuple[int, int], stride: int = 2,
                 crop_scale: tuple[float, float] = (0.5, 1.0), seed: int = 0):
        self.sources = find_sources(root)
        self.lengths = [count_frames(s) for s in self.sources]
        span = (num_frames - 1) * stride + 1
        self.usable = [i for i, n in enumerate(self.lengths) if n >= span]
        warn_too_short(self.sources, self.lengths, span)
        if not self.usable:
            raise VideoSourceError(f"{root}: no video has the {span} frames a clip needs")
        self.num_frames, self.image_size, self.stride = num_frames, tuple(image_size), stride
        self.crop_scale, self.seed = crop_scale, seed

    def __len__(self) -> int:
        return len(self.usable)

    def clip(self, index: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, index])
        source = self.usable[index % len(self.usable)]
        span = (self.num_frames - 1) * self.stride + 1
        start = int(rng.integers(0, self.lengths[source] - span + 1))
        frames = read_frames(self.sources[source], list(range(start, start + span, self.stride)))
        th, tw = self.image_size
        h, w = frames.shape[1:3]
        # Random crop with the output aspect and a random area fraction, then resize.
        area = rng.uniform(*self.crop_scale)
        scale = min(h / th, w / tw) * np.sqrt(area)
        ch, cw = max(1, int(th * scale)), max(1, int(tw * scale))
        y0 = int(rng.integers(0, h - ch + 1))
        x0 = int(rng.integers(0, w - cw + 1))
        out = np.stack([cv2.resize(f[y0:y0 + ch, x0:x0 + cw], (tw, th), interpolation=cv2.INTER_AREA) for f in frames])
        return out.astype(np.float32) / 255.0
