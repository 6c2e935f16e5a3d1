"""Track pixels on a lens camera: the pipeline works on the undistorted view, while the tracks'
published u, v and the track queries a client sends are pixels of the camera's own image.

Reproduced (session 54 review): with TUM's plumb_bob lens a query at raw (100, 80) was tracked at
the point drawn at (94.5, 72.9), and the published u, v read off the raw image by as much; on a
wide lens (k1 = -0.28, 1920x1080) by about 29 px.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fourds_ros.engine import create_engine
from fourds_ros.perception.camera import Calibration, CameraIntake
from fourds_ros.perception.pipeline import PerceptionPipeline
from fourds_ros.perception.settings import PerceptionSettings

TUM_K = np.array([[517.3, 0.0, 318.6], [0.0, 516.5, 255.3], [0.0, 0.0, 1.0]])
LENSES = {
    "plumb_bob_tum": ("plumb_bob", (0.2624, -0.9531, -0.0054, 0.0026, 1.1633)),
    "plumb_bob_wide": ("plumb_bob", (-0.35, 0.12, 0.0, 0.0, 0.0)),
    "rational_polynomial": ("rational_polynomial", (-0.3, 0.1, 0.001, 0.002, 0.0, 0.05, 0.01, 0.0)),
    "equidistant": ("equidistant", (0.1, -0.05, 0.01, 0.0)),
}


def dot_centre(gray: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(gray > 0)
    w = gray[ys, xs].astype(float)
    return np.array([np.sum(xs * w), np.sum(ys * w)]) / w.sum()


@pytest.mark.parametrize("name", sorted(LENSES))
@pytest.mark.parametrize("raw", [(200, 150), (600, 450), (320, 240)])
def test_the_lens_maps_a_camera_pixel_to_where_the_undistorted_view_shows_it(name, raw):
    model, d = LENSES[name]
    image = np.zeros((480, 640, 3), np.uint8)
    cv2.circle(image, raw, 3, (255, 255, 255), -1)
    camera = CameraIntake()
    undistorted, k, problem = camera(image, Calibration(TUM_K, d, model, 640, 480))
    assert problem == "" and camera.lens is not None
    shown = dot_centre(undistorted[..., 0])
    mapped = camera.lens.to_undistorted(np.array([raw], float))[0]
    assert np.linalg.norm(mapped - shown) < 0.1, (mapped, shown)
    assert np.linalg.norm(camera.lens.to_raw(mapped[None])[0] - raw) < 1e-4
    assert np.allclose(camera.lens.pinhole_k, k)


def test_the_lens_of_a_working_image_maps_the_cameras_pixels():
    """A frame undistorted at half its size (work_image.py): the lens still maps the camera's pixels."""
    model, d = LENSES["plumb_bob_wide"]
    half = np.zeros((240, 320, 3), np.uint8)
    cv2.circle(half, (100, 75), 2, (255, 255, 255), -1)  # raw camera pixel (200.5, 150.5)
    camera = CameraIntake()
    undistorted, _, problem = camera(half, Calibration(TUM_K, d, model, 640, 480), camera_hw=(480, 640))
    assert problem == ""
    shown_on_camera = (dot_centre(undistorted[..., 0]) + 0.5) * 2 - 0.5
    mapped = camera.lens.to_undistorted(np.array([[200.5, 150.5]]))[0]
    assert np.linalg.norm(mapped - shown_on_camera) < 0.2, (mapped, shown_on_camera)


def test_no_lens_without_distortion_and_nan_stays_nan():
    camera = CameraIntake()
    image = np.zeros((480, 640, 3), np.uint8)
    camera(image, Calibration(TUM_K, (), "", 640, 480))
    assert camera.lens is None
    model, d = LENSES["plumb_bob_tum"]
    camera(image, Calibration(TUM_K, d, model, 640, 480))
    out = camera.lens.to_raw(np.array([[np.nan, np.nan], [320.0, 240.0]]))
    assert np.isnan(out[0]).all() and np.isfinite(out[1]).all()
    camera(image, None)  # a frame without camera_info: no lens is left over from the one before
    assert camera.lens is None


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    return create_engine(tiny_model_dir, backend="torch", num_queries=8)


def test_published_track_pixels_are_the_camera_image_pixels_of_their_points(engine):
    """The tracks cloud's u, v are where the ray each track follows in the undistorted view (the
    pipeline's u, v with the frame's pinhole K) meets the camera's own image, through its lens:
    what an overlay on the camera's image needs. The markers and xyz stay in the undistorted view."""
    from fourds_ros.ros.convert import read_cloud
    from fourds_ros.ros.outputs import OutputMessages

    model, d = LENSES["plumb_bob_wide"]
    calibration = Calibration(TUM_K, d, model, 640, 480)
    camera = CameraIntake()
    settings = PerceptionSettings.from_params(max_tracks=8)
    pipeline = PerceptionPipeline(engine, settings)
    rng = np.random.default_rng(0)
    clip = None
    for i in range(pipeline.clip_length):
        rgb, k, problem = camera(rng.integers(0, 255, (480, 640, 3), np.uint8), calibration)
        assert problem == ""
        clip, _ = pipeline.add_frame(rgb, i * 33_000_000, "cam", k, lens=camera.lens)
    result = pipeline.process(clip)
    camera(rng.integers(0, 255, (480, 640, 3), np.uint8), None)  # a newer frame without the lens: not the clip's
    clouds = [msg for key, msg in OutputMessages(settings).build(result, {}, lambda key: True, ("tracks",))
              if key == "tracks"]
    assert len(clouds) == len(result.frames)
    for cloud, frame in zip(clouds, result.frames):
        points = read_cloud(cloud)
        published = np.stack([points["u"], points["v"]], 1).astype(float)
        tracked = np.stack([frame.tracks.u, frame.tracks.v, np.ones(len(frame.tracks))], 1).astype(float)
        rays = tracked @ np.linalg.inv(frame.k).T
        on_camera = cv2.projectPoints(rays, np.zeros(3), np.zeros(3), TUM_K, np.array(d))[0].reshape(-1, 2)
        assert np.abs(on_camera - published).max() < 0.05
        assert np.abs(tracked[:, :2] - published).max() > 1.0  # on this lens the two views differ


def test_a_clip_undistorted_with_no_lens_is_published_as_tracked_whatever_lens_came_since(engine):
    """camera_info with a lens arriving after a clip's frames (or another camera's frames): the clip's
    tracks were mapped through the newest frame's lens, 20 px off on the wide lens (diff review)."""
    from fourds_ros.ros.convert import read_cloud
    from fourds_ros.ros.outputs import OutputMessages

    settings = PerceptionSettings.from_params(max_tracks=8)
    pipeline = PerceptionPipeline(engine, settings)
    rng = np.random.default_rng(1)
    for i in range(pipeline.clip_length):
        clip, _ = pipeline.add_frame(rng.integers(0, 255, (480, 640, 3), np.uint8), i * 33_000_000, "cam", None)
    result = pipeline.process(clip)
    camera = CameraIntake()
    model, d = LENSES["plumb_bob_wide"]
    camera(rng.integers(0, 255, (480, 640, 3), np.uint8), Calibration(TUM_K, d, model, 640, 480))
    assert camera.lens is not None and result.lens is None
    clouds = [msg for key, msg in OutputMessages(settings).build(result, {}, lambda key: True, ("tracks",))
              if key == "tracks"]
    assert len(clouds) == len(result.frames)
    for msg in clouds:
        frame = next(r for r in result.frames if r.stamp_ns == msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec)
        points = read_cloud(msg)
        np.testing.assert_array_equal(points["u"], frame.tracks.u)
        np.testing.assert_array_equal(points["v"], frame.tracks.v)


def intake_after_one_lens_frame(engine, settings: PerceptionSettings):
    """The node's FrameIntake (its worker not started: no clip runs) after one frame of a camera whose
    camera_info declares the wide lens. -> (intake, its pipeline, the frame)."""
    from fourds_ros.perception.health import NodeHealth
    from fourds_ros.perception.intake import FrameIntake
    from fourds_ros.perception.worker import InferenceWorker

    pipeline = PerceptionPipeline(engine, settings)
    health = NodeHealth(lambda line: None)
    intake = FrameIntake(pipeline, InferenceWorker(lambda clip: None, lambda exc: None, health.counts, 1), health,
                         settings)
    model, d = LENSES["plumb_bob_wide"]
    intake.push_info(0, Calibration(TUM_K, d, model, 640, 480))
    image = np.zeros((480, 640, 3), np.uint8)
    intake.push_image(0, "cam", lambda budget: (image, image.shape[:2]), "rgb8")
    return intake, pipeline, image


def test_a_queried_camera_pixel_is_tracked_at_its_point_in_the_undistorted_view(engine):
    """FrameIntake.add_track_queries brings a pixel of the camera's image into the undistorted view."""
    intake, pipeline, _ = intake_after_one_lens_frame(
        engine, PerceptionSettings.from_params(max_tracks=8, track_query_mode="topic"))
    query = np.array([[100.0, 80.0]])
    intake.add_track_queries(query)
    queued = np.array(pipeline.tracks.pending_topic_queries)[:, :2]  # working-image pixels (here the camera's size)
    expected = intake.camera.lens.to_undistorted(query)
    assert np.linalg.norm(queued - expected) < 1e-6
    assert np.linalg.norm(expected - query) > 5  # this lens moves that pixel


@pytest.mark.parametrize("name", ["plumb_bob_tum", "equidistant"])
def test_a_registered_depth_is_undistorted_as_the_colour_frames_are(name):
    """A depth registered to the colour image (metric_scale_source: reference_depth) comes into the
    undistorted view with the colour frames' lens: a depth edge lands where the lens maps its
    pixels, nearest (no depth between the two surfaces)."""
    model, d = LENSES[name]
    camera = CameraIntake()
    camera(np.zeros((480, 640, 3), np.uint8), Calibration(TUM_K, d, model, 640, 480))
    depth = np.full((480, 640), 1.0, np.float32)
    depth[:, 200:] = 2.0  # an edge at raw column 199.5
    out = camera.undistort_depth(depth)
    assert set(np.unique(out[np.isfinite(out)])) <= {1.0, 2.0}
    for row in (60.0, 240.0, 420.0):
        edge = camera.lens.to_undistorted(np.array([[199.5, row]]))[0]
        v = int(round(edge[1]))
        far = np.flatnonzero(out[v] == 2.0)
        assert abs(far.min() - 0.5 - edge[0]) < 1.0, (row, far.min(), edge)
    assert camera.undistort_depth(depth[:240]) is not None  # another size: passed on for the pipeline to refuse
    camera(np.zeros((480, 640, 3), np.uint8), Calibration(TUM_K, (), "", 640, 480))
    assert camera.undistort_depth(depth) is depth  # no lens: as it came


def test_the_reference_depth_reaches_the_pipeline_undistorted(engine):
    settings = PerceptionSettings.from_params(max_tracks=8, metric_scale_source="reference_depth")
    intake, pipeline, image = intake_after_one_lens_frame(engine, settings)
    model, d = LENSES["plumb_bob_wide"]
    depth = np.full((480, 640), 1.0, np.float32)
    depth[:, 200:] = 2.0
    intake.push_reference_depth(0, lambda: depth)
    pipeline_as_given = PerceptionPipeline(engine, settings)
    pipeline_as_given.add_frame(intake.camera(image, Calibration(TUM_K, d, model, 640, 480))[0], 0, "cam", None)
    pipeline_as_given.add_reference_depth(0, depth)
    received, as_given = pipeline.reference_depth._depth[0], pipeline_as_given.reference_depth._depth[0]
    pipeline_as_given.reference_depth._depth.clear()
    pipeline_as_given.add_reference_depth(0, intake.camera.undistort_depth(depth))
    np.testing.assert_array_equal(received, pipeline_as_given.reference_depth._depth[0])
    assert not np.array_equal(received, as_given, equal_nan=True)  # this lens moves the edge


def test_queries_before_the_first_frame_are_brought_in_with_its_lens(engine):
    """A client may send queries before the camera's first image: they wait in the pipeline and were
    placed unmapped, while the same pixel sent after it went through the lens."""
    from fourds_ros.perception.health import NodeHealth
    from fourds_ros.perception.intake import FrameIntake
    from fourds_ros.perception.worker import InferenceWorker

    settings = PerceptionSettings.from_params(max_tracks=8, track_query_mode="topic")
    late = intake_after_one_lens_frame(engine, settings)[0]
    pipeline = PerceptionPipeline(engine, settings)
    health = NodeHealth(lambda line: None)
    early = FrameIntake(pipeline, InferenceWorker(lambda clip: None, lambda exc: None, health.counts, 1), health,
                        settings)
    query = np.array([[100.0, 80.0]])
    early.add_track_queries(query)  # no frame yet
    model, d = LENSES["plumb_bob_wide"]
    early.push_info(0, Calibration(TUM_K, d, model, 640, 480))
    image = np.zeros((480, 640, 3), np.uint8)
    early.push_image(0, "cam", lambda budget: (image, image.shape[:2]), "rgb8")
    late.add_track_queries(query)
    np.testing.assert_allclose(pipeline.tracks.pending_topic_queries, late.pipeline.tracks.pending_topic_queries)
    assert np.linalg.norm(np.array(pipeline.tracks.pending_topic_queries)[:, :2] - query) > 5


def query_intake(engine, settings: PerceptionSettings, framed: bool):
    """A FrameIntake after one wide-lens frame (framed), or before any frame."""
    from fourds_ros.perception.health import NodeHealth
    from fourds_ros.perception.intake import FrameIntake
    from fourds_ros.perception.worker import InferenceWorker

    if framed:
        return intake_after_one_lens_frame(engine, settings)[0]
    health = NodeHealth(lambda line: None)
    return FrameIntake(PerceptionPipeline(engine, settings),
                       InferenceWorker(lambda clip: None, lambda exc: None, health.counts, 1), health, settings)


def queued(intake) -> tuple[np.ndarray, dict]:
    """The queries pending in the intake's pipeline ((N, 3) u, v, stamp; for one not framed yet those the first
    frame places) and the counts."""
    pipeline = intake.pipeline
    early = np.concatenate([pipeline._early_queries, pipeline._early_stamps[:, None]], axis=1)
    return np.concatenate([np.reshape(pipeline.tracks.pending_topic_queries, (-1, 3)), early]), \
        pipeline.tracks.query_counts()


@pytest.mark.parametrize("framed", [True, False])
def test_a_large_query_cloud_is_cut_to_the_points_that_can_be_seeded_before_the_work_per_point(
        engine, monkeypatch, framed):
    """Only the newest num_queries pending track queries are ever seeded (the rest: over_capacity), yet each
    point of a cloud was undistorted and queued as a Python tuple first: 2M points (16 MB) stalled the node's
    executor 2.5 s and grew it by 175 MB. The queue sees no more than num_queries points of a cloud now, and
    keeps and counts what it kept and counted when it saw all of them (today's path: the undistortion, then
    pipeline.add_track_queries, for the whole cloud), NaN and off-image points included."""
    from fourds_ros.perception.camera import Lens
    from fourds_ros.perception.tracks import TrackManager

    settings = PerceptionSettings.from_params(max_tracks=8, track_query_mode="topic")
    rng = np.random.default_rng(0)
    clouds = [rng.uniform(-100, 700, (n, 2)) for n in (5, 3, 50, 6)]  # under, then past num_queries (8)
    clouds[2][[40, 45]] = np.nan
    intake, reference = query_intake(engine, settings, framed), query_intake(engine, settings, framed)
    for stamp, cloud in enumerate(clouds, 1):
        intake.add_track_queries(cloud, stamp)
        lens = reference.camera.lens
        reference.pipeline.add_track_queries(cloud if lens is None else lens.to_undistorted(cloud), stamp)
        (kept, counts), (kept_before, counts_before) = queued(intake), queued(reference)
        np.testing.assert_array_equal(kept, kept_before)  # bit for bit, NaN where NaN
        assert counts == counts_before and len(kept) == min(8, sum(len(c) for c in clouds[:stamp])), stamp
    assert counts["track_queries_refused_over_capacity"] == 5 + 3 + 50 + 6 - 8
    seen = []

    def recording(original):
        def recorded(self, uv, *args, **kwargs):
            seen.append(len(uv))
            return original(self, uv, *args, **kwargs)
        return recorded

    for cls, name in ((Lens, "to_undistorted"), (PerceptionPipeline, "add_track_queries"),
                      (TrackManager, "add_topic_queries")):
        monkeypatch.setattr(cls, name, recording(getattr(cls, name)))
    intake.add_track_queries(rng.uniform(0, 600, (100_000, 2)), 9)
    assert len(seen) == (3 if framed else 1) and max(seen) <= intake.pipeline.tracks.num_queries, seen
    kept, counts = queued(intake)
    assert len(kept) == 8 and counts["track_queries_refused_over_capacity"] == 64 - 8 + 100_000


def test_a_query_cloud_refused_whole_counts_none_of_its_points(engine):
    """With image_rotation a cloud before the first image is refused (ValueError, warned by the node): none of
    its points is counted over_capacity, as before the cloud was cut to num_queries."""
    settings = PerceptionSettings.from_params(max_tracks=8, track_query_mode="topic", image_rotation=90)
    intake = query_intake(engine, settings, framed=False)
    with pytest.raises(ValueError, match="image_rotation"):
        intake.add_track_queries(np.zeros((50, 2)))
    kept, counts = queued(intake)
    assert len(kept) == 0 and counts["track_queries_refused_over_capacity"] == 0


def test_path_and_points_follow_their_parameters():
    """path_max_length caps the path; depth_points_rgb false leaves rgb out of the points (no test set either)."""
    from types import SimpleNamespace as NS

    from fourds_ros.ros.outputs import OutputMessages

    def frame(i, h=6, w=8):
        est = NS(odom_from_base=np.eye(4), covariance=np.eye(6), twist=np.zeros(6), twist_covariance=np.eye(6))
        k = np.array([[10.0, 0, 3.5], [0, 10, 2.5], [0, 0, 1]])
        return NS(depth=np.full((h, w), 2.0, np.float32), depth_k=k, depth_rgb=np.zeros((h, w, 3), np.uint8),
                  tracks=None, pose=est, stamp_ns=i * 1000, frame_id="cam", k=k)

    out = OutputMessages(PerceptionSettings.from_params(path_max_length=3, depth_points_rgb=False))
    for c in range(3):
        msgs = dict(out.build(NS(frames=[frame(2 * c), frame(2 * c + 1)], odometry_chain=0, lens=None), {},
                              lambda key: True))
    assert len(msgs["path"].poses) == 3
    assert [f.name for f in msgs["depth_points"].fields] == ["x", "y", "z"]
