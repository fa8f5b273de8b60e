# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Reconstruction jobs between the keyframe buffer and a backend (ROS-free, thread-safe).

:class:`ReconstructionSession` holds what one node instance knows about its reconstructions:
the keyframe buffer, the backend once loaded, whether a job runs, the last result and where it
was saved, and the node's counters. Triggers (service, timer, new keyframe) call
:meth:`~ReconstructionSession.try_start`, which takes the keyframes and returns a :class:`Job`;
the worker thread hands the job to :meth:`~ReconstructionSession.run`, which calls the backend,
streams every view's points through a :class:`~aetherscan_ros.cloud.ChunkStream` as they come,
checks that the streamed points are the result's, and records the outcome. A failed job gives
its frames back to the buffer, so nothing buffered is lost to a backend error.

The ROS shell (:mod:`aetherscan_ros.node`) publishes what the callbacks hand it and turns the
returned :class:`JobOutcome` into logs, diagnostics and events. Continuous mapping and TF
anchoring grow here, beside the single-window job.
"""

from dataclasses import dataclass, replace
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from aetherscan_ros.backends.base import Frame, ReconstructionResult
from aetherscan_ros.cloud import ChunkStream, point_budget, voxel_downsample
from aetherscan_ros.core.anchoring import Anchor, estimate_anchor, scaled_world
from aetherscan_ros.core.buffer import FrameBuffer
from aetherscan_ros.core.pose_priors import prior_anchor, usable_priors
from aetherscan_ros.core.undistortion import undistort_frame

# Counters reported in /diagnostics (the keyframe buffer keeps its own).
COUNTERS = (
    'frames_received', 'invalid_frames', 'camera_info_rejected', 'frame_id_changes',
    'reconstructions_started', 'reconstructions_ok', 'reconstructions_failed',
    'last_duration_s', 'last_points', 'chunks_published', 'stamp_future', 'size_changes',
    'camera_size_mismatches', 'qos_incompatible', 'callback_errors', 'saves_ok', 'saves_failed',
    'frames_paused')

# Optical frame (x right, y down, z forward) -> REP-103 body frame (x forward, y left, z up)
# at the same origin: the node's world_frame, so RViz's default view shows the scene upright.
UPRIGHT = np.array([[0.0, 0.0, 1.0, 0.0], [-1.0, 0.0, 0.0, 0.0], [0.0, -1.0, 0.0, 0.0],
                    [0.0, 0.0, 0.0, 1.0]])
UPRIGHT_FRAME = ('world = REP-103 body frame (x forward, y left, z up) at the optical centre of '
                 'the first camera; camera frames are optical (x right, y down, z forward)')
METRIC_FRAME = ('world = the upright frame of the first camera, in metres, placed in the '
                'fixed frame by the anchor (fixed_frame -> world_frame on TF)')

# A progress event is sent when the stage changes or the fraction moved by this much.
PROGRESS_STEP = 0.05


class JobCancelled(Exception):
    """Raised inside a running job when the session is closing (the node shuts down)."""


ChunkSink = Callable[[List[tuple]], None]
ProgressSink = Callable[[str, float, str], None]
ResultSink = Callable[[ReconstructionResult, Optional[Anchor]], None]


@dataclass(frozen=True)
class Job:
    """One reconstruction: its id, the keyframes taken from the buffer and what started it."""

    recon: int
    frames: Tuple[Frame, ...]
    trigger: str
    restore: bool = True  # a failure gives the frames back (mapping: its scheduler decides)

    @property
    def stamp_ns(self) -> int:
        """Return the stamp of the outputs: the newest input image's."""
        return max(f.stamp_ns for f in self.frames)


@dataclass(frozen=True)
class JobOutcome:
    """What :meth:`ReconstructionSession.run` did: a result, or the error message."""

    job: Job
    result: Optional[ReconstructionResult]
    seconds: float
    error: str = ''
    chunks: int = 0
    anchor: Optional[Anchor] = None  # the metric anchor (TF poses given), accepted or refused

    @property
    def ok(self) -> bool:
        return self.result is not None


class ReconstructionSession:
    """The reconstruction state of one node (see the module docstring)."""

    def __init__(self, buffer: FrameBuffer, session_id: Optional[int] = None,
                 upright: bool = True):
        self.buffer = buffer
        self.upright = upright  # results are turned into the upright world (UPRIGHT)
        # Tells this run's chunks from those of an earlier run of the same node (recon ids
        # start at 1 again): the start time in ms, increasing across restarts.
        self.session_id = int(time.time() * 1000) if session_id is None else int(session_id)
        self.cancel = threading.Event()  # set by close(): the running job stops at its next step
        self.lock = threading.RLock()
        self.stats: Dict[str, float] = dict.fromkeys(COUNTERS, 0)
        self.stats['last_duration_s'] = 0.0
        self.recon_id = 0
        self.busy = False
        self.auto_blocked = False  # a failed job waits for a new keyframe or ~/reconstruct
        self.upload_announced = False
        self.backend = None
        self.backend_reason = 'loading'
        self.last_result: Optional[ReconstructionResult] = None
        self.last_result_id = 0
        self.last_names: Tuple[str, ...] = ()
        # the (undistorted) frames of the result being published and of the last result: their
        # stamps, frame ids and images go into ~/depth/image and the ~/save exports (references)
        self.result_frames: Tuple[Frame, ...] = ()
        self.last_frames: Tuple[Frame, ...] = ()
        self.last_error = ''
        self.last_anchor: Optional[dict] = None  # summary of the last anchoring (fixed_frame)
        self._saved: Dict[int, str] = {}  # reconstruction id -> directory ~/save wrote

    # ------------------------------------------------------------------ state

    def count(self, key: str, amount: int = 1):
        """Add ``amount`` to counter ``key``."""
        with self.lock:
            self.stats[key] += amount

    def set_backend(self, backend, reason: str):
        """Record the loaded backend (``None`` with the reason when it could not be loaded)."""
        with self.lock:
            self.backend = backend
            self.backend_reason = reason

    def snapshot(self) -> dict:
        """Return a consistent copy of the state for diagnostics."""
        with self.lock:
            return {'stats': dict(self.stats), 'busy': self.busy, 'backend': self.backend,
                    'backend_reason': self.backend_reason, 'last_error': self.last_error,
                    'recon_id': self.recon_id}

    def keyframe_accepted(self, min_views: int) -> Tuple[int, bool]:
        """
        Note a new keyframe; return ``(buffered, announce)``.

        A new keyframe re-arms automatic triggering after a failure; ``announce`` is true
        once per window, when the buffer first holds ``min_views`` keyframes.
        """
        with self.lock:
            self.auto_blocked = False
        buffered = len(self.buffer)
        with self.lock:
            announce = buffered >= min_views and not self.upload_announced
            if announce:
                self.upload_announced = True
        return buffered, announce

    def reset(self) -> Tuple[int, bool]:
        """Clear the buffered keyframes; return ``(cleared, a job still runs)``."""
        count = self.buffer.clear()
        with self.lock:
            self.upload_announced = False
            return count, self.busy

    def last(self) -> Tuple[Optional[ReconstructionResult], int, Tuple[str, ...], Optional[str]]:
        """Return ``(result, reconstruction id, image names, saved directory or None)``."""
        with self.lock:
            recon = self.last_result_id
            return self.last_result, recon, self.last_names, self._saved.get(recon)

    def mark_saved(self, recon: int, path: str):
        """Remember that reconstruction ``recon`` was saved into ``path``."""
        with self.lock:
            self._saved[recon] = path

    # ------------------------------------------------------------------ jobs

    def try_start(self, trigger: str, min_views: int, max_views: int,
                  take: Optional[Callable] = None) -> Tuple[Optional[Job], str]:
        """
        Take the buffered keyframes for a job; return ``(job, message)`` or ``(None, reason)``.

        A service call needs only two keyframes; other triggers wait for ``min_views``.
        ``take(buffer) -> (frames, reason)`` picks the frames instead (a mapping window,
        :meth:`aetherscan_ros.core.mapping.Mapper.take_window`); such a job's frames are not
        given back to the buffer when it fails.
        """
        with self.lock:
            if self.busy:
                return None, f'reconstruction #{self.recon_id} is still running'
            if self.backend is None:
                return None, f'backend not ready: {self.backend_reason}'
            if take is not None:
                picked, reason = take(self.buffer)
                if not picked:
                    return None, reason
                frames = tuple(picked)
            else:
                need = 2 if trigger == 'service' else min_views
                have = len(self.buffer)
                if have < need:
                    return None, f'{have} keyframe(s) buffered, need {need}'
                frames = tuple(self.buffer.take(max_views))
            self.busy = True
            self.upload_announced = False
            self.recon_id += 1
            self.stats['reconstructions_started'] += 1
            job = Job(self.recon_id, frames, trigger, restore=take is None)
        return job, f'started reconstruction #{job.recon} with {len(frames)} views'

    def run(self, job: Job, chunk_points: int, on_chunks: ChunkSink, on_progress: ProgressSink,
            on_result: ResultSink, tf_poses: Optional[np.ndarray] = None,
            anchor_options: Optional[dict] = None) -> JobOutcome:
        """
        Run ``job`` on the backend, streaming chunks into ``on_chunks`` as views arrive.

        ``on_progress(stage, fraction, message)`` is called when the stage changes or the
        fraction moved by :data:`PROGRESS_STEP`; ``on_result(result, anchor)`` after the last
        chunk, before the job counts as done.

        ``tf_poses`` ``[V, 4, 4]`` (camera-to-fixed from TF, NaN where the lookup failed):
        the result is anchored (:func:`aetherscan_ros.core.anchoring.estimate_anchor` with
        ``anchor_options``); when the anchor is accepted, the points and camera translations are
        scaled to metres before anything is streamed (TF cannot carry a scale), so the chunks are
        held back until then. A refused anchor leaves the result as it is (``anchor.reason``).
        A backend that takes pose priors gets ``tf_poses`` as inputs (``core/pose_priors.py``)
        and returns the result in the fixed frame (``info['in_prior_frame']``): no fit, no
        upright turn, an identity anchor with the residuals to TF.

        An exception of the backend (or of the sinks) is the outcome's ``error``: the frames go
        back to the buffer and automatic triggering waits for a new keyframe. An exception
        outside that (the chunk stream itself) is raised; the caller then calls
        :meth:`job_crashed`.
        """
        backend = self.backend
        stream = ChunkStream(job.recon, chunk_points, session=self.session_id)
        streamed = [0]
        last = ['', -1.0]

        defer = tf_poses is not None
        turn = UPRIGHT[:3, :3].T.astype(np.float32) if self.upright else None

        def add_view(vc):
            self._check_cancel(job)
            if not defer:
                points = vc.points if turn is None else vc.points @ turn
                on_chunks(stream.add(points, vc.colors, vc.confidence, vc.view))
            streamed[0] += len(vc.points)

        def progress(ev):
            self._check_cancel(job)
            if ev.view_cloud is not None:
                add_view(ev.view_cloud)
            if ev.stage != last[0] or ev.fraction - last[1] >= PROGRESS_STEP:
                last[0], last[1] = ev.stage, ev.fraction
                on_progress(ev.stage, float(ev.fraction), ev.message)

        start = time.monotonic()
        try:
            # raw frames with lens distortion become pinhole frames here, on the worker
            frames = [undistort_frame(f) for f in job.frames]
            self._check_cancel(job)
            priors, why_not = usable_priors(backend, tf_poses)  # TF poses as backend inputs
            result = (backend.reconstruct(frames, progress) if priors is None else
                      backend.reconstruct(frames, progress, poses_c2w=priors))
            if why_not:
                result = replace(result, info={**result.info,
                                               'pose_priors': f'not used: {why_not}'})
            if streamed[0] == 0 and result.num_points:
                for view in range(result.num_views):  # a backend that did not stream
                    add_view(result.view_cloud(view))
            if streamed[0] != result.num_points:
                raise RuntimeError(f'the backend streamed {streamed[0]} points but returned '
                                   f'{result.num_points}')
            self._check_cancel(job)
            placed = bool(result.info.get('in_prior_frame'))  # in fixed_frame, metres
            if self.upright and not placed:
                result = upright_result(result)
            anchor = None
            if defer and placed:  # no fit: the residuals check how the priors were honoured
                anchor = prior_anchor(result.poses_c2w, tf_poses)
                result = replace(result, info={**result.info, 'anchor': anchor.to_dict()})
            elif defer:
                anchor = estimate_anchor(result.poses_c2w, tf_poses, **(anchor_options or {}))
                if anchor.ok:
                    result = anchored_result(result, anchor)
            for view in range(result.num_views if defer else 0):  # the held-back chunks
                vc = result.view_cloud(view)
                on_chunks(stream.add(vc.points, vc.colors, vc.confidence, vc.view))
            on_chunks(stream.finish())
            self.result_frames = tuple(frames)
            on_result(result, anchor)
        except Exception as exc:  # noqa: B902 - any backend failure keeps the frames
            seconds = time.monotonic() - start
            message = f'{type(exc).__name__}: {exc}'
            self.buffer.restore(job.frames) if job.restore else self.buffer.done()
            with self.lock:
                self.busy = False
                self.auto_blocked = True
                self.last_error = message
                self.stats['reconstructions_failed'] += 1
            return JobOutcome(job, None, seconds, message, stream.chunks_sent)
        seconds = time.monotonic() - start
        self.buffer.done()
        with self.lock:
            self.busy = False
            self.last_result = result
            self.last_result_id = job.recon
            self.last_names = tuple(f.name for f in job.frames)
            self.last_frames = self.result_frames
            self.last_error = ''
            self.stats['reconstructions_ok'] += 1
            self.stats['last_duration_s'] = seconds
            self.stats['last_points'] = result.num_points
        return JobOutcome(job, result, seconds, '', stream.chunks_sent, anchor)

    def _check_cancel(self, job: Job):
        if self.cancel.is_set():
            raise JobCancelled(f'reconstruction #{job.recon} cancelled: the node is shutting '
                               'down')

    def close(self):
        """Ask a running job to stop at its next progress step (backends report often)."""
        self.cancel.set()

    def job_crashed(self, job: Job, exc: Exception) -> int:
        """
        Recover from an exception outside the backend call; return the frames kept.

        The frames go back to the buffer unless :meth:`run` already gave them back.
        """
        with self.lock:
            busy = self.busy
            self.busy = False
            self.last_error = f'{type(exc).__name__}: {exc}'
            if busy:
                self.stats['reconstructions_failed'] += 1
        if not busy or not job.restore:
            self.buffer.done()
            return 0
        self.buffer.restore(job.frames)
        return len(job.frames)


def upright_result(result: ReconstructionResult) -> ReconstructionResult:
    """Return ``result`` in the upright world: points and poses turned by :data:`UPRIGHT`."""
    rot = UPRIGHT[:3, :3]
    points = (result.points @ rot.T.astype(np.float32)).astype(result.points.dtype, copy=False)
    info = dict(result.info)
    info['world_frame'] = UPRIGHT_FRAME
    return replace(result, points=points, poses_c2w=UPRIGHT @ result.poses_c2w, info=info)


def anchored_result(result: ReconstructionResult, anchor: Anchor) -> ReconstructionResult:
    """Return ``result`` in metres: points and camera translations times ``anchor.scale``."""
    points, poses = scaled_world(anchor, result.points, result.poses_c2w)
    info = dict(result.info)
    info.update(metric_scale=True, anchor=anchor.to_dict(), world_frame=METRIC_FRAME)
    return replace(result, points=points.astype(result.points.dtype, copy=False),
                   poses_c2w=poses, info=info)


def output_cloud(result: ReconstructionResult, voxel_size: float,
                 max_points: int) -> Tuple[tuple, Optional[str]]:
    """
    Return the cloud for the latched output and a note when the point budget cut it.

    ``(points [N, 3], colors [N, 3], confidence [N], view [N])`` of ``result``, voxel-averaged
    when ``voxel_size > 0``, then reduced to at most ``max_points`` (0 = no budget).
    """
    cloud = (result.points, result.colors, result.confidence, result.view_index)
    if voxel_size > 0 and result.num_points:
        cloud = tuple(voxel_downsample(*cloud, voxel=voxel_size))
    note = None
    if max_points and len(cloud[0]) > max_points:
        before = len(cloud[0])
        budgeted, voxel = point_budget(*cloud, max_points=max_points)
        cloud = tuple(budgeted)
        note = (f'{before} points over cloud_max_points {max_points}: {len(cloud[0])} after '
                f'voxel {voxel:.4g}')
    return cloud, note
