# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
``launch/replay.launch.py``: its argument checks and the processes it would start.

The checks need no launch library (``node/replay_args.py``); the launch description itself is
built where ``launch``/``launch_ros`` are importable (a ROS install) and skipped otherwise.
"""

import importlib.util
from pathlib import Path

import pytest

from aetherscan_ros.node.launch_args import LaunchArgumentError
from aetherscan_ros.node.replay_args import check_replay_arguments

REPO = Path(__file__).resolve().parent.parent
PARAMS = str(REPO / 'config' / 'aetherscan.yaml')


@pytest.fixture(scope='module')
def bag(tmp_path_factory):
    from bag_helpers import write_scene_bag

    from aetherscan_ros.demo.scene import make_scene
    scene = make_scene(num_views=2, width=64, height=48, seed=1)
    return write_scene_bag(tmp_path_factory.mktemp('bag') / 'run', scene, storage='mcap',
                           topic='/front')


def _load_launch():
    spec = importlib.util.spec_from_file_location('replay_launch',
                                                  REPO / 'launch' / 'replay.launch.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_bag_alone_is_enough_the_node_gets_its_topics_and_sim_time(bag):
    settings, play = check_replay_arguments({'source': str(bag)}, PARAMS)
    assert settings.image_topics == ('/front/image_raw',)
    assert settings.use_sim_time is True
    assert settings.parameter_overrides()['use_sim_time'] is True
    assert play == ['play', str(bag), '--clock', '--rate', '1.0']


def test_folder_source_publishes_on_the_node_topic_with_its_calibration(tmp_path):
    frames = tmp_path / 'frames'
    frames.mkdir()
    calib = tmp_path / 'cam.yaml'
    calib.write_text('image_width: 64\n')
    settings, play = check_replay_arguments(
        {'source': str(frames), 'rate': '5', 'loop': 'true', 'camera_info': str(calib),
         'image_topics': '/cam0/image_raw', 'backend': 'classical'}, PARAMS)
    assert settings.image_topics == ('/cam0/image_raw',) and settings.backend == 'classical'
    assert play == ['play', str(frames), '--clock', '--rate', '5', '--loop',
                    '--camera-info', str(calib), '--topic', '/cam0/image_raw']


def test_every_bad_argument_is_named_before_anything_starts(tmp_path):
    with pytest.raises(LaunchArgumentError) as err:
        check_replay_arguments({'source': str(tmp_path / 'nope'), 'rate': '-2', 'loop': 'ja',
                                'camera_info': str(tmp_path / 'x.yaml'),
                                'backend': 'colmap'}, PARAMS)
    text = str(err.value)
    for part in ('source:', 'nope', 'rate:', "'-2'", 'loop', 'camera_info:', 'backend:'):
        assert part in text, (part, text)
    with pytest.raises(LaunchArgumentError, match='source: required'):
        check_replay_arguments({}, PARAMS)
    with pytest.raises(KeyError, match='use_sim_time'):  # forced true: not an argument here
        check_replay_arguments({'source': str(tmp_path), 'use_sim_time': 'false'}, PARAMS)


def test_a_bag_without_images_is_refused_with_its_topics(tmp_path):
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import get_typestore, Stores
    store = get_typestore(Stores.ROS2_JAZZY)
    with Writer(tmp_path / 'chat', version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection('/chatter', 'std_msgs/msg/String', typestore=store)
        writer.write(conn, 1, store.serialize_cdr(store.types['std_msgs/msg/String'](data='x'),
                                                  'std_msgs/msg/String'))
    with pytest.raises(LaunchArgumentError, match=r'no image topics.*/chatter'):
        check_replay_arguments({'source': str(tmp_path / 'chat')}, PARAMS)


def test_the_launch_file_declares_the_replay_arguments_with_the_shipped_params():
    module = _load_launch()
    declared = {name: default for name, default, _ in module.declared_arguments()}
    assert declared['params_file'].endswith('config/aetherscan.yaml')
    assert {'source', 'rate', 'loop', 'topics', 'camera_info', 'image_topics',
            'use_rviz'} <= set(declared)
    assert 'use_sim_time' not in declared


def test_launch_description_builds_where_launch_exists(bag):
    pytest.importorskip('launch')
    pytest.importorskip('launch_ros')
    description = _load_launch().generate_launch_description()
    names = [getattr(a, 'name', None) for a in description.entities]
    assert 'source' in names
