"""Every clip dimension must divide by its patch dimension: the tubelet Conv3d floors, so a width of
40 at 16-pixel patches silently drops the rightmost 8 columns from the encoder while the depth head still
decodes them."""

from __future__ import annotations

import pytest

from fourds_ros.model import ModelConfig


@pytest.mark.parametrize("clip", [(5, (32, 32)), (4, (40, 32)), (4, (32, 40))])
def test_each_clip_dimension_must_divide_by_the_patch(clip):
    frames, image = clip
    with pytest.raises(ValueError, match="not divisible by patch size"):
        ModelConfig(size="micro", num_frames=frames, image_size=image, patch_size=(2, 16, 16))
