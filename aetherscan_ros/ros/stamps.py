# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""``builtin_interfaces/Time`` <-> integer nanoseconds."""

from builtin_interfaces.msg import Time

from aetherscan_ros.ros.errors import ConversionError

NS_PER_S = 1_000_000_000


def stamp_to_ns(stamp) -> int:
    """Return a ``builtin_interfaces/Time`` as integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def checked_stamp_ns(stamp) -> int:
    """
    Return a header stamp as nanoseconds; raise :class:`ConversionError` when malformed.

    ``nanosec`` must be below 1e9 (``builtin_interfaces/Time``: the fraction of a second; a
    larger value is a driver bug that would shift the frame by up to 4 s) and ``sec`` >= 0.
    """
    if not 0 <= int(stamp.nanosec) < NS_PER_S:
        raise ConversionError(f'header stamp nanosec {int(stamp.nanosec)} is out of range '
                              f'(must be < {NS_PER_S})')
    if int(stamp.sec) < 0:
        raise ConversionError(f'header stamp sec {int(stamp.sec)} is negative')
    return stamp_to_ns(stamp)


def ns_to_stamp(ns: int):
    """Return integer nanoseconds as a ``builtin_interfaces/Time``."""
    ns = max(int(ns), 0)
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)
