# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""VoxelMap: incremental fusion equals one-shot voxel averaging, bounds, the change delta."""

import numpy as np
import pytest

from aetherscan_ros.core.voxel_map import VoxelMap


def _cloud(n, seed=0, lo=-1.0, hi=1.0):
    rng = np.random.default_rng(seed)
    pts = rng.uniform(lo, hi, (n, 3)).astype(np.float32)
    col = rng.integers(0, 256, (n, 3)).astype(np.uint8)
    conf = rng.uniform(0.5, 2.0, n).astype(np.float32)
    return pts, col, conf


def _reference(pts, col, conf, voxel):
    """Per-voxel means computed with a plain dict (the slow, obvious way)."""
    cells = np.floor(pts.astype(np.float64) / voxel).astype(np.int64)
    groups = {}
    for i, cell in enumerate(map(tuple, cells)):
        groups.setdefault(cell, []).append(i)
    out = {}
    for cell, idx in groups.items():
        out[cell] = (pts[idx].astype(np.float64).mean(0), col[idx].astype(np.float64).mean(0),
                     conf[idx].astype(np.float64).mean(), len(idx))
    return out


def test_incremental_fusion_matches_the_one_shot_means():
    pts, col, conf = _cloud(6000, seed=1)
    voxel = 0.2
    vmap = VoxelMap(voxel)
    for part in np.array_split(np.arange(len(pts)), 5):   # five updates
        vmap.fuse(pts[part], col[part], conf[part])
    ref = _reference(pts, col, conf, voxel)
    cloud = vmap.cloud()
    assert len(vmap) == len(ref)
    cells = np.floor(cloud.points.astype(np.float64) / voxel).astype(np.int64)
    for i, cell in enumerate(map(tuple, cells)):
        mean_p, mean_c, mean_f, count = ref[cell]
        np.testing.assert_allclose(cloud.points[i], mean_p, atol=1e-5)
        np.testing.assert_array_equal(cloud.colors[i], np.floor(mean_c + 0.5))
        assert cloud.confidence[i] == pytest.approx(mean_f, rel=1e-5)
        assert cloud.view[i] == count
    assert int(vmap.counts.sum()) == len(pts)


def test_the_grid_is_anchored_at_the_origin_not_at_the_cloud():
    vmap = VoxelMap(1.0)
    vmap.fuse(np.array([[0.1, 0.1, 0.1]]), np.full((1, 3), 10, np.uint8))
    vmap.fuse(np.array([[0.9, 0.9, 0.9], [-0.1, 0.5, 0.5]]), np.zeros((2, 3), np.uint8))
    assert len(vmap) == 2   # (0, 0, 0) twice and (-1, 0, 0)
    cloud = vmap.cloud()
    assert sorted(cloud.view.tolist()) == [1, 2]


def test_non_finite_and_out_of_range_points_are_left_out():
    vmap = VoxelMap(0.01)
    stats = vmap.fuse(np.array([[np.nan, 0, 0], [1e9, 0, 0], [0.5, 0.5, 0.5]]),
                      np.zeros((3, 3), np.uint8))
    assert stats.points_in == 3 and stats.points_used == 1 and len(vmap) == 1
    assert vmap.out_of_range == 1


def test_changes_hold_the_new_and_updated_voxels_only():
    vmap = VoxelMap(1.0)
    vmap.fuse(np.array([[0.5, 0.5, 0.5], [5.5, 0.5, 0.5]]), np.zeros((2, 3), np.uint8))
    first, removed = vmap.take_changes()
    assert len(first) == 2 and removed == 0
    assert vmap.take_changes()[0].points.shape == (0, 3)
    stats = vmap.fuse(np.array([[0.6, 0.5, 0.5], [9.5, 0.5, 0.5]]), np.zeros((2, 3), np.uint8))
    assert (stats.added, stats.updated) == (1, 1)
    delta, _ = vmap.take_changes()
    assert sorted(np.floor(delta.points[:, 0]).tolist()) == [0.0, 9.0]
    assert sorted(delta.view.tolist()) == [1, 2]


def test_max_points_evicts_the_farthest_from_the_camera_first():
    vmap = VoxelMap(1.0, max_points=3)
    pts = np.array([[x + 0.5, 0.5, 0.5] for x in range(6)], np.float32)
    stats = vmap.fuse(pts, np.zeros((6, 3), np.uint8), centre=np.array([0.0, 0.0, 0.0]))
    assert stats.removed == 3 and len(vmap) == 3
    assert sorted(np.floor(vmap.cloud().points[:, 0]).tolist()) == [0.0, 1.0, 2.0]
    _, removed = vmap.take_changes()
    assert removed == 3


def test_max_points_without_a_centre_evicts_the_least_observed():
    vmap = VoxelMap(1.0, max_points=2)
    pts = np.array([[0.5, 0.5, 0.5]] * 3 + [[2.5, 0.5, 0.5]] * 2 + [[4.5, 0.5, 0.5]],
                   np.float32)
    vmap.fuse(pts, np.zeros((6, 3), np.uint8))
    assert sorted(vmap.cloud().view.tolist()) == [2, 3]


def test_radius_drops_what_is_behind_the_robot():
    vmap = VoxelMap(0.5, radius=3.0)
    xs = np.arange(0.0, 20.0, 0.5)
    pts = np.stack([xs, np.zeros_like(xs), np.zeros_like(xs)], 1) + 0.25
    for x in (2.0, 10.0, 18.0):   # the robot drives along x, mapping what is near
        near = np.abs(pts[:, 0] - x) < 4.0
        vmap.fuse(pts[near], np.zeros((near.sum(), 3), np.uint8), centre=np.array([x, 0, 0]))
    got = vmap.cloud().points[:, 0]
    assert got.min() >= 18.0 - 3.0 - 0.5 and np.abs(got - 18.0).max() <= 3.0 + 0.5


def test_memory_stays_bounded_over_many_updates():
    vmap = VoxelMap(0.05, max_points=5000)
    for k in range(20):
        pts, col, conf = _cloud(3000, seed=k, lo=k, hi=k + 2.0)
        vmap.fuse(pts, col, conf, centre=np.array([k + 1.0] * 3))
        assert len(vmap) <= 5000
    assert vmap.nbytes <= 5000 * 100


def test_bad_settings_are_refused_with_the_reason():
    with pytest.raises(ValueError, match='voxel_size'):
        VoxelMap(0.0)
    with pytest.raises(ValueError, match='max_points'):
        VoxelMap(0.1, max_points=-1)
