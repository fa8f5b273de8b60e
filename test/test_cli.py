# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The ``aetherscan`` command in-process: argument and input validation, output plumbing.

Bad input must end in exit status 2 with exactly one ``aetherscan <verb>: error:`` line naming
the file or argument; the reconstruction plumbing (progress lines, outputs, summary, random
weights warning, Ctrl-C) is checked with a small recording backend standing in for the real
ones, whose own tests live in test_classical*.py / test_fast3r_*.py; test_cli_e2e.py runs the
real console script on the real classical backend.
"""

import json
import os
from pathlib import Path
import subprocess
import sys

import cv2
import numpy as np
import pytest

from aetherscan_ros import backends, cli
from aetherscan_ros.backends.base import (
    BackendUnavailable, ProgressEvent, ReconstructionError, result_from_view_clouds, ViewCloud)
from aetherscan_ros.cli import inputs
from aetherscan_ros.cli.common import CliError
from aetherscan_ros.files.results import load_result

REPO = Path(__file__).resolve().parents[1]
PYTHON = Path(sys.executable)


def _write_image(path, width=64, height=48, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return path


@pytest.fixture
def images(tmp_path):
    return [_write_image(tmp_path / 'in' / f'img_{i}.png', seed=i) for i in range(3)]


def _run(capsys, argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(err, *needles, progress_before=False):
    """Check that ``err`` holds one error line (and, for bad input, nothing else)."""
    lines = [line for line in err.splitlines() if line.strip()]
    if progress_before:  # the run had started: its progress lines come first
        lines = [line for line in lines if ': error: ' in line]
    assert len(lines) == 1, err
    assert 'Traceback' not in err
    assert lines[0].startswith('aetherscan')
    assert ': error: ' in lines[0]
    for needle in needles:
        assert str(needle) in lines[0], lines[0]
    return lines[0]


# --------------------------------------------------------------------------- bad input


def test_missing_file(capsys, tmp_path, images):
    code, _, err = _run(capsys, ['reconstruct', images[0], tmp_path / 'nope.png',
                                 '-o', tmp_path / 'out'])
    assert code == 2
    _one_error_line(err, 'nope.png', 'no such file')
    assert not (tmp_path / 'out').exists()


def test_unreadable_image(capsys, tmp_path, images):
    bad = tmp_path / 'in' / 'broken.png'
    bad.write_bytes(b'\x89PNG\r\n\x1a\n but not really')
    code, _, err = _run(capsys, ['reconstruct', images[0], bad, '-o', tmp_path / 'out'])
    assert code == 2
    _one_error_line(err, 'broken.png', 'not a readable image')
    empty = tmp_path / 'empty.jpg'
    empty.write_bytes(b'')
    code, _, err = _run(capsys, ['reconstruct', images[0], empty, '-o', tmp_path / 'out'])
    assert code == 2
    _one_error_line(err, 'empty.jpg', 'empty file')


def test_fewer_than_two_images(capsys, tmp_path, images):
    code, _, err = _run(capsys, ['reconstruct', images[0], '-o', tmp_path / 'out'])
    assert code == 2
    _one_error_line(err, 'at least 2 images', 'img_0.png')
    single = tmp_path / 'single'
    _write_image(single / 'only.png')
    code, _, err = _run(capsys, ['reconstruct', single, '-o', tmp_path / 'out'])
    assert code == 2
    _one_error_line(err, 'at least 2 images')


def test_same_image_twice(capsys, tmp_path, images):
    code, _, err = _run(capsys, ['reconstruct', images[0], images[0], '-o', tmp_path / 'o'])
    assert code == 2
    _one_error_line(err, 'img_0.png', 'given twice')


def test_sizes_differing_by_more_than_2x(capsys, tmp_path, images):
    big = _write_image(tmp_path / 'in' / 'big.png', width=200, height=100)
    code, _, err = _run(capsys, ['reconstruct', images[0], big, '-o', tmp_path / 'out'])
    assert code == 2
    _one_error_line(err, 'big.png (200x100)', 'img_0.png (64x48)', 'more than 2x')


def test_directory_without_images(capsys, tmp_path, images):
    empty = tmp_path / 'empty_dir'
    empty.mkdir()
    (empty / 'notes.txt').write_text('not an image')
    code, _, err = _run(capsys, ['reconstruct', empty, images[0], '-o', tmp_path / 'out'])
    assert code == 2
    _one_error_line(err, 'empty_dir', 'has no images')


@pytest.mark.parametrize('intrinsics, needles', [
    (['50,50,32'], ['--intrinsics', "'50,50,32'", 'expected 4 numbers']),
    (['a,b,c,d'], ['--intrinsics', 'not numbers']),
    (['0,50,32,24'], ['--intrinsics', 'must be > 0']),
    (['50,50,nan,24'], ['--intrinsics', 'finite']),
    (['50,50,90,24'], ['--intrinsics', 'outside', 'img_0.png']),
    (['50,50,32,24', '50,50,32,24'], ['--intrinsics given 2 times for 3 images']),
    (['50,50,32,24', '50,50,32,24', '50,50,32,124'], ['--intrinsics #3', 'img_2.png']),
])
def test_malformed_intrinsics(capsys, tmp_path, images, intrinsics, needles):
    code, _, err = _run(capsys, ['reconstruct', *images, '-o', tmp_path / 'out',
                                 '--intrinsics', *intrinsics])
    assert code == 2
    _one_error_line(err, *needles)


def test_one_intrinsics_for_different_sizes(capsys, tmp_path, images):
    other = _write_image(tmp_path / 'in' / 'wide.png', width=80, height=48)
    code, _, err = _run(capsys, ['reconstruct', images[0], other, '-o', tmp_path / 'out',
                                 '--intrinsics', '50,50,32,24'])
    assert code == 2
    _one_error_line(err, 'different sizes', 'wide.png 80x48', 'one --intrinsics per image')


@pytest.mark.parametrize('argv', [
    ['--intrinsics', '-995,600,32,24'],
    ['--intrinsics', '-995,600,32,24', '-o', 'OUT'],
    ['--intrinsics', '50,50,32,24', '-995,600,32,24', '50,50,32,24'],
    ['--intr', '-995,600,32,24'],
])
def test_a_negative_focal_length_is_a_value_refused_by_name(capsys, tmp_path, images, argv):
    # argparse took '-995,...' for an option: 'argument --intrinsics: expected at least one
    # argument'; now the value reaches the check, which names it
    argv = [str(tmp_path / 'out') if a == 'OUT' else a for a in argv]
    code, _, err = _run(capsys, ['reconstruct', *images, '-o', tmp_path / 'out', *argv])
    assert code == 2
    _one_error_line(err, "'-995,600,32,24'", 'focal lengths fx, fy must be > 0', 'fx -995')
    assert not (tmp_path / 'out').exists()


def test_dashed_intrinsics_rewrites_only_dashed_intrinsics_values():
    from aetherscan_ros.cli.app import dashed_intrinsics
    assert dashed_intrinsics(['reconstruct', 'a.png', '--intrinsics', '-1,2,3,4', 'b.png', '-o',
                              'x']) == ['reconstruct', 'a.png', '--intrinsics=-1,2,3,4',
                                        '--intrinsics=b.png', '-o', 'x']
    assert dashed_intrinsics(['--intrinsics', '-.5,2,3,4', '-inf,1,1,1']) == [
        '--intrinsics=-.5,2,3,4', '--intrinsics=-inf,1,1,1']
    untouched = [['reconstruct', 'a.png', '--intrinsics', '1,2,3,4', 'b.png', '-o', 'x'],
                 ['reconstruct', '--intrinsics', '-o', 'x'],
                 ['reconstruct', '--', '--intrinsics', '-1,2,3,4'],
                 ['reconstruct', '--intrinsics=-1,2,3,4', 'a.png']]
    for argv in untouched:
        assert dashed_intrinsics(argv) == argv


@pytest.mark.parametrize('backend', ['auto', 'fast3r'])
def test_a_missing_model_path_is_an_error_not_a_fallback(capsys, tmp_path, images, monkeypatch,
                                                         backend):
    # before: --backend auto fell back to classical (exit 0), fast3r failed with exit 1
    calls = _use_backend(monkeypatch, RecordingBackend())
    missing = tmp_path / 'no_such_ckpt'
    code, _, err = _run(capsys, ['reconstruct', *images, '-o', tmp_path / 'out',
                                 '--backend', backend, '--model', missing])
    assert code == 2
    _one_error_line(err, f'--model {missing}: no such file or directory')
    assert calls == [] and not (tmp_path / 'out').exists()
    # a hub repo id is not a path: it goes to the backend (which may find it in the cache)
    code, _, err = _run(capsys, ['reconstruct', *images, '-o', tmp_path / 'out',
                                 '--backend', backend, '--model', 'owner/repo'])
    assert code == 0, err
    assert calls == [(backend, 'owner/repo', 'auto')]


def test_output_is_a_file(capsys, tmp_path, images):
    target = tmp_path / 'file.txt'
    target.write_text('x')
    code, _, err = _run(capsys, ['reconstruct', *images, '-o', target])
    assert code == 2
    _one_error_line(err, 'file.txt', 'not a directory')


def test_usage_errors_are_one_line(capsys, tmp_path, images):
    with pytest.raises(SystemExit) as exc:
        cli.main(['reconstruct', str(images[0]), str(images[1])])
    assert exc.value.code == 2
    _one_error_line(capsys.readouterr().err, '-o/--output', '--help')
    with pytest.raises(SystemExit) as exc:
        cli.main(['reconstruct', str(images[0]), str(images[1]), '-o', 'x', '--backend', 'gpu'])
    assert exc.value.code == 2
    _one_error_line(capsys.readouterr().err, '--backend', "'gpu'")
    with pytest.raises(SystemExit) as exc:
        cli.main(['frobnicate'])
    assert exc.value.code == 2
    _one_error_line(capsys.readouterr().err, 'frobnicate')


def test_eval_missing_files(capsys, tmp_path):
    code, _, err = _run(capsys, ['eval', tmp_path / 'no_result', tmp_path])
    assert code == 2
    _one_error_line(err, 'RESULT_DIR', 'no_result', 'no such directory')
    (tmp_path / 'res').mkdir()
    code, _, err = _run(capsys, ['eval', tmp_path / 'res', tmp_path])
    assert code == 2
    _one_error_line(err, str(tmp_path / 'res' / 'poses.json'), 'no such file')
    # a real result but no ground truth where GT_DIR points
    from test_results_io import _result
    from aetherscan_ros.files.results import save_result
    save_result(_result(num_views=3), tmp_path / 'res')
    (tmp_path / 'no_gt').mkdir()
    code, _, err = _run(capsys, ['eval', tmp_path / 'res', tmp_path / 'no_gt'])
    assert code == 2
    _one_error_line(err, str(tmp_path / 'no_gt' / 'ground_truth.json'), 'not found')


def test_demo_scene_argument_checks(capsys, tmp_path):
    code, _, err = _run(capsys, ['demo-scene', tmp_path / 'd', '--views', '1'])
    assert code == 2
    _one_error_line(err, '--views 1', 'at least 2')
    code, _, err = _run(capsys, ['demo-scene', tmp_path / 'd', '--width', '8'])
    assert code == 2
    _one_error_line(err, '--width/--height 8x480')
    assert not (tmp_path / 'd').exists()


# --------------------------------------------------------------------------- helpers


def test_directory_expansion_is_natural_sorted(tmp_path):
    for name in ('f10.png', 'f2.PNG', 'f1.jpg', '.hidden.png', 'readme.md'):
        (tmp_path / name).write_bytes(b'')
    (tmp_path / 'sub.png').mkdir()
    names = [p.name for p in inputs.expand_image_args([str(tmp_path)])]
    assert names == ['f1.jpg', 'f2.PNG', 'f10.png']


def test_demo_scene_directory_expands_to_its_rgb_frames(tmp_path):
    for name in ('frame_000.png', 'frame_001.png', 'depth_000.png', 'depth_001.png'):
        (tmp_path / name).write_bytes(b'')
    (tmp_path / 'ground_truth.json').write_text(json.dumps(
        {'views': [{'image': 'frame_000.png'}, {'image': 'frame_001.png'}]}))
    names = [p.name for p in inputs.expand_image_args([str(tmp_path)])]
    assert names == ['frame_000.png', 'frame_001.png']


def test_images_after_intrinsics_are_images(capsys, tmp_path, images, monkeypatch):
    backend = RecordingBackend()
    _use_backend(monkeypatch, backend)
    code, _, err = _run(capsys, ['reconstruct', images[0], '--intrinsics', '50,50,32,24',
                                 images[1], images[2], '-o', tmp_path / 'out'])
    assert code == 0, err
    assert [f.name for f in backend.frames] == ['img_0.png', 'img_1.png', 'img_2.png']
    assert all(f.K[0, 0] == 50 for f in backend.frames)
    code, _, err = _run(capsys, ['reconstruct', '-o', tmp_path / 'out'])
    assert code == 2
    _one_error_line(err, 'no images given')


def test_build_intrinsics_per_image():
    paths = [Path('a.png'), Path('b.png')]
    Ks = inputs.build_intrinsics(['500,501,320,240', '500 501 330.5 241'], paths,
                                 [(640, 480), (640, 480)])
    np.testing.assert_array_equal(Ks[1], [[500, 0, 330.5], [0, 501, 241], [0, 0, 1]])
    assert inputs.build_intrinsics([], paths, [(640, 480)] * 2) == [None, None]


def test_check_image_sizes_rule():
    paths = [Path('a'), Path('b')]
    inputs.check_image_sizes(paths, [(640, 480), (320, 200)])  # exactly 2x: accepted
    with pytest.raises(CliError, match='more than 2x'):
        inputs.check_image_sizes(paths, [(640, 480), (319, 200)])


# --------------------------------------------------------------------------- plumbing


class RecordingBackend:
    """Return a small result for whatever frames it gets, reporting progress like a backend."""

    name = 'fast3r'

    def __init__(self, info=None, fail=None, points_per_view=50):
        self.frames = None
        self.info = info or {}
        self.fail = fail
        self.points_per_view = points_per_view

    def describe(self):
        return 'recording test backend'

    def reconstruct(self, frames, progress=None):
        self.frames = list(frames)
        if self.fail is not None:
            raise self.fail
        progress(ProgressEvent('preprocess', 0.0, 'resize'))
        progress(ProgressEvent('forward', 0.3, 'chunk 1'))
        progress(ProgressEvent('forward', 0.5, 'chunk 2'))
        clouds = []
        poses = np.tile(np.eye(4), (len(frames), 1, 1))
        rng = np.random.default_rng(0)
        for i, frame in enumerate(frames):
            poses[i, 0, 3] = 0.2 * i
            pts = (rng.normal(size=(self.points_per_view, 3)) + [0, 0, 4]).astype(np.float32)
            cols = frame.image[:self.points_per_view // 8 + 1, :8].reshape(-1, 3)
            cols = cols[:self.points_per_view]
            cloud = ViewCloud(i, pts[:len(cols)], cols, np.ones(len(cols), np.float32))
            clouds.append(cloud)
            progress(ProgressEvent('view_points', 0.6 + 0.1 * i, f'view {i}', cloud))
        progress(ProgressEvent('done', 1.0, 'ok'))
        Ks = [f.K if f.K is not None else np.diag([60.0, 60.0, 1.0]) for f in frames]
        sizes = [f.size for f in frames]
        return result_from_view_clouds(clouds, poses, np.stack(Ks), sizes, self.name,
                                       {'forward': 0.1, 'total': 0.2}, self.info)


def _use_backend(monkeypatch, backend, reason='test reason'):
    calls = []

    def fake_create_backend(kind, model='', device='auto', options=None):
        calls.append((kind, model, device))
        if isinstance(backend, Exception):
            raise backend
        return backend, reason

    monkeypatch.setattr(backends, 'create_backend', fake_create_backend)
    return calls


def test_reconstruct_writes_outputs_and_summary(capsys, tmp_path, images, monkeypatch):
    backend = RecordingBackend(info={'model': 'random weights (not a trained model)',
                                     'device': 'cpu', 'focal_source': 'camera_info'})
    calls = _use_backend(monkeypatch, backend)
    out = tmp_path / 'out'
    ckpt = tmp_path / 'ckpt'
    ckpt.mkdir()
    code, stdout, err = _run(capsys, ['reconstruct', tmp_path / 'in', '-o', out,
                                      '--backend', 'fast3r', '--model', ckpt,
                                      '--device', 'cpu', '--intrinsics',
                                      '50,51,32,24', '52,53,31,23', '54,55,30,22'])
    assert code == 0, err
    assert calls == [('fast3r', str(ckpt), 'cpu')]
    # the K came from --intrinsics, not from a camera_info: the summary and poses.json say so
    assert 'intrinsics from --intrinsics' in err
    assert 'focal_source: --intrinsics' in stdout and 'camera_info' not in stdout
    assert json.loads((out / 'poses.json').read_text())['info']['focal_source'] == \
        '--intrinsics'
    # frames: directory order, RGB, per-image K, names
    assert [f.name for f in backend.frames] == ['img_0.png', 'img_1.png', 'img_2.png']
    bgr = cv2.imread(str(images[1]))
    np.testing.assert_array_equal(backend.frames[1].image, bgr[:, :, ::-1])
    np.testing.assert_array_equal(backend.frames[2].K,
                                  [[54, 0, 30], [0, 55, 22], [0, 0, 1]])
    # one progress line per stage, not per event
    stages = [line.split('] ')[1].split()[0] for line in err.splitlines() if line.startswith('[')]
    assert stages == ['preprocess', 'forward', 'view_points', 'done']
    assert 'RANDOM WEIGHTS' in stdout and 'RANDOM WEIGHTS' in err
    assert 'test reason' in stdout and 'points    150' in stdout
    for name in ('cloud.ply', 'poses.json', 'preview.png'):
        assert str(out / name) in stdout
    result, names = load_result(out)
    assert names == ('img_0.png', 'img_1.png', 'img_2.png')
    assert result.num_points == 150 and result.backend == 'fast3r'
    np.testing.assert_array_equal(result.intrinsics[1], [[52, 0, 31], [0, 53, 23], [0, 0, 1]])
    assert cv2.imread(str(out / 'preview.png')).shape == (720, 960, 3)


def test_summary_shows_the_reason_and_warnings_whole():
    # before: a reason over 160 characters was cut and ended in '... (see above)', info values
    # were cut mid-word at 86 characters and info['warning'] could fall off the 8 info lines
    from aetherscan_ros.backends.base import Frame
    from aetherscan_ros.cli.reconstruct import format_summary, SUMMARY_WIDTH
    reason = ('Fast3R unavailable (Fast3R weights for the repo id were not found in the '
              'local hub cache; download it on a machine with internet, copy the directory '
              'here and pass it as the model path, or build a random test model with '
              'write_random_checkpoint); using the classical backend')
    warning = ("two views cannot determine the focal length: COLMAP's prior (1.2 x the "
               'longest image side) was used, so the cloud is distorted unless it happens to '
               'be right; give the intrinsics (camera_info / --intrinsics) or more views')
    info = {f'key_{i}': f'value number {i}' for i in range(10)}
    info.update(warning=warning, method='COLMAP incremental mapping with a rather long '
                'description of every stage that it ran + StereoSGBM dense fusion')
    frames = [Frame(np.zeros((48, 64, 3), np.uint8), f'v{i}.png') for i in range(9)]
    result = RecordingBackend(info=info).reconstruct(frames, progress=lambda event: None)
    poses = np.array(result.poses_c2w)
    poses[1:9] = np.nan  # 8 unregistered views
    from dataclasses import replace
    result = replace(result, poses_c2w=poses)
    paths = [Path(f'v{i}.png') for i in range(9)]
    text = format_summary(result, reason, paths, [], ['--model /x was not used'])
    flat = ' '.join(text.split())
    assert 'see above' not in text and '...' not in text
    for whole in (reason, warning, info['method'], '--model /x was not used',
                  '8 view(s) not registered', 'v6.png and 2 more'):
        assert ' '.join(whole.split()) in flat, (whole, text)
    assert max(len(line) for line in text.splitlines()) <= SUMMARY_WIDTH
    labels = [line[:12] for line in text.splitlines()]
    assert labels.count('  WARNING   ') == 3  # the model note, unregistered views, the warning


def test_reconstruct_failures_exit_1_with_one_line(capsys, tmp_path, images, monkeypatch):
    _use_backend(monkeypatch, RecordingBackend(fail=ReconstructionError('no texture in img_1')))
    code, _, err = _run(capsys, ['reconstruct', *images, '-o', tmp_path / 'o1'])
    assert code == 1
    _one_error_line(err, 'no texture in img_1', progress_before=True)
    assert not list((tmp_path / 'o1').iterdir())  # nothing written
    _use_backend(monkeypatch, BackendUnavailable('weights missing: do X'))
    code, _, err = _run(capsys, ['reconstruct', *images, '-o', tmp_path / 'o2',
                                 '--backend', 'fast3r'])
    assert code == 1
    _one_error_line(err, 'backend fast3r is unavailable', 'weights missing: do X',
                    progress_before=True)
    _use_backend(monkeypatch, RecordingBackend(points_per_view=0))
    code, _, err = _run(capsys, ['reconstruct', *images, '-o', tmp_path / 'o3'])
    assert code == 1
    _one_error_line(err, 'produced no points', progress_before=True)
    assert not list((tmp_path / 'o3').iterdir())


def test_ctrl_c_exits_130_with_one_line(capsys, tmp_path, images, monkeypatch):
    out = tmp_path / 'out'
    out.mkdir()
    (out / 'cloud.ply').write_bytes(b'previous result')
    _use_backend(monkeypatch, RecordingBackend(fail=KeyboardInterrupt()))
    code, _, err = _run(capsys, ['reconstruct', *images, '-o', out])
    assert code == 130
    lines = [x for x in err.splitlines() if 'interrupted' in x]
    assert lines == ['aetherscan reconstruct: interrupted']
    assert (out / 'cloud.ply').read_bytes() == b'previous result'
    assert sorted(p.name for p in out.iterdir()) == ['cloud.ply']


def test_internal_error_is_one_line_unless_debug(capsys, tmp_path, images, monkeypatch):
    _use_backend(monkeypatch, RecordingBackend(fail=ZeroDivisionError('boom')))
    code, _, err = _run(capsys, ['reconstruct', *images, '-o', tmp_path / 'o'])
    assert code == 1
    _one_error_line(err, 'internal error ZeroDivisionError: boom', '--debug',
                    progress_before=True)
    with pytest.raises(ZeroDivisionError):
        cli.main(['reconstruct', *map(str, images), '-o', str(tmp_path / 'o'), '--debug'])


# --------------------------------------------------------------------------- processes


def _env():
    env = dict(os.environ)
    env.pop('HF_HUB_OFFLINE', None)  # doctor must set it itself
    return env


def test_console_script_and_module_help():
    script = PYTHON.parent / 'aetherscan'
    assert script.is_file(), 'the aetherscan console script is not installed in the venv'
    for verb in ([], ['reconstruct'], ['demo-scene'], ['eval'], ['doctor']):
        proc = subprocess.run([str(script), *verb, '--help'], capture_output=True, text=True,
                              timeout=60, env=_env())
        assert proc.returncode == 0, proc.stderr
        assert 'usage: aetherscan' in proc.stdout
    proc = subprocess.run([str(PYTHON), '-m', 'aetherscan_ros.cli', 'reconstruct', '--help'],
                          capture_output=True, text=True, timeout=60, cwd=REPO, env=_env())
    assert proc.returncode == 0 and '--intrinsics' in proc.stdout


def test_help_imports_no_heavy_modules():
    code = ('import sys\nfrom aetherscan_ros import cli\n'
            'try:\n    cli.main(["reconstruct", "--help"])\nexcept SystemExit:\n    pass\n'
            'heavy = [m for m in ("numpy", "cv2", "torch", "pycolmap") if m in sys.modules]\n'
            'print("HEAVY", heavy)\n')
    proc = subprocess.run([str(PYTHON), '-c', code], capture_output=True, text=True,
                          timeout=60, env=_env())
    assert 'HEAVY []' in proc.stdout, proc.stdout + proc.stderr


def test_doctor_reports_and_never_downloads():
    proc = subprocess.run([str(PYTHON), '-m', 'aetherscan_ros.cli', 'doctor',
                           '--model', 'nobody/not-a-real-repo'], capture_output=True,
                          text=True, timeout=120, env=_env())
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for needle in ('Python 3.', 'ROS 2:', 'rclpy', 'torch 2.', 'CUDA', 'classical backend',
                   "Fast3R weights for 'nobody/not-a-real-repo'", 'HF_HUB_OFFLINE',
                   'backend auto would pick: classical'):
        assert needle in out, out
    assert 'fix:' in out  # the missing weights come with the fix


def test_doctor_without_torch():
    code = ('import sys\nsys.modules["torch"] = None\nfrom aetherscan_ros import cli\n'
            'sys.exit(cli.main(["doctor"]))\n')
    proc = subprocess.run([str(PYTHON), '-c', code], capture_output=True, text=True,
                          timeout=120, env=_env())
    assert proc.returncode == 0, proc.stderr
    assert '[miss] torch: cannot import' in proc.stdout
    assert 'backend auto would pick: classical (torch is missing)' in proc.stdout


def test_doctor_sees_a_random_checkpoint(tmp_path):
    pytest.importorskip('torch')
    from aetherscan_ros.models.fast3r import write_random_checkpoint
    ckpt = write_random_checkpoint(tmp_path / 'ckpt', preset='tiny')
    proc = subprocess.run([str(PYTHON), '-m', 'aetherscan_ros.cli', 'doctor', '--model',
                           str(ckpt)], capture_output=True, text=True, timeout=120, env=_env())
    assert proc.returncode == 0, proc.stderr
    assert 'RANDOM WEIGHTS' in proc.stdout
    assert 'backend auto would pick: fast3r' in proc.stdout
