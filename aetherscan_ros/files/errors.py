# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""The error every reader in :mod:`aetherscan_ros.files` raises for a bad result file."""


class ResultFormatError(ValueError):
    """A result file is missing, malformed or inconsistent; the message names the file."""


__all__ = ['ResultFormatError']
