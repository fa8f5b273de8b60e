# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
From pointmaps to a publishable result: focal, poses, local->global alignment, filtering.

numpy + OpenCV only (SPEC §9). Pixels are ``(u, v) = (column, row)`` integers and the principal
point defaults to ``(W / 2, H / 2)``, as upstream does.
"""

import logging
import math
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from aetherscan_ros.core.geometry import invert_pose, umeyama

_LOG = logging.getLogger(__name__)


def pixel_grid(height: int, width: int) -> np.ndarray:
    """Return ``[H, W, 2]`` float64 pixel coordinates ``(u, v)`` (no half-pixel offset)."""
    v, u = np.mgrid[0:height, 0:width]
    return np.stack([u, v], axis=-1).astype(np.float64)


def default_focal(height: int, width: int) -> float:
    """Return the fallback focal ``max(H, W) / (2 tan 30 deg)`` (a 60 degree field of view)."""
    return max(height, width) / (2.0 * math.tan(math.radians(30.0)))


def estimate_focal(pts3d: np.ndarray, conf: np.ndarray, percentile: float = 10.0,
                   iterations: int = 100) -> float:
    """
    Estimate one focal length from a pointmap by Weiszfeld iterations (SPEC §9.1).

    Parameters
    ----------
    pts3d : np.ndarray
        ``[H, W, 3]`` points in the camera frame of the view (view 0's global map).
    conf : np.ndarray
        ``[H, W]``; pixels with conf >= its ``percentile``-th percentile are used.
    percentile : float
        Confidence percentile of the mask (upstream: 10).
    iterations : int
        Weiszfeld iterations (upstream: 100).

    Returns the focal in pixels, clipped at 0 (a degenerate map gives 0: trap 8 of SPEC §12,
    callers must check), or :func:`default_focal` when no pixel passes the mask.

    """
    pts3d = np.asarray(pts3d, np.float64)
    height, width = pts3d.shape[:2]
    conf = np.asarray(conf, np.float64)
    mask = conf >= np.percentile(conf, percentile)
    if not mask.any():
        return default_focal(height, width)
    pix = (pixel_grid(height, width) - np.array([width / 2.0, height / 2.0]))[mask]
    pts = pts3d[mask]
    with np.errstate(divide='ignore', invalid='ignore'):
        ray = pts[:, :2] / pts[:, 2:3]
    ray = np.nan_to_num(ray, nan=0.0, posinf=0.0, neginf=0.0)
    dot_rp = (ray * pix).sum(-1)
    dot_rr = (ray * ray).sum(-1)
    if dot_rr.mean() <= 0:
        return 0.0
    focal = dot_rp.mean() / dot_rr.mean()
    for _ in range(iterations):
        dist = np.linalg.norm(pix - focal * ray, axis=-1)
        weight = 1.0 / np.maximum(dist, 1e-8)
        denom = (weight * dot_rr).sum()
        if denom <= 0:
            break
        focal = (weight * dot_rp).sum() / denom
    return float(max(focal, 0.0))


def intrinsics(focal: float, height: int, width: int) -> np.ndarray:
    """Return ``[3, 3]`` K with the principal point at ``(W / 2, H / 2)``."""
    return np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])


def pose_from_pnp(pts3d: np.ndarray, K: np.ndarray,  # noqa: N803 (K is the usual name)
                  conf: Optional[np.ndarray] = None,
                  min_conf: float = 1.0, conf_percentile: Optional[float] = None,
                  iterations: int = 100, reprojection_error: float = 5.0
                  ) -> Tuple[Optional[np.ndarray], int]:
    """
    Camera-to-world pose of one view from its pointmap in the world frame (SPEC §9.2).

    Parameters
    ----------
    pts3d : np.ndarray
        ``[H, W, 3]`` world points seen at each pixel (the global head's map).
    K : np.ndarray
        ``[3, 3]`` intrinsics of the network image.
    conf : np.ndarray, optional
        ``[H, W]``; pixels with ``conf > min_conf`` are used.
    min_conf : float
        Confidence floor (upstream: 1.0, i.e. practically all pixels).
    conf_percentile : float, optional
        Also drop pixels below this percentile of ``conf``. Upstream passes 85 but ignores it
        (trap 8, SPEC §12); None reproduces upstream.
    iterations, reprojection_error : int, float
        RANSAC iterations and inlier threshold in pixels (upstream: 100, 5.0).

    Returns ``(pose_c2w [4, 4] float64 or None on failure, number of RANSAC inliers)``.
    SQPNP inside RANSAC, as upstream (OpenCV's RANSAC seed is fixed: deterministic).

    """
    height, width = pts3d.shape[:2]
    mask = np.isfinite(pts3d).all(-1)
    if conf is not None:
        mask &= conf > min_conf
        if conf_percentile is not None:
            mask &= conf >= np.percentile(conf, conf_percentile)
    if mask.sum() < 4 or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
        return None, 0
    obj = pts3d[mask].astype(np.float32)
    img = pixel_grid(height, width)[mask].astype(np.float32)
    try:
        ok, rvec, tvec, inliers = cv2.solvePnPRansac(
            obj, img, np.asarray(K, np.float32), None, iterationsCount=int(iterations),
            reprojectionError=float(reprojection_error), flags=cv2.SOLVEPNP_SQPNP)
    except cv2.error as exc:
        _LOG.warning('PnP failed: %s', exc)
        return None, 0
    if not ok:
        return None, 0
    w2c = np.eye(4)
    w2c[:3, :3] = cv2.Rodrigues(rvec)[0]
    w2c[:3, 3] = tvec.ravel()
    return invert_pose(w2c), 0 if inliers is None else int(len(inliers))


def estimate_poses(pts3d_global: Sequence[np.ndarray], conf: Sequence[np.ndarray],
                   Ks: Sequence[np.ndarray], **pnp_options  # noqa: N803
                   ) -> Tuple[np.ndarray, List[int], List[int]]:
    """
    Estimate every view's pose by PnP: ``(poses_c2w [V, 4, 4], failed views, inliers)``.

    A failed view gets the identity pose (as upstream) and is listed in ``failed``.
    """
    poses, failed, inliers = [], [], []
    for i, (pts, c, K) in enumerate(zip(pts3d_global, conf, Ks)):
        pose, count = pose_from_pnp(pts, K, c, **pnp_options)
        if pose is None:
            _LOG.warning('view %d: PnP-RANSAC found no pose; using the identity', i)
            failed.append(i)
            pose = np.eye(4)
        poses.append(pose)
        inliers.append(count)
    return np.stack(poses), failed, inliers


def align_local_to_global(local: np.ndarray, glob: np.ndarray, conf: np.ndarray,
                          percentile: float = 85.0
                          ) -> Tuple[np.ndarray, Tuple[float, np.ndarray, np.ndarray]]:
    """
    Map a view's local pointmap into the global frame by a similarity (SPEC §9.3).

    Umeyama with scale (``aetherscan_ros.core.geometry.umeyama``) from ``local`` ``[H, W, 3]`` to
    ``glob`` ``[H, W, 3]`` on the pixels whose global ``conf`` ``[H, W]`` is at least its
    ``percentile``-th percentile (all pixels if fewer than 3 pass; identity if still fewer).
    Returns ``(aligned [H, W, 3] float32, (s, R [3, 3], t [3]))``.
    """
    src = np.asarray(local, np.float64).reshape(-1, 3)
    dst = np.asarray(glob, np.float64).reshape(-1, 3)
    c = np.asarray(conf, np.float64).reshape(-1)
    valid = np.isfinite(src).all(-1) & np.isfinite(dst).all(-1)
    mask = valid & (c >= np.percentile(c, percentile))
    if mask.sum() < 3:
        mask = valid
    if mask.sum() < 3:
        scale, rot, trans = 1.0, np.eye(3), np.zeros(3)
    else:
        scale, rot, trans = umeyama(src[mask], dst[mask], with_scale=True)
    aligned = scale * src @ rot.T + trans
    return aligned.reshape(np.shape(local)).astype(np.float32), (scale, rot, trans)


def top_confidence_mask(conf: np.ndarray, drop_percentile: float) -> np.ndarray:
    """
    Boolean mask keeping the ``100 - drop_percentile`` % most confident entries of ``conf``.

    Ties are broken by pixel order, so exactly ``floor(n * (100 - p) / 100)`` entries are kept
    (as the upstream viewer's per-view slider).
    """
    flat = np.asarray(conf).reshape(-1)
    if not 0.0 <= drop_percentile <= 100.0:
        raise ValueError(f'confidence percentile must be in [0, 100], got {drop_percentile}')
    keep = int(len(flat) * (100.0 - drop_percentile) / 100.0)
    mask = np.zeros(len(flat), bool)
    mask[np.argsort(-flat, kind='stable')[:keep]] = True
    return mask.reshape(np.shape(conf))
