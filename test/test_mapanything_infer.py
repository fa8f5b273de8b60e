# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""MapAnything ``infer``: input checks, equivalent prior forms, options, precision, memory."""

from pathlib import Path

import numpy as np
import pytest
import torch

from aetherscan_ros.models.mapanything import MapAnything
from aetherscan_ros.models.mapanything.inference import (
    amp_context, cast_for_autocast, head_minibatch, is_out_of_memory)
from aetherscan_ros.models.mapanything.multiview import multiview_confidence
from aetherscan_ros.models.mapanything.postprocess import fit_intrinsics, poses_from_quats
from aetherscan_ros.models.mapanything.preprocess import preprocess_inputs, target_size
from aetherscan_ros.models.mapanything.priors import (
    matrix_to_quaternion, quaternion_to_matrix, rays_from_intrinsics)

PARITY = Path(__file__).resolve().parent / 'fixtures' / 'mapanything' / 'parity_a'
K = np.array([[60.0, 0.0, 34.5], [0.0, 58.0, 20.5], [0.0, 0.0, 1.0]])


@pytest.fixture(scope='module')
def fixture():
    return dict(np.load(PARITY / 'fixture.npz'))


@pytest.fixture(scope='module')
def model():
    return MapAnything.from_pretrained(PARITY)


def base_views(fixture, n=3):
    return [{'img': torch.from_numpy(fixture['images__img'][i:i + 1])} for i in range(n)]


def with_priors(fixture, depth=False, poses=False):
    views = base_views(fixture)
    for i, view in enumerate(views):
        view['intrinsics'] = torch.from_numpy(K[None]).float()
        if depth and i != 1:
            view['depth_z'] = torch.from_numpy(fixture[f'priors_depth__depth_z_in_{i}'])[None]
        if poses and i < 2:
            view['camera_poses'] = torch.from_numpy(fixture[f'priors__pose_in_{i}'])[None]
    return views


def run(model, views, **options):
    out = model.infer(views, use_amp=False, **options)
    return {k: torch.cat([o[k] for o in out]) for k in out[0]}


def assert_same(a, b, keys=('pts3d', 'conf', 'cam_trans', 'intrinsics', 'mask'), atol=0.0):
    for key in keys:
        if a[key].dtype == torch.bool:
            assert torch.equal(a[key], b[key]), key
        else:
            torch.testing.assert_close(a[key], b[key], atol=atol, rtol=atol, msg=key)


@pytest.mark.parametrize('change,message', [
    (lambda v: v.clear(), 'non-empty list'),
    (lambda v: v[0].update(img=v[0]['img'][0]), r'view 0 img: expected shape \[1, 3, \*, \*\]'),
    (lambda v: v[1].update(img=v[1]['img'][..., :41, :]), 'not a multiple of the patch'),
    (lambda v: v[1].update(img=v[1]['img'][..., :28, :]), 'differs from view 0'),
    (lambda v: v[1].update(intrinsics=torch.eye(3)[None],
                           ray_directions=torch.ones(1, 42, 70, 3)), 'not both'),
    (lambda v: v[2].update(depth_z=torch.ones(1, 42, 70)), 'view 2: depth_z needs intrinsics'),
    (lambda v: v[1].update(camera_poses=torch.eye(4)[None]), 'view 0 needs one too'),
    (lambda v: v[0].update(colour=1), r"view 0: unknown key\(s\) \['colour'\]"),
    (lambda v: v[0].update(data_norm_type=['identity']), "data_norm_type 'identity'"),
    (lambda v: v[1].update(intrinsics=torch.eye(3)), r'view 1 intrinsics: expected shape'),
    (lambda v: v[1].update(intrinsics=torch.eye(3)[None], depth_z=torch.ones(1, 40, 70)),
     r'view 1 depth_z: expected shape \[1, 42, 70\]'),
    (lambda v: v[0].update(camera_poses=(torch.zeros(1, 4), torch.zeros(1, 4))),
     'view 0 camera_poses trans'),
    (lambda v: v[0].update(is_metric_scale=torch.tensor([True, False])), 'one flag'),
])
def test_bad_input_is_a_clear_error(fixture, model, change, message):
    views = base_views(fixture)
    change(views)
    with pytest.raises(ValueError, match=message):
        model.infer(views)


def test_equivalent_prior_forms_give_the_same_result(fixture, model):
    ref = run(model, with_priors(fixture, depth=True, poses=True))
    # float64 and numpy priors with a float32 model (upstream raises, SPEC §13.3)
    views = with_priors(fixture, depth=True, poses=True)
    for view in views:
        view['intrinsics'] = view['intrinsics'].double().numpy()
        if 'camera_poses' in view:
            view['camera_poses'] = view['camera_poses'].double()
    assert_same(ref, run(model, views))
    # depth_z [1, H, W, 1] (upstream's docstring) and [1, H, W]
    views = with_priors(fixture, depth=True, poses=True)
    views[0]['depth_z'] = views[0]['depth_z'][..., None]
    assert_same(ref, run(model, views))
    # (quats, trans) instead of 4x4; rays instead of intrinsics: equal up to rounding, so
    # compared without the edge masks (a 1e-9 change can flip an edge pixel, SPEC §13.9)
    raw = run(model, with_priors(fixture, depth=True, poses=True), apply_mask=False)
    views = with_priors(fixture, depth=True, poses=True)
    for view in views[:2]:
        pose = view['camera_poses'][0].double()
        view['camera_poses'] = (matrix_to_quaternion(pose[:3, :3])[None], pose[None, :3, 3])
    views[2]['ray_directions'] = rays_from_intrinsics(views[2].pop('intrinsics'), 42, 70) * 3
    assert_same(raw, run(model, views, apply_mask=False), ('pts3d', 'conf', 'cam_trans'), 1e-5)


def test_priors_change_the_result_and_ignore_options_drop_them(fixture, model):
    images = run(model, base_views(fixture))
    calib = run(model, with_priors(fixture))
    assert not torch.allclose(images['pts3d'], calib['pts3d'])
    assert_same(images, run(model, with_priors(fixture), ignore_calibration_inputs=True))
    depth = run(model, with_priors(fixture, depth=True))
    assert not torch.allclose(depth['pts3d'], calib['pts3d'])
    assert_same(calib, run(model, with_priors(fixture, depth=True), ignore_depth_inputs=True))
    posed = run(model, with_priors(fixture, poses=True))
    assert not torch.allclose(posed['cam_trans'], calib['cam_trans'])
    assert_same(calib, run(model, with_priors(fixture, poses=True), ignore_pose_inputs=True))
    # the metric flags: ignoring the pose scale == saying the poses are not metric
    views = with_priors(fixture, poses=True)
    for view in views:
        view['is_metric_scale'] = torch.tensor([False])
    not_metric = run(model, views)
    assert not torch.allclose(not_metric['metric_scaling_factor'], posed['metric_scaling_factor'])
    assert_same(not_metric, run(model, with_priors(fixture, poses=True),
                                ignore_pose_scale_inputs=True))
    views = with_priors(fixture, depth=True)
    for view in views:
        view['is_metric_scale'] = np.array([False])
    assert_same(run(model, views), run(model, with_priors(fixture, depth=True),
                                       ignore_depth_scale_inputs=True))


def test_memory_options_masks_and_amp_on_cpu(fixture, model):
    views = with_priors(fixture, depth=True, poses=True)
    ref = run(model, views)
    plain = run(model, views, apply_mask=False)
    for options in ({'minibatch_size': 2}, {'memory_efficient_inference': False}):
        assert_same(plain, run(model, views, apply_mask=False, **options),
                    ('pts3d', 'conf', 'cam_trans', 'intrinsics'), 1e-5)
    # on the CPU use_amp does not autocast (upstream's fp16 there, SPEC §13.2): identical
    amp = {k: torch.cat([o[k] for o in model.infer(views)]) for k in ref}
    assert_same(ref, amp)
    raw = run(model, views, apply_mask=False)
    assert 'mask' not in raw and ref['mask'].any() and not ref['mask'].all()
    keep = ref['mask'][..., 0]
    torch.testing.assert_close(raw['pts3d'][keep], ref['pts3d'][keep], rtol=0, atol=0)
    assert not ref['pts3d'][~keep].any() and raw['pts3d'][~keep].abs().sum() > 0
    no_edges = run(model, views, mask_edges=False)
    assert torch.equal(no_edges['mask'][..., 0], no_edges['non_ambiguous_mask'])
    conf = run(model, views, mask_edges=False, apply_confidence_mask=True,
               confidence_percentile=50)
    assert conf['mask'].sum() < no_edges['mask'].sum()
    assert (conf['conf'][conf['mask'][..., 0]] > 1).all()


def test_multiview_confidence_counts_agreeing_views():
    """Two cameras looking at a plane z = 2 with exact poses: every overlapping pixel agrees."""
    height, width = 42, 70
    k = torch.tensor(K, dtype=torch.float64)
    rays = rays_from_intrinsics(k[None], height, width)
    depth_z = torch.full((height, width), 2.0, dtype=torch.float64)
    cam = rays / rays[..., 2:3] * depth_z[..., None]  # [1, H, W, 3]
    poses = torch.eye(4, dtype=torch.float64).repeat(2, 1, 1)
    poses[1, 0, 3] = 0.2  # camera 1 moved 0.2 m to the right, same plane z = 2 in world
    world = torch.cat([cam[0][None], (cam[0] + poses[1, :3, 3])[None]])
    out = {'conf': torch.ones(2, height, width, dtype=torch.float64), 'pts3d': world,
           'camera_poses': poses, 'intrinsics': k.repeat(2, 1, 1),
           'depth_z': depth_z.repeat(2, 1, 1)[..., None]}
    conf = multiview_confidence(out)
    shift = int(round(0.2 / 2.0 * K[0, 0]))  # 6 px of parallax
    assert conf.shape == (2, height, width) and set(conf.unique().tolist()) == {0.0, 1.0}
    assert conf[0, :, shift + 1:].eq(1).all() and conf[0, :, :shift - 1].eq(0).all()
    out['depth_z'] = out['depth_z'] * 1.2  # view 1 disagrees by 0.4 m > 0.02 + 0.02 * 2.4
    assert multiview_confidence(out)[0].eq(0).all()
    single = {k: v[:1] for k, v in out.items()}
    assert torch.equal(multiview_confidence(single), single['conf'])


def test_multiview_confidence_option(fixture, model):
    out = run(model, with_priors(fixture, poses=True), use_multiview_confidence=True,
              apply_mask=False)
    assert out['conf'].shape == (3, 42, 70) and out['conf'].dtype == torch.float32
    assert ((out['conf'] >= 0) & (out['conf'] <= 1)).all()
    assert set((out['conf'] * 2).round().unique().tolist()) <= {0.0, 1.0, 2.0}


def test_quaternion_helpers_round_trip():
    gen = torch.Generator().manual_seed(0)
    quats = torch.randn(64, 4, generator=gen, dtype=torch.float64)
    quats = quats / quats.norm(dim=-1, keepdim=True)
    quats = torch.where(quats[:, 3:] < 0, -quats, quats)
    rot = quaternion_to_matrix(quats)
    torch.testing.assert_close(rot @ rot.transpose(1, 2), torch.eye(3, dtype=torch.float64)
                               .expand(64, 3, 3))
    torch.testing.assert_close(matrix_to_quaternion(rot), quats)
    pose = poses_from_quats(quats[:2], torch.ones(2, 3, dtype=torch.float64))
    bottom = torch.tensor([[0, 0, 0, 1.0]] * 2, dtype=pose.dtype)
    assert pose.shape == (2, 4, 4) and torch.equal(pose[:, 3], bottom)


def test_gpu_path_helpers_on_cpu(model):
    cpu = torch.device('cpu')
    assert head_minibatch(cpu, 5) == 1 and head_minibatch(cpu, 5, minibatch_size=3) == 3
    assert head_minibatch(cpu, 5, memory_efficient=False) == 5
    assert not isinstance(amp_context(cpu, True), torch.autocast)
    assert is_out_of_memory(RuntimeError('CUDA out of memory. Tried to allocate 2 GiB'))
    assert not is_out_of_memory(RuntimeError('shape mismatch'))
    half = cast_for_autocast(MapAnything.from_pretrained(PARITY), torch.bfloat16)
    assert half.encoder.model.blocks[0].attn.qkv.weight.dtype == torch.bfloat16
    assert half.info_sharing.self_attention_blocks[0].mlp.w12.weight.dtype == torch.bfloat16
    assert half.encoder.model.blocks[0].norm1.weight.dtype == torch.float32
    assert half.dense_head[1].conv1.weight.dtype == torch.float32
    assert half.pose_head.fc_t.weight.dtype == torch.float32
    assert cast_for_autocast(model, torch.float32) is model
    assert model.encoder.model.blocks[0].attn.qkv.weight.dtype == torch.float32


@pytest.mark.parametrize('height,width', [(42, 70), (392, 518), (1008, 1008)])
def test_intrinsics_fit_recovers_a_pinhole(height, width):
    """The least-squares grid (<= 1e6 pixels) and the 5-ray rule (larger) both give K back."""
    k = torch.tensor([[[0.9 * width, 0.0, 0.47 * width], [0.0, 0.85 * width, 0.52 * height],
                       [0.0, 0.0, 1.0]]], dtype=torch.float64)
    fitted = fit_intrinsics(rays_from_intrinsics(k, height, width))
    torch.testing.assert_close(fitted, k, rtol=1e-9, atol=1e-9)


def test_target_sizes_and_the_spec_example():
    """SPEC §3.1: the 518 table, longest_side, square, fixed_size; 640x480 -> 518x392."""
    assert target_size([(640, 480)]) == (518, 392)
    assert target_size([(480, 640), (480, 640)]) == (392, 518)
    assert target_size([(1920, 1080)]) == (518, 294)
    assert target_size([(120, 72), (100, 65), (60, 40)], 'longest_side', 70) == (70, 42)
    assert target_size([(40, 60)], 'longest_side', 70) == (42, 70)
    assert target_size([(640, 480)], 'square', 100) == (98, 98)
    assert target_size([(640, 480)], 'fixed_size', (300, 200)) == (294, 196)
    with pytest.raises(ValueError, match='resize_mode'):
        target_size([(640, 480)], 'stretch')
    rgb = np.zeros((480, 640, 3), np.uint8)  # s = 0.8166: 522x392, crop 2 px on the left
    k = np.array([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]])
    (view,) = preprocess_inputs([{'img': rgb, 'intrinsics': k}])
    assert tuple(view['img'].shape) == (1, 3, 392, 518)
    scale = 392 / 480 + 1e-8
    assert view['intrinsics'][0, 0, 0] == pytest.approx(500 * scale)
    shift = 0.5 * (640 * scale - 522)  # resize offset o of SPEC §3.2
    assert view['intrinsics'][0, 0, 2] == pytest.approx(scale * 320.5 - shift - 0.5 - 2)
    with pytest.raises(ValueError, match=r'view 0 img: expected \[H, W, 3\] uint8'):
        preprocess_inputs([{'img': np.zeros((4, 4), np.uint8)}])
    with pytest.raises(ValueError, match='depth_z: shape'):
        preprocess_inputs([{'img': rgb, 'intrinsics': k, 'depth_z': np.ones((10, 10))}])
