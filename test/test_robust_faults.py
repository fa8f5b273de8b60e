# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Issue 7, faults: backend exceptions, injected out-of-memory, ~/save failures, signals.

In-process tests build :class:`aetherscan_ros.node.AetherscanNode` with a ``backend_factory``
(the test seam for injecting a backend) and spin it on a ``SingleThreadedExecutor`` (the one
``main`` spins) in a thread, while this test's :class:`NodeMonitor` publishes images and calls
the services over DDS. The signal tests run the node's real ``main()`` as a subprocess
(``test/robust_helpers/slow_backend_node.py``) while a reconstruction is running.
"""

import os
from pathlib import Path
import signal
import sys
import threading

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / 'robust_helpers'))
import malformed  # noqa: E402,I100 - test/robust_helpers is put on sys.path just above
from rig import NodeRig  # noqa: E402

from aetherscan_ros.backends.base import (  # noqa: E402,I202
    ProgressEvent, ReconstructionError, result_from_view_clouds, ViewCloud)

pytestmark = pytest.mark.ros

HELPERS = Path(__file__).resolve().parent / 'robust_helpers'
TOPIC = '/fault_cam/image_raw'


class FlakyBackend:
    """A backend that fails the first ``failures`` calls with ``error``, then succeeds."""

    name = 'flaky_test'
    device = 'cpu'

    def __init__(self, failures=1, error=ZeroDivisionError('injected failure inside backend')):
        self.failures = failures
        self.error = error
        self.calls = []

    def describe(self):
        return 'test backend'

    def reconstruct(self, frames, progress=None):
        frames = list(frames)
        self.calls.append([f.name for f in frames])
        clouds = []
        for i, frame in enumerate(frames):
            cloud = ViewCloud(i, np.array([[0.1 * i, 0.0, 1.0]], np.float32),
                              frame.image[:1, 0].copy(), np.ones(1, np.float32))
            clouds.append(cloud)
            if progress is not None:  # stream a view, then fail half-way when asked to
                progress(ProgressEvent('view_points', (i + 1) / len(frames), '', cloud))
            if len(self.calls) <= self.failures and i == 0:
                raise self.error
        poses = np.repeat(np.eye(4)[None], len(frames), 0)
        poses[:, 0, 3] = np.arange(len(frames))
        ks = np.stack([np.array([[50.0, 0, 32], [0, 50.0, 24], [0, 0, 1]])] * len(frames))
        sizes = np.array([f.size for f in frames])
        return result_from_view_clouds(clouds, poses, ks, sizes, self.name)


class InProcess:
    """The node under test on its own executor thread, plus publisher and monitor."""

    def __init__(self, tmp_path, backend, **overrides):
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.parameter import Parameter
        from rclpy.qos import QoSProfile
        from sensor_msgs.msg import Image

        from aetherscan_ros.demo.run_demo import NodeMonitor
        from aetherscan_ros.node import AetherscanNode
        values = {'image_topics': [TOPIC], 'auto_trigger': False, 'min_views': 2,
                  'keyframe_min_interval': 0.0, 'keyframe_min_change': 0.0,
                  'diagnostics_period': 0.2, 'no_frames_warning': 0.0,
                  'output_dir': str(tmp_path / 'out'), 'use_camera_info': False}
        values.update(overrides)
        self.node = AetherscanNode(
            backend_factory=lambda: (backend, 'injected test backend'),
            parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
        self.executor = SingleThreadedExecutor()  # the executor production spins
        self.executor.add_node(self.node)
        self.errors = []
        self.thread = threading.Thread(target=self._spin, daemon=True)
        self.thread.start()
        self.monitor = NodeMonitor()
        self.pub = self.monitor.node.create_publisher(Image, TOPIC, QoSProfile(depth=20))
        assert self.monitor.wait_for_node(30.0)
        assert self.monitor.spin_until(lambda: self.pub.get_subscription_count() > 0, 30.0)
        assert self.monitor.wait_event('backend_selected', 30.0)
        self.stamp = 1_700_000_000 * 10 ** 9

    def _spin(self):
        try:
            self.executor.spin()
        except Exception as exc:  # a callback exception ends spin(): the test must see it
            self.errors.append(exc)

    def publish_good(self, count, size=(64, 48)):
        for i in range(count):
            self.stamp += 100_000_000
            self.pub.publish(malformed.good_image(self.stamp, seed=self.stamp % 997 + i,
                                                  width=size[0], height=size[1]))
        return self.monitor.spin_until(
            lambda: self.monitor.diagnostics.get('buffered') == str(count), 20.0)

    def close(self):
        self.monitor.close()
        self.executor.shutdown(timeout_sec=5.0)
        self.node.destroy_node()
        self.thread.join(5.0)


@pytest.fixture
def make_node(ros, tmp_path):
    """Yield a factory of :class:`InProcess` rigs; close them afterwards."""
    made = []

    def make(backend, **overrides):
        rig = InProcess(tmp_path, backend, **overrides)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.close()


def test_backend_exception_keeps_frames_and_reconstruct_retries(make_node):
    """An exception inside the backend: error event, frames kept, ~/reconstruct retry works."""
    backend = FlakyBackend(failures=1)
    rig = make_node(backend)
    mon = rig.monitor
    assert rig.publish_good(3), mon.diagnostics
    ok, message = mon.call('reconstruct')
    assert ok and 'with 3 views' in message, message
    error = mon.wait_event('error', 20.0, stage='reconstruct')
    assert error is not None
    assert 'ZeroDivisionError: injected failure inside backend' in error['message']
    assert error['frames_kept'] == 3
    assert mon.spin_until(lambda: mon.diagnostics.get('reconstructions_failed') == '1' and
                          mon.diagnostics.get('buffered') == '3' and
                          mon.diagnostics.get('busy') == 'False', 10.0), mon.diagnostics
    assert 'last reconstruction failed' in mon.diagnostics['_message']
    ok, message = mon.call('reconstruct')  # same frames, retried
    assert ok and 'reconstruction #2 with 3 views' in message, message
    done = mon.wait_event('reconstruction_complete', 20.0)
    assert done is not None and done['views'] == 3 and done['reconstruction'] == 2
    assert backend.calls[0] == backend.calls[1]  # exactly the frames of the failed attempt
    assert mon.spin_until(lambda: 2 in mon.assembled, 10.0)  # the retry streamed completely
    assert len(mon.assembled[2].points) == 3
    assert not rig.errors and rig.thread.is_alive()


def test_internal_error_outside_backend_does_not_kill_the_worker(make_node, monkeypatch):
    """An exception in the node's own job code: error event, frames back, worker alive."""
    import aetherscan_ros.core.session as session_module
    backend = FlakyBackend(failures=0)
    rig = make_node(backend)
    mon = rig.monitor
    assert rig.publish_good(2)
    real = session_module.ChunkStream

    def broken(*args, **kwargs):
        raise MemoryError('injected: cannot allocate the chunk stream')

    monkeypatch.setattr(session_module, 'ChunkStream', broken)
    ok, _ = mon.call('reconstruct')
    assert ok
    error = mon.wait_event('error', 20.0, stage='internal')
    assert error is not None and 'MemoryError' in error['message'], mon.events
    assert error['frames_kept'] == 2
    assert mon.spin_until(lambda: mon.diagnostics.get('reconstructions_failed') == '1' and
                          mon.diagnostics.get('buffered') == '2' and
                          mon.diagnostics.get('busy') == 'False', 10.0), mon.diagnostics
    monkeypatch.setattr(session_module, 'ChunkStream', real)
    ok, message = mon.call('reconstruct')
    assert ok, message
    assert mon.wait_event('reconstruction_complete', 20.0) is not None
    assert not rig.errors


def test_exception_in_a_service_callback_is_answered_not_fatal(make_node, monkeypatch):
    """A failing service handler answers success=False; the executor keeps spinning."""
    rig = make_node(FlakyBackend(failures=0))
    mon = rig.monitor

    def broken_clear():
        raise OSError('injected: disk vanished')

    monkeypatch.setattr(rig.node.session.buffer, 'clear', broken_clear)
    ok, message = mon.call('reset')
    assert not ok and 'OSError: injected: disk vanished' in message
    assert mon.spin_until(lambda: mon.diagnostics.get('callback_errors') == '1', 10.0)
    assert rig.publish_good(2)  # subscriptions still served
    assert not rig.errors and rig.thread.is_alive()


def test_save_is_atomic_inside_output_dir_and_never_overwrites(make_node, tmp_path,
                                                               monkeypatch):
    """~/save: a failure leaves nothing; earlier results are kept; output_dir is read-only."""
    from rclpy.parameter import Parameter
    from rclpy.parameter_client import AsyncParameterClient

    import aetherscan_ros.files.preview as preview
    from aetherscan_ros.files.poses import read_poses_json
    rig = make_node(FlakyBackend(failures=0))
    mon = rig.monitor
    out = (tmp_path / 'out').resolve()
    ok, message = mon.call('save')
    assert not ok and 'no reconstruction result' in message
    assert rig.publish_good(2)
    assert mon.call('reconstruct')[0]
    assert mon.wait_event('reconstruction_complete', 20.0) is not None

    # a result of an earlier run has the same name: it must survive
    (out / 'reconstruction_0001').mkdir(parents=True)
    (out / 'reconstruction_0001' / 'poses.json').write_text('earlier run')

    def failing_preview(result, path, size=(960, 720)):
        raise RuntimeError('injected: preview renderer crashed')

    monkeypatch.setattr(preview, 'render_preview', failing_preview)
    ok, message = mon.call('save')
    assert not ok and 'nothing written' in message and 'injected: preview' in message
    assert sorted(p.name for p in out.iterdir()) == ['reconstruction_0001']  # no temp left
    monkeypatch.undo()
    ok, path = mon.call('save', 60.0)
    assert ok, path
    assert Path(path) == out / 'reconstruction_0001_2'
    assert (out / 'reconstruction_0001' / 'poses.json').read_text() == 'earlier run'
    # the default save_exports: colmap + nerfstudio (transforms.json, images/) beside the cloud
    assert {'cloud.ply', 'poses.json', 'preview.png', 'colmap', 'images', 'transforms.json'} == \
        {p.name for p in Path(path).iterdir()}
    assert read_poses_json(Path(path) / 'poses.json').poses_c2w.shape == (2, 4, 4)
    assert mon.call('save')[1] == path  # same result again: same directory, not a copy
    names = sorted(p.name for p in out.iterdir())
    assert names == ['reconstruction_0001', 'reconstruction_0001_2']
    assert mon.spin_until(lambda: mon.diagnostics.get('saves_failed') == '1' and
                          mon.diagnostics.get('saves_ok') == '1', 10.0), mon.diagnostics

    # output_dir cannot be redirected through a parameter call at run time
    client = AsyncParameterClient(mon.node, 'aetherscan_node')
    assert client.wait_for_services(timeout_sec=10.0)
    future = client.set_parameters([Parameter('output_dir', value='/tmp/../etc')])
    assert mon.spin_until(future.done, 10.0)
    result = future.result().results[0]
    assert not result.successful and 'read-only' in result.reason


def test_save_refuses_a_symlinked_name_escaping_output_dir(tmp_path):
    """The directory helper behind ~/save never writes through a link out of output_dir."""
    from aetherscan_ros.files.atomic import save_directory_atomically
    out = tmp_path / 'out'
    outside = tmp_path / 'outside'
    out.mkdir()
    outside.mkdir()
    (out / 'r').symlink_to(outside)
    written = save_directory_atomically(out, 'r', lambda d: (d / 'x').write_text('1'))
    assert written == (out / 'r_2').resolve() and not list(outside.iterdir())
    for bad in ('../escape', '/etc/passwd', 'a/../../escape', ''):
        with pytest.raises(ValueError):
            save_directory_atomically(out, bad, lambda d: None)
    assert sorted(p.name for p in out.iterdir()) == ['r', 'r_2']


def test_injected_cuda_oom_through_the_node_retries_then_cpu(make_node, tmp_path):
    """Fast3R's forward raises CUDA OOM: smaller head chunks, then this call on the CPU."""
    import torch

    from aetherscan_ros.backends.fast3r import Fast3RBackend
    from aetherscan_ros.models.fast3r import write_random_checkpoint
    ckpt = write_random_checkpoint(tmp_path / 'ckpt', preset='tiny')
    backend = Fast3RBackend(str(ckpt), device='cpu', size=64, head_chunk=4)
    real = backend._forward
    calls = []

    def forward(model, tensors, ids, chunk, device, dtype):  # the seam fast3r.py documents
        calls.append((device.type, chunk))
        if device.type == 'cuda':
            raise torch.OutOfMemoryError('CUDA out of memory. Tried to allocate 8.00 GiB')
        return real(model, tensors, ids, chunk, device, dtype)

    backend._device = torch.device('cuda')  # pretend; the patched forward never touches it
    backend._forward = forward
    rig = make_node(backend)
    mon = rig.monitor
    assert rig.publish_good(3)
    assert mon.call('reconstruct')[0]
    done = mon.wait_event('reconstruction_complete', 60.0)
    assert done is not None, mon.events
    assert calls == [('cuda', 3), ('cuda', 1), ('cpu', 3)]
    fallbacks = done['info']['fallbacks']
    assert len(fallbacks) == 2 and 'retrying with 1' in fallbacks[0]
    assert 'running this reconstruction on the CPU' in fallbacks[1]
    assert done['info']['device'] == 'cpu' and backend.device == 'cuda'  # next call: GPU again


def test_unexpected_reconstruction_error_type_is_reported(make_node):
    """A ReconstructionError from the backend is an error event naming the reason."""
    rig = make_node(FlakyBackend(failures=5, error=ReconstructionError('frame x: no texture')))
    mon = rig.monitor
    assert rig.publish_good(2)
    assert mon.call('reconstruct')[0]
    error = mon.wait_event('error', 20.0)
    assert error and error['message'] == 'ReconstructionError: frame x: no texture'


# --------------------------------------------------------------------------- signals


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM], ids=['SIGINT', 'SIGTERM'])
def test_signal_during_reconstruction_exits_within_seconds(ros, tmp_path, sig):
    """The real node main(): a signal while the backend computes ends the process quickly."""
    from rclpy.qos import QoSProfile
    from sensor_msgs.msg import Image

    from aetherscan_ros.demo.run_demo import start_process
    rig = NodeRig(tmp_path)
    try:
        args = [str(HELPERS / 'slow_backend_node.py'), '--busy', '300', '--', '--ros-args',
                '-p', f"image_topics:=['{TOPIC}']", '-p', 'min_views:=2',
                '-p', 'keyframe_min_interval:=0.0', '-p', 'keyframe_min_change:=0.0',
                '-p', f"output_dir:='{tmp_path / 'out'}'"]
        proc = start_process(args, rig.log_path, dict(os.environ))
        rig.procs.append(proc)
        pub = rig.monitor.node.create_publisher(Image, TOPIC, QoSProfile(depth=10))
        assert rig.monitor.wait_for_node(60.0), rig.log()
        assert rig.monitor.wait_event('backend_selected', 30.0), rig.log()
        assert rig.monitor.spin_until(lambda: pub.get_subscription_count() > 0, 30.0)
        for i in range(2):
            pub.publish(malformed.good_image(2_000_000_000 + i * 10 ** 8, seed=i))
        assert rig.monitor.wait_event('reconstruction_started', 30.0), rig.log()
        assert rig.monitor.wait_event('progress', 30.0), rig.log()  # backend is computing
        seconds = rig.signal(proc, sig, timeout=15.0)
        assert seconds is not None, f'still running 15 s after {sig.name}: ' + rig.log()
        assert seconds < 5.0, f'{sig.name}: exit took {seconds:.1f} s'
        assert proc.returncode == 0, (proc.returncode, rig.log())
        assert 'Traceback' not in rig.log()
    finally:
        rig.close()
