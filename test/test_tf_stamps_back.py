"""A live camera's stamps stepping back while the node's clock does not (its driver restarted with its own clock,
a PTP resync, a device clock reset): the new odometry chain's TF is withheld until its stamps pass the newest
transform published, counted on /diagnostics (perception/tf_stamps.py). Before, the new chain's odom -> base_link
went out at times tf2 users already held (44 of 70 transforms in a 3 s step back: TF_REPEATED_DATA, and a lookup
there teleported to the new chain's pose). Across a jump of the node's clock (a bag loop under use_sim_time)
tf2 listeners clear their buffers, and TF goes on as before."""

from __future__ import annotations

import types

import numpy as np
import pytest

from fourds_ros.perception.health import NodeHealth
from fourds_ros.perception.tf_stamps import TF_STAMPS_BACK, TfStampGate, rewrites_tf_past
from fourds_ros.ros.harness import run_node

S = 1_000_000_000


def make_gate():
    warned = []
    return TfStampGate("odom -> base_link", lambda kind, message: warned.append((kind, message))), warned


def test_a_stamp_at_or_before_the_newest_published_rewrites_the_past():
    assert not rewrites_tf_past(5 * S, None)  # nothing published yet
    assert rewrites_tf_past(5 * S, 5 * S)  # the same stamp again: TF_REPEATED_DATA
    assert rewrites_tf_past(2 * S, 5 * S)
    assert not rewrites_tf_past(5 * S + 1, 5 * S)


def test_stamps_stepping_back_are_withheld_and_counted_until_they_pass_the_newest():
    gate, warned = make_gate()
    assert all(gate.admit(t * S, (0, 0)) for t in (10, 11, 12))
    # a step back of 3 s, no clock jump: withheld, each one counted, until past 12 s
    assert [gate.admit(t * S, (0, 0)) for t in (9, 10, 11, 12)] == [False] * 4
    assert [kind for kind, _ in warned] == [TF_STAMPS_BACK] * 4 and gate.withheld == 4
    assert warned[0][1].startswith("odom -> base_link stamped 3.000 s before the newest one published withheld")
    assert "stepped back while this node's clock did not" in warned[0][1]
    assert gate.admit(12 * S + 1, (0, 0)) and gate.newest_ns == 12 * S + 1  # resumed
    assert not gate.admit(12 * S + 1, (0, 0)) and gate.withheld == 5


def test_a_clock_jump_forgets_the_newest_and_frames_taken_in_before_it_do_not_set_it():
    """A bag loop under use_sim_time: tf2 listeners clear their buffers at the /clock jump, so the new loop's
    transforms go out. A clip of the old loop still in inference when the clock jumped goes out as before, but
    its stamp (near the bag's end) must not hold the whole new loop back."""
    gate, warned = make_gate()
    assert gate.admit(100 * S, (0, 0))
    assert gate.admit(101 * S, (1, 0))  # taken in before the jump, published after it: sent, not the newest
    assert gate.newest_ns is None
    assert gate.admit(90 * S, (1, 1)) and gate.admit(91 * S, (1, 1))  # the new loop
    assert not gate.admit(90 * S, (1, 1)) and warned  # within the new clock, a step back is withheld again


class RecordingNode:
    """What create_publishers asks of the node: its publishers (the /tf one records what it sends) and health."""

    def __init__(self, health):
        self.health, self.sent = health, []

    def create_publisher(self, kind, topic, qos):
        return types.SimpleNamespace(publish=self.sent.append, topic=topic)


def test_the_node_tf_publish_gates_on_the_health_clock_jumps():
    """create_publishers wires the gate to the node's NodeHealth: the frames' arrival and the node's clock jumps
    (rclpy's jump callback calls health.clock_jumped)."""
    pytest.importorskip("tf2_msgs.msg", reason="tf2_msgs missing: run tools/build_tf2_msgs.sh <venv>")
    from fourds_ros.perception.settings import PerceptionSettings
    from fourds_ros.ros import convert
    from fourds_ros.ros.transforms import create_publishers

    health = NodeHealth(lambda text: None, now_ns=lambda: 0)
    node = RecordingNode(health)
    _, tf_publish, _ = create_publishers(node, PerceptionSettings())

    def frame(t_s: float) -> list:
        health.frame_received(int(t_s * S))
        return [convert.transform_stamped(np.eye(4), int(t_s * S), "odom", "base_link")]

    for t in (10.0, 10.1, 7.1, 7.2):  # a step back of 3 s
        tf_publish(frame(t))
    assert [convert.stamp_to_ns(m.transforms[0].header.stamp) for m in node.sent] == [10 * S, int(10.1 * S)]
    assert health.errors[TF_STAMPS_BACK] == 2
    before_jump = frame(10.3)  # taken in before the clock jump, its TF sent after it
    health.clock_jumped()
    tf_publish(before_jump)
    tf_publish(frame(7.3))
    assert len(node.sent) == 4 and health.errors[TF_STAMPS_BACK] == 2


def test_a_live_camera_stepping_back_3_s_publishes_no_tf_into_the_past(tiny_model_dir, ros_env, tmp_path):
    """Real DDS, the node's clock the system's (no jump): 10 frames, then 60 stamped 3 s before they are sent (2.3 s
    behind the first ten's newest). Every frame gets depth and odometry; /tf gets no transform at or before the
    newest one it already had, each one withheld is counted on /diagnostics (WARN), and TF resumes once the stamps
    pass the newest published."""
    pytest.importorskip("tf2_msgs.msg", reason="tf2_msgs missing: run tools/build_tf2_msgs.sh <venv>")
    size = [120, 160]
    plan = [{"wait_for": "/diagnostics", "timeout": 60},
            {"wait_for_subscribers": ["image", "camera_info"], "timeout": 60},
            {"frames": 10, "rate": 15, "size": size},
            {"frames": 60, "rate": 15, "size": size, "stamp_offset_s": -3.0},
            {"wait_idle": True, "timeout": 30}, {"wait": 1.0}]
    params = {"model": str(tiny_model_dir), "num_queries": 16, "hop": 2, "image_qos": "DEFAULT",
              "diagnostics_period_s": 0.5}
    run = run_node(plan, params, tmp_path, ros_env)
    assert run.node_alive_after_plan and run.node_returncode == 0, run.node_log
    sent = [p["stamp_ns"] for p in run.result["published"]]
    first, second = sent[:10], sent[10:]
    assert max(first) - 3 * S < min(second) < max(first) - 2 * S, sent
    described = {d["stamp_ns"] for d in run.records("depth/image")}
    assert described == set(sent) and {o["stamp_ns"] for o in run.records("odometry")} == described
    tf = [t["stamp_ns"] for r in run.records("/tf") for t in r["transforms"]
          if (t["parent"], t["child"]) == ("odom", "base_link")]
    assert all(b > a for a, b in zip(tf, tf[1:])), [(s - sent[0]) / S for s in tf]  # never into the past
    newest_first = max(s for s in tf if s in first)
    withheld = [s for s in second if s <= newest_first]
    assert len(withheld) > 20 and [s for s in tf if s in second] == [s for s in second if s > newest_first]
    diag = run.last_diagnostics()
    assert diag["values"]["errors_tf_stamps_back"] == str(len(withheld)), diag
    assert diag["level"] == 1 and "tf_stamps_back" in diag["message"], diag
    assert "[tf_stamps_back] odom -> base_link stamped" in run.node_log, run.node_log


def test_a_clock_step_back_under_one_second_is_a_jump_as_tf2_takes_it():
    """A bag of 1 s or less on `ros2 bag play --loop --clock`: /clock steps back by 0.8 s. tf2_ros's Buffer clears
    at any step back, so the node's TF gate must forget its newest stamp there too: with a 1 s threshold it held
    back odom -> base_link for every loop after the first, with a WARN blaming the camera."""
    from rclpy.clock import ROSClock
    from rclpy.time import Time

    from fourds_ros.ros.node_lifetime import watch_clock_jumps

    clock = ROSClock()
    clock._set_ros_time_is_active(True)
    clock.set_ros_time_override(Time(seconds=100))
    jumps = []
    node = types.SimpleNamespace(get_clock=lambda: clock)
    handle = watch_clock_jumps(node, lambda: jumps.append(1))
    clock.set_ros_time_override(Time(seconds=100, nanoseconds=800_000_000))  # the bag plays 0.8 s
    assert jumps == []
    clock.set_ros_time_override(Time(seconds=100))  # and loops
    assert jumps == [1]
    del handle
