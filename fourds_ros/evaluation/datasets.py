"""Dataset readers that yield `bag.Frame`s with real stamps. No rclpy.

Formats (see ../shared/data/*/README.md):
  7scenes   frame-NNNNNN.color.jpg, .depth.png (uint16 mm, 0 and 65535 invalid, in the depth
            camera's view: registered to RGB on read), .pose.txt (4x4 camera-to-world);
            camera-intrinsics.txt (the depth camera's: the RGB K is derived, fourds_ros.rgbd); no
            stamps, 30 Hz -> stamp = index / 30 s.
  hololens  images/NNNNN.png, depth/NNNNN.png (uint16 mm, registered), poses.txt (one 4x4 row-major
            camera-to-world per line), K.txt; no stamps -> index / fps.
  tum       TUM RGB-D: rgb.txt, depth.txt ("stamp path"), groundtruth.txt ("stamp tx ty tz qx qy qz qw",
            world_from_camera), depth PNG uint16 / 5000 m; real stamps; nearest-stamp association;
            the Freiburg 1 lens distortion removed from colour and depth (fourds_ros.rgbd).
  frames    a folder of .jpg/.png images in sorted order; stamps index / fps; optional K.
  mp4       any video PyAV reads; stamps from frame pts (at the stream's rate where they do not rise).
  bag       a bag in the evaluation layout (`bag convert` or `bag import`, bag.py) read back, to cut it
            again (--stride, --reverse) or to list it in a split (suite.py).
  badja     DAVIS frames (JPEG folder or mp4) + BADJA keypoint json, one or more clips per folder
            (not a bag format: used by the tracks PCK scorer, badja.py).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..rgbd import (TUM_DEPTH_SCALE, DatasetFormatError, RGBDSequence, image_files, imread_checked, read_7scenes,
                    read_depth, read_hololens, read_rgb, tum_frames, tum_intrinsics, tum_undistortion)
from .bag import BagError, Frame

log = logging.getLogger(__name__)

FORMATS = ("7scenes", "hololens", "tum", "frames", "mp4", "bag")
NS = 1_000_000_000
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi")


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
                    gt_pose=seq.camera_to_world[i], source=str(seq.rgb_paths[i]))


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
    K = tum_intrinsics(src) if K is None else K
    # The lens distortion removed as the node would (rgbd.tum_undistortion): every method scored
    # on the bag, peers included, then sees the pinhole camera its camera_info describes.
    lens = tum_undistortion(src, K, frames[0].rgb_path) if frames else None
    for f in _select(frames, start, stride, max_frames):
        fr = Frame(stamp_ns=round(f.stamp_s * NS), K=K, encoded=f.rgb_path.read_bytes(),
                   encoding="png" if f.rgb_path.suffix.lower() == ".png" else "jpeg",
                   gt_pose=f.camera_to_world, source=str(f.rgb_path))
        depth = read_depth(f.depth_path, TUM_DEPTH_SCALE) if f.depth_path is not None else None
        if lens is not None:  # re-encoded losslessly by the bag writer
            fr.image, fr.encoded, fr.encoding, fr.K = lens.rgb(fr.rgb()), None, None, lens.intrinsics
            depth = lens.depth(depth) if depth is not None else None
        if depth is not None:
            fr.gt_depth = _nan_where_invalid(depth)
        yield fr


def iter_frames(src: Path, fps: float = 30.0, start: int = 0, stride: int = 1,
                max_frames: int | None = None, K: np.ndarray | None = None) -> Iterator[Frame]:
    images = image_files(src)
    if not images:
        raise BagError(f"{src}: no .jpg/.png images")
    for i, path in enumerate(_select(images, start, stride, max_frames)):
        fr = Frame(stamp_ns=round((start + i * max(1, stride)) * NS / fps), K=K, encoded=path.read_bytes(),
                   encoding="png" if path.suffix.lower() == ".png" else "jpeg", source=str(path))
        if K is None:
            h, w = fr.rgb().shape[:2]
            fr.K = default_K(w, h)
        yield fr


def iter_mp4(src: Path, start: int = 0, stride: int = 1, max_frames: int | None = None,
             K: np.ndarray | None = None, fps: float | None = None) -> Iterator[Frame]:
    import av

    try:
        container = av.open(str(src))
    except Exception as exc:
        raise BagError(f"{src}: cannot open video: {exc}") from exc
    with container:
        if not container.streams.video:  # an audio-only file opens but holds nothing to convert
            raise BagError(f"{src}: no video stream")
        stream = container.streams.video[0]
        # guessed_rate: some muxers write an average_rate of 1200 for a 24 Hz video
        period = 1.0 / float(fps or stream.guessed_rate or stream.average_rate or 30)
        kept, last_i, last_t = 0, None, None
        for i, frame in enumerate(container.decode(stream)):
            # Stamps from the frame's pts while they rise; a file without them (every pts 0, as
            # some encoders write) goes on at the stream's rate, so no two frames share a stamp.
            t = frame.time
            if last_t is not None and (t is None or t <= last_t):
                t = last_t + (i - last_i) * period
            elif t is None:
                t = i * period
            last_i, last_t = i, t
            if i < start or (i - start) % max(1, stride):
                continue
            if max_frames is not None and kept >= max_frames:
                break
            img = upright_rgb(frame)
            kept += 1
            yield Frame(stamp_ns=round(t * NS), K=K if K is not None else default_K(img.shape[1], img.shape[0]),
                        image=img)


def upright_rgb(frame) -> np.ndarray:
    """A decoded PyAV video frame as (H, W, 3) uint8 RGB, turned as its display matrix says it is shown
    (frame.rotation: degrees counter-clockwise, to the nearest quarter turn). Why: a phone records portrait
    video as landscape frames with a 90 degree display rotation, and to_ndarray alone gave the frames on
    their side (trained on, and converted into bags, sideways, with no warning)."""
    img = frame.to_ndarray(format="rgb24")
    quarter_turns = round((getattr(frame, "rotation", 0) or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(img, quarter_turns)) if quarter_turns else img


def played_backwards(frames: Iterable[Frame]) -> list[Frame]:
    """The same frames in reverse order, each with the stamp of the frame whose place it takes, so
    that time still runs forward at the recording's own pace (ground truth stays with its image).
    Why: every image is one that a model trained on the recording saw, and every motion one it
    did not learn: a proxy for unseen frames of a training scene, which issue #17's acceptance
    recordings include (the pose head is sure of the motion it memorised; model card, session 36).
    Holds every frame in memory."""
    frames = list(frames)
    stamps = [f.stamp_ns for f in frames]
    return [dataclasses.replace(f, stamp_ns=s) for f, s in zip(reversed(frames), stamps)]


def iter_bag(src: Path, start: int = 0, stride: int = 1, max_frames: int | None = None) -> Iterator[Frame]:
    """The frames of an evaluation-layout bag, with whatever ground truth it holds."""
    from .bag import check_scorable, read_bag

    data = check_scorable(read_bag(src))  # a bag cut again is scored as it: its K, one image a stamp
    for s in _select(data.stamps, start, stride, max_frames):
        yield Frame(stamp_ns=s, K=data.intrinsics(s), image=data.images[s], gt_depth=data.gt_depth.get(s),
                    gt_pose=data.gt_pose.get(s), gt_tracks=data.gt_tracks.get(s))


def iter_dataset(fmt: str, src: str | Path, **kw) -> Iterator[Frame]:
    src = Path(src)
    if not src.exists():
        raise BagError(f"{src}: no such file or folder")
    readers = {"7scenes": iter_7scenes, "hololens": iter_hololens, "tum": iter_tum,
               "frames": iter_frames, "mp4": iter_mp4, "bag": iter_bag}
    if fmt not in readers:
        raise BagError(f"format must be one of {FORMATS}, got {fmt!r}")
    import inspect

    accepted = inspect.signature(readers[fmt]).parameters
    given = {k: v for k, v in kw.items() if v is not None}
    ignored = [k for k in given if k not in accepted]
    if ignored:  # a K or frame rate that the format would not use is refused, not dropped unsaid
        flags = {"K": "--intrinsics", "fps": "--fps"}
        raise BagError(f"{', '.join(flags.get(k, k) for k in ignored)}: not for --format {fmt} "
                       "(it reads the recording's own)")
    return _as_bag_errors(readers[fmt](src, **given))


def _as_bag_errors(frames: Iterator[Frame]) -> Iterator[Frame]:
    """A frame that does not read (a corrupt depth PNG, a frame of another size than the lens calibration), as the
    BagError the commands say in one line: raised while iterating, past _read's checks of the whole recording, it was
    a traceback out of eval-suite (review)."""
    try:
        yield from frames
    except DatasetFormatError as exc:
        raise BagError(str(exc)) from exc


class BadjaError(BagError):
    """A BADJA folder that does not hold what its layout promises (frames, annotations, masks)."""


@dataclass(frozen=True)
class BadjaClip:
    """One BADJA clip on disk: frames (a JPEG folder or a video file), its joint annotations and,
    when the folder has them, DAVIS foreground masks (NNNNN.png, named like the frames)."""

    name: str
    frames: Path
    annotations: Path
    masks: Path | None


def _first_existing_dir(*paths: Path) -> Path | None:
    return next((p for p in paths if p.is_dir()), None)


def find_badja_clips(src: str | Path) -> list[BadjaClip]:
    """Every annotated clip in a BADJA folder, sorted by name.

    DAVIS layout: badja_joint_annotations/<clip>.json with frames in JPEGImages/480p/<clip>/*.jpg
    or in a video <clip>*.mp4 at the top level, masks (optional) in Annotations/480p/<clip>/.
    Older single-clip layout (davis_horsejump-high_badja): badja/<clip>.json, JPEGImages_480p/,
    Annotations_480p/.
    """
    src = Path(src)
    if not src.is_dir():
        raise BadjaError(f"{src}: no such BADJA folder")
    clips = []
    annotations = sorted((src / "badja_joint_annotations").glob("*.json"))
    names = {ann.stem for ann in annotations}
    for ann in annotations:
        name = ann.stem
        frames = _first_existing_dir(src / "JPEGImages" / "480p" / name)
        if frames is None:
            videos = sorted(p for p in src.glob(f"{name}*") if p.suffix.lower() in VIDEO_SUFFIXES)
            # dog.mp4 is dog's; dog-agility.mp4 is another annotated clip's (BADJA has both)
            own = [v for v in videos if v.stem == name]
            videos = own or [v for v in videos if not any(
                other != name and other.startswith(name) and v.stem.startswith(other) for other in names)]
            if len(videos) != 1:
                raise BadjaError(f"{src}: clip {name!r} needs JPEGImages/480p/{name}/ or exactly one {name}*.mp4; "
                                 f"found {[v.name for v in videos]}")
            frames = videos[0]
        clips.append(BadjaClip(name, frames, ann, _first_existing_dir(src / "Annotations" / "480p" / name)))
    clips.extend(BadjaClip(ann.stem, src / "JPEGImages_480p", ann, _first_existing_dir(src / "Annotations_480p"))
                 for ann in sorted((src / "badja").glob("*.json")))  # the older single-folder layout
    if not clips:
        raise BadjaError(f"{src}: no BADJA annotations (badja_joint_annotations/*.json or badja/*.json)")
    return sorted(clips, key=lambda c: c.name)


def _badja_frames(clip: BadjaClip) -> list[np.ndarray]:
    """All frames of a clip as (H, W, 3) uint8 RGB; frame k is DAVIS frame NNNNN = k."""
    if clip.frames.is_file():
        frames = [f.image for f in iter_mp4(clip.frames)]
    else:
        paths = sorted(clip.frames.glob("*.jpg"))
        if [int(p.stem) for p in paths if p.stem.isdigit()] != list(range(len(paths))):
            raise BadjaError(f"{clip.frames}: frames must be 00000.jpg, 00001.jpg, ... without gaps")
        frames = [read_rgb(p, BadjaError) for p in paths]  # a frame that does not decode is named
    if not frames:
        raise BadjaError(f"{clip.frames}: no frames")
    odd = next((k for k, f in enumerate(frames) if f.shape != frames[0].shape), None)
    if odd is not None:  # else LK's traceback in the scoring, after the bag's whole inference
        (h0, w0), (h, w) = frames[0].shape[:2], frames[odd].shape[:2]
        raise BadjaError(f"{clip.frames}: frame {odd:05d} is {w}x{h}, frame 00000 {w0}x{h0}: a clip's frames are one size")
    return frames


def _joint_hull_area(joints_xy: np.ndarray, visible: np.ndarray) -> float:
    """Area of the convex hull of the visible joints (0 with fewer than 3)."""
    pts = joints_xy[visible].astype(np.float32)
    return float(cv2.contourArea(cv2.convexHull(pts))) if len(pts) >= 3 else 0.0


def _mask_areas(clip: BadjaClip, annotated: np.ndarray, joints_xy: np.ndarray, visible: np.ndarray,
                shape: tuple[int, int]) -> tuple[np.ndarray, str]:
    """Foreground area (pixels) per annotated frame, the PCK threshold's scale. Without masks
    (bear.mp4), the convex hull of the frame's visible joints stands in: on the clips with masks
    here, mask area / hull area is 0.84 (horsejump-high), 0.84 (camel), 1.29 (dog) in the median,
    so sqrt(area), and the threshold, move by under 15 %. Frames with < 3 visible joints take the
    clip's median hull."""
    hulls = np.array([_joint_hull_area(j, v) for j, v in zip(joints_xy, visible)])
    fallback = float(np.median(hulls[hulls > 0])) if (hulls > 0).any() else 0.0
    hulls = np.where(hulls > 0, hulls, fallback)
    if clip.masks is None:
        return hulls, "joint hull"
    areas = []
    for f, joints, seen in zip(annotated, joints_xy, visible):
        mask = imread_checked(clip.masks / f"{int(f):05d}.png", cv2.IMREAD_UNCHANGED, BadjaError)
        if mask is None or mask.shape[:2] != shape:
            raise BadjaError(f"{clip.masks}: mask {int(f):05d}.png missing or not {shape[1]}x{shape[0]}")
        areas.append(_animal_area(mask, joints[seen]))
    areas = np.asarray(areas)
    empty = areas == 0  # a mask that misses the animal: its threshold would be 0 and every joint wrong
    if empty.any():
        log.warning("%s: %d of %d masks hold none of the animal's joints; their joint hull stands in",
                    clip.masks, int(empty.sum()), len(areas))
        return np.where(empty, hulls, areas), f"mask (joint hull on {int(empty.sum())} frames)"
    return areas, "mask"


def _animal_area(mask: np.ndarray, joints_xy: np.ndarray) -> float:
    """Pixels of the object that holds most of the visible joints, in a DAVIS mask read unchanged:
    DAVIS 2016's are 0 / 255 grey, DAVIS 2017's palette PNGs (read as colours: object 1 (128, 0, 0)
    is grey 38) may hold several objects, the animal and a rider or handler. With no visible joint on
    an object, the mask's only object, or 0 when it has none or several."""
    labels = mask.reshape(mask.shape[0], mask.shape[1], -1).astype(np.int64)
    labels = (labels << (8 * np.arange(labels.shape[2]))).sum(axis=2)  # one integer per colour
    h, w = labels.shape
    cols = np.clip(np.round(joints_xy[:, 0]).astype(int), 0, w - 1)
    rows = np.clip(np.round(joints_xy[:, 1]).astype(int), 0, h - 1)
    on = labels[rows, cols]
    on = on[on != 0]
    if not on.size:  # no visible joint on an object (all hidden, or just off a tight mask): the one object
        objects = np.unique(labels[labels != 0])
        return float((labels == objects[0]).sum()) if len(objects) == 1 else 0.0
    values, counts = np.unique(on, return_counts=True)
    return float((labels == values[np.argmax(counts)]).sum())


def load_badja(src: str | Path | BadjaClip, clip: str | None = None) -> dict:
    """One BADJA clip: a `BadjaClip`, or a folder and the clip's name (optional when the folder
    holds one clip, like davis_horsejump-high_badja).

    Returns name, frames: list of (H, W, 3) uint8 RGB (every frame of the clip), annotated: (A,)
    frame indices, joints_xy: (A, 37, 2) float (x, y) in frame pixels, visible: (A, 37) bool,
    mask_area: (A,) foreground pixels per annotated frame and area_source ("mask" | "joint hull").
    BADJA stores [row, col] at 1920x1080; rescaled by frame height / 1080.
    """
    if not isinstance(src, BadjaClip):
        clips = find_badja_clips(src)
        chosen = [c for c in clips if clip in (None, c.name)]
        if len(chosen) != 1:
            raise BadjaError(f"{src}: choose one clip of {[c.name for c in clips]}" if clip is None
                             else f"{src}: no clip {clip!r} (has {[c.name for c in clips]})")
        src = chosen[0]
    try:
        entries = json.loads(src.annotations.read_text())
        annotated = np.array([int(Path(e["image_path"]).stem) for e in entries])
        joints_rc = np.array([e["joints"] for e in entries], float)
        visibility = np.array([e["visibility"] for e in entries], float)  # a word ("no") is refused here
    except (ValueError, KeyError, TypeError) as exc:
        raise BadjaError(f"{src.annotations}: not BADJA joint annotations ({exc})") from exc
    if joints_rc.ndim != 3 or joints_rc.shape[2] != 2 or visibility.shape != joints_rc.shape[:2]:
        raise BadjaError(f"{src.annotations}: joints must be (frames, J, 2) with (frames, J) visibility")
    if not np.isin(visibility, (0.0, 1.0)).all():  # bool(0.5) and bool("no") read as visible
        raise BadjaError(f"{src.annotations}: visibility must be true/false or 1/0")
    visible = visibility == 1.0
    if not np.isfinite(joints_rc[visible]).all():  # a visible NaN joint was queried and scored as a miss, unsaid
        raise BadjaError(f"{src.annotations}: a visible joint has a coordinate that is not a finite number")
    if annotated.min() < 0 or len(set(annotated.tolist())) != len(annotated):  # -0002.jpg was scored, PCK 0
        raise BadjaError(f"{src.annotations}: annotated frame numbers must be distinct and not negative, got "
                         f"{sorted(annotated.tolist())}")
    frames = _badja_frames(src)
    if annotated.max() >= len(frames):
        raise BadjaError(f"{src.name}: annotation on frame {annotated.max()} but only {len(frames)} frames")
    order = np.argsort(annotated)
    annotated, visible = annotated[order], visible[order]
    if not visible[0].any():  # the joints are tracked from it: scoring failed after the bag's whole inference
        raise BadjaError(f"{src.annotations}: no joint is visible on the first annotated frame ({annotated[0]}), "
                         "where the tracks start")
    if not (visible[1:] & visible[0]).any():  # scored as None, and left out of the mean over clips unsaid
        raise BadjaError(f"{src.annotations}: no later annotated frame shows a joint seen on the first: nothing to score")
    joints_xy = joints_rc[order][..., ::-1] * (frames[0].shape[0] / 1080.0)
    area, area_source = _mask_areas(src, annotated, joints_xy, visible, frames[0].shape[:2])
    return {"name": src.name, "frames": frames, "annotated": annotated, "joints_xy": joints_xy,
            "visible": visible, "mask_area": area, "area_source": area_source}
