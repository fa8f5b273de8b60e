# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Continuous mapping: overlapping reconstruction windows fused into one voxel map (ROS-free).

Keyframes stream in; :class:`WindowScheduler` cuts them into windows of ``window_size``
keyframes, each starting with the last ``window_overlap`` keyframes already in the map (the
anchors) followed by ``window_size - window_overlap`` new ones (the first window: all new). In
``capture_mode: sets`` the unit is a whole set of the rig (``group`` frames): sizes round to
whole sets. The worker reconstructs a window; :meth:`Mapper.integrate` registers it into the
map and fuses it into a :class:`~aetherscan_ros.core.voxel_map.VoxelMap`.

Registration (``method`` in the report):

* ``tf_anchor``: ``fixed_frame`` set and the window's TF anchor accepted: the (metric) window
  goes into the map by ``anchor.world_to_fixed``; the map frame is ``fixed_frame``, metres.
* ``shared_keyframes``: otherwise (or when the anchor was refused): the robust similarity of
  :func:`aetherscan_ros.core.registration.register_window` from the anchors' poses and depths.
* ``first``: no ``fixed_frame`` and an empty map: the window's (upright) world becomes the map
  frame (published as ``world_frame``; its scale is the first window's).

Loose ends: a window that fails (backend error or refused registration) is reported with
``registered: false`` and its reason and changes nothing in the map; the anchors stay, the
failed window's first new keyframe is skipped and the others wait for the next window (with
newer ones), so a later window can reconnect. With TF, every window registers on its own.

Node contract (``mode: mapping``), read by the demo and the tests:

* ``~/events`` ``window_complete``: ``window`` (id, = the reconstruction id), ``registered``
  (bool), ``reason`` ('' when registered), ``method``, ``scale`` (window -> map, the TF
  anchor's with ``tf_anchor``; null when not registered), ``residual`` (map units: metres
  when anchored), ``residual_rel`` (of the scene depth), ``points_added`` (new voxels),
  ``points_updated``, ``points_removed`` (evicted by the bounds), ``map_points``,
  ``keyframes`` (names of the window's new keyframes), ``keyframes_placed`` (how many of them
  got a pose), ``keyframes_total`` (in the map), ``backend``, ``frame`` (the map frame).
* ``~/map`` (PointCloud2, reliable + transient-local depth 1, in the map frame): fields
  ``x y z rgb confidence count`` (float32 x3, rgb as float32-packed 0x00RRGGBB, confidence
  float32 = mean, count uint16 = observations, clipped), budgeted to ``cloud_max_points``.
* ``~/points``: the voxels created or changed by a window (same fields as ``~/cloud``, the
  ``view`` field = observation count), chunked with the chunk protocol, ``recon`` = window id.
* ``~/path`` (nav_msgs/Path, transient-local): every keyframe pose of the map, optical frames.
* TF ``<map frame> -> <frame_prefix>map_camera_optical`` on ``/tf``: the newest keyframe.
* ``~/save``: ``map_NNNN/`` with ``map.ply`` (x y z rgb confidence view=count) and
  ``keyframes.json`` (every keyframe: name, stamp_ns, camera, window, pose_c2w in the map frame).
* ``~/reset``: clears the map, the path and the pending keyframes.
"""

from dataclasses import dataclass, field
import json
import math
import threading
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from aetherscan_ros.backends.base import Frame, ReconstructionResult
from aetherscan_ros.core.registration import (depth_grid, DepthGrid, register_window,
                                              transform_poses)
from aetherscan_ros.core.voxel_map import VoxelMap
from aetherscan_ros.core.windows import frame_key, Window, WindowScheduler

# map_voxel_size 0: the voxel edge is this fraction of the first window's median depth
AUTO_VOXEL_FRACTION = 1.0 / 200.0
MAP_FILE = 'map.ply'
KEYFRAMES_FILE = 'keyframes.json'


@dataclass(frozen=True)
class MappingConfig:
    """Mapping settings (node parameters ``window_size``, ``window_overlap``, ``map_*``)."""

    window_size: int = 8
    window_overlap: int = 2
    voxel_size: float = 0.0        # 0 = auto (AUTO_VOXEL_FRACTION of the first window's depth)
    max_points: int = 2_000_000
    radius: float = 0.0
    metric: bool = False           # fixed_frame set: windows are anchored by TF
    max_residual_rel: float = 0.05
    group: int = 1                 # frames per unit (cameras of a rig in capture_mode sets)

    def __post_init__(self):
        if self.window_size < 2:
            raise ValueError(f'window_size must be >= 2, got {self.window_size}')
        if not 1 <= self.window_overlap < self.window_size:
            raise ValueError(f'window_overlap must be in [1, window_size), got '
                             f'{self.window_overlap} (window_size {self.window_size})')


@dataclass
class Keyframe:
    """A keyframe in the map: identity, the window that placed it and its map pose."""

    name: str
    stamp_ns: int
    camera: str
    frame_id: str
    window: int
    pose_c2w: np.ndarray   # [4, 4] in the map frame

    def to_dict(self) -> dict:
        return {'name': self.name, 'stamp_ns': self.stamp_ns, 'camera': self.camera,
                'frame_id': self.frame_id, 'window': self.window,
                'pose_c2w': self.pose_c2w.tolist()}


@dataclass(frozen=True)
class WindowReport:
    """What one window did to the map (the ``window_complete`` event)."""

    window: int
    registered: bool
    reason: str = ''
    method: str = ''
    scale: Optional[float] = None
    residual: Optional[float] = None
    residual_rel: Optional[float] = None
    points_added: int = 0
    points_updated: int = 0
    points_removed: int = 0
    map_points: int = 0
    keyframes: Tuple[str, ...] = ()
    keyframes_total: int = 0
    backend: str = ''
    keyframe_poses: np.ndarray = field(default_factory=lambda: np.zeros((0, 4, 4)))

    def to_event(self) -> dict:
        """Return the JSON-able fields of the ``window_complete`` event."""
        out = {k: getattr(self, k) for k in (
            'window', 'registered', 'reason', 'method', 'scale', 'residual', 'residual_rel',
            'points_added', 'points_updated', 'points_removed', 'map_points',
            'keyframes_total', 'backend')}
        for key in ('scale', 'residual', 'residual_rel'):
            if out[key] is not None and not math.isfinite(out[key]):
                out[key] = None
        out['keyframes'] = list(self.keyframes)
        out['keyframes_placed'] = len(self.keyframe_poses)
        return out


class Mapper:
    """The map, its keyframes and the window scheduler; thread-safe (one lock)."""

    def __init__(self, config: MappingConfig):
        self.config = config
        self.lock = threading.RLock()
        self.scheduler = WindowScheduler(config.window_size, config.window_overlap,
                                         config.group)
        self.map: Optional[VoxelMap] = None
        self.keyframes: List[Keyframe] = []
        self._grids: Dict[Tuple[str, int], DepthGrid] = {}  # anchors' depths, map unit
        self._poses: Dict[Tuple[str, int], np.ndarray] = {}  # anchors' map poses
        self.windows_ok = 0
        self.windows_failed = 0
        self.generation = 0   # bumped by reset(): a window started before is not fused
        self.in_flight: Optional[Window] = None

    # ------------------------------------------------------------------ windows

    def take_window(self, buffer, force: bool = False) -> Tuple[Optional[List[Frame]], str]:
        """
        Move the buffered keyframes to the scheduler; return the next window's frames.

        ``(frames, '')`` or ``(None, reason)``. Call with the buffer ready for ``take``
        (:meth:`aetherscan_ros.core.session.ReconstructionSession.try_start` does).
        ``force``: a shorter window of what waits (``~/reconstruct`` at the end of a stream).
        """
        with self.lock:
            if self.in_flight is not None:
                return None, 'a mapping window is running'
            self.scheduler.add(buffer.take())
            window = self.scheduler.next_window(force)
            if window is None:
                buffer.done()
                return None, (f'{len(self.scheduler.pending)} new keyframe unit(s) pending, '
                              f'the next window needs {self.scheduler.need()}')
            self.in_flight = window
            return list(window.frames), ''

    def integrate(self, recon: int, frames: Sequence[Frame], result: ReconstructionResult,
                  anchor=None, generation: Optional[int] = None) -> WindowReport:
        """
        Register the window's ``result`` (views = ``frames``) and fuse it into the map.

        ``anchor``: the window's TF anchor (``fixed_frame`` set), accepted or refused; an
        accepted one means ``result`` is already in metres.
        """
        with self.lock:
            window = self._window_of(frames)
            if result.num_views != len(window.frames):
                return self._fail(window, recon, result.backend, f'the backend returned '
                                  f'{result.num_views} poses for {len(window.frames)} views')
            if generation is not None and generation != self.generation:
                return self._fail(window, recon, result.backend, 'the map was reset while the '
                                  'window ran', skip=False)
            sim, method, reg, why = self._register(window, result, anchor)
            if sim is None:
                return self._fail(window, recon, result.backend, why)
            poses = transform_poses(sim, result.poses_c2w)
            points = result.points.astype(np.float64) @ sim[:3, :3].T + sim[:3, 3]
            scale = float(np.cbrt(np.linalg.det(sim[:3, :3])))
            if self.map is None:
                self.map = VoxelMap(self._voxel_size(result, scale), self.config.max_points,
                                    self.config.radius)
            finite = np.isfinite(poses).all(axis=(1, 2))   # views the backend registered
            newest = poses[finite][-1, :3, 3] if finite.any() else None
            stats = self.map.fuse(points, result.colors, result.confidence, centre=newest)
            new = [(i, f) for i, f in enumerate(window.frames) if i >= window.anchors and
                   finite[i]]
            for i, frame in new:
                self.keyframes.append(Keyframe(frame.name, int(frame.stamp_ns), frame.camera,
                                               frame.frame_id, recon, poses[i].copy()))
            placed = {frame_key(f) for f, ok in zip(window.frames, finite) if ok}
            if self.scheduler.completed(window, placed):
                self._keep_anchor_data(window, result, poses, scale)
            self.windows_ok += 1
            self.in_flight = None
            if method == 'tf_anchor':   # the result came in metres: report the anchor's scale
                scale = float(anchor.scale)
            return WindowReport(
                recon, True, '', method, scale, reg[0], reg[1], stats.added, stats.updated,
                stats.removed, stats.map_points, tuple(f.name for f in window.new_frames),
                len(self.keyframes), result.backend, poses[[i for i, _ in new]])

    def window_failed(self, recon: int, frames: Sequence[Frame], reason: str,
                      backend: str = '') -> WindowReport:
        """Record a window the backend could not reconstruct (the map keeps going)."""
        with self.lock:
            return self._fail(self._window_of(frames), recon, backend, reason)

    def _window_of(self, frames: Sequence[Frame]) -> Window:
        window = self.in_flight
        if window is None or [frame_key(f) for f in window.frames] != \
                [frame_key(f) for f in frames]:
            window = Window(tuple(frames), 0)   # not scheduled here (a test, a reset)
        return window

    def _fail(self, window: Window, recon: int, backend: str, reason: str,
              skip: bool = True) -> WindowReport:
        if window is self.in_flight:
            if skip:
                self.scheduler.failed(window)
            self.in_flight = None
        self.windows_failed += 1
        return WindowReport(recon, False, reason, 'none', map_points=len(self.map or ()),
                            keyframes=tuple(f.name for f in window.new_frames),
                            keyframes_total=len(self.keyframes), backend=backend)

    def _register(self, window: Window, result: ReconstructionResult, anchor):
        """Return ``(similarity [4, 4] | None, method, (residual, rel), reason)``."""
        anchor_note = ''
        if self.config.metric:
            if anchor is not None and anchor.ok:
                return (np.array(anchor.world_to_fixed, np.float64), 'tf_anchor',
                        (anchor.residual_rms_m, _NAN), '')
            anchor_note = ('TF anchor refused: ' + (anchor.reason if anchor is not None
                                                    else 'no TF'))
        elif not self.keyframes:
            return np.eye(4), 'first', (0.0, 0.0), ''
        if window.anchors == 0 or not self.keyframes:
            return None, 'none', (_NAN, _NAN), anchor_note or \
                'no keyframe shared with the map (no anchors)'
        keys = [frame_key(f) for f in window.frames[:window.anchors]]
        if any(k not in self._poses for k in keys):
            return None, 'none', (_NAN, _NAN), 'the anchors are no longer in the map'
        win_grids = [self._grid(result, i) for i in range(window.anchors)]
        reg = register_window(result.poses_c2w[:window.anchors],
                              np.stack([self._poses[k] for k in keys]), win_grids,
                              [self._grids.get(k) for k in keys],
                              self.config.max_residual_rel)
        if not reg.ok:
            return None, 'none', (reg.residual, reg.residual_rel), \
                '; '.join(filter(None, [anchor_note, 'registration refused: ' + reg.reason]))
        return reg.transform, 'shared_keyframes', (reg.residual, reg.residual_rel), ''

    @staticmethod
    def _grid(result: ReconstructionResult, view: int) -> Optional[DepthGrid]:
        return depth_grid(result.view_cloud(view).points, result.poses_c2w[view],
                          result.intrinsics[view], result.image_sizes[view])

    def _keep_anchor_data(self, window: Window, result: ReconstructionResult,
                          poses: np.ndarray, scale: float):
        """Keep the map poses and depths of the frames that anchor the next window."""
        index = {frame_key(f): i for i, f in enumerate(window.frames)}
        self._poses, self._grids = {}, {}
        for key in (frame_key(f) for unit in self.scheduler.anchors for f in unit):
            i = index[key]
            self._poses[key] = poses[i]
            grid = self._grid(result, i)
            if grid is not None:
                self._grids[key] = grid.scaled(scale)

    def _voxel_size(self, result: ReconstructionResult, scale: float) -> float:
        if self.config.voxel_size > 0:
            return self.config.voxel_size
        depths = [g.depth for g in (self._grid(result, i) for i in range(result.num_views))
                  if g is not None]
        depth = float(np.median(np.concatenate(depths))) * scale if depths else 1.0
        return max(depth * AUTO_VOXEL_FRACTION, 1e-6)

    # ------------------------------------------------------------------ the map

    def take_changes(self):
        """Return ``(CloudArrays of changed voxels, removed count)`` (empty without a map)."""
        with self.lock:
            if self.map is None:
                return None, 0
            return self.map.take_changes()

    def map_cloud(self):
        """Return the whole map as :class:`~aetherscan_ros.cloud.CloudArrays` (or None)."""
        with self.lock:
            return None if self.map is None else self.map.cloud()

    def path(self) -> np.ndarray:
        """Return every keyframe pose ``[K, 4, 4]`` in the map frame, in order."""
        with self.lock:
            if not self.keyframes:
                return np.zeros((0, 4, 4))
            return np.stack([k.pose_c2w for k in self.keyframes])

    def snapshot(self) -> dict:
        """Return counters for diagnostics and the save: windows, keyframes, map size."""
        with self.lock:
            return {'windows_ok': self.windows_ok, 'windows_failed': self.windows_failed,
                    'keyframes': len(self.keyframes), 'map_points': len(self.map or ()),
                    'map_bytes': self.map.nbytes if self.map is not None else 0,
                    'voxel_size': self.map.voxel_size if self.map is not None else None,
                    'keyframes_dropped': self.scheduler.dropped,
                    'keyframes_pending': sum(len(u) for u in self.scheduler.pending)}

    def save(self, directory) -> Tuple[int, int]:
        """
        Write ``map.ply`` and ``keyframes.json`` into ``directory``; return (voxels, keyframes).

        ``map.ply``: the map in its frame (the ``view`` property holds the observation count);
        ``keyframes.json``: ``{'voxel_size', 'windows_ok', 'windows_failed', 'keyframes':
        [{name, stamp_ns, camera, frame_id, window, pose_c2w}]}``. Raises ``ValueError`` when
        the map is empty.
        """
        from pathlib import Path

        from aetherscan_ros.files.atomic import atomic_write_text
        from aetherscan_ros.files.ply import write_ply
        with self.lock:
            if self.map is None or not len(self.map):
                raise ValueError('the map is empty: no window registered yet')
            cloud = self.map.cloud()
            doc = {**self.snapshot(), 'keyframes': [k.to_dict() for k in self.keyframes]}
        directory = Path(directory)
        write_ply(directory / MAP_FILE, cloud.points, cloud.colors, cloud.confidence,
                  cloud.view, comments=['view = observation count of the voxel'])
        atomic_write_text(directory / KEYFRAMES_FILE, json.dumps(doc, indent=1))
        return len(cloud), len(doc['keyframes'])

    def reset(self) -> int:
        """Start a new map; return how many voxels were dropped."""
        with self.lock:
            dropped = len(self.map or ())
            self.map = None
            self.keyframes = []
            self._grids, self._poses = {}, {}
            self.scheduler.clear()
            self.in_flight = None
            self.generation += 1
            return dropped


_NAN = float('nan')
