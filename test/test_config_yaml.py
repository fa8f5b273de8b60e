# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
config/aetherscan.yaml: every parameter, its default, and use with other image topics.

The shipped file must work with the README's commands: ``--params-file config/aetherscan.yaml
-p image_topics:=...`` with two cameras (it once pinned one camera_info topic and the node
exited with "1 topics for 2 image topics") and with one other camera (its K was silently read
from ``/camera/camera_info``). Checked on the parameter table, in an rclpy node that loads the
file, and on a real node process.
"""

import os
from pathlib import Path
import time

import pytest
import yaml

from aetherscan_ros.demo.run_demo import start_process, stop_process
from aetherscan_ros.node import params

YAML_PATH = Path(__file__).resolve().parents[1] / 'config' / 'aetherscan.yaml'
_YAML_TYPES = {
    'bool': lambda v: isinstance(v, bool),
    'int': lambda v: isinstance(v, int) and not isinstance(v, bool),
    'double': lambda v: isinstance(v, float),
    'string': lambda v: isinstance(v, str),
    'string_array': lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
}
TWO_CAMERAS = ['/a/image_raw', '/b/image_raw']


def _node_params():
    doc = yaml.safe_load(YAML_PATH.read_text())
    assert list(doc) == ['/**'], 'one wildcard node section expected'
    return doc['/**']['ros__parameters']


def test_yaml_keys_are_declared_parameters_with_their_defaults():
    values = _node_params()
    for key, value in values.items():
        assert key in params.SPECS, f'{YAML_PATH.name}: {key} is not a declared parameter'
        spec = params.SPECS[key]
        assert _YAML_TYPES[spec.kind](value), \
            f'{key}: {value!r} is not a {spec.kind} (doubles are written 1.0)'
        assert value == spec.default, f'{key}: the file documents the defaults'
    missing = set(params.SPECS) - set(values)
    assert not missing, f'parameters missing from {YAML_PATH.name}: {sorted(missing)}'
    assert params.validate(values) is None


def test_every_yaml_parameter_has_a_comment():
    lines = YAML_PATH.read_text().splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if line.startswith('    ') and not stripped.startswith('#') and ':' in stripped:
            key = stripped.split(':')[0]
            assert lines[i - 1].strip().startswith('#'), f'{key} has no comment above it'


@pytest.mark.parametrize('topics', [TWO_CAMERAS, ['/cam0/image_raw']])
def test_yaml_with_other_image_topics_derives_camera_info(topics):
    """Every YAML value together with other image topics: valid, camera_info derived."""
    values = {**_node_params(), 'image_topics': topics}
    assert params.validate(values) is None
    config = params.make_config(values)
    assert config.info_topics() == tuple(params.default_camera_info_topic(t) for t in topics)


def test_yaml_loads_into_a_real_node():
    """The file as rcl parses it (--params-file; ``[]`` is an empty string array)."""
    rclpy = pytest.importorskip('rclpy')
    from rclpy.node import Node

    context = rclpy.Context()
    rclpy.init(context=context, args=[
        '--ros-args', '--params-file', str(YAML_PATH),
        '-p', 'image_topics:=[' + ','.join(f"'{t}'" for t in TWO_CAMERAS) + ']'])
    try:
        node = Node('aetherscan_yaml_check', context=context)
        config = params.declare_all(node)
        assert config.image_topics == tuple(TWO_CAMERAS)
        assert config.camera_info_topics == ()
        assert config.info_topics() == ('/a/camera_info', '/b/camera_info')
        assert params.current_values(node)['min_views'] == params.SPECS['min_views'].default
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def _subscribers(probe, topic):
    return [(i.node_namespace, i.node_name) for i in probe.get_subscriptions_info_by_topic(topic)]


@pytest.mark.ros
@pytest.mark.parametrize('topics', [TWO_CAMERAS, ['/cam0/image_raw']],
                         ids=['two_cameras', 'one_other_camera'])
def test_node_process_with_the_shipped_yaml(ros, tmp_path, topics):
    """The README command: the node starts and subscribes <image ns>/camera_info per camera."""
    import rclpy
    args = ['-m', 'aetherscan_ros.node', '--ros-args', '--params-file', str(YAML_PATH),
            '-p', 'image_topics:=[' + ','.join(f"'{t}'" for t in topics) + ']',
            '-p', 'backend:=classical', '-p', f"output_dir:='{tmp_path / 'out'}'"]
    log = tmp_path / 'node.log'
    proc = start_process(args, log, dict(os.environ))
    probe = rclpy.create_node(f'aetherscan_yaml_probe_{os.getpid()}')
    wanted = [params.default_camera_info_topic(t) for t in topics]
    try:
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline and proc.poll() is None:
            if all(('/', 'aetherscan_node') in _subscribers(probe, t) for t in wanted):
                break
            time.sleep(0.2)
        assert proc.poll() is None, \
            f'the node exited with {proc.returncode}:\n{log.read_text()[-2000:]}'
        for topic in wanted:
            assert ('/', 'aetherscan_node') in _subscribers(probe, topic), \
                f'no subscription on {topic}:\n{log.read_text()[-2000:]}'
        assert ('/', 'aetherscan_node') not in _subscribers(probe, '/camera/camera_info')
    finally:
        probe.destroy_node()
        code = stop_process(proc)
    assert code == 0, log.read_text()[-2000:]
