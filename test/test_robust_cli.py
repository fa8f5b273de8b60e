# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Issue 7, malformed input fed to the ``aetherscan`` CLI: one error line naming the file.

Each case is a file the CLI must refuse with exit status 2 and exactly one
``aetherscan reconstruct: error: <file>: <reason>`` line, before any backend is built and
without decoding a huge image. (test_cli.py covers argument errors; these are the issue's
image cases.)
"""

import io
import json
from pathlib import Path
import subprocess
import sys

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / 'robust_helpers'))
import malformed  # noqa: E402,I100 - test/robust_helpers is put on sys.path just above


def _png(rgb):
    ok, buf = cv2.imencode('.png', np.ascontiguousarray(rgb[..., ::-1]))
    assert ok
    return buf.tobytes()


def _jpeg(rgb):
    ok, buf = cv2.imencode('.jpg', np.ascontiguousarray(rgb[..., ::-1]))
    assert ok
    return buf.tobytes()


def _float_tiff():
    from PIL import Image as PILImage
    depth = np.full((48, 64), 1.5, np.float32)
    depth[::3, ::5] = np.nan
    buf = io.BytesIO()
    PILImage.fromarray(depth, mode='F').save(buf, format='TIFF')
    return buf.getvalue()


CASES = {
    'truncated.jpg': (lambda: _jpeg(malformed.textured())[:400],
                      'not a readable image (OpenCV cannot decode it)'),
    'garbage.jpg': (lambda: b'\xff\xd8\xff\xe0' + bytes(range(256)) * 4,
                    'not a readable image'),
    'text.png': (lambda: b'this is not an image\n', 'not a readable image'),
    'empty.png': (lambda: b'', 'empty file, not an image'),
    'one_by_one.png': (lambda: _png(malformed.textured(1, 1)), 'image 1x1 is too small'),
    'huge_10000.png': (lambda: malformed.huge_png(10000),
                       'image 10000x10000 exceeds 8192 px per side'),
    'float_nan.tif': (_float_tiff, 'a floating-point image (depth or HDR data)'),
}


@pytest.fixture(scope='module')
def good(tmp_path_factory):
    """Two valid images to put beside each bad one."""
    d = tmp_path_factory.mktemp('good')
    paths = []
    for i in range(2):
        path = d / f'good_{i}.png'
        path.write_bytes(_png(malformed.textured(seed=i)))
        paths.append(path)
    return paths


@pytest.mark.parametrize('name', sorted(CASES))
def test_bad_image_file_is_one_error_line(name, good, tmp_path, capsys):
    from aetherscan_ros.cli import main
    build, reason = CASES[name]
    bad = tmp_path / name
    bad.write_bytes(build())
    code = main(['reconstruct', str(good[0]), str(bad), str(good[1]), '-o',
                 str(tmp_path / 'out'), '--backend', 'classical'])
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if ': error: ' in line]
    assert code == 2, err
    assert len(errors) == 1, err
    assert errors[0].startswith(f'aetherscan reconstruct: error: {bad}: {reason}'), errors
    assert not (tmp_path / 'out').exists()  # refused before anything was written


def test_huge_image_is_refused_without_decoding(tmp_path, good):
    """The 10000x10000 PNG is refused from its header: the process never holds 300 MB."""
    bad = tmp_path / 'huge.png'
    bad.write_bytes(malformed.huge_png(10000))
    # VmHWM (peak RSS of this process image): ru_maxrss would include the forking pytest's
    code = ('import sys\n'
            'from aetherscan_ros.cli import main\n'
            f'rc = main(["reconstruct", {str(good[0])!r}, {str(bad)!r}, "-o", '
            f'{str(tmp_path / "out")!r}])\n'
            'hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0]\n'
            'print(hwm.split()[1])\n'
            'sys.exit(rc)\n')
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    peak_mib = int(proc.stdout.strip().splitlines()[-1]) / 1024
    assert peak_mib < 250, f'peak RSS {peak_mib:.0f} MiB: the image was decoded'
    assert 'exceeds 8192 px per side' in proc.stderr


def test_nan_and_zero_intrinsics_are_refused(good, tmp_path, capsys):
    from aetherscan_ros.cli import main
    for text, reason in (('nan,50,32,24', 'values must be finite'),
                         ('0,0,32,24', 'focal lengths fx, fy must be > 0')):
        code = main(['reconstruct', str(good[0]), str(good[1]), '--intrinsics', text, '-o',
                     str(tmp_path / 'out')])
        err = capsys.readouterr().err
        assert code == 2 and reason in err, err


def test_mismatched_sizes_are_refused_with_both_names(tmp_path, good, capsys):
    from aetherscan_ros.cli import main
    big = tmp_path / 'big.png'
    big.write_bytes(_png(malformed.textured(640, 480, seed=5)))
    code = main(['reconstruct', str(good[0]), str(big), '-o', str(tmp_path / 'out')])
    err = capsys.readouterr().err
    assert code == 2 and 'big.png (640x480)' in err and 'good_0.png (64x48)' in err, err


def test_corrupt_result_files_are_named_by_eval(tmp_path, capsys):
    """``aetherscan eval`` on a corrupt poses.json / cloud.ply names the file."""
    from aetherscan_ros.cli import main
    result = tmp_path / 'result'
    result.mkdir()
    (result / 'poses.json').write_text(json.dumps({'views': 'not a list'}))
    (result / 'cloud.ply').write_bytes(b'ply\nformat binary_little_endian 1.0\nend_header\n')
    gt = tmp_path / 'gt'
    gt.mkdir()
    code = main(['eval', str(result), str(gt)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and 'error:' in err[0], err
