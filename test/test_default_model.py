"""The shipped default model and the demo sample: present, loadable, within their size limits."""

from __future__ import annotations

import torch

from fourds_ros.evaluation.bag import read_bag, write_bag
from fourds_ros.evaluation.datasets import iter_dataset
from fourds_ros.model import load_checkpoint

from .conftest import REPO, SHARED_DATA, require

DEFAULT_MODEL = REPO / "models" / "fourds_default"
SAMPLE = REPO / "samples" / "hololens_000"


def test_default_model_loads_and_is_small():
    weights = DEFAULT_MODEL / "model.safetensors"
    assert weights.stat().st_size < 50 * 2**20
    card = (DEFAULT_MODEL / "README.md").read_text()
    assert "python -m training.train_readouts" in card and "python -m training.pretrain" in card
    model = load_checkpoint(DEFAULT_MODEL)
    assert set(model.heads) == {"depth", "tracks", "pose"}
    cfg = model.config
    video = torch.rand(1, *cfg.clip_shape)
    queries = torch.tensor([[[0.0, cfg.image_size[0] / 2, cfg.image_size[1] / 2]]])
    with torch.no_grad():
        out = model(video, queries)
    assert torch.isfinite(out["depth"]).all() and (out["depth"] > 0).all()
    assert torch.isfinite(out["track_xy"]).all() and torch.isfinite(out["pose_translation"]).all()


def test_demo_sample_converts_to_a_bag(tmp_path):
    """`make demo` input: the MIT HoloLens sample shipped in the repo, JPEG frames kept as is."""
    assert (SAMPLE / "LICENSE").read_text().startswith("MIT License")
    frames = list(iter_dataset("hololens", SAMPLE))
    assert len(frames) == 30 and all(f.encoding == "jpeg" for f in frames)
    write_bag(frames, tmp_path / "sample", compressed=True)
    bag = read_bag(tmp_path / "sample")
    assert len(bag.stamps) == 30 and bag.image_hw == (360, 540)
    assert sum(d is not None for d in bag.gt_depth.values()) == 30


def test_default_tracker_beats_no_motion_on_the_sample():
    """The shipped tracker follows points on real frames: its median end-point error on the demo
    sample's clips (geometric ground truth from depth + pose) is under half that of "no motion"."""
    from training.data import RGBDClips

    model = load_checkpoint(DEFAULT_MODEL).eval()
    cfg = model.config
    clips = RGBDClips(str(SAMPLE), cfg.num_frames, cfg.image_size, num_tracks=64, hop=cfg.num_frames)
    model_err, still_err = [], []
    for i in range(len(clips)):
        clip = clips[i]
        with torch.no_grad():
            xy = model(clip["video"][None], clip["query_points"][None])["track_xy"][0]
        visible = clip["tracks_visible"] > 0.5
        still = clip["query_points"][:, None, [2, 1]].expand_as(clip["tracks_xy"])
        model_err.append((xy - clip["tracks_xy"]).norm(dim=-1)[visible])
        still_err.append((still - clip["tracks_xy"]).norm(dim=-1)[visible])
    model_median, still_median = torch.cat(model_err).median(), torch.cat(still_err).median()
    assert model_median < 0.5 * still_median, (float(model_median), float(still_median))


def default_pipeline():
    """The node's default pipeline on the shipped model (torch backend)."""
    from fourds_ros.perception.pipeline import create_pipeline
    from fourds_ros.perception.settings import PerceptionSettings

    pipe, _ = create_pipeline(PerceptionSettings.from_params({"model": str(DEFAULT_MODEL), "backend": "torch"}),
                              log=lambda *_: None)
    return pipe


def odometry_drift(frames, k) -> tuple[float, float]:
    """The node's default pipeline (pose_source fused) over frames at 30 Hz: how far its odometry
    moved from the first pose to the last, (metres, degrees)."""
    import numpy as np

    pipe = default_pipeline()
    assert pipe.settings.pose.source == "fused"
    poses = [r.pose.odom_from_camera for i, rgb in enumerate(frames)
             for r in pipe.push(rgb, i * 33_333_333, "camera", k)]
    assert len(poses) >= 80
    drift = np.linalg.inv(poses[0]) @ poses[-1]
    return float(np.linalg.norm(drift[:3, 3])), float(np.degrees(np.arccos(np.clip((np.trace(drift[:3, :3]) - 1) / 2, -1, 1))))


def noisy_frames(scene, count: int, sigma: float = 3.0, seed: int = 0):
    """scene(i) -> (H, W, 3) float frame i of a still camera's view, for i < count; each yielded as
    uint8 with fresh sensor noise (sigma grey levels)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for i in range(count):
        clean = scene(i)
        yield np.clip(clean + rng.normal(0, sigma, clean.shape), 0, 255).round().astype(np.uint8)


def test_default_odometry_holds_still_when_the_camera_does():
    """A robot standing still: one real frame of the demo sample, 3 s at 30 Hz, fresh sensor noise
    (sigma 3 grey levels) in every frame, through the pipeline with the node's defaults (pose_source
    fused). The odometry must stay put. The pose head alone reads such clips as fast motion (0.6 m
    and 49-101 degrees in 3 s on real frames: model card, session 21); the geometry of the model's
    own tracks sees that nothing moves, and the fused default follows it (before session 21 the
    outlier gate handed this very frame to the head: 1.5 m and 10 degrees)."""
    import numpy as np

    from fourds_ros.rgbd import read_sequence

    seq = read_sequence(SAMPLE)
    frame = seq.rgb(12).astype(np.float64)
    metres, degrees = odometry_drift(noisy_frames(lambda i: frame, 90), seq.intrinsics)
    assert metres < 0.01 and degrees < 0.5, (metres, degrees)


def test_default_odometry_holds_still_while_something_crosses_the_view():
    """A robot standing still while something passes in front of it: a real TUM frame (validation
    scene), and a textured object (another view of the same desk) 30 % of the image wide crossing
    the whole view in 3 s. Tracks on the object, and background tracks it drags along, outnumber
    the still ones; before session 22 the odometry followed the object (60 mm in 3 s here; 0.19 m
    and 3.6 degrees with ONNX Runtime, 17-72 mm with other objects: model card, session 22)."""
    import cv2
    import numpy as np

    from fourds_ros.rgbd import read_sequence

    seq = read_sequence(require(SHARED_DATA / "tum_fr1_rpy_f000-079"))
    background = seq.rgb(10).astype(np.float64)
    h, w = background.shape[:2]
    ow, oh = int(0.3 * w), int(0.6 * h)
    thing = cv2.resize(seq.rgb(40), (ow, oh)).astype(np.float64)

    def frame(i: int) -> np.ndarray:
        out = background.copy()
        x0 = int(-ow + (w + ow) * i / 89)
        xa, xb = max(x0, 0), min(x0 + ow, w)
        if xb > xa:
            out[h // 4: h // 4 + oh, xa:xb] = thing[:, xa - x0: xb - x0]
        return out

    metres, degrees = odometry_drift(noisy_frames(frame, 90), seq.intrinsics)
    assert metres < 0.01 and degrees < 0.5, (metres, degrees)


def test_default_odometry_holds_still_while_the_light_dims():
    """A robot standing still while the room's light falls to half in a third of a second (a real
    TUM frame, validation scene). The tracks' LK step assumed that a point keeps its brightness;
    before session 22 the odometry moved 86 mm as the light fell (91 mm with ONNX Runtime); now
    0.2 mm, and the rotation 0.5 degrees (under 1 allowed, against 0.5 for a steady light)."""
    import numpy as np

    from fourds_ros.rgbd import read_sequence

    seq = read_sequence(require(SHARED_DATA / "tum_fr1_rpy_f000-079"))
    view = seq.rgb(10).astype(np.float64)
    metres, degrees = odometry_drift(noisy_frames(lambda i: view * (1.0 - 0.5 * np.clip((i - 40) / 10, 0, 1)), 90),
                                     seq.intrinsics)
    assert metres < 0.01 and degrees < 1.0, (metres, degrees)
