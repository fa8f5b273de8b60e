# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Neural network models owned by aetherscan_ros (clean PyTorch ports, no upstream code).

``fast3r/``: the Fast3R port; :mod:`.torch_device`: torch device and precision choice.
Importing this package alone does not import torch.
"""
