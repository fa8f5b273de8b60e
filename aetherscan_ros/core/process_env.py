# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Environment for processes that build or receive large clouds (no rclpy needed).

* Huge-page malloc: glibc (2.35 and newer) maps large allocations with transparent huge pages
  when ``GLIBC_TUNABLES`` holds ``glibc.malloc.hugetlb=1`` at process start. Every new Python
  buffer of a large message (``msg.data``, rclpy's copy of it while publishing) then costs a
  few hundred page faults instead of one per 4 KiB page: a fresh 120 MB buffer 18 ms instead
  of 76 ms on the bench machine (``make bench``). The kernel must allow THP in ``madvise``
  (the usual default) or ``always`` mode; elsewhere the tunable is ignored, as are unknown
  tunables on older glibc. The launch file sets it for the node (``hugepage_malloc``).
* Fast DDS large-data profile: ``config/fastdds_large_data.xml`` (see docs/point_streaming.md).
"""

import os
from typing import Dict, Mapping, Optional

HUGEPAGE_TUNABLE = 'glibc.malloc.hugetlb'
_THP_MODE = '/sys/kernel/mm/transparent_hugepage/enabled'


def with_hugepage_malloc(environ: Mapping[str, str]) -> Dict[str, str]:
    """
    Return ``{'GLIBC_TUNABLES': ...}`` with ``glibc.malloc.hugetlb=1`` added to ``environ``'s.

    A ``glibc.malloc.hugetlb`` value the user already set is kept as is.
    """
    current = [t for t in environ.get('GLIBC_TUNABLES', '').split(':') if t]
    if not any(t.split('=', 1)[0] == HUGEPAGE_TUNABLE for t in current):
        current.append(f'{HUGEPAGE_TUNABLE}=1')
    return {'GLIBC_TUNABLES': ':'.join(current)}


def hugepage_malloc_state(environ: Optional[Mapping[str, str]] = None) -> str:
    """Describe whether this process's large allocations use huge pages (for logs, doctor)."""
    environ = os.environ if environ is None else environ
    tunables = dict(t.split('=', 1) for t in environ.get('GLIBC_TUNABLES', '').split(':')
                    if '=' in t)
    value = tunables.get(HUGEPAGE_TUNABLE)
    try:
        with open(_THP_MODE) as handle:
            mode = handle.read().split('[', 1)[1].split(']', 1)[0]
    except (OSError, IndexError):
        mode = 'unknown'
    if mode == 'always':
        return 'on (kernel THP mode always)'
    if mode == 'never':
        return 'off (kernel THP mode never)'
    if value in ('1', '2'):
        return f'on ({HUGEPAGE_TUNABLE}={value}, kernel THP mode {mode})'
    return (f'off (kernel THP mode {mode}: set GLIBC_TUNABLES={HUGEPAGE_TUNABLE}=1 before the '
            'process starts)')
