# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The demo room and its renderer: box geometry, procedural textures, camera paths, ray casting.

:mod:`aetherscan_ros.demo.scene` builds a :class:`~aetherscan_ros.demo.scene.DemoScene` from
these pieces (see its docstring for the conventions: world z-up in metres, REP-103 optical
frames, pixel centres at integer coordinates).
"""

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import cv2
import numpy as np

PATHS = ('orbit', 'robot', 'forward', 'narrow', 'tour')
_ROOM = (3.0, 3.0, 2.8)  # half-size x, half-size y, height (m)
_ORBIT_STEP_DEG = 8.0
_ROBOT_STEP_M = 0.15
_FORWARD_STEP_M = 0.12
_NARROW_STEP_DEG = 1.0


@dataclass(frozen=True)
class Box:
    lo: np.ndarray
    hi: np.ndarray
    texture: int


def scene_boxes(rng: np.random.Generator) -> List[Box]:
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
    return [Box(np.asarray(lo, np.float64), np.asarray(hi, np.float64), i)
            for i, (lo, hi) in enumerate(boxes)]


_LETTERS = np.array(list('ABCDEFGHJKLMNPQRSTUVWXYZ0123456789#@%&'))


_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
          cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_PLAIN)


def make_texture(rng: np.random.Generator, size: int) -> np.ndarray:
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


def look_at(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Return the ``[4, 4]`` optical-frame camera-to-world pose looking at ``target`` (z up)."""
    z = target - position
    z = z / np.linalg.norm(z)
    x = np.cross(z, [0.0, 0.0, 1.0])
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = x, y, z, position
    return pose


def camera_path(path: str, num_views: int, rng: np.random.Generator) -> np.ndarray:
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
            poses.append(look_at(pos, target))
    elif path == 'robot':
        length = _ROBOT_STEP_M * (num_views - 1)
        for i in range(num_views):
            x = -length / 2.0 + i * _ROBOT_STEP_M
            pos = np.array([x, -2.3, 0.45]) + rng.normal(0.0, [0.01, 0.02, 0.005])
            yaw = np.radians(6.0 * np.sin(0.7 * i)) + rng.normal(0.0, 0.01)
            target = pos + np.array([np.sin(yaw), np.cos(yaw), -0.12])
            poses.append(look_at(pos, target))
    elif path == 'forward':  # driving ahead down the room, the robot case: epipole in view
        for i in range(num_views):
            pos = np.array([-0.3, -2.6 + i * _FORWARD_STEP_M, 1.1])
            pos += rng.normal(0.0, [0.01, 0.005, 0.005])
            yaw = np.radians(3.0 * np.sin(0.9 * i)) + rng.normal(0.0, 0.005)
            target = pos + np.array([np.sin(yaw), np.cos(yaw), -0.25])
            poses.append(look_at(pos, target))
    elif path == 'narrow':  # the orbit's arc, views ~1 degree of parallax apart
        start = -90.0 - _NARROW_STEP_DEG * (num_views - 1) / 2.0
        for i in range(num_views):
            ang = np.radians(start + i * _NARROW_STEP_DEG)
            pos = np.array([2.4 * np.cos(ang), 2.4 * np.sin(ang), 1.55])
            pos += rng.normal(0.0, [0.002, 0.002, 0.004])
            target = np.array([0.0, 0.0, 0.75]) + rng.normal(0.0, 0.004, 3)
            poses.append(look_at(pos, target))
    elif path == 'tour':
        poses = tour_poses(num_views, rng)
    else:
        raise ValueError(f'unknown camera path {path!r}: expected one of {", ".join(PATHS)}')
    return np.stack(poses)


# the tour: a rounded rectangle around the table, walked counter-clockwise from the middle of
# its south side, once round and 15 % further (past the start again: a revisit)
_TOUR_CENTRE = (-0.3, 0.2)
_TOUR_HALF = (1.6, 1.4)
_TOUR_CORNER_M = 0.6
_TOUR_HEIGHT_M = 1.3
_TOUR_REVISIT = 1.15
_TOUR_INWARD_DEG = 25.0  # the camera looks ahead and this much towards the room's middle
_TOUR_PITCH = -0.3  # look-at drop per metre ahead (about 17 degrees down)


def _tour_outline(per_piece: int = 200) -> Tuple[np.ndarray, np.ndarray]:
    """Return the tour loop as ``[S, 2]`` xy points (closed: last == first) and arc lengths."""
    cx, cy = _TOUR_CENTRE
    hx, hy = _TOUR_HALF
    r = _TOUR_CORNER_M
    corners = [(cx + hx - r, cy - hy + r), (cx + hx - r, cy + hy - r),
               (cx - hx + r, cy + hy - r), (cx - hx + r, cy - hy + r)]
    pieces = [np.array([[cx, cy - hy]])]
    for k, (ox, oy) in enumerate(corners):  # a straight side, then a quarter circle
        a = np.linspace(-np.pi / 2 + k * np.pi / 2, k * np.pi / 2, per_piece)
        pieces.append(np.stack([ox + r * np.cos(a), oy + r * np.sin(a)], -1))
    pieces.append(np.array([[cx, cy - hy]]))
    xy = np.concatenate(pieces)
    seg = np.linalg.norm(np.diff(xy, axis=0), axis=1)
    return xy, np.concatenate([[0.0], np.cumsum(seg)])


def tour_length() -> float:
    """Return the length (m) of one round of the ``tour`` loop."""
    return float(_tour_outline()[1][-1])


def tour_poses(num_views: int, rng: np.random.Generator) -> List[np.ndarray]:
    """
    Return ``num_views`` optical-frame c2w poses ``[4, 4]`` along the ``tour`` (a walk).

    Forward motion round the table at handheld height, four 90 degree turns, and back past
    the start; the step is the walk's length over ``num_views - 1`` (0.16 m for 80 views).
    """
    closed, arc = _tour_outline()
    loop = arc[-1]
    poses = []
    for i in range(num_views):
        s = (_TOUR_REVISIT * loop * i / max(num_views - 1, 1)) % loop
        p = np.array([np.interp(s, arc, closed[:, 0]), np.interp(s, arc, closed[:, 1])])
        ahead = np.array([np.interp(s + 0.3, arc, closed[:, 0], period=loop),
                          np.interp(s + 0.3, arc, closed[:, 1], period=loop)]) - p
        yaw = np.arctan2(ahead[1], ahead[0]) + np.radians(_TOUR_INWARD_DEG)
        yaw += rng.normal(0.0, 0.01)
        pos = np.array([p[0], p[1], _TOUR_HEIGHT_M]) + rng.normal(0.0, [0.01, 0.01, 0.01])
        target = pos + np.array([np.cos(yaw), np.sin(yaw), _TOUR_PITCH])
        poses.append(look_at(pos, target))
    return poses


def default_intrinsics(width: int, height: int) -> np.ndarray:
    """Return the demo camera's ``[3, 3]`` K (a 525 px focal length at 640 px width)."""
    f = 525.0 * width / 640.0
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0, 0, 1.0]])


def sample_wrapped(tex: np.ndarray, xy: np.ndarray) -> np.ndarray:
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


def render(boxes: Sequence[Box], textures: Sequence[np.ndarray], texel: Sequence[float],
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
        sampled = sample_wrapped(tex, uv / texel[box.texture])
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
