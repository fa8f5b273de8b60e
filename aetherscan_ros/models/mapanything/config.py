# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Typed configuration of MapAnything V1.1, read from and written to the HF ``config.json``.

The Hugging Face ``config.json`` holds upstream's constructor arguments (``encoder_config``,
``geometric_input_config``, ``info_sharing_config``, ``pred_head_config``, ...; sorted keys,
``Infinity`` tokens). Upstream hard-codes the ViT-g/14 sizes and most widths; those come from
the defaults here (SPEC §2). The parity fixtures add ``encoder_config.fixture_vit_args`` and
``pred_head_config.pose_head.fixture_hidden_dim`` (SPEC §12.1), which are honoured when present.
:class:`MapAnythingConfig` keeps the whole dictionary (``raw``) so a round trip loses nothing.
"""

import copy
from dataclasses import dataclass, field
import json
import math
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Tuple

#: DINOv2 ViT-g/14 (``vit_giant2``), the only image encoder of the V1.1 checkpoints.
GIANT_VIT = {'embed_dim': 1536, 'depth': 40, 'num_heads': 24, 'mlp_ratio': 4,
             'ffn_layer': 'swiglufused', 'init_values': 1.0, 'img_size': 518, 'patch_size': 14,
             'interpolate_offset': 0.1, 'interpolate_antialias': False,
             'num_register_tokens': 0}
DENSE_DIMS = (588, 768, 1024)
GLOBAL_DIMS = (128, 256, 512)
DPT_LAYER_DIMS = (96, 192, 384, 768)
DPT_FEATURE_DIM = 256
SCALE_HIDDEN = 196
#: ImageNet statistics (``data_norm_type: dinov2``), SPEC §3.1.
DINOV2_MEAN = (0.485, 0.456, 0.406)
DINOV2_STD = (0.229, 0.224, 0.225)


class ConfigError(ValueError):
    """A MapAnything ``config.json`` this port cannot build (names the file and the key)."""


def swiglu_hidden(dim: int, mlp_ratio: float) -> int:
    """Return the fused-SwiGLU hidden width: ``((int(int(dim * r) * 2 / 3) + 7) // 8) * 8``."""
    return (int(int(dim * mlp_ratio) * 2 / 3) + 7) // 8 * 8


@dataclass(frozen=True)
class MapAnythingConfig:
    """Every size the network needs; ``from_dict`` builds it from a ``config.json`` dict."""

    enc_dim: int = 1536
    enc_layers: int = 24           # blocks kept of the ViT (``keep_first_n_layers``)
    enc_heads: int = 24
    enc_mlp_ratio: float = 4.0
    img_size: int = 518
    patch_size: int = 14
    interpolate_offset: float = 0.1
    ray_dims: Tuple[int, ...] = DENSE_DIMS
    depth_dims: Tuple[int, ...] = DENSE_DIMS
    cam_rot_dims: Tuple[int, ...] = GLOBAL_DIMS
    cam_trans_dims: Tuple[int, ...] = GLOBAL_DIMS
    scale_dims: Tuple[int, ...] = GLOBAL_DIMS
    mv_dim: int = 1536
    mv_depth: int = 16
    mv_heads: int = 24
    mv_mlp_ratio: float = 4.0
    mv_indices: Tuple[int, ...] = (7, 11)
    mv_qkv_bias: bool = True
    dpt_feature_dim: int = DPT_FEATURE_DIM
    dpt_layer_dims: Tuple[int, ...] = DPT_LAYER_DIMS
    dense_out_dim: int = 6
    pose_hidden: int = 784
    pose_blocks: int = 2
    rot_dim: int = 4
    scale_hidden: int = SCALE_HIDDEN
    data_norm_type: str = 'dinov2'
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def taps(self) -> Tuple[int, ...]:
        """Return the transformer blocks whose normalised outputs feed the DPT (0-based)."""
        return tuple(self.mv_indices) + (self.mv_depth - 1,)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = 'config') -> 'MapAnythingConfig':
        """Build and validate a config from the HF ``config.json`` dictionary."""
        get = _Reader(data, source)
        enc = get.mapping('encoder_config')
        get.expect('encoder_config.encoder_str', enc.get('encoder_str', 'dinov2'), 'dinov2')
        get.expect('encoder_config.with_registers', enc.get('with_registers', False), False)
        get.expect('encoder_config.norm_returned_features',
                   enc.get('norm_returned_features', False), False)
        get.expect('use_register_tokens_from_encoder',
                   data.get('use_register_tokens_from_encoder', True), True)
        vit = enc.get('fixture_vit_args')
        if vit is None:
            get.expect('encoder_config.size', enc.get('size', 'giant'), 'giant')
            vit = GIANT_VIT
        vit = {**GIANT_VIT, **vit}
        get.expect('encoder_config ffn_layer', vit['ffn_layer'], 'swiglufused')
        get.expect('encoder_config num_register_tokens', vit['num_register_tokens'], 0)
        if not vit['init_values']:
            raise ConfigError(f'{source}: encoder without LayerScale (init_values) is not a '
                              'MapAnything V1.1 encoder')
        keep = enc.get('keep_first_n_layers') or vit['depth']
        geo = get.mapping('geometric_input_config')

        def dims(name, default):
            sub = geo.get(name) or {}
            return tuple(int(d) for d in sub.get('intermediate_dims', default))

        info = get.mapping('info_sharing_config')
        get.expect('info_sharing_config.model_type', info.get('model_type'),
                   'alternating_attention')
        get.expect('info_sharing_config.custom_positional_encoding',
                   info.get('custom_positional_encoding'), None)
        mlp = data.get('info_sharing_mlp_layer_str', 'swiglufused')
        get.expect('info_sharing_mlp_layer_str', mlp, 'swiglufused')
        mv = info.get('module_args') or {}
        for key, want in (('qk_norm', False), ('distinguish_ref_and_non_ref_views', True),
                          ('norm_intermediate', True)):
            get.expect(f'info_sharing_config.module_args.{key}', mv.get(key, want), want)
        head = get.mapping('pred_head_config')
        get.expect('pred_head_config.type', head.get('type', 'dpt+pose'), 'dpt+pose')
        get.expect('pred_head_config.adaptor_type', head.get('adaptor_type'),
                   'raydirs+depth+pose+confidence+mask')
        _check_adaptors(get, head)
        feat = head.get('feature_head') or {}
        get.expect('pred_head_config.feature_head.hooks', list(feat.get('hooks', [0, 1, 2, 3])),
                   [0, 1, 2, 3])
        pose = head.get('pose_head') or {}
        patch = int(vit['patch_size'])
        config = cls(
            enc_dim=int(vit['embed_dim']), enc_layers=int(keep), enc_heads=int(vit['num_heads']),
            enc_mlp_ratio=float(vit['mlp_ratio']), img_size=int(vit['img_size']),
            patch_size=patch, interpolate_offset=float(vit['interpolate_offset']),
            ray_dims=dims('ray_dirs_encoder_config', DENSE_DIMS),
            depth_dims=dims('depth_encoder_config', DENSE_DIMS),
            cam_rot_dims=dims('cam_rot_encoder_config', GLOBAL_DIMS),
            cam_trans_dims=dims('cam_trans_encoder_config', GLOBAL_DIMS),
            scale_dims=dims('scale_encoder_config', GLOBAL_DIMS),
            mv_dim=int(mv.get('dim', 1536)), mv_depth=int(mv.get('depth', 16)),
            mv_heads=int(mv.get('num_heads', 24)), mv_mlp_ratio=float(mv.get('mlp_ratio', 4)),
            mv_indices=tuple(int(i) for i in mv.get('indices', (7, 11))),
            mv_qkv_bias=bool(mv.get('qkv_bias', True)),
            dpt_feature_dim=int(feat.get('feature_dim', DPT_FEATURE_DIM)),
            dpt_layer_dims=tuple(int(d) for d in feat.get('layer_dims', DPT_LAYER_DIMS)),
            dense_out_dim=int((head.get('regressor_head') or {}).get('output_dim', 6)),
            pose_hidden=int(pose.get('fixture_hidden_dim', 4 * patch * patch)),
            pose_blocks=int(pose.get('num_resconv_block', 2)),
            rot_dim=int(pose.get('rot_representation_dim', 4)),
            scale_hidden=int((head.get('scale_head') or {}).get('hidden_dim', SCALE_HIDDEN)),
            data_norm_type=str(enc.get('data_norm_type', 'dinov2')),
            raw=copy.deepcopy(dict(data)))
        config.validate(source)
        return config

    def validate(self, source: str = 'config') -> None:
        """Raise :class:`ConfigError` for sizes this port cannot build."""
        checks = [
            (self.enc_dim % self.enc_heads == 0, 'encoder embed_dim/num_heads'),
            (self.mv_dim % self.mv_heads == 0, 'info_sharing dim/num_heads'),
            (self.mv_dim == self.enc_dim, 'info_sharing dim (must equal the encoder width: '
                                          'V1.1 has no input projection)'),
            (self.mv_dim % 2 == 0, 'info_sharing dim (even, for the reference embedding)'),
            (len(self.mv_indices) == 2 and all(0 <= i < self.mv_depth - 1
                                               for i in self.mv_indices),
             'info_sharing indices'),
            (len(self.dpt_layer_dims) == 4, 'feature_head.layer_dims'),
            (self.dense_out_dim == 6, 'regressor_head.output_dim'),
            (self.rot_dim == 4, 'pose_head.rot_representation_dim'),
            (self.patch_size % 8 == 0 or self.patch_size == 14, 'patch_size'),
            (self.data_norm_type == 'dinov2', 'encoder_config.data_norm_type'),
            (len(self.ray_dims) == 3 and len(self.depth_dims) == 3, 'dense intermediate_dims'),
            (all(len(d) == 3 for d in (self.cam_rot_dims, self.cam_trans_dims,
                                       self.scale_dims)), 'global intermediate_dims'),
        ]
        for ok, what in checks:
            if not ok:
                raise ConfigError(f'{source}: unsupported {what} in {self!r}')

    def to_dict(self) -> Dict[str, Any]:
        """Return the ``config.json`` dictionary (the one read, or a preset's)."""
        return copy.deepcopy(dict(self.raw))


class _Reader:
    def __init__(self, data, source):
        if not isinstance(data, Mapping):
            raise ConfigError(f'{source}: expected a JSON object, got {type(data).__name__}')
        self.data, self.source = data, source

    def mapping(self, key) -> Mapping[str, Any]:
        value = self.data.get(key)
        if not isinstance(value, Mapping):
            raise ConfigError(f'{self.source}: missing or invalid {key!r} (a MapAnything '
                              'config.json has encoder_config, geometric_input_config, '
                              'info_sharing_config and pred_head_config)')
        return value

    def expect(self, key, value, want) -> None:
        if value != want:
            raise ConfigError(f'{self.source}: unsupported {key} = {value!r} (this port '
                              f'implements MapAnything V1.1, which has {want!r})')


def _check_adaptors(get: _Reader, head: Mapping[str, Any]) -> None:
    dense = head.get('dpt_adaptor') or {}
    for key, want in (('depth_mode', 'exp'), ('confidence_type', 'exp'),
                      ('confidence_vmin', 1), ('ray_directions_mode', 'linear'),
                      ('ray_directions_normalize_to_unit_sphere', True),
                      ('ray_directions_normalize_to_unit_image_plane', False),
                      ('ray_directions_clamp_min_of_z_dir', False)):
        get.expect(f'pred_head_config.dpt_adaptor.{key}', dense.get(key, want), want)
    pose = head.get('pose_adaptor') or {}
    for key, want in (('cam_trans_mode', 'linear'), ('quaternions_mode', 'linear'),
                      ('quaternions_normalize', True)):
        get.expect(f'pred_head_config.pose_adaptor.{key}', pose.get(key, want), want)
    scale = head.get('scale_adaptor') or {}
    get.expect('pred_head_config.scale_adaptor.mode', scale.get('mode', 'exp'), 'exp')


def load_config(path) -> MapAnythingConfig:
    """Read a HF ``config.json`` (with ``Infinity`` tokens) into a :class:`MapAnythingConfig`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding='utf-8'))
    except FileNotFoundError as exc:
        raise ConfigError(f'{path}: no such file (a MapAnything checkpoint directory holds '
                          'config.json and model.safetensors)') from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f'{path}: not a readable JSON config: {exc}') from exc
    return MapAnythingConfig.from_dict(data, source=str(path))


def save_config(config: MapAnythingConfig, path) -> None:
    """Write ``config.json`` as huggingface_hub does: sorted keys, indent 2, ``Infinity``."""
    text = json.dumps(config.to_dict(), sort_keys=True, indent=2, allow_nan=True)
    Path(path).write_text(text + '\n', encoding='utf-8')


def _global(name: str, chans: int, dims: Optional[Tuple[int, ...]] = None) -> Dict[str, Any]:
    out = {'encoder_str': 'global_rep_encoder', 'in_chans': chans, 'name': name}
    if dims:
        out['intermediate_dims'] = list(dims)
    return out


def _dense(name: str, chans: int, dims: Optional[Tuple[int, ...]] = None) -> Dict[str, Any]:
    out = {'apply_pe': False, 'encoder_str': 'dense_rep_encoder', 'in_chans': chans,
           'name': name}
    if dims:
        out['intermediate_dims'] = list(dims)
    return out


def v1_1_dict() -> Dict[str, Any]:
    """Return the V1.1 Apache ``config.json`` content (SPEC §2, ``config_real.json``)."""
    inf = math.inf
    name = 'raydirs+depth+pose+confidence+mask+scale'
    dense = {'confidence_type': 'exp', 'confidence_vmax': inf, 'confidence_vmin': 1,
             'depth_mode': 'exp', 'depth_vmax': inf, 'depth_vmin': 0, 'name': name,
             'ray_directions_clamp_min_of_z_dir': False, 'ray_directions_mode': 'linear',
             'ray_directions_normalize_to_unit_image_plane': False,
             'ray_directions_normalize_to_unit_sphere': True, 'ray_directions_vmax': inf,
             'ray_directions_vmin': -inf, 'ray_directions_z_dir_min': -inf}
    pose = {'cam_trans_mode': 'linear', 'cam_trans_vmax': inf, 'cam_trans_vmin': -inf,
            'name': name, 'quaternions_mode': 'linear', 'quaternions_normalize': True,
            'quaternions_vmax': inf, 'quaternions_vmin': -inf}
    scale = {'mode': 'exp', 'name': name, 'vmax': inf, 'vmin': 1e-08}
    return {
        'encoder_config': {
            'data_norm_type': 'dinov2', 'encoder_str': 'dinov2', 'gradient_checkpointing': False,
            'keep_first_n_layers': 24, 'name': 'dinov2_giant_24_layers',
            'norm_returned_features': False, 'size': 'giant', 'uses_torch_hub': True,
            'with_registers': False},
        'geometric_input_config': {
            'cam_prob': 0, 'depth_prob': 0, 'depth_scale_norm_all_prob': 0, 'dropout_prob': 1,
            'overall_prob': 0, 'pose_scale_norm_all_prob': 0, 'ray_dirs_prob': 0,
            'sparse_depth_prob': 0, 'sparsification_removal_percent': 0,
            'cam_rot_encoder_config': _global('cam_rot_quats_encoder', 4),
            'cam_trans_encoder_config': _global('cam_trans_encoder', 3),
            'depth_encoder_config': _dense('depth_encoder', 1),
            'ray_dirs_encoder_config': _dense('ray_dirs_encoder', 3),
            'scale_encoder_config': _global('scale_encoder', 1)},
        'info_sharing_config': {
            'custom_positional_encoding': None, 'model_return_type': 'intermediate_features',
            'model_type': 'alternating_attention',
            'module_args': {
                'depth': 16, 'dim': 1536, 'distinguish_ref_and_non_ref_views': True,
                'gradient_checkpointing': False, 'indices': [7, 11], 'init_values': 1e-05,
                'mlp_ratio': 4, 'name': 'aat_16_layers_vitg_dim_ifr', 'norm_intermediate': True,
                'num_heads': 24, 'qk_norm': False, 'qkv_bias': True, 'size': '16_layers'}},
        'info_sharing_mlp_layer_str': 'swiglufused',
        'load_specific_pretrained_submodules': False,
        'name': 'mapanything',
        'pred_head_config': {
            'adaptor_config': {
                'dense_pred_init_dict': dict(dense), 'input_dim': 6,
                'pose_pred_init_dict': dict(pose), 'scale_pred_init_dict': dict(scale),
                'scene_rep_dim': 4, 'scene_rep_type': 'raydirs+depth+pose',
                'type': 'raydirs+depth+pose+confidence+mask'},
            'adaptor_type': 'raydirs+depth+pose+confidence+mask',
            'dpt_adaptor': dict(dense),
            'feature_head': {'checkpoint_gradient': False, 'feature_dim': 256,
                             'hooks': [0, 1, 2, 3]},
            'gradient_checkpointing': False,
            'pose_adaptor': dict(pose),
            'pose_head': {'num_resconv_block': 2, 'rot_representation_dim': 4},
            'regressor_head': {'checkpoint_gradient': False, 'output_dim': 6},
            'scale_adaptor': dict(scale),
            'scale_head': {'output_dim': 1},
            'type': 'dpt+pose'},
        'pretrained_checkpoint_path': None,
        'specific_pretrained_submodules': [],
        'torch_hub_force_reload': False,
        'use_register_tokens_from_encoder': True,
    }


def tiny_dict(embed_dim: int = 32, enc_layers: int = 2, mv_depth: int = 4) -> Dict[str, Any]:
    """Return a tiny config of the same code paths (about 0.2 M parameters; tests, demos)."""
    data = v1_1_dict()
    enc = data['encoder_config']
    enc['keep_first_n_layers'] = enc_layers
    enc['fixture_vit_args'] = {**GIANT_VIT, 'embed_dim': embed_dim, 'depth': enc_layers,
                               'num_heads': 2}
    geo = data['geometric_input_config']
    for key in ('ray_dirs_encoder_config', 'depth_encoder_config'):
        geo[key]['intermediate_dims'] = [16, 24, 32]
    for key in ('cam_rot_encoder_config', 'cam_trans_encoder_config', 'scale_encoder_config'):
        geo[key]['intermediate_dims'] = [8, 16, 24]
    mv = data['info_sharing_config']['module_args']
    mv.update(dim=embed_dim, depth=mv_depth, num_heads=2, indices=[0, 1],
              size=f'{mv_depth}_layers')
    head = data['pred_head_config']
    head['feature_head'].update(feature_dim=24, layer_dims=[8, 12, 16, 24])
    head['pose_head']['fixture_hidden_dim'] = 32
    head['scale_head']['hidden_dim'] = 16
    return data


def giant() -> MapAnythingConfig:
    """Return the config of ``facebook/map-anything-apache`` V1.1 (1,228,491,222 parameters)."""
    return MapAnythingConfig.from_dict(v1_1_dict(), source='preset giant')


def tiny() -> MapAnythingConfig:
    """Return the tiny preset (tests, demos): same code paths, 32-wide."""
    return MapAnythingConfig.from_dict(tiny_dict(), source='preset tiny')


PRESETS = {'tiny': tiny, 'giant': giant}
