# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Random-weight MapAnything checkpoints for tests, demos and benchmarks (never a trained model).

:func:`write_random_checkpoint` builds a :class:`~aetherscan_ros.models.mapanything.MapAnything`
from a preset, fills it with :func:`randomize_`, calibrates the output layers so the raw outputs
land in plausible ranges (rays mostly forward, depth around 1.6, most pixels unambiguous) and
saves it marked with ``RANDOM_MARK``: results made from it say ``RANDOM_LABEL``.
"""

from pathlib import Path

import torch

from aetherscan_ros.models.mapanything.config import PRESETS
from aetherscan_ros.models.mapanything.geometric import GeometricInputs
from aetherscan_ros.models.mapanything.layers import LayerScale
from aetherscan_ros.models.mapanything.model import MapAnything
from aetherscan_ros.models.mapanything.weights import RANDOM_MARK, save_checkpoint

#: (mean, std) of the raw dense channels after calibration: ray x, y, z, log depth, conf
#: logit, mask logit.
DENSE_TARGETS = ((0.0, 0.3), (0.0, 0.25), (1.0, 0.1), (0.5, 0.3), (1.0, 1.0), (3.0, 1.0))


def write_random_checkpoint(out_dir, preset: str = 'tiny', seed: int = 0) -> Path:
    """
    Write a random-weight checkpoint in the HF layout, marked as such; return its directory.

    ``preset`` is ``'tiny'`` (about 0.2 M parameters: 2 views of 56x42 run in well under a
    second on a CPU) or ``'giant'`` (the real V1.1 architecture, 4.9 GB). Results made from
    it say ``RANDOM_LABEL`` (``model.weights_info['label']``).
    """
    if preset not in PRESETS:
        raise ValueError(f'unknown preset {preset!r}; expected one of {sorted(PRESETS)}')
    with torch.device('meta'):
        model = MapAnything(PRESETS[preset]())
    randomize_(model.to_empty(device='cpu'), seed)  # fills every tensor: no default init
    calibrate_heads_(model, seed)
    return save_checkpoint(model, out_dir, {RANDOM_MARK: 'true', 'preset': preset,
                                            'seed': str(seed)})


@torch.no_grad()
def randomize_(model: MapAnything, seed: int = 0) -> MapAnything:
    """
    Fill ``model`` with reproducible random weights (independent of the global RNG).

    Linear weights normal(0, 0.02), convolutions normal / sqrt(fan_in), biases 0, norms 1/0,
    LayerScale 0.5, tokens and the position table normal(0, 0.5). Works on a model made with
    ``to_empty`` (no prior init needed).
    """
    gen = torch.Generator(device='cpu').manual_seed(int(seed))

    def normal(t, std):
        t.copy_(torch.randn(t.shape, generator=gen, dtype=torch.float32).to(t.dtype) * std)

    for module in model.modules():
        if isinstance(module, torch.nn.LayerNorm):
            module.weight.fill_(1.0)
            module.bias.zero_()
        elif isinstance(module, LayerScale):
            module.gamma.fill_(0.5)
        elif isinstance(module, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            weight = module.weight
            conv = not isinstance(module, torch.nn.Linear)
            normal(weight, weight[0].numel() ** -0.5 if conv else 0.02)
            if module.bias is not None:
                module.bias.zero_()
    vit = model.encoder.model
    for param in (vit.cls_token, vit.pos_embed, model.scale_token):
        normal(param, 0.5)
    normal(model.pose_head.fc_t.weight, 0.002)
    normal(model.pose_head.fc_rot.weight, 0.002)
    model.pose_head.fc_rot.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 1.0]))
    model.reset_buffers(device=vit.pos_embed.device)
    return model


@torch.no_grad()
def calibrate_heads_(model: MapAnything, seed: int = 0, size=(42, 56)) -> MapAnything:
    """
    Re-map the last dense conv so each raw channel has the (mean, std) of ``DENSE_TARGETS``.

    One forward on two random ``size`` (H, W) images, images only. Returns ``model``.
    """
    gen = torch.Generator(device='cpu').manual_seed(int(seed) + 1)
    param = model.fusion_norm_layer.weight
    images = torch.randn(2, 3, *size, generator=gen).to(param.device, param.dtype)
    none = torch.zeros(2, dtype=torch.bool, device=param.device)
    geo = GeometricInputs(has_rays=none, has_depth=none, has_pose=none, metric_depth=~none,
                          metric_pose=~none)
    record = {}
    model.eval()(images, geo, record=record)
    raw = record['dense_raw'].transpose(0, 1).flatten(1)  # [6, N]
    last = model.dense_head[1].conv2[-1]
    for c, (mean, std) in enumerate(DENSE_TARGETS):
        gain = std / max(float(raw[c].std()), 1e-12)
        last.weight[c] *= gain
        last.bias[c] = (last.bias[c] - raw[c].mean()) * gain + mean
    return model
