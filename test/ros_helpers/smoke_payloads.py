# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Deterministic payloads of the cross-process smoke test, shared by its two processes.

Each message is a function of a sequence number, so the receiving process can rebuild what was
sent and compare it byte for byte.
"""

from geometry_msgs.msg import TransformStamped
import numpy as np
from sensor_msgs.msg import Image, PointCloud2, PointField
from tf2_msgs.msg import TFMessage

IMAGE_SIZE = (48, 64)  # height, width
CLOUD_POINTS = 500


def image_pixels(seq):
    """
    Return the rgb8 pixels of image ``seq``.

    :param seq: sequence number.
    :return: ``[H, W, 3]`` uint8.
    """
    h, w = IMAGE_SIZE
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([(xx + seq) % 256, (yy * 3 + seq) % 256, (xx + yy) % 256],
                    axis=-1).astype(np.uint8)


def make_image(seq, stamp):
    """
    Build ``sensor_msgs/Image`` number ``seq`` (rgb8, frame ``smoke_camera``).

    :param seq: sequence number.
    :param stamp: ``builtin_interfaces/Time``.
    :return: ``sensor_msgs.msg.Image``.
    """
    pixels = image_pixels(seq)
    msg = Image()
    msg.header.stamp = stamp
    msg.header.frame_id = 'smoke_camera'
    msg.height, msg.width = pixels.shape[:2]
    msg.encoding = 'rgb8'
    msg.step = msg.width * 3
    msg.data = pixels.tobytes()
    return msg


def cloud_points(seq):
    """
    Return the xyz + packed-rgb rows of cloud ``seq``.

    :param seq: sequence number.
    :return: ``[N, 4]`` float32 (x, y, z, rgb as float32 bits).
    """
    rng = np.random.default_rng(seq)
    rows = rng.uniform(-1.0, 1.0, size=(CLOUD_POINTS, 4)).astype(np.float32)
    rgb = rng.integers(0, 1 << 24, size=CLOUD_POINTS, dtype=np.uint32)
    rows[:, 3] = rgb.view(np.float32)
    return rows


def make_cloud(seq, stamp):
    """
    Build ``sensor_msgs/PointCloud2`` number ``seq`` (fields x, y, z, rgb; unorganized).

    :param seq: sequence number.
    :param stamp: ``builtin_interfaces/Time``.
    :return: ``sensor_msgs.msg.PointCloud2``.
    """
    rows = cloud_points(seq)
    msg = PointCloud2()
    msg.header.stamp = stamp
    msg.header.frame_id = 'map'
    msg.height, msg.width = 1, rows.shape[0]
    msg.fields = [PointField(name=name, offset=4 * i, datatype=PointField.FLOAT32, count=1)
                  for i, name in enumerate(('x', 'y', 'z', 'rgb'))]
    msg.is_bigendian = False
    msg.point_step = 16
    msg.row_step = 16 * rows.shape[0]
    msg.is_dense = True
    msg.data = rows.tobytes()
    return msg


def _transform(parent, child, stamp, x):
    t = TransformStamped()
    t.header.stamp = stamp
    t.header.frame_id = parent
    t.child_frame_id = child
    t.transform.translation.x = float(x)
    t.transform.rotation.w = 1.0
    return t


def make_tf(seq, stamp):
    """
    Build the ``/tf`` message number ``seq``: map -> smoke_camera, x = seq / 10.

    :param seq: sequence number.
    :param stamp: ``builtin_interfaces/Time``.
    :return: ``tf2_msgs.msg.TFMessage``.
    """
    return TFMessage(transforms=[_transform('map', 'smoke_camera', stamp, seq / 10.0)])


def make_static_tf(stamp):
    """
    Build the one ``/tf_static`` message: smoke_camera -> smoke_camera_optical, x = 0.25.

    :param stamp: ``builtin_interfaces/Time``.
    :return: ``tf2_msgs.msg.TFMessage``.
    """
    return TFMessage(
        transforms=[_transform('smoke_camera', 'smoke_camera_optical', stamp, 0.25)])
