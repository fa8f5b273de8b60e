# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Metric anchoring: the similarity from a reconstruction's frame to a TF fixed frame.

Frames and conventions. View ``i`` has a reconstruction pose ``recon_c2w[i]`` (its optical
frame -> ``world``, the reconstruction's frame, arbitrary scale; rotation ``R_i``, centre
``c_i``) and a TF pose ``tf_c2w[i]`` (the same optical frame -> ``fixed``, e.g. ``odom``, in
metres; rotation ``S_i``, centre ``d_i``). The model is a similarity::

    x_fixed = R @ (s * x_world) + t   so   d_i = s R c_i + t   and   S_i = R R_i

``s`` is :attr:`Anchor.scale` and ``[R | t]`` is :attr:`Anchor.world_to_fixed`, the rigid part
applied after scaling (the pose of the scaled ``world`` frame in ``fixed``).

Method. Centres alone fix the rotation only when they span a plane: with two views (or a
straight path) the rotation about the baseline is unobservable from positions. Every view also
gives the rotation directly (``R = S_i R_i^T``), so the fit is joint: minimise::

    sum_i |d_i - s R c_i - t|^2  +  lam * sum_i ||S_i - R R_i||_F^2,    lam = L^2 / 2

where ``L`` (``orientation_weight_m``, default the RMS spread of the TF centres) is the lever
arm that makes one radian of orientation disagreement weigh like ``L`` metres of centre
disagreement (``||.||_F^2 ~ 2 theta^2``). For fixed ``s`` this is an orthogonal Procrustes
problem, ``R = proj_SO3(s sum d~ c~^T + lam sum S_i R_i^T)`` (``~``: centred); for fixed ``R``,
``s = sum d~ . R c~ / sum |c~|^2`` and ``t`` follows from the centroids. The two steps alternate
from the rotation-free start ``s = sqrt(sum |d~|^2 / sum |c~|^2)``; noiseless input is
recovered exactly.

Robustness. (1) Orientation consensus: ``S_i R_i^T`` of the inliers agree; the largest set
within ``max_angle_deg`` of their mean is kept. (2) Positions: every pair of views with at
least ``min_baseline_m`` of TF baseline is a minimal set for the joint fit (all pairs, or
``max_hypotheses`` of them drawn with a fixed seed); the hypothesis with the lowest truncated
cost (MSAC) wins, views within ``max(outlier_m, outlier_rel * baseline)`` metres and
``max_angle_deg`` are its inliers, and the fit is repeated on them until they settle.

Refusals (``ok=False``, never a wrongly scaled answer): too few views, no agreeing majority
or two equally good ones (ambiguous outliers), too little TF baseline (pure rotation),
coinciding reconstruction centres or a scale outside ``scale_range``, an inconsistent
orientation (the rotation the centres imply, or the baseline direction on a straight path, far
from the orientations' one; mirrored or wrongly converted poses), too large a residual.
"""

from dataclasses import dataclass
import itertools
import math
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np
from scipy.spatial.distance import pdist

from aetherscan_ros.core.geometry import rotation_angle_deg, umeyama

_ORTHONORMAL_TOL = 1e-2   # how far an input rotation may be from SO(3) (float32 poses)
_COLLINEAR_RATIO = 0.2    # 2nd / 1st singular value of the TF centres below this: a line
_NAN = float('nan')

Fit = Tuple[float, np.ndarray, np.ndarray]   # (scale, R [3, 3], t [3])


@dataclass(frozen=True, eq=False)
class Anchor:
    """
    The result of :func:`estimate_anchor`.

    When ``ok`` is False, ``reason`` says why, ``scale`` and ``world_to_fixed`` are NaN (so a
    careless use cannot place anything) and the residuals are those of the refused fit, if
    one was made. ``views_used`` are the views the (refused) fit used; ``views_rejected`` are
    ``(view, reason)`` pairs for every other view.
    """

    ok: bool
    reason: str
    scale: float
    world_to_fixed: np.ndarray        # [4, 4], rigid, applied after scaling
    residual_rms_m: float
    residual_max_m: float
    views_used: Tuple[int, ...]
    views_rejected: Tuple[Tuple[int, str], ...]
    rotation_rms_deg: float = _NAN    # orientation residuals of the used views
    rotation_max_deg: float = _NAN
    baseline_m: float = _NAN          # largest distance between the used TF centres

    def to_dict(self) -> Dict[str, Any]:
        """Return a JSON-able summary (NaN -> None) for events and diagnostics."""
        out: Dict[str, Any] = {'ok': self.ok, 'reason': self.reason}
        for key in ('scale', 'residual_rms_m', 'residual_max_m', 'rotation_rms_deg',
                    'rotation_max_deg', 'baseline_m'):
            value = float(getattr(self, key))
            out[key] = value if math.isfinite(value) else None
        return {**out, 'views_used': list(self.views_used),
                'views_rejected': [{'view': v, 'reason': r} for v, r in self.views_rejected],
                'world_to_fixed': (self.world_to_fixed.tolist() if self.ok else None)}


def _project_so3(m: np.ndarray) -> np.ndarray:
    """Return the nearest rotation(s) ``[..., 3, 3]`` to ``m`` ``[..., 3, 3]`` (Frobenius)."""
    u, _, vt = np.linalg.svd(m)
    fix = np.ones(m.shape[:-2] + (3,))
    fix[..., 2] = np.where(np.linalg.det(u @ vt) < 0, -1.0, 1.0)
    return (u * fix[..., None, :]) @ vt


def _spread(x: np.ndarray) -> float:
    """Return the largest distance between two of the points ``[N, 3]`` (0 for N < 2)."""
    return float(pdist(x).max()) if len(x) > 1 else 0.0


def _rotation_problem(rot: np.ndarray, what: str) -> str:
    """Return why ``rot`` ``[3, 3]`` is not a rotation, or ''."""
    err = float(np.abs(rot.T @ rot - np.eye(3)).max())
    if err > _ORTHONORMAL_TOL:
        return f'{what} rotation is not orthonormal (error {err:.2g})'
    if np.linalg.det(rot) < 0:
        return f'{what} rotation is improper (det -1: a mirrored frame)'
    return ''


def _view_problem(recon: np.ndarray, tf: np.ndarray) -> str:
    """Return why a view ``([4, 4], [4, 4])`` cannot be used, or ''."""
    has_recon, has_tf = bool(np.isfinite(recon[:3]).all()), bool(np.isfinite(tf[:3]).all())
    if not has_recon and not has_tf:
        return 'not registered in the reconstruction and no TF pose'
    if not has_recon:
        return 'not registered in the reconstruction (non-finite pose)'
    if not has_tf:
        return 'no TF pose (lookup failed)'
    return (_rotation_problem(recon[:3, :3], 'reconstruction')
            or _rotation_problem(tf[:3, :3], 'TF'))


def _joint_fit(c: np.ndarray, d: np.ndarray, rc: np.ndarray, sd: np.ndarray,
               lever_m: Optional[float]) -> Fit:
    """Fit ``d ~ s R c + t``, ``sd ~ R rc`` (see above); ``c, d [N, 3]``, ``rc, sd [N, 3, 3]``."""
    xc, xd = c - c.mean(axis=0), d - d.mean(axis=0)
    var_c = float((xc ** 2).sum())
    if not var_c > 0:                                    # coinciding centres: no scale
        return _NAN, np.eye(3), np.full(3, _NAN)
    cross = xd.T @ xc                                    # sum d~ c~^T
    orient = (sd @ np.swapaxes(rc, 1, 2)).sum(axis=0)    # sum S_i R_i^T
    lever = float(np.sqrt((xd ** 2).sum() / len(d))) if lever_m is None else lever_m
    scale = float(np.sqrt((xd ** 2).sum() / var_c))     # rotation-free start
    for _ in range(200):                                 # alternate R | s and s | R
        rot = _project_so3(scale * cross + 0.5 * lever ** 2 * orient)
        old, scale = scale, float((cross * rot).sum()) / var_c
        if abs(scale - old) <= 1e-13 * abs(old):
            break
    return scale, rot, d.mean(axis=0) - scale * rot @ c.mean(axis=0)


def _residuals(fit: Fit, c: np.ndarray, d: np.ndarray, rc: np.ndarray,
               sd: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Return per-view centre residuals in metres ``[N]`` and orientation residuals in degrees."""
    scale, rot, trans = fit
    pos = np.linalg.norm(d - (scale * c @ rot.T + trans), axis=1)
    return pos, rotation_angle_deg(sd, rot @ rc)


def _orientation_consensus(q: np.ndarray, max_angle_deg: float
                           ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (inlier mask ``[N]``, mean rotation, angles ``[N]``) of ``q = S_i R_i^T``."""
    close = rotation_angle_deg(q[:, None], q[None, :]) <= max_angle_deg
    seed = int(np.argmax(close.sum(axis=1)))
    mask = close[seed]
    for _ in range(3):
        mean = _project_so3(q[mask].sum(axis=0))
        angles = rotation_angle_deg(q, mean)
        mask = angles <= max_angle_deg
        if not mask.any():
            break
    return mask, mean, angles


def _centre_disagreement_deg(c: np.ndarray, d: np.ndarray, rot: np.ndarray,
                             min_lateral_m: float) -> float:
    """
    Return the angle between the rotation the centres imply and ``rot`` ``[3, 3]``.

    Centres ``c, d`` ``[N, 3]`` that span a plane (with ``min_lateral_m`` of RMS spread across
    their main axis) give a full rotation (Umeyama); along a line only the direction counts:
    the angle between ``rot`` applied to the reconstruction's main axis and the TF one, the
    axes signed so that the views come in the same order along them.
    """
    xc, xd = c - c.mean(axis=0), d - d.mean(axis=0)
    _, sv, vt_d = np.linalg.svd(xd)
    if len(c) >= 3 and sv[1] >= max(_COLLINEAR_RATIO * sv[0], min_lateral_m * len(c) ** 0.5):
        return float(rotation_angle_deg(umeyama(c, d)[1], rot))
    axis_c = np.linalg.svd(xc)[2][0]
    axis_d = vt_d[0] * (1.0 if np.dot(xd @ vt_d[0], xc @ axis_c) >= 0 else -1.0)
    return float(np.degrees(np.arccos(np.clip(np.dot(rot @ axis_c, axis_d), -1.0, 1.0))))


def _hypotheses(c: np.ndarray, d: np.ndarray, min_pair_m: float, max_hypotheses: int,
                seed: int) -> Sequence[Tuple[int, int]]:
    """Return the pairs of views (minimal sets) to try, at most ``max_hypotheses``."""
    pairs = [(i, j) for i, j in itertools.combinations(range(len(c)), 2)
             if np.linalg.norm(d[i] - d[j]) >= min_pair_m and np.any(c[i] != c[j])]
    if len(pairs) > max_hypotheses:
        pick = np.random.default_rng(seed).choice(len(pairs), max_hypotheses, replace=False)
        pairs = [pairs[k] for k in sorted(pick)]
    return pairs


def _robust_fit(c: np.ndarray, d: np.ndarray, rc: np.ndarray, sd: np.ndarray, tol_m: float,
                max_angle_deg: float, min_pair_m: float, lever_m: Optional[float],
                max_hypotheses: int, seed: int):
    """
    Run MSAC over pairs, then refit on the inliers; return None or a tuple.

    The tuple is ``(fit, pos [N], ang [N], inliers [N], rival)``; ``rival``: another
    hypothesis has as many inliers, among them views this one rejects (ambiguous).
    """
    best, best_cost, masks = None, np.inf, []
    for i, j in _hypotheses(c, d, min_pair_m, max_hypotheses, seed):
        pair = [i, j]
        fit = _joint_fit(c[pair], d[pair], rc[pair], sd[pair], lever_m)
        if not fit[0] > 0:
            continue
        pos, ang = _residuals(fit, c, d, rc, sd)
        cost = float(np.minimum((pos / tol_m) ** 2, 1.0).sum()
                     + np.minimum((ang / max_angle_deg) ** 2, 1.0).sum())
        masks.append((pos <= tol_m) & (ang <= max_angle_deg))
        if cost < best_cost:
            best, best_cost = fit, cost
    if best is None:
        return None
    fit, mask = best, np.zeros(len(c), bool)
    for _ in range(10):   # refit on the inliers until they settle
        pos, ang = _residuals(fit, c, d, rc, sd)
        new = (pos <= tol_m) & (ang <= max_angle_deg)
        if (new == mask).all() or new.sum() < 2:
            break
        mask = new
        fit = _joint_fit(c[mask], d[mask], rc[mask], sd[mask], lever_m)
    rival = any(m.sum() >= new.sum() and (m & ~new).any() and (new & ~m).any() for m in masks)
    return fit, pos, ang, new, rival


def estimate_anchor(recon_c2w: np.ndarray, tf_c2w: np.ndarray, min_views: int = 2,
                    min_baseline_m: float = 0.05, max_residual_m: float = 0.05,
                    outlier_m: float = 0.1, outlier_rel: float = 0.02,
                    max_angle_deg: float = 5.0, max_disagreement_deg: float = 15.0,
                    min_inlier_fraction: float = 0.5,
                    orientation_weight_m: Optional[float] = None,
                    scale_range: Tuple[float, float] = (1e-6, 1e6),
                    max_hypotheses: int = 300, seed: int = 0) -> Anchor:
    """
    Estimate the similarity from the reconstruction's frame to the TF fixed frame.

    Parameters
    ----------
    recon_c2w : np.ndarray
        ``[V, 4, 4]`` camera-to-world poses of the reconstruction; non-finite: not registered.
    tf_c2w : np.ndarray
        ``[V, 4, 4]`` camera-to-fixed poses from TF, in metres; non-finite: lookup failed.
    min_views, min_baseline_m, max_residual_m
        Refuse with fewer views, a smaller TF baseline (largest distance between centres, in
        metres: pure rotation or standing still), a larger residual RMS (metres).
    outlier_m, outlier_rel
        A view whose centre is off by more than ``max(outlier_m, outlier_rel * baseline)``
        metres is an outlier.
    max_angle_deg
        A view whose orientation is off by more than this is an outlier.
    max_disagreement_deg
        Refuse when the centres imply a rotation this far from the orientations' one.
    min_inlier_fraction
        Refuse unless at least this fraction of the usable views (and ``min_views``) agree.
    orientation_weight_m, scale_range, max_hypotheses, seed
        Lever arm weighing orientations against centres (default: RMS spread of the TF
        centres); refuse a scale outside ``(low, high)``; at most this many pairs of views are
        tried, drawn with this seed.

    Returns
    -------
    Anchor
        See the module docstring for the method and :class:`Anchor` for the fields.

    """
    recon, tf = np.asarray(recon_c2w, np.float64), np.asarray(tf_c2w, np.float64)
    if recon.ndim != 3 or recon.shape[1:] != (4, 4) or recon.shape != tf.shape:
        raise ValueError(f'need two [V, 4, 4] pose arrays, got {recon.shape} and {tf.shape}')
    problems = [_view_problem(r, t) for r, t in zip(recon, tf)]
    rejected: Dict[int, str] = {i: why for i, why in enumerate(problems) if why}
    valid = np.array([i for i in range(len(recon)) if i not in rejected], int)
    used = valid
    diag: Dict[str, float] = {}

    def refuse(reason: str) -> Anchor:
        return Anchor(False, reason, _NAN, np.full((4, 4), _NAN),
                      diag.get('rms', _NAN), diag.get('max', _NAN),
                      tuple(int(v) for v in used), tuple(sorted(rejected.items())),
                      diag.get('rot_rms', _NAN), diag.get('rot_max', _NAN),
                      diag.get('baseline', _NAN))

    def inconsistent(angle: float) -> Anchor:
        return refuse(f'inconsistent orientation: the camera centres imply a rotation '
                      f'{angle:.1f} deg from the one the camera orientations imply')

    need = max(min_views, 2, math.ceil(min_inlier_fraction * len(valid)))
    if len(valid) < max(min_views, 2):
        shown = '; '.join(f'{v}: {r}' for v, r in sorted(rejected.items())[:4])
        return refuse(f'too few views: {len(valid)} with both poses, {max(min_views, 2)} '
                      f'needed' + (f' (rejected: {shown})' if shown else ''))
    c, d = recon[valid, :3, 3], tf[valid, :3, 3]
    rc = _project_so3(recon[valid, :3, :3])
    sd = _project_so3(tf[valid, :3, :3])
    diag['baseline'] = _spread(d)
    if diag['baseline'] < min_baseline_m:
        return refuse(f'TF baseline {diag["baseline"]:.4f} m < min_baseline_m '
                      f'{min_baseline_m} m: the camera did not move (pure rotation or '
                      'standing still), scale is unobservable')
    spread_c = _spread(c)
    if not spread_c > 1e-9 * float(np.abs(c).max()) or \
            diag['baseline'] / spread_c > scale_range[1]:
        return refuse(f'reconstruction centres degenerate: they span {spread_c:.3g} units '
                      f'while TF moved {diag["baseline"]:.3f} m')

    mask, _, angles = _orientation_consensus(sd @ np.swapaxes(rc, 1, 2), max_angle_deg)
    for k in np.flatnonzero(~mask):
        rejected[int(valid[k])] = (f'orientation disagrees with the consensus by '
                                   f'{angles[k]:.1f} deg (> {max_angle_deg} deg)')
    if mask.sum() < need:
        return refuse('inconsistent orientation: the camera rotations of the reconstruction '
                      f'match TF for only {int(mask.sum())} of {len(valid)} views within '
                      f'{max_angle_deg} deg ({need} needed): mirrored or wrongly converted '
                      'poses?')
    keep = np.flatnonzero(mask)
    c, d, rc, sd, used = c[keep], d[keep], rc[keep], sd[keep], valid[keep]
    tol_m = max(outlier_m, outlier_rel * _spread(d))
    robust = _robust_fit(c, d, rc, sd, tol_m, max_angle_deg, min_baseline_m,
                         orientation_weight_m, max_hypotheses, seed)
    if robust is None or robust[3].sum() < need:
        rot_o = _project_so3((sd @ np.swapaxes(rc, 1, 2)).sum(axis=0))
        disagree = _centre_disagreement_deg(c, d, rot_o, min_baseline_m)
        if disagree > max_disagreement_deg:
            return inconsistent(disagree)
        agree = 0 if robust is None else int(robust[3].sum())
        return refuse(f'no consistent majority: only {agree} of {len(valid)} views agree '
                      f'within {tol_m:.3f} m and {max_angle_deg} deg ({need} needed)')
    fit, pos, ang, inl, rival = robust
    if rival:
        return refuse(f'ambiguous: another set of {int(inl.sum())} views fits as well as views '
                      f'{used[inl].tolist()}, so the outliers cannot be told apart')
    for k in np.flatnonzero(~inl):
        rejected[int(used[k])] = (f'centre off by {pos[k]:.3f} m (> {tol_m:.3f} m)'
                                  if pos[k] > tol_m else
                                  f'orientation off by {ang[k]:.1f} deg (> {max_angle_deg} deg)')
    c, d, rc, sd, used = c[inl], d[inl], rc[inl], sd[inl], used[inl]
    pos, ang = pos[inl], ang[inl]
    diag.update(rms=float(np.sqrt(np.mean(pos ** 2))), max=float(pos.max()),
                rot_rms=float(np.sqrt(np.mean(ang ** 2))), rot_max=float(ang.max()),
                baseline=_spread(d))
    if diag['baseline'] < min_baseline_m:
        return refuse(f'TF baseline of the agreeing views {diag["baseline"]:.4f} m < '
                      f'min_baseline_m {min_baseline_m} m: scale is unobservable')
    rot_o = _project_so3((sd @ np.swapaxes(rc, 1, 2)).sum(axis=0))
    disagree = _centre_disagreement_deg(c, d, rot_o, min_baseline_m)
    scale, rot, trans = fit
    if disagree > max_disagreement_deg or not scale > 0:
        return inconsistent(disagree)
    if not scale_range[0] <= scale <= scale_range[1]:
        return refuse(f'implied scale {scale:.3g} outside {scale_range}: degenerate '
                      'reconstruction')
    if diag['rms'] > max_residual_m:
        return refuse(f'residual RMS {diag["rms"]:.3f} m > max_residual_m {max_residual_m} m '
                      f'(max {diag["max"]:.3f} m over {len(used)} views)')
    world_to_fixed = np.vstack([np.column_stack([rot, trans]), [0.0, 0.0, 0.0, 1.0]])
    world_to_fixed.flags.writeable = False
    return Anchor(True, '', float(scale), world_to_fixed, diag['rms'], diag['max'],
                  tuple(int(v) for v in used), tuple(sorted(rejected.items())),
                  diag['rot_rms'], diag['rot_max'], diag['baseline'])


def scaled_world(anchor: Anchor, points: np.ndarray,
                 poses_c2w: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """
    Return the metric points ``[N, 3]`` and camera poses ``[V, 4, 4]`` in the scaled world.

    The publishing contract (TF cannot carry a scale): publish these points as the cloud in
    ``world_frame``, these poses as ``world_frame -> camera_<i>_optical``, and
    ``anchor.world_to_fixed`` as ``fixed_frame -> world_frame``; carried through TF, the cloud
    is then in metres in ``fixed_frame`` (what :func:`apply_anchor` computes directly).
    Non-finite poses stay non-finite. Raises ``ValueError`` for an anchor that is not ok.
    """
    if not anchor.ok:
        raise ValueError(f'cannot apply a refused anchor: {anchor.reason}')
    pts = np.asarray(points, np.float64).reshape(-1, 3) * anchor.scale
    poses = np.array(poses_c2w, np.float64).reshape(-1, 4, 4)
    poses[:, :3, 3] *= anchor.scale
    return pts, poses


def apply_anchor(anchor: Anchor, points: np.ndarray,
                 poses_c2w: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Return points ``[N, 3]`` and camera-to-fixed poses ``[V, 4, 4]`` in ``fixed``, metres."""
    pts, poses = scaled_world(anchor, points, poses_c2w)
    rot = anchor.world_to_fixed[:3, :3]
    return pts @ rot.T + anchor.world_to_fixed[:3, 3], anchor.world_to_fixed @ poses
