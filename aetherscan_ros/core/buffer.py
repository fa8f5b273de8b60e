# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Bounded multi-view keyframe buffer (ROS-free, thread-safe).

Frames are offered per camera. A frame becomes a keyframe when, for its camera, at least
``min_interval_s`` passed since the last keyframe (header stamps) and its 32x24 grey thumbnail
differs from the last keyframe's by at least ``min_change`` (mean absolute difference, 0..1).
The buffer keeps at most ``max_views`` keyframes; when full, the oldest is evicted.

While a reconstruction runs, the worker holds the frames it took with :meth:`FrameBuffer.take`.
Frames offered meanwhile are buffered for the next reconstruction (``busy_policy='buffer'``) or
discarded (``'drop'``); both are counted. A failed reconstruction gives its frames back with
:meth:`FrameBuffer.restore`, so nothing buffered is lost to a backend error.

``capture_mode='series'`` (above) buffers a time series. ``capture_mode='sets'`` is for a fixed
rig of ``cameras`` watching a scene that changes: frames whose stamps agree within
``sync_tolerance`` form one set (:mod:`aetherscan_ros.core.sync`, which also says how the
keyframe rules act on sets), only complete sets count (``len``, so ``min_views`` counts frames of
complete sets), the window holds ``max(1, max_views // cameras)`` complete sets and
:meth:`FrameBuffer.take` returns the newest complete sets, never frames of different moments.
"""

from collections import Counter, deque
from dataclasses import dataclass
import threading
from typing import Deque, Dict, List, Optional, Sequence

import cv2
import numpy as np

from aetherscan_ros.backends.base import Frame
from aetherscan_ros.core.sync import (  # noqa: F401 - the outcomes are part of this API
    ACCEPTED, group_frames, SetAssembler, SKIP_BACKWARDS, SKIP_DUPLICATE, SKIP_INTERVAL,
    SKIP_LATE, SKIP_SIMILAR)

THUMB_SIZE = (32, 24)

DROP_BUSY = 'dropped_busy'
CAPTURE_MODES = ('series', 'sets')


def thumbnail(image: np.ndarray) -> np.ndarray:
    """Return the ``[24, 32]`` float32 grey thumbnail in [0, 1] of an ``[H, W, 3]`` uint8 image."""
    small = cv2.resize(image, THUMB_SIZE, interpolation=cv2.INTER_AREA)
    grey = small.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    return grey / 255.0


@dataclass
class _CameraState:
    stamp_ns: int
    thumb: np.ndarray


class FrameBuffer:
    """
    Keyframe selection plus a bounded window of keyframes, safe to use from several threads.

    ``counters`` (a ``collections.Counter``) counts every outcome: ``offered``, ``keyframe``,
    ``skipped_interval``, ``skipped_similar``, ``stamp_backwards``, ``dropped_busy``,
    ``evicted`` (oldest keyframe pushed out by a newer one), ``taken``, ``restored``,
    ``cleared``; in ``sets`` mode also ``skipped_duplicate``, ``skipped_late``,
    ``sets_complete``, ``sets_incomplete_dropped``, ``sets_similar``, ``sets_evicted``,
    ``sets_taken``.
    """

    def __init__(self, max_views: int, min_interval_s: float = 0.0, min_change: float = 0.0,
                 busy_policy: str = 'buffer', capture_mode: str = 'series',
                 sync_tolerance: float = 0.01, cameras: Sequence[str] = ()):
        if max_views < 1:
            raise ValueError(f'max_views must be >= 1, got {max_views}')
        if busy_policy not in ('buffer', 'drop'):
            raise ValueError(f'busy_policy must be buffer or drop, got {busy_policy!r}')
        if capture_mode not in CAPTURE_MODES:
            raise ValueError(f'capture_mode must be series or sets, got {capture_mode!r}')
        self._lock = threading.Lock()
        self._frames: Deque[Frame] = deque()
        self._cameras: Dict[str, _CameraState] = {}
        self.max_views = int(max_views)
        self.min_interval_s = float(min_interval_s)
        self.min_change = float(min_change)
        self.busy_policy = busy_policy
        self.busy = False
        self.counters: Counter = Counter()
        self.capture_mode = 'series'
        self._sets: Optional[SetAssembler] = None
        self._cameras_list = tuple(cameras)
        self._tolerance = float(sync_tolerance)
        if capture_mode == 'sets':
            self._switch_to_sets()

    def configure(self, max_views: Optional[int] = None, min_interval_s: Optional[float] = None,
                  min_change: Optional[float] = None, busy_policy: Optional[str] = None,
                  capture_mode: Optional[str] = None, sync_tolerance: Optional[float] = None):
        """
        Change the selection settings at run time (a smaller window evicts the oldest).

        Switching ``capture_mode`` keeps the buffered frames: series -> sets groups them into
        sets by stamp, sets -> series lines up the frames of every set (complete or not).
        """
        if capture_mode is not None and capture_mode not in CAPTURE_MODES:
            raise ValueError(f'capture_mode must be series or sets, got {capture_mode!r}')
        with self._lock:
            if max_views is not None:
                self.max_views = int(max_views)
            if min_interval_s is not None:
                self.min_interval_s = float(min_interval_s)
            if min_change is not None:
                self.min_change = float(min_change)
            if busy_policy is not None:
                self.busy_policy = busy_policy
            if sync_tolerance is not None and float(sync_tolerance) != self._tolerance:
                self._tolerance = float(sync_tolerance)
                if self._sets is not None:
                    self._sets.tolerance_ns = int(round(self._tolerance * 1e9))
            if capture_mode == 'sets' and self._sets is None:
                self._switch_to_sets()
            elif capture_mode == 'series' and self._sets is not None:
                frames = sorted(self._sets.all_frames(), key=lambda f: f.stamp_ns)
                self._sets = None
                self.capture_mode = 'series'
                self._frames = deque(frames)
            self._trim()

    def _switch_to_sets(self):
        self._sets = SetAssembler(self._cameras_list, self._tolerance, self.counters)
        self.capture_mode = 'sets'
        self._sets.put_back(group_frames(list(self._frames), self._sets.tolerance_ns),
                            self._sets.sets_for(self.max_views))
        self._frames.clear()

    def __len__(self) -> int:
        """Return the number of buffered keyframes (in ``sets`` mode: of complete sets)."""
        with self._lock:
            return self._buffered()

    def _buffered(self) -> int:
        return len(self._frames) if self._sets is None else self._sets.frames_complete()

    def precheck(self, camera: str, stamp_ns: int) -> Optional[str]:
        """
        Return the skip outcome decided by camera and stamp alone, or ``None``.

        Lets the node skip decoding images that cannot become keyframes. Counts nothing.
        """
        with self._lock:
            if self.busy and self.busy_policy == 'drop':
                return DROP_BUSY
            if self._sets is not None:
                return self._sets.check(camera, stamp_ns, self.min_interval_s)
            state = self._cameras.get(camera)
            if state is None:
                return None
            if stamp_ns < state.stamp_ns:
                return SKIP_BACKWARDS
            if (stamp_ns - state.stamp_ns) < self.min_interval_s * 1e9:
                return SKIP_INTERVAL
            return None

    def note_skipped(self, camera: str, outcome: str):
        """
        Count a frame of ``camera`` the caller skipped after :meth:`precheck`.

        A camera whose stamps went backwards (a bag restarted, a clock reset) starts afresh:
        its next frame is compared with no previous keyframe.
        """
        with self._lock:
            self.counters['offered'] += 1
            self.counters[outcome] += 1
            if outcome == SKIP_BACKWARDS:
                self._cameras.pop(camera, None)
                if self._sets is not None:
                    self._sets.restart()

    def offer(self, frame: Frame, thumb: Optional[np.ndarray] = None) -> str:
        """Offer one decoded frame; return the outcome (``keyframe`` or a skip/drop reason)."""
        if thumb is None:
            thumb = thumbnail(frame.image)
        with self._lock:
            self.counters['offered'] += 1
            if self.busy and self.busy_policy == 'drop':
                self.counters[DROP_BUSY] += 1
                return DROP_BUSY
            if self._sets is not None:
                outcome = self._sets.add(frame, thumb, self.min_interval_s, self.min_change,
                                         self._sets.sets_for(self.max_views))
                self.counters[outcome] += 1
                return outcome
            state = self._cameras.get(frame.camera)
            if state is not None:
                if frame.stamp_ns < state.stamp_ns:
                    del self._cameras[frame.camera]
                    self.counters[SKIP_BACKWARDS] += 1
                    return SKIP_BACKWARDS
                if (frame.stamp_ns - state.stamp_ns) < self.min_interval_s * 1e9:
                    self.counters[SKIP_INTERVAL] += 1
                    return SKIP_INTERVAL
                if (state.thumb.shape == thumb.shape and
                        float(np.abs(state.thumb - thumb).mean()) < self.min_change):
                    self.counters[SKIP_SIMILAR] += 1
                    return SKIP_SIMILAR
            self._cameras[frame.camera] = _CameraState(frame.stamp_ns, thumb)
            self._frames.append(frame)
            self.counters[ACCEPTED] += 1
            self._trim()
            return ACCEPTED

    def take(self, limit: Optional[int] = None) -> List[Frame]:
        """
        Remove and return the newest ``limit`` (default all) keyframes, oldest first.

        Sets ``busy``; the caller must call :meth:`done` (success) or :meth:`restore`.
        Older keyframes beyond ``limit`` stay buffered. In ``sets`` mode: the newest
        ``max(1, limit // cameras)`` complete sets, oldest set first, each in camera order.
        """
        with self._lock:
            if self._sets is not None:
                taken = self._sets.take(None if limit is None else self._sets.sets_for(limit))
                self.counters['taken'] += len(taken)
                self.busy = True
                return taken
            count = len(self._frames) if limit is None else min(int(limit), len(self._frames))
            taken = [self._frames.pop() for _ in range(count)][::-1]
            taken.sort(key=lambda f: f.stamp_ns)
            self.counters['taken'] += len(taken)
            self.busy = True
            return taken

    def done(self):
        """Mark the running reconstruction finished (its frames are consumed)."""
        with self._lock:
            self.busy = False

    def restore(self, frames: Sequence[Frame]):
        """
        Give back the frames of a failed reconstruction, in front of newer keyframes.

        When the window overflows, the oldest keyframes are evicted (counted).
        """
        with self._lock:
            if self._sets is not None:
                self._sets.restore(frames, self._sets.sets_for(self.max_views))
            else:
                self._frames.extendleft(reversed(list(frames)))
            self.counters['restored'] += len(frames)
            self.busy = False
            self._trim()

    def clear(self) -> int:
        """Drop every buffered keyframe and the per-camera history; return how many."""
        with self._lock:
            count = len(self._frames)
            if self._sets is not None:
                count = self._sets.clear()
            self._frames.clear()
            self._cameras.clear()
            self.counters['cleared'] += count
            return count

    def snapshot_counters(self) -> Dict[str, int]:
        """
        Return a copy of the counters plus ``buffered`` (thread-safe).

        In ``sets`` mode ``buffered`` counts frames of complete sets, ``pending`` the frames
        waiting in incomplete sets.
        """
        with self._lock:
            out = dict(self.counters)
            out['buffered'] = self._buffered()
            if self._sets is not None:
                out['pending'] = self._sets.frames_pending()
                out['sets_buffered'] = len(self._sets.complete)
            return out

    def _trim(self):
        if self._sets is not None:
            self._sets.trim(self._sets.sets_for(self.max_views))
            return
        while len(self._frames) > self.max_views:
            self._frames.popleft()
            self.counters['evicted'] += 1
