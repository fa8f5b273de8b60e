# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The old path of :mod:`aetherscan_ros.ros.pointcloud2`, kept for code outside this package.

Outside code imports e.g. ``aetherscan_ros.msg_cloud.to_pointcloud2``; those names are the
very objects of :mod:`aetherscan_ros.ros.pointcloud2`. New code imports
``aetherscan_ros.ros.pointcloud2``.
"""

from aetherscan_ros.ros.pointcloud2 import (chunk_info_of, from_pointcloud2, HeaderLike,
                                            make_cloud_msg, make_header, MessageBuffer,
                                            new_pointcloud2, packed_to_pointcloud2, point_fields,
                                            to_pointcloud2, ZERO_COPY_DATA)

__all__ = [
    'HeaderLike', 'MessageBuffer', 'ZERO_COPY_DATA', 'chunk_info_of', 'from_pointcloud2',
    'make_cloud_msg', 'make_header', 'new_pointcloud2', 'packed_to_pointcloud2',
    'point_fields', 'to_pointcloud2',
]
