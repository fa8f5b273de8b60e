# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
``aetherscan_node``: camera images in, streamed PointCloud2 chunks and camera TF out.

Threads: subscription, service and timer callbacks run on one executor thread (``main`` uses
a ``SingleThreadedExecutor``: on Jazzy the ``MultiThreadedExecutor`` spent a whole core
busy-polling and received about a third of 4 x 30 Hz camera streams, see
``docs/robustness.md``); they only convert, validate and enqueue, so the node also runs on a
multi-threaded executor. One worker thread owns the backend: it builds it at start
(Fast3R loading can take a while), then runs one reconstruction at a time and publishes the
chunks, the full cloud, the TF frames, poses, markers and events. Services and diagnostics
stay responsive during a reconstruction. See the README's node section for the topics,
parameters and policies.
"""

from collections import deque
import os
import queue
import re
import threading
import time
import traceback
from typing import Deque, Dict, List, Optional, Sequence, Tuple

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseArray
import numpy as np
from rcl_interfaces.msg import SetParametersResult
import rclpy
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import (
    DurabilityPolicy, HistoryPolicy, qos_policy_name_from_kind, qos_profile_sensor_data,
    QoSProfile, ReliabilityPolicy)
from rclpy.qos_overriding_options import QoSOverridingOptions, QoSPolicyKind
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import String
from std_srvs.srv import Trigger
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray

from aetherscan_ros import conversions, params
from aetherscan_ros.backends.base import Frame, ReconstructionResult
from aetherscan_ros.buffer import ACCEPTED, FrameBuffer, SKIP_BACKWARDS, thumbnail
from aetherscan_ros.cloud import ChunkStream, PACKER, point_budget, voxel_downsample
from aetherscan_ros.msg_cloud import make_cloud_msg, MessageBuffer
from aetherscan_ros.process_env import hugepage_malloc_state

NODE_NAME = 'aetherscan_node'
LOG_THROTTLE_S = 5.0
# Header stamps further than this ahead of the node's clock are refused: one such frame would
# stamp the cloud and TF in the future and make the camera's next good frames look backwards.
MAX_FUTURE_STAMP_S = 60.0
_THROTTLE_KEYS_MAX = 512  # distinct (topic, reason) throttle entries kept before pruning
EVENT_HISTORY = 100  # ~/events is transient-local: a late subscriber gets the recent events


def _reliable(depth: int, transient_local: bool = False) -> QoSProfile:
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE,
        durability=(DurabilityPolicy.TRANSIENT_LOCAL if transient_local
                    else DurabilityPolicy.VOLATILE))


IMAGE_QOS = {
    'sensor_data': qos_profile_sensor_data,
    'reliable': _reliable(5),
}


class _Camera:
    """Per-camera state: topics, subscription, last CameraInfo, frame id, counters."""

    def __init__(self, index: int, image_topic: str, sub_topic: str, info_topic: str):
        self.index = index
        self.image_topic = image_topic
        self.sub_topic = sub_topic
        self.info_topic = info_topic
        self.sub = None
        self.qos_name = ''
        self.auto_reliability = None
        self.info_sub = None
        self.k: Optional[np.ndarray] = None
        self.k_size: Tuple[int, int] = (0, 0)
        # (reception time ns, K, size) of the last valid camera_infos: an image uses the one
        # that had arrived when the image arrived, whatever order the executor runs them in
        self.k_history: Deque[Tuple[int, np.ndarray, Tuple[int, int]]] = deque(maxlen=16)
        self.frame_id: Optional[str] = None
        self.received = 0
        self.rejected = 0
        self.qos_incompatible = 0
        self.size: Optional[Tuple[int, int]] = None
        self.last_time: Optional[float] = None  # monotonic time of the last image (any)
        self.silence_warned = False  # the current silence period was reported already
        # One group per camera: its images and camera_info are handled in arrival order (one
        # at a time); different cameras run in parallel on the executor's threads.
        self.group = MutuallyExclusiveCallbackGroup()


class AetherscanNode(Node):
    """The reconstruction node (see the module docstring and the README)."""

    def __init__(self, backend_factory=None, **kwargs):
        """Create the node; ``backend_factory() -> (backend, reason)`` replaces create_backend."""
        super().__init__(NODE_NAME, **kwargs)
        self.config = params.declare_all(self)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        self.add_post_set_parameters_callback(self._after_set_parameters)
        cfg = self.config
        self._buffer = FrameBuffer(cfg.max_views, cfg.keyframe_min_interval,
                                   cfg.keyframe_min_change, cfg.busy_policy)
        self._state_lock = threading.RLock()
        self._stats: Dict[str, float] = {
            'frames_received': 0, 'invalid_frames': 0, 'camera_info_rejected': 0,
            'frame_id_changes': 0, 'reconstructions_started': 0, 'reconstructions_ok': 0,
            'reconstructions_failed': 0, 'last_duration_s': 0.0, 'last_points': 0,
            'chunks_published': 0, 'stamp_future': 0, 'size_changes': 0,
            'camera_size_mismatches': 0, 'qos_incompatible': 0, 'callback_errors': 0,
            'saves_ok': 0, 'saves_failed': 0}
        self._throttle: Dict[Tuple[str, ...], Tuple[float, int]] = {}
        self._size_notes: set = set()  # (camera, size, other camera, other size) reported
        self._saved: Dict[int, str] = {}  # reconstruction id -> directory ~/save wrote
        # msg.data buffers reused from one publish to the next (worker thread only).
        self._chunk_buffer = MessageBuffer()
        self._cloud_buffer = MessageBuffer()
        self._recon_id = 0
        self._busy = False
        self._auto_blocked = False
        self._upload_announced = False
        self._last_result: Optional[ReconstructionResult] = None
        self._last_result_id = 0
        self._last_names: Tuple[str, ...] = ()
        self._last_error = ''
        self._last_frame_time = time.monotonic()
        self._start_time = time.monotonic()
        self._backend = None
        self._backend_reason = 'loading'
        self._backend_factory = backend_factory
        self._jobs: 'queue.Queue' = queue.Queue()
        self._stop = threading.Event()

        self._cb_services = MutuallyExclusiveCallbackGroup()
        self._cb_timers = MutuallyExclusiveCallbackGroup()

        overrides = QoSOverridingOptions.with_default_policies()
        self._pub_points = self.create_publisher(
            PointCloud2, '~/points', _reliable(100), qos_overriding_options=overrides)
        self._pub_cloud = self.create_publisher(
            PointCloud2, '~/cloud', _reliable(1, True), qos_overriding_options=overrides)
        self._pub_poses = self.create_publisher(
            PoseArray, '~/camera_poses', _reliable(1, True), qos_overriding_options=overrides)
        self._pub_markers = self.create_publisher(
            MarkerArray, '~/cameras', _reliable(1, True), qos_overriding_options=overrides)
        self._pub_events = self.create_publisher(
            String, '~/events', _reliable(EVENT_HISTORY, True), qos_overriding_options=overrides)
        self._pub_tf_static = self.create_publisher(TFMessage, '/tf_static', _reliable(1, True))
        self._pub_diag = self.create_publisher(DiagnosticArray, '/diagnostics', _reliable(10))

        for name, handler in (('reconstruct', self._srv_reconstruct),
                              ('reset', self._srv_reset), ('save', self._srv_save)):
            self.create_service(Trigger, f'~/{name}',
                                self._guarded(f'~/{name}', handler, service=True),
                                callback_group=self._cb_services)

        info_topics = cfg.info_topics()
        self._cameras: List[_Camera] = [
            _Camera(i, topic, sub, info) for i, (topic, sub, info) in enumerate(
                zip(cfg.image_topics, cfg.subscribed_image_topics(), info_topics))]
        for cam in self._cameras:
            if cfg.use_camera_info:
                cam.info_sub = self.create_subscription(
                    CameraInfo, cam.info_topic, self._guarded(
                        cam.info_topic,
                        lambda msg, info, c=cam: self._on_camera_info(msg, c, info), True),
                    qos_profile_sensor_data, callback_group=cam.group,
                    qos_overriding_options=QoSOverridingOptions.with_default_policies())
        self._ensure_subscriptions()
        self.create_timer(1.0, self._guarded('subscription check', self._ensure_subscriptions),
                          callback_group=self._cb_timers)
        self._diag_timer = self.create_timer(
            cfg.diagnostics_period, self._guarded('diagnostics', self._publish_diagnostics),
            callback_group=self._cb_timers)
        self._period_timer = None
        self._configure_period_timer()

        self._worker = threading.Thread(target=self._worker_main, name='aetherscan_worker',
                                        daemon=True)
        self._worker.start()
        self.get_logger().info(
            f'listening on {", ".join(c.sub_topic for c in self._cameras)} '
            f'({cfg.image_transport}, qos {cfg.image_qos}); backend {cfg.backend}; '
            f'min_views {cfg.min_views}, max_views {cfg.max_views}; cloud packer '
            f'{PACKER}, huge-page malloc {hugepage_malloc_state()}')

    # ------------------------------------------------------------------ parameters

    def _on_set_parameters(self, changes) -> SetParametersResult:
        ok, reason = params.check_change(params.current_values(self), changes)
        return SetParametersResult(successful=ok, reason=reason)

    def _after_set_parameters(self, changes):
        self.config = params.make_config(params.current_values(self))
        cfg = self.config
        self._buffer.configure(cfg.max_views, cfg.keyframe_min_interval,
                               cfg.keyframe_min_change, cfg.busy_policy)
        if any(p.name == 'trigger_period' for p in changes):
            self._configure_period_timer()
        self._maybe_auto_trigger()

    def _configure_period_timer(self):
        if self._period_timer is not None:
            self.destroy_timer(self._period_timer)
            self._period_timer = None
        if self.config.trigger_period > 0:
            self._period_timer = self.create_timer(
                self.config.trigger_period, lambda: self._try_start('timer'),
                callback_group=self._cb_timers)

    # ------------------------------------------------------------------ logging, events

    def _warn_throttled(self, key: Tuple[str, str], text: str,
                        period: float = LOG_THROTTLE_S):
        """Log ``text`` at most once per ``period`` s per key, with the suppressed count."""
        now = time.monotonic()
        with self._state_lock:
            if len(self._throttle) > _THROTTLE_KEYS_MAX:  # bound memory under odd input
                self._throttle = {k: v for k, v in self._throttle.items()
                                  if now - v[0] < LOG_THROTTLE_S}
            last, suppressed = self._throttle.get(key, (-1e9, 0))
            if now - last < period:
                self._throttle[key] = (last, suppressed + 1)
                return
            self._throttle[key] = (now, 0)
        more = f' ({suppressed} similar suppressed)' if suppressed else ''
        self.get_logger().warning(text + more)

    def _guarded(self, what: str, handler, with_info: bool = False, service: bool = False):
        """
        Wrap a callback so that an unexpected exception is logged and counted, never raised.

        rclpy's executors re-raise callback exceptions from ``spin()``, which would end the
        node. A service handler returns ``success=False`` with the reason instead.
        ``with_info``: the subscription callback takes ``(msg, message_info)``.
        """
        def run(*args):
            try:
                return handler(*args)
            except Exception as exc:  # noqa: B902 - the node must outlive any single message
                if not self.context.ok():  # shutting down: rcl calls fail, nothing to report
                    return args[1] if service else None
                self._count('callback_errors')
                self._warn_throttled(
                    ('callback', what, type(exc).__name__),
                    f'{what}: unexpected {type(exc).__name__} in the callback: {exc} (ignored, '
                    'the node keeps running; details at debug level)')
                self.get_logger().debug(traceback.format_exc())
                if service:
                    response = args[1]
                    response.success = False
                    response.message = f'{what} failed: {type(exc).__name__}: {exc}'
                    return response
                return None
        if with_info:  # rclpy passes MessageInfo only to a callback of exactly two parameters
            return lambda msg, info: run(msg, info)
        return run

    def _count(self, key: str, amount: int = 1):
        with self._state_lock:
            self._stats[key] += amount

    def _event(self, event: str, **fields):
        try:
            self._pub_events.publish(conversions.event_msg(event, **fields))
        except Exception as exc:  # shutting down: the publisher is gone
            self.get_logger().debug(f'event {event} not published: {exc}')

    # ------------------------------------------------------------------ subscriptions

    def _image_qos(self, cam: _Camera) -> Optional[Tuple[str, QoSProfile]]:
        choice = self.config.image_qos
        if choice != 'auto':
            return choice, IMAGE_QOS[choice]
        pubs = self.get_publishers_info_by_topic(cam.sub_topic)
        if not pubs:
            return None
        best_effort = any(p.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
                          for p in pubs)
        name = 'sensor_data' if best_effort else 'reliable'
        return name, IMAGE_QOS[name]

    def _ensure_subscriptions(self):
        """Create image subscriptions; in auto QoS mode match (and re-match) the publishers."""
        msg_type = CompressedImage if self.config.image_transport == 'compressed' else Image
        for cam in self._cameras:
            choice = self._image_qos(cam)
            if choice is None or choice[0] == cam.qos_name:
                continue
            name, profile = choice
            kinds = [QoSPolicyKind.HISTORY, QoSPolicyKind.DEPTH, QoSPolicyKind.RELIABILITY]
            if cam.sub is not None:
                # Re-match only while the user did not override the reliability.
                param = f'qos_overrides.{cam.sub_topic}.subscription.reliability'
                if self.has_parameter(param) and \
                        self.get_parameter(param).value != cam.auto_reliability:
                    continue
                if name == 'reliable':  # a best-effort subscriber hears reliable publishers
                    continue
                self.get_logger().info(
                    f'{cam.sub_topic}: a best-effort publisher appeared; re-subscribing with '
                    'sensor_data QoS')
                self.destroy_subscription(cam.sub)
                kinds = [QoSPolicyKind.HISTORY, QoSPolicyKind.DEPTH]
            else:
                cam.auto_reliability = profile.reliability.name.lower()
            cam.sub = self.create_subscription(
                msg_type, cam.sub_topic,
                self._guarded(cam.sub_topic,
                              lambda msg, info, c=cam: self._on_image(msg, c, info), True),
                profile, callback_group=cam.group,
                qos_overriding_options=QoSOverridingOptions(kinds),
                event_callbacks=SubscriptionEventCallbacks(
                    incompatible_qos=lambda info, c=cam: self._on_incompatible_qos(info, c)))
            cam.qos_name = name
            self.get_logger().info(f'subscribed to {cam.sub_topic} with {name} QoS')

    def _on_incompatible_qos(self, info, cam: _Camera):
        """Warn (throttled) and count: a publisher on the topic can never reach us."""
        self._count('qos_incompatible')
        cam.qos_incompatible += 1
        try:
            policy = qos_policy_name_from_kind(info.last_policy_kind)
        except (ValueError, KeyError):
            policy = str(info.last_policy_kind)
        hint = ('set image_qos to auto or sensor_data' if self.config.image_qos == 'reliable'
                else 'make the publisher and this subscription agree on that policy')
        self._warn_throttled(
            (cam.sub_topic, 'qos'),
            f'{cam.sub_topic}: a publisher has QoS incompatible with this subscription '
            f'(policy {policy}, {info.total_count} incompatible match(es) so far); none of its '
            f'images arrive. Fix: {hint} (`ros2 topic info -v {cam.sub_topic}` shows both).')

    def _on_camera_info(self, msg, cam: _Camera, info=None):
        try:
            k, size = conversions.camera_info_to_k(msg)
        except conversions.ConversionError as exc:
            self._count('camera_info_rejected')
            self._warn_throttled((cam.info_topic, 'info', _reason_kind(exc)),
                                 f'{cam.info_topic}: ignored: {exc}')
            return
        cam.k, cam.k_size = k, size
        cam.k_history.append((_received_ns(info), k, size))

    def _on_image(self, msg, cam: _Camera, info=None):
        self._count('frames_received')
        cam.received += 1
        now = time.monotonic()
        self._last_frame_time = cam.last_time = now
        cam.silence_warned = False
        clock_ns = self.get_clock().now().nanoseconds
        stamp_ns = conversions.stamp_to_ns(msg.header.stamp) or clock_ns
        if clock_ns > 0 and stamp_ns - clock_ns > MAX_FUTURE_STAMP_S * 1e9:
            self._count('stamp_future')
            cam.rejected += 1
            self._warn_throttled(
                (cam.sub_topic, 'future'),
                f'{cam.sub_topic}: rejected: header stamp is {(stamp_ns - clock_ns) / 1e9:.0f} s '
                f'ahead of the node clock (limit {MAX_FUTURE_STAMP_S:.0f} s); check the clock '
                'synchronisation of the camera host (or use_sim_time)')
            return
        skip = self._buffer.precheck(cam.image_topic, stamp_ns)
        if skip is not None:
            self._buffer.note_skipped(cam.image_topic, skip)
            if skip == SKIP_BACKWARDS:
                self._warn_throttled((cam.sub_topic, 'stamp'),
                                     f'{cam.sub_topic}: header stamp went backwards; frame '
                                     'skipped and keyframe history of this camera reset')
            return
        try:
            if isinstance(msg, CompressedImage):
                rgb = conversions.compressed_to_rgb(msg, self.config.max_image_side)
            else:
                rgb = conversions.image_to_rgb(msg, self.config.max_image_side)
        except conversions.ConversionError as exc:
            self._count('invalid_frames')
            cam.rejected += 1
            # one throttle per kind of problem: a different reason is still reported at once
            self._warn_throttled((cam.sub_topic, 'image', _reason_kind(exc)),
                                 f'{cam.sub_topic}: rejected: {exc}')
            return
        self._check_size(cam, (int(rgb.shape[1]), int(rgb.shape[0])))
        if cam.frame_id is not None and msg.header.frame_id != cam.frame_id:
            self._count('frame_id_changes')
            self._warn_throttled((cam.sub_topic, 'frame_id'),
                                 f'{cam.sub_topic}: frame_id changed from {cam.frame_id!r} to '
                                 f'{msg.header.frame_id!r}')
        cam.frame_id = msg.header.frame_id
        k = None
        known = _camera_info_at(cam, _received_ns(info))
        if self.config.use_camera_info and known is not None:
            try:
                k = conversions.k_for_image(known[0], known[1], (rgb.shape[1], rgb.shape[0]))
            except conversions.ConversionError as exc:
                self._count('camera_info_rejected')
                self._warn_throttled((cam.info_topic, 'size'),
                                     f'{cam.info_topic}: K not used: {exc}')
        name = f'{cam.image_topic}@{stamp_ns // 1_000_000_000}.{stamp_ns % 1_000_000_000:09d}'
        frame = Frame(image=rgb, name=name, stamp_ns=stamp_ns, camera=cam.image_topic, K=k)
        outcome = self._buffer.offer(frame, thumbnail(rgb))
        if outcome != ACCEPTED:
            return
        with self._state_lock:
            self._auto_blocked = False
        buffered = len(self._buffer)
        self._event('image_received', camera=cam.image_topic, name=name, stamp_ns=stamp_ns,
                    width=int(rgb.shape[1]), height=int(rgb.shape[0]), has_k=k is not None,
                    buffered=buffered, min_views=self.config.min_views)
        with self._state_lock:
            announce = buffered >= self.config.min_views and not self._upload_announced
            if announce:
                self._upload_announced = True
        if announce:
            self._event('upload_complete', buffered=buffered, min_views=self.config.min_views)
        self._maybe_auto_trigger()

    def _check_size(self, cam: _Camera, size: Tuple[int, int]):
        """Report (once per change, counted) a camera whose size changes or differs."""
        if cam.size is not None and size != cam.size:
            self._count('size_changes')
            self._warn_throttled((cam.sub_topic, 'size_change'),
                                 f'{cam.sub_topic}: image size changed from '
                                 f'{cam.size[0]}x{cam.size[1]} to {size[0]}x{size[1]}; frame '
                                 'accepted (each view keeps its own size)')
        cam.size = size
        for other in self._cameras:
            if other is cam or other.size is None or other.size == size:
                continue
            note = (cam.image_topic, size, other.image_topic, other.size)
            with self._state_lock:
                if note in self._size_notes or len(self._size_notes) > _THROTTLE_KEYS_MAX:
                    continue
                self._size_notes.add(note)
            self._count('camera_size_mismatches')
            self.get_logger().warning(
                f'{cam.sub_topic}: image size {size[0]}x{size[1]} differs from '
                f'{other.sub_topic} ({other.size[0]}x{other.size[1]}); frames accepted: the '
                'backends take mixed sizes, with intrinsics per camera')

    # ------------------------------------------------------------------ triggers

    def _maybe_auto_trigger(self):
        if self.config.auto_trigger and not self._auto_blocked:
            self._try_start('auto')

    def _try_start(self, trigger: str) -> Tuple[bool, str]:
        """Take the buffered keyframes and queue a reconstruction; return (started, message)."""
        with self._state_lock:
            if self._busy:
                return False, f'reconstruction #{self._recon_id} is still running'
            if self._backend is None:
                return False, f'backend not ready: {self._backend_reason}'
            need = 2 if trigger == 'service' else self.config.min_views
            have = len(self._buffer)
            if have < need:
                return False, f'{have} keyframe(s) buffered, need {need}'
            frames = self._buffer.take(self.config.max_views)
            self._busy = True
            self._upload_announced = False
            self._recon_id += 1
            recon = self._recon_id
            self._count('reconstructions_started')
        self._jobs.put((recon, frames, trigger))
        return True, f'started reconstruction #{recon} with {len(frames)} views'

    # ------------------------------------------------------------------ services

    def _srv_reconstruct(self, request, response):
        response.success, response.message = self._try_start('service')
        return response

    def _srv_reset(self, request, response):
        count = self._buffer.clear()
        with self._state_lock:
            self._upload_announced = False
            busy = self._busy
        self._event('reset', cleared=count)
        response.success = True
        response.message = f'cleared {count} buffered keyframe(s)' + (
            f'; reconstruction #{self._recon_id} keeps running' if busy else '')
        return response

    def _srv_save(self, request, response):
        """
        Write the last result into ``output_dir/reconstruction_NNNN`` as one atomic step.

        The files go to a hidden temporary directory inside ``output_dir`` that is renamed
        when complete, so a crash or a failure never leaves a partial result, and a name in
        use (an earlier run) is never overwritten: ``_2``, ``_3``... are appended. Saving the
        same reconstruction again returns the directory written before.
        """
        from aetherscan_ros.preview import render_preview
        from aetherscan_ros.results_io import PREVIEW_FILE, save_directory_atomically, save_result
        with self._state_lock:
            result, recon, names = self._last_result, self._last_result_id, self._last_names
            saved = self._saved.get(recon)
        if result is None:
            response.success = False
            response.message = 'no reconstruction result to save yet'
            return response
        if saved is not None and os.path.isdir(saved):
            response.success = True
            response.message = saved
            return response

        def fill(directory):
            save_result(result, directory, image_names=list(names))
            render_preview(result, directory / PREVIEW_FILE)

        out_dir = self.config.resolved_output_dir()
        try:
            target = save_directory_atomically(out_dir, f'reconstruction_{recon:04d}', fill)
        except Exception as exc:  # noqa: B902 - disk full, permissions, preview... all reported
            self._count('saves_failed')
            response.success = False
            response.message = (f'save of reconstruction #{recon} into {out_dir} failed '
                                f'(nothing written): {type(exc).__name__}: {exc}')
            self.get_logger().error(response.message)
            return response
        with self._state_lock:
            self._saved[recon] = str(target)
        self._count('saves_ok')
        self._event('saved', reconstruction=recon, path=str(target))
        response.success = True
        response.message = str(target)
        return response

    # ------------------------------------------------------------------ worker

    def _worker_main(self):
        self._load_backend()
        while not self._stop.is_set():
            try:
                job = self._jobs.get(timeout=0.2)
            except queue.Empty:
                continue
            try:
                self._run_job(*job)
            except Exception as exc:  # noqa: B902 - the worker thread must never die
                self._job_crashed(job, exc)

    def _job_crashed(self, job, exc: Exception):
        """Recover from an exception outside the backend call: frames back, not busy."""
        recon, frames, _ = job
        message = f'{type(exc).__name__}: {exc}'
        with self._state_lock:
            busy = self._busy
            self._busy = False
            self._last_error = message
        if busy:  # _run_job did not hand the frames back itself
            self._buffer.restore(frames)
            self._count('reconstructions_failed')
        self.get_logger().error(f'reconstruction #{recon}: internal error {message}; the '
                                'frames were kept in the buffer')
        self.get_logger().debug(traceback.format_exc())
        self._event('error', reconstruction=recon, stage='internal', message=message,
                    frames_kept=len(frames) if busy else 0)

    def _load_backend(self):
        cfg = self.config
        try:
            if self._backend_factory is not None:
                backend, reason = self._backend_factory()
            else:
                from aetherscan_ros.backends import create_backend
                backend, reason = create_backend(cfg.backend, cfg.model, cfg.device)
        except Exception as exc:  # BackendUnavailable, ImportError, bad checkpoint...
            with self._state_lock:
                self._backend_reason = f'{cfg.backend} backend unavailable: {exc}'
            self.get_logger().error(self._backend_reason)
            self._event('error', stage='backend', message=self._backend_reason)
            return
        with self._state_lock:
            self._backend = backend
            self._backend_reason = reason
        device = str(getattr(backend, 'device', 'cpu'))
        self.get_logger().info(f'backend {backend.name} on {device}: {reason}')
        self._event('backend_selected', backend=backend.name, device=device, reason=reason)
        self._maybe_auto_trigger()

    def _publish_chunks(self, chunks, stamp_ns: int):
        frame = self.config.world_frame
        for info, cloud in chunks:
            self._pub_points.publish(make_cloud_msg(cloud, frame, stamp_ns, chunk_info=info,
                                                    out=self._chunk_buffer.take()))
            self._count('chunks_published')

    def _run_job(self, recon: int, frames: Sequence[Frame], trigger: str):
        cfg = self.config
        backend = self._backend
        stamp_ns = max(f.stamp_ns for f in frames)
        stream = ChunkStream(recon, cfg.chunk_points)
        streamed = [0]
        last_progress = ['', -1.0]
        self.get_logger().info(
            f'reconstruction #{recon}: {len(frames)} views, backend {backend.name} ({trigger})')
        self._event('reconstruction_started', reconstruction=recon, views=len(frames),
                    backend=backend.name, trigger=trigger,
                    cameras=sorted({f.camera for f in frames}))

        def progress(ev):
            if ev.view_cloud is not None:
                vc = ev.view_cloud
                self._publish_chunks(stream.add(vc.points, vc.colors, vc.confidence, vc.view),
                                     stamp_ns)
                streamed[0] += len(vc.points)
            if ev.stage != last_progress[0] or ev.fraction - last_progress[1] >= 0.05:
                last_progress[0], last_progress[1] = ev.stage, ev.fraction
                self._event('progress', reconstruction=recon, stage=ev.stage,
                            fraction=round(float(ev.fraction), 3), message=ev.message)

        start = time.monotonic()
        try:
            result = backend.reconstruct(frames, progress)
            if streamed[0] == 0 and result.num_points:
                for view in range(result.num_views):  # a backend that did not stream
                    vc = result.view_cloud(view)
                    self._publish_chunks(
                        stream.add(vc.points, vc.colors, vc.confidence, vc.view), stamp_ns)
                streamed[0] = result.num_points
            if streamed[0] != result.num_points:
                raise RuntimeError(f'the backend streamed {streamed[0]} points but returned '
                                   f'{result.num_points}')
            self._publish_chunks(stream.finish(), stamp_ns)
            self._publish_result(result, stamp_ns)
        except Exception as exc:
            seconds = time.monotonic() - start
            self._buffer.restore(frames)
            message = f'{type(exc).__name__}: {exc}'
            with self._state_lock:
                self._busy = False
                self._auto_blocked = True  # retry after a new keyframe or ~/reconstruct
                self._last_error = message
                self._count('reconstructions_failed')
            self.get_logger().error(
                f'reconstruction #{recon} failed after {seconds:.1f} s: {message}; '
                f'{len(frames)} frames kept in the buffer')
            self._publish_diagnostics_now()  # the new state before the event that announces it
            self._event('error', reconstruction=recon, stage='reconstruct', message=message,
                        seconds=round(seconds, 3), frames_kept=len(frames))
            return
        seconds = time.monotonic() - start
        self._buffer.done()
        with self._state_lock:
            self._busy = False
            self._last_result = result
            self._last_result_id = recon
            self._last_names = tuple(f.name for f in frames)
            self._last_error = ''
            self._count('reconstructions_ok')
            self._stats['last_duration_s'] = seconds
            self._stats['last_points'] = result.num_points
        self.get_logger().info(
            f'reconstruction #{recon} done: {result.num_points} points, {result.num_views} '
            f'views, {result.backend}, {seconds:.2f} s')
        self._publish_diagnostics_now()
        self._event('reconstruction_complete', reconstruction=recon,
                    total_points=result.num_points, views=result.num_views,
                    chunks=stream.chunks_sent, backend=result.backend,
                    seconds=round(seconds, 3), stamp_ns=stamp_ns,
                    frames=[f.name for f in frames], info=dict(result.info))
        self._maybe_auto_trigger()

    def _publish_result(self, result: ReconstructionResult, stamp_ns: int):
        cfg = self.config
        cloud = (result.points, result.colors, result.confidence, result.view_index)
        if cfg.voxel_size > 0 and result.num_points:
            cloud = tuple(voxel_downsample(*cloud, voxel=cfg.voxel_size))
        if cfg.cloud_max_points and len(cloud[0]) > cfg.cloud_max_points:
            before = len(cloud[0])
            budgeted, voxel = point_budget(*cloud, max_points=cfg.cloud_max_points)
            cloud = tuple(budgeted)
            self.get_logger().info(
                f'~/cloud: {before} points over cloud_max_points {cfg.cloud_max_points}: '
                f'{len(cloud[0])} after voxel {voxel:.4g}')
        self._pub_cloud.publish(make_cloud_msg(cloud, cfg.world_frame, stamp_ns,
                                               out=self._cloud_buffer.take()))
        transforms = conversions.poses_to_transforms(
            result.poses_c2w, cfg.world_frame, cfg.frame_prefix, stamp_ns)
        if cfg.parent_frame:
            transforms.insert(0, conversions.identity_transform(
                cfg.parent_frame, cfg.world_frame, stamp_ns))
        self._pub_tf_static.publish(TFMessage(transforms=transforms))
        self._pub_poses.publish(
            conversions.poses_to_pose_array(result.poses_c2w, cfg.world_frame, stamp_ns))
        depth = cfg.frustum_scale or 0.1 * conversions.robust_extent(result.points) or 0.1
        self._pub_markers.publish(conversions.frusta_markers(
            result.poses_c2w, result.intrinsics, result.image_sizes, cfg.world_frame,
            stamp_ns, depth))

    # ------------------------------------------------------------------ diagnostics

    def _publish_diagnostics(self):
        cfg = self.config
        counters = self._buffer.snapshot_counters()
        idle = time.monotonic() - self._last_frame_time
        with self._state_lock:
            stats = dict(self._stats)
            busy, backend, reason = self._busy, self._backend, self._backend_reason
            last_error = self._last_error
        level, message = DiagnosticStatus.OK, 'idle'
        if busy:
            message = f'reconstruction #{self._recon_id} running'
        elif cfg.no_frames_warning > 0 and idle > cfg.no_frames_warning:
            message = f'idle: no frames for {idle:.0f} s'
        silent = self._check_silence(counters.get('buffered', 0))
        if silent:
            level = DiagnosticStatus.WARN
            message = 'no images on ' + ', '.join(silent)
        if stats['qos_incompatible']:
            level = DiagnosticStatus.WARN
            message = 'a publisher has incompatible QoS on ' + ', '.join(
                c.sub_topic for c in self._cameras if c.qos_incompatible)
        if last_error:
            level, message = DiagnosticStatus.WARN, f'last reconstruction failed: {last_error}'
        if backend is None:
            level, message = DiagnosticStatus.ERROR, reason
        values = {
            'buffered': counters.get('buffered', 0), 'min_views': cfg.min_views,
            'max_views': cfg.max_views, 'busy': busy,
            'backend': getattr(backend, 'name', 'none'),
            'device': str(getattr(backend, 'device', '')), 'backend_reason': reason,
            'seconds_since_last_frame': round(idle, 1)}
        values.update(stats)
        for key in ('offered', 'keyframe', 'skipped_interval', 'skipped_similar',
                    'stamp_backwards', 'dropped_busy', 'evicted', 'restored', 'cleared'):
            values[key] = counters.get(key, 0)
        now = time.monotonic()
        for cam in self._cameras:
            values[f'{cam.sub_topic} qos'] = cam.qos_name or 'waiting for a publisher'
            values[f'{cam.sub_topic} received'] = cam.received
            values[f'{cam.sub_topic} rejected'] = cam.rejected
            values[f'{cam.sub_topic} qos_incompatible'] = cam.qos_incompatible
            values[f'{cam.sub_topic} seconds_since_last_frame'] = \
                'never' if cam.last_time is None else round(now - cam.last_time, 1)
        gpu = _gpu_memory(backend)
        if gpu:
            values.update({f'gpu_{k}': v for k, v in gpu.items()})
        status = DiagnosticStatus(
            level=level, name=f'{self.get_fully_qualified_name()}: reconstruction',
            message=message, hardware_id=str(values['device']),
            values=[KeyValue(key=str(k), value=str(v)) for k, v in values.items()])
        diag = DiagnosticArray(status=[status])
        diag.header.stamp = self.get_clock().now().to_msg()
        self._pub_diag.publish(diag)

    def _publish_diagnostics_now(self):
        """Publish /diagnostics out of period (state changes); never raises."""
        try:
            self._publish_diagnostics()
        except Exception as exc:  # noqa: B902 - shutting down, or a diagnostics bug: not fatal
            self.get_logger().debug(f'diagnostics not published: {exc}')

    def _check_silence(self, buffered: int) -> List[str]:
        """
        Return the image topics that are silent while they matter; warn once per silence.

        A camera counts as silent after ``no_frames_warning`` seconds without an image when
        it never delivered one, when other cameras still deliver, or when the buffer waits
        for more keyframes (fewer than ``min_views``). A stream that simply ended after its
        reconstruction is not a problem and is not reported. The log line names the topic
        and what the graph shows (no publisher / publishers that deliver nothing = QoS).
        """
        cfg = self.config
        if cfg.no_frames_warning <= 0:
            return []
        now = time.monotonic()
        limit = cfg.no_frames_warning
        active = [c for c in self._cameras
                  if c.last_time is not None and now - c.last_time <= limit]
        silent = []
        for cam in self._cameras:
            since = now - (cam.last_time if cam.last_time is not None else self._start_time)
            if since <= limit:
                continue
            if cam.last_time is None:
                why = 'since the node started'
            elif active:
                why = 'while ' + ', '.join(c.sub_topic for c in active) + ' still deliver'
            elif 0 < buffered < cfg.min_views:
                why = f'with {buffered} of min_views={cfg.min_views} keyframes buffered'
            else:
                continue
            silent.append(cam.sub_topic)
            if cam.silence_warned:
                continue
            cam.silence_warned = True
            pubs = self.count_publishers(cam.sub_topic)
            if pubs == 0:
                hint = 'no publisher on this topic: check the topic name and remappings'
            elif cam.qos_incompatible:
                hint = f'{pubs} publisher(s), with incompatible QoS (see the warning above)'
            else:
                hint = (f'{pubs} publisher(s) but nothing arrives: they publish nothing, or '
                        f'with QoS this subscription cannot hear (`ros2 topic info -v '
                        f'{cam.sub_topic}`)')
            self.get_logger().warning(f'{cam.sub_topic}: no image for {since:.0f} s {why}; '
                                      f'{hint}')
        return silent

    # ------------------------------------------------------------------ shutdown

    def destroy_node(self):
        """Stop the worker (waits up to 2 s; a running backend call is abandoned), then destroy."""
        self._stop.set()
        if self._worker.is_alive():
            self._worker.join(timeout=2.0)
        return super().destroy_node()


def _received_ns(info) -> int:
    """Return the middleware reception time of a message (ns) from its MessageInfo, or 0."""
    try:
        return int(info['received_timestamp'])
    except (TypeError, KeyError, ValueError):
        return 0


def _camera_info_at(cam: _Camera, received_ns: int):
    """Return ``(K, size)`` of the newest camera_info received before ``received_ns``."""
    if not received_ns:
        return None if cam.k is None else (cam.k, cam.k_size)
    for when, k, size in reversed(cam.k_history):
        if not when or when <= received_ns:
            return k, size
    return None


def _reason_kind(exc: Exception) -> str:
    """Return the reason of ``exc`` with numbers masked: the throttling key of a problem."""
    return re.sub(r'[0-9.]+', '#', str(exc))[:100]


def _gpu_memory(backend) -> Optional[dict]:
    if backend is None or not str(getattr(backend, 'device', '')).startswith('cuda'):
        return None
    try:
        from aetherscan_ros.torch_device import gpu_memory
        return gpu_memory()
    except Exception:  # diagnostics must never raise
        return None


def main(args=None):
    """Run the node until Ctrl-C or SIGTERM (``ros2 run aetherscan_ros aetherscan_node``)."""
    rclpy.init(args=args)
    node = None
    try:
        node = AetherscanNode()
        # Every callback is short (the backend runs on the node's own worker thread). The
        # MultiThreadedExecutor of rclpy Jazzy busy-polls: in bench_soak it used a full core
        # and dropped ~70 % of 4 x 30 Hz image streams; this executor received all of them.
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ValueError, ParameterException) as exc:  # bad initial parameters: the reason
        rclpy.logging.get_logger(NODE_NAME).fatal(f'invalid parameters: {exc}')
        raise SystemExit(2)
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == '__main__':
    main()
