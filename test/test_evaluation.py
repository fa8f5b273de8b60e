# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Evaluation: Sim(3) alignment and the scores, checked against known perturbations."""

from types import SimpleNamespace

import numpy as np
import pytest

from aetherscan_ros.core.geometry import quaternion_to_rotation_matrix
from aetherscan_ros.demo.evaluation import align_sim3, evaluate, format_scores
from aetherscan_ros.demo.scene import make_scene, scene_from_arrays, write_scene

EXTENT_BOX = np.array([4.0, 3.0, 2.0])


def _box_surface(n=20000, seed=0):
    """Return ``[n, 3]`` samples on the faces of a 4 x 3 x 2 box (extent sqrt(29))."""
    rng = np.random.default_rng(seed)
    pts = rng.uniform(0, 1, (n, 3)) * EXTENT_BOX
    axis = rng.integers(0, 3, n)
    pts[np.arange(n), axis] = rng.integers(0, 2, n) * EXTENT_BOX[axis]
    return pts


def _poses(path='orbit', num=6):
    """Return ``[num, 4, 4]`` camera-to-world poses circling (or passing) the box."""
    poses = []
    for i in range(num):
        if path == 'orbit':
            ang = 0.4 * i
            pos = np.array([2 + 5 * np.cos(ang), 1.5 + 5 * np.sin(ang), 1.0 + 0.3 * i])
        else:
            pos = np.array([0.5 * i, -3.0, 1.0])
        z = np.array([2.0, 1.5, 1.0]) - pos
        z /= np.linalg.norm(z)
        x = np.cross(z, [0, 0, 1.0])
        x /= np.linalg.norm(x)
        pose = np.eye(4)
        pose[:3, :3] = np.stack([x, np.cross(z, x), z], 1)
        pose[:3, 3] = pos
        poses.append(pose)
    return np.stack(poses)


def _sim3(s, R, t):
    m = np.eye(4)
    m[:3, :3] = s * R
    m[:3, 3] = t
    return m


def _to_estimate(poses_gt, points_gt, s, R, t):
    """Express ground truth in another frame/scale: x_est = s R x_gt + t."""
    est = poses_gt.copy()
    est[:, :3, :3] = R @ poses_gt[:, :3, :3]
    est[:, :3, 3] = s * poses_gt[:, :3, 3] @ R.T + t
    return SimpleNamespace(poses_c2w=est, points=s * points_gt @ R.T + t)


R_ODD = quaternion_to_rotation_matrix(np.array([0.3, -0.5, 0.2, 0.8]))


@pytest.mark.parametrize('path', ['orbit', 'line'])
def test_exact_estimate_in_another_frame_scores_zero(path):
    surface = _box_surface()
    gt = scene_from_arrays(_poses(path), np.eye(3), surface)
    est = _to_estimate(gt.poses_c2w, surface, 0.37, R_ODD, np.array([1.0, -2.0, 0.5]))
    scores = evaluate(est, gt)
    assert scores.registered_views == 6
    assert scores.rotation_error_deg_max < 1e-4
    assert scores.center_error_pct_max < 1e-6
    assert scores.scale == pytest.approx(1 / 0.37)
    assert scores.accuracy_pct < 1e-6
    expected = 'Umeyama' if path == 'orbit' else 'collinear'
    assert expected in scores.alignment
    assert scores.completeness_pct < 1e-6 and scores.completeness_ratio == 1.0


def test_known_errors_are_reported():
    surface = _box_surface()
    gt = scene_from_arrays(_poses(), np.eye(3), surface)
    est = _to_estimate(gt.poses_c2w, surface, 1.0, np.eye(3), np.zeros(3))
    # rotate one camera by 1 degree about its optical axis: 1 deg error on that view only
    c, s = np.cos(np.radians(1.0)), np.sin(np.radians(1.0))
    spin = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    est.poses_c2w[2, :3, :3] = est.poses_c2w[2, :3, :3] @ spin
    # push every point 2 cm off the surface: accuracy = 2 cm in % of the extent
    est.points = surface + np.array([0.0, 0.0, 0.02])
    scores = evaluate(est, gt)
    extent = float(np.linalg.norm(EXTENT_BOX))
    assert scores.extent == pytest.approx(extent, rel=1e-3)
    assert scores.rotation_error_deg_max == pytest.approx(1.0, abs=1e-6)
    assert scores.rotation_error_deg_mean == pytest.approx(1.0 / 6, abs=1e-6)
    assert scores.relative_rotation_error_deg_max == pytest.approx(1.0, abs=1e-6)
    assert scores.accuracy_pct == pytest.approx(2.0 / extent, rel=0.05)
    # half of the surface is missing: median completeness distance grows, ratio drops
    half = SimpleNamespace(poses_c2w=est.poses_c2w, points=surface[surface[:, 0] < 2.0])
    partial = evaluate(half, gt)
    assert 0.3 < partial.completeness_ratio < 0.7
    text = format_scores(scores)
    assert 'rotation error' in text and 'accuracy' in text and 'completeness' in text


def test_two_views_align_by_first_pose_and_distance():
    surface = _box_surface(5000)
    gt = scene_from_arrays(_poses(num=2), np.eye(3), surface)
    est = _to_estimate(gt.poses_c2w, surface, 2.5, R_ODD, np.array([0.0, 1.0, 0.0]))
    s, R, t, method = align_sim3(est.poses_c2w, gt.poses_c2w)
    assert '2 views' in method and s == pytest.approx(1 / 2.5)
    np.testing.assert_allclose(R, R_ODD.T, atol=1e-9)
    assert evaluate(est, gt).accuracy_pct < 1e-6


def test_unregistered_views_are_left_out_and_names_match():
    surface = _box_surface(5000)
    gt = scene_from_arrays(_poses(), np.eye(3), surface,
                           names=[f'img{i}.png' for i in range(6)])
    est = _to_estimate(gt.poses_c2w, surface, 1.0, np.eye(3), np.zeros(3))
    est.poses_c2w[4] = np.nan
    scores = evaluate(est, gt)
    assert scores.registered_views == 5 and scores.num_views == 6
    assert scores.rotation_error_deg_max < 1e-4
    order = [5, 0, 3, 1]  # the result holds a reordered subset, matched by file name
    sub = SimpleNamespace(poses_c2w=est.poses_c2w[order], points=est.points)
    scores = evaluate(sub, gt, image_names=[f'/some/dir/img{i}.png' for i in order])
    assert scores.num_views == 4 and scores.center_error_pct_max < 1e-6
    with pytest.raises(ValueError, match='nope.png'):
        evaluate(sub, gt, image_names=['nope.png'] * 4)
    with pytest.raises(ValueError, match='4 views but the ground truth has 6'):
        evaluate(sub, gt)
    lonely = SimpleNamespace(poses_c2w=np.full((6, 4, 4), np.nan), points=surface)
    with pytest.raises(ValueError, match='only 0 of 6 views'):
        evaluate(lonely, gt)


def test_ground_truth_from_a_directory(tmp_path):
    scene = make_scene(num_views=3, width=96, height=72, seed=1)
    write_scene(scene, tmp_path)
    est = _to_estimate(scene.poses_c2w, scene.surface_samples.astype(np.float64), 3.0,
                       R_ODD, np.array([0.1, 0.2, 0.3]))
    from_dir = evaluate(est, tmp_path)
    from_memory = evaluate(est, scene)
    assert from_dir == from_memory
    assert from_dir.accuracy_pct < 1e-4 and from_dir.rotation_error_deg_max < 1e-4
    with pytest.raises(ValueError, match='not found'):
        evaluate(est, tmp_path / 'missing')
