# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
A textured synthetic room rendered by numpy ray casting, with exact ground truth.

The scene is a closed room (floor, ceiling, four walls) holding a table with two boxes on it and
two boxes on the floor, every surface an axis-aligned box face. Each surface carries its own
procedural texture (multi-octave noise, coloured blobs, rectangles and letter strings drawn with
OpenCV) so that SIFT finds plenty of distinctive features; an optional ``textured=False``
variant paints every surface one flat colour with no shading (a degenerate input, used to test
that backends fail clearly).

Conventions: the world (scene) frame is z-up, metres. Cameras follow REP-103 optical frames
(x right, y down, z forward); ``poses_c2w`` maps optical-frame points to the world. Pixel centres
sit at integer coordinates (OpenCV convention), so ``K`` is exactly what a ROS ``camera_info``
would carry. ``depths`` holds z-depth in metres (0 where a ray hits nothing, which never happens
inside the closed room).

Everything is deterministic from ``seed``: textures, small layout jitter, camera jitter and
sensor noise.
"""

from dataclasses import dataclass, field
import json
import logging
import os
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from aetherscan_ros.backends.base import Frame
from aetherscan_ros.demo.room import (
    backproject, camera_path, default_intrinsics, make_texture, PATHS, render, scene_boxes)

_LOG = logging.getLogger(__name__)

GT_FILE = 'ground_truth.json'
GT_FORMAT = 'aetherscan_demo_scene/1'
SAMPLES_FILE = 'surface_samples.npy'
DEPTH_SCALE = 0.001  # depth PNGs store millimetres (uint16), as TUM RGB-D and ROS drivers do

_SAMPLE_VOXEL_M = 0.01
_MAX_SAMPLES = 400_000


@dataclass(frozen=True)
class DemoScene:
    """
    A rendered scene with its ground truth.

    Attributes
    ----------
    images : np.ndarray
        ``[V, H, W, 3]`` uint8 RGB renderings (``[0, H, W, 3]`` when loaded without images).
    K : np.ndarray
        ``[3, 3]`` float64 pinhole intrinsics of every view (OpenCV pixel-centre convention).
    poses_c2w : np.ndarray
        ``[V, 4, 4]`` float64 camera-to-world of the optical frames (world = scene frame).
    depths : np.ndarray
        ``[V, H, W]`` float32 z-depth in metres (0 = no surface).
    surface_samples : np.ndarray
        ``[M, 3]`` float32 points on the surfaces seen by at least one view (1 cm voxel grid).
    extent : float
        Bounding-box diagonal of ``surface_samples`` in metres; errors are reported in % of it.
    names : tuple of str
        Image file names (``frame_000.png`` ...), one per view.
    meta : dict
        How the scene was made (seed, path, size, textured).

    """

    images: np.ndarray
    K: np.ndarray
    poses_c2w: np.ndarray
    depths: np.ndarray
    surface_samples: np.ndarray
    extent: float
    names: Tuple[str, ...] = ()
    meta: dict = field(default_factory=dict)

    @property
    def num_views(self) -> int:
        """Return the number of views."""
        return int(self.poses_c2w.shape[0])

    @property
    def size(self) -> Tuple[int, int]:
        """Return the image size ``(width, height)``."""
        return int(self.meta['width']), int(self.meta['height'])

    def frames(self, with_intrinsics: bool = True) -> List[Frame]:
        """Return the views as backend :class:`Frame` objects (``K`` set when asked)."""
        if len(self.images) != self.num_views:
            raise ValueError('this DemoScene was loaded without its images')
        return [Frame(image=self.images[i], name=self.names[i], stamp_ns=i * 100_000_000,
                      camera='demo', K=self.K.copy() if with_intrinsics else None)
                for i in range(self.num_views)]


def _surface_samples(depths: np.ndarray, K: np.ndarray, poses: np.ndarray,
                     seed: int) -> np.ndarray:
    """Return ``[M, 3]`` float32 samples of every seen surface, one per 1 cm voxel."""
    return voxel_samples(
        np.concatenate([backproject(d, K, p, stride=2) for d, p in zip(depths, poses)]), seed)


def voxel_samples(pts: np.ndarray, seed: int) -> np.ndarray:
    """Return ``[M, 3]`` float32: the first point ``[N, 3]`` of every 1 cm voxel (<= 400k)."""
    keys = np.floor(pts / _SAMPLE_VOXEL_M).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    pts = pts[np.sort(first)]
    if len(pts) > _MAX_SAMPLES:
        pick = np.random.default_rng(seed).choice(len(pts), _MAX_SAMPLES, replace=False)
        pts = pts[np.sort(pick)]
    return pts.astype(np.float32)


def _extent(samples: np.ndarray) -> float:
    if len(samples) == 0:
        return 0.0
    return float(np.linalg.norm(samples.max(axis=0) - samples.min(axis=0)))


def make_scene(num_views: int = 8, width: int = 640, height: int = 480, seed: int = 0,
               path: str = 'orbit', textured: bool = True) -> DemoScene:
    """
    Render the demo room from ``num_views`` cameras along ``path`` (one of ``room.PATHS``).

    ``orbit`` circles the table 8 degrees apart at 2.4 m, looking at it from 1.55 m height;
    ``robot`` drives a camera at 0.45 m height sideways past the furniture, 15 cm per view;
    ``forward`` drives it forward, 12 cm per view with a few degrees of yaw (the epipole in
    the image); ``narrow`` is the orbit arc at 1 degree steps (narrow baselines);
    ``tour`` walks forward round the table at 1.3 m (four turns) and back past the start, the
    11 m loop and 15 % more whatever ``num_views`` (0.18 m per view for 70 views).
    Returns a :class:`DemoScene` whose fields are all deterministic functions of the arguments.
    """
    if num_views < 1:
        raise ValueError(f'num_views must be >= 1, got {num_views}')
    if width < 32 or height < 32:
        raise ValueError(f'image size must be at least 32x32, got {width}x{height}')
    if path not in PATHS:
        raise ValueError(f'unknown camera path {path!r}: expected one of {", ".join(PATHS)}')
    # independent streams: the blank variant has the same layout and cameras as the textured one
    boxes = scene_boxes(np.random.default_rng([seed, 1]))
    tex_rng = np.random.default_rng([seed, 2])
    textures, texel = [], []
    for box in boxes:
        size_m = float(np.max(box.hi - box.lo))
        tex_size = 1536 if size_m > 3.0 else 512
        textures.append(make_texture(tex_rng, tex_size).astype(np.float32) if textured
                        else None)
        texel.append(0.004)
    K = default_intrinsics(width, height)
    poses = camera_path(path, num_views, np.random.default_rng([seed, 3]))
    images, depths = [], []
    for i, pose in enumerate(poses):
        view_rng = np.random.default_rng([seed, 4, i])
        rgb, depth = render(boxes, textures, texel, K, pose, width, height, textured, view_rng)
        images.append(rgb)
        depths.append(depth)
    depths = np.stack(depths)
    samples = _surface_samples(depths, K, poses, seed)
    names = tuple(f'frame_{i:03d}.png' for i in range(num_views))
    meta = {'seed': int(seed), 'path': path, 'width': int(width), 'height': int(height),
            'textured': bool(textured)}
    _LOG.debug('rendered %d views of %dx%d (%s), %d surface samples',
               num_views, width, height, path, len(samples))
    return DemoScene(images=np.stack(images), K=K, poses_c2w=poses, depths=depths,
                     surface_samples=samples, extent=_extent(samples), names=names, meta=meta)


def write_scene(scene: DemoScene, out_dir: Union[str, os.PathLike]) -> Path:
    """
    Write images (PNG), depths (uint16 PNG, mm), samples (.npy) and ``ground_truth.json``.

    Returns the path of ``ground_truth.json``. The JSON is written last (temp file + rename), so a
    directory holding it is complete.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    views = []
    for i, name in enumerate(scene.names):
        if len(scene.images) == scene.num_views:
            bgr = cv2.cvtColor(scene.images[i], cv2.COLOR_RGB2BGR)
            if not cv2.imwrite(str(out / name), bgr):
                raise OSError(f'cannot write {out / name}')
        depth_name = f'depth_{i:03d}.png'
        depth_mm = np.clip(np.round(scene.depths[i] / DEPTH_SCALE), 0, 65535).astype(np.uint16)
        if not cv2.imwrite(str(out / depth_name), depth_mm):
            raise OSError(f'cannot write {out / depth_name}')
        views.append({'image': name, 'depth': depth_name,
                      'pose_c2w': np.asarray(scene.poses_c2w[i]).tolist()})
    np.save(out / SAMPLES_FILE, np.asarray(scene.surface_samples, np.float32))
    doc = {
        'format': GT_FORMAT,
        'description': 'aetherscan_ros demo scene: z-up world in metres; poses are '
                       'camera-to-world of REP-103 optical frames; K uses the OpenCV '
                       'pixel-centre convention; depth PNGs are uint16 z-depth in mm.',
        'K': np.asarray(scene.K).tolist(),
        'extent_m': float(scene.extent),
        'depth_scale': DEPTH_SCALE,
        'surface_samples': SAMPLES_FILE,
        'meta': dict(scene.meta),
        'views': views,
    }
    tmp = out / (GT_FILE + '.tmp')
    tmp.write_text(json.dumps(doc, indent=1))
    os.replace(tmp, out / GT_FILE)
    return out / GT_FILE


def load_scene(directory: Union[str, os.PathLike], load_images: bool = True) -> DemoScene:
    """
    Read a directory written by :func:`write_scene`; raise ``ValueError`` naming what is wrong.

    ``load_images=False`` skips the RGB images (evaluation needs only poses and surfaces).
    """
    root = Path(directory)
    gt_path = root / GT_FILE
    if not gt_path.is_file():
        raise ValueError(f'{gt_path}: not found (expected a directory from write_scene / '
                         f'`aetherscan demo-scene`)')
    try:
        doc = json.loads(gt_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f'{gt_path}: unreadable ground truth ({exc})') from exc
    if doc.get('format') != GT_FORMAT:
        raise ValueError(f'{gt_path}: format {doc.get("format")!r} is not {GT_FORMAT!r}')
    try:
        K = np.asarray(doc['K'], np.float64).reshape(3, 3)
        views = doc['views']
        poses = np.asarray([v['pose_c2w'] for v in views], np.float64).reshape(-1, 4, 4)
        names = tuple(str(v['image']) for v in views)
        meta = dict(doc.get('meta', {}))
        scale = float(doc.get('depth_scale', DEPTH_SCALE))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f'{gt_path}: malformed ground truth ({exc!r})') from exc
    images, depths = [], []
    for v in views:
        depth_path = root / v['depth']
        d = cv2.imread(str(depth_path), cv2.IMREAD_UNCHANGED)
        if d is None or d.dtype != np.uint16:
            raise ValueError(f'{depth_path}: missing or not a uint16 depth PNG')
        depths.append(d.astype(np.float32) * scale)
        if load_images:
            img_path = root / v['image']
            bgr = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise ValueError(f'{img_path}: missing or unreadable image')
            images.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    depths = np.stack(depths)
    meta.setdefault('height', depths.shape[1])
    meta.setdefault('width', depths.shape[2])
    samples_path = root / doc.get('surface_samples', SAMPLES_FILE)
    if samples_path.is_file():
        samples = np.load(samples_path, allow_pickle=False).astype(np.float32).reshape(-1, 3)
    else:
        _LOG.warning('%s missing: recomputing surface samples from the depth maps', samples_path)
        samples = _surface_samples(depths, K, poses, int(meta.get('seed', 0)))
    h, w = depths.shape[1:]
    image_arr = np.stack(images) if images else np.zeros((0, h, w, 3), np.uint8)
    return DemoScene(images=image_arr, K=K, poses_c2w=poses, depths=depths,
                     surface_samples=samples, extent=float(doc.get('extent_m', _extent(samples))),
                     names=names, meta=meta)


def scene_from_arrays(poses_c2w: np.ndarray, K: np.ndarray, surface_samples: np.ndarray,
                      names: Optional[Sequence[str]] = None) -> DemoScene:
    """Wrap externally known ground truth (poses, K, surface points) for :func:`evaluate`."""
    poses = np.asarray(poses_c2w, np.float64).reshape(-1, 4, 4)
    samples = np.asarray(surface_samples, np.float32).reshape(-1, 3)
    names = tuple(names) if names is not None else tuple(f'view_{i}' for i in range(len(poses)))
    return DemoScene(images=np.zeros((0, 1, 1, 3), np.uint8), K=np.asarray(K, np.float64),
                     poses_c2w=poses, depths=np.zeros((len(poses), 1, 1), np.float32),
                     surface_samples=samples, extent=_extent(samples), names=names,
                     meta={'width': 0, 'height': 0})


def subset(scene: DemoScene, views: Sequence[int]) -> DemoScene:
    """Return the scene restricted to ``views``; surface samples and extent are recomputed."""
    views = [int(v) for v in views]
    if not views or min(views) < 0 or max(views) >= scene.num_views:
        raise ValueError(f'views {views} out of range for a {scene.num_views}-view scene')
    depths = scene.depths[views]
    poses = scene.poses_c2w[views]
    samples = _surface_samples(depths, scene.K, poses, int(scene.meta.get('seed', 0)))
    images = scene.images[views] if len(scene.images) == scene.num_views else scene.images
    return DemoScene(images=images, K=scene.K, poses_c2w=poses, depths=depths,
                     surface_samples=samples, extent=_extent(samples),
                     names=tuple(scene.names[v] for v in views), meta=dict(scene.meta))
