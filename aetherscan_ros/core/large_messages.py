# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Malloc settings for processes that receive MB-sized messages (maps, clouds); no rclpy needed.

Every message a subscriber takes is a fresh allocation, several in fact: the middleware's
deserialized copy, and in Python the ``bytes`` and ``array.array`` rclpy builds from it. glibc
serves an allocation above its mmap threshold (128 KiB, raised on the fly to at most 32 MiB)
with a fresh ``mmap`` and gives it back with ``munmap`` when freed, so every large message
costs one page fault per 4 KiB page of every copy: a 24 MB map took ~17,000 faults and
60-80 ms of CPU in the receiving process (measured: ``bench/bench_transport.py`` map rows).
With the mmap threshold above the largest message, the buffers come from the heap and are
reused from message to message: no faults after the first, and the same map arrives in
~30 ms (0.8 GB/s) instead of 70-90 ms.

Two ways to set it, the same effect:

* in a Python process, before the first large message: :func:`tune_malloc_for_large_messages`
  (``mallopt``; glibc only, a no-op elsewhere);
* for any process (RViz, C++ nodes, ``ros2 run``), in its environment at start:
  ``GLIBC_TUNABLES=glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=536870912``
  (:func:`with_large_message_malloc` merges it into an environment).

The price: freed message buffers stay in the process (up to the trim threshold) instead of
going back to the kernel at once, so RSS stays at its peak instead of moving up and down with
every message. A fixed threshold also turns off glibc's adaptive one.

The **mapping node** wants the opposite (:data:`NODE_TUNABLES`, :func:`with_node_malloc`;
the node sets it itself at start with :func:`tune_malloc_for_mapping_node`):
its map arrays grow a little with every window, and under glibc's adaptive threshold each new
size lands in the heap beside the freed older ones, which the heap cannot give back: in a
5-minute mapping soak (``bench/bench_soak_mapping.py``, the same walk and a 640k-point map)
the node's RSS grew 252 -> 633 MiB (+67 MiB/min at the end) with the default malloc and
228 -> 334 MiB (+13 MiB/min, about what the map itself grew) with a fixed 1 MiB mmap
threshold, which maps every large array on its own and unmaps it when freed.
"""

import ctypes
import ctypes.util
import logging
import sys
from typing import Dict, Mapping, Optional

LOG = logging.getLogger(__name__)

MMAP_THRESHOLD = 256 * 2 ** 20  # messages up to 256 MiB (a 10M-point cloud) from the heap
TRIM_THRESHOLD = 512 * 2 ** 20  # keep up to this much free heap before returning it
_M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
_M_MMAP_THRESHOLD = -3
TUNABLES = {'glibc.malloc.mmap_threshold': MMAP_THRESHOLD,
            'glibc.malloc.trim_threshold': TRIM_THRESHOLD}
NODE_TUNABLES = {'glibc.malloc.mmap_threshold': 2 ** 20}  # the node: large arrays unmapped


def _merge(environ: Mapping[str, str], tunables: Mapping[str, int]) -> Dict[str, str]:
    current = [t for t in environ.get('GLIBC_TUNABLES', '').split(':') if t]
    names = {t.split('=', 1)[0] for t in current}
    current += [f'{name}={value}' for name, value in tunables.items() if name not in names]
    return {'GLIBC_TUNABLES': ':'.join(current)}


def with_node_malloc(environ: Mapping[str, str]) -> Dict[str, str]:
    """
    Return ``{'GLIBC_TUNABLES': ...}`` for a long-running (mapping) node: :data:`NODE_TUNABLES`.

    Merged like :func:`with_large_message_malloc` (values already set are kept).
    """
    return _merge(environ, NODE_TUNABLES)


def with_large_message_malloc(environ: Mapping[str, str]) -> Dict[str, str]:
    """
    Return ``{'GLIBC_TUNABLES': ...}``: ``environ``'s tunables plus the large-message ones.

    Values the user already set for these two tunables are kept; other tunables (e.g.
    ``glibc.malloc.hugetlb``) are kept as they are.
    """
    return _merge(environ, TUNABLES)


def tune_malloc_for_large_messages(mmap_threshold: int = MMAP_THRESHOLD,
                                   trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """
    Serve allocations up to ``mmap_threshold`` bytes from the reused heap (this process).

    Returns True when glibc took both settings, False where there is no glibc (macOS,
    Windows, musl) or it refused them; never raises.
    """
    if not sys.platform.startswith('linux'):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        LOG.debug('no glibc mallopt here: large-message malloc settings not applied')
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    ok = (mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold)) == 1 and
          mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)) == 1)
    if not ok:
        LOG.debug('mallopt refused mmap_threshold=%d / trim_threshold=%d',
                  mmap_threshold, trim_threshold)
    return ok


def tune_malloc_for_mapping_node(environ: Optional[Mapping[str, str]] = None) -> str:
    """
    Give this process (a mapping node) a fixed 1 MiB mmap threshold (:data:`NODE_TUNABLES`).

    Skipped when ``GLIBC_TUNABLES`` already sets ``glibc.malloc.mmap_threshold`` (the user's
    choice wins) or ``AETHERSCAN_NODE_MALLOC=default`` (glibc's adaptive threshold, e.g. to
    compare). Returns what was done, for the node's start-up log; never raises.
    """
    import os
    environ = os.environ if environ is None else environ
    if 'glibc.malloc.mmap_threshold' in environ.get('GLIBC_TUNABLES', ''):
        return 'mmap threshold from GLIBC_TUNABLES'
    if environ.get('AETHERSCAN_NODE_MALLOC', '') == 'default':
        return 'glibc default (AETHERSCAN_NODE_MALLOC=default)'
    threshold = NODE_TUNABLES['glibc.malloc.mmap_threshold']
    if not sys.platform.startswith('linux'):
        return 'glibc default (not glibc)'
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return 'glibc default (no mallopt)'
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    if mallopt(_M_MMAP_THRESHOLD, threshold) != 1:
        return 'glibc default (mallopt refused)'
    return f'mmap threshold {threshold // 2 ** 20} MiB'
