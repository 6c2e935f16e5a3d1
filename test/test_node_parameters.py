"""`ros2 param set` against the node's lifecycle state, and the settings read when the process starts,
on a node run in this process (the probe has no shutdown transition, and these need no frames)."""

from __future__ import annotations

import contextlib

import pytest

from fourds_ros.perception.settings import parameter_specs


@contextlib.contextmanager
def perception_node(ros_env, ros_args: list[str]):
    """A PerceptionNode in its own rclpy context and DDS domain, with these --ros-args (unspun: the
    tests drive its transitions and parameters directly)."""
    import rclpy

    from fourds_ros.ros.perception_node import PerceptionNode

    context = rclpy.Context()
    rclpy.init(args=["test", "--ros-args", *ros_args], context=context, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    node = PerceptionNode(context=context)
    try:
        yield node
    finally:
        node._release()  # the inference worker's thread, whatever state a failed assertion left
        node.destroy_node()
        rclpy.try_shutdown(context=context)


def dash_p(params: dict) -> list[str]:
    return [arg for name, value in params.items() for arg in ("-p", f"{name}:={value}")]


def set_one(node, name: str, value) -> tuple[bool, str]:
    from rclpy.parameter import Parameter

    (result,) = node.set_parameters([Parameter(name, value=value)])
    return result.successful, result.reason


def state(node) -> str:
    return node._state_machine.current_state[1]


@pytest.fixture
def base_params(tiny_model_dir):
    return {"model": str(tiny_model_dir), "num_queries": 16, "backend": "torch", "autostart": "false"}


def test_after_shutdown_a_change_is_refused_and_inactive_names_valid_transitions(ros_env, base_params):
    """After shutdown the guard took the node for unconfigured (no pipeline) and accepted a change no
    configure would ever read. Inactive, the reason told to deactivate first: no transition of an
    inactive node."""
    from rclpy.lifecycle import TransitionCallbackReturn

    with perception_node(ros_env, dash_p(base_params)) as node:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS and state(node) == "inactive"
        ok, reason = set_one(node, "hop", 2)
        assert not ok and reason == "hop: read at configure; clean up the node, set it, then configure (and activate) again"
        assert node.trigger_shutdown() == TransitionCallbackReturn.SUCCESS and state(node) == "finalized"
        ok, reason = set_one(node, "hop", 2)
        assert not ok and reason == "hop: node finalized: restart the process"
        assert node.get_parameter("hop").value == 0


def test_an_active_node_takes_its_own_values_back_and_refuses_others(ros_env, base_params):
    """`ros2 param load` of the node's own dump failed on an active node: each value, equal to the one
    it had, was refused as a change. Nothing changes: accepted; another value is still refused."""
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    with perception_node(ros_env, dash_p({**base_params, "hop": 3})) as node:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS and state(node) == "active"
        assert set_one(node, "hop", 3) == (True, "")
        ok, reason = set_one(node, "hop", 2)
        assert not ok and reason.startswith("hop: read at configure; deactivate"), reason
        # The whole dump, arrays (exclude_boxes, base_from_camera) and read-at-start values included.
        dump = [Parameter(spec.name, value=node.get_parameter(spec.name).value) for spec in parameter_specs()]
        results = node.set_parameters(dump)
        assert all(r.successful for r in results), [(p.name, r.reason) for p, r in zip(dump, results)]
        assert node.get_parameter("hop").value == 3
        node.trigger_deactivate()
        node.trigger_cleanup()
