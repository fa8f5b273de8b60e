# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""aetherscan_ros: multi-view 3D reconstruction for ROS 2 camera streams."""

__version__ = '0.1.0'
