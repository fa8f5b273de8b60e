# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""The ROS-free reconstruction session: jobs, streaming, cancellation, raw frames (no rclpy)."""

import numpy as np
import pytest

from aetherscan_ros.backends.base import (
    Frame, ProgressEvent, result_from_view_clouds, ViewCloud)
from aetherscan_ros.cloud import ChunkAssembler
from aetherscan_ros.core.buffer import FrameBuffer
from aetherscan_ros.core.camera_model import CameraModel
from aetherscan_ros.core.session import ReconstructionSession, UPRIGHT

K = np.array([[200.0, 0, 80], [0, 200.0, 60], [0, 0, 1]])


class RecordingBackend:
    """Returns one point per view; records the frames it was given."""

    name = 'recording'

    def __init__(self, on_progress=None):
        self.frames = None
        self.on_progress = on_progress

    def reconstruct(self, frames, progress=None):
        self.frames = list(frames)
        clouds = []
        for i, _ in enumerate(frames):
            cloud = ViewCloud(i, np.array([[0.0, 0.0, 1.0 + i]], np.float32),
                              np.array([[9, 9, 9]], np.uint8), np.ones(1, np.float32))
            clouds.append(cloud)
            if progress is not None:
                progress(ProgressEvent('view_points', (i + 1) / len(frames), '', cloud))
                if self.on_progress:
                    self.on_progress(i)
        poses = np.repeat(np.eye(4)[None], len(frames), 0)
        ks = np.stack([f.K if f.K is not None else K for f in frames])
        return result_from_view_clouds(clouds, poses, ks, np.array([f.size for f in frames]),
                                       self.name)


def _session(frames, backend, session_id=42):
    session = ReconstructionSession(FrameBuffer(8), session_id=session_id)
    for f in frames:
        session.buffer.offer(f)
    session.set_backend(backend, 'test')
    return session


def _frames(n=3, model=None):
    rng = np.random.default_rng(0)
    return [Frame(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8), f'f{i}', 10 + i,
                  'cam', None if model else K, model) for i in range(n)]


def test_a_job_streams_every_point_in_chunks_of_this_session():
    backend = RecordingBackend()
    session = _session(_frames(), backend)
    job, message = session.try_start('service', 2, 8)
    assert job is not None and 'started reconstruction #1 with 3 views' in message
    assert session.try_start('service', 2, 8)[0] is None  # busy
    chunks, results = [], []
    outcome = session.run(job, 2, chunks.extend, lambda *a: None,
                          lambda r, a: results.append(r))
    assert outcome.ok and results == [outcome.result]
    asm = ChunkAssembler()
    full = [asm.add(info, cloud) for info, cloud in chunks][-1]
    assert len(full) == 3 and all(info.session == 42 for info, _ in chunks)
    assert session.last()[1] == 1 and not session.busy and len(session.buffer) == 0


def test_raw_frames_are_undistorted_before_the_backend():
    model = CameraModel.from_fields(160, 120, 'plumb_bob', [-0.27, 0.07, 0.0, 0.0, 0.0],
                                    K.reshape(-1).tolist())
    frames = _frames(model=model)
    backend = RecordingBackend()
    session = _session(frames, backend)
    job, _ = session.try_start('service', 2, 8)
    assert session.run(job, 100, lambda c: None, lambda *a: None, lambda r, a: None).ok
    got = backend.frames
    assert all(f.camera_model is None and f.K is not None for f in got)
    assert not np.array_equal(got[0].image, frames[0].image)  # the pixels were remapped
    assert got[0].K[0, 0] != K[0, 0]  # the undistorted intrinsics, not the raw K


def test_a_frame_whose_model_does_not_fit_fails_the_job_and_keeps_the_frames():
    model = CameraModel.from_fields(320, 240, 'plumb_bob', [-0.2, 0.0, 0.0, 0.0, 0.0],
                                    K.reshape(-1).tolist())
    session = _session(_frames(model=model), RecordingBackend())
    job, _ = session.try_start('service', 2, 8)
    outcome = session.run(job, 100, lambda c: None, lambda *a: None, lambda r, a: None)
    assert not outcome.ok and 'f0' in outcome.error
    assert len(session.buffer) == 3 and session.auto_blocked


def test_close_cancels_a_running_job_at_its_next_step():
    session = None

    def close_after_first_view(i):
        if i == 0:
            session.close()

    backend = RecordingBackend(on_progress=close_after_first_view)
    session = _session(_frames(), backend)
    job, _ = session.try_start('service', 2, 8)
    chunks = []
    outcome = session.run(job, 1, chunks.extend, lambda *a: None, lambda r, a: None)
    assert not outcome.ok and 'cancelled' in outcome.error
    assert len(chunks) == 1  # nothing was streamed after the cancel


def test_a_failing_chunk_stream_is_raised_for_job_crashed(monkeypatch):
    import aetherscan_ros.core.session as module

    def broken(*args, **kwargs):
        raise MemoryError('no chunk stream')

    monkeypatch.setattr(module, 'ChunkStream', broken)
    session = _session(_frames(), RecordingBackend())
    job, _ = session.try_start('service', 2, 8)
    with pytest.raises(MemoryError):
        session.run(job, 1, lambda c: None, lambda *a: None, lambda r, a: None)
    assert session.job_crashed(job, MemoryError('x')) == 3 and len(session.buffer) == 3


class PosedBackend(RecordingBackend):
    """Returns given camera poses (a reconstruction at its own scale) and one point per view."""

    def __init__(self, poses):
        super().__init__()
        self.poses = poses

    def reconstruct(self, frames, progress=None):
        result = super().reconstruct(frames, progress)
        from dataclasses import replace
        return replace(result, poses_c2w=self.poses.copy())


def _trajectory(n, spacing=0.5):
    from scipy.spatial.transform import Rotation
    poses = np.repeat(np.eye(4)[None], n, 0)
    for i in range(n):
        poses[i, :3, :3] = Rotation.from_euler('y', 10 * i, degrees=True).as_matrix()
        poses[i, :3, 3] = [spacing * i, 0.1 * i * i, 0.0]
    return poses


def test_tf_poses_anchor_the_result_in_metres_before_streaming():
    from scipy.spatial.transform import Rotation
    tf = _trajectory(4)  # metres, in the fixed frame
    sim = np.eye(4)
    sim[:3, :3] = Rotation.from_euler('xyz', [20, -40, 70], degrees=True).as_matrix()
    sim[:3, 3] = [3.0, -1.0, 2.0]
    recon = np.linalg.inv(sim) @ tf  # the reconstruction's frame ...
    recon[:, :3, 3] /= 5.0          # ... at 1/5 of metric scale
    session = _session(_frames(4), PosedBackend(recon))
    job, _ = session.try_start('service', 2, 8)
    chunks, got = [], []
    outcome = session.run(job, 100, chunks.extend, lambda *a: None,
                          lambda r, a: got.append((r, a)), tf_poses=tf,
                          anchor_options={'min_baseline_m': 0.1})
    assert outcome.ok and outcome.anchor.ok, outcome.anchor.reason
    assert outcome.anchor.scale == pytest.approx(5.0, rel=1e-6)
    result, anchor = got[0]
    assert result.info['metric_scale'] is True
    fixed = anchor.world_to_fixed @ result.poses_c2w  # carried through TF: the TF poses
    assert np.allclose(fixed, tf, atol=1e-6)
    streamed = np.concatenate([c.points for _, c in chunks if len(c)])
    assert np.allclose(streamed, result.points)  # the chunks carry the metric points


def test_a_refused_anchor_publishes_unscaled_with_the_reason():
    still = np.repeat(_trajectory(1), 3, 0)  # the robot did not move: pure rotation at best
    recon = _trajectory(3)
    session = _session(_frames(3), PosedBackend(recon))
    job, _ = session.try_start('service', 2, 8)
    outcome = session.run(job, 100, lambda c: None, lambda *a: None, lambda r, a: None,
                          tf_poses=still)
    assert outcome.ok and not outcome.anchor.ok
    assert 'baseline' in outcome.anchor.reason
    assert np.allclose(outcome.result.poses_c2w, UPRIGHT @ recon)  # upright, not scaled


def test_the_world_is_upright_and_chunks_equal_the_result():
    """Optical view 0 (z forward, y down) becomes REP-103 body axes (x forward, z up)."""
    backend = RecordingBackend()
    session = _session(_frames(), backend)
    job, _ = session.try_start('service', 2, 8)
    chunks, got = [], []
    outcome = session.run(job, 100, chunks.extend, lambda *a: None,
                          lambda r, a: got.append(r))
    result = outcome.result
    # the backend put view i's point 1 + i metres in front of camera 0 (optical +z)
    assert np.allclose(result.points[:, 0], [1.0, 2.0, 3.0])  # now along +x (forward)
    assert np.allclose(result.points[:, 1:], 0.0)
    assert np.allclose(result.poses_c2w[0], UPRIGHT)  # camera 0: optical under the body frame
    streamed = np.concatenate([c.points for _, c in chunks if len(c)])
    assert np.array_equal(streamed, result.points)
    assert 'REP-103 body frame' in result.info['world_frame']
    optical = ReconstructionSession(FrameBuffer(8), upright=False)
    for f in _frames():
        optical.buffer.offer(f)
    optical.set_backend(RecordingBackend(), 'test')
    job, _ = optical.try_start('service', 2, 8)
    plain = optical.run(job, 100, lambda c: None, lambda *a: None, lambda r, a: None)
    assert np.allclose(plain.result.poses_c2w[0], np.eye(4))
