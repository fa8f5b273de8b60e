# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Chunked streaming: cut one reconstruction into numbered chunks and put them together again.

The chunk marker a message carries is :class:`aetherscan_ros.cloud.layout.ChunkInfo`; the
protocol is described in ``docs/point_streaming.md``.
"""

import logging
from typing import Dict, List, Optional, Tuple

from aetherscan_ros.cloud.arrays import as_cloud, CloudArrays
from aetherscan_ros.cloud.layout import ChunkInfo, POINT_STEP
from aetherscan_ros.cloud.packing import unpack_cloud

LOG = logging.getLogger(__name__)


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

    def __init__(self, recon: int, chunk_points: int, total_points: Optional[int] = None,
                 session: int = 0):
        if chunk_points < 1:
            raise ValueError(f'chunk_points must be >= 1, got {chunk_points}')
        self.recon = int(recon)
        self.session = int(session)
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
        info = ChunkInfo(self.recon, self._next, self.count, last, self.session)
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

    Chunks may arrive in any order. A chunk of a newer reconstruction (higher ``(session,
    recon)``: a restarted publisher has a newer session and counts ``recon`` from 1 again)
    drops the unfinished older one; chunks of older reconstructions are ignored. Counters:
    ``completed``, ``dropped_incomplete``, ``ignored_stale``, ``rejected``.
    """

    def __init__(self):
        self.recon: Optional[int] = None
        self.session = 0
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

    def _start(self, info: ChunkInfo):
        if self.recon is not None and not self._done and self._parts:
            self.dropped_incomplete += 1
            LOG.info('reconstruction %d superseded by %d (session %d) with %d chunk(s) missing',
                     self.recon, info.recon, info.session, self._missing())
        self.recon = info.recon
        self.session = info.session
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
        current = (self.session, self.recon)
        if self.recon is None or info.key > current:
            self._start(info)
        elif info.key < current:
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
