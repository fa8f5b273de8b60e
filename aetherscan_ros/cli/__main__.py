# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""``python -m aetherscan_ros.cli``: the same as the ``aetherscan`` console script."""

import sys

from aetherscan_ros.cli.app import main

sys.exit(main())
