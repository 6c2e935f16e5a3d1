"""The node's ROS parameters, generated from perception/settings.py: declared with their
descriptions and allowed values, and read back into one PerceptionSettings.

Ranges are stated in the descriptor's additional_constraints and checked at configure
(PerceptionSettings.from_params), not enforced by rclpy at declaration: an out-of-range value in a
params file must fail configure with the parameter's name on /diagnostics, not kill the process
before it can report anything. Types likewise: every parameter is declared with dynamic typing,
since rclpy refuses an override of another type than the default's by raising in the node's
constructor (`flush_after_s: 1` in a params file is an integer in YAML, and killed the process);
from_params takes a whole number for a decimal setting and refuses any other type by name.
"""

from __future__ import annotations

from pathlib import Path

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.parameter import Parameter

from ..perception.settings import READ_AT_START, PerceptionSettings, parameter_change_refusal, parameter_specs


def declare_parameters(node) -> None:
    """Declare every setting, then guard runtime changes (`ros2 param set`) by the node's lifecycle
    state: refused with the reason while the node is configured (they would silently do nothing
    until the next configure) or finalized (no configure follows), and when they make the set worse
    (settings.parameter_change_refusal); a value equal to the current one is accepted. Values from a
    params file or the command line are applied at declaration, before the guard: a bad one fails
    configure, on /diagnostics (one of READ_AT_START too; the process runs on its default until then,
    read_at_start)."""
    names = {spec.name for spec in parameter_specs()}
    for spec in parameter_specs():
        node.declare_parameter(spec.name, spec.default, ParameterDescriptor(
            description=spec.description, additional_constraints=spec.constraints, dynamic_typing=True))

    def guard(parameters) -> SetParametersResult:
        changes = {p.name: p.value for p in parameters if p.name in names}  # use_sim_time etc. pass
        if deleted := sorted(p.name for p in parameters if p.name in names and p.type_ == Parameter.Type.NOT_SET):
            return SetParametersResult(successful=False, reason=f"{', '.join(deleted)}: a setting cannot be deleted "
                                       "(configure reads every one); set its value instead")
        if not changes:
            return SetParametersResult(successful=True)
        current = {name: node.get_parameter(name).value for name in names}
        reason = parameter_change_refusal(current, changes, lifecycle_state(node))
        return SetParametersResult(successful=reason is None, reason=reason or "")

    node.add_on_set_parameters_callback(guard)
    if unknown := undeclared_overrides(node):
        qos = "; this node reads no qos_overrides.*: its QoS is image_qos and output_qos" if any(
            name.startswith("qos_overrides.") for name in unknown) else ""
        node.get_logger().warning(f"parameter(s) {unknown} given (params file or -p) are none of this node's and are "
                                  f"ignored: misspelt? `ros2 param list` names them all{qos}")
    for path, keys in params_files_not_for(node.get_fully_qualified_name(), node.ros_arguments):
        node.get_logger().warning(f"the params file {path} has no section for this node, {node.get_fully_qualified_name()} "
                                  f"(its keys: {keys}), so none of it applies: a renamed node needs a key of its own "
                                  f"name, or `/**:`")


def undeclared_overrides(node) -> list[str]:
    """The names a params file or `-p` gives this node that it does not declare. Why: rclpy drops them
    without a word, so a misspelt metric_scale_sorce left the outputs in the model's metres and the log
    silent. Warned, not refused: one params file often serves several nodes (`/**:`). rclpy keeps the
    overrides in Node._parameter_overrides (no public getter). ROS 2's `qos_overrides.*` are among them: no
    publisher or subscription of this node reads them (its QoS are the image_qos and output_qos presets), so a
    `qos_overrides./image.subscription.reliability` left the subscription as it was without a word."""
    overrides = getattr(node, "_parameter_overrides", None) or {}
    return sorted(name for name in overrides if not node.has_parameter(name))


def params_files_not_for(node: str, argv: list[str]) -> list[tuple[str, list[str]]]:
    """(path, its keys) of each `--params-file` on the command line (inside --ros-args, where ros2 run and
    launch put them) with no section that applies to the node of fully qualified name `node`. Why: a node
    renamed with `-r __node:=front_perception` read none of a file keyed /**/fourds_perception and ran
    on defaults (another model, publish_tf on) without a word; rcl gives the node no such file's values
    to warn of."""
    import yaml

    from .launch_logic import params_key_matches, params_sections

    files, ros_args = [], False
    for i, arg in enumerate(argv):
        if arg in ("--ros-args", "--"):
            ros_args = arg == "--ros-args"
        elif ros_args and arg == "--params-file" and i + 1 < len(argv):
            files.append(argv[i + 1])
    unmatched = []
    for path in files:
        try:
            keys = [key for key, _ in params_sections(yaml.safe_load(Path(path).read_text()))]
        except (OSError, yaml.YAMLError):  # rcl has read it already, or refused it
            continue
        if not any(params_key_matches(key, node) for key in keys):
            unmatched.append((path, [str(key) for key in keys]))
    return unmatched


def lifecycle_state(node) -> str:
    """The node's lifecycle state label ("unconfigured", "inactive", "active", "finalized", or a
    transition's). rclpy has no public getter; its own trigger_shutdown reads the state machine so.
    The state, not whether the pipeline exists: after shutdown the pipeline is gone too, and a
    change was accepted that no configure would ever read. Without that attribute (another rclpy),
    the node's own state text's first word."""
    machine = getattr(node, "_state_machine", None)
    return machine.current_state[1] if machine is not None else node.state_text.split()[0]


def read_settings(node) -> PerceptionSettings:
    """ValueError naming the parameter when a value is invalid (READ_AT_START ones too: a bad one in
    the params file fails every configure, naming it, until the file is fixed and the process
    restarted, which applying it needs anyway; test_node_bad_input.py)."""
    return PerceptionSettings.from_params({spec.name: node.get_parameter(spec.name).value
                                           for spec in parameter_specs()})


def read_at_start(node) -> PerceptionSettings:
    """The settings read when the process starts (READ_AT_START: autostart, diagnostics_period_s),
    each invalid one at its default: the process must come up to say so, and configure then fails
    naming it (a string "false" for autostart would otherwise read as true)."""
    valid = {}
    for name in READ_AT_START:
        value = node.get_parameter(name).value
        try:
            PerceptionSettings.from_params({name: value})
            valid[name] = value
        except ValueError:
            pass  # configure reports it
    return PerceptionSettings.from_params(valid)
