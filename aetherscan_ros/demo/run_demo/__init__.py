# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
``make demo``: the node on the demo scene, end to end over ROS, scored against ground truth.

Three processes on a private ``ROS_DOMAIN_ID`` with ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``:
``aetherscan_node``; the demo camera (:mod:`aetherscan_ros.demo.publisher`, the scene's frames
plus camera_info as a camera stream); and this one, which prints the node's live ``~/events``
and receives what the node publishes. The child processes are always stopped, also on errors
and Ctrl-C.

* ``--mode snapshot`` (default, :mod:`.snapshot`): one reconstruction; checks that the
  streamed ``~/points`` chunks reassemble to exactly ``~/cloud``, calls ``~/save``, scores
  what arrived and leaves ``cloud.ply``, ``poses.json`` and ``preview.png`` in
  ``--output-dir``.
* ``--mode mapping`` (:mod:`.mapping`): the node in mapping mode along a long path (``tour``:
  60+ keyframes round the room and back past the start), the camera paced by the node's
  ``window_complete`` events; scores the received ``~/map`` and ``~/path`` (accuracy,
  completeness, end-of-path drift: :mod:`aetherscan_ros.demo.map_evaluation`) and writes
  ``mapping_scores.json``.

:class:`NodeMonitor` (:mod:`.monitor`) is the receiving side, also used by the node tests.
"""

import argparse
import sys

from aetherscan_ros.demo.run_demo.monitor import (  # noqa: F401 - the names tests import
    node_command, NODE_NS, NodeMonitor, print_event, start_process, stop_process)
from aetherscan_ros.node.ros_domain import claim_domain_id  # noqa: F401 - used by bench_soak

_DEFAULTS = {  # per mode: views, width, height, camera path
    'snapshot': (8, 640, 480, 'orbit'),
    'mapping': (70, 320, 240, 'tour'),
}


def parse_args(argv=None):
    """Parse the command line; unset sizes and path take the mode's defaults."""
    parser = argparse.ArgumentParser(description=__doc__.strip().split('\n')[0])
    parser.add_argument('--mode', default='snapshot', choices=tuple(_DEFAULTS))
    parser.add_argument('--output-dir', default='')
    parser.add_argument('--backend', default='auto',
                        choices=('auto', 'mapanything', 'fast3r', 'classical'))
    parser.add_argument('--model', default='', help='Fast3R checkpoint (dir or repo id)')
    parser.add_argument('--transport', default='raw', choices=('raw', 'compressed'))
    parser.add_argument('--qos', default='reliable', choices=('reliable', 'best_effort'))
    parser.add_argument('--num-views', type=int, default=None,
                        help='snapshot 8, mapping 70')
    parser.add_argument('--width', type=int, default=None, help='snapshot 640, mapping 320')
    parser.add_argument('--height', type=int, default=None, help='snapshot 480, mapping 240')
    parser.add_argument('--path', default=None, help='camera path: snapshot orbit, mapping tour')
    parser.add_argument('--fixed-frame', default='odom',
                        help='the camera publishes its poses on /tf in this frame and the node '
                        'anchors the reconstruction there (metres); empty = unanchored')
    parser.add_argument('--window-size', type=int, default=8, help='mapping: keyframes/window')
    parser.add_argument('--window-overlap', type=int, default=2,
                        help='mapping: keyframes shared with the window before')
    parser.add_argument('--rate', type=float, default=4.0, help='camera views per second')
    parser.add_argument('--max-ahead', type=int, default=12,
                        help='mapping: views the camera may be ahead of the finished windows')
    parser.add_argument('--timeout', type=float, default=900.0,
                        help='seconds to wait for the reconstruction (mapping: for the map)')
    args = parser.parse_args(argv)
    views, width, height, path = _DEFAULTS[args.mode]
    args.num_views = views if args.num_views is None else args.num_views
    args.width = width if args.width is None else args.width
    args.height = height if args.height is None else args.height
    args.path = path if args.path is None else args.path
    if not args.output_dir:
        args.output_dir = 'output/demo_mapping' if args.mode == 'mapping' else 'output/demo'
    return args


def run(args) -> int:
    """Run the demo of ``args.mode``; return the exit code."""
    if args.mode == 'mapping':
        from aetherscan_ros.demo.run_demo.mapping import run_mapping
        return run_mapping(args)
    from aetherscan_ros.demo.run_demo.snapshot import run_snapshot
    return run_snapshot(args)


def main(argv=None):
    """Entry point of ``python -m aetherscan_ros.demo.run_demo``."""
    try:
        return run(parse_args(argv))
    except KeyboardInterrupt:
        return 130


if __name__ == '__main__':
    sys.exit(main())
