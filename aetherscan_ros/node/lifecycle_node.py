# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
``aetherscan_lifecycle_node``: the reconstruction node as a managed (lifecycle) node.

The same collaborators as :class:`~aetherscan_ros.node.aetherscan_node.AetherscanNode`, built
and torn down by the lifecycle transitions (REP-2002 / ``lifecycle_msgs``):

============  =======================================================================
unconfigured  parameters only (``ros2 param set`` works, nothing else exists)
configure     publishers, services, subscriptions, timers and the worker are created; the
              backend is loaded in the background as in the plain node
active        images are taken and reconstructions start (and ``enabled`` must be true)
deactivate    images are counted and dropped, buffered keyframes stay, a running
              reconstruction finishes and publishes
cleanup       the running reconstruction is cancelled and waited for, a ``~/save`` in
              progress is waited for, every entity created by configure is destroyed
shutdown      as cleanup from any state; the process then exits (code 0)
============  =======================================================================

A failure while configuring (e.g. an output directory that cannot be created) is logged with
its reason, whatever was created is destroyed, and the node stays unconfigured.
"""

from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn

from aetherscan_ros.node.aetherscan_node import NODE_NAME, NodeWiring


class AetherscanLifecycleNode(NodeWiring, LifecycleNode):
    """The managed variant of ``aetherscan_node`` (see the module docstring)."""

    def __init__(self, backend_factory=None, **kwargs):
        """Declare the parameters; nothing else exists until ``configure``."""
        super().__init__(NODE_NAME, **kwargs)
        self._declare(backend_factory)
        self._active = False
        self.finalized = False

    def inputs_open(self) -> bool:
        """Images are taken only while active (and ``enabled``)."""
        return self._active and self.config.enabled

    def paused_reason(self) -> str:
        """Say why inputs are closed: the lifecycle state first, then ``enabled``."""
        if not self._active:
            return 'inactive (lifecycle: activate the node to take images and reconstruct)'
        return super().paused_reason()

    def on_configure(self, state) -> TransitionCallbackReturn:
        """Create the collaborators; on failure destroy what exists and stay unconfigured."""
        try:
            self._wire()
        except Exception as exc:  # noqa: B902 - any failure is a failed transition, reported
            self.get_logger().error(f'configure failed: {type(exc).__name__}: {exc}')
            self._unwire()
            return TransitionCallbackReturn.FAILURE
        self.outputs.event('lifecycle', state='inactive', transition='configure')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state) -> TransitionCallbackReturn:
        """Open the inputs; keyframes buffered before a deactivation may start a job now."""
        self._active = True
        self.outputs.event('lifecycle', state='active', transition='activate')
        self.maybe_auto_trigger()
        return super().on_activate(state)

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        """Close the inputs; the buffer and a running reconstruction are kept."""
        self._active = False
        self.outputs.event('lifecycle', state='inactive', transition='deactivate')
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        """Stop the work and destroy every entity ``configure`` created."""
        self._active = False
        stopped = self._unwire()
        if not stopped:
            self.get_logger().error('cleanup: the running reconstruction did not stop in time')
            return TransitionCallbackReturn.ERROR
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        """Stop and destroy as cleanup does; ``main`` then leaves its spin loop."""
        self._active = False
        stopped = self._unwire() if self.wired else True
        self.finalized = True
        return TransitionCallbackReturn.SUCCESS if stopped else TransitionCallbackReturn.ERROR

    def on_error(self, state) -> TransitionCallbackReturn:
        """Stop and destroy after an error in a transition; the node returns to unconfigured."""
        self._active = False
        if self.wired:
            self._unwire()
        return TransitionCallbackReturn.SUCCESS
