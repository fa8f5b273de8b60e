# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Camera frusta as a ``visualization_msgs/MarkerArray`` for RViz."""

from typing import Sequence

from geometry_msgs.msg import Point
import numpy as np
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from aetherscan_ros.ros.stamps import ns_to_stamp


def frustum_corners(k: np.ndarray, size: Sequence[int], depth: float) -> np.ndarray:
    """Return the ``[4, 3]`` image-corner rays of pinhole ``K`` at ``depth`` (camera frame)."""
    width, height = float(size[0]), float(size[1])
    pix = np.array([[0, 0, 1], [width, 0, 1], [width, height, 1], [0, height, 1]], np.float64)
    rays = pix @ np.linalg.inv(np.asarray(k, np.float64)).T
    return rays / rays[:, 2:3] * depth


def frusta_markers(poses_c2w: np.ndarray, intrinsics: np.ndarray, image_sizes: np.ndarray,
                   world_frame: str, stamp_ns: int, depth: float,
                   namespace: str = 'aetherscan_cameras') -> MarkerArray:
    """
    Return a ``MarkerArray``: a DELETEALL, then one LINE_LIST frustum per posed view.

    View 0 (the world frame) is drawn red, the others green to blue along the view index;
    marker ``id`` = view index. Views with non-finite poses are left out.
    """
    out = MarkerArray()
    clear = Marker(action=Marker.DELETEALL, ns=namespace)
    clear.header.frame_id = world_frame
    out.markers.append(clear)
    count = len(poses_c2w)
    for view in range(count):
        pose = np.asarray(poses_c2w[view], np.float64)
        if not np.all(np.isfinite(pose)):
            continue
        corners = frustum_corners(intrinsics[view], image_sizes[view], depth)
        world = corners @ pose[:3, :3].T + pose[:3, 3]
        apex = pose[:3, 3]
        segments = []
        for i in range(4):
            segments += [apex, world[i], world[i], world[(i + 1) % 4]]
        marker = Marker(type=Marker.LINE_LIST, action=Marker.ADD, ns=namespace, id=view)
        marker.header.frame_id = world_frame
        marker.header.stamp = ns_to_stamp(stamp_ns)
        marker.pose.orientation.w = 1.0
        marker.scale.x = max(depth * 0.02, 1e-4)
        frac = view / max(count - 1, 1)
        marker.color = ColorRGBA(r=1.0, g=0.0, b=0.0, a=1.0) if view == 0 else \
            ColorRGBA(r=0.0, g=float(1.0 - frac), b=float(frac), a=1.0)
        marker.points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in segments]
        out.markers.append(marker)
    return out


def robust_extent(points: np.ndarray) -> float:
    """Return the norm of the 5..95 percentile box of ``points`` ``[N, 3]`` (0 if empty)."""
    if len(points) == 0:
        return 0.0
    lo, hi = np.percentile(points, [5.0, 95.0], axis=0)
    return float(np.linalg.norm(hi - lo))
