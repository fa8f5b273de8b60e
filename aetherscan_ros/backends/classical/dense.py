# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Dense depth for the classical backend: rectified pairs, OpenCV StereoSGBM, consistency fusion.

For each registered view ``i`` the best one or two partner views are chosen from the sparse
model (most shared SIFT tracks with a usable triangulation angle, baseline not along the viewing
direction). Each pair is rectified with the recovered poses (a common rotation whose x axis is
the baseline, the same pinhole K for both images), matched with semi-global block matching
(disparity range from the sparse points, left-right check, uniqueness and speckle filters), and
its disparities are read back at view ``i``'s own pixel grid. With two partners, a pixel is kept
only where both depth estimates agree within a relative tolerance; with one (two-view input),
the left-right check is the filter. Points are the back-projections of view ``i``'s pixels at
the fused depth, coloured from view ``i``.

Quality score per point, in (0, 1): ``(agreeing pairs / pairs tried) * d / (d + 8)``, with ``d``
the mean disparity in pixels (depth precision grows with disparity).
"""

from dataclasses import dataclass
import logging
from typing import Dict, List, Sequence, Tuple
import warnings

import cv2
import numpy as np

_LOG = logging.getLogger(__name__)


@dataclass
class DenseOptions:
    """Tuning of the dense stage."""

    max_size: int = 800
    stride: int = 2
    num_neighbors: int = 2
    consistency_tol: float = 0.01
    min_tri_angle_deg: float = 1.5
    max_tri_angle_deg: float = 40.0
    min_baseline_axis_angle_deg: float = 40.0
    block_size: int = 5
    max_disparities: int = 320


def working_scale(width: int, height: int, max_size: int) -> float:
    """Return the resize factor (<= 1) that fits the longest side into ``max_size``."""
    return min(1.0, float(max_size) / float(max(width, height)))


def scale_intrinsics(K: np.ndarray, s: float) -> np.ndarray:
    """Rescale an OpenCV-convention ``[3, 3]`` K for an image resized by ``s``."""
    out = np.asarray(K, np.float64).copy()
    out[0, 0] *= s
    out[1, 1] *= s
    out[0, 2] = (out[0, 2] + 0.5) * s - 0.5
    out[1, 2] = (out[1, 2] + 0.5) * s - 0.5
    return out


def _tri_angle_deg(baseline: float, depth: float) -> float:
    return float(np.degrees(2.0 * np.arctan2(baseline / 2.0, depth)))


def choose_neighbors(poses: np.ndarray, registered: np.ndarray, points: np.ndarray,
                     observers: Sequence[np.ndarray], opts: DenseOptions) -> Dict[int, List[int]]:
    """Return, per registered view, up to ``num_neighbors`` stereo partners (best first)."""
    out: Dict[int, List[int]] = {}
    views = np.flatnonzero(registered)
    for i in views:
        obs_i = observers[i]
        if len(obs_i):
            cam = (points[obs_i] - poses[i, :3, 3]) @ poses[i, :3, :3]
            depth = float(np.median(cam[:, 2][cam[:, 2] > 0])) if (cam[:, 2] > 0).any() else 1.0
        else:
            depth = 1.0
        scored = []
        for j in views:
            if j == i:
                continue
            base = poses[j, :3, 3] - poses[i, :3, 3]
            b = float(np.linalg.norm(base))
            if b <= 1e-9:
                continue
            angle = _tri_angle_deg(b, depth)
            axis_angle = np.degrees(np.arccos(abs(float(base @ poses[i, :3, 2])) / b))
            view_angle = np.degrees(np.arccos(np.clip(poses[i, :3, 2] @ poses[j, :3, 2], -1, 1)))
            if not (opts.min_tri_angle_deg <= angle <= opts.max_tri_angle_deg):
                continue
            if axis_angle < opts.min_baseline_axis_angle_deg or view_angle > 60.0:
                continue
            shared = len(np.intersect1d(obs_i, observers[j], assume_unique=True))
            # prefer many shared tracks, and angles of at least ~5 degrees for depth precision
            scored.append((shared * min(1.0, angle / 5.0), int(j)))
        scored.sort(reverse=True)
        out[int(i)] = [j for _, j in scored[:opts.num_neighbors]]
    return out


@dataclass
class _Rectified:
    R_rw: np.ndarray  # world -> rectified rotation
    K: np.ndarray
    size: Tuple[int, int]
    H_i: np.ndarray
    H_j: np.ndarray
    baseline: float


def _rectify(K_i, K_j, pose_i, pose_j, size_i, size_j) -> _Rectified:
    c_i, c_j = pose_i[:3, 3], pose_j[:3, 3]
    base = c_j - c_i
    b = float(np.linalg.norm(base))
    x = base / b
    z = pose_i[:3, 2] + pose_j[:3, 2]
    z = z - (z @ x) * x
    z /= np.linalg.norm(z)
    y = np.cross(z, x)
    R_rw = np.stack([x, y, z])
    f = float(np.mean([K_i[0, 0], K_i[1, 1], K_j[0, 0], K_j[1, 1]]))
    K0 = np.array([[f, 0, 0], [0, f, 0], [0, 0, 1.0]])
    H_i0 = K0 @ R_rw @ pose_i[:3, :3] @ np.linalg.inv(K_i)
    H_j0 = K0 @ R_rw @ pose_j[:3, :3] @ np.linalg.inv(K_j)
    w, h = size_i
    corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], float)
    warped = corners @ H_i0.T
    warped = warped[:, :2] / warped[:, 2:3]
    lo = np.floor(warped.min(axis=0))
    hi = np.ceil(warped.max(axis=0))
    span = np.minimum(hi - lo + 1, [2 * w, 2 * h])  # never larger than twice the input
    centre = (lo + hi) / 2.0
    lo = centre - span / 2.0
    K = K0.copy()
    K[0, 2], K[1, 2] = -lo[0], -lo[1]
    shift = K @ np.linalg.inv(K0)
    return _Rectified(R_rw=R_rw, K=K, size=(int(span[0]), int(span[1])),
                      H_i=shift @ H_i0, H_j=shift @ H_j0, baseline=b)


def _disparity_range(rect: _Rectified, pose_i: np.ndarray, sparse: np.ndarray,
                     opts: DenseOptions) -> Tuple[int, int]:
    """Return ``(min_disparity, num_disparities)`` covering the sparse points seen by view i."""
    f = rect.K[0, 0]
    if len(sparse) >= 8:
        z = (sparse - pose_i[:3, 3]) @ rect.R_rw.T
        z = z[:, 2][z[:, 2] > 1e-9]
    else:
        z = np.zeros(0)
    if len(z) >= 8:
        disp = f * rect.baseline / z
        lo = float(np.percentile(disp, 0.5)) * 0.8 - 2.0
        hi = float(np.percentile(disp, 99.5)) * 1.2 + 2.0
    else:
        lo, hi = 0.0, 0.25 * rect.size[0]
    lo = max(int(np.floor(lo)), 0)
    num = int(np.ceil((hi - lo) / 16.0)) * 16
    num = int(np.clip(num, 16, opts.max_disparities))
    return lo, num


def pair_depth(img_i: np.ndarray, img_j: np.ndarray, K_i: np.ndarray, K_j: np.ndarray,
               pose_i: np.ndarray, pose_j: np.ndarray, sparse_i: np.ndarray,
               grid_u: np.ndarray, grid_v: np.ndarray,
               opts: DenseOptions) -> Tuple[np.ndarray, np.ndarray]:
    """
    Depth of view i's pixels ``(grid_u, grid_v)`` from the stereo pair (i, j).

    Images are ``[H, W, 3]`` uint8, poses ``[4, 4]`` camera-to-world, ``sparse_i`` ``[P, 3]``
    world points seen by view i (sets the disparity search range). Returns ``(depth, disparity)``
    arrays shaped like the grid, z-depth in view i's frame, NaN where no reliable match exists.
    """
    size_i = (img_i.shape[1], img_i.shape[0])
    size_j = (img_j.shape[1], img_j.shape[0])
    rect = _rectify(K_i, K_j, pose_i, pose_j, size_i, size_j)
    left = cv2.warpPerspective(img_i, rect.H_i, rect.size, flags=cv2.INTER_LINEAR)
    right = cv2.warpPerspective(img_j, rect.H_j, rect.size, flags=cv2.INTER_LINEAR)
    ones_i = np.full(img_i.shape[:2], 255, np.uint8)
    ones_j = np.full(img_j.shape[:2], 255, np.uint8)
    mask_l = cv2.warpPerspective(ones_i, rect.H_i, rect.size, flags=cv2.INTER_NEAREST) > 0
    mask_r = cv2.warpPerspective(ones_j, rect.H_j, rect.size, flags=cv2.INTER_NEAREST) > 0
    min_disp, num_disp = _disparity_range(rect, pose_i, sparse_i, opts)
    # SGBM needs the whole search range inside the rectified width (else OpenCV fails with an
    # absurd allocation): shrink it, or give up on a pair whose range leaves no room.
    room = (rect.size[0] - 1 - min_disp) // 16 * 16
    if room < 16:
        nan = np.full(np.shape(grid_u), np.nan, np.float32)
        return nan, nan.copy()
    num_disp = min(num_disp, room)
    bs = opts.block_size
    sgbm = cv2.StereoSGBM_create(
        minDisparity=min_disp, numDisparities=num_disp, blockSize=bs,
        P1=8 * 3 * bs * bs, P2=32 * 3 * bs * bs, disp12MaxDiff=1, preFilterCap=31,
        uniquenessRatio=10, speckleWindowSize=100, speckleRange=2,
        mode=cv2.STEREO_SGBM_MODE_SGBM_3WAY)
    disp = sgbm.compute(left, right).astype(np.float32) / 16.0
    disp[disp < max(min_disp, 0.5)] = np.nan
    disp[~mask_l] = np.nan
    # the matched right pixel must lie on real image content, not on the warp's black border
    hh, ww = disp.shape
    rows, cols = np.nonzero(np.isfinite(disp))
    xr = np.round(cols - disp[rows, cols]).astype(np.int64)
    bad = (xr < 0) | (xr >= ww)
    bad[~bad] = ~mask_r[rows[~bad], xr[~bad]]
    disp[rows[bad], cols[bad]] = np.nan
    # read the disparity back at view i's own pixels
    pix = np.stack([grid_u, grid_v, np.ones_like(grid_u)], -1).astype(np.float64)
    pr = pix @ rect.H_i.T
    pr = pr[..., :2] / pr[..., 2:3]
    col = np.round(pr[..., 0]).astype(np.int64)
    row = np.round(pr[..., 1]).astype(np.int64)
    inside = (col >= 0) & (col < ww) & (row >= 0) & (row < hh)
    d = np.full(grid_u.shape, np.nan, np.float32)
    d[inside] = disp[row[inside], col[inside]]
    f = rect.K[0, 0]
    z_r = f * rect.baseline / d
    x_r = np.stack([(pr[..., 0] - rect.K[0, 2]) / f * z_r,
                    (pr[..., 1] - rect.K[1, 2]) / f * z_r, z_r], -1)
    # rectified frame -> world -> z-depth in view i (both frames share view i's centre)
    depth = (x_r @ rect.R_rw) @ pose_i[:3, 2]
    depth = np.where(depth > 0, depth, np.nan).astype(np.float32)
    return depth, d


def densify_view(view: int, images: Sequence[np.ndarray], Ks: Sequence[np.ndarray],
                 poses: np.ndarray, sparse_points: np.ndarray,
                 observers: Sequence[np.ndarray], neighbors: Sequence[int],
                 opts: DenseOptions) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Return ``(points [N, 3] float32, colors [N, 3] uint8, quality [N] float32)`` of one view.

    ``images``/``Ks`` are at the working resolution; ``poses`` ``[V, 4, 4]`` camera-to-world.
    """
    img = images[view]
    h, w = img.shape[:2]
    grid_v, grid_u = np.mgrid[0:h:opts.stride, 0:w:opts.stride]
    sparse_i = sparse_points[observers[view]] if len(observers[view]) else sparse_points
    depths, disps = [], []
    for j in neighbors:
        dep, dis = pair_depth(img, images[j], Ks[view], Ks[j], poses[view], poses[j], sparse_i,
                              grid_u, grid_v, opts)
        depths.append(dep)
        disps.append(dis)
    empty = (np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8), np.zeros(0, np.float32))
    if not depths:
        return empty
    depths = np.stack(depths)
    disps = np.stack(disps)
    valid = np.isfinite(depths)
    if len(depths) == 1:
        agree = valid
        min_agree = 1
    else:
        with warnings.catch_warnings(), np.errstate(invalid='ignore'):
            warnings.simplefilter('ignore', RuntimeWarning)  # all-NaN pixels stay NaN
            ref = np.nanmedian(depths, axis=0)
            agree = valid & (np.abs(depths - ref) <= opts.consistency_tol * ref)
        min_agree = 2
    n_agree = agree.sum(axis=0)
    keep = n_agree >= min_agree
    if not keep.any():
        return empty
    depth = np.where(agree, depths, 0.0).sum(axis=0)[keep] / n_agree[keep]
    disp = np.where(agree, disps, 0.0).sum(axis=0)[keep] / n_agree[keep]
    quality = (n_agree[keep] / len(depths)) * disp / (disp + 8.0)
    u = grid_u[keep].astype(np.float64)
    v = grid_v[keep].astype(np.float64)
    K = Ks[view]
    cam = np.stack([(u - K[0, 2]) / K[0, 0] * depth, (v - K[1, 2]) / K[1, 1] * depth, depth], -1)
    pose = poses[view]
    world = cam @ pose[:3, :3].T + pose[:3, 3]
    colors = img[grid_v[keep], grid_u[keep]]
    return world.astype(np.float32), colors.astype(np.uint8), quality.astype(np.float32)
