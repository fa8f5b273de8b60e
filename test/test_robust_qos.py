# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Issue 7, the classic silent failure: QoS mismatch, no publisher, a camera that goes quiet.

One node process with ``image_qos: reliable`` and three cameras: ``/qa`` has a reliable
publisher (delivers), ``/qb`` only a best-effort one (incompatible: nothing can arrive) and
``/qc`` none. The node must say so, per topic, once per silence, and count it in
/diagnostics; a stream that simply ended is not reported.
"""

import os
from pathlib import Path
import subprocess
import sys

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / 'robust_helpers'))
import malformed  # noqa: E402,I100 - test/robust_helpers is put on sys.path just above
from rig import NodeRig  # noqa: E402

pytestmark = pytest.mark.ros

QA, QB, QC = '/qa/image_raw', '/qb/image_raw', '/qc/image_raw'
SILENCE_S = 4.0  # no_frames_warning


def _lines(log, text):
    return [line for line in log.splitlines() if text in line]


@pytest.mark.slow
def test_qos_mismatch_missing_publisher_and_silence_are_reported(ros, tmp_path):
    from rclpy.parameter import Parameter
    from rclpy.parameter_client import AsyncParameterClient
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import Image

    rig = NodeRig(tmp_path)
    # a best-effort camera in another process: it can never reach a reliable subscription.
    # Started before the node, so it is in the graph (also on a loaded machine) before the
    # first silence check; it stays until the silence warnings are checked (they name its QoS).
    camera = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve().parent / 'robust_helpers' /
                             'malformed.py'), '--case', 'one_by_one', '--topic', QB,
         '--qos', 'best_effort', '--count', '1', '--linger', '120'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(os.environ), text=True)
    try:
        proc = rig.node(backend='classical', image_topics=[QA, QB, QC], image_qos='reliable',
                        auto_trigger=False, min_views=2, max_views=64,
                        keyframe_min_interval=0.0, keyframe_min_change=0.0,
                        no_frames_warning=SILENCE_S, diagnostics_period=0.2)
        mon = rig.monitor
        reliable = mon.node.create_publisher(Image, QA, QoSProfile(depth=10))
        assert mon.wait_for_node(60.0), rig.log()
        # /qa delivers three frames at once, then stops: no warning (they wait for a trigger)
        assert mon.spin_until(lambda: reliable.get_subscription_count() > 0, 30.0)
        for i in range(3):
            reliable.publish(malformed.good_image(3_000_000_000 + i * 10 ** 8, seed=i))
        assert mon.spin_until(lambda: rig.diag_int('buffered') == 3, 20.0), mon.diagnostics

        try:
            assert rig.wait_log(f'{QB}: a publisher has QoS incompatible with this '
                                'subscription (policy RELIABILITY', 30.0), rig.log()
            assert 'Fix: set image_qos to auto or sensor_data' in rig.log()
            assert mon.spin_until(lambda: rig.diag_int(f'{QB} qos_incompatible') >= 1, 10.0)
            assert rig.diag_int(f'{QB} received') == 0  # nothing arrived (1x1 image included)

            assert rig.wait_log(f'{QC}: no image for', 20.0), rig.log()
            assert rig.wait_log(f'{QB}: no image for', 20.0), rig.log()
            mon.spin_for(SILENCE_S + 1.0)  # more diagnostics and no_frames_warning periods
            log = rig.log()
            qc = _lines(log, f'{QC}: no image for')
            assert len(qc) == 1 and 'since the node started; no publisher on this topic' in qc[0]
            qb = _lines(log, f'{QB}: no image for')
            assert len(qb) == 1 and 'with incompatible QoS' in qb[0], qb
            assert mon.diagnostics['_level'] == 1  # WARN while QoS is incompatible
            assert 'incompatible QoS' in mon.diagnostics['_message']
        finally:
            camera.terminate()
            camera.communicate(timeout=60)
        assert not _lines(log, f'{QA}: no image for'), 'a finished stream was reported'
        assert mon.diagnostics[f'{QC} seconds_since_last_frame'] == 'never'

        # the buffer now waits for more keyframes than it has: /qa's silence matters (once)
        client = AsyncParameterClient(mon.node, 'aetherscan_node')
        assert client.wait_for_services(timeout_sec=10.0)
        future = client.set_parameters([Parameter('min_views', value=10)])
        assert mon.spin_until(future.done, 10.0) and future.result().results[0].successful
        assert rig.wait_log(f'{QA}: no image for', 10.0), rig.log()
        mon.spin_for(SILENCE_S + 1.0)
        qa = _lines(rig.log(), f'{QA}: no image for')
        assert len(qa) == 1 and 'with 3 of min_views=10 keyframes buffered' in qa[0], qa
        assert '1 publisher(s) but nothing arrives' in qa[0]

        # a new frame ends the silence; a later silence is reported again
        reliable.publish(malformed.good_image(4_000_000_000, seed=9))
        assert mon.spin_until(lambda: rig.diag_int('buffered') == 4, 20.0)
        assert mon.spin_until(lambda: len(_lines(rig.log(), f'{QA}: no image for')) == 2,
                              SILENCE_S + 5.0)
        mon.spin_for(SILENCE_S + 1.0)
        assert len(_lines(rig.log(), f'{QA}: no image for')) == 2
        assert proc.poll() is None and 'Traceback' not in rig.log()
    finally:
        if camera.poll() is None:
            camera.terminate()
            camera.communicate(timeout=60)
        rig.close()
