# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The demo scene seen through a real lens: raw distorted images with their camera model.

A camera driver publishes ``image_raw`` as the lens makes it (straight lines bent) together with
the ``camera_info`` that describes the lens (``K`` + ``D``). :func:`distort_scene` makes such
images of the demo room, exactly: the room is ray-cast as a pinhole image with the raw camera's
focal length but a larger size (so it covers the whole raw field of view), and every raw pixel
takes the colour of the pinhole pixel its viewing ray goes through (``undistort_points`` of the
model, sampled with ``cv2.remap``). The raw images have no black border; the raw camera has the
scene's ``K``, the distortion of :data:`DISTORTIONS` and the scene's poses.

:func:`distorted_demo_scene` wraps the raw images as a :class:`~.scene.DemoScene` (written by
:func:`~.scene.write_scene` like any other) whose surface samples are what the raw cameras see.
"""

from dataclasses import replace
import functools
import logging
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from aetherscan_ros.core.camera_model import CameraModel
from aetherscan_ros.core.undistortion import undistort_points, undistorted_intrinsics
from aetherscan_ros.demo.room import make_texture, render, scene_boxes
from aetherscan_ros.demo.scene import DemoScene, voxel_samples

_LOG = logging.getLogger(__name__)

#: Distortion coefficients of the demo's lenses, ``D`` as CameraInfo carries it.
#: plumb_bob ``[k1, k2, p1, p2, k3]``: a stereo head's lens (k1 = -0.27, strong barrel; the
#: corners of a 320x240 image move by ~35 px). equidistant ``[k1, k2, k3, k4]``: a wide-angle
#: fisheye lens (Kannala-Brandt; the projection r = f * theta is itself the main distortion, D
#: its small corrections, of the size a RealSense T265 calibration has).
DISTORTIONS = {
    'plumb_bob': (-0.27, 0.072, 0.0004, -0.0003, 0.0),
    'equidistant': (-0.012, 0.045, -0.042, 0.008),
}
#: The choices a command line offers (``none`` = the pinhole scene as rendered).
DISTORTION_CHOICES = ('none',) + tuple(DISTORTIONS)

_BORDER_PX = 2  # pinhole pixels rendered beyond the last one a raw pixel samples
_SAMPLE_STRIDE = 2  # surface samples from every 2nd raw pixel, as demo/scene.py takes them


def raw_camera_model(model_name: str, K: np.ndarray, width: int, height: int,
                     coefficients: Optional[Sequence[float]] = None,
                     camera_name: str = 'aetherscan_demo') -> CameraModel:
    """
    Return the raw camera: intrinsics ``K`` ``[3, 3]``, ``model_name``'s lens, ``width x height``.

    ``coefficients`` default to :data:`DISTORTIONS`. ``P`` is the undistorted camera a
    calibrator would write (``[K' | 0]``, ``K'`` from
    :func:`~aetherscan_ros.core.undistortion.undistorted_intrinsics`), ``R`` the identity.
    Raises ``ValueError`` for an unknown ``model_name``.
    """
    if model_name not in DISTORTIONS:
        raise ValueError(f'unknown distortion {model_name!r}: expected one of '
                         f'{", ".join(DISTORTIONS)}')
    d = tuple(DISTORTIONS[model_name] if coefficients is None else coefficients)
    base = CameraModel(width=int(width), height=int(height), distortion_model=model_name, D=d,
                       K=np.asarray(K, np.float64), camera_name=camera_name)
    proj = np.zeros((3, 4))
    proj[:, :3] = undistorted_intrinsics(base)
    return replace(base, P=proj)


def raw_pixel_rays(model: CameraModel) -> np.ndarray:
    """Return ``[H, W, 2]`` normalized undistorted ray ``(x / z, y / z)`` of every raw pixel."""
    width, height = model.image_size
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    rays = undistort_points(model, np.c_[u.ravel(), v.ravel()], normalized=True)
    return rays.reshape(height, width, 2)


def _pinhole_window(rays: np.ndarray,
                    K: np.ndarray) -> Tuple[np.ndarray, Tuple[int, int], np.ndarray]:
    """
    Return ``(K_big [3, 3], (width, height), map [H, W, 2] float32)`` of the pinhole render.

    ``K_big`` is ``K`` (same focal lengths) with the principal point moved by whole pixels, so
    the render covers every ray of ``rays`` plus a small border; ``map`` holds the render's
    pixel position of each raw pixel's ray.
    """
    px = rays[..., 0] * K[0, 0] + K[0, 2]
    py = rays[..., 1] * K[1, 1] + K[1, 2]
    height, width = rays.shape[:2]
    left = int(np.ceil(max(0.0, -px.min()))) + _BORDER_PX
    top = int(np.ceil(max(0.0, -py.min()))) + _BORDER_PX
    right = int(np.ceil(max(0.0, px.max() - (width - 1)))) + _BORDER_PX
    bottom = int(np.ceil(max(0.0, py.max() - (height - 1)))) + _BORDER_PX
    k_big = np.array(K, np.float64)
    k_big[0, 2] += left
    k_big[1, 2] += top
    mapping = np.stack([px + left, py + top], axis=-1).astype(np.float32)
    return k_big, (width + left + right, height + top + bottom), mapping


@functools.lru_cache(maxsize=1)
def _room_textures(seed: int, textured: bool) -> Tuple[Optional[np.ndarray], ...]:
    """Return the room's uint8 textures for ``seed`` (cached: making them takes seconds)."""
    boxes = scene_boxes(np.random.default_rng([seed, 1]))
    tex_rng = np.random.default_rng([seed, 2])  # the streams make_scene uses
    textures = []
    for box in boxes:
        size_m = float(np.max(box.hi - box.lo))
        tex = make_texture(tex_rng, 1536 if size_m > 3.0 else 512) if textured else None
        if tex is not None:
            tex.setflags(write=False)
        textures.append(tex)
    return tuple(textures)


def _room(scene: DemoScene):
    """Return the scene's boxes, textures and texel sizes, rebuilt from its seed."""
    seed = int(scene.meta.get('seed', 0))
    textured = bool(scene.meta.get('textured', True))
    boxes = scene_boxes(np.random.default_rng([seed, 1]))
    textures = [None if tex is None else tex.astype(np.float32)
                for tex in _room_textures(seed, textured)]
    return boxes, textures, [0.004] * len(boxes), textured, seed


def _render_raw(scene: DemoScene, model: CameraModel) -> Tuple[np.ndarray, np.ndarray]:
    """
    Return ``(raw images [V, H, W, 3] uint8, seen points [N, 3] float64 in the world)``.

    The points are the surfaces every second raw pixel (in x and y) sees, exactly on them.
    """
    if scene.num_views < 1:
        raise ValueError('the scene has no views')
    K = np.asarray(scene.K, np.float64)
    rays = raw_pixel_rays(model)
    k_big, (big_w, big_h), mapping = _pinhole_window(rays, K)
    boxes, textures, texel, textured, seed = _room(scene)
    # the pinhole pixel nearest to every 2nd raw pixel's ray (demo/scene.py samples at stride 2)
    nearest = np.rint(mapping[::_SAMPLE_STRIDE, ::_SAMPLE_STRIDE]).astype(np.int64)
    near_u, near_v = nearest[..., 0].ravel(), nearest[..., 1].ravel()
    cam_rays = np.stack([(near_u - k_big[0, 2]) / k_big[0, 0],
                         (near_v - k_big[1, 2]) / k_big[1, 1], np.ones(near_u.shape)], -1)
    images, points = [], []
    for i, pose in enumerate(np.asarray(scene.poses_c2w, np.float64)):
        rgb, depth = render(boxes, textures, texel, k_big, pose, big_w, big_h, textured,
                            np.random.default_rng([seed, 5, i]))
        images.append(cv2.remap(rgb, mapping[..., 0], mapping[..., 1], cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REPLICATE))
        z = depth[near_v, near_u].astype(np.float64)
        ok = z > 0
        cam = cam_rays[ok] * z[ok, None]
        points.append(cam @ pose[:3, :3].T + pose[:3, 3])
    _LOG.debug('rendered %d raw %s views via %dx%d pinhole renders', scene.num_views,
               model.distortion_model, big_w, big_h)
    return np.stack(images), np.concatenate(points)


def distort_scene(scene: DemoScene, model_name: str,
                  coefficients: Optional[Sequence[float]] = None
                  ) -> Tuple[np.ndarray, CameraModel]:
    """
    Return ``(raw images [V, H, W, 3] uint8, CameraModel)``: ``scene`` through a real lens.

    ``model_name`` is ``plumb_bob`` or ``equidistant`` (coefficients: :data:`DISTORTIONS`, or
    ``coefficients``). The raw camera has the scene's ``K`` and image size and the scene's poses
    (the ground truth is unchanged); the room is rendered again (same layout, textures and
    cameras, from ``scene.meta['seed']``), so a scene loaded from disk works too. Deterministic.
    """
    width, height = scene.size
    model = raw_camera_model(model_name, scene.K, width, height, coefficients)
    images, _ = _render_raw(scene, model)
    return images, model


def distorted_demo_scene(scene: DemoScene, model_name: str,
                         coefficients: Optional[Sequence[float]] = None
                         ) -> Tuple[DemoScene, CameraModel]:
    """
    Return ``(scene with raw images, CameraModel)``, ready for :func:`~.scene.write_scene`.

    ``images`` are :func:`distort_scene`'s raw images; ``K`` and ``poses_c2w`` are the scene's
    (``K`` is the raw camera's ``K``; its ``D`` is in the model, for ``camera_info.yaml``);
    ``surface_samples`` and ``extent`` cover what the raw views see (a wider field of view than
    the pinhole views). ``depths`` stay the pinhole views' z-depth for ``K`` (they back-project
    with ``K`` alone); ``meta['distortion']`` names the lens.
    """
    width, height = scene.size
    model = raw_camera_model(model_name, scene.K, width, height, coefficients)
    images, points = _render_raw(scene, model)
    samples = voxel_samples(points, int(scene.meta.get('seed', 0)))
    extent = float(np.linalg.norm(samples.max(axis=0) - samples.min(axis=0)))
    meta = dict(scene.meta)
    meta['distortion'] = {
        'model': model.distortion_model, 'D': list(model.D),
        'note': 'the frames are raw (distorted) images: K and D are in camera_info.yaml; '
                'depth maps are the undistorted pinhole views for K'}
    out = replace(scene, images=images, surface_samples=samples, extent=extent, meta=meta)
    return out, model
