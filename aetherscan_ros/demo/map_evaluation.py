# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Score a fused map and its keyframe path against the demo scene's ground truth.

Inputs: the map's points ``[N, 3]``, the keyframe poses ``[K, 4, 4]`` (camera-to-map of the
optical frames, what ``~/path`` carries) and, per keyframe, the index of its ground-truth view
(the demo publisher logs which stamp each view had).

Two cases:

* **Anchored** (TF, the map is in the fixed frame = the scene's world, metres): no alignment
  at all; the figures are straight distances.
* **Unanchored** (no TF, the map is in an arbitrary frame and scale): the drift is measured
  after a similarity (Sim(3)) fitted to the **first window's keyframes only** (its first
  ``first_window`` keyframes), so whatever the map accumulates later shows as end-of-path
  error. The map's accuracy/completeness are then given after a Sim(3) fitted to **all**
  keyframes (the best the map can look), and the path's ATE after the same fit.

Figures (lengths in % of the scene ``extent``, the bounding-box diagonal of the true
surface, unless said otherwise):

* accuracy: median (and mean) distance of map points to the nearest true surface sample;
* completeness: median distance of true surface samples to the nearest map point, and the
  fraction of samples within ``threshold_pct`` of the map;
* end-of-path drift: position error of the last keyframe, in % of the **path length** (the
  ground-truth length walked by the keyframes) and in metres (scene units);
* keyframe errors: camera-centre error (mean, max; % of path length) and rotation error
  (mean, max; degrees) under the drift alignment; ATE: RMS centre error under the all-keyframe
  alignment (% of path length).

The ground truth's surface samples cover everything any view saw, so a map of a subset of the
views (fewer keyframes than views) is scored against surface it may never have seen:
completeness is then a lower bound.
"""

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from aetherscan_ros.core.geometry import rotation_angle_deg
from aetherscan_ros.demo.evaluation import align_sim3
from aetherscan_ros.demo.scene import DemoScene

_MAX_EVAL_POINTS = 300_000


@dataclass(frozen=True)
class MapScores:
    """Map figures; see the module docstring for the definitions."""

    keyframes: int
    map_points: int
    anchored: bool
    extent: float
    path_length: float
    alignment: str
    scale: float
    accuracy_pct: float
    accuracy_mean_pct: float
    completeness_pct: float
    completeness_ratio: float
    threshold_pct: float
    end_drift_pct: float
    end_drift: float
    center_error_mean_pct: float
    center_error_max_pct: float
    rotation_error_mean_deg: float
    rotation_error_max_deg: float
    ate_pct: float

    def as_dict(self) -> dict:
        """Return the scores as a JSON-serialisable dict."""
        return asdict(self)


def _apply(s: float, R: np.ndarray, t: np.ndarray, poses: np.ndarray) -> np.ndarray:
    out = np.array(poses, np.float64)
    out[:, :3, :3] = R @ out[:, :3, :3]
    out[:, :3, 3] = s * out[:, :3, 3] @ R.T + t
    return out


def surface_scores(points: np.ndarray, scene: DemoScene, threshold_pct: float,
                   seed: int = 0):
    """Return ``(accuracy median %, accuracy mean %, completeness median %, ratio)``."""
    from scipy.spatial import cKDTree

    extent = float(scene.extent)
    points = np.asarray(points, np.float64).reshape(-1, 3)
    points = points[np.isfinite(points).all(axis=1)]
    samples = np.asarray(scene.surface_samples, np.float64).reshape(-1, 3)
    if not len(points) or not len(samples):
        return float('inf'), float('inf'), float('inf'), 0.0
    if len(points) > _MAX_EVAL_POINTS:
        pick = np.random.default_rng(seed).choice(len(points), _MAX_EVAL_POINTS, replace=False)
        points = points[pick]
    acc, _ = cKDTree(samples).query(points, workers=-1)
    comp, _ = cKDTree(points).query(samples, workers=-1)
    return (float(np.median(acc)) / extent * 100.0, float(np.mean(acc)) / extent * 100.0,
            float(np.median(comp)) / extent * 100.0,
            float(np.mean(comp <= threshold_pct / 100.0 * extent)))


def evaluate_map(points: np.ndarray, keyframe_poses: np.ndarray, keyframe_views: Sequence[int],
                 scene: DemoScene, anchored: bool, first_window: int = 8,
                 threshold_pct: float = 2.0, seed: int = 0) -> MapScores:
    """
    Score a map (see the module docstring); raise ``ValueError`` for unusable input.

    ``keyframe_poses`` ``[K, 4, 4]`` in the map's frame, ``keyframe_views`` ``[K]`` ground-truth
    view indices, in path order. ``anchored``: the map is already in the scene's world frame.
    """
    est = np.asarray(keyframe_poses, np.float64).reshape(-1, 4, 4)
    views = np.asarray(keyframe_views, np.int64).reshape(-1)
    if len(est) != len(views):
        raise ValueError(f'{len(est)} keyframe poses but {len(views)} view indices')
    if len(est) < 2:
        raise ValueError(f'need at least 2 keyframes to score a path, got {len(est)}')
    if views.min() < 0 or views.max() >= scene.num_views:
        raise ValueError(f'keyframe views {views.min()}..{views.max()} out of range for a '
                         f'{scene.num_views}-view scene')
    if not np.isfinite(est).all():
        raise ValueError('a keyframe pose is not finite')
    extent = float(scene.extent)
    if not extent > 0:
        raise ValueError('the ground truth has no surface samples (extent 0)')
    gt = np.asarray(scene.poses_c2w, np.float64)[views]
    path_length = float(np.linalg.norm(np.diff(gt[:, :3, 3], axis=0), axis=1).sum())
    if anchored:
        s, R, t = 1.0, np.eye(3), np.zeros(3)
        alignment = 'none (anchored: the map is in the scene frame, metres)'
        s_all, R_all, t_all = s, R, t
    else:
        head = max(2, min(int(first_window), len(est)))
        s, R, t, how = align_sim3(est[:head], gt[:head])
        alignment = f'first {head} keyframes: {how}'
        s_all, R_all, t_all, _ = align_sim3(est, gt)
    drift_poses = _apply(s, R, t, est)
    centre_err = np.linalg.norm(drift_poses[:, :3, 3] - gt[:, :3, 3], axis=1)
    rot_err = rotation_angle_deg(drift_poses[:, :3, :3], gt[:, :3, :3])
    all_poses = _apply(s_all, R_all, t_all, est)
    ate = float(np.sqrt(np.mean(np.sum((all_poses[:, :3, 3] - gt[:, :3, 3]) ** 2, axis=1))))
    pts = np.asarray(points, np.float64).reshape(-1, 3)
    aligned = s_all * pts @ R_all.T + t_all
    acc, acc_mean, comp, ratio = surface_scores(aligned, scene, threshold_pct, seed)
    per_path = 100.0 / path_length if path_length > 0 else float('nan')
    return MapScores(
        keyframes=len(est), map_points=int(len(pts)), anchored=bool(anchored), extent=extent,
        path_length=path_length, alignment=alignment, scale=float(s), accuracy_pct=acc,
        accuracy_mean_pct=acc_mean, completeness_pct=comp, completeness_ratio=ratio,
        threshold_pct=float(threshold_pct), end_drift_pct=float(centre_err[-1] * per_path),
        end_drift=float(centre_err[-1]),
        center_error_mean_pct=float(centre_err.mean() * per_path),
        center_error_max_pct=float(centre_err.max() * per_path),
        rotation_error_mean_deg=float(rot_err.mean()),
        rotation_error_max_deg=float(rot_err.max()), ate_pct=ate * per_path)


def format_map_scores(scores: MapScores) -> str:
    """Return a short human-readable report of :class:`MapScores`, one fact per line."""
    return '\n'.join([
        f'keyframes            {scores.keyframes}, path length {scores.path_length:.2f} m; '
        f'map {scores.map_points:,} points; alignment: {scores.alignment} '
        f'(scale {scores.scale:.4g})',
        f'map accuracy         median {scores.accuracy_pct:.3f} %, mean '
        f'{scores.accuracy_mean_pct:.3f} % of extent ({scores.extent:.2f} m)',
        f'map completeness     median {scores.completeness_pct:.3f} % of extent; '
        f'{100.0 * scores.completeness_ratio:.1f} % of the true surface within '
        f'{scores.threshold_pct:g} %',
        f'end-of-path drift    {scores.end_drift_pct:.3f} % of the path length '
        f'({scores.end_drift:.3f} m)',
        f'keyframe poses       centre error mean {scores.center_error_mean_pct:.3f} %, max '
        f'{scores.center_error_max_pct:.3f} % of path length; rotation mean '
        f'{scores.rotation_error_mean_deg:.2f} deg, max {scores.rotation_error_max_deg:.2f} deg; '
        f'ATE (all-keyframe Sim(3)) {scores.ate_pct:.3f} %',
    ])
