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

Issue #17 item 2 (look like the world, as FlyingThings and Kubric do), each behind a SceneConfig
field that is off by default: crops of real frames as textures, a per-clip light, exposure and
its drift, motion blur, sensor noise and JPEG (training.data.appearance; colours only, the labels
never change), fields of view of 45-100 deg, and camera motions drawn per clip: the smooth drift,
pure rotation, fast turns and hand-held shake. SceneConfig.realistic() turns them all on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from . import appearance

try:  # Embree is the fast ray caster; trimesh's pure-numpy fallback needs rtree and is ~100x slower.
    from trimesh.ray.ray_pyembree import RayMeshIntersector
except ImportError as e:  # pragma: no cover - embreex is pinned in requirements.txt
    raise ImportError("training.data.synthetic needs embreex (pip install embreex)") from e


MOTION_KINDS = ("smooth", "rotation", "turn", "shake")


@dataclass(frozen=True)
class SceneConfig:
    """Shape of one synthetic clip, how busy the scene is, and how it looks (issue #17 item 2).

    Every appearance and motion option is off by default, so that the model card's recorded
    commands still render the clips they trained on; SceneConfig.realistic() turns them all on.
    Per-clip draws for each option come from their own random streams (seeded by the clip seed),
    so a seed's room, objects and base camera path are the same whichever options are on."""

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
    # Edge of the room drawn per clip (metres, >= 3), and how far in front of the first camera
    # the objects stand. Near scenes (a desk at 1 m) teach metric depth what every far room
    # cannot: a head trained on 1.5-5 m objects in 8 m rooms read a 1.2 m desk at about 2.2x. None: room_size and
    # the old 1.5-5 m objects.
    room_size_range: tuple[float, float] | None = None
    object_depth_range: tuple[float, float] = (1.5, 5.0)
    camera_speed: float = 0.06  # metres per frame
    camera_turn_deg: float = 1.5  # yaw change per frame
    object_speed: float = 0.08  # metres per frame
    num_tracks: int = 64
    # Videos / image folders whose frames texture the surfaces (crops, tri-planar); () keeps the
    # procedural textures. Read at run time (training.data.video), never stored in the repo.
    texture_sources: tuple[str, ...] = ()
    texture_share: float = 1.0  # share of surfaces given a real texture when there are sources
    # Ambient share of a per-clip random directional light; None: the fixed light of old clips.
    light_ambient_range: tuple[float, float] | None = None
    # Exposure gain 2**EV drawn per clip, drifting by up to +-exposure_drift_ev over the clip (a
    # camera's auto-exposure at work); None: gain 1 and no drift.
    exposure_ev_range: tuple[float, float] | None = None
    exposure_drift_ev: float = 0.0
    # Shutter open for this share of the frame interval (drawn per clip): motion blur along each
    # pixel's image motion. None: no blur.
    shutter_range: tuple[float, float] | None = None
    # Sensor noise drawn per clip: shot-noise variance per unit intensity, read-noise std (both
    # on [0, 1] intensities). None: no noise.
    shot_noise_range: tuple[float, float] | None = None
    read_noise_range: tuple[float, float] | None = None
    jpeg_quality_range: tuple[int, int] | None = None  # JPEG quality per clip; None: no JPEG
    # Weights of the camera motion kinds of MOTION_KINDS, drawn per clip: smooth (drift with a
    # slow turn, the old motion), rotation (pure rotation, no translation: the case where
    # two-view geometry is degenerate), turn (a fast turn while moving), shake (the smooth path
    # with hand-held jitter).
    motion_weights: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    rotation_rate_deg: tuple[float, float] = (0.5, 3.0)  # pure rotation: yaw per frame
    turn_rate_deg: tuple[float, float] = (1.5, 3.0)  # fast turn: yaw per frame (3 = 90 deg/s at 30 Hz)
    shake_rotation_deg: float = 0.6  # hand-held shake: largest jitter rotation
    shake_translation_m: float = 0.006  # and translation, around the smooth path
    # The look-at height drifts linearly from the first frame's draw to the last's. False (the clips
    # of recorded training commands): drawn afresh each frame, a pitch that jumps up to 2.3 degrees
    # a frame in every motion kind, which no robot or hand-held camera does (review, session 52).
    smooth_nod: bool = False
    # Objects inside the room and clear of the camera. False (the clips of recorded training
    # commands): drawn 0.7-5 m ahead of a camera 1-2 m from a wall, in 3-4 m rooms most stood behind
    # the walls (1.8 of 5 seen), and a near one could enclose the camera (review, session 52).
    objects_in_room: bool = False

    def __post_init__(self):
        for name in _TUPLE_FIELDS:  # YAML gives lists; tuples keep the config hashable
            value = getattr(self, name)
            if isinstance(value, list):
                object.__setattr__(self, name, tuple(value))
        if isinstance(self.texture_sources, str):
            object.__setattr__(self, "texture_sources", (self.texture_sources,))
        _validate(self)

    @classmethod
    def realistic(cls, texture_sources=(), **fields) -> SceneConfig:
        """Every realism option on (REALISTIC), textured from texture_sources (folders or videos;
        empty: procedural textures); **fields override any of them."""
        return cls(**{**REALISTIC, "texture_sources": tuple(texture_sources), **fields})


_TUPLE_FIELDS = ("image_size", "fov_range_deg", "room_size_range", "object_depth_range",
                 "texture_sources", "light_ambient_range",
                 "exposure_ev_range", "shutter_range", "shot_noise_range", "read_noise_range",
                 "jpeg_quality_range", "motion_weights", "rotation_rate_deg", "turn_rate_deg")


def _check_range(cfg: SceneConfig, name: str, low: float, high: float, optional: bool = True) -> None:
    value = getattr(cfg, name)
    if value is None and optional:
        return
    ok = isinstance(value, tuple) and len(value) == 2 and all(np.isfinite(v) for v in value)
    if not ok or not low <= value[0] <= value[1] <= high:
        raise ValueError(f"SceneConfig.{name} must be a pair with {low} <= low <= high <= {high}, got {value!r}")


def _validate(cfg: SceneConfig) -> None:
    """The new fields, checked when the config is made (a typo fails before any rendering)."""
    for name, low, high in (("light_ambient_range", 0, 1), ("exposure_ev_range", -8, 8),
                            ("shutter_range", 0, 1), ("shot_noise_range", 0, 1),
                            ("read_noise_range", 0, 1), ("jpeg_quality_range", 1, 100)):
        _check_range(cfg, name, low, high)
    for name in ("rotation_rate_deg", "turn_rate_deg"):
        _check_range(cfg, name, 0, 45, optional=False)
    _check_range(cfg, "room_size_range", 3, 50)
    # a pinhole's field of view: (100, 45) failed only inside a worker's generate, and 180 rendered
    # with fx = 2e-16 (an infinite canonical-focal depth target)
    _check_range(cfg, "fov_range_deg", 1, 179)
    if not 1 <= cfg.fov_deg <= 179:
        raise ValueError(f"SceneConfig.fov_deg must be in [1, 179] degrees, got {cfg.fov_deg}")
    _check_range(cfg, "object_depth_range", 0.5, 20, optional=False)
    if cfg.jpeg_quality_range is not None and not all(float(q).is_integer() for q in cfg.jpeg_quality_range):
        raise ValueError(f"SceneConfig.jpeg_quality_range must hold integers, got {cfg.jpeg_quality_range!r}")
    if not isinstance(cfg.texture_sources, tuple) or not all(isinstance(s, str) and s for s in cfg.texture_sources):
        raise ValueError(f"SceneConfig.texture_sources must be a tuple of paths, got {cfg.texture_sources!r}")
    if not 0 <= cfg.texture_share <= 1:
        raise ValueError(f"SceneConfig.texture_share must be in [0, 1], got {cfg.texture_share}")
    weights = np.asarray(cfg.motion_weights, dtype=float)
    if weights.shape != (len(MOTION_KINDS),) or not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"SceneConfig.motion_weights must be {len(MOTION_KINDS)} weights >= 0 for "
                         f"{MOTION_KINDS} with a positive sum, got {cfg.motion_weights!r}")
    for name, high in (("exposure_drift_ev", 8), ("shake_rotation_deg", 10), ("shake_translation_m", 0.5)):
        value = getattr(cfg, name)
        if not 0 <= value <= high:
            raise ValueError(f"SceneConfig.{name} must be in [0, {high}], got {value}")


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
    motion: str = "smooth"  # the camera motion kind (MOTION_KINDS)


@dataclass
class _Object:
    mesh: trimesh.Trimesh  # in the object's own frame
    poses: np.ndarray  # (T, 4, 4) object-to-world per frame
    colour_a: np.ndarray
    colour_b: np.ndarray
    frequency: float
    static: bool
    # A real-image texture (mip pyramid, appearance.crop_texture) replacing the procedural one,
    # with the metres one crop spans and the crop's (u, v) offset.
    texture: list[np.ndarray] | None = None
    texture_span: float = 1.0
    texture_offset: np.ndarray | None = None


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
# the same whatever the field of view (and the same as before it varied). The other per-clip
# options have streams of their own for the same reason.
FOV_STREAM = 0x464F56
MOTION_STREAM = 0x4D4F54
ROOM_STREAM = 0x524F4F
TEXTURE_STREAM = 0x544558
PHOTO_STREAM = 0x50484F  # + an index per photometric option, so that each draws the same alone
FRAME_RATE_HZ = 30.0  # the rate the per-frame motion magnitudes assume
SHAKE_HZ = (2.0, 10.0)  # hand-held shake: hand tremor and steps, not the slow path
ROTATION_PITCH_DEG = 0.5  # pure rotation also tilts, up to this per frame
# Metres one texture crop spans: the room's walls take wide crops, objects about their size.
ROOM_TEXTURE_SPAN_M = (2.0, 5.0)
OBJECT_TEXTURE_SPAN_M = (0.5, 1.5)
# objects_in_room: metres between the camera and an object's bounding sphere at every frame (a
# closer camera fills the image with one surface or enters it), and the draws of a placement
# before an object that stays too close is shrunk instead.
CAMERA_CLEARANCE_M = 0.3
PLACEMENT_TRIES = 8

# What SceneConfig.realistic() sets: ranges of phone, webcam and action cameras.
REALISTIC = {
    "fov_range_deg": WORLD_FOV_RANGE_DEG,
    "light_ambient_range": (0.15, 0.6),
    "exposure_ev_range": (-1.0, 0.7),
    "exposure_drift_ev": 0.5,
    "shutter_range": (0.0, 0.7),
    "shot_noise_range": (0.0, 0.004),
    "read_noise_range": (0.001, 0.012),
    "jpeg_quality_range": (50, 95),
    "motion_weights": (0.4, 0.15, 0.2, 0.25),
    "room_size_range": (3.0, 8.0),
    "object_depth_range": (0.7, 5.0),
    "smooth_nod": True,
    "objects_in_room": True,
}

def clip_fov_deg(config: SceneConfig, seed: int) -> float:
    """The horizontal field of view of the clip of this seed (degrees)."""
    if config.fov_range_deg is None:
        return float(config.fov_deg)
    lo, hi = config.fov_range_deg
    if not 0 < lo <= hi < 180:
        raise ValueError(f"fov_range_deg must satisfy 0 < low <= high < 180, got {config.fov_range_deg}")
    return float(np.random.default_rng([seed, FOV_STREAM]).uniform(lo, hi))


def clip_room_size(config: SceneConfig, seed: int) -> float:
    """The room edge (metres) of the clip of this seed."""
    if config.room_size_range is None:
        return float(config.room_size)
    return float(np.random.default_rng([seed, ROOM_STREAM]).uniform(*config.room_size_range))


def clip_motion(config: SceneConfig, seed: int) -> str:
    """The camera motion kind (MOTION_KINDS) of the clip of this seed."""
    weights = np.asarray(config.motion_weights, dtype=float)
    if np.count_nonzero(weights) == 1:
        return MOTION_KINDS[int(np.flatnonzero(weights)[0])]
    rng = np.random.default_rng([seed, MOTION_STREAM])
    return MOTION_KINDS[int(rng.choice(len(MOTION_KINDS), p=weights / weights.sum()))]


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


def _rotvec(v: np.ndarray) -> np.ndarray:
    """(3, 3) rotation of angle |v| about v."""
    angle = np.linalg.norm(v)
    return np.eye(3) if angle < 1e-15 else _rotation(v / angle, angle)[:3, :3]


@dataclass
class _PathDraws:
    """The main stream's camera draws: where the camera starts, how it drifts and turns."""

    eye: np.ndarray
    yaw0: float
    velocity: np.ndarray
    turn: float  # radians per frame, signed
    dz: list[float]  # per-frame height of the look-at target (a slight nod)


def _path(draws: _PathDraws, velocity: np.ndarray, turn: float) -> np.ndarray:
    """(T, 4, 4) camera-to-world moving at `velocity` per frame and turning `turn` per frame."""
    cameras = []
    for i, dz in enumerate(draws.dz):
        yaw = draws.yaw0 + turn * i
        pos = draws.eye + velocity * i
        target = pos + np.array([np.cos(yaw), np.sin(yaw), dz])
        cameras.append(_look_at(pos, target))
    return np.stack(cameras)


def _shake(rng: np.random.Generator, config: SceneConfig, num_frames: int) -> np.ndarray:
    """(T, 4, 4) camera-frame jitter of a hand-held camera: each of the 3 rotation and 3
    translation axes is a mix of three sinusoids of SHAKE_HZ, scaled so that the jitter's
    rotation angle stays within shake_rotation_deg and its offset within shake_translation_m."""
    rot_amp = np.radians(config.shake_rotation_deg) * rng.uniform(0.3, 1.0)
    trans_amp = config.shake_translation_m * rng.uniform(0.3, 1.0)
    frames = np.arange(num_frames)
    signals = []
    for _ in range(6):
        freq = rng.uniform(*SHAKE_HZ, size=3)[:, None] / FRAME_RATE_HZ
        phase = rng.uniform(0, 2 * np.pi, size=3)[:, None]
        weight = rng.dirichlet(np.ones(3))[:, None]  # sums to 1: |signal| <= 1
        signals.append((weight * np.sin(2 * np.pi * freq * frames + phase)).sum(0))
    signal = np.stack(signals, axis=1) / np.sqrt(3)  # a 3-vector of them has norm <= 1
    jitter = np.repeat(np.eye(4)[None], num_frames, 0)
    for i in range(num_frames):
        jitter[i, :3, :3] = _rotvec(rot_amp * signal[i, :3])
        jitter[i, :3, 3] = trans_amp * signal[i, 3:]
    return jitter


def camera_path(draws: _PathDraws, kind: str, config: SceneConfig, rng: np.random.Generator) -> np.ndarray:
    """(T, 4, 4) camera-to-world of a motion kind; `rng` is the clip's motion stream. Every kind
    starts from the same first camera, and turns the way the smooth path does."""
    sign = 1.0 if draws.turn >= 0 else -1.0
    t = len(draws.dz)
    if kind == "smooth":
        return _path(draws, draws.velocity, draws.turn)
    if kind == "turn":
        return _path(draws, draws.velocity, sign * np.radians(rng.uniform(*config.turn_rate_deg)))
    if kind == "rotation":
        # Zero velocity: every frame's camera centre is draws.eye exactly.
        yawing = _path(draws, np.zeros(3), sign * np.radians(rng.uniform(*config.rotation_rate_deg)))
        pitch = np.radians(rng.uniform(-ROTATION_PITCH_DEG, ROTATION_PITCH_DEG))
        for i in range(t):
            yawing[i, :3, :3] = yawing[i, :3, :3] @ _rotation(np.array([1.0, 0, 0]), pitch * i)[:3, :3]
        return yawing
    if kind == "shake":
        return _path(draws, draws.velocity, draws.turn) @ _shake(rng, config, t)
    raise ValueError(f"unknown camera motion {kind!r}, expected one of {MOTION_KINDS}")


class SceneGenerator:
    """generate(seed) -> SyntheticClip, deterministic for a seed."""

    def __init__(self, config: SceneConfig = SceneConfig()):
        self.config = config

    def _build(self, rng: np.random.Generator, seed: int):
        cfg = self.config
        t = cfg.num_frames
        room_size = clip_room_size(cfg, seed)
        half = room_size / 2
        objects = []
        room = trimesh.creation.box(extents=[room_size] * 3)
        room.apply_translation([0, 0, half])  # floor at z = 0
        objects.append(self._textured(rng, room, np.repeat(np.eye(4)[None], t, 0), True, 1.2))
        # Camera: starts near one wall region, drifts with a slow turn, looks into the room.
        eye = np.array([rng.uniform(-1, 1), -half + rng.uniform(1.0, 2.0), rng.uniform(1.2, 2.0)])
        yaw0 = np.pi / 2 + rng.uniform(-0.4, 0.4)
        velocity = rng.normal(size=3) * np.array([1, 1, 0.2])
        velocity *= cfg.camera_speed / max(np.linalg.norm(velocity), 1e-9)
        turn = np.radians(cfg.camera_turn_deg) * rng.choice([-1, 1])
        nods = [rng.uniform(-0.02, 0.02) - 0.15 for _ in range(t)]  # drawn either way: the stream stays
        if cfg.smooth_nod:
            nods = list(np.linspace(nods[0], nods[-1], t))
        draws = _PathDraws(eye, yaw0, velocity, turn, nods)
        smooth = _path(draws, velocity, turn)
        kind = clip_motion(cfg, seed)
        cameras = smooth if kind == "smooth" else camera_path(
            draws, kind, cfg, np.random.default_rng([seed, MOTION_STREAM, 1]))
        # Objects in front of the smooth path's first camera (the same room whatever the motion).
        objects.extend(self._random_object(rng, smooth[0], static=k < cfg.num_static, room_size=room_size,
                                           eyes=cameras[:, :3, 3])
                       for k in range(cfg.num_static + cfg.num_moving))
        return objects, cameras, kind

    def _random_object(self, rng: np.random.Generator, view: np.ndarray, static: bool,
                       room_size: float, eyes: np.ndarray) -> _Object:
        """A primitive object_depth_range in front of `view`, still or moving at object_speed
        with a spin. With objects_in_room: inside the room and CAMERA_CLEARANCE_M clear of the
        camera at every frame (eyes: (T, 3) the camera centres)."""
        cfg = self.config
        mesh = _random_primitive(rng)
        radius = float(np.linalg.norm(mesh.extents)) / 2  # the bounding box's: every shape and spin within it
        # Cleared from the first camera only, a moving object (0.08 m a frame) and the moving camera
        # met later in the clip: 5 frames in 1000 8-frame clips showed an object's inside. So the
        # whole path is checked against every frame's camera, and a placement too close redrawn.
        tries = []
        for _ in range(PLACEMENT_TRIES if cfg.objects_in_room else 1):
            poses = self._placement(rng, view, static, room_size, radius)
            gap = float(np.linalg.norm(poses[:, :3, 3] - eyes, axis=1).min()) - radius
            tries.append((gap, poses))
            if gap >= CAMERA_CLEARANCE_M:
                break
        gap, poses = max(tries, key=lambda tried: tried[0])
        if cfg.objects_in_room and gap < CAMERA_CLEARANCE_M:  # no try was clear (a big object, a small room):
            mesh.apply_scale(max(gap + radius - CAMERA_CLEARANCE_M, 0.1) / radius)  # smaller, clear of it
        return self._textured(rng, mesh, poses, static, rng.uniform(3.0, 8.0))

    def _placement(self, rng: np.random.Generator, view: np.ndarray, static: bool, room_size: float,
                   radius: float) -> np.ndarray:
        """(T, 4, 4) object-to-world of one draw of where an object stands and how it moves."""
        cfg = self.config
        t = cfg.num_frames
        local = np.array([rng.uniform(-1.5, 1.5), rng.uniform(-0.8, 0.6), rng.uniform(*cfg.object_depth_range)])
        # Inside the room: drawn up to 5 m ahead of a camera 1-2 m from a wall, most objects of a
        # 3-4 m room stood behind its walls (1.8 of 5 seen).
        if cfg.objects_in_room:
            local[2] = max(local[2], radius + CAMERA_CLEARANCE_M)
        centre = view[:3, :3] @ local + view[:3, 3]
        if cfg.objects_in_room:
            half = room_size / 2
            centre[:2] = np.clip(centre[:2], -half + radius, half - radius)
        centre[2] = np.clip(centre[2], 0.6, room_size - 1.0)
        axis0 = rng.normal(size=3)
        start = _rotation(axis0, rng.uniform(0, 2 * np.pi))
        start[:3, 3] = centre
        if static:
            return np.repeat(start[None], t, 0)
        v = rng.normal(size=3)
        v *= cfg.object_speed / np.linalg.norm(v)
        spin_axis, spin = rng.normal(size=3), rng.uniform(-0.15, 0.15)
        poses = []
        for i in range(t):
            p = start @ _rotation(spin_axis, spin * i)
            p[:3, 3] = centre + v * i
            poses.append(p)
        return np.stack(poses)

    @staticmethod
    def _textured(rng, mesh, poses, static, frequency) -> _Object:
        a = rng.uniform(0.15, 1.0, 3)
        b = rng.uniform(0.0, 1.0, 3) * 0.6
        return _Object(mesh, poses, a, b, frequency, static)

    def _add_real_textures(self, objects: list[_Object], seed: int) -> None:
        """Give texture_share of the surfaces (room first) a crop of a real frame. Draws come
        from the texture stream, the same number per object, so the share changes which
        surfaces get one and nothing else."""
        cfg = self.config
        if not cfg.texture_sources:
            return
        pool = appearance.texture_pool(tuple(cfg.texture_sources))
        rng = np.random.default_rng([seed, TEXTURE_STREAM])
        for n, obj in enumerate(objects):
            real = rng.random() < cfg.texture_share
            levels = appearance.crop_texture(pool, rng)
            span = rng.uniform(*(ROOM_TEXTURE_SPAN_M if n == 0 else OBJECT_TEXTURE_SPAN_M))
            offset = rng.uniform(0, 2, 2)
            if real:
                obj.texture, obj.texture_span, obj.texture_offset = levels, span, offset

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

    def _light(self, seed: int) -> appearance.Light:
        if self.config.light_ambient_range is None:
            return appearance.DEFAULT_LIGHT
        rng = np.random.default_rng([seed, PHOTO_STREAM, 0])
        return appearance.random_light(self.config.light_ambient_range, rng)

    def generate(self, seed: int) -> SyntheticClip:
        cfg = self.config
        rng = np.random.default_rng(seed)
        objects, cameras, kind = self._build(rng, seed)
        self._add_real_textures(objects, seed)
        t, (h, w) = cfg.num_frames, cfg.image_size
        k = intrinsics_for(cfg.image_size, clip_fov_deg(cfg, seed))
        rgb, depth, ids, hit_world, scenes = self._render(objects, cameras, k, self._light(seed))
        query_t, query_pix, owner_q, tracks_world = self._query_tracks(rng, objects, ids, hit_world)
        xy, visible = self._project_tracks(tracks_world, cameras, k, scenes, (h, w))
        query_points = np.stack([query_t, query_pix // w, query_pix % w], axis=1).astype(np.float32)
        return SyntheticClip(
            rgb=self._develop(rgb.reshape(t, h, w, 3), objects, cameras, k, ids, hit_world, seed),
            depth=depth.reshape(t, h, w),
            intrinsics=k,
            camera_to_world=cameras,
            object_ids=ids.reshape(t, h, w),
            query_points=query_points,
            tracks_xy=xy.astype(np.float32),
            tracks_visible=visible,
            tracks_static=np.array([objects[o].static for o in owner_q], dtype=bool),
            tracks_world=tracks_world,
            motion=kind,
        )

    def _render(self, objects: list[_Object], cameras: np.ndarray, k: np.ndarray, light: appearance.Light):
        """One ray per pixel centre and frame: shaded colour (T, HW, 3) float in [0, 1], depth
        (T, HW), object ids (T, HW), the world point each ray hit (T, HW, 3), and each frame's
        ray caster (for the tracks' occlusion test)."""
        t, (h, w) = len(cameras), self.config.image_size
        ys, xs = np.mgrid[0:h, 0:w]
        pixels = np.stack([xs.ravel(), ys.ravel(), np.ones(h * w)], axis=1)
        rays_cam = pixels @ np.linalg.inv(k).T  # z = 1
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
            shade = light.ambient + light.diffuse * np.abs(normals @ light.direction)
            footprint = np.linalg.norm(loc - origin, axis=1) / k[0, 0]  # metres under one pixel
            for obj_id in np.unique(owner[tri]):
                sel = owner[tri] == obj_id
                colour = self._surface_colour(objects[obj_id], i, loc[sel], normals[sel], footprint[sel])
                rgb[i, ray[sel]] = colour * shade[sel, None]
        if light.tint is not None:
            rgb = np.clip(rgb * light.tint, 0, 1)
        return rgb, depth, ids, hit_world, scenes

    def _surface_colour(self, obj: _Object, frame: int, world: np.ndarray, normals: np.ndarray,
                        footprint: np.ndarray) -> np.ndarray:
        """(N, 3) albedo of an object's surface points, looked up in its own frame."""
        to_local = np.linalg.inv(obj.poses[frame])
        local = world @ to_local[:3, :3].T + to_local[:3, 3]
        if obj.texture is None:
            return self._colour(obj, local)
        return appearance.texture_colour(obj.texture, obj.texture_span, obj.texture_offset, local,
                                         normals @ to_local[:3, :3].T, footprint)

    def _develop(self, rgb, objects, cameras, k, ids, hit_world, seed: int) -> np.ndarray:
        """(T, H, W, 3) uint8 from the rendered colours: motion blur, exposure, sensor noise,
        quantisation and JPEG, each only when its option is set (off: the old rounding alone).
        Each option draws from its own stream, so turning one on leaves the others' draws."""
        cfg = self.config
        streams = [np.random.default_rng([seed, PHOTO_STREAM, n]) for n in range(1, 5)]
        if cfg.shutter_range is not None:
            shutter = streams[0].uniform(*cfg.shutter_range)
            flow = _image_velocity(objects, cameras, k, ids, hit_world, cfg.image_size)
            rgb = appearance.motion_blur(rgb, shutter * flow)
        if cfg.exposure_ev_range is not None:
            ev = streams[1].uniform(*cfg.exposure_ev_range)
            drift = streams[1].uniform(-cfg.exposure_drift_ev, cfg.exposure_drift_ev)
            gain = 2.0 ** (ev + drift * np.linspace(0, 1, len(rgb)))
            rgb = np.clip(rgb * gain[:, None, None, None], 0, 1)
        if cfg.shot_noise_range is not None or cfg.read_noise_range is not None:
            shot = streams[2].uniform(*cfg.shot_noise_range) if cfg.shot_noise_range is not None else 0.0
            read = streams[2].uniform(*cfg.read_noise_range) if cfg.read_noise_range is not None else 0.0
            rgb = appearance.sensor_noise(rgb, shot, read, streams[2])
        out = (rgb * 255).round().astype(np.uint8)
        if cfg.jpeg_quality_range is not None:
            lo, hi = cfg.jpeg_quality_range
            out = appearance.jpeg(out, int(streams[3].integers(lo, hi + 1)))
        return out

    def _query_tracks(self, rng, objects, ids, hit_world):
        """num_tracks random query pixels (frame, pixel) of the (t, h*w) object-id image, each on
        an object: (query frame, query pixel, owner id, world track (Q, t, 3))."""
        t, hw = ids.shape
        query_t = rng.integers(0, t, self.config.num_tracks)
        query_pix = rng.integers(0, hw, self.config.num_tracks)
        valid = ids[query_t, query_pix] >= 0
        if not valid.all() and (ids >= 0).any():
            # Rays that met nothing (a camera that drove out of a small room in a 16-frame clip):
            # those queries drawn again on pixels that show something, so every clip has num_tracks
            # (fewer, and stacking a batch failed).
            hit_t, hit_pix = np.nonzero(ids >= 0)
            pick = rng.integers(0, len(hit_t), int((~valid).sum()))
            query_t[~valid], query_pix[~valid] = hit_t[pick], hit_pix[pick]
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


def _image_velocity(objects: list[_Object], cameras: np.ndarray, k: np.ndarray, ids: np.ndarray,
                    hit_world: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """(T, H, W, 2) pixels per frame that each pixel's surface point moves at its frame: the
    point is carried by its object's motion and projected into the neighbouring frames (a
    central difference, one-sided at the ends). Pixels whose point leaves the front of the
    camera get no motion."""
    t, hw = ids.shape
    velocity = np.zeros((t, hw, 2))
    for i in range(t):
        prev, nxt = max(i - 1, 0), min(i + 1, t - 1)
        if prev == nxt:
            break
        ends, ok = [], np.ones(hw, bool)
        for j in (prev, nxt):
            moved = np.zeros((hw, 3))
            for obj_id in np.unique(ids[i]):
                sel = ids[i] == obj_id
                carry = objects[obj_id].poses[j] @ np.linalg.inv(objects[obj_id].poses[i])
                moved[sel] = hit_world[i, sel] @ carry[:3, :3].T + carry[:3, 3]
            cam = (moved - cameras[j, :3, 3]) @ cameras[j, :3, :3]  # world -> camera j
            ok &= cam[:, 2] > 1e-3
            uv = cam @ k.T
            ends.append(uv[:, :2] / np.where(ok, uv[:, 2], 1.0)[:, None])
        velocity[i, ok] = (ends[1][ok] - ends[0][ok]) / (nxt - prev)
    return velocity.reshape(t, *image_size, 2)

