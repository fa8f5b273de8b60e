# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Typed configuration of the Fast3R model, read from and written to the HF ``config.json``.

The Hugging Face artefact stores ``{"encoder_args": ..., "decoder_args": ..., "head_args": ...}``
with sorted keys and the non-standard JSON tokens ``Infinity`` / ``-Infinity`` (Python's ``json``
reads and writes them). Keys we do not model are kept in ``extra`` so a round trip loses nothing.
"""

from dataclasses import asdict, dataclass, field
import json
import math
from pathlib import Path
import re
from typing import Any, Dict, Mapping, Tuple

#: Upstream hard-codes these DPT widths; only the parity fixtures override them (``dpt_*`` keys).
DEFAULT_DPT_FEATURE_DIM = 256
DEFAULT_DPT_LAST_DIM = 128
DEFAULT_DPT_LAYER_DIMS = (96, 192, 384, 768)
#: Rows of the fixed image-index embedding table, hence the largest number of views per pass.
MAX_VIEWS = 1000


class ConfigError(ValueError):
    """A Fast3R ``config.json`` that this port cannot build (names the file and the key)."""


@dataclass(frozen=True)
class EncoderConfig:
    """CroCo ViT encoder (``encoder_args``)."""

    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    patch_size: int = 16
    img_size: int = 512
    pos_embed: str = 'RoPE100'
    encoder_type: str = 'croco'
    patch_embed_cls: str = 'PatchEmbedDust3R'
    attn_implementation: str = 'flash_attention'
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def rope_base(self) -> float:
        """Return the RoPE frequency base parsed from ``pos_embed`` (``RoPE100`` -> 100)."""
        return float(self.pos_embed[4:])


@dataclass(frozen=True)
class DecoderConfig:
    """Fusion transformer (``decoder_args``)."""

    embed_dim: int = 1024
    enc_embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    drop: float = 0.0
    attn_drop: float = 0.0
    decoder_type: str = 'fast3r'
    random_image_idx_embedding: bool = True
    # Upstream's class default is true (trap 4 of SPEC §12); the released config says false.
    attn_bias_for_inference_enabled: bool = True
    attn_implementation: str = 'flash_attention'
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def hooks(self) -> Tuple[int, int, int, int]:
        """Return the DPT taps: ``[0, depth/2, 3 depth/4, depth]`` (0 = encoder tokens)."""
        return 0, self.depth * 2 // 4, self.depth * 3 // 4, self.depth


@dataclass(frozen=True)
class HeadConfig:
    """The two DPT heads (``head_args``)."""

    head_type: str = 'dpt'
    output_mode: str = 'pts3d'
    patch_size: int = 16
    with_local_head: bool = True
    landscape_only: bool = False
    depth_mode: Tuple[Any, ...] = ('exp', -math.inf, math.inf)
    conf_mode: Tuple[Any, ...] = ('exp', 1, math.inf)
    dpt_feature_dim: int = DEFAULT_DPT_FEATURE_DIM
    dpt_last_dim: int = DEFAULT_DPT_LAST_DIM
    dpt_layer_dims: Tuple[int, int, int, int] = DEFAULT_DPT_LAYER_DIMS
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Fast3RConfig:
    """The whole model config; ``Fast3RConfig.from_dict(json.load(...))`` builds it."""

    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    decoder: DecoderConfig = field(default_factory=DecoderConfig)
    head: HeadConfig = field(default_factory=HeadConfig)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = 'config') -> 'Fast3RConfig':
        """Build and validate a config from the HF ``config.json`` dictionary."""
        for group in ('encoder_args', 'decoder_args', 'head_args'):
            if not isinstance(data.get(group), Mapping):
                raise ConfigError(f'{source}: missing or invalid {group!r} (a Fast3R config.json '
                                  'has encoder_args, decoder_args and head_args)')
        enc = _build(EncoderConfig, data['encoder_args'], source, 'encoder_args')
        dec = _build(DecoderConfig, data['decoder_args'], source, 'decoder_args')
        head = _build(HeadConfig, data['head_args'], source, 'head_args')
        head = _replace_tuple(head, 'depth_mode', 'conf_mode', 'dpt_layer_dims')
        config = cls(enc, dec, head)
        config.validate(source)
        return config

    def to_dict(self) -> Dict[str, Any]:
        """Return the HF ``config.json`` dictionary (fixture-only ``dpt_*`` keys only if set)."""
        out = {}
        for name, part in (('encoder_args', self.encoder), ('decoder_args', self.decoder),
                           ('head_args', self.head)):
            values = asdict(part)
            extra = values.pop('extra')
            values.update(extra)
            out[name] = values
        head = out['head_args']
        for key in ('depth_mode', 'conf_mode', 'dpt_layer_dims'):
            head[key] = list(head[key])
        if (self.head.dpt_feature_dim, self.head.dpt_last_dim,
                tuple(self.head.dpt_layer_dims)) == (DEFAULT_DPT_FEATURE_DIM,
                                                     DEFAULT_DPT_LAST_DIM,
                                                     DEFAULT_DPT_LAYER_DIMS):
            for key in ('dpt_feature_dim', 'dpt_last_dim', 'dpt_layer_dims'):
                del head[key]
        return out

    def validate(self, source: str = 'config') -> None:
        """Raise :class:`ConfigError` for settings this port does not implement."""
        enc, dec, head = self.encoder, self.decoder, self.head
        checks = [
            (enc.encoder_type == 'croco', 'encoder_args.encoder_type', enc.encoder_type),
            (enc.patch_embed_cls == 'PatchEmbedDust3R', 'encoder_args.patch_embed_cls',
             enc.patch_embed_cls),
            (re.fullmatch(r'RoPE\d+(\.\d+)?', enc.pos_embed) is not None,
             'encoder_args.pos_embed', enc.pos_embed),
            (enc.embed_dim % enc.num_heads == 0 and (enc.embed_dim // enc.num_heads) % 4 == 0,
             'encoder_args.embed_dim/num_heads', (enc.embed_dim, enc.num_heads)),
            (dec.decoder_type == 'fast3r', 'decoder_args.decoder_type', dec.decoder_type),
            (dec.embed_dim % dec.num_heads == 0 and dec.embed_dim % 2 == 0,
             'decoder_args.embed_dim/num_heads', (dec.embed_dim, dec.num_heads)),
            (dec.enc_embed_dim == enc.embed_dim, 'decoder_args.enc_embed_dim',
             (dec.enc_embed_dim, enc.embed_dim)),
            (dec.depth >= 4, 'decoder_args.depth', dec.depth),
            (head.head_type == 'dpt', 'head_args.head_type', head.head_type),
            (head.output_mode == 'pts3d', 'head_args.output_mode', head.output_mode),
            (head.with_local_head, 'head_args.with_local_head', head.with_local_head),
            (not head.landscape_only, 'head_args.landscape_only', head.landscape_only),
            (head.patch_size == enc.patch_size and head.patch_size % 8 == 0,
             'head_args.patch_size', head.patch_size),
            (tuple(head.depth_mode) == ('exp', -math.inf, math.inf), 'head_args.depth_mode',
             head.depth_mode),
            (tuple(head.conf_mode) == ('exp', 1, math.inf), 'head_args.conf_mode',
             head.conf_mode),
            (len(head.dpt_layer_dims) == 4, 'head_args.dpt_layer_dims', head.dpt_layer_dims),
        ]
        for ok, key, value in checks:
            if not ok:
                raise ConfigError(f'{source}: unsupported {key} = {value!r} (this port implements '
                                  'the released Fast3R: croco encoder, PatchEmbedDust3R, RoPE, '
                                  'fast3r fusion, two DPT heads with exp/exp activations)')


def _build(cls, values: Mapping[str, Any], source: str, group: str):
    known = {f for f in cls.__dataclass_fields__ if f != 'extra'}
    kwargs = {k: v for k, v in values.items() if k in known}
    extra = {k: v for k, v in values.items() if k not in known}
    for key in ('drop', 'attn_drop'):
        if kwargs.get(key, 0.0) not in (0, 0.0):
            raise ConfigError(f'{source}: {group}.{key} = {kwargs[key]} but this port is for '
                              'inference and has no dropout')
    return cls(**kwargs, extra=extra)


def _replace_tuple(obj, *names):
    from dataclasses import replace
    return replace(obj, **{n: tuple(getattr(obj, n)) for n in names})


def load_config(path) -> Fast3RConfig:
    """Read a HF ``config.json`` (with ``Infinity`` tokens) into a :class:`Fast3RConfig`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding='utf-8'))
    except FileNotFoundError as exc:
        raise ConfigError(f'{path}: no such file (a Fast3R checkpoint directory holds '
                          'config.json and model.safetensors)') from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f'{path}: not a readable JSON config: {exc}') from exc
    if not isinstance(data, dict):
        raise ConfigError(f'{path}: expected a JSON object, got {type(data).__name__}')
    return Fast3RConfig.from_dict(data, source=str(path))


def save_config(config: Fast3RConfig, path) -> None:
    """Write ``config.json`` as huggingface_hub does: sorted keys, indent 2, ``Infinity``."""
    text = json.dumps(config.to_dict(), sort_keys=True, indent=2, allow_nan=True)
    Path(path).write_text(text + '\n', encoding='utf-8')


def vit_large_512() -> Fast3RConfig:
    """Return the config of ``jedyang97/Fast3R_ViT_Large_512`` (SPEC §2)."""
    return Fast3RConfig(decoder=DecoderConfig(attn_bias_for_inference_enabled=False))


def tiny() -> Fast3RConfig:
    """Return a tiny config of the same architecture, for tests and demos (about 0.4 M params)."""
    return Fast3RConfig(
        encoder=EncoderConfig(embed_dim=32, depth=2, num_heads=2),
        decoder=DecoderConfig(embed_dim=32, enc_embed_dim=32, depth=4, num_heads=2,
                              attn_bias_for_inference_enabled=False),
        head=HeadConfig(dpt_feature_dim=16, dpt_last_dim=16, dpt_layer_dims=(8, 16, 16, 32)))


PRESETS = {'tiny': tiny, 'vitl512': vit_large_512}
