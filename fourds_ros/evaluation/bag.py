"""rosbag2 read/write through the `rosbags` library (no ROS install needed). No rclpy.

A dataset becomes a stream of `Frame`s (see datasets.py) and `write_bag` stores it as:
  /camera/image_raw             sensor_msgs/Image rgb8 (or /camera/image_raw/compressed,
                                sensor_msgs/CompressedImage keeping the original JPEG/PNG bytes)
  /camera/camera_info           sensor_msgs/CameraInfo (K, P; no distortion)
  /gt/depth                     sensor_msgs/Image 32FC1 metres, NaN where invalid
  /gt/pose                      geometry_msgs/PoseStamped, world_from_camera
  /tf                           tf2_msgs/TFMessage world -> gt_camera (same pose)
  /gt/tracks                    sensor_msgs/PointCloud2 (u, v, track_id, visible), optional
Every message of one frame carries the frame's real stamp (header and bag timestamp).

`read_bag` reads such a bag (or any bag with those topics) back into a `BagData`.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import transforms3d

from .frame_store import Deflated, Encoded, FrameStore

log = logging.getLogger(__name__)

IMAGE_TOPIC = "/camera/image_raw"
COMPRESSED_TOPIC = "/camera/image_raw/compressed"
CAMERA_INFO_TOPIC = "/camera/camera_info"
GT_DEPTH_TOPIC = "/gt/depth"
GT_POSE_TOPIC = "/gt/pose"
GT_TRACKS_TOPIC = "/gt/tracks"
TF_TOPIC = "/tf"
WORLD_FRAME = "world"
CAMERA_FRAME = "camera"
GT_CAMERA_FRAME = "gt_camera"
STORAGES = ("mcap", "sqlite3")


class BagError(RuntimeError):
    """A bag that cannot be read or written; the message says which file and why."""


@dataclass
class Frame:
    """One camera frame and its ground truth.

    image: (H, W, 3) uint8 RGB, or None when only `encoded` is kept.
    encoded: original file bytes (JPEG/PNG) and `encoding` ("jpeg" | "png"), kept for compressed bags.
    K: (3, 3) intrinsics of the RGB image.
    gt_depth: (H', W') float32 metres, NaN/0 invalid (7-Scenes: registered to RGB on read).
    gt_pose: (4, 4) world_from_camera (camera-to-world), metres.
    gt_tracks: optional dict with ids (N,) int, uv (N, 2) float pixels, visible (N,) bool.
    source: the file the image came from, named when its bytes do not decode ("" when none).
    """

    stamp_ns: int
    K: np.ndarray
    image: np.ndarray | None = None
    encoded: bytes | None = None
    encoding: str | None = None
    gt_depth: np.ndarray | None = None
    gt_pose: np.ndarray | None = None
    gt_tracks: dict | None = None
    source: str = ""

    def rgb(self) -> np.ndarray:
        """The image, decoded once and kept."""
        if self.image is None:
            self.image = self.decoded()
        return self.image

    def decoded(self) -> np.ndarray:
        """The image, decoded and not kept when only its bytes are (a reversed recording holds all its frames:
        kept, each cost about 0.9 MB more)."""
        if self.image is not None:
            return self.image
        try:
            return decode_image(self.encoded)
        except BagError as exc:  # the decoder sees bytes only: in a folder of 1000 frames, say which file
            raise BagError(f"{self.source}: {exc}" if self.source else str(exc)) from exc


def decode_image(data: bytes, sixteen_bit_max: int = 65535, max_input_pixels: int | None = None) -> np.ndarray:
    """JPEG/PNG bytes -> (H, W, 3) uint8 RGB, through the node's safe decoder: the header is checked
    against DEFAULT_MAX_INPUT_PIXELS before OpenCV decodes anything (a PNG declaring 60000x60000
    is a BagError, not a crash or a 10 GB allocation). A 16-bit PNG becomes 8 bit by sixteen_bit_max,
    as the node's image_16bit_max does; max_input_pixels: the node's (None: its default)."""
    from ..perception.image import DEFAULT_MAX_INPUT_PIXELS, ImageDecodeError, decode_compressed

    try:
        return decode_compressed("jpeg/png", data, sixteen_bit_max=sixteen_bit_max,
                                 max_input_pixels=max_input_pixels or DEFAULT_MAX_INPUT_PIXELS)
    except ImageDecodeError as exc:
        raise BagError(f"image bytes cannot be used ({exc.kind}): {exc}") from exc


def camera_image_from_msg(msg, sixteen_bit_max: int = 65535, max_input_pixels: int | None = None) -> np.ndarray:
    """A camera sensor_msgs/Image -> (H, W, 3) uint8 RGB in every encoding the node reads (Bayer,
    YUV, mono16 and the rest: perception.image.decode_raw, 16 bits scaled by sixteen_bit_max as the
    node's image_16bit_max; max_input_pixels: the node's, None its default); BagError naming the encoding
    otherwise."""
    from ..perception.image import DEFAULT_MAX_INPUT_PIXELS, ImageDecodeError, decode_raw

    try:
        return decode_raw(msg.encoding, int(msg.height), int(msg.width), int(msg.step),
                          np.asarray(msg.data, np.uint8).tobytes(), is_bigendian=bool(msg.is_bigendian),
                          sixteen_bit_max=sixteen_bit_max, max_input_pixels=max_input_pixels or DEFAULT_MAX_INPUT_PIXELS)
    except ImageDecodeError as exc:
        raise BagError(f"camera image ({msg.encoding!r}, {msg.width}x{msg.height}) cannot be read: {exc}") from exc


@dataclass
class BagData:
    """Everything a scorer needs, keyed by stamp (ns). Arrays as in `Frame`; read_bag holds a compressed bag's
    images as their bytes and the ground-truth depth zlib-compressed, unpacked on each read (frame_store.py)."""

    path: Path
    stamps: list[int] = field(default_factory=list)  # image stamps, sorted
    images: dict[int, np.ndarray] = field(default_factory=FrameStore)
    K: dict[int, np.ndarray] = field(default_factory=dict)
    gt_depth: dict[int, np.ndarray] = field(default_factory=FrameStore)
    gt_pose: dict[int, np.ndarray] = field(default_factory=dict)
    gt_tracks: dict[int, dict] = field(default_factory=dict)
    topics: dict[str, str] = field(default_factory=dict)  # topic -> msgtype
    compressed: bool = False
    image_hw: tuple[int, int] | None = None  # (H, W) of the camera images
    unscorable: str | None = None  # why eval cannot score it (check_scorable), or None
    info_size: dict[int, tuple[int, int]] = field(default_factory=dict)  # camera_info (width, height) by stamp
    frame_sizes: set[tuple[int, int]] = field(default_factory=set)  # (width, height) of the raw frames read

    def intrinsics(self, stamp: int) -> np.ndarray:
        if stamp in self.K:
            return self.K[stamp]
        if not self.K:
            raise BagError(f"{self.path}: no {CAMERA_INFO_TOPIC} messages")
        nearest = min(self.K, key=lambda s: abs(s - stamp))
        return self.K[nearest]

    def gt_intrinsics(self, stamp: int) -> np.ndarray:
        """K of /gt/depth at `stamp`: the camera's, scaled to the depth image where it was recorded at another
        size (registered to the camera: the same view at another resolution)."""
        k, gt = self.intrinsics(stamp), self.gt_depth.get(stamp)
        if gt is None or self.image_hw is None or gt.shape[:2] == tuple(self.image_hw):
            return k
        from ..perception.work_image import scaled_k

        (h, w), (gh, gw) = self.image_hw, gt.shape[:2]
        return scaled_k(k, gw / w, gh / h)


def typestore():
    from rosbags.typesys import Stores, get_typestore

    return get_typestore(Stores.ROS2_KILTED)


def _header(ts, stamp_ns: int, frame_id: str):
    Time = ts.types["builtin_interfaces/msg/Time"]
    Header = ts.types["std_msgs/msg/Header"]
    return Header(stamp=Time(sec=int(stamp_ns // 1_000_000_000), nanosec=int(stamp_ns % 1_000_000_000)),
                  frame_id=frame_id)


def stamp_of(header) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def image_msg(ts, stamp_ns: int, frame_id: str, array: np.ndarray):
    """(H, W, 3) uint8 -> rgb8, or (H, W) float32 -> 32FC1."""
    Image = ts.types["sensor_msgs/msg/Image"]
    if array.ndim == 3:
        encoding, step = "rgb8", array.shape[1] * 3
        data = np.ascontiguousarray(array, dtype=np.uint8)
    else:
        encoding, step = "32FC1", array.shape[1] * 4
        data = np.ascontiguousarray(array, dtype="<f4")
    return Image(header=_header(ts, stamp_ns, frame_id), height=array.shape[0], width=array.shape[1],
                 encoding=encoding, is_bigendian=0, step=step,
                 data=np.frombuffer(data.tobytes(), np.uint8))


def image_from_msg(msg) -> np.ndarray:
    """A ground-truth sensor_msgs/Image -> (H, W, 3) uint8 RGB, or (H, W) float32 for 32FC1 and for
    16UC1/mono16 (read as depth in millimetres). Raises BagError otherwise. Camera images go through
    camera_image_from_msg, where mono16 is a grey image."""
    h, w, enc = int(msg.height), int(msg.width), msg.encoding.lower()
    raw = np.asarray(msg.data, np.uint8)
    rows = raw.reshape(h, int(msg.step)) if h and msg.step else raw.reshape(h, -1)
    if enc in ("rgb8", "bgr8"):
        img = rows[:, : w * 3].reshape(h, w, 3)
        return np.ascontiguousarray(img[..., ::-1] if enc == "bgr8" else img)
    if enc in ("mono8", "8uc1"):
        return np.repeat(rows[:, :w, None], 3, axis=2)
    if enc == "32fc1":
        dt = ">f4" if msg.is_bigendian else "<f4"
        return rows[:, : w * 4].copy().view(dt).reshape(h, w).astype(np.float32)
    if enc in ("16uc1", "mono16"):  # depth in millimetres by convention
        dt = ">u2" if msg.is_bigendian else "<u2"
        return rows[:, : w * 2].copy().view(dt).reshape(h, w).astype(np.float32) / 1000.0
    raise BagError(f"unsupported image encoding {msg.encoding!r}")


def camera_info_msg(ts, stamp_ns: int, frame_id: str, K: np.ndarray, width: int, height: int):
    CameraInfo = ts.types["sensor_msgs/msg/CameraInfo"]
    ROI = ts.types["sensor_msgs/msg/RegionOfInterest"]
    P = np.zeros((3, 4))
    P[:, :3] = K
    return CameraInfo(header=_header(ts, stamp_ns, frame_id), height=height, width=width,
                      distortion_model="plumb_bob", d=np.zeros(5), k=np.asarray(K, float).reshape(9),
                      r=np.eye(3).reshape(9), p=P.reshape(12), binning_x=0, binning_y=0,
                      roi=ROI(x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))


def pose_to_msg_fields(ts, T: np.ndarray):
    """4x4 -> (geometry_msgs Point/Vector3 translation, Quaternion x,y,z,w). transforms3d is w-first."""
    w, x, y, z = transforms3d.quaternions.mat2quat(T[:3, :3])
    return T[:3, 3].astype(float), ts.types["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w)


def pose_from_msg(position, orientation) -> np.ndarray:
    T = np.eye(4)
    q = [orientation.w, orientation.x, orientation.y, orientation.z]
    if not np.isfinite(q).all() or np.linalg.norm(q) < 1e-9:
        raise BagError("pose with an invalid quaternion")
    T[:3, :3] = transforms3d.quaternions.quat2mat(q)
    T[:3, 3] = [position.x, position.y, position.z]
    return T


def tracks_msg(ts, stamp_ns: int, frame_id: str, tracks: dict):
    """GT tracks -> PointCloud2 with float32 u, v, uint32 track_id, uint8 visible (packed, 13 bytes)."""
    PointCloud2 = ts.types["sensor_msgs/msg/PointCloud2"]
    PointField = ts.types["sensor_msgs/msg/PointField"]
    dtype = np.dtype([("u", "<f4"), ("v", "<f4"), ("track_id", "<u4"), ("visible", "u1")])
    rec = np.zeros(len(tracks["ids"]), dtype)
    rec["u"], rec["v"] = tracks["uv"][:, 0], tracks["uv"][:, 1]
    rec["track_id"], rec["visible"] = tracks["ids"], tracks["visible"]
    fields = [PointField(name=n, offset=dtype.fields[n][1], datatype=d, count=1)
              for n, d in (("u", 7), ("v", 7), ("track_id", 6), ("visible", 2))]
    return PointCloud2(header=_header(ts, stamp_ns, frame_id), height=1, width=len(rec), fields=fields,
                       is_bigendian=False, point_step=dtype.itemsize, row_step=dtype.itemsize * len(rec),
                       data=np.frombuffer(rec.tobytes(), np.uint8), is_dense=True)


_PF_DTYPES = {1: "i1", 2: "u1", 3: "<i2", 4: "<u2", 5: "<i4", 6: "<u4", 7: "<f4", 8: "<f8"}


def cloud_fields(msg) -> dict[str, np.ndarray]:
    """PointCloud2 -> {field name: (N,) array}; works for any packed layout."""
    n = int(msg.width) * int(msg.height)
    names, formats, offsets = [], [], []
    for f in msg.fields:
        names.append(f.name)
        formats.append(_PF_DTYPES[int(f.datatype)])
        offsets.append(int(f.offset))
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": int(msg.point_step)})
    rec = np.frombuffer(np.asarray(msg.data, np.uint8).tobytes(), dtype, count=n)
    return {name: rec[name].copy() for name in names}


def write_bag(frames: Iterable[Frame], out: str | Path, storage: str = "mcap", compressed: bool = False) -> int:
    """Write frames to a new rosbag2 directory `out` (must not exist). Returns the frame count.

    The bag is written into a private temporary folder beside `out` and renamed to `out` only when
    complete: a failure (a frame that cannot be decoded, a full disk, Ctrl-C) leaves nothing behind, and
    so does a source with no frame to write (BagError: `bag convert --start` past its end left an empty
    bag that its rerun then called "already exists").
    """
    from rosbags.rosbag2 import StoragePlugin, Writer

    if storage not in STORAGES:
        raise BagError(f"storage must be one of {STORAGES}, got {storage!r}")
    out = Path(out)
    if out.exists():
        raise BagError(f"{out} already exists; rosbag2 writes a new directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.partial-"))
    try:
        # Inside staging under the final name: rosbags names the storage file after the folder.
        staged = staging / out.name
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        with Writer(staged, version=9, storage_plugin=plugin) as writer:
            count = _write_frames(writer, typestore(), frames, compressed)
        if count == 0:
            raise BagError(f"no frames to write to {out} (the source, --start, --stride or --max-frames select none)")
        try:
            os.rename(staged, out)  # atomic; fails rather than merging if `out` appeared meanwhile
        except OSError as exc:
            raise BagError(f"cannot move the finished bag to {out}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return count


def _write_frames(writer, ts, frames: Iterable[Frame], compressed: bool) -> int:
    conns: dict[str, object] = {}

    def put(topic: str, msgtype: str, msg, stamp: int):
        if topic not in conns:
            conns[topic] = writer.add_connection(topic, msgtype, typestore=ts)
        writer.write(conns[topic], stamp, ts.serialize_cdr(msg, msgtype))

    count = 0
    for fr in frames:
        _write_frame(put, ts, fr, compressed)
        count += 1
    return count


def _write_frame(put, ts, fr: Frame, compressed: bool) -> None:
    t = int(fr.stamp_ns)
    if compressed:
        if fr.encoded is None:  # e.g. video frames: encode once, losslessly
            ok, buf = cv2.imencode(".png", cv2.cvtColor(fr.rgb(), cv2.COLOR_RGB2BGR))
            fr.encoded, fr.encoding = buf.tobytes(), "png"
        Compressed = ts.types["sensor_msgs/msg/CompressedImage"]
        msg = Compressed(header=_header(ts, t, CAMERA_FRAME), format=f"rgb8; {fr.encoding} compressed bgr8",
                         data=np.frombuffer(fr.encoded, np.uint8))
        put(COMPRESSED_TOPIC, "sensor_msgs/msg/CompressedImage", msg, t)
        h, w = fr.decoded().shape[:2]
    else:
        img = fr.rgb()
        h, w = img.shape[:2]
        put(IMAGE_TOPIC, "sensor_msgs/msg/Image", image_msg(ts, t, CAMERA_FRAME, img), t)
    put(CAMERA_INFO_TOPIC, "sensor_msgs/msg/CameraInfo", camera_info_msg(ts, t, CAMERA_FRAME, fr.K, w, h), t)
    if fr.gt_depth is not None:
        depth = np.where(fr.gt_depth > 0, fr.gt_depth, np.nan).astype(np.float32)
        put(GT_DEPTH_TOPIC, "sensor_msgs/msg/Image", image_msg(ts, t, CAMERA_FRAME, depth), t)
    if fr.gt_pose is not None:
        _write_pose(put, ts, fr.gt_pose, t)
    if fr.gt_tracks is not None:
        put(GT_TRACKS_TOPIC, "sensor_msgs/msg/PointCloud2", tracks_msg(ts, t, CAMERA_FRAME, fr.gt_tracks), t)


def _write_pose(put, ts, gt_pose: np.ndarray, t: int) -> None:
    """/gt/pose (PoseStamped) and /tf world -> gt_camera, the same pose."""
    position, q = pose_to_msg_fields(ts, gt_pose)
    Point = ts.types["geometry_msgs/msg/Point"]
    Pose = ts.types["geometry_msgs/msg/Pose"]
    PoseStamped = ts.types["geometry_msgs/msg/PoseStamped"]
    pose = Pose(position=Point(x=position[0], y=position[1], z=position[2]), orientation=q)
    put(GT_POSE_TOPIC, "geometry_msgs/msg/PoseStamped", PoseStamped(header=_header(ts, t, WORLD_FRAME), pose=pose), t)
    Vector3 = ts.types["geometry_msgs/msg/Vector3"]
    Transform = ts.types["geometry_msgs/msg/Transform"]
    TransformStamped = ts.types["geometry_msgs/msg/TransformStamped"]
    TFMessage = ts.types["tf2_msgs/msg/TFMessage"]
    tf = TransformStamped(header=_header(ts, t, WORLD_FRAME), child_frame_id=GT_CAMERA_FRAME,
                          transform=Transform(translation=Vector3(x=position[0], y=position[1], z=position[2]),
                                              rotation=q))
    put(TF_TOPIC, "tf2_msgs/msg/TFMessage", TFMessage(transforms=[tf]), t)


def _listed_in_metadata(path: Path) -> bool:
    """Whether `path` is one of the files the rosbag2 metadata.yaml beside it lists, all of them there. Why: given a split bag's
    first .mcap, only that file was read (a sixth of the recording, without a word), while a .db3 file gave its
    whole folder; an .mcap with no metadata.yaml, or one the metadata does not list, is read alone as before."""
    import yaml

    meta = path.parent / "metadata.yaml"
    try:
        listed = [Path(p).name for p in yaml.safe_load(meta.read_text())["rosbag2_bagfile_information"]
                  .get("relative_file_paths", [])]
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError):
        return False
    # Only where the folder opens: with a listed file missing (the first part of a split recording copied
    # alone) rosbags refuses the folder, and the named file is read alone, as before.
    return path.name in listed and all((path.parent / name).is_file() for name in listed)


def open_reader(path: str | Path):
    """AnyReader on a rosbag2 directory, a bare .mcap file or a ROS 1 .bag file, with clear errors."""
    from rosbags.highlevel import AnyReader

    path = Path(path)
    if not path.exists():
        raise BagError(f"{path}: no such bag")
    if path.is_file() and path.suffix == ".mcap" and _listed_in_metadata(path):
        path = path.parent  # one file of a rosbag2 folder (a split bag's first): the whole recording, as a .db3
    # rosbags reads a bare .mcap and a ROS 1 .bag (message definitions inside), but a .db3 needs its directory
    if path.is_file() and path.suffix not in (".mcap", ".bag"):
        if (path.parent / "metadata.yaml").exists():
            path = path.parent
        else:
            raise BagError(f"{path}: not a rosbag2 directory, .mcap or ROS 1 .bag file (metadata.yaml missing next "
                           "to it)")
    try:
        reader = AnyReader([path], default_typestore=typestore())
        if path.is_dir() and not reader.is2:
            # rosbags takes every path named *.bag for a ROS 1 bag file, so a rosbag2 directory
            # named run.bag (`ros2 bag record -o run.bag`, or `fourds-ros bag convert SRC run.bag`)
            # failed with "Is a directory". A directory is never a ROS 1 bag.
            from rosbags.rosbag2 import Reader as Rosbag2Reader

            reader.is2, reader.readers = True, [Rosbag2Reader(path)]
        reader.open()
    except Exception as exc:  # rosbags raises several error types for corrupt input
        raise BagError(f"{path}: cannot open bag: {exc}") from exc
    return reader


def topic_types(reader) -> dict[str, str]:
    """topic -> its message type; "A | B" for a topic recorded with several types, which no reader of one
    type takes. Why: both types' messages were read as one stream (an Image and a CompressedImage on one
    topic: a traceback in eval, twice the frames 1 ns apart in bag import)."""
    types: dict[str, set[str]] = {}
    for conn in reader.connections:
        types.setdefault(conn.topic, set()).add(conn.msgtype)
    return {topic: " | ".join(sorted(kinds)) for topic, kinds in types.items()}


def _add_image(data: BagData, msg, max_frames: int | None, images: bool, decoding: dict) -> None:
    """A camera frame into `data` (its stamp always; its pixels when `images`, or once to learn
    the size of a compressed stream)."""
    if max_frames is not None and len(data.stamps) >= max_frames:
        return
    stamp = stamp_of(msg.header)
    data.stamps.append(stamp)
    if not data.compressed:  # a raw frame says its size; a compressed one's is learnt by decoding it, below
        data.frame_sizes.add((int(msg.width), int(msg.height)))
        data.image_hw = data.image_hw or (int(msg.height), int(msg.width))
    if images or (data.image_hw is None and data.compressed):
        encoded = np.asarray(msg.data).tobytes() if data.compressed else None
        image = decode_image(encoded, **decoding) if data.compressed else camera_image_from_msg(msg, **decoding)
        data.image_hw = data.image_hw or image.shape[:2]
        if images:  # a compressed frame: decoded here for its errors and size, held as its bytes (a tenth of it)
            data.images[stamp] = Encoded(encoded, functools.partial(decode_image, **decoding)) if data.compressed else image


def _unscored_camera_info(msg) -> str | None:
    """Why eval cannot score with this camera_info, or None. Why: offline, K alone was read, while the node
    over DDS undoes distortion and windows (the two paths and the peers scored different images, without a
    word); an uncalibrated K (all zero, REP-104) or a NaN one failed after the whole run (a singular matrix)
    or scored nothing, exit 0."""
    from ..perception.camera import camera_info_window

    if np.any(np.asarray(msg.d, float)) or camera_info_window(msg) is not None:
        return ("the camera_info has lens distortion, a region of interest or binning, and eval scores "
                "undistorted full images: `fourds-ros bag import` the recording first (it undistorts)")
    k = np.asarray(msg.k, float).reshape(3, 3)
    if not (np.isfinite(k).all() and k[0, 0] > 0 and k[1, 1] > 0):
        return (f"the camera_info has no usable calibration (K {k.ravel().tolist()}): eval needs a calibrated "
                "camera (`fourds-ros bag import --intrinsics` gives one)")
    return None


def check_scorable(data: BagData) -> BagData:
    """`data`, or BagError where eval (and what scores as it: calibrate-scale, bag convert of a bag) cannot
    score it: BagData.unscorable. Not in read_bag itself: `bench replay` and training read such bags."""
    if data.unscorable:
        raise BagError(f"{data.path}: {data.unscorable}")
    return data


def read_scored_bag(path: str | Path, inputs, max_frames: int | None = None) -> BagData:
    """The bag as eval and calibrate-scale score it: decoded as the node would under `inputs` (the run's
    PerceptionSettings.inputs: its image_16bit_max and max_input_pixels), BagError where it cannot be scored."""
    return check_scorable(read_bag(path, max_frames=max_frames, sixteen_bit_max=inputs.image_16bit_max,
                                   max_input_pixels=inputs.max_input_pixels))


def _add_label(data: BagData, topic: str, msg, pixels: bool = True) -> None:
    """camera_info or a ground-truth message into `data`, keyed by stamp. pixels False: a depth image is checked and
    its stamp kept, with None for its pixels (read_bag's images=False)."""
    stamp = stamp_of(msg.header)
    if topic == CAMERA_INFO_TOPIC:
        data.K[stamp] = np.asarray(msg.k, float).reshape(3, 3)
        data.info_size[stamp] = (int(msg.width), int(msg.height))
        data.unscorable = data.unscorable or _unscored_camera_info(msg)
    elif topic == GT_DEPTH_TOPIC:
        depth = image_from_msg(msg)
        # packed (unpacked, the same bits, when read) only for a reader that reads it: a count of a bag's labelled
        # frames (training's length check) or a replay's stamps took 7.6x as long packing depth it never read (review)
        data.gt_depth[stamp] = Deflated.of(depth) if pixels else None
    elif topic == GT_POSE_TOPIC:
        data.gt_pose[stamp] = pose_from_msg(msg.pose.position, msg.pose.orientation)
    elif topic == GT_TRACKS_TOPIC:
        f = cloud_fields(msg)
        data.gt_tracks[stamp] = {"ids": f["track_id"].astype(np.int64),
                                 "uv": np.stack([f["u"], f["v"]], 1).astype(np.float64),
                                 "visible": f["visible"].astype(bool)}


def bag_messages(src, reader, connections) -> Iterator:
    """(connection, deserialised message) of the connections' messages, in the recording's order,
    one at a time. What rosbags raises for a corrupt or truncated bag (several error types)
    becomes a BagError naming the bag; errors of the caller's own handling of a message are not
    caught here, so they keep their own type and message."""
    messages = reader.messages(connections=connections)
    while True:
        try:
            conn, _, raw = next(messages)
            msg = reader.deserialize(raw, conn.msgtype)
        except StopIteration:
            return
        except Exception as exc:  # rosbags raises several error types for corrupt input
            raise BagError(f"{src}: bag is corrupt or truncated: {type(exc).__name__}: {exc}") from exc
        yield conn, msg


def _scored_image_topic(path, reader, topics: dict[str, str]) -> str:
    """The bag's camera topic in eval's layout (raw, else compressed); a BagError naming what to do for any
    other bag: a ROS 1 one (its fields are spelled otherwise, K and D: a traceback; and its bytes are not
    CDR, which the DDS replay sent) or a camera's own."""
    if not reader.is2:
        raise BagError(f"{path}: a ROS 1 bag; eval reads rosbag2 bags in its layout: `fourds-ros bag import` it first")
    for topic in (IMAGE_TOPIC, COMPRESSED_TOPIC):
        if topic in topics:
            return topic
    # A team's first try is often its camera's own bag, which is not yet in the layout scored here.
    raise BagError(f"{path}: no camera images (expected {IMAGE_TOPIC} or {COMPRESSED_TOPIC}); "
                   f"topics: {sorted(topics) or 'none'}. A recording of your own camera: run "
                   "`fourds-ros bag import` first (README: Evaluation with rosbags, Your own recordings)")


def _fit_intrinsics_to_images(data: BagData) -> None:
    """K of a camera_info calibrated at another size than the images, scaled to them as the node scales it
    (calibration.validate_intrinsics); unscorable where the node refuses it (another aspect). A camera_info of
    a size some frames have (a camera that changed its resolution mid-recording) describes those frames: kept."""
    from ..perception.calibration import validate_intrinsics

    if data.image_hw is None:
        return
    h, w = data.image_hw
    for s, (cw, ch) in data.info_size.items():
        if cw and ch and (cw, ch) != (w, h) and (cw, ch) not in data.frame_sizes and s in data.K:
            k, why = validate_intrinsics(data.K[s], w, h, cw, ch)
            if k is None:
                data.unscorable = data.unscorable or (f"the camera_info is for {cw}x{ch} images, the camera's are "
                                                      f"{w}x{h}, and the node cannot use it ({why})")
            else:
                data.K[s] = k


def read_bag(path: str | Path, max_frames: int | None = None, images: bool = True,
             sixteen_bit_max: int = 65535, max_input_pixels: int | None = None) -> BagData:
    """Read images, camera info and ground truth back, keyed by stamp (ns). sixteen_bit_max: a 16-bit
    image's largest value, as the node's image_16bit_max (eval passes the run's: offline, a 12-bit camera
    read 16x too dark, all blind, while the node over DDS read it right); max_input_pixels: the node's cap
    on a frame's size (None: its default), a BagError above it. images False: no pixels are held, the camera
    images' nor the ground-truth depth's (gt_depth maps each stamp to None): for a reader of stamps and labels.

    Raises BagError for a missing/corrupt/truncated bag or one without any camera image topic.
    Ground-truth topics are optional; what is missing simply stays empty.
    """
    reader = open_reader(path)
    data = BagData(Path(path))
    try:
        data.topics = topic_types(reader)
        image_topic = _scored_image_topic(path, reader, data.topics)
        data.compressed = image_topic == COMPRESSED_TOPIC
        wanted = {image_topic, CAMERA_INFO_TOPIC, GT_DEPTH_TOPIC, GT_POSE_TOPIC, GT_TRACKS_TOPIC}
        mixed = sorted(t for t in wanted if " | " in data.topics.get(t, ""))
        if mixed:
            raise BagError(f"{path}: {mixed[0]} was recorded with several message types ({data.topics[mixed[0]]}); "
                           "eval reads one type a topic")
        conns = [c for c in reader.connections if c.topic in wanted]
        decoding = {"sixteen_bit_max": sixteen_bit_max, "max_input_pixels": max_input_pixels}
        last_kept = None  # with max_frames, once that many are read: the newest kept frame's stamp
        for conn, msg in bag_messages(path, reader, conns):
            try:
                if conn.topic == image_topic:
                    _add_image(data, msg, max_frames, images, decoding)
                    if last_kept is None and max_frames is not None and len(data.stamps) >= max_frames:
                        last_kept = max(data.stamps)
                elif last_kept is None or stamp_of(msg.header) <= last_kept:  # labels of frames not kept: not held
                    _add_label(data, conn.topic, msg, pixels=images)
            except (ValueError, KeyError) as exc:  # a message rosbags read, with content we cannot use
                raise BagError(f"{path}: unusable {conn.topic} message after {len(data.stamps)} frames: "
                               f"{type(exc).__name__}: {exc}") from exc
    finally:
        reader.close()
    data.stamps.sort()
    repeated = len(data.stamps) - len(set(data.stamps))
    if repeated:  # the DDS replay and the offline path would keep different images of one stamp
        data.unscorable = data.unscorable or (f"{repeated} image(s) repeat an earlier image's header stamp; "
                                              "`fourds-ros bag import` keeps one frame a stamp (is the camera "
                                              "stamping each frame?)")
    _fit_intrinsics_to_images(data)
    if not data.stamps:
        raise BagError(f"{path}: {image_topic} has no messages")
    if not data.K:
        raise BagError(f"{path}: no {CAMERA_INFO_TOPIC}; intrinsics are needed to score or replay")
    return data
