# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The arguments of ``launch/replay.launch.py``: the node on simulated time, fed by ``play``.

The replay launch takes every argument of ``aetherscan.launch.py`` (checked by
:func:`~aetherscan_ros.node.launch_args.check_arguments`) plus the source to replay; the node
runs with ``use_sim_time`` true and ``aetherscan play SOURCE --clock`` drives its clock. When
``image_topics`` is empty and the source is a bag, the node subscribes the bag's image topics
(or those named by ``topics``), so ``replay.launch.py source:=run/`` needs nothing else. A bad
value stops the launch with every reason before anything starts, like the main launch file.
Nothing here needs the ``launch`` library or rclpy.
"""

import os
from typing import List, Mapping, Tuple

from aetherscan_ros.node.launch_args import (
    ARGUMENTS, check_arguments, LaunchArgumentError, LaunchSettings, parse_bool)

REPLAY_ARGUMENTS: Tuple[Tuple[str, str, str], ...] = (
    ('source', '', 'What to replay: a rosbag2 (directory, .db3 or .mcap), a directory of '
     'images or a video file (required)'),
    ('rate', '1.0', 'Bag: times realtime; folder/video: frames per second'),
    ('loop', 'false', 'true or false: replay until the launch is stopped'),
    ('topics', '', 'Bag: comma-separated image topics to replay (empty: all)'),
    ('camera_info', '', 'Folder/video: calibration YAML published as camera_info'),
) + tuple(arg for arg in ARGUMENTS if arg[0] != 'use_sim_time')


def check_replay_arguments(values: Mapping[str, str], default_params_file: str = ''
                           ) -> Tuple[LaunchSettings, List[str]]:
    """
    Check the replay launch's arguments; return the node's settings and ``play``'s arguments.

    The settings have ``use_sim_time`` true; the list is what follows ``aetherscan`` on the
    command line (``play SOURCE --clock ...``). Raises :class:`LaunchArgumentError` naming
    every bad argument.
    """
    unknown = set(values) - {name for name, _, _ in REPLAY_ARGUMENTS}
    if unknown:
        raise KeyError(f'not launch arguments of replay.launch.py: {sorted(unknown)}')
    text = {name: str(values.get(name, default)).strip()
            for name, default, _ in REPLAY_ARGUMENTS}
    problems: List[str] = []
    source = os.path.expanduser(text['source'])
    kind = ''
    if not source:
        problems.append('source: required (a bag, a directory of images or a video file)')
    else:
        from aetherscan_ros.cli.common import CliError
        from aetherscan_ros.cli.replay_source import source_kind
        try:
            kind = source_kind(source)
        except CliError as exc:
            problems.append(f'source: {exc}')
    try:
        rate = float(text['rate'])
        if not rate > 0 or rate == float('inf'):
            raise ValueError
    except ValueError:
        problems.append(f'rate: {text["rate"]!r} is not a positive number')
    loop = None
    try:
        loop = parse_bool('loop', text['loop'])
    except LaunchArgumentError as exc:
        problems.append(str(exc))
    topics = [t.strip() for t in text['topics'].split(',') if t.strip()]
    if text['camera_info'] and not os.path.isfile(os.path.expanduser(text['camera_info'])):
        problems.append(f'camera_info: {text["camera_info"]} does not exist')
    node_values = {name: text[name] for name, _, _ in ARGUMENTS if name != 'use_sim_time'}
    node_values['use_sim_time'] = 'true'
    if not node_values['image_topics'] and kind == 'bag':
        node_values['image_topics'] = ','.join(topics or _bag_image_topics(source, problems))
    try:
        settings = check_arguments(node_values, default_params_file)
    except LaunchArgumentError as exc:
        problems.extend(line.strip() for line in str(exc).splitlines()[1:])
    if problems:
        raise LaunchArgumentError('replay.launch.py: invalid launch arguments, nothing '
                                  'started:\n  ' + '\n  '.join(problems))
    play = ['play', source, '--clock', '--rate', text['rate']]
    if loop:
        play.append('--loop')
    if topics:
        play += ['--topics', *topics]
    if text['camera_info']:
        play += ['--camera-info', os.path.expanduser(text['camera_info'])]
    if kind != 'bag' and settings.image_topics:
        play += ['--topic', settings.image_topics[0]]
    return settings, play


def _bag_image_topics(source: str, problems: List[str]) -> List[str]:
    """Return the image topics of the bag at ``source`` (a problem when it has none)."""
    from aetherscan_ros.files.bag import BagError, list_image_topics
    try:
        topics = list_image_topics(source)
    except BagError as exc:
        problems.append(f'source: {exc}')
        return []
    if not topics:
        problems.append(f'source: {source} has no sensor_msgs/Image or CompressedImage topic')
    return topics
