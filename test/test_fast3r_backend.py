# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Fast3RBackend on a tiny random checkpoint: result layout, intrinsics, OOM fallback, errors."""

import logging

import numpy as np
import pytest
import torch

from aetherscan_ros.backends import create_backend
from aetherscan_ros.backends.base import (
    BackendUnavailable, Frame, ReconstructionBackend, ReconstructionError)
from aetherscan_ros.backends.fast3r import Fast3RBackend
from aetherscan_ros.models.fast3r import RANDOM_LABEL, write_random_checkpoint
from aetherscan_ros.models.fast3r.preprocess import preprocess_image
from aetherscan_ros.models.torch_device import gpu_memory, resolve_precision, select_device


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    return write_random_checkpoint(tmp_path_factory.mktemp('f3b') / 'tiny', 'tiny', seed=0)


@pytest.fixture(scope='module')
def backend(ckpt):
    return Fast3RBackend(str(ckpt), device='cpu', size=64)


def _frames(with_k=False):
    rng = np.random.default_rng(7)
    sizes = [(120, 160), (160, 120), (100, 100)]  # landscape, portrait, square (H, W)
    frames = []
    for i, (h, w) in enumerate(sizes):
        k = np.array([[0.9 * w, 0, w / 2 - 3], [0, 0.9 * w, h / 2 + 2], [0, 0, 1]])
        frames.append(Frame(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), f'cam{i}',
                            K=k if with_k else None))
    return frames


def test_result_layout_events_and_label(backend):
    assert isinstance(backend, ReconstructionBackend) and backend.name == 'fast3r'
    assert backend.device == 'cpu' and RANDOM_LABEL in backend.describe()
    events = []
    frames = _frames()
    result = backend.reconstruct(frames, events.append)
    assert result.backend == 'fast3r' and result.info['model'] == RANDOM_LABEL
    assert result.points.dtype == np.float32 and result.points.shape[1] == 3
    assert result.colors.dtype == np.uint8 and result.confidence.dtype == np.float32
    assert result.view_index.dtype == np.uint16
    assert np.isfinite(result.points).all() and (result.confidence > 1).all()
    assert result.poses_c2w.shape == (3, 4, 4) and result.intrinsics.shape == (3, 3, 3)
    np.testing.assert_array_equal(result.image_sizes, [[160, 120], [120, 160], [100, 100]])
    assert result.info['network_sizes'] == [[64, 48], [48, 64], [64, 48]]
    # 10 % least confident pixels dropped per view
    counts = np.bincount(result.view_index, minlength=3)
    np.testing.assert_array_equal(counts, [int(64 * 48 * 0.9)] * 3)
    views = [e.view_cloud for e in events if e.stage == 'view_points']
    assert [v.view for v in views] == [0, 1, 2]
    np.testing.assert_array_equal(np.concatenate([v.points for v in views]), result.points)
    assert events[-1].stage == 'done' and events[-1].fraction == 1.0
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions)
    # colours are the network's (resized, cropped) pixels of the same view
    first = result.view_cloud(0)
    palette = {tuple(c) for c in preprocess_image(frames[0].image, 64).rgb.reshape(-1, 3)}
    assert all(tuple(c) in palette for c in first.colors)
    # estimated intrinsics, mapped back to each input image: principal point near its centre
    for (w, h), k in zip(result.image_sizes, result.intrinsics):
        assert abs(k[0, 2] - w / 2) < 2 and abs(k[1, 2] - h / 2) < 2
        assert k[0, 0] == pytest.approx(k[1, 1])
    assert 'random weights' in result.info['warning']
    assert set(result.timings) >= {'preprocess', 'forward', 'poses', 'points', 'total'}


def test_deterministic_and_camera_info_is_used(backend):
    a = backend.reconstruct(_frames())
    b = backend.reconstruct(_frames())
    np.testing.assert_array_equal(a.points, b.points)
    assert a.info['image_ids'] == b.info['image_ids']
    frames = _frames(with_k=True)
    c = backend.reconstruct(frames)
    assert c.info['focal_source'] == 'camera_info'
    for frame, k in zip(frames, c.intrinsics):
        np.testing.assert_allclose(k, frame.K, atol=1e-9)


def test_global_points_without_filtering(ckpt):
    b = Fast3RBackend(str(ckpt), device='cpu', size=64, points='global', conf_percentile=0,
                      image_ids='sequential')
    result = b.reconstruct(_frames()[:2])
    assert result.num_points == 2 * 64 * 48 and result.info['image_ids'] == [0, 1]


class _FlakyGpu:
    """
    A fake CUDA forward for ``Fast3RBackend._forward``.

    Raises CUDA out-of-memory ``fail`` times per reconstruction (every time when ``fail`` is
    None), then computes on the CPU.
    """

    def __init__(self, backend, fail=1, error=torch.OutOfMemoryError):
        self.backend, self.fail, self.error = backend, fail, error
        self.real = backend._forward
        self.calls = []
        self.failed = 0
        backend._device = torch.device('cuda')  # pretend; this forward never touches CUDA
        backend._dtype = torch.bfloat16
        backend._forward = self

    def new_call(self):
        self.failed = 0

    def __call__(self, model, tensors, ids, chunk, device, dtype):
        self.calls.append((device.type, chunk))
        if device.type == 'cuda':
            if self.fail is None or self.failed < self.fail:
                self.failed += 1
                raise self.error('CUDA out of memory. Tried to allocate 2.00 GiB')
            device, dtype = torch.device('cpu'), torch.float32
        return self.real(model, tensors, ids, chunk, device, dtype)


def test_one_transient_out_of_memory_retries_on_the_gpu(ckpt, caplog):
    """One OOM: empty the cache, halve the chunk, stay on the GPU (it used to move for good)."""
    b = Fast3RBackend(str(ckpt), device='cpu', size=64, head_chunk=4)
    gpu = _FlakyGpu(b, fail=1, error=torch.cuda.OutOfMemoryError)
    with caplog.at_level(logging.WARNING, logger='aetherscan_ros.backends.fast3r'):
        result = b.reconstruct(_frames())
    assert gpu.calls == [('cuda', 3), ('cuda', 1)]
    assert b.device == 'cuda' and result.info['device'] == 'cuda'
    assert result.info['dtype'] == 'bfloat16' and result.info['head_chunk'] == 1
    assert result.info['fallbacks'] == ['out of memory on cuda with head chunk 3; retrying '
                                        'with 1'] and 'retrying with 1' in caplog.text
    gpu.new_call()
    again = b.reconstruct(_frames())  # the next call starts at the full chunk again
    assert gpu.calls[2:] == [('cuda', 3), ('cuda', 1)] and again.info['device'] == 'cuda'
    np.testing.assert_array_equal(again.points, result.points)


def test_persistent_out_of_memory_runs_that_call_on_the_cpu(ckpt):
    """OOM even at chunk 1: that call on the CPU; only MAX_GPU_FAILURES in a row move it."""
    from aetherscan_ros.backends.fast3r import MAX_GPU_FAILURES
    b = Fast3RBackend(str(ckpt), device='cpu', size=64, head_chunk=2)
    gpu = _FlakyGpu(b, fail=None)
    result = b.reconstruct(_frames())
    assert gpu.calls == [('cuda', 2), ('cuda', 1), ('cpu', 2)]
    assert result.info['device'] == 'cpu' and result.info['dtype'] == 'float32'
    assert 'running this reconstruction on the CPU' in result.info['fallbacks'][-1]
    assert b.device == 'cuda'  # the next call tries the GPU again
    gpu.fail = 0
    gpu.new_call()
    assert b.reconstruct(_frames()).info['device'] == 'cuda'  # and a success resets the count
    gpu.fail = None
    for attempt in range(1, MAX_GPU_FAILURES + 1):
        gpu.new_call()
        result = b.reconstruct(_frames())
        assert result.info['device'] == 'cpu'
        assert b.device == ('cpu' if attempt == MAX_GPU_FAILURES else 'cuda')
    assert 'moving Fast3R to the CPU in float32 for good' in result.info['fallbacks'][-1]
    count = len(gpu.calls)
    assert b.reconstruct(_frames()).info['fallbacks'] == [] and len(gpu.calls) == count + 1


def test_fallback_record_stays_bounded(ckpt, monkeypatch):
    from aetherscan_ros.backends.fast3r import FALLBACK_HISTORY
    b = Fast3RBackend(str(ckpt), device='cpu', size=64, head_chunk=2)
    gpu = _FlakyGpu(b, fail=1)
    monkeypatch.setattr(gpu, 'real', lambda *args: {'stub': True})
    tensors = [torch.zeros(1, 3, 48, 64)] * 2
    for _ in range(3 * FALLBACK_HISTORY):
        gpu.new_call()
        out, chunk, ran_on, notes = b._forward_with_fallback(tensors, [0, 1])
        assert out == {'stub': True} and chunk == 1 and ran_on[0].type == 'cuda'
        assert len(notes) == 1
    assert len(b.fallbacks) == FALLBACK_HISTORY and b.fallback_count == 3 * FALLBACK_HISTORY


def test_out_of_memory_on_cpu_and_other_errors(ckpt, monkeypatch):
    b = Fast3RBackend(str(ckpt), device='cpu', size=64, head_chunk=2)

    def oom(*args):
        raise RuntimeError('DefaultCPUAllocator: not enough memory: you tried to allocate; '
                           'out of memory')

    monkeypatch.setattr(b, '_forward', oom)
    with pytest.raises(ReconstructionError, match='out of memory on the CPU'):
        b.reconstruct(_frames())

    def broken(*args):
        raise RuntimeError('something else')

    monkeypatch.setattr(b, '_forward', broken)
    with pytest.raises(RuntimeError, match='something else'):
        b.reconstruct(_frames())


def test_bad_input_is_named(backend):
    frames = _frames()
    with pytest.raises(ReconstructionError, match='at least 2 frames'):
        backend.reconstruct(frames[:1])
    bad = Frame(np.zeros((40, 60), np.uint8), 'cam9@1700000000')
    with pytest.raises(ReconstructionError, match='cam9@1700000000: expected an RGB image'):
        backend.reconstruct([frames[0], bad])
    tiny = Frame(np.zeros((16, 16, 3), np.uint8), 'x')
    with pytest.raises(ReconstructionError, match='at most 1000 views'):
        backend.reconstruct([tiny] * 1001)


def test_unavailable_weights_and_bad_options(ckpt, tmp_path):
    with pytest.raises(BackendUnavailable, match='no such directory'):
        Fast3RBackend(str(tmp_path / 'missing'), device='cpu')
    with pytest.raises(BackendUnavailable, match='no such directory'):
        create_backend('fast3r', model=str(tmp_path / 'missing'), device='cpu')
    broken = tmp_path / 'broken'
    broken.mkdir()
    (broken / 'config.json').write_bytes((ckpt / 'config.json').read_bytes())
    (broken / 'model.safetensors').write_bytes(b'garbage')
    with pytest.raises(BackendUnavailable, match='checkpoint unusable: .*not a readable'):
        Fast3RBackend(str(broken), device='cpu')
    with pytest.raises(ValueError, match='multiple of 16'):
        Fast3RBackend(str(ckpt), device='cpu', size=100)
    with pytest.raises(ValueError, match='points must be one of'):
        Fast3RBackend(str(ckpt), device='cpu', points='mesh')
    backend, reason = create_backend('fast3r', model=str(ckpt), device='cpu',
                                     options={'fast3r.size': 64})
    assert reason.startswith('fast3r: ' + RANDOM_LABEL) and backend.size == 64


def test_device_selection_on_this_machine():
    assert select_device('cpu') == (torch.device('cpu'), torch.float32)
    assert resolve_precision(torch.device('cpu'), 'bf16') == torch.float32
    with pytest.raises(ValueError, match='precision'):
        resolve_precision(torch.device('cpu'), 'int8')
    with pytest.raises(ValueError, match="expected 'auto', 'cpu'"):
        select_device('tpu')
    device, dtype = select_device('auto')
    if torch.cuda.is_available():
        assert device.type == 'cuda' and dtype in (torch.bfloat16, torch.float16)
        assert gpu_memory()['total'] > 0
    else:
        assert (device.type, dtype) == ('cpu', torch.float32) and gpu_memory() is None
        with pytest.raises(BackendUnavailable, match='no CUDA device'):
            select_device('cuda')


def test_a_view_without_pose_is_not_published_at_view_0s_pose(backend, monkeypatch):
    """A failed PnP leaves the pose NaN (left out of TF), names the view, keeps its points."""
    import aetherscan_ros.models.fast3r.postprocess as module  # imported by the backend on use
    real = module.estimate_poses

    def view_1_fails(*args, **kwargs):
        poses, failed, inliers = real(*args, **kwargs)
        poses = np.array(poses)
        poses[1] = np.eye(4)  # what the PnP step returns for a failed view (as upstream)
        return poses, sorted(set(failed) | {1}), inliers

    monkeypatch.setattr(module, 'estimate_poses', view_1_fails)
    frames = _frames()
    result = backend.reconstruct(frames)
    assert not np.isfinite(result.poses_c2w[1]).any()
    assert np.isfinite(result.poses_c2w[0]).all()
    assert result.info['unregistered'] == [frames[1].name]
    assert (result.view_index == 1).any()  # its points are still in the cloud
    from aetherscan_ros.ros.tf import poses_to_transforms
    children = [t.child_frame_id for t in poses_to_transforms(result.poses_c2w, 'w', '', 0)]
    assert 'camera_1_optical' not in children and 'camera_0_optical' in children
