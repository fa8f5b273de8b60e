# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
``main()`` of ``aetherscan_node``: init, spin a SingleThreadedExecutor, shut down cleanly.

Signals: the node handles SIGINT and SIGTERM itself instead of letting rclpy shut the context
down from its signal handler. A signal only sets a flag; the spin loop sees it within
:data:`SPIN_STEP_S`, then, with the context still valid, the running reconstruction is
cancelled and waited for, a ``~/save`` in progress is waited for, and only then is the node
destroyed and rclpy shut down. So a signal at any moment (idle, mid-reconstruction,
mid-save, a second SIGINT from ``ros2 launch`` after the terminal's) exits 0 with no
traceback, no "publisher's context is invalid" error and no thread left in native code.
"""

import os
import signal
import sys
import threading

import rclpy
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

from aetherscan_ros.node.aetherscan_node import AetherscanNode, NODE_NAME

SPIN_STEP_S = 0.1  # the executor returns at least this often to look at the shutdown flag
FLUSH_STEPS = 10  # executor steps after close(): a ~/save that finished still gets its answer


class ShutdownRequest:
    """SIGINT/SIGTERM set a flag the spin loop checks; repeated signals change nothing."""

    def __init__(self):
        self.event = threading.Event()
        self.signal_name = ''
        self.count = 0

    def install(self):
        """Handle SIGINT and SIGTERM (main thread only, as Python requires)."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame):
        self.count += 1
        if not self.event.is_set():
            self.signal_name = signal.Signals(signum).name
            self.event.set()


def init_rclpy(args=None):
    """``rclpy.init`` without rclpy's signal handlers (Humble has no option: ours replace them)."""
    try:
        from rclpy.signals import SignalHandlerOptions
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    except (ImportError, TypeError):  # Humble: rclpy.init installs its SIGINT handler
        rclpy.init(args=args)


def main(args=None, lifecycle: bool = False):
    """
    Run the node until Ctrl-C or SIGTERM (``ros2 run aetherscan_ros aetherscan_node``).

    ``lifecycle``: run the managed variant (``aetherscan_lifecycle_node``) instead; it also
    ends when its ``shutdown`` transition has run.
    """
    request = ShutdownRequest()
    request.install()  # before init: a signal during start-up is a clean stop as well
    init_rclpy(args)
    request.install()  # again, over the handler Humble's rclpy.init installs
    node = executor = None
    code = 0
    stopped = True
    try:
        if lifecycle:
            from aetherscan_ros.node.lifecycle_node import AetherscanLifecycleNode
            node = AetherscanLifecycleNode()
        else:
            node = AetherscanNode()
        # Every callback is short (the backend runs on the node's own worker thread). The
        # MultiThreadedExecutor of rclpy Jazzy busy-polls: in bench_soak it used a full core
        # and dropped ~70 % of 4 x 30 Hz image streams; this executor received all of them.
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        while rclpy.ok() and not request.event.is_set() and \
                not getattr(node, 'finalized', False):
            executor.spin_once(timeout_sec=SPIN_STEP_S)
        if request.signal_name:
            node.get_logger().info(f'shutting down ({request.signal_name})')
    except ExternalShutdownException:
        pass
    except (ValueError, ParameterException) as exc:  # bad initial parameters: the reason
        rclpy.logging.get_logger(NODE_NAME).fatal(f'invalid parameters: {exc}')
        code = 2
    finally:
        if node is not None:
            stopped = node.close()
            if executor is not None:  # answer the service calls whose work just finished
                for _ in range(FLUSH_STEPS):
                    executor.spin_once(timeout_sec=0.02)
            node.destroy_node()
        rclpy.try_shutdown()
    if not stopped:
        # A thread is still inside a native call: a normal interpreter exit would run static
        # destructors under it and crash. Leave without them.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    if code:
        raise SystemExit(code)


if __name__ == '__main__':
    main()
