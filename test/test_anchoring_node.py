# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Metric anchoring across processes: the demo camera publishes its poses on /tf (``odom``).

The node (classical backend, ``fixed_frame: odom``) looks each image's optical frame up in
``odom``, anchors the reconstruction and publishes ``odom -> world_frame``: carried through
that transform, the cloud must lie on the true surface in metres and the cameras where TF put
them. Without TF the node must refuse the anchor with the reason and publish no ``odom`` link.
"""

import os

import numpy as np
import pytest
from scipy.spatial import cKDTree

from aetherscan_ros.demo.run_demo import node_command, NodeMonitor, start_process, stop_process

pytestmark = [pytest.mark.ros, pytest.mark.slow]

VIEWS = 6
NS = '/anc'


@pytest.fixture(scope='module')
def scene(tmp_path_factory):
    from aetherscan_ros.demo.scene import make_scene, write_scene
    scene = make_scene(num_views=VIEWS, width=320, height=240, seed=4)
    return scene, write_scene(scene, tmp_path_factory.mktemp('scene')).parent


def _run(tmp_path, scene_dir, *camera_args):
    """Run node + camera until the reconstruction completes; return (monitor, events, procs)."""
    env = dict(os.environ)
    procs = []
    monitor = NodeMonitor()
    procs.append(start_process(node_command({
        'backend': 'classical', 'image_topics': [f'{NS}/image_raw'], 'fixed_frame': 'odom',
        'min_views': VIEWS, 'max_views': VIEWS, 'keyframe_min_interval': 0.0,
        'keyframe_min_change': 0.0, 'tf_timeout': 1.0, 'no_frames_warning': 0.0,
        'output_dir': str(tmp_path / 'out')}), tmp_path / 'node.log', env))
    assert monitor.wait_for_node(60.0), (tmp_path / 'node.log').read_text()
    assert monitor.wait_event('backend_selected', 60.0)
    procs.append(start_process(['-m', 'aetherscan_ros.demo.publisher', '--scene-dir',
                                str(scene_dir), '--namespace', NS, '--rate', '10',
                                *camera_args], tmp_path / 'camera.log', env))
    done = monitor.wait_event('reconstruction_complete', 120.0)
    assert done is not None, (tmp_path / 'node.log').read_text()
    anchor = monitor.wait_event('anchor', 10.0)
    assert anchor is not None
    return monitor, done, anchor, procs


def _close(monitor, procs):
    for proc in reversed(procs):
        stop_process(proc)
    monitor.close()


def _in_odom(monitor, done):
    """Return (cloud points, camera centres) carried into odom through /tf_static."""
    from aetherscan_ros.ros.tf import transform_to_matrix
    assert monitor.spin_until(lambda: monitor.cloud is not None and 'aetherscan_world' in
                              monitor.tf, 20.0), 'no ~/cloud or no odom -> world link'
    link = monitor.tf['aetherscan_world']
    assert link.header.frame_id == 'odom'
    odom_world = transform_to_matrix(link)
    points = monitor.cloud.points.astype(np.float64) @ odom_world[:3, :3].T + odom_world[:3, 3]
    centres = {}
    for child, msg in monitor.tf.items():
        if child.startswith('camera_') and child.endswith('_optical'):
            view = int(child.split('_')[1])
            centres[view] = (odom_world @ transform_to_matrix(msg))[:3, 3]
    return points, centres


def test_clean_tf_puts_the_cloud_in_odom_in_metres(ros, tmp_path, scene):
    truth, scene_dir = scene
    monitor, done, anchor, procs = _run(tmp_path, scene_dir, '--tf-frame', 'odom')
    try:
        assert anchor['ok'], anchor
        assert done['anchor']['ok'] and done['info']['metric_scale'] is True
        points, centres = _in_odom(monitor, done)
        extent = truth.extent
        dist, _ = cKDTree(truth.surface_samples).query(points[::7])
        assert np.median(dist) < 0.01 * extent, np.median(dist) / extent
        assert len(centres) == VIEWS
        gt = truth.poses_c2w[:, :3, 3]
        errors = [np.linalg.norm(centres[v] - gt[v]) for v in range(VIEWS)]
        assert max(errors) < 0.005 * extent, errors
        i, j = np.triu_indices(VIEWS, 1)
        got = np.array([np.linalg.norm(centres[a] - centres[b]) for a, b in zip(i, j)])
        want = np.linalg.norm(gt[i] - gt[j], axis=1)
        scale_error = np.median(np.abs(got / want - 1.0))
        print(f'anchored in odom: cloud median distance {np.median(dist) / extent:.4%} of the '
              f'extent, camera centres max {max(errors) / extent:.4%}, scale error '
              f'{scale_error:.4%}, residual RMS {anchor["residual_rms_m"]:.4f} m')
        assert scale_error <= 0.005  # scale error <= 0.5 %
        assert anchor['residual_rms_m'] < 0.01
        assert monitor.spin_until(lambda: monitor.diagnostics.get('anchor_ok') == 'True', 10.0)
    finally:
        _close(monitor, procs)


def test_noisy_late_tf_is_anchored_with_its_residuals(ros, tmp_path, scene):
    truth, scene_dir = scene
    monitor, done, anchor, procs = _run(tmp_path, scene_dir, '--tf-frame', 'odom',
                                        '--tf-noise', '0.01', '0.5', '--tf-latency', '0.3')
    try:
        assert anchor['ok'], anchor
        assert 0.002 < anchor['residual_rms_m'] < 0.05  # about the 1 cm of noise, reported
        print(f'noisy TF: residual RMS {anchor["residual_rms_m"]:.4f} m, max '
              f'{anchor["residual_max_m"]:.4f} m, scale {anchor["scale"]:.4f}')
        points, _ = _in_odom(monitor, done)
        dist, _ = cKDTree(truth.surface_samples).query(points[::7])
        assert np.median(dist) < 0.01 * truth.extent
    finally:
        _close(monitor, procs)


def test_without_tf_the_anchor_is_refused_and_nothing_is_placed_in_odom(
        ros, tmp_path, scene):
    _, scene_dir = scene
    monitor, done, anchor, procs = _run(tmp_path, scene_dir)
    try:
        assert not anchor['ok'] and anchor['reason'], anchor
        assert done['anchor']['ok'] is False and not done['info'].get('metric_scale')
        assert monitor.spin_until(lambda: monitor.cloud is not None, 20.0)
        monitor.spin_for(1.0)
        assert all(msg.header.frame_id != 'odom' for msg in monitor.tf.values())
        log = (tmp_path / 'node.log').read_text()
        assert 'not anchored in odom' in log and 'TF lookups failed' in log
    finally:
        _close(monitor, procs)


@pytest.mark.parametrize('camera_args, reason', [
    (('--tf-stamp-offset', '-5.0'), 'TF lookups failed'),     # stale TF: 5 s behind the images
    (('--tf-still',), 'baseline'),                           # the robot did not move
], ids=['stale_tf', 'pure_rotation'])
def test_stale_tf_and_no_motion_are_refused_with_the_reason(ros, tmp_path, scene, camera_args,
                                                            reason):
    _, scene_dir = scene
    monitor, done, anchor, procs = _run(tmp_path, scene_dir, '--tf-frame', 'odom',
                                        *camera_args)
    try:
        log = (tmp_path / 'node.log').read_text()
        assert not anchor['ok'], anchor
        assert reason in anchor['reason'] or reason in log, (anchor, log[-2000:])
        assert done['anchor']['ok'] is False and not done['info'].get('metric_scale')
        monitor.spin_for(1.0)
        assert all(msg.header.frame_id != 'odom' for msg in monitor.tf.values())
        print(f'{camera_args}: refused: {anchor["reason"]}')
    finally:
        _close(monitor, procs)


def test_the_demo_camera_publishes_its_rig_mounting_on_tf_static(ros, tmp_path, scene):
    """``--extrinsics`` latches PARENT -> the camera's optical frame (a rig's static TF)."""
    import time

    import rclpy
    from rclpy.qos import DurabilityPolicy, QoSProfile
    from sensor_msgs.msg import Image
    from tf2_msgs.msg import TFMessage

    from aetherscan_ros.ros.tf import transform_to_matrix
    _, scene_dir = scene
    node = rclpy.create_node('extrinsics_listener')
    got = []
    node.create_subscription(TFMessage, '/tf_static', got.append, QoSProfile(
        depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL))
    proc = start_process(['-m', 'aetherscan_ros.demo.publisher', '--scene-dir', str(scene_dir),
                          '--namespace', '/rig/left', '--frame-id', 'left_optical',
                          '--extrinsics', 'rig_base', '0.06', '0', '0', '0', '0', '0', '1',
                          '--wait-subscriber', '20', '--rate', '20'],
                         tmp_path / 'camera.log', dict(os.environ))
    image_sub = node.create_subscription(Image, '/rig/left/image_raw', lambda m: None, 10)
    try:
        end = time.monotonic() + 30.0
        while not got and time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
        assert got, (tmp_path / 'camera.log').read_text()
        link = got[0].transforms[0]
        assert (link.header.frame_id, link.child_frame_id) == ('rig_base', 'left_optical')
        assert np.allclose(transform_to_matrix(link)[:3, 3], [0.06, 0.0, 0.0])
    finally:
        stop_process(proc)
        node.destroy_subscription(image_sub)
        node.destroy_node()
