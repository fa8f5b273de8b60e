# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
``aetherscan call`` and ``aetherscan events``: the node's services and events from a terminal.

``call SERVICE`` calls a ``std_srvs/Trigger`` service of the node (``reconstruct``, ``save``,
``reset``, ``pause``, ``resume``, or any other Trigger service under the node; a name starting
with ``/`` is taken as it is), prints ``success`` and ``message`` and exits 0 on success, 1 on
a refusal or when the service does not answer in time, 2 when the node has no such Trigger
service. ``events`` prints the node's ``~/events`` (JSON, one object per line) on stdout: the
recent history the topic keeps (transient-local), then, with ``--follow``, new ones until
``--count`` or Ctrl-C; ``progress`` events also as a human line on stderr.
"""

import json
import sys
import time
from typing import Dict, List, Optional

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from aetherscan_ros.cli.common import CliError, EXIT_FAILED, EXIT_OK

TRIGGER_TYPE = 'std_srvs/srv/Trigger'
EVENT_HISTORY = 100  # node/outputs.py: ~/events is reliable, transient-local, depth 100
QUIET_S = 0.5  # without --follow: stop once the history stopped arriving for this long
SETTLE_S = 2.0  # a node's service list is complete this long after the node appears


def _init(name: str):
    import rclpy
    from rclpy.signals import SignalHandlerOptions
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    return rclpy.create_node(name)


def _close(node) -> None:
    import rclpy
    node.destroy_node()
    rclpy.try_shutdown()


def service_name(node_name: str, service: str) -> str:
    """Return the full name of ``service`` (relative names live under ``node_name``)."""
    if service.startswith('/'):
        return service
    return f'{node_name.rstrip("/")}/{service.lstrip("~/")}'


def node_services(node, node_name: str) -> Optional[Dict[str, List[str]]]:
    """Return ``{service: types}`` served by ``node_name``, or None while it is not visible."""
    namespace, _, base = node_name.rpartition('/')
    try:
        return {name: list(types) for name, types in
                node.get_service_names_and_types_by_node(base, namespace or '/')}
    except Exception:  # noqa: B902 - rclpy raises NodeNameNonExistentError (not exported)
        return None


def _missing(name: str, node_name: str, served: Dict[str, List[str]]) -> Optional[CliError]:
    """Return the error for a service the (visible) node does not serve as a Trigger."""
    if TRIGGER_TYPE in served.get(name, []):
        return None
    if name in served:
        return CliError(f'{name} is a {", ".join(served[name])} service, not {TRIGGER_TYPE}')
    prefix = node_name.rstrip('/') + '/'
    known = sorted(n[len(prefix):] for n, types in served.items()
                   if n.startswith(prefix) and TRIGGER_TYPE in types)
    return CliError(f'{node_name} has no Trigger service {name.rpartition("/")[2]} (its '
                    f'Trigger services: {", ".join(known) or "none"})')


def wait_for_trigger(node, client, name: str, node_name: str, timeout_s: float) -> None:
    """
    Return once ``name`` is ready; raise :class:`CliError` when it cannot be.

    Exit 2 (at once, once the node has been visible for ``SETTLE_S``) when the node serves no
    Trigger service of that name; exit 1 when nothing answers within ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    seen_since = None
    while not client.wait_for_service(timeout_sec=0.2):
        served = node_services(node, node_name)
        now = time.monotonic()
        if served is not None:
            seen_since = seen_since or now
            error = _missing(name, node_name, served)
            if error is not None and now - seen_since > SETTLE_S:
                raise error
        if now > deadline:
            if served is None:
                raise CliError(f'node {node_name} not found within {timeout_s:g} s: is it '
                               'running (same ROS_DOMAIN_ID)?', EXIT_FAILED)
            raise CliError(f'service {name} did not become ready within {timeout_s:g} s',
                           EXIT_FAILED)


def run_call(args) -> int:
    """Run ``aetherscan call``; return the exit status."""
    import rclpy
    from std_srvs.srv import Trigger
    node_name = '/' + args.node.strip('/')
    name = service_name(node_name, args.service)
    node = _init('aetherscan_call')
    try:
        client = node.create_client(Trigger, name)
        wait_for_trigger(node, client, name, node_name, args.timeout)
        future = client.call_async(Trigger.Request())
        rclpy.spin_until_future_complete(node, future, timeout_sec=args.timeout)
        if not future.done():
            client.remove_pending_request(future)
            raise CliError(f'{name} did not answer within {args.timeout:g} s', EXIT_FAILED)
        response = future.result()
    finally:
        _close(node)
    if args.json:
        print(json.dumps({'service': name, 'success': bool(response.success),
                          'message': response.message}))
    else:
        print(f'{name}: {"success" if response.success else "FAILED"}: {response.message}')
    return EXIT_OK if response.success else EXIT_FAILED


def progress_line(event: dict) -> str:
    """Return the human line of a ``progress`` event ('' for other events)."""
    if event.get('event') != 'progress':
        return ''
    fraction = float(event.get('fraction', 0.0) or 0.0)
    message = f' {event["message"]}' if event.get('message') else ''
    return (f'[{fraction * 100:5.1f}%] reconstruction #{event.get("reconstruction", "?")} '
            f'{event.get("stage", "")}{message}')


def run_events(args) -> int:
    """Run ``aetherscan events``; return the exit status."""
    import rclpy
    from std_msgs.msg import String
    topic = '/' + args.node.strip('/') + '/events'
    if args.count is not None and args.count < 1:
        raise CliError(f'--count {args.count}: must be >= 1')
    printed = []
    last = [time.monotonic()]

    def on_event(msg):
        try:
            event = json.loads(msg.data)
        except ValueError:
            event = {'event': 'unparsable', 'data': msg.data}
        if args.count is not None and len(printed) >= args.count:
            return
        if args.type and event.get('event') not in args.type:
            return
        printed.append(event)
        last[0] = time.monotonic()
        sys.stdout.write(json.dumps(event) + '\n')
        sys.stdout.flush()
        line = progress_line(event)
        if line:
            sys.stderr.write(line + '\n')

    node = _init('aetherscan_events')
    try:
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=EVENT_HISTORY,
                         reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
        sub = node.create_subscription(String, topic, on_event, qos)
        deadline = time.monotonic() + args.timeout
        while sub.get_publisher_count() == 0:
            if time.monotonic() > deadline:
                raise CliError(f'no publisher on {topic} after {args.timeout:g} s: is the node '
                               f'{args.node} running (same ROS_DOMAIN_ID)?', EXIT_FAILED)
            rclpy.spin_once(node, timeout_sec=0.05)
        last[0] = time.monotonic()
        while args.count is None or len(printed) < args.count:
            rclpy.spin_once(node, timeout_sec=0.05)
            quiet = time.monotonic() - last[0]
            if not args.follow and args.count is None and quiet > QUIET_S:
                break
            if not args.follow and args.count is not None and quiet > args.timeout:
                raise CliError(f'{len(printed)} of {args.count} events on {topic} within '
                               f'{args.timeout:g} s', EXIT_FAILED)
    finally:
        _close(node)
    return EXIT_OK
