"""RGB-D sequence readers with camera poses: 7-Scenes, HoloLens (DeepVideoMVS) and TUM RGB-D.

One implementation for the whole repo: training (`training.data`) cuts labelled clips from these
sequences and evaluation (`fourds_ros.evaluation.datasets`) turns them into bags. No rclpy.

All readers return an `RGBDSequence`: frame paths, intrinsics and camera-to-world poses (metres,
OpenCV optical frame). Frames are read lazily with OpenCV. Depth is returned in metres with 0
where the sensor gave nothing.

- 7-Scenes: `frame-NNNNNN.{color.jpg,depth.png,pose.txt}` + `camera-intrinsics.txt`; depth uint16
  mm in the depth camera's own view, and `camera-intrinsics.txt` and the poses are the depth
  camera's. The reader returns the RGB camera's K and poses and registers each depth image to the
  RGB image (SEVEN_SCENES_RGB_*, measured: tools/fit_seven_scenes_rgb.py).
- HoloLens (DeepVideoMVS): `images/*.png` (or `.jpg`, as in our re-encoded demo sample), `depth/*.png` (uint16 mm, registered to RGB),
  `poses.txt` (one row-major 4x4 camera-to-world per line, sorted image order), `K.txt`.
- TUM RGB-D: `rgb.txt`, `depth.txt` ("timestamp filename"), `groundtruth.txt`
  ("timestamp tx ty tz qx qy qz qw", camera-to-world), depth uint16 / 5000 m. RGB, depth and pose
  are associated by nearest timestamp within `max_dt`. TUM ships no intrinsics file: pass them,
  or the Freiburg 1 defaults are used. TUM's images keep their lens distortion; the reader removes
  the Freiburg 1 camera's (or a `camera-distortion.txt`'s) as the node would.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

# TUM RGB-D's published calibration of its three Kinects' colour cameras
# (vision.in.tum.de/data/datasets/rgbd-dataset/file_formats), for their 640x480 images: K and its
# plumb_bob lens distortion d0-d4; a sequence's folder name says which one recorded it
# (rgbd_dataset_freiburg2_desk; tum_camera). TUM does not undistort freiburg1/2's images:
# read with K alone, a Freiburg 1 pixel near the edge of the model's centre crop is up to 15 px
# (median 4 px) from where a pinhole camera would put it, which ORB VO's essential matrix feels
# (ATE 0.028 -> 0.025 m on fr1/rpy 000-079 once undistorted; model card, session 19).
TUM_FR1_INTRINSICS = np.array([[517.3, 0, 318.6], [0, 516.5, 255.3], [0, 0, 1]])
TUM_FR1_DISTORTION = np.array([0.2624, -0.9531, -0.0054, 0.0026, 1.1633])
TUM_CAMERAS = {
    "freiburg1": (TUM_FR1_INTRINSICS, TUM_FR1_DISTORTION),
    "freiburg2": (np.array([[520.9, 0, 325.1], [0, 521.0, 249.7], [0, 0, 1]]),
                  np.array([0.2312, -0.7849, -0.0033, -0.0001, 0.9172])),
    # freiburg3's images are published undistorted: a pinhole camera
    "freiburg3": (np.array([[535.4, 0, 320.1], [0, 539.2, 247.6], [0, 0, 1]]), np.zeros(5)),
}
TUM_CALIBRATION_SIZE = (640, 480)  # (width, height) of those calibrations
TUM_DEPTH_SCALE = 1 / 5000  # metres per stored unit


# 7-Scenes' depth camera and its RGB camera are two cameras: fx = fy = 585 px in
# camera-intrinsics.txt is the depth camera's (the poses, from KinectFusion, are its too), and the
# RGB camera beside it has a wider view. Measured on redkitchen 000-299 by
# tools/fit_seven_scenes_rgb.py (docs/results/seven_scenes_rgb/): the epipolar error of LK
# correspondences under the ground-truth motion is least at an RGB focal length of 520-525 px
# (50-58 % larger at 585 px), and depth edges line up with RGB edges best at 530 px with
# X_rgb = X_depth + (-0.025, 0, 0) m (the Kinect v1's 2.5 cm baseline). Geometric track labels
# made with 585 px and unregistered depth were far enough off that LK scored AJ 0.168 against them
# (session 17: see the model card). Rotation between the two cameras is taken as none (not measured).
SEVEN_SCENES_RGB_OVER_DEPTH_FOCAL = 530.0 / 585.0
SEVEN_SCENES_RGB_FROM_DEPTH_M = (-0.025, 0.0, 0.0)


class DatasetFormatError(ValueError):
    """A sequence folder that does not match the expected format; the message says what."""


@dataclass
class DepthCamera:
    """The depth sensor of a sequence whose depth images are in its own view, not the RGB camera's:
    its (3, 3) K at the depth images' resolution, and t of X_rgb = X_depth + t (metres; the two
    cameras are taken to be parallel)."""

    intrinsics: np.ndarray
    rgb_from_depth_m: tuple[float, float, float]


class LensUndistortion:
    """A lens's distortion removed from RGB-D frames exactly as the node removes it from a camera
    with calibrated distortion (perception.calibration.undistortion_maps: the pinhole view of only
    valid pixels, so K changes): colour bilinear, depth nearest (a depth image registered to the
    raw colour image moves with it, and depths must not be blended across an edge).
    k, d: the raw camera's K and distortion coefficients at (width, height); model: a camera_info
    distortion_model the node undoes (plumb_bob, rational_polynomial, equidistant); sensor_extent:
    camera.sensor_extent, for an image that is a roi window of the sensor (its principal point is
    checked on the sensor, as the node checks it)."""

    def __init__(self, k: np.ndarray, d: np.ndarray, width: int, height: int, model: str = "plumb_bob",
                 sensor_extent: tuple[float, float, float, float] | None = None):
        from .perception.calibration import check_distortion, undistortion_maps  # only distorted data pays for it

        self.raw_k = np.asarray(k, np.float64)
        self.distortion = check_distortion(model, d)  # the same at any resolution
        self.map1, self.map2, self.intrinsics = undistortion_maps(self.raw_k, self.distortion, model, width, height,
                                                                  sensor_extent)
        self.size = (width, height)
        self.map_x, self.map_y = cv2.convertMaps(self.map1, self.map2, cv2.CV_32FC1)

    def _check(self, image: np.ndarray) -> None:
        if image.shape[1::-1] != self.size:
            raise DatasetFormatError(f"a {image.shape[1]}x{image.shape[0]} frame, but the lens calibration is for "
                                     f"{self.size[0]}x{self.size[1]}")

    def rgb(self, image: np.ndarray) -> np.ndarray:
        self._check(image)
        return cv2.remap(image, self.map1, self.map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)

    def depth(self, depth: np.ndarray) -> np.ndarray:
        """(H, W) metres, 0 invalid -> the same on the undistorted grid (0 where nothing maps)."""
        self._check(depth)
        return cv2.remap(depth, self.map_x, self.map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT,
                         borderValue=0)


@dataclass
class RGBDSequence:
    """rgb_paths/depth_paths: N files; intrinsics: (3, 3) of the RGB frames as `rgb(i)` returns
    them (the files' resolution); camera_to_world: (N, 4, 4) of the RGB camera; depth_scale: metres
    per stored depth unit; depth_camera: None when the depth images line up with the RGB images,
    else the depth sensor, and `depth(i)` registers them to the RGB image; undistortion: None when
    the files are pinhole images, else `rgb(i)` and `depth(i)` come undistorted (and intrinsics is
    the undistorted view's K)."""

    rgb_paths: list[Path]
    depth_paths: list[Path]
    intrinsics: np.ndarray
    camera_to_world: np.ndarray
    depth_scale: float
    depth_camera: DepthCamera | None = None
    name: str = ""
    undistortion: LensUndistortion | None = None

    def __len__(self) -> int:
        return len(self.rgb_paths)

    def rgb(self, i: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB."""
        image = read_rgb(self.rgb_paths[i])
        return image if self.undistortion is None else self.undistortion.rgb(image)

    def depth(self, i: int) -> np.ndarray:
        """(H, W) float32 metres in the RGB image's pixels, 0 = invalid."""
        depth = read_depth(self.depth_paths[i], self.depth_scale)
        if self.depth_camera is not None:
            depth = register_depth(depth, self.depth_camera, self.intrinsics)
        return depth if self.undistortion is None else self.undistortion.depth(depth)


def relative_poses(camera_to_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 4, 4) camera-to-world -> rotation (T, 3, 3), translation (T, 3) of T_first_from_t,
    the pose head's contract and training target: a point in camera t maps to camera 0 as R p + t."""
    rel = np.linalg.inv(camera_to_world[0])[None] @ camera_to_world
    return rel[:, :3, :3], rel[:, :3, 3]


def register_depth(depth: np.ndarray, camera: DepthCamera, k_rgb: np.ndarray) -> np.ndarray:
    """(H, W) metres in the depth camera's view -> (H, W) metres along the RGB camera's axis at the
    RGB pixels (same size), 0 where no depth pixel lands. Each valid depth pixel is back-projected,
    moved into the RGB camera and projected to its nearest pixel; where several land on one pixel
    the nearest surface wins (occlusion)."""
    rows, cols = np.nonzero(depth > 0)
    z = depth[rows, cols].astype(np.float64)
    k_inv = np.linalg.inv(np.asarray(camera.intrinsics, float))
    points = k_inv[:, :2] @ np.stack([cols, rows]) * z + k_inv[:, 2:] * z  # (3, N) in the depth camera
    points += np.asarray(camera.rgb_from_depth_m, float)[:, None]  # ... in the RGB camera
    proj = np.asarray(k_rgb, float) @ points
    with np.errstate(divide="ignore", invalid="ignore"):
        u, v = np.round(proj[0] / proj[2]).astype(np.int64), np.round(proj[1] / proj[2]).astype(np.int64)
    h, w = depth.shape
    keep = (points[2] > 0) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
    order = np.argsort(-points[2][keep])  # far first: the nearest surface is written last and stays
    out = np.zeros_like(depth, dtype=np.float32)
    out[v[keep][order], u[keep][order]] = points[2][keep][order]
    return out


# Dataset images (recordings, BADJA frames, training video frames) declaring more pixels than this are refused
# before decoding: 8192x8192 holds any camera's or photo's frame (an RGB one is 200 MB decoded), and a
# crafted PNG of a few MB declaring 30000x30000 (over 25 GB decoded; OpenCV's own cap is 2^30 pixels) is not.
DATASET_MAX_PIXELS = 8192 * 8192


def imread_checked(path: Path, flags: int, error: type[Exception] = DatasetFormatError) -> np.ndarray | None:
    """cv2.imread, with a PNG's or JPEG's declared size checked first: `error` where it is over
    DATASET_MAX_PIXELS, None where the file is missing or does not decode (the caller names it). Why: a
    2 MB PNG declaring 30000x30000 took the machine's memory in a dataset reader."""
    from .perception.image_header import ImageHeaderError, read_compressed_header

    try:
        data = Path(path).read_bytes()
    except OSError:
        return None
    if not data:  # an empty file (cv2.imdecode raises on an empty buffer: a traceback, not the caller's line)
        return None
    try:
        header = read_compressed_header(data)
    except ImageHeaderError:
        header = None  # another format, or a malformed header: OpenCV decides
    if header is not None and header.width * header.height > DATASET_MAX_PIXELS:
        raise error(f"{path}: the image declares {header.width}x{header.height} pixels, more than a dataset image's "
                    f"{DATASET_MAX_PIXELS} (8192x8192)")
    return cv2.imdecode(np.frombuffer(data, np.uint8), flags)


def read_rgb(path: Path, error: type[Exception] = DatasetFormatError) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB; `error` naming the file where it is missing or does not decode
    (not a cv2 traceback), or declares more pixels than a dataset image (imread_checked)."""
    image = imread_checked(path, cv2.IMREAD_COLOR, error)
    if image is None:
        raise error(f"{path}: cannot read the image (missing, corrupt or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_depth(path: Path, scale: float) -> np.ndarray:
    """A depth image -> (H, W) float32 metres (stored value x scale), 0 = invalid (stored 0, and
    65535 which 7-Scenes uses for "no reading")."""
    raw = imread_checked(path, cv2.IMREAD_UNCHANGED)
    if raw is None or raw.ndim != 2:
        raise DatasetFormatError(f"cannot read single-channel depth {path}")
    if raw.dtype == np.uint8:  # an 8-bit PNG read at a 16-bit format's scale: depth 0..0.255 m, said nowhere
        raise DatasetFormatError(f"{path}: an 8-bit depth image; the format stores 16-bit depth (uint16)")
    depth = raw.astype(np.float32) * scale
    if raw.dtype == np.uint16:
        depth[raw == 65535] = 0.0
    return depth


def _check_poses(poses: np.ndarray, source: Path) -> np.ndarray:
    if poses.ndim != 3 or poses.shape[1:] != (4, 4) or not np.isfinite(poses).all():
        raise DatasetFormatError(f"{source}: poses must be finite 4x4 matrices")
    r = poses[:, :3, :3]
    bad = np.flatnonzero((np.abs(r.transpose(0, 2, 1) @ r - np.eye(3)).max(axis=(1, 2)) > 1e-2)  # 7-Scenes: up to 2e-4
                         | (np.linalg.det(r) < 0) | (np.abs(poses[:, 3] - [0, 0, 0, 1]).max(axis=1) > 1e-6))
    if bad.size:
        raise DatasetFormatError(f"{source}: poses {bad[:5].tolist()} are not rigid transforms (a rotation and "
                                 "a translation, last row 0 0 0 1)")
    return poses


def _read_matrix(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    try:
        m = np.loadtxt(path, dtype=np.float64)
    except (OSError, ValueError) as e:
        raise DatasetFormatError(f"{path}: cannot parse numbers ({e})") from e
    if m.size != int(np.prod(shape)):
        raise DatasetFormatError(f"{path}: expected {np.prod(shape)} numbers, got {m.size}")
    return m.reshape(shape)


def seven_scenes_depth_intrinsics(root: str | Path) -> np.ndarray:
    """The depth camera's K: the folder's camera-intrinsics.txt, else 7-Scenes' published one."""
    k_path = Path(root) / "camera-intrinsics.txt"
    return _read_matrix(k_path, (3, 3)) if k_path.is_file() else np.array([[585.0, 0, 320], [0, 585.0, 240], [0, 0, 1]])


def seven_scenes_rgb_intrinsics(root: str | Path) -> np.ndarray:
    """The RGB camera's K (SEVEN_SCENES_RGB_OVER_DEPTH_FOCAL; principal point as given)."""
    return _seven_scenes_rgb_from_depth_k(seven_scenes_depth_intrinsics(root))


def _seven_scenes_rgb_from_depth_k(k_depth: np.ndarray) -> np.ndarray:
    k = np.array(k_depth, float)
    k[0, 0] *= SEVEN_SCENES_RGB_OVER_DEPTH_FOCAL
    k[1, 1] *= SEVEN_SCENES_RGB_OVER_DEPTH_FOCAL
    return k


def read_7scenes(root: str | Path) -> RGBDSequence:
    root = Path(root)
    colours = sorted(root.glob("frame-*.color.*"))
    if not colours:
        raise DatasetFormatError(f"{root}: no frame-*.color.* files (not a 7-Scenes sequence)")
    stems = [p.name.split(".")[0] for p in colours]
    depth = [root / f"{s}.depth.png" for s in stems]
    missing = [str(p) for p in depth if not p.is_file()]
    if missing:
        raise DatasetFormatError(f"{root}: missing depth files {missing[:3]}")
    poses = np.stack([_read_matrix(root / f"{s}.pose.txt", (4, 4)) for s in stems])
    camera = DepthCamera(seven_scenes_depth_intrinsics(root), SEVEN_SCENES_RGB_FROM_DEPTH_M)
    depth_from_rgb = np.eye(4)
    depth_from_rgb[:3, 3] = -np.asarray(camera.rgb_from_depth_m)
    world_from_rgb = _check_poses(poses, root) @ depth_from_rgb
    return RGBDSequence(colours, depth, _seven_scenes_rgb_from_depth_k(camera.intrinsics), world_from_rgb, 1e-3,
                        camera, root.name)


def natural_order(path: Path) -> tuple:
    """Sort key of a frame file: a name that is a number (a frame index, or a stamp in seconds written by
    str(float): 1700000000.1 before 1700000000.0333333 by digits) by its value; any other by its numbers as
    numbers, so 2.png comes before 10.png."""
    if re.fullmatch(r"\d+(\.\d+)?", path.stem):
        return 0, float(path.stem), []
    return 1, 0.0, [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def image_files(folder: Path) -> list[Path]:
    """A folder's .png/.jpg/.jpeg files in frame order (natural_order); none where the folder is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")), key=natural_order)


def read_hololens(root: str | Path) -> RGBDSequence:
    root = Path(root)
    images = image_files(root / "images")
    if not images:
        raise DatasetFormatError(f"{root}: no images/*.png|jpg (not a DeepVideoMVS HoloLens scene)")
    depth = [root / "depth" / (p.stem + ".png") for p in images]
    missing = [str(p) for p in depth if not p.is_file()]
    if missing:
        raise DatasetFormatError(f"{root}: missing depth files {missing[:3]}")
    poses = _read_matrix(root / "poses.txt", (len(images), 4, 4))
    k = _read_matrix(root / "K.txt", (3, 3))
    return RGBDSequence(images, depth, k, _check_poses(poses, root), 1e-3, None, root.name)


def read_list(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise DatasetFormatError(f"{path} does not exist (not a TUM RGB-D sequence)")
    rows = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rows.append(line.split())
    return rows


@dataclass
class TumFrame:
    """One RGB image of a TUM RGB-D sequence with the depth image and pose nearest in time
    (None where none lies within max_dt)."""

    stamp_s: float
    rgb_path: Path
    depth_path: Path | None
    camera_to_world: np.ndarray | None  # (4, 4)


def tum_frames(root: str | Path, max_dt: float = 0.02) -> list[TumFrame]:
    """Every image in rgb.txt, associated by nearest timestamp with depth.txt and groundtruth.txt
    ("stamp tx ty tz qx qy qz qw", world_from_camera). Either list file may be missing."""
    root = Path(root)
    rgb = read_list(root / "rgb.txt")
    depth = read_list(root / "depth.txt") if (root / "depth.txt").is_file() else []
    gt = read_list(root / "groundtruth.txt") if (root / "groundtruth.txt").is_file() else []
    try:
        depth_t = np.array([float(r[0]) for r in depth])
        depth_files = [r[1] for r in depth]  # here: a line without its file name is a malformed list
        gt_arr = np.array([[float(v) for v in r[:8]] for r in gt]).reshape(-1, 8)
        rgb_t = [float(r[0]) for r in rgb]
        rgb_files = [r[1] for r in rgb]
    except (ValueError, IndexError) as e:
        raise DatasetFormatError(f"{root}: malformed TUM list file ({e})") from e
    import transforms3d  # here, not at the top: the engine bench reads frames through this module on a GPU
    # machine whose image has no transforms3d (test_the_engine_bench_imports_on_a_gpu_machines_image)

    frames = []
    for t, name in zip(rgb_t, rgb_files):
        depth_path = pose = None
        if depth_t.size:
            d = int(np.argmin(np.abs(depth_t - t)))
            if abs(depth_t[d] - t) <= max_dt:
                depth_path = root / depth_files[d]
        if gt_arr.size:
            g = int(np.argmin(np.abs(gt_arr[:, 0] - t)))
            if abs(gt_arr[g, 0] - t) <= max_dt:
                tx, ty, tz, qx, qy, qz, qw = gt_arr[g, 1:]
                # transforms3d reads a zero quaternion as no rotation: a broken row became a false pose.
                if not (np.isfinite(gt_arr[g, 1:]).all() and abs(np.linalg.norm([qx, qy, qz, qw]) - 1) < 0.01):
                    raise DatasetFormatError(f"{root}: groundtruth.txt at {gt_arr[g, 0]:.4f} s is not a pose (position "
                                             "finite, quaternion of unit length)")
                pose = np.eye(4)
                pose[:3, :3] = transforms3d.quaternions.quat2mat([qw, qx, qy, qz])  # w-first
                pose[:3, 3] = [tx, ty, tz]
        frames.append(TumFrame(t, root / name, depth_path, pose))
    return frames


def tum_camera(root: str | Path) -> str:
    """Which of TUM's Kinects recorded a sequence (a TUM_CAMERAS key), from its folder name:
    rgbd_dataset_freiburg3_long_office_household, tum_fr2_desk. freiburg1 when the name says
    none, with a WARNING: a sequence of another camera must then carry camera-intrinsics.txt."""
    name = Path(root).resolve().name.lower()
    found = re.search(r"(?:freiburg|fr)([123])(?!\d)", name)
    if found is None:
        log.warning("%s: the folder name does not say which TUM camera (freiburg1/2/3) recorded it; reading it "
                    "as freiburg1 (add camera-intrinsics.txt, and camera-distortion.txt, for another camera)", root)
        return "freiburg1"
    return f"freiburg{found.group(1)}"


def tum_intrinsics(root: str | Path) -> np.ndarray:
    """The sequence's `camera-intrinsics.txt` (3x3) when it has one (a copy at another
    resolution must carry its own), else the published K of the camera its name says (tum_camera)."""
    k_path = Path(root) / "camera-intrinsics.txt"
    return _read_matrix(k_path, (3, 3)) if k_path.is_file() else TUM_CAMERAS[tum_camera(root)][0]


def tum_undistortion(root: str | Path, k: np.ndarray, first_image: Path) -> LensUndistortion | None:
    """The lens of a TUM sequence, or None for pinhole images: `camera-distortion.txt` (plumb_bob
    d0-d4) when the sequence has one (a copy at another resolution must carry it, with its own K),
    else the published distortion of the camera its name says, when the images have that camera's
    K (freiburg3's are published undistorted). Raises DatasetFormatError for images of another size
    than that calibration's, which would otherwise be read with a K that is not theirs."""
    d_path = Path(root) / "camera-distortion.txt"
    if d_path.is_file():
        d = _read_matrix(d_path, (5,))
    else:
        camera = tum_camera(root)
        camera_k, d = TUM_CAMERAS[camera]
        if not np.allclose(k, camera_k):
            return None  # a K of its own (camera-intrinsics.txt or given) and no lens file: pinhole
    image = imread_checked(first_image, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DatasetFormatError(f"cannot read image {first_image}")
    height, width = image.shape[:2]
    if not d_path.is_file() and (width, height) != TUM_CALIBRATION_SIZE:
        raise DatasetFormatError(
            f"{root}: {width}x{height} images read with the {camera} camera's 640x480 calibration; a copy at "
            "another size needs its own camera-intrinsics.txt (and camera-distortion.txt)")
    return LensUndistortion(k, d, width, height) if np.any(d) else None


def read_tum(root: str | Path, intrinsics: np.ndarray | None = None, max_dt: float = 0.02) -> RGBDSequence:
    """Frames are the RGB images that have a depth image and a pose within max_dt seconds, lens
    distortion removed where the camera has one (tum_undistortion)."""
    root = Path(root)
    complete = [f for f in tum_frames(root, max_dt) if f.depth_path is not None and f.camera_to_world is not None]
    if not complete:
        raise DatasetFormatError(f"{root}: no RGB frame has depth and pose within {max_dt} s "
                                 "(depth.txt and groundtruth.txt are needed)")
    k = tum_intrinsics(root) if intrinsics is None else np.asarray(intrinsics, dtype=np.float64)
    undistortion = tum_undistortion(root, k, complete[0].rgb_path)
    return RGBDSequence([f.rgb_path for f in complete], [f.depth_path for f in complete],
                        k if undistortion is None else undistortion.intrinsics,
                        np.stack([f.camera_to_world for f in complete]), TUM_DEPTH_SCALE, None, root.name,
                        undistortion)


READERS = {"7scenes": read_7scenes, "hololens": read_hololens, "tum": read_tum}


def read_sequence(root: str | Path, kind: str | None = None) -> RGBDSequence:
    """Read a sequence, detecting the format from the files when kind is None."""
    root = Path(root)
    if kind is None:
        if (root / "rgb.txt").is_file():
            kind = "tum"
        elif (root / "poses.txt").is_file() and (root / "images").is_dir():
            kind = "hololens"
        elif any(root.glob("frame-*.pose.txt")):
            kind = "7scenes"
        else:
            raise DatasetFormatError(f"{root}: not a 7-Scenes, HoloLens or TUM sequence")
    if kind not in READERS:
        raise DatasetFormatError(f"unknown sequence format {kind!r}; known: {', '.join(READERS)}")
    return READERS[kind](root)


def resize_frames(
    rgb: np.ndarray, depth: np.ndarray, intrinsics: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre-crop to the target aspect, then resize. rgb (T, H, W, 3) uint8, depth (T, H, W);
    returns resized rgb, depth (nearest, so invalid zeros never blend into valid depth) and the
    matching intrinsics (pixel centres at integers)."""
    th, tw = size
    h, w = rgb.shape[1:3]
    scale = max(th / h, tw / w)
    ch, cw = round(th / scale), round(tw / scale)
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    out_rgb = np.stack([cv2.resize(f[y0:y0 + ch, x0:x0 + cw], (tw, th), interpolation=cv2.INTER_AREA) for f in rgb])
    dh, dw = depth.shape[1:3]
    if (dh, dw) != (h, w):
        raise ValueError(f"depth {dh}x{dw} must match rgb {h}x{w}")
    # NEAREST_EXACT samples each output pixel's centre, as K does; NEAREST took the source pixel at its
    # corner, and a 3.75x reduction put every depth label 0.47 model px off its colour and K.
    out_depth = np.stack([cv2.resize(d[y0:y0 + ch, x0:x0 + cw], (tw, th), interpolation=cv2.INTER_NEAREST_EXACT)
                          for d in depth])
    return out_rgb, out_depth, crop_resize_intrinsics(intrinsics, x0, y0, tw / cw, th / ch)


def crop_resize_intrinsics(intrinsics: np.ndarray, x0: float, y0: float, sx: float, sy: float) -> np.ndarray:
    """K after cropping at (x0, y0) and scaling by (sx, sy), pixel centres at integers:
    x' = (x - x0 + 0.5) * sx - 0.5."""
    k = np.array(intrinsics, dtype=np.float64, copy=True)
    k[0, 0] *= sx
    k[1, 1] *= sy
    k[0, 2] = (k[0, 2] - x0 + 0.5) * sx - 0.5
    k[1, 2] = (k[1, 2] - y0 + 0.5) * sy - 0.5
    return k
