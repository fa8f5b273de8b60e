# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Raw distorted images and their camera_info through the node (cross-process).

The demo scene rendered through a plumb_bob lens (k1 = -0.27) or an equidistant (fisheye)
one is published raw with its
CameraInfo (D set). With ``undistort: true`` (the default) the node removes the distortion
before the classical backend runs: poses and accuracy match the pinhole scene's. With
``undistort: false`` it is clearly worse: the test proves the camera model is used.
"""

import os

import numpy as np
import pytest

from aetherscan_ros.demo.run_demo import node_command, NodeMonitor, start_process, stop_process

pytestmark = [pytest.mark.ros, pytest.mark.slow]

VIEWS = 4
NS = '/rawcam'


@pytest.fixture(scope='module', params=['plumb_bob', 'equidistant'])
def raw_scene(request, tmp_path_factory):
    from aetherscan_ros.core.calibration_file import write_calibration_yaml
    from aetherscan_ros.demo.distortion import distorted_demo_scene
    from aetherscan_ros.demo.scene import make_scene, write_scene
    scene, model = distorted_demo_scene(make_scene(num_views=VIEWS, width=320, height=240,
                                                   seed=3), request.param)
    directory = write_scene(scene, tmp_path_factory.mktemp('raw')).parent
    write_calibration_yaml(model, directory / 'camera_info.yaml')
    return scene, directory, request.param


def _reconstruct(tmp_path, scene, scene_dir, undistort):
    from aetherscan_ros.demo.evaluation import evaluate
    env = dict(os.environ)
    monitor = NodeMonitor()
    procs = [start_process(node_command({
        'backend': 'classical', 'image_topics': [f'{NS}/image_raw'], 'undistort': undistort,
        'min_views': VIEWS, 'max_views': VIEWS, 'keyframe_min_interval': 0.0,
        'keyframe_min_change': 0.0, 'no_frames_warning': 0.0,
        'output_dir': str(tmp_path / 'out')}), tmp_path / 'node.log', env)]
    try:
        assert monitor.wait_for_node(60.0) and monitor.wait_event('backend_selected', 60.0)
        procs.append(start_process(['-m', 'aetherscan_ros.demo.publisher', '--scene-dir',
                                    str(scene_dir), '--namespace', NS, '--rate', '10'],
                                   tmp_path / 'camera.log', env))
        done = monitor.wait_event('reconstruction_complete', 120.0)
        assert done is not None, (tmp_path / 'node.log').read_text()
        recon = done['reconstruction']
        assert monitor.spin_until(lambda: recon in monitor.assembled and len(monitor.tf) >= 2,
                                  30.0)
        received = monitor.find_event('image_received')
        streamed = monitor.assembled[recon]

        class Received:
            points = streamed.points
            poses_c2w = monitor.view_poses()

        return evaluate(Received, scene), received, (tmp_path / 'node.log').read_text()
    finally:
        for proc in reversed(procs):
            stop_process(proc)
        monitor.close()


def test_raw_images_are_undistorted_with_their_camera_info(ros, tmp_path, raw_scene):
    scene, scene_dir, lens = raw_scene
    (tmp_path / 'on').mkdir()
    (tmp_path / 'off').mkdir()
    on, received, _ = _reconstruct(tmp_path / 'on', scene, scene_dir, True)
    off, _, log_off = _reconstruct(tmp_path / 'off', scene, scene_dir, False)
    print(f'{lens} raw through the node: undistort on: relative rotation max '
          f'{on.relative_rotation_error_deg_max:.3f} deg, accuracy {on.accuracy_pct:.3f} %; '
          f'off: {off.relative_rotation_error_deg_max:.3f} deg, {off.accuracy_pct:.3f} %')
    assert received['distortion'] == lens and received['has_k']
    assert on.registered_views == VIEWS
    # with the model: as good as the pinhole scene through the CLI (about 0.1 deg, 0.2 %)
    assert on.relative_rotation_error_deg_max < 0.3 and on.accuracy_pct < 0.5
    # lens ignored: clearly worse, and said so once
    assert off.relative_rotation_error_deg_max > max(1.0, 5 * on.relative_rotation_error_deg_max)
    assert off.accuracy_pct > max(1.0, 5 * on.accuracy_pct)
    assert f'{lens} lens distortion ignored (undistort is false)' in log_off
    assert np.isfinite(on.scale)
