# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Synchronized sets of a camera rig (ROS-free): the ``capture_mode: sets`` half of the buffer.

A set is one frame per camera whose header stamps agree, within ``tolerance_s``, with the
set's anchor stamp (the stamp of the frame that opened it). Frames of one set may arrive in
any order across cameras; a set waits (``pending``) until every camera delivered its frame or
until it is superseded: when a newer set completes, older incomplete sets are dropped and
counted (``sets_incomplete_dropped``), as are the oldest beyond :data:`MAX_PENDING_SETS` (a
camera that stopped delivering leaves only incomplete sets behind).

Keyframe rules act on whole sets, so every camera gets the same decision:

* interval: a frame that would open a new set less than ``min_interval_s`` from a known set
  (pending, complete or closed) is skipped (``skipped_interval``);
* change: decided when a set completes. The set is kept when the thumbnail of at least one
  camera changed by ``min_change`` against that camera's frame in the last kept set, else the
  whole set is dropped (``skipped_similar``, ``sets_similar``). Decided per frame, as in
  ``series`` mode, one camera could see the change and another not, and the set would never
  complete.

A frame of a set that completed, was taken or was dropped is ``skipped_late``; a second frame
of one camera for one set is ``skipped_duplicate``. A camera whose stamps go back by more
than the tolerance (a bag restarted, a clock reset) starts the rig afresh: every buffered
set is dropped (counted). :class:`SetAssembler` is not thread-safe: ``FrameBuffer`` calls it
under its lock.
"""

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Deque, Dict, Iterable, List, Optional, Sequence

import numpy as np

from aetherscan_ros.backends.base import Frame

ACCEPTED = 'keyframe'
SKIP_INTERVAL = 'skipped_interval'
SKIP_SIMILAR = 'skipped_similar'
SKIP_BACKWARDS = 'stamp_backwards'
SKIP_DUPLICATE = 'skipped_duplicate'
SKIP_LATE = 'skipped_late'

MAX_PENDING_SETS = 8  # incomplete sets kept at most (the oldest is dropped)
_CLOSED_HISTORY = 64  # anchors of closed sets remembered (late frames, interval rule)


@dataclass
class FrameSet:
    """The frames of one synchronized set, by camera, with their thumbnails."""

    anchor_ns: int
    frames: Dict[str, Frame] = field(default_factory=dict)
    thumbs: Dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        """Return the number of frames in the set."""
        return len(self.frames)

    def ordered(self, cameras: Sequence[str]) -> List[Frame]:
        """Return the frames in camera order (view 0 = the first camera of the rig)."""
        first = [self.frames[c] for c in cameras if c in self.frames]
        return first + [f for c, f in self.frames.items() if c not in cameras]


def _nearest(sets: Iterable[FrameSet], stamp_ns: int, tolerance_ns: int) -> Optional[FrameSet]:
    best, best_gap = None, None
    for candidate in sets:
        gap = abs(candidate.anchor_ns - stamp_ns)
        if gap <= tolerance_ns and (best_gap is None or gap < best_gap):
            best, best_gap = candidate, gap
    return best


def group_frames(frames: Sequence[Frame], tolerance_ns: int) -> List[FrameSet]:
    """Group ``frames`` into sets by stamp (oldest first), one frame per camera and set."""
    groups: List[FrameSet] = []
    for frame in sorted(frames, key=lambda f: f.stamp_ns):
        target = _nearest([g for g in groups if frame.camera not in g.frames],
                          frame.stamp_ns, tolerance_ns)
        if target is None:
            target = FrameSet(frame.stamp_ns)
            groups.append(target)
        target.frames[frame.camera] = frame
    return sorted(groups, key=lambda g: g.anchor_ns)


class SetAssembler:
    """Pending and complete sets of a rig of ``cameras`` (see the module docstring)."""

    def __init__(self, cameras: Sequence[str], tolerance_s: float, counters: Counter):
        if not cameras:
            raise ValueError('capture_mode sets needs the list of cameras')
        self.cameras = tuple(cameras)
        self.tolerance_ns = int(round(float(tolerance_s) * 1e9))
        self.counters = counters
        self.complete: List[FrameSet] = []  # oldest first
        self.pending: List[FrameSet] = []  # oldest first
        self._closed: Deque[int] = deque(maxlen=_CLOSED_HISTORY)
        self._last: Dict[str, int] = {}  # camera -> stamp of its newest admitted frame
        self._kept_thumbs: Dict[str, np.ndarray] = {}  # camera -> thumbnail in the last kept set
        self._taken: List[FrameSet] = []

    # ------------------------------------------------------------------ sizes

    def frames_complete(self) -> int:
        """Return the number of frames in complete sets."""
        return sum(len(s) for s in self.complete)

    def frames_pending(self) -> int:
        """Return the number of frames waiting in incomplete sets."""
        return sum(len(s) for s in self.pending)

    def sets_for(self, max_views: int) -> int:
        """Return how many sets ``max_views`` frames hold (at least one)."""
        return max(1, int(max_views) // len(self.cameras))

    # ------------------------------------------------------------------ frames in

    def check(self, camera: str, stamp_ns: int, min_interval_s: float) -> Optional[str]:
        """Return the skip outcome of a frame of ``camera`` at ``stamp_ns``, or ``None``."""
        last = self._last.get(camera)
        if last is not None and stamp_ns < last - self.tolerance_ns:
            return SKIP_BACKWARDS
        target = _nearest(self.pending, stamp_ns, self.tolerance_ns)
        if target is not None:
            return SKIP_DUPLICATE if camera in target.frames else None
        done = [s.anchor_ns for s in self.complete] + list(self._closed)
        if any(abs(a - stamp_ns) <= self.tolerance_ns for a in done):
            return SKIP_LATE
        if done and stamp_ns < max(done):
            return SKIP_LATE  # the rig has moved on: this set could never be the newest
        interval_ns = float(min_interval_s) * 1e9
        known = done + [s.anchor_ns for s in self.pending]
        if interval_ns > 0 and any(abs(a - stamp_ns) < interval_ns for a in known):
            return SKIP_INTERVAL
        return None

    def add(self, frame: Frame, thumb: np.ndarray, min_interval_s: float, min_change: float,
            max_sets: int) -> str:
        """Add one frame; return its outcome (``keyframe`` = admitted to a set, or a skip)."""
        outcome = self.check(frame.camera, frame.stamp_ns, min_interval_s)
        if outcome is not None:
            if outcome == SKIP_BACKWARDS:
                self.restart()
            return outcome
        target = _nearest(self.pending, frame.stamp_ns, self.tolerance_ns)
        if target is None:
            target = FrameSet(frame.stamp_ns)
            self.pending.append(target)
            self.pending.sort(key=lambda s: s.anchor_ns)
        target.frames[frame.camera] = frame
        target.thumbs[frame.camera] = thumb
        self._last[frame.camera] = max(frame.stamp_ns, self._last.get(frame.camera, 0))
        if all(c in target.frames for c in self.cameras):
            return self._completed(target, min_change, max_sets)
        while len(self.pending) > MAX_PENDING_SETS:
            self._drop_pending(self.pending[0])
        return ACCEPTED

    def _completed(self, done: FrameSet, min_change: float, max_sets: int) -> str:
        self.pending.remove(done)
        changes = [float(np.abs(thumb - self._kept_thumbs[c]).mean())
                   for c, thumb in done.thumbs.items()
                   if c in self._kept_thumbs and self._kept_thumbs[c].shape == thumb.shape]
        if changes and len(changes) == len(done.thumbs) and max(changes) < min_change:
            self._closed.append(done.anchor_ns)
            self.counters['sets_similar'] += 1
            return SKIP_SIMILAR
        self._kept_thumbs = dict(done.thumbs)
        self.complete.append(done)
        self.complete.sort(key=lambda s: s.anchor_ns)
        self.counters['sets_complete'] += 1
        for older in [s for s in self.pending if s.anchor_ns < done.anchor_ns]:
            self._drop_pending(older)
        self.trim(max_sets)
        return ACCEPTED

    def _drop_pending(self, stale: FrameSet):
        self.pending.remove(stale)
        self._closed.append(stale.anchor_ns)
        self.counters['sets_incomplete_dropped'] += 1

    def trim(self, max_sets: int):
        """Evict the oldest complete sets beyond ``max_sets`` (frames counted as ``evicted``)."""
        while len(self.complete) > max(1, int(max_sets)):
            old = self.complete.pop(0)
            self._closed.append(old.anchor_ns)
            self.counters['evicted'] += len(old)
            self.counters['sets_evicted'] += 1

    # ------------------------------------------------------------------ frames out

    def take(self, count_sets: Optional[int]) -> List[Frame]:
        """Remove the newest ``count_sets`` (default all) complete sets; oldest set first."""
        count = len(self.complete) if count_sets is None else max(1, int(count_sets))
        taken = self.complete[-count:] if self.complete else []
        del self.complete[len(self.complete) - len(taken):]
        self._closed.extend(s.anchor_ns for s in taken)
        self._taken = taken
        self.counters['sets_taken'] += len(taken)
        return [f for s in taken for f in s.ordered(self.cameras)]

    def restore(self, frames: Sequence[Frame], max_sets: int):
        """Put the frames of a failed reconstruction back as the sets they were taken as."""
        ids = {id(f) for f in frames}
        back = [s for s in self._taken if all(id(f) in ids for f in s.frames.values())]
        used = {id(f) for s in back for f in s.frames.values()}
        back += group_frames([f for f in frames if id(f) not in used], self.tolerance_ns)
        self._taken = []
        self.put_back(back, max_sets)

    def put_back(self, sets: Sequence[FrameSet], max_sets: int):
        """Insert ``sets`` (complete ones buffered, the others pending), then trim."""
        for item in sets:
            if all(c in item.frames for c in self.cameras):
                self.complete.append(item)
            else:
                self.pending.append(item)
        self.complete.sort(key=lambda s: s.anchor_ns)
        self.pending.sort(key=lambda s: s.anchor_ns)
        self.trim(max_sets)

    def all_frames(self) -> List[Frame]:
        """Return every buffered frame (complete and pending sets)."""
        return [f for s in self.complete + self.pending for f in s.frames.values()]

    def restart(self):
        """Forget every set and the stamp history (the rig's clock went back)."""
        self.counters['sets_incomplete_dropped'] += len(self.pending)
        self.counters['evicted'] += self.frames_complete()
        self.clear()

    def clear(self) -> int:
        """Drop every set and the history; return the number of frames in complete sets."""
        count = self.frames_complete()
        self.complete.clear()
        self.pending.clear()
        self._closed.clear()
        self._last.clear()
        self._kept_thumbs.clear()
        self._taken = []
        return count
