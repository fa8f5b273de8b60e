# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Launch ``aetherscan_node`` (and optionally RViz, configured for this node and camera).

Arguments (``ros2 launch aetherscan_ros aetherscan.launch.py -s`` lists them)::

    params_file   YAML with the node's parameters (default: config/aetherscan.yaml); must exist
    image_topics  comma-separated image topics; empty = the value in params_file
    backend       auto | mapanything | fast3r | classical; empty = the value in params_file
    model         MapAnything or Fast3R checkpoint dir or hub repo id; empty = params_file value
    namespace     namespace of the node (topics become /<ns>/aetherscan_node/...)
    use_rviz      true | false: also start rviz2 with config/aetherscan.rviz, its topics
                  rewritten for this namespace and the first image topic (a temp file)
    large_data_profile  true | false: run the node with config/fastdds_large_data.xml (a 64 MB
                  Fast DDS shared-memory segment for MB-sized clouds; docs/point_streaming.md)
    hugepage_malloc  true | false (default true): start the node with
                  GLIBC_TUNABLES=glibc.malloc.hugetlb=1, so that new buffers of large clouds
                  are mapped with transparent huge pages (4x cheaper above ~32 MB)
    use_sim_time  true | false: the node's use_sim_time; empty = the value in params_file
    log_level     debug | info | warn | error | fatal, or <logger>:=<level> (default info)

Booleans are true/false or 1/0 (any case). Every argument is checked before anything starts: a
bad value (``use_rviz:=ture``, a missing params_file, ``backend:=colmap``) stops the launch with
one error that names each bad argument, and no process is left running.

Example: ``ros2 launch aetherscan_ros aetherscan.launch.py
image_topics:=/cam0/image_raw,/cam1/image_raw backend:=classical use_rviz:=true``.
"""

import os

from aetherscan_ros.node import rviz_config
from aetherscan_ros.node.launch_args import (
    ARGUMENTS, check_arguments, LaunchSettings, load_params_file, NODE_NAME, node_namespace,
    node_parameters, resolve_topic)

# Installed as share/aetherscan_ros/launch/ next to share/aetherscan_ros/config/ (and the same
# layout in the source tree), so no ament index lookup is needed.
CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          'config')
DEFAULT_PARAMS_FILE = os.path.join(CONFIG_DIR, 'aetherscan.yaml')
RVIZ_TEMPLATE = os.path.join(CONFIG_DIR, 'aetherscan.rviz')
LARGE_DATA_PROFILE = os.path.join(CONFIG_DIR, 'fastdds_large_data.xml')
DEFAULT_IMAGE_TOPIC = '/camera/image_raw'


def declared_arguments():
    """Return ``(name, default, description)`` of every launch argument, as declared."""
    return [(name, DEFAULT_PARAMS_FILE if name == 'params_file' else default, text)
            for name, default, text in ARGUMENTS]


def profile_environment(enabled: bool) -> dict:
    """Return the environment that selects the large-data Fast DDS profile (Jazzy and Kilted)."""
    if not enabled:
        return {}
    # Fast RTPS 2.x (Jazzy) reads the first name, Fast DDS 3.x (Kilted) the second.
    return {'FASTRTPS_DEFAULT_PROFILES_FILE': LARGE_DATA_PROFILE,
            'FASTDDS_DEFAULT_PROFILES_FILE': LARGE_DATA_PROFILE}


def malloc_environment(enabled: bool, environ=None) -> dict:
    """Return ``GLIBC_TUNABLES`` with huge-page malloc added to the launching shell's value."""
    if not enabled:
        return {}
    from aetherscan_ros.core.process_env import with_hugepage_malloc
    return with_hugepage_malloc(os.environ if environ is None else environ)


def node_action_arguments(settings: LaunchSettings, environ=None) -> dict:
    """Return the keyword arguments of the ``launch_ros`` ``Node`` action of aetherscan_node."""
    parameters = [settings.params_file] if settings.params_file else []
    overrides = settings.parameter_overrides()
    if overrides:
        parameters.append(overrides)
    return {'package': 'aetherscan_ros', 'executable': 'aetherscan_node', 'name': NODE_NAME,
            'namespace': settings.namespace, 'parameters': parameters,
            'arguments': ['--ros-args', *settings.ros_arguments()],
            'output': 'screen', 'emulate_tty': True,
            'additional_env': {**profile_environment(settings.large_data_profile),
                               **malloc_environment(settings.hugepage_malloc, environ)}}


def rviz_config_text(settings: LaunchSettings, pushed_namespace: str = '') -> str:
    """
    Return the RViz config for this launch: node namespace, first camera, fixed frame.

    RViz's fixed frame is the node's ``fixed_frame`` when the params file sets one (the
    anchored cloud sits there in metres), else its ``world_frame``.
    """
    namespace = node_namespace(pushed_namespace, settings.namespace)
    params = node_parameters(load_params_file(settings.params_file), namespace) \
        if settings.params_file else {}
    topics = list(settings.image_topics)
    if not topics and isinstance(params.get('image_topics'), list):
        topics = [str(t) for t in params['image_topics'] if t]
    image_topic = resolve_topic(topics[0] if topics else DEFAULT_IMAGE_TOPIC, namespace)
    world_frame = params.get('fixed_frame') or params.get('world_frame')
    with open(RVIZ_TEMPLATE, encoding='utf-8') as handle:
        template = handle.read()
    return rviz_config.render(template, namespace.rstrip('/') + '/' + NODE_NAME, image_topic,
                              world_frame if isinstance(world_frame, str) else None)


def check_context_arguments(context) -> LaunchSettings:
    """Read every launch argument from the launch context and check them all."""
    values = {name: context.launch_configurations.get(name, default)
              for name, default, _ in declared_arguments()}
    return check_arguments(values, DEFAULT_PARAMS_FILE)


def _setup(context, *args, **kwargs):
    """Check all arguments first (raising before anything starts), then build the processes."""
    from launch.actions import RegisterEventHandler
    from launch.event_handlers import OnShutdown
    from launch_ros.actions import Node

    settings = check_context_arguments(context)
    actions = [Node(**node_action_arguments(settings))]
    if settings.use_rviz:
        pushed = context.launch_configurations.get('ros_namespace', '')
        path = rviz_config.write(rviz_config_text(settings, pushed))
        actions.append(Node(package='rviz2', executable='rviz2', name='aetherscan_rviz',
                            output='screen', arguments=['-d', path]))
        actions.append(RegisterEventHandler(OnShutdown(
            on_shutdown=lambda event, ctx: _remove(path))))
    return actions


def _remove(path: str):
    try:
        os.remove(path)
    except OSError:
        pass


def generate_launch_description():
    """Build the launch description: the arguments, then one step that checks and starts."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    actions = [DeclareLaunchArgument(name, default_value=default, description=text)
               for name, default, text in declared_arguments()]
    actions.append(OpaqueFunction(function=_setup))
    return LaunchDescription(actions)
