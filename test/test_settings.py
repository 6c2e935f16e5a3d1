"""Settings as data: one declaration per parameter (perception/settings.py), from which the node's
declarations, the settings object and config/perception.yaml are generated."""

import array
import dataclasses
import re
import sys

import pytest
import yaml

from fourds_ros.perception.settings import (
    READ_AT_START, PerceptionSettings, TrackSettings, parameter_change_refusal, parameter_specs, render_yaml,
)
from fourds_ros.ros.launch_logic import PARAMS_KEY

from .conftest import REPO


def test_config_yaml_is_the_rendering_of_the_settings():
    """Any name, default or description that differs between the code and the shipped YAML fails."""
    assert (REPO / "config" / "perception.yaml").read_text() == render_yaml()


def test_yaml_values_equal_the_declared_defaults_and_build_the_default_settings():
    params = yaml.safe_load(render_yaml())[PARAMS_KEY]["ros__parameters"]
    specs = list(parameter_specs())
    assert list(params) == [s.name for s in specs]
    assert all(params[s.name] == s.default and type(params[s.name]) is s.type for s in specs)
    assert PerceptionSettings.from_params(params) == PerceptionSettings()


def test_every_parameter_has_a_description_and_a_unique_name():
    specs = list(parameter_specs())
    assert len({s.name for s in specs}) == len(specs)
    assert all(len(s.description) > 10 for s in specs)


def test_from_params_sets_the_nested_field_and_round_trips():
    s = PerceptionSettings.from_params(hop=2, track_min_visibility=0.25, base_from_camera=[1, 2, 3, 0, 0, 0, 1])
    assert s.clip.hop == 2 and s.tracks.min_visibility == 0.25 and s.pose.base_from_camera[0] == 1.0
    assert PerceptionSettings.from_params(s.as_params()) == s
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.clip.hop = 3


@pytest.mark.parametrize("params, name", [
    ({"num_queries": 0}, "num_queries"),  # 0 crashed the ONNX export with SIGFPE
    ({"max_tracks": -1}, "max_tracks"),
    ({"path_max_length": 0}, "path_max_length"),
    ({"track_query_mode": "random"}, "track_query_mode"),
    ({"track_max_deviation_px": -1.0}, "track_max_deviation_px"),
    ({"image_qos": "FAST"}, "image_qos"),
    ({"hop": 1.5}, "hop"),
    ({"enable_depth": "yes"}, "enable_depth"),
    ({"min_depth": float("nan")}, "min_depth"),
    ({"base_from_camera": [0, 0, 0, 0, 0, 0, 2]}, "base_from_camera"),  # quaternion norm
    ({"base_from_camera": [0, 0, 0, 1]}, "base_from_camera"),
    ({"min_depth": 5.0, "max_depth": 1.0}, "max_depth"),
    ({"track_refinement": "none"}, "track_image_fallback"),  # the fallback needs the templates
    ({"track_lk_check_px": 1.0, "track_refinement": "template"}, "track_lk_check_px"),  # checks LK's steps
    ({"track_lk_check_px": -1.0}, "track_lk_check_px"),
    ({"no_such_parameter": 1}, "no_such_parameter"),
])
def test_bad_values_are_refused_naming_the_parameter(params, name):
    with pytest.raises(ValueError, match=name):
        PerceptionSettings.from_params(params)


@pytest.mark.parametrize("params, message", [
    ({"base_frame": "odom"}, "base_frame must differ from odom_frame, both are 'odom'"),  # TF_SELF_TRANSFORM
    ({"odom_frame": ""}, "odom_frame must not be empty"),  # TF_NO_FRAME_ID
    ({"base_frame": ""}, "base_frame must not be empty"),
    ({"camera_frame": ""}, "camera_frame must not be empty"),
    ({"odom_frame": "/odom"}, "odom_frame must not start with '/' (tf2 refuses it), got '/odom': use 'odom'"),
    ({"base_frame": "/base_link"}, "base_frame must not start with '/'"),
    ({"camera_frame": "/camera_optical_frame"}, "camera_frame must not start with '/'"),
    ({"camera_frame": "base_link"}, "camera_frame must differ from base_frame"),  # the mount base -> base
    ({"camera_frame": "odom"}, "camera_frame must differ from odom_frame"),
])
def test_frame_names_tf2_drops_or_refuses_fail_configure_naming_the_parameter(params, message):
    """configure took them, and the node then published /tf, odometry and the camera mount in frames
    tf2 drops (an empty frame, a child equal to its parent) or refuses in lookups (a leading '/')."""
    with pytest.raises(ValueError, match=re.escape(message)):
        PerceptionSettings.from_params(params)
    assert PerceptionSettings.from_params(odom_frame="map_odom", base_frame="robot/base").pose.base_frame == "robot/base"


def test_groups_built_directly_are_validated_too():
    with pytest.raises(ValueError, match="track_query_mode"):
        TrackSettings(query_mode="random")
    assert TrackSettings(max_tracks=3).max_tracks == 3


def test_the_yaml_is_regenerated_by_the_module_command(tmp_path):
    import subprocess

    out = subprocess.run([sys.executable, "-m", "fourds_ros.perception.settings"], capture_output=True, text=True,
                         check=True, cwd=REPO).stdout
    assert out == render_yaml()


def test_the_param_option_types_values_as_declared_and_refuses_bad_ones():
    """`--param` of eval, eval-suite and bench node: one parser, values typed as the node declares
    them (an int for a double parameter would not match the node's type in a params file)."""
    import argparse

    from fourds_ros.perception.settings import add_param_argument, params_from_args

    parser = argparse.ArgumentParser()
    add_param_argument(parser)
    items = parser.parse_args(["--param", "latency_warn_ms=500", "--param", "pose_source=head"]).param
    assert params_from_args(parser, items) == {"latency_warn_ms": 500.0, "pose_source": "head"}
    assert type(params_from_args(parser, items)["latency_warn_ms"]) is float
    for bad in (["nope=1"], ["num_queries=0"], ["pose_source"], ["exclude_boxes=[1"]):  # the last: a YAML traceback
        with pytest.raises(SystemExit):
            params_from_args(parser, bad)


def test_runtime_parameter_changes_are_refused_with_the_reason_or_accepted_when_they_take_effect():
    """`ros2 param set` on a configured node would succeed and change nothing until the next
    configure: refused, saying how to apply it. Unconfigured, a value configure would refuse is
    refused at once, naming the parameter; a valid one is accepted."""
    current = {spec.name: spec.default for spec in parameter_specs()}
    refusal = parameter_change_refusal(current, {"hop": 3}, state="active")
    assert refusal and refusal.startswith("hop: read at configure") and "deactivate" in refusal
    assert parameter_change_refusal(current, {"hop": 3}, state="unconfigured") is None
    assert "hop" in parameter_change_refusal(current, {"hop": -1}, state="unconfigured")
    assert "pose_source" in parameter_change_refusal(current, {"pose_source": "magic"}, state="unconfigured")
    for name in READ_AT_START:  # never re-read: a change is refused in every state
        other = {"diagnostics_period_s": 2.0, "autostart": not current["autostart"]}[name]
        assert parameter_change_refusal(current, {name: other}, state="unconfigured").startswith(name)


def test_the_refusal_while_configured_names_the_transitions_valid_from_the_state():
    """Inactive, the reason said "deactivate and clean up the node": deactivate is no transition of an
    inactive node (it fails). After shutdown no configure follows: the change was accepted and never
    applied."""
    current = {spec.name: spec.default for spec in parameter_specs()}
    inactive = parameter_change_refusal(current, {"hop": 3}, state="inactive")
    assert inactive == "hop: read at configure; clean up the node, set it, then configure (and activate) again"
    assert "deactivate" in parameter_change_refusal(current, {"hop": 3}, state="active")
    assert parameter_change_refusal(current, {"hop": 3}, state="finalized") == "hop: node finalized: restart the process"
    assert "transition" in parameter_change_refusal(current, {"hop": 3}, state="configuring")


@pytest.mark.parametrize("state", ["unconfigured", "inactive", "active", "finalized"])
def test_a_change_to_the_current_value_is_accepted_in_every_state(state):
    """`ros2 param load` of the node's own dump (`ros2 param dump`) on an active node failed: every
    value, each equal to the current one, was refused as a change. Nothing changes: accepted. A value
    of another type (1.0 for an integer) or another list is a change."""
    current = {spec.name: spec.default for spec in parameter_specs()}
    assert parameter_change_refusal(current, dict(current), state=state) is None
    assert parameter_change_refusal(current, {"exclude_boxes": array.array("d", [0.0] * 4)}, state=state) is None
    configured = state != "unconfigured"
    assert (parameter_change_refusal(current, {"hop": 2}, state=state) is not None) == configured
    assert parameter_change_refusal(current, {"hop": 0.0}, state=state)  # a double for an integer: refused
    assert parameter_change_refusal(current, {"autostart": current["autostart"], "diagnostics_period_s": 2.0},
                                    state=state).startswith("diagnostics_period_s")



def test_a_set_with_two_bad_values_is_fixed_one_change_at_a_time():
    """A params file with two bad values fails configure; each `ros2 param set` fixing one of them was
    refused for the other one's error. A change is refused only when it makes things worse: a value
    bad itself, an error that names it, or a valid set broken."""
    current = {**{spec.name: spec.default for spec in parameter_specs()}, "hop": -1, "max_depth": -5.0}
    assert parameter_change_refusal(current, {"hop": 3}, state="unconfigured") is None
    assert "max_depth" in parameter_change_refusal(current, {"max_depth": -6.0}, state="unconfigured")  # bad itself
    boxes = {"exclude_boxes": [0.5, 0.0, 0.1, 1.0]}  # x0 > x1: each number fine, the box is not
    assert "exclude_boxes" in parameter_change_refusal({**current, "hop": 3}, boxes, state="unconfigured")
    current["hop"] = 3
    assert parameter_change_refusal(current, {"max_depth": 100.0}, state="unconfigured") is None
    current["max_depth"] = 100.0
    PerceptionSettings.from_params(current)  # valid: configure takes it
    assert "min_depth" in parameter_change_refusal(current, {"min_depth": 500.0}, state="unconfigured")  # breaks it


def test_image_rotation_declares_the_quarter_turns_it_takes():
    """Its declared range read 'in [0, 270]' (config/perception.yaml, `ros2 param describe`) while 45 was refused."""
    spec = next(spec for spec in parameter_specs() if spec.name == "image_rotation")
    assert spec.constraints == "one of 0, 90, 180, 270"
    for turn in (0, 90, 180, 270):
        assert PerceptionSettings.from_params(image_rotation=turn).inputs.image_rotation == turn
    with pytest.raises(ValueError, match=r"image_rotation must be one of \(0, 90, 180, 270\), got 45"):
        PerceptionSettings.from_params(image_rotation=45)


def test_the_engine_settings_name_what_the_engine_factory_accepts():
    """settings.py stays free of the engine's imports (torch), so it repeats two of the engine's
    names; this keeps them one definition in effect."""
    from fourds_ros.engine import BACKENDS, DEFAULT_NUM_QUERIES
    from fourds_ros.engine.factory import PRECISIONS
    from fourds_ros.perception import settings

    assert settings.BACKENDS == BACKENDS
    assert settings.PRECISIONS == PRECISIONS
    assert settings.ModelSettings().num_queries == DEFAULT_NUM_QUERIES


def test_declared_constraints_say_what_configure_takes():
    """hop was declared "in [0, 1024]" while configure takes 0 or 1..the model's clip length;
    output_qos said "every output topic" while /tf stays DEFAULT; max_tracks said "<= num_queries"
    while a larger value is taken and clamped to num_queries."""
    specs = {spec.name: spec for spec in parameter_specs()}
    assert specs["hop"].constraints == "0, or 1..the model's clip length T (8 for the shipped model), checked at configure"
    with pytest.raises(ValueError, match=r"hop must be in \[0, 1024\], got -1"):  # the bound checked here
        PerceptionSettings.from_params(hop=-1)
    assert "every output topic but /tf, which stays reliable (DEFAULT)" in specs["output_qos"].description
    assert "the smaller of this and num_queries is used" in specs["max_tracks"].description
    assert PerceptionSettings.from_params(max_tracks=500, num_queries=64).tracks.max_tracks == 500
    assert _shipped_clip_length() == 8  # the number the hop text gives


def test_every_declared_range_takes_its_ends_and_refuses_what_it_leaves_out():
    """Each number's declared constraint is what check() does: a closed end is taken, an open end (inf) and
    non-finite values are refused, and the message names the same range (17 parameters said "in [0, inf]"
    and refused inf)."""
    numbers = [spec for spec in parameter_specs() if spec.type in (int, float) and not spec.allowed]
    assert len(numbers) > 30
    for spec in numbers:
        text = spec.constraints
        assert "inf]" not in text and "[-inf" not in text, (spec.name, text)
        for bad in (float("inf"), float("-inf"), float("nan")):
            expected = f"{spec.name} must be {text}" if spec.type is float else f"{spec.name} must be an integer"
            with pytest.raises(ValueError, match=re.escape(expected)):
                spec.check(bad)
        for end in (spec.low, spec.high):
            if end is not None:
                assert spec.check(end) == end, spec.name


def _shipped_clip_length() -> int:
    import json

    return json.loads((REPO / "models" / "fourds_default" / "config.json").read_text())["num_frames"]


@pytest.mark.parametrize("name", ["pose_rotation_var_floor", "pose_translation_var_floor"])
def test_a_zero_variance_floor_is_refused(name):
    """The floors allowed 0: a still camera then published an all-zero twist covariance (a fuzz of the pose
    stages, session 67), which an EKF takes as exact. At least 1e-12 now; the default stands."""
    with pytest.raises(ValueError, match=name):
        PerceptionSettings.from_params(**{name: 0.0})
    assert PerceptionSettings.from_params(**{name: 1e-12}).pose.rotation_var_floor > 0
