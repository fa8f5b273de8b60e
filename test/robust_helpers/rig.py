# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
A node process plus a receiving monitor for the robustness tests (cross-process).

The node runs as ``python -m aetherscan_ros.node`` in its own process group on the private
ROS_DOMAIN_ID that ``test/conftest.py`` claimed; this process publishes the test input and
receives with :class:`aetherscan_ros.demo.run_demo.NodeMonitor`.
"""

import os
from pathlib import Path
import signal
import time
from typing import Dict, List, Optional

from aetherscan_ros.demo.run_demo import node_command, NodeMonitor, start_process, stop_process


class NodeRig:
    """Start ``aetherscan_node`` with parameter overrides; read its log; stop it."""

    def __init__(self, tmp_path: Path):
        self.tmp = Path(tmp_path)
        self.procs: List = []
        self.monitor = NodeMonitor()
        self.log_path = self.tmp / 'node.log'

    def node(self, **overrides):
        """Start the node process (``output_dir`` defaults to ``tmp/out``); return it."""
        overrides.setdefault('output_dir', str(self.tmp / 'out'))
        proc = start_process(node_command(overrides), self.log_path, dict(os.environ))
        self.procs.append(proc)
        return proc

    def log(self) -> str:
        """Return the node's output so far."""
        return self.log_path.read_text(errors='replace') if self.log_path.exists() else ''

    def diag_int(self, key: str, default: int = 0) -> int:
        """Return an integer value of the node's latest /diagnostics status."""
        try:
            return int(float(self.monitor.diagnostics.get(key, default)))
        except ValueError:
            return default

    def counters(self, keys) -> Dict[str, int]:
        """Return several integer diagnostics values."""
        return {k: self.diag_int(k) for k in keys}

    def wait_log(self, text: str, timeout: float = 10.0) -> bool:
        """Spin until ``text`` appears in the node log."""
        return self.monitor.spin_until(lambda: text in self.log(), timeout)

    def signal(self, proc, sig=signal.SIGTERM, timeout: float = 15.0) -> Optional[float]:
        """Send ``sig`` to the node's process group; return seconds until it exited or None."""
        start = time.monotonic()
        os.killpg(proc.pid, sig)
        end = start + timeout
        while proc.poll() is None:
            if time.monotonic() > end:
                return None
            time.sleep(0.02)
        return time.monotonic() - start

    def close(self):
        """Stop every process and the monitor."""
        for proc in reversed(self.procs):
            stop_process(proc)
        self.monitor.close()
