# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Which keyframes form the next mapping window (ROS-free; see :mod:`aetherscan_ros.core.mapping`).

A window is the last ``window_overlap`` keyframes of the previous registered window (the
anchors, already in the map) followed by ``window_size - window_overlap`` new keyframes, oldest
first; the first window (no anchors) takes ``window_size`` new ones. Sizes count units: one
keyframe, or one whole set of a rig (``group`` frames, ``capture_mode: sets``). The queue of new
keyframes is bounded (``max_pending_windows`` windows' worth): when mapping falls behind, the
oldest are dropped and counted.
"""

from collections import deque
from dataclasses import dataclass
from typing import Deque, List, Optional, Sequence, Set, Tuple

from aetherscan_ros.backends.base import Frame


def frame_key(frame: Frame) -> Tuple[str, int]:
    """Return the identity of a keyframe: ``(camera, stamp_ns)``."""
    return frame.camera, int(frame.stamp_ns)


@dataclass(frozen=True)
class Window:
    """One window: its frames (anchors first) and how many of them are anchors."""

    frames: Tuple[Frame, ...]
    anchors: int

    @property
    def new_frames(self) -> Tuple[Frame, ...]:
        return self.frames[self.anchors:]


class WindowScheduler:
    """Which keyframes form the next window (module docstring). Not thread-safe."""

    def __init__(self, window_size: int, window_overlap: int, group: int = 1,
                 max_pending_windows: int = 4):
        self.group = max(1, int(group))
        self.size = max(2, int(window_size) // self.group)          # in units
        self.overlap = min(max(1, -(-int(window_overlap) // self.group)), self.size - 1)
        self.max_pending = max_pending_windows * (self.size - self.overlap)
        self.pending: Deque[Tuple[Frame, ...]] = deque()
        self.anchors: List[Tuple[Frame, ...]] = []
        self.dropped = 0   # keyframes dropped: pending overflow or skipped after a failure

    def add(self, frames: Sequence[Frame]):
        """Queue new keyframes (oldest first; in sets mode whole sets, camera order)."""
        frames = list(frames)
        for start in range(0, len(frames) - len(frames) % self.group, self.group):
            self.pending.append(tuple(frames[start:start + self.group]))
        while len(self.pending) > self.max_pending:
            self.dropped += len(self.pending.popleft())

    def need(self) -> int:
        """Return how many new units the next window needs."""
        return self.size - len(self.anchors)

    def next_window(self, force: bool = False) -> Optional[Window]:
        """
        Take the next window, or None while too few new keyframes wait.

        ``force``: take what waits (a shorter window; two units without anchors).
        """
        need = self.need()
        if force and len(self.pending) >= (1 if self.anchors else 2):
            need = min(need, len(self.pending))
        if len(self.pending) < need:
            return None
        units = list(self.anchors) + [self.pending.popleft() for _ in range(need)]
        anchors = sum(len(u) for u in self.anchors)
        return Window(tuple(f for u in units for f in u), anchors)

    def completed(self, window: Window, placed: Optional[Set[Tuple[str, int]]] = None) -> bool:
        """
        Mark the window as in the map: its last ``overlap`` units anchor the next one.

        ``placed``: the :func:`frame_key` of the frames that got a pose; only units whose
        frames all did can anchor (none: the anchors stay). Returns whether they changed.
        """
        units = [tuple(window.frames[i:i + self.group])
                 for i in range(0, len(window.frames), self.group)]
        if placed is not None:
            units = [u for u in units if all(frame_key(f) in placed for f in u)]
        if not units:
            return False
        self.anchors = units[-self.overlap:]
        return True

    def failed(self, window: Window):
        """Mark the window failed: skip its first new unit, queue the others again in front."""
        units = [window.new_frames[i:i + self.group]
                 for i in range(0, len(window.new_frames), self.group)]
        if units:
            self.dropped += len(units[0])
        for unit in reversed(units[1:]):
            self.pending.appendleft(tuple(unit))

    def clear(self):
        """Forget the anchors and the pending keyframes."""
        self.pending.clear()
        self.anchors = []
