# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Replay a bag, a folder of images or a video into ``aetherscan_node`` on simulated time.

Starts the node as ``aetherscan.launch.py`` does (same arguments, RViz included) with
``use_sim_time`` true, and ``aetherscan play SOURCE --clock`` as its camera and clock::

    ros2 launch aetherscan_ros replay.launch.py source:=~/bags/run1 use_rviz:=true
    ros2 launch aetherscan_ros replay.launch.py source:=frames/ camera_info:=cam.yaml rate:=5

Extra arguments: ``source`` (required), ``rate`` (bag: times realtime; folder/video: frames
per second), ``loop``, ``topics`` (bag image topics), ``camera_info`` (folder/video). With
``image_topics`` empty a bag's own image topics are subscribed (a bag of compressed images
needs ``image_transport: compressed`` in ``params_file``). Every argument is checked before
anything starts (``aetherscan_ros/node/replay_args.py``).
"""

import importlib.util
import os

from aetherscan_ros.node.replay_args import check_replay_arguments, REPLAY_ARGUMENTS

HERE = os.path.dirname(os.path.abspath(__file__))


def _main_launch():
    """Load ``aetherscan.launch.py`` beside this file (its node and RViz actions)."""
    spec = importlib.util.spec_from_file_location(
        'aetherscan_main_launch', os.path.join(HERE, 'aetherscan.launch.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def declared_arguments():
    """Return ``(name, default, description)`` of every launch argument, as declared."""
    default_params = _main_launch().DEFAULT_PARAMS_FILE
    return [(name, default_params if name == 'params_file' else default, text)
            for name, default, text in REPLAY_ARGUMENTS]


def play_command(play_args):
    """Return the command of the ``aetherscan play`` process (the package's executable)."""
    from launch_ros.substitutions import ExecutableInPackage
    return [ExecutableInPackage('aetherscan', 'aetherscan_ros'), *play_args]


def _setup(context, *args, **kwargs):
    from launch.actions import ExecuteProcess, RegisterEventHandler
    from launch.event_handlers import OnShutdown
    from launch_ros.actions import Node

    main = _main_launch()
    values = {name: context.launch_configurations.get(name, default)
              for name, default, _ in declared_arguments()}
    settings, play_args = check_replay_arguments(values, main.DEFAULT_PARAMS_FILE)
    actions = [Node(**main.node_action_arguments(settings)),
               ExecuteProcess(cmd=play_command(play_args), name='aetherscan_play',
                              output='screen')]
    if settings.use_rviz:
        from aetherscan_ros.node import rviz_config
        pushed = context.launch_configurations.get('ros_namespace', '')
        path = rviz_config.write(main.rviz_config_text(settings, pushed))
        actions.append(Node(package='rviz2', executable='rviz2', name='aetherscan_rviz',
                            output='screen', arguments=['-d', path]))
        actions.append(RegisterEventHandler(OnShutdown(
            on_shutdown=lambda event, ctx: main._remove(path))))
    return actions


def generate_launch_description():
    """Build the launch description: the arguments, then one step that checks and starts."""
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, OpaqueFunction

    actions = [DeclareLaunchArgument(name, default_value=default, description=text)
               for name, default, text in declared_arguments()]
    actions.append(OpaqueFunction(function=_setup))
    return LaunchDescription(actions)
