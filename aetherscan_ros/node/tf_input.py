# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
TF in: camera poses in ``fixed_frame`` at the image stamps, with a bounded wait.

tf2_ros's ``Buffer`` + ``TransformListener`` when importable (a ROS install); otherwise the
project's own :class:`aetherscan_ros.core.tf_buffer.TfBuffer` filled from ``/tf`` and
``/tf_static`` (same semantics: one parent per frame, interpolation, extrapolation errors).
A lookup that fails is a reason, never an exception: :meth:`TfInput.pose` returns
``(None, reason)``. Lookups block up to ``tf_timeout``: call them from the worker thread.
"""

from typing import Optional, Tuple

import numpy as np
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from tf2_msgs.msg import TFMessage

from aetherscan_ros.core.tf_buffer import TfBuffer, TfInputError, TfLookupError
from aetherscan_ros.ros.stamps import stamp_to_ns
from aetherscan_ros.ros.tf import transform_to_matrix

DYNAMIC_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                         reliability=ReliabilityPolicy.RELIABLE)
STATIC_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100,
                        reliability=ReliabilityPolicy.RELIABLE,
                        durability=DurabilityPolicy.TRANSIENT_LOCAL)
CACHE_TIME_S = 30.0


class TfInput:
    """Looks up optical frames in ``fixed_frame``; ``impl`` says which buffer is used."""

    def __init__(self, node, fixed_frame: str):
        self._node = node
        self.fixed_frame = fixed_frame
        self.last_reason = ''
        try:
            import tf2_ros
            self._tf2 = tf2_ros.Buffer()
            self._listener = tf2_ros.TransformListener(self._tf2, node)
            self._own = None
            self.impl = 'tf2_ros'
        except ImportError:
            self._tf2 = None
            self._own = TfBuffer(CACHE_TIME_S)
            for topic, qos, static in (('/tf', DYNAMIC_QOS, False),
                                       ('/tf_static', STATIC_QOS, True)):
                node.create_subscription(
                    TFMessage, topic,
                    node.guard.wrap(topic, lambda m, s=static: self._on_tf(m, s)), qos)
            self.impl = 'own TF buffer (tf2_ros not importable)'

    def _on_tf(self, msg, static: bool):
        for t in msg.transforms:
            rot, tr = t.transform.rotation, t.transform.translation
            try:
                self._own.set_transform(
                    t.header.frame_id.lstrip('/'), t.child_frame_id.lstrip('/'),
                    stamp_to_ns(t.header.stamp), (tr.x, tr.y, tr.z),
                    (rot.x, rot.y, rot.z, rot.w), static=static)
            except TfInputError as exc:
                self._node.guard.warn(('tf', t.child_frame_id, 'input'),
                                      f'/tf{"_static" if static else ""}: ignored: {exc}')

    def pose(self, frame_id: str, stamp_ns: int,
             timeout_s: float) -> Tuple[Optional[np.ndarray], str]:
        """Return ``(camera-to-fixed [4, 4], '')`` or ``(None, reason)``."""
        if not frame_id:
            return None, 'the image has no header.frame_id'
        try:
            if self._own is not None:
                return self._own.wait_for(self.fixed_frame, frame_id.lstrip('/'), stamp_ns,
                                          timeout_s), ''
            return self._tf2_pose(frame_id, stamp_ns, timeout_s), ''
        except TfLookupError as exc:
            self.last_reason = f'{frame_id} in {self.fixed_frame}: {exc}'
        except Exception as exc:  # noqa: B902 - tf2_ros raises its own exception types
            self.last_reason = f'{frame_id} in {self.fixed_frame}: {type(exc).__name__}: {exc}'
        return None, self.last_reason

    def _tf2_pose(self, frame_id: str, stamp_ns: int, timeout_s: float) -> np.ndarray:
        from rclpy.duration import Duration
        from rclpy.time import Time
        msg = self._tf2.lookup_transform(self.fixed_frame, frame_id,
                                         Time(nanoseconds=int(stamp_ns)),
                                         timeout=Duration(seconds=float(timeout_s)))
        return transform_to_matrix(msg)
