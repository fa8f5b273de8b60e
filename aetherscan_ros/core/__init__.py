# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""The ROS-free core: keyframe buffer, reconstruction jobs, geometry (numpy and dataclasses)."""
