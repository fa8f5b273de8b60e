# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Shutdown under load: SIGINT/SIGTERM at any moment of a real classical reconstruction.

Each run starts the real node (``python -m aetherscan_ros.node``, classical backend) and the
demo camera publisher on a private ROS_DOMAIN_ID, waits until the reconstruction of a small
demo scene has started, waits a different delay each run (so the signal lands in feature
extraction, matching, COLMAP mapping or SGBM densification), sends the signal to the node's
process group (``double``: twice, 50 ms apart, as a terminal's Ctrl-C plus ``ros2 launch``'s own
SIGINT do) and records the exit code, the seconds to exit and whether the log holds a crash
dump (glog stack, "terminate called", "Check failed", a Python traceback, a failed publish).

``python -m bench.bench_signals [--runs 20]`` prints the counts; :func:`run` gives the rows
for ``make bench``; ``test/test_shutdown.py`` uses :class:`NodeUnderSignal` for single runs.
"""

import argparse
import os
from pathlib import Path
import signal
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
TOPIC_NS = '/sigcam'
VIEWS, WIDTH, HEIGHT = 4, 320, 240
# Lines that mean the process crashed or shut down badly instead of cleanly.
CRASH_MARKERS = ('Traceback', 'terminate called', 'Check failed', 'Segmentation fault',
                 'Aborted', '*** SIGTERM received', '*** SIGINT received', '*** Signal',
                 'core dumped', 'Failed to publish', 'context is invalid', '    @     0x')


def crash_lines(log: str) -> List[str]:
    """Return the log lines that show a crash dump or an unclean shutdown."""
    return [line for line in log.splitlines() if any(m in line for m in CRASH_MARKERS)]


class NodeUnderSignal:
    """One node process plus a demo camera and a monitor, on the caller's ROS domain."""

    def __init__(self, work: Path, scene_dir: Path, env: Dict[str, str], **overrides):
        from aetherscan_ros.demo.run_demo import NodeMonitor, node_command, start_process
        self.work = work
        self.env = env
        self.log_path = work / 'node.log'
        self.monitor = NodeMonitor()
        params = {'backend': 'classical', 'image_topics': [f'{TOPIC_NS}/image_raw'],
                  'min_views': VIEWS, 'max_views': VIEWS, 'keyframe_min_interval': 0.0,
                  'keyframe_min_change': 0.0, 'output_dir': str(work / 'out'),
                  'no_frames_warning': 0.0}
        params.update(overrides)
        self.proc = start_process(node_command(params), self.log_path, env)
        self.camera = None
        self._scene_dir = scene_dir

    def start_camera(self):
        """Publish the scene's views once (after the node subscribed)."""
        from aetherscan_ros.demo.run_demo import start_process
        self.camera = start_process(
            ['-m', 'aetherscan_ros.demo.publisher', '--scene-dir', str(self._scene_dir),
             '--namespace', TOPIC_NS, '--rate', '20', '--num-views', str(VIEWS)],
            self.work / 'camera.log', self.env)

    def log(self) -> str:
        return self.log_path.read_text(errors='replace') if self.log_path.exists() else ''

    def signal(self, sig: int, double: bool = False, timeout: float = 60.0) -> Optional[float]:
        """Send ``sig`` to the node's process group; return the seconds until it exited."""
        start = time.monotonic()
        os.killpg(self.proc.pid, sig)
        if double:
            time.sleep(0.05)
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        return time.monotonic() - start

    def close(self):
        from aetherscan_ros.demo.run_demo import stop_process
        stop_process(self.camera)
        stop_process(self.proc)
        self.monitor.close()


def write_scene(directory: Path) -> Path:
    """Render the small demo scene the runs use; return its directory."""
    from aetherscan_ros.demo.scene import make_scene, write_scene as write
    scene = make_scene(num_views=VIEWS, width=WIDTH, height=HEIGHT, seed=5)
    return write(scene, directory).parent


def one_run(work: Path, scene_dir: Path, env: Dict[str, str], sig: int, delay: float,
            double: bool = False, after_complete: bool = False) -> dict:
    """
    Start, reconstruct, signal; return ``{code, seconds, crash, stage, log}``.

    ``delay``: seconds after ``reconstruction_started`` (``after_complete``: after
    ``reconstruction_complete``, the idle node that has run COLMAP) before the signal.
    """
    run = NodeUnderSignal(work, scene_dir, env)
    out = {'code': None, 'seconds': None, 'crash': [], 'stage': '', 'log': ''}
    try:
        mon = run.monitor
        if not mon.wait_for_node(60.0) or mon.wait_event('backend_selected', 60.0) is None:
            raise RuntimeError('the node did not start:\n' + run.log())
        run.start_camera()
        wanted = 'reconstruction_complete' if after_complete else 'reconstruction_started'
        if mon.wait_event(wanted, 120.0) is None:
            raise RuntimeError(f'no {wanted}:\n' + run.log())
        mon.spin_for(delay)
        progress = [e for e in mon.events if e['event'] == 'progress']
        out['stage'] = 'idle' if after_complete else (
            progress[-1]['stage'] if progress else 'started')
        if any(e['event'] == 'reconstruction_complete' for e in mon.events) \
                and not after_complete:
            out['stage'] = 'complete'
        out['seconds'] = run.signal(sig, double=double)
        out['code'] = run.proc.returncode
    finally:
        run.close()
    out['log'] = run.log()
    out['crash'] = crash_lines(out['log'])
    return out


def private_environment(work: Path) -> Dict[str, str]:
    """Claim a private ROS domain for the runs; return the child environment."""
    from aetherscan_ros.node.ros_domain import claim_domain_id
    domain, lock = claim_domain_id()
    private_environment.lock = lock  # held while this process lives
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain), ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               PYTHONUNBUFFERED='1', HF_HUB_OFFLINE='1')
    env.setdefault('ROS_LOG_DIR', str(work / 'ros_log'))
    os.environ.update({k: env[k] for k in ('ROS_DOMAIN_ID', 'ROS_AUTOMATIC_DISCOVERY_RANGE',
                                           'ROS_LOG_DIR')})
    return env


def loop(runs: int, signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM),
         verbose: bool = True) -> Dict[str, dict]:
    """Run ``runs`` signal runs per signal (delays spread over 0..4 s); return a summary."""
    import rclpy
    work = Path(tempfile.mkdtemp(prefix='aetherscan_signals_'))
    env = private_environment(work)
    scene_dir = write_scene(work / 'scene')
    summary = {}
    rclpy.init()
    try:
        for sig in signals:
            name = signal.Signals(sig).name
            rows = []
            for i in range(runs):
                delay = 4.0 * i / max(runs - 1, 1)
                run_dir = work / f'{name}_{i:02d}'
                run_dir.mkdir()
                row = one_run(run_dir, scene_dir, env, sig, delay,
                              double=(sig == signal.SIGINT and i % 2 == 1))
                rows.append(row)
                if verbose:
                    print(f'{name} run {i + 1:2d}/{runs}: delay {delay:.1f} s, stage '
                          f'{row["stage"]}, exit {row["code"]} after {row["seconds"]:.2f} s, '
                          f'crash lines {len(row["crash"])}', flush=True)
                    for line in row['crash'][:5]:
                        print('    ' + line, flush=True)
            summary[name] = {
                'runs': runs, 'clean': sum(r['code'] == 0 and not r['crash'] for r in rows),
                'crash_dumps': sum(bool(r['crash']) for r in rows),
                'nonzero_exit': sum(r['code'] != 0 for r in rows),
                'max_exit_s': max(r['seconds'] or 0.0 for r in rows),
                'stages': sorted({r['stage'] for r in rows})}
    finally:
        rclpy.try_shutdown()
    return summary


def run(quick: bool) -> List[dict]:
    """Benchmark rows (``make bench``): clean exits out of N signals per kind."""
    runs = 3 if quick else 20
    rows = []
    for name, s in loop(runs, verbose=False).items():
        rows.append({'group': 'shutdown', 'what': f'{name} during a classical reconstruction',
                     'size': f'{s["runs"]} runs', 'median_s': s['max_exit_s'],
                     'throughput': f'{s["clean"]}/{s["runs"]} clean', 'baseline': '',
                     'ratio': '', 'notes': f'crash dumps {s["crash_dumps"]}, non-zero exits '
                     f'{s["nonzero_exit"]}; max exit {s["max_exit_s"]:.2f} s; stages hit: '
                     f'{", ".join(s["stages"])}'})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--runs', type=int, default=20, help='runs per signal')
    args = parser.parse_args(argv)
    summary = loop(args.runs)
    for name, s in summary.items():
        print(f'{name}: {s["clean"]}/{s["runs"]} clean exits, {s["crash_dumps"]} crash dumps, '
              f'{s["nonzero_exit"]} non-zero exits, max exit {s["max_exit_s"]:.2f} s, '
              f'stages {", ".join(s["stages"])}')
    return 0 if all(s['clean'] == s['runs'] for s in summary.values()) else 1


if __name__ == '__main__':
    sys.exit(main())
