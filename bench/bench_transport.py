# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Cross-process delivery of a chunked cloud through rclpy on loopback.

A publisher process packs and publishes a cloud (1M points, quick mode 100k) as chunks
(``ChunkStream`` + ``to_pointcloud2``); a subscriber process reassembles them with
``ChunkAssembler`` and checks the result bit for bit against the same seeded data. Time runs
from just before the first ``publish()`` to the moment the last missing chunk is reassembled
(both stamps from the wall clock of one machine), so it includes packing the later chunks.

Also measured: building and publishing one whole transient-local cloud (what ``~/cloud`` does),
with a new or a reused ``msg.data`` buffer, each without and with glibc huge-page malloc
(``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``, what the launch file sets), in child processes.

Configurations: QoS ``default`` (rclpy's: reliable, keep last 10), ``reliable100`` (reliable,
keep last 100, what ``~/points`` uses), ``best_effort`` (sensor data QoS), each without and with
``config/fastdds_large_data.xml``. Every run gets its own ROS_DOMAIN_ID with
ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and a time limit.

A subscriber that hears nothing for 3 s after the first chunk gives up (lost chunks).
Run one side by hand: ``python -m bench.bench_transport sub|pub POINTS CHUNK QOS``.
"""

import json
import os
from pathlib import Path
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = Path(__file__).resolve().parents[1]
XML = REPO / 'config' / 'fastdds_large_data.xml'
TOPIC = '/aetherscan_bench/points'
SEED = 1234


def _qos(name):
    from rclpy.qos import (HistoryPolicy, QoSProfile, qos_profile_sensor_data,
                           ReliabilityPolicy)
    if name == 'default':
        return 10
    if name == 'reliable100':
        return QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST,
                          reliability=ReliabilityPolicy.RELIABLE)
    if name == 'best_effort':
        return qos_profile_sensor_data
    raise ValueError(f'unknown QoS {name!r}')


def make_data(n):
    """Return the seeded test cloud ``(points, colors, confidence, view)`` of 16 views."""
    from bench.bench_cloud import make_cloud
    return make_cloud(n, SEED, views=16)


def _emit(obj):
    print('RESULT ' + json.dumps(obj), flush=True)


def subscriber(n, qos_name, timeout_s):
    """Reassemble chunks until complete or ``timeout_s``; print a RESULT line."""
    import rclpy
    from sensor_msgs.msg import PointCloud2

    from aetherscan_ros.cloud import ChunkAssembler, CloudArrays
    from aetherscan_ros.ros.pointcloud2 import from_pointcloud2

    rclpy.init()
    node = rclpy.create_node('bench_transport_sub')
    assembler = ChunkAssembler()
    state = {'chunks': 0, 'bytes': 0, 'first': None, 'done': None, 'full': None, 'last': 0.0}

    def on_msg(msg):
        now = state['last'] = time.time()
        state['chunks'] += 1
        state['bytes'] += len(msg.data)
        state['first'] = state['first'] or now
        cloud, info = from_pointcloud2(msg)
        full = assembler.add(info, cloud.copy())
        if full is not None:
            state['done'], state['full'] = time.time(), full

    node.create_subscription(PointCloud2, TOPIC, on_msg, _qos(qos_name))
    print('READY', flush=True)
    deadline = time.time() + timeout_s
    while state['done'] is None and time.time() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
        if state['first'] and time.time() - state['last'] > 3.0:
            break  # nothing for 3 s after the stream started: chunks were lost
    result = {'chunks_received': state['chunks'], 'bytes_received': state['bytes'],
              't_first_recv': state['first'], 't_complete': state['done'], 'exact': None}
    if state['full'] is not None:
        expected = CloudArrays(*make_data(n))
        result['exact'] = all(np.array_equal(a, b) for a, b in zip(state['full'], expected))
    _emit(result)
    node.destroy_node()
    rclpy.try_shutdown()


def publisher(n, chunk_points, qos_name, linger_s):
    """Publish the cloud as chunks once the subscriber matched; print a RESULT line."""
    import rclpy
    from rclpy.impl.implementation_singleton import rclpy_implementation
    from sensor_msgs.msg import PointCloud2

    from aetherscan_ros.cloud import ChunkStream
    from aetherscan_ros.ros.pointcloud2 import make_cloud_msg, MessageBuffer

    rclpy.init()
    node = rclpy.create_node('bench_transport_pub')
    pub = node.create_publisher(PointCloud2, TOPIC, _qos(qos_name))
    points, colors, conf, view = make_data(n)
    start = time.time()
    while pub.get_subscription_count() == 0 and time.time() - start < 20:
        rclpy.spin_once(node, timeout_sec=0.05)
    matched = pub.get_subscription_count() > 0
    time.sleep(0.5)  # let discovery settle both ways
    errors = 0
    buffer = MessageBuffer()  # as the node: one msg.data buffer reused chunk after chunk
    stream = ChunkStream(1, chunk_points)
    per_view = -(-n // 16)
    t0 = time.time()
    for v in range(16):
        sl = slice(v * per_view, min((v + 1) * per_view, n))
        chunks = stream.add(points[sl], colors[sl], conf[sl], view[sl])
        if v == 15:
            chunks += stream.finish()
        for info, chunk in chunks:
            try:
                pub.publish(make_cloud_msg(chunk, 'world', 0, chunk_info=info, is_dense=True,
                                           out=buffer.take()))
            except rclpy_implementation.RCLError:
                errors += 1
    t_last = time.time()
    _emit({'matched': matched, 't_first_publish': t0, 't_last_publish': t_last,
           'chunks_sent': stream.chunks_sent, 'publish_errors': errors})
    end = time.time() + linger_s  # stay alive for reliable retransmissions
    while time.time() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    node.destroy_node()
    rclpy.try_shutdown()


def latched(n, repeat):
    """Build and publish a whole cloud on a ~/cloud-like publisher ``repeat`` times; RESULT."""
    import statistics

    import rclpy
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import PointCloud2

    from aetherscan_ros.ros.pointcloud2 import make_cloud_msg, MessageBuffer

    rclpy.init()
    node = rclpy.create_node('bench_transport_latched')
    pub = node.create_publisher(PointCloud2, TOPIC + '_latched', QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL))
    cloud = make_data(n)
    result = {}
    for mode in ('new', 'reused'):
        buffer = MessageBuffer()
        build, publish = [], []
        for _ in range(repeat + 1):  # the first round warms up (and allocates the buffer)
            t0 = time.perf_counter()
            msg = make_cloud_msg(cloud, 'world', 0, out=buffer.take() if mode == 'reused'
                                 else None)
            t1 = time.perf_counter()
            pub.publish(msg)
            t2 = time.perf_counter()
            del msg
            build.append(t1 - t0)
            publish.append(t2 - t1)
        result[mode] = {'build': statistics.median(build[1:]),
                        'publish': statistics.median(publish[1:])}
    _emit(result)
    node.destroy_node()
    rclpy.try_shutdown()


def _child_env(domain):
    """Return the environment of a benchmark child: its own domain, loopback, this checkout."""
    env = dict(os.environ)
    env.update({'ROS_DOMAIN_ID': str(domain), 'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST',
                'PYTHONPATH': str(REPO) + os.pathsep + env.get('PYTHONPATH', ''),
                'PYTHONUNBUFFERED': '1'})
    env.setdefault('ROS_LOG_DIR', tempfile.mkdtemp(prefix='aetherscan_bench_log_'))
    return env


def run_latched(n, repeat, hugepages, domain):
    """Run :func:`latched` in a child process, with or without huge-page malloc."""
    from aetherscan_ros.core.process_env import with_hugepage_malloc

    env = _child_env(domain)
    env.pop('GLIBC_TUNABLES', None)
    if hugepages:
        env.update(with_hugepage_malloc(env))
    out = subprocess.run([sys.executable, '-m', 'bench.bench_transport', 'latched', str(n), '0',
                          'reliable100', str(repeat)], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=600)
    result = _read_result(out.stdout)
    if result is None:
        raise RuntimeError(f'latched publisher failed: {(out.stdout + out.stderr)[-400:]!r}')
    return result


def latched_rows(sizes, repeat, domain):
    """Rows: building + publishing a whole transient-local cloud, without/with huge pages."""
    rows = []
    for n in sizes:
        runs = {hp: run_latched(n, repeat, hp, domain) for hp in (False, True)}
        base_total = runs[False]['new']['build'] + runs[False]['new']['publish']
        for hp, r in runs.items():
            malloc = 'glibc.malloc.hugetlb=1' if hp else 'default malloc'
            for mode in ('new', 'reused'):
                total = r[mode]['build'] + r[mode]['publish']
                rows.append({
                    'group': 'transport', 'size': f'{n:,} pts', 'median_s': total,
                    'what': f'whole ~/cloud: build + publish(), {mode} buffer, {malloc}',
                    'throughput': f'{n * 24 / total / 1e6:.0f} MB/s',
                    'baseline': 'new buffer, default malloc', 'ratio': base_total / total,
                    'notes': f'build {r[mode]["build"] * 1e3:.1f} ms + publish() '
                             f'{r[mode]["publish"] * 1e3:.1f} ms; no subscriber; '
                             f'median of {repeat}'})
    return rows


def _read_result(text):
    for line in text.splitlines():
        if line.startswith('RESULT '):
            return json.loads(line[len('RESULT '):])
    return None


def run_pair(n, chunk_points, qos_name, use_xml, domain, timeout_s=40.0):
    """Run one subscriber/publisher pair in its own domain; return a result dict."""
    env = _child_env(domain)
    for key in ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE'):
        env.pop(key, None)
        if use_xml:
            env[key] = str(XML)
    cmd = [sys.executable, '-m', 'bench.bench_transport']
    sub = subprocess.Popen(cmd + ['sub', str(n), str(chunk_points), qos_name, str(timeout_s)],
                           cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
    pub = None
    try:
        early = []
        while not early or 'READY' not in early[-1]:  # rcl may log warnings first
            early.append(sub.stdout.readline())
            if not early[-1] or len(early) > 50:
                raise RuntimeError(f'subscriber did not start: {"".join(early)[-400:]!r}')
        pub = subprocess.Popen(cmd + ['pub', str(n), str(chunk_points), qos_name, '3.0'],
                               cwd=REPO, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
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
    return {**s, **p}


def run(quick: bool):
    """Return benchmark rows: one per QoS x profile configuration."""
    n = 100_000 if quick else 1_000_000
    chunk_points = 50_000
    configs = [(q, x) for x in (False, True) for q in ('default', 'reliable100', 'best_effort')]
    if not quick:
        configs += [('default', False, 250_000), ('default', True, 250_000)]
    base_domain = 120 + os.getpid() % 80
    rows, results = [], {}
    for i, cfg in enumerate(configs):
        qos_name, use_xml = cfg[0], cfg[1]
        chunk = cfg[2] if len(cfg) > 2 else chunk_points
        r = run_pair(n, chunk, qos_name, use_xml, base_domain + i % 20,
                     timeout_s=15.0 if quick else 40.0)
        profile = 'large_data XML' if use_xml else 'default Fast DDS'
        total = n * 24
        note = (f'{r["chunks_received"]}/{r["chunks_sent"]} chunks, '
                f'{r["publish_errors"]} publish errors, chunk {chunk:,} pts')
        if r['t_complete']:
            seconds = r['t_complete'] - r['t_first_publish']
            results[(qos_name, use_xml, chunk)] = seconds
            ok = 'exact' if r['exact'] else 'MISMATCH'
            rows.append({'group': 'transport', 'what': f'{qos_name}, {profile}',
                         'size': f'{n:,} pts', 'median_s': seconds,
                         'throughput': f'{total / seconds / 1e6:.0f} MB/s',
                         'baseline': '', 'ratio': None,
                         'notes': f'{ok}; {note}; 1 run'})
        else:
            rows.append({'group': 'transport', 'what': f'{qos_name}, {profile}',
                         'size': f'{n:,} pts', 'median_s': None, 'throughput': 'incomplete',
                         'baseline': '', 'ratio': None, 'notes': note})
    for row in rows:  # ratio of the XML profile against the default transport, same QoS
        if 'large_data' in row['what'] and row['median_s']:
            qos_name = row['what'].split(',')[0]
            chunk = int(row['notes'].split('chunk ')[1].split(' ')[0].replace(',', ''))
            base = results.get((qos_name, False, chunk))
            if base:
                row['baseline'] = f'{qos_name}, default Fast DDS'
                row['ratio'] = base / row['median_s']
    if sys.platform.startswith('linux'):
        rows += latched_rows([100_000] if quick else [1_000_000, 5_000_000], 3 if quick else 5,
                             base_domain + 20)
    return rows


def main(argv):
    """Entry point of the roles: ``sub|pub|latched POINTS CHUNK QOS [SECONDS or REPEAT]``."""
    role, n, chunk, qos_name = argv[0], int(argv[1]), int(argv[2]), argv[3]
    seconds = float(argv[4]) if len(argv) > 4 else 30.0
    if role == 'sub':
        subscriber(n, qos_name, seconds)
    elif role == 'pub':
        publisher(n, chunk, qos_name, seconds)
    elif role == 'latched':
        latched(n, int(seconds))
    else:
        raise SystemExit(f'unknown role {role!r}')


if __name__ == '__main__':
    main(sys.argv[1:])
