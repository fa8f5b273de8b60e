# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Benchmarks of aetherscan_ros: ``python -m bench.run_all`` runs every ``bench_*.py`` module."""
