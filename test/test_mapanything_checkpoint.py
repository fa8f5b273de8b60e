# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""MapAnything config, real checkpoint layout, strict loading, aliases, random checkpoints."""

import json
from pathlib import Path
import shutil

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file
import torch

from aetherscan_ros.backends.base import BackendUnavailable
from aetherscan_ros.models.mapanything import (
    CheckpointError, ConfigError, load_config, locate_checkpoint, MapAnything, RANDOM_LABEL,
    write_random_checkpoint)
from aetherscan_ros.models.mapanything.config import giant, save_config, tiny, v1_1_dict
from aetherscan_ros.models.mapanything.weights import alias_names, canonical_key

BASE = Path(__file__).resolve().parent / 'fixtures' / 'mapanything'
PARITY = BASE / 'parity_a'


@pytest.fixture(scope='module')
def layout():
    return json.loads((BASE / 'checkpoint_layout.json').read_text())


@pytest.fixture(scope='module')
def tiny_ckpt(tmp_path_factory):
    return write_random_checkpoint(tmp_path_factory.mktemp('ma') / 'tiny', 'tiny', seed=3)


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_real_v1_1_on_meta_matches_checkpoint_layout(layout):
    config = load_config(BASE / 'config_real.json')
    assert config == giant()
    assert json.loads((BASE / 'config_real.json').read_text()) == v1_1_dict()
    with torch.device('meta'):
        model = MapAnything(config)
    state = model.state_dict()
    stored = {e['key']: e['shape'] for e in layout['entries'] if e['in_model_safetensors']}
    assert len(stored) == len(state) == layout['n_model_safetensors_entries'] == 736
    assert {k: list(v.shape) for k, v in state.items()} == stored
    assert all(v.dtype == torch.float32 for v in state.values())
    assert model.num_parameters() == 1_228_491_222 == layout['n_parameters_unique']
    for name, count in layout['n_parameters_by_top_module'].items():
        prefix = name.split(' ')[0]
        got = sum(p.numel() for n, p in model.named_parameters()
                  if n == prefix or n.startswith(prefix + '.'))
        assert got == count, name
    # every other state_dict name upstream has is an alias of a stored key
    aliases = layout['aliases_dropped_on_save_to_kept_key']
    assert {a: canonical_key(a) for a in aliases} == aliases
    others = [e for e in layout['entries'] if not e['in_model_safetensors']]
    assert len(others) == 812 - 736
    for entry in others:
        assert stored[canonical_key(entry['key'])] == entry['shape'], entry['key']
    assert {a for k in state for a in alias_names(k)} == {e['key'] for e in others}
    assert state['info_sharing.view_pos_table'].shape == (1, 1536)


def test_config_round_trip_and_fixture_keys(tmp_path):
    for path in (BASE / 'config_real.json', PARITY / 'config.json'):
        config = load_config(path)
        save_config(config, tmp_path / 'config.json')
        assert json.loads((tmp_path / 'config.json').read_text()) == json.loads(path.read_text())
        assert 'Infinity' in (tmp_path / 'config.json').read_text()
        assert load_config(tmp_path / 'config.json') == config
    fixture = load_config(PARITY / 'config.json')
    assert (fixture.enc_dim, fixture.enc_layers, fixture.enc_heads) == (32, 3, 2)
    assert (fixture.mv_dim, fixture.mv_depth, fixture.mv_indices) == (32, 6, (1, 3))
    assert fixture.pose_hidden == 64 and fixture.scale_hidden == 16
    assert fixture.dpt_layer_dims == (8, 12, 16, 24) and fixture.dpt_feature_dim == 24
    real = giant()
    assert (real.enc_dim, real.enc_layers, real.pose_hidden, real.scale_hidden) == (
        1536, 24, 784, 196)
    assert real.ray_dims == (588, 768, 1024) and real.cam_rot_dims == (128, 256, 512)


@pytest.mark.parametrize('change,key', [
    (lambda d: d['info_sharing_config'].update(model_type='global_attention'), 'model_type'),
    (lambda d: d['encoder_config'].update(size='large'), 'encoder_config.size'),
    (lambda d: d.update(info_sharing_mlp_layer_str='mlp'), 'info_sharing_mlp_layer_str'),
    (lambda d: d['pred_head_config']['dpt_adaptor'].update(depth_mode='linear'), 'depth_mode'),
    (lambda d: d.pop('pred_head_config'), 'pred_head_config'),
])
def test_unsupported_config_is_a_clear_error(tmp_path, change, key):
    data = v1_1_dict()
    change(data)
    path = tmp_path / 'config.json'
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=key) as err:
        load_config(path)
    assert str(path) in str(err.value)
    path.write_text('{"encoder_config": ')
    with pytest.raises(ConfigError, match='not a readable JSON'):
        load_config(path)


def test_fixture_checkpoint_loads_strictly_with_both_dpt_namings(tmp_path):
    """The HF file (dense_head.*) and upstream's full state_dict names (dpt_*_head, layerN_rn)."""
    hf = MapAnything.from_pretrained(PARITY)
    assert not hf.is_random and hf.weights_info['label'].startswith('MapAnything (')
    tensors = load_file(str(PARITY / 'model.safetensors'))
    assert len(tensors) == 302 and hf.num_parameters() == 491_646
    full, renamed = {}, {}
    for key, value in tensors.items():
        full[key] = value.clone()
        for alias in alias_names(key):  # upstream's whole 378-entry state_dict
            full[alias] = value.clone()
        renamed[key.replace('dense_head.0.', 'dpt_feature_head.', 1)
                .replace('dense_head.1.', 'dpt_regressor_head.', 1)] = value.clone()
    assert len(full) == 378 and len(renamed) == 302
    assert 'dpt_feature_head.scratch.layer_rn.3.weight' in full
    assert not any(k.startswith('dense_head.') for k in renamed)
    for name, state in (('full', full), ('renamed', renamed)):
        directory = tmp_path / name
        directory.mkdir()
        shutil.copy(PARITY / 'config.json', directory / 'config.json')
        save_file(state, str(directory / 'model.safetensors'))
        other = MapAnything.from_pretrained(directory)
        for (key, a), (_, b) in zip(hf.state_dict().items(), other.state_dict().items()):
            assert torch.equal(a, b), (name, key)
    upstream = full
    # a .pth benchmark checkpoint nests the dict under "model"
    pth = tmp_path / 'pth'
    pth.mkdir()
    shutil.copy(PARITY / 'config.json', pth / 'config.json')
    torch.save({'model': upstream}, pth / 'model.pth')
    third = MapAnything.from_pretrained(pth)
    assert torch.equal(third.pose_head.fc_t.weight, hf.pose_head.fc_t.weight)


def test_bad_checkpoints_fail_naming_the_file(tmp_path):
    trunc = _copy(PARITY, tmp_path / 'trunc')
    data = (trunc / 'model.safetensors').read_bytes()
    (trunc / 'model.safetensors').write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match='truncated or corrupt') as err:
        MapAnything.from_pretrained(trunc)
    assert str(trunc / 'model.safetensors') in str(err.value)

    tensors = load_file(str(PARITY / 'model.safetensors'))
    missing = _copy(PARITY, tmp_path / 'missing')
    save_file({k: v for k, v in tensors.items() if k != 'scale_token'},
              str(missing / 'model.safetensors'))
    with pytest.raises(CheckpointError, match=r'1 missing: scale_token'):
        MapAnything.from_pretrained(missing)

    shape = _copy(PARITY, tmp_path / 'shape')
    save_file({**tensors, 'scale_token': torch.zeros(31)}, str(shape / 'model.safetensors'))
    with pytest.raises(CheckpointError, match=r'wrong shape: scale_token \(31,\) != \(32,\)'):
        MapAnything.from_pretrained(shape)

    extra = _copy(PARITY, tmp_path / 'extra')
    save_file({**tensors, 'encoder.model.norm.weight': torch.zeros(32)},
              str(extra / 'model.safetensors'))
    with pytest.raises(CheckpointError, match='unexpected: encoder.model.norm.weight'):
        MapAnything.from_pretrained(extra)

    wrong_config = _copy(PARITY, tmp_path / 'config')
    data = json.loads((wrong_config / 'config.json').read_text())
    data['info_sharing_config']['module_args']['depth'] = 5
    (wrong_config / 'config.json').write_text(json.dumps(data))
    with pytest.raises(CheckpointError, match='unexpected: info_sharing.self_attention_blocks.5'):
        MapAnything.from_pretrained(wrong_config)


def test_locate_checkpoint_reasons(tmp_path, monkeypatch):
    with pytest.raises(BackendUnavailable, match='no such directory'):
        locate_checkpoint(str(tmp_path / 'nope'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(BackendUnavailable, match='lacks config.json and model.safetensors'):
        locate_checkpoint(str(tmp_path / 'empty'))
    assert locate_checkpoint(str(PARITY / 'model.safetensors')) == PARITY
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setenv('HF_HOME', str(tmp_path / 'hf'))
    with pytest.raises(BackendUnavailable, match='facebook/map-anything-apache') as err:
        locate_checkpoint('')
    assert 'write_random_checkpoint' in str(err.value)


def test_random_checkpoint_is_marked_reproducible_and_runs(tiny_ckpt, tmp_path):
    with safe_open(str(tiny_ckpt / 'model.safetensors'), 'pt') as handle:
        meta = handle.metadata()
    assert meta['aetherscan_random_weights'] == 'true' and meta['preset'] == 'tiny'
    assert meta['dpt_feature_head.scratch.layer1_rn.weight'] == (
        'dense_head.0.input_process.0.1.weight')
    model = MapAnything.from_pretrained(tiny_ckpt)
    assert model.is_random and model.weights_info['label'] == RANDOM_LABEL
    assert load_config(tiny_ckpt / 'config.json') == tiny()
    again = write_random_checkpoint(tmp_path / 'again', 'tiny', seed=3)
    other = write_random_checkpoint(tmp_path / 'other', 'tiny', seed=4)
    a, b, c = (load_file(str(d / 'model.safetensors')) for d in (tiny_ckpt, again, other))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a['scale_token'], c['scale_token'])
    gen = torch.Generator().manual_seed(0)
    views = [{'img': torch.randn(1, 3, 42, 56, generator=gen)} for _ in range(2)]
    out = model.infer(views, use_amp=False)
    assert [tuple(o['pts3d'].shape) for o in out] == [(1, 42, 56, 3)] * 2
    for o in out:
        for key in ('pts3d', 'conf', 'intrinsics', 'camera_poses', 'depth_z'):
            assert torch.isfinite(o[key]).all(), key
        assert o['non_ambiguous_mask'].float().mean() > 0.8  # calibrated mask logits
        assert o['mask'].any()
    rays = torch.cat([o['ray_directions'] for o in out])
    assert float(rays[..., 2].min()) > 0  # calibrated: rays point forward
    saved = model.save_pretrained(tmp_path / 'resaved')
    assert set(load_file(str(saved / 'model.safetensors'))) == set(a)
    with pytest.raises(ValueError, match='unknown preset'):
        write_random_checkpoint(tmp_path / 'x', 'huge')


def test_model_double_runs_in_float64(tiny_ckpt):
    model = MapAnything.from_pretrained(tiny_ckpt, dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    gen = torch.Generator().manual_seed(1)
    views = [{'img': torch.randn(1, 3, 28, 42, generator=gen, dtype=torch.float64),
              'intrinsics': torch.tensor([[[40.0, 0, 21], [0, 40, 14], [0, 0, 1]]])}
             for _ in range(2)]
    out = model.infer(views)
    floats = [k for k, v in out[0].items() if v.is_floating_point()]
    assert len(floats) >= 12 and all(out[0][k].dtype == torch.float64 for k in floats)
    assert np.isfinite(out[1]['pts3d'].numpy()).all()
