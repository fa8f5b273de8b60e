# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
MapAnything through the node across processes: camera_info K and TF poses reach the model.

The demo camera publishes a small scene with its camera_info and its poses on /tf (``odom``);
the node (``backend: mapanything``, a tiny random checkpoint, ``fixed_frame: odom``) looks the
poses up before the backend runs and gives them to the model with K. The streamed cloud and
the camera frames must equal a direct in-process run with the same priors, placed in ``odom``
(identity ``odom -> world_frame``, no similarity fit), and differ from runs without K or
without poses (so both reached the model).
"""

import os

import numpy as np
import pytest
from scipy.spatial import cKDTree

from aetherscan_ros.demo.run_demo import node_command, NodeMonitor, start_process, stop_process

torch = pytest.importorskip('torch')
pytestmark = [pytest.mark.ros, pytest.mark.slow]

VIEWS = 3
NS = '/macam'


@pytest.fixture(scope='module')
def scene(tmp_path_factory):
    from aetherscan_ros.demo.scene import make_scene, write_scene
    scene = make_scene(num_views=VIEWS, width=160, height=120, seed=4)
    return scene, write_scene(scene, tmp_path_factory.mktemp('scene')).parent


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    from aetherscan_ros.models.mapanything import write_random_checkpoint
    return write_random_checkpoint(tmp_path_factory.mktemp('ma_node') / 'tiny', 'tiny', seed=1)


def _direct(ckpt, scene, with_k=True, with_poses=True):
    """Return the reconstruction an in-process backend makes with these priors."""
    from aetherscan_ros.backends.base import Frame
    from aetherscan_ros.backends.mapanything import MapAnythingBackend
    backend = MapAnythingBackend(str(ckpt), device='cpu')
    frames = [Frame(img, f'view{i}', K=scene.K if with_k else None)
              for i, img in enumerate(scene.images)]
    return backend.reconstruct(frames, poses_c2w=scene.poses_c2w if with_poses else None)


def _near(got, want, flips):
    """Return whether point sets agree up to a few edge-mask flips (SPEC §13.9)."""
    if abs(len(got) - len(want)) > flips:
        return False
    dist, _ = cKDTree(want).query(got)
    return int((dist > 1e-4 * max(1.0, np.abs(want).max())).sum()) <= flips


def test_k_and_tf_poses_reach_the_model_and_the_cloud_lands_in_odom(ros, tmp_path, scene, ckpt):
    from aetherscan_ros.core.pose_priors import PRIOR_FRAME, PRIOR_METHOD
    from aetherscan_ros.ros.tf import transform_to_matrix
    truth, scene_dir = scene
    env = dict(os.environ, OMP_NUM_THREADS='2')
    monitor = NodeMonitor()
    procs = [start_process(node_command({
        'backend': 'mapanything', 'model': str(ckpt), 'device': 'cpu',
        'image_topics': [f'{NS}/image_raw'], 'fixed_frame': 'odom', 'min_views': VIEWS,
        'max_views': VIEWS, 'keyframe_min_interval': 0.0, 'keyframe_min_change': 0.0,
        'tf_timeout': 1.0, 'no_frames_warning': 0.0, 'output_dir': str(tmp_path / 'out')}),
        tmp_path / 'node.log', env)]
    try:
        assert monitor.wait_for_node(60.0), (tmp_path / 'node.log').read_text()
        selected = monitor.wait_event('backend_selected', 120.0)
        assert selected is not None and selected['backend'] == 'mapanything', \
            (tmp_path / 'node.log').read_text()
        assert selected['licence'].startswith('none: random test weights')
        procs.append(start_process(['-m', 'aetherscan_ros.demo.publisher', '--scene-dir',
                                    str(scene_dir), '--namespace', NS, '--rate', '10',
                                    '--tf-frame', 'odom'], tmp_path / 'camera.log', env))
        done = monitor.wait_event('reconstruction_complete', 180.0)
        assert done is not None, (tmp_path / 'node.log').read_text()
        anchor = monitor.wait_event('anchor', 10.0)
        assert anchor['ok'] and anchor['method'] == PRIOR_METHOD and anchor['scale'] == 1.0
        info = done['info']
        assert info['in_prior_frame'] and info['metric_scale'] and info['world_frame'] == \
            PRIOR_FRAME and info['pose_priors'] == f'{VIEWS} of {VIEWS} views'
        assert info['intrinsics'] == 'camera_info (given to the model)'
        recon = done['reconstruction']
        assert monitor.spin_until(lambda: recon in monitor.assembled and 'aetherscan_world'
                                  in monitor.tf, 30.0)
        link = monitor.tf['aetherscan_world']
        assert link.header.frame_id == 'odom'
        np.testing.assert_allclose(transform_to_matrix(link), np.eye(4), atol=1e-12)
        streamed = monitor.assembled[recon].points.astype(np.float64)
        cameras = monitor.view_poses()
    finally:
        for proc in reversed(procs):
            stop_process(proc)
        monitor.close()

    direct = _direct(ckpt, truth)
    flips = 0.001 * direct.num_points + 3
    assert _near(streamed, direct.points.astype(np.float64), flips), \
        (len(streamed), direct.num_points)
    np.testing.assert_allclose(cameras, direct.poses_c2w, atol=1e-4)
    for name, other in (('no K', _direct(ckpt, truth, with_k=False)),
                        ('no poses', _direct(ckpt, truth, with_poses=False))):
        assert not _near(streamed, other.points.astype(np.float64), flips), name
    print(f'node with K + TF priors: {len(streamed)} points, equal to the direct run; camera '
          f'centres {np.round(cameras[:, :3, 3], 4).tolist()} in odom; residual to TF '
          f'{anchor["residual_rms_m"]:.4f} m RMS (random weights)')
