"""numpy <-> ROS messages for the perception node. Messages are filled with `arr.tobytes()`
(assigning numpy arrays to `data` is ~500x slower)."""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point, Pose, PoseStamped, TransformStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header
from visualization_msgs.msg import Marker, MarkerArray

from ..perception.camera import Calibration, camera_info_window, sensor_extent, sensor_to_image, window_problem
from ..perception.image import DEFAULT_MAX_INPUT_PIXELS, decode_compressed_for_work, decode_depth, decode_raw
from ..perception.odometry import quat_xyzw
from ..perception.preprocess import backproject

TRACK_FIELDS = [("x", PointField.FLOAT32), ("y", PointField.FLOAT32), ("z", PointField.FLOAT32),
                ("u", PointField.FLOAT32), ("v", PointField.FLOAT32), ("track_id", PointField.UINT32),
                ("visible", PointField.UINT8), ("confidence", PointField.FLOAT32)]
# PointField datatype -> numpy type (byte order apart) and name, for every type PointCloud2 has.
_NUMPY_TYPE = {PointField.INT8: "i1", PointField.UINT8: "u1", PointField.INT16: "i2", PointField.UINT16: "u2",
               PointField.INT32: "i4", PointField.UINT32: "u4", PointField.FLOAT32: "f4", PointField.FLOAT64: "f8"}
_TYPE_NAME = {getattr(PointField, n): n for n in ("INT8", "UINT8", "INT16", "UINT16", "INT32", "UINT32",
                                                   "FLOAT32", "FLOAT64")}
NUMPY_OF = {t: "<" + _NUMPY_TYPE[t] for t in (PointField.FLOAT32, PointField.UINT32, PointField.UINT8)}  # what the node writes


def stamp_to_ns(stamp) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def publisher_gid(info) -> str:
    """A message's DDS writer, from rclpy's MessageInfo (a subscription callback of two arguments): its publisher_gid
    as text ('' where the middleware gives none); ros/publisher_names.py names it from the ROS graph."""
    return str((info.get("publisher_gid") or {}).get("data", ""))


def ns_to_stamp(ns: int) -> Time:
    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def header(stamp_ns: int, frame_id: str) -> Header:
    return Header(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id)


def image_to_rgb(msg: Image, max_input_pixels: int = DEFAULT_MAX_INPUT_PIXELS, sixteen_bit_max: int = 65535
                 ) -> np.ndarray:
    """sensor_msgs/Image -> (H, W, 3) uint8 RGB; ImageDecodeError on bad input."""
    return decode_raw(msg.encoding, msg.height, msg.width, msg.step, bytes(msg.data),
                      is_bigendian=bool(msg.is_bigendian), max_input_pixels=max_input_pixels,
                      sixteen_bit_max=sixteen_bit_max)


def depth_to_metres(msg: Image, max_input_pixels: int = DEFAULT_MAX_INPUT_PIXELS) -> np.ndarray:
    """A depth sensor_msgs/Image (32FC1 m, 16UC1 / mono16 mm) -> (H, W) float32 metres, 0 where none;
    ImageDecodeError on bad input."""
    return decode_depth(msg.encoding, msg.height, msg.width, msg.step, bytes(msg.data),
                        is_bigendian=bool(msg.is_bigendian), max_input_pixels=max_input_pixels)


# The node's decoders for FrameIntake.push_image: (RGB, the camera image's (H, W)).
def image_for_work(msg: Image, inputs) -> tuple[np.ndarray, tuple[int, int]]:
    """A raw image comes at its own size, whatever the working budget (the intake divides it: 0.1 ms
    a 1080p frame); inputs: the node's settings.InputSettings (max_input_pixels, image_16bit_max)."""
    rgb = image_to_rgb(msg, inputs.max_input_pixels, inputs.image_16bit_max)
    return rgb, rgb.shape[:2]


def compressed_for_work(msg, work_max_pixels: int, inputs) -> tuple[np.ndarray, tuple[int, int]]:
    """A JPEG above work_max_pixels comes decoded at its working size where libjpeg can; inputs as
    image_for_work's (a 16-bit PNG takes image_16bit_max as a raw 16-bit image does)."""
    return decode_compressed_for_work(msg.format, bytes(msg.data), work_max_pixels,
                                      max_input_pixels=inputs.max_input_pixels, sixteen_bit_max=inputs.image_16bit_max)


def depth_image(depth: np.ndarray, stamp_ns: int, frame_id: str) -> Image:
    """(H, W) float32 metres -> 32FC1 (REP-118)."""
    depth = np.ascontiguousarray(depth, dtype="<f4")
    h, w = depth.shape
    return Image(header=header(stamp_ns, frame_id), height=h, width=w, encoding="32FC1",
                 is_bigendian=0, step=w * 4, data=depth.tobytes())


def camera_info(k: np.ndarray, height: int, width: int, stamp_ns: int, frame_id: str,
                distortion: list[float] | None = None) -> CameraInfo:
    """distortion: plumb_bob's k1 k2 p1 p2 k3; None: a pinhole image (zeros), as every output is."""
    k = np.asarray(k, float)
    p = np.zeros((3, 4))
    p[:, :3] = k
    d = [0.0] * 5 if distortion is None else [float(v) for v in distortion]
    return CameraInfo(header=header(stamp_ns, frame_id), height=height, width=width,
                      distortion_model="plumb_bob", d=d, k=k.ravel().tolist(),
                      r=np.eye(3).ravel().tolist(), p=p.ravel().tolist())


def calibration(msg: CameraInfo) -> Calibration | None:
    """None for an uncalibrated camera (K all zero, as REP-104 says); otherwise everything, good
    or bad, for CameraIntake to check against the image, P's intrinsics too (image_rectified). As
    REP-104 says, K and P are of the full, unbinned sensor: a region of interest (roi) and binning
    bring them to the image the camera sends (they were ignored: an ROI of the calibration's aspect
    read as a resize, fx halved; binning refused the calibration). A window off its own sensor is carried
    as malformed (camera.window_problem): CameraIntake refuses its K."""
    k = np.asarray(msg.k, float).reshape(3, 3)
    if not np.any(k):
        return None
    p = np.asarray(msg.p, float).reshape(3, 4)[:, :3]
    p = p if np.any(p) else None
    width, height = int(msg.width), int(msg.height)
    window = camera_info_window(msg)
    if window is not None:
        offset, binning, (width, height) = window
        k, p = (None if m is None else sensor_to_image(m, offset, binning) for m in (k, p))
    return Calibration(k, tuple(float(v) for v in msg.d), msg.distortion_model, width, height, p, sensor_extent(msg),
                       window_problem(msg))


def point_cloud(columns: dict[str, np.ndarray], types: list[tuple[str, int]], stamp_ns: int,
                frame_id: str) -> PointCloud2:
    """Unorganised cloud (height 1) from equal-length columns, packed without padding."""
    dtype = np.dtype([(name, NUMPY_OF[t]) for name, t in types])
    n = len(next(iter(columns.values()))) if columns else 0
    packed = np.zeros(n, dtype=dtype)
    for name, _ in types:
        packed[name] = columns[name]
    fields = [PointField(name=name, offset=dtype.fields[name][1], datatype=t, count=1) for name, t in types]
    return PointCloud2(header=header(stamp_ns, frame_id), height=1, width=n, fields=fields,
                       is_bigendian=False, point_step=dtype.itemsize, row_step=dtype.itemsize * n,
                       data=packed.tobytes(), is_dense=False)


def read_cloud(msg: PointCloud2, names: tuple[str, ...] | None = None) -> np.ndarray:
    """PointCloud2 -> (height * width,) structured numpy array of the fields `names` (None: all), in
    the message's byte order and honouring padded rows (row_step), as PointCloud2 allows. ValueError
    for a named field the cloud lacks or of an unknown type, a point_step or row_step too small for
    the fields, or data short of height * row_step."""
    fields = {f.name: f for f in msg.fields}
    names = tuple(fields) if names is None else names
    missing = [n for n in names if n not in fields]
    if missing:
        raise ValueError(f"no field {', '.join(missing)}")
    order = ">" if msg.is_bigendian else "<"
    try:
        formats = [order + _NUMPY_TYPE[fields[n].datatype] for n in names]
    except KeyError as exc:
        raise ValueError(f"unknown PointField datatype {exc}") from None
    dtype = np.dtype({"names": list(names), "formats": formats, "offsets": [int(fields[n].offset) for n in names],
                      "itemsize": int(msg.point_step)})
    height, width, row_step = int(msg.height), int(msg.width), int(msg.row_step)
    if height * width == 0:
        return np.zeros(0, dtype)
    if row_step < width * dtype.itemsize:
        raise ValueError(f"row_step {row_step} too small for {width} points of point_step {msg.point_step}")
    data = bytes(msg.data)
    if len(data) < height * row_step:
        raise ValueError(f"{len(data)} bytes of data, height * row_step needs {height * row_step}")
    rows = np.frombuffer(data, np.uint8, count=height * row_step).reshape(height, row_step)[:, :width * dtype.itemsize]
    return np.ascontiguousarray(rows).view(dtype).reshape(-1)


def track_query_uv(msg: PointCloud2) -> np.ndarray:
    """track_queries -> (N, 2) float input pixels; ValueError without float32 fields u, v, or a cloud
    read_cloud cannot read. Only u and v are read: a client's cloud may carry fields of any type
    beside them, big-endian and with padded rows (the node refused the first with a misleading
    message and read the others as garbage or (0, 0))."""
    fields = {f.name: f for f in msg.fields}
    wrong = [f"{n} is {_TYPE_NAME.get(fields[n].datatype, fields[n].datatype)} x {fields[n].count}"
             for n in ("u", "v") if n in fields and (fields[n].datatype != PointField.FLOAT32 or fields[n].count != 1)]
    if wrong:
        raise ValueError(f"track_queries needs float32 fields u, v: {'; '.join(wrong)}")
    try:
        cloud = read_cloud(msg, ("u", "v"))
    except ValueError as exc:
        raise ValueError(f"track_queries needs float32 fields u, v: {exc}") from None
    return np.stack([cloud["u"], cloud["v"]], axis=1).astype(float)


def tracks_cloud(tracks, stamp_ns: int, frame_id: str) -> PointCloud2:
    return point_cloud({"x": tracks.xyz[:, 0], "y": tracks.xyz[:, 1], "z": tracks.xyz[:, 2],
                        "u": tracks.u, "v": tracks.v, "track_id": tracks.ids,
                        "visible": tracks.visible.astype(np.uint8), "confidence": tracks.confidence},
                       TRACK_FIELDS, stamp_ns, frame_id)


def depth_points(depth: np.ndarray, k: np.ndarray, rgb: np.ndarray | None, step: int, stamp_ns: int,
                 frame_id: str) -> PointCloud2:
    """Back-project every `step`-th pixel of (H, W) depth with K; valid pixels only; optional rgb
    packed as a float32 field (the PCL convention)."""
    d = depth[::step, ::step]
    rows, cols = np.mgrid[0:depth.shape[0]:step, 0:depth.shape[1]:step]
    valid = np.isfinite(d)
    xyz = backproject(cols[valid], rows[valid], d[valid], k)
    columns = {"x": xyz[:, 0], "y": xyz[:, 1], "z": xyz[:, 2]}
    types = [("x", PointField.FLOAT32), ("y", PointField.FLOAT32), ("z", PointField.FLOAT32)]
    if rgb is not None:
        c = rgb[::step, ::step][valid].astype(np.uint32)
        columns["rgb"] = ((c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]).view(np.float32)
        types.append(("rgb", PointField.FLOAT32))
    return point_cloud(columns, types, stamp_ns, frame_id)


def pose_msg(transform: np.ndarray) -> Pose:
    q = quat_xyzw(transform[:3, :3])
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in transform[:3, 3])
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = (float(v) for v in q)
    return pose


def odometry(est, stamp_ns: int, odom_frame: str, base_frame: str) -> Odometry:
    msg = Odometry(header=header(stamp_ns, odom_frame), child_frame_id=base_frame)
    msg.pose.pose = pose_msg(est.odom_from_base)
    msg.pose.covariance = np.asarray(est.covariance, float).ravel().tolist()
    msg.twist.twist.linear.x, msg.twist.twist.linear.y, msg.twist.twist.linear.z = (float(v) for v in est.twist[:3])
    msg.twist.twist.angular.x, msg.twist.twist.angular.y, msg.twist.twist.angular.z = (float(v) for v in est.twist[3:])
    msg.twist.covariance = np.asarray(est.twist_covariance, float).ravel().tolist()
    return msg


def odometry_pose(msg: Odometry) -> tuple[int, np.ndarray, np.ndarray]:
    """nav_msgs/Odometry -> (stamp ns, position (3,), orientation (4,) x y z w), as received."""
    p, q = msg.pose.pose.position, msg.pose.pose.orientation
    return stamp_to_ns(msg.header.stamp), np.array([p.x, p.y, p.z]), np.array([q.x, q.y, q.z, q.w])


def diagnostics(name: str, level: int, message: str, hardware_id: str, values: dict[str, str], stamp
                ) -> DiagnosticArray:
    """One DiagnosticStatus (level 0 OK, 1 WARN, 2 ERROR) with its key-value pairs, stamped."""
    status = DiagnosticStatus(name=name, level=bytes([level]), message=message, hardware_id=hardware_id,
                              values=[KeyValue(key=k, value=v) for k, v in values.items()])
    msg = DiagnosticArray(status=[status])
    msg.header.stamp = stamp
    return msg


def pose_stamped(transform: np.ndarray, stamp_ns: int, frame_id: str) -> PoseStamped:
    return PoseStamped(header=header(stamp_ns, frame_id), pose=pose_msg(transform))


def transform_stamped(transform: np.ndarray, stamp_ns: int, parent: str, child: str) -> TransformStamped:
    msg = TransformStamped(header=header(stamp_ns, parent), child_frame_id=child)
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = (
        float(v) for v in transform[:3, 3])
    q = quat_xyzw(transform[:3, :3])
    r = msg.transform.rotation
    r.x, r.y, r.z, r.w = (float(v) for v in q)
    return msg


def track_markers(trails_xyz: dict[int, np.ndarray], stamp_ns: int, frame_id: str,
                  lifetime_s: float = 2.0) -> MarkerArray:
    """One LINE_STRIP per track through its recent positions, trails_xyz[id]: (N, 3) camera
    optical frame, oldest first. The first marker clears the previous set; lifetime_s only clears
    them once the node stops sending (0.5 s, they blinked out between clips of a 10 Hz camera, one
    every 0.7 s)."""
    out = MarkerArray()
    out.markers.append(Marker(header=header(stamp_ns, frame_id), ns="tracks", action=Marker.DELETEALL))
    for tid, points in trails_xyz.items():
        m = Marker(header=header(stamp_ns, frame_id), ns="tracks", id=int(tid), type=Marker.LINE_STRIP,
                   action=Marker.ADD)
        m.scale.x = 0.005
        hue = (int(tid) * 0.618) % 1.0
        m.color.r, m.color.g, m.color.b, m.color.a = hue, 0.8, 1.0 - hue, 1.0
        m.pose.orientation.w = 1.0
        m.lifetime.sec, m.lifetime.nanosec = int(lifetime_s), int((lifetime_s % 1) * 1e9)
        m.points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in points]
        out.markers.append(m)
    return out
