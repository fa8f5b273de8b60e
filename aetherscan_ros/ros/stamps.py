# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""``builtin_interfaces/Time`` <-> integer nanoseconds."""

from builtin_interfaces.msg import Time


def stamp_to_ns(stamp) -> int:
    """Return a ``builtin_interfaces/Time`` as integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(ns: int):
    """Return integer nanoseconds as a ``builtin_interfaces/Time``."""
    ns = max(int(ns), 0)
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
