# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Issue 14, part 3: the long ``tour`` path, map scoring, and the mapping demo across processes.

ROS-free: the tour's geometry (60+ keyframes, forward motion, four turns, back past the
start), :func:`evaluate_map` on exact, similarity-transformed and drifting inputs, and the
large-message malloc settings. Across processes (marked ``ros``/``slow``): a reduced
``run_demo --mode mapping`` (fewer, smaller views) with TF, scored against the ground truth.
"""

import json

import numpy as np
import pytest

from aetherscan_ros.core.large_messages import (tune_malloc_for_large_messages,
                                                with_large_message_malloc, with_node_malloc)
from aetherscan_ros.demo import room
from aetherscan_ros.demo.map_evaluation import evaluate_map, format_map_scores
from aetherscan_ros.demo.scene import make_scene


@pytest.fixture(scope='module')
def tour_scene():
    return make_scene(num_views=24, width=64, height=48, path='tour', seed=3)


def _rot(deg_xyz):
    from scipy.spatial.transform import Rotation
    return Rotation.from_euler('xyz', deg_xyz, degrees=True).as_matrix()


def test_tour_walks_forward_turns_and_comes_back_past_the_start():
    poses = np.stack(room.tour_poses(70, np.random.default_rng(0)))
    centres = poses[:, :3, 3]
    steps = np.linalg.norm(np.diff(centres, axis=0), axis=1)
    assert 0.1 <= np.median(steps) <= 0.2, np.median(steps)  # windows overlap
    assert np.all(steps < 0.3)
    assert steps.sum() == pytest.approx(1.15 * room.tour_length(), rel=0.03)  # once round + 15 %
    assert np.allclose(centres[:, 2], 1.3, atol=0.05)  # handheld height
    # forward motion: the optical axis points along the direction of travel (within the
    # inward bias of 25 degrees + jitter), not sideways as in an orbit
    travel = np.diff(centres[:, :2], axis=0)
    travel /= np.linalg.norm(travel, axis=1, keepdims=True)
    axis = poses[:-1, :2, 2] / np.linalg.norm(poses[:-1, :2, 2], axis=1, keepdims=True)
    angle = np.degrees(np.arccos(np.clip((travel * axis).sum(axis=1), -1, 1)))
    assert np.median(angle) < 35.0, np.median(angle)
    # four 90-degree turns: the heading turns a full circle and some more (the revisit)
    heading = np.unwrap(np.arctan2(travel[:, 1], travel[:, 0]))
    assert np.degrees(heading[-1] - heading[0]) > 360.0
    # the revisit: the last views pass the first ones again
    gaps = np.linalg.norm(centres[-8:, None, :] - centres[None, :4, :], axis=2)
    assert gaps.min() < 0.15, gaps.min()
    # inside the room, clear of the walls
    assert np.all(np.abs(centres[:, :2]) < 2.6)


def test_tour_scene_is_textured_and_covered_by_ground_truth(tour_scene):
    scene = tour_scene
    assert scene.meta['path'] == 'tour' and scene.num_views == 24
    assert all(float(img.std()) > 20.0 for img in scene.images)  # texture everywhere
    assert all((d > 0.3).mean() > 0.99 for d in scene.depths)  # nothing right at the lens
    assert 7.0 < scene.extent < 10.0  # the room: ~6 x 6 x 2.8 m
    with pytest.raises(ValueError, match='unknown camera path'):
        make_scene(num_views=2, width=32, height=32, path='nowhere')


def test_evaluate_map_exact_anchored(tour_scene):
    views = np.arange(tour_scene.num_views)
    scores = evaluate_map(tour_scene.surface_samples, tour_scene.poses_c2w, views, tour_scene,
                          anchored=True)
    assert scores.accuracy_pct == pytest.approx(0.0, abs=1e-6)
    assert scores.completeness_pct == pytest.approx(0.0, abs=1e-6)
    assert scores.completeness_ratio == 1.0
    assert scores.end_drift_pct == pytest.approx(0.0, abs=1e-9)
    assert scores.rotation_error_max_deg == pytest.approx(0.0, abs=1e-4)
    assert scores.path_length > 5.0
    assert 'anchored' in scores.alignment
    assert 'end-of-path drift' in format_map_scores(scores)
    json.dumps(scores.as_dict())


def test_evaluate_map_unanchored_aligns_a_similarity(tour_scene):
    R, s, t = _rot([10, -20, 35]), 0.37, np.array([1.0, -2.0, 0.5])
    gt = tour_scene.poses_c2w
    est = gt.copy()  # x_est = R^T (x_gt - t) / s
    est[:, :3, :3] = R.T @ gt[:, :3, :3]
    est[:, :3, 3] = (gt[:, :3, 3] - t) @ R / s
    points = (tour_scene.surface_samples.astype(np.float64) - t) @ R / s
    scores = evaluate_map(points, est, np.arange(len(gt)), tour_scene, anchored=False,
                          first_window=6)
    assert scores.scale == pytest.approx(s, rel=1e-6)
    assert scores.accuracy_pct < 1e-4 and scores.completeness_ratio == 1.0
    assert scores.end_drift_pct < 1e-6 and scores.ate_pct < 1e-6
    assert scores.rotation_error_max_deg < 1e-4
    assert 'first 6 keyframes' in scores.alignment


def test_evaluate_map_measures_drift_after_the_first_window(tour_scene):
    gt = tour_scene.poses_c2w
    n = len(gt)
    est = gt.copy()
    drift = np.zeros((n, 3))
    drift[6:, 0] = np.linspace(0.0, 0.3, n - 6)  # 30 cm of x drift by the end
    est[:, :3, 3] += drift
    scores = evaluate_map(tour_scene.surface_samples, est, np.arange(n), tour_scene,
                          anchored=False, first_window=6)
    assert scores.end_drift == pytest.approx(0.3, abs=1e-6)
    assert scores.end_drift_pct == pytest.approx(30.0 / scores.path_length, rel=1e-6)
    assert scores.center_error_max_pct == pytest.approx(scores.end_drift_pct, rel=1e-6)
    assert scores.ate_pct < scores.end_drift_pct  # the all-keyframe fit spreads the error
    # a keyframe subset maps to its own ground-truth views
    sub = evaluate_map(tour_scene.surface_samples, est[::3], np.arange(n)[::3], tour_scene,
                       anchored=True)
    assert sub.keyframes == len(est[::3])
    assert sub.end_drift == pytest.approx(np.linalg.norm(drift[::3][-1]), abs=1e-9)


def test_evaluate_map_rejects_bad_input(tour_scene):
    gt = tour_scene.poses_c2w
    with pytest.raises(ValueError, match='view indices'):
        evaluate_map(tour_scene.surface_samples, gt, [0, 1], tour_scene, anchored=True)
    with pytest.raises(ValueError, match='out of range'):
        evaluate_map(tour_scene.surface_samples, gt[:2], [0, 99], tour_scene, anchored=True)
    with pytest.raises(ValueError, match='at least 2'):
        evaluate_map(tour_scene.surface_samples, gt[:1], [0], tour_scene, anchored=True)
    bad = gt[:3].copy()
    bad[1, 0, 3] = np.nan
    with pytest.raises(ValueError, match='not finite'):
        evaluate_map(tour_scene.surface_samples, bad, [0, 1, 2], tour_scene, anchored=True)
    empty = evaluate_map(np.zeros((0, 3)), gt[:3], [0, 1, 2], tour_scene, anchored=True)
    assert empty.accuracy_pct == float('inf') and empty.completeness_ratio == 0.0


def test_large_message_malloc_settings():
    env = with_large_message_malloc({'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=1'})
    tunables = env['GLIBC_TUNABLES'].split(':')
    assert tunables[0] == 'glibc.malloc.hugetlb=1'
    assert 'glibc.malloc.mmap_threshold=268435456' in tunables
    assert 'glibc.malloc.trim_threshold=536870912' in tunables
    kept = with_large_message_malloc({'GLIBC_TUNABLES': 'glibc.malloc.mmap_threshold=1024'})
    assert kept['GLIBC_TUNABLES'].count('mmap_threshold') == 1
    assert 'glibc.malloc.mmap_threshold=1024' in kept['GLIBC_TUNABLES']
    assert isinstance(tune_malloc_for_large_messages(), bool)
    node = with_node_malloc({'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=1'})['GLIBC_TUNABLES']
    assert node == 'glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=1048576'


def test_the_mapping_node_sets_its_malloc_unless_told_otherwise():
    from aetherscan_ros.core.large_messages import tune_malloc_for_mapping_node
    assert tune_malloc_for_mapping_node(
        {'GLIBC_TUNABLES': 'glibc.malloc.mmap_threshold=4096'}) == \
        'mmap threshold from GLIBC_TUNABLES'
    assert tune_malloc_for_mapping_node({'AETHERSCAN_NODE_MALLOC': 'default'}).startswith(
        'glibc default')
    assert tune_malloc_for_mapping_node({}) == 'mmap threshold 1 MiB'  # glibc (Linux) here


def _run_mapping_demo(tmp_path, *extra, views=20):
    import subprocess
    import sys
    out = tmp_path / 'demo'
    cmd = [sys.executable, '-m', 'aetherscan_ros.demo.run_demo', '--mode', 'mapping',
           '--backend', 'classical', '--num-views', str(views), '--width', '320', '--height',
           '240', '--window-size', '8', '--window-overlap', '2', '--timeout', '400',
           '--output-dir', str(out), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    log = (proc.stdout + proc.stderr)[-3000:]
    assert proc.returncode == 0, log
    return json.loads((out / 'mapping_scores.json').read_text()), log


@pytest.mark.ros
@pytest.mark.slow
def test_mapping_demo_with_tf_across_processes(tmp_path):
    """Node, camera (+ /tf) and scorer in three processes; the map meets the TF targets."""
    from pathlib import Path

    from aetherscan_ros.demo.run_demo.mapping import (TARGET_ACCURACY_PCT,
                                                      TARGET_COMPLETENESS_PCT)
    result, log = _run_mapping_demo(tmp_path)
    summary, scores = result['summary'], result['scores']
    assert result['views_published'] == 20, log
    # every published view is a keyframe of a finished window, every window registered by TF
    assert summary['keyframes_in_windows'] == 20 and summary['failed'] == 0, log
    assert summary['windows'] == summary['registered'] == 3, log
    assert result['deltas_delivered'] == 3, log  # each window's ~/points delta reassembled
    assert scores['anchored'] and scores['keyframes'] >= 12, scores
    assert scores['accuracy_pct'] <= TARGET_ACCURACY_PCT, scores
    assert scores['completeness_pct'] <= TARGET_COMPLETENESS_PCT, scores
    assert scores['end_drift_pct'] <= 2.0, scores  # TF: no drift to speak of
    assert scores['map_points'] > 50_000
    saved = Path(result['saved'])
    assert (saved / 'map.ply').is_file() and (saved / 'keyframes.json').is_file()


@pytest.mark.ros
@pytest.mark.slow
def test_short_mapping_soak_accounts_for_every_frame_and_window():
    """A short ``bench_soak_mapping`` run: nothing unaccounted, no lost window, clean exit."""
    from bench import bench_soak_mapping, run_all
    result = bench_soak_mapping.soak(15.0)
    books = bench_soak_mapping.accounting(result)
    assert books['sent'] > 0 and 0 < books['received'] <= books['sent'], books
    assert books['frames_unaccounted'] == 0, books
    assert books['keyframes_unaccounted'] == 0, books
    assert books['windows_started'] >= 1 and books['windows_lost'] == 0, books
    assert books['windows_registered'] >= 1, books
    assert result['map_points_received'] > 0 and result['path_poses'] > 0
    assert int(result['diag']['callback_errors']) == 0
    start, end = result['start'], result['end']
    assert end['fds'] <= start['fds'] + 2 and end['threads'] <= start['threads'] + 2
    assert result['exit_code'] == 0
    rows = bench_soak_mapping.rows_from(result)
    assert [set(r) for r in rows] == [set(run_all.ROW_KEYS)] * len(rows)
    assert 'soak_mapping' in run_all.discover(['soak_mapping'])[0]
