# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Depth out and ``~/save`` exports through the node (cross-process).

The demo camera publishes its images with its true poses on /tf (``odom``); the node
(classical backend, ``fixed_frame: odom``) anchors the reconstruction in metres and publishes
one ``~/depth`` + ``~/depth/camera_info`` pair per view with the view's image stamp
and optical frame. Carried through the node's own camera TF, every depth pixel must land on
the ``~/cloud`` it came from, and the depth must be the scene's true depth in metres.
``~/save`` must write ``colmap/``, ``transforms.json`` and ``images/`` beside ``cloud.ply``.
The headers and the ``depth_output`` modes are checked on :class:`Outputs` with a stand-in
node (no processes).
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from aetherscan_ros.demo.run_demo import node_command, NodeMonitor, start_process, stop_process

VIEWS = 4
NS = '/depthcam'


@pytest.fixture(scope='module')
def scene(tmp_path_factory):
    from aetherscan_ros.demo.scene import make_scene, write_scene
    scene = make_scene(num_views=VIEWS, width=320, height=240, seed=3)
    return scene, write_scene(scene, tmp_path_factory.mktemp('scene')).parent


def _stamp_ns(header):
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


@pytest.mark.ros
@pytest.mark.slow
def test_depth_pairs_reproject_onto_the_cloud_and_save_writes_the_exports(ros, tmp_path,
                                                                          scene):
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image

    from aetherscan_ros.backends.classical.sfm import import_pycolmap
    from aetherscan_ros.core.depth import backproject
    from aetherscan_ros.demo.publisher import FRAME_ID
    from aetherscan_ros.ros.depth import image_msg_to_depth
    from aetherscan_ros.ros.tf import transform_to_matrix
    truth, scene_dir = scene
    env = dict(os.environ)
    monitor = NodeMonitor()
    depths, infos = [], []
    qos = QoSProfile(depth=64, reliability=ReliabilityPolicy.RELIABLE)
    monitor.node.create_subscription(Image, '/aetherscan_node/depth', depths.append, qos)
    monitor.node.create_subscription(CameraInfo, '/aetherscan_node/depth/camera_info',
                                     infos.append, qos)
    procs = [start_process(node_command({
        'backend': 'classical', 'image_topics': [f'{NS}/image_raw'], 'fixed_frame': 'odom',
        'min_views': VIEWS, 'max_views': VIEWS, 'keyframe_min_interval': 0.0,
        'keyframe_min_change': 0.0, 'tf_timeout': 1.0, 'no_frames_warning': 0.0,
        'output_dir': str(tmp_path / 'out')}), tmp_path / 'node.log', env)]
    try:
        assert monitor.wait_for_node(60.0), (tmp_path / 'node.log').read_text()
        assert monitor.wait_event('backend_selected', 60.0)
        procs.append(start_process(['-m', 'aetherscan_ros.demo.publisher', '--scene-dir',
                                    str(scene_dir), '--namespace', NS, '--rate', '10',
                                    '--tf-frame', 'odom'], tmp_path / 'camera.log', env))
        done = monitor.wait_event('reconstruction_complete', 120.0)
        assert done is not None, (tmp_path / 'node.log').read_text()
        assert done['anchor']['ok'], done['anchor']
        event = monitor.wait_event('depth', 20.0)
        assert event == {**event, 'views': VIEWS, 'metric': True}, event
        assert monitor.spin_until(lambda: len(depths) == VIEWS and len(infos) == VIEWS and
                                  monitor.cloud is not None and len(monitor.tf) > VIEWS, 20.0)
        monitor.spin_for(0.5)
        assert len(depths) == len(infos) == VIEWS  # one pair per view, nothing more

        # headers: the view's image stamp and the image's optical frame, the same in a pair
        stamps = [int(name.rpartition('@')[2].replace('.', '')) for name in done['frames']]
        assert [_stamp_ns(d.header) for d in depths] == stamps
        for image, info in zip(depths, infos):
            assert image.header == info.header and image.header.frame_id == FRAME_ID
            assert image.encoding == '32FC1' and (image.width, image.height) == truth.size
            assert (info.width, info.height) == truth.size

        world = monitor.cloud.points.astype(np.float64)
        tree = cKDTree(world)
        for view, (image, info) in enumerate(zip(depths, infos)):
            depth = image_msg_to_depth(image)
            K = np.asarray(info.k).reshape(3, 3)
            cam, pixels = backproject(depth, K)
            assert len(cam) > 1000, (view, len(cam))  # classical: SGBM where textured
            pose = transform_to_matrix(monitor.tf[f'camera_{view}_optical'])
            dist, _ = tree.query(cam @ pose[:3, :3].T + pose[:3, 3])
            footprint = np.sqrt(0.5) * cam[:, 2] / min(K[0, 0], K[1, 1])
            assert np.all(dist <= footprint * 1.001 + 1e-6), (view, (dist / footprint).max())
            # metres: the scene's true depth where the scene has a surface
            true_depth = truth.depths[view][pixels[:, 1], pixels[:, 0]]
            seen = true_depth > 0
            error = np.abs(cam[seen, 2] - true_depth[seen]) / true_depth[seen]
            print(f'view {view}: {len(cam)} depth pixels, median error {np.median(error):.3%} '
                  f'of the true depth')
            assert np.median(error) < 0.02

        ok, path = monitor.call('save', 120.0)
        assert ok, path
        saved = Path(path)
        assert {'cloud.ply', 'poses.json', 'colmap', 'transforms.json', 'images'} <= {
            p.name for p in saved.iterdir()}
        recon = import_pycolmap().Reconstruction(str(saved / 'colmap'))
        assert recon.num_images() == VIEWS and recon.num_points3D() > 1000
        doc = json.loads((saved / 'transforms.json').read_text())
        assert len(doc['frames']) == VIEWS and doc['aetherscan']['units'] == 'metres'
        assert all((saved / frame['file_path']).is_file() for frame in doc['frames'])
        assert monitor.find_event('saved')['exports'] == ['colmap', 'nerfstudio']
    finally:
        for proc in reversed(procs):
            stop_process(proc)
        monitor.close()


class _Publisher:
    def __init__(self):
        self.sent = []

    def publish(self, msg):
        self.sent.append(msg)

    def get_subscription_count(self):
        return self.subscribers

    subscribers = 1


class _Logger:
    def __init__(self):
        self.lines = []

    def info(self, text, **_):
        self.lines.append(text)

    debug = warning = info


class _Node:
    """What :class:`Outputs` uses of a node: publishers, a logger, the config, the session."""

    def __init__(self, **overrides):
        from types import SimpleNamespace

        from aetherscan_ros.node import params
        self.topics = {}
        self.logger = _Logger()
        self.config = params.make_config(overrides)
        self.session = SimpleNamespace(result_frames=(), count=lambda *a: None)

    def create_publisher(self, msg_type, topic, qos, **_):
        return self.topics.setdefault(topic, _Publisher())

    def get_logger(self):
        return self.logger


def _two_view_result(metric):
    from aetherscan_ros.backends.base import Frame, result_from_view_clouds, ViewCloud
    K = np.array([[50.0, 0.0, 20.0], [0.0, 50.0, 15.0], [0.0, 0.0, 1.0]])
    poses = np.stack([np.eye(4), np.full((4, 4), np.nan), np.eye(4)])  # view 1: unregistered
    cloud = np.array([[0.0, 0.0, 2.0], [0.1, 0.0, 2.0]], np.float32)
    clouds = [ViewCloud(v, cloud, np.zeros((2, 3), np.uint8), np.ones(2, np.float32))
              for v in (0, 2)]
    result = result_from_view_clouds(clouds, poses, np.stack([K] * 3), np.array([[40, 30]] * 3),
                                     'test', info={'metric_scale': True} if metric else {})
    frames = tuple(Frame(np.zeros((30, 40, 3), np.uint8), stamp_ns=(v + 1) * 10**9 + v,
                         frame_id='cam_optical' if v != 2 else '') for v in range(3))
    return result, frames


@pytest.mark.parametrize('mode, metric, want', [
    ('auto', True, [('cam_optical', 10**9), ('p_camera_2_optical', 3 * 10**9 + 2)]),
    ('auto', False, []),
    ('always', False, [('p_camera_0_optical', 10**9), ('p_camera_2_optical', 3 * 10**9 + 2)]),
    ('off', True, []),
])
def test_depth_headers_follow_the_frames_and_the_mode(mode, metric, want):
    """Stamp = the view's image; frame = the image's when metric, else the node's view frame."""
    from aetherscan_ros.node.outputs import Outputs
    from aetherscan_ros.ros.events import parse_event
    node = _Node(depth_output=mode, frame_prefix='p_')
    outputs = Outputs(node)
    result, frames = _two_view_result(metric)
    assert outputs.publish_depth(result, frames) == len(want)
    images = node.topics['~/depth'].sent
    assert [m.header for m in node.topics['~/depth/image'].sent] == [m.header for m in images]
    infos = node.topics['~/depth/camera_info'].sent
    assert [(m.header.frame_id, _stamp_ns(m.header)) for m in images] == want
    assert [m.header for m in infos] == [m.header for m in images]
    events = [parse_event(m) for m in node.topics['~/events'].sent]
    if mode == 'off':
        assert events == []
    else:
        assert events[-1]['event'] == 'depth' and events[-1]['views'] == len(want)
        assert ('not metric' in events[-1].get('reason', '')) == (mode == 'auto' and not metric)
    if mode != 'off':  # nobody listening: nothing rendered, the event says why
        for topic in ('~/depth', '~/depth/image', '~/depth/camera_info'):
            node.topics[topic].subscribers = 0
        assert outputs.publish_depth(result, frames) == 0 and len(images) == len(want)
        last = parse_event(node.topics['~/events'].sent[-1])
        assert last['views'] == 0 and last['reason'] == (
            'no subscriber' if metric or mode == 'always' else events[-1]['reason'])
    if want:
        from aetherscan_ros.ros.depth import image_msg_to_depth
        depth = image_msg_to_depth(images[0])
        assert depth[15, 20] == pytest.approx(2.0) and np.count_nonzero(np.isfinite(depth)) == 2
