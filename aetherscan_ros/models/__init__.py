# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Neural network models owned by aetherscan_ros (clean PyTorch ports, no upstream code)."""
