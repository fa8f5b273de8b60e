# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""``python -m aetherscan_ros.demo.run_demo``: see :mod:`aetherscan_ros.demo.run_demo`."""

import sys

from aetherscan_ros.demo.run_demo import main

sys.exit(main())
