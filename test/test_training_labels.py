"""Training labels kept with their frames: strided real clips' poses and tracks, frame folders in numeric
order, clips played backwards with their known masks, held-aside synthetic clips never trained on, a bag's K and
invalid depth, zoomed copies and their seeds, a real STRIDE and --real-zoom checked when parsed, synthetic
occlusion at 20 cm, SfM depth labels' pixel centres, and --real-fraction's floor of one real clip."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch


class _WalkingSequence:
    """An RGB-D sequence (the interface RGBDClips reads) whose camera moves 0.1 m along x per frame
    in front of a textured wall 2 m away: frame i's pose is unique to i."""

    name = "walk"

    def __init__(self, n=24, h=48, w=64):
        self.n, self.h, self.w = n, h, w
        self.intrinsics = np.array([[60.0, 0, (w - 1) / 2], [0, 60.0, (h - 1) / 2], [0, 0, 1]])
        self.camera_to_world = np.repeat(np.eye(4)[None], n, 0)
        self.camera_to_world[:, 0, 3] = 0.1 * np.arange(n)

    def __len__(self):
        return self.n

    def rgb(self, i):
        rng = np.random.default_rng(i)
        return rng.integers(0, 255, (self.h, self.w, 3), dtype=np.uint8)

    def depth(self, i):
        return np.full((self.h, self.w), 2.0, np.float32)


def test_strided_real_clips_take_the_poses_of_their_own_frames():
    """--real PATH:STRIDE: a clip's frames are every STRIDE-th frame, and so must be its pose (and
    track) labels: camera_to_world[idx], not the first T frames from the clip's start."""
    from training.data.datasets import RGBDClips

    clips = RGBDClips(_WalkingSequence(), num_frames=4, image_size=(24, 32), stride=3, num_tracks=8, hop=2)
    item = clips[1]  # frames 2, 5, 8, 11
    np.testing.assert_allclose(item["pose_translation"][:, 0].numpy(), [0.0, 0.3, 0.6, 0.9], atol=1e-6)
    # a wall point 2 m away moves 30 model px (f) * 0.3 m / 2 m = 4.5 px left per clip frame
    visible = item["tracks_visible"].bool()
    q = item["query_points"]
    dx = item["tracks_xy"][..., 0] - q[:, None, 2]
    expected = -4.5 * (torch.arange(4)[None].float() - q[:, 0:1])
    assert visible.any()
    torch.testing.assert_close(dx[visible], expected.expand_as(dx)[visible], atol=1e-3, rtol=0)


def test_a_frame_folder_numbered_without_zero_padding_is_read_in_frame_order(tmp_path):
    """1.png .. 12.png (ffmpeg's %d, many bag exporters): video.read_frames and SquareClips read 1, 10, 11,
    12, 2, ... (a lexicographic sort), so pre-training, --pseudo-tracks, --sfm-depth and --photometric
    clips jumped in time; the evaluator's image-folder reader (evaluation.datasets.iter_frames) and
    read_hololens sort with rgbd.natural_order."""
    import cv2

    from training.data.video import SquareClips, read_frames

    folder = tmp_path / "walk"
    folder.mkdir()
    for i in range(1, 13):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((16, 16, 3), 20 * i, np.uint8))
    order = [int(f[0, 0, 0]) // 20 for f in read_frames(folder, list(range(12)))]
    assert order == list(range(1, 13))
    clip = SquareClips([str(folder)], 4, (8, 8))[0]["video"]
    assert [round(float(f[0, 0, 0]) * 255 / 20) for f in clip] == [1, 2, 3, 4]


def _bank(n=2, t=4, q=3, hw=8):
    g = torch.Generator().manual_seed(0)
    return {"video": torch.randint(0, 255, (n, t, hw, hw, 3), generator=g, dtype=torch.uint8),
            "intrinsics": torch.eye(3).repeat(n, 1, 1), "depth": torch.rand(n, t, hw, hw, generator=g) + 1,
            "query_points": torch.zeros(n, q, 3), "tracks_xy": torch.rand(n, q, t, 2, generator=g) * hw,
            "tracks_visible": torch.ones(n, q, t),
            # known only up to a depth hole at frame 2 (geometric_tracks' `known`): different at each end
            "tracks_known": torch.tensor([1.0, 1.0, 0.0, 0.0]).repeat(n, q, 1),
            "pose_rotation": torch.eye(3).repeat(n, t, 1, 1), "pose_translation": torch.zeros(n, t, 3)}


def test_clips_played_backwards_keep_each_frames_known_mask_with_its_frame():
    """--reverse: frame i of a reversed clip is frame T-1-i, and tracks_known (where a real clip's track
    label can be trusted: not over a depth hole) must move with it, as tracks_xy and tracks_visible do."""
    from training.readouts_data import played_backwards

    bank = _bank()
    back = played_backwards(bank)
    assert torch.equal(back["tracks_known"], bank["tracks_known"].flip(2))
    assert torch.equal(back["tracks_visible"], bank["tracks_visible"].flip(2))


def test_a_small_real_fraction_still_puts_one_real_clip_in_every_batch(tmp_path):
    """BatchSampler's documented floor: --real-fraction 0.05 of a batch of 4 rounds to 0 clips, and the
    sampler still takes one real clip per batch (--real would otherwise be silently unused)."""
    from training.readouts_config import parse_args
    from training.readouts_data import Banks, BatchSampler

    synthetic, real = _bank(8), _bank(8)
    real["pose_translation"] += 2.0  # tag the real clips
    cfg = parse_args(["--batch-size", "4", "--real-fraction", "0.05", "--out", str(tmp_path)])
    sampler = BatchSampler(cfg, Banks(synthetic, real, [8], [8], _bank(2)), torch.device("cpu"))
    for _ in range(5):
        assert int((sampler()["pose_translation"][:, 0, 0] == 2.0).sum()) == 1


def test_held_aside_synthetic_clips_are_never_training_clips(tmp_path):
    """The readout run's validation loss (and its --eval-every curve) is scored on held-aside synthetic
    scenes (readouts_data.VAL_SEED_OFFSET): none of them may be a training scene."""
    from training import train_readouts
    from training.readouts_config import parse_args

    cfg = parse_args(["--train-clips", "12", "--val-clips", "4", "--out", str(tmp_path)])
    banks = train_readouts.load_banks(cfg, train_readouts.model_for(cfg), torch.device("cpu"))
    train, val = banks.synthetic["video"].flatten(1), banks.val["video"].flatten(1)
    assert not (train[:, None] == val[None]).all(-1).any()


def test_a_bag_whose_K_changes_is_refused_and_its_invalid_depth_is_no_label(monkeypatch, tmp_path):
    """datasets.BagSequence (--real / --select-on BAG): one K per recording (a zoom or resolution change
    mid-bag would give half the clips another camera's K), and NaN, negative or 0 depth is 0 (no label)."""
    import fourds_ros.evaluation.bag as bag_module
    from fourds_ros.rgbd import DatasetFormatError
    from training.data.datasets import BagSequence

    class FakeBag:
        stamps = [1, 2]
        gt_depth = {1: np.array([[2.0, np.nan], [-1.0, 0.0]]), 2: np.ones((2, 2))}
        gt_pose = {1: np.eye(4), 2: np.eye(4)}
        images = {}
        k = {1: np.diag([100.0, 100.0, 1.0]), 2: np.diag([100.0, 100.0, 1.0])}
        unscorable = None  # eval could score it (check_scorable, which training applies too)

        def intrinsics(self, stamp):
            return self.k[stamp]

    bag = FakeBag()
    monkeypatch.setattr(bag_module, "read_bag", lambda path: bag)
    assert BagSequence(tmp_path).depth(0).tolist() == [[2.0, 0.0], [0.0, 0.0]]
    bag.k = {1: np.diag([100.0, 100.0, 1.0]), 2: np.diag([200.0, 200.0, 1.0])}
    with pytest.raises(DatasetFormatError, match="K changes"):
        BagSequence(tmp_path)


def test_each_zoomed_clip_draws_its_own_zoom_reproducibly():
    """--real-zoom LOW HIGH: z is drawn per clip (datasets.zoom_window), so the clips of a sequence cover the
    range; the same seed and clip give the same view again."""
    from training.data.datasets import RGBDClips

    make = lambda seed: RGBDClips(_WalkingSequence(), 4, (24, 32), hop=2, num_tracks=8, seed=seed,  # noqa: E731
                                  zoom=(1.25, 2.5))
    clips = make(0)
    fx = [float(clips[i]["intrinsics"][0, 0]) for i in range(6)]
    assert len({round(f, 3) for f in fx}) == 6, fx
    assert min(fx) >= 30 * 1.25 - 1e-3 and max(fx) <= 30 * 2.5 * 1.05  # 30 px: the unzoomed model focal
    assert torch.equal(make(0)[3]["intrinsics"], clips[3]["intrinsics"])


@pytest.mark.parametrize("stride", ["0", "-2", "x", "\u00b2"])
def test_a_real_stride_that_is_no_positive_integer_is_refused_before_any_work(tmp_path, stride):
    """--real PATH:STRIDE and --select-on PATH:STRIDE: STRIDE 0 ended the run with "range() arg 3 must not be
    zero" after every synthetic clip was rendered; -2 trained silently on clips that wrap from frame 0 to the
    sequence's end (frames 0, 28, 26, 24 of 30: a 0.4 m jump labelled as motion); x, int()'s message."""
    from training.readouts_config import parse_args
    from training.typed_config import ConfigError

    for option in ("--real", "--select-on"):
        with pytest.raises(ConfigError, match="STRIDE"):
            parse_args([option, f"{tmp_path}:{stride}", "--out", str(tmp_path / "o")])


def test_a_recording_spec_takes_its_stride_after_the_last_colon():
    """A path may hold colons (a run folder named by its ISO time); an empty stride or none is 1, as the data
    reader took it before STRIDE was checked when parsed."""
    from pathlib import Path

    from training.readouts_config import recording_spec

    assert recording_spec("/d/run_10:00:00/seq:3") == (Path("/d/run_10:00:00/seq"), 3)
    assert recording_spec("/d/seq") == (Path("/d/seq"), 1)
    assert recording_spec("/d/seq:") == (Path("/d/seq"), 1)
    assert recording_spec("/d/seq: 2") == (Path("/d/seq"), 2)


def test_a_frame_folder_named_by_float_stamps_is_read_in_time_order(tmp_path):
    """Frames saved as f"{stamp}.png" with the stamp in seconds (str(float) drops trailing zeros, so the digits
    after the point vary in length): by their value, not by their digits (.1 came before .0333333)."""
    import cv2

    from training.data.video import read_frames

    folder = tmp_path / "stamps"
    folder.mkdir()
    for i in range(8):
        cv2.imwrite(str(folder / f"{1_700_000_000 + i / 30}.png"), np.full((8, 8, 3), 30 * i, np.uint8))
    assert [int(f[0, 0, 0]) // 30 for f in read_frames(folder, list(range(8)))] == list(range(8))


def test_real_zoom_adds_a_zoomed_copy_of_each_clip(tmp_path):
    """--real-zoom LOW HIGH: rgbd_bank's second half is the same clips as zoomed views (a focal length LOW-HIGH
    times longer, datasets.zoom_window), not a second copy of the unzoomed clips."""
    from types import SimpleNamespace

    from training.readouts_config import parse_args
    from training.readouts_data import rgbd_bank

    from .conftest import SHARED_DATA, require

    seq = str(require(SHARED_DATA / "hololens_dvmvs_000_f00305-00334"))
    cfg = parse_args(["--real", seq, "--real-zoom", "1.5", "2.0", "--num-tracks", "8", "--out", str(tmp_path)])
    model = SimpleNamespace(config=SimpleNamespace(num_frames=4, image_size=(32, 32)))
    bank = rgbd_bank(seq, cfg, model, torch.device("cpu"))
    n = bank["video"].shape[0] // 2
    ratio = bank["intrinsics"][n:, 0, 0] / bank["intrinsics"][:n, 0, 0]
    assert ((ratio > 1.5 - 1e-3) & (ratio < 2.0 * 1.05)).all(), ratio



def test_a_synthetic_point_20_cm_behind_a_surface_is_occluded():
    """SceneGenerator._project_tracks (the synthetic tracks' visibility labels): a point 0.2 m behind a plate
    the camera sees is occluded, one on the plate is visible (a 0.3 m tolerance passed every other test)."""
    import trimesh
    from trimesh.ray.ray_pyembree import RayMeshIntersector

    from training.data.synthetic import SceneGenerator, intrinsics_for

    plate = trimesh.creation.box(extents=[4.0, 4.0, 0.01])
    plate.apply_translation([0.0, 0.0, 2.0])  # its front face at z = 1.995, the camera at 0 looking along +z
    points = np.array([[[0.3, 0.2, 2.2]], [[0.3, 0.2, 1.995]]])  # (Q=2, T=1, 3)
    xy, visible = SceneGenerator._project_tracks(points, np.eye(4)[None], intrinsics_for((48, 64), 60.0),
                                                 [RayMeshIntersector(plate)], (48, 64))
    assert visible[:, 0].tolist() == [False, True]


@pytest.mark.parametrize("zoom", [("0.5", "1.0"), ("4", "9"), ("2", "1.5")])
def test_a_real_zoom_outside_1_to_8_is_refused_when_parsed(tmp_path, zoom):
    """--real-zoom LOW HIGH needs 1 <= LOW <= HIGH <= 8: under 1 the window is larger than the frame
    (zoom_window fails in a worker after the synthetic clips are rendered)."""
    from training.readouts_config import parse_args
    from training.typed_config import ConfigError

    with pytest.raises(ConfigError, match="real-zoom"):
        parse_args(["--real", str(tmp_path), "--real-zoom", *zoom, "--out", str(tmp_path / "o")])


def test_sfm_depth_labels_keep_the_pixel_centre_convention_through_both_resizes(monkeypatch):
    """sfm_depth: labels are triangulated at LABEL_WIDTH and rasterised onto the model's square; pixel centres
    are at integers at every scale (x' = (x + 0.5) s - 0.5, as rgbd.crop_resize_intrinsics). Dropping the half
    pixels put labels up to one model pixel off their colour and passed every test."""
    from training.data import sfm_depth

    # rasterised: an 8-px square onto 2 model px; frame x = 3.4 lies in model pixel 0 (frame px 0-3)
    out = sfm_depth.rasterised(np.array([[3.4, 3.4]]), np.array([2.0]), 0, 0, 8, 2)
    assert out.tolist() == [[2.0, 0.0], [0.0, 0.0]]
    # video_labels: a 1280-wide video is labelled at 640; label pixel 0 is frame pixel 0.5
    monkeypatch.setattr(sfm_depth, "sparse_depth", lambda gray, k, targets, s: {0: (np.array([[0.0, 10.0]]),
                                                                                     np.array([1.0]))})
    (uv, _), = sfm_depth.video_labels(np.zeros((2, 720, 1280, 3), np.uint8), [0]).values()
    np.testing.assert_allclose(uv, [[0.5, 20.5]])


def test_a_bags_frame_count_is_its_labelled_frames(monkeypatch, tmp_path):
    """count_frames (readouts_data.check_recording_lengths' measure of --real / --select-on) counts what BagSequence
    trains on, frames with depth and a pose: counting every stamp passed a bag labelled on 1 frame in 10 that then
    failed minutes into loading (session 70's mutation review)."""
    import fourds_ros.evaluation.bag as bag_module
    from training.data.datasets import count_frames

    (tmp_path / "metadata.yaml").write_text("{}")
    stamps = list(range(100))
    bag = SimpleNamespace(stamps=stamps, gt_depth=dict.fromkeys(stamps[::10]), gt_pose=dict.fromkeys(stamps))
    monkeypatch.setattr(bag_module, "read_bag", lambda path, images=True: bag)
    assert count_frames(tmp_path) == 10
