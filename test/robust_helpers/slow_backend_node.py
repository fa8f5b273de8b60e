# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Run the real ``aetherscan_ros.node.main()`` with a backend whose reconstruction takes long.

Used by the signal tests: ``create_backend`` is replaced (in this process only) by one that
returns :class:`BusyBackend`, which keeps a CPU busy with numpy work for ``--busy`` seconds
(native code, like COLMAP or torch would) before returning a small valid result. Everything
else (parameters, subscriptions, signal handling, shutdown) is the production code path.

``python slow_backend_node.py --busy 120 -- --ros-args -p image_topics:=[...]``
"""

import argparse
import sys
import time

import numpy as np

from aetherscan_ros.backends.base import Frame, ProgressEvent, result_from_view_clouds, ViewCloud


class BusyBackend:
    """A backend that computes for ``seconds`` (in native numpy code) per reconstruction."""

    name = 'busy_test'
    device = 'cpu'

    def __init__(self, seconds: float, native: float = 0.0):
        self.seconds = float(seconds)
        self.native = float(native)

    def describe(self) -> str:
        """Return a one-line description."""
        return f'test backend busy for {self.seconds:.0f} s per reconstruction'

    def reconstruct(self, frames, progress=None):
        """Multiply matrices for ``seconds``, then return one point per view."""
        frames = list(frames)
        a = np.random.default_rng(0).standard_normal((400, 400))
        if progress is not None and self.native:
            progress(ProgressEvent('native', 0.1, 'one long native call'))
        end = time.monotonic() + self.native
        while time.monotonic() < end:  # like one COLMAP stage: no progress, no way to cancel
            a = np.tanh(a @ a.T / 400.0)
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            a = np.tanh(a @ a.T / 400.0)
            if progress is not None:
                progress(ProgressEvent('forward', 0.5, 'busy'))
        clouds = [ViewCloud(i, np.array([[0.0, 0.0, 1.0 + i]], np.float32),
                            np.array([[255, 0, 0]], np.uint8), np.ones(1, np.float32))
                  for i in range(len(frames))]
        poses = np.repeat(np.eye(4)[None], len(frames), 0)
        ks = np.stack([np.array([[50.0, 0, 32], [0, 50.0, 24], [0, 0, 1]])] * len(frames))
        sizes = np.array([Frame.size.fget(f) for f in frames])
        return result_from_view_clouds(clouds, poses, ks, sizes, self.name)


def main(argv=None):
    """Patch the backend factory, then run the node's own ``main`` with the ROS arguments."""
    argv = list(sys.argv[1:] if argv is None else argv)
    ros_args = argv[argv.index('--') + 1:] if '--' in argv else []
    own = argv[:argv.index('--')] if '--' in argv else argv
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--busy', type=float, default=120.0)
    parser.add_argument('--native', type=float, default=0.0,
                        help='first compute this long without any progress call')
    parser.add_argument('--slow-save', type=float, default=0.0,
                        help='~/save: sleep this long before rendering the preview')
    args = parser.parse_args(own)

    import aetherscan_ros.backends as backends
    backends.create_backend = lambda *a, **k: (BusyBackend(args.busy, args.native),
                                               'test: busy backend')
    if args.slow_save:
        from aetherscan_ros.files import preview
        real = preview.render_preview

        def slow_preview(*a, **k):
            time.sleep(args.slow_save)
            return real(*a, **k)
        preview.render_preview = slow_preview
    from aetherscan_ros import node
    node.main(args=[sys.argv[0], *ros_args])


if __name__ == '__main__':
    main()
