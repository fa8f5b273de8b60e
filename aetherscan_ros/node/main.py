# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""``main()`` of ``aetherscan_node``: init, spin a SingleThreadedExecutor, shut down cleanly."""

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

from aetherscan_ros.node.aetherscan_node import AetherscanNode, NODE_NAME


def main(args=None):
    """Run the node until Ctrl-C or SIGTERM (``ros2 run aetherscan_ros aetherscan_node``)."""
    rclpy.init(args=args)
    node = None
    try:
        node = AetherscanNode()
        # Every callback is short (the backend runs on the node's own worker thread). The
        # MultiThreadedExecutor of rclpy Jazzy busy-polls: in bench_soak it used a full core
        # and dropped ~70 % of 4 x 30 Hz image streams; this executor received all of them.
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, ParameterException) as exc:  # bad initial parameters: the reason
        rclpy.logging.get_logger(NODE_NAME).fatal(f'invalid parameters: {exc}')
        raise SystemExit(2)
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
