# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""``sensor_msgs/CameraInfo`` <-> pinhole ``K`` (validated), and K for another image size."""

from typing import Tuple

import numpy as np

from aetherscan_ros.core.camera_model import CameraModel, CameraModelError
from aetherscan_ros.ros.errors import ConversionError
from aetherscan_ros.ros.stamps import ns_to_stamp


def camera_info_to_k(msg) -> Tuple[np.ndarray, Tuple[int, int]]:
    """
    Return ``(K [3, 3] float64, (width, height))`` of a ``sensor_msgs/CameraInfo``.

    Raises :class:`ConversionError` when K is zero, non-finite or not a pinhole matrix.
    """
    k = np.asarray(msg.k, np.float64).reshape(-1)
    if k.size != 9:
        raise ConversionError(f'K has {k.size} values, expected 9')
    k = k.reshape(3, 3)
    if not np.all(np.isfinite(k)):
        raise ConversionError('K contains NaN or infinity')
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        raise ConversionError(f'K has non-positive focal lengths fx={k[0, 0]}, fy={k[1, 1]}')
    if abs(k[2, 2] - 1.0) > 1e-6 or np.any(k[2, :2] != 0) or k[1, 0] != 0:
        raise ConversionError('K is not a pinhole matrix [[fx, s, cx], [0, fy, cy], [0, 0, 1]]')
    return k, (int(msg.width), int(msg.height))


def camera_info_to_model(msg) -> CameraModel:
    """
    Return the full :class:`CameraModel` of a ``sensor_msgs/CameraInfo`` (validated).

    K is checked as :func:`camera_info_to_k` does (same reasons); then D, R, P, binning and
    ROI as ``image_geometry`` reads them. Raises :class:`ConversionError` with the reason.
    """
    camera_info_to_k(msg)
    try:
        return CameraModel.from_fields(
            int(msg.width), int(msg.height), msg.distortion_model, list(msg.d), list(msg.k),
            list(msg.r), list(msg.p), int(msg.binning_x), int(msg.binning_y), msg.roi)
    except CameraModelError as exc:
        raise ConversionError(str(exc)) from None


def model_for_image(model: CameraModel, image_size: Tuple[int, int],
                    rectified: bool) -> CameraModel:
    """
    Return the model that describes an image of ``image_size`` from this camera.

    ``rectified``: the topic carries rectified images (``image_rect*``), so P applies and no
    distortion is left. A CameraInfo without width/height (some drivers leave them 0) is taken
    for any size, as K alone. Raises :class:`ConversionError` on a size mismatch (after
    binning and ROI).
    """
    if rectified:
        model = model.for_rectified_image()
    if (model.width, model.height) == (0, 0):
        return CameraModel.pinhole(model.K_eff)
    if tuple(model.image_size) != tuple(image_size):
        w, h = model.image_size
        reduced = '' if (w, h) == (model.width, model.height) else ' (after binning/ROI)'
        raise ConversionError(
            f'camera_info is for {w}x{h}{reduced} but the image is '
            f'{image_size[0]}x{image_size[1]}')
    return model


def make_camera_info(k: np.ndarray, width: int, height: int, stamp_ns: int = 0,
                     frame_id: str = ''):
    """Build a distortion-free ``sensor_msgs/CameraInfo`` for pinhole ``K`` ``[3, 3]``."""
    from sensor_msgs.msg import CameraInfo
    k = np.asarray(k, np.float64)
    msg = CameraInfo(width=int(width), height=int(height), distortion_model='plumb_bob')
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.d = [0.0] * 5
    msg.k = [float(v) for v in k.reshape(-1)]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    proj = np.zeros((3, 4))
    proj[:, :3] = k
    msg.p = [float(v) for v in proj.reshape(-1)]
    return msg
