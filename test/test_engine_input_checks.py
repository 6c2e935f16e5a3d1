"""What every engine refuses before it runs: a clip past [0, 1] by more than rounding, query points that are NaN,
in a frame past the clip or far off the image; and a config.json whose clip is empty."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fourds_ros.engine import create_engine
from fourds_ros.engine.base import EngineInputError
from fourds_ros.engine.export import example_inputs


@pytest.fixture(scope="module")
def torch_engine(tiny_model_dir):
    return create_engine(tiny_model_dir, backend="torch", num_queries=4)


@pytest.mark.parametrize("peak", [1.02, 1.1])
def test_a_clip_past_one_by_more_than_rounding_is_refused(torch_engine, peak):
    # check_video allows 1e-3 of rounding; a clip normalised by 250 instead of 255 (max 1.02) is not rounding.
    inputs = example_inputs(torch_engine.spec)
    video = inputs["video"].copy()
    video[0, 0, 0, 0, 0] = peak
    with pytest.raises(EngineInputError, match=r"in \[0, 1\]"):
        torch_engine({**inputs, "video": video})


@pytest.mark.parametrize("bad", ["nan", "frame_past_clip", "pixel_past_image"])
def test_query_points_outside_the_clip_or_nan_are_refused(torch_engine, bad):
    # A NaN query gave all-NaN tracks and a query at frame 99 of a 4-frame clip plausible positions with
    # visibility 0.5, where a NaN or 0-255 video is an EngineInputError.
    inputs = example_inputs(torch_engine.spec)
    q = inputs["query_points"].copy()
    if bad == "nan":
        q[0, 0, 1] = np.nan
    elif bad == "frame_past_clip":
        q[0, 0, 0] = torch_engine.config.num_frames + 95
    else:
        q[0, 0, 2] = 1e6
    with pytest.raises(EngineInputError, match="query_points"):
        torch_engine({**inputs, "query_points": q})


@pytest.mark.parametrize("change", [{"num_frames": 0}])
def test_a_config_with_an_empty_clip_is_a_checkpoint_error(tiny_model_dir, tmp_path, change):
    # num_frames 0 raised a bare ZeroDivisionError out of load_checkpoint and create_engine (readout.py),
    # naming neither config.json nor the key.
    import shutil

    from fourds_ros.model import CheckpointError, load_checkpoint

    model = shutil.copytree(tiny_model_dir, tmp_path / "m")
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps({**config, **change}))
    with pytest.raises(CheckpointError, match="config.json"):
        load_checkpoint(model)
