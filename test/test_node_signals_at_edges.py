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
