# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Continuous mapping without ROS: window scheduling, registration from shared keyframes, fusion.

A synthetic corridor (a textured wall and a floor) seen by a camera that drives along it; each
window's "reconstruction" is the ground truth seen by its views, expressed in the window's own
frame (view 0) and at a random scale, like an unscaled backend. The mapper must chain the
windows into one map that agrees with the ground truth up to the first window's similarity.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from aetherscan_ros.backends.base import Frame, result_from_view_clouds, ViewCloud
from aetherscan_ros.core.geometry import invert_pose
from aetherscan_ros.core.mapping import Mapper, MappingConfig
from aetherscan_ros.core.registration import depth_grid, register_window, similarity
from aetherscan_ros.core.windows import WindowScheduler

W, H = 96, 72
K = np.array([[80.0, 0.0, (W - 1) / 2], [0.0, 80.0, (H - 1) / 2], [0.0, 0.0, 1.0]])
# optical axes of a camera looking along +y (world z up): x right = +x, y down = -z
R_LOOK = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def _pose(x, yaw_deg=0.0):
    yaw = np.radians(yaw_deg)
    rz = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    pose = np.eye(4)
    pose[:3, :3] = rz @ R_LOOK
    pose[:3, 3] = [x, 0.0, 0.2 * np.sin(x)]
    return pose


def _view_points(pose, stride=3):
    """Return the world points ``[N, 3]`` a camera at ``pose`` sees (wall y=3, floor z=-1)."""
    u, v = np.meshgrid(np.arange(0, W, stride), np.arange(0, H, stride))
    rays = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], 1) @ np.linalg.inv(K).T
    dirs = rays @ pose[:3, :3].T
    c = pose[:3, 3]
    with np.errstate(divide='ignore', invalid='ignore'):
        t_wall = (3.0 - c[1]) / dirs[:, 1]
        t_floor = (-1.0 - c[2]) / dirs[:, 2]
    t_wall[~(t_wall > 0)] = np.inf
    t_floor[~(t_floor > 0)] = np.inf
    t = np.minimum(t_wall, t_floor)
    keep = np.isfinite(t)
    return c + dirs[keep] * t[keep, None]


def _colour(points):
    cells = np.floor(points * 4).astype(np.int64)
    return ((cells * np.array([37, 91, 53])) % 256).astype(np.uint8)


def _window_result(poses, scale, rng=None, fail_views=()):
    """Return the ``ReconstructionResult`` of a window: frame of its view 0, times ``scale``."""
    to_win = invert_pose(poses[0])
    clouds, win_poses = [], []
    for i, pose in enumerate(poses):
        pts = _view_points(pose)
        local = (pts @ to_win[:3, :3].T + to_win[:3, 3]) * scale
        if rng is not None:
            local = local + rng.normal(0.0, 0.002 * scale, local.shape)
        clouds.append(ViewCloud(i, local.astype(np.float32), _colour(pts),
                                np.ones(len(pts), np.float32)))
        p = to_win @ pose
        p[:3, 3] *= scale
        win_poses.append(np.full((4, 4), np.nan) if i in fail_views else p)
    return result_from_view_clouds(clouds, np.stack(win_poses), np.repeat(K[None], len(poses), 0),
                                   np.tile([W, H], (len(poses), 1)), 'synthetic')


def _frames(n, camera='cam'):
    image = np.zeros((H, W, 3), np.uint8)
    return [Frame(image, f'kf{i}', (i + 1) * 10 ** 8, camera) for i in range(n)]


class _Buffer:
    """The two FrameBuffer calls the mapper makes."""

    def __init__(self, frames):
        self.frames = list(frames)
        self.done_calls = 0

    def take(self):
        out, self.frames = self.frames, []
        return out

    def done(self):
        self.done_calls += 1


def _run(mapper, truth, scales, rng=None, break_window=None):
    """Feed keyframes one by one, reconstruct windows as the scheduler cuts them."""
    frames = _frames(len(truth))
    reports = []
    for k, frame in enumerate(frames):
        window, _ = mapper.take_window(_Buffer([frame]))
        if window is None:
            continue
        idx = [frames.index(f) for f in window]
        scale = scales[len(reports) % len(scales)]
        poses = truth[idx]
        if break_window == len(reports):   # a reconstruction that is wrong: mirrored depths
            poses = poses.copy()
            poses[:, :3, :3] = poses[:, :3, :3] @ np.diag([1.0, 1.0, -1.0])
        reports.append(mapper.integrate(len(reports) + 1, window,
                                        _window_result(poses, scale, rng)))
    return frames, reports


def _map_error(mapper, truth):
    """Fit the map to the world by its keyframe poses; return (cloud error, pose error)."""
    from aetherscan_ros.core.geometry import umeyama
    names = [k.name for k in mapper.keyframes]
    idx = [int(n[2:]) for n in names]
    got = np.stack([k.pose_c2w[:3, 3] for k in mapper.keyframes])
    s, r, t = umeyama(got, truth[idx, :3, 3])
    pts = mapper.map_cloud().points.astype(np.float64) * s @ r.T + t
    wall = np.abs(pts[:, 1] - 3.0)
    floor = np.abs(pts[:, 2] + 1.0)
    cloud_err = np.median(np.minimum(wall, floor))
    pose_err = np.abs(s * got @ r.T + t - truth[idx, :3, 3]).max()
    return cloud_err, pose_err


def test_scheduler_cuts_overlapping_windows():
    sched = WindowScheduler(4, 2)
    frames = _frames(10)
    sched.add(frames[:3])
    assert sched.next_window() is None          # the first window needs 4 new keyframes
    sched.add(frames[3:5])
    first = sched.next_window()
    assert [f.name for f in first.frames] == ['kf0', 'kf1', 'kf2', 'kf3'] and first.anchors == 0
    sched.completed(first)
    second = sched.next_window()                # kf4 alone is not enough
    assert second is None
    sched.add(frames[5:6])
    second = sched.next_window()
    assert [f.name for f in second.frames] == ['kf2', 'kf3', 'kf4', 'kf5']
    assert second.anchors == 2
    sched.failed(second)                        # kf4 skipped, kf5 waits again
    assert sched.dropped == 1 and [u[0].name for u in sched.pending] == ['kf5']


def test_a_forced_window_takes_what_waits():
    sched = WindowScheduler(4, 2)
    frames = _frames(6)
    sched.add(frames[:1])
    assert sched.next_window(force=True) is None    # one keyframe cannot start a map
    sched.add(frames[1:4])
    sched.completed(sched.next_window())
    sched.add(frames[4:5])
    assert sched.next_window() is None
    short = sched.next_window(force=True)           # ~/reconstruct at the end of a stream
    assert [f.name for f in short.frames] == ['kf2', 'kf3', 'kf4'] and short.anchors == 2


def test_scheduler_keeps_rig_sets_whole():
    rig = [Frame(np.zeros((2, 2, 3), np.uint8), f's{i // 2}c{i % 2}', i // 2, f'c{i % 2}')
           for i in range(12)]
    sched = WindowScheduler(5, 3, group=2)      # 2 sets per window, overlap 2 sets -> 1
    sched.add(rig[:4])
    window = sched.next_window()
    assert [f.name for f in window.frames] == ['s0c0', 's0c1', 's1c0', 's1c1']
    sched.completed(window)
    sched.add(rig[4:6])
    window = sched.next_window()
    assert [f.name for f in window.frames] == ['s1c0', 's1c1', 's2c0', 's2c1']
    assert window.anchors == 2


def test_register_window_recovers_a_known_similarity():
    truth = np.stack([_pose(0.3 * i, 5.0 * np.sin(i)) for i in range(3)])
    grids_map = [depth_grid(_view_points(p), p, K, (W, H)) for p in truth]
    s, rot = 0.37, _pose(0.0, 40.0)[:3, :3] @ R_LOOK.T
    sim = similarity(s, rot, np.array([1.0, -2.0, 0.5]))
    win_poses = np.tile(np.eye(4), (3, 1, 1))   # x_win = R^T (x_map - t) / s
    win_poses[:, :3, :3] = rot.T @ truth[:, :3, :3]
    win_poses[:, :3, 3] = (truth[:, :3, 3] - sim[:3, 3]) @ rot / s
    win_points = [((_view_points(p) - sim[:3, 3]) @ rot) / s for p in truth]
    grids_win = [depth_grid(pts, pose, K, (W, H)) for pts, pose in zip(win_points, win_poses)]
    for shared in (1, 2):   # one shared keyframe is enough: the depths give the scale
        reg = register_window(win_poses[:shared], truth[:shared], grids_win[:shared],
                              grids_map[:shared])
        assert reg.ok, reg.reason
        assert reg.scale == pytest.approx(s, rel=1e-6)
        np.testing.assert_allclose(reg.transform, sim, atol=1e-6)
        assert reg.correspondences > 100 and reg.residual < 1e-6


def test_register_window_refuses_a_different_place():
    truth = np.stack([_pose(0.3 * i) for i in range(2)])
    grids = [depth_grid(_view_points(p), p, K, (W, H)) for p in truth]
    rng = np.random.default_rng(0)   # other surfaces: depths off by a factor 0.5..2

    def other(pose):
        pts = _view_points(pose)
        return pose[:3, 3] + (pts - pose[:3, 3]) * rng.uniform(0.5, 2.0, (len(pts), 1))

    elsewhere = [depth_grid(other(p), p, K, (W, H)) for p in truth]
    reg = register_window(truth, truth, elsewhere, grids)
    assert not reg.ok and 'depth' in reg.reason and np.isnan(reg.transform).all()
    none = register_window(np.full((1, 4, 4), np.nan), truth[:1], [None], grids[:1])
    assert not none.ok and 'no keyframe shared' in none.reason


def test_mapper_chains_unscaled_windows_into_one_consistent_map():
    truth = np.stack([_pose(0.25 * i, 4.0 * np.sin(0.7 * i)) for i in range(14)])
    mapper = Mapper(MappingConfig(window_size=5, window_overlap=2, voxel_size=0.05))
    rng = np.random.default_rng(3)
    _, reports = _run(mapper, truth, scales=[1.0, 0.4, 2.5, 0.8], rng=rng)
    assert len(reports) == 4 and all(r.registered for r in reports), \
        [r.reason for r in reports]
    assert reports[0].method == 'first' and reports[1].method == 'shared_keyframes'
    assert [r.scale for r in reports][1:] == pytest.approx([1 / 0.4, 1 / 2.5, 1 / 0.8],
                                                           rel=0.02)
    assert len(mapper.keyframes) == 5 + 3 * 3
    cloud_err, pose_err = _map_error(mapper, truth)
    print(f'map error: cloud median {cloud_err * 1000:.1f} mm, poses max {pose_err * 1000:.1f} '
          f'mm over {len(reports)} windows')
    assert cloud_err < 0.01 and pose_err < 0.03
    assert reports[-1].map_points == len(mapper.map) and reports[1].points_added > 0
    event = reports[1].to_event()
    for key in ('window', 'registered', 'reason', 'scale', 'residual', 'points_added',
                'map_points', 'keyframes', 'backend'):
        assert key in event
    assert event['keyframes'] == ['kf5', 'kf6', 'kf7']


def test_a_window_that_does_not_register_is_reported_and_the_map_goes_on():
    truth = np.stack([_pose(0.25 * i) for i in range(17)])
    mapper = Mapper(MappingConfig(window_size=5, window_overlap=2, voxel_size=0.05))
    _, reports = _run(mapper, truth, scales=[1.0, 0.5], break_window=1)
    assert reports[0].registered and not reports[1].registered
    assert 'registration refused' in reports[1].reason and reports[1].method == 'none'
    assert reports[1].map_points == reports[0].map_points   # nothing fused
    assert all(r.registered for r in reports[2:]) and len(reports) >= 4
    assert mapper.windows_failed == 1 and mapper.scheduler.dropped == 1
    cloud_err, _ = _map_error(mapper, truth)
    assert cloud_err < 0.01


def test_views_the_backend_did_not_register_are_left_out_and_do_not_anchor():
    truth = np.stack([_pose(0.25 * i) for i in range(8)])
    mapper = Mapper(MappingConfig(window_size=4, window_overlap=2, voxel_size=0.05))
    frames = _frames(8)
    window, _ = mapper.take_window(_Buffer(frames[:4]))
    assert mapper.integrate(1, window, _window_result(truth[:4], 1.0)).registered
    window, _ = mapper.take_window(_Buffer(frames[4:6]))      # kf2 kf3 | kf4 kf5
    report = mapper.integrate(2, window, _window_result(truth[2:6], 0.5, fail_views=(2, 3)))
    assert report.registered and report.keyframes == ('kf4', 'kf5')
    assert report.to_event()['keyframes_placed'] == 0 and len(report.keyframe_poses) == 0
    window, _ = mapper.take_window(_Buffer(frames[6:8]))      # the anchors stay kf2 kf3
    assert [f.name for f in window] == ['kf2', 'kf3', 'kf6', 'kf7']
    idx = [2, 3, 6, 7]
    report = mapper.integrate(3, window, _window_result(truth[idx], 2.0))
    assert report.registered, report.reason
    assert [k.name for k in mapper.keyframes] == ['kf0', 'kf1', 'kf2', 'kf3', 'kf6', 'kf7']
    assert np.isfinite(mapper.path()).all()


def test_backend_failure_keeps_the_frames_for_the_next_window():
    mapper = Mapper(MappingConfig(window_size=3, window_overlap=1, voxel_size=0.05))
    frames = _frames(6)
    window, _ = mapper.take_window(_Buffer(frames[:3]))
    report = mapper.window_failed(1, window, 'ReconstructionError: no texture')
    assert not report.registered and report.reason.startswith('ReconstructionError')
    assert [u[0].name for u in mapper.scheduler.pending] == ['kf1', 'kf2']
    window, _ = mapper.take_window(_Buffer(frames[3:4]))
    assert [f.name for f in window] == ['kf1', 'kf2', 'kf3']


def test_tf_anchored_windows_go_straight_into_the_fixed_frame():
    truth = np.stack([_pose(0.25 * i) for i in range(8)])
    mapper = Mapper(MappingConfig(window_size=4, window_overlap=1, voxel_size=0.05,
                                  metric=True))
    frames = _frames(8)
    refused = SimpleNamespace(ok=False, reason='TF baseline too small')
    window, _ = mapper.take_window(_Buffer(frames[:4]))
    result = _window_result(truth[:4], 1.0)
    report = mapper.integrate(1, window, result, refused)
    assert not report.registered and 'TF baseline too small' in report.reason
    window, _ = mapper.take_window(_Buffer(frames[4:6]))
    idx = [frames.index(f) for f in window]
    anchor = SimpleNamespace(ok=True, world_to_fixed=truth[idx[0]], residual_rms_m=0.001,
                             scale=2.5)
    report = mapper.integrate(2, window, _window_result(truth[idx], 1.0), anchor)
    assert report.registered and report.method == 'tf_anchor' and report.scale == 2.5
    np.testing.assert_allclose(mapper.path(), truth[idx], atol=1e-9)
    pts = mapper.map_cloud().points
    assert np.median(np.minimum(np.abs(pts[:, 1] - 3.0), np.abs(pts[:, 2] + 1.0))) < 0.01
    # a window whose TF anchor is refused falls back on the shared keyframes, in metres
    window, _ = mapper.take_window(_Buffer(frames[6:8]))
    idx = [frames.index(f) for f in window]
    report = mapper.integrate(3, window, _window_result(truth[idx], 0.3), refused)
    assert report.registered and report.method == 'shared_keyframes', report.reason
    assert report.scale == pytest.approx(1 / 0.3, rel=1e-3)
    np.testing.assert_allclose(mapper.path()[-2:], truth[6:8], atol=1e-6)


def test_reset_starts_a_new_map_and_a_running_window_is_not_fused():
    truth = np.stack([_pose(0.25 * i) for i in range(8)])
    mapper = Mapper(MappingConfig(window_size=4, window_overlap=1, voxel_size=0.05))
    frames = _frames(8)
    window, _ = mapper.take_window(_Buffer(frames[:4]))
    generation = mapper.generation
    mapper.integrate(1, window, _window_result(truth[:4], 1.0))
    assert len(mapper.map) > 0 and mapper.reset() > 0
    assert mapper.map_cloud() is None and len(mapper.path()) == 0
    window, _ = mapper.take_window(_Buffer(frames[4:8]))
    late = mapper.integrate(2, window, _window_result(truth[4:8], 1.0), generation=generation)
    assert not late.registered and 'reset' in late.reason


def test_config_rejects_bad_window_settings():
    with pytest.raises(ValueError, match='window_overlap'):
        MappingConfig(window_size=4, window_overlap=4)
    with pytest.raises(ValueError, match='window_size'):
        MappingConfig(window_size=1, window_overlap=1)


def test_fast3r_windows_run_through_the_mapper(tmp_path):
    """Fast3R (random weights: geometry is noise) as a window backend: reported, never raised."""
    from aetherscan_ros.backends.fast3r import Fast3RBackend
    from aetherscan_ros.core.session import upright_result
    from aetherscan_ros.demo.scene import make_scene
    from aetherscan_ros.models.fast3r import write_random_checkpoint
    backend = Fast3RBackend(str(write_random_checkpoint(tmp_path / 'ckpt')), 'cpu', size=64)
    frames = make_scene(num_views=6, width=96, height=64, seed=1).frames()
    mapper = Mapper(MappingConfig(window_size=4, window_overlap=2))
    reports = []
    for frame in frames:
        window, _ = mapper.take_window(_Buffer([frame]))
        if window is not None:
            result = upright_result(backend.reconstruct(window))
            assert result.info['model'] == 'random weights (not a trained model)'
            reports.append(mapper.integrate(len(reports) + 1, window, result))
    assert len(reports) == 2 and reports[0].registered and reports[0].method == 'first'
    assert reports[0].backend == 'fast3r' and reports[0].map_points == len(mapper.map) > 0
    assert reports[1].registered or reports[1].reason
    assert all(isinstance(r.to_event()['map_points'], int) for r in reports)
