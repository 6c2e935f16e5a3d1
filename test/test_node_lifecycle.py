"""Lifecycle transitions and parameters from YAML on real DDS; the launch plan's command line."""

import shutil
import subprocess
import sys

import pytest
import yaml

from fourds_ros.ros.harness import process_environment, run_node, write_params
from fourds_ros.ros.launch_logic import PARAMS_KEY, command_line, node_plan, perception_node_plan

from .conftest import REPO, stop_process


def test_lifecycle_transitions_with_yaml_params(tiny_model_dir, ros_env, tmp_path):
    params_file = tmp_path / "perception.yaml"
    params = yaml.safe_load((REPO / "config" / "perception.yaml").read_text())
    params[PARAMS_KEY]["ros__parameters"].update(
        model=str(tiny_model_dir), num_queries=16, autostart=False, hop=4, odom_frame="test_odom",
        base_frame="test_base", publish_tf=False, enable_tracks=False,
        image_qos="DEFAULT")  # reliable input: every frame of the active window arrives
    params_file.write_text(yaml.safe_dump(params))
    plan = [
        # bond_states[0] below must be a /diagnostics of the node before activation: one received, not one likely
        {"wait_for": "/diagnostics", "timeout": 60},
        {"get_state": True},
        {"frames": 4, "rate": 20},  # unconfigured: ignored
        {"lifecycle": "configure"}, {"get_state": True},
        # the active node's subscriptions matched, not a fixed 1.5 s: frames sent before the match are lost
        {"lifecycle": "activate"}, {"get_state": True}, {"wait_for_subscribers": ["image", "camera_info"], "timeout": 60},
        {"frames": 8, "rate": 20}, {"wait_for": "odometry", "count": 8, "timeout": 20},
        {"get_parameters": ["hop", "odom_frame", "publish_tf", "autostart"]},
        {"set_parameters": {"hop": 3, "use_sim_time": False}},  # configured: hop would do nothing
        {"lifecycle": "deactivate"}, {"get_state": True},
        {"frames": 8, "rate": 20}, {"wait": 1.0},  # inactive: no subscriptions, no outputs
        {"lifecycle": "cleanup"}, {"get_state": True},
        {"set_parameters": {"hop": -1}}, {"set_parameters": {"hop": 3}},  # unconfigured: checked, applied
        {"lifecycle": "configure"}, {"get_parameters": ["hop"]},
    ]
    run = run_node(plan, {}, tmp_path / "run", ros_env, params_file=params_file)
    assert run.node_alive_after_plan and run.node_returncode == 0, run.node_log
    events = run.result["events"]
    states = [e["state"] for e in events if "state" in e]
    assert states == ["unconfigured", "inactive", "active", "inactive", "unconfigured"]
    assert all(e["success"] for e in events if "lifecycle" in e)
    got = [e["parameters"] for e in events if "parameters" in e]
    assert got == [{"hop": 4, "odom_frame": "test_odom", "publish_tf": False, "autostart": False}, {"hop": 3}]
    # `ros2 param set` while configured is refused with how to apply it (it used to succeed and do
    # nothing); use_sim_time is rclpy's own and passes. Unconfigured, a bad value is refused naming
    # the parameter, a good one is applied at the next configure.
    active_set, bad_set, good_set = [e["set_parameters"] for e in events if "set_parameters" in e]
    assert not active_set["hop"]["successful"] and "read at configure" in active_set["hop"]["reason"]
    assert active_set["use_sim_time"]["successful"]
    assert not bad_set["hop"]["successful"] and "hop" in bad_set["hop"]["reason"]
    assert good_set["hop"]["successful"] and "hop 3" in run.node_log, run.node_log
    active = {p["stamp_ns"] for p in run.result["published"][4:12]}
    odometry = run.records("odometry")
    assert len(odometry) == 8 and {o["stamp_ns"] for o in odometry} == active
    assert all(o["frame_id"] == "test_odom" and o["child_frame_id"] == "test_base" for o in odometry)
    assert not run.records("/tf")  # publish_tf: false leaves TF to robot_localization
    assert not run.records("tracks")  # enable_tracks: false
    # The bond nav2_lifecycle_manager waits for is started on activation (bondpy where ROS is
    # installed; here, without it, the node says what the manager needs instead).
    bond_states = [st["values"]["manager_bond"] for r in run.records("/diagnostics") for st in r["status"]]
    try:
        import bondpy  # noqa: F401
        expected = "started on bond, id fourds_perception"
    except ImportError:
        expected = "unavailable (bondpy not installed; nav2_lifecycle_manager needs bond_timeout: 0.0)"
    assert bond_states[0] == "not started (inactive)" and expected in bond_states, bond_states


def test_launch_plan_runs_node_in_namespace(tiny_model_dir, ros_env, tmp_path):
    # Reliable input, as in the other node tests: best-effort 640x480 frames can be lost when the
    # two CI cores are busy, and this test is about the plan's namespace, not about QoS.
    params = yaml.safe_load((REPO / "config" / "perception.yaml").read_text())
    params[PARAMS_KEY]["ros__parameters"]["image_qos"] = "DEFAULT"
    params_file = tmp_path / "perception.yaml"
    params_file.write_text(yaml.safe_dump(params))
    plan = perception_node_plan(params_file=str(params_file), namespace="robot", model=str(tiny_model_dir),
                                log_level="info")
    argv = command_line(plan, executable=shutil.which("perception_node", path=str(REPO / ".venv" / "bin")))
    probe_plan = [{"wait_for": "/diagnostics", "timeout": 60}, {"wait_for_subscribers": ["image", "camera_info"], "timeout": 60},
                  {"frames": 8, "rate": 20},
                  {"wait_for": "depth/image", "count": 4, "timeout": 20}, {"get_parameters": ["image_qos"]}]
    run = run_node(probe_plan, {}, tmp_path, ros_env, namespace="robot", cmd=argv)
    assert run.node_alive_after_plan, run.node_log
    # The params file reaches the node in its namespace (a plain node-name key did not).
    assert run.result["events"][-1] == {"parameters": {"image_qos": "DEFAULT"}}
    assert len(run.records("depth/image")) >= 4  # received on /robot/depth


def test_deactivation_describes_every_frame_it_took_in(tiny_model_dir, ros_env, tmp_path):
    """Deactivated while images wait for a first camera_info (a camera that sends none, within the
    startup wait) and the camera mount is still being looked up: the transition succeeds, and every
    frame taken in is described, those after the last clip by a clip of the last frames, so none is
    left uncounted after cleanup. (The mount was destroyed before the waiting images were drained,
    which asked it and raised: the transition failed and left the node half released.)"""
    plan = [{"wait_for": "/diagnostics", "timeout": 60},
            {"wait_for_subscribers": ["image"], "timeout": 60},
            {"frames": 10, "rate": 20, "size": [120, 160], "camera_info": False},
            {"wait": 0.5},
            {"lifecycle": "deactivate"}, {"get_state": True},
            {"wait_for": "depth/image", "count": 10, "timeout": 30},
            {"lifecycle": "cleanup"}, {"get_state": True}, {"wait": 1.5}]
    params = {"model": str(tiny_model_dir), "num_queries": 16, "hop": 4, "camera_info_startup_wait_s": 60.0,
              "camera_mount_timeout_s": 60.0, "max_waiting_clips": 8, "image_qos": "DEFAULT"}
    run = run_node(plan, params, tmp_path, ros_env)
    assert run.node_alive_after_plan and run.node_returncode == 0, run.node_log
    events = run.result["events"]
    assert [e["success"] for e in events if "lifecycle" in e] == [True, True], run.node_log
    assert [e["state"] for e in events if "state" in e] == ["inactive", "unconfigured"]
    sent = {p["stamp_ns"] for p in run.result["published"]}
    assert {d["stamp_ns"] for d in run.records("depth/image")} == sent
    values = run.last_diagnostics()["values"]
    assert values["frames_in"] == "10" and values["frames_out"] == "10", values
    assert values["frames_unaccounted"] == "0", values


def test_frames_fewer_than_a_clip_are_described_before_cleanup(tiny_model_dir, ros_env, tmp_path):
    """3 frames in, a clip takes 4. No clip described them (and cleanup counted them as discarded at release,
    session 51); since session 63 the flush (idle, or deactivation's) describes a sequence shorter than a clip,
    its last frame held still for the missing ones: each of the 3 gets its depth, none is discarded."""
    plan = [{"wait_for": "/diagnostics", "timeout": 60},
            {"wait_for_subscribers": ["image", "camera_info"], "timeout": 60},
            {"frames": 3, "rate": 20, "size": [120, 160]}, {"wait": 0.3},
            {"lifecycle": "deactivate"}, {"wait_for": "depth/image", "count": 3, "timeout": 30},
            {"lifecycle": "cleanup"}, {"get_state": True}, {"wait": 1.5}]
    params = {"model": str(tiny_model_dir), "num_queries": 16, "hop": 2, "image_qos": "DEFAULT"}
    run = run_node(plan, params, tmp_path, ros_env)
    assert run.node_alive_after_plan and run.node_returncode == 0, run.node_log
    assert [e["state"] for e in run.result["events"] if "state" in e] == ["unconfigured"], run.node_log
    assert {d["stamp_ns"] for d in run.records("depth/image")} == {p["stamp_ns"] for p in run.result["published"]}
    values = run.last_diagnostics()["values"]
    assert values["frames_in"] == "3" and values["frames_out"] == "3", values
    assert values["frames_discarded_at_release"] == "0" and values["frames_unaccounted"] == "0", values


def test_the_published_camera_mount_has_one_publisher_whatever_the_activations(tiny_model_dir, ros_env, tmp_path):
    """publish_camera_mount: the mount goes out on /tf_static from one publisher while active, none
    while inactive; each activation used to add one, and late subscribers got every one's message."""
    frames = [{"wait_for_subscribers": ["image", "camera_info"], "timeout": 60},
              {"frames": 4, "rate": 20, "size": [120, 160]}, {"wait": 1.0},
              {"count_publishers": "/tf_static", "expect": 1}]
    plan = [{"wait_for": "/diagnostics", "timeout": 60}, *frames,
            {"lifecycle": "deactivate"}, {"count_publishers": "/tf_static", "expect": 0},
            {"lifecycle": "activate"}, *frames]
    params = {"model": str(tiny_model_dir), "num_queries": 16, "hop": 4, "publish_camera_mount": True,
              "image_qos": "DEFAULT"}
    run = run_node(plan, params, tmp_path, ros_env)
    assert run.node_alive_after_plan and run.node_returncode == 0, run.node_log
    counts = [e["publishers"]["/tf_static"] for e in run.result["events"] if "publishers" in e]
    assert counts == [1, 0, 1], counts


# The node run as `python -m fourds_ros.ros.perception_node` does, after a set-up line (run_node's cmd).
def node_command(setup: str) -> list[str]:
    return [sys.executable, "-c", f"import sys\n{setup}\nfrom fourds_ros.ros.perception_node import main\nsys.exit(main())"]


def run_node_stopping_itself(setup: str, tiny_model_dir, ros_env, tmp_path, timeout_s: float) -> tuple[int, str]:
    """The node (tiny model, autostart) with `setup` run first, which makes it stop itself (a signal it sends
    itself): -> (its exit code, its log)."""
    params_file = write_params(tmp_path / "params.yaml", {"model": str(tiny_model_dir), "num_queries": 16})
    argv = command_line(node_plan([params_file]), executable=node_command(setup))
    with open(tmp_path / "node.log", "w") as log:  # no probe: the node stops itself
        node = subprocess.Popen(argv, env=process_environment(ros_env), stdout=log, stderr=subprocess.STDOUT)
        try:
            node.wait(timeout=timeout_s)
        finally:
            stop_process(node)
    return node.returncode, (tmp_path / "node.log").read_text()


# An install that skipped tools/build_tf2_msgs.sh: configure allows it (TF is then not published).
WITHOUT_TF2_MSGS = 'sys.modules["tf2_msgs"] = sys.modules["tf2_msgs.msg"] = None'


@pytest.mark.parametrize("publish_camera_mount", [False, True])
def test_without_tf2_msgs_the_mount_is_base_from_camera_and_the_node_runs(tiny_model_dir, ros_env, tmp_path,
                                                                         publish_camera_mount):
    """Looking the mount up (camera_mount_timeout_s) or publishing it (publish_camera_mount) needs
    tf2_msgs: its ImportError made activation fail with the inputs it had made left alive (a second
    configure then doubled the worker and the publishers), and, publishing, ended the executor in the
    first image callback. Now the mount is the base_from_camera parameter, and /diagnostics says why."""
    plan = [{"wait_for": "/diagnostics", "timeout": 60}, {"lifecycle": "configure"}, {"lifecycle": "activate"},
            {"get_state": True}, {"wait_for_subscribers": ["image", "camera_info"], "timeout": 60},
            {"frames": 8, "rate": 20, "size": [120, 160]}, {"wait_for": "odometry", "count": 4, "timeout": 20},
            {"wait": 1.5}, {"get_state": True}]
    params = {"model": str(tiny_model_dir), "num_queries": 16, "hop": 4, "autostart": False, "image_qos": "DEFAULT",
              "camera_mount_timeout_s": 2.0, "publish_camera_mount": publish_camera_mount}
    run = run_node(plan, params, tmp_path, ros_env, cmd=node_command(WITHOUT_TF2_MSGS))
    assert run.node_alive_after_plan and run.node_returncode == 0, run.node_log
    events = run.result["events"]
    assert [e["success"] for e in events if "lifecycle" in e] == [True, True], run.node_log
    assert [e["state"] for e in events if "state" in e] == ["active", "active"], run.node_log
    assert len(run.records("odometry")) >= 4, run.node_log
    values = run.last_diagnostics()["values"]
    assert values["camera_mount"] == "base_from_camera parameter (tf2_msgs missing: run tools/build_tf2_msgs.sh)", \
        values
    assert run.node_log.count("using base_from_camera (tf2_msgs missing") == 1, run.node_log


# The first activation fails where it builds the camera mount, after it has subscribed to the inputs.
FIRST_MOUNT_FAILS = """\
from fourds_ros.ros import perception_node
real_mount, mounts = perception_node.CameraMount, []
def first_fails(*args):
    mounts.append(args)
    if len(mounts) == 1:
        raise RuntimeError("injected mount failure")
    return real_mount(*args)
perception_node.CameraMount = first_fails"""


def test_a_failed_activation_undoes_its_inputs_and_a_second_one_works(tiny_model_dir, ros_env, tmp_path):
    """An exception half-way through activation went to rclpy (ERROR: back to unconfigured) with the
    subscriptions it had made alive, and the node described and published frames while not active.
    Now the transition returns FAILURE: the node stays inactive, says why, takes in no frame, and
    activates on the next try."""
    burst = {"frames": 6, "rate": 20, "size": [120, 160]}
    plan = [{"wait_for": "/diagnostics", "timeout": 60}, {"lifecycle": "configure"}, {"lifecycle": "activate"},
            {"get_state": True}, {"wait": 2.0}, burst, {"wait": 1.5},  # time to match a subscription left behind
            {"lifecycle": "activate"}, {"get_state": True},
            {"wait_for_subscribers": ["image", "camera_info"], "timeout": 60}, burst,
            {"wait_for": "odometry", "count": 2, "timeout": 20}, {"count_publishers": "/odometry", "expect": 1},
            # frames_in 6 below: two odometry messages say only that the first clip's 4 frames were taken in
            {"wait_idle": True, "timeout": 30}]
    params = {"model": str(tiny_model_dir), "num_queries": 16, "hop": 2, "autostart": False, "image_qos": "DEFAULT"}
    run = run_node(plan, params, tmp_path, ros_env, cmd=node_command(FIRST_MOUNT_FAILS))
    assert run.node_alive_after_plan and run.node_returncode == 0, run.node_log
    events = run.result["events"]
    assert [e["success"] for e in events if "lifecycle" in e] == [True, False, True], run.node_log
    assert [e["state"] for e in events if "state" in e] == ["inactive", "active"], run.node_log
    assert "activate failed: RuntimeError: injected mount failure" in run.node_log, run.node_log
    failed = [s for r in run.records("/diagnostics") for s in r["status"] if "activate failed" in s["message"]]
    assert failed and all(s["level"] == 2 for s in failed), failed  # ERROR, with the reason, while inactive
    second = {p["stamp_ns"] for p in run.result["published"][6:]}
    odometry = run.records("odometry")
    assert odometry and {o["stamp_ns"] for o in odometry} <= second, odometry  # nothing of the first burst
    assert [e["publishers"]["/odometry"] for e in events if "publishers" in e] == [1]
    diag = run.last_diagnostics()
    assert diag["level"] < 2 and diag["values"]["frames_in"] == "6", diag  # the first burst reached no callback



def test_a_failed_activation_is_no_error_once_the_node_is_cleaned_up(tiny_model_dir, ros_env, tmp_path):
    """After a failed activation and a cleanup, /diagnostics still said ERROR "activate failed" on an
    unconfigured node, which nothing was wrong with any more (session 55's review)."""
    plan = [{"wait_for": "/diagnostics", "timeout": 60}, {"lifecycle": "configure"}, {"lifecycle": "activate"},
            {"wait": 1.5}, {"lifecycle": "cleanup"}, {"get_state": True}, {"wait": 2.5}]
    params = {"model": str(tiny_model_dir), "num_queries": 16, "autostart": False}
    run = run_node(plan, params, tmp_path, ros_env, cmd=node_command(FIRST_MOUNT_FAILS))
    assert run.node_alive_after_plan and run.node_returncode == 0, run.node_log
    events = run.result["events"]
    assert [e["success"] for e in events if "lifecycle" in e] == [True, False, True], run.node_log
    assert [s["level"] for r in run.records("/diagnostics") for s in r["status"]
            if "activate failed" in s["message"]], run.node_log  # the failure was reported while it held
    diag = run.last_diagnostics()
    assert diag["level"] < 2 and "activate failed" not in diag["message"], diag


# The signal arrives while autostart's configure loads the model (a Ctrl-C or SIGTERM while the shipped
# model warms up, which takes seconds). No pipeline comes back: with the context shut down, configure
# fails at its first publisher, before it uses one (and the test does not wait for torch to load).
# rclpy shuts the context down from its own signal thread: the load (seconds) outlasts that, so the stand-in
# returns once it has (returning at once, it lost that race under load: configure went on with no pipeline).
SIGNAL_DURING_CONFIGURE = """\
import os, signal, time
import rclpy
from fourds_ros.ros import perception_node
def signalled(*args, **kwargs):
    print("injected: {name} during configure", flush=True)
    os.kill(os.getpid(), signal.{name})
    deadline = time.monotonic() + 30
    while rclpy.ok() and time.monotonic() < deadline:
        time.sleep(0.01)
    return None, "none"
perception_node.create_pipeline = signalled"""


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_signal_during_autostarts_configure_exits_cleanly(tiny_model_dir, ros_env, tmp_path, name):
    """autostart's configure ran outside the protected spin: a Ctrl-C during it ended the process with a
    KeyboardInterrupt traceback (exit code -2), and a SIGTERM logged ERROR "configure failed: RCLError ...
    context is invalid" for a configure that the shutdown, not a fault, had ended."""
    returncode, node_log = run_node_stopping_itself(SIGNAL_DURING_CONFIGURE.format(name=name), tiny_model_dir,
                                                    ros_env, tmp_path, 60)
    assert f"injected: {name} during configure" in node_log and returncode == 0, node_log
    assert "Traceback" not in node_log, node_log
    assert not [line for line in node_log.splitlines() if "[ERROR]" in line and "configure failed" in line], node_log


def test_a_clip_longer_than_cleanup_waits_is_dropped_not_reported_by_the_next_configuration(tiny_model_dir,
                                                                                           ros_env, tmp_path):
    """cleanup waits RELEASE_WAIT_S for the running clip (10 s; 0.5 s here). It used to go on silently, destroy
    the publishers under the clip, and the clip's late failure (WARN "publishing depth failed", its frames
    counted failed) came out in the next configuration. Now the timeout is logged, the clip's frames are
    counted as discarded at release, and its results are dropped."""
    plan = [{"wait_for": "/diagnostics", "timeout": 60}, {"wait_for_subscribers": ["image", "camera_info"], "timeout": 60},
            {"frames": 4, "rate": 20, "size": [120, 160]}, {"wait": 0.5},  # one clip, in inference for 2 s
            {"lifecycle": "deactivate"}, {"lifecycle": "cleanup"},  # gives up on it after 0.5 s
            {"lifecycle": "configure"}, {"lifecycle": "activate"},  # the clip ends during the 2 s warm-up
            {"wait": 1.5}]
    params = {"model": str(tiny_model_dir), "num_queries": 16, "hop": 4, "image_qos": "DEFAULT",
              "debug_inference_delay_ms": 2000.0}
    run = run_node(plan, params, tmp_path, ros_env,
                   cmd=node_command("from fourds_ros.ros import perception_node\nperception_node.RELEASE_WAIT_S = 0.5"))
    assert run.node_alive_after_plan and run.node_returncode == 0, run.node_log
    assert [e["success"] for e in run.result["events"] if "lifecycle" in e] == [True] * 4, run.node_log
    assert "the running clip did not end within 0.5 s" in run.node_log, run.node_log
    late = run.node_log.split("the running clip did not end")[1]  # the old clip's end, and the new configuration
    assert "publishing" not in late and "[worker]" not in late, run.node_log
    values = run.last_diagnostics()["values"]
    assert values["state"] == "active" and values["frames_in"] == "4", values
    assert values["frames_discarded_at_release"] == "4" and values["frames_failed"] == "0", values
    assert values["frames_unaccounted"] == "0" and "errors_publish" not in values, values


def test_a_params_file_with_two_bad_values_is_fixed_one_ros2_param_set_at_a_time(tiny_model_dir, ros_env, tmp_path):
    """Configure fails naming the first bad value; `ros2 param set` of it was refused because of the
    other one, so the node could not be fixed without a restart. A change that breaks a valid set is
    still refused."""
    plan = [{"wait_for": "/diagnostics", "timeout": 60}, {"lifecycle": "configure"},
            {"set_parameters": {"hop": 3}}, {"set_parameters": {"max_depth": 100.0}}, {"lifecycle": "configure"},
            {"lifecycle": "cleanup"}, {"set_parameters": {"max_depth": -5.0}}, {"get_parameters": ["hop", "max_depth"]}]
    params = {"model": str(tiny_model_dir), "num_queries": 16, "autostart": False, "hop": -1, "max_depth": -5.0}
    run = run_node(plan, params, tmp_path, ros_env)
    assert run.node_alive_after_plan and run.node_returncode == 0, run.node_log
    events = run.result["events"]
    assert [e["success"] for e in events if "lifecycle" in e] == [False, True, True], run.node_log
    fix_hop, fix_depth, break_depth = [e["set_parameters"] for e in events if "set_parameters" in e]
    assert fix_hop["hop"]["successful"] and fix_depth["max_depth"]["successful"], (fix_hop, fix_depth)
    assert not break_depth["max_depth"]["successful"] and "max_depth" in break_depth["max_depth"]["reason"]
    assert events[-1] == {"parameters": {"hop": 3, "max_depth": 100.0}}
