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

_LOG = logging.getLogger(__name__)

PATHS = ('orbit', 'robot')
GT_FILE = 'ground_truth.json'
GT_FORMAT = 'aetherscan_demo_scene/1'
SAMPLES_FILE = 'surface_samples.npy'
DEPTH_SCALE = 0.001  # depth PNGs store millimetres (uint16), as TUM RGB-D and ROS drivers do

_ROOM = (3.0, 3.0, 2.8)  # half-size x, half-size y, height (m)
_ORBIT_STEP_DEG = 8.0
_ROBOT_STEP_M = 0.15
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


@dataclass(frozen=True)
class _Box:
    lo: np.ndarray
    hi: np.ndarray
    texture: int


def _scene_boxes(rng: np.random.Generator) -> List[_Box]:
    """Lay out the room; small seeded jitter moves the furniture."""
    hx, hy, hz = _ROOM
    wall = 0.1
    boxes = [
        ((-hx, -hy, -wall), (hx, hy, 0.0)),  # floor
        ((-hx, -hy, hz), (hx, hy, hz + wall)),  # ceiling
        ((-hx - wall, -hy, 0.0), (-hx, hy, hz)),  # walls
        ((hx, -hy, 0.0), (hx + wall, hy, hz)),
        ((-hx, -hy - wall, 0.0), (hx, -hy, hz)),
        ((-hx, hy, 0.0), (hx, hy + wall, hz)),
    ]
    jx, jy = rng.uniform(-0.1, 0.1, 2)
    top = 0.72
    boxes.append(((-0.6 + jx, -0.4 + jy, top), (0.6 + jx, 0.4 + jy, top + 0.05)))  # table top
    for sx in (-1, 1):
        for sy in (-1, 1):
            x0 = jx + sx * 0.52
            y0 = jy + sy * 0.32
            boxes.append(((x0 - 0.04, y0 - 0.04, 0.0), (x0 + 0.04, y0 + 0.04, top)))
    objects = [  # (centre x, centre y, base z, size x, size y, size z)
        (-0.25, -0.1, top + 0.05, 0.3, 0.3, 0.26),
        (0.25, 0.08, top + 0.05, 0.26, 0.32, 0.16),
        (1.4, 1.1, 0.0, 0.6, 0.6, 0.5),
        (-1.5, -0.8, 0.0, 0.6, 0.8, 0.85),
        (1.7, -1.3, 0.0, 0.4, 0.4, 1.3),
    ]
    for cx, cy, z0, sx, sy, sz in objects:
        dx, dy = rng.uniform(-0.05, 0.05, 2)
        cx, cy = cx + dx + (jx if z0 > 0 else 0.0), cy + dy + (jy if z0 > 0 else 0.0)
        boxes.append(((cx - sx / 2, cy - sy / 2, z0), (cx + sx / 2, cy + sy / 2, z0 + sz)))
    return [_Box(np.asarray(lo, np.float64), np.asarray(hi, np.float64), i)
            for i, (lo, hi) in enumerate(boxes)]


_LETTERS = np.array(list('ABCDEFGHJKLMNPQRSTUVWXYZ0123456789#@%&'))
_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
          cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_PLAIN)


def _make_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """Return a ``[size, size, 3]`` uint8 procedural texture rich in corners and blobs."""
    base = rng.uniform(0.25, 0.75, 3)
    lum = np.zeros((size, size), np.float32)
    for cells, amp in ((4, 0.35), (16, 0.25), (64, 0.2), (size // 6, 0.12)):
        grid = rng.random((cells, cells)).astype(np.float32) - 0.5
        lum += amp * cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    tint = np.zeros((size, size, 3), np.float32)
    for c in range(3):
        grid = rng.random((6, 6)).astype(np.float32) - 0.5
        tint[..., c] = 0.3 * cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    img = np.clip(base[None, None, :] + lum[..., None] + tint, 0.0, 1.0)
    img = (img * 255).astype(np.uint8)
    area = (size / 512.0) ** 2
    for _ in range(int(120 * area)):
        centre = tuple(int(v) for v in rng.integers(0, size, 2))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.circle(img, centre, int(rng.integers(3, 28)), colour, -1, cv2.LINE_AA)
    for _ in range(int(50 * area)):
        p0 = rng.integers(0, size, 2)
        p1 = p0 + rng.integers(6, 60, 2)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        thick = -1 if rng.random() < 0.6 else int(rng.integers(1, 4))
        cv2.rectangle(img, tuple(int(v) for v in p0), tuple(int(v) for v in p1), colour, thick)
    for _ in range(int(40 * area)):
        text = ''.join(rng.choice(_LETTERS, int(rng.integers(2, 7))))
        org = tuple(int(v) for v in rng.integers(0, size, 2))
        dark = rng.random() < 0.5
        colour = tuple(int(v) for v in (rng.integers(0, 70, 3) if dark
                                        else rng.integers(185, 256, 3)))
        cv2.putText(img, text, org, _FONTS[int(rng.integers(len(_FONTS)))],
                    float(rng.uniform(0.6, 2.2)), colour, int(rng.integers(1, 4)), cv2.LINE_AA)
    return cv2.GaussianBlur(img, (0, 0), 0.8)


def _look_at(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Return the ``[4, 4]`` optical-frame camera-to-world pose looking at ``target`` (z up)."""
    z = target - position
    z = z / np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = x, y, z, position
    return pose


def _camera_path(path: str, num_views: int, rng: np.random.Generator) -> np.ndarray:
    """Return ``[V, 4, 4]`` camera-to-world poses along ``path``."""
    poses = []
    if path == 'orbit':
        spread = min(_ORBIT_STEP_DEG * (num_views - 1), 360.0 - _ORBIT_STEP_DEG)
        step = spread / max(num_views - 1, 1)
        start = -90.0 - spread / 2.0
        for i in range(num_views):
            ang = np.radians(start + i * step)
            pos = np.array([2.4 * np.cos(ang), 2.4 * np.sin(ang), 1.55])
            pos += rng.normal(0.0, [0.02, 0.02, 0.04])
            target = np.array([0.0, 0.0, 0.75]) + rng.normal(0.0, 0.04, 3)
            poses.append(_look_at(pos, target))
    elif path == 'robot':
        length = _ROBOT_STEP_M * (num_views - 1)
        for i in range(num_views):
            x = -length / 2.0 + i * _ROBOT_STEP_M
            pos = np.array([x, -2.3, 0.45]) + rng.normal(0.0, [0.01, 0.02, 0.005])
            yaw = np.radians(6.0 * np.sin(0.7 * i)) + rng.normal(0.0, 0.01)
            target = pos + np.array([np.sin(yaw), np.cos(yaw), -0.12])
            poses.append(_look_at(pos, target))
    else:
        raise ValueError(f'unknown camera path {path!r}: expected one of {", ".join(PATHS)}')
    return np.stack(poses)


def default_intrinsics(width: int, height: int) -> np.ndarray:
    """Return the demo camera's ``[3, 3]`` K (a 525 px focal length at 640 px width)."""
    f = 525.0 * width / 640.0
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0, 0, 1.0]])


def _sample_wrapped(tex: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Bilinearly sample a ``[S, S, 3]`` texture at ``[N, 2]`` texel coordinates, tiling it."""
    size_y, size_x = tex.shape[:2]
    x0 = np.floor(xy[:, 0])
    y0 = np.floor(xy[:, 1])
    fx = (xy[:, 0] - x0)[:, None]
    fy = (xy[:, 1] - y0)[:, None]
    x0 = x0.astype(np.int64) % size_x
    y0 = y0.astype(np.int64) % size_y
    x1 = (x0 + 1) % size_x
    y1 = (y0 + 1) % size_y
    top = tex[y0, x0] * (1 - fx) + tex[y0, x1] * fx
    bottom = tex[y1, x0] * (1 - fx) + tex[y1, x1] * fx
    return top * (1 - fy) + bottom * fy


def _render(boxes: Sequence[_Box], textures: Sequence[np.ndarray], texel: Sequence[float],
            K: np.ndarray, c2w: np.ndarray, width: int, height: int, textured: bool,
            rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """Ray-cast one view; return ``(rgb [H, W, 3] uint8, depth [H, W] float32)``."""
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    dirs = rays.reshape(-1, 3) @ c2w[:3, :3].T  # z-depth parametrisation: t == depth
    origin = c2w[:3, 3]
    with np.errstate(divide='ignore'):
        inv = np.where(np.abs(dirs) > 1e-12, 1.0 / dirs, 1e12)
    best_t = np.full(len(dirs), np.inf)
    best_box = np.full(len(dirs), -1, np.int64)
    best_axis = np.zeros(len(dirs), np.int64)
    for b, box in enumerate(boxes):
        t1 = (box.lo - origin) * inv
        t2 = (box.hi - origin) * inv
        tmin = np.minimum(t1, t2)
        t_near = tmin.max(axis=1)
        t_far = np.maximum(t1, t2).min(axis=1)
        hit = (t_near <= t_far) & (t_near > 1e-6) & (t_near < best_t)
        best_t[hit] = t_near[hit]
        best_box[hit] = b
        best_axis[hit] = tmin.argmax(axis=1)[hit]
    valid = best_box >= 0
    depth = np.where(valid, best_t, 0.0).astype(np.float32).reshape(height, width)
    rgb = np.zeros((len(dirs), 3), np.float32)
    if not textured:
        rgb[valid] = 128.0
        return rgb.reshape(height, width, 3).astype(np.uint8), depth
    points = origin + dirs * np.where(valid, best_t, 0.0)[:, None]
    light = np.array([0.35, 0.25, 0.9])
    light /= np.linalg.norm(light)
    uv_axes = np.array([[1, 2], [0, 2], [0, 1]])
    for b, box in enumerate(boxes):
        sel = np.nonzero(best_box == b)[0]
        if len(sel) == 0:
            continue
        axis = best_axis[sel]
        uv = np.take_along_axis(points[sel], uv_axes[axis], axis=1)
        normal_sign = -np.sign(dirs[sel, axis])
        uv = uv + (axis * 1.37 + (normal_sign > 0) * 0.71)[:, None]  # decorrelate the faces
        tex = textures[box.texture]
        sampled = _sample_wrapped(tex, uv / texel[box.texture])
        lambert = np.maximum(normal_sign * light[axis], 0.0)
        rgb[sel] = sampled.astype(np.float32) * (0.55 + 0.45 * lambert)[:, None]
    img = rgb.reshape(height, width, 3)
    img = cv2.GaussianBlur(img, (0, 0), 0.5)
    img += rng.normal(0.0, 1.5, img.shape).astype(np.float32)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), depth


def backproject(depth: np.ndarray, K: np.ndarray, c2w: np.ndarray, stride: int = 1) -> np.ndarray:
    """Lift a ``[H, W]`` z-depth map to ``[N, 3]`` world points (pixels with depth > 0)."""
    h, w = depth.shape
    v, u = np.mgrid[0:h:stride, 0:w:stride]
    z = depth[v, u]
    ok = z > 0
    u, v, z = u[ok].astype(np.float64), v[ok].astype(np.float64), z[ok].astype(np.float64)
    cam = np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], -1)
    return cam @ c2w[:3, :3].T + c2w[:3, 3]


def _surface_samples(depths: np.ndarray, K: np.ndarray, poses: np.ndarray,
                     seed: int) -> np.ndarray:
    """Return ``[M, 3]`` float32 samples of every seen surface, one per 1 cm voxel."""
    pts = np.concatenate([backproject(d, K, p, stride=2) for d, p in zip(depths, poses)])
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
    Render the demo room from ``num_views`` cameras along ``path`` (``orbit`` or ``robot``).

    ``orbit`` circles the table 8 degrees apart at 2.4 m, looking at it from 1.55 m height;
    ``robot`` drives a camera at 0.45 m height sideways past the furniture, 15 cm per view.
    Returns a :class:`DemoScene` whose fields are all deterministic functions of the arguments.
    """
    if num_views < 1:
        raise ValueError(f'num_views must be >= 1, got {num_views}')
    if width < 32 or height < 32:
        raise ValueError(f'image size must be at least 32x32, got {width}x{height}')
    if path not in PATHS:
        raise ValueError(f'unknown camera path {path!r}: expected one of {", ".join(PATHS)}')
    # independent streams: the blank variant has the same layout and cameras as the textured one
    boxes = _scene_boxes(np.random.default_rng([seed, 1]))
    tex_rng = np.random.default_rng([seed, 2])
    textures, texel = [], []
    for box in boxes:
        size_m = float(np.max(box.hi - box.lo))
        tex_size = 1536 if size_m > 3.0 else 512
        textures.append(_make_texture(tex_rng, tex_size).astype(np.float32) if textured
                        else None)
        texel.append(0.004)
    K = default_intrinsics(width, height)
    poses = _camera_path(path, num_views, np.random.default_rng([seed, 3]))
    images, depths = [], []
    for i, pose in enumerate(poses):
        view_rng = np.random.default_rng([seed, 4, i])
        rgb, depth = _render(boxes, textures, texel, K, pose, width, height, textured, view_rng)
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
