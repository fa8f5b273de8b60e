# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Per-view depth images from a reconstruction (ROS-free rendering, and the 32FC1 message).

A result made from the demo scene's true depth maps must render back to those depth maps; the
depth of any view must reproject onto that view's own points (within the half-pixel footprint
of the pixel), keep the nearest point of a pixel and ignore other views' points.
"""

from dataclasses import replace

import numpy as np
import pytest
from scipy.spatial import cKDTree

from aetherscan_ros.backends.base import result_from_view_clouds, ViewCloud
from aetherscan_ros.core.depth import (
    backproject, pixel_of, project, render_depth, result_depths, scaled_camera, to_camera,
    view_depth, visible_in_view, working_scale)

K = np.array([[100.0, 0.0, 40.0], [0.0, 90.0, 30.0], [0.0, 0.0, 1.0]])
SIZE = (80, 60)


def _pose(yaw_deg=0.0, t=(0.0, 0.0, 0.0)):
    a = np.radians(yaw_deg)
    pose = np.eye(4)
    pose[:3, :3] = [[np.cos(a), 0.0, np.sin(a)], [0.0, 1.0, 0.0], [-np.sin(a), 0.0, np.cos(a)]]
    pose[:3, 3] = t
    return pose


def _result(clouds, poses, Ks=None, metric=False):
    views = len(poses)
    Ks = np.stack([K] * views) if Ks is None else Ks
    vcs = [ViewCloud(v, np.asarray(p, np.float32), np.full((len(p), 3), 128, np.uint8),
                     np.ones(len(p), np.float32)) for v, p in enumerate(clouds)]
    return result_from_view_clouds(vcs, np.stack(poses), Ks, np.array([SIZE] * views), 'test',
                                   info={'metric_scale': True} if metric else {})


def _truth_result(scene):
    """Return a result whose points are the true surface, one point per pixel per view."""
    clouds = []
    for v in range(scene.num_views):
        depth = np.where(scene.depths[v] > 0, scene.depths[v], np.nan)
        cam, pixels = backproject(depth, scene.K)
        pose = scene.poses_c2w[v]
        clouds.append(ViewCloud(v, (cam @ pose[:3, :3].T + pose[:3, 3]).astype(np.float32),
                                scene.images[v][pixels[:, 1], pixels[:, 0]],
                                np.ones(len(cam), np.float32)))
    width, height = scene.size
    return result_from_view_clouds(clouds, scene.poses_c2w, np.stack([scene.K] * len(clouds)),
                                   np.array([[width, height]] * len(clouds)), 'truth',
                                   info={'metric_scale': True})


@pytest.fixture(scope='module')
def scene():
    from aetherscan_ros.demo.scene import make_scene
    return make_scene(num_views=2, width=96, height=72, seed=2)


def test_the_true_surface_renders_back_to_the_true_depth(scene):
    result = _truth_result(scene)
    depths = result_depths(result)
    assert [d.view for d in depths] == [0, 1]
    for item, truth in zip(depths, scene.depths):
        assert item.depth.dtype == np.float32 and item.depth.shape == truth.shape
        assert item.size == scene.size and item.metric
        assert np.array_equal(item.K, scene.K)
        seen = truth > 0
        assert np.array_equal(np.isfinite(item.depth), seen)  # NaN exactly where no surface
        np.testing.assert_allclose(item.depth[seen], truth[seen], rtol=1e-5)


def test_every_depth_pixel_reprojects_onto_its_own_view_cloud():
    rng = np.random.default_rng(0)
    pose = _pose(20.0, (0.3, -0.1, 0.2))
    cam = np.column_stack([rng.uniform(-1.2, 1.2, 3000), rng.uniform(-0.9, 0.9, 3000),
                           rng.uniform(1.5, 4.0, 3000)])
    world = cam @ pose[:3, :3].T + pose[:3, 3]
    result = _result([world], [pose])
    item = view_depth(result, 0)
    points, pixels = backproject(item.depth, item.K)
    assert 1000 < len(points) <= 3000
    back = points @ pose[:3, :3].T + pose[:3, 3]
    dist, _ = cKDTree(world).query(back)
    # a pixel centre is at most half a pixel diagonal from the point that made it
    footprint = np.sqrt(0.5) * points[:, 2] / min(K[0, 0], K[1, 1])
    assert np.all(dist <= footprint + 1e-6), (dist / footprint).max()
    # ... and that point is the nearest of those on the pixel (brute force per pixel)
    nearest = {}
    for x, y, z in cam:
        key = (int(np.floor(K[0, 0] * x / z + K[0, 2] + 0.5)),
               int(np.floor(K[1, 1] * y / z + K[1, 2] + 0.5)))
        if 0 <= key[0] < SIZE[0] and 0 <= key[1] < SIZE[1]:
            nearest[key] = min(z, nearest.get(key, np.inf))
    assert len(nearest) == len(points)
    want = np.array([nearest[(int(c), int(r))] for c, r in pixels])
    np.testing.assert_allclose(points[:, 2], want, rtol=1e-6)


def test_the_nearest_point_wins_and_points_outside_or_behind_are_dropped():
    pose = _pose()
    ray = np.array([0.2, -0.1, 1.0])  # (u, v) = (60, 21)
    pts = [2.0 * ray, 1.0 * ray, 3.0 * ray,           # one pixel, three depths
           [-0.5, 0.0, -2.0],                          # behind the camera
           [10.0, 0.0, 1.0]]                           # far outside the image
    depth = render_depth(np.array(pts), pose, K, SIZE)
    assert depth.shape == (60, 80)
    assert np.count_nonzero(np.isfinite(depth)) == 1
    assert depth[21, 60] == pytest.approx(1.0)


def test_a_learned_backends_views_render_gap_free_at_its_working_resolution():
    """One point per network pixel (0.8 x the input): dense at 64x48, gappy at 80x60."""
    K_net, net_size = scaled_camera(K, SIZE, 0.8)
    assert net_size == (64, 48)
    # the input pixel centre (u, v) sits at ((u + 0.5) * 0.8 - 0.5, ...) in the network image
    ray = np.array([[0.3, -0.2, 1.0]])
    uv, _ = project(ray, K)
    uv_net, _ = project(ray, K_net)
    np.testing.assert_allclose(uv_net, (uv + 0.5) * 0.8 - 0.5, atol=1e-12)
    rng = np.random.default_rng(3)
    depth_net = rng.uniform(2.0, 3.0, (48, 64)).astype(np.float32)
    cam, _ = backproject(depth_net, K_net)
    result = _result([cam], [_pose()])
    result = replace(result, info={'network_sizes': [[64, 48]]})
    assert working_scale(result, 0) == pytest.approx(0.8)
    full = result_depths(result)[0]
    assert full.size == SIZE and 0.5 < np.isfinite(full.depth).mean() < 0.75  # gaps
    work = result_depths(result, working_resolution=True)[0]
    assert work.size == (64, 48) and np.allclose(work.K, K_net)
    np.testing.assert_allclose(work.depth, depth_net, rtol=1e-6)  # every pixel, its own point
    plain = _result([cam], [_pose()])
    assert working_scale(plain, 0) == 1.0
    square = replace(result, info={'network_sizes': [[96, 48]]})
    assert working_scale(square, 0) == 1.0  # never above the input resolution


def test_pixel_centres_are_at_integer_coordinates():
    uv = np.array([[3.49, 2.51], [-0.49, 0.0], [-0.51, 0.0], [79.49, 59.49], [79.5, 0.0],
                   [np.nan, 1.0]])
    flat, inside = pixel_of(uv, SIZE)
    assert inside.tolist() == [True, True, False, True, False, False]
    assert flat[0] == 3 * 80 + 3 and flat[1] == 0 and flat[3] == 59 * 80 + 79


def test_backprojection_inverts_projection_with_skew():
    Ks = K.copy()
    Ks[0, 1] = 3.0
    cam = np.array([[0.3, -0.2, 2.0], [-0.1, 0.15, 1.0]])
    uv, z = project(cam, Ks)
    depth = np.full((60, 80), np.nan, np.float32)
    cols, rows = np.round(uv).astype(int).T
    depth[rows, cols] = z
    points, pixels = backproject(depth, Ks)
    for point, (col, row) in zip(points, pixels):
        back, _ = project(point[None], Ks)
        np.testing.assert_allclose(back[0], [col, row], atol=1e-9)


def test_other_views_points_and_unregistered_views_make_no_depth():
    front = np.array([[0.0, 0.0, 2.0]])
    nearer = np.array([[0.0, 0.0, 1.0]])  # view 1's point, in front of view 0's
    unregistered = np.full((4, 4), np.nan)
    result = _result([front, nearer, np.zeros((0, 3))], [_pose(), _pose(), unregistered])
    depth0 = view_depth(result, 0).depth
    assert depth0[30, 40] == pytest.approx(2.0) and np.count_nonzero(np.isfinite(depth0)) == 1
    assert view_depth(result, 2) is None
    assert [d is None for d in result_depths(result)] == [False, False, True]
    assert not view_depth(result, 0).metric


def test_points_by_view_in_and_out_of_view_order():
    from aetherscan_ros.core.depth import points_by_view
    rng = np.random.default_rng(5)
    result = _result([rng.normal(size=(n, 3)) for n in (3, 0, 5)], [_pose()] * 3)
    for shuffled in (False, True):
        if shuffled:  # a result whose points are not grouped by view
            order = rng.permutation(result.num_points)
            result = replace(result, points=result.points[order],
                             view_index=result.view_index[order])
        got = points_by_view(result)
        assert [len(p) for p in got] == [3, 0, 5]
        for view, points in enumerate(got):
            want = result.points[result.view_index == view]
            assert np.array_equal(points, want)


def test_visibility_follows_the_views_own_surface():
    pose = _pose()
    wall = np.array([[x, y, 2.0] for x in np.linspace(-0.5, 0.5, 21)
                     for y in np.linspace(-0.5, 0.5, 21)])
    depth = render_depth(wall, pose, K, SIZE)
    probes = np.array([[0.0, 0.0, 2.01],   # on the wall (0.5 % behind it): seen
                       [0.0, 0.0, 3.0],    # behind the wall: hidden
                       [0.0, 0.0, 1.0],    # in front of the wall: not the surface seen there
                       [5.0, 0.0, 2.0]])   # outside the image
    visible, uv = visible_in_view(probes, pose, K, depth)
    assert visible.tolist() == [True, False, False, False]
    np.testing.assert_allclose(uv[0], [40.0, 30.0], atol=1e-9)
    np.testing.assert_allclose(to_camera(probes, _pose(0.0, (0.0, 0.0, 1.0)))[0],
                               [0.0, 0.0, 1.01])


def test_depth_message_round_trip_and_camera_info_pair():
    from aetherscan_ros.core.depth import ViewDepth
    from aetherscan_ros.ros.depth import depth_pair, image_msg_to_depth
    depth = np.arange(12, dtype=np.float32).reshape(3, 4)
    depth[0, 1] = np.nan
    item = ViewDepth(0, depth, K, (4, 3), True)
    image, info = depth_pair(item, 1_500_000_123, 'cam_optical')
    assert image.encoding == '32FC1' and image.step == 16 and (image.width, image.height) == (4, 3)
    assert len(image.data) == 48 and image.is_bigendian == 0
    assert image.header == info.header and info.header.frame_id == 'cam_optical'
    assert (info.header.stamp.sec, info.header.stamp.nanosec) == (1, 500_000_123)
    assert (info.width, info.height) == (4, 3) and list(info.k) == K.reshape(-1).tolist()
    assert np.array_equal(image_msg_to_depth(image), depth, equal_nan=True)
    with pytest.raises(ValueError, match='32FC1'):
        image.encoding = 'mono16'
        image_msg_to_depth(image)
