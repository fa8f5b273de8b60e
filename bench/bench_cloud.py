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
* a plain copy of the same number of bytes into a fresh numpy buffer (the floor) and into a
  fresh Python ``bytes`` (what any message buffer costs, page faults included).
"""

import array
import statistics
import sys
import time

import numpy as np

from aetherscan_ros import cloud as C

try:  # the real reference when a ROS install provides it
    from sensor_msgs_py import point_cloud2 as _SMPY
except ImportError:
    _SMPY = None

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


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    points = rng.uniform(-5, 5, (n, 3)).astype(np.float32)
    colors = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    conf = rng.uniform(1, 10, n).astype(np.float32)
    view = np.repeat(np.arange(32, dtype=np.uint16), -(-n // 32))[:n]
    return points, colors, conf, view


def _row(what, n, seconds, baseline='', ratio=None, notes='', unit_bytes=C.POINT_STEP):
    mpts = n / seconds / 1e6 if seconds else 0.0
    return {'group': 'cloud', 'what': what, 'size': f'{n:,} pts', 'median_s': seconds,
            'throughput': f'{mpts:.1f} Mpt/s, {mpts * unit_bytes:.0f} MB/s',
            'baseline': baseline, 'ratio': ratio, 'notes': notes}


def bench_pack(n, repeat, ref_repeat):
    """Return rows for packing ``n`` points: ours, references and floors."""
    from sensor_msgs.msg import PointField
    from std_msgs.msg import Header

    from aetherscan_ros.msg_cloud import to_pointcloud2

    points, colors, conf, view = _data(n)
    nbytes = n * C.POINT_STEP
    rows = []
    t_pack = _timeit(lambda: C.pack_cloud(points, colors, conf, view), repeat)
    # Check the packed bytes once (a benchmark that measures a wrong result is worthless).
    out = C.unpack_cloud(*C.pack_cloud(points, colors, conf, view))
    assert np.array_equal(out.points, points) and np.array_equal(out.colors, colors)

    header = Header(frame_id='world')
    t_msg = _timeit(lambda: to_pointcloud2(header, points, colors, conf, view), repeat)
    t_msg_nocheck = _timeit(lambda: to_pointcloud2(header, points, colors, conf, view,
                                                   is_dense=False), repeat)

    src = np.ones(nbytes, np.uint8)
    t_memcpy = _timeit(lambda: np.copyto(np.empty_like(src), src), repeat)
    t_bytes = _timeit(lambda: src.tobytes(), repeat)

    fields = [PointField(name=s.name, offset=s.offset, datatype=s.datatype, count=s.count)
              for s in C.CLOUD_FIELDS]
    create_cloud, ref_name = _create_cloud()
    rgb_f = C.pack_rgb(colors).view(np.float32)
    t_ref = _time_reference(create_cloud, header, fields, (points, rgb_f, conf, view),
                            ref_repeat, bytes(C.pack_cloud(points, colors, conf, view)[0]))

    dtype = _reference_dtype(C.CLOUD_FIELDS, C.POINT_STEP)

    def structured_path():
        arr = np.zeros(n, dtype)
        arr['x'], arr['y'], arr['z'] = points[:, 0], points[:, 1], points[:, 2]
        arr['rgb'], arr['confidence'], arr['view'] = rgb_f, conf, view
        return create_cloud(header, fields, arr, C.POINT_STEP)
    t_struct = _timeit(structured_path, repeat)

    rows.append(_row('pack_cloud (ours)', n, t_pack, ref_name + ' [tuples]', t_ref / t_pack,
                     'ratio = reference time / ours (speed-up)'))
    rows.append(_row('pack_cloud (ours)', n, t_pack, 'create_cloud [structured ndarray]',
                     t_struct / t_pack, 'speed-up vs its fast path (caller fills the array)'))
    rows.append(_row('pack_cloud (ours)', n, t_pack, 'memcpy into numpy buffer',
                     t_pack / t_memcpy, 'ratio = ours / memcpy (slow-down vs the floor)'))
    rows.append(_row('pack_cloud (ours)', n, t_pack, 'copy into new bytes (tobytes)',
                     t_pack / t_bytes, 'slow-down vs a copy into a Python-owned buffer'))
    rows.append(_row('to_pointcloud2 (ours, message)', n, t_msg, ref_name + ' [tuples]',
                     t_ref / t_msg, 'pack + PointCloud2 + is_dense scan; speed-up'))
    rows.append(_row('to_pointcloud2 is_dense=False', n, t_msg_nocheck, ref_name + ' [tuples]',
                     t_ref / t_msg_nocheck, 'no NaN scan; speed-up'))
    rows.append(_row(ref_name + ' [tuples]', n, t_ref, notes=f'{ref_repeat} run(s)'))
    rows.append(_row('create_cloud [structured ndarray]', n, t_struct))
    rows.append(_row('memcpy into numpy buffer', n, t_memcpy, notes='floor'))
    rows.append(_row('copy into new bytes (tobytes)', n, t_bytes))
    return rows


def bench_unpack_and_lod(n, repeat):
    """Return rows for reading clouds back and for voxel downsampling / point budget."""
    points, colors, conf, view = _data(n)
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
    for n in ([100_000] if quick else [1_000_000, 5_000_000]):
        rows += bench_unpack_and_lod(n, 3 if quick else 5)
    return rows
