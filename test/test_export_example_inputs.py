"""export's example inputs (the traced clip, export-onnx's ONNX Runtime check, bench engines' random clip) put
every query point inside the clip in the head's (t, y, x) order: a swapped axis puts the frame index
past the clip, where the tracks head has no query feature and the check compares meaningless tracks."""

from __future__ import annotations


from fourds_ros.engine import EngineSpec
from fourds_ros.engine.export import example_inputs
from fourds_ros.model import ModelConfig, default_heads


def test_example_query_points_lie_inside_a_non_square_clip():
    cfg = ModelConfig(size="micro", num_frames=4, image_size=(32, 64), heads=default_heads(32, 2))
    q = example_inputs(EngineSpec(cfg, num_queries=512), seed=3)["query_points"][0]
    t, y, x = q[:, 0], q[:, 1], q[:, 2]
    assert 0 <= t.min() and t.max() <= 3
    assert 0 <= y.min() and y.max() <= 31
    assert 0 <= x.min() and x.max() <= 63
    assert x.max() > 32 and y.max() > 4  # spread over the image, not squeezed into the frame range
