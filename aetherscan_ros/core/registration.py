# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Window-to-map registration from shared keyframes: a robust similarity (numpy only).

A mapping window starts with keyframes already in the map (the overlap). For each shared
keyframe ``i`` the window gives its pose ``W_i`` (window frame, the window's own scale) and the
map holds ``M_i`` (map frame); both are the same camera, so the similarity ``x_map = s R
x_win + t`` satisfies ``R = R^M_i (R^W_i)^T`` and ``c^M_i = s R c^W_i + t`` for every one.

Point correspondences come for free from the shared cameras: a pixel ray of keyframe ``i``
hits the same surface in both reconstructions, so its depths agree up to the scale,
``d^M = s d^W``. :func:`depth_grid` keeps the median depth per cell of a coarse pixel grid
(``cell_px`` pixels), from the view's points; cells both sides see are the correspondences.

Method: (1) rotation: the consensus of ``R^M_i (R^W_i)^T`` (the largest set within
``max_angle_deg``, :func:`aetherscan_ros.core.anchoring` pieces); (2) scale: the median depth
ratio over all correspondences (robust to half of them being wrong), or, without enough of
them, the joint centre/orientation fit of the anchoring on two or more shared keyframes;
(3) translation from the centres; (4) refinement: Umeyama on the back-projected
correspondences within the inlier distance, kept when it lowers the residual. The residual is
the RMS distance of the agreeing correspondences (within twice the limit; or of the camera
centres) in map units; relative to the map's median depth it must stay under
``max_residual_rel``, and at least half of the correspondences must agree, or the window is
refused with the reason (``ok=False``), never placed wrongly.
"""

from dataclasses import dataclass
import math
from typing import Optional, Sequence, Tuple

import numpy as np

from aetherscan_ros.core.anchoring import _joint_fit, _orientation_consensus, _project_so3
from aetherscan_ros.core.geometry import umeyama

_NAN = float('nan')


@dataclass(frozen=True)
class DepthGrid:
    """Median z-depth per pixel cell of one view: ``cells [C]`` (sorted) and ``depth [C]``."""

    K: np.ndarray              # [3, 3]
    size: Tuple[int, int]      # (width, height) of the image
    cell_px: int
    cells: np.ndarray          # [C] int64, row-major cell index
    depth: np.ndarray          # [C] float64, in the unit of the points

    def scaled(self, scale: float) -> 'DepthGrid':
        """Return the grid with depths times ``scale`` (the view in another unit)."""
        return DepthGrid(self.K, self.size, self.cell_px, self.cells, self.depth * scale)

    def rays(self, cells: np.ndarray) -> np.ndarray:
        """Return the camera-frame rays ``[C, 3]`` (z = 1) through the centres of ``cells``."""
        cols = -(-int(self.size[0]) // self.cell_px)
        u = (cells % cols + 0.5) * self.cell_px - 0.5
        v = (cells // cols + 0.5) * self.cell_px - 0.5
        pix = np.stack([u, v, np.ones_like(u, dtype=np.float64)], axis=1)
        return pix @ np.linalg.inv(self.K).T


def depth_grid(points: np.ndarray, pose_c2w: np.ndarray, K: np.ndarray,
               size: Sequence[int], cell_px: int = 0) -> Optional[DepthGrid]:
    """
    Return the :class:`DepthGrid` of a view's points ``[N, 3]`` (world frame), or None.

    ``pose_c2w`` ``[4, 4]`` is the view's pose in the same frame; ``cell_px`` 0 = 1/40 of the
    shorter image side (at least 4 pixels).
    """
    pose = np.asarray(pose_c2w, np.float64)
    if not np.isfinite(pose).all() or len(points) == 0:
        return None
    width, height = int(size[0]), int(size[1])
    cell_px = int(cell_px) or max(4, min(width, height) // 40)
    cam = (np.asarray(points, np.float64) - pose[:3, 3]) @ pose[:3, :3]
    cam = cam[np.isfinite(cam).all(axis=1) & (cam[:, 2] > 0)]
    pix = cam @ np.asarray(K, np.float64).T
    u, v = pix[:, 0] / pix[:, 2], pix[:, 1] / pix[:, 2]
    inside = (u > -0.5) & (v > -0.5) & (u < width - 0.5) & (v < height - 0.5)
    if not inside.any():
        return None
    cols = -(-width // cell_px)
    cell = ((v[inside] + 0.5) // cell_px).astype(np.int64) * cols + \
        ((u[inside] + 0.5) // cell_px).astype(np.int64)
    z = cam[inside, 2]
    order = np.lexsort((z, cell))
    scell, sz = cell[order], z[order]
    starts = np.flatnonzero(np.r_[True, scell[1:] != scell[:-1]])
    counts = np.diff(np.r_[starts, len(scell)])
    return DepthGrid(np.asarray(K, np.float64), (width, height), cell_px, scell[starts],
                     sz[starts + counts // 2])


@dataclass(frozen=True)
class Registration:
    """
    The result of :func:`register_window`: ``transform`` ``[4, 4]`` = ``[[s R, t], [0, 1]]``.

    ``residual`` is in map units, ``residual_rel`` relative to the map's median depth;
    ``reason`` says why when ``ok`` is False (``transform`` is then NaN).
    """

    ok: bool
    reason: str
    scale: float
    transform: np.ndarray
    residual: float
    residual_rel: float
    rotation_deg: float
    views_used: Tuple[int, ...]
    correspondences: int

    def to_dict(self) -> dict:
        """Return a JSON-able summary (NaN -> None)."""
        out = {'ok': self.ok, 'reason': self.reason}
        for key in ('scale', 'residual', 'residual_rel', 'rotation_deg'):
            value = float(getattr(self, key))
            out[key] = value if math.isfinite(value) else None
        return {**out, 'views_used': list(self.views_used),
                'correspondences': self.correspondences}


def similarity(scale: float, rot: np.ndarray, trans: np.ndarray) -> np.ndarray:
    """Return the ``[4, 4]`` matrix of ``x -> scale * rot @ x + trans``."""
    out = np.eye(4)
    out[:3, :3] = scale * np.asarray(rot, np.float64)
    out[:3, 3] = trans
    return out


def transform_poses(sim: np.ndarray, poses_c2w: np.ndarray) -> np.ndarray:
    """Return rigid poses ``[V, 4, 4]`` moved by the similarity ``sim`` (rotation kept unit)."""
    poses = np.array(poses_c2w, np.float64).reshape(-1, 4, 4)
    scale = float(np.cbrt(np.linalg.det(sim[:3, :3])))
    out = sim @ poses
    out[:, :3, :3] /= scale
    return out


def _pairs(win: Sequence[Optional[DepthGrid]], mp: Sequence[Optional[DepthGrid]],
           views: np.ndarray):
    """Yield ``(view, rays [C, 3], window depth [C], map depth [C])`` of the shared cells."""
    for i in views:
        a, b = win[i], mp[i]
        if a is None or b is None or a.cell_px != b.cell_px or a.size != b.size:
            continue
        common, ia, ib = np.intersect1d(a.cells, b.cells, assume_unique=True,
                                        return_indices=True)
        if len(common):
            yield int(i), a.rays(common), a.depth[ia], b.depth[ib]


def register_window(window_c2w: np.ndarray, map_c2w: np.ndarray,
                    window_grids: Sequence[Optional[DepthGrid]],
                    map_grids: Sequence[Optional[DepthGrid]], max_residual_rel: float = 0.05,
                    max_angle_deg: float = 5.0, min_correspondences: int = 30,
                    max_depth_spread: float = 0.15,
                    min_inlier_fraction: float = 0.5) -> Registration:
    """
    Estimate the similarity window -> map from the shared keyframes (module docstring).

    ``window_c2w``, ``map_c2w`` ``[S, 4, 4]``: the shared keyframes' poses in both frames
    (non-finite: missing); ``window_grids``, ``map_grids``: their :class:`DepthGrid` (or None)
    in the window's and the map's unit. Refuses when the depth ratios scatter by more than
    ``max_depth_spread`` (robust std of ``log(d_map / d_win)``: different surfaces), when
    fewer than ``min_inlier_fraction`` of the correspondences agree within twice the residual
    limit (cells on depth edges mix surfaces: outliers), or when the RMS of those exceeds it.
    """
    win, mp = np.asarray(window_c2w, np.float64), np.asarray(map_c2w, np.float64)
    used: Tuple[int, ...] = ()

    def refuse(reason, scale=_NAN, res=_NAN, rel=_NAN, rot=_NAN, corr=0):
        return Registration(False, reason, scale, np.full((4, 4), _NAN), res, rel, rot, used,
                            corr)

    views = np.array([i for i in range(len(win))
                      if np.isfinite(win[i]).all() and np.isfinite(mp[i]).all()], int)
    if len(views) == 0:
        return refuse('no keyframe shared with the map has a pose in both (the window or the '
                      'map lost them)')
    rw, rm = _project_so3(win[views, :3, :3]), _project_so3(mp[views, :3, :3])
    mask, rot, angles = _orientation_consensus(rm @ np.swapaxes(rw, 1, 2), max_angle_deg)
    if mask.sum() < max(1, math.ceil(0.5 * len(views))):
        return refuse(f'shared keyframes disagree on the rotation: {int(mask.sum())} of '
                      f'{len(views)} within {max_angle_deg} deg')
    views = views[mask]
    used = tuple(int(v) for v in views)
    rot_deg = float(np.sqrt(np.mean(angles[mask] ** 2)))
    pairs = list(_pairs(window_grids, map_grids, views))
    ratios = np.concatenate([np.log(dm / dw) for _, _, dw, dm in pairs]) if pairs else \
        np.zeros(0)
    ratios = ratios[np.isfinite(ratios)]
    cw, cm = win[views, :3, 3], mp[views, :3, 3]
    depth_ref = float(np.median(np.concatenate([d for *_, d in pairs]))) if pairs else \
        float(np.median(np.concatenate([g.depth for g in map_grids if g is not None])
                        if any(g is not None for g in map_grids) else [_NAN]))
    if len(ratios) >= min_correspondences:
        log_s = float(np.median(ratios))
        spread = 1.4826 * float(np.median(np.abs(ratios - log_s)))
        if spread > max_depth_spread:
            return refuse(f'the window and the map disagree on the depths of the shared '
                          f'keyframes (robust spread {spread:.2f} > {max_depth_spread} in log '
                          f'ratio): different surfaces, not the same place', corr=len(ratios))
        scale = math.exp(log_s)
    elif len(views) >= 2 and np.ptp(cw, axis=0).max() > 0:
        scale, rot, _ = _joint_fit(cw, cm, rw[mask], rm[mask], None)
        if not scale > 0:
            return refuse('scale unobservable: the shared keyframes coincide')
    else:
        return refuse(f'scale unobservable: {len(ratios)} depth correspondences '
                      f'({min_correspondences} needed) and {len(views)} shared keyframe(s)',
                      corr=len(ratios))
    trans = (cm - scale * cw @ rot.T).mean(axis=0)
    if not math.isfinite(depth_ref) or depth_ref <= 0:
        depth_ref = float(np.linalg.norm(cm - cm.mean(axis=0), axis=1).max()) or 1.0

    def residual(s, r, t):
        """Return (RMS of the inliers, inlier fraction, src, dst); inliers: within 2x limit."""
        if not pairs:
            err = np.linalg.norm(cm - (s * cw @ r.T + t), axis=1)
            return float(np.sqrt(np.mean(err ** 2))), 1.0, None, None
        src, dst = _correspondence_points(pairs, win, mp)
        err = np.linalg.norm(dst - (s * src @ r.T + t), axis=1)
        inl = err <= 2.0 * max_residual_rel * depth_ref   # depth edges mix surfaces: outliers
        rms = float(np.sqrt(np.mean(err[inl] ** 2))) if inl.any() else _NAN
        return rms, float(inl.mean()), src, dst

    res, frac, src, dst = residual(scale, rot, trans)
    if src is not None and len(src) >= max(3, min_correspondences):
        err = np.linalg.norm(dst - (scale * src @ rot.T + trans), axis=1)
        close = err <= 2.0 * max_residual_rel * depth_ref
        if close.sum() >= max(3, min_correspondences):
            s2, r2, t2 = umeyama(src[close], dst[close])
            res2, frac2, _, _ = residual(s2, r2, t2)
            if s2 > 0 and frac2 >= frac and res2 <= res:
                scale, rot, trans, res, frac = s2, r2, t2, res2, frac2
    rel = res / depth_ref
    if not frac >= min_inlier_fraction:
        return refuse(f'only {frac:.0%} of {len(src)} depth correspondences agree within '
                      f'{2 * max_residual_rel:.3g} of the scene depth ({min_inlier_fraction:.0%} '
                      'needed)', scale, res, rel, rot_deg, len(ratios))
    if not rel <= max_residual_rel:
        return refuse(f'residual {rel:.3f} of the scene depth > {max_residual_rel} (RMS '
                      f'{res:.4g} map units over {len(ratios) or len(views)} '
                      f'correspondences)', scale, res, rel, rot_deg, len(ratios))
    return Registration(True, '', float(scale), similarity(scale, rot, trans), res, rel,
                        rot_deg, used, int(len(ratios)))


def _correspondence_points(pairs, win: np.ndarray, mp: np.ndarray):
    """Return back-projected shared cells ``(window [K, 3], map [K, 3])``."""
    src, dst = [], []
    for i, rays, dw, dm in pairs:
        ok = np.isfinite(dw) & np.isfinite(dm)
        src.append((rays[ok] * dw[ok, None]) @ win[i, :3, :3].T + win[i, :3, 3])
        dst.append((rays[ok] * dm[ok, None]) @ mp[i, :3, :3].T + mp[i, :3, 3])
    return np.concatenate(src), np.concatenate(dst)
