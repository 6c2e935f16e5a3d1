"""A team's own recording -> the evaluation layout of bag.py, so that `fourds-ros eval` scores the
model on the team's camera and rooms. No rclpy.

    fourds-ros bag import SRC OUT --image-topic /camera/color/image_raw \
        --depth-topic /camera/aligned_depth_to_color/image_raw --world-frame odom

SRC: any bag rosbags reads (a rosbag2 directory or .mcap, or a ROS 1 .bag). What it takes:
  images       --image-topic: sensor_msgs/Image (every encoding the node reads) or CompressedImage.
  intrinsics   --camera-info-topic (default: the image topic's sibling `camera_info`): K and the
               lens distortion, which is removed from colour and depth exactly as the node removes
               it (rgbd.LensUndistortion); `--rectified` for an image_rect topic: K = P, no distortion.
               One calibration per recording (a camera_info that changes is refused). A recording
               without camera_info takes `--intrinsics FX FY CX CY` (a pinhole camera).
  depth        --depth-topic (optional): an RGB-D camera's depth registered to the colour image
               (same size: e.g. RealSense `aligned_depth_to_color`), 16UC1 millimetres or 32FC1
               metres, 0 / NaN invalid, paired with the image nearest in stamp within --max-dt; raw,
               or as compressed_depth_image_transport records it (`.../compressedDepth`: a 12-byte
               header, then a PNG of the millimetres, or of 32FC1's quantised inverse depth).
  pose         --world-frame (optional): each image's camera pose, world_frame -> the image's
               header.frame_id (its optical frame, REP-103/104), from the recording's /tf and
               /tf_static (a motion-capture rig, or a robot's odometry with its URDF's static mount)
               and any --pose-topic (PoseStamped / PoseWithCovarianceStamped / Odometry /
               TransformStamped, added as transforms: TOPIC or TOPIC:CHILD_FRAME, since a
               PoseStamped names no child frame). Looked up as tf2 does (transform_tree.py). Read only
               with --world-frame; a frame given two parents (a doubled base_footprint) is refused only
               on the world -> camera chain, elsewhere noted and its second parent's samples ignored.
Stamps are the messages' header stamps (the sensor's time, not the recorder's). An image whose
depth or pose is missing keeps the rest: the scorer counts only what has ground truth; ImportReport
says how many frames got each (the CLI prints it, and warns when none did), and which transforms were
skipped for an invalid rotation (one bad sample, e.g. a motion-capture body that lost tracking, is
dropped as tf2 drops it, not the whole import). Depth whose frame_id is not the images' is refused
(a depth camera's own frame: not registered to the colour image) unless --depth-registered says it is.
"""

from __future__ import annotations

import bisect
import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..perception.calibration import DistortionError
from ..perception.camera import camera_info_window, sensor_extent, sensor_to_image, window_problem
from ..perception.camera_info_sync import sibling_camera_info_topic
from ..perception.image import ImageDecodeError, decode_depth
from ..rgbd import LensUndistortion
from .bag import (BagError, Frame, bag_messages, camera_image_from_msg, open_reader, pose_from_msg, stamp_of,
                  topic_types, write_bag)
from .transform_tree import ParentConflict, TransformError, TransformTree

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
POSE_TYPES = ("geometry_msgs/msg/PoseStamped", "geometry_msgs/msg/PoseWithCovarianceStamped", "nav_msgs/msg/Odometry",
              "geometry_msgs/msg/TransformStamped")
TF_TOPICS = ("/tf", "/tf_static")


@dataclass(frozen=True)
class ImportSpec:
    image_topic: str
    camera_info_topic: str | None = None  # None: the image topic's sibling camera_info
    depth_topic: str | None = None
    world_frame: str | None = None
    pose_topics: tuple[str, ...] = ()  # TOPIC or TOPIC:CHILD_FRAME
    max_dt_s: float = 0.02
    rectified: bool = False
    intrinsics: tuple[float, float, float, float] | None = None  # FX FY CX CY: instead of camera_info
    start: int = 0
    stride: int = 1
    max_frames: int | None = None
    depth_registered: bool = False  # the depth is registered to the colour image though its frame_id differs
    sixteen_bit_max: int = 65535  # a 16-bit image's largest value (the node's image_16bit_max: 4095 for 12 bits)

    @property
    def info_topic(self) -> str:
        return self.camera_info_topic or sibling_camera_info_topic(self.image_topic)


@dataclass
class ImportedCamera:
    """The camera the frames are scored with: K of the (undistorted) images and the undistortion, if any."""

    K: np.ndarray
    size: tuple[int, int] | None  # (width, height); None: the images' own (--intrinsics)
    undistortion: LensUndistortion | None


@dataclass
class ImportReport:
    """What an import paired: frames written, how many got depth and a pose, the transforms
    skipped for an invalid rotation ((topic, parent, child) -> samples), and those ignored for giving
    a frame a second parent ((topic, child, parent kept, parent ignored) -> samples)."""

    frames: int = 0
    repeated_stamps: int = 0  # images whose header stamp an earlier image had: one frame a stamp, the first kept
    with_depth: int = 0
    with_pose: int = 0
    skipped_transforms: Counter = field(default_factory=Counter)
    parent_conflicts: Counter = field(default_factory=Counter)
    ignored_transforms: Counter = field(default_factory=Counter)  # (topic, parent, child) that tf2 ignores too
    nearest_depth_s: float | None = None  # set when no image had a depth within max_dt: the closest one

    def warnings(self, spec: ImportSpec) -> list[str]:
        out = []
        if spec.depth_topic and self.frames and not self.with_depth:
            near = "" if self.nearest_depth_s is None else f" (the nearest is {self.nearest_depth_s:.3g} s from its image)"
            out.append(f"no frame got a depth image from {spec.depth_topic} within --max-dt {spec.max_dt_s} s{near}: "
                       "are the depth and colour stamped by the same clock?")
        if spec.world_frame and self.frames and not self.with_pose:
            out.append(f"no frame got a pose {spec.world_frame} -> its frame_id within --max-dt {spec.max_dt_s} s: "
                       "are the pose source and the camera stamped by the same (synchronised) clock?")
        if self.repeated_stamps:
            out.append(f"{spec.image_topic}: {self.repeated_stamps} image(s) repeated an earlier image's header stamp and "
                       "were left out (one frame a stamp, the first kept): is the camera stamping each frame?")
        for (topic, parent, child), n in sorted(self.skipped_transforms.items()):
            out.append(f"{topic}: {n} transform(s) {parent} -> {child} with an invalid rotation skipped")
        for (topic, parent, child), n in sorted(self.ignored_transforms.items()):
            out.append(f"{topic}: {n} transform(s) {parent!r} -> {child!r} ignored, as tf2 ignores them (an empty frame "
                       "id, or a frame to itself)")
        for (topic, child, kept, other), n in sorted(self.parent_conflicts.items()):
            out.append(f"{topic}: {n} transform(s) {other} -> {child} ignored: {child} already has the parent {kept} "
                       f"(not on the {spec.world_frame} -> camera chain, so no pose depends on it)")
        return out


def import_bag(src: str | Path, out: str | Path, spec: ImportSpec, storage: str = "mcap",
               report: ImportReport | None = None) -> int:
    """SRC -> a new evaluation bag at OUT (bag.write_bag). Returns the frame count; `report`, when
    given, is filled."""
    return write_bag(import_frames(src, spec, report), out, storage=storage)


def import_frames(src: str | Path, spec: ImportSpec, report: ImportReport | None = None) -> Iterator[Frame]:
    """The frames of SRC in stamp order, each with K, and its depth and pose where SRC has them."""
    report = ImportReport() if report is None else report
    if spec.pose_topics and not spec.world_frame:  # poses are world_frame -> the image's frame: read only then
        raise BagError("--pose-topic needs --world-frame (the frame its poses are in); without it the poses were "
                       "left out without a word")
    reader = open_reader(src)
    try:
        topics = topic_types(reader)
        _check_topics(src, spec, topics)
        calibration, tree, image_stamps, depth_stamps = _first_pass(src, reader, spec, topics, report)
    finally:
        reader.close()
    # One frame a stamp, chosen among distinct stamps, so that --max-frames N gives N frames where stamps repeat.
    distinct = sorted(set(image_stamps))
    report.repeated_stamps = len(image_stamps) - len(distinct)
    chosen = _select(distinct, spec)
    depth_for = {s: _nearest(depth_stamps, s, spec.max_dt_s) for s in chosen}
    if depth_stamps and chosen and not any(d is not None for d in depth_for.values()):
        report.nearest_depth_s = min(abs(_nearest(depth_stamps, s, float("inf")) - s) for s in chosen) / 1e9
    poses = _PoseSource(tree, spec.world_frame, _pose_topic_hint(spec, topics), report.parent_conflicts)
    for frame in _second_pass(src, spec, calibration, poses, set(chosen), depth_for):
        report.frames += 1
        report.with_depth += frame.gt_depth is not None
        report.with_pose += frame.gt_pose is not None
        yield frame


def _check_topics(src, spec: ImportSpec, topics: dict[str, str]) -> None:
    def need(topic: str, types: tuple[str, ...], what: str) -> None:
        if topic not in topics:
            raise BagError(f"{src}: no {what} topic {topic!r}; topics: {sorted(topics) or 'none'}")
        if topics[topic] not in types:
            several = " (recorded with several types: one a topic is read)" if " | " in topics[topic] else ""
            raise BagError(f"{src}: {topic} is {topics[topic]}, not {' or '.join(types)}{several}")

    need(spec.image_topic, IMAGE_TYPES, "image")
    if spec.intrinsics is None:
        need(spec.info_topic, ("sensor_msgs/msg/CameraInfo",), "camera_info (--camera-info-topic, or --intrinsics)")
    if spec.depth_topic:
        need(spec.depth_topic, IMAGE_TYPES, "depth")
    for entry in spec.pose_topics:
        need(entry.split(":", 1)[0], POSE_TYPES, "pose")


def _pose_topic_hint(spec: ImportSpec, topics: dict[str, str]) -> str:
    """What to add where the world frame is not joined to the camera's: the recording's pose topics
    not given as --pose-topic (a robot's odometry on nav_msgs/Odometry is not on /tf unless its driver
    broadcasts it, and the error named only the frames)."""
    given = {e.split(":", 1)[0] for e in spec.pose_topics}
    unused = sorted(t for t, kind in topics.items() if kind in POSE_TYPES and t not in given)
    if not unused:
        return ""
    named = ", ".join(f"{t} ({topics[t].rsplit('/', 1)[-1]})" for t in unused)
    first = unused[0]
    if topics[first].endswith(("/PoseStamped", "/PoseWithCovarianceStamped")):  # no child_frame_id in the message
        return (f"; the recording has {named}: pass --pose-topic {first}:CHILD_FRAME, the frame it poses, joined to "
                "the camera's by /tf or /tf_static")
    return (f"; the recording has {named}: pass --pose-topic {first} (its child frame joined to the camera's by /tf "
            "or /tf_static)")


def _first_pass(src, reader, spec: ImportSpec, topics: dict[str, str], report: ImportReport):
    """The calibration, the transforms, and the stamps of every image and depth image."""
    pose_children = {e.split(":", 1)[0]: (e.split(":", 1)[1] if ":" in e else None) for e in spec.pose_topics}
    # The transforms only when a pose is asked for: a recording's tree (a doubled frame, a bad sample)
    # stopped imports of images and depth alone.
    pose_sources = {*pose_children, *TF_TOPICS} if spec.world_frame else set()
    wanted = {spec.image_topic, spec.depth_topic, *pose_sources} & set(topics)
    if spec.intrinsics is None:
        wanted.add(spec.info_topic)
    tree, calibration, image_stamps, depth_stamps = TransformTree(int(spec.max_dt_s * 1e9)), _pinhole(spec), [], []
    frame_ids: dict[str, str] = {}  # topic -> the first message's frame_id
    for conn, msg in bag_messages(src, reader, [c for c in reader.connections if c.topic in wanted]):
        if conn.topic == spec.image_topic:
            image_stamps.append(stamp_of(msg.header))
            frame_ids.setdefault(conn.topic, msg.header.frame_id)
        elif conn.topic == spec.depth_topic:
            depth_stamps.append(stamp_of(msg.header))
            frame_ids.setdefault(conn.topic, msg.header.frame_id)
        elif conn.topic == spec.info_topic:
            calibration = _calibration(msg, spec.rectified, calibration)
        elif conn.topic in TF_TOPICS:
            for tf in msg.transforms:
                _add_transform(tree, tf, conn.topic, report, static=conn.topic == "/tf_static")
        else:
            _add_pose(tree, conn.msgtype, msg, pose_children[conn.topic], conn.topic, report)
    if calibration is None:
        raise BagError(f"{spec.info_topic} has no messages: intrinsics are needed to score")
    _check_depth_frame(spec, frame_ids)
    return calibration, tree, sorted(image_stamps), sorted(depth_stamps)


def _check_depth_frame(spec: ImportSpec, frame_ids: dict[str, str]) -> None:
    """Depth registered to the colour image carries the colour camera's frame_id (RealSense
    aligned_depth_to_color, Azure Kinect depth_to_rgb, openni depth_registered); a depth camera's own
    frame means it is not, and scoring it against the colour image would be wrong with no error."""
    image, depth = (frame_ids.get(t, "").lstrip("/") for t in (spec.image_topic, spec.depth_topic))
    if spec.depth_topic and image and depth and image != depth and not spec.depth_registered:
        raise BagError(f"the depth ({spec.depth_topic}) is in frame {depth!r}, the images in {image!r}: record depth "
                       "registered to the colour camera (e.g. RealSense aligned_depth_to_color), or pass "
                       "--depth-registered if it is registered under another frame name")


def _pinhole(spec: ImportSpec) -> ImportedCamera | None:
    """--intrinsics: a pinhole K, the image size taken from the images themselves."""
    if spec.intrinsics is None:
        return None
    return ImportedCamera(pinhole_k(spec.intrinsics), None, None)


def pinhole_k(intrinsics) -> np.ndarray:
    """--intrinsics FX FY CX CY -> the 3x3 K; BagError unless the focal lengths are positive and all four finite
    (`bag convert` wrote a K of zeros or NaN, which `eval --offline` then met as a singular matrix)."""
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    if not (fx > 0 and fy > 0 and np.isfinite([fx, fy, cx, cy]).all()):
        raise BagError(f"--intrinsics needs positive, finite focal lengths and a finite centre, got {list(intrinsics)}")
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float64)


def _calibration(msg, rectified: bool, before: ImportedCamera | None) -> ImportedCamera:
    """The camera_info's K (undistorted view, or P for a rectified topic), brought from the full
    sensor to the image by its roi and binning as the node brings it (REP-104); one per recording."""
    width, height = int(msg.width), int(msg.height)
    d = np.asarray(_field(msg, "d"), np.float64)
    k = (np.asarray(_field(msg, "p"), np.float64).reshape(3, 4)[:, :3] if rectified else
         np.asarray(_field(msg, "k"), np.float64).reshape(3, 3))
    if problem := window_problem(msg):  # a 0-sized or shifted calibration otherwise, as the node refuses it
        raise BagError(f"camera_info's roi or binning is no window of its sensor: {problem}")
    window = camera_info_window(msg)
    if window is not None:
        offset, binning, (width, height) = window
        k = sensor_to_image(k, offset, binning)
    if not (np.isfinite(k).all() and k[0, 0] > 0 and k[1, 1] > 0):  # before the comparison: NaN read as "changed"
        raise BagError(f"camera_info has no calibration (K {k.ravel().tolist()}): a labelled recording needs one")
    if before is not None:
        if before.size != (width, height) or not np.allclose(before.K if before.undistortion is None else
                                                             before.undistortion.raw_k, k):
            raise BagError(f"camera_info changed during the recording (K {k.ravel().tolist()}, {width}x{height}): "
                           "frames are scored with one calibration; split the recording where it changes")
        return before
    if rectified or not np.any(d):
        return ImportedCamera(k, (width, height), None)
    try:
        undistortion = LensUndistortion(k, d, width, height, model=msg.distortion_model or "plumb_bob",
                                        sensor_extent=sensor_extent(msg))
    except DistortionError as exc:
        raise BagError(f"camera_info's lens cannot be undone ({exc.kind}): {exc}") from exc
    return ImportedCamera(undistortion.intrinsics, (width, height), undistortion)


def _field(msg, name: str):
    """A CameraInfo field: ROS 2 names them d, k, p; ROS 1 (a .bag) D, K, P."""
    return getattr(msg, name) if hasattr(msg, name) else getattr(msg, name.upper())


def _add_transform(tree: TransformTree, tf, topic: str, report: ImportReport, static: bool = False) -> None:
    _add(tree, topic, report, tf.header.frame_id, tf.child_frame_id, stamp_of(tf.header), tf.transform.translation,
         tf.transform.rotation, static)


def _add_pose(tree: TransformTree, msgtype: str, msg, child: str | None, topic: str, report: ImportReport) -> None:
    """A pose message as the transform header.frame_id -> child."""
    if msgtype.endswith("TransformStamped"):
        _add_transform(tree, msg, topic, report)
        return
    child = child or getattr(msg, "child_frame_id", "")
    if not child:
        raise BagError(f"{topic} ({msgtype}) names no child frame: give it as --pose-topic {topic}:CHILD_FRAME")
    pose = msg.pose.pose if msgtype.endswith(("Odometry", "PoseWithCovarianceStamped")) else msg.pose
    _add(tree, topic, report, msg.header.frame_id, child, stamp_of(msg.header), pose.position, pose.orientation)


def _add(tree: TransformTree, topic: str, report: ImportReport, parent: str, child: str, stamp: int, position,
         orientation, static: bool = False) -> None:
    if not parent.lstrip("/") or not child.lstrip("/") or parent.lstrip("/") == child.lstrip("/"):
        report.ignored_transforms[(topic, parent, child)] += 1  # tf2: TF_NO_FRAME_ID / TF_SELF_TRANSFORM, ignored
        return
    try:
        transform = pose_from_msg(position, orientation)
    except BagError:  # one bad sample (an all-zero or NaN quaternion) is skipped and counted, as tf2 drops it
        report.skipped_transforms[(topic, parent, child)] += 1
        return
    try:
        tree.add(parent, child, stamp, transform, static=static, source=topic)
    except ParentConflict as exc:  # refused by _PoseSource only where the camera's pose goes through it
        report.parent_conflicts[(topic, exc.child, exc.kept, exc.other)] += 1
    except TransformError as exc:
        raise BagError(f"{topic}: {exc}") from exc


def _select(stamps: list[int], spec: ImportSpec) -> list[int]:
    chosen = stamps[spec.start::max(1, spec.stride)]
    return chosen if spec.max_frames is None else chosen[:spec.max_frames]


def _nearest(stamps: list[int], stamp: int, max_dt_s: float) -> int | None:
    i = bisect.bisect_left(stamps, stamp)
    near = [s for s in stamps[max(0, i - 1):i + 1] if abs(s - stamp) <= max_dt_s * 1e9]
    return min(near, key=lambda s: abs(s - stamp)) if near else None


@dataclass
class _PoseSource:
    """Each image's camera pose, world -> its frame_id, from the recording's transforms (world None:
    no pose). hint: added to a camera pose the transforms cannot give (_pose_topic_hint); conflicts:
    ImportReport.parent_conflicts, the frames whose second parent was ignored."""

    tree: TransformTree
    world: str | None
    hint: str = ""
    conflicts: Counter = field(default_factory=Counter)

    def pose(self, frame_id: str, stamp: int) -> np.ndarray | None:
        if not self.world:
            return None
        try:
            on_chain = self.tree.chain_frames(self.world, frame_id)
            doubled = sorted(key for key in self.conflicts if key[1] in on_chain)
            if doubled:  # which parent holds would depend on the samples' order: no pose to score against
                topic, child, kept, other = doubled[0]
                raise BagError(f"the camera's pose ({self.world} -> {frame_id!r}) goes through frame {child!r}, "
                               f"which has two parents, {kept!r} and {other!r} ({topic}): give each frame one parent")
            doubled = sorted(f for f in on_chain if len(self.tree.sources(f)) > 1)
            if doubled:  # two pose sources of one frame, interleaved: neither's poses
                raise BagError(f"the camera's pose ({self.world} -> {frame_id!r}) goes through frame {doubled[0]!r}, "
                               f"whose pose comes from {' and '.join(sorted(self.tree.sources(doubled[0])))}: keep one "
                               "(leave out the --pose-topic, or pass the other)")
            return self.tree.lookup(self.world, frame_id, stamp)
        except TransformError as exc:
            raise BagError(f"the camera's pose ({self.world} -> {frame_id!r}): {exc}{self.hint}") from exc


def _second_pass(src, spec: ImportSpec, calibration: ImportedCamera, poses: _PoseSource, chosen: set[int],
                 depth_for: dict[int, int | None]) -> Iterator[Frame]:
    """Images and their depth, read again in the recording's order; a frame is yielded once its
    depth (if it has one) has been read, so that only a few frames are held at a time."""
    uses = Counter(d for d in depth_for.values() if d is not None)  # a depth image may serve several frames
    depth: dict[int, np.ndarray] = {}
    waiting: list[Frame] = []
    reader = open_reader(src)
    try:
        conns = [c for c in reader.connections if c.topic in (spec.image_topic, spec.depth_topic)]
        for conn, msg in bag_messages(src, reader, conns):
            stamp = stamp_of(msg.header)
            if conn.topic == spec.image_topic and stamp in chosen:
                chosen.discard(stamp)  # a stamp sent twice is one frame
                waiting.append(_frame(msg, conn.msgtype, stamp, calibration, poses, spec.sixteen_bit_max))
            elif conn.topic == spec.depth_topic and stamp in uses and stamp not in depth:
                depth[stamp] = _depth(msg, calibration)
            waiting = yield from _release(waiting, depth, depth_for, uses)
    finally:
        reader.close()
    yield from sorted(waiting, key=lambda f: f.stamp_ns)  # their depth never came (a truncated bag)


def _release(waiting: list[Frame], depth: dict[int, np.ndarray], depth_for: dict[int, int | None], uses: Counter):
    """Yield the frames whose depth is in hand (or who have none); return those still waiting. A
    depth image is let go once every frame it serves has it, so that memory stays bounded."""
    still = []
    for frame in waiting:
        key = depth_for[frame.stamp_ns]
        if key is None or key in depth:
            frame.gt_depth = None if key is None else _registered(depth[key], frame)
            if key is not None:
                uses[key] -= 1
                if uses[key] == 0:
                    del depth[key]
            yield frame
        else:
            still.append(frame)
    return still


def _registered(depth: np.ndarray, frame: Frame) -> np.ndarray:
    """The depth on the frame's own pixel grid (checked here too for --intrinsics, which has no
    camera_info size to check against)."""
    if depth.shape != frame.image.shape[:2]:
        raise BagError(f"a {depth.shape[1]}x{depth.shape[0]} depth image for {frame.image.shape[1]}x"
                       f"{frame.image.shape[0]} colour images: record depth registered to the colour camera "
                       "(e.g. RealSense aligned_depth_to_color)")
    return depth


COMPRESSED_DEPTH_HEADER = struct.Struct("<iff")  # compressed_depth_image_transport's ConfigHeader


def compressed_depth(fmt: str, data: bytes) -> np.ndarray:
    """A compressedDepth payload -> (H, W) float32 metres, 0 invalid. fmt: "16UC1; compressedDepth png"
    (a PNG of millimetres) or "32FC1; compressedDepth png" (a PNG of q = a / depth + b, the header's
    depthParam (a, b); q = 0 is no depth). The PNG's declared size is checked before it is decoded,
    as the node checks a camera's (perception.image)."""
    from ..perception.image import DEFAULT_MAX_INPUT_PIXELS
    from ..perception.image_header import ImageHeaderError, read_compressed_header

    encoding = fmt.split(";")[0].strip().upper()
    # mono16: compressed_depth_image_transport encodes any one-channel 16-bit image, and names it so (millimetres,
    # as a raw mono16 depth image is read)
    if "compresseddepth" not in fmt.lower() or encoding not in ("16UC1", "MONO16", "32FC1") or "rvl" in fmt.lower():
        raise BagError(f"depth in a CompressedImage of format {fmt!r}: only compressedDepth png of 16UC1 (mono16) or "
                       "32FC1 is read")
    if len(data) < COMPRESSED_DEPTH_HEADER.size:
        raise BagError(f"compressedDepth payload of {len(data)} bytes has no header")
    _, a, b = COMPRESSED_DEPTH_HEADER.unpack_from(data)
    png = data[COMPRESSED_DEPTH_HEADER.size:]
    try:
        header = read_compressed_header(png)
    except ImageHeaderError as exc:
        raise BagError(f"compressedDepth ({fmt!r}): {exc}") from exc
    if header.width * header.height > DEFAULT_MAX_INPUT_PIXELS:
        raise BagError(f"compressedDepth declares {header.width}x{header.height}, above {DEFAULT_MAX_INPUT_PIXELS} pixels")
    raw = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.dtype != np.uint16 or raw.ndim != 2:
        raise BagError(f"compressedDepth ({fmt!r}) is not a one-channel 16-bit PNG")
    if encoding in ("16UC1", "MONO16"):
        return raw.astype(np.float32) / 1000.0
    q = raw.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = np.where(q > 0, a / (q - b), 0.0)
    return np.where(np.isfinite(depth) & (depth > 0), depth, 0.0).astype(np.float32)


def _frame(msg, msgtype: str, stamp: int, calibration: ImportedCamera, poses: _PoseSource | None = None,
           sixteen_bit_max: int = 65535) -> Frame:
    if msgtype.endswith("CompressedImage"):
        from .bag import decode_image

        rgb = decode_image(np.asarray(msg.data, np.uint8).tobytes(), sixteen_bit_max)
    else:
        rgb = camera_image_from_msg(msg, sixteen_bit_max)
    if calibration.size is not None and rgb.shape[1::-1] != calibration.size:
        raise BagError(f"a {rgb.shape[1]}x{rgb.shape[0]} image, but camera_info is for "
                       f"{calibration.size[0]}x{calibration.size[1]}")
    if calibration.undistortion is not None:
        rgb = calibration.undistortion.rgb(rgb)
    pose = None if poses is None else poses.pose(msg.header.frame_id, stamp)
    return Frame(stamp_ns=stamp, K=calibration.K.copy(), image=rgb, gt_pose=pose)


def _depth(msg, calibration: ImportedCamera) -> np.ndarray:
    """(H, W) float32 metres, 0 where invalid, on the scored (undistorted) grid. A raw image goes
    through the node's own depth decoder (perception.image.decode_depth: geometry and size checked)."""
    data = np.asarray(msg.data, np.uint8).tobytes()
    if hasattr(msg, "format"):
        depth = compressed_depth(msg.format, data)
    else:
        try:
            depth = decode_depth(msg.encoding, int(msg.height), int(msg.width), int(msg.step), data,
                                 is_bigendian=bool(msg.is_bigendian))
        except ImageDecodeError as exc:
            raise BagError(f"depth image ({msg.encoding!r}, {msg.width}x{msg.height}): {exc}") from exc
    if calibration.size is not None and depth.shape[::-1] != calibration.size:
        raise BagError(f"a {depth.shape[1]}x{depth.shape[0]} depth image for {calibration.size[0]}x"
                       f"{calibration.size[1]} colour images: record depth registered to the colour camera "
                       "(e.g. RealSense aligned_depth_to_color)")
    return depth if calibration.undistortion is None else calibration.undistortion.depth(depth)
