"""PerceptionPipeline: the single place where frames become clips and clips become outputs.

    pipeline = PerceptionPipeline(create_engine(model_dir), PerceptionSettings.from_params(hop=2))
    for rgb, stamp_ns in frames:               # rgb: (H, W, 3) uint8 RGB, stamp_ns: int
        for result in pipeline.push(rgb, stamp_ns, "camera", k):   # k: 3x3 or None
            result.stamp_ns, result.frame_id   # the input frame this result describes
            result.depth, result.depth_k       # (H_out, W_out) float32 metres (REP 117: -inf/+inf below
                                               # min_depth/above max_depth, NaN none); 3x3
            result.tracks                      # TrackSet: ids, u, v (input px), xyz, visible, confidence
            result.pose                        # PoseEstimate: odom_from_camera 4x4, covariance...

`push` = `add_frame` (clip buffer, cheap, any thread) + `process` (one engine call per clip).
The ROS node calls the two halves from different threads so that inference never blocks the
subscription; the offline evaluator calls `push`. Both get identical results.

Each clip of T frames is run through the engine once (one encoder pass feeds every head); the
results describe the clip's `new_frames` last frames (all T for the first clip of a sequence), so
with hop h every input frame is described exactly once, h frames per clip, unless clips are
dropped under overload. Disabled outputs (`enable_*`) are None.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import cv2
import numpy as np

from .camera import Lens
from .clip_buffer import Clip, ClipBuffer, Frame, default_hop
from .epipolar import (MIN_INLIERS, essential_motion, follow_corner_steps, follow_corners, rotation_from_steps,
                       rotation_guess, step_motions, stepwise_direction, turn_translations, views_would_measure)
from .exclusion import box_list, excluded_input_pixels, excluded_model_pixels
from .image_rotation import (
    camera_hw, camera_pixels, quarter_turns, rotate_image, rotate_k, rotate_pixels, to_camera, upright_from_camera,
    upright_turns,
)
from .metric_scale import DepthReferenceScale, ReferenceScale
from .odometry import OdometryChain, PoseEstimate, transform_from_xyz_quat
from .pose_geometry import (HEAD_MAX_TRANSLATION_M, RELINK_PARALLAX_PX, GeometryPose, clip_pose, finite_head, head_overruled,
                            off_period_frames, solve_clip_motion)
from .preprocess import PixelMap, Preprocessor, backproject, default_intrinsics, partly_blind, sample_nearest, texture_map, view_texture
from .settings import PerceptionSettings
from .track_refine import gray8
from .tracks import ClipImages, TrackManager, TrackSet
from .work_image import WorkImage


@dataclass
class FrameResult:
    stamp_ns: int
    frame_id: str
    index: int  # running input frame index
    k: np.ndarray  # 3x3 K of the input image (camera_info, or the assumed default)
    has_camera_info: bool
    depth: np.ndarray | None = None  # (H_out, W_out) float32 metres; -inf/+inf out of range, NaN none (_range_marked)
    depth_k: np.ndarray | None = None  # 3x3 K of the depth image
    depth_rgb: np.ndarray | None = None  # (H_out, W_out, 3) uint8 colour for depth/points
    tracks: TrackSet | None = None
    pose: PoseEstimate | None = None


@dataclass
class ClipResult:
    frames: list[FrameResult]
    inference_s: float
    odometry_restarted: bool = False  # this clip starts a new odometry chain at identity
    # The odometry chain the poses belong to: the buffer sequence it started at, so it grows at each
    # odometry reset. A path of poses from two chains is no path (OutputMessages starts a new one), and
    # a chain a reset has ended since is not published (PerceptionPipeline.odometry_current).
    odometry_chain: int = 0
    blind: int = 0  # of `frames`, those too dark or flat to see (depth NaN, odometry held)
    partly_blind: int = 0  # of `frames`, those that see nothing on a part of the view (preprocess.partly_blind)
    # Seconds of the clip's CPU stages after the engine (STAGES; absent: the stage did not run): where
    # a node's clip time goes beside its engine's (/diagnostics, `fourds-ros bench node`).
    stage_s: dict[str, float] = field(default_factory=dict)
    # The camera.Lens the clip's frames were undistorted with (None: none): the node maps the tracks'
    # pixels back to the camera's own image with it (outputs.py).
    lens: Lens | None = None
    # Stages that raised on this clip ("tracks", "pose") -> "ExceptionType: message": their outputs are absent
    # (no tracks; no poses, so the odometry chain takes the next clip across a gap) and the rest goes out.
    failed: dict[str, str] = field(default_factory=dict)
    # What the clip's outputs carry that a team must see (kind -> message): frames without any depth, a pose
    # head that gave no motion. Warned on /diagnostics as the blind frames are (NodeHealth.record_clip).
    warnings: dict[str, str] = field(default_factory=dict)


# Masks kept per image size (exclude_boxes): a clip asks for the working size and, with depth at camera
# resolution, the camera's; one per size ever seen grew without bound (500 sizes: 170 MB).
MASK_SIZES_KEPT = 2


def _keep_last(cache: dict, key, value) -> None:
    """cache[key] = value, the oldest entry dropped beyond MASK_SIZES_KEPT."""
    if len(cache) >= MASK_SIZES_KEPT:
        del cache[next(iter(cache))]
    cache[key] = value


# The timed stages of PerceptionPipeline.process after the engine call; epipolar is part of pose.
STAGES = ("refine", "tracks_update", "pose", "epipolar")


class StageClock:
    """Seconds spent in named stages of one clip: `with clock("pose"): ...`; a stage entered twice adds up."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0


class ClipFailed(RuntimeError):
    """PerceptionPipeline.process raised in `stage` ("inference": the frames' preprocessing and the
    engine; then "depth", "tracks", "pose"), from the exception that did (__cause__): a node names the
    stage. In a node's pipeline (isolate_stages) the tracks and pose stages fail on their own instead
    (ClipResult.failed, PerceptionPipeline._isolated)."""

    def __init__(self, stage: str, cause: Exception):
        self.stage = stage
        super().__init__(f"{stage} failed: {type(cause).__name__}: {cause}")


# Said once at configure with metric_scale_source: model, because a costmap or an EKF takes the metres
# as they come: the default model read a desk it never saw at 2.4x its depth (models/fourds_default/README.md).
MODEL_METRES_NOTE = ("depth, points and odometry are in the model's own metres (metric_scale_source: model): "
                     "they hold on scenes like the model's training rooms, and on the validation scene the depth "
                     "read 2.4x too far; a robot with wheel odometry should set metric_scale_source: "
                     "reference_odometry (launch: reference_odom_topic:=/odom), or metric_scale_factor from "
                     "`fourds-ros calibrate-scale` on an RGB-D recording of its site")


def reference_scales(scale, enabled: dict) -> tuple[ReferenceScale | None, DepthReferenceScale | None]:
    """The model's metres rescaled by the robot's own odometry, or by an RGB-D camera's registered
    depth (metric_scale.py), for a settings.ScaleSettings; None for a source not chosen. ValueError
    where the model or the settings lack the output the reference is compared with (enabled: the
    pipeline's heads in use): it never counted a clip, and said so nowhere."""
    needs = {"reference_odometry": "pose", "reference_depth": "depth"}.get(scale.source)
    if needs and not enabled[needs]:
        raise ValueError(f"metric_scale_source {scale.source} compares the reference with the model's {needs}: "
                         f"this model or enable_{needs} gives none")
    odometry = (ReferenceScale(scale.min_distance_m, scale.max_rotation_deg, scale.window, scale.min_clips,
                               scale.factor) if scale.source == "reference_odometry" else None)
    depth = DepthReferenceScale(scale.factor, scale.window) if scale.source == "reference_depth" else None
    return odometry, depth


def model_engine(settings: PerceptionSettings, model_dir=None, backend: str | None = None,
                 logger: logging.Logger | None = None):
    """The engine the settings' model parameters name (model, backend, device, precision, num_queries,
    inference_threads), made as the node makes it. model_dir, backend: an evaluation command's --model and
    --backend instead of the settings' (empty model: the installed default). Why one function: the offline
    evaluator made its engine with the backend alone, so `--param precision=bf16` scored fp32. logger: where
    the engine factory says what it chose and why (default: Python logging's)."""
    from ..engine import create_engine

    m = settings.model
    return create_engine(model_dir or m.resolved_path(), backend=backend or m.backend, device=m.device,
                         precision=m.precision, num_queries=m.num_queries, threads=m.inference_threads, logger=logger)


class _CallbackHandler(logging.Handler):
    """Python logging records as calls of a node's logger: info below WARNING, warn from it."""

    def __init__(self, info: Callable[[str], None], warn: Callable[[str], None]):
        super().__init__()
        self.info, self.warn = info, warn

    def emit(self, record: logging.LogRecord) -> None:
        # One call site per severity: rclpy keeps one severity per calling line, and raised "Logger severity
        # cannot be changed between calls" at the first warning after an info here, failing configure.
        if record.levelno >= logging.WARNING:
            self.warn(record.getMessage())
        else:
            self.info(record.getMessage())


def callback_logger(info: Callable[[str], None], warn: Callable[[str], None] | None = None) -> logging.Logger:
    """A logging.Logger (the engine factory's interface) that hands its records to `info` and `warn`. Why: the
    node's log never said why backend auto skipped TensorRT (the factory's INFO records went to Python logging,
    which a ROS node does not show), while on a GPU robot that reason is what a team needs."""
    # Made, not got: getLogger would register one logger per pipeline for the life of the process.
    logger = logging.Logger("fourds_ros.engine", logging.INFO)  # noqa: LOG001
    logger.addHandler(_CallbackHandler(info, warn or info))
    return logger


def heads_missing(settings: PerceptionSettings, heads) -> list[str]:
    """The outputs the settings enable that the model has no head for (warned of); CheckpointError where it
    has none of them. Why: a backbone-only import (`fourds-ros import-official` of a model without readouts)
    configured, reported healthy and published nothing, after ONNX Runtime refused a graph with no output;
    eval --offline ran it and scored nothing."""
    from ..model import CheckpointError

    enabled = [name for name in ("depth", "tracks", "pose") if getattr(settings, name).enable]
    missing = [name for name in enabled if name not in heads]
    if enabled and len(missing) == len(enabled):
        raise CheckpointError(f"the model has none of the enabled outputs' heads ({', '.join(enabled)}; it has "
                              f"{', '.join(heads) or 'none'}): it would publish nothing")
    return missing


def create_pipeline(settings: PerceptionSettings, log=print, warn=None) -> tuple[PerceptionPipeline, str]:
    """The engine the settings name (empty model: the installed default), warmed up with one
    inference, in a pipeline. -> (pipeline, description of the backend). Raises on a bad model or
    backend, so that configure fails with the reason instead of the first clip. log, warn: the node's
    logger's info and warning; the engine factory's choice and its reasons go there too."""
    from ..model.checkpoint import load_config

    path = settings.model.resolved_path()
    missing = heads_missing(settings, load_config(path).heads)  # before the engine: its export needs an output
    if missing:
        (warn or log)(f"model {path} has no {' or '.join(missing)} head: {', '.join(missing)} not published "
                      f"({', '.join(f'enable_{name}: false' for name in missing)} says so)")
    engine = model_engine(settings, path, logger=callback_logger(log, warn))
    if settings.diagnostics.debug_inference_delay_ms > 0:
        from .slow_engine import SlowEngine

        engine = SlowEngine(engine, settings.diagnostics.debug_inference_delay_ms / 1e3)
        log(f"debug_inference_delay_ms set: {engine.describe()}")
    # One inference now, so the first clip does not pay for lazy allocation.
    inputs = {"video": np.zeros((1, *engine.config.clip_shape), np.float32)}
    if "tracks" in engine.config.heads:
        inputs["query_points"] = np.zeros((1, engine.spec.num_queries, 3), np.float32)
    t0 = time.perf_counter()
    engine(inputs)
    log(f"model {path}: warm-up inference {(time.perf_counter() - t0) * 1e3:.1f} ms")
    if settings.scale.source == "model" and (settings.depth.enable or settings.pose.enable):
        log(MODEL_METRES_NOTE if settings.scale.factor == 1.0 else
            f"depth, points and odometry are the model's metres times metric_scale_factor {settings.scale.factor}")
    pipeline = PerceptionPipeline(engine, settings)
    pipeline.isolate_stages = True  # a node keeps a clip's other outputs when its tracks or pose stage raises
    return pipeline, engine.describe()


def _range_marked(depth: np.ndarray, out_of_range: np.ndarray) -> np.ndarray:
    """The published depth image of (H, W) NaN-cut metres: -inf where the reading was below
    min_depth and +inf where above max_depth (out_of_range -1 / +1), as REP 117 (by way of REP 118)
    has a range sensor's too-close and beyond-range readings; a consumer reads NaN as an error, so
    NaN stays only where there is no depth (none from the model, a blind frame, excluded pixels).
    A copy where anything is marked: `depth` stays NaN-cut for the tracks' xyz and the pose."""
    if not out_of_range.any():
        return depth
    marked = depth.copy()
    marked[out_of_range < 0] = -np.inf
    marked[out_of_range > 0] = np.inf
    return marked


def padded_stamps(stamps_ns: list[int], padding: int) -> list[int]:
    """A clip's stamps with its last `padding` frames (the last real frame repeated, Clip.padding) placed on at the
    real frames' median step, so that the pose's smoothing stays in time (repeated stamps fell back to frame
    counts: a short sequence with a dropped frame was fitted 16 % off)."""
    if not padding:
        return list(stamps_ns)
    real = [int(s) for s in stamps_ns[:len(stamps_ns) - padding]]
    step = max(int(np.median(np.diff(real))), 1) if len(real) > 1 else 1
    return real + [real[-1] + step * (k + 1) for k in range(padding)]


class PerceptionPipeline:
    def __init__(self, engine, settings: PerceptionSettings | None = None):
        self.engine = engine
        self.settings = s = settings or PerceptionSettings()
        cfg = engine.config
        self.clip_length, self.model_hw = cfg.num_frames, tuple(cfg.image_size)
        self.heads = set(cfg.heads)
        hop = s.clip.hop or default_hop(self.clip_length)
        self.buffer = ClipBuffer(self.clip_length, hop, s.clip.max_gap_s)
        self.preprocess = Preprocessor(self.model_hw, s.clip.crop_policy)
        # The engine's extra inputs, as the head registry declares them: query points for tracks.
        self.takes_queries = "query_points" in engine.spec.input_shapes
        self.tracks = TrackManager(engine.spec.num_queries if self.takes_queries else 0, self.model_hw, s.tracks)
        # A camera mounted rolled (image_rotation): the pipeline works on the upright view, a virtual
        # camera at the same place, and turns its results back into the camera's (image_rotation.py).
        self.turns = quarter_turns(s.inputs.image_rotation)
        self.exclude_boxes = box_list(s.inputs.exclude_boxes)  # the robot itself in view (exclusion.py)
        self._excluded, self._off_robot = {}, {}  # exclude_boxes' model- and camera-pixel masks: last sizes' (_keep_last)
        # The last frame's working image (a large camera's scaled down, work_image.py; its camera_hw
        # is the frame's size turned upright), and track queries that came before any frame, placed
        # in it when the first one comes: (N, 2) upright camera pixels, the newest num_queries, and their (N,) stamps.
        self._work: WorkImage | None = None
        self._mount = self._mount_in_use = None  # set_camera_mount's newest (upright), and the odometry's
        self._trails_frame: Frame | None = None  # the last frame `process` described: trails() are in its pixels
        self._early_queries, self._early_stamps = np.empty((0, 2)), np.empty(0, np.int64)
        self.odometry = OdometryChain.from_settings(s.pose,
                                                    self._upright_mount(transform_from_xyz_quat(s.pose.base_from_camera)))
        # A head's outputs are used when the model has it and its settings group enables it.
        self.enabled = {name: getattr(s, name).enable and name in self.heads for name in ("depth", "tracks", "pose")}
        self.reference_scale, self.reference_depth = reference_scales(s.scale, self.enabled)
        # The pose's geometry solves on the tracks: they are made with enable_tracks false too, only not
        # published (without them the engine's placeholder queries, 64 copies of pixel (0, 0), were its
        # "tracks": PnP failed on every frame and the costlier relinked steps stood in).
        self.tracks_made = self.enabled["tracks"] or (self.enabled["pose"] and s.pose.source != "head"
                                                       and "tracks" in self.heads)
        self._sequence, self._odometry_chain = -1, 0  # the last clip's buffer sequence, and its ClipResult's chain
        self._clock = StageClock()  # the current clip's, a new one each process() call
        self._stage = "inference"  # the stage process() has reached in the current clip (ClipFailed)
        self.pose_geometry_gated = 0  # output frames whose geometric pose the outlier gate discarded
        self.pose_epipolar_clips = 0  # clips whose translation direction the essential matrix gave (epipolar.py)
        self.pose_epipolar_skipped = 0  # clips that skipped it, or its guided pass, because a newer clip was waiting (behind)
        self.pose_epipolar_guided = 0  # clips whose corners were followed again from the solved rotation's guess
        self.pose_epipolar_stepwise = 0  # clips whose direction the sum of their steps' essential matrices gave
        self.pose_epipolar_held = self.pose_epipolar_unrefuted = 0  # lasting corners, no direction: held; too short to show: not
        self.pose_head_overruled = 0  # fused: clips whose head moved > 90 deg off the geometry (head_overruled)
        self.pose_relinked = 0  # output frames lost from their clip's first frame, solved from the one before
        self.isolate_stages, self.stage_failures = False, Counter()  # a node's: _isolated; its failures by stage
        self.pose_head_nonfinite = self.pose_head_implausible = 0  # frames the head gave NaN / no motion: held
        self.pose_relink_skipped = self.clips_pose_withheld = 0  # a newer clip waited; a ~/reset ended the clip's chain
        self.pose_rotation_steps = self.pose_step_rotations = 0  # rotation steps by bearings (68a), by corners (69)
        # Says whether a newer clip already waits for inference (the node sets its worker's): then
        # the epipolar direction (23 ms a clip on the 2-core CPU) is skipped and counted, so that a
        # node that cannot keep up sheds fewer frames. None (offline, tests): never behind.
        self.behind: Callable[[], bool] | None = None
        # output frames too dark or flat to see, whole or in part; and seeing ones whose depth head gave no valid pixel
        self.frames_blind = self.frames_partly_blind = self.frames_without_depth = 0
        # The buffer sequences whose clips restart odometry (a manual reset, time going backwards; _restarts: each one
        # the worker has not reached, _request_restart; _restart_from: the newest). Only reset and add_frame write them:
        # the worker compares sequences (_start_sequence); clearing them erased a reset landing meanwhile.
        self._restart_from, self._withhold_from, self._restarts = None, None, ()  # _withhold_from: ~/reset's alone
        self._reset_lock = threading.Lock()  # held while a clip's poses are published: odometry_current

    @property
    def hop(self) -> int:
        return self.buffer.hop

    @property
    def pending_frames(self) -> int:
        """Buffered frames no clip has described yet (the next clip or `flush` will)."""
        return self.buffer.pending

    def set_camera_mount(self, base_from_camera: np.ndarray) -> None:
        """4x4 T_base_camera, e.g. from TF: the frames that come after it carry it, and the odometry of
        their clips reads it (_use_mount); clips of earlier frames still waiting keep theirs."""
        self._mount = self._upright_mount(base_from_camera)

    def _use_mount(self, frames: list[Frame]) -> None:
        """The odometry takes the clip's frames' mount (its newest frame's), where one was given."""
        mount = frames[-1].mount
        if mount is not None and mount is not self._mount_in_use:
            self.odometry.set_base_from_camera(mount)
            self._mount_in_use = mount

    def rotation_advice(self, base_from_camera: np.ndarray) -> str | None:
        """What to set when the camera's mount says its images do not stand upright with the
        configured image_rotation (None: they do, or the camera looks too far up or down to tell)."""
        turns = upright_turns(base_from_camera)
        if turns is None or turns == self.turns:
            return None
        return (f"the camera mount has the camera rolled so that its images need image_rotation: {90 * turns} "
                f"(set: {90 * self.turns}); the model learned upright views (a camera turned 180 degrees lost a "
                "quarter of its depth accuracy on the validation scene)")

    @property
    def _upright_hw(self) -> tuple[int, int] | None:
        """The last frame's (H, W), turned upright (None before the first)."""
        return None if self._work is None else self._work.camera_hw

    def _upright_mount(self, base_from_camera: np.ndarray) -> np.ndarray:
        """T_base_camera -> T_base_upright, the upright view's mount (the camera's with no image_rotation)."""
        return np.asarray(base_from_camera, float) @ np.linalg.inv(upright_from_camera(self.turns))

    def add_track_queries(self, uv: np.ndarray, stamp_ns: int = 0) -> None:
        """(N, 2) input-image pixels to track (track_query_mode: topic), from the frame stamped stamp_ns (the
        image they were picked on; 0: the next clip's first frame; tracks.query_frame). ValueError
        with image_rotation before the first image (the image's size places them upright); without,
        queries before the first image are placed in its working image when it comes."""
        uv = np.asarray(uv, float).reshape(-1, 2)
        if self.turns:
            if self._upright_hw is None:
                raise ValueError("track queries before the first image: with image_rotation they need its size")
            hw = camera_hw(self._upright_hw, self.turns)
            uv = np.stack(rotate_pixels(uv[:, 0], uv[:, 1], self.turns, hw), axis=1)
        stamps = np.full(len(uv), int(stamp_ns), np.int64)
        if self._work is None:  # only the newest num_queries are ever seeded (add_topic_queries): keep no more
            early = np.concatenate([self._early_queries, uv])
            over = max(0, len(early) - self.tracks.num_queries)
            self.tracks.count_refused("over_capacity", over)  # on the subscription's thread
            self._early_queries, self._early_stamps = early[over:], np.concatenate([self._early_stamps, stamps])[over:]
        else:
            self._add_upright_queries(uv, stamps)

    def _add_upright_queries(self, uv: np.ndarray, stamps_ns: np.ndarray) -> None:
        """(N, 2) upright camera pixels, (N,) their stamps -> queries in the working image."""
        self.tracks.add_topic_queries(np.stack(self._work.pixels_to_work(uv[:, 0], uv[:, 1]), axis=1),
                                      stamps_ns=stamps_ns)

    def trails(self) -> dict[int, np.ndarray]:
        """{track id: (L, 2) recent (u, v) input pixels} of the live tracks with 2+ points."""
        trails = {tid: np.asarray(uv, float) for tid, uv in self.tracks.trails().items()}
        last = self._trails_frame
        if last is not None and last.camera_hw is not None:  # as _in_camera maps the clip's results
            work = WorkImage(last.camera_hw, last.rgb.shape[:2])
            trails = {tid: np.stack(work.pixels_to_camera(uv[:, 0], uv[:, 1]), axis=1) for tid, uv in trails.items()}
        if self.turns and last is not None:
            upright_hw = last.camera_hw or last.rgb.shape[:2]
            trails = {tid: np.stack(camera_pixels(uv[:, 0], uv[:, 1], self.turns, upright_hw), axis=1)
                      for tid, uv in trails.items()}
        return trails

    def add_reference_odometry(self, stamp_ns: int, position: np.ndarray, quaternion_xyzw: np.ndarray) -> str | None:
        """One pose of the base in odom from the robot's own odometry (metric_scale_source:
        reference_odometry; any thread). -> why it was refused, or None. Ignored with
        metric_scale_source: model."""
        if self.reference_scale is None:
            return None
        return self.reference_scale.add(stamp_ns, position, quaternion_xyzw)

    def status(self) -> dict:
        """Counters for diagnostics (and the metric scale, with where its metres come from)."""
        return {**self._scale_status(),
                "pose_gaps": self.odometry.gaps, "pose_geometry_gated": self.pose_geometry_gated,
                "pose_epipolar_clips": self.pose_epipolar_clips, "pose_epipolar_skipped": self.pose_epipolar_skipped,
                "pose_epipolar_stepwise": self.pose_epipolar_stepwise, "pose_epipolar_guided": self.pose_epipolar_guided,
                "pose_epipolar_held": self.pose_epipolar_held, "pose_epipolar_unrefuted": self.pose_epipolar_unrefuted,
                "pose_head_overruled": self.pose_head_overruled, "clips_pose_withheld": self.clips_pose_withheld,
                "pose_relinked": self.pose_relinked, "pose_relink_skipped": self.pose_relink_skipped,
                "pose_rotation_steps": self.pose_rotation_steps, "pose_step_rotations": self.pose_step_rotations,
                "pose_head_nonfinite": self.pose_head_nonfinite, "pose_head_implausible": self.pose_head_implausible,
                "frames_without_depth": self.frames_without_depth,
                "clips_tracks_failed": self.stage_failures["tracks"], "clips_pose_failed": self.stage_failures["pose"],
                "frames_blind": self.frames_blind, "frames_partly_blind": self.frames_partly_blind,
                "tracks_live": len(self.tracks.tracks), **self.tracks.step_counts(), **self.tracks.query_counts(),
                "frames_reset": self.buffer.frames_reset, "frames_out_of_order": self.buffer.frames_out_of_order}

    def _scale_status(self) -> dict:
        """metric_scale (with a reference, its counts and age: metric_scale.reference_status) and
        metres_from, whose metres the outputs are in now: a reference's only once it has counted the
        clips its scale needs (metric_scale_min_clips; reference_depth: one); until then the model's,
        or metric_scale_factor's, which the reference starts from, saying how far the reference is."""
        factor = self.settings.scale.factor  # a site's calibrated metric_scale_factor, when one is set
        own = "metric_scale_factor" if factor != 1.0 else "model"
        reference = self.reference_scale or self.reference_depth
        if reference is None:
            return {"metric_scale": factor, "metres_from": own} if factor != 1.0 else {"metres_from": own}
        source = self.settings.scale.source
        metres_from = source if reference.in_effect else \
            f"{own} ({source}: {reference.clips_used} of {reference.min_clips} clips counted yet)"
        return {**reference.status(), "metres_from": metres_from, "metric_scale_source": source}

    # -- half 1: the clip buffer -------------------------------------------------------------
    def add_frame(self, rgb: np.ndarray, stamp_ns: int, frame_id: str, k: np.ndarray | None = None,
                  encoding: str = "rgb8", camera_hw: tuple[int, int] | None = None,
                  lens: Lens | None = None) -> tuple[Clip | None, str | None]:
        """rgb: (H, W, 3) uint8, the camera's image, or its working image (WorkImage) given the camera
        image's (H, W) camera_hw (the node divides on decoding); k: rgb's K; lens: the camera.Lens rgb
        was undistorted with (ClipResult.lens). Returns (clip ready for `process` or None, reset reason
        or None).

        The frame is preprocessed here, once (frames appear in T / hop overlapping clips), so in the
        node that cost is paid on the subscription thread, not on the inference path; so is its
        gray image when the tracks match on the camera image."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
        camera_hw = rgb.shape[:2] if camera_hw is None else tuple(camera_hw)
        if self.turns:  # upright for the model; results are turned back in `process`
            k = None if k is None else rotate_k(np.asarray(k, float).reshape(3, 3), self.turns, rgb.shape[:2])
            rgb, camera_hw = rotate_image(rgb, self.turns), camera_hw[::-1] if self.turns % 2 else camera_hw
        k = None if k is None else np.asarray(k, float).reshape(3, 3)
        self._work = work = WorkImage.for_size(camera_hw, self.settings.inputs.work_image_max_pixels)
        if rgb.shape[:2] == work.camera_hw:
            rgb, k = work.image(rgb), work.k_to_work(k)
        elif rgb.shape[:2] != work.work_hw:
            raise ValueError(f"rgb is {rgb.shape[1]}x{rgb.shape[0]}: neither the camera's {camera_hw[1]}x"
                             f"{camera_hw[0]} nor its working image {work.work_hw[1]}x{work.work_hw[0]}")
        if len(self._early_queries):  # pixels of the camera's own image: through this frame's lens
            self._add_upright_queries(self._early_queries if lens is None else lens.to_undistorted(self._early_queries),
                                      self._early_stamps)
            self._early_queries, self._early_stamps = np.empty((0, 2)), np.empty(0, np.int64)
        frame = Frame(rgb, int(stamp_ns), frame_id, k, encoding, model_rgb=self.preprocess(rgb),
                      gray=gray8(rgb) if self.tracks_made and self.tracks.uses_images else None,
                      camera_hw=work.camera_hw if work.scaled else None, lens=lens, mount=self._mount)
        clip, reason = self.buffer.push(frame)
        if reason == "time_backwards":  # a bag loop: a new recording, a new odometry chain; the old one's
            with self._reset_lock:       # clips still queued are published first (the worker runs in order)
                self._request_restart()
        return clip, reason

    def new_recording(self) -> None:
        """The input went back in time to a new recording by less than a late frame's second (a short bag on
        --loop, found by the intake's StampHold): the next frame restarts the sequence and the odometry, as a
        larger step back does (ClipBuffer.new_recording)."""
        self.buffer.new_recording()

    def flush(self) -> Clip | None:
        """A clip for the buffered frames no clip has described yet, for `process` (None: none)."""
        return self.buffer.flush()

    def end_sequence(self) -> int:
        """The input stopped after a flush: the next frame starts a new sequence (ClipBuffer.end_sequence);
        the odometry chain goes on across the pause as across a gap. -> the buffered frames dropped undescribed."""
        return self.buffer.end_sequence()

    def reset(self, reason: str = "manual") -> Clip | None:
        """Drop tracks and the odometry chain (restarts at identity) from the next frame on. -> a clip, for
        `process`, of the frames buffered that no clip has described (None: none), as the buffer's other resets
        cut one (ClipBuffer.push): its frames came before the reset, so their depth and tracks go out, and their
        poses, of the chain the reset ended, do not (odometry_current). Why: dropped, a ~/reset called more
        often than a clip fills (a behaviour tree's every tick) left no frame described at all. Waits while a
        clip's poses are being published (odometry_current): none of the old chain follows its return."""
        ended = self.buffer.flush()
        self.buffer.reset(reason)
        with self._reset_lock:
            self._request_restart()
            self._withhold_from = self.buffer.sequence
        return ended

    def _request_restart(self) -> None:
        """The buffer's new sequence restarts odometry (under _reset_lock). Each request is kept until the worker
        has passed it: with the newest alone, a clip cut at a reset and run after the next one continued the
        chain before it (a pose gap) instead of starting its own. A new tuple, so the worker reads one whole."""
        self._restart_from = self.buffer.sequence
        self._restarts = (*(s for s in self._restarts if s > self._sequence), self.buffer.sequence)

    @contextmanager
    def odometry_current(self, result: ClipResult) -> Iterator[tuple[bool, bool]]:
        """(whether `result`'s poses may be published, whether on TF too). Its poses: not once a ~/reset came
        after its frames, whose chain it ended (published, they continued the old chain after the reset had
        returned); at a bag loop (time going backwards) they are, for the clips run in order still take them
        ahead of the new chain's. Its TF: not once either ended its chain: after a loop's /clock jump back
        tf2 keeps the old chain's transform, stamped near the bag's end, as its newest, and refuses the new
        chain's as older than its cache. Held for the block, in which the node publishes them: a reset waits."""
        with self._reset_lock:
            pose = self._withhold_from is None or result.odometry_chain >= self._withhold_from
            self.clips_pose_withheld += not pose and any(f.pose is not None for f in result.frames)
            yield pose, (self._restart_from is None or result.odometry_chain >= self._restart_from)

    # -- half 2: one engine call per clip ------------------------------------------------------
    def process(self, clip: Clip, on_depth: Callable[[ClipResult], None] | None = None) -> ClipResult:
        """One engine call for the clip; results for its `new_frames` last frames. Raises ClipFailed,
        naming the stage, from whatever a stage raised.

        on_depth(partial): called once the depth images are ready, before the tracks and the pose
        (their refinement and PnP take ~40 ms a clip on the 2-core CPU), with the same frame
        results holding only depth, so that a node can send depth, which a costmap waits for,
        that much earlier (docs/benchmarks.md)."""
        try:
            return self._process(clip, on_depth)
        except Exception as exc:
            raise ClipFailed(self._stage, exc) from exc

    def _process(self, clip: Clip, on_depth: Callable[[ClipResult], None] | None) -> ClipResult:
        self._stage, self._warnings = "inference", {}  # then each stage as _process reaches it
        restarted, chain = self._start_sequence(clip)
        frames, self._clock = clip.frames, StageClock()  # a new clock for each clip
        self._trails_frame = frames[-1]  # not the newest frame's: the node reads trails() after process
        pmap = self.preprocess.pixel_map(frames[-1].rgb.shape[:2])
        video = np.stack([self.preprocess(f.rgb) if f.model_rgb is None else f.model_rgb
                          for f in frames])  # (T, H, W, 3) float32
        indices = [f.index for f in frames]
        inputs, slot_ids = {"video": video[None]}, None
        excluded = self._excluded_pixels(frames[-1].rgb.shape[:2], pmap)
        if self.takes_queries:
            if self.tracks_made:
                queries, slot_ids = self.tracks.make_queries(indices, video[0], pmap, excluded,
                                                             [f.stamp_ns for f in frames])
            else:  # the engine's fixed inputs still need query points; outputs are ignored
                queries = np.zeros((self.tracks.num_queries, 3), np.float32)
            inputs["query_points"] = queries[None]
        t0 = time.perf_counter()
        outputs = self.engine(inputs)
        inference_s = time.perf_counter() - t0

        self._stage = "depth"
        output_t = clip.output_t
        results = [self._frame_result(frames[t]) for t in output_t]
        k_model = pmap.transform_k(self._input_k(frames[0]))  # the clip's camera in model pixels
        own_depth = self._model_depth(outputs, k_model[0, 0])  # the model's own metres: the pose solves in them
        if own_depth is not None and excluded is not None:
            own_depth[:, excluded] = np.nan  # the robot's own body: no obstacle, no point for the pose
        blind, partly = self._blindness(video, excluded)  # first: a blind frame's depth measures no scale
        self._count_empty_depth(own_depth, output_t, blind)  # before _scaled cuts own_depth to the range
        scale, motion_scale = self._clip_scale(frames, output_t, own_depth, blind)
        model_depth, out_of_range = self._scaled(own_depth, scale)  # the published metres
        n_blind, n_partly = int(blind[output_t].sum()), int(partly[output_t].sum())
        self.frames_blind, self.frames_partly_blind = self.frames_blind + n_blind, self.frames_partly_blind + n_partly
        if self.enabled["depth"]:
            self._depth_results(results, output_t, model_depth, out_of_range, video, frames, pmap, blind)
            if on_depth is not None:
                on_depth(ClipResult(self._in_camera(results, frames), inference_s, restarted, chain, n_blind, n_partly,
                                    lens=frames[-1].lens))
        self._stage, xy, failed = "tracks", None, {}
        # The clip's camera images, gray made once (on arrival, or here on first use) for the tracks'
        # refinement and the pose's epipolar direction alike.
        images = ClipImages([f.rgb for f in frames], [f.gray for f in frames])
        if self.tracks_made and slot_ids is not None:  # published only with enable_tracks
            xy = self._isolated("tracks", failed, results, self._tracks, results if self.enabled["tracks"] else [],
                                outputs, slot_ids, frames, images, output_t, model_depth, pmap, blind, excluded)
        self._stage = "pose"
        if self.enabled["pose"]:
            # A frame's motion from the clip's first frame is unseen when either is blind.
            poses = self._isolated("pose", failed, results, self._poses, outputs, own_depth, xy, slot_ids, frames,
                                   output_t, k_model, blind | blind[0], motion_scale, images, pmap, clip.padding)
            for r, p in zip(results, poses or []):
                r.pose = p
        return ClipResult(self._in_camera(results, frames), inference_s, restarted, chain, n_blind, n_partly,
                          self._clock.seconds, lens=frames[-1].lens, failed=failed, warnings=self._warnings)

    def _count_empty_depth(self, own_depth: np.ndarray | None, output_t: list[int], blind: np.ndarray) -> None:
        """Output frames that see (not blind) and whose depth head gave no valid pixel: counted and warned.
        Why: a head giving all zero, negative or NaN depth published all-NaN depth images with /diagnostics OK."""
        if own_depth is None:
            return
        empty = [t for t in output_t if not blind[t] and not np.isfinite(own_depth[t]).any()]
        if empty:
            self.frames_without_depth += len(empty)
            self._warnings["depth_empty"] = (f"{len(empty)} of {len(output_t)} frames have no valid depth (the depth "
                                             "head gave no finite positive value): depth published as NaN")

    def _isolated(self, stage: str, failed: dict[str, str], results: list[FrameResult], run, *args):
        """run(*args), the clip's `stage`. With isolate_stages (a node's pipeline: create_pipeline), None where
        it raises, with the stage's outputs taken off `results` and the cause in `failed` (ClipResult.failed),
        counted in stage_failures. Why: in a node, a pose that raised took the clip's tracks with it, and
        tracks that raised its poses; each stage's outputs stand on their own (the pose without tracks falls
        back to its head). Without it (offline evaluation, tools, tests) the exception goes on to process()
        as ClipFailed: a score must not be made of the clips that survived."""
        try:
            return run(*args)
        except Exception as exc:
            if not self.isolate_stages:
                raise
            failed[stage] = f"{type(exc).__name__}: {exc}"
            self.stage_failures[stage] += 1
            for r in results:
                setattr(r, stage, None)
            return None

    def _clip_scale(self, frames: list[Frame], output_t: list[int], own_depth: np.ndarray | None,
                    blind: np.ndarray) -> tuple[float, float]:
        """The clip's metric scale for its depth and for its motion: reference_odometry's from the
        clips before (both); reference_depth's measured on this clip's output frames for the depth,
        the median of the last metric_scale_window clips' for the motion (an odometry whose scale
        jumped with the view would bend the path); else the calibrated metric_scale_factor.
        blind: (T,) bool, frames too dark or flat to see (_blindness): not measured."""
        if self.reference_scale is not None:
            return self.reference_scale.scale, self.reference_scale.scale
        if self.reference_depth is not None and own_depth is not None:
            # A blind frame's depth is the model's invention (published NaN), while an RGB-D sensor
            # still measures in the dark: their ratio set the seen frames' metres. No frame
            # seen: nothing measured, the scale in effect stays.
            seen = [t for t in output_t if not blind[t]]
            if seen:
                self.reference_depth.measure([frames[t].stamp_ns for t in seen], own_depth[seen])
            return self.reference_depth.scale, self.reference_depth.motion_scale
        return self.settings.scale.factor, self.settings.scale.factor

    def add_reference_depth(self, stamp_ns: int, depth: np.ndarray) -> str | None:
        """An RGB-D camera's depth (H, W) in metres (0 / NaN: none), registered to the colour image
        (metric_scale_source: reference_depth; any thread). -> why it was refused, or None. Ignored
        otherwise. Turned upright and cut to the model's view as the colour frames are."""
        if self.reference_depth is None:
            return None
        if self._upright_hw is None:
            # No colour frame yet, so no size to check it against: an unregistered depth (a RealSense's 848x480
            # beside 640x480 colour) was stored unchecked and could set the first clip's scale, while every one
            # after the first colour frame was refused. Not used; counted on /diagnostics.
            self.reference_depth.before_colour += 1
            return None
        depth = np.asarray(depth, np.float32)
        if self.turns:
            depth = rotate_image(depth, self.turns)
        if depth.ndim != 2 or depth.shape != tuple(self._upright_hw):
            return (f"a {depth.shape[1::-1] if depth.ndim == 2 else depth.shape} reference depth for "
                    f"{tuple(self._upright_hw)[::-1]} colour frames: it must be registered to the colour image")
        y0, y1, x0, x1 = self.preprocess.crop_box(depth.shape)
        h, w = self.model_hw
        # NEAREST_EXACT: each model pixel takes the depth at its centre (rgbd.resize_frames)
        self.reference_depth.add(stamp_ns, cv2.resize(depth[y0:y1, x0:x1], (w, h),
                                                      interpolation=cv2.INTER_NEAREST_EXACT))
        return None

    def _excluded_pixels(self, upright_hw: tuple[int, int], pmap: PixelMap) -> np.ndarray | None:
        """The model-pixel mask of exclude_boxes for inputs of this (upright) size, cached."""
        key = tuple(upright_hw)
        if key not in self._excluded:
            _keep_last(self._excluded, key, excluded_model_pixels(self.exclude_boxes, self.model_hw, pmap, self.turns, key))
        return self._excluded[key]

    def _off_robot_pixels(self, upright_hw: tuple[int, int]) -> np.ndarray | None:
        """(H, W) bool upright camera pixels not on the robot itself (exclude_boxes), cached by size;
        None without boxes. The robot's body moves with the camera, so corners are seeded off it."""
        key = tuple(upright_hw)
        if key not in self._off_robot:
            on = excluded_input_pixels(self.exclude_boxes, key, self.turns)
            _keep_last(self._off_robot, key, None if on is None else ~on)
        return self._off_robot[key]

    def _in_camera(self, results: list[FrameResult], frames: list[Frame]) -> list[FrameResult]:
        """Results of the working, upright view in the camera's own pixels and frame
        (work_image_max_pixels, image_rotation)."""
        last = frames[-1]
        at_camera = self.settings.depth.output_resolution == "camera"
        if last.camera_hw is not None:
            work = WorkImage(last.camera_hw, last.rgb.shape[:2])
            results = [work.result_to_camera(r, at_camera) for r in results]
        upright_hw = last.camera_hw or last.rgb.shape[:2]
        off_robot = self._off_robot_pixels(upright_hw) if at_camera else None
        for r in results:  # the boxes in camera pixels: a model pixel straddling a box's edge, upsampled,
            if off_robot is not None and r.depth is not None:  # put 2-5 rows of depth inside the box
                r.depth = np.where(off_robot, r.depth, np.float32(np.nan))
        return [to_camera(r, self.turns, upright_hw) for r in results] if self.turns else results

    def _start_sequence(self, clip: Clip) -> tuple[bool, int]:
        """A new sequence (first clip, or after a buffer reset) shares no frames with the previous
        clip: tracks restart, and odometry too after a manual reset or time going backwards.
        -> (the odometry chain restarted at identity, the chain's ClipResult.odometry_chain)."""
        if clip.sequence == self._sequence:
            return False, self._odometry_chain
        self.tracks.reset()
        restarts = self._restarts  # read once: a reset may replace it meanwhile
        # A restart asked for after the last clip's sequence and not after this clip's. Compared, never
        # cleared here: a reset landing while this runs is served by the first clip of its own sequence.
        restart = self._sequence < 0 or any(self._sequence < s <= clip.sequence for s in restarts)
        if restart:
            self.odometry.reset()
            self._odometry_chain = clip.sequence
        self._sequence = clip.sequence
        return restart, self._odometry_chain

    def _input_k(self, frame: Frame) -> np.ndarray:
        """The frame's 3x3 K: its camera_info's, or the default field of view's."""
        if frame.k is not None:
            return frame.k
        return default_intrinsics(frame.rgb.shape[:2], self.settings.clip.default_hfov_deg)

    def _frame_result(self, frame: Frame) -> FrameResult:
        return FrameResult(frame.stamp_ns, frame.frame_id, frame.index, self._input_k(frame), frame.k is not None)

    def _blindness(self, video: np.ndarray, excluded: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(T,) bool each: frames too dark or flat to see (InputSettings.min_image_texture), and the
        other frames blind on a part of the view (a covered or dirty part of the lens): their
        outputs stay, but degrade (model card, session 24), so diagnostics say so. Neither is
        measured with min_image_texture 0."""
        min_texture = self.settings.inputs.min_image_texture
        if min_texture <= 0:
            return np.zeros(len(video), bool), np.zeros(len(video), bool)
        magnitude = texture_map(video)
        blind = view_texture(magnitude, excluded) < min_texture
        return blind, partly_blind(magnitude, min_texture, excluded) & ~blind

    def _model_depth(self, outputs: dict, focal_model: float) -> np.ndarray | None:
        """(T, H, W) metres in model pixels, NaN where not finite or not positive; None without a depth
        head. focal_model: the clip's fx in model pixels; a head with a canonical focal predicts
        depth as that camera would see it, so metric depth scales with focal_model / canonical.
        Not yet cut to [min_depth, max_depth]: the range is in the published metres, known only once
        the clip's scale is (_scaled). Cut here, in the model's metres, a model reading 2.4x too far
        lost true 2.1-5 m to max_depth 5 before the reference scale 1/2.4 could bring them in."""
        if "depth" not in outputs:
            return None
        scale = self.engine.config.heads["depth"].metric_scale(float(focal_model))
        depth = (outputs["depth"][0] * scale).astype(np.float32, copy=True)
        depth[~(np.isfinite(depth) & (depth > 0))] = np.nan  # no depth: nothing for a scale or the pose either
        return depth

    def _in_range(self, depth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """depth (metres, float32) cut in place: NaN where not finite or outside [min_depth,
        max_depth], which the pose and the tracks' xyz read as no depth. -> (depth, out_of_range):
        int8, -1 where it was below min_depth, +1 above max_depth, 0 elsewhere, for the published
        image (_range_marked), where REP 117 tells those apart from no depth."""
        s = self.settings.depth
        below, above = depth < s.min_depth, depth > s.max_depth  # NaN compares False: it stays no depth
        depth[~np.isfinite(depth) | below | above] = np.nan
        return depth, above.view(np.int8) - below.view(np.int8)

    def _scaled(self, depth: np.ndarray | None, scale: float) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The published metres: the model's (`depth`, _model_depth's) times the reference's or a
        calibrated factor's scale, NaN outside [min_depth, max_depth] of these published metres,
        with where each was out of range (_in_range). `depth` itself, for the pose, is cut in place
        to that range in the model's own metres, as before: the pose solves on the pixels it would
        without a scale (the reference scale is measured on its travel, which must not move with
        the scale), and with scale 1 the published array is `depth` itself, so every output at
        scale 1 is unchanged."""
        if depth is None:
            return None, None
        if scale == 1.0:
            return self._in_range(depth)
        published = self._in_range(depth * np.float32(scale))
        self._in_range(depth)
        return published

    def _tracks(self, results, outputs, slot_ids, frames, images, output_t, model_depth, pmap, blind, excluded
                ) -> np.ndarray:
        """Tracks of the output frames into `results`; -> the refined (Q, T, 2) model-pixel positions.
        blind: (T,) bool, frames too dark or flat to see: no track visible there, no xyz. excluded:
        (H, W) bool model pixels showing the robot itself, or None."""
        visibility = outputs["track_visibility"][0]
        indices = [f.index for f in frames]
        with self._clock("refine"):
            xy = self.tracks.refine(slot_ids, outputs["track_xy"][0], visibility, images, indices, pmap)
        with self._clock("tracks_update"):
            sets = self.tracks.update(slot_ids, xy, visibility, outputs["track_confidence"][0], indices,
                                      output_t, pmap, images, unseen=blind, excluded=excluded,
                                      off_robot=self._off_robot_pixels(frames[-1].rgb.shape[:2]))
        for r, t, ts in zip(results, output_t, sets):
            if model_depth is not None and not blind[t]:
                ts.xyz = self._track_xyz(ts, model_depth[t], r.k, pmap)
            r.tracks = ts
        return xy

    def _poses(self, outputs, model_depth, xy, slot_ids, frames, output_t, k_model, unseen, scale,
               images: ClipImages, pmap: PixelMap, padding: int = 0) -> list[PoseEstimate]:
        """The clip's camera motion (pose_source: the head, the geometry of the model's own depth
        and tracks, or both fused by their variances; pose_geometry.py), chained into odometry.
        unseen: (T,) bool, frames whose motion the images cannot show (held, pose_geometry.hold_unseen).
        model_depth: in the model's own metres, in which the motion is solved; scale: the clip's
        metric scale (metric_scale.py's, or metric_scale_factor), applied to the solved translations
        and their variances.
        images: the clip's camera images, for the epipolar direction and the relinked frames."""
        with self._clock("pose"):  # the clip's pose stage (STAGES), its epipolar direction within it
            self._use_mount(frames)
            source = self.settings.pose.source
            stamps_ns, held = padded_stamps([f.stamp_ns for f in frames], padding), np.asarray(unseen, bool).copy()
            # A short sequence's padding (its last frame repeated, Clip.padding) is no motion: fitted as real frames
            # it pulled them short (0.59x the travel), so it is held; in time it goes on at the real frames' step.
            held[len(frames) - padding:] = True
            usable = slot_ids >= 0 if slot_ids is not None else None
            outputs = outputs if model_depth is None else {**outputs, "depth": model_depth[None]}
            outputs, nonfinite, implausible = finite_head(outputs)
            n_nonfinite, n_implausible = int(nonfinite[output_t].sum()), int(implausible[output_t].sum())
            self.pose_head_nonfinite += n_nonfinite
            self.pose_head_implausible += n_implausible
            if n_nonfinite or n_implausible:
                self._warnings["pose_head_unusable"] = (
                    f"the pose head gave {n_nonfinite} non-finite and {n_implausible} impossible frames of "
                    f"{len(output_t)} (no rotation, or over {HEAD_MAX_TRANSLATION_M:g} m): held, with an "
                    "unknown-motion covariance, where the geometry does not place them")
            rotation, translation, log_variance, geo = clip_pose(
                outputs, k_model, source, usable, track_xy=xy, gate_chi2=self.settings.pose.geometry_gate_chi2,
                smoothing_order=self.settings.pose.smoothing_order, stamps_ns=stamps_ns, unseen=held,
                relink=self._relink_step(outputs, frames, images, k_model, pmap),
                fuse_sizes=self.settings.pose.fuse_sizes, rotation_step_px=self.settings.pose.rotation_step_px)
            if geo is not None:
                self.pose_rotation_steps += geo.rotation_steps
                self.pose_head_overruled += int(source == "fused" and head_overruled(outputs, geo))
                self.pose_geometry_gated += int(geo.gated[output_t].sum())
                self.pose_relinked += int(geo.relinked[output_t].sum())
                with self._clock("epipolar"):
                    first_depth = outputs["depth"][0, 0]  # the model's metres, as the translations
                    rotation, translation = self._epipolar(rotation, translation, geo, frames, unseen, images,
                                                           first_depth, stamps_ns)
            # The model's own travel, for the next clips' scale, to the clip's last frame seen: past it
            # clip_pose holds the motion, and the reference's travel over the whole clip inflated the
            # ratio by (T - 1) / (last seen); no frame seen after the first: no travel measured.
            seen = np.flatnonzero(~held)
            if self.reference_scale is not None and len(seen) and seen[-1] > 0:
                self.reference_scale.observe(stamps_ns[0], stamps_ns[seen[-1]], translation[seen[-1]],
                                             self.odometry.base_from_camera)
            if scale != 1.0:
                translation, log_variance = translation * scale, log_variance + np.array([0.0, 2 * np.log(scale)])
            return self.odometry.add_clip([f.index for f in frames], stamps_ns, rotation, translation, log_variance,
                                          output_t, measured=~held)

    def _newer_clip_waits(self) -> bool:
        """The behind hook's answer (False where none is set): optional pose work is skipped then."""
        return self.behind is not None and self.behind()

    def _relink_step(self, outputs, frames: list[Frame], images: ClipImages, k_model: np.ndarray, pmap: PixelMap
                     ) -> Callable[[int], GeometryPose | None] | None:
        """pose_geometry.relink_lost_frames' step(t): the motion from clip frame t-1 to t by PnP on
        fresh corners of t-1's camera image followed to t, with the depth of t-1 (outputs["depth"],
        the model's metres), about 9 ms a frame on the 2-core CPU. None when pose_relink_corners is
        0; a node behind its camera skips it (counted)."""
        corners = self.settings.pose.relink_corners
        if not corners or "depth" not in outputs:
            return None
        keep = self._off_robot_pixels(frames[0].rgb.shape[:2])

        def step(t: int) -> GeometryPose | None:
            if self._newer_clip_waits():  # the head's motion stands, as without relinking
                self.pose_relink_skipped += 1
                return None
            x0, x1 = follow_corners(images, corners, keep, seeded=images.corners(corners), frames=(t - 1, t))
            if not len(x0):
                return None
            xy = np.stack([np.stack(pmap.to_model(x[:, 0], x[:, 1]), axis=1) for x in (x0, x1)], axis=1)
            return solve_clip_motion(outputs["depth"][0, t - 1], xy, np.ones(xy.shape[:2], bool), k_model,
                                     parallax_px=RELINK_PARALLAX_PX)
        return step

    def _epipolar(self, rotation: np.ndarray, translation: np.ndarray, geo, frames: list[Frame],
                  unseen: np.ndarray, images: ClipImages, first_depth: np.ndarray | None = None,
                  stamps_ns: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """-> (rotation, translation). With pose_epipolar_step_rotation, the clip's rotations are first measured
        step by step on its camera images (epipolar.rotation_from_steps, on a chain over every frame, bent to
        the first and last views' rotation where those measure a translation). The clip's (T, 3) translations
        turned to the direction the essential matrix of its first and last camera images gives (epipolar.py; pose_epipolar_corners > 0), where those views
        measure one: not where a frame is blind, nor where the geometry found the last frame still,
        nor where the two views' rotation disagrees with the solved first_from_last (rotation:
        (T, 3, 3) first_from_t). Where the geometry called the clip rotation-only, the two views' own
        tests decide (essential_motion: inliers in front of both cameras, parallax). Where the first
        and last views measure none, with pose_epipolar_steps the steps the corners were followed
        over do, summed (epipolar.stepwise_direction; corners replenished where too few lasted).
        With pose_epipolar_rotation_guess, where the first and last views measure none, the corners
        are first followed again from where the solved rotation moves them, and that chain is used.
        Where nothing measured a direction, _unmeasured (pose_epipolar_hold_unmeasured; first_depth: the
        first frame's depth in the model's metres). Sizes and rotations otherwise unchanged. stamps_ns: the clip's stamps (padded):
        a step off the camera's period is not measured by its images (pose_geometry.off_period_frames)."""
        corners, by_step = self.settings.pose.epipolar_corners, self.settings.pose.epipolar_step_rotation
        if not corners or unseen.any() or geo.still[-1]:
            return rotation, translation
        if self._newer_clip_waits():  # the solver's own direction stands
            self.pose_epipolar_skipped += 1
            return rotation, translation
        steps = self.settings.pose.epipolar_steps
        keep = self._off_robot_pixels(frames[0].rgb.shape[:2])
        k = self._input_k(frames[0])
        replenish, seeded = self.settings.pose.epipolar_replenish_below if steps else 0, images.corners(corners)
        chain = follow_corner_steps(images, corners, keep, replenish_below=replenish, seeded=seeded)
        motion = essential_motion(chain.first, chain.last, k, rotation[-1])
        if by_step:  # a chain of its own over every frame: the direction's stays on every second (rule 69a)
            every = follow_corner_steps(images, corners, keep, stride=1, seeded=seeded,
                                        replenish_below=self.settings.pose.epipolar_replenish_below)
            skip = geo.still | off_period_frames(stamps_ns, len(geo.still))  # stamps_ns: the padded ones
            rotation, measured = rotation_from_steps(rotation, every.steps, k, skip,
                                                     None if motion is None else motion.rotation)
            self.pose_step_rotations += measured
        # The clip's first corners lasted it: had the camera moved, the views would measure it.
        lasted = len(chain.first) >= MIN_INLIERS
        if motion is None and self.settings.pose.epipolar_rotation_guess:
            if self._newer_clip_waits():
                self.pose_epipolar_skipped += 1
                lasted = False  # not every test was made
            else:  # followed again, LK started where the solved rotation moves each corner
                self.pose_epipolar_guided += 1
                chain = follow_corner_steps(images, corners, keep, replenish_below=replenish,
                                            predict=rotation_guess(k, rotation), seeded=seeded)
                motion = essential_motion(chain.first, chain.last, k, rotation[-1])
        if motion is not None:
            self.pose_epipolar_clips += 1
            return rotation, turn_translations(translation, motion.direction)
        direction = (stepwise_direction(chain.steps, step_motions(chain.steps, k, rotation), rotation, translation)
                     if steps else None)
        if direction is not None:
            self.pose_epipolar_stepwise += 1
            return rotation, turn_translations(translation, direction)
        return rotation, self._unmeasured(translation, lasted, first_depth)

    def _unmeasured(self, translation: np.ndarray, lasted: bool, first_depth: np.ndarray | None) -> np.ndarray:
        """A clip's translations where nothing measured its direction: zero with pose_epipolar_hold_unmeasured
        where the corners `lasted` and the views would have measured the solved travel (counted as held), else
        as solved (counted as unrefuted where only the travel's shortness kept the hold off)."""
        if not (self.settings.pose.epipolar_hold_unmeasured and lasted):
            return translation
        if views_would_measure(translation, first_depth):
            self.pose_epipolar_held += 1
            return np.zeros_like(translation)
        self.pose_epipolar_unrefuted += 1
        return translation

    def push(self, rgb: np.ndarray, stamp_ns: int, frame_id: str, k: np.ndarray | None = None,
             encoding: str = "rgb8") -> list[FrameResult]:
        """add_frame + process: the results this frame completes (often none)."""
        clip, _ = self.add_frame(rgb, stamp_ns, frame_id, k, encoding)
        return self.process(clip).frames if clip is not None else []

    # -- helpers -------------------------------------------------------------------------------
    def _depth_results(self, results, output_t, depth, out_of_range, video, frames, pmap, blind) -> None:
        """The output frames' published depth images, their K and colour into `results`: the
        out-of-range readings of `depth` (the NaN-cut published metres, _scaled) marked
        (_range_marked), a blind frame's all NaN."""
        for r, t in zip(results, output_t):
            r.depth, r.depth_k, r.depth_rgb = self._depth_output(_range_marked(depth[t], out_of_range[t]), video[t],
                                                                 frames[t].rgb, r.k, pmap)
            if blind[t]:  # what the model invents for a frame it cannot see is no measurement
                r.depth = np.full_like(r.depth, np.nan)

    def _depth_output(self, depth: np.ndarray, model_rgb: np.ndarray, input_rgb: np.ndarray,
                      k: np.ndarray, pmap: PixelMap):
        if self.settings.depth.output_resolution == "model":
            rgb = (model_rgb * 255).round().astype(np.uint8)
            return depth, pmap.transform_k(k), rgb
        # Camera resolution: the model window scaled back into the input frame, NaN outside it.
        y0, y1, x0, x1 = self.preprocess.crop_box(input_rgb.shape[:2])
        full = np.full(input_rgb.shape[:2], np.nan, np.float32)
        full[y0:y1, x0:x1] = cv2.resize(depth, (x1 - x0, y1 - y0), interpolation=cv2.INTER_NEAREST_EXACT)
        return full, np.asarray(k, float), input_rgb

    @staticmethod
    def _track_xyz(ts: TrackSet, depth: np.ndarray, k: np.ndarray, pmap: PixelMap) -> np.ndarray:
        """Back-project tracks with the model depth at their position; NaN where unknown, and where
        the track is not visible: the depth there is whatever covers its point (an occluder's surface),
        and a point cloud consumer does not read the visible field."""
        mx, my = pmap.to_model(ts.u.astype(float), ts.v.astype(float))
        z = np.where(ts.visible, sample_nearest(depth, mx, my, np.nan), np.nan)
        return backproject(ts.u, ts.v, z, k).astype(np.float32)
