# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Pick a private ``ROS_DOMAIN_ID`` for a demo or test run (no rclpy needed)."""

import fcntl
import os
import tempfile
from typing import IO, Tuple


def claim_domain_id(low: int = 1, high: int = 101) -> Tuple[int, IO]:
    """
    Return ``(domain_id, lock_handle)`` for a domain no other run on this machine holds.

    The claim is an ``flock`` on a per-domain file in the temp directory, held while
    ``lock_handle`` stays open (released when the process exits). Domains 0..101 are the ones
    whose DDS ports never collide with Linux's ephemeral port range.
    """
    span = high - low + 1
    for offset in range(span):
        domain = low + (os.getpid() + offset) % span
        path = os.path.join(tempfile.gettempdir(), f'aetherscan_ros_domain_{domain}.lock')
        handle = open(path, 'w')
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        return domain, handle
    raise RuntimeError(f'no free ROS_DOMAIN_ID in {low}..{high}: other runs hold them all')
