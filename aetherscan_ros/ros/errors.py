# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""The one error of the message conversions."""


class ConversionError(ValueError):
    """A message cannot be converted; the message says why (the node prefixes the topic)."""
