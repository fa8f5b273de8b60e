# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The mapping node's map stream delivered to another process: ``~/points`` delta + ``~/map``.

A publisher process emulates what the node sends for each registered window: the window's
new points as chunks on a ``~/points``-like topic (chunk protocol, ``chunk_points`` each,
reliable depth 100) and then the whole map as one message on a ``~/map``-like topic
(reliable, transient local, depth 1), built like the node does (``make_cloud_msg`` into a
reused :class:`MessageBuffer`). Windows follow each other ``gap`` seconds apart, like a
mapping node's windows (so each window's figure is its delivery time, not a queue's). A
subscriber process takes both, reassembles the delta, and per window the time runs from just
before the window's first ``publish()`` to the moment both the map and the whole delta are in
the subscriber's hands (one machine's wall clock). After the timed windows the subscriber
checks the last map and delta bit for bit against the same seeded data.

Rows, one run each, all with ``config/fastdds_large_data.xml`` on both ends:

* baseline: today's chunk stream (``bench_transport``: 1M points as 50,000-point chunks,
  untuned subscriber), measured in the same run;
* the map stream to a subscriber with glibc's default malloc;
* the map stream to a subscriber with the large-message malloc settings
  (:mod:`aetherscan_ros.core.large_messages`), the shipped large-data profile;
* the chunk stream alone to such a subscriber.

Run one side by hand: ``python -m bench.bench_map_stream sub|pub MAP DELTA WINDOWS CHUNK
TUNED``.
"""

import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

from bench.bench_transport import _child_env, _read_result, make_data, REPO, run_pair, XML

MAP_TOPIC = '/aetherscan_bench/map'
POINTS_TOPIC = '/aetherscan_bench/map_points'
GAP_S = 0.4


def _emit(obj):
    print('RESULT ' + json.dumps(obj), flush=True)


def _qos():
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    stream = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST,
                        reliability=ReliabilityPolicy.RELIABLE)
    latched = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                         reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
    return stream, latched


def delta_slice(window: int, n_map: int, delta: int) -> slice:
    """Return the points of the map that window ``window`` (1-based) sends as its delta."""
    start = ((window - 1) * delta) % max(n_map - delta + 1, 1)
    return slice(start, start + delta)


def subscriber(n_map, delta, windows, tuned, timeout_s):
    """Receive ``windows`` map updates; print per-window completion times (RESULT)."""
    if tuned:
        from aetherscan_ros.core.large_messages import tune_malloc_for_large_messages
        tuned = tune_malloc_for_large_messages()
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from sensor_msgs.msg import PointCloud2

    from aetherscan_ros.cloud import ChunkAssembler, CloudArrays
    from aetherscan_ros.ros.pointcloud2 import from_pointcloud2

    rclpy.init()
    node = rclpy.create_node('bench_map_stream_sub')
    stream_qos, latched_qos = _qos()
    assembler = ChunkAssembler()
    t_map, t_delta, last = {}, {}, {}

    def on_map(msg):
        now = time.time()
        window = msg.header.stamp.sec
        cloud, _ = from_pointcloud2(msg, source=MAP_TOPIC)  # zero-copy views
        t_map[window] = now
        if window == windows:
            last['map'] = cloud.copy()

    def on_points(msg):
        cloud, info = from_pointcloud2(msg, source=POINTS_TOPIC)
        full = assembler.add(info, cloud)
        if full is not None:
            t_delta[info.recon] = time.time()
            if info.recon == windows:
                last['delta'] = full

    node.create_subscription(PointCloud2, MAP_TOPIC, on_map, latched_qos)
    node.create_subscription(PointCloud2, POINTS_TOPIC, on_points, stream_qos)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    print('READY', flush=True)
    deadline = time.time() + timeout_s
    while (len(t_map) < windows or len(t_delta) < windows) and time.time() < deadline:
        executor.spin_once(timeout_sec=0.05)
    exact = None
    if 'map' in last and 'delta' in last:
        expected = CloudArrays(*make_data(n_map))
        part = expected.select(delta_slice(windows, n_map, delta))
        exact = (all(np.array_equal(a, b) for a, b in zip(last['map'], expected)) and
                 all(np.array_equal(a, b) for a, b in zip(last['delta'], part)))
    _emit({'t_map': {str(k): v for k, v in t_map.items()},
           't_delta': {str(k): v for k, v in t_delta.items()}, 'exact': exact,
           'tuned': bool(tuned)})
    executor.remove_node(node)
    node.destroy_node()
    rclpy.try_shutdown()


def publisher(n_map, delta, windows, chunk_points, linger_s):
    """Publish ``windows`` updates (delta chunks, then the whole map); print start times."""
    import rclpy
    from sensor_msgs.msg import PointCloud2

    from aetherscan_ros.cloud import ChunkStream, CloudArrays
    from aetherscan_ros.ros.pointcloud2 import make_cloud_msg, MessageBuffer

    rclpy.init()
    node = rclpy.create_node('bench_map_stream_pub')
    stream_qos, latched_qos = _qos()
    map_pub = node.create_publisher(PointCloud2, MAP_TOPIC, latched_qos)
    points_pub = node.create_publisher(PointCloud2, POINTS_TOPIC, stream_qos)
    cloud = CloudArrays(*make_data(n_map))
    start = time.time()
    while (map_pub.get_subscription_count() == 0 or points_pub.get_subscription_count() == 0) \
            and time.time() - start < 20:
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(0.5)  # let discovery settle both ways
    map_buffer, chunk_buffer = MessageBuffer(), MessageBuffer()
    t0 = {}
    for window in range(1, windows + 1):
        stamp = window * 1_000_000_000
        part = cloud.select(delta_slice(window, n_map, delta))
        stream = ChunkStream(window, chunk_points, total_points=len(part))
        t0[str(window)] = time.time()
        for info, chunk in stream.add(*part):
            points_pub.publish(make_cloud_msg(chunk, 'map', stamp, chunk_info=info,
                                              is_dense=True, out=chunk_buffer.take()))
        map_pub.publish(make_cloud_msg(cloud, 'map', stamp, is_dense=True,
                                       out=map_buffer.take()))
        end = time.time() + GAP_S
        while time.time() < end:
            rclpy.spin_once(node, timeout_sec=0.02)
    _emit({'t0': t0, 'chunks_per_window': stream.chunks_sent})
    end = time.time() + linger_s
    while time.time() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    node.destroy_node()
    rclpy.try_shutdown()


def run_map_pair(n_map, delta, windows, chunk_points, tuned, domain, timeout_s=60.0) -> dict:
    """Run one subscriber/publisher pair with the large-data XML; return per-window seconds."""
    env = _child_env(domain)
    for key in ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE'):
        env[key] = str(XML)
    env.pop('GLIBC_TUNABLES', None)
    cmd = [sys.executable, '-m', 'bench.bench_map_stream']
    args = [str(n_map), str(delta), str(windows), str(chunk_points)]
    sub = subprocess.Popen(cmd + ['sub', *args, '1' if tuned else '0', str(timeout_s)],
                           cwd=REPO, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    pub = None
    try:
        early = []
        while not early or 'READY' not in early[-1]:
            early.append(sub.stdout.readline())
            if not early[-1] or len(early) > 50:
                raise RuntimeError(f'map subscriber did not start: {"".join(early)[-400:]!r}')
        pub = subprocess.Popen(cmd + ['pub', *args, '0', '3.0'], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        sub_out, _ = sub.communicate(timeout=timeout_s + 30)
        pub_out, _ = pub.communicate(timeout=60)
    finally:
        for proc in (sub, pub):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    s, p = _read_result(sub_out), _read_result(pub_out)
    if s is None or p is None:
        raise RuntimeError(f'no result (sub: {sub_out[-400:]!r}, pub: {pub_out[-400:]!r})')
    seconds = []
    for key, start in p['t0'].items():
        done = [s['t_map'].get(key), s['t_delta'].get(key)]
        seconds.append(max(done) - start if None not in done else None)
    return {'seconds': seconds, 'exact': s['exact'], 'tuned': s['tuned'],
            'chunks_per_window': p['chunks_per_window']}


def map_row(r, n_map, delta, what, base_mbs) -> dict:
    """Turn :func:`run_map_pair` figures into a row (median over the windows)."""
    nbytes = (n_map + delta) * 24
    done = [s for s in r['seconds'] if s is not None]
    size = f'{n_map:,} pts map + {delta:,} delta'
    if len(done) < len(r['seconds']):
        return {'group': 'transport', 'what': what, 'size': size, 'median_s': None,
                'throughput': 'incomplete', 'baseline': '', 'ratio': None,
                'notes': f'{len(done)}/{len(r["seconds"])} windows complete'}
    med = statistics.median(done)
    mbs = nbytes / med / 1e6
    warm = done[2:] or done  # the first windows grow the subscriber's heap (page faults)
    return {'group': 'transport', 'what': what, 'size': size, 'median_s': med,
            'throughput': f'{mbs:.0f} MB/s',
            'baseline': 'chunk stream, 50,000-pt chunks, same run' if base_mbs else '',
            'ratio': mbs / base_mbs if base_mbs else None,
            'notes': f'{"exact" if r["exact"] else "MISMATCH"}; median of {len(done)} windows '
                     f'{GAP_S:g} s apart (min {min(done) * 1e3:.0f} ms, max '
                     f'{max(done) * 1e3:.0f} ms; from the 3rd window on: median '
                     f'{nbytes / statistics.median(warm) / 1e6:.0f} MB/s); '
                     f'{r["chunks_per_window"]} delta chunks + 1 '
                     f'map message per window; subscriber malloc '
                     f'{"large-message settings" if r["tuned"] else "glibc default"}'}


def run(quick: bool):
    """Return rows: the baseline chunk stream, then the map stream untuned and tuned."""
    from aetherscan_ros.node.ros_domain import claim_domain_id

    n_map = 200_000 if quick else 1_000_000
    delta = n_map // 5
    windows = 4 if quick else 10
    chunk_points = 50_000
    domain, lock = claim_domain_id()
    try:
        base = run_pair(n_map, chunk_points, 'reliable100', True, domain)
        rows = []
        base_mbs = None
        if base['t_complete']:
            seconds = base['t_complete'] - base['t_first_publish']
            base_mbs = n_map * 24 / seconds / 1e6
        rows.append({'group': 'transport', 'size': f'{n_map:,} pts',
                     'what': 'baseline: chunk stream (~/points), large_data XML, default malloc',
                     'median_s': seconds if base_mbs else None,
                     'throughput': f'{base_mbs:.0f} MB/s' if base_mbs else 'incomplete',
                     'baseline': '', 'ratio': None,
                     'notes': f'{"exact" if base["exact"] else "MISMATCH"}; '
                              f'{base["chunks_received"]}/{base["chunks_sent"]} chunks; 1 run'})
        for tuned in (False, True):
            r = run_map_pair(n_map, delta, windows, chunk_points, tuned, domain)
            malloc = 'large-message malloc' if tuned else 'default malloc'
            rows.append(map_row(r, n_map, delta, f'map stream (~/points delta + ~/map), '
                                f'large_data XML, subscriber {malloc}', base_mbs))
        saved = os.environ.get('GLIBC_TUNABLES')
        os.environ.update(_tunables())  # run_pair's children inherit it
        try:
            tuned_chunks = run_pair(n_map, chunk_points, 'reliable100', True, domain)
        finally:
            if saved is None:
                os.environ.pop('GLIBC_TUNABLES', None)
            else:
                os.environ['GLIBC_TUNABLES'] = saved
        if tuned_chunks['t_complete']:
            seconds = tuned_chunks['t_complete'] - tuned_chunks['t_first_publish']
            mbs = n_map * 24 / seconds / 1e6
            rows.append({'group': 'transport', 'size': f'{n_map:,} pts', 'median_s': seconds,
                         'what': 'chunk stream (~/points), large_data XML, large-message malloc',
                         'throughput': f'{mbs:.0f} MB/s',
                         'baseline': 'default malloc, same run' if base_mbs else '',
                         'ratio': mbs / base_mbs if base_mbs else None,
                         'notes': f'{"exact" if tuned_chunks["exact"] else "MISMATCH"}; '
                                  f'{tuned_chunks["chunks_received"]}/'
                                  f'{tuned_chunks["chunks_sent"]} chunks; both processes '
                                  'with GLIBC_TUNABLES; 1 run'})
    finally:
        lock.close()
    return rows


def _tunables():
    from aetherscan_ros.core.large_messages import with_large_message_malloc
    return with_large_message_malloc({})  # without the caller's (e.g. hugetlb) tunables


def main(argv):
    """Entry point of the roles: ``sub|pub MAP DELTA WINDOWS CHUNK TUNED [SECONDS]``."""
    role, n_map, delta, windows, chunk = argv[0], *(int(v) for v in argv[1:5])
    tuned = argv[5] == '1'
    seconds = float(argv[6]) if len(argv) > 6 else 60.0
    if role == 'sub':
        subscriber(n_map, delta, windows, tuned, seconds)
    elif role == 'pub':
        publisher(n_map, delta, windows, chunk, seconds)
    else:
        raise SystemExit(f'unknown role {role!r}')


if __name__ == '__main__':
    main(sys.argv[1:])
