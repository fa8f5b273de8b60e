# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
MapAnything port vs upstream (parity fixture A: tiny random model, 3 views of 70x42).

Three runs (images only; poses + intrinsics; intrinsics + depth + metric flags), each in
float32 and float64, through the public ``infer``; the intermediates of every stage; the
synthetic post-processing case; and the preprocessing from the source images.
"""

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from aetherscan_ros.models.mapanything import MapAnything
from aetherscan_ros.models.mapanything.encoder import interpolate_pos_embed
from aetherscan_ros.models.mapanything.inference import apply_masks, convert_views
from aetherscan_ros.models.mapanything.postprocess import fit_intrinsics, poses_from_quats
from aetherscan_ros.models.mapanything.preprocess import load_images, preprocess_inputs

FIXTURE = Path(__file__).resolve().parent / 'fixtures' / 'mapanything' / 'parity_a'
RUNS = ('images', 'priors', 'priors_depth')
DENSE = ('ray_directions', 'conf', 'non_ambiguous_mask_logits')
GLOBAL = ('cam_trans', 'cam_quats', 'camera_poses', 'intrinsics', 'metric_scaling_factor')
MASKED = ('pts3d', 'pts3d_cam', 'depth_z', 'depth_along_ray')
TOL = {'': 1e-4, '_f64': 1e-9}


@pytest.fixture(scope='module')
def fixture():
    if not (FIXTURE / 'fixture.npz').is_file():
        pytest.fail(f'{FIXTURE}/fixture.npz is missing: the MapAnything fixtures are part of '
                    'the repository (test/fixtures/mapanything/README.md); restore them')
    return dict(np.load(FIXTURE / 'fixture.npz'))


@pytest.fixture(scope='module')
def models():
    model = MapAnything.from_pretrained(FIXTURE)
    return {'': model, '_f64': MapAnything.from_pretrained(FIXTURE).double()}


def make_views(fixture, run, sfx):
    """Return the ``infer`` views of ``run`` as upstream got them."""
    dtype = torch.float64 if sfx else torch.float32
    views = []
    for i in range(3):
        view = {'img': torch.from_numpy(fixture[f'{run}__img{sfx}'][i:i + 1]),
                'data_norm_type': ['dinov2']}
        key = f'{run}__intrinsics_in_{i}{sfx}'
        if key in fixture:
            view['intrinsics'] = torch.from_numpy(fixture[key])[None]
        key = f'{run}__pose_in_{i}{sfx}'
        if key in fixture:
            view['camera_poses'] = torch.from_numpy(fixture[key])[None]
        key = f'{run}__depth_z_in_{i}'
        if key in fixture:
            view['depth_z'] = torch.from_numpy(fixture[key])[None].to(dtype)
        key = f'{run}__is_metric_scale_in_{i}'
        if key in fixture:
            view['is_metric_scale'] = torch.from_numpy(fixture[key])
        views.append(view)
    return views


def stacked(out, key):
    return np.concatenate([o[key].numpy() for o in out])


@pytest.mark.parametrize('sfx', ['', '_f64'], ids=['fp32', 'fp64'])
@pytest.mark.parametrize('run', RUNS)
def test_infer_matches_upstream(fixture, models, run, sfx):
    out = models[sfx].infer(make_views(fixture, run, sfx), use_amp=False)
    assert len(out) == 3
    tol = TOL[sfx]
    want_dtype = torch.float64 if sfx else torch.float32
    for key in DENSE + GLOBAL + MASKED:
        assert out[0][key].dtype == want_dtype, key
    for key in DENSE + GLOBAL:
        ref = fixture[f'{run}__{key}{sfx}']
        got = stacked(out, key)
        assert got.shape == ref.shape, key
        atol = 0.0 if key == 'conf' else tol  # conf reaches ~800: relative only
        np.testing.assert_allclose(got, ref, rtol=tol, atol=atol, err_msg=f'{run} {key}')
    flips_na = int((stacked(out, 'non_ambiguous_mask')
                    != fixture[f'{run}__non_ambiguous_mask{sfx}']).sum())
    assert flips_na == 0
    mask, ref_mask = stacked(out, 'mask'), fixture[f'{run}__mask{sfx}']
    assert mask.dtype == np.bool_ and mask.shape == ref_mask.shape == (3, 42, 70, 1)
    flips = int((mask != ref_mask).sum())
    assert flips <= (0.001 * mask.size if not sfx else 0), f'{run}: {flips} mask flips'
    assert ref_mask.sum() > 100  # the comparison below covers real pixels
    agree = (mask == ref_mask)[..., 0]
    for key in MASKED:
        got, ref = stacked(out, key), fixture[f'{run}__{key}{sfx}']
        np.testing.assert_allclose(got[agree], ref[agree], rtol=tol, atol=tol,
                                   err_msg=f'{run} {key}')
        assert not got[~mask[..., 0]].any()  # masked pixels are zero


@pytest.mark.parametrize('sfx', ['', '_f64'], ids=['fp32', 'fp64'])
@pytest.mark.parametrize('run', RUNS)
def test_network_and_intermediates_match_upstream(fixture, models, run, sfx):
    """Every stage on every pixel (the masks keep only 1-4 % of the random model's pixels)."""
    model = models[sfx]
    dtype = torch.float64 if sfx else torch.float32
    images, geo = convert_views(make_views(fixture, run, sfx), torch.device('cpu'), dtype)
    record = {}
    with torch.inference_mode():
        raw = model(images, geo, minibatch=1, record=record)
    tol = 1e-5 if not sfx else 1e-9

    def grid(t):  # [V, T, C] tokens -> [V, C, 3, 5]
        return t.numpy().transpose(0, 2, 1).reshape(3, -1, 3, 5)

    got = {'enc_features': grid(record['enc_features']),
           'enc_cls': record['enc_cls'].numpy()[..., None],
           'mv_input': record['mv_input'].numpy(),
           'mv_block_outputs': np.stack([x.numpy() for x in record['mv_block_outputs']]),
           'pose_raw': record['pose_raw'].numpy(),
           'scale_token_out': record['scale_token_out'].numpy()[..., None],
           'scale_raw': record['scale_raw'].numpy()[None],
           'raw_pts3d': raw['pts3d'].numpy(),
           'raw_depth_along_ray': raw['depth_along_ray'].numpy()}
    for i in range(4):
        got[f'dpt_tap{i}'] = record[f'dpt_tap{i}'].numpy()
    if run != 'images':
        got['fused_prenorm'] = grid(record['fused_prenorm'])
    for name in ('ray_dirs_encoder', 'depth_encoder'):
        if f'geo_{name}_out' in record:
            got[f'geo_{name}_out'] = grid(record[f'geo_{name}_out'])
    for name in ('depth_scale_encoder', 'cam_rot_encoder', 'cam_trans_encoder',
                 'cam_trans_scale_encoder'):
        if f'geo_{name}_out' in record:
            got[f'geo_{name}_in'] = record[f'geo_{name}_in'].numpy()
            got[f'geo_{name}_out'] = record[f'geo_{name}_out'].numpy()[:, 0]
    if run == 'priors_depth' and not sfx:
        got['geo_depth_encoder_in'] = record['geo_depth_encoder_in'].numpy()
    if run == 'images' and not sfx:
        got['dense_raw'] = record['dense_raw'].numpy()
    expected_geo = {'images': 0, 'priors': 7, 'priors_depth': 4 if sfx else 5}[run]
    assert sum(k.startswith('geo_') for k in got) == expected_geo
    for key, value in got.items():
        ref = fixture[f'{run}__{key}{sfx}']
        scale = max(float(np.abs(ref).max()), 1.0)
        np.testing.assert_allclose(value, ref, rtol=tol, atol=tol * scale,
                                   err_msg=f'{run} {key}')


def test_synthetic_postprocessing_matches_upstream(fixture):
    """Hand-made raw outputs (plane + box): intrinsics, poses, edge and confidence masks."""
    def raw():
        out = {k: torch.from_numpy(fixture[f'syn_in_{k}']) for k in (
            'ray_directions', 'depth_along_ray', 'conf', 'non_ambiguous_mask', 'pts3d',
            'pts3d_cam', 'cam_quats', 'cam_trans')}
        out['depth_z'] = out['pts3d_cam'][..., 2:3]
        out['intrinsics'] = fit_intrinsics(out['ray_directions'])
        out['camera_poses'] = poses_from_quats(out['cam_quats'], out['cam_trans'])
        return out

    out = raw()
    apply_masks(out, True, 5.0, 0.03, None)
    np.testing.assert_allclose(out['intrinsics'][0].numpy(), fixture['syn_K'], atol=1e-3)
    np.testing.assert_allclose(out['intrinsics'].numpy(), fixture['syn_out_default_intrinsics'],
                               atol=2e-3)
    for key in ('depth_z', 'camera_poses', 'pts3d', 'depth_along_ray'):
        np.testing.assert_allclose(out[key].numpy(), fixture[f'syn_out_default_{key}'],
                                   rtol=1e-6, atol=1e-6, err_msg=key)
    assert np.array_equal(out['mask'].numpy(), fixture['syn_out_default_mask'])
    assert 0 < fixture['syn_out_default_mask'].sum() < fixture['syn_in_non_ambiguous_mask'].sum()
    conf = raw()
    apply_masks(conf, True, 5.0, 0.03, 10)
    assert np.array_equal(conf['mask'].numpy(), fixture['syn_out_conf10_mask'])
    assert conf['mask'].sum() < out['mask'].sum()


@pytest.mark.parametrize('dtype,sfx', [(torch.float32, ''), (torch.float64, '_f64')])
def test_preprocessing_matches_upstream_exactly(fixture, dtype, sfx):
    """load_images / preprocess_inputs from the source PNGs: images, intrinsics, depth."""
    views = load_images([FIXTURE / f'src_image_{i}.png' for i in range(3)], 'longest_side', 70,
                        dtype=dtype)
    assert np.array_equal(np.concatenate([v['img'].numpy() for v in views]),
                          fixture[f'images__img{sfx}'])
    for run in ('priors', 'priors_depth'):
        raw = []
        for i in range(3):
            view = {'img': fixture[f'src_image_{i}']}
            for key in ('intrinsics', 'depth_z'):
                if f'{run}__{key}_src_{i}' in fixture:
                    view[key] = fixture[f'{run}__{key}_src_{i}']
            raw.append(view)
        out = preprocess_inputs(raw, 'longest_side', 70, dtype=dtype)
        assert np.array_equal(np.concatenate([v['img'].numpy() for v in out]),
                              fixture[f'{run}__img{sfx}'])
        for i, view in enumerate(out):
            if 'intrinsics' in raw[i]:
                assert np.array_equal(view['intrinsics'][0].numpy(),
                                      fixture[f'{run}__intrinsics_in_{i}_f64'])
            if 'depth_z' in raw[i]:
                assert np.array_equal(view['depth_z'][0].numpy(),
                                      fixture[f'{run}__depth_z_in_{i}'])
    # view 1 of the priors run: odd margin, the crop with intrinsics starts one row lower
    assert np.array_equal(fixture['priors__img'][1, :, :-1], fixture['images__img'][1, :, 1:])


def test_img_no_norm(fixture, models):
    out = models[''].infer(make_views(fixture, 'images', ''), use_amp=False)
    np.testing.assert_array_equal(stacked(out, 'img_no_norm'), fixture['images__img_no_norm'])


def test_repo_fixtures_are_the_recorded_ones():
    """The copied fixtures are byte for byte the recorded ones (sums in their README)."""
    base = FIXTURE.parent
    text = (base / 'README.md').read_text()
    sums = [line.split() for line in text.split('```')[1].strip().splitlines()]
    assert len(sums) == 10
    for digest, name in sums:
        assert hashlib.sha256((base / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize('sfx', ['', '_f64'], ids=['fp32', 'fp64'])
def test_position_table_resampling_matches_upstream(fixture, models, sfx):
    """SPEC §4.2: bicubic with scale factors (h + 0.1) / 37; untouched for 37x37 squares."""
    table = models[sfx].encoder.model.pos_embed.detach()
    got = interpolate_pos_embed(table, 3, 5, square=False)
    assert got.dtype == table.dtype and got.shape == (1, 16, 32)
    ref = fixture[f'images__enc_pos_embed_interp{sfx}']
    np.testing.assert_allclose(got.numpy(), ref, rtol=0, atol=1e-6 if not sfx else 1e-12)
    assert interpolate_pos_embed(table, 37, 37, square=True) is table
    assert interpolate_pos_embed(table, 37, 37, square=False).shape == table.shape


def test_single_view_and_square_input(models):
    gen = torch.Generator().manual_seed(5)
    (out,) = models[''].infer([{'img': torch.randn(1, 3, 42, 42, generator=gen)}])
    assert out['pts3d'].shape == (1, 42, 42, 3) and torch.isfinite(out['conf']).all()
    torch.testing.assert_close(out['camera_poses'][0, :3, :3] @ out['camera_poses'][0, :3, :3].T,
                               torch.eye(3), atol=1e-5, rtol=0)
