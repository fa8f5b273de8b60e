# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""``/diagnostics`` of the node: state, counters, per-camera figures and silent cameras."""

import time
from typing import List, Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

BUFFER_COUNTERS = ('offered', 'keyframe', 'skipped_interval', 'skipped_similar',
                   'stamp_backwards', 'dropped_busy', 'evicted', 'restored', 'cleared',
                   'sets_complete', 'sets_incomplete_dropped', 'pending')


def gpu_memory(backend) -> Optional[dict]:
    """Return the CUDA memory figures when ``backend`` runs on a GPU, else ``None``."""
    if backend is None or not str(getattr(backend, 'device', '')).startswith('cuda'):
        return None
    try:
        from aetherscan_ros.models.torch_device import gpu_memory as read
        return read()
    except Exception:  # noqa: B902 - diagnostics must never raise
        return None


class Diagnostics:
    """Builds and publishes the node's ``DiagnosticStatus``; reports silent cameras once."""

    def __init__(self, node):
        self._node = node
        self._start_time = time.monotonic()

    def publish(self):
        """Publish one ``DiagnosticArray`` with the node's state."""
        node = self._node
        cfg = node.config
        cameras = node.cameras
        counters = node.session.buffer.snapshot_counters()
        idle = time.monotonic() - cameras.last_frame_time
        state = node.session.snapshot()
        stats, busy, backend = state['stats'], state['busy'], state['backend']
        level, message = DiagnosticStatus.OK, 'idle'
        if busy:
            message = f'reconstruction #{state["recon_id"]} running'
        elif cfg.no_frames_warning > 0 and idle > cfg.no_frames_warning:
            message = f'idle: no frames for {idle:.0f} s'
        silent = self.check_silence(counters.get('buffered', 0))
        if silent:
            level = DiagnosticStatus.WARN
            message = 'no images on ' + ', '.join(silent)
        if stats['qos_incompatible']:
            level = DiagnosticStatus.WARN
            message = 'a publisher has incompatible QoS on ' + ', '.join(
                c.sub_topic for c in cameras.cameras if c.qos_incompatible)
        if state['last_error']:
            level = DiagnosticStatus.WARN
            message = f'last reconstruction failed: {state["last_error"]}'
        if backend is None:
            level, message = DiagnosticStatus.ERROR, state['backend_reason']
        values = {
            'buffered': counters.get('buffered', 0), 'min_views': cfg.min_views,
            'max_views': cfg.max_views, 'busy': busy,
            'backend': getattr(backend, 'name', 'none'),
            'device': str(getattr(backend, 'device', '')),
            'backend_reason': state['backend_reason'],
            'seconds_since_last_frame': round(idle, 1)}
        values.update(stats)
        for key in BUFFER_COUNTERS:
            values[key] = counters.get(key, 0)
        now = time.monotonic()
        for cam in cameras.cameras:
            values[f'{cam.sub_topic} qos'] = cam.qos_name or 'waiting for a publisher'
            values[f'{cam.sub_topic} received'] = cam.received
            values[f'{cam.sub_topic} rejected'] = cam.rejected
            values[f'{cam.sub_topic} qos_incompatible'] = cam.qos_incompatible
            values[f'{cam.sub_topic} seconds_since_last_frame'] = \
                'never' if cam.last_time is None else round(now - cam.last_time, 1)
        if node.config.fixed_frame:
            anchor = node.session.last_anchor or {}
            values['fixed_frame'] = node.config.fixed_frame
            values['tf'] = node.tf_input.impl if node.tf_input is not None else 'off'
            for key in ('ok', 'reason', 'scale', 'residual_rms_m', 'residual_max_m'):
                values[f'anchor_{key}'] = anchor.get(key, '')
            values['anchor_views_rejected'] = len(anchor.get('views_rejected', []))
            values['tf_last_failure'] = node.tf_input.last_reason if node.tf_input else ''
        gpu = gpu_memory(backend)
        if gpu:
            values.update({f'gpu_{k}': v for k, v in gpu.items()})
        status = DiagnosticStatus(
            level=level, name=f'{node.get_fully_qualified_name()}: reconstruction',
            message=message, hardware_id=str(values['device']),
            values=[KeyValue(key=str(k), value=str(v)) for k, v in values.items()])
        diag = DiagnosticArray(status=[status])
        diag.header.stamp = node.get_clock().now().to_msg()
        node.outputs.diagnostics.publish(diag)

    def publish_now(self):
        """Publish /diagnostics out of period (state changes); never raises."""
        try:
            self.publish()
        except Exception as exc:  # noqa: B902 - shutting down, or a diagnostics bug: not fatal
            self._node.get_logger().debug(f'diagnostics not published: {exc}')

    def check_silence(self, buffered: int) -> List[str]:
        """
        Return the image topics that are silent while they matter; warn once per silence.

        A camera counts as silent after ``no_frames_warning`` seconds without an image when
        it never delivered one, when other cameras still deliver, or when the buffer waits
        for more keyframes (fewer than ``min_views``). A stream that simply ended after its
        reconstruction is not a problem and is not reported. The log line names the topic
        and what the graph shows (no publisher / publishers that deliver nothing = QoS).
        """
        node = self._node
        cfg = node.config
        if cfg.no_frames_warning <= 0:
            return []
        now = time.monotonic()
        limit = cfg.no_frames_warning
        cameras = node.cameras.cameras
        active = [c for c in cameras if c.last_time is not None and now - c.last_time <= limit]
        silent = []
        for cam in cameras:
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
            pubs = node.count_publishers(cam.sub_topic)
            if pubs == 0:
                hint = 'no publisher on this topic: check the topic name and remappings'
            elif cam.qos_incompatible:
                hint = f'{pubs} publisher(s), with incompatible QoS (see the warning above)'
            else:
                hint = (f'{pubs} publisher(s) but nothing arrives: they publish nothing, or '
                        f'with QoS this subscription cannot hear (`ros2 topic info -v '
                        f'{cam.sub_topic}`)')
            node.get_logger().warning(f'{cam.sub_topic}: no image for {since:.0f} s {why}; '
                                      f'{hint}')
        return silent
