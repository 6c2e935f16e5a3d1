"""The node's ROS parameters, generated from perception/settings.py: declared with their
descriptions and allowed values, and read back into one PerceptionSettings.

Ranges are stated in the descriptor's additional_constraints and checked at configure
(PerceptionSettings.from_params), not enforced by rclpy at declaration: an out-of-range value in a
params file must fail configure with the parameter's name on /diagnostics, not kill the process
before it can report anything.
"""

from __future__ import annotations

from collections.abc import Callable

from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult

from ..perception.settings import PerceptionSettings, parameter_change_refusal, parameter_specs


def declare_parameters(node, configured: Callable[[], bool]) -> None:
    """Declare every setting, then guard runtime changes (`ros2 param set`): refused with the reason
    while the node is configured (they would silently do nothing until the next configure) and
    when invalid (settings.parameter_change_refusal). Values from a params file or the command line
    are applied at declaration, before the guard: a bad one fails configure, on /diagnostics."""
    names = {spec.name for spec in parameter_specs()}
    for spec in parameter_specs():
        node.declare_parameter(spec.name, spec.default, ParameterDescriptor(
            description=spec.description, additional_constraints=spec.constraints))

    def guard(parameters) -> SetParametersResult:
        changes = {p.name: p.value for p in parameters if p.name in names}  # use_sim_time etc. pass
        if not changes:
            return SetParametersResult(successful=True)
        current = {name: node.get_parameter(name).value for name in names}
        reason = parameter_change_refusal(current, changes, configured())
        return SetParametersResult(successful=reason is None, reason=reason or "")

    node.add_on_set_parameters_callback(guard)


def read_settings(node) -> PerceptionSettings:
    """ValueError naming the parameter when a value is invalid."""
    return PerceptionSettings.from_params({spec.name: node.get_parameter(spec.name).value
                                           for spec in parameter_specs()})
