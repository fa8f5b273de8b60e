# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Random-weight Fast3R checkpoints for tests, demos and benchmarks (never a trained model).

:func:`write_random_checkpoint` builds a :class:`~aetherscan_ros.models.fast3r.model.Fast3R`
from a preset, fills it with :func:`randomize_` and saves it with
:func:`~aetherscan_ros.models.fast3r.weights.save_checkpoint`, marked with ``RANDOM_MARK`` so
that every result made from it is labelled ``RANDOM_LABEL``. Dependencies go one way:
``random_weights`` -> ``model`` -> ``weights``.
"""

from pathlib import Path

import torch

from aetherscan_ros.models.fast3r.config import PRESETS
from aetherscan_ros.models.fast3r.model import Fast3R
from aetherscan_ros.models.fast3r.weights import RANDOM_MARK, save_checkpoint


def write_random_checkpoint(out_dir, preset: str = 'tiny', seed: int = 0) -> Path:
    """
    Write a random-weight checkpoint in the HF layout, marked as such; return its directory.

    ``preset`` is ``'tiny'`` (about 0.4 M parameters, for tests and demos) or ``'vitl512'``
    (the real architecture, 2.6 GB). Every result made from it says
    ``info['model'] == 'random weights (not a trained model)'``.
    """
    if preset not in PRESETS:
        raise ValueError(f'unknown preset {preset!r}; expected one of {sorted(PRESETS)}')
    model = Fast3R(PRESETS[preset]())
    randomize_(model, seed)
    return save_checkpoint(model, out_dir, {RANDOM_MARK: 'true', 'preset': preset,
                                            'seed': str(seed)})


@torch.no_grad()
def randomize_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """
    Fill ``model`` with reproducible random weights (independent of the global RNG).

    Linear weights: normal(0, 0.02); convolutions: normal scaled by 1/sqrt(fan_in); biases: 0;
    LayerNorms: ones/zeros. Works on a model made with ``to_empty`` (no prior init needed).
    """
    gen = torch.Generator(device='cpu').manual_seed(int(seed))
    for module in model.modules():
        if isinstance(module, torch.nn.LayerNorm):
            module.weight.fill_(1.0)
            module.bias.zero_()
        elif isinstance(module, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            weight = module.weight
            fan_in = weight[0].numel() if isinstance(module, torch.nn.Conv2d) else weight.shape[1]
            std = 0.02 if isinstance(module, torch.nn.Linear) else fan_in ** -0.5
            weight.copy_(torch.randn(weight.shape, generator=gen) * std)
            if module.bias is not None:
                module.bias.zero_()
    if hasattr(model, 'decoder'):
        model.decoder.reset_buffers()
    return model
