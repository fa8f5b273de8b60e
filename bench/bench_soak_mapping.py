# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Mapping soak: a camera walking the demo room for minutes into ``aetherscan_node`` (mapping).

Three processes on a private ROS_DOMAIN_ID (loopback only): the node (``mode: mapping``,
classical backend, windows of 8 keyframes overlapping by 2, anchored in ``odom`` by TF); a
camera process publishing ``sensor_msgs/Image`` + ``CameraInfo`` at ``RATE_HZ`` (best effort,
like a driver) and the camera's pose on ``/tf`` at each image stamp, walking the scene's
``tour`` back and forth (one view further every ``STEP_S`` seconds, the frames between repeat
the view); and this process, which receives every event, the map and the path, and samples
the node's RSS, threads and open file handles once a second.

Accounting (all from the node's own counters and events, no timing):

* frames: every frame the node received is a keyframe or skipped (interval, similar, stamp
  going backwards), dropped (busy), invalid or paused; the rest is reported as unaccounted;
* keyframes: every keyframe is in a finished window (``window_complete``), still pending, in
  the buffer, or dropped by the window scheduler (mapping fell behind) or evicted;
* windows: every window started (``reconstruction_started``) ends in one
  ``window_complete`` (registered, or failed with its reason): started - completed = lost.

"start" figures are taken after the warm-up (the first ``window_complete``), "end" figures
after the camera stopped and the last window finished; RSS growth is also the slope of a
line fitted to the second half of the samples (MiB/min; flat is ~0).

The map grows while the walk goes on (revisits add voxels where the new windows' points fall
beside the old ones) until ``map_max_points`` (:data:`MAP_MAX_POINTS`, reached within a few
minutes) bounds it; from then on the node's RSS must stay flat: read the RSS slope of the
second half against the map's size given in the same row. The mapping node sets
its own malloc at start (a fixed 1 MiB mmap threshold,
:func:`aetherscan_ros.core.large_messages.tune_malloc_for_mapping_node`);
``soak(node_env={'AETHERSCAN_NODE_MALLOC': 'default'})`` runs it with glibc's defaults for
comparison.

``quick``: 60 s of walking; full: 600 s (the issue's 10 minutes; ``make bench`` runs it).
Alone: ``python -m bench.bench_soak_mapping [--quick] [--seconds S]``; the camera process is
``python -m bench.bench_soak_mapping camera ...``.
"""

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys
import tempfile
import time

import numpy as np

from bench.bench_soak import _int, _sample, _slope_mib_per_min

RATE_HZ = 10.0
WIDTH, HEIGHT = 320, 240
VIEWS = 40  # rendered views along the tour (a 7 m walk, then back)
STEP_S = 4.0  # the camera moves on to the next view every STEP_S seconds (a slow walk: the
# node keeps up on 2 loaded cores, ~25 s a window of 6 new keyframes; faster walks are dropped
# keyframes, counted)
MAP_MAX_POINTS = 300_000  # the bound that keeps the node's memory flat once reached
TOPIC = '/soak_map/image_raw'
FIXED = 'odom'
FRAME_ID = 'soak_map_camera_optical'
REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- camera process


def camera(scene_file: str, duration: float, stop_file: str = '') -> dict:
    """Publish the walk (image, camera_info, /tf pose) until ``duration`` or the stop file."""
    import rclpy
    from rclpy.qos import QoSProfile, qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image
    from tf2_msgs.msg import TFMessage

    from aetherscan_ros.ros.camera_info import make_camera_info
    from aetherscan_ros.ros.images import rgb_to_image_msg
    from aetherscan_ros.ros.tf import matrix_to_transform
    data = np.load(scene_file)
    images, k, poses = data['images'], data['K'], data['poses']
    rclpy.init()
    node = rclpy.create_node('aetherscan_soak_mapping_camera')
    pub = node.create_publisher(Image, TOPIC, qos_profile_sensor_data)
    info_pub = node.create_publisher(CameraInfo, '/soak_map/camera_info', qos_profile_sensor_data)
    tf_pub = node.create_publisher(TFMessage, '/tf', QoSProfile(depth=100))
    deadline = time.monotonic() + 30.0
    while pub.get_subscription_count() == 0:
        if time.monotonic() > deadline:
            raise SystemExit('mapping soak camera: the node did not subscribe within 30 s')
        rclpy.spin_once(node, timeout_sec=0.1)
    rng = np.random.default_rng(7)
    start = time.monotonic()
    sent, tick, views = 0, 0, set()
    try:
        while True:
            now = time.monotonic()
            if now - start >= duration or (stop_file and tick % 10 == 0 and
                                           os.path.exists(stop_file)):
                break
            step = int((now - start) / STEP_S) % (2 * len(images) - 2)  # there and back
            view = step if step < len(images) else 2 * len(images) - 2 - step
            views.add(view)
            stamp = node.get_clock().now().nanoseconds
            pose = poses[view].copy()
            pose[:3, 3] += rng.normal(0.0, 0.003, 3)  # odometry noise
            tf_pub.publish(TFMessage(transforms=[matrix_to_transform(pose, FIXED, FRAME_ID,
                                                                     stamp)]))
            info_pub.publish(make_camera_info(k, WIDTH, HEIGHT, stamp, FRAME_ID))
            pub.publish(rgb_to_image_msg(images[view], stamp, FRAME_ID))
            sent += 1
            tick += 1
            wait = start + tick / RATE_HZ - time.monotonic()
            if wait > 0:
                rclpy.spin_once(node, timeout_sec=wait)
    finally:
        elapsed = time.monotonic() - start
        node.destroy_node()
        rclpy.try_shutdown()
    return {'sent': sent, 'seconds': elapsed, 'rate_hz': sent / elapsed,
            'views_visited': len(views)}


# --------------------------------------------------------------------------- measuring


def _wait_idle(monitor, timeout: float) -> bool:
    """Spin until every started window completed and the node stayed idle for 5 s."""
    def settled():
        started = {e.get('reconstruction') for e in monitor.events
                   if e.get('event') == 'reconstruction_started'}
        done = {e.get('window') for e in monitor.events if e.get('event') == 'window_complete'}
        return started <= done and monitor.diagnostics.get('busy') == 'False'

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if monitor.spin_until(settled, end - time.monotonic()):
            monitor.spin_for(5.0)  # a window may start from what was pending
            if settled():
                return True
    return False


def soak(duration: float, warmup_timeout: float = 240.0, node_env=None) -> dict:
    """
    Run the three processes; return the measured figures (see the module docstring).

    ``node_env``: extra environment of the node process; None = none (the mapping node sets
    its malloc itself: :func:`~aetherscan_ros.core.large_messages.tune_malloc_for_mapping_node`),
    ``{'AETHERSCAN_NODE_MALLOC': 'default'}`` = glibc's defaults, to compare.
    """
    import rclpy

    from aetherscan_ros.core.large_messages import tune_malloc_for_large_messages
    from aetherscan_ros.demo.run_demo import (
        claim_domain_id, node_command, NodeMonitor, start_process, stop_process)
    from aetherscan_ros.demo.scene import make_scene
    work = Path(tempfile.mkdtemp(prefix='aetherscan_soak_mapping_'))
    scene = make_scene(num_views=VIEWS, width=WIDTH, height=HEIGHT, path='tour')
    scene_file = work / 'scene.npz'
    np.savez(scene_file, images=scene.images, K=scene.K, poses=scene.poses_c2w)
    domain, lock = claim_domain_id()
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               PYTHONUNBUFFERED='1', HF_HUB_OFFLINE='1')
    env.setdefault('ROS_LOG_DIR', str(work / 'ros_log'))
    keys = ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE', 'ROS_LOG_DIR')
    saved_env = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: env[k] for k in keys})
    tune_malloc_for_large_messages()  # this process receives ~/map after every window
    node_proc = cam_proc = monitor = cam_log = None
    node_extra = {} if node_env is None else dict(node_env)
    out = {'domain': domain, 'work': str(work),
           'node_malloc': 'glibc defaults' if node_extra.get('AETHERSCAN_NODE_MALLOC') ==
           'default' else node_extra.get('GLIBC_TUNABLES', 'set by the node (1 MiB mmap '
                                         'threshold)')}
    rclpy.init()
    try:
        monitor = NodeMonitor()
        node_proc = start_process(node_command({
            'backend': 'classical', 'mode': 'mapping', 'image_topics': [TOPIC],
            'window_size': 8, 'window_overlap': 2, 'fixed_frame': FIXED,
            'keyframe_min_interval': STEP_S * 0.9, 'keyframe_min_change': 0.01,
            'max_views': 16, 'busy_policy': 'buffer', 'output_dir': str(work / 'out'),
            'no_frames_warning': 0.0, 'map_max_points': MAP_MAX_POINTS}), work / 'node.log',
            {**env, **node_extra})
        if not monitor.wait_for_node(60.0) or \
                monitor.wait_event('backend_selected', 60.0) is None:
            raise RuntimeError(f'the node did not start; see {work / "node.log"}')
        stop_file = work / 'stop'
        cam_log = open(work / 'camera.log', 'w')
        cam_proc = subprocess.Popen(
            [sys.executable, '-m', 'bench.bench_soak_mapping', 'camera', '--scene',
             str(scene_file), '--duration', str(duration + warmup_timeout + 60.0),
             '--stop-file', str(stop_file)], cwd=str(REPO), env=env,
            stdout=subprocess.PIPE, stderr=cam_log, text=True)
        if monitor.wait_event('window_complete', warmup_timeout) is None:
            raise RuntimeError(f'no window within {warmup_timeout:.0f} s of walking; see '
                               f'{work / "node.log"}')
        t_start = time.monotonic()
        start = _sample(node_proc)
        samples = [start]
        while time.monotonic() - t_start < duration:
            monitor.spin_for(1.0)
            samples.append(_sample(node_proc))
        stop_file.write_text('stop')
        cam_doc, _ = cam_proc.communicate(timeout=60)
        _wait_idle(monitor, 300.0)
        # keyframes fewer than a window wait in the scheduler: ~/reconstruct maps them (a short
        # window), so every keyframe ends in a window_complete event
        flushed = monitor.call('reconstruct', 60.0)
        if flushed[0]:
            _wait_idle(monitor, 300.0)
        monitor.spin_for(3.0)  # the diagnostics after the last frame and window
        end = _sample(node_proc)
        samples.append(end)
        t0 = time.monotonic()
        code = stop_process(node_proc, timeout=10.0)
        out.update({
            'seconds': end['t'] - start['t'], 'start': start, 'end': end,
            'rss_max': max(s['rss'] for s in samples),
            'slope_mib_min': _slope_mib_per_min(samples), 'flush': flushed[1],
            'rss_mib': [(round(s['t'] - start['t']), round(s['rss'] / 2 ** 20))
                        for s in samples[::10]],
            'diag': dict(monitor.diagnostics), 'map_diag': dict(monitor.map_diagnostics),
            'events': [e for e in monitor.events if e.get('event') in (
                'reconstruction_started', 'window_complete', 'error')],
            'map_points_received': len(monitor.map) if monitor.map is not None else 0,
            'path_poses': len(monitor.path.poses) if monitor.path is not None else 0,
            'camera': json.loads(cam_doc.strip().splitlines()[-1]) if cam_doc.strip()
            else {'sent': 0},
            'stop_s': time.monotonic() - t0, 'exit_code': code})
    finally:
        if cam_proc is not None and cam_proc.poll() is None:
            cam_proc.kill()
            cam_proc.wait(timeout=10)
        stop_process(node_proc)
        if monitor is not None:
            monitor.close()
        if cam_log is not None:
            cam_log.close()
        rclpy.try_shutdown()
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        lock.close()
    return out


def accounting(result: dict) -> dict:
    """Return the frame, keyframe and window books of a :func:`soak` result."""
    d, m = result['diag'], result['map_diag']
    received = _int(d, 'frames_received')
    frame_parts = {k: _int(d, k) for k in ('keyframe', 'skipped_interval', 'skipped_similar',
                                           'stamp_backwards', 'dropped_busy', 'invalid_frames',
                                           'frames_paused')}
    completes = [e for e in result['events'] if e['event'] == 'window_complete']
    in_windows = len({k for e in completes for k in e.get('keyframes') or ()})
    key_parts = {'in_windows': in_windows, 'pending': _int(m, 'keyframes_pending'),
                 'dropped_by_scheduler': _int(m, 'keyframes_dropped'),
                 'buffered': _int(d, 'buffered'), 'evicted': _int(d, 'evicted')}
    started = {e['reconstruction'] for e in result['events']
               if e['event'] == 'reconstruction_started'}
    finished = {e['window'] for e in completes}
    return {
        'sent': int(result['camera'].get('sent', 0)), 'received': received,
        'frame_parts': frame_parts, 'frames_unaccounted': received - sum(frame_parts.values()),
        'keyframes': frame_parts['keyframe'], 'keyframe_parts': key_parts,
        'keyframes_unaccounted': frame_parts['keyframe'] - sum(key_parts.values()),
        'windows_started': len(started), 'windows_complete': len(finished),
        'windows_registered': sum(1 for e in completes if e.get('registered')),
        'windows_lost': len(started - finished),
        'fail_reasons': sorted({str(e.get('reason')) for e in completes
                                if not e.get('registered')}),
        'map_points': [int(e.get('map_points') or 0) for e in completes] or [0],
    }


def rows_from(result: dict) -> list:
    """Turn :func:`soak` figures into benchmark rows."""
    mib = 2 ** 20
    books = accounting(result)
    start, end = result['start'], result['end']
    size = f'1 cam x {RATE_HZ:.0f} Hz {WIDTH}x{HEIGHT}, {result["seconds"]:.0f} s'
    parts = ', '.join(f'{k} {v}' for k, v in books['frame_parts'].items())
    kparts = ', '.join(f'{k} {v}' for k, v in books['keyframe_parts'].items())
    sent = books['sent']
    rate = result['camera'].get('rate_hz', 0.0)
    return [
        {'group': 'soak_mapping', 'what': 'frames received / sent; unaccounted', 'size': size,
         'median_s': None,
         'throughput': f'{books["received"]:,} of {sent:,}; {books["frames_unaccounted"]} '
                       'unaccounted',
         'baseline': f'{sent:,} sent', 'ratio': books['received'] / sent if sent else None,
         'notes': f'{parts}; {rate:.1f} Hz achieved'},
        {'group': 'soak_mapping', 'what': 'keyframes accounted for', 'size': size,
         'median_s': None,
         'throughput': f'{books["keyframes"]:,}; {books["keyframes_unaccounted"]} unaccounted',
         'baseline': '', 'ratio': None, 'notes': kparts},
        {'group': 'soak_mapping', 'what': 'windows complete / started', 'size': size,
         'median_s': None,
         'throughput': f'{books["windows_complete"]} of {books["windows_started"]} '
                       f'({books["windows_registered"]} registered), '
                       f'{books["windows_lost"]} lost',
         'baseline': f'{books["windows_started"]} started',
         'ratio': (books['windows_complete'] / books['windows_started']
                   if books['windows_started'] else None),
         'notes': (f'failed: {"; ".join(books["fail_reasons"])[:200]}' if books['fail_reasons']
                   else 'none failed') + f'; map {result["map_points_received"]:,} points, '
                                         f'path {result["path_poses"]} keyframes received'},
        {'group': 'soak_mapping', 'what': 'node RSS end / start', 'size': size,
         'median_s': None,
         'throughput': f'{start["rss"] / mib:.0f} -> {end["rss"] / mib:.0f} MiB',
         'baseline': f'start {start["rss"] / mib:.0f} MiB', 'ratio': end['rss'] / start['rss'],
         'notes': f'node malloc: {result["node_malloc"]}; max {result["rss_max"] / mib:.0f} '
                  'MiB; 2nd-half slope '
                  f'{result["slope_mib_min"]:+.2f} MiB/min; the map grew '
                  f'{books["map_points"][0]:,} -> {books["map_points"][-1]:,} points, '
                  f'{_int(result["map_diag"], "map_bytes") / mib:.1f} MiB at the end'},
        {'group': 'soak_mapping', 'what': 'node threads / open files end vs start',
         'size': size, 'median_s': None,
         'throughput': f'threads {start["threads"]} -> {end["threads"]}, files '
                       f'{start["fds"]} -> {end["fds"]}',
         'baseline': '', 'ratio': None, 'notes': ''},
        {'group': 'soak_mapping', 'what': 'SIGINT to exit after the soak', 'size': size,
         'median_s': result['stop_s'], 'throughput': f'exit code {result["exit_code"]}',
         'baseline': '', 'ratio': None,
         'notes': f'{60.0 * books["windows_complete"] / max(result["seconds"], 1e-9):.1f} '
                  'windows/min during the soak'},
    ]


def run(quick: bool):
    """Return the benchmark rows (see ``bench/run_all.py`` for the keys)."""
    return rows_from(soak(60.0 if quick else 600.0))


def main(argv=None):
    """``python -m bench.bench_soak_mapping [--quick] [--seconds S]`` or ``... camera ...``."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    sub = parser.add_subparsers(dest='verb')
    cam = sub.add_parser('camera', help='the camera process (started by the benchmark)')
    cam.add_argument('--scene', required=True)
    cam.add_argument('--duration', type=float, required=True)
    cam.add_argument('--stop-file', default='')
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--seconds', type=float, default=0.0, help='override the duration')
    parser.add_argument('--json', default='', help='also write the raw figures here')
    args = parser.parse_args(argv)
    if args.verb == 'camera':
        print(json.dumps(camera(args.scene, args.duration, args.stop_file)), flush=True)
        return 0
    from bench.run_all import format_table
    result = soak(args.seconds or (60.0 if args.quick else 600.0))
    if args.json:
        Path(args.json).write_text(json.dumps({**result, 'books': accounting(result)},
                                              indent=1, default=str))
    print(format_table(rows_from(result)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
