# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Camera inputs of the node: image and camera_info subscriptions, QoS matching, validation.

Each camera gets one mutually exclusive callback group, so its images and camera_info are
handled in arrival order. Callbacks only convert, validate and offer the frame to the keyframe
buffer (:class:`aetherscan_ros.core.buffer.FrameBuffer`); the reconstruction runs on the
node's worker thread.
"""

from collections import deque
import time
from typing import Deque, List, Optional, Tuple

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.qos import (
    qos_policy_name_from_kind, qos_profile_sensor_data, QoSProfile, ReliabilityPolicy)
from rclpy.qos_overriding_options import QoSOverridingOptions, QoSPolicyKind
from sensor_msgs.msg import CameraInfo, CompressedImage, Image

from aetherscan_ros.backends.base import Frame
from aetherscan_ros.core.buffer import ACCEPTED, SKIP_BACKWARDS, thumbnail
from aetherscan_ros.core.camera_model import CameraModel
from aetherscan_ros.node.compat import SubscriptionEventCallbacks
from aetherscan_ros.node.guard import reason_kind
from aetherscan_ros.node.outputs import reliable_qos
from aetherscan_ros.ros.camera_info import camera_info_to_model, model_for_image
from aetherscan_ros.ros.errors import ConversionError
from aetherscan_ros.ros.images import compressed_to_rgb, image_to_rgb
from aetherscan_ros.ros.stamps import checked_stamp_ns, stamp_to_ns

# Header stamps further than this ahead of the node's clock are refused: one such frame would
# stamp the cloud and TF in the future and make the camera's next good frames look backwards.
MAX_FUTURE_STAMP_S = 60.0
_SIZE_NOTES_MAX = 512  # distinct size-mismatch notes kept

IMAGE_QOS = {
    'sensor_data': qos_profile_sensor_data,
    'reliable': reliable_qos(5),
}


class Camera:
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
        # image_pipeline's naming: image_rect* topics carry rectified images (P applies)
        self.rectified = image_topic.rstrip('/').rpartition('/')[2].startswith('image_rect')
        self.model: Optional[CameraModel] = None
        # (reception time ns, header stamp ns, model) of the last valid camera_infos: an image
        # uses the one with its stamp, else the one that had arrived when the image arrived
        # (whatever order the executor runs them in)
        self.k_history: Deque[Tuple[int, int, CameraModel]] = deque(maxlen=16)
        self.distortion_ignored_warned = False
        self.frame_id: Optional[str] = None
        self.received = 0
        self.rejected = 0
        self.qos_incompatible = 0
        self.size: Optional[Tuple[int, int]] = None
        self.last_time: Optional[float] = None  # monotonic time of the last image (any)
        self.silence_warned = False  # the current silence period was reported already
        # One group per camera: its images and camera_info are handled in arrival order (one
        # at a time); different cameras run in parallel on a multi-threaded executor.
        self.group = MutuallyExclusiveCallbackGroup()

    def camera_info_at(self, received_ns: int, stamp_ns: int = 0,
                       tolerance_ns: int = 0) -> Optional[CameraModel]:
        """
        Return the model of the camera_info of an image stamped ``stamp_ns``.

        The camera_info whose header stamp is nearest to ``stamp_ns`` within ``tolerance_ns``
        (a driver stamps both alike); without one, the newest received before ``received_ns``.
        """
        if stamp_ns:
            best, best_gap = None, None
            for _, stamp, model in self.k_history:
                gap = abs(stamp - stamp_ns)
                if stamp and gap <= tolerance_ns and (best_gap is None or gap <= best_gap):
                    best, best_gap = model, gap
            if best is not None:
                return best
        if not received_ns:
            return self.model
        for when, _, model in reversed(self.k_history):
            if not when or when <= received_ns:
                return model
        return None


def resolved_topic(node, topic: str) -> str:
    """Return ``topic`` with the node's namespace and remappings applied (as QoS overrides are)."""
    try:
        return node.resolve_topic_name(topic)
    except AttributeError:  # an rclpy without resolve_topic_name
        return topic


def received_ns(info) -> int:
    """Return the middleware reception time of a message (ns) from its MessageInfo, or 0."""
    try:
        return int(info['received_timestamp'])
    except (TypeError, KeyError, ValueError):
        return 0


class CameraInputs:
    """The node's cameras: subscriptions, QoS matching and the image/camera_info callbacks."""

    def __init__(self, node):
        self._node = node
        cfg = node.config
        self.cameras: List[Camera] = [
            Camera(i, topic, sub, info) for i, (topic, sub, info) in enumerate(
                zip(cfg.image_topics, cfg.subscribed_image_topics(), cfg.info_topics()))]
        self.last_frame_time = time.monotonic()
        self._size_notes: set = set()  # (camera, size, other camera, other size) reported
        for cam in self.cameras:
            if cfg.use_camera_info:
                cam.info_sub = node.create_subscription(
                    CameraInfo, cam.info_topic, node.guard.wrap(
                        cam.info_topic,
                        lambda msg, info, c=cam: self.on_camera_info(msg, c, info), True),
                    qos_profile_sensor_data, callback_group=cam.group,
                    qos_overriding_options=QoSOverridingOptions.with_default_policies())
        self.ensure_subscriptions()

    # ------------------------------------------------------------------ subscriptions

    def _image_qos(self, cam: Camera) -> Optional[Tuple[str, QoSProfile]]:
        choice = self._node.config.image_qos
        if choice != 'auto':
            return choice, IMAGE_QOS[choice]
        pubs = self._node.get_publishers_info_by_topic(cam.sub_topic)
        if not pubs:
            return None
        best_effort = any(p.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT
                          for p in pubs)
        name = 'sensor_data' if best_effort else 'reliable'
        return name, IMAGE_QOS[name]

    def ensure_subscriptions(self):
        """Create image subscriptions; in auto QoS mode match (and re-match) the publishers."""
        node = self._node
        msg_type = CompressedImage if node.config.image_transport == 'compressed' else Image
        for cam in self.cameras:
            choice = self._image_qos(cam)
            if choice is None or choice[0] == cam.qos_name:
                continue
            name, profile = choice
            kinds = [QoSPolicyKind.HISTORY, QoSPolicyKind.DEPTH, QoSPolicyKind.RELIABILITY]
            if cam.sub is not None:
                # Re-match only while the user did not override the reliability (the override
                # parameters are named by the resolved topic: namespace and remappings applied).
                param = (f'qos_overrides.{resolved_topic(node, cam.sub_topic)}'
                         '.subscription.reliability')
                if node.has_parameter(param) and \
                        node.get_parameter(param).value != cam.auto_reliability:
                    continue
                if name == 'reliable':  # a best-effort subscriber hears reliable publishers
                    continue
                node.get_logger().info(
                    f'{cam.sub_topic}: a best-effort publisher appeared; re-subscribing with '
                    'sensor_data QoS')
                node.destroy_subscription(cam.sub)
                kinds = [QoSPolicyKind.HISTORY, QoSPolicyKind.DEPTH]
            else:
                cam.auto_reliability = profile.reliability.name.lower()
            cam.sub = node.create_subscription(
                msg_type, cam.sub_topic,
                node.guard.wrap(cam.sub_topic,
                                lambda msg, info, c=cam: self.on_image(msg, c, info), True),
                profile, callback_group=cam.group,
                qos_overriding_options=QoSOverridingOptions(kinds),
                event_callbacks=SubscriptionEventCallbacks(
                    incompatible_qos=lambda info, c=cam: self.on_incompatible_qos(info, c)))
            cam.qos_name = name
            node.get_logger().info(f'subscribed to {cam.sub_topic} with {name} QoS')

    def on_incompatible_qos(self, info, cam: Camera):
        """Warn (throttled) and count: a publisher on the topic can never reach us."""
        node = self._node
        node.session.count('qos_incompatible')
        cam.qos_incompatible += 1
        try:
            policy = qos_policy_name_from_kind(info.last_policy_kind)
        except (ValueError, KeyError):
            policy = str(info.last_policy_kind)
        hint = ('set image_qos to auto or sensor_data' if node.config.image_qos == 'reliable'
                else 'make the publisher and this subscription agree on that policy')
        node.guard.warn(
            (cam.sub_topic, 'qos'),
            f'{cam.sub_topic}: a publisher has QoS incompatible with this subscription '
            f'(policy {policy}, {info.total_count} incompatible match(es) so far); none of its '
            f'images arrive. Fix: {hint} (`ros2 topic info -v {cam.sub_topic}` shows both).')

    # ------------------------------------------------------------------ callbacks

    def on_camera_info(self, msg, cam: Camera, info=None):
        """Keep a valid K (with its reception time); count and report an invalid one."""
        try:
            model = camera_info_to_model(msg)
        except ConversionError as exc:
            self._node.session.count('camera_info_rejected')
            self._node.guard.warn((cam.info_topic, 'info', reason_kind(exc)),
                                  f'{cam.info_topic}: ignored: {exc}')
            return
        cam.model = model
        cam.k_history.append((received_ns(info), max(0, stamp_to_ns(msg.header.stamp)), model))

    def on_image(self, msg, cam: Camera, info=None):
        """Validate and convert one image; offer it to the keyframe buffer."""
        node, session, warn = self._node, self._node.session, self._node.guard.warn
        cfg = node.config
        session.count('frames_received')
        cam.received += 1
        if not node.inputs_open():
            session.count('frames_paused')
            return
        now = time.monotonic()
        self.last_frame_time = cam.last_time = now
        cam.silence_warned = False
        clock_ns = node.get_clock().now().nanoseconds
        try:
            stamp_ns = checked_stamp_ns(msg.header.stamp) or clock_ns
        except ConversionError as exc:
            session.count('invalid_frames')
            cam.rejected += 1
            warn((cam.sub_topic, 'stamp_range'), f'{cam.sub_topic}: rejected: {exc}')
            return
        if clock_ns > 0 and stamp_ns - clock_ns > MAX_FUTURE_STAMP_S * 1e9:
            session.count('stamp_future')
            cam.rejected += 1
            warn((cam.sub_topic, 'future'),
                 f'{cam.sub_topic}: rejected: header stamp is {(stamp_ns - clock_ns) / 1e9:.0f} s '
                 f'ahead of the node clock (limit {MAX_FUTURE_STAMP_S:.0f} s); check the clock '
                 'synchronisation of the camera host (or use_sim_time)')
            return
        buffer = session.buffer
        skip = buffer.precheck(cam.image_topic, stamp_ns)
        if skip is not None:
            buffer.note_skipped(cam.image_topic, skip)
            if skip == SKIP_BACKWARDS:
                warn((cam.sub_topic, 'stamp'), f'{cam.sub_topic}: header stamp went backwards; '
                     'frame skipped and keyframe history of this camera reset')
            return
        try:
            if isinstance(msg, CompressedImage):
                rgb = compressed_to_rgb(msg, cfg.max_image_side)
            else:
                rgb = image_to_rgb(msg, cfg.max_image_side)
        except ConversionError as exc:
            session.count('invalid_frames')
            cam.rejected += 1
            # one throttle per kind of problem: a different reason is still reported at once
            warn((cam.sub_topic, 'image', reason_kind(exc)), f'{cam.sub_topic}: rejected: {exc}')
            return
        self._check_size(cam, (int(rgb.shape[1]), int(rgb.shape[0])))
        if cam.frame_id is not None and msg.header.frame_id != cam.frame_id:
            session.count('frame_id_changes')
            warn((cam.sub_topic, 'frame_id'), f'{cam.sub_topic}: frame_id changed from '
                 f'{cam.frame_id!r} to {msg.header.frame_id!r}')
        cam.frame_id = msg.header.frame_id
        k, model = self._calibration(cam, (int(rgb.shape[1]), int(rgb.shape[0])), info,
                                     stamp_ns)
        name = f'{cam.image_topic}@{stamp_ns // 1_000_000_000}.{stamp_ns % 1_000_000_000:09d}'
        frame = Frame(image=rgb, name=name, stamp_ns=stamp_ns, camera=cam.image_topic, K=k,
                      camera_model=model, frame_id=msg.header.frame_id)
        if buffer.offer(frame, thumbnail(rgb)) != ACCEPTED:
            return
        buffered, announce = session.keyframe_accepted(cfg.min_views)
        node.outputs.event('image_received', camera=cam.image_topic, name=name,
                           stamp_ns=stamp_ns, width=int(rgb.shape[1]),
                           height=int(rgb.shape[0]), has_k=k is not None or model is not None,
                           distortion=model.distortion_model if model is not None else '',
                           buffered=buffered, min_views=cfg.min_views)
        if announce:
            node.outputs.event('upload_complete', buffered=buffered, min_views=cfg.min_views)
        node.maybe_auto_trigger()

    def _calibration(self, cam: Camera, size: Tuple[int, int], info, stamp_ns: int = 0):
        """
        Return ``(K, model)`` for an image of ``size``: K for a pinhole image, or the raw model.

        A raw image whose camera_info has lens distortion keeps its model (the worker removes
        the distortion before the backend runs, ``undistort`` parameter); otherwise K is the
        effective intrinsics (binning and ROI applied; P for ``image_rect*`` topics). The
        camera_info is matched to the image by stamp (within ``sync_tolerance``), else by
        reception time.
        """
        node = self._node
        known = cam.camera_info_at(received_ns(info), stamp_ns,
                                   int(round(node.config.sync_tolerance * 1e9)))
        if not node.config.use_camera_info or known is None:
            return None, None
        try:
            model = model_for_image(known, size, cam.rectified)
        except ConversionError as exc:
            node.session.count('camera_info_rejected')
            node.guard.warn((cam.info_topic, 'size'), f'{cam.info_topic}: K not used: {exc}')
            return None, None
        if not model.has_distortion:
            return np.array(model.K_eff, np.float64), None
        if node.config.undistort:
            return None, model
        if not cam.distortion_ignored_warned:
            cam.distortion_ignored_warned = True
            node.get_logger().warning(
                f'{cam.info_topic}: {model.distortion_model} lens distortion ignored '
                '(undistort is false): geometry from raw images will be biased')
        return np.array(model.K_eff, np.float64), None

    def _check_size(self, cam: Camera, size: Tuple[int, int]):
        """Report (once per change, counted) a camera whose size changes or differs."""
        node = self._node
        if cam.size is not None and size != cam.size:
            node.session.count('size_changes')
            node.guard.warn((cam.sub_topic, 'size_change'),
                            f'{cam.sub_topic}: image size changed from {cam.size[0]}x'
                            f'{cam.size[1]} to {size[0]}x{size[1]}; frame accepted (each view '
                            'keeps its own size)')
        cam.size = size
        for other in self.cameras:
            if other is cam or other.size is None or other.size == size:
                continue
            note = (cam.image_topic, size, other.image_topic, other.size)
            with node.session.lock:
                if note in self._size_notes or len(self._size_notes) > _SIZE_NOTES_MAX:
                    continue
                self._size_notes.add(note)
            node.session.count('camera_size_mismatches')
            node.get_logger().warning(
                f'{cam.sub_topic}: image size {size[0]}x{size[1]} differs from '
                f'{other.sub_topic} ({other.size[0]}x{other.size[1]}); frames accepted: the '
                'backends take mixed sizes, with intrinsics per camera')
