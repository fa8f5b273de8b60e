# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Publishers of the node and what goes out on them: chunks, the full cloud, TF, poses, markers.

QoS: outputs are reliable; the full cloud, camera poses, markers and static frames are
transient-local depth 1 so a late RViz still gets them; ``~/events`` keeps the last
:data:`EVENT_HISTORY` events for late subscribers. The ``msg.data`` buffers of ``~/points``
and ``~/cloud`` are reused from one publish to the next (worker thread only).
"""

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseArray
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import String
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray

from aetherscan_ros.backends.base import ReconstructionResult
from aetherscan_ros.core.depth import is_metric, result_depths
from aetherscan_ros.core.session import output_cloud
from aetherscan_ros.ros.depth import depth_pair
from aetherscan_ros.ros.events import event_msg
from aetherscan_ros.ros.markers import frusta_markers, robust_extent
from aetherscan_ros.ros.pointcloud2 import make_cloud_msg, MessageBuffer
from aetherscan_ros.ros.tf import (
    matrix_to_transform, poses_to_pose_array, poses_to_transforms, view_frame)

EVENT_HISTORY = 100  # ~/events is transient-local: a late subscriber gets the recent events
DEPTH_QUEUE = 64  # ~/depth, ~/depth/camera_info: one pair per view, max_views <= 64


def reliable_qos(depth: int, transient_local: bool = False) -> QoSProfile:
    """Return a reliable keep-last profile, volatile or transient-local."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE,
        durability=(DurabilityPolicy.TRANSIENT_LOCAL if transient_local
                    else DurabilityPolicy.VOLATILE))


class Outputs:
    """The node's publishers and the messages built for them."""

    def __init__(self, node):
        self._node = node
        overrides = QoSOverridingOptions.with_default_policies()

        def pub(msg_type, topic, qos):
            return node.create_publisher(msg_type, topic, qos, qos_overriding_options=overrides)

        self.points = pub(PointCloud2, '~/points', reliable_qos(100))
        self.cloud = pub(PointCloud2, '~/cloud', reliable_qos(1, True))
        self.poses = pub(PoseArray, '~/camera_poses', reliable_qos(1, True))
        self.markers = pub(MarkerArray, '~/cameras', reliable_qos(1, True))
        self.events = pub(String, '~/events', reliable_qos(EVENT_HISTORY, True))
        self.depth = pub(Image, '~/depth', reliable_qos(DEPTH_QUEUE))
        # the same images where image_transport looks for them: <ns>/image beside
        # <ns>/camera_info (depth_image_proc, nvblox); published only when subscribed
        self.depth_image = pub(Image, '~/depth/image', reliable_qos(DEPTH_QUEUE))
        self.depth_info = pub(CameraInfo, '~/depth/camera_info', reliable_qos(DEPTH_QUEUE))
        self.tf_static = node.create_publisher(TFMessage, '/tf_static', reliable_qos(1, True))
        self.diagnostics = node.create_publisher(DiagnosticArray, '/diagnostics',
                                                 reliable_qos(10))
        self._chunk_buffer = MessageBuffer()
        self._cloud_buffer = MessageBuffer()

    def event(self, event: str, **fields):
        """Publish one ``~/events`` entry; never raises (the publisher is gone at shutdown)."""
        try:
            self.events.publish(event_msg(event, **fields))
        except Exception as exc:  # noqa: B902 - shutting down: the publisher is gone
            self._node.get_logger().debug(f'event {event} not published: {exc}')

    def publish_chunks(self, chunks, stamp_ns: int):
        """Publish ``[(ChunkInfo, cloud), ...]`` on ``~/points``."""
        frame = self._node.config.world_frame
        for info, cloud in chunks:
            self.points.publish(make_cloud_msg(cloud, frame, stamp_ns, chunk_info=info,
                                               out=self._chunk_buffer.take()))
            self._node.session.count('chunks_published')

    def publish_result(self, result: ReconstructionResult, stamp_ns: int, anchor=None):
        """
        Publish the full cloud, the camera TF frames, poses and frustum markers.

        An accepted ``anchor`` (the result is already in metres) adds
        ``fixed_frame -> world_frame`` (its rigid ``world_to_fixed``) to ``/tf_static``.
        """
        cfg = self._node.config
        cloud, note = output_cloud(result, cfg.voxel_size, cfg.cloud_max_points)
        if note:
            self._node.get_logger().info(f'~/cloud: {note}')
        self.cloud.publish(make_cloud_msg(cloud, cfg.world_frame, stamp_ns,
                                          out=self._cloud_buffer.take()))
        transforms = poses_to_transforms(
            result.poses_c2w, cfg.world_frame, cfg.frame_prefix, stamp_ns)
        if anchor is not None and anchor.ok:
            transforms.insert(0, matrix_to_transform(anchor.world_to_fixed, cfg.fixed_frame,
                                                     cfg.world_frame, stamp_ns))
        self.tf_static.publish(TFMessage(transforms=transforms))
        self.poses.publish(poses_to_pose_array(result.poses_c2w, cfg.world_frame, stamp_ns))
        depth = cfg.frustum_scale or 0.1 * robust_extent(result.points) or 0.1
        self.markers.publish(frusta_markers(
            result.poses_c2w, result.intrinsics, result.image_sizes, cfg.world_frame,
            stamp_ns, depth))
        self.publish_depth(result, self._node.session.result_frames)

    def publish_depth(self, result: ReconstructionResult, frames) -> int:
        """
        Publish one ``~/depth`` + ``~/depth/camera_info`` pair per registered view.

        The image also goes to ``~/depth/image`` when that has a subscriber (image_transport's
        layout: the camera_info beside the image).

        Header: the view's image stamp and optical frame: the image's ``frame_id`` when the
        result is metric (anchored in TF's frames), else (no frame id, or ``depth_output``
        ``always`` on an unscaled result) the node's ``<frame_prefix>camera_<i>_optical``,
        whose TF carries the same scale as the depth. ``auto`` publishes metric results only.
        Size: the backend's working resolution (Fast3R's network images; CameraInfo for it).
        Returns the number of pairs published.
        """
        cfg = self._node.config
        metric = is_metric(result)
        reason = ''
        if cfg.depth_output == 'off':
            return 0
        if cfg.depth_output == 'auto' and not metric:
            reason = ('the result is not metric (no fixed_frame anchor); depth_output always '
                      'publishes it in reconstruction units')
        elif len(frames) != result.num_views:
            reason = f'{len(frames)} frames for {result.num_views} views'
        elif not (self.depth.get_subscription_count() or
                  self.depth_image.get_subscription_count() or
                  self.depth_info.get_subscription_count()):
            reason = 'no subscriber'  # volatile topics: nothing rendered for nobody
        if reason:
            if reason != 'no subscriber':
                self._node.get_logger().info(f'~/depth not published: {reason}', once=True)
            self.event('depth', views=0, metric=metric, reason=reason)
            return 0
        count = 0
        for item in result_depths(result, working_resolution=True):
            if item is None:  # not registered: no pose, no depth
                continue
            frame = frames[item.view]
            own = frame.frame_id if metric and frame.frame_id else ''
            image, info = depth_pair(item, frame.stamp_ns,
                                     own or view_frame(cfg.frame_prefix, item.view))
            self.depth.publish(image)
            if self.depth_image.get_subscription_count():
                self.depth_image.publish(image)
            self.depth_info.publish(info)
            count += 1
        self.event('depth', views=count, metric=metric)
        return count
