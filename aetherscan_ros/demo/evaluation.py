# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Score a reconstruction against ground truth (poses and true surface samples).

The estimate lives in its own frame and scale (optical frame of its first view, arbitrary unit),
so it is first brought onto the ground truth with a similarity transform (Sim(3)):

* 3 or more registered views whose centres span more than a line: Umeyama (with scale) on the
  camera centres (:func:`aetherscan_ros.core.geometry.umeyama`).
* 2 views, or centres close to a line (2nd/1st singular value < 0.1; the rotation about that
  line is then undetermined by centres alone): the rotation is the chordal mean of
  ``R_gt_i @ R_est_i^T`` over the views, then scale and translation are the least-squares fit
  of the centres under that rotation. For two views this is exactly "align the first pose,
  scale by the centre distance".

Scores (all lengths in % of the ground truth's ``extent``, its bounding-box diagonal):

* rotation error: geodesic angle between ``R_align @ R_est_i`` and ``R_gt_i`` (mean and max, deg);
* relative rotation error: the largest angle between ``R_est_i^T R_est_j`` and
  ``R_gt_i^T R_gt_j`` over view pairs; it needs no alignment, so it tells pose errors from an
  ill-conditioned alignment (short, shallow camera arcs leave Umeyama's rotation loose);
* camera-centre error: ``|s R c_est_i + t - c_gt_i|`` (mean and max);
* accuracy: median distance of aligned cloud points to the nearest true surface sample;
* completeness: median distance of true surface samples to the nearest cloud point, and the
  fraction of samples within ``threshold_pct`` of the cloud.

Views with a NaN pose (unregistered) are left out of the alignment and reported.
"""

from dataclasses import asdict, dataclass
import os
from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import numpy as np

from aetherscan_ros.core.geometry import rotation_angle_deg, umeyama
from aetherscan_ros.demo.scene import DemoScene, load_scene

_MAX_EVAL_POINTS = 300_000
# below this ratio of the 2nd to the 1st singular value the centres count as a line
_MIN_SPREAD_RATIO = 0.1


@dataclass(frozen=True)
class Scores:
    """Evaluation figures; lengths in % of ``extent`` (``extent`` itself in GT units)."""

    num_views: int
    registered_views: int
    rotation_error_deg_mean: float
    rotation_error_deg_max: float
    relative_rotation_error_deg_max: float
    center_error_pct_mean: float
    center_error_pct_max: float
    accuracy_pct: float
    completeness_pct: float
    completeness_ratio: float
    threshold_pct: float
    num_points: int
    scale: float
    extent: float
    alignment: str

    def as_dict(self) -> dict:
        """Return the scores as a JSON-serialisable dict."""
        return asdict(self)


def _project_rotation(mat: np.ndarray) -> np.ndarray:
    u, _, vt = np.linalg.svd(mat)
    d = np.sign(np.linalg.det(u @ vt))
    return u @ np.diag([1.0, 1.0, d]) @ vt


def align_sim3(est_c2w: np.ndarray,
               gt_c2w: np.ndarray) -> Tuple[float, np.ndarray, np.ndarray, str]:
    """
    Return ``(s, R, t, method)`` mapping estimate to ground truth: ``x_gt ~ s R x_est + t``.

    ``est_c2w`` and ``gt_c2w`` are ``[N, 4, 4]`` camera-to-world poses of the same N >= 2 views.
    """
    est_c = est_c2w[:, :3, 3]
    gt_c = gt_c2w[:, :3, 3]
    n = len(est_c)
    if n < 2:
        raise ValueError(f'need at least 2 registered views to align, got {n}')
    spread = np.linalg.svd(gt_c - gt_c.mean(axis=0), compute_uv=False)
    spread_est = np.linalg.svd(est_c - est_c.mean(axis=0), compute_uv=False)
    planar = (n >= 3 and spread[1] > _MIN_SPREAD_RATIO * spread[0]
              and spread_est[1] > _MIN_SPREAD_RATIO * max(spread_est[0], 1e-12))
    if planar:
        s, R, t = umeyama(est_c, gt_c, with_scale=True)
        return s, R, t, f'Umeyama Sim(3) on {n} camera centres'
    R = _project_rotation(np.einsum('nij,nkj->ik', gt_c2w[:, :3, :3], est_c2w[:, :3, :3]))
    a = est_c @ R.T
    a0 = a - a.mean(axis=0)
    b0 = gt_c - gt_c.mean(axis=0)
    denom = float((a0 * a0).sum())
    s = float((a0 * b0).sum() / denom) if denom > 0 else 1.0
    t = gt_c.mean(axis=0) - s * a.mean(axis=0)
    why = '2 views' if n == 2 else 'collinear centres'
    return s, R, t, f'mean rotation + least-squares centres ({why})'


def _as_ground_truth(gt: Union[DemoScene, str, os.PathLike]) -> DemoScene:
    if isinstance(gt, DemoScene):
        return gt
    if isinstance(gt, (str, os.PathLike)):
        return load_scene(Path(gt), load_images=False)
    raise TypeError(f'ground truth must be a DemoScene or a directory, got {type(gt).__name__}')


def _match_views(num_est: int, gt: DemoScene,
                 image_names: Optional[Sequence[str]]) -> np.ndarray:
    """Return, per estimated view, the index of its ground-truth view."""
    if image_names is None:
        if num_est != gt.num_views:
            raise ValueError(f'the result has {num_est} views but the ground truth has '
                             f'{gt.num_views}; pass image_names to match them by file name')
        return np.arange(num_est)
    if len(image_names) != num_est:
        raise ValueError(f'{len(image_names)} image names for {num_est} views')
    by_name = {Path(n).name: i for i, n in enumerate(gt.names)}
    index = []
    for name in image_names:
        key = Path(str(name)).name
        if key not in by_name:
            raise ValueError(f'{name}: not an image of the ground truth '
                             f'({", ".join(gt.names[:4])}...)')
        index.append(by_name[key])
    return np.asarray(index)


def evaluate(result, scene_or_gt: Union[DemoScene, str, os.PathLike],
             image_names: Optional[Sequence[str]] = None, threshold_pct: float = 1.0,
             seed: int = 0) -> Scores:
    """
    Score ``result`` against a :class:`DemoScene` or a ``write_scene`` directory.

    ``result`` is a :class:`ReconstructionResult` or anything with ``points`` ``[N, 3]`` and
    ``poses_c2w`` ``[V, 4, 4]``.

    ``image_names`` (one per result view) matches views to ground-truth images by file name;
    without it, view i of the result is ground-truth view i. Raises ``ValueError`` when fewer
    than two views have a pose or the views cannot be matched.
    """
    gt = _as_ground_truth(scene_or_gt)
    est_poses = np.asarray(result.poses_c2w, np.float64).reshape(-1, 4, 4)
    gt_index = _match_views(len(est_poses), gt, image_names)
    gt_poses = np.asarray(gt.poses_c2w, np.float64)[gt_index]
    ok = np.isfinite(est_poses).all(axis=(1, 2))
    if ok.sum() < 2:
        raise ValueError(f'only {int(ok.sum())} of {len(est_poses)} views have a pose: '
                         'nothing to align')
    s, R, t, method = align_sim3(est_poses[ok], gt_poses[ok])
    extent = float(gt.extent)
    if not extent > 0:
        raise ValueError('the ground truth has no surface samples (extent 0)')
    rot_err = rotation_angle_deg(R @ est_poses[ok, :3, :3], gt_poses[ok, :3, :3])
    rel_est = np.einsum('iba,jbc->ijac', est_poses[ok, :3, :3], est_poses[ok, :3, :3])
    rel_gt = np.einsum('iba,jbc->ijac', gt_poses[ok, :3, :3], gt_poses[ok, :3, :3])
    rel_err = rotation_angle_deg(rel_est, rel_gt)
    centres = s * est_poses[ok, :3, 3] @ R.T + t
    cen_err = np.linalg.norm(centres - gt_poses[ok, :3, 3], axis=1) / extent * 100.0
    points = np.asarray(result.points, np.float64).reshape(-1, 3)
    points = points[np.isfinite(points).all(axis=1)]
    num_points = len(points)
    samples = np.asarray(gt.surface_samples, np.float64).reshape(-1, 3)
    if num_points and len(samples):
        from scipy.spatial import cKDTree

        if num_points > _MAX_EVAL_POINTS:
            pick = np.random.default_rng(seed).choice(num_points, _MAX_EVAL_POINTS,
                                                      replace=False)
            points = points[pick]
        aligned = s * points @ R.T + t
        acc, _ = cKDTree(samples).query(aligned, workers=-1)
        comp, _ = cKDTree(aligned).query(samples, workers=-1)
        accuracy = float(np.median(acc)) / extent * 100.0
        completeness = float(np.median(comp)) / extent * 100.0
        ratio = float(np.mean(comp <= threshold_pct / 100.0 * extent))
    else:
        accuracy = completeness = float('inf')
        ratio = 0.0
    return Scores(num_views=len(est_poses), registered_views=int(ok.sum()),
                  rotation_error_deg_mean=float(rot_err.mean()),
                  rotation_error_deg_max=float(rot_err.max()),
                  relative_rotation_error_deg_max=float(rel_err.max()),
                  center_error_pct_mean=float(cen_err.mean()),
                  center_error_pct_max=float(cen_err.max()),
                  accuracy_pct=accuracy, completeness_pct=completeness,
                  completeness_ratio=ratio, threshold_pct=float(threshold_pct),
                  num_points=int(num_points), scale=float(s), extent=extent, alignment=method)


def format_scores(scores: Scores) -> str:
    """Return a short human-readable report of :class:`Scores` (one fact per line)."""
    return '\n'.join([
        f'views registered     {scores.registered_views}/{scores.num_views}  '
        f'(alignment: {scores.alignment}, scale {scores.scale:.4g})',
        f'rotation error       mean {scores.rotation_error_deg_mean:.3f} deg, '
        f'max {scores.rotation_error_deg_max:.3f} deg (after alignment); relative, '
        f'alignment-free: max {scores.relative_rotation_error_deg_max:.3f} deg',
        f'camera-centre error  mean {scores.center_error_pct_mean:.3f} %, '
        f'max {scores.center_error_pct_max:.3f} % of extent',
        f'cloud accuracy       {scores.accuracy_pct:.3f} % of extent (median distance of '
        f'{scores.num_points} points to the true surface)',
        f'completeness         {scores.completeness_pct:.3f} % of extent (median), '
        f'{100.0 * scores.completeness_ratio:.1f} % of the surface within '
        f'{scores.threshold_pct:g} %',
        f'scene extent         {scores.extent:.3f} (bounding-box diagonal of the true surface)',
    ])
