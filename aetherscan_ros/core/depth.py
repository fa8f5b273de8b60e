# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Per-view depth images from a reconstruction (ROS-free, numpy).

A view's depth image is made of that view's own points (``result.view_index == v``): they are
carried into the view's optical frame (REP-103: x right, y down, z forward) with the inverse
of ``poses_c2w[v]``, projected with ``intrinsics[v]`` and z-buffered at the input image size
``image_sizes[v]`` (the nearest point wins a pixel). Pixel centres are at integer coordinates
(OpenCV, ``image_geometry``): a point projecting to ``(u, v)`` lands in column
``floor(u + 0.5)``, row ``floor(v + 0.5)``.

A learned backend's points are one per pixel of its (smaller) network image:
:func:`result_depths` can render each view at that working resolution
(:func:`working_scale`, ``K`` scaled with it) so its depth image has no regular gaps.

Values are the optical-frame ``z`` in the result's units (metres when the result is anchored,
``info['metric_scale']``); pixels without a point are NaN (REP 118: no measurement). The same
z-buffers tell which points another view sees (:func:`visible_in_view`), which the COLMAP
export uses to give its points honest multi-view tracks.
"""

from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from aetherscan_ros.backends.base import ReconstructionResult


@dataclass(frozen=True)
class ViewDepth:
    """
    The depth image of one view and the camera it is for.

    ``depth`` ``[H, W]`` float32 (NaN = no point); ``K`` ``[3, 3]`` float64 for that size;
    ``size`` ``(width, height)``; ``view`` the view index; ``metric`` whether values are metres.
    """

    view: int
    depth: np.ndarray
    K: np.ndarray
    size: Tuple[int, int]
    metric: bool

    @property
    def valid_pixels(self) -> int:
        """Return the number of pixels with a depth."""
        return int(np.count_nonzero(np.isfinite(self.depth)))


def is_metric(result: ReconstructionResult) -> bool:
    """Return whether the result is in metres (anchored to TF, ``info['metric_scale']``)."""
    return bool(dict(result.info).get('metric_scale', False))


def view_registered(result: ReconstructionResult, view: int) -> bool:
    """Return whether view ``view`` has a finite pose and K (an unregistered view has none)."""
    return bool(np.all(np.isfinite(result.poses_c2w[view])) and
                np.all(np.isfinite(result.intrinsics[view])))


def to_camera(points: np.ndarray, pose_c2w: np.ndarray) -> np.ndarray:
    """Return world points ``[N, 3]`` in the optical frame of a camera at ``pose_c2w``."""
    pose = np.asarray(pose_c2w, np.float64)
    rot, trans = pose[:3, :3], pose[:3, 3]
    return (np.asarray(points, np.float64) - trans) @ rot  # = R^T (p - t), row-wise


def project(points_cam: np.ndarray, K: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """
    Return ``(uv [N, 2], z [N])`` of optical-frame points ``[N, 3]`` under pinhole ``K``.

    ``uv`` is NaN where ``z <= 0`` (behind the camera) or the point is not finite.
    """
    K = np.asarray(K, np.float64)
    z = points_cam[:, 2]
    with np.errstate(divide='ignore', invalid='ignore'):
        x = points_cam[:, 0] / z
        y = points_cam[:, 1] / z
    uv = np.stack([K[0, 0] * x + K[0, 1] * y + K[0, 2], K[1, 1] * y + K[1, 2]], axis=1)
    uv[~(z > 0)] = np.nan
    return uv, z


def pixel_of(uv: np.ndarray, size: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """
    Return ``(flat pixel index [N] int64, inside [N] bool)`` of image points ``uv`` ``[N, 2]``.

    ``inside`` is false for NaN coordinates and points outside the ``(width, height)`` image;
    their index is 0.
    """
    width, height = int(size[0]), int(size[1])
    with np.errstate(invalid='ignore'):
        col = np.floor(uv[:, 0] + 0.5)
        row = np.floor(uv[:, 1] + 0.5)
        inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
    flat = np.zeros(len(uv), np.int64)
    flat[inside] = row[inside].astype(np.int64) * width + col[inside].astype(np.int64)
    return flat, inside


def zbuffer(flat: np.ndarray, z: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """
    Return the ``[H, W]`` float32 image of the nearest ``z`` per flat pixel index (NaN: none).

    ``flat`` ``[M]`` pixel indices (``row * width + col``) and ``z`` ``[M]`` depths (> 0).
    """
    width, height = int(size[0]), int(size[1])
    depth = np.full(width * height, np.inf, np.float32)
    np.minimum.at(depth, flat, np.asarray(z, np.float32))  # unbuffered: the nearest z wins
    depth[np.isinf(depth)] = np.nan
    return depth.reshape(height, width)


def render_depth(points_world: np.ndarray, pose_c2w: np.ndarray, K: np.ndarray,
                 size: Tuple[int, int]) -> np.ndarray:
    """Return the ``[H, W]`` float32 z-buffered depth of world points ``[N, 3]`` (NaN: none)."""
    uv, z = project(to_camera(points_world, pose_c2w), K)
    flat, inside = pixel_of(uv, size)
    return zbuffer(flat[inside], z[inside], size)


def scaled_camera(K: np.ndarray, size: Tuple[int, int],
                  scale: float) -> Tuple[np.ndarray, Tuple[int, int]]:
    """
    Return ``(K, (width, height))`` of the image resized by ``scale`` (pixel centres kept).

    A pixel centre ``u`` of the full image is at ``(u + 0.5) * s - 0.5`` in the resized one,
    with ``s`` the exact ratio of the rounded sizes per axis.
    """
    width, height = int(size[0]), int(size[1])
    new = (max(1, int(round(width * scale))), max(1, int(round(height * scale))))
    sx, sy = new[0] / width, new[1] / height
    affine = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
    return affine @ np.asarray(K, np.float64), new


def working_scale(result: ReconstructionResult, view: int) -> float:
    """
    Return the resolution (<= 1) the backend worked at for ``view``, relative to the input.

    A learned backend predicts one point per pixel of its network input
    (``info['network_sizes'][view]``, a resized and cropped image): rendered at the input size,
    its points leave a regular pattern of empty pixels; at this scale they cover the image.
    1.0 when the result does not say (the classical backend works at the input size).
    """
    sizes = dict(result.info).get('network_sizes')
    try:
        net_w, net_h = (float(v) for v in sizes[view])
    except (TypeError, ValueError, IndexError, KeyError):
        return 1.0
    width, height = (float(v) for v in result.image_sizes[view])
    scale = max(net_w / width, net_h / height)  # the crop only shrinks one side
    return float(min(1.0, scale)) if scale > 0 else 1.0


def points_by_view(result: ReconstructionResult) -> List[np.ndarray]:
    """Return each view's points ``[M_v, 3]`` (slices when ``view_index`` is sorted, as usual)."""
    index = np.asarray(result.view_index)
    if len(index) and np.any(index[1:] < index[:-1]):  # not in view order: sort once
        order = np.argsort(index, kind='stable')
        points, index = result.points[order], index[order]
    else:
        points = result.points
    bounds = np.searchsorted(index, np.arange(result.num_views + 1))
    return [points[bounds[v]:bounds[v + 1]] for v in range(result.num_views)]


def view_depth(result: ReconstructionResult, view: int, scale: float = 1.0,
               points: Optional[np.ndarray] = None) -> Optional[ViewDepth]:
    """
    Return the depth image of ``view`` from its own points, or ``None`` when unregistered.

    ``scale`` < 1 renders a smaller image (``K`` and ``size`` of the result are for it).
    ``points``: the view's points when the caller has them (:func:`points_by_view`).
    """
    if not view_registered(result, view):
        return None
    size = (int(result.image_sizes[view][0]), int(result.image_sizes[view][1]))
    K = np.asarray(result.intrinsics[view], np.float64)
    if scale != 1.0:
        K, size = scaled_camera(K, size, scale)
    if points is None:
        points = result.points[result.view_index == view]
    depth = render_depth(points, result.poses_c2w[view], K, size)
    return ViewDepth(view, depth, K, size, is_metric(result))


def result_depths(result: ReconstructionResult,
                  working_resolution: bool = False) -> List[Optional[ViewDepth]]:
    """
    Return :func:`view_depth` of every view (``None`` for unregistered ones).

    ``working_resolution``: each at :func:`working_scale` (the backend's resolution), else at
    the input image size.
    """
    per_view = points_by_view(result)
    return [view_depth(result, view, working_scale(result, view) if working_resolution else 1.0,
                       per_view[view]) for view in range(result.num_views)]


def backproject(depth: np.ndarray, K: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """
    Return ``(points [M, 3] optical frame, pixels [M, 2] (col, row))`` of the valid pixels.

    The inverse of :func:`render_depth` for one view: a pixel ``(col, row)`` with depth ``z``
    becomes ``z * K^-1 [col, row, 1]``.
    """
    K = np.asarray(K, np.float64)
    rows, cols = np.nonzero(np.isfinite(depth) & (depth > 0))
    z = depth[rows, cols].astype(np.float64)
    y = (rows - K[1, 2]) / K[1, 1]
    x = (cols - K[0, 2] - K[0, 1] * y) / K[0, 0]
    points = np.stack([x * z, y * z, z], axis=1)
    return points, np.stack([cols, rows], axis=1)


def visible_in_view(points_world: np.ndarray, pose_c2w: np.ndarray, K: np.ndarray,
                    depth: np.ndarray, rel_tol: float = 0.02) -> Tuple[np.ndarray, np.ndarray]:
    """
    Return ``(visible [N] bool, uv [N, 2])``: which points a view sees, and where.

    A point is visible when it projects inside the image in front of the camera onto a pixel
    of the view's ``depth`` image ``[H, W]`` whose depth agrees with the point's within
    ``rel_tol`` (relative): the view's own surface is there, nothing nearer hides the point.
    """
    height, width = depth.shape
    uv, z = project(to_camera(points_world, pose_c2w), K)
    flat, inside = pixel_of(uv, (width, height))
    seen = depth.reshape(-1)[flat]
    with np.errstate(invalid='ignore'):
        visible = inside & np.isfinite(seen) & (np.abs(seen - z) <= rel_tol * z)
    return visible, uv


__all__ = ['ViewDepth', 'backproject', 'is_metric', 'pixel_of', 'points_by_view', 'project',
           'render_depth', 'result_depths', 'scaled_camera', 'to_camera', 'view_depth',
           'view_registered', 'visible_in_view', 'working_scale', 'zbuffer']
