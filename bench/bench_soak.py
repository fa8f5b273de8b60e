# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Soak benchmark: 4 cameras at 30 Hz into ``aetherscan_node`` with reconstructions all along.

Three processes on a private ROS_DOMAIN_ID (loopback only): the node (classical backend,
``auto_trigger`` with ``min_views`` 4, so it reconstructs again as soon as it is free), a
camera process publishing 4 ``sensor_msgs/Image`` + ``CameraInfo`` streams at 30 Hz each
(best effort, like camera drivers; a 4-camera rig sweeping the demo scene's orbit back and
forth, 160x120 so that the CPU keeps up), and this process, which receives every event,
chunk and cloud the node publishes and samples the node's RSS, threads and open file handles.

"start" figures are taken after a warm-up (the first reconstruction: imports and thread pools),
"end" figures after the cameras stopped and the last reconstruction finished. The baselines are
those start figures and the frames sent, measured in the same run: ``ratio`` is end/start for
RSS, threads and handles and received/sent for frames. RSS growth is also given as the slope
of a line fitted to the samples of the second half of the run (MiB/min; flat is ~0).

``quick``: 25 s of streaming (CI-sized); full: 300 s. Run alone:
``python -m bench.bench_soak [--quick]``; the camera process is ``python -m bench.bench_soak
publish ...``.
"""

import argparse
import json
import os
from pathlib import Path
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

CAMERAS = 4
RATE_HZ = 30.0
WIDTH, HEIGHT = 160, 120
STEPS = 6  # rig positions along the orbit (4 consecutive views each)
STEP_S = 0.5  # the rig moves to the next position every STEP_S seconds
REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- camera process


def publish(scene_file: str, duration: float, rate: float, cameras: int,
            stop_file: str = '') -> dict:
    """
    Publish ``cameras`` image + camera_info streams at ``rate`` Hz; return the counts.

    Stops after ``duration`` seconds or as soon as ``stop_file`` exists.
    """
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    from aetherscan_ros.ros.camera_info import make_camera_info
    from aetherscan_ros.ros.images import rgb_to_image_msg
    data = np.load(scene_file)
    images, k = data['images'], data['K']
    rclpy.init()
    node = rclpy.create_node('aetherscan_soak_cameras')
    pubs = [(node.create_publisher(Image, f'/soak/cam{c}/image_raw', qos_profile_sensor_data),
             node.create_publisher(CameraInfo, f'/soak/cam{c}/camera_info',
                                   qos_profile_sensor_data)) for c in range(cameras)]
    sent = [0] * cameras
    deadline = time.monotonic() + 30.0
    while any(p.get_subscription_count() == 0 for p, _ in pubs):
        if time.monotonic() > deadline:
            raise SystemExit('soak cameras: the node did not subscribe within 30 s')
        rclpy.spin_once(node, timeout_sec=0.1)
    start = time.monotonic()
    period = 1.0 / rate
    tick = 0
    try:
        while True:
            now = time.monotonic()
            if now - start >= duration or (stop_file and tick % 10 == 0 and
                                           os.path.exists(stop_file)):
                break
            step = int((now - start) / STEP_S)
            pos = step % (2 * STEPS - 2)  # back and forth: 0..STEPS-1..1
            pos = pos if pos < STEPS else 2 * STEPS - 2 - pos
            stamp = node.get_clock().now().nanoseconds
            for c, (pub, info_pub) in enumerate(pubs):
                view = pos * cameras + c
                frame_id = f'soak_cam{c}_optical'
                info_pub.publish(make_camera_info(k, WIDTH, HEIGHT, stamp, frame_id))
                pub.publish(rgb_to_image_msg(images[view], stamp, frame_id))
                sent[c] += 1
            tick += 1
            wait = start + tick * period - time.monotonic()
            if wait > 0:
                time.sleep(wait)
    finally:
        elapsed = time.monotonic() - start
        node.destroy_node()
        rclpy.try_shutdown()
    return {'sent': sent, 'seconds': elapsed, 'rate_hz': sum(sent) / cameras / elapsed}


# --------------------------------------------------------------------------- measuring


def _sample(proc) -> dict:
    import psutil
    p = psutil.Process(proc.pid)
    with p.oneshot():
        return {'t': time.monotonic(), 'rss': p.memory_info().rss, 'threads': p.num_threads(),
                'fds': p.num_fds()}


def _slope_mib_per_min(samples) -> float:
    half = samples[len(samples) // 2:]
    if len(half) < 3:
        return float('nan')
    t = np.array([s['t'] for s in half])
    rss = np.array([s['rss'] for s in half]) / 2 ** 20
    return float(np.polyfit(t - t[0], rss, 1)[0] * 60.0)


def soak(duration: float, warmup_timeout: float = 60.0, reconstruct: bool = True) -> dict:
    """
    Run the three processes; return the measured figures.

    ``reconstruct=False`` streams into a node that never reconstructs (``auto_trigger``
    off): the baseline of what the node receives when no backend competes for the CPU.
    """
    import rclpy

    from aetherscan_ros.demo.run_demo import (
        claim_domain_id, node_command, NodeMonitor, start_process, stop_process)
    from aetherscan_ros.demo.scene import make_scene
    work = Path(tempfile.mkdtemp(prefix='aetherscan_soak_'))
    scene = make_scene(num_views=STEPS * CAMERAS, width=WIDTH, height=HEIGHT)
    scene_file = work / 'scene.npz'
    np.savez(scene_file, images=scene.images, K=scene.K)
    topics = [f'/soak/cam{c}/image_raw' for c in range(CAMERAS)]
    # a private domain (held by a lock file) for the three processes; restored afterwards
    domain, lock = claim_domain_id()
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               PYTHONUNBUFFERED='1', HF_HUB_OFFLINE='1')
    env.setdefault('ROS_LOG_DIR', str(work / 'ros_log'))
    keys = ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE', 'ROS_LOG_DIR')
    saved_env = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: env[k] for k in keys})
    node_proc = cam_proc = monitor = cam_log = None
    out = {'domain': domain}
    rclpy.init()
    try:
        monitor = NodeMonitor()
        node_proc = start_process(node_command({
            'backend': 'classical', 'image_topics': topics, 'min_views': 4, 'max_views': 8,
            'keyframe_min_interval': 0.25, 'keyframe_min_change': 0.02,
            'busy_policy': 'buffer', 'output_dir': str(work / 'out'),
            'no_frames_warning': 0.0, 'auto_trigger': reconstruct}), work / 'node.log', env)
        if not monitor.wait_for_node(60.0) or \
                monitor.wait_event('backend_selected', 60.0) is None:
            raise RuntimeError(f'the node did not start; see {work / "node.log"}')
        stop_file = work / 'stop'
        cam_log = open(work / 'cameras.log', 'w')
        cam_proc = subprocess.Popen(
            [sys.executable, '-m', 'bench.bench_soak', 'publish', '--scene', str(scene_file),
             '--duration', str(duration + warmup_timeout + 60.0), '--stop-file',
             str(stop_file)], cwd=str(REPO), env=env,
            stdout=subprocess.PIPE, stderr=cam_log, text=True)
        # warm-up: until the first reconstruction ended (or the buffer filled)
        first = monitor.spin_until(
            lambda: any(e['event'] in ('reconstruction_complete', 'error')
                        for e in monitor.events) or
            (not reconstruct and monitor.diagnostics.get('buffered') == '8'), warmup_timeout)
        if not first:
            raise RuntimeError(f'no reconstruction within {warmup_timeout:.0f} s of streaming; '
                               f'see {work / "node.log"}')
        t_start = time.monotonic()
        start = _sample(node_proc)
        diag_start = dict(monitor.diagnostics)
        events_start = len(monitor.events)
        samples = [start]
        while time.monotonic() - t_start < duration:
            monitor.spin_for(1.0)
            samples.append(_sample(node_proc))
        # stop the cameras (they were asked for more than that), let the last job finish
        stop_file.write_text('stop')
        sent_doc, _ = cam_proc.communicate(timeout=30)
        monitor.spin_until(lambda: monitor.diagnostics.get('busy') == 'False', 120.0)
        monitor.spin_for(2.0)  # the diagnostics after the last frame
        end = _sample(node_proc)
        samples.append(end)
        events = monitor.events[events_start:]
        completes = [e for e in events if e['event'] == 'reconstruction_complete']
        t0 = time.monotonic()
        code = stop_process(node_proc, timeout=10.0)
        out.update({
            'seconds': end['t'] - start['t'], 'start': start, 'end': end,
            'rss_max': max(s['rss'] for s in samples),
            'slope_mib_min': _slope_mib_per_min(samples),
            'diag_start': diag_start, 'diag_end': dict(monitor.diagnostics),
            'completed': len(completes),
            'failed': len([e for e in events if e['event'] == 'error']),
            'durations': [e['seconds'] for e in completes],
            'points': [e['total_points'] for e in completes],
            'cameras': json.loads(sent_doc.strip().splitlines()[-1]) if sent_doc.strip()
            else {'sent': []},
            'stop_s': time.monotonic() - t0, 'exit_code': code, 'work': str(work)})
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


def _int(diag, key):
    try:
        return int(float(diag.get(key, 0)))
    except ValueError:
        return 0


def rows_from(result: dict) -> list:
    """Turn :func:`soak` figures into benchmark rows."""
    mib = 2 ** 20
    start, end = result['start'], result['end']
    d0, d1 = result['diag_start'], result['diag_end']
    sent = sum(result['cameras'].get('sent', []))
    received = _int(d1, 'frames_received')
    size = f'{CAMERAS} cams x {RATE_HZ:.0f} Hz {WIDTH}x{HEIGHT}, {result["seconds"]:.0f} s'
    keys = ('keyframe', 'skipped_interval', 'skipped_similar', 'evicted', 'dropped_busy',
            'invalid_frames', 'callback_errors')
    buffer = ', '.join(f'{k} {_int(d1, k) - _int(d0, k)}' for k in keys)
    durations = result['durations']
    rate = f'{result.get("cameras", {}).get("rate_hz", 0):.1f} Hz/camera achieved'
    return [
        {'group': 'soak', 'what': 'frames received / sent (whole run)', 'size': size,
         'median_s': None, 'throughput': f'{received:,} of {sent:,}',
         'baseline': f'{sent:,} sent', 'ratio': received / sent if sent else None,
         'notes': f'lost in transport (best effort) {sent - received:,}; during the soak '
                  f'window: {buffer}; {rate}'},
        {'group': 'soak', 'what': 'reconstructions (classical, auto_trigger)', 'size': size,
         'median_s': statistics.median(durations) if durations else None,
         'throughput': f'{result["completed"]} ok, {result["failed"]} failed',
         'baseline': '', 'ratio': None,
         'notes': (f'{60.0 * result["completed"] / result["seconds"]:.1f}/min; points median '
                   f'{int(statistics.median(result["points"])) if result["points"] else 0:,}')},
        {'group': 'soak', 'what': 'node RSS end / start', 'size': size, 'median_s': None,
         'throughput': f'{start["rss"] / mib:.0f} -> {end["rss"] / mib:.0f} MiB',
         'baseline': f'start {start["rss"] / mib:.0f} MiB', 'ratio': end['rss'] / start['rss'],
         'notes': f'max {result["rss_max"] / mib:.0f} MiB; 2nd-half slope '
                  f'{result["slope_mib_min"]:+.2f} MiB/min'},
        {'group': 'soak', 'what': 'node threads end / start', 'size': size, 'median_s': None,
         'throughput': f'{start["threads"]} -> {end["threads"]}',
         'baseline': f'start {start["threads"]}', 'ratio': end['threads'] / start['threads'],
         'notes': ''},
        {'group': 'soak', 'what': 'node open files end / start', 'size': size,
         'median_s': None, 'throughput': f'{start["fds"]} -> {end["fds"]}',
         'baseline': f'start {start["fds"]}', 'ratio': end['fds'] / start['fds'], 'notes': ''},
        {'group': 'soak', 'what': 'SIGINT to exit after the soak', 'size': size,
         'median_s': result['stop_s'], 'throughput': f'exit code {result["exit_code"]}',
         'baseline': '', 'ratio': None, 'notes': ''},
    ]


def run(quick: bool):
    """Return the benchmark rows (see ``bench/run_all.py`` for the keys)."""
    return rows_from(soak(25.0 if quick else 300.0))


def main(argv=None):
    """``python -m bench.bench_soak [--quick] [--seconds S]`` or ``... publish ...``."""
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    sub = parser.add_subparsers(dest='verb')
    pub = sub.add_parser('publish', help='the camera process (started by the benchmark)')
    pub.add_argument('--scene', required=True)
    pub.add_argument('--duration', type=float, required=True)
    pub.add_argument('--rate', type=float, default=RATE_HZ)
    pub.add_argument('--cameras', type=int, default=CAMERAS)
    pub.add_argument('--stop-file', default='')
    parser.add_argument('--quick', action='store_true')
    parser.add_argument('--seconds', type=float, default=0.0, help='override the duration')
    args = parser.parse_args(argv)
    if args.verb == 'publish':
        result = publish(args.scene, args.duration, args.rate, args.cameras, args.stop_file)
        print(json.dumps(result), flush=True)
        return 0
    from bench.run_all import format_table
    seconds = args.seconds or (25.0 if args.quick else 300.0)
    print(format_table(rows_from(soak(seconds))))
    return 0


if __name__ == '__main__':
    sys.exit(main())
