# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""preview.png rendering: z-buffer, virtual camera framing, frusta, legend, PNG output."""

import cv2
import numpy as np
import pytest

from aetherscan_ros.backends.base import ReconstructionResult
from aetherscan_ros.files.preview import (
    BACKGROUND, choose_view, draw_frusta, frustum_corners, look_at, render_preview,
    render_preview_image, splat)

K_VIRT = np.array([[100.0, 0, 50], [0, 100.0, 40], [0, 0, 1]])


def _scene(num_views=4, model='', color=(40, 200, 60), num_points=6000):
    """Build a green sphere 5 m in front of a short arc of cameras looking at it."""
    rng = np.random.default_rng(1)
    poses = []
    for i in range(num_views):
        angle = np.radians(-15 + 30 * i / max(num_views - 1, 1))
        center = np.array([5 * np.sin(angle), 0.0, 5 - 5 * np.cos(angle)])
        poses.append(np.linalg.inv(look_at(center, [0, 0, 5], [0, -1, 0])))
    dirs = rng.normal(size=(num_points, 3))
    pts = dirs / np.linalg.norm(dirs, axis=1, keepdims=True) + [0, 0, 5]
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    return ReconstructionResult(
        points=pts.astype(np.float32), colors=np.tile(np.uint8(color), (num_points, 1)),
        confidence=np.ones(num_points, np.float32),
        view_index=(np.arange(num_points) % num_views).astype(np.uint16),
        poses_c2w=np.stack(poses), intrinsics=np.stack([K] * num_views),
        image_sizes=np.array([[640, 480]] * num_views), backend='classical',
        info={'model': model} if model else {})


def _project(K, w2c, pts):
    cam = np.asarray(pts, float) @ w2c[:3, :3].T + w2c[:3, 3]
    return cam[:, :2] / cam[:, 2:] * [K[0, 0], K[1, 1]] + K[:2, 2], cam[:, 2]


def test_look_at_points_the_optical_axis_at_the_target():
    w2c = look_at([1.0, 2.0, -3.0], [0.5, 0.0, 4.0], [0, 0, 1.0])
    uv, z = _project(K_VIRT, w2c, [[0.5, 0.0, 4.0], [1.0, 2.0, -2.0], [1.0, 2.0, 10.0]])
    np.testing.assert_allclose(uv[0], [50, 40], atol=1e-9)
    assert z[0] > 0
    # world +z (up) appears above the centre of the picture: smaller v
    up_uv, _ = _project(K_VIRT, w2c, [[0.5, 0.0, 4.0] + np.array([0, 0, 1.0])])
    assert up_uv[0, 1] < 40
    np.testing.assert_allclose(np.linalg.det(w2c[:3, :3]), 1.0)


@pytest.mark.parametrize('near_first', [True, False])
def test_splat_keeps_the_nearest_point_per_pixel(near_first):
    near = ([0.0, 0.0, 2.0], [255, 0, 0])
    far = ([0.0, 0.0, 5.0], [0, 0, 255])
    pairs = [near, far] if near_first else [far, near]
    pts = np.array([p for p, _ in pairs])
    cols = np.array([c for _, c in pairs], np.uint8)
    image, depth = splat(pts, cols, K_VIRT, np.eye(4), (100, 80), radius=0)
    assert image[40, 50].tolist() == [255, 0, 0]
    assert depth[40, 50] == pytest.approx(2.0)
    assert np.count_nonzero(np.isfinite(depth)) == 1
    assert image[0, 0].tolist() == list(BACKGROUND)


def test_splat_radius_behind_camera_and_outside():
    pts = np.array([[0.0, 0.0, 2.0], [0.0, 0.0, -2.0], [100.0, 0.0, 1.0], [np.nan, 0, 1]])
    cols = np.full((4, 3), 200, np.uint8)
    image, depth = splat(pts, cols, K_VIRT, np.eye(4), (100, 80), radius=2)
    assert np.count_nonzero(np.isfinite(depth)) == 21  # disc: dx^2 + dy^2 <= r^2 + r
    ys, xs = np.nonzero(np.isfinite(depth))
    assert xs.min() == 48 and xs.max() == 52 and ys.min() == 38 and ys.max() == 42
    empty, empty_depth = splat(np.zeros((0, 3)), np.zeros((0, 3), np.uint8), K_VIRT, np.eye(4),
                               (100, 80))
    assert np.isinf(empty_depth).all()


def test_choose_view_frames_the_cloud_and_every_camera():
    res = _scene()
    K, w2c = choose_view(res, (320, 240))
    uv, z = _project(K, w2c, np.vstack([res.points, res.poses_c2w[:, :3, 3]]))
    assert (z > 0).all()
    assert (uv[:, 0] >= 0).all() and (uv[:, 0] < 320).all()
    assert (uv[:, 1] >= 0).all() and (uv[:, 1] < 240).all()
    # tight framing: the content spans most of the picture in at least one direction
    span = (uv.max(axis=0) - uv.min(axis=0)) / [320, 240]
    assert span.max() > 0.7
    # the virtual camera looks from behind the real ones: the cloud is farther than they are
    _, z_cams = _project(K, w2c, res.poses_c2w[:, :3, 3])
    _, z_cloud = _project(K, w2c, [[0, 0, 5.0]])
    assert z_cloud[0] > z_cams.max()


def test_choose_view_handles_an_orbit_and_an_empty_cloud():
    res = _scene(num_views=12)
    poses = []
    for i in range(12):  # a full circle looking inwards: mean viewing direction ~ 0
        angle = 2 * np.pi * i / 12
        center = np.array([4 * np.sin(angle), 0.0, 5 - 4 * np.cos(angle)])
        poses.append(np.linalg.inv(look_at(center, [0, 0, 5], [0, -1, 0])))
    res = ReconstructionResult(**{**res.__dict__, 'poses_c2w': np.stack(poses),
                                  'intrinsics': res.intrinsics[:1].repeat(12, 0),
                                  'image_sizes': res.image_sizes[:1].repeat(12, 0)})
    K, w2c = choose_view(res, (320, 240))
    uv, z = _project(K, w2c, res.poses_c2w[:, :3, 3])
    assert (z > 0).all() and (uv >= 0).all() and (uv[:, 0] < 320).all()
    empty = ReconstructionResult(**{**res.__dict__, 'points': np.zeros((0, 3), np.float32),
                                    'colors': np.zeros((0, 3), np.uint8),
                                    'confidence': np.zeros(0, np.float32),
                                    'view_index': np.zeros(0, np.uint16)})
    image = render_preview_image(empty, (200, 150))
    assert image.shape == (150, 200, 3)


def test_frustum_corners_back_project_the_image_corners():
    pose = np.eye(4)
    pose[:3, 3] = [1, 2, 3]
    K = np.array([[500.0, 0, 320], [0, 500.0, 240], [0, 0, 1]])
    corners = frustum_corners(pose, K, (640, 480), depth=2.0)
    np.testing.assert_allclose(corners[0], [1, 2, 3])
    ray = np.array([-320 / 500, -240 / 500, 1.0])
    np.testing.assert_allclose(corners[1], [1, 2, 3] + 2.0 * ray / np.linalg.norm(ray))
    np.testing.assert_allclose(corners[3], [1, 2, 3] + 2.0 * ray * [-1, -1, 1]
                               / np.linalg.norm(ray))
    # a degenerate K (random-weight models produce such) still gives a bounded frustum
    wild = frustum_corners(pose, np.diag([1e-4, 1e-4, 1.0]), (640, 480), depth=2.0)
    np.testing.assert_allclose(np.linalg.norm(wild[1:] - wild[0], axis=1), 2.0)


def test_draw_frusta_draws_each_camera_in_its_colour():
    res = _scene(num_views=3)
    K, w2c = choose_view(res, (320, 240))
    canvas = np.zeros((240, 320, 3), np.uint8)
    draw_frusta(canvas, res, K, w2c, depth=0.5)
    white = np.all(canvas > 200, axis=2)
    assert white.sum() > 30  # view 0's frustum is white
    uv, _ = _project(K, w2c, res.poses_c2w[:1, :3, 3])
    u, v = np.round(uv[0]).astype(int)
    assert white[max(v - 2, 0):v + 3, max(u - 2, 0):u + 3].any()  # lines meet at its center
    coloured = np.any(canvas > 0, axis=2) & ~white
    assert coloured.sum() > 30


def test_render_preview_png_with_legend(tmp_path):
    res = _scene(model='random weights (not a trained model)')
    path = render_preview(res, tmp_path / 'preview.png', size=(480, 360))
    assert [p.name for p in tmp_path.iterdir()] == ['preview.png']
    bgr = cv2.imread(str(path))
    assert bgr.shape == (360, 480, 3)
    rgb = bgr[:, :, ::-1].astype(int)
    green = (rgb[:, :, 1] > 150) & (rgb[:, :, 0] < 100) & (rgb[:, :, 2] < 120)
    assert green.sum() > 2000  # the cloud is drawn in its colours
    red = (rgb[:, :, 0] > 200) & (rgb[:, :, 1] < 110) & (rgb[:, :, 2] < 110)
    assert red[:100, :].sum() > 20  # the loud random-weights line of the legend
    plain = render_preview_image(_scene(), (480, 360)).astype(int)
    red_plain = (plain[:, :, 0] > 200) & (plain[:, :, 1] < 110) & (plain[:, :, 2] < 110)
    assert red_plain.sum() == 0
    light = (plain[:100, :250] > 200).all(axis=2).sum()
    assert light > 50  # legend text


def test_render_preview_rejects_tiny_sizes(tmp_path):
    with pytest.raises(ValueError, match='too small'):
        render_preview(_scene(), tmp_path / 'p.png', size=(10, 10))


def test_unregistered_views_are_skipped():
    res = _scene(num_views=4)
    poses = res.poses_c2w.copy()
    poses[2] = np.nan  # the classical backend's mark for a view it could not register
    res = ReconstructionResult(**{**res.__dict__, 'poses_c2w': poses})
    K, w2c = choose_view(res, (320, 240))
    assert np.isfinite(K).all() and np.isfinite(w2c).all()
    image = render_preview_image(res, (320, 240))
    assert image.shape == (240, 320, 3)
