# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
``sensor_msgs/Image`` and ``CompressedImage`` <-> RGB numpy arrays, each input validated.

Decoding (every encoding the node accepts, ``step`` padding, big-endian 16-bit, jpeg/png) is
the ROS-free :mod:`aetherscan_ros.core.image_codec`, shared with bag reading; this module
re-exports it and builds messages. Problems raise :class:`ConversionError` whose message
names the reason; the node prefixes the topic.
"""

import numpy as np

from aetherscan_ros.core.image_codec import (  # noqa: F401 - re-exported for the node
    compressed_size, compressed_to_rgb, ConversionError, encode_rgb, ENCODINGS, image_to_rgb)
from aetherscan_ros.ros.stamps import ns_to_stamp


def rgb_to_image_msg(rgb: np.ndarray, stamp_ns: int = 0, frame_id: str = ''):
    """Build an rgb8 ``sensor_msgs/Image`` from ``[H, W, 3]`` uint8 RGB (data set as bytes)."""
    from sensor_msgs.msg import Image
    rgb = np.ascontiguousarray(rgb, np.uint8)
    msg = Image(height=int(rgb.shape[0]), width=int(rgb.shape[1]), encoding='rgb8',
                is_bigendian=0, step=int(rgb.shape[1]) * 3)
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.data = rgb.tobytes()
    return msg


def rgb_to_compressed_msg(rgb: np.ndarray, fmt: str = 'jpeg', quality: int = 95,
                          stamp_ns: int = 0, frame_id: str = ''):
    """Encode ``[H, W, 3]`` uint8 RGB as a ``sensor_msgs/CompressedImage`` (jpeg or png)."""
    from sensor_msgs.msg import CompressedImage
    data = encode_rgb(rgb, fmt, quality)
    msg = CompressedImage(format=f'rgb8; {fmt} compressed bgr8')
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.data = data
    return msg
