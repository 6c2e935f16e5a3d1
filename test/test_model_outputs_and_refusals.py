"""The model's pose outputs are the pose head's own in its order; integer weights and an empty clip in config.json
are CheckpointErrors naming what is wrong."""

from __future__ import annotations

import pytest
import torch

from fourds_ros.model import CheckpointError, FourDS, ModelConfig, default_heads, init_weights, load_checkpoint


def test_engine_pose_outputs_are_the_pose_heads_own_in_its_order():
    # training reads PoseHead's log_variance as (rotation, translation); the engine output must keep that order.
    cfg = ModelConfig(size="micro", num_frames=4, image_size=(32, 32), patch_size=(2, 16, 16), heads=default_heads(32, 2))
    model = init_weights(FourDS(cfg), seed=0).eval()
    torch.nn.init.normal_(model.heads.pose.readout.head.weight)  # distinct channels
    video = torch.rand(1, *cfg.clip_shape, generator=torch.Generator().manual_seed(0))
    queries = torch.zeros(1, 2, 3)
    with torch.no_grad():
        out = model(video, queries)
        own = model.heads.pose(model.features(video))
    torch.testing.assert_close(out["pose_log_variance"], own["log_variance"])
    torch.testing.assert_close(out["pose_rotation"], own["rotation"])
    torch.testing.assert_close(out["pose_translation"], own["translation"])


def test_integer_weights_are_refused_naming_the_key(tiny_model_dir, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    model = shutil.copytree(tiny_model_dir, tmp_path / "m")
    state = load_file(str(model / "model.safetensors"))
    key = "heads.depth.readout.head.bias"
    state[key] = state[key].round().to(torch.int64)
    save_file(state, str(model / "model.safetensors"))
    with pytest.raises(CheckpointError, match=rf"{key}.*dtype"):
        load_checkpoint(model)
