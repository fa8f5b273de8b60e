# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Write rosbag2 bags of a demo scene with ``rosbags`` (no ROS), for test_bag.py and test_play.py.

A bag holds the scene's views on ``/cam/image_raw`` (sensor_msgs/Image, any encoding) or
``/cam/image_raw/compressed`` (CompressedImage png/jpeg), ``/cam/camera_info`` and TF as a
robot publishes it: ``odom -> base_link`` on ``/tf`` at every image stamp (the camera's pose
with the fixed mount taken out) and ``base_link -> cam_optical`` on ``/tf_static``.
"""

from pathlib import Path
from typing import Optional

import cv2
import numpy as np

from aetherscan_ros.core.geometry import invert_pose

STAMP0_NS = 1_700_000_000 * 1_000_000_000
PERIOD_NS = 200_000_000
FRAME_ID = 'cam_optical'
# base_link -> camera optical frame: 10 cm forward, 30 cm up, z forward (REP-103 optical)
MOUNT = np.array([[0.0, 0.0, 1.0, 0.10], [-1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.30],
                  [0.0, 0.0, 0.0, 1.0]])


def _quat_xyzw(rot: np.ndarray):
    from scipy.spatial.transform import Rotation
    return Rotation.from_matrix(rot).as_quat()


def _header(types, stamp_ns: int, frame_id: str):
    time = types['builtin_interfaces/msg/Time'](sec=stamp_ns // 1_000_000_000,
                                                nanosec=stamp_ns % 1_000_000_000)
    return types['std_msgs/msg/Header'](stamp=time, frame_id=frame_id)


def _transform(types, parent: str, child: str, stamp_ns: int, pose: np.ndarray):
    q = _quat_xyzw(pose[:3, :3])
    t = pose[:3, 3]
    return types['geometry_msgs/msg/TransformStamped'](
        header=_header(types, stamp_ns, parent), child_frame_id=child,
        transform=types['geometry_msgs/msg/Transform'](
            translation=types['geometry_msgs/msg/Vector3'](x=float(t[0]), y=float(t[1]),
                                                           z=float(t[2])),
            rotation=types['geometry_msgs/msg/Quaternion'](x=float(q[0]), y=float(q[1]),
                                                           z=float(q[2]), w=float(q[3]))))


def image_msg(types, rgb: np.ndarray, stamp_ns: int, encoding: str = 'rgb8'):
    """Return a rosbags sensor_msgs/Image of ``rgb`` in ``encoding`` (rgb8, bgr8, mono8)."""
    if encoding == 'bgr8':
        pixels = np.ascontiguousarray(rgb[..., ::-1])
    elif encoding == 'mono8':
        pixels = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    else:
        pixels = np.ascontiguousarray(rgb)
    h, w = rgb.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    return types['sensor_msgs/msg/Image'](
        header=_header(types, stamp_ns, FRAME_ID), height=h, width=w, encoding=encoding,
        is_bigendian=0, step=w * channels, data=pixels.reshape(-1).astype(np.uint8))


def compressed_msg(types, rgb: np.ndarray, stamp_ns: int, fmt: str = 'png'):
    """Return a rosbags sensor_msgs/CompressedImage of ``rgb`` (png or jpeg)."""
    ok, buf = cv2.imencode('.png' if fmt == 'png' else '.jpg', rgb[..., ::-1].copy())
    assert ok
    return types['sensor_msgs/msg/CompressedImage'](
        header=_header(types, stamp_ns, FRAME_ID), format=f'rgb8; {fmt} compressed bgr8',
        data=np.frombuffer(buf.tobytes(), np.uint8))


def camera_info_msg(types, K: np.ndarray, width: int, height: int, stamp_ns: int,
                    model=None):
    """Return a rosbags sensor_msgs/CameraInfo of ``K`` ``[3, 3]`` (D from ``model``)."""
    proj = np.zeros((3, 4))
    proj[:, :3] = K
    return types['sensor_msgs/msg/CameraInfo'](
        header=_header(types, stamp_ns, FRAME_ID), height=height, width=width,
        distortion_model=model.distortion_model if model is not None else 'plumb_bob',
        d=np.asarray(model.D if model is not None else np.zeros(5), float),
        k=np.asarray(K, float).reshape(-1),
        r=np.eye(3).reshape(-1), p=proj.reshape(-1), binning_x=0, binning_y=0,
        roi=types['sensor_msgs/msg/RegionOfInterest'](x_offset=0, y_offset=0, height=0,
                                                      width=0, do_rectify=False))


def write_scene_bag(out: Path, scene, storage: str = 'sqlite3', compressed: Optional[str] = None,
                    encoding: str = 'rgb8', camera_info: bool = True, tf: bool = True,
                    extra_topics: bool = False, model=None, topic: str = '/cam',
                    period_ns: int = PERIOD_NS) -> Path:
    """
    Write ``scene`` (a DemoScene) as a rosbag2 bag at ``out`` (must not exist); return ``out``.

    ``storage``: sqlite3 (.db3) or mcap; ``compressed``: None (raw Image in ``encoding``),
    'png' or 'jpeg'. ``extra_topics`` adds a String topic (not an image); ``model`` (a
    CameraModel) gives camera_info its distortion; ``topic`` is the camera namespace;
    ``period_ns`` the time between views.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import get_typestore, Stores
    store = get_typestore(Stores.ROS2_JAZZY)
    types = store.types
    plugin = StoragePlugin.MCAP if storage == 'mcap' else StoragePlugin.SQLITE3
    width, height = scene.size
    with Writer(out, version=9, storage_plugin=plugin) as writer:
        img_topic = f'{topic}/image_raw' + ('/compressed' if compressed else '')
        img_type = 'sensor_msgs/msg/CompressedImage' if compressed else 'sensor_msgs/msg/Image'
        conn_img = writer.add_connection(img_topic, img_type, typestore=store)
        conn_info = writer.add_connection(
            f'{topic}/camera_info', 'sensor_msgs/msg/CameraInfo',
            typestore=store) if camera_info else None
        if tf:
            conn_tf = writer.add_connection('/tf', 'tf2_msgs/msg/TFMessage', typestore=store)
            conn_static = writer.add_connection('/tf_static', 'tf2_msgs/msg/TFMessage',
                                                typestore=store)
            static = types['tf2_msgs/msg/TFMessage'](transforms=[
                _transform(types, 'base_link', FRAME_ID, STAMP0_NS, MOUNT)])
            writer.write(conn_static, STAMP0_NS,
                         store.serialize_cdr(static, 'tf2_msgs/msg/TFMessage'))
        if extra_topics:
            conn_str = writer.add_connection('/chatter', 'std_msgs/msg/String', typestore=store)
            writer.write(conn_str, STAMP0_NS, store.serialize_cdr(
                types['std_msgs/msg/String'](data='hello'), 'std_msgs/msg/String'))
        for i in range(scene.num_views):
            stamp = STAMP0_NS + i * period_ns
            if tf:
                base = scene.poses_c2w[i] @ invert_pose(MOUNT)
                msg = types['tf2_msgs/msg/TFMessage'](transforms=[
                    _transform(types, 'odom', 'base_link', stamp, base)])
                writer.write(conn_tf, stamp, store.serialize_cdr(msg, 'tf2_msgs/msg/TFMessage'))
            if conn_info is not None:
                info = camera_info_msg(types, scene.K, width, height, stamp, model)
                writer.write(conn_info, stamp + 1000,
                             store.serialize_cdr(info, 'sensor_msgs/msg/CameraInfo'))
            rgb = scene.images[i]
            msg = compressed_msg(types, rgb, stamp, compressed) if compressed else \
                image_msg(types, rgb, stamp, encoding)
            writer.write(conn_img, stamp + 2000, store.serialize_cdr(msg, img_type))
    return out
