# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Keep the process's SIGINT/SIGTERM handlers when a native library installs its own.

pycolmap (through glog's ``InstallFailureSignalHandler``) replaces the SIGTERM action when it
is imported: a later SIGTERM (systemd, ``docker stop``, ``ros2 launch``) then dumps a stack
trace and aborts (exit 134/143) instead of reaching the node's clean shutdown. The action is
saved before such an import and put back after it, at the C level (``sigaction``), so it
works from any thread; glog keeps its handlers for crash signals (SIGSEGV, SIGABRT...).
"""

from contextlib import contextmanager
import ctypes
import ctypes.util
import logging
import signal
from typing import Iterator, Sequence

_LOG = logging.getLogger(__name__)

TERMINATION_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_SIGACTION_BYTES = 512  # larger than struct sigaction on every Linux ABI (152 on x86-64)


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or None, use_errno=True)
        return libc if hasattr(libc, 'sigaction') else None
    except OSError:  # pragma: no cover - no C library to talk to
        return None


def signal_action(signum: int) -> bytes:
    """Return the raw ``struct sigaction`` installed for ``signum`` (empty if unavailable)."""
    libc = _libc()
    if libc is None:
        return b''
    buf = ctypes.create_string_buffer(_SIGACTION_BYTES)
    if libc.sigaction(int(signum), None, buf) != 0:
        return b''
    return buf.raw


@contextmanager
def preserve_signal_handlers(signals: Sequence[int] = TERMINATION_SIGNALS) -> Iterator[None]:
    """Run the body, then restore the actions ``signals`` had before it (if it changed them)."""
    libc = _libc()
    saved = {}
    if libc is not None:
        for signum in signals:
            buf = ctypes.create_string_buffer(_SIGACTION_BYTES)
            if libc.sigaction(int(signum), None, buf) == 0:
                saved[signum] = buf
    try:
        yield
    finally:
        for signum, buf in saved.items():
            if signal_action(signum) != buf.raw:
                _LOG.debug('restoring the %s handler replaced by a native library',
                           signal.Signals(signum).name)
                libc.sigaction(int(signum), buf, None)
