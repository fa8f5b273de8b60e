# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
``aetherscan play SOURCE``: replay a bag, a folder of images or a video as a camera driver.

Publishes to a running node what a camera driver (and, for a bag, the robot) would: images
(``sensor_msgs/Image`` or ``CompressedImage``) with ``camera_info``; from a bag also ``/tf`` and
``/tf_static``, the recorded messages as they are (their CDR bytes). ``--clock`` publishes
``rosgraph_msgs/Clock`` (the bag's time, or the stamps given to folder/video frames), so a node
started with ``use_sim_time:=true`` follows the replay's time. QoS: reliable keep-last (a node
in ``image_qos: auto`` then subscribes reliably: Fast DDS drops large messages to best-effort
readers), ``/tf_static`` transient-local. Publishing starts when the image topic has a
subscriber (or after ``--wait`` seconds, an error), and ends after every reliable reader
acknowledged what was sent. The folder/video side is :mod:`aetherscan_ros.node.play_frames`.
"""

import importlib
import signal
import sys
import time
from typing import Dict, List

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from aetherscan_ros.cli.common import CliError, EXIT_FAILED, EXIT_OK

NS_PER_S = 1_000_000_000
CLOCK_PERIOD_S = 0.025  # /clock at 40 Hz between messages, as `ros2 bag play --clock`
ACK_TIMEOUT_S = 5.0
LOOP_GAP_NS = NS_PER_S // 10  # --loop: bag time between the end of a pass and the next
SETTLE_S = 0.5  # after the first subscriber: let the node finish matching before data flows


def qos_for(topic: str, depth: int = 10) -> QoSProfile:
    """Return the publisher QoS of ``topic``: reliable; ``/tf_static`` transient-local."""
    if topic == '/tf_static':
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                          reliability=ReliabilityPolicy.RELIABLE,
                          durability=DurabilityPolicy.TRANSIENT_LOCAL)
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                      reliability=ReliabilityPolicy.RELIABLE)


def message_class(type_name: str):
    """Return the rclpy message class of ``pkg/msg/Name``."""
    pkg, _, name = type_name.replace('/msg/', '/').partition('/')
    try:
        return getattr(importlib.import_module(f'{pkg}.msg'), name)
    except (ImportError, AttributeError):
        raise CliError(f'message type {type_name} is not available in this ROS install',
                       EXIT_FAILED) from None


def restamp(msg, offset_ns: int, frame_id: str = '') -> None:
    """Shift the header stamps of ``msg`` (TFMessage: of each transform); set ``frame_id``."""
    from aetherscan_ros.ros.stamps import ns_to_stamp, stamp_to_ns
    headers = [t.header for t in msg.transforms] if hasattr(msg, 'transforms') else [msg.header]
    for header in headers:
        if offset_ns:
            header.stamp = ns_to_stamp(stamp_to_ns(header.stamp) + offset_ns)
        if frame_id and not hasattr(msg, 'transforms'):
            header.frame_id = frame_id


class Publishing:
    """The replay's node, its publishers and the clock; ``close`` ends it cleanly."""

    def __init__(self, use_clock: bool):
        import rclpy
        from rclpy.signals import SignalHandlerOptions
        rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
        self.node = rclpy.create_node('aetherscan_play')
        self._pubs: Dict[str, object] = {}
        self.counts: Dict[str, int] = {}
        self._clock_pub = None
        self._clock_msg = None
        self._last_clock = 0.0
        self._clock_ns = 0  # the newest time sent: /clock never goes back
        if use_clock:
            from rosgraph_msgs.msg import Clock
            self._clock_msg = Clock
            self._clock_pub = self.node.create_publisher(Clock, '/clock', qos_for('/clock', 1))

    def publisher(self, topic: str, msg_type):
        """Return (creating once) the publisher of ``topic``."""
        if topic not in self._pubs:
            self._pubs[topic] = self.node.create_publisher(msg_type, topic, qos_for(topic))
            self.counts[topic] = 0
        return self._pubs[topic]

    def publish(self, topic: str, msg_type, msg) -> None:
        """Publish ``msg`` (a message or its CDR bytes) on ``topic``."""
        self.publisher(topic, msg_type).publish(msg)
        self.counts[topic] += 1

    def clock(self, now_ns: int, force: bool = False) -> None:
        """Publish ``now_ns`` on ``/clock`` (at most every CLOCK_PERIOD_S unless ``force``)."""
        if self._clock_pub is None:
            return
        wall = time.monotonic()
        if not force and wall - self._last_clock < CLOCK_PERIOD_S:
            return
        from aetherscan_ros.ros.stamps import ns_to_stamp
        self._clock_ns = max(self._clock_ns, int(now_ns))
        self._clock_pub.publish(self._clock_msg(clock=ns_to_stamp(self._clock_ns)))
        self._last_clock = wall

    def wait_for_subscriber(self, topics: List[str], timeout_s: float) -> None:
        """Return once one of ``topics`` has a subscriber; CliError after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while not any(self._pubs[t].get_subscription_count() for t in topics):
            if time.monotonic() > deadline:
                raise CliError(f'no subscriber on {", ".join(topics)} after {timeout_s:g} s: is '
                               'the node running and listening there (its image_topics '
                               'parameter, image_transport)?', EXIT_FAILED)
            time.sleep(0.05)
        time.sleep(SETTLE_S)

    def pace(self, due_wall: float, sim_ns_at) -> None:
        """Sleep until monotonic ``due_wall``, publishing ``/clock`` = ``sim_ns_at(wall)``."""
        while True:
            now = time.monotonic()
            self.clock(sim_ns_at(now))
            if now >= due_wall:
                return
            time.sleep(min(due_wall - now, CLOCK_PERIOD_S))

    @staticmethod
    def note(text: str) -> None:
        """Write one progress line to stderr."""
        sys.stderr.write(f'aetherscan play: {text}\n')
        sys.stderr.flush()

    def close(self) -> None:
        """Wait (bounded) for reliable readers to acknowledge, then destroy the node."""
        import rclpy
        from rclpy.duration import Duration
        try:
            for pub in self._pubs.values():
                pub.wait_for_all_acked(Duration(seconds=ACK_TIMEOUT_S))
        finally:
            self.node.destroy_node()
            rclpy.try_shutdown()


def renamed(topic: str, image_topics: List[str], args) -> str:
    """Return the published name of a bag topic after ``--topic`` / ``--namespace``."""
    from aetherscan_ros.files.bag import camera_info_topic, TF_TOPICS
    if topic in TF_TOPICS:
        return topic
    new_image = (args.topic or '').rstrip('/')
    if new_image:
        image = image_topics[0]
        compressed = image.endswith('/compressed')
        target = new_image + ('/compressed' if compressed and
                              not new_image.endswith('/compressed') else '')
        if topic == image:
            return target
        if topic == camera_info_topic(image):
            return camera_info_topic(target)
        return topic
    ns = (args.namespace or '').rstrip('/')
    return f'{ns}{topic}' if ns else topic


def play_bag(args, pub_factory=Publishing) -> int:
    """Replay a bag's image topics, their camera_info and TF at ``--rate`` x realtime."""
    from aetherscan_ros.files.bag import (
        BagError, CAMERA_INFO_TYPE, camera_info_topic, iter_messages, open_bag, resolve_bag,
        select_image_topics, TF_TOPICS, TF_TYPE)
    try:
        bag = resolve_bag(args.source)
        reader = open_bag(bag)
    except BagError as exc:
        raise CliError(str(exc)) from None
    try:
        types = {c.topic: c.msgtype for c in reader.connections}
        try:
            images = select_image_topics(bag, types, args.topics or ())
        except BagError as exc:
            raise CliError(str(exc)) from None
        if args.topic and len(images) != 1:
            raise CliError(f'--topic renames one image topic, but {bag} has {len(images)} '
                           f'({", ".join(images)}): pick one with --topics or use --namespace')
        infos = [camera_info_topic(t) for t in images
                 if types.get(camera_info_topic(t)) == CAMERA_INFO_TYPE]
        tfs = [t for t in TF_TOPICS if types.get(t) == TF_TYPE]
        topics = [*images, *infos, *tfs]
        names = {t: renamed(t, images, args) for t in topics}
        classes = {t: message_class(types[t]) for t in topics}
        start_ns, end_ns = int(reader.start_time), int(reader.end_time)
        lo = start_ns + round((args.start or 0.0) * NS_PER_S)
        hi = end_ns + 1 if args.end is None else start_ns + round(args.end * NS_PER_S)
        if next(iter_messages(reader, images, bag, lo, hi), None) is None:
            raise CliError(f'{bag}: no images on {", ".join(images)} between '
                           f'{args.start or 0.0:g} s and '
                           f'{"the end" if args.end is None else f"{args.end:g} s"}')
        out = pub_factory(args.clock)
        try:
            for t in topics:
                out.publisher(names[t], classes[t])
            image_names = [names[t] for t in images]
            out.note(f'waiting for a subscriber on {", ".join(image_names)} '
                     f'(up to {args.wait:g} s)')
            out.wait_for_subscriber(image_names, args.wait)
            clock = ' and /clock' if args.clock else ''
            out.note(f'playing {bag} at {args.rate or 1.0:g}x: '
                     f'{", ".join(names[t] for t in topics)}{clock}')
            loop, span = 0, min(hi, end_ns) - lo + LOOP_GAP_NS
            while True:
                _play_once(out, reader, bag, topics, names, classes, lo, hi, loop * span, args,
                           iter_messages, span if args.loop else 0)
                loop += 1
                if not args.loop:
                    break
            sent = sum(out.counts.get(names[t], 0) for t in images)
            out.note(f'done: {sent} images published' + (f' in {loop} loops' if loop > 1 else ''))
        finally:
            out.close()
    finally:
        reader.close()
    return EXIT_OK


def _play_once(out, reader, bag, topics, names, classes, lo, hi, offset, args, iter_messages,
               span_ns):
    """
    Publish the bag's messages in ``[lo, hi)`` once, bag time shifted by ``offset``.

    ``span_ns`` > 0 (``--loop``): return only when that much bag time has passed (the next
    loop's time follows on).
    """
    from rclpy.serialization import deserialize_message
    wall0 = time.monotonic()
    rate = float(args.rate or 1.0)

    def sim_at(wall: float) -> int:
        return lo + offset + int((wall - wall0) * rate * NS_PER_S)

    out.clock(lo + offset, force=True)
    for topic, _typ, t_ns, raw in iter_messages(reader, topics, bag, lo, hi):
        out.pace(wall0 + (t_ns - lo) / NS_PER_S / rate, sim_at)
        out.clock(t_ns + offset, force=True)
        frame_id = args.frame_id if topic not in ('/tf', '/tf_static') else ''
        if offset or frame_id:
            msg = deserialize_message(bytes(raw), classes[topic])
            restamp(msg, offset, frame_id)
        else:
            msg = bytes(raw)
        out.publish(names[topic], classes[topic], msg)
    if span_ns:
        out.pace(wall0 + span_ns / NS_PER_S / rate, sim_at)


def run_play(args) -> int:
    """Run ``aetherscan play``; return the exit status."""
    from aetherscan_ros.cli.replay_source import source_kind
    if args.rate is not None and not args.rate > 0:
        raise CliError(f'--rate {args.rate:g}: must be > 0')
    if not args.wait >= 0:
        raise CliError(f'--wait {args.wait:g}: must be >= 0 seconds')
    kind = source_kind(args.source)
    if kind == 'bag' and (args.camera_info or args.intrinsics):
        raise CliError('--camera-info/--intrinsics are for folders and videos: a bag brings '
                       'its camera_info topics')
    for flag, value in (('--start', args.start), ('--end', args.end)):
        if value is not None and not value >= 0:
            raise CliError(f'{flag} {value:g}: give seconds from the start of the bag, >= 0')
    if args.start is not None and args.end is not None and args.end <= args.start:
        raise CliError(f'--end {args.end:g} s is not after --start {args.start:g} s')
    if kind != 'bag':
        for flag, value in (('--topics', args.topics), ('--start', args.start),
                            ('--end', args.end)):
            if value:
                raise CliError(f'{flag} selects from a bag; {args.source} is a {kind} source')
    # SIGTERM (systemd, docker, a test harness) ends the replay as Ctrl-C does: cleanly
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        if kind == 'bag':
            return play_bag(args)
        from aetherscan_ros.node.play_frames import play_frames
        return play_frames(args, kind, Publishing)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum, frame):
    raise KeyboardInterrupt
