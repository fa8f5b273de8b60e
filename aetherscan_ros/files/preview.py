# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Render a reconstruction to a PNG: the colored cloud, the camera frusta and a legend.

numpy + OpenCV only (no matplotlib, no display, no GL): points are splatted into a z-buffer
from a virtual pinhole camera placed behind and above the real cameras and looking at the
cloud; camera frusta, the camera path and a small legend (backend, point and view counts) are
drawn on top with OpenCV lines and text.

Conventions are the package's: world = optical frame of view 0, cameras REP-103 optical frames
(x right, y down, z forward), so "up" in the picture is the cameras' mean ``-y`` axis.
"""

import logging
import os
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np

from aetherscan_ros.backends.base import ReconstructionResult
from aetherscan_ros.files.atomic import atomic_write_bytes

_LOG = logging.getLogger(__name__)

BACKGROUND = (22, 24, 30)  # RGB
MAX_SPLAT_POINTS = 2_000_000
_NEAR = 1e-3
RANDOM_WEIGHTS = 'random weights (not a trained model)'


def _normalize(vec: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 1e-12 else vec


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """
    Return the ``[4, 4]`` world-to-camera transform of an optical camera at ``eye``.

    The camera looks at ``target`` (its +z), with image "up" (its -y) as close to ``up`` as
    possible. ``eye``, ``target``, ``up``: ``[3]``.
    """
    eye = np.asarray(eye, np.float64)
    forward = _normalize(np.asarray(target, np.float64) - eye)
    up = _normalize(np.asarray(up, np.float64))
    if abs(float(forward @ up)) > 0.999:  # looking along up: pick any perpendicular
        up = _normalize(np.cross(forward, [1.0, 0.0, 0.0]))
        if np.linalg.norm(up) < 1e-6:
            up = _normalize(np.cross(forward, [0.0, 1.0, 0.0]))
    right = _normalize(np.cross(forward, up))   # x: right
    down = np.cross(forward, right)             # y: down
    rot = np.stack([right, down, forward])      # rows: camera axes in world
    w2c = np.eye(4)
    w2c[:3, :3] = rot
    w2c[:3, 3] = -rot @ eye
    return w2c


def _auto_radius(num_points: int, size: Tuple[int, int]) -> int:
    fill = num_points / float(size[0] * size[1])
    if fill < 0.05:
        return 2
    if fill < 0.6:
        return 1
    return 0


def splat(points: np.ndarray, colors: np.ndarray, K: np.ndarray, world_to_cam: np.ndarray,
          size: Tuple[int, int], radius: Optional[int] = None,
          background: Sequence[int] = BACKGROUND) -> Tuple[np.ndarray, np.ndarray]:
    """
    Z-buffered splatting of colored points into a virtual camera.

    Parameters
    ----------
    points : np.ndarray
        ``[N, 3]`` world coordinates (non-finite rows are skipped).
    colors : np.ndarray
        ``[N, 3]`` uint8 RGB.
    K : np.ndarray
        ``[3, 3]`` virtual camera intrinsics.
    world_to_cam : np.ndarray
        ``[4, 4]`` virtual camera pose (optical frame).
    size : (int, int)
        ``(width, height)`` of the picture.
    radius : int or None
        Each point covers a ``(2r+1)``-pixel disc; ``None`` picks 0..2 from the density.
    background : sequence of int
        RGB colour of empty pixels.

    Returns
    -------
    (image ``[H, W, 3]`` uint8 RGB, depth ``[H, W]`` float32 with ``inf`` where empty)

    """
    width, height = int(size[0]), int(size[1])
    image = np.empty((height, width, 3), np.uint8)
    image[:] = np.asarray(background, np.uint8)
    depth = np.full((height, width), np.inf, np.float32)
    points = np.asarray(points, np.float64).reshape(-1, 3)
    if points.shape[0] == 0:
        return image, depth
    cam = points @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    z = cam[:, 2]
    ok = np.isfinite(cam).all(axis=1) & (z > _NEAR)
    cam, z, colors = cam[ok], z[ok], np.asarray(colors)[ok]
    u = np.round(K[0, 0] * cam[:, 0] / z + K[0, 2]).astype(np.int64)
    v = np.round(K[1, 1] * cam[:, 1] / z + K[1, 2]).astype(np.int64)
    if radius is None:
        inside = (u >= 0) & (u < width) & (v >= 0) & (v < height)
        radius = _auto_radius(int(np.count_nonzero(inside)), (width, height))
    offsets = [(dx, dy) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)
               if dx * dx + dy * dy <= radius * radius + radius]
    all_u, all_v, all_i = [], [], []
    index = np.arange(len(z))
    for dx, dy in offsets:
        uu, vv = u + dx, v + dy
        inside = (uu >= 0) & (uu < width) & (vv >= 0) & (vv < height)
        all_u.append(uu[inside])
        all_v.append(vv[inside])
        all_i.append(index[inside])
    uu = np.concatenate(all_u)
    vv = np.concatenate(all_v)
    ii = np.concatenate(all_i)
    if ii.size == 0:
        return image, depth
    lin = vv * width + uu
    order = np.lexsort((z[ii], lin))  # by pixel, then nearest first
    lin_sorted = lin[order]
    first = np.ones(len(order), bool)
    first[1:] = lin_sorted[1:] != lin_sorted[:-1]
    winners = order[first]
    pix = lin[winners]
    image.reshape(-1, 3)[pix] = colors[ii[winners]]
    depth.reshape(-1)[pix] = z[ii[winners]]
    return image, depth


def _fit_distance(rel: np.ndarray, right: np.ndarray, down: np.ndarray, forward: np.ndarray,
                  tan_x: float, tan_y: float) -> float:
    """Smallest eye distance along ``-forward`` that keeps every ``rel`` ``[N, 3]`` in view."""
    x = np.abs(rel @ right)
    y = np.abs(rel @ down)
    along = rel @ forward
    need = np.maximum(x / tan_x, y / tan_y) - along
    # and keep every point comfortably in front of the eye
    need = np.maximum(need, 0.05 * np.linalg.norm(rel, axis=1).max() - along)
    return float(need.max())


def choose_view(result: ReconstructionResult, size: Tuple[int, int],
                fov_deg: float = 50.0, fill: float = 0.88) -> Tuple[np.ndarray, np.ndarray]:
    """
    Pick a virtual camera that shows the cloud and every camera; return ``(K, w2c)``.

    The eye sits behind the cameras (against their mean viewing direction, or camera 0's when
    they look in all directions, as on an orbit) and about 30 degrees above them (up = the
    cameras' mean ``-y``). It looks at the middle of the framed content (the cloud between
    its 2nd and 98th percentiles, plus every camera center) and is placed as close as keeps
    all of it within ``fill`` of the picture.
    """
    width, height = int(size[0]), int(size[1])
    focal = 0.5 * max(width, height) / np.tan(np.radians(fov_deg) / 2.0)
    K = np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])
    poses = np.asarray(result.poses_c2w, np.float64).reshape(-1, 4, 4)
    poses = poses[np.isfinite(poses).all(axis=(1, 2))]
    points = np.asarray(result.points, np.float64).reshape(-1, 3)
    points = points[np.isfinite(points).all(axis=1)]
    if len(points) > 100_000:
        points = points[np.random.default_rng(0).choice(len(points), 100_000, replace=False)]
    if len(points) >= 50:
        low, high = np.percentile(points, [2, 98], axis=0)
        points = points[((points >= low) & (points <= high)).all(axis=1)]
    framed = np.vstack([points, poses[:, :3, 3]]) if len(poses) else points
    if len(framed) == 0:
        framed = np.zeros((1, 3))
    if len(poses):
        up = _normalize(-poses[:, :3, 1].mean(axis=0))
        forward = poses[:, :3, 2].mean(axis=0)
        if np.linalg.norm(forward) < 0.3:
            forward = poses[0, :3, 2]
    else:
        up, forward = np.array([0.0, -1.0, 0.0]), np.array([0.0, 0.0, 1.0])
    if np.linalg.norm(up) < 1e-6:
        up = np.array([0.0, -1.0, 0.0])
    flat = forward - (forward @ up) * up
    forward = _normalize(flat if np.linalg.norm(flat) > 1e-6 else forward)
    view_dir = _normalize(forward - 0.6 * up)  # from the eye towards the content
    target = 0.5 * (framed.min(axis=0) + framed.max(axis=0))
    tan_x = fill * (width / 2.0) / focal
    tan_y = fill * (height / 2.0) / focal
    for _ in range(3):  # re-centre on the projected bounding box, then refit the distance
        w2c = look_at(target - view_dir, target, up)
        right, down = w2c[0, :3], w2c[1, :3]
        rel = framed - target
        distance = max(_fit_distance(rel, right, down, view_dir, tan_x, tan_y), 1e-3)
        eye = target - view_dir * distance
        cam = (framed - eye) @ np.stack([right, down, view_dir]).T
        z = np.maximum(cam[:, 2], 1e-6)
        ux, uy = cam[:, 0] / z, cam[:, 1] / z
        shift_x = 0.5 * (ux.min() + ux.max())
        shift_y = 0.5 * (uy.min() + uy.max())
        depth_mid = float(np.median(z))
        target = target + (shift_x * right + shift_y * down) * depth_mid
    w2c = look_at(target - view_dir, target, up)
    right, down = w2c[0, :3], w2c[1, :3]
    distance = max(_fit_distance(framed - target, right, down, view_dir, tan_x, tan_y), 1e-3)
    return K, look_at(target - view_dir * distance, target, up)


def _clip_segment(a: np.ndarray, b: np.ndarray) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """Clip a camera-frame segment to ``z >= near``; ``None`` when fully behind."""
    near = max(_NEAR, 1e-6)
    if a[2] < near and b[2] < near:
        return None
    if a[2] < near or b[2] < near:
        t = (near - a[2]) / (b[2] - a[2])
        cut = a + t * (b - a)
        a, b = (cut, b) if a[2] < near else (a, cut)
    return a, b


def _draw_segment(img_bgr: np.ndarray, K: np.ndarray, w2c: np.ndarray, a: np.ndarray,
                  b: np.ndarray, color_bgr, thickness: int) -> None:
    ca = w2c[:3, :3] @ a + w2c[:3, 3]
    cb = w2c[:3, :3] @ b + w2c[:3, 3]
    clipped = _clip_segment(ca, cb)
    if clipped is None:
        return
    pts = []
    for p in clipped:
        uv = K[:2, :2] @ (p[:2] / p[2]) + K[:2, 2]
        pts.append(np.clip(uv, -1e5, 1e5))
    height, width = img_bgr.shape[:2]
    ok, p0, p1 = cv2.clipLine((0, 0, width, height),
                              tuple(int(round(c)) for c in pts[0]),
                              tuple(int(round(c)) for c in pts[1]))
    if ok:
        cv2.line(img_bgr, p0, p1, color_bgr, thickness, cv2.LINE_AA)


def _view_colors(count: int) -> np.ndarray:
    """Return ``[count, 3]`` BGR colours: view 0 white, the others along a hue wheel."""
    hues = np.linspace(0, 150, max(count, 1), endpoint=False).astype(np.uint8)
    hsv = np.stack([hues, np.full_like(hues, 200), np.full_like(hues, 255)], axis=1)
    bgr = cv2.cvtColor(hsv[None], cv2.COLOR_HSV2BGR)[0].astype(int)
    bgr[0] = (255, 255, 255)
    return bgr


def frustum_corners(pose_c2w: np.ndarray, K: np.ndarray, image_size: Sequence[int],
                    depth: float) -> np.ndarray:
    """
    Return ``[5, 3]`` world points: camera center, then the image corners' rays at ``depth``.

    Corners in order top-left, top-right, bottom-right, bottom-left: the image pixel corners
    back-projected through ``K`` ``[3, 3]``, at distance ``depth`` from the center along their
    rays; ``pose_c2w`` ``[4, 4]``.
    """
    width, height = float(image_size[0]), float(image_size[1])
    pix = np.array([[0.0, 0.0, 1.0], [width, 0.0, 1.0], [width, height, 1.0],
                    [0.0, height, 1.0]])
    rays = pix @ np.linalg.inv(np.asarray(K, np.float64)).T
    # unit rays: a frustum stays ``depth`` long even for an absurd K (say a tiny focal length)
    cam = rays / np.linalg.norm(rays, axis=1, keepdims=True) * depth
    world = cam @ pose_c2w[:3, :3].T + pose_c2w[:3, 3]
    return np.vstack([pose_c2w[:3, 3], world])


def draw_frusta(image_bgr: np.ndarray, result: ReconstructionResult, K: np.ndarray,
                w2c: np.ndarray, depth: float) -> None:
    """Draw every camera's frustum (with an 'up' tick) and the camera path, in place."""
    poses = np.asarray(result.poses_c2w, np.float64).reshape(-1, 4, 4)
    colors = _view_colors(len(poses))
    thickness = max(1, int(round(image_bgr.shape[0] / 500)))
    finite = [i for i, p in enumerate(poses) if np.all(np.isfinite(p))]
    for i, j in zip(finite[:-1], finite[1:]):  # the camera path, skipping unregistered views
        _draw_segment(image_bgr, K, w2c, poses[i, :3, 3], poses[j, :3, 3], (150, 150, 150), 1)
    for i in finite:
        pose = poses[i]
        if not np.all(np.isfinite(result.intrinsics[i])):
            continue
        corners = frustum_corners(pose, result.intrinsics[i], result.image_sizes[i], depth)
        color = tuple(int(c) for c in colors[i])
        center, quad = corners[0], corners[1:]
        for j in range(4):
            _draw_segment(image_bgr, K, w2c, center, quad[j], color, thickness)
            _draw_segment(image_bgr, K, w2c, quad[j], quad[(j + 1) % 4], color, thickness)
        # a small triangle on the top edge shows which way is image-up
        top_mid = (quad[0] + quad[1]) / 2.0
        apex = top_mid + (top_mid - (quad[2] + quad[3]) / 2.0) * 0.25
        _draw_segment(image_bgr, K, w2c, quad[0] * 0.7 + quad[1] * 0.3, apex, color, thickness)
        _draw_segment(image_bgr, K, w2c, quad[0] * 0.3 + quad[1] * 0.7, apex, color, thickness)


def _legend_lines(result: ReconstructionResult) -> Sequence[Tuple[str, Tuple[int, int, int]]]:
    white, grey, red = (235, 235, 235), (170, 170, 170), (60, 60, 255)
    lines = [(f'backend: {result.backend}', white),
             (f'points: {result.num_points:,}   views: {result.num_views}', white)]
    model = str(dict(result.info).get('model', ''))
    if model == RANDOM_WEIGHTS:
        lines.append(('RANDOM WEIGHTS - not a trained model', red))
    lines.append(('frusta: cameras (view 0 white)', grey))
    return lines


def draw_legend(image_bgr: np.ndarray, result: ReconstructionResult) -> None:
    """Draw the legend box (backend, point and view counts) in the top-left corner, in place."""
    height = image_bgr.shape[0]
    scale = max(0.4, height / 720.0 * 0.6)
    thick = 1 if scale < 0.8 else 2
    font = cv2.FONT_HERSHEY_SIMPLEX
    lines = _legend_lines(result)
    sizes = [cv2.getTextSize(text, font, scale, thick)[0] for text, _ in lines]
    line_h = max(h for _, h in sizes) + int(10 * scale) + 4
    pad = int(10 * scale) + 2
    box_w = max(w for w, _ in sizes) + 2 * pad
    box_h = line_h * len(lines) + pad
    box_w = min(box_w, image_bgr.shape[1] - 8)
    box_h = min(box_h, height - 8)
    roi = image_bgr[8:8 + box_h, 8:8 + box_w]
    roi[:] = (roi.astype(np.uint16) * 2 // 7).astype(np.uint8)  # darken the background
    for k, (text, color) in enumerate(lines):
        y = 8 + pad + line_h * k + sizes[k][1]
        cv2.putText(image_bgr, text, (8 + pad, y), font, scale, color, thick, cv2.LINE_AA)


def _frustum_depth(centers: np.ndarray, scene: float) -> float:
    """Frustum size: 0.8x the median spacing of neighbouring cameras, within 3-8 % of the scene."""
    depth = 0.08 * scene
    if len(centers) > 1:
        dist = np.linalg.norm(centers[:, None] - centers[None], axis=2)
        np.fill_diagonal(dist, np.inf)
        spacing = float(np.median(dist.min(axis=1)))
        depth = float(np.clip(0.8 * spacing, 0.03 * scene, 0.08 * scene))
    return depth


def render_preview_image(result: ReconstructionResult,
                         size: Tuple[int, int] = (960, 720)) -> np.ndarray:
    """Render ``result`` and return the picture ``[H, W, 3]`` uint8 RGB (``size = (W, H)``)."""
    width, height = int(size[0]), int(size[1])
    if width < 64 or height < 64:
        raise ValueError(f'preview size {width}x{height} is too small (minimum 64x64)')
    K, w2c = choose_view(result, (width, height))
    points, colors = result.points, result.colors
    if len(points) > MAX_SPLAT_POINTS:
        keep = np.random.default_rng(0).choice(len(points), MAX_SPLAT_POINTS, replace=False)
        points, colors = points[keep], colors[keep]
    image, _ = splat(points, colors, K, w2c, (width, height))
    bgr = np.ascontiguousarray(image[:, :, ::-1])
    centers = np.asarray(result.poses_c2w)[:, :3, 3]
    centers = centers[np.isfinite(centers).all(axis=1)]
    finite = np.asarray(result.points)[np.isfinite(result.points).all(axis=1)]
    spread = [float(np.linalg.norm(np.ptp(centers, axis=0)))] if len(centers) > 1 else []
    if len(finite):
        spread.append(float(np.linalg.norm(np.percentile(finite, 95, axis=0)
                                           - np.percentile(finite, 5, axis=0))))
    scene = max(spread) if spread and max(spread) > 0 else 1.0
    draw_frusta(bgr, result, K, w2c, depth=_frustum_depth(centers, scene))
    draw_legend(bgr, result)
    return np.ascontiguousarray(bgr[:, :, ::-1])


def render_preview(result: ReconstructionResult, path, size: Tuple[int, int] = (960, 720)):
    """Render ``result`` to a PNG at ``path`` (written atomically); return the path."""
    rgb = render_preview_image(result, size)
    ok, data = cv2.imencode('.png', np.ascontiguousarray(rgb[:, :, ::-1]))
    if not ok:
        raise RuntimeError(f'OpenCV could not encode the preview for {os.fspath(path)}')
    return atomic_write_bytes(path, data.tobytes())
