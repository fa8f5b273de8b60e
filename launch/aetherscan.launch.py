# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Launch ``aetherscan_node`` (and optionally RViz with ``config/aetherscan.rviz``).

Arguments::

    params_file   YAML with the node's parameters (default: config/aetherscan.yaml)
    image_topics  comma-separated image topics; empty = the value in params_file
    backend       auto | fast3r | classical; empty = the value in params_file
    model         Fast3R checkpoint dir or hub repo id; empty = the value in params_file
    namespace     namespace of the node (topics become /<ns>/aetherscan_node/...)
    use_rviz      true | false: also start rviz2 with config/aetherscan.rviz
    large_data_profile  true | false: run the node with config/fastdds_large_data.xml (a 64 MB
                  Fast DDS shared-memory segment for MB-sized clouds; docs/point_streaming.md)
    hugepage_malloc  true | false (default true): start the node with
                  GLIBC_TUNABLES=glibc.malloc.hugetlb=1, so that new buffers of large clouds
                  are mapped with transparent huge pages (4x cheaper above ~32 MB)

Example: ``ros2 launch aetherscan_ros aetherscan.launch.py
image_topics:=/cam0/image_raw,/cam1/image_raw backend:=classical use_rviz:=true``.
"""

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

# Installed as share/aetherscan_ros/launch/ next to share/aetherscan_ros/config/ (and the same
# layout in the source tree), so no ament index lookup is needed.
CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          'config')

ARGUMENTS = (
    ('params_file', os.path.join(CONFIG_DIR, 'aetherscan.yaml'),
     'YAML file with the aetherscan_node parameters'),
    ('image_topics', '', 'Comma-separated image topics (empty: from params_file)'),
    ('backend', '', 'auto, fast3r or classical (empty: from params_file)'),
    ('model', '', 'Fast3R checkpoint directory or hub repo id (empty: from params_file)'),
    ('namespace', '', 'Namespace of the node'),
    ('use_rviz', 'false', 'Start rviz2 with config/aetherscan.rviz'),
    ('large_data_profile', 'false',
     'Run the node with the Fast DDS large-data profile (config/fastdds_large_data.xml)'),
    ('hugepage_malloc', 'true',
     'Start the node with GLIBC_TUNABLES=glibc.malloc.hugetlb=1 (huge pages for large clouds)'),
)
LARGE_DATA_PROFILE = os.path.join(CONFIG_DIR, 'fastdds_large_data.xml')


def _true(text: str) -> bool:
    return text.strip().lower() in ('true', '1', 'yes', 'on')


def profile_environment(enabled: str) -> dict:
    """Return the environment that selects the large-data Fast DDS profile (Jazzy and Kilted)."""
    if not _true(enabled):
        return {}
    # Fast RTPS 2.x (Jazzy) reads the first name, Fast DDS 3.x (Kilted) the second.
    return {'FASTRTPS_DEFAULT_PROFILES_FILE': LARGE_DATA_PROFILE,
            'FASTDDS_DEFAULT_PROFILES_FILE': LARGE_DATA_PROFILE}


def malloc_environment(enabled: str) -> dict:
    """Return ``GLIBC_TUNABLES`` with huge-page malloc added to the launching shell's value."""
    if not _true(enabled):
        return {}
    from aetherscan_ros.core.process_env import with_hugepage_malloc
    return with_hugepage_malloc(os.environ)


def overrides_from_arguments(image_topics: str, backend: str, model: str) -> dict:
    """Return the parameter overrides given on the command line (empty strings = none)."""
    out = {}
    topics = [t.strip() for t in image_topics.split(',') if t.strip()]
    if topics:
        out['image_topics'] = topics
    if backend:
        out['backend'] = backend
    if model:
        out['model'] = model
    return out


def _node(context, *args, **kwargs):
    def value(name):
        return LaunchConfiguration(name).perform(context)

    parameters = [value('params_file')]
    overrides = overrides_from_arguments(value('image_topics'), value('backend'), value('model'))
    if overrides:
        parameters.append(overrides)
    return [Node(package='aetherscan_ros', executable='aetherscan_node', name='aetherscan_node',
                 namespace=value('namespace'), parameters=parameters, output='screen',
                 emulate_tty=True,
                 additional_env={**profile_environment(value('large_data_profile')),
                                 **malloc_environment(value('hugepage_malloc'))})]


def generate_launch_description():
    """Build the launch description: the arguments, the node and the optional RViz."""
    actions = [DeclareLaunchArgument(name, default_value=default, description=text)
               for name, default, text in ARGUMENTS]
    actions.append(OpaqueFunction(function=_node))
    actions.append(Node(
        package='rviz2', executable='rviz2', name='aetherscan_rviz', output='screen',
        arguments=['-d', os.path.join(CONFIG_DIR, 'aetherscan.rviz')],
        condition=IfCondition(LaunchConfiguration('use_rviz'))))
    return LaunchDescription(actions)
