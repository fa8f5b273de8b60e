# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
``aetherscan_node``: camera images in, streamed PointCloud2 chunks and camera TF out.

The Node class only wires its collaborators together:

* :class:`~aetherscan_ros.node.cameras.CameraInputs`: image/camera_info subscriptions, QoS
  matching, validation, keyframes offered to the buffer;
* :class:`~aetherscan_ros.core.session.ReconstructionSession` (ROS-free): keyframe buffer,
  jobs, results, counters;
* :class:`~aetherscan_ros.node.worker.JobWorker`: the thread that owns the backend and runs
  one reconstruction at a time;
* :class:`~aetherscan_ros.node.outputs.Outputs`: publishers of chunks, cloud, TF, poses,
  markers, events; :class:`~aetherscan_ros.node.diagnostics.Diagnostics`;
  :class:`~aetherscan_ros.node.services.Services`; the parameter table
  :mod:`aetherscan_ros.node.params`.

Threads: subscription, service and timer callbacks run on one executor thread (``main`` uses
a ``SingleThreadedExecutor``: on Jazzy the ``MultiThreadedExecutor`` spent a whole core
busy-polling and received about a third of 4 x 30 Hz camera streams, see
``docs/robustness.md``); they only convert, validate and enqueue, so the node also runs on a
multi-threaded executor. Services and diagnostics stay responsive during a reconstruction.
See the README's node section for the topics, parameters and policies.
"""

from typing import Tuple

from rcl_interfaces.msg import SetParametersResult
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.node import Node

from aetherscan_ros.cloud import PACKER
from aetherscan_ros.core.buffer import FrameBuffer
from aetherscan_ros.core.process_env import hugepage_malloc_state
from aetherscan_ros.core.session import ReconstructionSession
from aetherscan_ros.node import params
from aetherscan_ros.node.cameras import CameraInputs
from aetherscan_ros.node.compat import PostSetParameters
from aetherscan_ros.node.diagnostics import Diagnostics
from aetherscan_ros.node.guard import Guard
from aetherscan_ros.node.mapping import NodeMapping
from aetherscan_ros.node.outputs import Outputs
from aetherscan_ros.node.services import Services
from aetherscan_ros.node.tf_input import TfInput
from aetherscan_ros.node.worker import JobWorker

NODE_NAME = 'aetherscan_node'


class NodeWiring:
    """
    The node's wiring, shared by :class:`AetherscanNode` and the lifecycle variant.

    ``_declare`` declares the parameter table (a node has parameters in every lifecycle
    state); ``_wire`` creates the collaborators, their publishers, subscriptions, services and
    timers and starts the worker; ``_unwire`` stops the work and destroys what ``_wire``
    created (the lifecycle node's cleanup).
    """

    def _declare(self, backend_factory=None):
        self._backend_factory = backend_factory
        self.config = params.declare_all(self)
        self._post_set = PostSetParameters(self, self._after_set_parameters)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.wired = False
        self._period_timer = None

    def _wire(self):
        """Create the collaborators (in this order: later ones use the earlier ones)."""
        self._pre_wire = self._entities()
        cfg = self.config
        self.session = ReconstructionSession(FrameBuffer(
            cfg.max_views, cfg.keyframe_min_interval, cfg.keyframe_min_change,
            cfg.busy_policy, cfg.capture_mode, cfg.sync_tolerance, cfg.image_topics),
            upright=cfg.world_upright)
        self.guard = Guard(self, self.session.count)
        self.outputs = Outputs(self)
        self.trigger_services = Services(self)
        self.cameras = CameraInputs(self)
        self.diagnostics = Diagnostics(self)
        self.tf_input = TfInput(self, cfg.fixed_frame) if cfg.fixed_frame else None
        self.mapping = NodeMapping(self) if cfg.mode == 'mapping' else None

        self._cb_timers = MutuallyExclusiveCallbackGroup()
        # Steady clock: with use_sim_time these must run before (and without) /clock.
        steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.create_timer(1.0, self.guard.wrap('subscription check',
                                               self.cameras.ensure_subscriptions),
                          callback_group=self._cb_timers, clock=steady)
        self._diag_timer = self.create_timer(
            cfg.diagnostics_period, self.guard.wrap('diagnostics', self.diagnostics.publish),
            callback_group=self._cb_timers, clock=steady)
        self._period_timer = None
        self._configure_period_timer()

        self.worker = JobWorker(self, self._backend_factory)
        self.worker.start()
        self.wired = True
        self.get_logger().info(
            f'listening on {", ".join(c.sub_topic for c in self.cameras.cameras)} '
            f'({cfg.image_transport}, qos {cfg.image_qos}); backend {cfg.backend}; '
            f'min_views {cfg.min_views}, max_views {cfg.max_views}; cloud packer '
            f'{PACKER}, huge-page malloc {hugepage_malloc_state()}')

    def _entities(self) -> dict:
        return {'subscription': list(self.subscriptions), 'publisher': list(self.publishers),
                'service': list(self.services), 'timer': list(self.timers),
                'client': list(self.clients)}

    def _unwire(self) -> bool:
        """Stop the work (:meth:`close`) and destroy every entity ``_wire`` created."""
        stopped = self.close()
        destroy = {'subscription': self.destroy_subscription,
                   'publisher': self.destroy_publisher, 'service': self.destroy_service,
                   'timer': self.destroy_timer, 'client': self.destroy_client}
        # everything created since _wire began, also later (re-subscribed cameras, timers)
        for kind, entities in self._entities().items():
            for entity in entities:
                if entity not in self._pre_wire[kind]:
                    destroy[kind](entity)
        self._period_timer = None
        self.wired = False
        return stopped

    def inputs_open(self) -> bool:
        """Whether images are taken and reconstructions start (``enabled``; lifecycle: active)."""
        return self.config.enabled

    def paused_reason(self) -> str:
        """Say why inputs are closed (for service answers and events)."""
        return 'paused (enabled is false; ~/resume or set enabled to true)'

    # ------------------------------------------------------------------ parameters

    def _on_set_parameters(self, changes) -> SetParametersResult:
        ok, reason = params.check_change(params.current_values(self), changes)
        if ok:
            self._post_set.accepted(changes)
        return SetParametersResult(successful=ok, reason=reason)

    def _after_set_parameters(self, changes):
        self.config = params.make_config(params.current_values(self))
        if not self.wired:
            return
        cfg = self.config
        self.session.buffer.configure(cfg.max_views, cfg.keyframe_min_interval,
                                      cfg.keyframe_min_change, cfg.busy_policy,
                                      cfg.capture_mode, cfg.sync_tolerance)
        if any(p.name == 'trigger_period' for p in changes):
            self._configure_period_timer()
        self.maybe_auto_trigger()

    def _configure_period_timer(self):
        if self._period_timer is not None:
            self.destroy_timer(self._period_timer)
            self._period_timer = None
        if self.config.trigger_period > 0:
            self._period_timer = self.create_timer(
                self.config.trigger_period, lambda: self.try_start('timer'),
                callback_group=self._cb_timers)

    # ------------------------------------------------------------------ triggers

    def maybe_auto_trigger(self):
        """Start a reconstruction when ``auto_trigger`` is on and enough keyframes wait."""
        if self.config.auto_trigger and not self.session.auto_blocked:
            self.try_start('auto')

    def try_start(self, trigger: str) -> Tuple[bool, str]:
        """Take the buffered keyframes and queue a reconstruction; return (started, message)."""
        cfg = self.config
        if not self.inputs_open():
            return False, self.paused_reason()
        if self.mapping is not None:  # mode mapping: the next window, when enough keyframes
            return self.mapping.try_start(trigger)
        job, message = self.session.try_start(trigger, cfg.min_views, cfg.max_views)
        if job is None:
            return False, message
        self.worker.submit(job)
        return True, message

    # ------------------------------------------------------------------ shutdown

    def close(self) -> bool:
        """
        Stop the work in progress before the node is destroyed; return whether all of it ended.

        The running reconstruction is cancelled at its next step and waited for (a native
        backend call is never abandoned), then a ``~/save`` in progress is waited for. Called
        by ``main`` on SIGINT/SIGTERM while the context is still valid; idempotent.
        """
        if not self.wired:
            return True
        stopped = self.worker.stop()
        if not stopped:
            self.get_logger().error(
                'shutting down: the running reconstruction did not stop in time')
        self.trigger_services.close()
        return stopped


class AetherscanNode(NodeWiring, Node):
    """The reconstruction node (see the module docstring and the README)."""

    def __init__(self, backend_factory=None, **kwargs):
        """Create the node; ``backend_factory() -> (backend, reason)`` replaces create_backend."""
        super().__init__(NODE_NAME, **kwargs)
        self._declare(backend_factory)
        self._wire()

    def destroy_node(self):
        """Stop the worker and a save in progress (:meth:`close`), then destroy the node."""
        self.close()
        return super().destroy_node()
