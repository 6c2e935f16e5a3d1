"""The offline path: the bag's frames pushed straight into `PerceptionPipeline` (no DDS), the same
algorithm code the node runs. No rclpy. The node's intake parameters (flush_after_s, camera_info_*_wait_s,
QoS) do not apply here: every frame of the bag goes in, and the last clip is flushed (max_input_pixels and
image_16bit_max do, when eval reads the bag)."""

from __future__ import annotations

import time

import numpy as np

from .bag import CAMERA_FRAME, BagData, BagError
from .frame_store import TimedReads
from .predictions import Predictions


def result_to_predictions(preds: Predictions, result, latency_ms: float | None = None) -> None:
    """Store one pipeline FrameResult (fourds_ros.perception.pipeline) in preds."""
    s = int(result.stamp_ns)
    if result.depth is not None:
        preds.depth[s] = np.asarray(result.depth, np.float32)
        if result.depth_k is not None:
            preds.depth_K[s] = np.asarray(result.depth_k, float)
    if result.tracks is not None:
        tr = result.tracks
        preds.tracks[s] = {"ids": np.asarray(tr.ids, np.int64),
                           "uv": np.stack([np.asarray(tr.u, float), np.asarray(tr.v, float)], 1).reshape(-1, 2),
                           "visible": np.asarray(tr.visible, bool),
                           "confidence": np.asarray(tr.confidence, float)}
    if result.pose is not None:
        preds.poses[s] = np.asarray(result.pose.odom_from_camera, float)
    if latency_ms is not None:
        preds.latency_ms[s] = latency_ms


def run_offline(bag: BagData, model_dir, backend: str = "torch", settings=None) -> Predictions:
    """Every frame of the bag, in stamp order, through PerceptionPipeline.push.

    Latency per frame: wall time from pushing the frame until the push that returned its result
    (clip buffering included, exactly what a subscriber to the node sees minus transport; the bag's reading of
    frames, a compressed bag's decoding, left out).
    With metric_scale_source: reference_odometry, the bag's ground-truth camera poses stand in for
    the robot's odometry (each pushed just before its frame); with reference_depth, its ground-truth
    depth stands in for an RGB-D camera's.
    """
    from ..perception import PerceptionPipeline, PerceptionSettings
    from ..perception.odometry import quat_xyzw
    from ..model.checkpoint import load_config
    from ..perception.pipeline import heads_missing, model_engine

    settings = settings or PerceptionSettings()
    heads_missing(settings, load_config(model_dir).heads)  # as the node's configure: none of the enabled heads
    # The engine's query count, device, precision and threads are node parameters like the others, so
    # an offline run with --param precision=bf16 or num_queries=N runs what the node would.
    engine = model_engine(settings, model_dir, backend)
    pipeline = PerceptionPipeline(engine, settings)
    preds = Predictions(name="fourds", frames_in=len(bag.stamps),
                        depth_range=(settings.depth.min_depth, settings.depth.max_depth))
    pushed_at: dict[int, tuple[int, float]] = {}  # stamp -> (when pushed: ns, the frames' reading up to then: s)
    read = TimedReads()  # a frame's reading (a compressed bag's decoding) is the bag's time, not the model's

    def record(results) -> None:
        now = time.perf_counter_ns()
        for result in results:  # the later frames of its clip were read (decoded) meanwhile: left out too
            at, read_then = pushed_at[int(result.stamp_ns)]
            result_to_predictions(preds, result, (now - at) / 1e6 - (read.s - read_then) * 1e3)

    reference = pipeline.reference_scale is not None
    if reference and not bag.gt_pose:
        raise BagError(f"{bag.path}: metric_scale_source reference_odometry needs a reference; offline it is the "
                       "bag's ground-truth poses, and this bag has none")
    if pipeline.reference_depth is not None and not bag.gt_depth:
        raise BagError(f"{bag.path}: metric_scale_source reference_depth needs a reference; offline it is the "
                       "bag's ground-truth depth, and this bag has none")
    t0 = time.perf_counter()
    for stamp in bag.stamps:
        if reference and stamp in bag.gt_pose:  # odom_from_base = world_from_camera @ camera_from_base
            odom_from_base = bag.gt_pose[stamp] @ pipeline.odometry.camera_from_base
            pipeline.add_reference_odometry(stamp, odom_from_base[:3, 3], quat_xyzw(odom_from_base[:3, :3]))
        if pipeline.reference_depth is not None and stamp in bag.gt_depth:  # the RGB-D camera's depth
            pipeline.add_reference_depth(stamp, read(bag.gt_depth, stamp))
        image = read(bag.images, stamp)
        pushed_at[stamp] = time.perf_counter_ns(), read.s
        record(pipeline.push(image, stamp, CAMERA_FRAME, bag.intrinsics(stamp)))
    clip = pipeline.flush()  # the end of the bag: the node flushes once its input is idle
    if clip is not None:
        record(pipeline.process(clip).frames)
    preds.wall_s = time.perf_counter() - t0 - read.s
    preds.dropped = max(0, len(bag.stamps) - len(preds.output_stamps()))  # fewer than a clip too: a padded clip
    preds.status = pipeline.status()
    preds.engine = engine.describe()
    return preds
