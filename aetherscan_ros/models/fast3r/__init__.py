# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Fast3R (multi-view pointmaps in one forward pass): our own PyTorch port.

Loads the official Hugging Face checkpoint layout (``config.json`` + ``model.safetensors``).
Importing this package imports torch.
"""

from aetherscan_ros.models.fast3r.config import Fast3RConfig, load_config, MAX_VIEWS
from aetherscan_ros.models.fast3r.model import default_image_ids, Fast3R
from aetherscan_ros.models.fast3r.random_weights import write_random_checkpoint
from aetherscan_ros.models.fast3r.weights import (
    CheckpointError, DEFAULT_REPO_ID, locate_checkpoint, RANDOM_LABEL)

__all__ = ['CheckpointError', 'DEFAULT_REPO_ID', 'Fast3R', 'Fast3RConfig', 'MAX_VIEWS',
           'RANDOM_LABEL', 'default_image_ids', 'load_config', 'locate_checkpoint',
           'write_random_checkpoint']
