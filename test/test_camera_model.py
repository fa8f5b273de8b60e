# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Camera models from camera_info (image_geometry semantics), undistortion, calibration YAML.

Ground truth comes from OpenCV's forward models (``cv2.projectPoints``,
``cv2.fisheye.projectPoints``) and hand-computed intrinsics, never from the code under test.
"""

import cv2
import numpy as np
import pytest

from aetherscan_ros.core import undistortion
from aetherscan_ros.core.calibration_file import (
    calibration_yaml_text, CalibrationFileError, parse_calibration_yaml, read_calibration_yaml,
    write_calibration_yaml)
from aetherscan_ros.core.camera_model import CameraModel, CameraModelError, Roi
from aetherscan_ros.core.undistortion import (
    undistort_image, undistort_points, undistorted_intrinsics)

K_STEREO = [610.2, 0.0, 322.7, 0.0, 608.9, 237.1, 0.0, 0.0, 1.0]
# A stereo head's left camera: strong barrel distortion (k1 = -0.27).
PLUMB_BOB = CameraModel.from_fields(640, 480, 'plumb_bob',
                                    [-0.27, 0.09, 0.0012, -0.0008, -0.012], K_STEREO)
RATIONAL = CameraModel.from_fields(640, 480, 'rational_polynomial',
                                   [0.8, -0.1, 0.001, -0.0005, 0.0, 1.1, 0.05, 0.0], K_STEREO)
# A tracking camera's fisheye (T265-like), about 160 degrees across.
FISHEYE = CameraModel.from_fields(
    848, 800, 'equidistant', [-0.0073, 0.0429, -0.0409, 0.0075],
    [286.2, 0.0, 421.6, 0.0, 286.4, 402.5, 0.0, 0.0, 1.0])
MODELS = {'plumb_bob': PLUMB_BOB, 'rational_polynomial': RATIONAL, 'equidistant': FISHEYE}


def project(model: CameraModel, xyz: np.ndarray, k: np.ndarray = None) -> np.ndarray:
    """Raw pixels ``[N, 2]`` of points ``[N, 3]`` with OpenCV's forward model (ground truth)."""
    k = model.K_eff if k is None else k
    d = np.asarray(model.D, np.float64)
    zero = np.zeros(3)
    if model.is_fisheye:
        out, _ = cv2.fisheye.projectPoints(xyz.reshape(-1, 1, 3), zero, zero, k, d)
    else:
        out, _ = cv2.projectPoints(xyz.reshape(-1, 1, 3), zero, zero, k, d)
    return out.reshape(-1, 2)


def points_in_view(model: CameraModel, count: int = 2000, seed: int = 0):
    """Return ``(xyz [N, 3], raw pixels [N, 2])`` of random points that land in the image."""
    rng = np.random.default_rng(seed)
    span = 3.0 if model.is_fisheye else 0.7
    xyz = np.c_[rng.uniform(-span, span, (count, 2)), np.ones(count)] * rng.uniform(
        0.5, 8.0, (count, 1))
    raw = project(model, xyz)
    width, height = model.image_size
    inside = (raw[:, 0] >= 0) & (raw[:, 0] <= width - 1) & (raw[:, 1] >= 0) & (
        raw[:, 1] <= height - 1)
    if model.is_fisheye:  # the equidistant model is 1:1 only up to ~80 degrees off-axis here
        inside &= np.hypot(xyz[:, 0], xyz[:, 1]) / xyz[:, 2] < np.tan(np.radians(78))
    return xyz[inside], raw[inside]


@pytest.mark.parametrize('name', sorted(MODELS))
def test_undistort_points_recovers_the_pinhole_projection(name):
    model = MODELS[name]
    xyz, raw = points_in_view(model)
    assert len(raw) > 300
    ideal = xyz[:, :2] / xyz[:, 2:]
    fx = model.K[0, 0]
    # The distortion is real: the raw pixels are far from a pinhole projection with K.
    pinhole_raw = ideal * model.K.diagonal()[:2] + model.K[:2, 2]
    assert np.abs(raw - pinhole_raw).max() > 10.0
    norm = undistort_points(model, raw, normalized=True)
    assert np.abs(norm - ideal).max() * fx < 0.01
    k_out = undistorted_intrinsics(model)
    pix = undistort_points(model, raw)
    expected = np.c_[ideal, np.ones(len(ideal))] @ k_out[:2].T
    assert np.abs(pix - expected).max() < 0.01


def ramp_image(width: int, height: int) -> np.ndarray:
    """``[H, W, 2]`` float32 image whose pixel (u, v) holds (u, v)."""
    u, v = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return np.dstack([u, v])


def check_remap(model: CameraModel, k_raw: np.ndarray, rectify: bool = False,
                full_to_raw=None) -> float:
    """
    Undistort a coordinate ramp; return the max error (px) against the analytic raw position.

    Each output pixel is a ray ``K_out^-1 [x, y, 1]`` (rotated back by ``R^T`` when
    rectifying); OpenCV's forward model with ``k_raw`` says where that ray lands in the raw
    image, which is what the remapped ramp must hold there.
    """
    width, height = model.image_size
    out, k_out = undistort_image(model, ramp_image(width, height), rectify=rectify)
    assert out.shape == (height, width, 2) and out.dtype == np.float32
    ys, xs = np.mgrid[2:height - 2:7, 2:width - 2:7]
    pix = np.c_[xs.ravel(), ys.ravel()].astype(np.float64)
    rays = np.linalg.solve(k_out, np.c_[pix, np.ones(len(pix))].T).T
    if rectify:
        rays = rays @ model.R  # R^T applied to each row vector
    expected = project(model, rays, k_raw)
    if full_to_raw is not None:
        expected = full_to_raw(expected)
    inside = ((expected >= 1).all(axis=1) & (expected[:, 0] <= width - 2)
              & (expected[:, 1] <= height - 2))
    got = out[pix[:, 1].astype(int), pix[:, 0].astype(int)]
    assert inside.mean() > 0.95  # alpha=0 / balance=0: (almost) every output pixel is valid
    return float(np.abs(got[inside] - expected[inside]).max())


@pytest.mark.parametrize('name', sorted(MODELS))
def test_undistorted_image_matches_the_analytic_model(name):
    model = MODELS[name]
    error = check_remap(model, model.K_eff)
    assert error < 0.05, f'{name}: remapped positions off by {error:.4f} px'
    # No large black border: a white raw image stays white (but for the outermost pixels).
    white = np.full((model.image_size[1], model.image_size[0]), 255, np.uint8)
    out, _ = undistort_image(model, white)
    assert (out[1:-1, 1:-1] == 0).mean() < 0.002


def test_fisheye_zooms_in_only_as_far_as_needed():
    # Strong positive coefficients: with the raw focal length the output border would reach
    # outside the raw image, so the focal length grows, just enough.
    model = CameraModel.from_fields(640, 480, 'equidistant', [1.0, 0.5, 0.0, 0.0],
                                    [300.0, 0.0, 320.0, 0.0, 300.0, 240.0, 0.0, 0.0, 1.0])
    k_out = undistorted_intrinsics(model)
    assert k_out[0, 0] > 310.0
    np.testing.assert_allclose(k_out[:2, 2], model.K[:2, 2])
    assert check_remap(model, model.K) < 0.05
    white = np.full((480, 640), 255, np.uint8)
    assert (undistort_image(model, white)[0][1:-1, 1:-1] == 0).mean() < 0.002
    corners = np.array([[0.0, 0.0, 1.0], [639.0, 479.0, 1.0], [0.0, 479.0, 1.0]])
    wider = k_out.copy()
    wider[[0, 1], [0, 1]] *= 0.99
    raw = project(model, np.linalg.solve(wider, corners.T).T)
    assert np.any((raw < -0.5) | (raw > [639.5, 479.5]))  # 1 % wider would show a border


def render_raw_checkerboard(model: CameraModel, square: float, cols: int, rows: int):
    """Raw image ``[H, W]`` uint8 of a fronto-parallel board at z = 1, seen through ``model``."""
    width, height = model.image_size
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float64)
    src = np.c_[xs.ravel(), ys.ravel()].reshape(-1, 1, 2)
    norm = cv2.undistortPointsIter(src, model.K_eff, np.asarray(model.D), None, None,
                                   (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 50, 1e-12))
    x, y = norm.reshape(-1, 2).T
    # Anti-aliased squares (edges ~1 px soft, symmetric so corners stay unbiased): each factor
    # is about the distance in pixels to the nearest square edge, with its sign.
    to_px = square / np.pi * model.K[0, 0]
    edge_x = np.sin(np.pi * (x + cols * square / 2) / square) * to_px
    edge_y = np.sin(np.pi * (y + rows * square / 2) / square) * to_px
    value = 0.5 + 0.5 * np.tanh(edge_x / 0.7) * np.tanh(edge_y / 0.7)
    outside = (np.abs(x) > cols * square / 2) | (np.abs(y) > rows * square / 2)
    value[outside] = 1.0
    return (value * 255).round().astype(np.uint8).reshape(height, width)


def line_residual(corners: np.ndarray) -> float:
    """Max RMS distance (px) of each row ``[rows, cols, 2]`` of corners from its best line."""
    worst = 0.0
    for line in list(corners) + list(corners.transpose(1, 0, 2)):
        centred = line - line.mean(axis=0)
        worst = max(worst, float(np.linalg.svd(centred, compute_uv=False)[-1]
                                 / np.sqrt(len(line))))
    return worst


def test_undistorted_checkerboard_has_straight_lines():
    model, square, cols, rows = PLUMB_BOB, 0.1, 9, 7
    raw = render_raw_checkerboard(model, square, cols, rows)
    gx, gy = np.meshgrid((np.arange(cols - 1) - (cols - 2) / 2) * square,
                         (np.arange(rows - 1) - (rows - 2) / 2) * square)
    board = np.dstack([gx, gy, np.ones_like(gx)])  # inner corners [rows-1, cols-1, 3]
    raw_corners = project(model, board.reshape(-1, 3)).reshape(rows - 1, cols - 1, 2)
    raw_bend = line_residual(raw_corners)
    out, k_out = undistort_image(model, raw)
    found, detected = cv2.findChessboardCornersSB(out, (cols - 1, rows - 1))
    assert found
    detected = detected.reshape(-1, 2)
    expected = board.reshape(-1, 3) @ k_out.T
    expected = expected[:, :2] / expected[:, 2:]
    dist = np.linalg.norm(expected[:, None] - detected[None], axis=2)
    matched = detected[dist.argmin(axis=1)]
    position_error = float(dist.min(axis=1).max())
    bend = line_residual(matched.reshape(rows - 1, cols - 1, 2))
    assert raw_bend > 1.5, raw_bend  # the raw rows and columns bow by pixels
    assert bend < 0.1 and bend < raw_bend / 20, (bend, raw_bend)
    assert position_error < 0.25, position_error


def test_no_distortion_is_an_identity_fast_path():
    image = np.zeros((480, 640, 3), np.uint8)
    for model in (CameraModel.pinhole(np.reshape(K_STEREO, (3, 3)), 640, 480),
                  CameraModel.from_fields(640, 480, 'plumb_bob', [0.0] * 5, K_STEREO),
                  CameraModel.from_fields(640, 480, 'plumb_bob', [], K_STEREO),
                  CameraModel.from_fields(640, 480, 'none', [], K_STEREO),
                  PLUMB_BOB.for_rectified_image()):
        assert not model.has_distortion
        out, k_out = undistort_image(model, image)
        assert out is image
        np.testing.assert_array_equal(k_out, model.K_eff)
        pts = np.array([[3.0, 4.0], [600.0, 470.0]])
        np.testing.assert_array_equal(undistort_points(model, pts), pts)


def test_remap_tables_are_cached_per_model():
    cache = undistortion._remap_tables
    image = np.zeros((480, 640), np.uint8)
    undistort_image(PLUMB_BOB, image)
    before = cache.cache_info()
    twin = CameraModel.from_fields(640, 480, 'plumb_bob',
                                   [-0.27, 0.09, 0.0012, -0.0008, -0.012], K_STEREO)
    assert twin == PLUMB_BOB and hash(twin) == hash(PLUMB_BOB) and twin is not PLUMB_BOB
    for _ in range(3):
        undistort_image(twin, image)
    after = cache.cache_info()
    assert after.hits - before.hits == 3 and after.misses == before.misses
    other = CameraModel.from_fields(640, 480, 'plumb_bob', [-0.2, 0.0, 0.0, 0.0, 0.0], K_STEREO)
    undistort_image(other, image)  # a different model: new tables
    assert cache.cache_info().misses == after.misses + 1


def test_binning_and_roi_change_the_effective_intrinsics():
    p_full = [610.0, 0.0, 322.0, -36.6, 0.0, 608.0, 238.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    model = CameraModel.from_fields(
        1280, 960, 'plumb_bob', [-0.27, 0.09, 0.0012, -0.0008, -0.012],
        [612.0, 0.0, 640.4, 0.0, 611.0, 480.6, 0.0, 0.0, 1.0], r=np.eye(3), p=p_full,
        binning_x=2, binning_y=2, roi=(100, 60, 800, 600, False))
    assert model.image_size == (400, 300)
    # Hand-computed: principal point minus the ROI offset, then everything over the binning.
    np.testing.assert_allclose(model.K_eff, [[306.0, 0.0, 270.2], [0.0, 305.5, 210.3],
                                             [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(model.P_eff, [[305.0, 0.0, 111.0, -18.3],
                                             [0.0, 304.0, 89.0, 0.0], [0.0, 0.0, 1.0, 0.0]])
    # Binning 0 means 1 and the all-zero ROI the full image (image_geometry's reading).
    plain = CameraModel.from_fields(1280, 960, 'plumb_bob', [0.0] * 5, model.K,
                                    roi=(0, 0, 0, 0, False))
    assert plain.image_size == (1280, 960) and plain.binning_x == plain.binning_y == 1
    np.testing.assert_array_equal(plain.K_eff, plain.K)
    # The same ray seen at full resolution and in the binned ROI image agrees.
    xyz, full_pixels = points_in_view(CameraModel.from_fields(
        1280, 960, 'plumb_bob', model.D, model.K), seed=3)

    def to_reduced(pixels):
        return (pixels - [100.0, 60.0]) / 2.0

    np.testing.assert_allclose(project(model, xyz), to_reduced(project(model, xyz, model.K)),
                               atol=1e-9)
    assert len(full_pixels) > 100
    # Undistorting the binned ROI image uses the full-resolution distortion correctly.
    error = check_remap(model, model.K, full_to_raw=to_reduced)
    assert error < 0.05, error


def test_rectify_reproduces_image_proc():
    rot, _ = cv2.Rodrigues(np.array([0.02, -0.015, 0.006]))
    p = [580.0, 0.0, 318.0, 0.0, 0.0, 580.0, 241.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    model = CameraModel.from_fields(640, 480, 'plumb_bob', PLUMB_BOB.D, K_STEREO, r=rot, p=p)
    xyz, raw = points_in_view(model, seed=5)
    rect = (xyz @ rot.T) @ model.P[:, :3].T
    rect = rect[:, :2] / rect[:, 2:]
    np.testing.assert_allclose(undistort_points(model, raw, rectify=True), rect, atol=0.01)
    error = check_remap(model, model.K, rectify=True)
    assert error < 0.05, error
    _, k_out = undistort_image(model, np.zeros((480, 640), np.uint8), rectify=True)
    np.testing.assert_array_equal(k_out, model.P[:, :3])
    rect_model = model.for_rectified_image()
    assert not rect_model.has_distortion
    np.testing.assert_array_equal(rect_model.K_eff, model.P[:, :3])


@pytest.mark.parametrize('kwargs, field, words', [
    ({'distortion_model': 'fisheye'}, 'distortion_model', 'unknown distortion_model'),
    ({'d': [-0.2, 0.1, 0.0, 0.0]}, 'D', 'plumb_bob needs 5 coefficients in D, got 4'),
    ({'distortion_model': 'rational_polynomial'}, 'D', 'needs 8 coefficients in D, got 5'),
    ({'distortion_model': 'equidistant'}, 'D', 'needs 4 coefficients in D, got 5'),
    ({'distortion_model': '', 'd': [0.1, 0, 0, 0, 0]}, 'D', 'no distortion_model'),
    ({'k': [0.0] * 9}, 'K', 'non-positive focal lengths'),
    ({'k': [-500, 0, 320, 0, 500, 240, 0, 0, 1]}, 'K', 'non-positive focal lengths'),
    ({'k': [500, 0, float('nan'), 0, 500, 240, 0, 0, 1]}, 'K', 'NaN'),
    ({'d': [-0.2, float('nan'), 0, 0, 0]}, 'D', 'NaN'),
    ({'k': [500, 0, 320, 0, 500, 240, 0, 0]}, 'K', '8 values, expected 9'),
    ({'r': [1, 0, 0, 0, 2, 0, 0, 0, 1]}, 'R', 'not a rotation'),
    ({'p': [500, 0, 320, 0, 0, 0, 240, 0, 0, 0, 1, 0]}, 'P', 'non-positive focal'),
    ({'roi': (600, 0, 100, 100)}, 'roi', 'outside the 640x480'),
    ({'binning_x': -1}, 'binning_x', 'non-negative integer'),
])
def test_validation_names_the_problem(kwargs, field, words):
    fields = {'width': 640, 'height': 480, 'distortion_model': 'plumb_bob',
              'd': [-0.2, 0.1, 0.0, 0.0, 0.0], 'k': [500, 0, 320, 0, 500, 240, 0, 0, 1]}
    fields.update(kwargs)
    with pytest.raises(CameraModelError, match=words) as info:
        CameraModel.from_fields(**fields)
    assert info.value.field == field


def test_image_of_the_wrong_size_is_refused():
    with pytest.raises(CameraModelError, match='image is 320x240 but camera_info describes '
                                               '640x480'):
        undistort_image(PLUMB_BOB, np.zeros((240, 320), np.uint8))


# camera_calibration_parsers (yaml-cpp) output; 1e-05 has no dot, as yaml-cpp writes it.
PARSERS_YAML = """image_width: 1280
image_height: 720
camera_name: stereo_left
camera_matrix:
  rows: 3
  cols: 3
  data: [912.33, 0, 641.27, 0, 911.84, 362.55, 0, 0, 1]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [-0.2712, 0.0874, 1e-05, -0.00042, 0]
rectification_matrix:
  rows: 3
  cols: 3
  data: [0.99998, 0.0021, -0.0059, -0.00208, 0.99999, 0.0032, 0.00591, -0.00319, 0.99998]
projection_matrix:
  rows: 3
  cols: 4
  data: [880.1, 0, 650.2, 0, 0, 880.1, 360.9, 0, 0, 0, 1, 0]
"""

# camera_calibrator's ost.yaml for a fisheye: padded, multi-line numpy text.
CALIBRATOR_YAML = """image_width: 848
image_height: 800
camera_name: fisheye_cam
camera_matrix:
  rows: 3
  cols: 3
  data: [ 286.2    ,    0.     ,  421.6    ,
            0.     ,  286.4    ,  402.5    ,
            0.     ,    0.     ,    1.     ]
distortion_model: equidistant
distortion_coefficients:
  rows: 1
  cols: 4
  data: [-0.007300, 0.042900, -0.040900, 0.007500]
rectification_matrix:
  rows: 3
  cols: 3
  data: [ 1.,  0.,  0.,
          0.,  1.,  0.,
          0.,  0.,  1.]
projection_matrix:
  rows: 3
  cols: 4
  data: [ 286.2    ,    0.     ,  421.6    ,    0.     ,
            0.     ,  286.4    ,  402.5    ,    0.     ,
            0.     ,    0.     ,    1.     ,    0.     ]
"""


def test_reads_the_files_ros_writes(tmp_path):
    path = tmp_path / 'left.yaml'
    path.write_text(PARSERS_YAML)
    model = read_calibration_yaml(path)
    assert (model.width, model.height, model.camera_name) == (1280, 720, 'stereo_left')
    assert model.distortion_model == 'plumb_bob'
    assert model.D == (-0.2712, 0.0874, 1e-05, -0.00042, 0.0)
    np.testing.assert_array_equal(model.K, [[912.33, 0, 641.27], [0, 911.84, 362.55],
                                            [0, 0, 1]])
    assert model.R[1, 0] == -0.00208 and model.P[0, 2] == 650.2
    fisheye = parse_calibration_yaml(CALIBRATOR_YAML, 'ost.yaml')
    assert fisheye == CameraModel.from_fields(
        848, 800, 'equidistant', [-0.0073, 0.0429, -0.0409, 0.0075],
        [286.2, 0.0, 421.6, 0.0, 286.4, 402.5, 0.0, 0.0, 1.0],
        r=np.eye(3), p=[286.2, 0, 421.6, 0, 0, 286.4, 402.5, 0, 0, 0, 1, 0],
        camera_name='fisheye_cam')


@pytest.mark.parametrize('model', [PLUMB_BOB, RATIONAL, FISHEYE, CameraModel.from_fields(
    1280, 720, 'plumb_bob', [-0.2712, 0.0874, 1e-05, -0.00042, 0.0], K_STEREO,
    r=cv2.Rodrigues(np.array([0.01, 0.02, -0.003]))[0], camera_name='left cam: "A"')])
def test_yaml_round_trip(tmp_path, model):
    path = write_calibration_yaml(model, tmp_path / 'sub' / 'calib.yaml')
    text = path.read_text()
    keys = [line.split(':')[0] for line in text.splitlines() if not line.startswith(' ')]
    assert keys == ['image_width', 'image_height', 'camera_name', 'camera_matrix',
                    'distortion_model', 'distortion_coefficients', 'rectification_matrix',
                    'projection_matrix']
    back = read_calibration_yaml(path)
    assert back == model  # bit-exact floats, name included
    assert calibration_yaml_text(back) == text


def test_pinhole_model_is_written_as_zero_plumb_bob(tmp_path):
    model = CameraModel.pinhole(np.reshape(K_STEREO, (3, 3)), 640, 480)
    back = read_calibration_yaml(write_calibration_yaml(model, tmp_path / 'c.yaml'))
    assert back.distortion_model == 'plumb_bob' and back.D == (0.0,) * 5
    assert not back.has_distortion
    np.testing.assert_array_equal(back.K, model.K)


@pytest.mark.parametrize('edit, key, words', [
    (('camera_matrix:', 'camera_mat:'), 'camera_matrix', 'missing key camera_matrix'),
    (('data: [912.33, 0, 641.27, 0, 911.84, 362.55, 0, 0, 1]',
      'data: [912.33, 0, 641.27, 0, 911.84, 362.55, 0, 0]'),
     'camera_matrix', 'data has 8 values but rows x cols = 3x3'),
    (('cols: 5\n  data: [-0.2712, 0.0874, 1e-05, -0.00042, 0]',
      'cols: 4\n  data: [-0.2712, 0.0874, 1e-05, -0.00042]'),
     'distortion_coefficients', 'plumb_bob needs 5 coefficients'),
    (('distortion_model: plumb_bob', 'distortion_model: kannala'),
     'distortion_model', 'unknown distortion_model'),
    (('data: [880.1,', 'data: [abc,'), 'projection_matrix', "'abc' is not a number"),
    (('image_width: 1280', 'image_width: -3'), 'image_width', 'is not a size'),
    (('911.84', '.nan'), 'camera_matrix', 'NaN'),
])
def test_yaml_errors_name_the_file_and_key(tmp_path, edit, key, words):
    path = tmp_path / 'bad.yaml'
    assert edit[0] in PARSERS_YAML
    path.write_text(PARSERS_YAML.replace(edit[0], edit[1]))
    with pytest.raises(CalibrationFileError, match=words) as info:
        read_calibration_yaml(path)
    assert str(info.value).startswith(f'{path}: ') and key in str(info.value)


def test_yaml_file_level_errors(tmp_path):
    missing = tmp_path / 'nope.yaml'
    with pytest.raises(CalibrationFileError, match='cannot read the calibration file'):
        read_calibration_yaml(missing)
    with pytest.raises(CalibrationFileError, match='not valid YAML'):
        parse_calibration_yaml('a: [1, 2', 'x.yaml')
    with pytest.raises(CalibrationFileError, match='expected a mapping'):
        parse_calibration_yaml('- 1\n- 2\n', 'x.yaml')
    # No distortion_model: plumb_bob, as camera_calibration_parsers assumes.
    text = PARSERS_YAML.replace('distortion_model: plumb_bob\n', '')
    assert parse_calibration_yaml(text).distortion_model == 'plumb_bob'


def test_opencv_filestorage_yaml_is_accepted():
    text = ('%YAML:1.0\n---\nimage_width: 640\nimage_height: 480\n'
            'camera_matrix: !!opencv-matrix\n   rows: 3\n   cols: 3\n   dt: d\n'
            '   data: [ 500., 0., 320., 0., 500., 240., 0., 0., 1. ]\n'
            'distortion_coefficients: !!opencv-matrix\n   rows: 1\n   cols: 5\n   dt: d\n'
            '   data: [ -0.1, 0.01, 0., 0., 0. ]\n')
    model = parse_calibration_yaml(text)
    assert model.distortion_model == 'plumb_bob' and model.D[0] == -0.1
    np.testing.assert_array_equal(model.P[:, :3], model.K)  # missing P: [K | 0]


def test_roi_accepts_message_like_objects():
    class RegionOfInterest:  # duck-typed sensor_msgs/RegionOfInterest
        x_offset, y_offset, width, height, do_rectify = 10, 20, 300, 200, True

    model = CameraModel.from_fields(640, 480, 'plumb_bob', [0.0] * 5, K_STEREO,
                                    roi=RegionOfInterest())
    assert model.roi == Roi(10, 20, 300, 200, True) and model.image_size == (300, 200)
