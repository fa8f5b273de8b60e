# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Packing clouds into PointCloud2 ``data`` bytes and reading them back (numpy only, no rclpy).

Two packers write the same bytes (see :mod:`aetherscan_ros.cloud.layout`): the fused C kernel
``aetherscan_ros.cloud._cloudpack`` (one pass, GIL released, counts NaN/inf) when it is built
and allowed (``AETHERSCAN_PACKER``), else strided numpy copies. Large clouds are split over a
few threads. :data:`PACKER` says which one is in use.
"""

import array
from concurrent.futures import ThreadPoolExecutor
import logging
import os
import sys
import threading
from typing import Dict, Optional, Tuple

import numpy as np

from aetherscan_ros.cloud.arrays import as_cloud, CloudArrays
from aetherscan_ros.cloud.layout import (CHUNK_FIELD_PREFIX, ChunkInfo, cloud_fields, FieldSpec,
                                         FLOAT32, FLOAT64, INT16, INT32, INT8, POINT_STEP,
                                         UINT16, UINT32, UINT8)

LOG = logging.getLogger(__name__)

# PointField datatype -> numpy dtype (the wire is little endian unless is_bigendian).
_NUMPY_TYPES = {
    INT8: np.dtype('i1'), UINT8: np.dtype('u1'), INT16: np.dtype('<i2'),
    UINT16: np.dtype('<u2'), INT32: np.dtype('<i4'), UINT32: np.dtype('<u4'),
    FLOAT32: np.dtype('<f4'), FLOAT64: np.dtype('<f8'),
}

# Points packed per inner block: the destination block stays in L2 while every field is written.
_PACK_BLOCK = 16384
# Large clouds are packed by several threads (numpy releases the GIL in its copy loops); below
# this many points the thread hand-off costs more than it saves.
_PARALLEL_MIN_POINTS = 262144
_PACK_THREADS = max(1, min(4, os.cpu_count() or 1))
_pool_lock = threading.Lock()
_pool: Optional[ThreadPoolExecutor] = None


def _pack_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(_PACK_THREADS, thread_name_prefix='aetherscan_pack')
        return _pool


def alloc_buffer(nbytes: int) -> array.array:
    """Return a zeroed ``array.array('B')`` of ``nbytes`` (what rclpy stores in ``msg.data``)."""
    return array.array('B', b'\0') * nbytes


def resize_buffer(buf: array.array, nbytes: int) -> array.array:
    """
    Resize an ``array.array('B')`` in place to ``nbytes`` and return it.

    Shrinking keeps the memory (no page faults when the buffer is filled again); growing
    appends zeros. Contents up to the new size are kept; what the caller packs overwrites them.
    """
    if not isinstance(buf, array.array) or buf.typecode != 'B':
        raise TypeError(f"out must be an array.array('B'), got {type(buf).__name__}")
    have = len(buf)
    if have > nbytes:
        del buf[nbytes:]
    elif have < nbytes:
        buf.frombytes(bytes(nbytes - have))
    return buf


def _load_packer():
    """Return ``(module or None, name)``: the C packer when built and allowed, else numpy."""
    choice = os.environ.get('AETHERSCAN_PACKER', 'auto').strip().lower() or 'auto'
    if choice not in ('auto', 'c', 'numpy'):
        LOG.warning('AETHERSCAN_PACKER=%r is not auto, c or numpy: using auto', choice)
        choice = 'auto'
    if choice == 'numpy':
        return None, 'numpy (AETHERSCAN_PACKER=numpy)'
    if sys.byteorder != 'little':
        return None, 'numpy (big-endian host: the C packer writes native order)'
    try:
        from aetherscan_ros.cloud import _cloudpack
    except ImportError as exc:
        if choice == 'c':
            raise ImportError('AETHERSCAN_PACKER=c but the C packer '
                              f'aetherscan_ros.cloud._cloudpack is not built ({exc}); rebuild '
                              'the package with a C compiler and Python headers') from exc
        return None, 'numpy (C packer aetherscan_ros.cloud._cloudpack not built)'
    return _cloudpack, 'c'


# Which packer fills the buffers: 'c' (the fused one-pass kernel in _cloudpack.c, GIL released)
# or 'numpy (<why>)' (strided numpy copies, same bytes). `aetherscan doctor` prints it.
_CPACK, PACKER = _load_packer()


def pack_into(out, cloud: CloudArrays, count_nonfinite: bool = True) -> Optional[int]:
    """
    Pack ``cloud`` into the writable buffer ``out`` of exactly ``len(cloud) * 24`` bytes.

    Every byte of ``out`` is written (padding zero). Uses the C packer when present (one pass,
    GIL released) else numpy; clouds of ``_PARALLEL_MIN_POINTS`` or more are split over a few
    threads that write disjoint rows.

    Returns
    -------
    int or None
        How many points have a NaN/inf coordinate (``None`` when ``count_nonfinite`` is false
        and the numpy packer, which would need an extra pass, is in use).

    """
    n = len(cloud)
    mem = memoryview(out).cast('B')
    if mem.readonly or mem.nbytes != n * POINT_STEP:
        raise ValueError(f'output buffer must be writable and hold {n} x {POINT_STEP} = '
                         f'{n * POINT_STEP} bytes, got {mem.nbytes}'
                         f'{" (read-only)" if mem.readonly else ""}')
    if n == 0:
        return 0
    fill = _fill_c if _CPACK is not None else _fill_numpy
    if n < _PARALLEL_MIN_POINTS or _PACK_THREADS == 1:
        counts = [fill(mem, cloud)]
    else:
        # Disjoint row ranges of the same buffer: each thread writes its own slice.
        bounds = np.linspace(0, n, _PACK_THREADS + 1).astype(int)
        parts = [_pack_pool().submit(fill, mem[a * POINT_STEP:b * POINT_STEP],
                                     cloud.select(slice(a, b)))
                 for a, b in zip(bounds[:-1], bounds[1:])]
        counts = [part.result() for part in parts]
    if _CPACK is not None:
        return int(sum(counts))
    if not count_nonfinite:
        return None
    return int(n - np.count_nonzero(np.isfinite(cloud.points).all(axis=1)))


def pack_cloud(points, colors, confidence=None, view=None,
               chunk_info: Optional[ChunkInfo] = None, out: Optional[array.array] = None
               ) -> Tuple[array.array, Tuple[FieldSpec, ...], int]:
    """
    Pack a cloud into PointCloud2 ``data`` bytes; no per-point Python, one write pass.

    Parameters
    ----------
    points : array-like
        ``[N, 3]`` float (float32 avoids a cast).
    colors : array-like
        ``[N, 3]`` uint8 RGB.
    confidence : array-like or float, optional
        ``[N]`` float32 or a scalar (default 1.0).
    view : array-like or int, optional
        ``[N]`` uint16 or a scalar view index (default 0).
    chunk_info : ChunkInfo, optional
        Appends the chunk marker field.
    out : array.array('B'), optional
        A buffer to reuse: resized in place (see :func:`resize_buffer`) and returned as
        ``data``. Reusing a buffer avoids the page faults a fresh one costs (above ~32 MB glibc
        maps every allocation anew); nothing else may still use its old content.

    Returns
    -------
    (data, fields, point_step)
        ``data`` is an ``array.array('B')`` of ``N * 24`` bytes, filled in place (rclpy can
        take it as ``msg.data`` without another copy), ``fields`` the :class:`FieldSpec` tuple,
        ``point_step`` 24.

    """
    data, _ = pack_to_buffer(as_cloud(points, colors, confidence, view), out)
    return data, cloud_fields(chunk_info), POINT_STEP


def pack_to_buffer(cloud: CloudArrays, out: Optional[array.array] = None,
                   count_nonfinite: bool = False) -> Tuple[array.array, Optional[int]]:
    """
    Pack ``cloud`` into ``out`` (resized in place) or a new ``array.array('B')``.

    Returns ``(data, nonfinite)``: the filled buffer and the count of :func:`pack_into`.
    """
    nbytes = len(cloud) * POINT_STEP
    data = alloc_buffer(nbytes) if out is None else resize_buffer(out, nbytes)
    return data, pack_into(data, cloud, count_nonfinite)


def _scalar_or_array(values: np.ndarray, dtype):
    """Return a broadcast (stride 0) column as a Python scalar, else a contiguous array."""
    if values.strides == (0,):
        return values[0].item()
    return np.ascontiguousarray(values, dtype)


def _fill_c(out: memoryview, cloud: CloudArrays) -> int:
    """Pack with the C kernel; return the number of points with a non-finite coordinate."""
    points, colors, confidence, view = cloud
    return _CPACK.pack(out, np.ascontiguousarray(points, np.float32),
                       np.ascontiguousarray(colors, np.uint8),
                       _scalar_or_array(confidence, np.float32),
                       _scalar_or_array(view, np.uint16))


_XYZ_DTYPE = np.dtype({'names': ['xyz'], 'formats': ['V12'], 'offsets': [0],
                       'itemsize': POINT_STEP})


def _fill_numpy(mem: memoryview, cloud: CloudArrays) -> int:
    """
    Write ``cloud`` into ``mem`` (``N * 24`` bytes) with numpy, block by block; return 0.

    Every copy is a 1-D strided numpy loop (no per-point Python); blocks of ``_PACK_BLOCK``
    points keep the destination in cache while its fields are written. ``view`` is written as
    a uint32, which also zeroes the padding bytes. The views are explicitly little endian, so
    numpy byte-swaps on big-endian hosts. Non-finite points are not counted here.
    """
    n = len(cloud)
    out = np.frombuffer(mem, np.uint8).reshape(n, POINT_STEP)
    f32 = out.view('<f4')  # [N, 6]
    u32 = out.view('<u4')  # [N, 6]
    points, colors, confidence, view = cloud
    xyz_src = xyz_dst = None
    if points.flags.c_contiguous and points.dtype == np.dtype('<f4'):
        xyz_src = points.view('V12').reshape(n)  # one 12-byte element per point
        xyz_dst = out.reshape(-1).view(_XYZ_DTYPE)['xyz']
    for start in range(0, n, _PACK_BLOCK):
        stop = start + _PACK_BLOCK
        if xyz_src is not None:
            xyz_dst[start:stop] = xyz_src[start:stop]
        else:
            f32[start:stop, 0:3] = points[start:stop]
        # rgb as bytes B, G, R, 0: uint32 0x00RRGGBB little endian.
        block, rgb = out[start:stop], colors[start:stop]
        block[:, 12] = rgb[:, 2]
        block[:, 13] = rgb[:, 1]
        block[:, 14] = rgb[:, 0]
        block[:, 15] = 0
        f32[start:stop, 4] = confidence[start:stop]
        u32[start:stop, 5] = view[start:stop]
    return 0


def pack_rgb(colors: np.ndarray) -> np.ndarray:
    """Return ``[N]`` uint32 ``0x00RRGGBB`` for ``[N, 3]`` uint8 RGB (RViz's ``rgb`` field)."""
    c = np.asarray(colors, np.uint8)
    return (c[:, 0].astype(np.uint32) << 16) | (c[:, 1].astype(np.uint32) << 8) | c[:, 2]


def unpack_rgb(rgb: np.ndarray) -> np.ndarray:
    """Return ``[N, 3]`` uint8 RGB from ``[N]`` packed ``0x00RRGGBB`` (uint32 or its float32)."""
    rgb = np.asarray(rgb)
    if rgb.dtype.kind == 'f':
        rgb = rgb.view(np.uint32)
    rgb = rgb.astype(np.uint32, copy=False)
    return np.stack([(rgb >> 16) & 0xFF, (rgb >> 8) & 0xFF, rgb & 0xFF], axis=1).astype(np.uint8)


def _field_map(fields) -> Dict[str, Tuple[int, int, int]]:
    return {f.name: (int(f.offset), int(f.datatype), int(f.count)) for f in fields}


def unpack_cloud(data, fields, point_step: int, *, copy: bool = False,
                 skip_nans: bool = False, is_bigendian: bool = False,
                 source: str = 'cloud') -> CloudArrays:
    """
    Read ``data`` (bytes-like) back into arrays; the inverse of :func:`pack_cloud`.

    Works on any PointCloud2 layout with float ``x, y, z``; ``rgb``/``rgba`` (float32 or
    uint32), ``confidence`` and ``view`` are optional (defaults: black, 1.0, 0). With our own
    layout and ``copy=False`` points, colors, confidence and view are zero-copy strided views
    into ``data`` (read-only when ``data`` is; colors read the R, G, B bytes backwards).

    Raises
    ------
    ValueError
        naming ``source`` when the buffer size or the fields do not fit.

    """
    point_step = int(point_step)
    buf = np.frombuffer(data, np.uint8)
    if point_step <= 0:
        if buf.size:
            raise ValueError(f'{source}: point_step is {point_step} but data has {buf.size} bytes')
        return CloudArrays.empty()
    if buf.size % point_step:
        raise ValueError(f'{source}: data size {buf.size} is not a multiple of point_step '
                         f'{point_step}')
    n = buf.size // point_step
    fmap = _field_map(fields)
    for name in ('x', 'y', 'z'):
        if name not in fmap:
            raise ValueError(f'{source}: no {name!r} field (fields: {sorted(fmap)})')
    for name, (offset, datatype, count) in fmap.items():
        if datatype not in _NUMPY_TYPES:
            if name.startswith(CHUNK_FIELD_PREFIX):
                continue
            raise ValueError(f'{source}: field {name!r} has unknown datatype {datatype}')
        size = _NUMPY_TYPES[datatype].itemsize * max(count, 1)
        if offset < 0 or offset + size > point_step:
            raise ValueError(f'{source}: field {name!r} (offset {offset}, {size} bytes) does not '
                             f'fit in point_step {point_step}')
    if n == 0:
        return CloudArrays.empty()
    order = '>' if is_bigendian else '<'

    def column(name, default_dtype):
        offset, datatype, _ = fmap[name]
        dtype = _NUMPY_TYPES[datatype].newbyteorder(order)
        col = np.ndarray((n,), dtype, buffer=buf, offset=offset, strides=(point_step,))
        return col if dtype == dtype.newbyteorder('=') else col.astype(default_dtype)

    ox, tx, _ = fmap['x']
    if (tx == FLOAT32 and fmap['y'][:2] == (ox + 4, FLOAT32)
            and fmap['z'][:2] == (ox + 8, FLOAT32) and not is_bigendian):
        points = np.ndarray((n, 3), '<f4', buffer=buf, offset=ox, strides=(point_step, 4))
    else:
        points = np.stack([column(k, np.float32) for k in 'xyz'], axis=1).astype(np.float32)
    color_name = 'rgb' if 'rgb' in fmap else ('rgba' if 'rgba' in fmap else None)
    if color_name is None:
        colors = np.zeros((n, 3), np.uint8)
    elif not is_bigendian and fmap[color_name][1] in (FLOAT32, UINT32):
        # bytes B, G, R at off, off + 1, off + 2: a view read backwards from R (no copy)
        off = fmap[color_name][0]
        colors = np.ndarray((n, 3), np.uint8, buffer=buf, offset=off + 2,
                            strides=(point_step, -1))
    else:
        rgb = column(color_name, np.uint32)
        colors = unpack_rgb(rgb.view(np.uint32) if rgb.dtype.kind == 'f' else rgb)
    confidence = (column('confidence', np.float32).astype(np.float32, copy=False)
                  if 'confidence' in fmap else np.ones(n, np.float32))
    view = (column('view', np.uint16).astype(np.uint16, copy=False)
            if 'view' in fmap else np.zeros(n, np.uint16))
    cloud = CloudArrays(points, colors, confidence, view)
    if skip_nans:
        cloud = cloud.select(np.isfinite(points).all(axis=1))
    elif copy:
        cloud = cloud.copy()
    return cloud
