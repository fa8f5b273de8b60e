# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
MapAnything V1.1 (metric multi-view geometry with optional priors): our own PyTorch port.

Loads the Hugging Face checkpoint layout (``config.json`` + ``model.safetensors``) of
``facebook/map-anything-apache``. Importing this package imports torch.
"""

from aetherscan_ros.models.mapanything.config import (
    ConfigError, load_config, MapAnythingConfig, PRESETS)
from aetherscan_ros.models.mapanything.model import MapAnything
from aetherscan_ros.models.mapanything.random_weights import write_random_checkpoint
from aetherscan_ros.models.mapanything.weights import (
    CheckpointError, DEFAULT_REPO_ID, locate_checkpoint, RANDOM_LABEL)

__all__ = ['CheckpointError', 'ConfigError', 'DEFAULT_REPO_ID', 'MapAnything',
           'MapAnythingConfig', 'PRESETS', 'RANDOM_LABEL', 'load_config', 'locate_checkpoint',
           'write_random_checkpoint']
