"""ROS processes this package starts and waits for are stopped with SIGINT, never SIGKILL: a SIGKILLed
participant leaves its Fast DDS shared memory (35 MB) in /dev/shm for good."""
import subprocess
import sys

import pytest

from fourds_ros import ros_env
from fourds_ros.ros_env import run_ros_process

# Stands in for a ROS process: says when it is ready, and which signal stopped it.
STOPPED_BY = """\
import signal, sys, time
def stopped(number, frame):
    print("stopped by", signal.Signals(number).name, flush=True)
    sys.exit(0)
signal.signal(signal.SIGINT, stopped)
signal.signal(signal.SIGTERM, stopped)
print("ready", flush=True)
time.sleep(60)
"""


def test_a_process_past_its_timeout_is_stopped_by_sigint(tmp_path):
    out = tmp_path / "out.txt"
    with pytest.raises(subprocess.TimeoutExpired):
        run_ros_process([sys.executable, "-c", STOPPED_BY.replace("flush=True", f"flush=True, file=open({str(out)!r}, 'a')")],
                        {}, 5.0)
    assert out.read_text().splitlines() == ["ready", "stopped by SIGINT"]


def test_a_process_that_ends_gives_its_exit_code_and_output():
    done = run_ros_process([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"],
                           {}, 30.0)
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "err\n")


HOLDS_A_CHILD = """\
import signal, subprocess, sys, time
def test_holds_a_ros_process():
    child = subprocess.Popen([sys.executable, "-c", {child!r}])
    try:
        time.sleep(120)
    finally:
        child.send_signal(signal.SIGINT)
        child.wait()
"""


def test_a_test_run_ended_by_sigterm_still_stops_the_processes_it_started(tmp_path):
    """`timeout` or a cancelled CI job sends pytest SIGTERM: the tests' finally blocks must still stop what
    they started (conftest's pytest_configure), not leave it running with its DDS shared memory."""
    import os
    import signal
    import time

    from .conftest import REPO

    out = tmp_path / "child.txt"
    child = STOPPED_BY.replace("flush=True", f"flush=True, file=open({str(out)!r}, 'a')").replace(
        'print("ready"', 'print("ready", os.getpid()').replace("import signal", "import os, signal")
    (tmp_path / "test_holder.py").write_text(HOLDS_A_CHILD.format(child=child))
    run = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "test.conftest",
                            str(tmp_path / "test_holder.py")], cwd=REPO, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (out.exists() and out.read_text().startswith("ready")) and time.monotonic() < deadline:
        time.sleep(0.1)
    run.send_signal(signal.SIGTERM)
    run.wait(timeout=60)
    lines = out.read_text().splitlines()
    if lines[-1].startswith("ready"):  # not stopped: this test's own clean-up of the orphan
        os.kill(int(lines[0].split()[1]), signal.SIGINT)
    assert lines[1:] == ["stopped by SIGINT"], lines


def test_a_tests_ros_domain_is_never_one_in_use_on_this_host(tmp_path, monkeypatch):
    """Tests took a random domain of 1-200: one joined a soak's live node on domain 73 (its camera frames,
    its wheel controller's TF and its resets reached that node). Never the environment's ROS_DOMAIN_ID, never
    one with Fast DDS participants here, never one another test process holds."""
    import tempfile

    from . import conftest

    (tmp_path / "locks").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "locks"))  # lock files of this test's own
    monkeypatch.setattr(ros_env, "SHARED_MEMORY", str(tmp_path))
    monkeypatch.delenv("FOURDS_TEST_DOMAIN", raising=False)
    monkeypatch.setenv("ROS_DOMAIN_ID", "73")
    busy = set(range(1, 201)) - {73, 5, 6}  # participants on every domain but 5, 6 (and the live 73)
    for domain in busy:
        (tmp_path / f"fastdds_port{7400 + 250 * domain + 11}").touch()
    with conftest.own_ros_domain() as first, conftest.own_ros_domain() as second:
        assert {first, second} == {5, 6}
        with pytest.raises(RuntimeError, match="no ROS domain id"), conftest.own_ros_domain():
            pass
    with conftest.own_ros_domain() as again:  # released at the end of the block
        assert again in (5, 6)


def test_eval_and_the_node_benchmark_run_on_a_domain_of_their_own(monkeypatch):
    """`fourds-ros eval` kept the caller's ROS_DOMAIN_ID and `bench node` took it (else 0): on a robot's computer
    the replayed bag's odom -> base_link went onto the robot's live /tf, its frames onto the robot's topics."""
    import argparse

    from fourds_ros.bench.node import node_process_settings
    from fourds_ros.evaluation.replay import ros_environment

    monkeypatch.setenv("ROS_DOMAIN_ID", "7")  # the robot's
    domain = ros_environment()["ROS_DOMAIN_ID"]
    assert domain != "7" and ros_environment({"ROS_DOMAIN_ID": "7"})["ROS_DOMAIN_ID"] == domain
    args = argparse.Namespace(source="synthetic", param=[], domain=None, fastdds_profile="")
    assert node_process_settings(argparse.ArgumentParser(), args)[1]["ROS_DOMAIN_ID"] == domain
    args.domain = 42  # --domain names one
    assert node_process_settings(argparse.ArgumentParser(), args)[1]["ROS_DOMAIN_ID"] == "42"


def test_another_users_domain_lock_is_taken_as_held(tmp_path, monkeypatch):
    """The lock files stay in /tmp, 0600: on a host shared by two users (a CI runner, a robot where someone once
    ran with sudo) opening another user's raised PermissionError out of eval, the benchmarks and every ROS test."""
    import os
    import tempfile

    from . import conftest

    (tmp_path / "locks").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "locks"))
    monkeypatch.setattr(ros_env, "SHARED_MEMORY", str(tmp_path))
    monkeypatch.delenv("FOURDS_TEST_DOMAIN", raising=False)
    monkeypatch.delenv("ROS_DOMAIN_ID", raising=False)
    for domain in set(range(1, 201)) - {5, 6}:
        (tmp_path / f"fastdds_port{7400 + 250 * domain + 11}").touch()
    real_open = os.open

    def other_users(path, *args, **kwargs):
        if str(path).endswith("fourds_ros_domain_5.lock"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", other_users)
    for _ in range(5):
        with conftest.own_ros_domain() as domain:
            assert domain == 6
