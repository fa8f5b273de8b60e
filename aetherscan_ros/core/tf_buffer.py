# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
A small thread-safe TF buffer with time interpolation that behaves like tf2's ``BufferCore``.

For when ``tf2_ros`` is not importable; plain numpy (the ROS side converts ``TFMessage``).
As tf2: ``lookup(target, source, stamp_ns)`` is ``lookupTransform(target, source, time)``, the
``[4, 4]`` matrix mapping points in ``source`` to ``target``, walking up from both frames to
their common ancestor; stamp 0 is the latest common time of the dynamic edges on that path; each
dynamic edge is interpolated between the samples around the stamp (linear translation,
shortest-arc SLERP rotation). Dynamic samples are kept ``cache_time_s`` behind the newest stamp
of their frame, older data is refused (``TF_OLD_DATA``), a sample at a known stamp replaces it;
static transforms are kept forever and valid at all times; a frame switching between static and
dynamic loses its history. Errors carry tf2's reasons (unknown frame, unconnected trees,
extrapolation into the past/future, here with the amount and the edge's data range).

Deliberate differences: a frame has one parent; a sample with a new parent replaces the frame's
history (tf2 keeps a parent per sample) and an older sample for the old parent is refused; a
transform closing a loop is refused at insertion; quaternions are normalised (tf2 refuses those
off by over 1 %); frame ids starting with '/' are refused.
"""

import bisect
import logging
import math
import operator
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

import numpy as np

from aetherscan_ros.core.geometry import invert_pose, quaternion_to_rotation_matrix

_LOG = logging.getLogger(__name__)
_NS_PER_S = 1_000_000_000
_MAX_DEPTH = 1000  # tf2's MAX_GRAPH_DEPTH


class TfInputError(ValueError):
    """:meth:`TfBuffer.set_transform` refused a transform; the message says why."""


class TfLookupError(ValueError):
    """A lookup failed; ``str()`` is tf2's reason. Subclasses name the kind of failure."""

    def with_note(self, note: str) -> 'TfLookupError':
        """Return a copy of this error (same type and fields) with ``note`` appended."""
        out = type(self).__new__(type(self))
        out.__dict__.update(self.__dict__)
        out.args = (f'{self}{note}',)
        return out


class TfArgumentError(TfLookupError):
    """An invalid frame id, stamp or timeout was passed (tf2's InvalidArgumentException)."""


class TfUnknownFrameError(TfLookupError):
    """A frame no transform has named (tf2's LookupException)."""


class TfConnectivityError(TfLookupError):
    """The two frames are in two unconnected trees (tf2's ConnectivityException)."""


class TfExtrapolationError(TfLookupError):
    """No data at the stamp on the edge ``frame -> parent`` (tf2's ExtrapolationException)."""

    def __init__(self, message: str, direction: str = '', requested_ns: int = 0,
                 earliest_ns: int = 0, latest_ns: int = 0, frame: str = '', parent: str = ''):
        super().__init__(message)  # direction: 'past' or 'future'
        self.direction, self.requested_ns = direction, requested_ns
        self.earliest_ns, self.latest_ns = earliest_ns, latest_ns
        self.frame, self.parent = frame, parent

    @property
    def amount_ns(self) -> int:
        """Return how far ``requested_ns`` lies outside ``[earliest_ns, latest_ns]``."""
        if self.direction == 'future':
            return self.requested_ns - self.latest_ns
        return self.earliest_ns - self.requested_ns


def format_stamp(stamp_ns: int) -> str:
    """Return ``stamp_ns`` as exact seconds with 9 decimals (``'12.500000000'``)."""
    sign = '-' if stamp_ns < 0 else ''
    stamp_ns = abs(int(stamp_ns))
    return f'{sign}{stamp_ns // _NS_PER_S}.{stamp_ns % _NS_PER_S:09d}'


def slerp(q0: np.ndarray, q1: np.ndarray, ratio: float) -> np.ndarray:
    """Interpolate unit quaternions ``[4]`` along the shorter arc (tf2's ``slerp``)."""
    dot = float(np.dot(q0, q1))
    if dot < 0.0:  # q and -q are the same rotation: take the short way round
        q1, dot = -q1, -dot
    if dot > 0.9995:  # nearly parallel: normalised lerp is exact to ~1e-7 rad
        out = q0 + ratio * (q1 - q0)
    else:
        theta = math.acos(min(dot, 1.0))
        out = (math.sin((1.0 - ratio) * theta) * q0 + math.sin(ratio * theta) * q1)
    return out / np.linalg.norm(out)


def _pose_matrix(value: np.ndarray) -> np.ndarray:
    """Return the ``[4, 4]`` matrix of a sample ``[7]`` (tx, ty, tz, qx, qy, qz, qw)."""
    out = np.eye(4)
    out[:3, :3], out[:3, 3] = quaternion_to_rotation_matrix(value[3:]), value[:3]
    return out


def _frame_problem(frame: object) -> str:
    if not isinstance(frame, str):
        return f'frame ids are strings, got {type(frame).__name__}'
    return ('in tf2 frame_ids cannot be empty' if not frame else
            "in tf2 frame_ids cannot start with a '/'" if frame.startswith('/') else '')


def _stamp(stamp_ns: object, error: type) -> int:
    try:
        stamp = -1 if isinstance(stamp_ns, bool) else operator.index(stamp_ns)
    except TypeError:
        stamp = -1
    if stamp < 0:
        raise error(f'stamp_ns must be integer nanoseconds >= 0, got {stamp_ns!r}')
    return stamp


def _sample(child: str, translation: Sequence[float],
            rotation_xyzw: Sequence[float]) -> np.ndarray:
    """Validate a pose and return it as ``[7]`` with a unit quaternion."""
    parts = []
    for name, value, size in (('translation', translation, 3), ('rotation', rotation_xyzw, 4)):
        try:
            parts.append(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError):
            parts.append(np.empty(0))
        if parts[-1].shape != (size,):
            raise TfInputError(f'{name} of "{child}" must be [{size}] numbers, got {value!r}')
    value = np.concatenate(parts)
    if not np.all(np.isfinite(value)):
        raise TfInputError(f'TF_NAN_INPUT: transform of "{child}" has a non-finite value '
                           f'(translation {parts[0].tolist()}, rotation {parts[1].tolist()})')
    norm = float(np.linalg.norm(value[3:]))
    if norm < 1e-6:
        raise TfInputError(f'TF_DENORMALIZED_QUATERNION: rotation of "{child}" is a zero '
                           f'quaternion {parts[1].tolist()} (norm {norm:.3g})')
    value[3:] /= norm
    return value


class _Edge:
    """The samples of one ``child -> parent`` edge, sorted by stamp."""

    __slots__ = ('parent', 'static', 'stamps', 'values')

    def __init__(self, parent: str, static: bool):
        self.parent, self.static = parent, static
        self.stamps: List[int] = []
        self.values: List[np.ndarray] = []  # each [7]

    def insert(self, stamp: int, value: np.ndarray, cache_ns: int) -> bool:
        """Store a sample, prune what fell out of the window; False for too old data."""
        if self.static:
            self.stamps, self.values = [stamp], [value]
            return True
        if self.stamps and stamp < self.stamps[-1] - cache_ns:
            return False
        i = bisect.bisect_left(self.stamps, stamp)
        if i < len(self.stamps) and self.stamps[i] == stamp:
            self.values[i] = value
        else:
            self.stamps.insert(i, stamp)
            self.values.insert(i, value)
        cut = bisect.bisect_left(self.stamps, self.stamps[-1] - cache_ns)
        if cut:
            del self.stamps[:cut]
            del self.values[:cut]
        return True

    def at(self, stamp: int) -> Optional[np.ndarray]:
        """Return the sample ``[7]`` at ``stamp`` (0: the latest), or None outside the data."""
        if self.static or stamp == 0:
            return self.values[-1]
        i = bisect.bisect_left(self.stamps, stamp)
        if i < len(self.stamps) and self.stamps[i] == stamp:
            return self.values[i]
        if i == 0 or i == len(self.stamps):
            return None
        t0, t1 = self.stamps[i - 1], self.stamps[i]
        v0, v1 = self.values[i - 1], self.values[i]
        ratio = (stamp - t0) / (t1 - t0)
        return np.concatenate([v0[:3] + ratio * (v1[:3] - v0[:3]),
                               slerp(v0[3:], v1[3:], ratio)])


class TfBuffer:
    """
    A transform tree over time, safe to fill from one thread while others look up.

    ``cache_time_s``: how long dynamic samples are kept behind the newest stamp of their frame.
    """

    def __init__(self, cache_time_s: float = 10.0):
        if not (isinstance(cache_time_s, (int, float)) and 0 < cache_time_s < math.inf):
            raise ValueError(f'cache_time_s must be a finite number > 0, got {cache_time_s!r}')
        self.cache_time_s, self._cache_ns = float(cache_time_s), round(cache_time_s * _NS_PER_S)
        self._edges: Dict[str, _Edge] = {}
        self._names: Set[str] = set()  # every frame ever named, as tf2 keeps them
        self._cond = threading.Condition(threading.Lock())

    def set_transform(self, parent: str, child: str, stamp_ns: int,
                      translation: Sequence[float], rotation_xyzw: Sequence[float],
                      static: bool = False) -> bool:
        """
        Store the pose (``translation`` ``[3]``, ``rotation_xyzw`` ``[4]``) of child in parent.

        It maps points in ``child`` to ``parent`` (``header.frame_id = parent``). Returns False,
        logging why, for valid data not stored: older than the cache window, or older than the
        newest sample of a frame that has since moved to a new parent. Raises
        :class:`TfInputError` for invalid input, a self transform or one closing a loop.
        """
        for role, frame in (('parent', parent), ('child', child)):
            problem = _frame_problem(frame)
            if problem:
                raise TfInputError(f'Invalid {role} frame ID "{frame}": {problem}')
        if parent == child:
            raise TfInputError(f'TF_SELF_TRANSFORM: frame_id and child_frame_id "{child}" '
                               'are the same')
        stamp = _stamp(stamp_ns, TfInputError)
        value = _sample(child, translation, rotation_xyzw)
        with self._cond:
            stored = self._insert(parent, child, stamp, value, bool(static))
            if stored:
                self._cond.notify_all()
        return stored

    def _insert(self, parent: str, child: str, stamp: int, value: np.ndarray,
                static: bool) -> bool:
        edge = self._edges.get(child)
        moved = edge is not None and edge.parent != parent
        if moved and not static and not edge.static and stamp < edge.stamps[-1]:
            _LOG.warning('ignoring %s -> %s at %s: "%s" moved to parent "%s" at %s', parent,
                         child, format_stamp(stamp), child, edge.parent,
                         format_stamp(edge.stamps[-1]))
            return False
        if (edge is None or moved) and child in self._path_up(parent):
            raise TfInputError(f'transform {parent} -> {child} would close a loop: '
                               f'"{child}" is an ancestor of "{parent}"')
        if moved:
            _LOG.warning('TF_REPARENT: frame "%s" moves from parent "%s" to "%s"; its history '
                         'is dropped', child, edge.parent, parent)
            edge = None
        if edge is None or edge.static != static:
            edge = _Edge(parent, static)
            self._edges[child] = edge
        self._names.update((parent, child))
        if not edge.insert(stamp, value, self._cache_ns):
            _LOG.warning('TF_OLD_DATA ignoring data from the past for frame %s at time %s: '
                         'older than %.3f s behind its newest sample %s', child,
                         format_stamp(stamp), self.cache_time_s, format_stamp(edge.stamps[-1]))
            return False
        return True

    def lookup(self, target: str, source: str, stamp_ns: int) -> np.ndarray:
        """Return ``[4, 4]`` mapping ``source`` points to ``target`` (0: latest common time)."""
        with self._cond:
            return self._lookup(target, source, stamp_ns)[0]

    def latest_common_time(self, target: str, source: str) -> int:
        """Return the stamp a lookup at 0 uses (0 when every edge on the path is static)."""
        with self._cond:
            return self._lookup(target, source, 0)[1]

    def can_transform(self, target: str, source: str, stamp_ns: int) -> Tuple[bool, str]:
        """Return ``(True, '')`` when :meth:`lookup` would succeed, else ``(False, reason)``."""
        try:
            self.lookup(target, source, stamp_ns)
        except TfLookupError as exc:
            return False, str(exc)
        return True, ''

    def wait_for(self, target: str, source: str, stamp_ns: int, timeout_s: float,
                 clock: Callable[[], float] = time.monotonic) -> np.ndarray:
        """
        Look up like :meth:`lookup`, waiting up to ``timeout_s`` for the data to arrive.

        Wakes on every stored transform. Gives up at once when waiting cannot help (an invalid
        argument, or a stamp older than the cache window of an edge) and otherwise raises the
        last lookup error after the timeout, noting the wait. ``clock`` is the monotonic clock
        the deadline is measured on.
        """
        if not (isinstance(timeout_s, (int, float)) and 0 <= timeout_s < math.inf):
            raise TfArgumentError(f'timeout_s must be a finite number >= 0, got {timeout_s!r}')
        deadline = clock() + timeout_s
        with self._cond:
            while True:
                try:
                    return self._lookup(target, source, stamp_ns)[0]
                except TfArgumentError:
                    raise
                except TfLookupError as exc:
                    last = exc
                if (isinstance(last, TfExtrapolationError) and last.direction == 'past'
                        and last.requested_ns < last.latest_ns - self._cache_ns):
                    raise last.with_note(f' (older than the {self.cache_time_s:g} s cache: '
                                         'waiting cannot help)')
                remaining = deadline - clock()
                if remaining <= 0:
                    raise last.with_note(f' (after waiting {timeout_s:.3f} s)')
                self._cond.wait(remaining)

    def frames(self) -> Dict[str, str]:
        """Return ``{child: parent}`` for every frame that has a parent (diagnostics)."""
        with self._cond:
            return {child: edge.parent for child, edge in self._edges.items()}

    def sample_count(self, child: str) -> int:
        """Return how many samples the edge of ``child`` holds (0 for a frame without one)."""
        with self._cond:
            return len(self._edges[child].stamps) if child in self._edges else 0

    def clear(self) -> None:
        """Forget every transform (e.g. after the clock jumped back)."""
        with self._cond:
            self._edges.clear()
            self._names.clear()

    def _path_up(self, frame: str) -> List[str]:
        """Return ``[frame, parent, grandparent, ..., root]``."""
        path = [frame]
        while path[-1] in self._edges:
            path.append(self._edges[path[-1]].parent)
            if len(path) > _MAX_DEPTH:
                raise TfLookupError('The tf tree is invalid because it contains a loop '
                                    f'(or is deeper than {_MAX_DEPTH}) above "{frame}"')
        return path

    def _lookup(self, target: str, source: str, stamp_ns: int) -> Tuple[np.ndarray, int]:
        for arg, frame in (('target_frame', target), ('source_frame', source)):
            problem = _frame_problem(frame)
            if problem:
                raise TfArgumentError(f'Invalid argument "{frame}" passed to lookupTransform '
                                      f'argument {arg} - {problem}')
        stamp = _stamp(stamp_ns, TfArgumentError)
        if target == source:
            return np.eye(4), stamp
        for arg, frame in (('target_frame', target), ('source_frame', source)):
            if frame not in self._names:
                raise TfUnknownFrameError(f'"{frame}" passed to lookupTransform argument {arg} '
                                          'does not exist. ')
        up_source, up_target = self._path_up(source), self._path_up(target)
        common = next((f for f in up_target if f in up_source), None)
        if common is None:
            raise TfConnectivityError(f"Could not find a connection between '{target}' and "
                                      f"'{source}' because they are not part of the same tree."
                                      ' Tf has two or more unconnected trees (roots '
                                      f"'{up_target[-1]}' and '{up_source[-1]}').")
        source_edges = up_source[:up_source.index(common)]
        target_edges = up_target[:up_target.index(common)]
        if stamp == 0:
            latest = [self._edges[c].stamps[-1] for c in source_edges + target_edges
                      if not self._edges[c].static and self._edges[c].stamps[-1] != 0]
            stamp = min(latest) if latest else 0
        to_source = self._accumulate(source_edges, stamp, source, target)
        to_target = self._accumulate(target_edges, stamp, source, target)
        return invert_pose(to_target) @ to_source, stamp

    def _accumulate(self, children: List[str], stamp: int, source: str,
                    target: str) -> np.ndarray:
        """Return ``[4, 4]`` ancestor <- ``children[0]``, composing the edges upwards."""
        out = np.eye(4)
        for child in children:
            value = self._edges[child].at(stamp)
            if value is None:
                raise self._extrapolation(self._edges[child], child, stamp, source, target)
            out = _pose_matrix(value) @ out
        return out

    @staticmethod
    def _extrapolation(edge: _Edge, child: str, stamp: int, source: str,
                       target: str) -> TfExtrapolationError:
        earliest, latest = edge.stamps[0], edge.stamps[-1]
        direction = 'future' if stamp > latest else 'past'
        amount = stamp - latest if direction == 'future' else earliest - stamp
        have = (f'only time {format_stamp(latest)} is in the buffer' if len(edge.stamps) == 1
                else f'the latest data is at time {format_stamp(latest)}' if direction == 'future'
                else f'the earliest data is at time {format_stamp(earliest)}')
        message = (
            f'Lookup would require extrapolation {format_stamp(amount)} s into the '
            f'{direction}.  Requested time {format_stamp(stamp)} but {have} (frame [{child}] '
            f'-> parent [{edge.parent}] has data from {format_stamp(earliest)} to '
            f'{format_stamp(latest)}), when looking up transform from frame [{source}] to '
            f'frame [{target}]')
        return TfExtrapolationError(message, direction, stamp, earliest, latest, child,
                                    edge.parent)
