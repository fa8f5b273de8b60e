# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
``aetherscan play``, ``call`` and ``events`` against a node in another process.

Every program is a real subprocess: ``aetherscan_node`` (classical backend, 4 demo views of
320x240) and the ``aetherscan`` console script. A folder of images, a video and a bag each drive
the node to a reconstruction; ``call reconstruct`` / ``call save`` and ``events`` work without
the ros2 CLI; a node started with ``use_sim_time:=true`` takes its time from ``play --clock``
(its /diagnostics stamps are the bag's time, years before the wall clock) and the replayed TF
anchors the result in ``odom``; ``--loop``, ``--topic``, ``--frame-id`` and SIGTERM.
"""

import json
import os
from pathlib import Path
import subprocess
import sys
import time

import cv2
import pytest

from aetherscan_ros.demo.run_demo import node_command, start_process, stop_process

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bag_helpers import PERIOD_NS, STAMP0_NS, write_scene_bag  # noqa: E402,I100

pytestmark = [pytest.mark.ros, pytest.mark.slow]

SCRIPT = Path(sys.executable).parent / 'aetherscan'
VIEWS, WIDTH, HEIGHT = 4, 320, 240
# unique names: a node of another test run that shares the DDS domain cannot answer for ours
NODE = f'/aetherscan_play_{os.getpid()}'
CAM = f'/play{os.getpid()}'


@pytest.fixture(scope='module')
def scene_dir(tmp_path_factory):
    from aetherscan_ros.core.calibration_file import write_calibration_yaml
    from aetherscan_ros.core.camera_model import CameraModel
    from aetherscan_ros.demo.scene import make_scene, write_scene
    scene = make_scene(VIEWS, WIDTH, HEIGHT, seed=3)
    directory = write_scene(scene, tmp_path_factory.mktemp('play') / 'scene').parent
    write_calibration_yaml(CameraModel.pinhole(scene.K, WIDTH, HEIGHT),
                           directory / 'camera_info.yaml')
    return scene, directory


def _aetherscan(*args, timeout=120):
    args = [str(a) for a in args]
    if args[0] in ('call', 'events'):
        args += ['--node', NODE]
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ))


def _start_node(tmp_path, **overrides):
    params = {'backend': 'classical', 'min_views': VIEWS, 'max_views': VIEWS,
              'keyframe_min_interval': 0.0, 'keyframe_min_change': 0.0,
              'no_frames_warning': 0.0, 'output_dir': str(tmp_path / 'out')}
    params.update(overrides)
    command = node_command(params) + ['-r', f'__node:={NODE[1:]}']
    return start_process(command, tmp_path / 'node.log', dict(os.environ))


def _events(*args, timeout=120):
    proc = _aetherscan('events', *args, timeout=timeout)
    return proc, [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def _wait_complete(tmp_path):
    proc, events = _events('--type', 'reconstruction_complete', '--count', '1', '--timeout', 90)
    assert proc.returncode == 0, (proc.stderr, (tmp_path / 'node.log').read_text())
    assert len(events) == 1 and events[0]['event'] == 'reconstruction_complete'
    return events[0]


def test_play_folder_then_call_and_events(scene_dir, tmp_path):
    """A folder of images (its camera_info.yaml), then `call reconstruct` and `call save`."""
    _, directory = scene_dir
    # never starts by itself with 4 views
    node = _start_node(tmp_path, min_views=8, max_views=8,
                       image_topics=[f'{CAM}/image_raw'])
    try:
        play = _aetherscan('play', directory, '--namespace', CAM, '--rate', 10, '--wait', 60)
        assert play.returncode == 0, (play.stderr, (tmp_path / 'node.log').read_text())
        assert 'camera_info from' in play.stderr and 'done: 4 images published' in play.stderr
        proc, events = _events('--type', 'image_received', '--count', VIEWS, '--timeout', 30)
        assert proc.returncode == 0, proc.stderr
        assert all(e['has_k'] and e['width'] == WIDTH for e in events)

        call = _aetherscan('call', 'reconstruct', '--timeout', 30)
        assert call.returncode == 0, call.stderr
        assert call.stdout.startswith(f'{NODE}/reconstruct: success')
        done = _wait_complete(tmp_path)
        assert done['views'] == VIEWS and done['total_points'] > 5000
        # the history (no --follow): every event so far, progress also as human lines
        proc, events = _events()
        assert proc.returncode == 0, proc.stderr
        kinds = [e['event'] for e in events]
        assert kinds[0] == 'backend_selected' and 'reconstruction_started' in kinds
        assert '] reconstruction #1 done' in proc.stderr

        save = _aetherscan('call', 'save', '--json')
        assert save.returncode == 0, save.stderr
        answer = json.loads(save.stdout)
        assert answer['success'] and (Path(answer['message']) / 'cloud.ply').is_file()
        # an unknown service: exit 2, naming the node's Trigger services
        nope = _aetherscan('call', 'nope', '--timeout', 20)
        assert nope.returncode == 2, nope.stderr
        assert f'{NODE} has no Trigger service nope (its Trigger services: ' in nope.stderr
        assert 'reconstruct' in nope.stderr and 'save' in nope.stderr
    finally:
        assert stop_process(node) == 0


def test_play_video_compressed(scene_dir, tmp_path):
    """A video file published as CompressedImage with --intrinsics as camera_info."""
    scene, directory = scene_dir
    video = tmp_path / 'walk.avi'
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*'MJPG'), 5.0, (WIDTH, HEIGHT))
    for image in scene.images:
        writer.write(image[..., ::-1].copy())
    writer.release()
    K = scene.K
    node = _start_node(tmp_path, image_transport='compressed',
                       image_topics=[f'{CAM}/walk/image_raw'])
    try:
        play = _aetherscan('play', video, '--namespace', f'{CAM}/walk', '--transport',
                           'compressed',
                           '--format', 'png', '--rate', 10, '--wait', 60, '--intrinsics',
                           f'{K[0, 0]},{K[1, 1]},{K[0, 2]},{K[1, 2]}')
        assert play.returncode == 0, (play.stderr, (tmp_path / 'node.log').read_text())
        assert f'on {CAM}/walk/image_raw/compressed, camera_info from --intrinsics' \
            in play.stderr
        done = _wait_complete(tmp_path)
        assert done['views'] == VIEWS and done['total_points'] > 5000
    finally:
        assert stop_process(node) == 0


def _diagnostic_stamps(player, linger_s: float, timeout_s: float):
    """Return the /diagnostics header stamps (ns) until ``linger_s`` after ``player`` ends."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    stamps = []
    node = rclpy.create_node(f'diag_listener_{os.getpid()}')
    node.create_subscription(DiagnosticArray, '/diagnostics', lambda m: stamps.append(
        m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec), 10)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    deadline, ended = time.monotonic() + timeout_s, False
    try:
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
            if not ended and player.poll() is not None:
                ended, deadline = True, min(deadline, time.monotonic() + linger_s)
    finally:
        executor.shutdown()
        node.destroy_node()
    return stamps


def test_play_bag_with_clock_drives_a_sim_time_node(ros, scene_dir, tmp_path):
    """A bag (images, camera_info, TF) with --clock: the node's time is the bag's; TF anchors."""
    scene, _ = scene_dir
    bag = write_scene_bag(tmp_path / 'bag', scene, 'sqlite3')
    node = _start_node(tmp_path, use_sim_time=True, image_topics=[f'{CAM}/cam/image_raw'],
                       diagnostics_period=0.5, fixed_frame='odom')
    player = None
    try:
        player = subprocess.Popen(
            [str(SCRIPT), 'play', str(bag), '--clock', '--rate', '0.5', '--wait', '60',
             '--namespace', CAM],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env=dict(os.environ))
        # while the bag plays (1.2 s at half speed) and after: the node's time then stays
        # at the last /clock
        stamps = _diagnostic_stamps(player, 2.0, 90.0)
        out, err = player.communicate(timeout=90)
        assert player.returncode == 0, (err, (tmp_path / 'node.log').read_text())
        assert f'{CAM}/cam/image_raw, {CAM}/cam/camera_info, /tf, /tf_static and /clock' in err
        done = _wait_complete(tmp_path)
        # the result is stamped with the bag's last image
        assert done['stamp_ns'] == STAMP0_NS + (VIEWS - 1) * PERIOD_NS
        # the replayed /tf and /tf_static anchor it in odom, in metres
        proc, anchors = _events('--type', 'anchor', '--count', 1, '--timeout', 30)
        assert proc.returncode == 0 and anchors[0]['ok'], (proc.stderr, anchors)
        assert anchors[0]['fixed_frame'] == 'odom' and anchors[0]['residual_rms_m'] < 0.02
        # the node's clock followed /clock: diagnostics stamped in the bag's time (2023),
        # not the wall clock, once the replay started
        in_bag = [s for s in stamps if STAMP0_NS <= s <= STAMP0_NS + 10 * 1_000_000_000]
        assert in_bag, (stamps, STAMP0_NS)
        assert time.time_ns() - max(in_bag) > 365 * 86400 * 1_000_000_000
    finally:
        if player is not None and player.poll() is None:
            player.kill()
            player.wait()
        assert stop_process(node) == 0


def test_play_errors_are_one_line(tmp_path, scene_dir):
    _, directory = scene_dir
    proc = _aetherscan('play', tmp_path / 'missing')
    assert proc.returncode == 2 and 'no such file or directory' in proc.stderr
    proc = _aetherscan('play', directory, '--start', '1')
    assert proc.returncode == 2 and '--start selects from a bag' in proc.stderr
    scene, _ = scene_dir
    bag = write_scene_bag(tmp_path / 'bag', scene, 'mcap', compressed='jpeg')
    proc = _aetherscan('play', bag, '--start', '5')
    assert proc.returncode == 2
    assert f'{bag}: no images on /cam/image_raw/compressed between 5 s and the end' \
        in proc.stderr
    proc = _aetherscan('play', bag, '--topics', '/nope')
    assert proc.returncode == 2 and 'no topic /nope in the bag' in proc.stderr
    # nobody listening: exit 1 after --wait, naming the topic
    proc = _aetherscan('play', directory, '--topic', '/nobody/image_raw', '--wait', '1')
    assert proc.returncode == 1
    assert 'no subscriber on /nobody/image_raw after 1 s' in proc.stderr


def test_play_bag_loop_rename_frame_id_and_sigterm(ros, scene_dir, tmp_path):
    """--loop repeats the bag with time running on; --topic, --frame-id; SIGTERM ends it."""
    import signal

    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import CameraInfo, Image
    scene, _ = scene_dir
    bag = write_scene_bag(tmp_path / 'bag', scene, 'mcap')
    topic = f'{CAM}/front/image_color'
    images, infos, clocks = [], [], []
    node = rclpy.create_node(f'loop_listener_{os.getpid()}')
    reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(Image, topic, lambda m: images.append(m), reliable)
    node.create_subscription(CameraInfo, f'{CAM}/front/camera_info', infos.append, reliable)
    node.create_subscription(Clock, '/clock', lambda m: clocks.append(
        m.clock.sec * 1_000_000_000 + m.clock.nanosec), 100)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    player = subprocess.Popen([str(SCRIPT), 'play', str(bag), '--loop', '--rate', '4',
                               '--topic', topic, '--frame-id', 'renamed_optical', '--clock',
                               '--wait', '60'], stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ))
    try:
        end = time.monotonic() + 60
        while len(images) < 3 * VIEWS and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        player.send_signal(signal.SIGTERM)
        err = player.communicate(timeout=30)[1]
    finally:
        if player.poll() is None:
            player.kill()
        executor.shutdown()
        node.destroy_node()
    assert player.returncode == 130 and 'aetherscan play: interrupted' in err, err
    assert 'Traceback' not in err
    assert len(images) >= 3 * VIEWS and infos
    assert {m.header.frame_id for m in images} == {'renamed_optical'}
    stamps = [m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec for m in images]
    # the second pass follows the first: stamps keep increasing; a pass is the bag's span
    # (its last message is the last image, received 2 us after its stamp) + a 0.1 s gap
    assert all(b > a for a, b in zip(stamps, stamps[1:])), stamps
    # (+ 1 ns: rosbags' end time is exclusive)
    assert stamps[VIEWS] - stamps[0] == (VIEWS - 1) * PERIOD_NS + 2000 + 1 + 100_000_000
    assert clocks == sorted(clocks) and clocks[0] >= STAMP0_NS
