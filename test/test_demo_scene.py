# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""The demo scene: deterministic, geometrically consistent, textured, round-trips through disk."""

import json

import cv2
import numpy as np
import pytest

from aetherscan_ros.core.geometry import invert_pose
from aetherscan_ros.demo.room import backproject, default_intrinsics
from aetherscan_ros.demo.scene import load_scene, make_scene, subset, write_scene


@pytest.fixture(scope='module')
def small():
    """Return a 3-view 160x120 orbit scene (fast to render)."""
    return make_scene(num_views=3, width=160, height=120, seed=3)


def test_shapes_and_types(small):
    assert small.images.shape == (3, 120, 160, 3) and small.images.dtype == np.uint8
    assert small.depths.shape == (3, 120, 160) and small.depths.dtype == np.float32
    assert small.poses_c2w.shape == (3, 4, 4)
    np.testing.assert_allclose(small.K, default_intrinsics(160, 120))
    assert small.surface_samples.ndim == 2 and small.surface_samples.shape[1] == 3
    assert len(small.surface_samples) > 1000
    assert (small.depths > 0).all(), 'the room is closed: every ray hits a surface'
    lo, hi = small.surface_samples.min(0), small.surface_samples.max(0)
    assert small.extent == pytest.approx(float(np.linalg.norm(hi - lo)))
    for pose in small.poses_c2w:  # proper rotations
        np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-9)
        assert np.linalg.det(pose[:3, :3]) == pytest.approx(1.0)
    assert small.names == ('frame_000.png', 'frame_001.png', 'frame_002.png')
    assert small.size == (160, 120)
    frames = small.frames(with_intrinsics=False)
    assert len(frames) == 3 and frames[0].K is None and frames[0].size == (160, 120)


def test_deterministic_from_seed(small):
    again = make_scene(num_views=3, width=160, height=120, seed=3)
    np.testing.assert_array_equal(again.images, small.images)
    np.testing.assert_array_equal(again.depths, small.depths)
    np.testing.assert_array_equal(again.poses_c2w, small.poses_c2w)
    other = make_scene(num_views=3, width=160, height=120, seed=4)
    assert np.abs(other.images.astype(int) - small.images.astype(int)).mean() > 10


def test_depth_is_consistent_across_views(small):
    """Points lifted from view 0's depth reproject onto view 1 at view 1's own depth."""
    pts = backproject(small.depths[0], small.K, small.poses_c2w[0], stride=3)
    w2c = invert_pose(small.poses_c2w[1])
    cam = pts @ w2c[:3, :3].T + w2c[:3, 3]
    uv = cam[:, :2] / cam[:, 2:3] * [small.K[0, 0], small.K[1, 1]] + small.K[:2, 2]
    u, v = np.round(uv).astype(int).T
    inside = (cam[:, 2] > 0) & (u >= 0) & (u < 160) & (v >= 0) & (v < 120)
    rel = np.abs(small.depths[1][v[inside], u[inside]] - cam[inside, 2]) / cam[inside, 2]
    # most points are visible in both views (small occluded share differs by far more)
    assert inside.mean() > 0.5
    assert np.median(rel) < 0.01
    assert (rel < 0.03).mean() > 0.8


def test_textured_enough_for_features_and_blank_variant_is_not():
    scene = make_scene(num_views=1, width=320, height=240, seed=0)
    blank = make_scene(num_views=1, width=320, height=240, seed=0, textured=False)
    sift = cv2.SIFT_create()
    rich = sift.detect(cv2.cvtColor(scene.images[0], cv2.COLOR_RGB2GRAY), None)
    none = sift.detect(cv2.cvtColor(blank.images[0], cv2.COLOR_RGB2GRAY), None)
    assert len(rich) > 1000
    assert len(none) == 0
    np.testing.assert_array_equal(blank.depths, scene.depths)  # same geometry


def test_robot_path_moves_sideways_at_robot_height():
    scene = make_scene(num_views=4, width=96, height=72, path='robot')
    centres = scene.poses_c2w[:, :3, 3]
    assert np.all(np.abs(centres[:, 2] - 0.45) < 0.05)
    steps = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    assert np.all((steps > 0.1) & (steps < 0.2))


def test_write_load_round_trip(small, tmp_path):
    gt_path = write_scene(small, tmp_path / 'scene')
    doc = json.loads(gt_path.read_text())
    assert doc['format'] == 'aetherscan_demo_scene/1' and len(doc['views']) == 3
    loaded = load_scene(tmp_path / 'scene')
    np.testing.assert_array_equal(loaded.images, small.images)
    np.testing.assert_allclose(loaded.depths, small.depths, atol=0.0006)
    np.testing.assert_array_equal(loaded.poses_c2w, small.poses_c2w)
    np.testing.assert_array_equal(loaded.surface_samples, small.surface_samples)
    np.testing.assert_allclose(loaded.K, small.K)
    assert loaded.extent == pytest.approx(small.extent)
    assert loaded.names == small.names
    light = load_scene(tmp_path / 'scene', load_images=False)
    assert light.images.shape[0] == 0 and light.num_views == 3


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match='ground_truth.json: not found'):
        load_scene(tmp_path)
    (tmp_path / 'ground_truth.json').write_text('{not json')
    with pytest.raises(ValueError, match='unreadable'):
        load_scene(tmp_path)


def test_subset_recomputes_ground_truth(small):
    one = subset(small, [1])
    assert one.num_views == 1 and one.names == ('frame_001.png',)
    assert len(one.surface_samples) < len(small.surface_samples)
    with pytest.raises(ValueError):
        subset(small, [5])


def test_bad_arguments():
    with pytest.raises(ValueError, match='camera path'):
        make_scene(num_views=2, width=64, height=48, path='spiral')
    with pytest.raises(ValueError, match='num_views'):
        make_scene(num_views=0)
