# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Multi-view plane-sweep depth for the views rectified stereo cannot serve.

Rectification puts both epipoles at infinity; when the camera moves forward (a robot driving
ahead) the epipole lies inside the image and the rectified pair degenerates, and with a narrow
baseline a single pair has too little disparity for SGBM's integer search. A plane sweep needs
neither: for each fronto-parallel plane ``z = 1 / q`` of the reference view (inverse depths
``q`` spaced so that consecutive planes move a pixel by about one pixel in the widest
neighbour), every neighbour is warped onto the reference with the plane's homography
``H = K_j (R_ji + t_ji q n^T) K_i^-1`` (``cv2.warpPerspective``), scored by zero-mean NCC over
a small window (``cv2.boxFilter``), and the best ``top_k`` neighbours' scores are averaged
(occlusion-robust). The winner takes all, a parabola refines it in inverse depth, and a pixel is
kept only where:

* the aggregated NCC is high and the winner is not at the end of the range;
* at least ``min(2, neighbours)`` neighbours agree (NCC above threshold at the chosen depth);
* the point moves by at least ``min_parallax_px`` between the chosen depth and infinity in
  some agreeing neighbour: near the epipole of forward motion (and for a too narrow baseline)
  depth is not observable, and those pixels are dropped rather than guessed.

Polar rectification would also handle an epipole inside the image, but still matches one
pair at a time; the sweep uses all neighbours at once (narrow baselines add up), is a handful
of vectorised OpenCV calls per plane, and runs at the dense grid's resolution (the working image
decimated by the dense stride), so its cost stays near SGBM's.

Shapes: images ``[H, W]`` float32 grey at the sweep resolution, ``K`` ``[3, 3]``, poses
``[4, 4]`` camera-to-world; depth maps ``[H, W]`` float32 z-depth in the reference view, NaN
where no depth is kept.
"""

from dataclasses import dataclass
from typing import Sequence, Tuple

import cv2
import numpy as np


@dataclass
class SweepOptions:
    """Tuning of the plane sweep (pixels are sweep-resolution pixels)."""

    window: int = 5
    top_k: int = 2
    min_planes: int = 24
    max_planes: int = 160
    plane_step_px: float = 1.0
    min_ncc: float = 0.6
    min_parallax_px: float = 2.0
    num_neighbors: int = 4
    min_tri_angle_deg: float = 0.4
    max_tri_angle_deg: float = 40.0
    max_view_angle_deg: float = 60.0


@dataclass
class SweepDepth:
    """Result of one reference view: depth, aggregated NCC, parallax, agreeing neighbours."""

    depth: np.ndarray
    score: np.ndarray
    parallax_px: np.ndarray
    support: np.ndarray
    neighbours: int


def decimate(image: np.ndarray, stride: int) -> np.ndarray:
    """
    Return a grey float32 ``[ceil(H / s), ceil(W / s)]`` image sampled at pixels ``(s x, s y)``.

    Pixel ``(x, y)`` of the result is centred on pixel ``(s x, s y)`` of ``image`` (RGB or
    grey), so the intrinsics scale exactly: ``f / s`` and ``c / s``.
    """
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    grey = grey.astype(np.float32)
    if stride > 1:
        grey = cv2.GaussianBlur(grey, (0, 0), 0.5 * stride)
    return np.ascontiguousarray(grey[::stride, ::stride])


def decimated_K(K: np.ndarray, stride: int) -> np.ndarray:
    """Return the intrinsics of :func:`decimate`'s output."""
    out = np.asarray(K, np.float64).copy()
    out[:2, :] /= float(stride)
    return out


def _relative(pose_ref: np.ndarray, pose_j: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Return ``(R, t)`` with ``X_j = R X_ref + t``."""
    R = pose_j[:3, :3].T @ pose_ref[:3, :3]
    t = pose_j[:3, :3].T @ (pose_ref[:3, 3] - pose_j[:3, 3])
    return R, t


def _parallax(a: np.ndarray, b: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Pixel distance between the projections at inverse depth ``q`` and at infinity."""
    den = a[:, 2] + q * b[2]
    with np.errstate(divide='ignore', invalid='ignore'):
        x = (a[:, 0] + q * b[0]) / den
        y = (a[:, 1] + q * b[1]) / den
        x0 = a[:, 0] / a[:, 2]
        y0 = a[:, 1] / a[:, 2]
    out = np.hypot(x - x0, y - y0)
    return np.where((den > 0) & (a[:, 2] > 0), out, 0.0)


def inverse_depth_planes(rays: np.ndarray, terms, q_near: float, q_far: float,
                         opts: SweepOptions) -> np.ndarray:
    """Return inverse depths from ``q_far`` to ``q_near``, about ``plane_step_px`` apart."""
    step = rays[::max(1, len(rays) // 500)]
    span = 0.0
    for R_K, b in terms:
        a = step @ R_K.T
        move = np.abs(_parallax(a, b, np.full(len(a), q_near)) -
                      _parallax(a, b, np.full(len(a), q_far)))
        span = max(span, float(np.percentile(move, 95)) if len(move) else 0.0)
    count = int(np.clip(np.ceil(span / opts.plane_step_px) + 1, opts.min_planes,
                        opts.max_planes))
    return np.linspace(q_far, q_near, count)


def _ncc(ref_mu: np.ndarray, ref_sd: np.ndarray, ref: np.ndarray, warped: np.ndarray,
         window: int) -> np.ndarray:
    box = (window, window)
    mu = cv2.boxFilter(warped, -1, box)
    var = cv2.boxFilter(warped * warped, -1, box) - mu * mu
    cross = cv2.boxFilter(ref * warped, -1, box) - ref_mu * mu
    return cross / (ref_sd * np.sqrt(np.maximum(var, 1.0)))


def _inside(H: np.ndarray, u: np.ndarray, v: np.ndarray, size: Tuple[int, int]) -> np.ndarray:
    """``[H, W]`` bool: pixels ``(u [1, W], v [H, 1])`` that ``H`` maps in front, into ``size``."""
    hz = (H[2, 0] * u + H[2, 1] * v) + H[2, 2]
    hx = (H[0, 0] * u + H[0, 1] * v) + H[0, 2]
    hy = (H[1, 0] * u + H[1, 1] * v) + H[1, 2]
    ok = hz > 0
    ok &= hx >= 0
    ok &= hy >= 0
    ok &= hx <= (size[0] - 1) * hz
    ok &= hy <= (size[1] - 1) * hz
    return ok


def _top_mean(scores: np.ndarray, k: int) -> np.ndarray:
    """Mean of the ``k`` largest of ``scores`` ``[J, H, W]`` along axis 0."""
    if k == 1:
        return scores.max(axis=0)
    if k == 2:  # running first and second largest: no sort
        first = np.maximum(scores[0], scores[1])
        second = np.minimum(scores[0], scores[1])
        for row in scores[2:]:
            np.maximum(second, np.minimum(first, row), out=second)
            np.maximum(first, row, out=first)
        return 0.5 * (first + second)
    return np.sort(scores, axis=0)[-k:].mean(axis=0)


def sweep_depth(ref: np.ndarray, K_ref: np.ndarray, pose_ref: np.ndarray,
                others: Sequence[np.ndarray], K_others: Sequence[np.ndarray],
                pose_others: Sequence[np.ndarray], depth_range: Tuple[float, float],
                opts: SweepOptions) -> SweepDepth:
    """
    Sweep fronto-parallel planes of the reference view through ``depth_range`` (near, far).

    ``ref`` and ``others`` are grey float32 ``[H, W]`` images at the sweep resolution with
    their ``[3, 3]`` intrinsics and ``[4, 4]`` camera-to-world poses.
    """
    h, w = ref.shape
    num = len(others)
    vv, uu = np.mgrid[0:h, 0:w]
    pix = np.stack([uu.ravel(), vv.ravel(), np.ones(h * w)], -1).astype(np.float64)
    rays = pix @ np.linalg.inv(K_ref).T
    rel = [_relative(pose_ref, p) for p in pose_others]
    terms = [(K_j @ R, K_j @ t) for (R, t), K_j in zip(rel, K_others)]
    q_near, q_far = 1.0 / depth_range[0], 1.0 / depth_range[1]
    planes = inverse_depth_planes(rays, terms, q_near, q_far, opts)
    box = (opts.window, opts.window)
    ref_mu = cv2.boxFilter(ref, -1, box)
    ref_sd = np.sqrt(np.maximum(cv2.boxFilter(ref * ref, -1, box) - ref_mu * ref_mu, 1.0))
    textured = ref_sd > 2.0
    K_inv = np.linalg.inv(K_ref)
    u_row = np.arange(w, dtype=np.float32)[None, :]
    v_col = np.arange(h, dtype=np.float32)[:, None]
    top_k = min(opts.top_k, num)
    volume = np.empty((len(planes), h, w), np.float32)
    per_view_best = np.full((num, h, w), -1.0, np.float32)
    best = np.full((h, w), -np.inf, np.float32)
    scores = np.empty((num, h, w), np.float32)
    for k, q in enumerate(planes):
        for j, (other, (R_K, b)) in enumerate(zip(others, terms)):
            H = (R_K + np.outer(b, [0.0, 0.0, q])) @ K_inv  # ref pixel -> pixel of view j
            warped = cv2.warpPerspective(other, H, (w, h), flags=cv2.INTER_LINEAR |
                                         cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
            ncc = _ncc(ref_mu, ref_sd, ref, warped, opts.window)
            ncc[~_inside(H.astype(np.float32), u_row, v_col, other.shape[::-1])] = -1.0
            scores[j] = ncc
        agg = _top_mean(scores, top_k)
        volume[k] = agg
        better = agg > best
        np.copyto(best, agg, where=better)
        np.copyto(per_view_best, scores, where=better[None])
    idx = np.argmax(volume, axis=0)
    rows, cols = np.mgrid[0:h, 0:w]
    interior = (idx > 0) & (idx < len(planes) - 1)
    lo = volume[np.clip(idx - 1, 0, None), rows, cols]
    mid = volume[idx, rows, cols]
    hi = volume[np.clip(idx + 1, None, len(planes) - 1), rows, cols]
    curv = lo - 2.0 * mid + hi
    with np.errstate(divide='ignore', invalid='ignore'):
        offset = np.where(curv < 0, 0.5 * (lo - hi) / curv, 0.0)
    offset = np.clip(offset, -0.5, 0.5)
    dq = planes[1] - planes[0]
    q = planes[idx] + offset * dq
    agree = per_view_best >= opts.min_ncc
    parallax = np.zeros((num, h * w))
    for j, (R_K, b) in enumerate(terms):
        parallax[j] = _parallax(rays @ R_K.T, b, q.ravel())
    parallax = parallax.reshape(num, h, w)
    seen = np.where(agree, parallax, 0.0).max(axis=0)
    support = agree.sum(axis=0)
    keep = (interior & textured & (mid >= opts.min_ncc) & (support >= min(2, num)) &
            (seen >= opts.min_parallax_px) & (q > 0))
    depth = np.where(keep, 1.0 / np.where(q > 0, q, 1.0), np.nan).astype(np.float32)
    return SweepDepth(depth=depth, score=mid.astype(np.float32),
                      parallax_px=seen.astype(np.float32), support=support.astype(np.int32),
                      neighbours=num)
