# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Fast3R port vs outputs of the upstream code (``test/fixtures/fast3r/parity_a``)."""

import numpy as np
import pytest
import torch

from aetherscan_ros.models.fast3r import default_image_ids, Fast3R
from aetherscan_ros.models.fast3r.inference import run_fast3r
from aetherscan_ros.models.fast3r.preprocess import load_image_file, preprocess_image

KEYS = ('pts3d_in_other_view', 'conf', 'pts3d_local', 'conf_local')


@pytest.fixture(scope='module')
def fixture(parity_dir):
    return dict(np.load(parity_dir / 'fixture.npz'))


@pytest.fixture(scope='module')
def model(parity_dir):
    return Fast3R.from_pretrained(parity_dir)


def _ids(fixture):
    return fixture['image_ids'].tolist()


def test_fp32_outputs_match_upstream(model, fixture):
    assert _ids(fixture) == [0, 569, 513]
    with torch.inference_mode():
        out = model(torch.from_numpy(fixture['img']), image_ids=_ids(fixture))
    for key in KEYS:
        assert out[key].dtype == torch.float32
        np.testing.assert_allclose(out[key].numpy(), fixture[key], rtol=1e-4, atol=1e-4,
                                   err_msg=key)


def test_fp64_outputs_match_upstream(parity_dir, fixture):
    model = Fast3R.from_pretrained(parity_dir).double()
    with torch.inference_mode():
        out = model(torch.from_numpy(fixture['img']).double(), image_ids=_ids(fixture))
    for key in KEYS:
        assert out[key].dtype == torch.float64
        np.testing.assert_allclose(out[key].numpy(), fixture[key + '_f64'], rtol=1e-9,
                                   atol=1e-9, err_msg=key)


def test_intermediates_match_upstream(model, fixture):
    with torch.inference_mode():
        out = model(torch.from_numpy(fixture['img']), image_ids=_ids(fixture),
                    return_intermediates=True)
    np.testing.assert_allclose(torch.cat(out['enc_tokens']).numpy(), fixture['enc_feats'],
                               atol=1e-5)
    np.testing.assert_array_equal(torch.cat(out['enc_pos']).numpy(), fixture['enc_pos'])
    dec = out['dec_outputs']
    assert len(dec) == 11
    np.testing.assert_allclose(dec[0].numpy(), fixture['dec_input_tokens_preproj'], atol=1e-5)
    np.testing.assert_allclose(torch.stack(dec[1:]).numpy(), fixture['dec_layer_outputs'],
                               atol=1e-5)
    rows = model.decoder.image_idx_emb[fixture['image_ids']].numpy()
    np.testing.assert_array_equal(rows, fixture['image_idx_emb_rows'])


def test_preprocessing_reproduces_upstream(parity_dir, fixture):
    for i in range(3):
        from_array = preprocess_image(fixture[f'src_image_{i}'], size=64)
        from_file = preprocess_image(load_image_file(parity_dir / f'src_image_{i}.png'), size=64)
        for view in (from_array, from_file):
            np.testing.assert_allclose(view.tensor[0].numpy(), fixture['img'][i], atol=1e-6)
            assert (view.size[1], view.size[0]) == tuple(fixture['true_shape'][i])
        # the colours are the cropped pixels themselves
        np.testing.assert_allclose(from_array.rgb / 127.5 - 1.0,
                                   fixture['img'][i].transpose(1, 2, 0), atol=1e-6)


def test_list_input_head_chunks_and_runner_agree_with_batched(model, fixture):
    imgs = torch.from_numpy(fixture['img'])
    ids = _ids(fixture)
    with torch.inference_mode():
        batched = model(imgs, image_ids=ids)
        listed = model([imgs[i] for i in range(3)], image_ids=ids, head_chunk=1)
    run = run_fast3r(model, [imgs[i:i + 1] for i in range(3)], ids, head_chunk=2)
    for key in KEYS:
        np.testing.assert_allclose(listed[key].numpy(), batched[key].numpy(), rtol=1e-5,
                                   atol=1e-5)
        # trap 1 (SPEC §12): float32 really is float32 here, no autocast to bf16
        assert run[key][0].dtype == np.float32
        np.testing.assert_allclose(np.stack(run[key]), batched[key].numpy(), rtol=1e-5,
                                   atol=1e-5)


def test_mixed_sizes_portrait_native_and_odd_grid(model, fixture):
    """Portrait stays portrait; odd patch grids (3x5) exercise the refinenet4 crop (trap 6)."""
    imgs = torch.from_numpy(fixture['img'])
    portrait = imgs[1:2].transpose(2, 3).contiguous()  # [1, 3, 64, 48]
    odd = torch.nn.functional.interpolate(imgs[2:3], size=(48, 80), mode='bilinear')
    with torch.inference_mode():
        out = model([imgs[0:1], portrait, odd], image_ids=[0, 5, 9], return_intermediates=True)
        alone = model(imgs[0:1], image_ids=[0], return_intermediates=True)
    shapes = [tuple(t.shape) for t in out['pts3d_in_other_view']]
    assert shapes == [(1, 48, 64, 3), (1, 64, 48, 3), (1, 48, 80, 3)]
    assert [tuple(t.shape) for t in out['conf_local']] == [(1, 48, 64), (1, 64, 48), (1, 48, 80)]
    # encoder tokens of a view do not depend on the other views; the fusion does
    np.testing.assert_allclose(out['enc_tokens'][0].numpy(), alone['enc_tokens'][0].numpy(),
                               atol=1e-6)
    assert not torch.allclose(out['pts3d_in_other_view'][0], alone['pts3d_in_other_view'])
    assert out['enc_pos'][1][0, -1].tolist() == [3, 2]  # 4 rows x 3 columns, native grid
    for key in KEYS:
        assert all(torch.isfinite(t).all() for t in out[key])


def test_image_ids_are_deterministic_and_bounded(model):
    ids = default_image_ids(5)
    assert ids == default_image_ids(5)  # trap 2: upstream redraws at every call
    assert ids[0] == 0 and len(set(ids)) == 5 and all(1 <= i <= 999 for i in ids[1:])
    assert default_image_ids(3) == ids[:3]  # adding views keeps earlier ids
    assert default_image_ids(4, 'sequential') == [0, 1, 2, 3]
    with pytest.raises(ValueError, match='at most 1000 views'):
        default_image_ids(1001)
    with pytest.raises(ValueError, match='at most 1000 views'):
        model(torch.zeros(1001, 3, 16, 16))
    with pytest.raises(ValueError, match=r'image ids must be in \[0, 1000\)'):
        model(torch.zeros(2, 3, 16, 16), image_ids=[0, 1000])
    with pytest.raises(ValueError, match='multiple of the patch size'):
        model(torch.zeros(2, 3, 20, 16))


@pytest.mark.parametrize('size', [160, 224, 240, 384, 448, 512])
def test_preprocessing_sizes_are_patch_multiples(model, size):
    """A square at a size other than 512 used to get a height of 3/4 width (224 -> 168)."""
    shapes = [(300, 300), (77, 77), (480, 640), (640, 480), (1080, 1920), (100, 90)]
    views = []
    for h, w in shapes:
        view = preprocess_image(np.full((h, w, 3), 128, np.uint8), size=size)
        width, height = view.size
        assert width % 16 == 0 and height % 16 == 0, (size, h, w, view.size)
        assert max(width, height) <= size and view.tensor.shape[-2:] == (height, width)
        if h == w:  # a square becomes at most 4:3, as close as a multiple of 16 allows
            assert width == size and 3 * width / 4 - 16 < height <= 3 * width / 4
        views.append(view.tensor)
    if size in (224, 512):
        assert preprocess_image(np.zeros((90, 90, 3), np.uint8), size=size).size == (
            {224: (224, 160), 512: (512, 384)}[size])  # 512 is upstream's own 4:3 crop
        square_and_portrait = [views[0], views[3]]
        with torch.inference_mode():
            out = model(square_and_portrait, image_ids=[0, 1])
        assert [tuple(t.shape[1:3]) for t in out['conf']] == [
            tuple(v.shape[-2:]) for v in square_and_portrait]


def test_repo_fixtures_are_the_recorded_ones(fast3r_fixtures):
    """The fixtures travel with the repo; their README lists the sha256 of each file."""
    import hashlib
    import re
    listed = re.findall(r'^([0-9a-f]{64})  (\S+)$', (fast3r_fixtures / 'README.md').read_text(),
                        re.MULTILINE)
    assert len(listed) == 10
    for digest, name in listed:
        data = (fast3r_fixtures / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name
