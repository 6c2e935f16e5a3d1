"""Every setting of the perception node, declared once, as data.

Each field of the nested frozen dataclasses below carries its ROS parameter name, default, type,
description and allowed values. Everything else is generated from them:
  - the node's parameter declarations (ros/parameters.py);
  - `PerceptionSettings.from_params(...)`: settings from parameter values (the node, the
    evaluator, the benchmarks and the tests build settings this one way), validated with errors
    that name the parameter;
  - config/perception.yaml (`render_yaml()`; a test fails when the file differs).

    settings = PerceptionSettings.from_params(hop=2, track_refinement="none", track_image_fallback=False)
    settings.tracks.refinement  # "none"

Nothing here imports rclpy.
"""

from __future__ import annotations

import dataclasses
import math
import re
import textwrap
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Iterator

from .image import DEFAULT_MAX_INPUT_PIXELS
from .pose_geometry import GATE_CHI2_999

QOS_PRESETS = ("SENSOR_DATA", "DEFAULT", "SYSTEM_DEFAULT", "BEST_AVAILABLE")
BACKENDS = ("auto", "tensorrt", "onnxruntime", "torch")  # engine.BACKENDS (test_settings checks)
PRECISIONS = ("auto", "fp32", "fp16", "bf16", "int8")  # engine.factory.PRECISIONS (test_settings checks)
IMAGE_TRANSPORTS = ("raw", "compressed")


def setting(default, description: str, *, param: str, low: float | None = None, high: float | None = None,
            choices: tuple | None = None, allowed: str | None = None):
    """A dataclass field that is also a ROS parameter. low/high: inclusive bounds (None: open).
    allowed: the allowed values as declared, where low/high only bound what configure then narrows
    (hop: the model's clip length); the declared text must not promise values configure refuses."""
    meta = {"param": param, "description": " ".join(description.split()), "low": low, "high": high,
            "choices": choices, "allowed": allowed}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


class _Group:
    """Validates every field against its parameter spec on construction, so settings built
    directly (tests, tools) obey the same rules as those built from parameters."""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, ParameterSpec.of(f).check(getattr(self, f.name)))
        self.check_consistency()

    def check_consistency(self) -> None:
        """Rules between this group's parameters (each alone is valid)."""


@dataclass(frozen=True)
class ModelSettings(_Group):
    """model and backend (read at configure)"""

    path: str = setting("", """Checkpoint directory (config.json + model.safetensors). Empty: the installed
        default, <share>/models/fourds_default. A missing or corrupt checkpoint makes configure report
        FAILURE with the reason.""", param="model")
    backend: str = setting("auto", """Inference backend: auto (TensorRT with a GPU, then ONNX Runtime, then
        torch) | tensorrt | onnxruntime | torch.""", param="backend", choices=BACKENDS)
    device: str = setting("auto", """Inference device: auto (cuda when a GPU is visible, else cpu) | cpu |
        cuda | cuda:N. TensorRT needs a CUDA device; ONNX Runtime uses its CUDA provider when
        installed.""", param="device")
    precision: str = setting("auto", """Inference precision: auto (fp16 where a GPU runs the model: TensorRT,
        torch on CUDA; fp32 elsewhere: on the shipped model and a real clip fp16 moves no output by more
        than 0.0051, relative L2, and bf16 the track positions by 0.054; docs/benchmarks.md) | fp32 | fp16 |
        bf16 (torch) | int8 (ONNX Runtime; moves the pose translation by 0.23, not for use). A backend that
        cannot run the precision fails configure with the reason (backend auto: skipped).""",
                             param="precision", choices=PRECISIONS)
    num_queries: int = setting(64, """Number of query points the tracks head runs per clip (a fixed engine
        input shape).""", param="num_queries", low=1, high=4096)
    inference_threads: int = setting(0, """CPU threads of the inference engine (ONNX Runtime intra-op pool,
        torch set_num_threads). 0: every core the process may run on (fastest inference on an idle
        computer; ONNX Runtime's pool sleeps when idle, and the image callbacks need under 0.2 of a core
        at 30 Hz). 1: inference on one core, the rest left to other processes of a busy computer.""",
        param="inference_threads", low=0, high=1024)
    autostart: bool = setting(True, """Run configure + activate at start-up. false: wait for a lifecycle
        manager.""", param="autostart")

    def check_consistency(self) -> None:
        # Why at the set, not only at configure: torch's own refusal named none of the spellings the node takes
        # ("Expected one of cpu, cuda, ipu, xpu, mkldnn, ...: gpu"). Whether the GPU exists stays configure's.
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")

    def resolved_path(self) -> str:
        """The checkpoint directory to load: `model`, or the installed default when empty."""
        from ..model.default import default_model_dir

        path = self.path or default_model_dir()
        if not path:
            raise ValueError("parameter 'model' is empty and no default model is installed")
        return path


@dataclass(frozen=True)
class ClipSettings(_Group):
    """clip buffer"""

    hop: int = setting(0, """Frames between inferences (overlapping windows). 0: the model's clip length -
        1, one shared frame (least compute, least drift; a frame waits up to hop frames for its clip).
        Else 1..T, the model's clip length.""", param="hop",
        low=0, high=1024, allowed="0, or 1..the model's clip length T (8 for the shipped model), checked at configure")
    max_waiting_clips: int = setting(1, """Clips that may wait while one is in inference. When inference falls
        behind, the newest waiting clip is replaced by the next one (its frames still in the window
        carry over) and the rest are counted in frames_dropped. 1: a frame waits behind at most one clip
        (the lowest latency under overload); more absorb a burst of frames (e.g. released together
        by a late camera_info) at up to that many clips of extra latency.""", param="max_waiting_clips",
        low=1, high=64)
    max_gap_s: float = setting(1.0, """A gap between consecutive frames above this (seconds) resets the clip
        buffer (/diagnostics WARN for 30 s: a camera slower than one frame per max_gap_s resets at every frame;
        set this above its frame period). 0: never.""", param="max_gap_s", low=0.0)
    flush_after_s: float = setting(1.0, """Input idle this long (seconds) with nothing in inference: the frames
        after the last clip are described by a clip of the last frames (a stopped camera, the end of a
        bag); under use_sim_time, while /clock moves, its time must have passed this too. 0: never.""", param="flush_after_s", low=0.0)
    crop_policy: str = setting("center_crop", """Preprocessing: center_crop (largest centred window of the
        model's aspect ratio, then resize; no distortion) | resize (whole frame, anisotropic). Intrinsics
        are transformed to match.""", param="crop_policy", choices=("center_crop", "resize"))
    default_hfov_deg: float = setting(60.0, """Horizontal field of view (degrees) assumed while no
        camera_info has arrived.""", param="default_hfov_deg", low=1.0, high=179.0)
    camera_info_wait_s: float = setting(0.0, """Seconds an image may wait for the camera_info with its own
        stamp (the two topics are delivered independently) before it takes the latest one. 0: never wait
        (an image takes its own camera_info when that has arrived, else the latest). Worth setting (e.g.
        0.5) when K changes at run time: a resent camera_info sample arrived frames late on loopback. It
        is not the default because a lagging camera_info stream then delays every frame by up to the
        wait (seen in bag replay: rclpy left queued camera_info samples untaken until the next one
        came). Images released together by a late camera_info are a burst of clips: raise
        max_waiting_clips to describe them all.""", param="camera_info_wait_s", low=0.0)
    camera_info_startup_wait_s: float = setting(0.1, """Seconds the first images may wait for the first
        camera_info, once, at startup. The image and camera_info subscriptions deliver independently: a
        stream's first image can be handled just before its camera_info and would be described with the
        default intrinsics (for a lens camera, not undistorted). Short on purpose: the images that wait
        are released together, and a longer wait (0.5 s: 10 frames at 20 Hz) made a burst of clips that
        shed frames under max_waiting_clips 1; a camera_info that starts later than this (its
        subscription matched late) leaves the first frames with the default intrinsics, counted. After
        the wait no image waits again. 0: never wait.""", param="camera_info_startup_wait_s", low=0.0)


@dataclass(frozen=True)
class InputSettings(_Group):
    """inputs and QoS presets (as Isaac ROS: SENSOR_DATA | DEFAULT | SYSTEM_DEFAULT | BEST_AVAILABLE)"""

    image_transport: str = setting("raw", """The one image topic the node takes: raw (image, sensor_msgs/Image) or
        compressed (image/compressed, JPEG or PNG). One only: a camera driver publishes both as soon as
        someone subscribes, and taking both delivered every frame twice.""", param="image_transport",
                                   choices=IMAGE_TRANSPORTS)
    image_qos: str = setting("DEFAULT", """QoS preset of the image and camera_info subscriptions. DEFAULT
        (reliable, last 10) because realsense2_camera and usb_cam publish reliable: every frame then
        arrives at camera rate, where best-effort SENSOR_DATA lost 40 % of 640x480 frames at 15 Hz on
        loopback. A best-effort camera needs SENSOR_DATA (an incompatible-QoS warning says so).""",
                             param="image_qos", choices=QOS_PRESETS)
    output_qos: str = setting("DEFAULT", """QoS preset of every output topic but /tf, which stays reliable
        (DEFAULT), as tf2 listeners subscribe.""", param="output_qos", choices=QOS_PRESETS)
    max_input_pixels: int = setting(DEFAULT_MAX_INPUT_PIXELS, """Frames declaring more pixels (width x height)
        are dropped and counted before any decoding, so a hostile or broken header cannot allocate
        gigabytes. Default: 4K UHD.""", param="max_input_pixels", low=1, high=2**31 - 1)
    work_image_max_pixels: int = setting(589_824, """Camera images with more pixels than this are divided on
        arrival by the smallest whole number that brings them under it (1280x720 -> 640x360,
        1920x1080 -> 960x540; a JPEG decoded at that size where libjpeg can, the lens undistorted
        after) for the steps that work on the camera's pixels: the tracks' LK steps
        and templates, the pose's corners and relinking, whose cost grows with the pixels (2-core
        CPU, in process: 166 ms a clip of a 1920x1080 camera unscaled; a clip comes every 233 ms at
        30 Hz). Tracks, K and depth are still published in the camera's own pixels; the model's
        input is 128x128 either way. Default 1024x576: above every recording the package was
        measured on (854x480), whose figures it leaves unchanged. 0: never scale
        (perception/work_image.py; docs/benchmarks.md, session 44). 76800 works a 640x480 camera at
        320x240: 0.89x the pipeline's time, tracks AJ +9 % and the pose's ATE 1.21x on TUM fr1/rpy
        (validation; model card, session 45, rule 46).""",
        param="work_image_max_pixels", low=0, high=2**31 - 1)
    min_image_texture: float = setting(1.0, """A frame whose model image has less texture than this is blind
        (preprocess.texture_of: the 90th percentile of the smoothed image gradient, grey levels per
        model pixel): a covered lens, a dark room, a blank wall at arm's length. Its depth is published
        as NaN, no track is visible on it (none is seeded there), and its odometry holds the last pose
        seen, with a covariance that says any motion could have happened (1 m^2, 1 rad^2 a frame, times the
        pose variance scales); counted as
        frames_blind, WARN on /diagnostics. The model reads such frames as confident motion (the lens
        covered for 0.7 s: 0.3-0.9 m of phantom odometry), invents depth and calls its tracks visible.
        Measured: real frames of 21 recordings 5.6 or more (2.1 or more under a 121 px motion blur),
        a covered lens 0.06, a room at 5 % of its light 0.6-0.85 (models/fourds_default/README.md,
        sessions 22-23). A frame with a quarter of its view or more below half this texture (a part of
        the lens covered: preprocess.partly_blind) keeps its outputs, which degrade, and is counted as
        frames_partly_blind, WARN view_partly_blind. 0: off.""",
                                       param="min_image_texture", low=0.0)
    image_16bit_max: int = setting(65535, """The largest value of a 16-bit image's pixels (mono16, rgb16, bayer
        16, a 16-bit PNG CompressedImage): 8-bit grey is value x 255 / this. 65535, or the sensor's own: a 12-bit camera publishing
        mono16 (GenICam Mono12, camera_aravis) fills only 0-4095 and read 16x too dark, its texture
        under min_image_texture (blind); 4095 for it, 1023 for a 10-bit one.""",
                                   param="image_16bit_max", low=1, high=65535)
    image_rectified: bool = setting(False, """The image topic is already rectified (image_proc's image_rect,
        beside the raw camera's camera_info): its intrinsics are camera_info's projection matrix P and it
        has no lens distortion (REP-104). Off, an image_rect with a distorting camera's camera_info was
        undistorted a second time: features moved by 17-21 px, silently.""", param="image_rectified")
    image_rotation: int = setting(0, """The camera mounted rolled about its optical axis: the counter-clockwise turn, in
        degrees (0 | 90 | 180 | 270), that makes its images upright. The node turns each image upright
        before the model (quarter turns are exact) and publishes every output in the camera's own image and
        optical frame; the camera mount (TF or base_from_camera) stays the camera's. Why: the model learned
        upright views; TUM fr1/rpy (validation) turned 180 / 90 degrees read depth AbsRel 0.297 / 0.306
        against 0.235 upright (constant 0.253; perception/image_rotation.py). default_hfov_deg then means
        the upright image's horizontal field of view.""", param="image_rotation", choices=(0, 90, 180, 270))

    exclude_boxes: list = setting([0.0, 0.0, 0.0, 0.0], """Parts of the camera's image that show the robot itself
        (a bumper, an arm, the chassis), as boxes [x0, y0, x1, y1, ...] in fractions of the image's width and
        height (0-1, the image as published, before image_rotation; with lens distortion, of its undistorted
        view); a box of zero area is none. No track is
        seeded or kept there and their depth is NaN: points that move with the camera tell the pose solver
        the camera stood still (a still body over the bottom 45 % of TUM fr1/rpy froze the odometry: 97 % of
        frames read still), and a costmap would mark the robot as its own obstacle.""",
                                  param="exclude_boxes")

    def check_consistency(self) -> None:
        boxes = self.exclude_boxes
        if len(boxes) % 4 or not all(0.0 <= v <= 1.0 for v in boxes):
            raise ValueError(f"exclude_boxes must be [x0, y0, x1, y1, ...] in [0, 1], got {boxes}")
        if any(boxes[i] > boxes[i + 2] or boxes[i + 1] > boxes[i + 3] for i in range(0, len(boxes), 4)):
            raise ValueError(f"exclude_boxes: each box needs x0 <= x1 and y0 <= y1, got {boxes}")


@dataclass(frozen=True)
class DepthSettings(_Group):
    """depth"""

    enable: bool = setting(True, "Publish depth, depth/camera_info and depth/points.", param="enable_depth")
    output_resolution: str = setting("model", """Resolution of depth + depth/camera_info: model (the model
        input) | camera (the input image; NaN outside the cropped window).""",
                                     param="depth_output_resolution", choices=("model", "camera"))
    min_depth: float = setting(0.01, """Depth below this (metres) is published as -inf (REP 117: too
        close; NaN is no depth) and left out of depth/points and the tracks' xyz.""",
                               param="min_depth", low=0.0)
    max_depth: float = setting(100.0, """Depth above this (metres) is published as +inf (REP 117: no
        return within range) and left out of depth/points and the tracks' xyz.""",
                               param="max_depth", low=0.0)
    points_step: int = setting(2, "depth/points: use every Nth pixel in both directions.",
                               param="depth_points_step", low=1, high=64)
    points_rgb: bool = setting(True, "depth/points: add a packed rgb field.", param="depth_points_rgb")

    def check_consistency(self) -> None:
        if self.max_depth <= self.min_depth:
            raise ValueError(f"max_depth ({self.max_depth}) must exceed min_depth ({self.min_depth})")


@dataclass(frozen=True)
class TrackSettings(_Group):
    """tracks"""

    enable: bool = setting(True, "Publish tracks and tracks/markers.", param="enable_tracks")
    max_tracks: int = setting(64, """At most this many tracks (the smaller of this and num_queries is used),
        those followed on the image included; lost tracks are re-seeded with new ids.""", param="max_tracks",
        low=0, high=4096)
    query_mode: str = setting("grid", """Where new query points come from: grid | features (OpenCV
        Shi-Tomasi corners) | topic (track_queries, PointCloud2 with float32 u, v in pixels of the
        camera's own image).""", param="track_query_mode", choices=("grid", "features", "topic"))
    min_visibility: float = setting(0.5, """A track whose visibility falls below this in a clip's last frame
        is lost.""", param="track_min_visibility", low=0.0, high=1.0)
    refinement: str = setting("flow", """flow: follow each track from its position in the previous frame with
        pyramidal LK; where LK fails, take the head's position only where its template matches near it well,
        else move the track with its nearest LK-followed neighbours; follows points that deform (BADJA
        PCK 0.524 vs 0.390 with template, validation, session 13; models/fourds_default/README.md). template: refine the head's
        track positions to sub-pixel on the camera image, matching each track's patch from its query
        frame near the prediction (perception/track_refine.py). none: the head's positions as they are
        (then also set track_image_fallback: false, which needs the templates).""",
                              param="track_refinement", choices=("flow", "template", "none"))
    max_deviation_px: float = setting(10.0, """A track whose step from one frame to the next is further than
        this (model-input pixels) from the median step of all visible tracks has jumped onto another point,
        usually after its own left the image; it is invisible from there and re-seeded. 0: off. Points on
        objects moving this fast across the image are retired too (perception/tracks.py).""",
                                      param="track_max_deviation_px", low=0.0)
    lk_check_px: float = setting(0.0, """track_refinement flow: an LK step counts only where LK run back from
        where it landed ends within this many camera pixels of where it started (the forward-backward
        check); a step that fails goes the way of one LK lost. 0: off (the default). 1.0 suits rigid
        scenes: tracks AJ 1.32x -> 1.48x LK on TUM fr1/rpy (validation), 7-Scenes kitchen 0.265 -> 0.323
        (train); on animals (BADJA, validation) PCK 0.593 -> 0.553, since a bending leg's failed step
        then takes its neighbours' motion. Costs a second LK pass a frame: refinement 11 -> 23 ms a clip on
        a 2-core CPU (models/fourds_default/README.md, session 32).""", param="track_lk_check_px",
        low=0.0, high=100.0)
    image_fallback: bool = setting(True, """Tracks the model loses (it calls the point invisible, or the point
        leaves the model's centre crop but not the camera image) are followed on the camera image: moved
        by the motion of the model's visible tracks and matched against their template; visible where it
        matches, given back to the model when matched in its view again, dropped after 8 unmatched frames
        or off the image. Needs track_refinement: template or flow. They count against max_tracks. Tracks AJ +0.02
        / +0.09 on 7-Scenes / HoloLens (training scenes, 2026-11-25; models/fourds_default/README.md).""", param="track_image_fallback")
    trail_length: int = setting(8, "Points per trail in tracks/markers.", param="track_trail_length",
                                low=1, high=1000)

    def check_consistency(self) -> None:
        if self.lk_check_px > 0 and self.refinement != "flow":
            raise ValueError("track_lk_check_px checks LK's steps: it needs track_refinement: flow")
        if self.image_fallback and self.refinement == "none":
            raise ValueError("track_image_fallback needs track_refinement: template or flow (it matches each track's "
                             "template); set track_image_fallback: false to run without refinement")


@dataclass(frozen=True)
class PoseSettings(_Group):
    """pose / odometry"""

    enable: bool = setting(True, "Publish odometry, pose, path and TF.", param="enable_pose")
    source: str = setting("fused", """Where each clip's camera motion comes from: head (the pose head alone) |
        geometry (PnP with RANSAC on the model's own metric depth and tracks, rotation-only motion
        detected; the head where the geometry is degenerate) | fused (the two by inverse variance).
        On the validation scene (TUM fr1/rpy, never trained on; stage 19, 6 start frames, order-2
        smoothing) ATE head 0.029 / geometry 0.029 / fused 0.029 m (ORB VO 0.028); fused turns as far as the
        camera (rotation ratio 1.04 against the head's 0.83; models/fourds_default/README.md, session
        18). A camera standing still: head alone 0.6-0.7 m and 49-101 degrees of phantom motion in 3 s
        on real frames; fused and geometry hold still (frames whose tracks did not move take the
        geometry's motion alone; session 21), also while something crosses the view (session 22).""", param="pose_source", choices=("head", "geometry", "fused"))
    geometry_gate_chi2: float = setting(GATE_CHI2_999, """pose_source geometry|fused: a frame whose geometric
        rotation differs from the head's by more than this chi-square (3 dof, the squared angle over
        the two variances summed), or whose measured translation does (3 dof, the squared distance over
        the two translation variances; the clip's frames before it too: a fast spin on a 128x96 image
        read 4 m of travel at 27 sd without it, session 68) is an outlier, counted (pose_geometry_gated
        on /diagnostics): the head's
        pose is kept for it, or, with pose_relink_corners, it is solved again from the frame before
        (pose_relinked). 16.27: the 99.9 % quantile, not tuned. A safety net: with
        session 14's tracks it removed a 49-degree PnP jump on TUM fr1/rpy (validation; rotation RPE 4.96 ->
        2.34 deg a frame); with today's it fires on no frame of TUM fr1/rpy forwards and on 6 of its 80 played backwards (the
        translation test, session 68; models/fourds_default/README.md). 0: no gate.""",
                                        param="pose_geometry_gate_chi2", low=0.0)
    smoothing_order: int = setting(2, """pose_source geometry|fused: each clip's motion (8 frames) replaced by the
        polynomial of this degree in time that fits its frames best, weighted by their variances
        (pose_geometry.smooth_clip_motion), because each frame is solved on its own. 0: every frame as
        solved. 2 (constant acceleration over the clip), on the validation scene (TUM fr1/rpy, 30 Hz, 6
        start frames): ATE 0.030 -> 0.029 m, rotation error 2.18 -> 0.84 deg a frame, rotation ratio
        1.20 -> 1.03; 1: ATE 0.030. It assumes frames close in time: on the HoloLens walk (keyframes
        4 degrees apart) rotation error rises 1.77 -> 2.33 deg a frame (models/fourds_default/README.md,
        session 18).""",
                                   param="pose_smoothing_order", low=0, high=4)
    rotation_step_px: float = setting(2.0, """pose_source geometry|fused: after the fusion and the smoothing, each
        step of a clip's rotation between two frames the PnP geometry called rotation-only is measured
        by the tracks' viewing rays in the two frames (Kabsch, no depth;
        pose_geometry.rotation_from_bearing_steps) where a turn explains the tracks to this many model
        pixels (the 90th percentile of its inliers' residual); elsewhere the solved step stays (the
        steps measured, of every clip, overlapping ones included: pose_rotation_steps on
        /diagnostics). 0: off. Why: each frame's PnP rotation rests on the model's depth and is noisy. Validation scene (TUM fr1/rpy, 6 start frames), rotation error a
        frame 0.88 -> 0.85 degrees at 30 Hz, 2.10 -> 1.99 at 15 Hz, ATE 0.98x / 1.00x; on every step,
        not only rotation-only ones, 0.52 and 1.32, but a sideways translation is then read as a turn
        (rules 66-68a, docs/results/session58/RULES.md).""", param="pose_rotation_step_px", low=0.0, high=50.0)
    epipolar_corners: int = setting(200, """pose_source geometry|fused: corners of each clip's first camera image
        followed by LK (over every second frame) to its last, whose essential matrix gives the
        direction of the clip's translation (the model's metres keep its size; perception/epipolar.py),
        where those two views measure one (30 inliers, 1 px of parallax, a rotation within 10
        degrees of the solver's), also on clips the PnP geometry calls rotation-only; 0: off. Why:
        PnP on the model's own depth trades translation against rotation on a scene it never saw.
        200 on the validation scene (TUM fr1/rpy, 6 start frames): ATE 0.0286 -> 0.0188 m (ORB VO
        0.0255); training rows kitchen 0.059 -> 0.051, HoloLens unchanged; 23 ms a clip on the
        2-core CPU (docs/results/session30 rules 6-7, session31 rule 8).""",
                                    param="pose_epipolar_corners", low=0, high=5000)
    epipolar_step_rotation: bool = setting(False, """pose_epipolar_corners > 0: each step of a clip's rotation from
        one frame to the next measured on the camera images, by corners followed over every frame on a chain
        of their own: the turn of their bearings where a turn explains them to 1 px, else the essential
        matrix's rotation, within 10 degrees of the solved step; the chained steps bent to end at the rotation
        of the clip's first and last views where those measure a translation (a sideways move of a far scene
        also looks like a turn frame to frame); not into or out of a frame the geometry called still
        (epipolar.rotation_from_steps; steps measured: pose_step_rotations on /diagnostics). Off by default:
        rule 69a (docs/results/session59/RULES.md) cut the rotation error a frame by 16-23 % on the validation
        desk at 30 / 15 / 10 Hz (0.85 -> 0.67 degrees at 30 Hz) and by half on the training walk, which the
        angular velocity of the odometry's twist carries, but it moved the ATE by 1.06x at 30 Hz, 1.07x on
        the kitchen and 1.10x on the walk played backwards, over its bars. Costs a second LK pass over
        every frame (the pose stage +28 to +32 ms a clip on this CPU).""",
                                           param="pose_epipolar_step_rotation")
    epipolar_steps: bool = setting(True, """pose_epipolar_corners > 0: where a clip's first and last camera images
        measure no direction, the steps its corners were followed over (every second frame) each
        measure their own by the essential matrix, and their sum turns the clip's translations (used
        when at least half of the steps measured one; fresh corners are seeded where fewer than
        pose_epipolar_replenish_below are still followed). Why: on a walk or a slow camera the first frame's corners do not last
        the clip (the HoloLens walk: none of its clips measured a first-last direction). The
        HoloLens walk played backwards (images the model saw, a motion it did not learn): ATE 0.286
        -> 0.168 m (ORB VO 0.109); TUM fr1/rpy (validation) at 30 / 15 / 10 Hz and the kitchen
        (train) unchanged; about 0-11 ms a clip where it runs (docs/results/session36, rule 23).""",
                                   param="pose_epipolar_steps")
    epipolar_replenish_below: int = setting(100, """pose_epipolar_steps: fresh corners are seeded at a followed frame
        where fewer than this many are still followed there, so that each step has corners of its own
        to measure its direction (epipolar.follow_corner_steps). Never fewer than 30 (an essential
        matrix's minimum inliers). Why 100, not 30: a step that started with 40 corners and lost 15 on
        the way measured nothing and kept the solver's direction (44 degrees off on the walk). The
        HoloLens walk with the geometry alone (ATE mean of 6 starts; the stand-in for its unseen
        frames) 0.1365 -> 0.1069 m (ORB VO 0.0745), forward 0.0561 -> 0.0537, backwards 0.1293 ->
        0.1265; TUM fr1/rpy (validation) 10 Hz 0.0240 -> 0.0233, 30 Hz and the kitchen (train)
        unchanged; the pose step +1-2 ms a clip on TUM, +7-9 on the walk (docs/results/session39,
        rule 33).""",
                                            param="pose_epipolar_replenish_below", low=30, high=5000)
    epipolar_rotation_guess: bool = setting(True, """pose_epipolar_corners > 0: where a clip's first and last camera images
        measure no direction, its corners are followed again with LK started where the clip's solved
        rotation moves each of them (epipolar.rotation_guess), and that chain gives the first-last or
        the stepwise direction (skipped when a newer clip waits). Why: at a fast turn or a low frame
        rate the corners move farther than LK's pyramid reaches. Only where the plain corners measured
        nothing, because where they did, the guess flipped some good directions. The HoloLens walk
        played backwards (a motion the head never learned): ATE 0.168 -> 0.129 m (ORB VO 0.109); TUM
        fr1/rpy (validation) 30 Hz 0.0201 -> 0.0202, backwards 0.0259 -> 0.0227; 15 / 10 Hz and the
        kitchen (train) within 1 %; about 10 ms a clip where it runs (docs/results/session38, rule 29).""",
                                            param="pose_epipolar_rotation_guess")
    epipolar_hold_unmeasured: bool = setting(True, """pose_epipolar_corners > 0: where at least 30 of a clip's first
        corners lasted to its last frame and still no essential matrix measured its direction (first
        and last frames, the guided pass, the steps), the clip's translations are zero and its
        rotations stay (counted as pose_epipolar_held). Why: corners that last a clip whose motion no
        essential matrix explains within a pixel show a camera that turned more than it moved (on the
        validation desk such clips came from fast turns; their solved directions were 75 degrees off
        on average), and a wrong direction of the solved size costs more than no translation. TUM
        fr1/rpy (validation, ATE mean of 6 starts) 30 Hz 0.0202 -> 0.0180 m (ORB VO 0.0255), backwards
        0.0227 -> 0.0214, 15 Hz 0.0305 -> 0.0294, 10 Hz unchanged; the kitchen (train) 0.0536 -> 0.0529,
        at 15 Hz 0.0830 -> 0.0859, backwards 0.0603 -> 0.0530; the HoloLens walk unchanged (its clips
        lose their corners instead); no extra work (docs/results/session39, rule 32). A camera moving
        through a scene where most corners move on their own (a crowd) could be held wrongly: the count
        says when. Since session 61 (rule 70a) only where the two views would have measured the solved
        travel (at least 1/50 of the first frame's median depth: the baseline within which they count
        points); a shorter travel stands, counted as pose_epipolar_unrefuted (a robot driving 0.05-0.2 m/s
        through a room 2-6 m deep was held still; the kitchen's first 11 clips held 5 -> 1, its ATE 0.972x,
        TUM unchanged; docs/results/session61).""",
                                             param="pose_epipolar_hold_unmeasured")
    fuse_sizes: bool = setting(True, """pose_source fused: each frame's fused translation keeps the weighted mean
        of the head's and the geometry's sizes, in the direction of their weighted mean; false: the
        weighted mean vector itself. Why: two translations pointing different ways average to a
        shorter one than either measured, and the epipolar direction then turns that shortened
        vector; on motion the pose head never learned they point far apart (the HoloLens walk played
        backwards: 140 degrees, the fused size down to 0.31x). Walk backwards (training images,
        unlearned motion; ATE mean of 6 starts) 0.1265 -> 0.0957 m (ORB VO 0.1091), kitchen backwards
        0.0530 -> 0.0493; TUM fr1/rpy (validation) 30 Hz 0.0180 -> 0.0180, backwards 0.0214 -> 0.0211,
        15 / 10 Hz 0.0293 / 0.0233 -> 0.0292 / 0.0229; the kitchen forward (train, 6 starts) within
        1 % at 30 / 15 / 10 Hz; no extra work (docs/results/session40, rules 35-36). Clips whose head
        translation points against the geometry's are counted as pose_head_overruled.""",
                               param="pose_fuse_sizes")
    relink_corners: int = setting(200, """pose_source geometry|fused: a frame whose motion the clip's geometry lost
        (its tracks from the clip's first frame gone, or PnP gated) is solved from the frame before it
        instead: this many fresh corners of that frame's camera image followed by LK to it, PnP on the
        model's depth there, composed with the frame before's motion (pose_geometry.relink_lost_frames;
        about 9 ms a frame relinked, skipped while the node is behind its camera); 0: off. Why: on a
        camera at 10 Hz a clip spans 0.8 s, its first frame's tracks are gone by its last frames,
        which then took the pose head's rotation (a quarter of the camera's at that rate). 200 on the
        validation scene (TUM fr1/rpy, 6 start frames) at 10 / 15 Hz: ATE 0.0295 -> 0.0239 / 0.0321
        -> 0.0314 m (ORB VO 0.0274 / 0.0161), rotation error 6.42 -> 2.50 / 2.89 -> 2.13 deg a frame;
        30 Hz unchanged (no frame lost); docs/results/session35 rule 17.""",
                                  param="pose_relink_corners", low=0, high=5000)
    publish_tf: bool = setting(True, """Publish odom_frame -> base_frame on /tf (tf2_ros when importable, else
        a TFMessage publisher). false: leave TF to robot_localization. Without poses (enable_pose false) nothing is
        sent, whatever this says.""", param="publish_tf")
    odom_frame: str = setting("odom", """Parent frame of odometry, pose, path and TF. odom_frame, base_frame and
        camera_frame must be non-empty, distinct and without a leading '/' (tf2 drops or refuses such
        frames): configure fails naming the parameter.""", param="odom_frame")
    base_frame: str = setting("base_link", "Child frame of odometry and TF (a frame name as odom_frame says).",
                              param="base_frame")
    camera_frame: str = setting("camera_optical_frame", """Frame of the outputs of an image whose header has no
        frame_id (counted as bad input no_frame_id; one over 256 characters or unprintable: bad_frame_id):
        with none, depth, points, tracks and markers had an empty frame that rviz, Nav2 and TF cannot
        place, and tf2 refused the camera mount. (A leading '/' is dropped from the image's frame_id,
        counted in /diagnostics as frames_frame_id_slash.) A frame name as odom_frame says.""",
                                param="camera_frame")
    camera_mount_timeout_s: float = setting(2.0, """The camera's mount, base_frame -> the images' frame_id, is
        looked up on /tf_static (from the robot's URDF) for up to this long from the first frame of each
        frame_id (each activation's first camera included: a camera or a bag started long after activation
        whose /tf_static trails its first image still finds it), on the steady clock and in the frames'
        stamps both (a bag played slower, or paused, is still looked up for this long of its own time);
        without it, base_from_camera is used with a warning. 0: use base_from_camera without looking.""",
                                            param="camera_mount_timeout_s", low=0.0)
    base_from_camera: list = setting([0.0, 0.0, 0.0, -0.5, 0.5, -0.5, 0.5], """Camera optical frame in the
        base frame, [x, y, z, qx, qy, qz, qw], used when TF has no mount. Default: REP-103
        optical-to-body rotation (z forward, x right, y down -> x forward, y left, z up).""",
                                     param="base_from_camera")
    publish_camera_mount: bool = setting(False, """Publish base_from_camera on /tf_static as base_frame -> the
        images' frame_id, for a robot without a URDF (then no lookup is made); from the first frame of each
        activation until deactivation, from one publisher. Not where /tf_static gives that frame a parent
        already (a camera driver's own tree, e.g. realsense2_camera's camera_link -> camera_color_frame ->
        camera_color_optical_frame; withdrawn if that comes later): tf2 keeps one parent per frame, so a
        second one broke one of the trees. It then warns: set the mount in the URDF (robot_state_publisher)
        or publish base_frame -> the tree's root.""",
                                         param="publish_camera_mount")
    # At least 1e-12: with 0, a still camera published an all-zero twist covariance, which an EKF takes as exact.
    rotation_var_floor: float = setting(1e-6, "Lower bound of the per-frame rotation variance (rad^2), at least 1e-12.",
                                        param="pose_rotation_var_floor", low=1e-12)
    translation_var_floor: float = setting(1e-6, "Lower bound of the per-frame translation variance (m^2), at least "
                                           "1e-12.", param="pose_translation_var_floor", low=1e-12)
    rotation_var_scale: float = setting(10.0, """Factor on each clip's rotation variance before it is published
        (pose and odometry covariances), so that a filter weighs the odometry by its real errors. Why:
        the variances of the fused head and PnP measured 10x smaller than the clips' true squared
        errors on the validation scene (TUM fr1/rpy: mean NEES 31.5 against 3 for an honest
        variance; tools/pose_error_budget.py, session 31 rule 11); training scenes 4-10x. Poses do
        not depend on it.""", param="pose_rotation_var_scale", low=1e-3, high=1e6)
    translation_var_scale: float = setting(5.0, """Factor on each clip's translation variance before it is
        published, as pose_rotation_var_scale (validation scene: mean NEES 14.6 against 3, after one
        scale for the model's metres; training scenes 2-3x). It does not cover the model's metres
        being off by a factor on a new camera (metric_scale_source: reference_odometry does).""",
                                        param="pose_translation_var_scale", low=1e-3, high=1e6)
    path_max_length: int = setting(1000, "Poses kept in the path message.", param="path_max_length",
                                   low=1, high=1_000_000)

    def check_consistency(self) -> None:
        _check_mount(self.base_from_camera)
        # Frame names tf2 takes: it drops a transform with an empty frame (TF_NO_FRAME_ID) or from a
        # frame to itself (TF_SELF_TRANSFORM), and its lookups refuse a leading '/'; configure accepted
        # them, and /tf, odometry and the camera mount then carried frames no consumer could use.
        seen: dict[str, str] = {}
        for name, value in (("odom_frame", self.odom_frame), ("base_frame", self.base_frame),
                            ("camera_frame", self.camera_frame)):
            if not value:
                raise ValueError(f"{name} must not be empty (tf2 drops a transform with an empty frame)")
            if value.startswith("/"):
                raise ValueError(f"{name} must not start with '/' (tf2 refuses it), got {value!r}: use "
                                 f"{value.lstrip('/')!r}")
            if value in seen:
                raise ValueError(f"{name} must differ from {seen[value]}, both are {value!r} (TF would link the "
                                 "frame to itself, which tf2 drops)")
            seen[value] = name


@dataclass(frozen=True)
class ScaleSettings(_Group):
    """metric scale (perception/metric_scale.py)"""

    source: str = setting("model", """Where the metres of depth, points, track xyz and odometry come from:
        model (the depth head's own metric scale: right on the scenes it was trained on, about 2.4x too far
        on the validation scene's desk, TUM fr1/rpy) | reference_odometry (the model's metres rescaled
        by the robot's own odometry on the reference_odom topic, nav_msgs/Odometry of base_frame, e.g.
        the wheels: per clip, the camera's travel by the reference over the model's, the median of the
        last metric_scale_window clips; the model's own until metric_scale_min_clips counted; needs
        enable_pose) | reference_depth (the model's metres rescaled by an RGB-D camera's depth on the
        reference_depth topic, sensor_msgs/Image 16UC1 mm or 32FC1 m registered to the colour image, e.g.
        RealSense aligned_depth_to_color: per clip, the median over its frames of the reference over the
        model's depth where both have one; the model's depth fills what the sensor misses; needs
        enable_depth).""", param="metric_scale_source", choices=("model", "reference_odometry", "reference_depth"))
    min_distance_m: float = setting(0.05, """reference_odometry: a clip counts when the reference moved the
        camera at least this far between its first and last frame (a short travel is mostly the
        reference's and the model's noise; 5 cm: a robot at 0.2 m/s over an 8-frame clip at 30 Hz).""",
                                    param="metric_scale_min_distance_m", low=0.0)
    max_rotation_deg: float = setting(5.0, """reference_odometry: a clip counts only when the reference turned
        the camera at most this much between its first and last frame: over a short clip a turning camera's
        translation trades against its rotation, and the model's translation is then mostly that ambiguity
        (docs/results/pose_error_budget).""",
                                      param="metric_scale_max_rotation_deg", low=0.0, high=180.0)
    window: int = setting(30, """reference_odometry: the scale is the median ratio of this many last counted clips;
        reference_depth: the odometry's is (the depth takes each clip's own).""",
                          param="metric_scale_window", low=1, high=100000)
    min_clips: int = setting(5, """reference_odometry: clips that must count before the scale leaves
        metric_scale_factor.""", param="metric_scale_min_clips", low=1, high=100000)
    factor: float = setting(1.0, """The model's metres times this: the scale with metric_scale_source model, and
        reference_odometry's or reference_depth's until it has measured one. 1: the depth head's own. A
        site's factor comes from a short RGB-D recording there (`fourds-ros calibrate-scale BAG`, after
        `fourds-ros bag import`): on TUM fr1/rpy (validation) the factor of its first 40 frames took the next
        40 frames' metric AbsRel from 1.36 to 0.34 (0.68x the oracle constant's), that of the second 40 the
        first 40's from 1.56 to 0.31 (1.26x; docs/results/session43/calibrate_scale_halves.sh). It holds for
        the views it was measured on.""",
                            param="metric_scale_factor", low=1e-3, high=1e3)

    def check_consistency(self) -> None:
        # Only reference_odometry counts min_clips (reference_depth takes its first clip's): checked for
        # every source, reference_depth with a window under the default min_clips failed to configure.
        if self.source == "reference_odometry" and self.min_clips > self.window:
            raise ValueError(f"metric_scale_min_clips ({self.min_clips}) must not exceed metric_scale_window "
                             f"({self.window})")


@dataclass(frozen=True)
class DiagnosticsSettings(_Group):
    """diagnostics"""

    period_s: float = setting(1.0, "Seconds between /diagnostics messages.", param="diagnostics_period_s",
                              low=0.01, high=3600.0)
    latency_warn_ms: float = setting(1000.0, """WARN while the 95th percentile of frame latency (image stamp to
        its outputs published) is above this. 0: off.""", param="latency_warn_ms", low=0.0)
    queue_warn_ms: float = setting(100.0, """WARN while the 95th percentile of the time frames wait in the node's
        own subscription queue (DDS reception to callback) is above this: the executor thread is starved, or
        (Fast DDS) the camera sends frames larger than its shared-memory segment. 0: off.""",
                                   param="queue_warn_ms", low=0.0)
    stall_warn_s: float = setting(5.0, """WARN when frames arrive but none has been described for this long,
        and when, active, no frame has arrived for this long: with publishers on the image topic (an
        incompatible image_qos, a stopped camera) or with none (a driver gone, `image` remapped to a topic
        nobody publishes). Under use_sim_time a moving /clock must have passed it too. 0: off.""", param="stall_warn_s", low=0.0)
    debug_inference_delay_ms: float = setting(0.0, """TEST ONLY: wraps the engine in SlowEngine, sleeping
        this long per clip (overload tests). 0: off.""", param="debug_inference_delay_ms", low=0.0)


@dataclass(frozen=True)
class PerceptionSettings:
    model: ModelSettings = field(default_factory=ModelSettings)
    clip: ClipSettings = field(default_factory=ClipSettings)
    inputs: InputSettings = field(default_factory=InputSettings)
    depth: DepthSettings = field(default_factory=DepthSettings)
    tracks: TrackSettings = field(default_factory=TrackSettings)
    pose: PoseSettings = field(default_factory=PoseSettings)
    scale: ScaleSettings = field(default_factory=ScaleSettings)
    diagnostics: DiagnosticsSettings = field(default_factory=DiagnosticsSettings)

    def __post_init__(self):  # rules between groups
        if self.scale.source == "reference_odometry" and not self.pose.enable:
            raise ValueError("metric_scale_source: reference_odometry needs enable_pose: true (it compares each "
                             "clip's motion with the reference's)")
        if self.scale.source == "reference_depth" and not self.depth.enable:
            raise ValueError("metric_scale_source: reference_depth needs enable_depth: true (it compares each "
                             "clip's depth with the reference's)")

    @classmethod
    def from_params(cls, values: dict[str, Any] | None = None, **overrides) -> PerceptionSettings:
        """Settings from ROS parameter values (names as in config/perception.yaml; the rest keep their
        defaults). Raises ValueError naming the parameter when a value is of the wrong type, out of
        range, not one of its choices, unknown, or conflicts with another."""
        values = {**(values or {}), **overrides}
        unknown = set(values) - {spec.name for spec in parameter_specs()}
        if unknown:
            raise ValueError(f"unknown parameter(s) {sorted(unknown)}")
        groups = {}
        for name, group in _GROUPS.items():
            fields = dataclasses.fields(group)
            groups[name] = group(**{f.name: values[f.metadata["param"]] for f in fields
                                    if f.metadata["param"] in values})
        return cls(**groups)

    def as_params(self) -> dict[str, Any]:
        """The inverse of from_params: {parameter name: value}."""
        out = {}
        for group in dataclasses.fields(self):
            sub = getattr(self, group.name)
            for f in dataclasses.fields(sub):
                out[f.metadata["param"]] = getattr(sub, f.name)
        return out


_GROUPS = {"model": ModelSettings, "clip": ClipSettings, "inputs": InputSettings, "depth": DepthSettings,
           "tracks": TrackSettings, "pose": PoseSettings, "scale": ScaleSettings,
           "diagnostics": DiagnosticsSettings}


def _check_mount(values: list) -> None:
    if len(values) != 7:
        raise ValueError(f"base_from_camera must be [x, y, z, qx, qy, qz, qw], got {len(values)} values")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"base_from_camera must be finite, got {values}")
    norm = math.sqrt(sum(v * v for v in values[3:]))
    # A quaternion far from unit length is a typo (e.g. degrees), not a rounding error.
    if abs(norm - 1.0) > 1e-3:
        raise ValueError(f"base_from_camera quaternion must have unit norm, got {norm:.4f}")


@dataclass(frozen=True)
class ParameterSpec:
    """One ROS parameter as declared: name, default, Python type, description, bounds, choices."""

    name: str
    default: Any
    type: type
    description: str
    low: float | None
    high: float | None
    choices: tuple | None
    allowed: str | None = None  # the declared text, where configure narrows low/high (setting())

    @classmethod
    def of(cls, f: dataclasses.Field) -> ParameterSpec:
        m = f.metadata
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        return cls(m["param"], default, type(default), m["description"], m["low"], m["high"], m["choices"],
                   m["allowed"])

    @property
    def constraints(self) -> str:
        """Human-readable allowed values ('' when any value of the type is allowed)."""
        if self.allowed:
            return self.allowed
        if self.choices:
            return "one of " + ", ".join(map(str, self.choices))
        return self._range

    @property
    def _range(self) -> str:
        """The bounds check() enforces ('' when open). A number is always finite: an open end reads "inf)",
        not "inf]" (max_depth was declared "in [0, inf]" and inf refused)."""
        if self.low is not None or self.high is not None:
            lo = "(-inf" if self.low is None else f"[{self.low:g}"
            hi = "inf)" if self.high is None else f"{self.high:g}]"
            return f"in {lo}, {hi}"
        return "finite" if self.type in (int, float) else ""

    def check(self, value: Any) -> Any:
        """The value converted to this parameter's type; ValueError naming the parameter otherwise."""
        value = self._convert(value)
        if self.choices and value not in self.choices:
            raise ValueError(f"{self.name} must be one of {self.choices}, got {value!r}")
        if self.type in (int, float) and (not math.isfinite(value) or (self.low is not None and value < self.low)
                                          or (self.high is not None and value > self.high)):
            raise ValueError(f"{self.name} must be {self._range}, got {value!r}")
        return value

    def _convert(self, value: Any) -> Any:
        kind = {int: "an integer", float: "a number", bool: "a bool", str: "a string"}.get(self.type, self.type.__name__)
        wrong = ValueError(f"{self.name} must be {kind}, got {value!r}")
        if self.type is bool:
            if not isinstance(value, bool):
                raise wrong
            return value
        if self.type is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise wrong
            return value
        if self.type is float:
            if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):  # rclpy reads "1e-06" as a string
                value = float(value)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise wrong
            return float(value)
        if self.type is list:  # rclpy gives double arrays as array.array
            if value is None:  # rcl reads an empty YAML list (exclude_boxes: []) as a parameter not set
                return []
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__") or \
                    not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
                raise ValueError(f"{self.name} must be a list of numbers, got {value!r}")
            return [float(v) for v in value]
        if not isinstance(value, str):
            raise wrong
        return value


def add_param_argument(parser, what: str = "for this run") -> None:
    """`--param NAME=VALUE` (repeatable) on a command line; read it with params_from_args."""
    parser.add_argument("--param", metavar="NAME=VALUE", action="append", default=[],
                        help=f"a node parameter {what} (repeatable; value read as YAML), e.g. pose_source=head")


def params_from_args(parser, items: list[str]) -> dict:
    """["pose_source=head", "max_tracks=32"] -> {"pose_source": "head", "max_tracks": 32}, checked
    against the node's parameters before any work (the parser exits naming a bad one)."""
    import yaml

    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            parser.error(f"--param {item!r} is not NAME=VALUE")
        try:
            params[name] = yaml.safe_load(value)
        except yaml.YAMLError as exc:  # "[1" was a ParserError traceback
            parser.error(f"--param {item!r}: its value is not YAML ({exc.problem if hasattr(exc, 'problem') else exc})")
    try:
        settings = PerceptionSettings.from_params(params)
    except ValueError as exc:
        parser.error(str(exc))
    # Typed as declared (500 -> 500.0 for a double), or a params file would not match the node's types.
    return {name: value for name, value in settings.as_params().items() if name in params}


def parameter_specs() -> Iterator[ParameterSpec]:
    """Every parameter, in declaration (and YAML) order."""
    for group in _GROUPS.values():
        for f in dataclasses.fields(group):
            yield ParameterSpec.of(f)


# Read once, when the process starts (the diagnostics timer, the self-activation), not at configure.
READ_AT_START = ("diagnostics_period_s", "autostart")


def parameter_change_refusal(current: dict[str, Any], changes: dict[str, Any], state: str) -> str | None:
    """Why a runtime change of parameters (`ros2 param set`) must be refused, or None to accept it.
    current: every parameter's value now; changes: the new values of some of them; state: the
    node's lifecycle state (unconfigured, inactive, active, finalized, or a transition's). A value
    equal to the current one changes nothing and is accepted in every state (`ros2 param load` of
    the node's own dump). Every setting is read at configure, so while the node is configured a
    change would be accepted and do nothing until the next configure: refused, saying how to apply
    it from this state. Unconfigured, the change is checked as configure will check it (type, range,
    choices, conflicts) and refused when it makes things worse: a value that is bad itself or
    breaks a valid set, named. A set already invalid (a params file with two bad values) takes a
    change that leaves its remaining errors elsewhere: refusing it made the set impossible to fix
    one `ros2 param set` at a time."""
    specs = {spec.name: spec for spec in parameter_specs()}
    changes = {name: value for name, value in changes.items()
               if name not in current or not _unchanged(specs.get(name), current[name], value)}
    if not changes:
        return None
    names = ", ".join(sorted(changes))
    fixed = sorted(set(changes) & set(READ_AT_START))
    if fixed:
        return f"{', '.join(fixed)}: read when the process starts; set it in the params file or on the command line"
    if state != "unconfigured":
        return f"{names}: {_HOW_TO_APPLY.get(state, f'the node is in transition ({state}); set it once it has ended')}"
    specs = {spec.name: spec for spec in parameter_specs()}
    try:
        for name, value in changes.items():
            if name in specs:  # an unknown name is refused by name below
                specs[name].check(value)
    except ValueError as exc:
        return str(exc)
    after = settings_error({**current, **changes})
    if after is None:
        return None
    names_a_change = any(re.search(rf"\b{re.escape(name)}\b", after) for name in changes)
    return after if names_a_change or settings_error(current) is None else None


# How a change reaches the settings from each configured state: deactivate is no transition of an
# inactive node, and a finalized one takes none at all.
_HOW_TO_APPLY = {
    "inactive": "read at configure; clean up the node, set it, then configure (and activate) again",
    "active": "read at configure; deactivate and clean up the node, set it, then configure and activate again",
    "finalized": "node finalized: restart the process",
}


# A decimal number written out, as rclpy's `ros2 param load` sends a float YAML dumped without a point ("1e-06").
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _unchanged(spec: ParameterSpec | None, current: Any, new: Any) -> bool:
    """Whether setting `new` over `current` changes nothing: the same value and type, or for a float parameter
    the same number written as text (`ros2 param dump` writes 1.0e-06, which `ros2 param load` sends as the
    string "1e-06": refused on an active node as a change, the node's own dump could not be loaded back)."""
    if _same_value(current, new):
        return True
    if spec is None or spec.type is not float or not isinstance(new, str):
        return False
    try:
        return spec.check(current) == spec.check(new)
    except ValueError:
        return False


def _same_value(a: Any, b: Any) -> bool:
    """Equal in type and value (rclpy gives arrays as array.array, a list set as a list: compared
    element by element); 1 and 1.0 differ, since the set would change the parameter's type."""
    def norm(v):
        if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
            return type(v), v
        return list, tuple(norm(x) for x in v)
    return norm(a) == norm(b)


def settings_error(params: dict[str, Any]) -> str | None:
    """Why PerceptionSettings.from_params refuses these parameter values (the first error), or None."""
    try:
        PerceptionSettings.from_params(params)
    except ValueError as exc:
        return str(exc)
    return None


YAML_HEADER = """\
# Parameters of the fourds_perception lifecycle node (fourds_ros/ros/perception_node.py).
#   ros2 run fourds_ros perception_node --ros-args --params-file config/perception.yaml
# GENERATED from fourds_ros/perception/settings.py (`python -m fourds_ros.perception.settings >
# config/perception.yaml`); test/test_settings.py fails when the two differ. Every parameter is
# listed with its default. Topics (relative, so a namespace applies):
#   in:  image (sensor_msgs/Image rgb8, bgr8, mono8 and the other encodings of docs/perception_node.md),
#        image/compressed (jpeg|png), camera_info (paired with each image by stamp), track_queries
#        (PointCloud2 u, v; track_query_mode: topic), reference_odom / reference_depth (the metres;
#        metric_scale_source), /tf_static (the camera's mount), /tf (publish_tf: other odom publishers)
#   out: depth/image (32FC1, metres; -inf/+inf below min_depth/above max_depth, NaN no depth: REP 117),
#        depth/camera_info, depth/points (only while subscribed), tracks (PointCloud2 x y z u v
#        track_id visible confidence), tracks/markers, odometry, pose, path, /tf, /diagnostics;
#        service ~/reset (std_srvs/Trigger).
# The key matches the node in any namespace (a plain "fourds_perception" only at the root).
/**/fourds_perception:
  ros__parameters:
"""


def _yaml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '""' if value == "" else value
    if isinstance(value, list):
        return "[" + ", ".join(repr(float(v)) for v in value) + "]"
    if isinstance(value, float) and value != 0 and abs(value) < 1e-3:
        return f"{value:.1e}"
    return repr(value)


def render_yaml() -> str:
    """config/perception.yaml, generated: each group's docstring as a heading, each parameter's
    description (and allowed values) as the comment above it, then the default."""
    lines = [YAML_HEADER.rstrip("\n")]
    for group in _GROUPS.values():
        lines.append(f"    # --- {group.__doc__.strip()} ---")
        for f in dataclasses.fields(group):
            spec = ParameterSpec.of(f)
            text = spec.description + (f" Allowed: {spec.constraints}." if spec.constraints else "")
            lines += textwrap.wrap(text, width=100, initial_indent="    # ", subsequent_indent="    # ")
            lines.append(f"    {spec.name}: {_yaml_value(spec.default)}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render_yaml(), end="")
