# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The demo scene through a real lens (:mod:`aetherscan_ros.demo.distortion`), without ROS.

The raw images are checked against independent computations: OpenCV's *forward* lens models
(``cv2.projectPoints``, ``cv2.fisheye.projectPoints``; the module itself only inverts them) and
the pinhole demo images rendered directly by :func:`make_scene`. The demo publisher's
CameraInfo is read back with the node's own reader (``ros/camera_info.py``).
"""

import argparse
from dataclasses import replace

import cv2
import numpy as np
import pytest

from aetherscan_ros.core.calibration_file import read_calibration_yaml, write_calibration_yaml
from aetherscan_ros.core.camera_model import CameraModel
from aetherscan_ros.core.undistortion import undistort_image, undistorted_intrinsics
from aetherscan_ros.demo import distortion
from aetherscan_ros.demo.distortion import (
    distort_scene, distorted_demo_scene, DISTORTIONS, raw_camera_model, raw_pixel_rays)
from aetherscan_ros.demo.room import scene_boxes
from aetherscan_ros.demo.scene import load_scene, make_scene, write_scene

WIDTH, HEIGHT = 160, 120
MODELS = ('plumb_bob', 'equidistant')


@pytest.fixture(scope='module')
def scene():
    return make_scene(num_views=2, width=WIDTH, height=HEIGHT, seed=1)


@pytest.fixture(scope='module')
def raw(scene):
    return {name: distort_scene(scene, name) for name in MODELS}


def _forward(model: CameraModel, rays: np.ndarray) -> np.ndarray:
    """Project ``[N, 3]`` optical-frame rays to raw pixels with OpenCV's forward model."""
    d = np.asarray(model.D, np.float64)
    if model.is_fisheye:
        px, _ = cv2.fisheye.projectPoints(rays.reshape(-1, 1, 3), np.zeros(3), np.zeros(3),
                                          model.K, d)
    else:
        px, _ = cv2.projectPoints(rays.reshape(-1, 3), np.zeros(3), np.zeros(3), model.K, d)
    return px.reshape(-1, 2)


def _gray(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float64)


def test_raw_camera_models_are_realistic(scene):
    pb = raw_camera_model('plumb_bob', scene.K, WIDTH, HEIGHT)
    assert pb.distortion_model == 'plumb_bob' and len(pb.D) == 5
    assert pb.D[0] == pytest.approx(-0.27)  # a stereo head's barrel lens
    fe = raw_camera_model('equidistant', scene.K, WIDTH, HEIGHT)
    assert fe.is_fisheye and len(fe.D) == 4 and fe.has_distortion
    for model in (pb, fe):
        np.testing.assert_array_equal(model.K, scene.K)  # the raw camera keeps the scene's K
        np.testing.assert_array_equal(model.R, np.eye(3))
        np.testing.assert_allclose(model.P[:, :3], undistorted_intrinsics(model))
        assert model.image_size == (WIDTH, HEIGHT)
    # plumb_bob: the calibrator's P zooms out (barrel), so P differs from K
    assert pb.P[0, 0] < scene.K[0, 0] - 5
    with pytest.raises(ValueError, match='unknown distortion'):
        raw_camera_model('rational', scene.K, WIDTH, HEIGHT)
    custom = raw_camera_model('plumb_bob', scene.K, WIDTH, HEIGHT, (-0.1, 0.0, 0.0, 0.0, 0.0))
    assert custom.D == (-0.1, 0.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize('name', MODELS)
def test_every_raw_pixel_ray_projects_back_onto_its_pixel(scene, name):
    model = raw_camera_model(name, scene.K, WIDTH, HEIGHT)
    rays = raw_pixel_rays(model)
    assert rays.shape == (HEIGHT, WIDTH, 2)
    v, u = np.mgrid[0:HEIGHT, 0:WIDTH]
    back = _forward(model, np.c_[rays.reshape(-1, 2), np.ones(HEIGHT * WIDTH)])
    np.testing.assert_allclose(back, np.c_[u.ravel(), v.ravel()], atol=1e-6)
    # the raw image sees more than the pinhole one of the same K (barrel / fisheye)
    corner = rays[0, 0] * scene.K[0, 0]
    assert np.all(np.abs(corner) > np.array([WIDTH, HEIGHT]) / 2 + 5), corner


@pytest.mark.parametrize('name', MODELS)
def test_raw_images_are_complete_and_deterministic(scene, raw, name):
    images, model = raw[name]
    assert images.shape == (2, HEIGHT, WIDTH, 3) and images.dtype == np.uint8
    assert model == raw_camera_model(name, scene.K, WIDTH, HEIGHT)
    # no black border: every pixel has colour, the outer rows/columns as textured as the rest
    assert not np.any(images.max(axis=-1) == 0)
    for img in images:
        border = np.r_[img[:2].reshape(-1, 3), img[-2:].reshape(-1, 3),
                       img[:, :2].reshape(-1, 3), img[:, -2:].reshape(-1, 3)]
        assert border.astype(float).std() > 0.5 * img.astype(float).std()
    again, _ = distort_scene(scene, name)
    np.testing.assert_array_equal(again, images)


@pytest.mark.parametrize('name', MODELS)
def test_undistorting_the_raw_image_gives_the_pinhole_picture(scene, raw, name):
    # Undistorted with the model, the raw view is the pinhole view (rendered independently by
    # make_scene) seen through K_out: same content at the same place, to a fraction of a pixel.
    images, model = raw[name]
    for view in range(2):
        und, k_out = undistort_image(model, images[view])
        homography = k_out @ np.linalg.inv(scene.K)  # same camera, other intrinsics
        expected = cv2.warpPerspective(scene.images[view], homography, (WIDTH, HEIGHT),
                                       flags=cv2.INTER_LINEAR)
        for y0, x0 in ((30, 40), (5, 5), (75, 100), (5, 100), (75, 5)):
            patch = np.s_[y0:y0 + 40, x0:x0 + 55]
            shift, _ = cv2.phaseCorrelate(_gray(und)[patch], _gray(expected)[patch])
            assert np.hypot(*shift) < 0.35, (name, view, (y0, x0), shift)
        # ignoring the lens, the corners are pixels away from where a pinhole camera has them
        corner = np.s_[5:45, 5:60]
        shift, _ = cv2.phaseCorrelate(_gray(images[view])[corner],
                                      _gray(scene.images[view])[corner])
        assert np.hypot(*shift) > 1.0, (name, view, shift)
        good = np.abs(und.astype(float) - expected)[10:-10, 10:-10].mean()
        ignored = np.abs(images[view].astype(float) - scene.images[view]).mean()
        assert good < 0.4 * ignored, (good, ignored)


@pytest.mark.parametrize('name', MODELS)
def test_distorted_scene_ground_truth_is_what_the_raw_cameras_see(scene, name):
    dist, model = distorted_demo_scene(scene, name)
    np.testing.assert_array_equal(dist.images, distort_scene(scene, name)[0])
    np.testing.assert_array_equal(dist.poses_c2w, scene.poses_c2w)
    np.testing.assert_array_equal(dist.K, scene.K)
    assert dist.meta['distortion']['model'] == name
    assert dist.meta['distortion']['D'] == list(DISTORTIONS[name])
    samples = dist.surface_samples.astype(np.float64)
    assert len(samples) > 1000 and dist.extent > 1.0

    def seen(points, with_lens):
        inside = np.zeros(len(points), bool)
        for pose in dist.poses_c2w:
            cam = (points - pose[:3, 3]) @ pose[:3, :3]
            front = cam[:, 2] > 1e-3
            px = np.full((len(points), 2), -1e9)
            if with_lens:
                px[front] = _forward(model, cam[front] / cam[front, 2:3])
            else:
                px[front] = cam[front, :2] / cam[front, 2:3] * scene.K[0, 0] + scene.K[:2, 2]
            inside |= front & np.all((px > -0.5) & (px < [WIDTH - 0.5, HEIGHT - 0.5]), axis=1)
        return inside

    # every sample lies in some raw image (forward lens model, independent of the renderer) ...
    assert seen(samples, with_lens=True).all()
    # ... and the raw views see surfaces no pinhole view of the same K sees
    outside = ~seen(samples, with_lens=False)
    assert outside.mean() > 0.05, outside.mean()
    # and every sample lies exactly on a surface of the room (its boxes, rebuilt from the seed)
    boxes = scene_boxes(np.random.default_rng([1, 1]))
    gap = np.full(len(samples), np.inf)
    for box in boxes:
        below, above = box.lo - samples, samples - box.hi
        outside_box = np.linalg.norm(np.maximum(np.maximum(below, above), 0.0), axis=1)
        inside_box = np.minimum(-below, -above).min(axis=1)  # to the nearest face, inside
        gap = np.minimum(gap, np.where(outside_box > 0, outside_box, inside_box))
    assert gap.max() < 1e-4, gap.max()


def test_written_and_loaded_with_its_calibration(scene, tmp_path):
    dist, model = distorted_demo_scene(scene, 'plumb_bob')
    write_calibration_yaml(model, tmp_path / 'camera_info.yaml')
    write_scene(dist, tmp_path)
    loaded = load_scene(tmp_path)
    np.testing.assert_array_equal(loaded.images, dist.images)  # PNG: lossless
    np.testing.assert_allclose(loaded.surface_samples, dist.surface_samples)
    assert loaded.meta['distortion']['model'] == 'plumb_bob'
    assert read_calibration_yaml(tmp_path / 'camera_info.yaml') == model


def test_texture_cache_holds_one_room():
    # the textures are rebuilt per seed (seconds) and cached; one room only, not a leak
    assert distortion._room_textures.cache_info().maxsize == 1


# ------------------------------------------------------------- the demo publisher (ROS side)


def _publisher():
    pytest.importorskip('sensor_msgs.msg')
    pytest.importorskip('rclpy')
    from aetherscan_ros.demo import publisher
    return publisher


@pytest.mark.parametrize('name', MODELS + ('none',))
def test_publisher_camera_info_carries_the_lens(scene, name):
    publisher = _publisher()
    from aetherscan_ros.ros.camera_info import camera_info_to_model
    model = (CameraModel.pinhole(scene.K, WIDTH, HEIGHT) if name == 'none' else
             raw_camera_model(name, scene.K, WIDTH, HEIGHT))
    msg = publisher.camera_info_msg(model, 1_500_000_000, 'cam_optical')
    assert msg.header.frame_id == 'cam_optical' and msg.header.stamp.sec == 1
    assert (msg.width, msg.height) == (WIDTH, HEIGHT)
    assert msg.distortion_model == (name if name != 'none' else 'plumb_bob')
    assert list(msg.d) == (list(DISTORTIONS[name]) if name != 'none' else [0.0] * 5)
    np.testing.assert_array_equal(np.reshape(msg.k, (3, 3)), scene.K)
    np.testing.assert_array_equal(np.reshape(msg.p, (3, 4)), model.P)
    back = camera_info_to_model(msg)  # what the node reads
    np.testing.assert_array_equal(back.P, model.P)
    assert back.has_distortion == (name != 'none')
    if name != 'none':
        assert back == replace(model, camera_name='')  # every field, exactly


def _args(**kw):
    base = {'scene_dir': '', 'num_views': 2, 'width': WIDTH, 'height': HEIGHT, 'seed': 1,
            'path': 'orbit', 'distortion': 'none'}
    base.update(kw)
    return argparse.Namespace(**base)


def test_publisher_publishes_a_scene_dir_with_its_calibration(scene, tmp_path):
    publisher = _publisher()
    dist, model = distorted_demo_scene(scene, 'equidistant')
    write_calibration_yaml(model, tmp_path / 'camera_info.yaml')
    write_scene(dist, tmp_path)
    loaded, loaded_model = publisher.load_demo_scene(_args(scene_dir=str(tmp_path)))
    np.testing.assert_array_equal(loaded.images, dist.images)
    assert loaded_model.is_fisheye and loaded_model.D == model.D
    with pytest.raises(ValueError, match='raw equidistant images already'):
        publisher.load_demo_scene(_args(scene_dir=str(tmp_path), distortion='plumb_bob'))
    # a pinhole scene directory is distorted on request (the room is rendered again)
    plain = tmp_path / 'plain'
    write_scene(scene, plain)
    raw_scene, raw_model = publisher.load_demo_scene(_args(scene_dir=str(plain),
                                                           distortion='plumb_bob'))
    assert raw_model.distortion_model == 'plumb_bob'
    np.testing.assert_array_equal(raw_scene.images, distort_scene(scene, 'plumb_bob')[0])
    pinhole_scene, pinhole_model = publisher.load_demo_scene(_args(scene_dir=str(plain)))
    assert not pinhole_model.has_distortion
    np.testing.assert_array_equal(pinhole_scene.images, scene.images)
