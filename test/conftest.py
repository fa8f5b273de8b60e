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
def fast3r_fixtures():
    """Return ``test/fixtures/fast3r`` (parity fixture A, checkpoint layout, ViT-L config)."""
    path = REPO / 'test' / 'fixtures' / 'fast3r'
    if not (path / 'parity_a' / 'fixture.npz').is_file():
        pytest.fail(f'{path}/parity_a/fixture.npz is missing: the Fast3R fixtures are part of '
                    'the repository (test/fixtures/fast3r/README.md); restore them')
    return path


@pytest.fixture(scope='session')
def parity_dir(fast3r_fixtures):
    """Return ``test/fixtures/fast3r/parity_a`` (upstream outputs on random weights)."""
    return fast3r_fixtures / 'parity_a'


@pytest.fixture(scope='module')
def ros():
    """Initialise rclpy in the test process for one module (cross-process node tests)."""
    import rclpy
    rclpy.init()
    yield
    rclpy.try_shutdown()
