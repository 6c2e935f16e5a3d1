"""A camera mounted rolled by quarter turns about its optical axis (upside down, portrait): its images
turned upright before the model, and every output turned back into the camera's own image and frame.

Why: the model learned upright views. On the validation scene (TUM fr1/rpy) turned 180 degrees its
depth AbsRel is 0.297 and 0.306 at 90 degrees, against 0.235 upright and the constant's 0.253
(models/fourds_default/README.md, session 23). Turning the image by quarter turns is exact (no
resampling), so the model sees the upright camera's very frames.

Conventions: `turns` counts counter-clockwise quarter turns that make the image upright (np.rot90).
The upright view is a virtual camera at the same place: its optical axis is the camera's, its x and
y axes turned, R_upright_camera = Rz(-90 degrees x turns) in optical coordinates.
"""

from __future__ import annotations

import dataclasses

import numpy as np


def quarter_turns(degrees: int) -> int:
    """0 / 90 / 180 / 270 (counter-clockwise) -> 0..3."""
    if degrees % 90:
        raise ValueError(f"image_rotation must be a multiple of 90 degrees, got {degrees}")
    return (degrees // 90) % 4


def rotate_image(image: np.ndarray, turns: int) -> np.ndarray:
    """(H, W, ...) -> the image turned `turns` quarter turns counter-clockwise, contiguous."""
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def rotate_pixels(u: np.ndarray, v: np.ndarray, turns: int, hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates (u right, v down) of an (H, W) = hw image -> their coordinates in the image
    turned `turns` quarter turns counter-clockwise (pixel centres at integers)."""
    h, w = hw
    for _ in range(turns % 4):  # one turn: (u, v) -> (v, W - 1 - u), and the image becomes (W, H)
        u, v = v, (w - 1) - u
        h, w = w, h
    return u, v


def camera_pixels(u: np.ndarray, v: np.ndarray, turns: int, upright_hw: tuple[int, int]
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates in the upright image (H, W) = upright_hw -> the same pixels in the camera's own
    image (the quarter turns that undo `turns`)."""
    return rotate_pixels(u, v, (4 - turns) % 4, upright_hw)


def camera_hw(upright_hw: tuple[int, int], turns: int) -> tuple[int, int]:
    """(H, W) of the upright image -> (H, W) of the camera's own image."""
    return (upright_hw[1], upright_hw[0]) if turns % 2 else tuple(upright_hw)


def rotate_k(k: np.ndarray, turns: int, hw: tuple[int, int]) -> np.ndarray:
    """3x3 K of an (H, W) image -> K of that image turned `turns` quarter turns counter-clockwise."""
    k = np.asarray(k, float)
    cx, cy = rotate_pixels(k[0, 2], k[1, 2], turns, hw)
    fx, fy = (k[1, 1], k[0, 0]) if turns % 2 else (k[0, 0], k[1, 1])
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def upright_from_camera(turns: int) -> np.ndarray:
    """4x4 T_upright_camera: a point in the camera's optical frame -> the upright view's."""
    angle = -np.pi / 2 * turns
    c, s = round(np.cos(angle)), round(np.sin(angle))
    t = np.eye(4)
    t[:2, :2] = [[c, -s], [s, c]]
    return t


def upright_turns(base_from_camera: np.ndarray, max_tilt_deg: float = 60.0) -> int | None:
    """The image_rotation, in quarter turns, that a camera with this mount (4x4 T_base_camera, base z
    up as in REP-103) needs for upright images: the nearest quarter turn that brings the base's up
    onto the image's up. None when the camera looks more than max_tilt_deg up or down, where its
    roll says little about how its images stand."""
    camera_from_base = np.asarray(base_from_camera, float)[:3, :3].T
    up = camera_from_base @ np.array([0.0, 0.0, 1.0])  # the base's up in optical coordinates
    if abs(up[2]) > np.sin(np.radians(max_tilt_deg)):  # along the optical axis: looking up or down
        return None
    angle = np.degrees(np.arctan2(up[0], -up[1]))  # from the image's up (-y) towards its right (+x)
    return int(round(angle / 90.0)) % 4


def to_camera(result, turns: int, upright_hw: tuple[int, int]):
    """A pipeline FrameResult of the upright view (its input image (H, W) = upright_hw) -> the same in
    the camera's own image and optical frame: K, depth (and its K and colour), the tracks' u v and
    xyz, odom_from_camera. A copy; odom_from_base, covariances and twist are the base's, unchanged."""
    if not turns:
        return result
    back = (4 - turns) % 4  # the quarter turns that take the upright image back to the camera's
    camera_from_upright = np.linalg.inv(upright_from_camera(turns))
    changes = {"k": rotate_k(result.k, back, upright_hw)}
    if result.depth is not None:
        hw = result.depth.shape[:2]
        changes.update(depth=rotate_image(result.depth, back), depth_k=rotate_k(result.depth_k, back, hw),
                       depth_rgb=None if result.depth_rgb is None else rotate_image(result.depth_rgb, back))
    if result.tracks is not None:
        ts = result.tracks
        u, v = camera_pixels(ts.u.astype(float), ts.v.astype(float), turns, upright_hw)
        xyz = (ts.xyz.astype(float) @ camera_from_upright[:3, :3].T).astype(np.float32)
        changes["tracks"] = dataclasses.replace(ts, u=u.astype(np.float32), v=v.astype(np.float32), xyz=xyz)
    if result.pose is not None:
        changes["pose"] = dataclasses.replace(result.pose, odom_from_camera=result.pose.odom_from_camera
                                              @ upright_from_camera(turns))
    return dataclasses.replace(result, **changes)
