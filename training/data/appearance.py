"""How the synthetic clips look beyond the procedural default (issue #17 item 2): surfaces
textured with crops of real frames, per-clip lighting, exposure, motion blur, sensor noise and
JPEG compression, as FlyingThings and Kubric do so that a model trained on them sees real-looking
images.

Everything here changes colours only: depth, poses and tracks come from the geometry and are
never touched, so the labels stay exact whatever the image looks like.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fourds_ros.evaluation.datasets import upright_rgb

from .video import VideoSourceError, count_frames, find_sources, read_frames

# Frames read from each texture source: four per video, 12 frames apart (0.4 s at 30 fps, so the
# camera has moved between them) within its first 37, so that a pool of many videos loads in seconds
# (decoding stops at the last index) and stays small. A source holding fewer frames (a short clip,
# or a folder of every 8th frame as tools/gpu_session_data.py writes them) gives as many spread
# over the frames it has: read at these indices, each of the GPU session's 18 folders (5-28
# frames) gave frame 0 only, 18 pool frames where the same videos give 72.
TEXTURE_FRAMES = (0, 12, 24, 36)
TEXTURE_MAX_SIDE = 320  # pool frames are shrunk to this: crops are resized to TEXTURE_SIZE anyway
TEXTURE_SIZE = 128  # side of one texture crop, texels
# Mip levels (128 .. 8 texels): one ray per pixel samples a far, minified texture at a single
# point, which aliases into noise that changes from frame to frame; a level whose texels are
# about a pixel wide keeps a distant surface's colour steady, as tracking needs.
TEXTURE_LEVELS = 5


@functools.lru_cache(maxsize=4)
def texture_pool(sources: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """uint8 RGB frames of every video and image folder under `sources`, read once per process
    (the train and held-aside datasets share them)."""
    frames: list[np.ndarray] = []
    for source in find_sources(list(sources)):
        frames.extend(_shrink(f) for f in _read_some(source))
    return tuple(frames)


def _read_some(source: Path) -> np.ndarray:
    if source.is_dir():
        return read_frames(source, texture_indices(count_frames(source)))
    return _read_video(source)


def texture_indices(available: int) -> list[int]:
    """The frames read from a source of `available` frames: TEXTURE_FRAMES when it has them all,
    else min(available, len(TEXTURE_FRAMES)) frames spread over the ones it has."""
    if available > max(TEXTURE_FRAMES):
        return list(TEXTURE_FRAMES)
    if available < 1:
        raise ValueError(f"a texture source needs a frame, got {available}")
    return sorted({int(i) for i in np.round(np.linspace(0, available - 1, len(TEXTURE_FRAMES)))})


def _read_video(source: Path) -> np.ndarray:
    """TEXTURE_FRAMES of a video in one decoding pass that stops at the last of them; a video that
    ends before it is read again (a second pass as short) at texture_indices of its length.
    Why not video.count_frames first: it decodes every frame of every pool video."""
    import av  # only video files need PyAV

    last, frames, seen = max(TEXTURE_FRAMES), {}, 0
    try:
        with av.open(str(source)) as container:
            for frame in container.decode(video=0):
                if seen in TEXTURE_FRAMES:
                    frames[seen] = upright_rgb(frame)
                seen += 1
                if seen > last:
                    break
    except (av.error.FFmpegError, IndexError) as e:
        raise VideoSourceError(f"{source}: cannot decode ({e})") from e
    if not seen:
        raise VideoSourceError(f"{source}: no frame could be decoded")
    if seen > last and len({f.shape for f in frames.values()}) == 1:
        return np.stack([frames[i] for i in TEXTURE_FRAMES])
    return read_frames(source, texture_indices(seen))  # also names a video of mixed frame sizes


def _shrink(frame: np.ndarray) -> np.ndarray:
    scale = TEXTURE_MAX_SIDE / max(frame.shape[:2])
    if scale >= 1:
        return frame
    size = (max(1, round(frame.shape[1] * scale)), max(1, round(frame.shape[0] * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def crop_texture(pool: tuple[np.ndarray, ...], rng: np.random.Generator) -> list[np.ndarray]:
    """A random square crop of a random pool frame as a mip pyramid of float32 [0, 1] images."""
    frame = pool[int(rng.integers(len(pool)))]
    h, w = frame.shape[:2]
    side = max(2, int(min(h, w) * rng.uniform(0.3, 0.9)))
    y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = cv2.resize(frame[y0:y0 + side, x0:x0 + side], (TEXTURE_SIZE, TEXTURE_SIZE),
                      interpolation=cv2.INTER_AREA)
    levels = [crop.astype(np.float32) / 255]
    for _ in range(TEXTURE_LEVELS - 1):
        levels.append(cv2.pyrDown(levels[-1]))
    return levels


# The two in-plane axes of the face whose normal is mostly along x, y or z.
_PLANE_AXES = np.array([[1, 2], [0, 2], [0, 1]])


def texture_colour(levels: list[np.ndarray], span_m: float, offset: np.ndarray, local: np.ndarray,
                   normal_local: np.ndarray, footprint_m: np.ndarray) -> np.ndarray:
    """(N, 3) colours of surface points given in the object's own frame (so the texture moves
    with the surface, as tracks need): tri-planar mapping (each face takes the two coordinates
    across its dominant normal axis), `span_m` metres per crop, mirrored tiling so tiles meet
    without a seam, and the mip level whose texel matches the pixel footprint (metres)."""
    axes = _PLANE_AXES[np.argmax(np.abs(normal_local), axis=1)]
    uv = np.take_along_axis(local, axes, axis=1) / span_m + offset
    uv = 1 - np.abs(np.mod(uv, 2) - 1)
    texels = footprint_m / span_m * TEXTURE_SIZE
    level = np.clip(np.floor(np.log2(np.maximum(texels, 1))), 0, len(levels) - 1).astype(np.int64)
    out = np.empty((len(local), 3))
    for lv in np.unique(level):
        sel = level == lv
        out[sel] = _bilinear(levels[lv], uv[sel])
    return out


def _bilinear(image: np.ndarray, uv: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    x, y = uv[:, 0] * (w - 1), uv[:, 1] * (h - 1)
    x0 = np.clip(np.floor(x).astype(np.int64), 0, w - 2)
    y0 = np.clip(np.floor(y).astype(np.int64), 0, h - 2)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    top = image[y0, x0] * (1 - fx) + image[y0, x0 + 1] * fx
    bottom = image[y0 + 1, x0] * (1 - fx) + image[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


@dataclass(frozen=True)
class Light:
    """A directional light (world unit vector) with two-sided Lambert shading plus ambient:
    shade = ambient + diffuse * |n . direction|, times a per-channel tint (None: white)."""

    direction: np.ndarray
    ambient: float
    diffuse: float
    tint: np.ndarray | None = None


# Today's fixed light: the literal 0.45 and 0.55 (1 - 0.45 differs from 0.55 in the last bit,
# and the default clips must stay bit-identical).
DEFAULT_LIGHT = Light(np.array([0.3, -0.5, 0.8]) / np.linalg.norm([0.3, -0.5, 0.8]), 0.45, 0.55)


def random_light(ambient_range: tuple[float, float], rng: np.random.Generator) -> Light:
    """A light from above (elevation 20-80 deg, any azimuth), ambient share drawn in
    ambient_range, the rest diffuse, and a slight colour tint (warm or cool light)."""
    elevation, azimuth = np.radians(rng.uniform(20, 80)), rng.uniform(0, 2 * np.pi)
    direction = np.array([np.cos(elevation) * np.cos(azimuth), np.cos(elevation) * np.sin(azimuth),
                          np.sin(elevation)])
    ambient = float(rng.uniform(*ambient_range))
    tint = 1 + rng.uniform(-0.1, 0.1, 3)
    return Light(direction, ambient, 1 - ambient, tint / tint.mean())


def motion_blur(rgb: np.ndarray, streak: np.ndarray, max_samples: int = 9) -> np.ndarray:
    """rgb (T, H, W, 3) float; streak (T, H, W, 2): pixels each pixel's surface travels while the
    shutter is open. The average of the image sampled along each pixel's own streak, centred on
    it: a cheap stand-in for averaging sub-frame renders (one gather per sample, no re-render)."""
    n = int(np.clip(np.ceil(np.abs(streak).max(initial=0.0)) + 1, 1, max_samples))
    if n < 2:  # under half a pixel of motion: nothing to blur
        return rgb
    t, h, w = rgb.shape[:3]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.zeros(rgb.shape, np.float64)
    for i in range(t):
        frame, sx, sy = rgb[i].astype(np.float32), streak[i, ..., 0], streak[i, ..., 1]
        for s in np.linspace(-0.5, 0.5, n):
            mx, my = (xs + s * sx).astype(np.float32), (ys + s * sy).astype(np.float32)
            out[i] += cv2.remap(frame, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return out / n


def sensor_noise(rgb: np.ndarray, shot: float, read: float, rng: np.random.Generator) -> np.ndarray:
    """Shot noise (variance proportional to the signal, `shot` per unit intensity) plus read
    noise (std `read`), on [0, 1] intensities, clipped back to [0, 1]."""
    sigma = np.sqrt(shot * rgb + read**2)
    return np.clip(rgb + sigma * rng.standard_normal(rgb.shape), 0, 1)


def jpeg(frames: np.ndarray, quality: int) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB through a JPEG encode and decode at `quality` (1-100)."""
    out = np.empty_like(frames)
    for i, frame in enumerate(frames):
        ok, buf = cv2.imencode(".jpg", frame[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
        if not ok:  # pragma: no cover - cv2 encodes any uint8 image
            raise RuntimeError("JPEG encoding failed")
        out[i] = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]
    return out


# The motion-blur streak `redevelop` draws per clip, model pixels: up to a fast turn at 30 Hz with
# the shutter half open. (Exposure, noise and JPEG ranges come from the synthetic preset.)
REAL_STREAK_PX = (0.0, 4.0)


def redevelop(video: np.ndarray, rng: np.random.Generator, looks: dict) -> np.ndarray:
    """video: (T, H, W, 3) uint8 RGB of a real clip -> the same clip as another camera setting might
    have recorded it: one motion-blur streak per clip (uniform direction, length in
    REAL_STREAK_PX), an exposure gain 2**EV drifting over the clip, shot and read noise, and a JPEG
    round trip, drawn from `looks` (synthetic.REALISTIC's exposure_ev_range, exposure_drift_ev,
    shot_noise_range, read_noise_range, jpeg_quality_range). Geometry and labels do not change.
    Why: the real training scenes are two cameras' worth of looks, and a new camera is darker or
    noisier (TUM fr1's darker frames have the larger depth error: correlation -0.54)."""
    rgb = video.astype(np.float32) / 255.0
    angle, length = rng.uniform(0, 2 * np.pi), rng.uniform(*REAL_STREAK_PX)
    streak = np.broadcast_to(np.float32([np.cos(angle), np.sin(angle)]) * length, rgb.shape[:3] + (2,))
    rgb = motion_blur(rgb, streak)
    drift = rng.uniform(-1, 1) * looks["exposure_drift_ev"] * np.linspace(0, 1, len(rgb))
    rgb = np.clip(rgb * (2.0 ** (rng.uniform(*looks["exposure_ev_range"]) + drift))[:, None, None, None], 0, 1)
    rgb = sensor_noise(rgb, rng.uniform(*looks["shot_noise_range"]), rng.uniform(*looks["read_noise_range"]), rng)
    low, high = looks["jpeg_quality_range"]
    return jpeg((rgb * 255).round().astype(np.uint8), int(rng.integers(low, high + 1)))


# recolour's draws: a white balance per channel (log-uniform gains) and a saturation, grey in a
# quarter of the clips (a monochrome camera).
WHITE_BALANCE_GAIN = (0.75, 1.33)
SATURATION_RANGE = (0.3, 1.3)
GREY_FRACTION = 0.25


def recolour(video: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """video: (T, H, W, 3) uint8 RGB of a real clip -> the same clip in another camera's colours:
    one white balance (a gain per channel from WHITE_BALANCE_GAIN, log-uniform, the clip's
    brightness kept) and one saturation (SATURATION_RANGE, or grey in GREY_FRACTION of the clips)
    for the whole clip. Geometry and labels do not change.
    Why (docs/results/session44): stage 20 read its training kitchen at depth AbsRel 0.120 in colour
    and 0.223 in grey (metric 0.113 -> 1.49), while the validation desk read 0.227 in colour and
    0.218 in grey: on its training rooms the model reads depth from their colours, which no new
    camera or room shares."""
    rgb = video.astype(np.float32)
    gains = np.exp(rng.uniform(*np.log(WHITE_BALANCE_GAIN), size=3)).astype(np.float32)
    luma = np.float32([0.299, 0.587, 0.114])
    gains /= float(gains @ luma)  # the same brightness
    rgb = rgb * gains
    saturation = 0.0 if rng.random() < GREY_FRACTION else rng.uniform(*SATURATION_RANGE)
    grey = (rgb @ luma)[..., None]
    rgb = grey + np.float32(saturation) * (rgb - grey)
    return np.clip(rgb, 0, 255).round().astype(np.uint8)
