# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
End to end through the installed console script, as a user runs it.

``aetherscan demo-scene`` -> ``aetherscan reconstruct --backend classical`` (known and unknown
intrinsics) -> ``aetherscan eval``, each a real subprocess of ``.venv/bin/aetherscan``; plus a
textureless input that must fail cleanly and Ctrl-C (SIGINT) in the middle of a run. Small
images (4 views of 320x240) keep it quick on a 2-core machine; the accuracy targets of issue 4
at 640x480 are checked by the classical backend's own tests.
"""

import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from aetherscan_ros.files.ply import read_ply
from aetherscan_ros.files.poses import read_poses_json

SCRIPT = Path(sys.executable).parent / 'aetherscan'
VIEWS, WIDTH, HEIGHT = 4, 320, 240


def _aetherscan(*args, timeout=300):
    if not SCRIPT.is_file():
        pytest.fail(f'{SCRIPT} is missing: the package is not installed in this venv '
                    '(make setup)')
    return subprocess.run([str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, OMP_NUM_THREADS='2'))


@pytest.fixture(scope='module')
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp('cli_e2e') / 'scene'
    proc = _aetherscan('demo-scene', out, '--views', VIEWS, '--width', WIDTH,
                       '--height', HEIGHT, '--seed', 3)
    assert proc.returncode == 0, proc.stderr
    assert 'ground truth' in proc.stdout and '--intrinsics' in proc.stdout
    return out


def _intrinsics(demo_dir):
    K = json.loads((demo_dir / 'ground_truth.json').read_text())['K']
    return f'{K[0][0]!r},{K[1][1]!r},{K[0][2]!r},{K[1][2]!r}'


def test_demo_scene_writes_images_and_ground_truth(demo_dir):
    frames = sorted(p.name for p in demo_dir.glob('frame_*.png'))
    assert frames == [f'frame_{i:03d}.png' for i in range(VIEWS)]
    img = cv2.imread(str(demo_dir / frames[0]))
    assert img.shape == (HEIGHT, WIDTH, 3) and img.std() > 20  # textured, not blank
    doc = json.loads((demo_dir / 'ground_truth.json').read_text())
    assert len(doc['views']) == VIEWS


def test_reconstruct_then_eval_with_known_intrinsics(demo_dir):
    out = demo_dir.parent / 'result_known'
    proc = _aetherscan('reconstruct', demo_dir, '-o', out, '--backend', 'classical',
                       '--intrinsics', _intrinsics(demo_dir))
    assert proc.returncode == 0, proc.stderr
    # visible progress: one line per stage, on stderr
    stages = [line.split('] ', 1)[1].split()[0] for line in proc.stderr.splitlines()
              if line.startswith('[') and '] ' in line]
    for stage in ('features', 'matching', 'mapping', 'view_points', 'done'):
        assert stage in stages, proc.stderr
    assert len(stages) == len(set(stages))
    # the summary names where the intrinsics came from (it said 'known (camera_info)')
    assert 'backend   classical' in proc.stdout and 'known (--intrinsics)' in proc.stdout
    assert 'camera_info' not in proc.stdout
    # the files a user gets
    cloud = read_ply(out / 'cloud.ply')
    assert cloud.num_points > 5000
    assert set(np.unique(cloud.view_index)) <= set(range(VIEWS))
    poses = read_poses_json(out / 'poses.json')
    assert poses.names == tuple(f'frame_{i:03d}.png' for i in range(VIEWS))
    np.testing.assert_allclose(poses.poses_c2w[0], np.eye(4), atol=1e-6)  # first camera frame
    assert poses.image_sizes.tolist() == [[WIDTH, HEIGHT]] * VIEWS
    preview = cv2.imread(str(out / 'preview.png'))
    assert preview.shape == (720, 960, 3)
    assert (np.abs(preview.astype(int) - preview[0, -1].astype(int)).sum(axis=2) > 30).mean() \
        > 0.05  # a real picture, not an empty background
    # and its scores
    proc = _aetherscan('eval', out, demo_dir, '--json')
    assert proc.returncode == 0, proc.stderr
    scores = json.loads(proc.stdout)
    assert scores['registered_views'] == VIEWS
    assert scores['rotation_error_deg_max'] < 1.0
    assert scores['center_error_pct_max'] < 1.0
    assert scores['accuracy_pct'] < 1.0
    assert np.isfinite(scores['completeness_pct'])
    proc = _aetherscan('eval', out, demo_dir)
    assert proc.returncode == 0 and 'rotation error' in proc.stdout


def test_reconstruct_with_unknown_intrinsics_and_a_subset(demo_dir):
    out = demo_dir.parent / 'result_unknown'
    frames = [demo_dir / f'frame_{i:03d}.png' for i in (1, 2, 3)]
    proc = _aetherscan('reconstruct', *frames, '-o', out, '--backend', 'classical')
    assert proc.returncode == 0, proc.stderr
    assert 'estimated' in proc.stdout
    poses = read_poses_json(out / 'poses.json')
    assert poses.names == ('frame_001.png', 'frame_002.png', 'frame_003.png')
    proc = _aetherscan('eval', out, demo_dir, '--json')  # matched to the ground truth by name
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)['rotation_error_deg_max'] < 2.0


def test_two_views_summary_shows_the_reason_and_the_warning_whole(demo_dir, tmp_path):
    # before: the backend reason ended in '... (see above)' and info['warning'] (two views
    # cannot give the focal length) fell off the summary's info lines
    frames = [demo_dir / f'frame_{i:03d}.png' for i in (1, 2)]
    env = dict(os.environ, OMP_NUM_THREADS='2', HF_HUB_OFFLINE='1',
               HF_HOME=str(tmp_path / 'empty_hub'))  # no weights here: auto -> classical
    proc = subprocess.run([str(SCRIPT), 'reconstruct', *map(str, frames), '-o',
                           str(tmp_path / 'out')], capture_output=True, text=True,
                          timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    reason = next(line for line in proc.stderr.splitlines()
                  if line.startswith('aetherscan reconstruct: backend classical: '))
    reason = reason.split(': ', 2)[2]
    assert reason.startswith('Fast3R unavailable') and len(reason) > 160, reason
    flat = ' '.join(proc.stdout.split())
    assert ' '.join(reason.split()) in flat and 'see above' not in proc.stdout
    assert '  WARNING   two views cannot determine the focal length' in proc.stdout
    assert 'give the intrinsics (camera_info / --intrinsics) or more views' in flat
    assert 'intrinsics: estimated by COLMAP' in proc.stdout
    text = proc.stdout.split('  outputs   ')[0]  # output paths are never broken
    assert max(len(line) for line in text.splitlines()) <= 100, proc.stdout


def test_the_same_picture_twice_is_called_identical(demo_dir, tmp_path):
    # before: 'a.png / b.png: insufficient parallax (median 0.00 deg, need 0.75)'
    for name in ('a.png', 'b.png'):
        (tmp_path / name).write_bytes((demo_dir / 'frame_000.png').read_bytes())
    out = tmp_path / 'out'
    proc = _aetherscan('reconstruct', tmp_path / 'a.png', tmp_path / 'b.png', '-o', out,
                       '--backend', 'classical')
    assert proc.returncode == 1, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if ': error: ' in line]
    assert len(errors) == 1 and 'Traceback' not in proc.stderr, proc.stderr
    assert 'views 0 and 1 (a.png, b.png) are identical images: nothing to triangulate' \
        in errors[0], errors
    assert 'parallax' not in proc.stderr
    assert not (out / 'cloud.ply').exists()


def test_negative_focal_length_is_refused_by_value(demo_dir, tmp_path):
    # before: 'argument --intrinsics: expected at least one argument'
    proc = _aetherscan('reconstruct', demo_dir, '-o', tmp_path / 'out', '--intrinsics',
                       '-995,600,160,120')
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "aetherscan reconstruct: error: --intrinsics '-995,600,160,120': focal lengths fx, fy "
        'must be > 0, got fx -995, fy 600'], proc.stderr


def test_missing_model_path_is_an_error(demo_dir, tmp_path):
    # before: exit 0 with the classical backend; the path was only inside a long reason
    missing = tmp_path / 'no_such_checkpoint'
    proc = _aetherscan('reconstruct', demo_dir, '-o', tmp_path / 'out', '--model', missing)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith(f'aetherscan reconstruct: error: --model {missing}: no such '
                                  'file or directory'), proc.stderr
    assert not (tmp_path / 'out').exists()


def test_textureless_input_fails_cleanly(tmp_path):
    for i in range(3):
        assert cv2.imwrite(str(tmp_path / f'flat_{i}.png'), np.full((240, 320, 3), 128, np.uint8))
    out = tmp_path / 'out'
    proc = _aetherscan('reconstruct', tmp_path, '-o', out, '--backend', 'classical')
    assert proc.returncode == 1, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if ': error: ' in line]
    assert len(errors) == 1 and 'Traceback' not in proc.stderr
    assert errors[0].startswith('aetherscan reconstruct: error: classical could not reconstruct')
    assert not (out / 'cloud.ply').exists() and not (out / 'poses.json').exists()


def test_ctrl_c_during_a_run(demo_dir, tmp_path):
    out = tmp_path / 'out'
    proc = subprocess.Popen([str(SCRIPT), 'reconstruct', str(demo_dir), '-o', str(out),
                             '--backend', 'classical'], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:  # wait until the reconstruction has started
            line = proc.stderr.readline()
            lines.append(line)
            if not line or ' preprocess' in line:
                break
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = ''.join(lines) + stderr
    assert proc.returncode == 130, err
    assert 'aetherscan reconstruct: interrupted' in err and 'Traceback' not in err
    assert not (out / 'cloud.ply').exists()
    assert not [p for p in out.iterdir() if p.name.endswith('.tmp')]


# ------------------------------------------- raw images of a real lens: --camera-info (issue 13)

LENSES = ('plumb_bob', 'equidistant')
FIGURES = ('rotation_error_deg_max', 'relative_rotation_error_deg_max', 'center_error_pct_max',
           'accuracy_pct', 'completeness_pct')


def _reconstruct_and_eval(out, gt_dir, *args):
    """Return (eval scores or None when the reconstruction failed, reconstruct's process)."""
    proc = _aetherscan('reconstruct', *args, '-o', out, '--backend', 'classical',
                       '--no-preview')
    if proc.returncode != 0:
        return None, proc
    scores = _aetherscan('eval', out, gt_dir, '--json')
    assert scores.returncode == 0, scores.stderr
    return json.loads(scores.stdout), proc


def _figures(label, scores):
    if scores is None:
        return f'{label:<34} failed'
    return f'{label:<34} ' + '  '.join(f'{key} {scores[key]:.3f}' for key in FIGURES)


@pytest.fixture(scope='module')
def undistorted_scores(demo_dir):
    scores, proc = _reconstruct_and_eval(demo_dir.parent / 'result_pinhole', demo_dir, demo_dir,
                                         '--intrinsics', _intrinsics(demo_dir))
    assert scores is not None, proc.stderr
    return scores


@pytest.mark.parametrize('lens', LENSES)
def test_raw_images_with_their_camera_info_reconstruct_like_pinhole_ones(demo_dir,
                                                                         undistorted_scores,
                                                                         lens, tmp_path):
    # the demo scene of demo_dir (same seed, views, size) through a real lens
    raw_dir = tmp_path / lens
    proc = _aetherscan('demo-scene', raw_dir, '--views', VIEWS, '--width', WIDTH,
                       '--height', HEIGHT, '--seed', 3, '--distortion', lens)
    assert proc.returncode == 0, proc.stderr
    calib = raw_dir / 'camera_info.yaml'
    assert f'--camera-info {calib}' in proc.stdout and f'raw, {lens} distortion' in proc.stdout
    from aetherscan_ros.core.calibration_file import read_calibration_yaml
    from aetherscan_ros.core.undistortion import undistorted_intrinsics
    model = read_calibration_yaml(calib)
    assert model.distortion_model == lens and model.has_distortion
    frames = sorted(raw_dir.glob('frame_*.png'))
    assert len(frames) == VIEWS
    # with the lens model: the images are undistorted first (calibration file before images,
    # as `--camera-info DIR/camera_info.yaml DIR/frame_*.png` puts them)
    out = tmp_path / 'with_model'
    with_model, proc = _reconstruct_and_eval(out, raw_dir, '--camera-info', calib, *frames)
    assert with_model is not None, proc.stderr
    assert f'intrinsics from --camera-info ({lens} lens, images undistorted)' in proc.stderr
    flat = ' '.join(proc.stdout.split())
    assert 'intrinsics: known (--camera-info), fixed' in flat
    assert f'lens: {lens} distortion removed before reconstruction (camera_info.yaml)' in flat
    poses = read_poses_json(out / 'poses.json')
    assert poses.info['intrinsics'] == 'known (--camera-info), fixed'
    assert poses.info['lens'].startswith(f'{lens} distortion removed')
    np.testing.assert_allclose(poses.intrinsics, [undistorted_intrinsics(model)] * VIEWS)
    # ignoring the lens: the same raw images with K only
    k = model.K
    ignored, ignored_proc = _reconstruct_and_eval(
        tmp_path / 'without_model', raw_dir, raw_dir, '--intrinsics',
        ','.join(repr(float(v)) for v in (k[0, 0], k[1, 1], k[0, 2], k[1, 2])))
    print(f'\n{lens} (classical, {VIEWS} views {WIDTH}x{HEIGHT}; lengths in % of the extent)')
    print(_figures('undistorted scene, --intrinsics', undistorted_scores))
    print(_figures('raw + --camera-info (the model)', with_model))
    print(_figures('raw + --intrinsics (lens ignored)', ignored))
    # equal within noise to the scene rendered without distortion
    base = undistorted_scores
    assert with_model['registered_views'] == VIEWS
    assert with_model['rotation_error_deg_max'] < 1.0
    assert with_model['relative_rotation_error_deg_max'] < \
        base['relative_rotation_error_deg_max'] + 0.2
    assert with_model['center_error_pct_max'] < base['center_error_pct_max'] + 0.1
    assert with_model['accuracy_pct'] < 1.5 * base['accuracy_pct'] + 0.1
    assert with_model['completeness_pct'] < 1.5 * base['completeness_pct'] + 0.2
    # clearly worse without the lens model (or no result at all): the model is what helps
    if ignored is None:
        assert ignored_proc.returncode == 1, ignored_proc.stderr
        return
    assert ignored['relative_rotation_error_deg_max'] > max(
        1.0, 5 * with_model['relative_rotation_error_deg_max'])
    assert ignored['accuracy_pct'] > max(1.0, 5 * with_model['accuracy_pct'])
    assert ignored['completeness_pct'] > 3 * with_model['completeness_pct']


def _main_error(capsys, argv):
    from aetherscan_ros.cli.app import main
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if ': error: ' in line]
    assert len(errors) == 1 and 'Traceback' not in err, err
    return code, errors[0]


def test_camera_info_errors_name_the_file_and_the_reason(demo_dir, tmp_path, capsys):
    from aetherscan_ros.core.calibration_file import write_calibration_yaml
    from aetherscan_ros.core.camera_model import CameraModel
    frames = [str(demo_dir / f'frame_{i:03d}.png') for i in range(VIEWS)]
    out = str(tmp_path / 'out')
    missing = tmp_path / 'missing.yaml'
    broken = tmp_path / 'broken.yaml'
    broken.write_text('image_width: 320\nimage_height: 240\ndistortion_model: plumb_bob\n')
    vga = write_calibration_yaml(
        CameraModel(width=640, height=480, distortion_model='plumb_bob',
                    D=(-0.27, 0.07, 0.0, 0.0, 0.0),
                    K=[[525.0, 0, 319.5], [0, 525.0, 239.5], [0, 0, 1]]),
        tmp_path / 'vga.yaml')
    bad_d = tmp_path / 'bad_d.yaml'
    bad_d.write_text(vga.read_text().replace('image_width: 640', 'image_width: 320')
                     .replace('image_height: 480', 'image_height: 240')
                     .replace('distortion_model: plumb_bob', 'distortion_model: equidistant'))
    cases = [
        ([str(missing)], f'--camera-info {missing}: cannot read the calibration file'),
        ([str(broken)], f'--camera-info {broken}: missing key camera_matrix'),
        ([str(vga)], f'--camera-info {vga}: describes 640x480 images but '
                     f'{frames[0]} is 320x240'),
        ([str(bad_d)], f'--camera-info {bad_d}: distortion_coefficients: distortion_model '
                       'equidistant needs 4 coefficients in D, got 5'),
        ([str(vga), str(vga)], f'--camera-info given 2 times for {VIEWS} images'),
    ]
    for calib, message in cases:
        code, error = _main_error(capsys, ['reconstruct', '-o', out, '--camera-info', *calib,
                                           *frames])
        assert code == 2 and message in error, (calib, error)
    code, error = _main_error(capsys, ['reconstruct', *frames, '-o', out, '--camera-info',
                                       str(vga), '--intrinsics', '262.5,262.5,159.5,119.5'])
    assert code == 2 and 'not allowed with argument' in error, error
    assert not (tmp_path / 'out').exists()
