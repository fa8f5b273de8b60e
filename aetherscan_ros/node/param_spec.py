# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
One entry of the parameter table (:data:`aetherscan_ros.node.params.PARAMS`) and its descriptor.

The table itself lives in :mod:`aetherscan_ros.node.params`; this module only says what an
entry is and how rclpy sees it (``ParameterDescriptor``).
"""

from dataclasses import dataclass
from typing import Optional, Tuple

from rcl_interfaces.msg import (
    FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType)


@dataclass(frozen=True)
class ParamSpec:
    """
    One parameter: name, default, type, description, bounds and whether it is read-only.

    ``kind`` is one of ``bool``, ``int``, ``double``, ``string``, ``string_array``.
    ``bounds`` is ``(low, high)`` inclusive for ``int``/``double``; ``choices`` lists the
    allowed strings of an enumeration.
    """

    name: str
    kind: str
    default: object
    description: str
    bounds: Optional[Tuple[float, float]] = None
    choices: Tuple[str, ...] = ()
    read_only: bool = False


_TYPES = {
    'bool': ParameterType.PARAMETER_BOOL,
    'int': ParameterType.PARAMETER_INTEGER,
    'double': ParameterType.PARAMETER_DOUBLE,
    'string': ParameterType.PARAMETER_STRING,
    'string_array': ParameterType.PARAMETER_STRING_ARRAY,
}


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """Build the ``ParameterDescriptor`` of one table entry."""
    text = spec.description
    if spec.choices:
        text += ' One of: ' + ', '.join(spec.choices) + '.'
    desc = ParameterDescriptor(
        name=spec.name, type=_TYPES[spec.kind], description=text, read_only=spec.read_only)
    if spec.choices:
        desc.additional_constraints = 'one of: ' + ', '.join(spec.choices)
    if spec.bounds is not None and spec.kind == 'int':
        desc.integer_range = [IntegerRange(
            from_value=int(spec.bounds[0]), to_value=int(spec.bounds[1]), step=1)]
    elif spec.bounds is not None and spec.kind == 'double':
        desc.floating_point_range = [FloatingPointRange(
            from_value=float(spec.bounds[0]), to_value=float(spec.bounds[1]), step=0.0)]
    return desc
