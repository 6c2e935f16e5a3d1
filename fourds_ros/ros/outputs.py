"""A clip's results as ROS messages, without rclpy: which message goes to which output, built once
per frame from contiguous numpy buffers (convert.py).

    outputs = OutputMessages(settings)
    for key, msg in outputs.build(result, trails, wanted=lambda key: subscribers[key] > 0):
        publishers[key].publish(msg)      # key "tf" carries a list of TransformStamped

Costly outputs (depth/points, tracks/markers, the path) are built or sent only while `wanted(key)`;
the path is sent once per clip, not per frame, and only while someone subscribes, because a long
Path (up to path_max_length poses) is costly to serialise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

import numpy as np
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry, Path as PathMsg
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from visualization_msgs.msg import MarkerArray

from ..perception.camera import Lens
from ..perception.pipeline import StageClock
from ..perception.preprocess import backproject
from ..perception.settings import PerceptionSettings
from . import convert

# Output key -> (topic, type). Topics are relative, so a namespace applies; depth/image and
# depth/camera_info follow image_transport's naming (a camera's image and camera_info side by side).
OUTPUTS = {
    "depth": ("depth/image", Image), "depth_info": ("depth/camera_info", CameraInfo),
    "depth_points": ("depth/points", PointCloud2), "tracks": ("tracks", PointCloud2),
    "markers": ("tracks/markers", MarkerArray), "odometry": ("odometry", Odometry), "pose": ("pose", PoseStamped),
    "path": ("path", PathMsg),
}

# What a clip's results are sent as, in groups that may go out separately (depth first).
PARTS = ("depth", "tracks", "pose")


def trails_xyz(trails: dict[int, np.ndarray], tracks, k: np.ndarray) -> dict[int, np.ndarray]:
    """Trails (input pixels) of live tracks at each track's current depth; none for a track whose depth is
    unknown (not visible, out of min_depth..max_depth, a blind frame). Why: such a trail was drawn at a made-up
    1 m, real-looking geometry in rviz where the tracks cloud and the depth image said no depth."""
    depth_by_id = {int(i): float(z) for i, z in zip(tracks.ids, tracks.xyz[:, 2]) if np.isfinite(z)}
    return {tid: backproject(uv[:, 0], uv[:, 1], np.full(len(uv), depth_by_id[tid]), k)
            for tid, uv in trails.items() if tid in depth_by_id}


class OutputMessages:
    def __init__(self, settings: PerceptionSettings):
        self.depth = settings.depth
        self.pose = settings.pose
        self.path = PathMsg()
        self.path.header.frame_id = settings.pose.odom_frame
        self.path_chain: int | None = None  # ClipResult.odometry_chain of the poses on the path

    def publish(self, result, trails: dict[int, np.ndarray], publishers: dict, tf_publish=None,
                parts: tuple[str, ...] = PARTS) -> None:
        """Build and send: publishers {key: publisher with publish() and get_subscription_count()};
        tf_publish(list[TransformStamped]) or None (no TF library); parts: which of PARTS."""
        wanted = lambda key: publishers[key].get_subscription_count() > 0  # noqa: E731
        for key, msg in self.build(result, trails, wanted, parts):
            if key != "tf":
                publishers[key].publish(msg)
            elif tf_publish is not None:
                tf_publish(msg)

    def build(self, result, trails: dict[int, np.ndarray], wanted: Callable[[str], bool],
              parts: tuple[str, ...] = PARTS) -> Iterator[tuple[str, object]]:
        """(output key, message) pairs for a ClipResult, in publishing order; parts: which of
        PARTS (the node sends a clip's depth as soon as it is ready, the rest after)."""
        unknown = set(parts) - set(PARTS)
        if unknown:
            raise ValueError(f"unknown output parts {sorted(unknown)}; known: {PARTS}")
        with_pose = "pose" in parts and any(r.pose is not None for r in result.frames)
        # Another chain's poses start a new path. Not on odometry_restarted alone: a chain's first clip
        # may never be sent (its inference or sending failed), and the path then joined two chains.
        if with_pose and result.odometry_chain != self.path_chain:
            self.path.poses, self.path_chain = [], result.odometry_chain
        # Markers for the clip's newest tracked frame only: a clip's frames go out together, and each
        # marker set clears the one before, so a viewer shows the last either way, while building one
        # per frame cost 18 ms a clip (64 tracks, 7 frames; session 42), a fifth of the pipeline's time.
        marked = max((i for i, r in enumerate(result.frames) if r.tracks is not None), default=None)
        for i, r in enumerate(result.frames):
            if r.depth is not None and "depth" in parts:
                yield from self._depth(r, wanted)
            if r.tracks is not None and "tracks" in parts:
                yield "tracks", convert.tracks_cloud(self._on_camera_image(r.tracks, result.lens), r.stamp_ns,
                                                     r.frame_id)
                if i == marked and wanted("markers"):
                    yield "markers", convert.track_markers(trails_xyz(trails, r.tracks, r.k), r.stamp_ns, r.frame_id)
            if r.pose is not None and "pose" in parts:
                yield from self._pose(r)
        if with_pose:
            del self.path.poses[: max(0, len(self.path.poses) - self.pose.path_max_length)]
            if wanted("path"):  # the poses are kept either way, so a later subscriber gets the whole path
                yield "path", self.path

    @staticmethod
    def _on_camera_image(tracks, lens: Lens | None):
        """The tracks with u, v in the camera's own image, through `lens`, the one the clip's frames were
        undistorted with (ClipResult.lens; a newer frame's may differ). Why: the pipeline works on the undistorted
        view, and a client overlays the tracks on the image the camera publishes (and its queries
        are pixels of that image: FrameIntake.add_track_queries). xyz, the markers and the depth stay
        in the undistorted view, which depth/camera_info describes."""
        if lens is None or not len(tracks):
            return tracks
        uv = lens.to_raw(np.stack([tracks.u, tracks.v], axis=1))
        return dataclasses.replace(tracks, u=uv[:, 0].astype(np.float32), v=uv[:, 1].astype(np.float32))

    def _depth(self, r, wanted) -> Iterator[tuple[str, object]]:
        h, w = r.depth.shape
        yield "depth", convert.depth_image(r.depth, r.stamp_ns, r.frame_id)
        yield "depth_info", convert.camera_info(r.depth_k, h, w, r.stamp_ns, r.frame_id)
        if wanted("depth_points"):  # only computed when wanted
            rgb = r.depth_rgb if self.depth.points_rgb else None
            yield "depth_points", convert.depth_points(r.depth, r.depth_k, rgb, self.depth.points_step,
                                                       r.stamp_ns, r.frame_id)

    def _pose(self, r) -> Iterator[tuple[str, object]]:
        odom_frame, base_frame = self.pose.odom_frame, self.pose.base_frame
        yield "odometry", convert.odometry(r.pose, r.stamp_ns, odom_frame, base_frame)
        pose = convert.pose_stamped(r.pose.odom_from_base, r.stamp_ns, odom_frame)
        yield "pose", pose
        self.path.header.stamp = pose.header.stamp
        self.path.poses.append(pose)
        if self.pose.publish_tf:
            yield "tf", [convert.transform_stamped(r.pose.odom_from_base, r.stamp_ns, odom_frame, base_frame)]


class DepthFirst:
    """pipeline.process's on_depth for a node: sends a clip's depth ahead of its tracks and pose;
    `rest` is then the parts still to send (send_rest). On failure the reason goes to warn(category,
    text) and the depth is left to go out with the rest (frames sent before the failure then get
    their depth twice: a duplicate rather than a loss). `seconds`: the time spent sending."""

    def __init__(self, outputs: OutputMessages, publishers: dict, warn: Callable[[str, str], None]):
        self.outputs, self.publishers, self.warn = outputs, publishers, warn
        self.rest = PARTS
        self.clock = StageClock()  # "send": building and publishing this clip's messages, depth and rest

    @property
    def seconds(self) -> float:
        return self.clock.seconds.get("send", 0.0)

    def __call__(self, partial) -> None:
        with self.clock("send"):
            try:
                self.outputs.publish(partial, {}, self.publishers, parts=("depth",))
                self.rest = tuple(p for p in PARTS if p != "depth")
            except Exception as exc:
                self.warn("publish", f"publishing depth failed: {type(exc).__name__}: {exc}")

    def send_rest(self, result, trails: dict[int, np.ndarray], tf_publish=None, pose: bool = True) -> None:
        """The clip's parts not sent yet (all of them when its depth could not go first), its pose (odometry,
        pose, TF, path) only with `pose` (PerceptionPipeline.odometry_current); raises as
        OutputMessages.publish does."""
        with self.clock("send"):
            self.outputs.publish(result, trails, self.publishers, tf_publish,
                                 self.rest if pose else tuple(p for p in self.rest if p != "pose"))

    def stages(self, result) -> dict[str, float]:
        """The clip's stage seconds (ClipResult.stage_s) with its sending ("send")."""
        return {**result.stage_s, **self.clock.seconds}
