# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The node's worker thread: it owns the backend and runs one reconstruction at a time.

It builds the backend first (Fast3R loading can take a while), then takes jobs from a queue,
runs them through :meth:`aetherscan_ros.core.session.ReconstructionSession.run` and publishes
the chunks as views arrive, then the full cloud, TF frames, poses, markers and events.
"""

import queue
import threading
import time
import traceback

import numpy as np

from aetherscan_ros.backends.licences import of_backend
from aetherscan_ros.core.pose_priors import PRIOR_METHOD
from aetherscan_ros.core.session import Job, JobOutcome

# How long shutdown waits for a native backend call to return before it gives up.
SHUTDOWN_WAIT_S = 60.0


class JobWorker:
    """The worker thread of one node; ``backend_factory() -> (backend, reason)`` is optional."""

    def __init__(self, node, backend_factory=None):
        self._node = node
        self._backend_factory = backend_factory
        self._jobs: 'queue.Queue[Job]' = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name='aetherscan_worker',
                                        daemon=True)

    def start(self):
        """Start the thread (it loads the backend first)."""
        self._thread.start()

    def submit(self, job: Job):
        """Queue a job taken by ``ReconstructionSession.try_start``."""
        self._jobs.put(job)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout: float = SHUTDOWN_WAIT_S) -> bool:
        """
        End the thread: cancel the running job and wait for it; return whether it ended.

        A job stops at the backend's next progress step; a native call in progress (a COLMAP
        stage, a forward pass) is waited for, never abandoned: a thread left inside native
        code while the interpreter exits is what crashes processes at shutdown.
        """
        self._stop.set()
        self._node.session.close()
        start = time.monotonic()
        next_note = start + 2.0
        while self._thread.is_alive():
            now = time.monotonic()
            if now - start > timeout:
                return False
            if now >= next_note:
                self._node.get_logger().info(
                    f'shutting down: waiting for the running reconstruction to stop '
                    f'({now - start:.0f} s)')
                next_note = now + 5.0
            self._thread.join(timeout=0.1)
        return True

    # ------------------------------------------------------------------ thread

    def _main(self):
        self._load_backend()
        while not self._stop.is_set():
            try:
                job = self._jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self._run(job)
            except Exception as exc:  # noqa: B902 - the worker thread must never die
                self._crashed(job, exc)

    def _load_backend(self):
        node = self._node
        cfg = node.config
        try:
            if self._backend_factory is not None:
                backend, reason = self._backend_factory()
            else:
                from aetherscan_ros.backends import create_backend
                backend, reason = create_backend(cfg.backend, cfg.model, cfg.device)
        except Exception as exc:  # noqa: B902 - BackendUnavailable, ImportError, bad checkpoint
            reason = f'{cfg.backend} backend unavailable: {exc}'
            node.session.set_backend(None, reason)
            node.get_logger().error(reason)
            node.outputs.event('error', stage='backend', message=reason)
            return
        node.session.set_backend(backend, reason)
        device = str(getattr(backend, 'device', 'cpu'))
        licence = of_backend(backend)
        node.get_logger().info(f'backend {backend.name} on {device}: {reason}; licence of the '
                               f'model: {licence}')
        node.outputs.event('backend_selected', backend=backend.name, device=device,
                           reason=reason, licence=licence)
        node.maybe_auto_trigger()

    def _run(self, job: Job):
        node = self._node
        outputs = node.outputs
        backend = node.session.backend
        stamp_ns = job.stamp_ns
        node.get_logger().info(f'reconstruction #{job.recon}: {len(job.frames)} views, '
                               f'backend {backend.name} ({job.trigger})')
        outputs.event('reconstruction_started', reconstruction=job.recon,
                      views=len(job.frames), backend=backend.name, trigger=job.trigger,
                      cameras=sorted({f.camera for f in job.frames}))

        def on_progress(stage, fraction, message):
            outputs.event('progress', reconstruction=job.recon, stage=stage,
                          fraction=round(fraction, 3), message=message)

        def on_chunks(chunks):  # mode mapping: ~/points carries the map's delta instead
            if node.mapping is None:
                outputs.publish_chunks(chunks, stamp_ns)

        def on_result(result, anchor):
            if node.mapping is not None:  # registered, fused, published by node/mapping.py
                node.mapping.on_result(job, result, anchor)
            else:
                outputs.publish_result(result, stamp_ns, anchor)

        tf_poses, options = self._tf_poses(job)
        outcome = node.session.run(job, node.config.chunk_points, on_chunks, on_progress,
                                   on_result, tf_poses, options)
        if outcome.anchor is not None:
            self._report_anchor(outcome)
        if outcome.ok:
            self._report_done(outcome)
        elif node.session.cancel.is_set():
            node.get_logger().info(f'reconstruction #{job.recon} stopped: shutting down')
        else:
            self._report_failed(outcome)
            if node.mapping is not None:
                node.mapping.on_failed(job, outcome.error, backend.name)

    def _tf_poses(self, job: Job):
        """Return ``(camera-to-fixed [V, 4, 4] with NaN where TF failed, options)`` or Nones."""
        node = self._node
        tf_input = node.tf_input
        if tf_input is None:
            return None, None
        cfg = node.config
        poses = np.full((len(job.frames), 4, 4), np.nan)
        reasons = []
        for i, frame in enumerate(job.frames):
            pose, reason = tf_input.pose(frame.frame_id, frame.stamp_ns, cfg.tf_timeout)
            if pose is None:
                reasons.append(f'view {i}: {reason}')
            else:
                poses[i] = pose
        if reasons:
            node.guard.warn(('tf', 'lookup'), f'TF lookups failed for {len(reasons)} of '
                            f'{len(job.frames)} views: ' + '; '.join(reasons[:3]))
        options = {'min_baseline_m': cfg.anchor_min_baseline,
                   'max_residual_m': cfg.anchor_max_residual}
        return poses, options

    def _report_anchor(self, outcome: JobOutcome):
        node, anchor = self._node, outcome.anchor
        fixed = node.config.fixed_frame
        node.session.last_anchor = anchor.to_dict()
        placed = outcome.ok and bool(outcome.result.info.get('in_prior_frame'))
        if anchor.ok:
            how = 'placed by pose priors (no fit)' if placed else f'scale {anchor.scale:.4g}'
            node.get_logger().info(
                f'reconstruction #{outcome.job.recon} anchored in {fixed}: {how}, residual '
                f'RMS {anchor.residual_rms_m:.3f} m (max '
                f'{anchor.residual_max_m:.3f} m), {len(anchor.views_used)} views used, '
                f'{len(anchor.views_rejected)} rejected')
        else:
            node.get_logger().warning(
                f'reconstruction #{outcome.job.recon} not anchored in {fixed}: {anchor.reason}; '
                'published unanchored (no metric scale)')
        node.outputs.event('anchor', reconstruction=outcome.job.recon, fixed_frame=fixed,
                           method=PRIOR_METHOD if placed else 'similarity fit to TF',
                           **anchor.to_dict())

    def _report_done(self, outcome: JobOutcome):
        node, job, result = self._node, outcome.job, outcome.result
        node.get_logger().info(
            f'reconstruction #{job.recon} done: {result.num_points} points, {result.num_views} '
            f'views, {result.backend}, {outcome.seconds:.2f} s')
        node.diagnostics.publish_now()
        node.outputs.event('reconstruction_complete', reconstruction=job.recon,
                           total_points=result.num_points, views=result.num_views,
                           chunks=outcome.chunks, backend=result.backend,
                           seconds=round(outcome.seconds, 3), stamp_ns=job.stamp_ns,
                           frames=[f.name for f in job.frames], info=dict(result.info),
                           anchor=(outcome.anchor.to_dict() if outcome.anchor is not None
                                   else None))
        node.maybe_auto_trigger()

    def _report_failed(self, outcome: JobOutcome):
        node, job = self._node, outcome.job
        node.get_logger().error(
            f'reconstruction #{job.recon} failed after {outcome.seconds:.1f} s: {outcome.error}; '
            f'{len(job.frames)} frames kept in the buffer')
        node.diagnostics.publish_now()  # the new state before the event that announces it
        node.outputs.event('error', reconstruction=job.recon, stage='reconstruct',
                           message=outcome.error, seconds=round(outcome.seconds, 3),
                           frames_kept=len(job.frames))

    def _crashed(self, job: Job, exc: Exception):
        """Recover from an exception outside the backend call: frames back, not busy."""
        node = self._node
        message = f'{type(exc).__name__}: {exc}'
        kept = node.session.job_crashed(job, exc)
        if node.mapping is not None:
            node.mapping.on_failed(job, message)
        node.get_logger().error(f'reconstruction #{job.recon}: internal error {message}; the '
                                'frames were kept in the buffer')
        node.get_logger().debug(traceback.format_exc())
        node.outputs.event('error', reconstruction=job.recon, stage='internal', message=message,
                           frames_kept=kept)
