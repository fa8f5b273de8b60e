# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The node side of ``mode: mapping``: windows started, fused, published (contract: core/mapping).

:class:`NodeMapping` owns the :class:`~aetherscan_ros.core.mapping.Mapper` and the mapping
publishers: ``~/map`` (PointCloud2, reliable + transient-local depth 1, fields ``x y z rgb
confidence count``), ``~/path`` (nav_msgs/Path, transient-local), ``/tf`` (the newest keyframe
as ``<frame_prefix>map_camera_optical``) and a ``<node>: mapping`` status on ``/diagnostics``.
The node routes its triggers, the worker's results and failures, ``~/reset`` and ``~/save``
here when the mode is ``mapping``; windows run on the worker like snapshot jobs.
"""

import threading

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path
from sensor_msgs.msg import PointCloud2
from tf2_msgs.msg import TFMessage

from aetherscan_ros.cloud import ChunkStream, CloudArrays, point_budget
from aetherscan_ros.core.large_messages import tune_malloc_for_mapping_node
from aetherscan_ros.core.mapping import Mapper, MappingConfig, WindowReport
from aetherscan_ros.node.outputs import reliable_qos
from aetherscan_ros.ros.pointcloud2 import make_cloud_msg, MessageBuffer
from aetherscan_ros.ros.stamps import ns_to_stamp
from aetherscan_ros.ros.tf import matrix_to_transform, poses_to_pose_array

TF_QUEUE = 100
CAMERA_FRAME = 'map_camera_optical'   # the newest keyframe: <frame_prefix>map_camera_optical


def mapping_config(cfg) -> MappingConfig:
    """Return the :class:`MappingConfig` of a ``NodeConfig``."""
    group = len(cfg.image_topics) if cfg.capture_mode == 'sets' else 1
    return MappingConfig(cfg.window_size, cfg.window_overlap, cfg.map_voxel_size,
                         cfg.map_max_points, cfg.map_radius, metric=bool(cfg.fixed_frame),
                         group=group)


class NodeMapping:
    """Mapping collaborator of the node (see the module docstring)."""

    def __init__(self, node):
        self._node = node
        cfg = node.config
        # the map's arrays grow a little every window: map each large one on its own so the
        # heap does not keep every older size (bench/bench_soak_mapping.py; large_messages)
        node.get_logger().info(f'mapping mode: malloc {tune_malloc_for_mapping_node()}')
        self.mapper = Mapper(mapping_config(cfg))
        self.frame = cfg.fixed_frame or cfg.world_frame
        self.map_pub = node.create_publisher(PointCloud2, '~/map', reliable_qos(1, True))
        self.path_pub = node.create_publisher(Path, '~/path', reliable_qos(1, True))
        self.tf_pub = node.create_publisher(TFMessage, '/tf', reliable_qos(TF_QUEUE))
        self._map_buffer = MessageBuffer()
        self._publish_lock = threading.Lock()   # worker (windows) and executor (~/reset)
        self._delta_buffer = MessageBuffer()
        self._generation = 0
        self._last = None   # the last WindowReport

    # ------------------------------------------------------------------ windows

    def try_start(self, trigger: str):
        """Start the next window when enough new keyframes wait; return (started, message)."""
        node = self._node
        generation = self.mapper.generation
        force = trigger == 'service'   # ~/reconstruct maps what waits, even a short window
        job, message = node.session.try_start(
            trigger, 0, 0, take=lambda buffer: self.mapper.take_window(buffer, force))
        if job is None:
            return False, message
        self._generation = generation
        node.worker.submit(job)
        return True, f'window #{job.recon}: {message}'

    def on_result(self, job, result, anchor):
        """Register and fuse a reconstructed window, then publish (worker thread)."""
        report = self.mapper.integrate(job.recon, job.frames, result, anchor, self._generation)
        self.publish(report, job.stamp_ns)

    def on_failed(self, job, reason: str, backend: str = ''):
        """Report a window that could not be reconstructed; the map keeps going. Never raises."""
        report = self.mapper.window_failed(job.recon, job.frames, reason, backend)
        try:
            self.publish(report, job.stamp_ns)
        except Exception as exc:  # noqa: B902 - shutting down: the publishers are gone
            self._node.get_logger().debug(f'window #{job.recon} not reported: {exc}')
            return
        # the scheduler skipped a keyframe, so the next window differs: no need to wait for a
        # new keyframe (the stream may have ended) before trying it
        with self._node.session.lock:
            self._node.session.auto_blocked = False
        self._node.maybe_auto_trigger()

    # ------------------------------------------------------------------ outputs

    def publish(self, report: WindowReport, stamp_ns: int):
        """Publish the delta, the map, the path, TF and the ``window_complete`` event."""
        node = self._node
        self._last = report
        if report.registered:
            self._publish_delta(report.window, stamp_ns)
            self.publish_map(stamp_ns)
            self.publish_path(stamp_ns)
            with self.mapper.lock:
                newest = self.mapper.keyframes[-1] if self.mapper.keyframes else None
            if newest is not None:   # at its image stamp, like any TF of a moving frame
                self.tf_pub.publish(TFMessage(transforms=[matrix_to_transform(
                    newest.pose_c2w, self.frame, node.config.frame_prefix + CAMERA_FRAME,
                    newest.stamp_ns)]))
            node.get_logger().info(
                f'window #{report.window} registered ({report.method}, scale '
                f'{report.scale:.4g}): +{report.points_added} voxels, {report.map_points} in '
                f'the map, {report.keyframes_total} keyframes')
        else:
            node.get_logger().warning(f'window #{report.window} not registered: '
                                      f'{report.reason}; the map keeps going')
        node.outputs.event('window_complete', frame=self.frame, **report.to_event())
        self.publish_diagnostics()

    def _publish_delta(self, window: int, stamp_ns: int):
        node = self._node
        changed, _ = self.mapper.take_changes()
        stream = ChunkStream(window, node.config.chunk_points, session=node.session.session_id)
        chunks = [] if changed is None else stream.add(*changed)
        for info, cloud in chunks + stream.finish():
            node.outputs.points.publish(make_cloud_msg(
                cloud, self.frame, stamp_ns, chunk_info=info, out=self._delta_buffer.take()))
            node.session.count('chunks_published')

    def publish_map(self, stamp_ns: int):
        """Publish the whole map on ``~/map`` (budgeted to ``cloud_max_points``)."""
        with self._publish_lock:
            self._publish_map(stamp_ns)

    def _publish_map(self, stamp_ns: int):
        cloud = self.mapper.map_cloud()
        if cloud is None:
            cloud = CloudArrays.empty()
        budget = self._node.config.cloud_max_points
        if budget and len(cloud) > budget:
            cloud, _ = point_budget(*cloud, max_points=budget)
        msg = make_cloud_msg(cloud, self.frame, stamp_ns, out=self._map_buffer.take())
        for field in msg.fields:
            if field.name == 'view':
                field.name = 'count'
        self.map_pub.publish(msg)

    def publish_path(self, stamp_ns: int):
        """Publish every keyframe pose on ``~/path``."""
        with self.mapper.lock:
            keyframes = [(k.stamp_ns, k.pose_c2w) for k in self.mapper.keyframes]
        msg = Path()
        msg.header.stamp = ns_to_stamp(stamp_ns)
        msg.header.frame_id = self.frame
        for stamp, pose in keyframes:
            item = PoseStamped()
            item.header.stamp = ns_to_stamp(stamp)
            item.header.frame_id = self.frame
            item.pose = poses_to_pose_array(pose[None], self.frame, stamp).poses[0]
            msg.poses.append(item)
        self.path_pub.publish(msg)

    def publish_diagnostics(self):
        """Publish the ``<node>: mapping`` status on ``/diagnostics``; never raises."""
        node = self._node
        try:
            values = self.mapper.snapshot()
            last = self._last
            level, message = DiagnosticStatus.OK, 'mapping'
            if last is not None and not last.registered:
                level = DiagnosticStatus.WARN
                message = f'window #{last.window} not registered: {last.reason}'
            values.update(frame=self.frame, last_window=last.window if last else '',
                          busy=node.session.busy)
            status = DiagnosticStatus(
                level=level, name=f'{node.get_fully_qualified_name()}: mapping',
                message=message, values=[KeyValue(key=k, value=str(v))
                                         for k, v in values.items()])
            diag = DiagnosticArray(status=[status])
            diag.header.stamp = node.get_clock().now().to_msg()
            node.outputs.diagnostics.publish(diag)
        except Exception as exc:  # noqa: B902 - shutting down: not fatal
            node.get_logger().debug(f'mapping diagnostics not published: {exc}')

    # ------------------------------------------------------------------ services

    def reset(self) -> str:
        """Start a new map; publish the empty map and path; return the service message."""
        dropped = self.mapper.reset()
        stamp_ns = self._node.get_clock().now().nanoseconds
        self.publish_map(stamp_ns)
        self.publish_path(stamp_ns)
        self._node.outputs.event('map_reset', map_points=dropped)
        return f'map cleared ({dropped} voxels)'

    def save_now(self, response):
        """Write ``map.ply`` + ``keyframes.json`` into ``output_dir/map_NNNN`` (atomic)."""
        from aetherscan_ros.files.atomic import save_directory_atomically
        node = self._node
        snap = self.mapper.snapshot()
        out_dir = node.config.resolved_output_dir()
        counts = []
        try:
            target = save_directory_atomically(
                out_dir, f'map_{snap["windows_ok"]:04d}',
                lambda directory: counts.append(self.mapper.save(directory)))
        except Exception as exc:  # noqa: B902 - empty map, disk full...: reported
            node.session.count('saves_failed')
            response.success = False
            response.message = (f'save of the map into {out_dir} failed (nothing written): '
                                f'{type(exc).__name__}: {exc}')
            node.get_logger().error(response.message)
            return response
        node.session.count('saves_ok')
        voxels, keyframes = counts[0]
        node.outputs.event('saved', path=str(target), map_points=voxels, keyframes=keyframes)
        response.success = True
        response.message = str(target)
        return response
