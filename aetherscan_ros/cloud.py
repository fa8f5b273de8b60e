# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Point-cloud packing, level of detail and chunked streaming (numpy only, no rclpy).

The wire layout of one point (``POINT_STEP`` = 24 bytes, little endian)::

    offset  0  x           float32
    offset  4  y           float32
    offset  8  z           float32
    offset 12  rgb         float32  (bytes B, G, R, 0: uint32 0x00RRGGBB, as RViz reads it)
    offset 16  confidence  float32
    offset 20  view        uint16
    offset 22  padding     2 bytes, zero (the chunk marker field points here, see below)

Chunk identification (see ``docs/point_streaming.md``): a chunk carries one extra
``PointField`` named ``aetherscan_chunk:recon=R:index=I:count=C:last=L`` (UINT8, count 1,
offset 22, inside the padding). ``count=0`` means the total is not known yet and the chunk with
``last=1`` closes the reconstruction. A real one-byte field keeps the message valid for RViz
(which ignores fields it does not use) and for ``sensor_msgs_py.read_points`` (whose
``dtype_from_fields`` rejects ``count == 0`` fields).

Everything works on plain numpy arrays: ``points`` ``[N, 3]`` float32, ``colors`` ``[N, 3]``
uint8 RGB, ``confidence`` ``[N]`` float32, ``view`` ``[N]`` uint16.
"""

import array
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
import logging
import math
import os
import re
import sys
import threading
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

LOG = logging.getLogger(__name__)

# sensor_msgs/PointField datatype constants (interface facts; no rclpy import here).
INT8, UINT8, INT16, UINT16, INT32, UINT32, FLOAT32, FLOAT64 = range(1, 9)
_NUMPY_TYPES = {
    INT8: np.dtype('i1'), UINT8: np.dtype('u1'), INT16: np.dtype('<i2'),
    UINT16: np.dtype('<u2'), INT32: np.dtype('<i4'), UINT32: np.dtype('<u4'),
    FLOAT32: np.dtype('<f4'), FLOAT64: np.dtype('<f8'),
}

POINT_STEP = 24
CHUNK_FIELD_PREFIX = 'aetherscan_chunk'
CHUNK_FIELD_OFFSET = 22
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


@dataclass(frozen=True)
class FieldSpec:
    """One ``sensor_msgs/PointField`` as plain data (``datatype`` is a PointField constant)."""

    name: str
    offset: int
    datatype: int
    count: int = 1


CLOUD_FIELDS: Tuple[FieldSpec, ...] = (
    FieldSpec('x', 0, FLOAT32),
    FieldSpec('y', 4, FLOAT32),
    FieldSpec('z', 8, FLOAT32),
    FieldSpec('rgb', 12, FLOAT32),
    FieldSpec('confidence', 16, FLOAT32),
    FieldSpec('view', 20, UINT16),
)

# The packed layout as a numpy structured dtype (little endian, 24 bytes).
CLOUD_DTYPE = np.dtype({
    'names': ['xyz', 'rgb', 'confidence', 'view'],
    'formats': [('<f4', (3,)), '<u4', '<f4', '<u2'],
    'offsets': [0, 12, 16, 20],
    'itemsize': POINT_STEP,
})


class CloudArrays:
    """
    A colored cloud as four aligned arrays; unpacks like a tuple ``p, c, f, v = cloud``.

    Attributes
    ----------
    points : np.ndarray
        ``[N, 3]`` float32 (may be a strided, read-only view into a message buffer).
    colors : np.ndarray
        ``[N, 3]`` uint8 RGB.
    confidence : np.ndarray
        ``[N]`` float32.
    view : np.ndarray
        ``[N]`` uint16, the view each point came from.

    """

    __slots__ = ('points', 'colors', 'confidence', 'view')

    def __init__(self, points, colors, confidence, view):
        self.points = points
        self.colors = colors
        self.confidence = confidence
        self.view = view

    def __iter__(self):
        """Yield ``points, colors, confidence, view``."""
        return iter((self.points, self.colors, self.confidence, self.view))

    def __len__(self):
        """Return the number of points."""
        return int(self.points.shape[0])

    def __repr__(self):
        """Return a short description (number of points)."""
        return f'CloudArrays({len(self)} points)'

    def select(self, index) -> 'CloudArrays':
        """Return the points picked by a boolean mask, an index array or a slice."""
        return CloudArrays(self.points[index], self.colors[index], self.confidence[index],
                           self.view[index])

    def copy(self) -> 'CloudArrays':
        """Return contiguous, writable copies of the four arrays."""
        return CloudArrays(np.ascontiguousarray(self.points).copy(),
                           np.ascontiguousarray(self.colors).copy(),
                           np.ascontiguousarray(self.confidence).copy(),
                           np.ascontiguousarray(self.view).copy())

    @staticmethod
    def empty() -> 'CloudArrays':
        """Return a cloud with zero points."""
        return CloudArrays(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8),
                           np.zeros((0,), np.float32), np.zeros((0,), np.uint16))

    @staticmethod
    def concatenate(clouds: Sequence['CloudArrays']) -> 'CloudArrays':
        """Concatenate clouds in the given order (one copy)."""
        clouds = list(clouds)
        if not clouds:
            return CloudArrays.empty()

        def cat(name, dtype):
            return np.concatenate([getattr(c, name) for c in clouds]).astype(dtype, copy=False)
        return CloudArrays(cat('points', np.float32), cat('colors', np.uint8),
                           cat('confidence', np.float32), cat('view', np.uint16))


def as_cloud(points, colors, confidence=None, view=None) -> CloudArrays:
    """
    Validate and normalise the four arrays without copying when they already fit.

    ``points`` ``[N, 3]`` (any float dtype; cast to float32 only if needed), ``colors``
    ``[N, 3]`` uint8, ``confidence`` ``[N]`` or a scalar (``None`` = 1.0), ``view`` ``[N]`` or
    a scalar view index (``None`` = 0). Scalars are broadcast without allocating.

    Raises
    ------
    ValueError
        naming the argument, its shape/dtype and what was expected.

    """
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise ValueError(f'points must be [N, 3], got shape {points.shape}')
    if points.dtype.kind != 'f':
        raise ValueError(f'points must be floating point, got {points.dtype}')
    points = points.astype(np.float32, copy=False)
    n = points.shape[0]
    colors = np.asarray(colors)
    if colors.shape != (n, 3):
        raise ValueError(f'colors must be [N, 3] = [{n}, 3] uint8 RGB, got shape {colors.shape}')
    if colors.dtype != np.uint8:
        raise ValueError(f'colors must be uint8 RGB (0..255), got {colors.dtype}')
    if confidence is None:
        confidence = 1.0
    confidence = np.asarray(confidence)
    if confidence.ndim == 0:
        confidence = np.broadcast_to(confidence.astype(np.float32), (n,))
    elif confidence.shape != (n,):
        raise ValueError(f'confidence must be [N] = [{n}] or a scalar, '
                         f'got shape {confidence.shape}')
    confidence = confidence.astype(np.float32, copy=False)
    if view is None:
        view = 0
    view = np.asarray(view)
    if view.ndim == 0:
        if view.dtype.kind not in 'iu' or not 0 <= int(view) <= 0xFFFF:
            raise ValueError(f'view must be an integer in 0..65535, got {view!r}')
        view = np.broadcast_to(view.astype(np.uint16), (n,))
    elif view.shape != (n,):
        raise ValueError(f'view must be [N] = [{n}] or a scalar, got shape {view.shape}')
    elif view.dtype != np.uint16:
        if view.dtype.kind not in 'iu':
            raise ValueError(f'view must be integer, got {view.dtype}')
        if n and (view.min() < 0 or view.max() > 0xFFFF):
            raise ValueError('view indices must fit in uint16 (0..65535)')
        view = view.astype(np.uint16)
    return CloudArrays(points, colors, confidence, view)


# --------------------------------------------------------------------------------------------
# Chunk identification
# --------------------------------------------------------------------------------------------

_CHUNK_RE = re.compile(r'^aetherscan_chunk((?::[a-z_]+=[0-9]+)*)$')


@dataclass(frozen=True)
class ChunkInfo:
    """
    Which reconstruction a chunk belongs to and where it goes.

    ``recon`` increases with every reconstruction of one publisher; ``index`` counts chunks of
    that reconstruction from 0; ``count`` is the number of chunks, or 0 while unknown (then the
    chunk with ``last=True`` closes the reconstruction; it may be empty).
    """

    recon: int
    index: int
    count: int = 0
    last: bool = False

    def __post_init__(self):
        """Check the fields are consistent."""
        if self.recon < 0 or self.index < 0 or self.count < 0:
            raise ValueError(f'chunk info fields must be >= 0: {self}')
        if self.count and self.index >= self.count:
            raise ValueError(f'chunk index {self.index} out of range for count {self.count}')
        if self.count and self.last != (self.index == self.count - 1):
            raise ValueError(f'chunk {self.index} of {self.count}: last must be set exactly on '
                             f'the final chunk')

    def encode(self) -> str:
        """Return the PointField name that carries this info."""
        return (f'{CHUNK_FIELD_PREFIX}:recon={self.recon}:index={self.index}'
                f':count={self.count}:last={int(self.last)}')

    def field(self) -> FieldSpec:
        """Return the marker :class:`FieldSpec` (UINT8 in the padding of the 24-byte point)."""
        return FieldSpec(self.encode(), CHUNK_FIELD_OFFSET, UINT8, 1)

    @classmethod
    def decode(cls, name: str) -> 'ChunkInfo':
        """
        Parse a marker field name; unknown extra ``key=value`` pairs are ignored.

        Raises
        ------
        ValueError
            when ``name`` is not a well-formed chunk marker.

        """
        match = _CHUNK_RE.match(name)
        if not match:
            raise ValueError(f'not an aetherscan chunk marker: {name!r}')
        pairs = dict(item.split('=') for item in match.group(1).split(':')[1:])
        try:
            return cls(recon=int(pairs['recon']), index=int(pairs['index']),
                       count=int(pairs.get('count', 0)), last=pairs.get('last', '0') == '1')
        except KeyError as exc:
            raise ValueError(f'chunk marker {name!r} lacks {exc.args[0]}') from None

    @classmethod
    def from_fields(cls, fields) -> Optional['ChunkInfo']:
        """Return the info carried by a field list (FieldSpec or PointField), or None."""
        for f in fields:
            if f.name.startswith(CHUNK_FIELD_PREFIX + ':'):
                return cls.decode(f.name)
        return None


# --------------------------------------------------------------------------------------------
# Packing
# --------------------------------------------------------------------------------------------

def cloud_fields(chunk_info: Optional[ChunkInfo] = None) -> Tuple[FieldSpec, ...]:
    """Return the field list of our layout, with the chunk marker appended when given."""
    if chunk_info is None:
        return CLOUD_FIELDS
    return CLOUD_FIELDS + (chunk_info.field(),)


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
        from aetherscan_ros import _cloudpack
    except ImportError as exc:
        if choice == 'c':
            raise ImportError('AETHERSCAN_PACKER=c but the C packer aetherscan_ros._cloudpack '
                              f'is not built ({exc}); rebuild the package with a C compiler '
                              'and Python headers') from exc
        return None, 'numpy (C packer aetherscan_ros._cloudpack not built)'
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
    layout and ``copy=False`` points, confidence and view are zero-copy strided views into
    ``data`` (read-only when ``data`` is); colors are always a new ``[N, 3]`` array.

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
        off = fmap[color_name][0]
        colors = buf.reshape(n, point_step)[:, [off + 2, off + 1, off]]
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


# --------------------------------------------------------------------------------------------
# Level of detail
# --------------------------------------------------------------------------------------------

def voxel_downsample(points, colors, confidence=None, view=None,
                     voxel: float = 0.01) -> CloudArrays:
    """
    Average points, colors and confidence per cubic voxel of edge ``voxel``.

    Non-finite points are dropped first. Each output point is the mean position, the rounded
    mean color and the mean confidence of the input points in its voxel; its ``view`` is the
    view of the lowest-index point of the voxel. Output order follows the voxel key (sorted).
    Vectorised: one ``argsort`` of the int64 voxel keys, then ``np.bincount`` sums.
    Voxels are anchored at the minimum corner of the cloud.

    Parameters
    ----------
    points, colors, confidence, view
        As in :func:`as_cloud` (``[N, 3]``, ``[N, 3]`` uint8, ``[N]``, ``[N]``).
    voxel : float
        Voxel edge in the unit of ``points`` (> 0).

    Returns
    -------
    CloudArrays with ``M <= N`` points.

    """
    if not voxel > 0 or not math.isfinite(voxel):
        raise ValueError(f'voxel must be a positive finite size, got {voxel!r}')
    cloud = as_cloud(points, colors, confidence, view)
    finite = np.isfinite(cloud.points).all(axis=1)
    if not finite.all():
        cloud = cloud.select(finite)
    n = len(cloud)
    if n == 0:
        return CloudArrays.empty()
    pts = cloud.points
    lo = pts.min(axis=0).astype(np.float64)
    cells = np.floor((pts - lo.astype(np.float32)) * np.float32(1.0 / voxel)).astype(np.int64)
    np.maximum(cells, 0, out=cells)  # float rounding at the minimum corner
    dims = cells.max(axis=0) + 1
    if float(dims[0]) * float(dims[1]) * float(dims[2]) >= 2.0 ** 62:
        raise ValueError(f'voxel {voxel} is too small for the cloud extent '
                         f'({(pts.max(axis=0) - lo).tolist()}): more than 2^62 cells')
    key = (cells[:, 0] * dims[1] + cells[:, 1]) * dims[2] + cells[:, 2]
    del cells
    order = np.argsort(key)
    skey = key[order]
    new_voxel = np.empty(n, bool)
    new_voxel[0] = True
    np.not_equal(skey[1:], skey[:-1], out=new_voxel[1:])
    del skey
    starts = np.flatnonzero(new_voxel)
    m = len(starts)
    inverse = np.empty(n, np.intp)  # voxel number of every input point
    inverse[order] = np.cumsum(new_voxel) - 1
    del new_voxel
    counts = np.bincount(inverse, minlength=m).astype(np.float64)

    def mean(values):  # bincount sums in float64 without gathering the inputs
        return np.bincount(inverse, weights=values, minlength=m) / counts

    mean_p = np.stack([mean(pts[:, k]) for k in range(3)], axis=1).astype(np.float32)
    mean_c = np.stack([np.floor(mean(cloud.colors[:, k]) + 0.5) for k in range(3)],
                      axis=1).astype(np.uint8)
    mean_f = mean(cloud.confidence).astype(np.float32)
    first = np.minimum.reduceat(order, starts)  # lowest input index of every voxel
    return CloudArrays(mean_p, mean_c, mean_f, np.ascontiguousarray(cloud.view[first]))


def point_budget(points, colors, confidence=None, view=None, max_points: int = 1_000_000,
                 max_iterations: int = 8) -> Tuple[CloudArrays, float]:
    """
    Downsample with growing voxels until at most ``max_points`` remain.

    The first voxel guess assumes the points lie on surfaces (count ~ area / voxel^2); further
    steps scale the voxel by ``(count / target) ** (1 / d)`` with the cloud's dimension ``d``
    estimated from the last two steps, until 70-100 % of ``max_points`` remain. When the
    iterations run out the coarsest result is thinned by an even stride (deterministic).

    Returns
    -------
    (cloud, voxel)
        ``voxel`` is 0.0 when the input already fits (returned unchanged, non-finite points
        included).

    """
    max_points = int(max_points)
    if max_points < 1:
        raise ValueError(f'max_points must be >= 1, got {max_points}')
    cloud = as_cloud(points, colors, confidence, view)
    n = len(cloud)
    if n <= max_points:
        return cloud, 0.0
    finite = cloud.points[np.isfinite(cloud.points).all(axis=1)]
    if len(finite) == 0:
        return CloudArrays.empty(), 0.0
    extent = np.sort(finite.max(axis=0) - finite.min(axis=0))[::-1].astype(np.float64)
    area = max(extent[0] * extent[1], extent[0] ** 2 * 1e-6, 1e-18)
    voxel = math.sqrt(area / max_points)
    target = 0.85 * max_points
    best, prev, dim = None, None, 2.0
    for _ in range(max_iterations):
        result = voxel_downsample(*cloud, voxel=voxel)
        m = len(result)
        if m <= max_points and (best is None or len(best[0]) < m):
            best = (result, voxel)
        if max_points >= m >= 0.7 * max_points:
            break
        if prev is not None and prev[1] != m and m > 0 and prev[1] > 0:
            # Local dimension of the cloud: count ~ voxel^-dim (2 = surfaces, 3 = volumes).
            dim = min(max(math.log(prev[1] / m) / math.log(voxel / prev[0]), 1.0), 3.0)
        prev = (voxel, m)
        voxel *= min(max((max(m, 1) / target) ** (1.0 / dim), 0.25), 8.0)
    if best is None:
        step = int(math.ceil(len(result) / max_points))
        best = (result.select(slice(None, None, step)), voxel)
    LOG.debug('point budget %d: %d -> %d points, voxel %.4g', max_points, n, len(best[0]),
              best[1])
    return best


def confidence_filter(confidence, percentile: float, view=None) -> np.ndarray:
    """
    Return a ``[N]`` bool mask keeping points at or above the confidence percentile.

    ``percentile`` in [0, 100): 0 keeps everything finite, 30 drops the lowest 30 %. When
    ``view`` ``[N]`` is given the threshold is computed per view (views with different
    confidence scales keep the same share). NaN confidences are always dropped.
    """
    if not 0.0 <= percentile < 100.0:
        raise ValueError(f'percentile must be in [0, 100), got {percentile}')
    conf = np.asarray(confidence, np.float32).reshape(-1)
    valid = np.isfinite(conf)
    if percentile == 0.0 or conf.size == 0:
        return valid
    if view is None:
        if not valid.any():
            return valid
        threshold = np.percentile(conf[valid], percentile)
        return valid & (conf >= threshold)
    view = np.asarray(view).reshape(-1)
    if view.shape != conf.shape:
        raise ValueError(f'view must be [N] = [{conf.size}], got {view.shape}')
    views, inverse = np.unique(view, return_inverse=True)
    order = np.argsort(inverse, kind='stable')
    bounds = np.searchsorted(inverse[order], np.arange(len(views) + 1))
    thresholds = np.full(len(views), np.inf, np.float32)
    for i in range(len(views)):  # one iteration per view, not per point
        seg = conf[order[bounds[i]:bounds[i + 1]]]
        seg = seg[np.isfinite(seg)]
        if seg.size:
            thresholds[i] = np.percentile(seg, percentile)
    return valid & (conf >= thresholds[inverse])


# --------------------------------------------------------------------------------------------
# Chunked streaming
# --------------------------------------------------------------------------------------------

def chunk_ranges(n: int, chunk_points: int) -> List[Tuple[int, int]]:
    """Split ``n`` points into ``[(start, stop), ...]`` of ``chunk_points`` or fewer."""
    if chunk_points < 1:
        raise ValueError(f'chunk_points must be >= 1, got {chunk_points}')
    return [(s, min(s + chunk_points, n)) for s in range(0, int(n), int(chunk_points))]


def chunk_points_for_bytes(max_bytes: int) -> int:
    """Return how many of our points fit in a message of ``max_bytes`` of point data."""
    if max_bytes < POINT_STEP:
        raise ValueError(f'max_bytes must be >= {POINT_STEP}, got {max_bytes}')
    return int(max_bytes) // POINT_STEP


class ChunkStream:
    """
    Cut the points of one reconstruction into numbered chunks as they become ready.

    ``total_points`` unknown (classical backend): every :meth:`add` sends its points at once
    (the last chunk of a view may be short) with ``count=0``, and :meth:`finish` sends one
    empty chunk with ``last=True``. ``total_points`` known (Fast3R): chunks are exactly
    ``chunk_points`` long across view boundaries, carry the exact ``count``, and the final one
    has ``last=True``; :meth:`finish` checks that every point was given.

    Both methods return ``[(ChunkInfo, CloudArrays), ...]`` for the caller to pack and send.
    """

    def __init__(self, recon: int, chunk_points: int, total_points: Optional[int] = None):
        if chunk_points < 1:
            raise ValueError(f'chunk_points must be >= 1, got {chunk_points}')
        self.recon = int(recon)
        self.chunk_points = int(chunk_points)
        self.total_points = None if total_points is None else int(total_points)
        self.count = 0
        if self.total_points is not None:
            self.count = max(1, -(-self.total_points // self.chunk_points))
        self._next = 0
        self._given = 0
        self._carry: Optional[CloudArrays] = None
        self._finished = False

    @property
    def chunks_sent(self) -> int:
        """Return how many chunks were handed out so far."""
        return self._next

    def _emit(self, cloud: CloudArrays, last: bool) -> Tuple[ChunkInfo, CloudArrays]:
        info = ChunkInfo(self.recon, self._next, self.count, last)
        self._next += 1
        return info, cloud

    def add(self, points, colors, confidence=None, view=None
            ) -> List[Tuple[ChunkInfo, CloudArrays]]:
        """Add the next points (``view`` may be a scalar) and return the chunks now ready."""
        if self._finished:
            raise RuntimeError(f'chunk stream of reconstruction {self.recon} is finished')
        cloud = as_cloud(points, colors, confidence, view)
        self._given += len(cloud)
        if self.total_points is None:
            return [self._emit(cloud.select(slice(a, b)), False)
                    for a, b in chunk_ranges(len(cloud), self.chunk_points)]
        if self._given > self.total_points:
            raise ValueError(f'reconstruction {self.recon}: {self._given} points given, more '
                             f'than the announced {self.total_points}')
        out = []
        if self._carry is not None:
            need = self.chunk_points - len(self._carry)
            head = CloudArrays.concatenate([self._carry, cloud.select(slice(0, need))])
            cloud = cloud.select(slice(need, None))
            self._carry = None
            if len(head) == self.chunk_points:
                out.append(head)
            else:
                self._carry = head
        for a, b in chunk_ranges(len(cloud), self.chunk_points):
            if b - a == self.chunk_points:
                out.append(cloud.select(slice(a, b)))
            else:
                self._carry = cloud.select(slice(a, b))
        if self._given == self.total_points and self._carry is not None:
            out.append(self._carry)
            self._carry = None
        result = []
        for chunk in out:
            last = self._next == self.count - 1
            result.append(self._emit(chunk, last))
        if result and result[-1][0].last:
            self._finished = True
        return result

    def finish(self) -> List[Tuple[ChunkInfo, CloudArrays]]:
        """Close the reconstruction; return the closing chunk(s) still to send."""
        if self._finished:
            return []
        self._finished = True
        if self.total_points is None:
            return [self._emit(CloudArrays.empty(), True)]
        if self.total_points == 0 and self._next == 0:
            return [self._emit(CloudArrays.empty(), True)]
        raise ValueError(f'reconstruction {self.recon}: {self._given} of the announced '
                         f'{self.total_points} points were given')


class ChunkAssembler:
    """
    Reassemble chunk clouds into the full cloud of one reconstruction.

    Chunks may arrive in any order. A chunk of a newer reconstruction (higher ``recon``) drops
    the unfinished older one; chunks of older reconstructions are ignored. Counters:
    ``completed``, ``dropped_incomplete``, ``ignored_stale``, ``rejected``.
    """

    def __init__(self):
        self.recon: Optional[int] = None
        self._parts: Dict[int, CloudArrays] = {}
        self._count = 0
        self._last_index: Optional[int] = None
        self._done = False
        self.completed = 0
        self.dropped_incomplete = 0
        self.ignored_stale = 0
        self.rejected = 0

    @property
    def pending(self) -> int:
        """Return how many chunks of the current reconstruction are held."""
        return len(self._parts)

    def _start(self, recon: int):
        if self.recon is not None and not self._done and self._parts:
            self.dropped_incomplete += 1
            LOG.info('reconstruction %d superseded by %d with %d chunk(s) missing', self.recon,
                     recon, self._missing())
        self.recon = recon
        self._parts = {}
        self._count = 0
        self._last_index = None
        self._done = False

    def _missing(self) -> int:
        total = self._count or (self._last_index + 1 if self._last_index is not None else 0)
        return max(total - len(self._parts), 0)

    def add(self, info: Optional[ChunkInfo], cloud: CloudArrays) -> Optional[CloudArrays]:
        """
        Add one chunk; return the full cloud (in chunk order) once it is complete.

        ``info=None`` means a whole, unchunked cloud: it is returned as is.
        """
        if info is None:
            return cloud
        if self.recon is None or info.recon > self.recon:
            self._start(info.recon)
        elif info.recon < self.recon:
            self.ignored_stale += 1
            return None
        if self._done or info.index in self._parts:
            self.ignored_stale += 1
            return None
        if self._count and info.count and info.count != self._count:
            self.rejected += 1
            LOG.warning('reconstruction %d: chunk %d says count %d, earlier chunks said %d',
                        info.recon, info.index, info.count, self._count)
            return None
        limit = self._count or (self._last_index + 1 if self._last_index is not None else None)
        if limit is not None and info.index >= limit:
            self.rejected += 1
            LOG.warning('reconstruction %d: chunk index %d beyond the last chunk %d', info.recon,
                        info.index, limit - 1)
            return None
        self._parts[info.index] = cloud
        if info.count:
            self._count = info.count
        if info.last:
            self._last_index = info.index
        total = self._count or (self._last_index + 1 if self._last_index is not None else 0)
        if total and len(self._parts) == total:
            self._done = True
            self.completed += 1
            full = CloudArrays.concatenate([self._parts[i] for i in range(total)])
            self._parts = {}
            return full
        return None

    def add_packed(self, data, fields, point_step: int) -> Optional[CloudArrays]:
        """Decode packed chunk bytes (info read from ``fields``) and :meth:`add` them."""
        return self.add(ChunkInfo.from_fields(fields), unpack_cloud(data, fields, point_step))
