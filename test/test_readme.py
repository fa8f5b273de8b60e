# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Every command in the README's ``bash`` blocks runs, as written, in order, block by block.

Each block runs in a fresh directory holding links to this checkout's ``.venv`` and
``config/`` (the README's commands are written from the repository root), with
``test/readme_helpers/ros2_cli.py`` as ``ros2`` on the PATH: ``ros2 run aetherscan_ros EXE``
runs the venv's console script, ``ros2 launch`` runs the launch file's argument checks (the
launch library has no wheel), ``ros2 service call`` / ``ros2 topic echo`` run ``aetherscan
call`` / ``aetherscan events``; any other ``ros2`` command fails. A command that starts a node
runs in the background until the block ends (then SIGINT, exit 0 expected); a trailing
``&`` backgrounds a command the same way. A comment ``(exit N)`` on a command expects code N.

A block preceded by ``<!-- readme-test: continue -->`` runs with the previous one (e.g. the
commands of a second terminal while the first runs the node). A block preceded by
``<!-- readme-test: skip REASON -->`` is not run (only for what needs a
real ROS install, e.g. SROS2); ``<!-- readme-test: prepare bag=NAME -->`` writes a rosbag2 of
the demo scene there first (6 views, 1 s apart, ``/camera/image_raw`` + camera_info, TF
in ``odom``). ``make test`` is this suite itself (``.ci/run``); ``make demo``
runs here for real.
"""

from dataclasses import dataclass, field
import os
from pathlib import Path
import re
import signal
import subprocess
import sys
import time
from typing import List, Tuple

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / 'README.md'
SHIM = Path(__file__).resolve().parent / 'readme_helpers' / 'ros2_cli.py'
BLOCK = re.compile(r'(?:<!-- readme-test: (?P<directive>[^>]*?) -->\n)?```bash\n(?P<body>.*?)```',
                   re.S)
COMMENT = re.compile(r'\s+#\s.*$')
EXIT = re.compile(r'\(exit (\d+)\)')
NODE_START = re.compile(r'^(ros2 run aetherscan_ros |\.venv/bin/)aetherscan(_lifecycle)?_node\b')
SKIP_ALLOWED = re.compile(r'^(ros2 |export |colcon |source |rosdep |git |mkdir |cd |pip )')


@dataclass
class Command:
    text: str
    expect: int = 0
    background: bool = False


@dataclass
class Block:
    index: int
    directive: str
    commands: List[Command] = field(default_factory=list)

    @property
    def ident(self) -> str:
        first = self.commands[0].text if self.commands else ''
        return f'{self.index}:{first[:40]}'


def parse_commands(body: str) -> List[Command]:
    """Join continuation lines, drop comments (keeping an ``(exit N)``), mark ``&``."""
    out, pending = [], ''
    for line in body.splitlines():
        pending += line
        if pending.endswith('\\'):
            pending = pending[:-1]
            continue
        text, pending = pending, ''
        match = EXIT.search(text)
        text = COMMENT.sub('', text).strip()
        if not text or text.startswith('#'):
            continue
        background = text.endswith('&')
        out.append(Command(text.rstrip('&').strip(), int(match.group(1)) if match else 0,
                           background))
    return out


def readme_blocks() -> List[Block]:
    text = README.read_text(encoding='utf-8')
    return [Block(i, (m.group('directive') or '').strip(), parse_commands(m.group('body')))
            for i, m in enumerate(BLOCK.finditer(text))]


def readme_runs() -> List[Block]:
    """Return the blocks to run, each ``continue`` block merged into the one before it."""
    runs: List[Block] = []
    for block in readme_blocks():
        if block.directive == 'continue' and runs:
            runs[-1].commands.extend(block.commands)
        elif not block.directive.startswith('skip'):
            runs.append(block)
    return runs


def test_the_parser_reads_continuations_comments_and_exit_codes():
    got = parse_commands('a \\\n  b   # note\nc &\n# only a comment\nd x  # fails (exit 2)\n')
    assert got == [Command('a   b'), Command('c', background=True), Command('d x', 2)]


def test_the_readme_has_command_blocks_and_the_two_setup_commands_first():
    blocks = readme_blocks()
    assert len(blocks) >= 5
    assert [c.text for c in blocks[0].commands][:2] == ['make demo', 'make test']


def test_skipped_blocks_hold_only_commands_of_a_real_ros_install():
    for block in readme_blocks():
        if block.directive.startswith('skip'):
            assert len(block.directive.split(None, 1)) == 2, f'block {block.ident}: no reason'
            bad = [c.text for c in block.commands if not SKIP_ALLOWED.match(c.text)]
            assert not bad, f'block {block.ident} skips runnable commands: {bad}'


def _environment(workdir: Path) -> dict:
    shim_dir = workdir / '.shim'
    shim_dir.mkdir()
    shim = shim_dir / 'ros2'
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{SHIM}" "$@"\n')
    shim.chmod(0o755)
    env = dict(os.environ)
    venv_bin = str(Path(sys.executable).parent)
    env['PATH'] = os.pathsep.join([str(shim_dir), venv_bin, env.get('PATH', '')])
    env['AETHERSCAN_REPO'] = str(REPO)
    env.pop('PYTHONPATH', None)
    return env


def _prepare(block: Block, workdir: Path):
    (workdir / '.venv').symlink_to(Path(sys.executable).parent.parent)
    (workdir / 'config').symlink_to(REPO / 'config')
    for item in block.directive.split()[1:] if block.directive.startswith('prepare') else ():
        kind, _, name = item.partition('=')
        if kind == 'bag':  # 6 views 320x240, 1 s apart, camera_info, TF in odom
            sys.path.insert(0, str(REPO / 'test'))
            from bag_helpers import write_scene_bag

            from aetherscan_ros.demo.scene import make_scene
            scene = make_scene(num_views=6, width=320, height=240, seed=3)
            write_scene_bag(workdir / name, scene, storage='mcap', topic='/camera',
                            period_ns=1_000_000_000)
        else:
            raise AssertionError(f'block {block.ident}: unknown prepare item {item!r}')


def _wait_for(log: Path, text: str, proc, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if log.exists() and text in log.read_text(errors='replace'):
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.2)
    return False


def _stop(proc, log: Path) -> Tuple[int, str]:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, log.read_text(errors='replace') if log.exists() else ''


def run_block(block: Block, workdir: Path):
    """Run the block's commands in order; return a list of (command, problem) failures."""
    _prepare(block, workdir)
    env = _environment(workdir)
    background = []
    problems = []
    try:
        for n, cmd in enumerate(block.commands):
            if cmd.text == 'make test':
                ci = (REPO / '.ci' / 'run').read_text()
                assert 'exec make test' in ci  # this suite is what `make test` runs
                continue
            if cmd.text.startswith('make '):
                argv = ['make', '-C', str(REPO), *cmd.text.split()[1:]]
                proc = subprocess.run(argv, env=env, capture_output=True, text=True,
                                      timeout=600)
                if proc.returncode != cmd.expect:
                    problems.append((cmd.text, f'exit {proc.returncode}: {proc.stdout[-3000:]}'
                                     f'{proc.stderr[-2000:]}'))
                continue
            log = workdir / f'.cmd{n}.log'
            if NODE_START.match(cmd.text) or cmd.background:
                proc = subprocess.Popen(['bash', '-c', 'exec ' + cmd.text], cwd=workdir, env=env,
                                        stdout=open(log, 'w'), stderr=subprocess.STDOUT,
                                        start_new_session=True)
                background.append((cmd, proc, log))
                if NODE_START.match(cmd.text) and not _wait_for(log, 'listening on', proc, 90):
                    problems.append((cmd.text, 'the node did not start: ' + log.read_text()))
                    break
                continue
            proc = subprocess.run(['bash', '-c', cmd.text], cwd=workdir, env=env,
                                  capture_output=True, text=True, timeout=600)
            if proc.returncode != cmd.expect:
                problems.append((cmd.text, f'exit {proc.returncode} (expected {cmd.expect}): '
                                 f'{proc.stdout[-3000:]}{proc.stderr[-3000:]}'))
    finally:
        for cmd, proc, log in reversed(background):
            code, text = _stop(proc, log)
            if NODE_START.match(cmd.text) and code != 0:
                problems.append((cmd.text, f'exit {code} after SIGINT: {text[-3000:]}'))
            if 'Traceback' in text:
                problems.append((cmd.text, f'traceback: {text[-3000:]}'))
    return problems


@pytest.mark.ros
@pytest.mark.slow
@pytest.mark.parametrize('block', readme_runs(), ids=lambda b: b.ident)
def test_readme_block_runs_as_written(tmp_path, block):
    problems = run_block(block, tmp_path)
    assert not problems, '\n\n'.join(f'$ {cmd}\n{why}' for cmd, why in problems)
