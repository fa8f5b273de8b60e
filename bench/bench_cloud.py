# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Cloud packing and level-of-detail benchmarks.

Packing (x, y, z, rgb, confidence float32 + view uint16, 24 B/point) is compared in the same
run with

* sensor_msgs_py's ``create_cloud`` (the real package when importable, else a re-implementation
  of its Jazzy algorithm: ``np.array(list(map(tuple, points)), dtype=dtype_from_fields(...))``,
  ``memoryview(...).cast('B')`` into an ``array.array('B')``, then ``cloud.data = array``, which
  the generated setter copies once more). Its documented input is a list of per-point tuples;
  building that list from numpy is *not* timed (in the reference's favour). Its fast path,
  a structured ndarray the caller fills field by field, is reported too;
* a plain copy of the same number of bytes into an existing buffer (the floor of packing into a
  reused buffer, the node's path), into a new numpy buffer and into new Python ``bytes`` (the
  floors of packing into a new buffer, page faults included).

Ours is timed with the packer in use (C when built) and with the numpy fallback, into a new and
into a reused buffer; ``msg.data`` assignment is timed for each kind of value; and the new-buffer
case is repeated in a child process started with ``GLIBC_TUNABLES=glibc.malloc.hugetlb=1``.
"""

import array
import json
import os
from pathlib import Path
import statistics
import subprocess
import sys
import time

import numpy as np

from aetherscan_ros import cloud as C
from aetherscan_ros.cloud import packing as CP

try:  # the real reference when a ROS install provides it
    from sensor_msgs_py import point_cloud2 as _SMPY
except ImportError:
    _SMPY = None

REPO = Path(__file__).resolve().parents[1]
_NP_OF = {C.INT8: 'i1', C.UINT8: 'u1', C.INT16: 'i2', C.UINT16: 'u2', C.INT32: 'i4',
          C.UINT32: 'u4', C.FLOAT32: 'f4', C.FLOAT64: 'f8'}


def _timeit(fn, repeat):
    """Return the median wall time of ``repeat`` calls (after one warm-up when repeat > 1)."""
    if repeat > 1:
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _reference_dtype(fields, point_step=None):
    """Mirror of sensor_msgs_py.point_cloud2.dtype_from_fields (names, formats, offsets)."""
    names, formats, offsets = [], [], []
    for i, f in enumerate(fields):
        base = np.dtype(_NP_OF[f.datatype])
        name = f.name or f'unnamed_field_{i}'
        assert f.count > 0, "Can't process fields with count = 0."
        for k in range(f.count):
            names.append(name if f.count == 1 else f'{name}_{k}')
            offsets.append(f.offset + k * base.itemsize)
            formats.append(base.str)
    spec = {'names': names, 'formats': formats, 'offsets': offsets}
    if point_step is not None:
        spec['itemsize'] = point_step
    return np.dtype(spec)


def _reference_create_cloud(header, fields, points, point_step=None):
    """Re-implementation of the Jazzy sensor_msgs_py ``create_cloud`` algorithm."""
    from sensor_msgs.msg import PointCloud2
    dtype = _reference_dtype(fields, point_step)
    if isinstance(points, np.ndarray):
        assert points.dtype == dtype
    else:
        points = np.array(list(map(tuple, points)), dtype=dtype)
    buf = array.array('B')
    buf.frombytes(memoryview(points).cast('B'))
    cloud = PointCloud2(header=header, height=1, width=points.shape[0], is_dense=False,
                        is_bigendian=sys.byteorder != 'little', fields=fields,
                        point_step=points.dtype.itemsize,
                        row_step=points.dtype.itemsize * points.shape[0])
    cloud.data = buf
    return cloud


def _time_reference(create_cloud, header, fields, arrays, repeat, expected):
    """Time create_cloud on its documented input, a list of per-point tuples (built untimed)."""
    points, rgb_f, conf, view = arrays
    columns = (points[:, 0], points[:, 1], points[:, 2], rgb_f, conf, view)
    tuples = list(zip(*(a.tolist() for a in columns)))
    seconds = _timeit(lambda: create_cloud(header, fields, tuples, C.POINT_STEP), repeat)
    msg = create_cloud(header, fields, tuples, C.POINT_STEP)
    # Compare the field bytes only: numpy leaves the padding of a structured array built from
    # tuples uninitialised, so its bytes 22-23 of a point are whatever the allocator returned.
    used = C.POINT_STEP - 2
    ref = np.frombuffer(bytes(msg.data), np.uint8).reshape(-1, C.POINT_STEP)[:, :used]
    ours = np.frombuffer(expected, np.uint8).reshape(-1, C.POINT_STEP)[:, :used]
    if not np.array_equal(ref, ours):
        raise AssertionError('the reference create_cloud packed different bytes than ours')
    return seconds


def _create_cloud():
    if _SMPY is not None:
        return _SMPY.create_cloud, 'sensor_msgs_py.create_cloud'
    return _reference_create_cloud, 'create_cloud (re-impl.)'


def make_cloud(n, seed=0, views=32):
    """Return a seeded random cloud ``(points, colors, confidence, view)`` of ``views`` views."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(-5, 5, (n, 3)).astype(np.float32)
    colors = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    conf = rng.uniform(1, 10, n).astype(np.float32)
    view = np.repeat(np.arange(views, dtype=np.uint16), -(-n // views))[:n]
    return points, colors, conf, view


def _row(what, n, seconds, baseline='', ratio=None, notes='', unit_bytes=C.POINT_STEP):
    mpts = n / seconds / 1e6 if seconds else 0.0
    return {'group': 'cloud', 'what': what, 'size': f'{n:,} pts', 'median_s': seconds,
            'throughput': f'{mpts:.1f} Mpt/s, {mpts * unit_bytes:.0f} MB/s',
            'baseline': baseline, 'ratio': ratio, 'notes': notes}


def _packer_name():
    return 'C' if CP._CPACK is not None else 'numpy'


def _floors(n, repeat):
    """Return memcpy times of ``n`` points' bytes: into an existing, a new numpy, new bytes."""
    src = np.ones(n * C.POINT_STEP, np.uint8)
    dst = np.empty_like(src)
    return {'warm': _timeit(lambda: np.copyto(dst, src), repeat),
            'fresh': _timeit(lambda: np.copyto(np.empty_like(src), src), repeat),
            'bytes': _timeit(lambda: src.tobytes(), repeat)}


def _time_structured(create_cloud, header, fields, points, rgb_f, conf, view, repeat):
    """Time create_cloud's fast path: the caller fills a structured ndarray field by field."""
    n = len(points)
    dtype = _reference_dtype(C.CLOUD_FIELDS, C.POINT_STEP)

    def structured_path():
        arr = np.zeros(n, dtype)
        arr['x'], arr['y'], arr['z'] = points[:, 0], points[:, 1], points[:, 2]
        arr['rgb'], arr['confidence'], arr['view'] = rgb_f, conf, view
        return create_cloud(header, fields, arr, C.POINT_STEP)
    return _timeit(structured_path, repeat)


def _ros_fields():
    from sensor_msgs.msg import PointField
    return [PointField(name=s.name, offset=s.offset, datatype=s.datatype, count=s.count)
            for s in C.CLOUD_FIELDS]


def bench_pack(n, repeat, ref_repeat):
    """Return rows for packing ``n`` points: ours (C and numpy packers), references, floors."""
    from std_msgs.msg import Header

    from aetherscan_ros.ros.pointcloud2 import MessageBuffer, to_pointcloud2

    points, colors, conf, view = make_cloud(n)
    cloud = C.as_cloud(points, colors, conf, view)
    packed = bytes(C.pack_cloud(points, colors, conf, view)[0])
    # Check the packed bytes once (a benchmark that measures a wrong result is worthless).
    out = C.unpack_cloud(packed, C.cloud_fields(), C.POINT_STEP)
    assert np.array_equal(out.points, points) and np.array_equal(out.colors, colors)

    ours = _packer_name()
    reused = C.alloc_buffer(n * C.POINT_STEP)
    t_fresh = _timeit(lambda: C.pack_cloud(points, colors, conf, view), repeat)
    t_reused = _timeit(lambda: C.pack_cloud(points, colors, conf, view, out=reused), repeat)
    assert bytes(reused) == packed
    saved = CP._CPACK
    try:
        CP._CPACK = None  # the numpy packer, the fallback where the extension is not built
        t_numpy = _timeit(lambda: C.pack_cloud(points, colors, conf, view), repeat)
        t_numpy_reused = _timeit(lambda: C.pack_into(reused, cloud, False), repeat)
        assert bytes(reused) == packed
    finally:
        CP._CPACK = saved

    header = Header(frame_id='world')
    pool = MessageBuffer()
    t_msg = _timeit(lambda: to_pointcloud2(header, points, colors, conf, view), repeat)
    t_msg_pool = _timeit(lambda: to_pointcloud2(header, points, colors, conf, view,
                                                out=pool.take()), repeat)
    floors = _floors(n, repeat)

    fields = _ros_fields()
    create_cloud, ref_name = _create_cloud()
    rgb_f = C.pack_rgb(colors).view(np.float32)
    t_ref = _time_reference(create_cloud, header, fields, (points, rgb_f, conf, view),
                            ref_repeat, packed)
    t_struct = _time_structured(create_cloud, header, fields, points, rgb_f, conf, view, repeat)

    tuples, struct = ref_name + ' [tuples]', 'create_cloud [structured ndarray]'
    warm, fresh = 'memcpy into an existing buffer', 'memcpy into a new numpy buffer'
    speed, slow = 'speed-up (reference time / ours)', 'slow-down vs the floor (ours / memcpy)'
    rows = []
    for what, t, floor, key, note in (
            (f'pack_cloud, reused buffer [{ours}]', t_reused, warm, 'warm',
             "the node's path (MessageBuffer)"),
            (f'pack_cloud, new buffer [{ours}]', t_fresh, fresh, 'fresh', 'one-off callers')):
        rows.append(_row(what, n, t, tuples, t_ref / t, speed))
        rows.append(_row(what, n, t, struct, t_struct / t, speed + ', its fast path'))
        rows.append(_row(what, n, t, floor, t / floors[key], f'{slow}; {note}'))
    rows.append(_row(f'pack_cloud, new buffer [{ours}]', n, t_fresh, 'copy into new bytes',
                     t_fresh / floors['bytes'], 'vs a copy into a new Python-owned buffer'))
    rows.append(_row('pack_cloud, new buffer [numpy fallback]', n, t_numpy, struct,
                     t_struct / t_numpy, speed))
    rows.append(_row('pack_cloud, new buffer [numpy fallback]', n, t_numpy, fresh,
                     t_numpy / floors['fresh'], slow))
    rows.append(_row('pack_cloud, reused buffer [numpy fallback]', n, t_numpy_reused, warm,
                     t_numpy_reused / floors['warm'], slow))
    rows.append(_row(f'to_pointcloud2, MessageBuffer [{ours}]', n, t_msg_pool, struct,
                     t_struct / t_msg_pool, 'message + is_dense; ' + speed))
    rows.append(_row(f'to_pointcloud2, new buffer [{ours}]', n, t_msg, struct,
                     t_struct / t_msg, 'message + is_dense; ' + speed))
    rows.append(_row(tuples, n, t_ref, notes=f'{ref_repeat} run(s); list of tuples built '
                     'untimed'))
    rows.append(_row(struct, n, t_struct, notes='the caller fills a structured array'))
    rows.append(_row(warm, n, floors['warm'], notes='floor'))
    rows.append(_row(fresh, n, floors['fresh'], notes='floor incl. allocation (numpy asks '
                     'for transparent huge pages)'))
    rows.append(_row('copy into new bytes (tobytes)', n, floors['bytes'],
                     notes='allocation with 4 KiB page faults above ~32 MB'))
    return rows


def bench_data_assignment(n, repeat):
    """Return rows for ``msg.data = ...`` with each kind of value rclpy accepts."""
    from sensor_msgs.msg import PointCloud2

    from aetherscan_ros.ros.pointcloud2 import new_pointcloud2

    data = C.pack_cloud(*make_cloud(n))[0]
    as_bytes, as_view, as_array = bytes(data), memoryview(data), np.frombuffer(data, np.uint8)

    def assign(msg, value):
        msg.data = value
        return msg

    slow_repeat = 1 if n > 100_000 else max(1, repeat // 3)
    cases = [
        ('array.array, PointCloud2(check_fields=True)', lambda: assign(new_pointcloud2(), data),
         repeat, 'kept as is (what ros.pointcloud2 does)'),
        ('array.array, default PointCloud2()', lambda: assign(PointCloud2(), data), repeat,
         'the setter copies it'),
        ('bytes', lambda: assign(PointCloud2(), as_bytes), repeat, 'array.array(bytes): a copy'),
        ('memoryview', lambda: assign(PointCloud2(), as_view), slow_repeat,
         'iterated element by element'),
        ('numpy uint8 ndarray', lambda: assign(PointCloud2(), as_array), slow_repeat,
         'iterated element by element'),
    ]
    times = {what: _timeit(fn, r) for what, fn, r, _ in cases}
    best = times[cases[0][0]]
    rows = []
    for what, fn, _, note in cases:
        assert bytes(fn().data) == as_bytes
        rows.append(_row(f'msg.data = {what}', n, times[what], 'array.array, check_fields',
                         times[what] / best if best else None, note + '; ratio = time / best'))
    return rows


def _child_fresh_pack(n, repeat):
    """In this process: time pack_cloud, its reference and the floors (new buffers); JSON."""
    from std_msgs.msg import Header

    points, colors, conf, view = make_cloud(n)
    create_cloud, _ = _create_cloud()
    result = {'pack': _timeit(lambda: C.pack_cloud(points, colors, conf, view), repeat),
              'packer': _packer_name(),
              'struct': _time_structured(create_cloud, Header(frame_id='world'), _ros_fields(),
                                         points, C.pack_rgb(colors).view(np.float32), conf,
                                         view, repeat)}
    result.update(_floors(n, repeat))
    print(json.dumps(result))


def bench_fresh_with_hugepages(n, repeat):
    """Run the new-buffer packing in a child whose glibc malloc uses transparent huge pages."""
    from aetherscan_ros.core.process_env import with_hugepage_malloc

    env = dict(os.environ)
    env.update(with_hugepage_malloc(env))
    env['PYTHONPATH'] = str(REPO) + os.pathsep + env.get('PYTHONPATH', '')
    out = subprocess.run([sys.executable, '-m', 'bench.bench_cloud', 'fresh', str(n),
                          str(repeat)], env=env, cwd=REPO, capture_output=True, text=True,
                         timeout=600, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    what = f'pack_cloud, new buffer [{r["packer"]}], {env["GLIBC_TUNABLES"]}'
    note = 'child process, as the launch file starts the node (hugepage_malloc)'
    return [_row(what, n, r['pack'], 'create_cloud [structured ndarray]', r['struct'] / r['pack'],
                 f'speed-up; same child: reference {r["struct"] * 1e3:.1f} ms'),
            _row(what, n, r['pack'], 'memcpy into a new numpy buffer', r['pack'] / r['fresh'],
                 f'slow-down; {note}'),
            _row(what, n, r['pack'], 'copy into new bytes', r['pack'] / r['bytes'],
                 f'same child: new bytes {r["bytes"] * 1e3:.1f} ms')]


def bench_unpack_and_lod(n, repeat):
    """Return rows for reading clouds back and for voxel downsampling / point budget."""
    points, colors, conf, view = make_cloud(n)
    data, fields, step = C.pack_cloud(points, colors, conf, view)
    rows = []
    t_unpack = _timeit(lambda: C.unpack_cloud(data, fields, step), repeat)
    rows.append(_row('unpack_cloud (zero-copy views)', n, t_unpack,
                     notes='colors decoded into a new array'))
    # Voxel sized for ~4 points per voxel on this uniform cube.
    voxel = 10.0 / (n / 4) ** (1 / 3)
    t_vox = _timeit(lambda: C.voxel_downsample(points, colors, conf, view, voxel=voxel),
                    max(1, repeat // 2))
    kept = len(C.voxel_downsample(points, colors, conf, view, voxel=voxel))
    rows.append(_row('voxel_downsample', n, t_vox,
                     notes=f'voxel {voxel:.3f}: {kept:,} points kept', unit_bytes=15))
    t_budget = _timeit(lambda: C.point_budget(points, colors, conf, view, max_points=n // 10),
                       1)
    rows.append(_row(f'point_budget to {n // 10:,}', n, t_budget, unit_bytes=15,
                     notes='iterated voxel search'))
    t_filter = _timeit(lambda: C.confidence_filter(conf, 30.0, view=view), repeat)
    rows.append(_row('confidence_filter per view (30 %)', n, t_filter, unit_bytes=6))
    return rows


def run(quick: bool):
    """Run the cloud benchmarks; ``quick`` uses 100k points only."""
    sizes = [100_000] if quick else [100_000, 1_000_000, 5_000_000]
    rows = []
    for n in sizes:
        repeat = 3 if quick else (7 if n <= 1_000_000 else 3)
        ref_repeat = 3 if n <= 100_000 else 1
        rows += bench_pack(n, repeat, ref_repeat)
    for n in ([100_000] if quick else [100_000, 1_000_000]):
        rows += bench_data_assignment(n, 3 if quick else 7)
    if sys.platform.startswith('linux'):
        for n in ([100_000] if quick else [1_000_000, 5_000_000]):
            rows += bench_fresh_with_hugepages(n, 3)
    for n in ([100_000] if quick else [1_000_000, 5_000_000]):
        rows += bench_unpack_and_lod(n, 3 if quick else 5)
    return rows


if __name__ == '__main__':  # the child of bench_fresh_with_hugepages
    if sys.argv[1:2] == ['fresh']:
        _child_fresh_pack(int(sys.argv[2]), int(sys.argv[3]))
