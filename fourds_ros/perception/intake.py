"""Frames from the node's subscriptions into the pipeline, without ROS: pairing each image with its
camera_info, decoding, camera checks (camera.py), the clip buffer, and handing clips to the
inference worker. Every frame taken in is counted in exactly one way (health.py).

    intake = FrameIntake(pipeline, worker, health, settings)
    intake.push_info(stamp_ns, calibration, publisher)           # camera_info (Calibration or None), its DDS writer
    intake.push_image(stamp_ns, frame_id, decode, encoding)      # decode(work_max_pixels) -> (rgb, camera_hw)
    intake.release_overdue(); intake.flush_if_idle()             # from timers
    intake.pending_frames()
    level, message, values = intake.report(NodeState("active"))  # /diagnostics, pending frames filled in

Not tied to a thread: the node calls it from its one executor thread; `lock` guards the pipeline's
buffer against the reset service, `sync_lock` the camera_info pairing against deactivation.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable

import numpy as np

from .camera import Calibration, CameraIntake
from .camera_info_sync import CameraInfoSync, Paired, calibration_difference, looks_rectified, other_geometry
from .clip_buffer import OUT_OF_ORDER, StampHold
from .health import FRAMES_FRAME_ID_SLASH, NodeHealth, NodeState
from .image import ImageDecodeError
from .odometry import transform_from_xyz_quat
from .pipeline import PerceptionPipeline
from .settings import PerceptionSettings
from .work_image import WorkImage
from .worker import InferenceWorker

# A longer header.frame_id is no frame name: a 100 kB one was copied into every output message
# (tracks/markers repeats it per track: 6.5 MB a clip at max_tracks 64).
MAX_FRAME_ID_CHARS = 256
FRAME_ID_SLASH = "frame_id_slash"


def image_frame_id(frame_id: str, camera_frame: str) -> tuple[str, tuple[str, str] | None]:
    """An image's header.frame_id -> (the frame its outputs are in, None or the bad input's
    (kind, message)). A leading '/' (ROS 1 recordings, ros1_bridge) is dropped, as tf2 drops it
    from a transform's frames and refuses it in a lookup: kept, rviz and Nav2 could not place the
    outputs. An empty, overlong or unprintable one becomes
    camera_frame."""
    if len(frame_id) > MAX_FRAME_ID_CHARS or not frame_id.isprintable():
        shown = frame_id[:40].encode("unicode_escape").decode()
        return camera_frame, ("bad_frame_id", f"an image's header.frame_id ({len(frame_id)} characters, {shown!r}"
                              f"...) is no frame name: its outputs are in {camera_frame!r} (camera_frame)")
    stripped = frame_id.lstrip("/")
    if not stripped:
        return camera_frame, ("no_frame_id", f"an image without header.frame_id ({frame_id!r}): its outputs are "
                              f"in {camera_frame!r} (camera_frame)")
    if stripped != frame_id:
        return stripped, (FRAME_ID_SLASH, f"an image's header.frame_id {frame_id!r} starts with '/', which tf2 "
                          f"refuses: its outputs are in {stripped!r}")
    return frame_id, None

Decode = Callable[[int], tuple[np.ndarray, tuple[int, int]]]


class FrameIntake:
    def __init__(self, pipeline: PerceptionPipeline, worker: InferenceWorker, health: NodeHealth,
                 settings: PerceptionSettings,
                 camera_mount: Callable[[str, int], np.ndarray | None] = lambda frame_id, stamp_ns: None):
        """camera_mount(frame_id, stamp_ns) -> T_base_camera when newly known (e.g. from TF), else None."""
        self.pipeline, self.worker, self.health, self.settings = pipeline, worker, health, settings
        self.camera_mount = camera_mount
        self.sync = CameraInfoSync(wait_s=settings.clip.camera_info_wait_s,
                                   startup_wait_s=settings.clip.camera_info_startup_wait_s)
        self.camera = CameraIntake()
        # A frame stamped far ahead, or a step back of under 1 s, waits for the next frames' word (under sync_lock)
        self.stamps = StampHold()
        # The newest frame took its K from camera_info (not the default intrinsics): what /diagnostics calls
        # camera_info "yes". A camera_info merely received (its K NaN, or all zero) is no K in use.
        self.camera_k_in_use = False
        # The resolved topics subscribed at activation (subscribed): named in warnings.
        self.image_topic, self.camera_info_topic = "image", "camera_info"
        self.lock = threading.Lock()
        self.sync_lock = threading.RLock()  # reentrant: report holds it around pending_frames
        # base_from_camera is judged where the odometry keeps it: here where no lookup can replace it, else when the
        # lookup ends without TF's mount (parameter_mount_kept); TF's is judged by _add. Judged here before TF was
        # looked up, it advised image_rotation 0 to a camera set to 180 whose URDF mount agrees with that setting;
        # left unjudged where the lookup found nothing, image_rotation and the mount the odometry uses disagreed unsaid.
        self.parameter_mount = transform_from_xyz_quat(settings.pose.base_from_camera)
        if settings.pose.camera_mount_timeout_s == 0 or settings.pose.publish_camera_mount:
            self._advise_rotation(self.parameter_mount)

    def parameter_mount_kept(self) -> None:
        """The camera mount's lookup ended without TF's (ros.transforms.CameraMount): the odometry keeps
        base_from_camera, which is judged now."""
        self._advise_rotation(self.parameter_mount)

    def _advise_rotation(self, base_from_camera: np.ndarray) -> None:
        advice = self.pipeline.rotation_advice(base_from_camera)
        if advice:
            self.health.warn("image_rotation", advice)

    def subscribed(self, image_topic: str, camera_info_topic: str) -> None:
        """The node subscribed these resolved topics (activation)."""
        self.image_topic, self.camera_info_topic = image_topic, camera_info_topic
        self.health.image_topic = image_topic  # named by the interleaved-publishers WARN

    @property
    def has_camera_info(self) -> bool:
        return self.camera_k_in_use

    def push_info(self, stamp_ns: int, calibration: Calibration | None, publisher=None) -> None:
        """calibration None: an uncalibrated camera (K all zero): counted by the frames it leaves without a K
        (_camera), once each, as every other camera_info problem is. publisher: its DDS writer (MessageInfo's
        publisher_gid; None or '': not known), compared with the other publishers' (camera_info_sync.InfoPublishers)."""
        if calibration is not None and self.settings.inputs.image_rectified:  # image_rect: P's intrinsics, undistorted already
            calibration = calibration.rectified()
        elif calibration is not None and any(calibration.d) and looks_rectified(self.image_topic):
            # image_proc publishes no camera_info of its own: its image_rect comes beside the driver's, whose
            # distortion undistorted it a second time (TUM fr1's lens: K 517 -> 547, features moved 5-10 px).
            self.health.warn("image_rect_undistorted_again", f"{self.image_topic} is a rectified image by its name, "
                             "but image_rectified is false: its camera_info's distortion undistorts it a second "
                             "time; set image_rectified: true (or name a raw image)")
        with self.sync_lock:
            self._add_all(self.sync.push_info(stamp_ns, calibration, time.monotonic(), publisher))
            other, late = self.sync.differs, self.sync.late
        # A frame took the latest K and its own came after it, with other geometry (a constant K never warns,
        # however stamped): that frame was described with the wrong K (frames_without_own_camera_info only counts it).
        if late is not None and calibration is not None and other_geometry(calibration, late[1]):
            self.health.warn("camera_info_late", f"the frame of stamp {late[0]} ns was described with an earlier "
                             "camera_info's calibration: its own came after it and differs (its own vs the one taken: "
                             f"{calibration_difference(calibration, late[1])}); set camera_info_wait_s (e.g. 0.5) "
                             "for frames to wait for their own")
        if other:
            names = self.health.name_publishers(self.camera_info_topic, sorted([publisher, other[0]], key=str))
            self.health.warn("camera_info_publishers", f"camera_info comes from two publishers on "
                             f"{self.camera_info_topic} ({names}) with different calibrations ({other[1]}): two "
                             "drivers on one topic? A frame takes the camera_info of its own stamp, else the latest of "
                             "the publisher that last matched a frame's; give each camera its own topic (namespace)")

    def push_image(self, stamp_ns: int, frame_id: str, decode: Decode, encoding: str) -> None:
        """decode(work_image_max_pixels) -> ((H, W, 3) uint8 RGB, the camera image's (H, W)): the RGB at
        the camera's size or, where the decoder can do it cheaply (JPEG), already at its working size."""
        # An image may wait for camera_info (camera_info_wait_s, camera_info_startup_wait_s): camera_info_sync.py.
        with self.sync_lock:
            self._add_all(self.sync.push_image(stamp_ns, (stamp_ns, frame_id, decode, encoding), time.monotonic()))

    def add_track_queries(self, uv: np.ndarray, stamp_ns: int = 0) -> None:
        """(N, 2) pixels of the camera's own image to track (track_query_mode: topic), picked on the image stamped
        stamp_ns (0: the next clip's first frame), brought into the undistorted view the pipeline works on (the latest frame's lens;
        before any frame, the first frame's: pipeline.add_frame). ValueError: refused (pipeline.add_track_queries)."""
        # Only a cloud's last num_queries points can ever be seeded (the pending queries keep the newest
        # num_queries, whatever the points: TrackManager.add_topic_queries): the others are refused here, before
        # the work per point, and counted as it would have counted them. Why: a 2M-point cloud was undistorted
        # and queued point by point first, stalling the executor 2.5 s and growing the node by 175 MB.
        uv = np.asarray(uv, float).reshape(-1, 2)
        over = max(0, len(uv) - self.pipeline.tracks.num_queries)
        uv, lens = uv[over:], self.camera.lens
        self.pipeline.add_track_queries(uv if lens is None else lens.to_undistorted(uv), stamp_ns)
        self.pipeline.tracks.count_refused("over_capacity", over)  # after: a cloud refused whole counts none of it

    def push_reference_odometry(self, stamp_ns: int, position: np.ndarray, quaternion_xyzw: np.ndarray,
                                frames: tuple[str, str] = ("", "")) -> None:
        """metric_scale_source: reference_odometry: one pose of the robot's own odometry; a refused one is counted.
        frames: its (header.frame_id, child_frame_id)."""
        pose = self.settings.pose
        if pose.publish_tf and tuple(f.lstrip("/") for f in frames) == (pose.odom_frame, pose.base_frame):
            # A base controller that publishes its odometry usually publishes this very transform on
            # /tf too: two sources of odom -> base_link (REP-105), between which tf2 lookups jump.
            self.health.warn("tf_conflict", f"reference_odom is {pose.odom_frame} -> {pose.base_frame}, the transform "
                             "this node publishes on /tf: set publish_tf: false (or other odom_frame / base_frame "
                             "names) so that one source publishes it")
        if refused := self.pipeline.add_reference_odometry(stamp_ns, position, quaternion_xyzw):
            self.health.warn("reference_odometry", f"{refused}: not used for the metric scale")

    def push_reference_depth(self, stamp_ns: int, decode: Callable[[], np.ndarray]) -> None:
        """metric_scale_source: reference_depth: one depth image of an RGB-D camera, registered to the colour
        image (undistorted as the colour frames are); a refused one is counted."""
        try:
            refused = self.pipeline.add_reference_depth(stamp_ns, self.camera.undistort_depth(decode()))
        except ImageDecodeError as exc:
            refused = f"{exc.kind}: {exc}"
        if refused:
            self.health.warn("reference_depth", f"{refused}: not used for the metric scale")

    def release_overdue(self) -> None:
        """Images whose camera_info is overdue go on with the latest one."""
        with self.sync_lock:
            self._add_all(self.sync.release(time.monotonic()))

    def drain(self) -> None:
        """Inputs stop (deactivation): images waiting for camera_info, and the frames buffered after
        the last clip, are still described (a clip of the last frames), so none is left uncounted
        when the node is cleaned up; the frames after a re-activation start a sequence of their own."""
        with self.sync_lock:
            self._add_all(self.sync.clear())
            self._add_all(self.stamps.release(), checked=True)
        self._flush()
        with self.lock:
            discarded = self.pipeline.end_sequence()
        if discarded:  # none since the flush describes every buffered frame; counted, should that change
            self.health.counts["frames_discarded_at_release"] += discarded
            self.health.log_warning(f"input stopped with {discarded} frames buffered, fewer than a clip: discarded")

    def flush_if_idle(self) -> None:
        """Input idle with nothing in inference: a clip of the last frames describes the ones after
        the last clip, which would otherwise wait for the next hop, or for the reset that ends them."""
        if self.worker.flush_due(self.settings.clip.flush_after_s, node_ns=self.health.now_ns()):
            with self.sync_lock:  # no next frame came to judge a held one: it is taken
                self._add_all(self.stamps.release(), checked=True)
            self._flush()

    def _flush(self) -> None:
        with self.lock:
            clip = self.pipeline.flush()
        if clip is not None:
            self.health.counts["clips_flushed"] += 1
            self.worker.submit(clip)

    def reset(self, reason: str = "manual") -> None:
        # A clip already waiting for inference is kept, and the frames buffered after it are cut into a clip
        # of their own (PerceptionPipeline.reset): their frames arrived before the reset and are still
        # described, their depth and tracks sent; their poses, of the chain the reset ends, are not
        # (PerceptionPipeline.odometry_current). The reset applies from the next frame on. Under sync_lock, as
        # a frame's clip is cut and submitted: a report never sees those frames neither buffered nor queued.
        with self.sync_lock:
            with self.lock:
                ended = self.pipeline.reset(reason)
            self.health.counts[f"reset_{reason}"] += 1
            if ended is not None:
                self.worker.submit(ended)

    def pending_frames(self) -> int:
        """Waiting for their camera_info, buffered for a clip, or waiting for or in inference."""
        with self.sync_lock:
            return (len(self.sync.waiting) + self.stamps.pending + self.pipeline.pending_frames
                    + self.worker.pending_frames())

    def report(self, state: NodeState) -> tuple[int, str, dict[str, str]]:
        """health.report(state) with the pending frames and the pipeline's counters filled in, read with
        the counters under the worker's lock (the order push_image takes the two locks in): a clip
        settling meanwhile (InferenceWorker.settle) is seen pending or counted, never half of each."""
        with self.sync_lock, self.worker.cv:
            return self.health.report(dataclasses.replace(state, frames_pending=self.pending_frames(),
                                                          pipeline_status=self.pipeline.status(),
                                                          image_topic=self.image_topic))

    def _add_all(self, paired: list[Paired], checked: bool = False) -> None:
        """Each frame past the stamp hold (StampHold; checked: they have been), then taken in (_add)."""
        for p in paired:
            if checked:
                self._add(p)
                continue
            taken, outlier = self.stamps.push(p.item[0], p)
            if outlier is not None:
                self.health.counts["frames_rejected"] += 1
                self.health.warn("stamp_outlier", f"dropping a frame stamped {outlier.item[0]} ns: ahead of the "
                                 f"frames before it and of the one after it ({p.item[0]} ns), a wrong stamp")
            for q in taken:
                if q is self.stamps.recording_start:  # a short bag looped: the buffer and odometry restart there
                    self._new_recording()
                self._add(q)

    def _new_recording(self) -> None:
        """StampHold found a step back of under OUT_OF_ORDER_NS to be a new recording (frames going on from it):
        the buffer restarts at its first frame (time_backwards), and the stamp gaps' timeline with it."""
        with self.lock:
            self.pipeline.new_recording()
        self.health.gaps.restart()

    def _add(self, paired: Paired) -> None:
        stamp_ns, frame_id, decode, encoding = paired.item
        budget = self.settings.inputs.work_image_max_pixels
        try:
            rgb, camera_hw = decode(budget)
        except ImageDecodeError as exc:
            self.health.counts["frames_rejected"] += 1
            self.health.warn(exc.kind, f"dropping frame: {exc}")
            return
        if encoding == "16UC1" and not self.health.errors["depth_encoding_on_image"]:
            # Taken as grey (a thermal camera may send it), but it is what depth cameras publish: a depth topic
            # given as the image read as a dark camera ("too dark or flat to see") and sent teams after the lens.
            self.health.warn("depth_encoding_on_image", "image encoding 16UC1 is what depth cameras publish (a grey "
                             "camera sends mono16): taken as grey; if `image` is a depth topic, remap it to the colour "
                             "image's")
        # Divided first (raw images here; a JPEG may come divided from its decoder), so that the
        # undistortion and everything after it work on the fewer pixels.
        work = WorkImage.for_size(camera_hw, budget)
        if rgb.shape[:2] != work.work_hw:
            rgb = work.image(rgb)
        rgb, k = self._camera(rgb, paired, camera_hw)
        frame_id, problem = image_frame_id(frame_id, self.settings.pose.camera_frame)
        if problem and problem[0] == FRAME_ID_SLASH:  # every frame of a ROS 1 recording: no lasting WARN
            self.health.counts[FRAMES_FRAME_ID_SLASH] += 1
            if self.health.counts[FRAMES_FRAME_ID_SLASH] == 1:
                self.health.log_warning(f"[{FRAME_ID_SLASH}] {problem[1]} (counted as {FRAMES_FRAME_ID_SLASH})")
        elif problem:
            self.health.warn(*problem)
        mount = self.camera_mount(frame_id, stamp_ns)
        with self.lock:
            if mount is not None:
                self.pipeline.set_camera_mount(mount)
                self._advise_rotation(mount)
            clip, reason = self.pipeline.add_frame(rgb, stamp_ns, frame_id, k, encoding, camera_hw=camera_hw,
                                                   lens=self.camera.lens)
            self.worker.touch(self.health.now_ns())
        if reason == OUT_OF_ORDER:
            self.health.warn(reason, "dropping a frame not newer than the one before it (a late or repeated stamp)")
        elif reason:
            self.health.counts[f"reset_{reason}"] += 1
            self.health.warn(f"reset_{reason}", f"clip buffer reset ({reason}) at frame stamp {stamp_ns} ns")
        if clip is not None:
            self.worker.submit(clip)

    def _camera(self, rgb: np.ndarray, paired: Paired, camera_hw: tuple[int, int]
                ) -> tuple[np.ndarray, np.ndarray | None]:
        """The image and K the pipeline gets; a rejected camera_info is counted, then ignored."""
        rgb, k, problem = self.camera(rgb, paired.k, camera_hw)
        self.camera_k_in_use = k is not None
        default = f"a {self.settings.clip.default_hfov_deg} deg horizontal field of view"
        if problem:
            self.health.warn(problem.split(":")[0], f"{problem}; using the default intrinsics")
        elif paired.k is None and self.sync.latest_stamp is not None:  # received, with K all zero
            self.health.warn("camera_info_uncalibrated", "camera_info has K all zero (an uncalibrated camera, "
                             f"REP-104): assuming {default}; calibrate the camera for metric depth and pose")
        elif paired.k is None:
            self.health.warn("no_camera_info", f"no camera_info received yet on {self.camera_info_topic}: assuming "
                             f"{default}")
        elif not paired.exact:
            self.health.counts["frames_without_own_camera_info"] += 1
        return rgb, k
