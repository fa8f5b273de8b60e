# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The rclpy shell of ``aetherscan_node``: the only package that creates a Node.

Importing this package does not import rclpy (``ros_domain`` is used by tests and the demo
before ROS starts); ``main`` and ``AetherscanNode`` load it on use.
"""


def main(args=None):
    """Run ``aetherscan_node`` (console script ``aetherscan_node = aetherscan_ros.node:main``)."""
    from aetherscan_ros.node.main import main as run
    return run(args)


def lifecycle_main(args=None):
    """Run the managed node (console script ``aetherscan_lifecycle_node``)."""
    from aetherscan_ros.node.main import main as run
    return run(args, lifecycle=True)


def __getattr__(name):
    if name == 'AetherscanNode':
        from aetherscan_ros.node.aetherscan_node import AetherscanNode
        return AetherscanNode
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
