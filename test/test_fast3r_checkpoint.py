# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Fast3R config, checkpoint layout, strict loading, round trips and checkpoint location."""

import copy
import json
import math
import shutil

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.torch import load_file, save_file
import torch

from aetherscan_ros.backends.base import BackendUnavailable
from aetherscan_ros.models.fast3r import (
    CheckpointError, Fast3R, Fast3RConfig, load_config, locate_checkpoint, RANDOM_LABEL,
    write_random_checkpoint)
from aetherscan_ros.models.fast3r.config import ConfigError, save_config, tiny, vit_large_512
from aetherscan_ros.models.fast3r.random_weights import randomize_

ALIAS_KEY = 'downstream_head.dpt.scratch.layer_rn.0.weight'


@pytest.fixture(scope='module')
def tiny_ckpt(tmp_path_factory):
    return write_random_checkpoint(tmp_path_factory.mktemp('f3') / 'tiny', 'tiny', seed=3)


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_real_vit_large_on_meta_matches_checkpoint_layout(fast3r_fixtures):
    base = fast3r_fixtures
    layout = json.loads((base / 'checkpoint_layout.json').read_text())
    config = load_config(base / 'config_vitl512.json')
    assert config == vit_large_512()
    with torch.device('meta'):
        model = Fast3R(config)
    state = model.state_dict()
    assert list(state) == [e['key'] for e in layout['entries']]
    assert {k: list(v.shape) for k, v in state.items()} == {
        e['key']: e['shape'] for e in layout['entries']}
    assert all(v.dtype == torch.float32 for v in state.values())
    stored = {e['key'] for e in layout['entries'] if e['in_model_safetensors']}
    assert len(stored) == 712
    assert {k for k in state if '.layer_rn.' not in k} == stored
    assert model.num_parameters() == 647_551_368 == layout['n_parameters_unique']
    for name, count in layout['n_parameters_by_top_module'].items():
        assert sum(p.numel() for p in getattr(model, name).parameters()) == count
    assert 'decoder.image_idx_emb' not in state  # non-persistent, recomputed
    assert tuple(model.decoder.image_idx_emb.shape) == (1000, 1024)


def test_config_json_round_trip_keeps_infinity_and_fixture_keys(fast3r_fixtures, tmp_path):
    for path in (fast3r_fixtures / 'config_vitl512.json',
                 fast3r_fixtures / 'parity_a' / 'config.json'):
        config = load_config(path)
        assert config.head.depth_mode[1] == -math.inf and config.head.conf_mode[2] == math.inf
        assert config.to_dict() == json.loads(path.read_text())
        save_config(config, tmp_path / 'config.json')
        assert 'Infinity' in (tmp_path / 'config.json').read_text()
        assert load_config(tmp_path / 'config.json') == config
    parity = load_config(fast3r_fixtures / 'parity_a' / 'config.json')
    assert (parity.head.dpt_feature_dim, parity.head.dpt_last_dim) == (32, 16)
    assert parity.decoder.hooks == (0, 5, 7, 10)
    assert vit_large_512().head.dpt_layer_dims == (96, 192, 384, 768)
    assert vit_large_512().decoder.hooks == (0, 12, 18, 24)


def test_missing_attention_flag_defaults_to_upstream_true():
    """Trap 4: without the key the eval-mode fusion scale is 0.125 * sqrt(ln 137 / ln 20)."""
    data = tiny().to_dict()
    del data['decoder_args']['attn_bias_for_inference_enabled']
    config = Fast3RConfig.from_dict(data)
    assert config.decoder.attn_bias_for_inference_enabled is True
    model = randomize_(Fast3R(config), seed=1).eval()
    attn = model.decoder.dec_blocks[0].attn
    assert attn.head_dim ** -0.5 * attn.inference_scale_gain == pytest.approx(
        attn.head_dim ** -0.5 * math.sqrt(math.log(137) / math.log(20)))
    assert 0.125 * attn.inference_scale_gain == pytest.approx(0.16019, abs=1e-5)
    assert model.encoder.enc_blocks[0].attn.inference_scale_gain == 1.0
    imgs = torch.rand(2, 3, 32, 32) * 2 - 1
    plain = randomize_(Fast3R(tiny()), seed=1).eval()
    with torch.inference_mode():
        assert not torch.allclose(model(imgs)['conf'], plain(imgs)['conf'])


def test_unsupported_config_names_file_and_key(tmp_path):
    data = tiny().to_dict()
    data['encoder_args']['encoder_type'] = 'dino'
    (tmp_path / 'config.json').write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=r'config.json: unsupported encoder_args.encoder_type'):
        load_config(tmp_path / 'config.json')
    (tmp_path / 'config.json').write_text('{"encoder_args": {}')
    with pytest.raises(ConfigError, match='not a readable JSON config'):
        load_config(tmp_path / 'config.json')


def test_random_checkpoint_round_trip(tiny_ckpt, tmp_path):
    model = Fast3R.from_pretrained(tiny_ckpt)
    assert not model.training and model.is_random
    assert model.weights_info['label'] == RANDOM_LABEL
    stored = load_file(str(tiny_ckpt / 'model.safetensors'))
    assert ALIAS_KEY not in stored  # trap 7: the alias is not stored ...
    with safe_open(str(tiny_ckpt / 'model.safetensors'), 'pt') as handle:
        assert handle.metadata()[ALIAS_KEY] == 'downstream_head.dpt.scratch.layer1_rn.weight'
    state = model.state_dict()
    assert torch.equal(state[ALIAS_KEY], stored['downstream_head.dpt.scratch.layer1_rn.weight'])
    reference = randomize_(Fast3R(tiny()), seed=3).eval()
    for key, value in reference.state_dict().items():
        assert torch.equal(state[key], value), key
    imgs = torch.rand(3, 3, 48, 64) * 2 - 1
    with torch.inference_mode():
        a, b = model(imgs), reference(imgs)
    assert torch.equal(a['pts3d_local'], b['pts3d_local'])
    # save_pretrained of a loaded model: same tensors, no random mark unless asked
    out = model.save_pretrained(tmp_path / 'resaved')
    again = Fast3R.from_pretrained(out)
    assert not again.is_random and again.weights_info['label'].startswith('Fast3R (')
    for key, value in state.items():
        assert torch.equal(again.state_dict()[key], value), key


def test_deepcopy_gives_independent_heads(tiny_ckpt):
    """Trap 10: upstream's deepcopy shares the heads with the original; ours does not."""
    model = Fast3R.from_pretrained(tiny_ckpt)
    clone = copy.deepcopy(model)
    with torch.no_grad():
        clone.downstream_head.dpt.head[4].bias.add_(1.0)
    assert not torch.equal(clone.downstream_head.dpt.head[4].bias,
                           model.downstream_head.dpt.head[4].bias)


def test_truncated_checkpoint_fails_clearly(tiny_ckpt, tmp_path):
    bad = _copy(tiny_ckpt, tmp_path / 'bad')
    path = bad / 'model.safetensors'
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(CheckpointError, match=r'bad/model.safetensors: not a readable '
                                              r'safetensors file \(truncated or corrupt'):
        Fast3R.from_pretrained(bad)


def test_corrupted_checkpoint_fails_clearly(tiny_ckpt, tmp_path):
    bad = _copy(tiny_ckpt, tmp_path / 'bad')
    path = bad / 'model.safetensors'
    path.write_bytes(b'\xff' * 16 + path.read_bytes()[16:])
    with pytest.raises(CheckpointError, match='bad/model.safetensors: not a readable'):
        Fast3R.from_pretrained(bad)


def test_mismatched_checkpoints_name_the_keys(tiny_ckpt, tmp_path, parity_dir):
    tensors = load_file(str(tiny_ckpt / 'model.safetensors'))
    bad = _copy(tiny_ckpt, tmp_path / 'missing')
    dropped = dict(tensors)
    del dropped['decoder.dec_norm.bias']
    save_file(dropped, str(bad / 'model.safetensors'))
    with pytest.raises(CheckpointError, match=r'missing/model.safetensors does not match .*'
                                              r'1 missing: decoder.dec_norm.bias'):
        Fast3R.from_pretrained(bad)
    bad = _copy(tiny_ckpt, tmp_path / 'renamed')
    renamed = {('model.' + k if k.startswith('encoder.enc_norm') else k): v
               for k, v in tensors.items()}
    save_file(renamed, str(bad / 'model.safetensors'))
    with pytest.raises(CheckpointError, match=r'2 missing: encoder.enc_norm.weight, '
                                              r'encoder.enc_norm.bias; 2 unexpected: model.'):
        Fast3R.from_pretrained(bad)
    # right keys, wrong sizes: the parity weights under the tiny config
    bad = _copy(tiny_ckpt, tmp_path / 'shape')
    shutil.copy(parity_dir / 'model.safetensors', bad / 'model.safetensors')
    with pytest.raises(CheckpointError, match=r'wrong shape: encoder.patch_embed.proj.weight '
                                              r'\(64, 3, 16, 16\) != \(32, 3, 16, 16\)'):
        Fast3R.from_pretrained(bad)


class _NotATensor:
    pass


def test_pth_is_loaded_weights_only(tiny_ckpt, tmp_path):
    good = tmp_path / 'pth'
    good.mkdir()
    shutil.copy(tiny_ckpt / 'config.json', good / 'config.json')
    tensors = load_file(str(tiny_ckpt / 'model.safetensors'))
    torch.save({'state_dict': {'net.' + k: v for k, v in tensors.items()}}, good / 'model.pth')
    model = Fast3R.from_pretrained(good)
    assert torch.equal(model.state_dict()['decoder.dec_norm.weight'],
                       tensors['decoder.dec_norm.weight'])
    evil = tmp_path / 'evil'
    evil.mkdir()
    shutil.copy(tiny_ckpt / 'config.json', evil / 'config.json')
    torch.save({'x': _NotATensor()}, evil / 'model.pth')
    with pytest.raises(CheckpointError, match='weights-only'):
        Fast3R.from_pretrained(evil)


def test_locate_checkpoint_local_and_errors(tiny_ckpt, tmp_path):
    assert locate_checkpoint(str(tiny_ckpt)) == tiny_ckpt
    assert locate_checkpoint(str(tiny_ckpt / 'model.safetensors')) == tiny_ckpt
    with pytest.raises(BackendUnavailable, match='no such directory.*hf download'):
        locate_checkpoint(str(tmp_path / 'nope'))
    (tmp_path / 'empty').mkdir()
    with pytest.raises(BackendUnavailable, match='lacks config.json and model.safetensors'):
        locate_checkpoint(str(tmp_path / 'empty'))
    with pytest.raises(BackendUnavailable, match='neither an existing directory nor'):
        locate_checkpoint('owner/not a repo id!')
    with pytest.raises(BackendUnavailable, match='not a repo id!: no such directory'):
        locate_checkpoint('not a repo id!')


def test_locate_checkpoint_from_hub_cache_without_network(tiny_ckpt, tmp_path):
    with pytest.raises(BackendUnavailable, match='offline .*not in the local hub cache'):
        locate_checkpoint('jedyang97/Fast3R_ViT_Large_512', cache_dir=str(tmp_path / 'hub'),
                          local_files_only=True)
    repo = tmp_path / 'hub' / 'models--someone--tiny-fast3r'
    commit = 'a' * 40
    snap = repo / 'snapshots' / commit
    shutil.copytree(tiny_ckpt, snap)
    (repo / 'refs').mkdir(parents=True)
    (repo / 'refs' / 'main').write_text(commit)
    found = locate_checkpoint('someone/tiny-fast3r', cache_dir=str(tmp_path / 'hub'),
                              local_files_only=True)
    assert found == snap
    assert np.isfinite(Fast3R.from_pretrained(found).decoder.image_idx_emb.numpy()).all()
