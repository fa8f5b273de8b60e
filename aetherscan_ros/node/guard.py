# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""Throttled warnings and callback guards: one bad message never ends the node."""

import re
import threading
import time
import traceback
from typing import Callable, Dict, Tuple

LOG_THROTTLE_S = 5.0
_THROTTLE_KEYS_MAX = 512  # distinct (topic, reason) throttle entries kept before pruning


def reason_kind(exc: Exception) -> str:
    """Return the reason of ``exc`` with numbers masked: the throttling key of a problem."""
    return re.sub(r'[0-9.]+', '#', str(exc))[:100]


class Guard:
    """
    Throttled warnings and exception guards for the callbacks of one node.

    ``count(key)`` is called for every callback exception (``callback_errors``).
    """

    def __init__(self, node, count: Callable[[str], None]):
        self._node = node
        self._count = count
        self._lock = threading.Lock()
        self._throttle: Dict[Tuple[str, ...], Tuple[float, int]] = {}

    def warn(self, key: Tuple[str, ...], text: str, period: float = LOG_THROTTLE_S):
        """Log ``text`` at most once per ``period`` s per key, with the suppressed count."""
        now = time.monotonic()
        with self._lock:
            if len(self._throttle) > _THROTTLE_KEYS_MAX:  # bound memory under odd input
                self._throttle = {k: v for k, v in self._throttle.items()
                                  if now - v[0] < LOG_THROTTLE_S}
            last, suppressed = self._throttle.get(key, (-1e9, 0))
            if now - last < period:
                self._throttle[key] = (last, suppressed + 1)
                return
            self._throttle[key] = (now, 0)
        more = f' ({suppressed} similar suppressed)' if suppressed else ''
        self._node.get_logger().warning(text + more)

    def wrap(self, what: str, handler, with_info: bool = False, service: bool = False):
        """
        Wrap a callback so that an unexpected exception is logged and counted, never raised.

        rclpy's executors re-raise callback exceptions from ``spin()``, which would end the
        node. A service handler returns ``success=False`` with the reason instead.
        ``with_info``: the subscription callback takes ``(msg, message_info)``.
        """
        node = self._node

        def run(*args):
            try:
                return handler(*args)
            except Exception as exc:  # noqa: B902 - the node must outlive any single message
                if not node.context.ok():  # shutting down: rcl calls fail, nothing to report
                    return args[1] if service else None
                self._count('callback_errors')
                self.warn(('callback', what, type(exc).__name__),
                          f'{what}: unexpected {type(exc).__name__} in the callback: {exc} '
                          '(ignored, the node keeps running; details at debug level)')
                node.get_logger().debug(traceback.format_exc())
                if service:
                    response = args[1]
                    response.success = False
                    response.message = f'{what} failed: {type(exc).__name__}: {exc}'
                    return response
                return None
        if with_info:  # rclpy passes MessageInfo only to a callback of exactly two parameters
            return lambda msg, info: run(msg, info)
        return run
