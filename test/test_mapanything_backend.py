# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
MapAnythingBackend: priors in (K, TF poses, depth), the cloud out, the world it lands in.

On tiny random checkpoints (no weights ever) and on parity fixture A (upstream's own outputs):
preprocessing equals upstream's, the backend's cloud equals a direct ``infer`` with the same
priors (and upstream's outputs), priors change the outputs, posed input lands in the caller's
world without a fit (also through ``ReconstructionSession``), bad input and bad checkpoints
fail with the reason, ``auto`` picks in its documented order, licences are reported, and the
CLI takes ``--camera-info`` to the model.
"""

import json
import os
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest
from scipy.spatial import cKDTree

torch = pytest.importorskip('torch')

from aetherscan_ros.backends import create_backend, licences  # noqa: E402
from aetherscan_ros.backends.base import (  # noqa: E402
    BackendUnavailable, Frame, ReconstructionBackend, ReconstructionError)
from aetherscan_ros.backends.mapanything import MapAnythingBackend  # noqa: E402
from aetherscan_ros.backends.mapanything_inputs import (  # noqa: E402
    checkpoint_licence, preprocess_view, target_size)
from aetherscan_ros.cloud import ChunkAssembler  # noqa: E402
from aetherscan_ros.models.mapanything import write_random_checkpoint  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FIXTURE_DIRS = (REPO / 'test' / 'fixtures' / 'mapanything' / 'parity_a',
                REPO.parent / 'shared' / 'mapanything' / 'parity_a')
RANDOM = 'random weights (not a trained model)'


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    return write_random_checkpoint(tmp_path_factory.mktemp('ma') / 'tiny', 'tiny', seed=0)


@pytest.fixture(scope='module')
def backend(ckpt):
    return MapAnythingBackend(str(ckpt), device='cpu', size=70)


@pytest.fixture(scope='module')
def fixture_a():
    for path in FIXTURE_DIRS:  # the npz and the tiny checkpoint that made it
        if all((path / name).is_file() for name in ('fixture.npz', 'config.json',
                                                    'model.safetensors')):
            return path, np.load(path / 'fixture.npz')
    pytest.skip('MapAnything parity fixture A not found (test/fixtures/mapanything)')


def _frames(n=3, with_k=True, size=(140, 84), seed=7):
    rng = np.random.default_rng(seed)
    w, h = size
    k = np.array([[1.1 * w, 0, w / 2 + 3], [0, 1.1 * w, h / 2 - 2], [0, 0, 1]])
    return [Frame(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), f'cam{i}',
                  K=k if with_k else None) for i in range(n)]


def _rot_z(deg):
    c, s = np.cos(np.radians(deg)), np.sin(np.radians(deg))
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def _poses(n=3):
    poses = np.stack([np.eye(4)] * n)
    for i in range(n):
        poses[i, :3, :3] = _rot_z(4.0 * i)
        poses[i, :3, 3] = [0.25 * i, 0.05 * i, 0.1 * i]
    return poses


def _unproject(depth_z, k, pose, mask):
    """Return one view's reference cloud ``[N, 3]``: z-depth, K, cam->world under the mask."""
    h, w = depth_z.shape
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    keep = mask & (depth_z > 0)
    z = depth_z[keep]
    x = (u[keep] - k[0, 2]) / k[0, 0] * z
    y = (v[keep] - k[1, 2]) / k[1, 1] * z
    return np.stack([x, y, z], -1) @ pose[:3, :3].T + pose[:3, 3], keep


def _expected(outputs, to_world=np.eye(4)):
    clouds, poses = [], []
    for out in outputs:
        pose = to_world @ out['camera_poses'][0].double().numpy()
        pts, _ = _unproject(out['depth_z'][0, ..., 0].double().numpy(),
                            out['intrinsics'][0].double().numpy(), pose,
                            out['mask'][0, ..., 0].numpy().astype(bool))
        clouds.append(pts)
        poses.append(pose)
    return clouds, np.stack(poses)


def _direct_views(frames, relative=None, metric=True):
    target = target_size([f.size for f in frames], 70, 'longest_side')
    views = []
    for i, frame in enumerate(frames):
        net = preprocess_view(frame.image, frame.K, None, target)
        view = {'img': torch.from_numpy(net.tensor()),
                'is_metric_scale': torch.tensor([metric])}
        if net.K is not None:
            view['intrinsics'] = torch.from_numpy(net.K[None].astype(np.float32))
        if relative is not None:
            view['camera_poses'] = torch.from_numpy(relative[i][None].astype(np.float32))
        views.append(view)
    return views


def _assert_clouds_equal(result, clouds, atol=1e-5):
    for view, want in enumerate(clouds):
        got = result.view_cloud(view).points.astype(np.float64)
        assert got.shape == want.shape, (view, got.shape, want.shape)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=atol)


# ------------------------------------------------------------------------------ preprocessing

def test_preprocessing_is_upstreams_exactly(fixture_a):
    """Images, resized/cropped K and depth of fixture A's three runs, 0 difference."""
    _, z = fixture_a
    srcs = [z[f'src_image_{i}'] for i in range(3)]
    target = target_size([(s.shape[1], s.shape[0]) for s in srcs], 70, 'longest_side')
    assert target == (70, 42)
    for run in ('images', 'priors', 'priors_depth'):
        for i, src in enumerate(srcs):
            k = z.get(f'{run}__intrinsics_src_{i}')
            depth = z.get(f'{run}__depth_z_src_{i}')
            net = preprocess_view(src, k, depth, target)
            np.testing.assert_array_equal(net.tensor()[0], z[f'{run}__img'][i])
            if k is not None:
                np.testing.assert_array_equal(net.K, z[f'{run}__intrinsics_in_{i}_f64'])
                np.testing.assert_allclose(net.K_to_input(net.K), k, atol=1e-12)
            if depth is not None:
                np.testing.assert_array_equal(net.depth, z[f'{run}__depth_z_in_{i}'])
    # SPEC §3.1's example: 640x480 -> 518x392, resized to 522x392, 2 px cropped on the left
    assert target_size([(640, 480)]) == (518, 392)
    assert preprocess_view(np.zeros((480, 640, 3), np.uint8), None, None, (518, 392)).crop == \
        (2, 0)


@pytest.mark.parametrize('run', ['images', 'priors', 'priors_depth'])
def test_the_backend_reproduces_upstream_on_fixture_a(fixture_a, run):
    """Fixture A's three runs through the backend: upstream's outputs, in the given world."""
    path, z = fixture_a
    backend = MapAnythingBackend(str(path), device='cpu', size=70)
    frames = [Frame(z[f'src_image_{i}'], f'src{i}', K=z.get(f'{run}__intrinsics_src_{i}'))
              for i in range(3)]
    poses = np.full((3, 4, 4), np.nan)
    for i in range(3):
        if f'{run}__pose_in_{i}_f64' in z.files:
            poses[i] = z[f'{run}__pose_in_{i}_f64']
    depths = [z.get(f'{run}__depth_z_src_{i}') for i in range(3)]
    metric = [bool(z.get(f'{run}__is_metric_scale_in_{i}', [True])[0]) for i in range(3)]
    result = backend.reconstruct(frames, poses_c2w=poses if run == 'priors' else None,
                                 depths=depths, metric=metric)
    assert result.info['in_prior_frame'] == (run == 'priors')
    assert result.info['metric_scale'] == (run != 'images')
    to_world = poses[0] if run == 'priors' else np.eye(4)
    want_poses = to_world @ z[f'{run}__camera_poses'].astype(np.float64)
    np.testing.assert_allclose(result.poses_c2w, want_poses, atol=2e-4)
    for view in range(3):
        want, _ = _unproject(z[f'{run}__depth_z'][view, ..., 0].astype(np.float64),
                             z[f'{run}__intrinsics'][view].astype(np.float64), want_poses[view],
                             z[f'{run}__mask'][view, ..., 0])
        got = result.view_cloud(view).points
        flips = 0.001 * 42 * 70 + 2  # fp32 edge-mask flips allowed (SPEC §13.9, §15)
        assert abs(len(got) - len(want)) <= flips, (len(got), len(want))
        dist, _ = cKDTree(want).query(got)
        assert (dist > 1e-4 * np.abs(want).max()).sum() <= flips, np.sort(dist)[-8:]
        k = z.get(f'{run}__intrinsics_src_{view}')
        if k is not None:  # a given K is what the result reports
            np.testing.assert_array_equal(result.intrinsics[view], k)
    assert result.info['metric_scaling_factor'] == pytest.approx(
        float(z[f'{run}__metric_scaling_factor'][0, 0]), rel=1e-4)


# ------------------------------------------------------------------------------ tiny model

def test_result_layout_events_and_licence(backend):
    assert isinstance(backend, ReconstructionBackend) and backend.accepts_pose_priors
    events = []
    frames = _frames(with_k=False)
    result = backend.reconstruct(frames, events.append)
    assert result.backend == 'mapanything' and result.info['model'] == RANDOM
    assert result.info['licence'] == licences.RANDOM and 'random' in result.info['warning']
    assert not result.info['in_prior_frame'] and not result.info['metric_scale']
    assert result.points.dtype == np.float32 and result.num_points > 0
    assert result.colors.dtype == np.uint8 and result.view_index.dtype == np.uint16
    views = [e.view_cloud for e in events if e.stage == 'view_points']
    assert [v.view for v in views] == [0, 1, 2]
    np.testing.assert_array_equal(np.concatenate([v.points for v in views]), result.points)
    assert events[-1].stage == 'done'
    np.testing.assert_array_equal(result.image_sizes, [[140, 84]] * 3)
    assert result.info['network_size'] == [70, 42]
    # estimated K (random weights: any sign) mapped back to the 140x84 input: 2x the network's
    outputs = backend.model.infer(_direct_views(frames), use_amp=False)
    for k, out in zip(result.intrinsics, outputs):
        k_net = out['intrinsics'][0].double().numpy()
        np.testing.assert_allclose(k[[0, 1], [0, 1]], 2 * k_net[[0, 1], [0, 1]], rtol=1e-6)
        np.testing.assert_allclose(k[:2, 2], 2 * (k_net[:2, 2] + 0.5) - 0.5, rtol=1e-5)
    assert result.info['intrinsics'] == 'estimated by MapAnything where not given'


def test_outputs_equal_a_direct_infer_with_the_same_priors(backend):
    frames, poses = _frames(), _poses()
    result = backend.reconstruct(frames, poses_c2w=poses)
    relative = np.linalg.inv(poses[0]) @ poses
    outputs = backend.model.infer(_direct_views(frames, relative), use_amp=False)
    clouds, want_poses = _expected(outputs, poses[0])
    _assert_clouds_equal(result, clouds)
    np.testing.assert_allclose(result.poses_c2w, want_poses, atol=1e-6)
    for view, out in enumerate(outputs):  # colours: the network-size pixels; conf: the model's
        keep = out['mask'][0, ..., 0].numpy() & (out['depth_z'][0, ..., 0].numpy() > 0)
        np.testing.assert_allclose(result.view_cloud(view).confidence,
                                   out['conf'][0].numpy()[keep], rtol=1e-6)
    # the absolute poses given straight to infer: the same geometry (the model uses relative)
    absolute = backend.model.infer(_direct_views(frames, poses), use_amp=False)
    np.testing.assert_allclose(_expected(absolute, poses[0])[1], want_poses, atol=1e-4)


def test_priors_change_the_outputs(backend):
    frames, poses = _frames(), _poses()
    base = backend.reconstruct(frames, poses_c2w=poses)
    other_k = [Frame(f.image, f.name, K=f.K * [[1.3], [1.3], [1]]) for f in frames]
    moved = poses.copy()
    moved[2, :3, 3] += [0.4, -0.2, 0.3]
    for changed in (backend.reconstruct(other_k, poses_c2w=poses),
                    backend.reconstruct(frames, poses_c2w=moved),
                    backend.reconstruct(frames)):
        same = (changed.points.shape == base.points.shape
                and np.allclose(changed.points, base.points, atol=1e-6)
                and np.allclose(changed.poses_c2w, base.poses_c2w, atol=1e-6))
        assert not same
    again = backend.reconstruct(frames, poses_c2w=poses)  # and nothing else changes them
    np.testing.assert_array_equal(again.points, base.points)


def test_posed_input_lands_in_the_given_world_without_a_fit(backend, monkeypatch):
    from aetherscan_ros.core import session as session_mod
    from aetherscan_ros.core.buffer import FrameBuffer
    from aetherscan_ros.core.pose_priors import PRIOR_FRAME
    frames, poses = _frames(), _poses()
    world = np.eye(4)
    world[:3, :3] = _rot_z(35.0) @ np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0.0]])
    world[:3, 3] = [120.0, -45.0, 3.0]
    here = backend.reconstruct(frames, poses_c2w=poses)
    there = backend.reconstruct(frames, poses_c2w=world @ poses)
    assert there.info['in_prior_frame'] and there.info['world_frame'] == PRIOR_FRAME
    assert there.info['metric_scale'] and 'metres' in there.info['unit']
    np.testing.assert_allclose(there.poses_c2w, world @ here.poses_c2w, atol=1e-5)
    moved = here.points.astype(np.float64) @ world[:3, :3].T + world[:3, 3]
    np.testing.assert_allclose(there.points, moved, atol=1e-4)

    # through the session: no similarity fit, no upright turn, an identity anchor
    def no_fit(*args, **kwargs):
        raise AssertionError('estimate_anchor must not run for a result placed by priors')

    monkeypatch.setattr(session_mod, 'estimate_anchor', no_fit)
    session = session_mod.ReconstructionSession(FrameBuffer(10), session_id=5)
    session.set_backend(backend, 'test')
    for frame in frames:
        assert session.buffer.offer(frame) == 'keyframe'
    job, _ = session.try_start('service', 2, 10)
    chunks, results = [], []
    outcome = session.run(job, 1000, chunks.extend, lambda *a: None,
                          lambda r, a: results.append((r, a)), tf_poses=world @ poses)
    assert outcome.ok, outcome.error
    anchor = outcome.anchor
    assert anchor.ok and anchor.scale == 1.0 and np.array_equal(anchor.world_to_fixed, np.eye(4))
    np.testing.assert_array_equal(outcome.result.points, there.points)
    assert outcome.result.info['anchor']['ok'] and anchor.residual_rms_m >= 0.0
    assert outcome.result.info['world_frame'] == PRIOR_FRAME
    assembler = ChunkAssembler()  # the held-back chunks: every point, as placed
    full = [assembler.add(info, cloud) for info, cloud in chunks][-1]
    np.testing.assert_array_equal(full.points, there.points)
    assert results and results[0][1] is anchor


def test_view_0_without_a_pose_is_refused_and_the_session_fits_instead(backend, monkeypatch):
    from aetherscan_ros.core import session as session_mod
    from aetherscan_ros.core.buffer import FrameBuffer
    from aetherscan_ros.core.pose_priors import usable_priors
    frames, poses = _frames(), _poses()
    holed = poses.copy()
    holed[0] = np.nan
    with pytest.raises(ReconstructionError, match=r'cam0 \(view 0\) has no pose prior while 2'):
        backend.reconstruct(frames, poses_c2w=holed)
    only0 = np.full_like(poses, np.nan)
    only0[0] = poses[0]
    lone = backend.reconstruct(frames, poses_c2w=only0)
    assert not lone.info['in_prior_frame'] and 'only view 0' in lone.info['pose_priors']
    mirrored = poses.copy()
    mirrored[1, :3, 0] *= -1
    with pytest.raises(ReconstructionError, match='cam1: pose prior is not a rigid'):
        backend.reconstruct(frames, poses_c2w=mirrored)
    assert usable_priors(backend, holed)[0] is None and 'view 0' in usable_priors(backend,
                                                                                  holed)[1]
    fits = []
    real_fit = session_mod.estimate_anchor
    monkeypatch.setattr(session_mod, 'estimate_anchor',
                        lambda *a, **k: fits.append(1) or real_fit(*a, **k))
    session = session_mod.ReconstructionSession(FrameBuffer(10), session_id=6)
    session.set_backend(backend, 'test')
    for frame in frames:
        assert session.buffer.offer(frame) == 'keyframe'
    job, _ = session.try_start('service', 2, 10)
    outcome = session.run(job, 1000, lambda c: None, lambda *a: None, lambda r, a: None,
                          tf_poses=holed)
    assert outcome.ok and fits == [1] and not outcome.result.info['in_prior_frame']
    assert outcome.result.info['pose_priors'] == 'not used: view 0 has no TF pose (the model ' \
        'needs the reference view posed)'


def test_still_poses_give_rotations_only_and_depth_needs_k(backend):
    frames, poses = _frames(), _poses()
    still = poses.copy()
    still[:, :3, 3] = [1.0, 2.0, 0.5]
    result = backend.reconstruct(frames, poses_c2w=still)
    assert result.info['in_prior_frame'] and not result.info['metric_scale']
    assert 'rotations only' in result.info['pose_priors']
    depth = np.full((84, 140), 2.0)
    with_depth = backend.reconstruct(frames, depths=[depth, None, depth])
    assert with_depth.info['metric_scale']
    assert not np.array_equal(with_depth.points, backend.reconstruct(frames).points)
    no_k = _frames(with_k=False)
    with pytest.raises(ReconstructionError, match='cam0: a depth prior needs the intrinsics'):
        backend.reconstruct(no_k, depths=[depth, None, None])
    with pytest.raises(ReconstructionError, match='at least 2 frames'):
        backend.reconstruct(frames[:1])


def test_gpu_options_and_the_out_of_memory_retry(ckpt, monkeypatch):
    """CUDA runs encoder + transformer under bf16/fp16 autocast; OOM retries one view a call."""
    backend = MapAnythingBackend(str(ckpt), device='cpu', size=70)
    assert backend.infer_options()['use_amp'] is False  # CPU: float32, never fp16 autocast
    views = _direct_views(_frames())
    backend._device = torch.device('cuda', 0)  # what select_device gives on a GPU machine
    for dtype, name in ((torch.bfloat16, 'bf16'), (torch.float16, 'fp16')):
        backend._dtype = dtype
        assert backend.infer_options()['use_amp'] and backend.infer_options()['amp_dtype'] == name
    backend._dtype = torch.float32  # precision fp32 on CUDA: no autocast
    assert not backend.infer_options()['use_amp']
    calls, real = [], backend.model.infer

    def flaky(views, **options):
        calls.append(options.get('minibatch_size'))
        if len(calls) == 1 or fail_again:
            raise torch.cuda.OutOfMemoryError('CUDA out of memory (injected)')
        return real(views, **options)

    monkeypatch.setattr(backend.model, 'infer', flaky)
    fail_again, info = False, {}
    outputs = backend._infer(views, info)
    assert calls == [None, 1] and len(outputs) == 3 and 'one view per head call' in \
        info['fallbacks'][0]
    fail_again, calls[:] = True, []
    with pytest.raises(ReconstructionError, match='even with one view per head call'):
        backend._infer(views, {})


def test_half_precision_weights_on_cuda_heads_stay_float32(ckpt, monkeypatch):
    """On CUDA with bf16/fp16 the encoder/transformer weights are stored half (memory)."""
    from aetherscan_ros.models import torch_device
    from aetherscan_ros.models.mapanything import MapAnything
    real = MapAnything.from_pretrained.__func__
    monkeypatch.setattr(torch_device, 'select_device',
                        lambda pref='auto': (torch.device('cuda', 0), torch.bfloat16))
    monkeypatch.setattr(torch_device, 'resolve_precision', lambda device, p='auto': torch.bfloat16)
    monkeypatch.setattr(MapAnything, 'from_pretrained', classmethod(
        lambda cls, path, device='cpu', dtype=torch.float32: real(cls, path)))  # stays on CPU
    backend = MapAnythingBackend(str(ckpt), device='cuda', size=70)
    linear = [m for m in backend.model.encoder.modules() if isinstance(m, torch.nn.Linear)]
    assert linear and all(m.weight.dtype == torch.bfloat16 for m in linear)
    assert all(p.dtype == torch.float32 for p in backend.model.dense_head.parameters())
    assert all(p.dtype == torch.float32 for p in backend.model.pose_head.parameters())
    monkeypatch.undo()
    cpu = MapAnythingBackend(str(ckpt), device='cpu', size=70)
    assert all(p.dtype == torch.float32 for p in cpu.model.parameters())


# ------------------------------------------------------------------------------ checkpoints

def test_bad_checkpoints_fail_naming_the_file(ckpt, tmp_path):
    missing = tmp_path / 'nothing_here'
    with pytest.raises(BackendUnavailable, match=f'MapAnything checkpoint {missing}: no such'):
        MapAnythingBackend(str(missing), device='cpu')
    with pytest.raises(BackendUnavailable, match=f'{missing}: no such'):
        create_backend('mapanything', model=str(missing), device='cpu')
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'config.json').write_text((ckpt / 'config.json').read_text())
    with pytest.raises(BackendUnavailable, match=f'{empty} lacks model.safetensors'):
        MapAnythingBackend(str(empty), device='cpu')
    cut = tmp_path / 'truncated'
    cut.mkdir()
    (cut / 'config.json').write_text((ckpt / 'config.json').read_text())
    data = (ckpt / 'model.safetensors').read_bytes()
    (cut / 'model.safetensors').write_bytes(data[:len(data) // 2])
    with pytest.raises(BackendUnavailable, match=f'checkpoint {cut} unusable: .*'
                       f'{cut / "model.safetensors"}'):
        MapAnythingBackend(str(cut), device='cpu')
    with pytest.raises(ValueError, match='multiple of 14'):
        MapAnythingBackend(str(ckpt), device='cpu', size=100)


def test_auto_tries_mapanything_then_fast3r_then_classical(ckpt, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from aetherscan_ros.models.fast3r import write_random_checkpoint as fast3r_checkpoint
    backend, reason = create_backend('auto', model=str(ckpt), device='cpu',
                                     options={'mapanything.size': 70})
    assert backend.name == 'mapanything' and reason.startswith('mapanything: ' + RANDOM)
    f3 = fast3r_checkpoint(tmp_path / 'f3', 'tiny')
    backend, reason = create_backend('auto', model=str(f3), device='cpu')
    assert backend.name == 'fast3r'
    monkeypatch.setattr(constants, 'HF_HUB_CACHE', str(tmp_path / 'empty_hub'))
    backend, reason = create_backend('auto', device='cpu')  # nothing on this machine
    assert backend.name == 'classical'
    assert reason.startswith('Fast3R unavailable (') and reason.endswith(
        'using the classical backend')
    assert "; MapAnything unavailable (MapAnything weights 'facebook/map-anything-apache'" \
        in reason, reason


def test_licences_by_checkpoint_and_backend(ckpt, tmp_path):
    from safetensors.torch import save_file
    assert checkpoint_licence(ckpt) == licences.RANDOM

    def plain(name, card=None, config_extra=None):
        path = tmp_path / name
        path.mkdir(parents=True)
        config = json.loads((ckpt / 'config.json').read_text())
        config.update(config_extra or {})
        (path / 'config.json').write_text(json.dumps(config))
        save_file({'x': torch.zeros(1)}, str(path / 'model.safetensors'))
        if card:
            (path / 'README.md').write_text(f'---\nlicense: {card}\n---\n# model\n')
        return path

    assert checkpoint_licence(plain('a', 'apache-2.0')) == licences.MAPANYTHING_APACHE
    assert checkpoint_licence(plain('b', 'cc-by-nc-4.0')) == licences.MAPANYTHING_NONCOMMERCIAL
    hub = plain('models--facebook--map-anything/snapshots/0123abc')
    assert checkpoint_licence(hub) == licences.MAPANYTHING_NONCOMMERCIAL
    assert checkpoint_licence(plain('c'), 'facebook/map-anything-apache') == \
        licences.MAPANYTHING_APACHE
    assert checkpoint_licence(plain('d', config_extra={'license': 'Apache-2.0'})) == \
        licences.MAPANYTHING_APACHE
    assert checkpoint_licence(plain('e')) == licences.MAPANYTHING_UNKNOWN

    class Model:
        is_random = False

    class Fast3RLike:
        name, model = 'fast3r', Model()

    class Classical:
        name = 'classical'

    assert 'non-commercial' in licences.of_backend(Fast3RLike())
    assert licences.of_backend(Classical()) == licences.CLASSICAL
    assert 'BSD' in licences.CLASSICAL and 'Apache-2.0' in licences.CLASSICAL


# ------------------------------------------------------------------------------ CLI

def test_cli_reconstruct_gives_the_camera_info_to_mapanything(ckpt, tmp_path):
    from aetherscan_ros.cli import main as cli_main
    from aetherscan_ros.core.calibration_file import read_calibration_yaml
    from aetherscan_ros.files.ply import read_ply
    from aetherscan_ros.files.poses import read_poses_json
    scene = tmp_path / 'scene'
    assert cli_main(['demo-scene', str(scene), '--views', '3', '--width', '160', '--height',
                     '120', '--seed', '2']) == 0
    calib = scene / 'camera_info.yaml'
    out = tmp_path / 'out'
    env = dict(os.environ, HF_HUB_OFFLINE='1', OMP_NUM_THREADS='2')
    proc = subprocess.run([sys.executable, '-m', 'aetherscan_ros.cli', 'reconstruct',
                           str(scene), '-o', str(out), '--backend', 'mapanything', '--model',
                           str(ckpt), '--camera-info', str(calib), '--no-preview'],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert 'backend mapanything: mapanything: ' + RANDOM in proc.stderr, proc.stderr
    flat = ' '.join(proc.stdout.split())
    assert 'licence none: random test weights' in flat and 'RANDOM WEIGHTS' in proc.stdout
    assert 'intrinsics: --camera-info (given to the model)' in flat
    poses = read_poses_json(out / 'poses.json')
    k = read_calibration_yaml(calib).K
    assert poses.backend == 'mapanything' and np.allclose(poses.intrinsics, k)
    assert poses.info['licence'] == licences.RANDOM
    # the same cloud as the backend run in this process on the same frames (518 px default)
    frames = [Frame(img, f'frame_{i:03d}.png', K=k) for i, img in
              enumerate(_scene_images(scene))]
    direct = MapAnythingBackend(str(ckpt), device='cpu').reconstruct(frames)
    cloud = read_ply(out / 'cloud.ply')
    assert cloud.points.shape == direct.points.shape
    np.testing.assert_allclose(cloud.points, direct.points, rtol=1e-5, atol=1e-6)


def _scene_images(directory):
    import cv2
    names = sorted(p for p in Path(directory).glob('frame_*.png'))
    return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in names]
