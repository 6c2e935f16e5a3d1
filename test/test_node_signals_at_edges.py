"""Signals at the edges of the node's life: just after autostart's configure, and a second Ctrl-C while it releases."""
import subprocess

import pytest

from fourds_ros.ros.harness import process_environment, write_params
from fourds_ros.ros.launch_logic import command_line, node_plan

from .conftest import stop_process
from .test_node_lifecycle import node_command, run_node_stopping_itself

# The signal arrives after configure has done its work but before it returns SUCCESS (the model loaded,
# the publishers made): autostart must not go on to activate a node whose context is shut down.
SIGNAL_AFTER_CONFIGURE = """\
import os, signal, time
from fourds_ros.ros.perception_node import PerceptionNode
configure = PerceptionNode.on_configure
def signalled(self, state):
    result = configure(self, state)
    print("injected: {name} after configure", flush=True)
    os.kill(os.getpid(), signal.{name})
    deadline = time.monotonic() + 5
    while self.context.ok() and time.monotonic() < deadline:
        time.sleep(0.01)
    return result
PerceptionNode.on_configure = signalled"""


@pytest.mark.parametrize("name", ["SIGTERM"])
def test_a_signal_just_after_autostarts_configure_activates_nothing(tiny_model_dir, ros_env, tmp_path, name):
    returncode, node_log = run_node_stopping_itself(SIGNAL_AFTER_CONFIGURE.format(name=name), tiny_model_dir,
                                                    ros_env, tmp_path, 90)
    assert f"injected: {name} after configure" in node_log and returncode == 0, node_log
    assert "Traceback" not in node_log, node_log
    # (rclpy's own "Failed to complete transition 1" for the configure the signal interrupted is known)
    errors = [line for line in node_log.splitlines() if "[ERROR]" in line and "Failed to complete transition 1" not in line]
    assert not errors, node_log
    assert "activate" not in node_log, node_log


# The release waits (as for a running clip) and a second Ctrl-C arrives while it does.
SLOW_RELEASE = """\
import time
from fourds_ros.ros.perception_node import PerceptionNode
release = PerceptionNode._release
def slow(self):
    if not getattr(self, "_waited", False):
        self._waited = True
        print("injected: release waits", flush=True)
        time.sleep(3.0)
    release(self)
PerceptionNode._release = slow"""


def test_a_second_ctrl_c_while_the_node_releases_is_no_traceback(tiny_model_dir, ros_env, tmp_path):
    import signal
    import time

    params_file = write_params(tmp_path / "params.yaml", {"model": str(tiny_model_dir), "num_queries": 16})
    argv = command_line(node_plan([params_file]), executable=node_command(SLOW_RELEASE))
    log_path = tmp_path / "node.log"
    with open(log_path, "w") as log:
        node = subprocess.Popen(argv, env=process_environment(ros_env), stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while "configured:" not in log_path.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.0)
            node.send_signal(signal.SIGINT)
            while "injected: release waits" not in log_path.read_text() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.3)
            node.send_signal(signal.SIGINT)  # the second Ctrl-C, during the release
            node.wait(timeout=30)
        finally:
            stop_process(node)
    node_log = log_path.read_text()
    assert "injected: release waits" in node_log, node_log
    assert node.returncode == 0 and "Traceback" not in node_log, node_log


# A clip that outlasts any wait (a slow CPU, a large model, a stuck engine): 30 s of inference.
LONG_CLIP = """\
import time
from fourds_ros.ros.perception_node import PerceptionNode
run = PerceptionNode._run_clip
def slow(self, clip):
    print("injected: a 30 s clip starts", flush=True)
    time.sleep(30.0)
    run(self, clip)
PerceptionNode._run_clip = slow"""


def _shared_memory(pid: int) -> set[str]:
    """The Fast DDS shared-memory segments process pid maps (its ports' files aside: they are shared)."""
    from pathlib import Path

    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    return {line.split()[-1] for line in maps if "/dev/shm/fastdds_" in line and "port" not in line}


@pytest.mark.parametrize("name", ["SIGINT", "SIGTERM"])
def test_a_signal_during_a_clip_that_will_not_end_exits_before_launchs_sigterm_and_frees_its_shared_memory(
        tiny_model_dir, ros_env, tmp_path, name):
    """At a signal the node waited 10 s for the running clip, past ros2 launch's SIGTERM (5 s) and near its
    SIGKILL (10 s); then it exited 0, but the abandoned clip's thread still held the node, and rclpy's lifecycle
    state machine (never destroyed) the DDS participant: its 35 MB of shared memory stayed in /dev/shm. And
    the release's WARN came with rcl's "Failed to publish log message to rosout", which read as a fault."""
    import json
    import os
    import signal
    import sys
    import time

    params_file = write_params(tmp_path / "params.yaml", {"model": str(tiny_model_dir), "num_queries": 16, "hop": 4})
    argv = command_line(node_plan([params_file]), executable=node_command(LONG_CLIP))
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps([{"wait_for_subscribers": ["image", "camera_info"], "timeout": 60},
                                {"frames": 4, "rate": 20, "size": [120, 160]}, {"wait": 60}]))
    env = process_environment(ros_env)
    log_path = tmp_path / "node.log"
    with open(log_path, "w") as log:
        node = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
        probe = subprocess.Popen([sys.executable, "-m", "fourds_ros.ros.probe", "--plan", str(plan), "--out",
                                  str(tmp_path / "probe.json")], env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 90
            while "injected: a 30 s clip starts" not in log_path.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(0.5)
            node_only = _shared_memory(node.pid) - _shared_memory(probe.pid)
            start = time.monotonic()
            node.send_signal(getattr(signal, name))
            node.wait(timeout=30)
            took = time.monotonic() - start
        finally:
            stop_process(node)
            stop_process(probe)
    node_log = log_path.read_text()
    assert "injected: a 30 s clip starts" in node_log and node.returncode == 0, node_log
    assert "the running clip did not end within 3 s: dropped" in node_log, node_log  # not 10 s: before launch's SIGTERM
    assert took < 30.0, (took, node_log)  # (the wait itself is the line above: a loaded host adds seconds)
    assert "Failed to publish log message to rosout" not in node_log, node_log
    assert node_only and not [path for path in node_only if os.path.exists(path)], (node_only, node_log)
