# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The verbs of ``aetherscan`` that talk to a running node: ``play``, ``call``, ``events``.

Their arguments are parsed here, ROS-free; the work is on the ROS side
(:mod:`aetherscan_ros.node.play`, :mod:`aetherscan_ros.node.client`), imported inside the
``cmd_*`` functions only, so ``aetherscan reconstruct`` and the other verbs never load rclpy.
This module is the one exception test/test_architecture.py allows in ``cli/``
(``ROS_VERB_ENTRY``): those two modules, imported lazily, nothing else of ROS.
"""

from aetherscan_ros.cli.common import CliError, EXIT_FAILED

DEFAULT_NODE = '/aetherscan_node'
ROS_MISSING = ('needs ROS 2 (rclpy and the message packages): source your ROS install or '
               'install the ROS wheels (make setup); `aetherscan doctor` checks')


def _ros_import_error(verb: str, exc: ImportError) -> CliError:
    return CliError(f'{verb} {ROS_MISSING} ({exc})', EXIT_FAILED)


def cmd_play(args) -> int:
    """Run ``aetherscan play`` (ROS side: :mod:`aetherscan_ros.node.play`)."""
    try:
        from aetherscan_ros.node.play import run_play
    except ImportError as exc:
        raise _ros_import_error('play', exc) from None
    return run_play(args)


def cmd_call(args) -> int:
    """Run ``aetherscan call`` (ROS side: :mod:`aetherscan_ros.node.client`)."""
    try:
        from aetherscan_ros.node.client import run_call
    except ImportError as exc:
        raise _ros_import_error('call', exc) from None
    return run_call(args)


def cmd_events(args) -> int:
    """Run ``aetherscan events`` (ROS side: :mod:`aetherscan_ros.node.client`)."""
    try:
        from aetherscan_ros.node.client import run_events
    except ImportError as exc:
        raise _ros_import_error('events', exc) from None
    return run_events(args)


def add_ros_verbs(verbs, common) -> None:
    """Add the ``play``, ``call`` and ``events`` sub-parsers to ``verbs``."""
    play = verbs.add_parser(
        'play', parents=[common], help='replay a bag, image folder or video into a running node',
        description='Publish SOURCE to a running node as a camera driver would: images '
                    '(Image, or CompressedImage with --transport compressed) and camera_info; '
                    'a bag also replays /tf and /tf_static. Waits for a subscriber on the image '
                    'topic first (--wait), publishes reliably, and ends once every message is '
                    'acknowledged.',
        epilog='Exit status: 0 done, 1 no subscriber or nothing published, 2 bad arguments or '
               'input, 130 interrupted.')
    play.add_argument('source', metavar='SOURCE',
                      help='rosbag2 directory (or its .db3/.mcap), directory of images, or a '
                           'video file')
    play.add_argument('--topic', default='', metavar='TOPIC',
                      help='image topic to publish on (default /camera/image_raw; a bag: its '
                           'one image topic renamed, its camera_info beside it)')
    play.add_argument('--namespace', default='', metavar='NS',
                      help='prefix for the image and camera_info topics (a folder/video: '
                           'NS/image_raw)')
    play.add_argument('--topics', nargs='+', metavar='TOPIC',
                      help='bag image topics to replay (default: all)')
    play.add_argument('--start', type=float, metavar='SEC', help='bag: start SEC s into it')
    play.add_argument('--end', type=float, metavar='SEC', help='bag: stop SEC s into it')
    play.add_argument('--rate', type=float, default=None,
                      help='bag: times realtime (default 1); folder: frames per second '
                           '(default 2); video: frames per second (default its own)')
    play.add_argument('--loop', action='store_true', help='repeat until interrupted')
    play.add_argument('--clock', action='store_true',
                      help='publish /clock (rosgraph_msgs/Clock): the bag time, or the frame '
                           'stamps; for a node with use_sim_time:=true')
    play.add_argument('--frame-id', default='', metavar='FRAME',
                      help='header.frame_id of the images (default: as recorded in a bag; '
                           'folder/video: camera_optical_frame)')
    play.add_argument('--transport', choices=('raw', 'compressed'), default='raw',
                      help='folder/video: Image (raw) or CompressedImage on TOPIC/compressed')
    play.add_argument('--format', choices=('jpeg', 'png'), default='jpeg',
                      help='folder/video: compression of --transport compressed')
    calib = play.add_mutually_exclusive_group()
    calib.add_argument('--camera-info', default='', metavar='FILE',
                       help='folder/video: calibration YAML (camera_calibration_parsers) to '
                            'publish as camera_info (default: DIR/camera_info.yaml if present)')
    calib.add_argument('--intrinsics', default='', metavar='FX,FY,CX,CY',
                       help='folder/video: pinhole intrinsics to publish as camera_info')
    play.add_argument('--wait', type=float, default=30.0, metavar='SEC',
                      help='seconds to wait for a subscriber (default 30)')
    play.set_defaults(func=cmd_play)

    call = verbs.add_parser(
        'call', parents=[common], help="call a node's Trigger service (reconstruct, save, ...)",
        description='Call a std_srvs/Trigger service of the node and print its answer: '
                    'reconstruct, save, reset, pause, resume, or any other Trigger service '
                    'under the node (a name starting with / is used as it is).',
        epilog='Exit status: 0 success, 1 refused or no answer, 2 no such service.')
    call.add_argument('service', metavar='SERVICE')
    call.add_argument('--node', default=DEFAULT_NODE, help='node name (default %(default)s)')
    call.add_argument('--timeout', type=float, default=10.0, metavar='SEC',
                      help='seconds to wait for the service and its answer (default 10)')
    call.add_argument('--json', action='store_true', help='print the answer as JSON')
    call.set_defaults(func=cmd_call)

    events = verbs.add_parser(
        'events', parents=[common], help="print the node's ~/events as JSON lines",
        description="Print the node's ~/events (one JSON object per line): the recent ones "
                    'it keeps, then with --follow new ones as they come. progress events are '
                    'also shown as a human line on stderr.',
        epilog='Exit status: 0 ok, 1 no node, or fewer than --count events in --timeout.')
    events.add_argument('--node', default=DEFAULT_NODE, help='node name (default %(default)s)')
    events.add_argument('--follow', '-f', action='store_true',
                        help='keep printing new events until --count or Ctrl-C')
    events.add_argument('--count', '-n', type=int, default=None, metavar='N',
                        help='stop after N events (without --follow: fail if they do not '
                             'come within --timeout)')
    events.add_argument('--type', nargs='+', metavar='EVENT',
                        help='only these events (e.g. reconstruction_complete progress)')
    events.add_argument('--timeout', type=float, default=10.0, metavar='SEC',
                        help='seconds to wait for the node (default 10)')
    events.set_defaults(func=cmd_events)
