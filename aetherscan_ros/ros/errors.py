# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""The one error of the message conversions (defined ROS-free, so bag reading shares it)."""

from aetherscan_ros.core.image_codec import ConversionError

__all__ = ['ConversionError']
