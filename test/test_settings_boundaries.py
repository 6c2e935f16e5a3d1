"""Refusals and boundary values of the settings: exclusion boxes, depth range, the camera mount, a bool given for
a number, reference depth without depth."""

import math

import pytest

from fourds_ros.perception.settings import PerceptionSettings


@pytest.mark.parametrize("boxes", [
    [0.0, 0.5, 1.0, 1.0, 0.2, 0.2],          # six numbers: one box and a half
    [0.1, 0.2],                               # two numbers
    [-0.1, 0.5, 1.0, 1.0],                    # left of the image
    [0.0, 0.5, 1.0, 1.5],                     # below it
])
def test_exclude_boxes_that_are_not_whole_boxes_inside_the_image_are_refused_by_name(boxes):
    with pytest.raises(ValueError, match="exclude_boxes"):
        PerceptionSettings.from_params(exclude_boxes=boxes)


def test_an_exclude_box_may_reach_every_edge_of_the_image():
    """A bumper across the whole bottom of the view: [0, 0.55, 1, 1] (docs), the whole image [0, 0, 1, 1]."""
    for boxes in ([0.0, 0.55, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.5, 0.5, 0.5, 0.5, 1.0, 1.0]):
        assert PerceptionSettings.from_params(exclude_boxes=boxes).inputs.exclude_boxes == boxes


def test_max_depth_equal_to_min_depth_is_refused_and_just_above_it_is_taken():
    """'max_depth must exceed min_depth': equal, every depth would be published as -inf or +inf."""
    with pytest.raises(ValueError, match=r"max_depth \(2.0\) must exceed min_depth \(2.0\)"):
        PerceptionSettings.from_params(min_depth=2.0, max_depth=2.0)
    assert PerceptionSettings.from_params(min_depth=2.0, max_depth=2.001).depth.max_depth == 2.001


@pytest.mark.parametrize("mount", [
    [0.0, math.nan, 0.0, -0.5, 0.5, -0.5, 0.5],   # a NaN translation: TF with NaN
    [math.inf, 0.0, 0.0, -0.5, 0.5, -0.5, 0.5],
    [0.0, 0.0, 0.0, -0.5, 0.5, -0.5, 0.5, 0.0],   # eight numbers
    [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.005],        # not a unit quaternion (beyond 1e-3)
])
def test_a_camera_mount_that_is_not_a_finite_pose_is_refused_by_name(mount):
    with pytest.raises(ValueError, match="base_from_camera"):
        PerceptionSettings.from_params(base_from_camera=mount)


def test_a_camera_mount_quaternion_rounded_to_four_places_is_taken():
    q = [0.0, 0.0, 0.0, 0.0, 0.0, 0.7071, 0.7071]  # norm 0.99999
    assert PerceptionSettings.from_params(base_from_camera=q).pose.base_from_camera == q


@pytest.mark.parametrize("name, value", [
    ("num_queries", True),            # YAML `num_queries: yes` / `true`
    ("hop", False),
    ("max_depth", True),
    ("min_image_texture", False),
    ("base_from_camera", [0.0, 0.0, 0.0, False, False, False, True]),
    ("exclude_boxes", [False, False, True, True]),
])
def test_a_bool_for_a_number_is_refused_by_name(name, value):
    with pytest.raises(ValueError, match=name):
        PerceptionSettings.from_params({name: value})


def test_reference_depth_without_depth_is_refused_naming_both():
    with pytest.raises(ValueError, match="reference_depth needs enable_depth"):
        PerceptionSettings.from_params(metric_scale_source="reference_depth", enable_depth=False)
    assert PerceptionSettings.from_params(metric_scale_source="reference_depth").scale.source == "reference_depth"
