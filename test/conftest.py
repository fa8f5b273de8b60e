# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Test session setup: DDS on loopback only, a private ROS_DOMAIN_ID per pytest run."""

import os
from pathlib import Path
import tempfile

import pytest

from aetherscan_ros.node.ros_domain import claim_domain_id

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / 'shared'


# Set before anything imports rclpy (subprocesses inherit it).
if 'AETHERSCAN_TEST_DOMAIN_HELD' not in os.environ:
    _DOMAIN, _DOMAIN_LOCK = claim_domain_id(1, 101)
    os.environ['ROS_DOMAIN_ID'] = str(_DOMAIN)
    os.environ['AETHERSCAN_TEST_DOMAIN_HELD'] = '1'
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
if os.environ.get('ROS_DISTRO') == 'humble':
    os.environ['ROS_LOCALHOST_ONLY'] = '1'  # Humble predates ROS_AUTOMATIC_DISCOVERY_RANGE
else:
    os.environ.pop('ROS_LOCALHOST_ONLY', None)  # deprecated on Jazzy, ignored by Kilted
os.environ.setdefault('ROS_LOG_DIR', tempfile.mkdtemp(prefix='aetherscan_roslog_'))
os.environ.setdefault('HF_HUB_OFFLINE', '1')  # tests never download
os.environ.setdefault('PYTHONUNBUFFERED', '1')


@pytest.fixture(scope='session')
def shared_dir():
    """Return ``../shared`` (team fixtures) or skip when this checkout has none beside it."""
    if not SHARED.is_dir():
        pytest.skip(f'{SHARED} is absent: team fixtures (fast3r parity, ros_on_pip) live there')
    return SHARED


@pytest.fixture(scope='session')
def parity_dir(shared_dir):
    """Return ``../shared/fast3r/parity_a`` or skip with the reason."""
    path = shared_dir / 'fast3r' / 'parity_a'
    if not (path / 'fixture.npz').is_file():
        pytest.skip(f'{path}/fixture.npz is absent: no Fast3R parity fixture to compare with')
    return path


@pytest.fixture(scope='module')
def ros():
    """Initialise rclpy in the test process for one module (cross-process node tests)."""
    import rclpy
    rclpy.init()
    yield
    rclpy.try_shutdown()
