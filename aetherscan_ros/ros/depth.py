# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Per-view depth images as ``sensor_msgs/Image`` (``32FC1``) + ``sensor_msgs/CameraInfo`` pairs.

What ``depth_image_proc`` and nvblox take: a ``32FC1`` image in metres (REP 118: NaN where
there is no measurement) and the ``CameraInfo`` of the same size, both with the same header:
the view's optical frame and its image's stamp. The depth values come from
:mod:`aetherscan_ros.core.depth`.
"""

import sys
from typing import Tuple

import numpy as np

from aetherscan_ros.core.depth import ViewDepth
from aetherscan_ros.ros.camera_info import make_camera_info
from aetherscan_ros.ros.stamps import ns_to_stamp

DEPTH_ENCODING = '32FC1'


def depth_image_msg(depth: np.ndarray, stamp_ns: int, frame_id: str):
    """Return a ``32FC1`` ``sensor_msgs/Image`` of ``[H, W]`` depths (data set as bytes)."""
    from sensor_msgs.msg import Image
    depth = np.ascontiguousarray(depth, np.float32)
    if depth.ndim != 2:
        raise ValueError(f'a depth image is [H, W], got shape {depth.shape}')
    msg = Image(height=int(depth.shape[0]), width=int(depth.shape[1]), encoding=DEPTH_ENCODING,
                is_bigendian=int(sys.byteorder == 'big'), step=int(depth.shape[1]) * 4)
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.data = depth.tobytes()
    return msg


def depth_pair(item: ViewDepth, stamp_ns: int, frame_id: str) -> Tuple[object, object]:
    """Return ``(Image, CameraInfo)`` of one view's depth, both with the same header."""
    image = depth_image_msg(item.depth, stamp_ns, frame_id)
    info = make_camera_info(item.K, item.size[0], item.size[1], stamp_ns, frame_id)
    return image, info


def image_msg_to_depth(msg) -> np.ndarray:
    """Return the ``[H, W]`` float32 depths of a ``32FC1`` image (a copy; rows by ``step``)."""
    if msg.encoding != DEPTH_ENCODING:
        raise ValueError(f'expected a {DEPTH_ENCODING} depth image, got {msg.encoding!r}')
    dtype = np.dtype('>f4' if msg.is_bigendian else '<f4')
    rows = np.frombuffer(bytes(msg.data), np.uint8).reshape(int(msg.height), int(msg.step))
    return rows[:, :int(msg.width) * 4].copy().view(dtype).astype(np.float32)


__all__ = ['DEPTH_ENCODING', 'depth_image_msg', 'depth_pair', 'image_msg_to_depth']
