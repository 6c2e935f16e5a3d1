"""Procedural synthetic 4D scenes rendered by ray casting (trimesh + Intel Embree via embreex).

Every clip is a closed, textured room with static and moving objects seen by a moving pinhole
camera. Each pixel is one ray through the pixel centre, so depth, poses, intrinsics and point
tracks agree exactly: a visible track point re-projects onto its pixel with ~0 error. The same
seed always gives the same clip (all randomness comes from one numpy Generator).

Conventions: OpenCV optical frame (x right, y down, z forward); pixel (x, y) integer coordinates
are pixel centres; `camera_to_world` maps camera-frame points to world (metres); depth is the
z coordinate in the camera frame (not the ray length).

Textures are solid (3-D procedural) textures evaluated in each object's own frame, so a point on a
moving object keeps its colour: the appearance moves with the surface, which tracks need.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

try:  # Embree is the fast ray caster; trimesh's pure-numpy fallback needs rtree and is ~100x slower.
    from trimesh.ray.ray_pyembree import RayMeshIntersector
except ImportError as e:  # pragma: no cover - embreex is pinned in requirements.txt
    raise ImportError("training.data.synthetic needs embreex (pip install embreex)") from e


@dataclass(frozen=True)
class SceneConfig:
    """Shape of one synthetic clip and how busy the scene is."""

    num_frames: int = 8
    image_size: tuple[int, int] = (64, 64)  # (H, W)
    fov_deg: float = 60.0  # horizontal field of view when fov_range_deg is None
    # Horizontal field of view drawn per clip, uniform in degrees (WORLD_FOV_RANGE_DEG: a depth
    # head that saw one focal length learns that camera's scale, and a canonical-focal head needs
    # many to learn what a focal change does). None, the default: fov_deg, so that the model
    # card's recorded commands still render the clips they trained on.
    fov_range_deg: tuple[float, float] | None = None
    num_static: int = 3
    num_moving: int = 2
    room_size: float = 8.0  # edge of the cubic room, metres
    camera_speed: float = 0.06  # metres per frame
    camera_turn_deg: float = 1.5  # yaw change per frame
    object_speed: float = 0.08  # metres per frame
    num_tracks: int = 64


@dataclass
class SyntheticClip:
    """rgb: (T, H, W, 3) uint8; depth: (T, H, W) float32 metres; intrinsics: (3, 3);
    camera_to_world: (T, 4, 4); object_ids: (T, H, W) int16 (0 is the room);
    query_points: (Q, 3) (t, y, x) at pixel centres; tracks_xy: (Q, T, 2) pixel (x, y);
    tracks_visible: (Q, T) bool; tracks_static: (Q,) bool (point on static geometry);
    tracks_world: (Q, T, 3) the tracked surface point in world coordinates."""

    rgb: np.ndarray
    depth: np.ndarray
    intrinsics: np.ndarray
    camera_to_world: np.ndarray
    object_ids: np.ndarray
    query_points: np.ndarray
    tracks_xy: np.ndarray
    tracks_visible: np.ndarray
    tracks_static: np.ndarray
    tracks_world: np.ndarray


@dataclass
class _Object:
    mesh: trimesh.Trimesh  # in the object's own frame
    poses: np.ndarray  # (T, 4, 4) object-to-world per frame
    colour_a: np.ndarray
    colour_b: np.ndarray
    frequency: float
    static: bool


def _look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """camera-to-world (4, 4) of an OpenCV camera at eye looking at target, world z up."""
    forward = target - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([right, down, forward], axis=1)
    pose[:3, 3] = eye
    return pose


def intrinsics_for(image_size: tuple[int, int], fov_deg: float) -> np.ndarray:
    h, w = image_size
    f = 0.5 * w / np.tan(np.radians(fov_deg) / 2)
    return np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]], dtype=np.float64)


# Narrow webcams to wide action cameras (issue #17: "fields of view from about 45 to 100 degrees").
WORLD_FOV_RANGE_DEG = (45.0, 100.0)
# The field of view comes from its own random stream, so a seed's room, objects and motion are
# the same whatever the field of view (and the same as before it varied).
FOV_STREAM = 0x464F56


def clip_fov_deg(config: SceneConfig, seed: int) -> float:
    """The horizontal field of view of the clip of this seed (degrees)."""
    if config.fov_range_deg is None:
        return float(config.fov_deg)
    lo, hi = config.fov_range_deg
    if not 0 < lo <= hi < 180:
        raise ValueError(f"fov_range_deg must satisfy 0 < low <= high < 180, got {config.fov_range_deg}")
    return float(np.random.default_rng([seed, FOV_STREAM]).uniform(lo, hi))


def _random_primitive(rng: np.random.Generator) -> trimesh.Trimesh:
    kind = rng.integers(4)
    size = rng.uniform(0.35, 0.8)
    if kind == 0:
        return trimesh.creation.box(extents=rng.uniform(0.5, 1.0, 3) * size * 1.5)
    if kind == 1:
        return trimesh.creation.icosphere(subdivisions=2, radius=size)
    if kind == 2:
        return trimesh.creation.cylinder(radius=size * 0.6, height=size * 1.6, sections=24)
    return trimesh.creation.capsule(radius=size * 0.5, height=size, count=[12, 12])


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    return trimesh.transformations.rotation_matrix(angle, axis)


class SceneGenerator:
    """generate(seed) -> SyntheticClip, deterministic for a seed."""

    def __init__(self, config: SceneConfig = SceneConfig()):
        self.config = config

    def _build(self, rng: np.random.Generator):
        cfg = self.config
        t = cfg.num_frames
        half = cfg.room_size / 2
        objects = []
        room = trimesh.creation.box(extents=[cfg.room_size] * 3)
        room.apply_translation([0, 0, half])  # floor at z = 0
        objects.append(self._textured(rng, room, np.repeat(np.eye(4)[None], t, 0), True, 1.2))
        # Camera: starts near one wall region, drifts with a slow turn, looks into the room.
        eye = np.array([rng.uniform(-1, 1), -half + rng.uniform(1.0, 2.0), rng.uniform(1.2, 2.0)])
        yaw0 = np.pi / 2 + rng.uniform(-0.4, 0.4)
        velocity = rng.normal(size=3) * np.array([1, 1, 0.2])
        velocity *= cfg.camera_speed / max(np.linalg.norm(velocity), 1e-9)
        turn = np.radians(cfg.camera_turn_deg) * rng.choice([-1, 1])
        cameras = []
        for i in range(t):
            yaw = yaw0 + turn * i
            pos = eye + velocity * i
            target = pos + np.array([np.cos(yaw), np.sin(yaw), rng.uniform(-0.02, 0.02) - 0.15])
            cameras.append(_look_at(pos, target))
        cameras = np.stack(cameras)
        # Objects in front of the first camera, 1.5-5 m away.
        view = cameras[0]
        for k in range(cfg.num_static + cfg.num_moving):
            static = k < cfg.num_static
            mesh = _random_primitive(rng)
            local = np.array([rng.uniform(-1.5, 1.5), rng.uniform(-0.8, 0.6), rng.uniform(1.5, 5.0)])
            centre = view[:3, :3] @ local + view[:3, 3]
            centre[2] = np.clip(centre[2], 0.6, cfg.room_size - 1.0)
            axis0 = rng.normal(size=3)
            start = _rotation(axis0, rng.uniform(0, 2 * np.pi))
            start[:3, 3] = centre
            if static:
                poses = np.repeat(start[None], t, 0)
            else:
                v = rng.normal(size=3)
                v *= cfg.object_speed / np.linalg.norm(v)
                spin_axis, spin = rng.normal(size=3), rng.uniform(-0.15, 0.15)
                poses = []
                for i in range(t):
                    p = start @ _rotation(spin_axis, spin * i)
                    p[:3, 3] = centre + v * i
                    poses.append(p)
                poses = np.stack(poses)
            objects.append(self._textured(rng, mesh, poses, static, rng.uniform(3.0, 8.0)))
        return objects, cameras

    @staticmethod
    def _textured(rng, mesh, poses, static, frequency) -> _Object:
        a = rng.uniform(0.15, 1.0, 3)
        b = rng.uniform(0.0, 1.0, 3) * 0.6
        return _Object(mesh, poses, a, b, frequency, static)

    @staticmethod
    def _scene_at(objects: list[_Object], frame: int):
        meshes, owners = [], []
        for k, obj in enumerate(objects):
            m = obj.mesh.copy()
            m.apply_transform(obj.poses[frame])
            meshes.append(m)
            owners.append(np.full(len(m.faces), k, dtype=np.int16))
        combined = trimesh.util.concatenate(meshes)
        return combined, np.concatenate(owners), RayMeshIntersector(combined)

    @staticmethod
    def _colour(obj: _Object, local: np.ndarray) -> np.ndarray:
        """Solid texture in the object's frame: checkerboard blended with stripes, (N, 3) in [0, 1]."""
        f = obj.frequency
        # The 0.37 offset keeps cell edges off axis-aligned faces (the room walls), which would
        # otherwise flicker between two cells from float round-off.
        checker = (np.floor(local * f + 0.37).astype(np.int64).sum(-1) % 2)[:, None]
        stripes = 0.5 + 0.5 * np.sin(local @ np.array([2.1, -1.3, 0.7]) * f * 2.7)[:, None]
        return np.clip(obj.colour_a * (0.45 + 0.55 * checker) + obj.colour_b * stripes * 0.5, 0, 1)

    def generate(self, seed: int) -> SyntheticClip:
        cfg = self.config
        rng = np.random.default_rng(seed)
        objects, cameras = self._build(rng)
        t, (h, w) = cfg.num_frames, cfg.image_size
        k = intrinsics_for(cfg.image_size, clip_fov_deg(cfg, seed))
        ys, xs = np.mgrid[0:h, 0:w]
        pixels = np.stack([xs.ravel(), ys.ravel(), np.ones(h * w)], axis=1)
        rays_cam = pixels @ np.linalg.inv(k).T  # z = 1
        light = np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8])
        rgb = np.zeros((t, h * w, 3), np.float64)
        depth = np.zeros((t, h * w), np.float32)
        ids = np.full((t, h * w), -1, np.int16)
        scenes = []
        hit_world = np.zeros((t, h * w, 3))
        for i in range(t):
            mesh, owner, caster = self._scene_at(objects, i)
            scenes.append(caster)
            rot, origin = cameras[i, :3, :3], cameras[i, :3, 3]
            dirs = rays_cam @ rot.T
            tri, ray, loc = caster.intersects_id(
                np.repeat(origin[None], h * w, 0), dirs, multiple_hits=False, return_locations=True
            )
            depth[i, ray] = (loc - origin) @ rot[:, 2]
            ids[i, ray] = owner[tri]
            hit_world[i, ray] = loc
            normals = mesh.face_normals[tri]
            # Two-sided Lambert so the inside of the room is lit too.
            shade = 0.45 + 0.55 * np.abs(normals @ light)
            for obj_id in np.unique(owner[tri]):
                sel = owner[tri] == obj_id
                obj = objects[obj_id]
                to_local = np.linalg.inv(obj.poses[i])
                local = loc[sel] @ to_local[:3, :3].T + to_local[:3, 3]
                rgb[i, ray[sel]] = self._colour(obj, local) * shade[sel, None]
        query_t, query_pix, owner_q, tracks_world = self._query_tracks(rng, objects, ids, hit_world)
        xy, visible = self._project_tracks(tracks_world, cameras, k, scenes, (h, w))
        query_points = np.stack([query_t, query_pix // w, query_pix % w], axis=1).astype(np.float32)
        return SyntheticClip(
            rgb=(rgb.reshape(t, h, w, 3) * 255).round().astype(np.uint8),
            depth=depth.reshape(t, h, w),
            intrinsics=k,
            camera_to_world=cameras,
            object_ids=ids.reshape(t, h, w),
            query_points=query_points,
            tracks_xy=xy.astype(np.float32),
            tracks_visible=visible,
            tracks_static=np.array([objects[o].static for o in owner_q], dtype=bool),
            tracks_world=tracks_world,
        )

    def _query_tracks(self, rng, objects, ids, hit_world):
        """num_tracks random query pixels (frame, pixel) of the (t, h*w) object-id image, those on
        an object kept: (query frame, query pixel, owner id, world track (Q, t, 3))."""
        t, hw = ids.shape
        query_t = rng.integers(0, t, self.config.num_tracks)
        query_pix = rng.integers(0, hw, self.config.num_tracks)
        valid = ids[query_t, query_pix] >= 0
        query_t, query_pix = query_t[valid], query_pix[valid]
        owner_q = ids[query_t, query_pix]
        world_q = hit_world[query_t, query_pix]
        tracks_world = np.zeros((len(query_t), t, 3))
        for n, (tq, obj_id) in enumerate(zip(query_t, owner_q)):
            obj = objects[obj_id]
            local = np.linalg.inv(obj.poses[tq]) @ np.append(world_q[n], 1.0)
            tracks_world[n] = (obj.poses @ local)[:, :3]
        return query_t, query_pix, owner_q, tracks_world

    @staticmethod
    def _project_tracks(points, cameras, k, scenes, image_size):
        """points: (Q, T, 3) world. Visible = in front, inside the image, and the first surface
        the camera ray meets is the point itself (ray-cast occlusion test)."""
        h, w = image_size
        q, t = points.shape[:2]
        xy = np.zeros((q, t, 2))
        visible = np.zeros((q, t), bool)
        for i in range(t):
            world_to_cam = np.linalg.inv(cameras[i])
            cam = points[:, i] @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
            z = cam[:, 2]
            uv = cam @ k.T
            xy[:, i] = uv[:, :2] / np.where(np.abs(uv[:, 2:]) < 1e-9, 1e-9, uv[:, 2:])
            inside = (z > 1e-3) & (xy[:, i, 0] >= -0.5) & (xy[:, i, 0] <= w - 0.5)
            inside &= (xy[:, i, 1] >= -0.5) & (xy[:, i, 1] <= h - 0.5)
            if not inside.any():
                continue
            origin = cameras[i, :3, 3]
            dirs = points[inside, i] - origin
            dist = np.linalg.norm(dirs, axis=1)
            _, ray, loc = scenes[i].intersects_id(
                np.repeat(origin[None], len(dirs), 0), dirs / dist[:, None],
                multiple_hits=False, return_locations=True,
            )
            hit = np.full(len(dirs), np.inf)
            hit[ray] = np.linalg.norm(loc - origin, axis=1)
            visible[np.flatnonzero(inside), i] = hit >= dist - (1e-3 + 1e-3 * dist)
        return xy, visible


def relative_poses(camera_to_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 4, 4) camera-to-world -> rotation (T, 3, 3), translation (T, 3) of T_first_from_t,
    the PoseHead contract: a point in camera t maps to camera 0 as R p + t."""
    rel = np.linalg.inv(camera_to_world[0])[None] @ camera_to_world
    return rel[:, :3, :3], rel[:, :3, 3]
