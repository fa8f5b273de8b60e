# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
What differs between the rclpy of Humble and that of Jazzy/Kilted, in one place.

* ``SubscriptionEventCallbacks`` lives in ``rclpy.event_handler`` since Iron and in
  ``rclpy.qos_event`` on Humble.
* ``Node.add_post_set_parameters_callback`` (run after parameters were set) exists since
  Iron. On Humble :class:`PostSetParameters` runs the callback from the executor right after
  a successful set, through a guard condition triggered by the on-set callback.
* ``rclpy.init(signal_handler_options=...)``: see :func:`aetherscan_ros.node.main.init_rclpy`.
"""

from typing import Callable, List

try:
    from rclpy.event_handler import SubscriptionEventCallbacks
    EVENT_MODULE = 'rclpy.event_handler'
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks
    EVENT_MODULE = 'rclpy.qos_event'

__all__ = ['PostSetParameters', 'SubscriptionEventCallbacks']


class PostSetParameters:
    """``callback(changes)`` after every successful parameter change, on any distro."""

    def __init__(self, node, callback: Callable[[List], None]):
        self._callback = callback
        self._pending: List[List] = []
        self.native = hasattr(node, 'add_post_set_parameters_callback')
        if self.native:
            node.add_post_set_parameters_callback(callback)
            self._guard = None
        else:  # Humble: the values are set once the on-set callback has returned
            self._guard = node.create_guard_condition(self._run_pending)

    def accepted(self, changes: List):
        """Call from the on-set callback when it accepts ``changes`` (no-op where native)."""
        if self._guard is not None:
            self._pending.append(list(changes))
            self._guard.trigger()

    def _run_pending(self):
        while self._pending:
            self._callback(self._pending.pop(0))
