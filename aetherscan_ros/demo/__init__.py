# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Synthetic scenes with ground truth (rendered here, nothing downloaded) and demo publishers."""
