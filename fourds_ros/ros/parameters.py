"""The node's ROS parameters, generated from perception/settings.py: declared with their
descriptions and allowed values, and read back into one PerceptionSettings.

Ranges are stated in the descriptor's additional_constraints and checked at configure
(PerceptionSettings.from_params), not enforced by rclpy at declaration: an out-of-range value in a
params file must fail configure with the parameter's name on /diagnostics, not kill the process
before it can report anything.
"""

from __future__ import annotations

from rcl_interfaces.msg import ParameterDescriptor

from ..perception.settings import PerceptionSettings, parameter_specs


def declare_parameters(node) -> None:
    for spec in parameter_specs():
        node.declare_parameter(spec.name, spec.default, ParameterDescriptor(
            description=spec.description, additional_constraints=spec.constraints))


def read_settings(node) -> PerceptionSettings:
    """ValueError naming the parameter when a value is invalid."""
    return PerceptionSettings.from_params({spec.name: node.get_parameter(spec.name).value
                                           for spec in parameter_specs()})
