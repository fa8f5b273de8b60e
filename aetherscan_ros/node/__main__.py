# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""``python -m aetherscan_ros.node``: the same as the ``aetherscan_node`` executable."""

from aetherscan_ros.node.main import main

if __name__ == '__main__':
    main()
