"""The shipped default model and the demo sample: present, loadable, within their size limits."""

from __future__ import annotations

import torch

from fourds_ros.evaluation.bag import read_bag, write_bag
from fourds_ros.evaluation.datasets import iter_dataset
from fourds_ros.model import load_checkpoint

from .conftest import REPO

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
