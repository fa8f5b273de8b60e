# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The RViz configuration for one launch, made from the ``config/aetherscan.rviz`` template.

The template is written for the defaults (node ``/aetherscan_node``, camera
``/camera/image_raw``, fixed frame ``aetherscan_world``); :func:`render` moves every display
that shows a node topic under the node's namespace, points the image display at the first
camera and makes every subscription reliable (Fast DDS drops MB-sized samples to best-effort
readers: 0 to 3 of 8 demo images reached a best-effort image display). No ``launch`` or rclpy.
"""

import os
import tempfile
from typing import Iterator, Optional

import yaml

TEMPLATE_NODE = '/aetherscan_node'
IMAGE_DISPLAY = 'rviz_default_plugins/Image'
RELIABLE = 'Reliable'


def _displays(displays) -> Iterator[dict]:
    """Yield every display, also those inside display groups."""
    for display in displays or ():
        if isinstance(display, dict):
            yield display
            yield from _displays(display.get('Displays'))


def render(template: str, node_fqn: str, image_topic: str,
           fixed_frame: Optional[str] = None) -> str:
    """
    Return the RViz config (YAML text) for the node ``node_fqn`` and the camera ``image_topic``.

    ``node_fqn`` is the node's absolute name (``/robot1/aetherscan_node``); topics of the
    template under ``/aetherscan_node/`` move under it, the image display shows
    ``image_topic``, every display's subscription becomes reliable, and ``fixed_frame`` (the
    node's ``world_frame``) replaces the template's when given.
    """
    doc = yaml.safe_load(template)
    manager = doc['Visualization Manager']
    for display in _displays(manager.get('Displays')):
        topic = display.get('Topic')
        if not isinstance(topic, dict):
            continue
        value = str(topic.get('Value', ''))
        if display.get('Class') == IMAGE_DISPLAY:
            topic['Value'] = image_topic
        elif value == TEMPLATE_NODE or value.startswith(TEMPLATE_NODE + '/'):
            topic['Value'] = node_fqn + value[len(TEMPLATE_NODE):]
        topic['Reliability Policy'] = RELIABLE
    if fixed_frame:
        manager['Global Options']['Fixed Frame'] = fixed_frame
    return yaml.safe_dump(doc, default_flow_style=False, sort_keys=False)


def write(text: str, directory: Optional[str] = None) -> str:
    """Write ``text`` to a new ``aetherscan_*.rviz`` file (default: temp dir); return the path."""
    handle, path = tempfile.mkstemp(prefix='aetherscan_', suffix='.rviz', dir=directory)
    with os.fdopen(handle, 'w', encoding='utf-8') as out:
        out.write(text)
    return path
