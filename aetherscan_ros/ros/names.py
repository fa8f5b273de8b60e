# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Checks of ROS topic names and tf2 frame ids (plain strings: no rclpy needed)."""

from typing import Optional


def check_topic(name: str, what: str) -> Optional[str]:
    """Return why ``name`` is not a valid ROS topic name (``what`` names the setting), or None."""
    if not name:
        return f'{what}: empty topic name'
    bad = [c for c in name if not (c.isalnum() or c in '/_~{}')]
    if bad or '//' in name or name[-1] == '/' or name.lstrip('/~')[:1].isdigit():
        return f'{what}: {name!r} is not a valid ROS topic name'
    return None


def check_frame(name: str, what: str, allow_empty: bool) -> Optional[str]:
    """Return why ``name`` is not a valid tf2 frame id, or None."""
    if not name:
        return None if allow_empty else f'{what}: empty frame id'
    if name.startswith('/') or any(c.isspace() for c in name):
        return f'{what}: {name!r} is not a valid tf2 frame id (no leading "/", no spaces)'
    return None
