"""Run the perception node and a probe as two separate processes on real DDS (for tests and
`fourds-ros bench node`). The caller gives the environment (its own ROS_DOMAIN_ID, loopback
discovery); the node is stopped with SIGINT, never SIGKILL (that leaks DDS shared memory)."""

from __future__ import annotations

import json
import sys
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..ros_env import ros_environment, run_ros_process, stop_ros_process
from .launch_logic import NODE_NAME, PARAMS_KEY, command_line, module_command, node_name, node_plan


@dataclass
class NodeRun:
    result: dict  # probe output: published, records, events
    node_log: str
    node_returncode: int | None
    node_alive_after_plan: bool
    namespace: str = ""  # the node's

    def records(self, topic: str) -> list[dict]:
        return [r for r in self.result["records"] if r["topic"] == topic]

    def last_diagnostics(self) -> dict:
        diags = [s for r in self.records("/diagnostics") if (s := perception_status(r, self.namespace)) is not None]
        return diags[-1] if diags else {}


def perception_status(record: dict, namespace: str = "") -> dict | None:
    """The status of the perception node in `namespace` in a probe's /diagnostics record (named '<the node's
    full name>: perception'), None in another node's message: on a robot a camera driver publishes
    /diagnostics too, and its status read as the node's made the counts drop to 0 mid-run; and /diagnostics
    is global, so with two instances of the node in one domain (/front, /rear) each run read the other's."""
    name = f"{node_name(namespace, NODE_NAME)}: perception"
    return next((s for s in record.get("status") or [] if s["name"] == name), None)


def write_params(path: Path, params: dict, node: str = PARAMS_KEY) -> Path:
    path.write_text(yaml.safe_dump({node: {"ros__parameters": params}}))
    return path


def run_node(plan: list[dict], params: dict, workdir: Path, env: dict, params_file: Path | None = None,
             probe_timeout_s: float = 120.0, namespace: str = "", cmd: list[str] | None = None,
             probe_topics: list[str] | None = None, probe_ros_args: list[str] = ()) -> NodeRun:
    """Start the node (params via a YAML params file), run `plan` in a probe process, stop both.
    cmd: the node's argv prefix instead of `python -m fourds_ros.ros.perception_node` (the plan's
    ROS arguments are appended; a second --ros-args block is valid). probe_ros_args: the probe's own ROS
    arguments (e.g. remappings: a camera driver's topic names)."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = process_environment(env)
    files = [params_file] if params_file else []
    if params:
        files.append(write_params(workdir / "params.yaml", params))
    # The same argv builder as the launch file (launch_logic): no params file of its own, so the
    # node's declared defaults apply unless the test's files say otherwise.
    cmd = command_line(node_plan(files, namespace=namespace), executable=cmd or module_command())
    log_path = workdir / "node.log"
    plan_path = workdir / "plan.json"
    out_path = workdir / "probe.json"
    plan_path.write_text(json.dumps(plan))
    with open(log_path, "w") as log:
        node = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            probe_cmd = [sys.executable, "-m", "fourds_ros.ros.probe", "--plan", str(plan_path),
                         "--out", str(out_path), "--namespace", namespace,
                         "--topics", ",".join(probe_topics or []), "--node-pid", str(node.pid), *probe_ros_args]
            probe = run_ros_process(probe_cmd, env, probe_timeout_s)
            if probe.returncode != 0:
                raise RuntimeError(f"probe failed ({probe.returncode}):\n{probe.stdout}\n{probe.stderr}")
        finally:
            alive = node.poll() is None
            stop_ros_process(node)
    return NodeRun(json.loads(out_path.read_text()), log_path.read_text(), node.returncode, alive, namespace)


def process_environment(env: dict) -> dict:
    """The environment run_node gives the node and the probe: `env` (from ros_env) made
    loopback-only, its Fast DDS profile choice kept as it is. (Applying the default profile again
    here made `ros_env(..., "none")` measure the large-frames profile: session 34.)"""
    return ros_environment(base=env, fastdds_profile=None)


def ros_env(domain_id: int, fastdds_profile: str = "") -> dict:
    """The environment of the node and the probe (the camera): both get the same Fast DDS profile
    (ros_env.ros_environment)."""
    return ros_environment(domain_id, fastdds_profile=fastdds_profile)
