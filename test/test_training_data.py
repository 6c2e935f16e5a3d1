"""training.data: synthetic generator consistency, geometric tracks, RGB-D / TUM / video readers."""

from __future__ import annotations

import av
import cv2
import numpy as np
import torch
import pytest
import transforms3d

from training.data import (
    DatasetFormatError, RGBDClips, SceneConfig, SceneGenerator, VideoClips, geometric_tracks,
    read_7scenes, read_hololens, read_sequence, read_tum,
)

from .conftest import SHARED_DATA, require

CFG = SceneConfig(num_frames=6, image_size=(48, 64), num_tracks=96)


@pytest.fixture(scope="module")
def clip():
    return SceneGenerator(CFG).generate(3)


def test_generator_is_deterministic_and_seed_dependent(clip):
    again = SceneGenerator(CFG).generate(3)
    other = SceneGenerator(CFG).generate(4)
    for name in ("rgb", "depth", "camera_to_world", "tracks_xy", "tracks_visible"):
        np.testing.assert_array_equal(getattr(clip, name), getattr(again, name))
    assert not np.array_equal(clip.rgb, other.rgb)
    assert clip.rgb.shape == (6, 48, 64, 3) and clip.depth.shape == (6, 48, 64)
    assert (clip.depth > 0).all()  # closed room: every ray hits
    # The camera and at least one object move.
    assert np.linalg.norm(clip.camera_to_world[-1, :3, 3] - clip.camera_to_world[0, :3, 3]) > 0.1
    assert len(np.unique(clip.object_ids)) >= 3


def test_generator_tracks_reproject_with_zero_error(clip):
    t = clip.depth.shape[0]
    world_to_cam = np.linalg.inv(clip.camera_to_world)
    for i in range(t):
        cam = clip.tracks_world[:, i] @ world_to_cam[i, :3, :3].T + world_to_cam[i, :3, 3]
        z = cam[:, 2]
        uv = (cam @ clip.intrinsics.T)[:, :2] / z[:, None]  # pinhole projection
        vis = clip.tracks_visible[:, i]
        np.testing.assert_allclose(uv[vis], clip.tracks_xy[vis, i], atol=1e-3)
        # Visible points lie on the rendered surface: depth at the nearest pixel agrees.
        px, py = np.round(uv[vis]).astype(int).T
        rel = np.abs(clip.depth[i, py, px] - z[vis]) / z[vis]
        assert np.median(rel) < 0.01 and np.mean(rel < 0.05) > 0.9
    q = clip.query_points
    qt = q[:, 0].astype(int)
    assert clip.tracks_visible[np.arange(len(q)), qt].all()
    np.testing.assert_allclose(clip.tracks_xy[np.arange(len(q)), qt], q[:, [2, 1]], atol=1e-4)
    assert 0.2 < clip.tracks_visible.mean() < 1.0 or clip.tracks_visible.all()


def test_geometric_tracks_match_generator_on_static_points(clip):
    static = clip.tracks_static
    assert static.sum() >= 10
    xy, visible, valid, known = geometric_tracks(clip.depth, clip.intrinsics, clip.camera_to_world,
                                                 clip.query_points[static])
    assert known.all()  # a rendered scene's depth has no holes
    assert valid.all()
    both = visible & clip.tracks_visible[static]
    assert both.sum() > 0.5 * clip.tracks_visible[static].sum()
    # Depth, intrinsics and poses agree: the geometric tracks land where the generator put them.
    np.testing.assert_allclose(xy[both], clip.tracks_xy[static][both], atol=1e-2)
    agree = (visible == clip.tracks_visible[static]).mean()
    assert agree > 0.9


def test_geometric_tracks_reject_bad_input(clip):
    with pytest.raises(ValueError, match="query frame"):
        geometric_tracks(clip.depth, clip.intrinsics, clip.camera_to_world, np.array([[99, 0, 0]]))
    depth = clip.depth.copy()
    depth[0] = 0  # invalid depth at the query -> invalid, never visible
    _, visible, valid, _ = geometric_tracks(depth, clip.intrinsics, clip.camera_to_world, np.array([[0, 5, 5]]))
    assert not valid[0] and not visible.any()


def test_real_7scenes_and_hololens_readers():
    seven = read_7scenes(require(SHARED_DATA / "7scenes_redkitchen_f000-299"))
    holo = read_hololens(require(SHARED_DATA / "hololens_dvmvs_000_f00305-00334"))
    assert len(seven) == 300 and len(holo) == 30
    assert seven.depth_camera is not None and holo.depth_camera is None  # 7-Scenes depth is registered on read
    for seq in (seven, holo):
        assert seq.camera_to_world.shape == (len(seq), 4, 4)
        r = seq.camera_to_world[:, :3, :3]
        np.testing.assert_allclose(r @ r.transpose(0, 2, 1), np.broadcast_to(np.eye(3), r.shape), atol=1e-3)
        d = seq.depth(0)
        assert d.dtype == np.float32 and 0.3 < np.median(d[d > 0]) < 6.0  # millimetres -> metres
        assert seq.rgb(0).shape[:2] == d.shape
    assert read_sequence(SHARED_DATA / "hololens_dvmvs_000_f00305-00334").name == holo.name
    sample = RGBDClips(holo, num_frames=4, image_size=(64, 96), num_tracks=32)[0]
    assert sample["video"].shape == (4, 64, 96, 3) and sample["tracks_xy"].shape == (32, 4, 2)
    # Each query is visible in its own frame, at its own pixel.
    qt = sample["query_points"][:, 0].long()
    idx = np.arange(32)
    assert sample["tracks_visible"][idx, qt].all()
    np.testing.assert_allclose(sample["tracks_xy"][idx, qt], sample["query_points"][:, [2, 1]], atol=1e-3)


def test_real_track_labels_over_depth_holes_are_unknown_not_occluded():
    """Where a point is in view over a hole in the depth camera's image, its visibility cannot be
    told: the evaluator leaves such frames out, so training must not label them occluded (13 % of
    the HoloLens walk's visible-or-hole labels were "occluded" there)."""
    from fourds_ros.evaluation.metrics import geometric_tracks as evaluator_tracks

    holo = read_hololens(require(SHARED_DATA / "hololens_dvmvs_000_f00305-00334"))
    clips = RGBDClips(holo, num_frames=8, image_size=(128, 128), num_tracks=64)
    holes = 0
    for sample in (clips[0], clips[1], clips[2]):
        q = sample["query_points"].numpy()
        first_from_t = np.tile(np.eye(4), (8, 1, 1))  # the clip's poses relative to its first frame
        first_from_t[:, :3, :3], first_from_t[:, :3, 3] = sample["pose_rotation"], sample["pose_translation"]
        gt = evaluator_tracks(q[:, [2, 1]], q[:, 0].round().astype(int), list(sample["depth"].numpy()),
                              list(first_from_t), sample["intrinsics"].numpy())
        unknown = torch.from_numpy(gt["unknown"])
        holes += int(unknown.sum())
        assert (sample["tracks_known"][unknown] == 0).all() and (sample["tracks_known"][~unknown] == 1).all()
        assert (sample["tracks_visible"][unknown] == 0).all()
    assert holes > 20


def test_reader_errors_are_clear(tmp_path):
    with pytest.raises(DatasetFormatError, match="not a 7-Scenes"):
        read_7scenes(tmp_path)
    with pytest.raises(DatasetFormatError, match="not a TUM"):
        read_tum(tmp_path)
    with pytest.raises(DatasetFormatError):
        read_sequence(tmp_path)


def test_tum_reader_round_trip(tmp_path, clip):
    """Write a generator clip in TUM format (PNG depth x5000, quaternion poses) and read it back."""
    (tmp_path / "rgb").mkdir()
    (tmp_path / "depth").mkdir()
    rgb_lines, depth_lines, gt_lines = ["# rgb"], ["# depth"], ["# gt"]
    for i in range(len(clip.rgb)):
        t = 1000.0 + i / 30
        cv2.imwrite(str(tmp_path / f"rgb/{i}.png"), clip.rgb[i][..., ::-1])
        cv2.imwrite(str(tmp_path / f"depth/{i}.png"), np.round(clip.depth[i] * 5000).astype(np.uint16))
        rgb_lines.append(f"{t:.6f} rgb/{i}.png")
        depth_lines.append(f"{t + 0.004:.6f} depth/{i}.png")
        w, x, y, z = transforms3d.quaternions.mat2quat(clip.camera_to_world[i, :3, :3])
        tx, ty, tz = clip.camera_to_world[i, :3, 3]
        gt_lines.append(f"{t - 0.003:.6f} {tx} {ty} {tz} {x} {y} {z} {w}")
    for name, lines in (("rgb.txt", rgb_lines), ("depth.txt", depth_lines), ("groundtruth.txt", gt_lines)):
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    # 64x48 frames are no TUM camera's: without their own K they are refused (session 52)
    with pytest.raises(DatasetFormatError, match="needs its own camera-intrinsics.txt"):
        read_sequence(tmp_path, kind=None)
    np.savetxt(tmp_path / "camera-intrinsics.txt", clip.intrinsics)
    seq = read_sequence(tmp_path, kind=None)
    np.testing.assert_allclose(seq.intrinsics, clip.intrinsics)
    assert len(seq) == len(clip.rgb)
    np.testing.assert_allclose(seq.camera_to_world, clip.camera_to_world, atol=1e-6)
    np.testing.assert_allclose(seq.depth(2), clip.depth[2], atol=2e-4)
    np.testing.assert_array_equal(seq.rgb(1), clip.rgb[1])


def test_video_clips_from_mp4_and_image_folder(tmp_path, clip):
    frames = np.concatenate([clip.rgb, clip.rgb[::-1]])  # 12 frames
    with av.open(str(tmp_path / "a.mp4"), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for f in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    (tmp_path / "seq").mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"seq/{i:04d}.png"), f[..., ::-1])
    clips = VideoClips(tmp_path, num_frames=4, image_size=(32, 32), stride=2, seed=1)
    assert len(clips) == 2
    for i in range(4):
        c = clips.clip(i)
        assert c.shape == (4, 32, 32, 3) and c.dtype == np.float32 and 0 <= c.min() and c.max() <= 1
        np.testing.assert_array_equal(c, clips.clip(i))  # deterministic per index
    with pytest.raises(ValueError, match="no video"):
        VideoClips(tmp_path / "seq", num_frames=20, image_size=(32, 32), stride=2)


def test_label_images_are_not_taken_for_video():
    """7-Scenes keeps depth PNGs beside the colour JPEGs, HoloLens has depth/, DAVIS has
    Annotations_480p/: none of those may become pre-training video."""
    from training.data.video import count_frames, find_sources

    from .conftest import SHARED_DATA, require

    seven = require(SHARED_DATA / "7scenes_redkitchen_f000-299")
    holo = require(SHARED_DATA / "hololens_dvmvs_000_f00305-00334")
    davis = require(SHARED_DATA / "davis_horsejump-high_badja")
    assert find_sources(seven) == [seven] and count_frames(seven) == 300
    assert find_sources(holo) == [holo / "images"]
    assert find_sources(davis) == [davis / "JPEGImages_480p"]


def test_a_recording_named_after_its_segment_or_labels_is_still_video(tmp_path):
    """Label words were matched anywhere in a folder's name: Waymo's segment-<id>_with_camera_labels/ of 20
    frames was dropped (and, given alone, counted 0 frames). Now a folder is a label folder by its first
    word, a file by any word of its name."""

    from training.data.video import count_frames, find_sources

    frame = np.zeros((8, 8, 3), np.uint8)
    for folder, name in (("segment-10017090168044687777_with_camera_labels", "0001.jpg"),
                         ("Annotations_480p/clip", "00000.png"), ("masks", "0001.png"), ("drive", "0001.depth.png"),
                         ("drive", "0001.color.png"), ("relabelled_run", "0001.jpg")):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / folder / name), frame)
    segment = tmp_path / "segment-10017090168044687777_with_camera_labels"
    assert find_sources(tmp_path) == [tmp_path / "drive", tmp_path / "relabelled_run", segment]
    assert count_frames(segment) == 1 and count_frames(tmp_path / "drive") == 1


def test_mixed_pretraining_source_alternates_synthetic_and_video():
    from fourds_ros.model import ModelConfig
    from training.data import PretrainClips

    from .conftest import SHARED_DATA, require

    holo = require(SHARED_DATA / "hololens_dvmvs_000_f00305-00334")
    cfg = ModelConfig(size="micro", num_frames=4, image_size=(32, 32))
    data = PretrainClips(cfg, {"source": "mixed", "root": [str(holo)], "synthetic_every": 2},
                         "random", 0.5, seed=0)
    synthetic = PretrainClips(cfg, {"source": "synthetic"}, "random", 0.5, seed=0)
    video = PretrainClips(cfg, {"source": "video", "root": [str(holo)]}, "random", 0.5, seed=0)
    assert torch.equal(data[0]["video"], synthetic[0]["video"])
    assert torch.equal(data[1]["video"], video[0]["video"])  # each kind counts its own items
    assert torch.equal(data[2]["video"], synthetic[1]["video"])
    assert torch.equal(data[3]["video"], video[1]["video"])


def test_mixed_pretraining_draws_every_source_and_every_scene():
    """gpu_session.sh scratch's recipe (mixed, num_scenes 256, every 2nd item synthetic) over 20
    sources: video items came from odd indices wrapped at 256, so 128 clips in all and, with an
    even number of sources, only every second source (the 7-Scenes kitchen never)."""
    from types import SimpleNamespace

    from fourds_ros.model import ModelConfig
    from training.data import PretrainClips

    from .conftest import SHARED_DATA, require

    holo = require(SHARED_DATA / "hololens_dvmvs_000_f00305-00334")
    cfg = ModelConfig(size="micro", num_frames=4, image_size=(32, 32))
    data = PretrainClips(cfg, {"source": "mixed", "root": [str(holo)], "synthetic_every": 2, "num_scenes": 256},
                         "random", 0.5, seed=0)
    clips, scenes = [], []
    blank = np.zeros((4, 32, 32, 3), np.float32)
    data.clips.clip = lambda i: clips.append(i) or blank
    data.generator.generate = lambda seed: scenes.append(seed) or SimpleNamespace(rgb=blank.astype(np.uint8))
    for i in range(2048):
        data[i]
    assert sorted(clips) == list(range(1024))  # sources are clip % len(sources): every one of them
    assert len(set(scenes)) == 256  # the synthetic half cycles through all 256 scenes (rendered once each)


def test_synthetic_scene_as_a_bag_with_true_tracks(tmp_path):
    """training.synthetic_bag: the generator's exact tracks on /gt/tracks, next to depth and pose."""
    from fourds_ros.evaluation.bag import read_bag
    from training.synthetic_bag import main as synthetic_bag

    assert synthetic_bag([str(tmp_path / "bag"), "--frames", "6", "--size", "48x64", "--seed", "3"]) == 0
    bag = read_bag(tmp_path / "bag")
    clip = SceneGenerator(SceneConfig(num_frames=6, image_size=(48, 64))).generate(3)
    assert len(bag.stamps) == 6 and bag.image_hw == (48, 64)
    last = bag.stamps[-1]
    np.testing.assert_array_equal(bag.images[last], clip.rgb[-1])
    np.testing.assert_allclose(bag.gt_pose[last], clip.camera_to_world[-1], atol=1e-6)
    tracks = bag.gt_tracks[last]
    assert len(tracks["ids"]) == len(clip.query_points)  # every query has started by the last frame
    np.testing.assert_allclose(tracks["uv"], clip.tracks_xy[:, -1], atol=1e-3)
    np.testing.assert_array_equal(tracks["visible"], clip.tracks_visible[:, -1])


def _hololens_gray() -> np.ndarray:
    from pathlib import Path

    path = sorted((Path(__file__).resolve().parents[1] / "samples" / "hololens_000" / "images").glob("*"))[0]
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2GRAY)


def test_lk_pseudo_tracks_label_known_motion_and_stop_where_lk_is_unsure():
    """Frames of a real image moved by (1.5 t, -0.8 t) px: every known label is within a fraction
    of a pixel of the truth. A frame of noise at t = 3 ends every label there (forward-backward
    check), and unknown stays unknown afterwards, even where the image comes back."""
    from training.data.pseudo_tracks import lk_pseudo_tracks

    base = _hololens_gray()
    h, w = base.shape

    def moved(t):
        m = np.float32([[1, 0, 1.5 * t], [0, 1, -0.8 * t]])
        return cv2.warpAffine(base, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)

    frames = np.stack([moved(t) for t in range(6)])
    uv, known, found = lk_pseudo_tracks(frames, 48, np.random.default_rng(0))
    assert found == 48 and known[:, 0].all()
    assert known[:, -1].mean() > 0.8  # most points followed to the end
    truth = uv[:, :1] + np.array([1.5, -0.8]) * np.arange(6)[None, :, None]
    error = np.linalg.norm(uv - truth, axis=-1)[known]
    assert np.median(error) < 0.1 and error.max() < 0.5, error.max()
    assert np.isnan(uv[~known]).all()
    frames[3] = np.random.default_rng(1).integers(0, 256, (h, w), dtype=np.uint8)
    _, known, _ = lk_pseudo_tracks(frames, 48, np.random.default_rng(0))
    assert known[:, :3].any(1).all() and not known[:, 3:].any()


def test_pseudo_track_clips_from_real_video_have_the_labelled_clips_keys():
    """PseudoTrackClips on an unlabelled mp4: the keys and shapes of the synthetic labelled clips
    (so the banks concatenate), queries at frame 0 where each known track starts, labels known
    at the query, visible exactly where known, and no depth or pose to learn from."""
    from training.data import SyntheticLabelledClips
    from training.data.pseudo_tracks import PseudoTrackClips
    from fourds_ros.model import ModelConfig

    video = require(SHARED_DATA / "videos_unlabelled" / "cotracker_cat.mp4")
    clips = PseudoTrackClips([video], num_frames=4, image_size=(32, 32), hop=8, num_tracks=16)
    item = clips[1]
    reference = SyntheticLabelledClips(ModelConfig(size="tiny", num_frames=4, image_size=(32, 32)),
                                       {"num_tracks": 16}, 1, 0)[0]
    assert {k: tuple(v.shape) for k, v in item.items()} == {k: tuple(v.shape) for k, v in reference.items()}
    known = item["tracks_known"] > 0.5
    assert known[:, 0].sum() >= 8 and torch.equal(item["tracks_visible"], item["tracks_known"])
    assert (item["query_points"][:, 0] == 0).all()
    start = item["tracks_xy"][known[:, 0], 0]
    assert torch.allclose(item["query_points"][known[:, 0]][:, [2, 1]], start)
    assert (item["depth"] == 0).all() and torch.equal(item["pose_rotation"], torch.eye(3).repeat(4, 1, 1))
    assert torch.equal(reference["tracks_known"], torch.ones(16, 4))  # every synthetic label is known


def test_track_loss_reads_nothing_where_the_label_is_unknown():
    """Predictions (positions, visibility, confidence) changed only where known = 0 leave the
    track loss unchanged; changed where known = 1, they change it."""
    from training.losses import track_loss

    gen = torch.Generator().manual_seed(0)
    b, q, t, p = 2, 5, 4, 16
    out = {"xy": torch.rand(b, q, t, 2, generator=gen) * 30, "visible_logit": torch.randn(b, q, t, generator=gen),
           "confidence_logit": torch.randn(b, q, t, generator=gen),
           "correlation_logits": torch.randn(b, q, t, p, generator=gen)}
    xy = torch.rand(b, q, t, 2, generator=gen) * 30
    visible = torch.ones(b, q, t)
    weights = torch.softmax(torch.randn(b, q, t, p, generator=gen), -1)
    known = torch.ones(b, q, t)
    known[:, :2, 2:] = 0
    base, _ = track_loss(out, xy, visible, weights, known=known)
    for mask, changes in ((known == 0, False), (known == 1, True)):
        # (a ramp over the last axis: a constant added to every correlation logit would not change its softmax)
        other = {k: torch.where(mask[..., None], v + torch.linspace(1.0, 5.0, v.shape[-1]), v) if v.dim() == 4
                 else torch.where(mask, v + 5.0, v) for k, v in out.items()}
        loss, _ = track_loss(other, xy, visible, weights, known=known)
        assert bool(torch.isclose(loss, base)) != changes
    full, _ = track_loss(out, xy, visible, weights)
    assert torch.isclose(full, track_loss(out, xy, visible, weights, known=torch.ones(b, q, t))[0])


def test_zoom_window_is_the_same_camera_with_a_longer_lens():
    """--real-zoom: a window of 1/z of the frames keeps every pixel's ray (K's principal point moves with
    the window, the focal length in pixels stays), and resized to the model's input the focal length is
    z times longer: a canonical-focal depth head's target is z times nearer."""
    from fourds_ros.rgbd import resize_frames
    from training.data.datasets import zoom_window

    t, h, w = 2, 60, 80
    rgb = np.random.default_rng(0).integers(0, 255, (t, h, w, 3), dtype=np.uint8)
    depth = (np.arange(t * h * w, dtype=np.float32).reshape(t, h, w) + 1) / 1000
    k = np.array([[70.0, 0, 39.5], [0, 70.0, 29.5], [0, 0, 1]])
    rgb_z, depth_z, k_z = zoom_window(rgb, depth, k, np.random.default_rng(3), 2.0, 2.0)
    assert depth_z.shape == (t, 30, 40) and rgb_z.shape == (t, 30, 40, 3)
    y0, x0 = np.argwhere(depth[0] == depth_z[0, 0, 0])[0]  # where the window sits (depth values are unique)
    np.testing.assert_array_equal(depth_z, depth[:, y0:y0 + 30, x0:x0 + 40])
    np.testing.assert_array_equal(rgb_z, rgb[:, y0:y0 + 30, x0:x0 + 40])
    u, v = 7.0, 11.0  # a window pixel and the frame pixel it was: the same ray
    ray_z = np.linalg.solve(k_z, [u, v, 1.0])
    ray = np.linalg.solve(k, [u + x0, v + y0, 1.0])
    np.testing.assert_allclose(ray_z, ray, atol=1e-12)
    _, _, k_model = resize_frames(rgb, depth, k, (24, 32))
    _, _, k_model_z = resize_frames(rgb_z, depth_z, k_z, (24, 32))
    np.testing.assert_allclose(k_model_z[0, 0] / k_model[0, 0], 2.0, rtol=1e-9)
    # z is drawn per clip in [low, high], and the window's place with it
    sizes = {zoom_window(rgb, depth, k, np.random.default_rng(s), 1.25, 2.5)[1].shape for s in range(20)}
    assert len(sizes) > 5 and all(24 <= hh <= 48 and 32 <= ww <= 64 for _, hh, ww in sizes)


def test_zoomed_real_clips_keep_their_labels_consistent():
    """RGBDClips(zoom=...) on the shipped HoloLens sample: the model-input focal length doubles at z = 2,
    every query is visible at its own pixel in its own frame, and the depth is the same metres (a window
    of the same scene, not a rescaled one)."""
    from pathlib import Path

    sample = Path(__file__).resolve().parents[1] / "samples" / "hololens_000"
    seq = read_sequence(sample)
    plain = RGBDClips(seq, num_frames=4, image_size=(64, 96), num_tracks=32)[0]
    zoomed = RGBDClips(seq, num_frames=4, image_size=(64, 96), num_tracks=32, zoom=(2.0, 2.0))[0]
    np.testing.assert_allclose(zoomed["intrinsics"][0, 0] / plain["intrinsics"][0, 0], 2.0, rtol=0.02)
    qt, idx = zoomed["query_points"][:, 0].long(), np.arange(32)
    assert zoomed["tracks_visible"][idx, qt].all()
    np.testing.assert_allclose(zoomed["tracks_xy"][idx, qt], zoomed["query_points"][:, [2, 1]], atol=1e-3)
    d_plain, d_zoom = plain["depth"][plain["depth"] > 0], zoomed["depth"][zoomed["depth"] > 0]
    assert d_zoom.min() >= d_plain.min() - 1e-6 and d_zoom.max() <= d_plain.max() + 1e-6


def test_depth_labels_are_resized_onto_the_pixel_centres_their_intrinsics_describe():
    """A depth ramp whose value is its own source column: after resize_frames each label must hold
    the source column under the model pixel's centre, as the returned K maps it. cv2's NEAREST took
    the column at the pixel's corner: 0.47 model px off at 240 -> 128 (the 7-Scenes half copy)."""
    from fourds_ros.rgbd import resize_frames

    h, w = 240, 320
    columns = np.tile(np.arange(w, dtype=np.float32), (h, 1))
    k = np.array([[260.0, 0, 159.5], [0, 260.0, 119.5], [0, 0, 1]])
    _, depth, k_model = resize_frames(np.zeros((1, h, w, 3), np.uint8), columns[None], k, (128, 128))
    x = np.arange(128)
    # the source column under model pixel x: back through K_model to a ray, forward through K
    source = (x - k_model[0, 2]) / k_model[0, 0] * k[0, 0] + k[0, 2]
    assert abs(float(np.mean(depth[0, 64] - source))) < 0.05 * w / 128


def test_a_video_with_a_display_rotation_is_read_upright(tmp_path):
    """A phone's portrait video is stored as landscape frames with a 90 degree display rotation: read with
    to_ndarray alone, it was trained on (and converted into bags) on its side. Every reader now turns it."""
    from fourds_ros.evaluation.datasets import iter_mp4
    from training.data.appearance import _read_video
    from training.data.video import read_frames

    path = tmp_path / "portrait.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.set_display_rotation(90)  # shown turned a quarter counter-clockwise
        for _ in range(40):
            img = np.zeros((48, 64, 3), np.uint8)
            img[:, :16] = 255  # a white band on the stored frame's left
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    shown = np.rot90(np.pad(np.full((48, 16), 255.0), ((0, 0), (0, 48))))  # the band at the bottom, 64 x 48
    for frame in (read_frames(path, [0, 3])[1], next(iter_mp4(path)).image, _read_video(path)[0]):
        assert frame.shape[:2] == (64, 48)
        assert np.abs(frame.mean(axis=2) - shown).mean() < 10


def test_a_synthetic_bag_refuses_bad_arguments_in_one_line(tmp_path, capsys):
    """`python -m training.synthetic_bag` took --frames 0 and --size abc into tracebacks, and an OUT that exists."""
    from training.synthetic_bag import main as synthetic_bag

    assert synthetic_bag([str(tmp_path / "bag"), "--frames", "2", "--size", "32x48"]) == 0
    assert synthetic_bag([str(tmp_path / "bag"), "--frames", "2"]) == 1
    assert "already exists" in capsys.readouterr().err
    for bad in (["--frames", "0"], ["--size", "abc"], ["--fps", "0"]):
        with pytest.raises(SystemExit) as exc:
            synthetic_bag([str(tmp_path / "other"), *bad])
        assert exc.value.code == 2


# Behaviours no test caught breaking (session 63's mutation review of training/: each fails on its mutant).


def test_pretraining_items_carry_the_configured_mask():
    """mask.kind and mask.ratio reach the mask each item carries (a random mask at 0.5 instead went unseen)."""
    from fourds_ros.model import ModelConfig
    from training.data import PretrainClips

    cfg = ModelConfig(size="micro", num_frames=4, image_size=(64, 64))  # token grid 2 x 4 x 4
    t, h, w = cfg.token_grid
    masked = PretrainClips(cfg, {"source": "synthetic", "num_scenes": 1}, "tube", 0.75, seed=0)[0]["masked"]
    rows = masked.reshape(t, h * w)
    assert all(torch.equal(row, rows[0]) for row in rows)  # a tube: the same pixels masked in every frame
    assert abs(float(masked.float().mean()) - 0.75) <= 1 / (h * w)


def test_the_mae_loss_scores_the_masked_tubelets_on_normalised_pixels():
    """MSE on per-tubelet normalised pixels of the masked tubelets (training/mae.py): a perfect reconstruction
    of the masked ones scores 0 whatever the kept ones read; the same for the kept ones does not."""
    from training.mae import mae_loss, patchify

    torch.manual_seed(0)
    video, ps = torch.rand(1, 4, 32, 32, 3), (2, 16, 16)
    target = patchify(video, ps)
    target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True, unbiased=False) + 1e-6).sqrt()
    masked = torch.zeros(1, target.shape[1], dtype=torch.bool)
    masked[0, ::2] = True
    perfect = torch.where(masked[..., None], target, torch.zeros_like(target))
    assert float(mae_loss(perfect, video, masked, ps)) == pytest.approx(0.0, abs=1e-6)
    assert float(mae_loss(perfect, video, ~masked, ps)) > 0.5


def _tagged_bank(n: int, tag: float) -> dict:
    """A labelled bank whose video is a left-to-right ramp (a mirrored clip shows) and whose translations carry
    `tag` (which bank a clip came from)."""
    video = torch.arange(8, dtype=torch.uint8).repeat(n, 2, 8, 1)[..., None].expand(n, 2, 8, 8, 3).contiguous()
    return {"video": video, "intrinsics": torch.eye(3).repeat(n, 1, 1), "depth": torch.ones(n, 2, 8, 8),
            "query_points": torch.zeros(n, 4, 3), "tracks_xy": torch.zeros(n, 4, 2, 2),
            "tracks_visible": torch.ones(n, 4, 2), "tracks_known": torch.ones(n, 4, 2),
            "pose_rotation": torch.eye(3).repeat(n, 2, 1, 1), "pose_translation": torch.full((n, 2, 3), tag)}


def test_batches_take_the_real_fraction_and_mirror_half_with_flip(tmp_path):
    """--real-fraction 0.75 of a batch of 8 is 6 real clips in every batch; --flip mirrors about half."""
    from training.readouts_config import parse_args
    from training.readouts_data import Banks, BatchSampler

    cfg = parse_args(["--batch-size", "8", "--real-fraction", "0.75", "--flip", "--out", str(tmp_path)])
    sampler = BatchSampler(cfg, Banks(_tagged_bank(16, 1.0), _tagged_bank(16, 2.0), [16], [16], _tagged_bank(2, 1.0)),
                           torch.device("cpu"))
    mirrored = 0
    for _ in range(100):
        batch = sampler()
        assert int((batch["pose_translation"][:, 0, 1] == 2.0).sum()) == 6
        mirrored += int((batch["video"][:, 0, 0, 0, 0] > batch["video"][:, 0, 0, -1, 0]).sum())
    assert 0.4 < mirrored / 800 < 0.6


def test_seven_scenes_rgb_poses_sit_beside_the_depth_camera():
    """The RGB camera's centre is X_depth + (0.025, 0, 0) in the depth camera's axes (rgbd.read_7scenes); the
    opposite sign put pose labels and ground truth 5 cm off."""
    from fourds_ros.rgbd import read_7scenes

    root = require(SHARED_DATA / "7scenes_redkitchen_f000-299")
    seq = read_7scenes(root)
    pose = np.loadtxt(root / "frame-000100.pose.txt")
    np.testing.assert_allclose(seq.camera_to_world[100][:3, 3], pose[:3, 3] + pose[:3, :3] @ [0.025, 0, 0], atol=1e-6)


def test_tum_frames_need_a_pose_within_max_dt_and_65535_is_no_depth(tmp_path):
    """A frame whose nearest motion-capture pose is seconds away has no pose (it took one from 2 s before);
    7-Scenes' 65535 is no reading, not 65.5 m."""
    from fourds_ros.rgbd import read_depth, read_tum

    root = tmp_path / "rgbd_dataset_freiburg3_gap"
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    stamps = [0.0, 1.0, 2.0]
    for t in stamps:
        cv2.imwrite(str(root / f"rgb/{t}.png"), np.zeros((480, 640, 3), np.uint8))  # freiburg3's calibration
        cv2.imwrite(str(root / f"depth/{t}.png"), np.full((480, 640), 5000, np.uint16))
    (root / "rgb.txt").write_text("".join(f"{t} rgb/{t}.png\n" for t in stamps))
    (root / "depth.txt").write_text("".join(f"{t} depth/{t}.png\n" for t in stamps))
    (root / "groundtruth.txt").write_text("0.0 0 0 0 0 0 0 1\n0.01 0 0 0 0 0 0 1\n")  # lost after 0.01 s
    assert len(read_tum(root)) == 1
    cv2.imwrite(str(tmp_path / "d.png"), np.array([[1000, 65535]], np.uint16))
    assert read_depth(tmp_path / "d.png", 1e-3).tolist() == [[1.0, 0.0]]


@pytest.mark.parametrize("kind", ["VideoClips", "SquareClips"])
def test_videos_too_short_for_a_clip_are_named_when_left_out(tmp_path, kind, caplog):
    """A video shorter than a clip's span was dropped from training unsaid (a 5-frame clip beside real videos)."""
    from training.data import video

    for name, n in (("long", 12), ("short", 3)):
        (tmp_path / name).mkdir()
        for i in range(n):
            cv2.imwrite(str(tmp_path / f"{name}/{i:04d}.png"), np.full((48, 64, 3), 10 * i, np.uint8))
    with caplog.at_level("WARNING", logger=video.__name__):
        if kind == "VideoClips":
            clips = video.VideoClips(tmp_path, num_frames=4, image_size=(32, 32), stride=2)
        else:
            clips = video.SquareClips(tmp_path, num_frames=4, image_size=(32, 32), stride=2)
    assert len(clips) >= 1
    assert "1 of 2 videos are left out" in caplog.text and "short (3 frames)" in caplog.text
    assert "long" not in caplog.text.split("left out")[1], caplog.text
