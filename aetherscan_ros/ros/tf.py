# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Camera poses ``[V, 4, 4]`` <-> ``TransformStamped`` (REP-103 optical frames), ``PoseArray``."""

from typing import List

from geometry_msgs.msg import Pose, PoseArray, TransformStamped
import numpy as np

from aetherscan_ros.core.geometry import (
    quaternion_to_rotation_matrix, rotation_matrix_to_quaternion)
from aetherscan_ros.ros.stamps import ns_to_stamp


def view_frame(frame_prefix: str, view: int) -> str:
    """Return the TF frame id of view ``view``: ``<frame_prefix>camera_<view>_optical``."""
    return f'{frame_prefix}camera_{int(view)}_optical'


def _pose_msg(pose: np.ndarray) -> Pose:
    quat = rotation_matrix_to_quaternion(pose[:3, :3])
    out = Pose()
    out.position.x, out.position.y, out.position.z = (float(v) for v in pose[:3, 3])
    (out.orientation.x, out.orientation.y, out.orientation.z,
     out.orientation.w) = (float(v) for v in quat)
    return out


def poses_to_transforms(poses_c2w: np.ndarray, world_frame: str, frame_prefix: str,
                        stamp_ns: int) -> List[TransformStamped]:
    """
    Return one ``TransformStamped`` world_frame -> camera_<i>_optical per pose ``[V, 4, 4]``.

    Views without a pose (non-finite, e.g. not registered by the classical backend) are left
    out; ``i`` stays the view index in the reconstruction.
    """
    return [matrix_to_transform(pose, world_frame, view_frame(frame_prefix, view), stamp_ns)
            for view, pose in enumerate(np.asarray(poses_c2w, np.float64))
            if np.all(np.isfinite(pose))]


def matrix_to_transform(pose: np.ndarray, parent: str, child: str,
                        stamp_ns: int) -> TransformStamped:
    """Return the ``TransformStamped`` parent -> child of a rigid ``[4, 4]`` pose of child."""
    msg = TransformStamped()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = parent
    msg.child_frame_id = child
    pose_msg = _pose_msg(np.asarray(pose, np.float64))
    msg.transform.translation.x = pose_msg.position.x
    msg.transform.translation.y = pose_msg.position.y
    msg.transform.translation.z = pose_msg.position.z
    msg.transform.rotation = pose_msg.orientation
    return msg


def transform_to_matrix(msg: TransformStamped) -> np.ndarray:
    """Return the ``[4, 4]`` matrix of a ``TransformStamped`` (parent <- child)."""
    rot = msg.transform.rotation
    tr = msg.transform.translation
    out = np.eye(4)
    out[:3, :3] = quaternion_to_rotation_matrix(np.array([rot.x, rot.y, rot.z, rot.w]))
    out[:3, 3] = [tr.x, tr.y, tr.z]
    return out


def poses_to_pose_array(poses_c2w: np.ndarray, world_frame: str, stamp_ns: int) -> PoseArray:
    """Return the finite camera poses ``[V, 4, 4]`` (optical frames) as a ``PoseArray``."""
    msg = PoseArray()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = world_frame
    msg.poses = [_pose_msg(p) for p in np.asarray(poses_c2w, np.float64)
                 if np.all(np.isfinite(p))]
    return msg
