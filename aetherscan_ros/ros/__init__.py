# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Message <-> numpy conversions: images, camera_info, PointCloud2, TF, markers, events."""
