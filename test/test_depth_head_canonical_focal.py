"""A depth head's canonical_focal_px of 0 or below is refused when the config is made or loaded:
metric depth is the head's output x fx / canonical_focal_px, so 0 gives inf and a negative value negative depth."""

from __future__ import annotations

import json

import pytest

from fourds_ros.model import DepthHeadConfig, ModelConfig
from fourds_ros.model.checkpoint import CheckpointError, load_checkpoint


@pytest.mark.parametrize("focal", [0.0, -500.0])
def test_non_positive_canonical_focal_is_refused(focal):
    with pytest.raises(ValueError, match="canonical_focal_px must be > 0"):
        DepthHeadConfig(32, 2, canonical_focal_px=focal)


@pytest.mark.parametrize("focal", [0.0, -500.0])
def test_a_config_json_with_non_positive_canonical_focal_is_refused_at_load(tiny_model_dir, tmp_path, focal):
    import shutil

    model_dir = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model_dir)
    cfg = json.loads((model_dir / "config.json").read_text())
    cfg["heads"]["depth"]["canonical_focal_px"] = focal
    (model_dir / "config.json").write_text(json.dumps(cfg))
    with pytest.raises((CheckpointError, ValueError), match="canonical_focal_px"):
        load_checkpoint(model_dir)


def test_a_positive_canonical_focal_scales_metric_depth():
    cfg = DepthHeadConfig(32, 2, canonical_focal_px=500.0)
    assert cfg.metric_scale(250.0) == pytest.approx(0.5)  # fx / canonical
    assert ModelConfig.from_dict(ModelConfig(size="micro", num_frames=4, image_size=(32, 32),
                                             heads={"depth": cfg}).to_dict()).heads["depth"] == cfg
