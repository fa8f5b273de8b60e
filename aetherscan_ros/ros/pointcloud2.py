# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
``sensor_msgs/PointCloud2`` build and read on top of :mod:`aetherscan_ros.cloud`.

Building: :func:`to_pointcloud2` packs the arrays once into an ``array.array('B')`` and hands
that very object to the message (``PointCloud2(check_fields=True)`` stores an ``array.array``
as is; without it the generated setter copies it, and a ``memoryview`` or ``ndarray`` is
iterated element by element, hundreds of times slower: ``make bench`` measures each). A
publisher that sends clouds again and again reuses one buffer through :class:`MessageBuffer`.
Reading: :func:`from_pointcloud2` returns zero-copy views into ``msg.data`` where the layout
allows it.
"""

import array
import logging
import sys
from typing import Iterable, List, Optional, Sequence, Tuple, Union

from builtin_interfaces.msg import Time
import numpy as np
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import Header

from aetherscan_ros.cloud import (as_cloud, ChunkInfo, cloud_fields, CloudArrays, FieldSpec,
                                  pack_to_buffer, POINT_STEP, unpack_cloud)

LOG = logging.getLogger(__name__)

HeaderLike = Union[Header, Tuple[object, str]]


def _probe_zero_copy() -> Tuple[dict, bool]:
    """Find constructor arguments under which ``msg.data = array.array`` keeps the object."""
    probe = array.array('B', b'\0\0\0\0')
    for kwargs in ({'check_fields': True}, {}):
        try:
            msg = PointCloud2(**kwargs)
        except (AssertionError, TypeError):  # Humble: no check_fields argument
            continue
        msg.data = probe
        if msg.data is probe:
            return kwargs, True
    return {}, False


_MSG_KWARGS, ZERO_COPY_DATA = _probe_zero_copy()


def new_pointcloud2() -> PointCloud2:
    """Return an empty ``PointCloud2`` that takes an ``array.array('B')`` without copying it."""
    return PointCloud2(**_MSG_KWARGS)


def make_header(stamp, frame_id: str) -> Header:
    """
    Return a ``std_msgs/Header``.

    ``stamp`` may be a ``builtin_interfaces/Time``, an ``rclpy.time.Time``, or integer
    nanoseconds.
    """
    if isinstance(stamp, Time):
        time_msg = stamp
    elif hasattr(stamp, 'to_msg'):
        time_msg = stamp.to_msg()
    elif isinstance(stamp, (int, np.integer)):
        sec, nanosec = divmod(int(stamp), 1_000_000_000)
        time_msg = Time(sec=sec, nanosec=nanosec)
    else:
        raise TypeError(f'stamp must be builtin_interfaces/Time, rclpy Time or int ns, '
                        f'got {type(stamp).__name__}')
    return Header(stamp=time_msg, frame_id=str(frame_id))


def _as_header(header: HeaderLike) -> Header:
    if isinstance(header, Header):
        return header
    if isinstance(header, tuple) and len(header) == 2:
        return make_header(*header)
    raise TypeError('header must be a std_msgs/Header or a (stamp, frame_id) tuple, got '
                    f'{type(header).__name__}')


def point_fields(specs: Iterable[FieldSpec]) -> List[PointField]:
    """Convert :class:`FieldSpec` items to ``sensor_msgs/PointField`` messages."""
    return [PointField(name=s.name, offset=s.offset, datatype=s.datatype, count=s.count)
            for s in specs]


def packed_to_pointcloud2(header: HeaderLike, data, fields: Sequence[FieldSpec],
                          point_step: int, is_dense: bool = False) -> PointCloud2:
    """Wrap already packed bytes (``array.array('B')`` avoids a copy) in an unorganized cloud."""
    point_step = int(point_step)
    if point_step <= 0 or len(data) % point_step:
        raise ValueError(f'packed data of {len(data)} bytes is not a whole number of '
                         f'{point_step}-byte points')
    width = len(data) // point_step
    msg = new_pointcloud2()
    msg.header = _as_header(header)
    msg.height = 1
    msg.width = width
    msg.fields = point_fields(fields)
    msg.is_bigendian = False
    msg.point_step = point_step
    msg.row_step = point_step * width
    msg.is_dense = bool(is_dense)
    msg.data = data
    return msg


class MessageBuffer:
    """
    One ``msg.data`` buffer that a publisher reuses from message to message.

    :meth:`take` returns the held ``array.array('B')`` when nothing but this object refers to
    it any more (the message that carried it was published and dropped: rclpy copies the data
    while publishing), else a new one, which it then holds. So a message that someone keeps is
    never overwritten, and a publisher that drops its messages packs every cloud into the same
    memory: no allocation and, above ~32 MB where glibc maps each allocation anew, none of the
    page faults of a fresh buffer (70 ms for a 5M-point cloud on the bench machine).
    Counters: ``reused``, ``allocated``. Not thread-safe: one per publishing thread.
    """

    def __init__(self):
        self._buf: Optional[array.array] = None
        self.reused = 0
        self.allocated = 0

    def _refs(self) -> int:
        return sys.getrefcount(self._buf)

    def take(self) -> array.array:
        """Return a buffer that no live message uses (resize it with the packer)."""
        if self._buf is not None and self._refs() <= _FREE_REFS:
            self.reused += 1
            return self._buf
        self._buf = array.array('B')
        self.allocated += 1
        return self._buf


def _free_refs() -> int:
    """Return what :meth:`MessageBuffer._refs` reports for a buffer only the holder refers to."""
    probe = MessageBuffer()
    probe._buf = array.array('B')
    return probe._refs()


_FREE_REFS = _free_refs()


def to_pointcloud2(header: HeaderLike, points, colors, confidence=None, view=None,
                   chunk_info: Optional[ChunkInfo] = None,
                   is_dense: Optional[bool] = None,
                   out: Optional[array.array] = None) -> PointCloud2:
    """
    Build a ``PointCloud2`` (fields x, y, z, rgb, confidence, view) from numpy arrays.

    Parameters
    ----------
    header : std_msgs/Header or (stamp, frame_id)
        Stamp as in :func:`make_header`.
    points, colors, confidence, view
        ``[N, 3]`` float, ``[N, 3]`` uint8 RGB, ``[N]`` float32 or scalar, ``[N]`` uint16 or
        scalar (see :func:`aetherscan_ros.cloud.pack_cloud`).
    chunk_info : ChunkInfo, optional
        Marks the message as one chunk of a reconstruction.
    is_dense : bool, optional
        ``None`` sets it from the points (the C packer counts NaN/inf while packing; the numpy
        packer needs one more pass); pass ``False`` to skip the check.
    out : array.array('B'), optional
        Buffer to pack into and to hand to the message (e.g. ``MessageBuffer.take()``).

    """
    data, nonfinite = pack_to_buffer(as_cloud(points, colors, confidence, view), out,
                                     count_nonfinite=is_dense is None)
    if is_dense is None:
        is_dense = nonfinite == 0
    return packed_to_pointcloud2(header, data, cloud_fields(chunk_info), POINT_STEP,
                                 is_dense=is_dense)


def make_cloud_msg(cloud, frame_id: str, stamp, chunk_info: Optional[ChunkInfo] = None,
                   is_dense: Optional[bool] = None,
                   out: Optional[array.array] = None) -> PointCloud2:
    """
    Build a ``PointCloud2`` from ``(points, colors, confidence, view)`` or a :class:`CloudArrays`.

    ``stamp`` as in :func:`make_header` (integer nanoseconds included); ``out`` as in
    :func:`to_pointcloud2`. What the node calls.
    """
    points, colors, confidence, view = cloud
    return to_pointcloud2((stamp, frame_id), points, colors, confidence, view,
                          chunk_info=chunk_info, is_dense=is_dense, out=out)


def chunk_info_of(msg: PointCloud2) -> Optional[ChunkInfo]:
    """Return the :class:`ChunkInfo` a message carries, or None for a whole cloud."""
    return ChunkInfo.from_fields(msg.fields)


def from_pointcloud2(msg: PointCloud2, copy: bool = False, skip_nans: bool = False,
                     source: str = '') -> Tuple[CloudArrays, Optional[ChunkInfo]]:
    """
    Read a ``PointCloud2`` into arrays plus its chunk info (None when not a chunk).

    Any cloud with float ``x, y, z`` is accepted (organized clouds are flattened); missing
    ``rgb``/``confidence``/``view`` get defaults. With ``copy=False`` points, colors, confidence
    and view are views into ``msg.data`` (keep the message alive, don't modify it).

    Raises
    ------
    ValueError
        naming ``source`` (e.g. the topic) when the sizes or the fields are inconsistent.

    """
    where = source or f'PointCloud2 in frame {msg.header.frame_id!r}'
    expected = msg.width * msg.height * msg.point_step
    if len(msg.data) != expected:
        raise ValueError(f'{where}: data has {len(msg.data)} bytes, width {msg.width} x height '
                         f'{msg.height} x point_step {msg.point_step} = {expected}')
    if msg.height > 1 and msg.row_step != msg.width * msg.point_step:
        raise ValueError(f'{where}: row_step {msg.row_step} with row padding is not supported')
    cloud = unpack_cloud(msg.data, msg.fields, msg.point_step, copy=copy, skip_nans=skip_nans,
                         is_bigendian=msg.is_bigendian, source=where)
    return cloud, ChunkInfo.from_fields(msg.fields)
