# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
aetherscan_node across processes: node process, demo camera process, this process receiving.

Every test starts ``python -m aetherscan_ros.node`` and, where images are needed, the demo
camera (:mod:`aetherscan_ros.demo.publisher`) as real subprocesses on the private
ROS_DOMAIN_ID that conftest.py claimed; this process receives with
:class:`aetherscan_ros.demo.run_demo.NodeMonitor`.
"""

import os
from pathlib import Path
import subprocess
import sys
import time

import numpy as np
import pytest

from aetherscan_ros.demo.run_demo import node_command, NodeMonitor, start_process, stop_process

pytestmark = pytest.mark.ros

CLOUD_FIELDS = ['x', 'y', 'z', 'rgb', 'confidence', 'view']


@pytest.fixture(scope='module')
def scene(tmp_path_factory):
    """Render the demo scene once (8 views 640x480) and write it for the camera process."""
    from aetherscan_ros.demo.scene import make_scene, write_scene
    scene = make_scene(num_views=8, width=640, height=480)
    directory = write_scene(scene, tmp_path_factory.mktemp('scene')).parent
    return scene, directory


class Rig:
    """The processes of one test; stops them all at the end (logs kept under tmp_path)."""

    def __init__(self, tmp_path: Path):
        self.tmp = tmp_path
        self.procs = []
        self.monitor = NodeMonitor()

    def node(self, **overrides):
        overrides.setdefault('output_dir', str(self.tmp / 'out'))
        proc = start_process(node_command(overrides), self.tmp / 'node.log', dict(os.environ))
        self.procs.append(proc)
        return proc

    def camera(self, scene_dir, *args):
        proc = start_process(['-m', 'aetherscan_ros.demo.publisher', '--scene-dir',
                              str(scene_dir), *args], self.tmp / 'camera.log', dict(os.environ))
        self.procs.append(proc)
        return proc

    def log(self):
        return (self.tmp / 'node.log').read_text() if (self.tmp / 'node.log').exists() else ''

    def close(self):
        for proc in reversed(self.procs):
            stop_process(proc)
        self.monitor.close()


@pytest.fixture
def rig(ros, tmp_path):
    """Yield a :class:`Rig`; stop its processes afterwards."""
    rig = Rig(tmp_path)
    yield rig
    rig.close()


def _event_names(monitor, recon=None):
    return [e['event'] for e in monitor.events
            if recon is None or e.get('reconstruction') in (None, recon)]


def _check_chunks_equal_cloud(monitor, complete, budget=0):
    """Chunks reassemble to ~/cloud, or to more points than ~/cloud's ``budget`` when given."""
    recon = complete['reconstruction']

    def cloud_stamp():
        stamp = monitor.cloud_msg.header.stamp
        return stamp.sec * 1_000_000_000 + stamp.nanosec

    # ~/cloud of this reconstruction: its stamp is the one in reconstruction_complete
    assert monitor.spin_until(
        lambda: recon in monitor.assembled and monitor.cloud is not None and
        cloud_stamp() == complete['stamp_ns'], 60.0), 'chunks or ~/cloud missing'
    streamed = monitor.assembled[recon]
    chunks = [info for info, _ in monitor.chunks if info is not None and info.recon == recon]
    assert len(chunks) == complete['chunks'] and chunks[-1].last
    assert len(streamed) == complete['total_points']
    if budget:  # ~/cloud was voxel-downsampled to the budget; ~/points streamed every point
        assert complete['total_points'] > budget, 'the budget was not exercised'
        assert 0 < len(monitor.cloud) <= budget
        lo, hi = np.nanmin(streamed.points, axis=0), np.nanmax(streamed.points, axis=0)
        pad = 1e-5 * (1.0 + np.abs(hi - lo))
        inside = (monitor.cloud.points >= lo - pad) & (monitor.cloud.points <= hi + pad)
        assert inside.all()
        assert set(np.unique(monitor.cloud.view)) <= set(np.unique(streamed.view))
    else:
        assert len(monitor.cloud) == complete['total_points']
        for got, want in zip(streamed, monitor.cloud):  # points, colors, confidence, view
            assert np.array_equal(got, want)
    msg = monitor.cloud_msg
    assert [f.name for f in msg.fields] == CLOUD_FIELDS
    return streamed


def _pose_of(pose_msg):
    from aetherscan_ros.core.geometry import quaternion_to_rotation_matrix
    o, p = pose_msg.orientation, pose_msg.position
    out = np.eye(4)
    out[:3, :3] = quaternion_to_rotation_matrix(np.array([o.x, o.y, o.z, o.w]))
    out[:3, 3] = [p.x, p.y, p.z]
    return out


def _check_frames(monitor, views, world, prefix, stamp_ns, view0_identity=True):
    def ns(stamp):
        return stamp.sec * 1_000_000_000 + stamp.nanosec

    def arrived():  # TF, poses and markers of this reconstruction (not an earlier one)
        return (len(monitor.tf) == views and monitor.poses is not None and
                monitor.markers is not None and
                all(ns(t.header.stamp) == stamp_ns for t in monitor.tf.values()) and
                ns(monitor.poses.header.stamp) == stamp_ns and
                ns(monitor.markers.markers[-1].header.stamp) == stamp_ns)

    assert monitor.spin_until(arrived, 30.0)
    assert sorted(monitor.tf) == sorted(f'{prefix}camera_{i}_optical' for i in range(views))
    assert all(t.header.frame_id == world for t in monitor.tf.values())
    tf_poses = monitor.view_poses(prefix)
    if view0_identity:  # world = upright body frame at view 0 (a trained model or classical)
        from aetherscan_ros.core.session import UPRIGHT
        assert np.allclose(tf_poses[0], UPRIGHT, atol=1e-6)
    pose_array = np.stack([_pose_of(p) for p in monitor.poses.poses])
    assert monitor.poses.header.frame_id == world
    assert np.allclose(pose_array, tf_poses, atol=1e-9)
    frusta = [m for m in monitor.markers.markers if m.action == m.ADD]
    assert [m.id for m in frusta] == list(range(views))
    assert monitor.markers.markers[0].action == monitor.markers.markers[0].DELETEALL
    return tf_poses


@pytest.mark.slow
def test_classical_raw_reliable_end_to_end(rig, scene):
    """Raw rgb8 + camera_info from a reliable camera; classical backend; services; score."""
    from aetherscan_ros.demo.evaluation import evaluate
    from aetherscan_ros.files.poses import read_poses_json

    gt, scene_dir = scene
    monitor = rig.monitor
    rig.node(backend='classical', min_views=8, max_views=8, keyframe_min_interval=0.1,
             chunk_points=30000)
    assert monitor.wait_for_node(60.0), rig.log()
    assert monitor.wait_event('backend_selected', 60.0, backend='classical'), rig.log()
    rig.camera(scene_dir, '--transport', 'raw', '--qos', 'reliable', '--rate', '4')

    started = monitor.wait_event('reconstruction_started', 120.0)
    assert started and started['views'] == 8 and started['trigger'] == 'auto', rig.log()
    # services answer while the backend works
    ok, message = monitor.call('reconstruct')
    assert not ok and 'still running' in message
    ok, message = monitor.call('reset')
    assert ok and 'keeps running' in message
    assert monitor.spin_until(lambda: monitor.diagnostics.get('busy') == 'True', 10.0)

    complete = monitor.wait_event('reconstruction_complete', 400.0)
    assert complete is not None, rig.log()
    assert complete['backend'] == 'classical' and complete['views'] == 8
    names = _event_names(monitor)
    first = names.index('image_received')
    assert names[first:first + 8] == ['image_received'] * 8
    order = [names.index(e) for e in ('image_received', 'upload_complete',
                                      'reconstruction_started', 'progress',
                                      'reconstruction_complete')]
    assert order == sorted(order), names
    assert all(e['has_k'] for e in monitor.events if e['event'] == 'image_received')

    streamed = _check_chunks_equal_cloud(monitor, complete)
    assert monitor.cloud_msg.header.frame_id == 'aetherscan_world'
    tf_poses = _check_frames(monitor, 8, 'aetherscan_world', '', complete['stamp_ns'])
    assert monitor.diagnostics.get('/camera/image_raw qos') == 'reliable'

    # after: nothing buffered; ~/save writes inside output_dir; its poses are the TF poses
    ok, message = monitor.call('reconstruct')
    assert not ok and 'need 2' in message
    ok, path = monitor.call('save', 120.0)
    assert ok, path
    saved = Path(path)
    assert saved.parent == (rig.tmp / 'out').resolve()
    assert {'cloud.ply', 'poses.json', 'preview.png'} <= {p.name for p in saved.iterdir()}
    poses_file = read_poses_json(saved / 'poses.json')
    assert np.allclose(np.asarray(poses_file.poses_c2w), tf_poses, atol=1e-9)

    class Received:
        points = streamed.points
        poses_c2w = tf_poses

    scores = evaluate(Received, gt)
    assert scores.registered_views == 8
    assert scores.rotation_error_deg_max <= 0.5
    assert scores.center_error_pct_max <= 1.0
    assert scores.accuracy_pct <= 1.0


@pytest.mark.slow
def test_fast3r_random_compressed_best_effort(rig, scene, tmp_path):
    """
    Compressed jpeg images from a best-effort camera; Fast3R with a tiny random checkpoint.

    4 views per reconstruction out of 8 published: frames arriving during the first
    reconstruction are buffered for the next one (busy_policy buffer).
    """
    from aetherscan_ros.models.fast3r import write_random_checkpoint
    from aetherscan_ros.files.poses import read_poses_json

    _, scene_dir = scene
    checkpoint = write_random_checkpoint(tmp_path / 'ckpt', preset='tiny')
    monitor = rig.monitor
    rig.node(backend='fast3r', model=str(checkpoint), device='cpu',
             image_transport='compressed', min_views=4, max_views=4,
             keyframe_min_interval=0.1, chunk_points=5000, world_frame='scan',
             frame_prefix='rig_', cloud_max_points=1000)
    assert monitor.wait_for_node(60.0), rig.log()
    selected = monitor.wait_event('backend_selected', 120.0)
    assert selected and selected['backend'] == 'fast3r', rig.log()
    rig.camera(scene_dir, '--transport', 'compressed', '--format', 'jpeg', '--qos',
               'best_effort', '--rate', '4')
    assert monitor.spin_until(
        lambda: len([e for e in monitor.events if e['event'] == 'reconstruction_complete'])
        >= 2, 300.0), rig.log() + str(_event_names(monitor))
    completes = [e for e in monitor.events if e['event'] == 'reconstruction_complete']
    last = completes[-1]
    assert [c['reconstruction'] for c in completes] == [1, 2]
    assert all(c['views'] == 4 and c['backend'] == 'fast3r' for c in completes)
    assert last['info']['model'] == 'random weights (not a trained model)'
    assert monitor.diagnostics.get('/camera/image_raw/compressed qos') == 'sensor_data'
    _check_chunks_equal_cloud(monitor, last, budget=1000)  # ~/cloud point budget
    assert monitor.cloud_msg.header.frame_id == 'scan'
    assert 1 in monitor.assembled  # the first reconstruction was streamed completely too
    # the second reconstruction used the 4 newer frames
    frames = [set(c['frames']) for c in completes]
    assert not frames[0] & frames[1]
    # random weights give arbitrary poses (view 0 not even near the identity): only plumbing
    poses = _check_frames(monitor, 4, 'scan', 'rig_', last['stamp_ns'], view0_identity=False)
    assert np.all(np.isfinite(poses))
    ok, path = monitor.call('save', 120.0)
    assert ok, path
    saved = read_poses_json(Path(path) / 'poses.json')
    assert np.allclose(np.asarray(saved.poses_c2w), poses, atol=1e-9)
    assert np.asarray(saved.intrinsics).shape == (4, 3, 3)


def _set_and_get(monitor, parameters):
    from rclpy.parameter_client import AsyncParameterClient
    client = AsyncParameterClient(monitor.node, 'aetherscan_node')
    assert client.wait_for_services(timeout_sec=30.0)
    future = client.set_parameters(parameters)
    assert monitor.spin_until(future.done, 30.0)
    return future.result().results, client


def test_parameters_rejected_with_reason_through_the_service(rig):
    """Out-of-range, enum, cross-field and read-only changes are refused with the reason."""
    from rclpy.parameter import Parameter
    monitor = rig.monitor
    rig.node(backend='classical', min_views=4, max_views=10)
    assert monitor.wait_for_node(60.0), rig.log()
    cases = [
        (Parameter('min_views', value=100), 'out of range'),
        (Parameter('voxel_size', value=-0.5), 'out of range'),
        (Parameter('min_views', value=20), 'min_views (20) must not exceed max_views (10)'),
        (Parameter('busy_policy', value='queue'), "busy_policy: 'queue' is not one of"),
        (Parameter('world_frame', value='/map'), 'not a valid tf2 frame id'),
        (Parameter('backend', value='fast3r'), 'read-only'),
    ]
    results, client = _set_and_get(monitor, [p for p, _ in cases])
    for (param, reason), result in zip(cases, results):
        assert not result.successful, param.name
        assert reason in result.reason, (param.name, result.reason)
    results, _ = _set_and_get(monitor, [Parameter('min_views', value=3),
                                        Parameter('voxel_size', value=0.05)])
    assert all(r.successful for r in results)
    future = client.get_parameters(['min_views', 'voxel_size', 'max_views'])
    assert monitor.spin_until(future.done, 30.0)
    values = future.result().values
    assert (values[0].integer_value, values[1].double_value, values[2].integer_value) == \
        (3, 0.05, 10)


@pytest.mark.parametrize('override, reason', [
    ('min_views:=20', 'min_views (20) must not exceed max_views'),
    ("backend:='magic'", "backend: 'magic' is not one of"),
    ('chunk_points:=5', 'chunk_points'),
])
def test_invalid_startup_parameters_exit_with_the_reason(override, reason, tmp_path):
    """A bad initial value stops the node at once, exit code 2, the reason in its log."""
    proc = subprocess.run(
        [sys.executable, '-m', 'aetherscan_ros.node', '--ros-args', '-p', override],
        capture_output=True, text=True, timeout=60)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert reason in output and 'Traceback' not in output


def test_node_shuts_down_promptly_on_sigint(rig):
    """SIGINT ends the node within a few seconds with a clean exit code."""
    proc = rig.node(backend='classical')
    assert rig.monitor.wait_for_node(60.0), rig.log()
    start = time.monotonic()
    code = stop_process(proc, timeout=10.0)
    assert code == 0, rig.log()
    assert time.monotonic() - start < 10.0


def _publish_until_matched(monitor, publisher, timeout=30.0):
    assert monitor.spin_until(lambda: publisher.get_subscription_count() > 0, timeout)


def test_bad_input_is_counted_and_a_failed_reconstruction_keeps_the_frames(rig):
    """
    Malformed images/camera_info: logged with the topic, counted, good frames kept.

    Then a reconstruction of textureless frames fails: ``error`` event, the frames go back to
    the buffer and ``~/reconstruct`` can retry.
    """
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import CameraInfo, Image

    from aetherscan_ros.ros.camera_info import make_camera_info
    from aetherscan_ros.ros.images import rgb_to_image_msg
    from aetherscan_ros.ros.stamps import ns_to_stamp

    monitor = rig.monitor
    proc = rig.node(backend='classical', image_topics=['/badcam/image_raw'],
                    auto_trigger=False, min_views=2, keyframe_min_interval=0.0,
                    keyframe_min_change=0.0, diagnostics_period=0.2)
    qos = QoSProfile(depth=50)
    pub = monitor.node.create_publisher(Image, '/badcam/image_raw', qos)
    info_pub = monitor.node.create_publisher(CameraInfo, '/badcam/camera_info', qos)
    assert monitor.wait_for_node(60.0), rig.log()
    _publish_until_matched(monitor, pub)
    _publish_until_matched(monitor, info_pub)
    monitor.spin_for(1.0)
    k = np.array([[60.0, 0, 32], [0, 60.0, 24], [0, 0, 1]])
    stamp = [1_000_000_000]

    def image(level, frame_id='badcam', **fields):
        stamp[0] += 100_000_000
        msg = rgb_to_image_msg(np.full((48, 64, 3), level, np.uint8), stamp[0], frame_id)
        for key, value in fields.items():
            setattr(msg, key, value)
        return msg

    info_pub.publish(make_camera_info(k, 64, 48))
    monitor.spin_for(0.3)
    pub.publish(image(100))                                 # good, K used
    pub.publish(image(101, encoding='32FC1'))               # unknown encoding
    pub.publish(image(102, step=10))                        # step < width * 3
    pub.publish(image(103, data=b'\0' * 100))               # data shorter than declared
    pub.publish(image(104, width=0))                        # zero width
    bad_info = make_camera_info(k, 64, 48)
    bad_info.k = [float('nan')] * 9
    info_pub.publish(bad_info)                              # NaN K: ignored
    monitor.spin_for(0.3)
    pub.publish(image(110))                                 # good, previous K still used
    info_pub.publish(make_camera_info(k, 640, 480))
    monitor.spin_for(0.3)
    pub.publish(image(120, frame_id='other'))               # good; K size mismatch, new frame_id
    msg = image(130)
    msg.header.stamp = ns_to_stamp(5)           # stamp went backwards
    pub.publish(msg)

    def counters_reached():
        d = monitor.diagnostics
        return d.get('invalid_frames') == '4' and d.get('buffered') == '3' and \
            d.get('stamp_backwards') == '1' and d.get('camera_info_rejected') == '2'

    assert monitor.spin_until(counters_reached, 20.0), (monitor.diagnostics, rig.log())
    assert monitor.diagnostics['frame_id_changes'] == '1'
    assert proc.poll() is None
    received = [e for e in monitor.events if e['event'] == 'image_received']
    assert [e['has_k'] for e in received] == [True, True, False]
    log = rig.log()
    assert "/badcam/image_raw: rejected: unsupported encoding '32FC1'" in log
    assert '/badcam/camera_info: ignored: K contains NaN' in log
    assert '/badcam/camera_info: K not used: camera_info is for 640x480' in log

    ok, message = monitor.call('reconstruct')
    assert ok and 'with 3 views' in message, message
    error = monitor.wait_event('error', 120.0, stage='reconstruct')
    assert error is not None and error['frames_kept'] == 3, rig.log()
    assert monitor.find_event('reconstruction_complete') is None
    # /diagnostics and ~/events are separate topics: wait for the diagnostics that report the
    # failure instead of assuming they arrive before the event.
    assert monitor.spin_until(
        lambda: monitor.diagnostics.get('reconstructions_failed') == '1', 10.0), \
        monitor.diagnostics
    assert monitor.diagnostics.get('buffered') == '3'
    assert monitor.diagnostics.get('busy') == 'False'
    ok, message = monitor.call('reconstruct')  # the frames are still there: retry
    assert ok and 'reconstruction #2 with 3 views' in message, message
    assert monitor.wait_event('error', 120.0, reconstruction=2) is not None
    assert proc.poll() is None


def test_two_cameras_and_the_periodic_trigger_set_at_run_time(rig):
    """Two image topics feed one buffer; trigger_period set live starts a timer reconstruction."""
    from rclpy.parameter import Parameter
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from aetherscan_ros.ros.images import rgb_to_image_msg

    monitor = rig.monitor
    rig.node(backend='classical', image_topics=['/left/image_raw', '/right/image_raw'],
             auto_trigger=False, min_views=2, keyframe_min_interval=0.0)
    pubs = [monitor.node.create_publisher(Image, f'/{side}/image_raw', qos_profile_sensor_data)
            for side in ('left', 'right')]
    assert monitor.wait_for_node(60.0), rig.log()
    for pub in pubs:
        _publish_until_matched(monitor, pub)
    monitor.spin_for(0.5)
    for i, pub in enumerate(pubs):
        pub.publish(rgb_to_image_msg(np.full((48, 64, 3), 50 + 100 * i, np.uint8),
                                     1_000_000_000 + i, f'cam{i}'))
    assert monitor.spin_until(lambda: monitor.diagnostics.get('buffered') == '2', 20.0), \
        (monitor.diagnostics, rig.log())
    assert monitor.diagnostics['/left/image_raw qos'] == 'sensor_data'
    assert monitor.find_event('upload_complete') is not None
    monitor.spin_for(1.5)
    assert monitor.find_event('reconstruction_started') is None  # auto_trigger is off
    results, _ = _set_and_get(monitor, [Parameter('trigger_period', value=0.5)])
    assert results[0].successful
    started = monitor.wait_event('reconstruction_started', 20.0)
    assert started is not None, rig.log()
    assert started['trigger'] == 'timer' and started['views'] == 2
    assert started['cameras'] == ['/left/image_raw', '/right/image_raw']


def test_auto_qos_rematches_when_a_best_effort_publisher_appears(rig):
    """image_qos auto: reliable for a reliable camera, re-subscribed when best effort joins."""
    from rclpy.qos import qos_profile_sensor_data, QoSProfile
    from sensor_msgs.msg import Image

    from aetherscan_ros.ros.images import rgb_to_image_msg

    monitor = rig.monitor
    rig.node(backend='classical', image_topics=['/mixed/image_raw'], auto_trigger=False,
             keyframe_min_interval=0.0, keyframe_min_change=0.0)
    reliable = monitor.node.create_publisher(Image, '/mixed/image_raw', QoSProfile(depth=5))
    assert monitor.wait_for_node(60.0), rig.log()
    _publish_until_matched(monitor, reliable)
    assert monitor.spin_until(
        lambda: monitor.diagnostics.get('/mixed/image_raw qos') == 'reliable', 20.0)
    best_effort = monitor.node.create_publisher(Image, '/mixed/image_raw',
                                                qos_profile_sensor_data)
    assert monitor.spin_until(
        lambda: monitor.diagnostics.get('/mixed/image_raw qos') == 'sensor_data', 20.0), \
        rig.log()
    _publish_until_matched(monitor, best_effort)
    monitor.spin_for(0.5)
    for i, pub in enumerate((reliable, best_effort)):  # both are heard now
        pub.publish(rgb_to_image_msg(np.full((48, 64, 3), 60 * i, np.uint8),
                                     2_000_000_000 + i, 'mixed'))
    assert monitor.spin_until(lambda: monitor.diagnostics.get('buffered') == '2', 20.0), \
        (monitor.diagnostics, rig.log())
    assert 'a best-effort publisher appeared' in rig.log()
