"""`ros2 param set` against the node's lifecycle state, and the settings read when the process starts,
on a node run in this process (the probe has no shutdown transition, and these need no frames)."""

from __future__ import annotations

import contextlib
import sys

import pytest

from fourds_ros.perception.settings import parameter_specs
from fourds_ros.ros_env import run_ros_process


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


def test_a_params_file_with_an_empty_list_and_a_misspelt_name(ros_env, tiny_model_dir, tmp_path, capfd):
    """`exclude_boxes: []` in a params file failed configure ("must be a list of numbers, got None": rcl reads
    an empty list as not set) while `ros2 param set` took it; a misspelt name was dropped without a word.
    Now the empty list is no boxes, and the name is warned of at start."""
    from rclpy.lifecycle import TransitionCallbackReturn

    path = tmp_path / "params.yaml"
    path.write_text(f"/**:\n  ros__parameters:\n    model: {tiny_model_dir}\n    num_queries: 16\n    backend: torch\n"
                    "    autostart: false\n    exclude_boxes: []\n    metric_scale_sorce: reference_odometry\n")
    with perception_node(ros_env, ["--params-file", str(path)]) as node:
        assert node.get_parameter("exclude_boxes").value is None  # rcl's reading of []
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS and state(node) == "inactive"
        assert node.settings.inputs.exclude_boxes == []
    err = capfd.readouterr().err
    assert "['metric_scale_sorce']" in err and "none of this node's" in err


def test_a_list_mixing_whole_numbers_and_decimals_is_one_line_not_a_traceback(ros_env):
    """rcl refuses `base_from_camera: [0.1, 0, 0.3, ...]` (a list takes one type) before the node exists: the
    process died with a traceback. Now one line says why and how to write it, exit code 2."""
    import sys

    done = run_ros_process([sys.executable, "-m", "fourds_ros.ros.perception_node", "--ros-args", "-p",
                           "base_from_camera:=[0.1, 0, 0.3, -0.5, 0.5, -0.5, 0.5]"], ros_env, 60)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "write every number with a decimal point" in done.stderr


def test_a_missing_params_file_is_one_line_without_the_mixed_list_advice(ros_env, tmp_path):
    """A mistyped --params-file path (or a bad -r, -p without :=) is one line with rcl's reason, and no advice to
    write decimal points: that advice is for a list mixing types alone."""
    import sys

    done = run_ros_process([sys.executable, "-m", "fourds_ros.ros.perception_node", "--ros-args", "--params-file",
                           str(tmp_path / "robot_typo.yaml")], ros_env, 60)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "Error opening YAML file" in done.stderr and "decimal point" not in done.stderr, done.stderr


def test_configure_goes_on_when_the_engine_factory_warns_after_an_info(ros_env, tiny_model_dir, tmp_path,
                                                                      monkeypatch, capfd):
    """The engine factory's log reached the node's logger from one line for both severities; rclpy keeps one
    severity per calling line and raised at the first warning after an info ("Logger severity cannot be changed
    between calls"): configure failed whenever the factory warned, e.g. of an engine cache it cannot create."""
    from rclpy.lifecycle import TransitionCallbackReturn

    monkeypatch.setenv("FOURDS_ROS_CACHE_DIR", "/proc/fourds_cache_cannot_be_made")
    params = {"model": str(tiny_model_dir), "num_queries": 16, "autostart": "false"}  # backend auto
    with perception_node(ros_env, dash_p(params)) as node:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS and state(node) == "inactive"
    err = capfd.readouterr().err
    assert "[WARN]" in err and "severity cannot be changed" not in err


def test_camera_info_is_taken_before_the_image_that_arrives_with_it(ros_env, base_params):
    """A single-threaded executor takes ready subscriptions in the order they were made; the image's was made
    first, so a frame and its own camera_info arriving together were taken image first (16 of 20 frames of an
    idle subscriber) and the first frame after a zoom got the old K. camera_info's is made first now, and the
    node still finds the image's subscription first in its list (its publisher count on /diagnostics)."""
    from rclpy.lifecycle import TransitionCallbackReturn

    with perception_node(ros_env, dash_p(base_params)) as node:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        made = [s.topic_name for s in node.subscriptions]
        assert made.index("/camera_info") < made.index("/image")
        assert node.subscriptions_[0].topic_name == "/image"
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS


def test_help_prints_every_parameter_and_starts_no_node(ros_env):
    """`perception_node --help` started the node (rclpy ignores arguments outside --ros-args), which then
    ran until a signal. Now it prints the usage and every parameter as a params file, and exits 0; a
    `--help` inside --ros-args is ROS's, not ours (rcl refuses it: exit 2)."""
    import sys

    import yaml

    from fourds_ros.perception.settings import parameter_specs

    done = run_ros_process([sys.executable, "-m", "fourds_ros.ros.perception_node", "--help"], ros_env, 60)
    assert done.returncode == 0, done.stderr
    usage, _, params_file = done.stdout.partition("\n# ")
    assert usage.startswith("usage: ros2 run fourds_ros perception_node")
    declared = yaml.safe_load("# " + params_file)["/**/fourds_perception"]["ros__parameters"]
    assert set(declared) == {spec.name for spec in parameter_specs()}


def test_a_renamed_node_is_told_its_params_file_has_no_section_for_it(ros_env, tmp_path):
    """`-r __node:=rear_perception` with a file keyed /**/fourds_perception: none of the file applied (another
    model, publish_tf on) and nothing said so. Now the node names the file, its keys and its own name."""
    import signal
    import subprocess
    import sys
    import threading
    import time

    params = tmp_path / "rear.yaml"
    params.write_text("/**/fourds_perception:\n  ros__parameters:\n    autostart: false\n    publish_tf: false\n")
    node = subprocess.Popen([sys.executable, "-m", "fourds_ros.ros.perception_node", "--ros-args", "-r",
                             "__ns:=/rear", "-r", "__node:=rear_perception", "--params-file", str(params)],
                            env=ros_env, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(node.stderr.readline, "")), daemon=True)
    reader.start()  # a thread: a node that never warns must fail the test, not block it on readline
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("has no section" in line for line in lines):
            time.sleep(0.1)
    finally:
        node.send_signal(signal.SIGINT)
        node.wait(timeout=30)
        reader.join(timeout=5)
    warning = next((line for line in list(lines) if "has no section" in line), "")
    assert f"the params file {params} has no section for this node, /rear/rear_perception" in warning, lines
    assert "['/**/fourds_perception']" in warning
    from fourds_ros.ros.parameters import params_files_not_for

    nested = tmp_path / "nested.yaml"  # rcl applies it to /rear/rear_perception: no warning
    nested.write_text("rear:\n  rear_perception:\n    ros__parameters:\n      autostart: false\n")
    argv = ["node", "--ros-args", "--params-file", str(nested), "--params-file", str(params)]
    assert params_files_not_for("/rear/rear_perception", argv) == [(str(params), ["/**/fourds_perception"])]


# A program that embeds the node: its own arguments in sys.argv, the node's given to main().
EMBEDDER = ("import sys\nsys.argv[:] = {process!r}\nfrom fourds_ros.ros.perception_node import main\n"
            "sys.exit(main({node!r}))")


def test_a_node_started_with_its_own_arguments_reads_them_not_the_processs(ros_env, tiny_model_dir, tmp_path):
    """`perception_node.main([..., "--ros-args", ...])` from a program with arguments of its own: rcl applied the
    list main() was given, but camera_info was paired and params files checked by sys.argv. With the program's
    `camera_info:=/camera_info` the node listened on /camera_info, not on its image's sibling; the program's params
    file (for another node) was warned of and the node's own (keyed fourds_perception, the node renamed) was not."""
    import signal
    import subprocess
    import sys
    import threading
    import time

    import rclpy
    from rclpy.node import Node

    other, own = tmp_path / "other.yaml", tmp_path / "own.yaml"
    other.write_text("/**/controller_server:\n  ros__parameters:\n    a: 1\n")
    own.write_text("/**/fourds_perception:\n  ros__parameters:\n    publish_tf: false\n")
    process = ["embedder", "--ros-args", "-r", "camera_info:=/camera_info", "--params-file", str(other)]
    node_args = ["perception_node", "--ros-args", "-r", "__node:=rear_perception", "-r", "image:=/cam/image_raw",
                 "--params-file", str(own), *dash_p({"model": tiny_model_dir, "num_queries": 16, "backend": "torch"})]
    node = subprocess.Popen([sys.executable, "-c", EMBEDDER.format(process=process, node=node_args)], env=ros_env,
                            stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(node.stderr.readline, "")), daemon=True)
    reader.start()
    context = rclpy.Context()
    rclpy.init(args=[], context=context, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    observer = Node("observer", context=context)
    topics: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and node.poll() is None and not (
                "/cam/image_raw" in topics and any("camera_info" in topic for topic in topics)):
            time.sleep(0.2)  # autostart: the subscriptions come with activation
            if "rear_perception" in observer.get_node_names():
                topics = [name for name, _ in observer.get_subscriber_names_and_types_by_node("rear_perception", "/")]
    finally:
        observer.destroy_node()
        rclpy.try_shutdown(context=context)
        node.send_signal(signal.SIGINT)
        node.wait(timeout=30)
        reader.join(timeout=5)
    assert [topic for topic in topics if "camera_info" in topic] == ["/cam/camera_info"], (topics, lines)
    warned = [line for line in lines if "has no section" in line]
    assert len(warned) == 1, lines
    assert f"the params file {own} has no section for this node, /rear_perception" in warned[0]


def test_a_node_given_its_own_cli_args_pairs_camera_info_by_them(ros_env, tiny_model_dir, monkeypatch):
    """PerceptionNode(cli_args=[...]) (rclpy's node-specific arguments): `camera_info:=/camera_info` among them
    named camera_info's topic on purpose, but the node looked for that rule in sys.argv and listened on the image's
    sibling."""
    import rclpy
    from rclpy.lifecycle import TransitionCallbackReturn

    from fourds_ros.ros.perception_node import PerceptionNode

    monkeypatch.setattr("sys.argv", ["embedder"])
    context = rclpy.Context()
    rclpy.init(args=["test", "--ros-args", *dash_p({"model": tiny_model_dir, "num_queries": 16, "backend": "torch",
                                                    "autostart": False})],
               context=context, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    node = PerceptionNode(context=context, cli_args=["-r", "image:=/cam/image_rect", "-r", "camera_info:=/camera_info"])
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        topics = sorted(s.topic_name for s in node.subscriptions_)
        node.trigger_deactivate()
        node.trigger_cleanup()
    finally:
        node._release()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    assert "/cam/image_rect" in topics and [topic for topic in topics if "camera_info" in topic] == ["/camera_info"]


# A program that embeds the node with main(argv), its own sys.argv holding no rule; the spin is replaced by a print
# of the camera_info topic the node pairs with its images.
EMBEDDED_MAIN = """
import sys, rclpy
from fourds_ros.ros import perception_node
from fourds_ros.ros.transforms import camera_info_topic
def instead_of_spinning(node, autostart, exiting=False):
    print("camera_info on", camera_info_topic(node, "raw", node.ros_arguments), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
perception_node.run_until_shutdown = instead_of_spinning
sys.exit(perception_node.main(["embedder", "--ros-args", "-r", "image:=/cam/image_raw", "-r",
                               "camera_info:=/camera_info", "-p", "model:=" + sys.argv[1], "-p", "autostart:=false"]))
"""


def test_the_rules_main_is_given_pair_camera_info_not_the_processs(ros_env, tiny_model_dir):
    """main(argv): rcl applied argv's rules, and the node read its camera_info remap from sys.argv, which holds none,
    and listened on /cam/camera_info: every frame waited, then took the default intrinsics (session 70's fix, whose
    main(argv) path no test ran: review)."""
    done = run_ros_process([sys.executable, "-c", EMBEDDED_MAIN, str(tiny_model_dir)], ros_env, 120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "camera_info on /camera_info\n" in done.stdout, done.stdout + done.stderr[-2000:]


def test_a_released_pipelines_totals_include_the_clips_cleanup_ran(ros_env, tiny_model_dir):
    """Cleanup right after deactivate runs the flush's clip (worker.stop); the pipeline's totals were carried
    before it ran, so its track steps, gaps, blind frames... were lost from /diagnostics' totals."""
    import numpy as np
    from rclpy.lifecycle import TransitionCallbackReturn
    from sensor_msgs.msg import CameraInfo, Image

    params = {"model": str(tiny_model_dir), "backend": "torch", "autostart": False, "hop": 2,
              "debug_inference_delay_ms": 400}
    with perception_node(ros_env, dash_p(params)) as node:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        rng = np.random.default_rng(0)
        for i in range(7):
            info, image = CameraInfo(), Image()
            for msg in (info, image):
                msg.header.stamp.nanosec, msg.header.frame_id = 100_000_000 + i * 33_000_000, "camera"
            info.width, info.height = 64, 64
            info.k = [50.0, 0.0, 31.5, 0.0, 50.0, 31.5, 0.0, 0.0, 1.0]
            image.width = image.height = 64
            image.encoding, image.step = "rgb8", 64 * 3
            image.data = rng.integers(0, 255, (64, 64, 3), np.uint8).tobytes()
            node.on_camera_info(info, {})
            node.on_image(image, {})
        assert node.trigger_deactivate() == TransitionCallbackReturn.SUCCESS
        worker, pipeline, after_stop = node.worker, node.pipeline, {}
        stop = worker.stop

        def stopping(*args):
            done = stop(*args)
            after_stop.update(pipeline.status())
            return done

        worker.stop = stopping
        before = pipeline.status()["track_steps"]
        assert node.trigger_cleanup() == TransitionCallbackReturn.SUCCESS
    assert after_stop["track_steps"] > before  # the clips cleanup ran counted steps after deactivate
    assert node.health.counts["track_steps"] == after_stop["track_steps"]


def test_ros_own_parameters_pass_the_guard_in_every_state(ros_env, base_params):
    """use_sim_time is rclpy's, not a setting: `ros2 param set /fourds_perception use_sim_time true` (a bag
    replay) must be taken whatever the lifecycle state; the guard refused it as an unknown setting or as
    "read at configure"."""
    from rclpy.lifecycle import TransitionCallbackReturn

    with perception_node(ros_env, dash_p(base_params)) as node:
        assert set_one(node, "use_sim_time", True) == (True, "")
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS and state(node) == "active"
        assert set_one(node, "use_sim_time", False) == (True, "")
        assert node.get_parameter("use_sim_time").value is False
        node.trigger_deactivate()
        node.trigger_cleanup()


def test_a_params_file_shared_by_several_nodes_is_not_warned_of(tmp_path):
    """One file for the whole robot: a section per node. The perception node's own section applies, so
    no warning that the file has none for it."""
    from fourds_ros.ros.parameters import params_files_not_for

    shared = tmp_path / "robot.yaml"
    shared.write_text("controller_server:\n  ros__parameters:\n    a: 1\n"
                      "/**/fourds_perception:\n  ros__parameters:\n    autostart: false\n")
    argv = ["node", "--ros-args", "--params-file", str(shared)]
    assert params_files_not_for("/fourds_perception", argv) == []
    assert params_files_not_for("/rear/rear_perception", argv) == [(str(shared), ["controller_server",
                                                                                   "/**/fourds_perception"])]


def test_a_qos_override_the_node_does_not_read_is_warned_of(ros_env, base_params, capfd):
    """`qos_overrides./image.subscription.reliability: best_effort` (ROS 2's own way to set a subscription's QoS)
    is read by no publisher or subscription of this node (none is made with qos_overriding_options): the image
    subscription stayed reliable, and the start-up check skipped every qos_overrides.* name, so nothing said so."""
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.qos import ReliabilityPolicy

    override = "qos_overrides./image.subscription.reliability"
    with perception_node(ros_env, [*dash_p(base_params), "-p", f"{override}:=best_effort"]) as node:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        image = next(s for s in node.subscriptions_ if s.topic_name == "/image")
        honoured = image.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
        node.trigger_deactivate()
        node.trigger_cleanup()
    err = capfd.readouterr().err
    assert honoured or (override in err and "image_qos" in err), err


def test_a_second_ctrl_c_during_the_release_releases_again():
    """release_until_done: a KeyboardInterrupt while release() waits for the running clip must not end the
    release (a traceback, exit code -2, DDS shared memory left in /dev/shm)."""
    from fourds_ros.ros.node_lifetime import release_until_done

    calls = []

    def release():
        calls.append(len(calls))
        if len(calls) < 3:
            raise KeyboardInterrupt

    release_until_done(release)
    assert calls == [0, 1, 2]


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_short_and_long_help_print_the_parameters_without_starting_ros(flag, capsys):
    import rclpy

    from fourds_ros.ros.node_lifetime import NODE_USAGE, init_ros

    assert init_ros(["perception_node", flag]) == 0
    assert capsys.readouterr().out.startswith(NODE_USAGE) and not rclpy.ok()


def test_shutdown_of_an_active_node_undoes_its_inputs(ros_env, base_params):
    """`ros2 lifecycle set /fourds_perception shutdown` from active: the image and camera_info subscriptions,
    the timers and the bond must go with the pipeline (frames kept arriving into a finalized node)."""
    from rclpy.lifecycle import TransitionCallbackReturn

    with perception_node(ros_env, dash_p(base_params)) as node:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        assert "/image" in [s.topic_name for s in node.subscriptions] and node.timers_
        assert node.trigger_shutdown() == TransitionCallbackReturn.SUCCESS and state(node) == "finalized"
        assert node.subscriptions_ == [] and node.timers_ == []
        assert not {"/image", "/camera_info"} & {s.topic_name for s in node.subscriptions}
        assert node.bond.bond is None


def test_reset_says_whether_it_reset_anything(ros_env, base_params):
    from rclpy.lifecycle import TransitionCallbackReturn
    from std_srvs.srv import Trigger

    with perception_node(ros_env, dash_p(base_params)) as node:
        unconfigured = node.on_reset(Trigger.Request(), Trigger.Response())
        assert (unconfigured.success, unconfigured.message) == (False, "not configured")
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        configured = node.on_reset(Trigger.Request(), Trigger.Response())
        assert (configured.success, configured.message) == (True, "odometry and tracks reset")


def test_an_image_waiting_for_the_first_camera_info_is_released_by_the_timer(ros_env, base_params):
    """camera_info_startup_wait_s (0.1 s by default, camera_info_wait_s 0): a camera that sends one image and
    no camera_info (or one at 1 Hz) must have that image go on after the startup wait, not when the next
    image comes."""
    import time

    import numpy as np
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.lifecycle import TransitionCallbackReturn
    from sensor_msgs.msg import Image

    with perception_node(ros_env, dash_p(base_params)) as node:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        image = Image()
        image.header.frame_id, image.header.stamp.sec = "camera", 1
        image.width = image.height = 64
        image.encoding, image.step = "rgb8", 64 * 3
        image.data = np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8).tobytes()
        node.on_image(image, {})
        assert len(node.intake.sync.waiting) == 1  # waits for its camera_info
        executor = SingleThreadedExecutor(context=node.context)
        executor.add_node(node)
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and node.intake.sync.waiting:
            executor.spin_once(timeout_sec=0.05)
        executor.remove_node(node)
        assert not node.intake.sync.waiting
        node.trigger_deactivate()
        node.trigger_cleanup()


def test_diagnostics_period_s_sets_the_diagnostics_timer_and_a_bad_one_keeps_the_default(ros_env, base_params):
    """diagnostics_period_s is read when the process starts (READ_AT_START): /diagnostics every 2.5 s; an
    invalid one leaves the default 1 s for the process to come up and say so at configure."""
    with perception_node(ros_env, dash_p({**base_params, "diagnostics_period_s": 2.5})) as node:
        assert node.diag_timer.timer_period_ns == 2_500_000_000
    with perception_node(ros_env, dash_p({**base_params, "diagnostics_period_s": 0.001})) as node:
        assert node.diag_timer.timer_period_ns == 1_000_000_000


def test_a_setting_cannot_be_deleted(ros_env, base_params):
    """`ros2 param delete` (a value of type PARAMETER_NOT_SET) of exclude_boxes was accepted: rclpy undeclared it,
    and every later configure failed (ParameterNotDeclaredException) and every later set was refused until the
    process restarted; a params file with `exclude_boxes: []` met it on an active node. Refused, every one."""
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter

    from fourds_ros.perception.settings import parameter_specs

    with perception_node(ros_env, dash_p(base_params)) as node:
        for spec in parameter_specs():
            (result,) = node.set_parameters([Parameter(spec.name, Parameter.Type.NOT_SET)])
            assert not result.successful and "cannot be deleted" in result.reason, spec.name
            assert node.has_parameter(spec.name), spec.name
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        node.trigger_cleanup()


def test_the_nodes_own_dump_loads_back_onto_it_active(ros_env, base_params):
    """`ros2 param dump` writes 1e-06 as 1.0e-06, and `ros2 param load` (rclpy's parameter_dict_from_yaml_file)
    sends str(1e-06), which YAML reads as the string "1e-06": on an active node pose_rotation_var_floor and
    pose_translation_var_floor were refused as changes (and unconfigured, "must be a number"), so a saved tuning
    could not be loaded back as the docs say. A float written as text is its number now."""
    import yaml
    from rcl_interfaces.msg import Parameter as ParameterMsg
    from rclpy.lifecycle import TransitionCallbackReturn
    from rclpy.parameter import Parameter, get_parameter_value

    from fourds_ros.perception.settings import parameter_specs

    with perception_node(ros_env, dash_p(base_params)) as node:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert node.trigger_activate() == TransitionCallbackReturn.SUCCESS
        refused, texts = [], 0
        for spec in parameter_specs():
            dumped = yaml.safe_load(yaml.dump(node.get_parameter(spec.name).value))
            msg = ParameterMsg(name=spec.name, value=get_parameter_value(str(dumped)))
            texts += isinstance(Parameter.from_parameter_msg(msg).value, str) and spec.type is float
            (result,) = node.set_parameters([Parameter.from_parameter_msg(msg)])
            if not result.successful:
                refused.append((spec.name, result.reason))
        changed = set_one(node, "pose_rotation_var_floor", "2e-06")  # another number is still a change
        node.trigger_deactivate()
        node.trigger_cleanup()
    assert refused == [] and texts >= 2  # the var floors came as text
    assert changed[0] is False and "read at configure" in changed[1]


def test_inference_threads_back_to_0_gives_torch_its_default_again(ros_env, base_params):
    """torch's thread count is process-wide and was set only for a non-zero inference_threads: a node reconfigured
    from 1 back to 0 ("every core") kept one thread until it restarted."""
    import torch
    from rclpy.lifecycle import TransitionCallbackReturn

    from fourds_ros.engine.torch_backend import TORCH_DEFAULT_THREADS

    assert TORCH_DEFAULT_THREADS > 1  # else this test could not tell
    with perception_node(ros_env, dash_p({**base_params, "inference_threads": 1})) as node:
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS and torch.get_num_threads() == 1
        node.trigger_cleanup()
        assert set_one(node, "inference_threads", 0) == (True, "")
        assert node.trigger_configure() == TransitionCallbackReturn.SUCCESS
        assert torch.get_num_threads() == TORCH_DEFAULT_THREADS
        node.trigger_cleanup()


@pytest.mark.parametrize("device", ["gpu", "", "CPU", "cuda:x"])
def test_a_misspelt_device_is_refused_when_set(ros_env, base_params, device):
    """device is free text: "gpu" was accepted and configure then failed with torch's list of device types,
    naming none of the node's spellings. Refused at the set now, naming them."""
    with perception_node(ros_env, dash_p(base_params)) as node:
        ok, reason = set_one(node, "device", device)
        assert not ok and "cuda:N" in reason
        assert set_one(node, "device", "cuda:1") == (True, "")  # a spelling the node takes (GPU or not: configure's)
