"""Dataset readers that yield `bag.Frame`s with real stamps. No rclpy.

Formats (see ../shared/data/*/README.md):
  7scenes   frame-NNNNNN.color.jpg, .depth.png (uint16 mm, 0 and 65535 invalid, depth camera NOT
            registered to RGB), .pose.txt (4x4 camera-to-world); camera-intrinsics.txt; no stamps,
            30 Hz -> stamp = index / 30 s.
  hololens  images/NNNNN.png, depth/NNNNN.png (uint16 mm, registered), poses.txt (one 4x4 row-major
            camera-to-world per line), K.txt; no stamps -> index / fps.
  tum       TUM RGB-D: rgb.txt, depth.txt ("stamp path"), groundtruth.txt ("stamp tx ty tz qx qy qz qw",
            world_from_camera), depth PNG uint16 / 5000 m; real stamps; nearest-stamp association.
  frames    a folder of .jpg/.png images in sorted order; stamps index / fps; optional K.
  mp4       any video PyAV reads; stamps from frame pts.
  badja     DAVIS frames + BADJA keypoint json (not a bag format: used by the tracks PCK scorer).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from ..rgbd import TUM_DEPTH_SCALE, TUM_FR1_INTRINSICS, DatasetFormatError, RGBDSequence, read_7scenes, read_depth, read_hololens, tum_frames
from .bag import BagError, Frame

FORMATS = ("7scenes", "hololens", "tum", "frames", "mp4")
NS = 1_000_000_000


def _select(items: list, start: int, stride: int, max_frames: int | None) -> list:
    items = items[start::max(1, stride)]
    return items if max_frames is None else items[:max_frames]


def _nan_where_invalid(depth: np.ndarray) -> np.ndarray:
    """rgbd depth (0 = invalid) -> the bag's /gt/depth convention (NaN = invalid), float32."""
    return np.where(depth > 0, depth, np.nan).astype(np.float32)


def default_K(width: int, height: int, hfov_deg: float = 60.0) -> np.ndarray:
    """Pinhole guess when a source has no calibration (60 deg horizontal field of view)."""
    f = 0.5 * width / np.tan(np.radians(hfov_deg) / 2)
    return np.array([[f, 0, (width - 1) / 2], [0, f, (height - 1) / 2], [0, 0, 1]])


def _iter_sequence(seq: RGBDSequence, stamps_s: list[float], encoding: str, start: int, stride: int,
                   max_frames: int | None) -> Iterator[Frame]:
    """Frames of a `fourds_ros.rgbd` sequence with the original image bytes (for compressed bags)."""
    for i in _select(list(range(len(seq))), start, stride, max_frames):
        depth = seq.depth(i)
        yield Frame(stamp_ns=round(stamps_s[i] * NS), K=seq.intrinsics, encoded=seq.rgb_paths[i].read_bytes(),
                    encoding="png" if seq.rgb_paths[i].suffix.lower() == ".png" else encoding,
                    gt_depth=_nan_where_invalid(depth),
                    gt_pose=seq.camera_to_world[i])


def _read(reader, src: Path) -> RGBDSequence:
    try:
        return reader(src)
    except DatasetFormatError as exc:
        raise BagError(str(exc)) from exc


def iter_7scenes(src: Path, fps: float = 30.0, start: int = 0, stride: int = 1,
                 max_frames: int | None = None) -> Iterator[Frame]:
    seq = _read(read_7scenes, src)
    # frame-NNNNNN: the recording index, so a cut-out keeps its place in time
    stamps = [int(p.name.split("-")[1].split(".")[0]) / fps for p in seq.rgb_paths]
    return _iter_sequence(seq, stamps, "jpeg", start, stride, max_frames)


def iter_hololens(src: Path, fps: float = 30.0, start: int = 0, stride: int = 1,
                  max_frames: int | None = None) -> Iterator[Frame]:
    seq = _read(read_hololens, src)
    return _iter_sequence(seq, [i / fps for i in range(len(seq))], "jpeg", start, stride, max_frames)


def iter_tum(src: Path, start: int = 0, stride: int = 1, max_frames: int | None = None,
             max_dt: float = 0.02, K: np.ndarray | None = None) -> Iterator[Frame]:
    """Every RGB image, with ground-truth depth and pose where the sequence has them in time."""
    try:
        frames = tum_frames(src, max_dt)
    except DatasetFormatError as exc:
        raise BagError(str(exc)) from exc
    K = TUM_FR1_INTRINSICS if K is None else K  # the dataset documents per-sequence values
    for f in _select(frames, start, stride, max_frames):
        fr = Frame(stamp_ns=round(f.stamp_s * NS), K=K, encoded=f.rgb_path.read_bytes(),
                   encoding="png" if f.rgb_path.suffix.lower() == ".png" else "jpeg",
                   gt_pose=f.camera_to_world)
        if f.depth_path is not None:
            fr.gt_depth = _nan_where_invalid(read_depth(f.depth_path, TUM_DEPTH_SCALE))
        yield fr


def iter_frames(src: Path, fps: float = 30.0, start: int = 0, stride: int = 1,
                max_frames: int | None = None, K: np.ndarray | None = None) -> Iterator[Frame]:
    images = sorted(p for p in src.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not images:
        raise BagError(f"{src}: no .jpg/.png images")
    for i, path in enumerate(_select(images, start, stride, max_frames)):
        data = path.read_bytes()
        fr = Frame(stamp_ns=round((start + i * max(1, stride)) * NS / fps), K=K, encoded=data,
                   encoding="png" if path.suffix.lower() == ".png" else "jpeg")
        if K is None:
            h, w = fr.rgb().shape[:2]
            fr.K = default_K(w, h)
        yield fr


def iter_mp4(src: Path, start: int = 0, stride: int = 1, max_frames: int | None = None,
             K: np.ndarray | None = None) -> Iterator[Frame]:
    import av

    try:
        container = av.open(str(src))
    except Exception as exc:
        raise BagError(f"{src}: cannot open video: {exc}") from exc
    with container:
        stream = container.streams.video[0]
        kept = 0
        for i, frame in enumerate(container.decode(stream)):
            if i < start or (i - start) % max(1, stride):
                continue
            if max_frames is not None and kept >= max_frames:
                break
            img = frame.to_ndarray(format="rgb24")
            t = frame.time if frame.time is not None else i / float(stream.average_rate or 30)
            kept += 1
            yield Frame(stamp_ns=round(t * NS), K=K if K is not None else default_K(img.shape[1], img.shape[0]),
                        image=img)


def iter_dataset(fmt: str, src: str | Path, **kw) -> Iterator[Frame]:
    src = Path(src)
    if not src.exists():
        raise BagError(f"{src}: no such file or folder")
    readers = {"7scenes": iter_7scenes, "hololens": iter_hololens, "tum": iter_tum,
               "frames": iter_frames, "mp4": iter_mp4}
    if fmt not in readers:
        raise BagError(f"format must be one of {FORMATS}, got {fmt!r}")
    import inspect

    accepted = inspect.signature(readers[fmt]).parameters
    return readers[fmt](src, **{k: v for k, v in kw.items() if k in accepted and v is not None})


def load_badja(src: str | Path) -> dict:
    """DAVIS horsejump-high + BADJA (../shared/data/davis_horsejump-high_badja).

    Returns frames: list of (H, W, 3) uint8 RGB (all 50), masks: (F, H, W) bool,
    annotated: (A,) frame indices, joints_xy: (A, 37, 2) float (x, y) in frame pixels,
    visible: (A, 37) bool. BADJA stores [row, col] at 1920x1080; rescaled to the frames here.
    """
    src = Path(src)
    frame_paths = sorted((src / "JPEGImages_480p").glob("*.jpg"))
    entries = json.loads((src / "badja" / "horsejump-high.json").read_text())
    frames = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in frame_paths]
    masks = np.stack([cv2.imread(str(src / "Annotations_480p" / (p.stem + ".png")), cv2.IMREAD_GRAYSCALE) > 127
                      for p in frame_paths])
    scale = frames[0].shape[0] / 1080.0
    annotated, joints, visible = [], [], []
    for e in entries:
        annotated.append(int(Path(e["image_path"]).stem))
        rc = np.asarray(e["joints"], float) * scale
        joints.append(rc[:, ::-1])
        visible.append(np.asarray(e["visibility"], bool))
    order = np.argsort(annotated)
    return {"frames": frames, "masks": masks, "annotated": np.asarray(annotated)[order],
            "joints_xy": np.stack(joints)[order], "visible": np.stack(visible)[order]}
