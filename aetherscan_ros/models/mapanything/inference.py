# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
``infer``: upstream's public call, outside ``nn.Module.forward`` (SPEC §3.3, §8, §10).

Checks and converts the per-view dicts (intrinsics -> rays, z-depth -> range, 4x4 -> quaternion
+ translation, default metric flags), runs the network under ``torch.inference_mode`` with
autocast on CUDA only (bf16 where native, else fp16; float32 on the CPU), then post-processes:
intrinsics, poses, masks. Everything comes back to the host in one copy at the end.
"""

import contextlib
import logging
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from aetherscan_ros.models.mapanything.config import DINOV2_MEAN, DINOV2_STD
from aetherscan_ros.models.mapanything.geometric import GeometricInputs
from aetherscan_ros.models.mapanything.postprocess import (
    fit_intrinsics, poses_from_quats, view_mask)
from aetherscan_ros.models.mapanything.priors import (
    depth_along_ray, matrix_to_quaternion, normalize_rays, rays_from_intrinsics)

_LOG = logging.getLogger(__name__)

ALLOWED_KEYS = frozenset({'img', 'data_norm_type', 'depth_z', 'ray_directions', 'intrinsics',
                          'camera_poses', 'is_metric_scale', 'true_shape', 'idx', 'instance'})
#: Bytes of GPU memory one view needs in the memory-efficient heads (upstream's figure).
HEAD_BYTES_PER_VIEW = 680 * 1024 ** 2
MASKED_KEYS = ('pts3d', 'pts3d_cam', 'depth_along_ray', 'depth_z')


def amp_context(device: torch.device, use_amp: bool, amp_dtype: str = 'bf16'):
    """
    Return the autocast context for the encoder and transformer.

    CUDA only: ``bf16`` where the device computes it natively, else fp16 (``amp_dtype='fp16'``
    forces fp16). On the CPU there is no autocast at all (upstream's fp16 there is 2.6x slower
    and ~1e-3 off, SPEC §13.2).
    """
    if not use_amp or device.type != 'cuda':
        return contextlib.nullcontext()
    from aetherscan_ros.models.torch_device import native_bf16
    if amp_dtype not in ('bf16', 'fp16'):
        raise ValueError(f"amp_dtype {amp_dtype!r}: expected 'bf16' or 'fp16'")
    half = torch.bfloat16 if amp_dtype == 'bf16' and native_bf16(device) else torch.float16
    return torch.autocast('cuda', dtype=half)


def cast_for_autocast(model, dtype: torch.dtype):
    """
    Store the encoder's and transformer's Linear/Conv weights in ``dtype`` (bf16/fp16 only).

    Autocast rounds those weights at every call anyway, so results are unchanged while the
    weights take half the memory (ViT-g: 2.3 GB saved). Norms, priors and heads keep float32.
    """
    if dtype not in (torch.bfloat16, torch.float16):
        return model
    for part in (model.encoder, model.info_sharing):
        for module in part.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
                module.to(dtype)
    return model


def is_out_of_memory(exc: BaseException) -> bool:
    """Return True for a CUDA (or CPU allocator) out-of-memory error."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and 'out of memory' in str(exc).lower()


def head_minibatch(device: torch.device, views: int, memory_efficient: bool = True,
                   minibatch_size: Optional[int] = None) -> int:
    """Return views per head call: the override, else free GPU memory / 680 MB, CPU 1."""
    if minibatch_size:
        return max(1, int(minibatch_size))
    if not memory_efficient:
        return views
    if device.type == 'cuda':
        free, _ = torch.cuda.mem_get_info(device)
        return max(1, min(views, int(free * 0.95 / HEAD_BYTES_PER_VIEW)))
    return 1


def _tensor(value, what: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    try:
        return torch.as_tensor(np.asarray(value))
    except (TypeError, ValueError) as exc:
        raise ValueError(f'{what}: expected a tensor or array, '
                         f'got {type(value).__name__}') from exc


def _shape(t: torch.Tensor, want: Sequence[int], what: str) -> torch.Tensor:
    if t.ndim != len(want) or any(w >= 0 and s != w for s, w in zip(t.shape, want)):
        pretty = ', '.join('*' if w < 0 else str(w) for w in want)
        raise ValueError(f'{what}: expected shape [{pretty}], got {list(t.shape)}')
    return t


def convert_views(views: List[Dict[str, object]], device: torch.device, dtype: torch.dtype,
                  patch: int = 14, ignore_calibration_inputs: bool = False,
                  ignore_depth_inputs: bool = False, ignore_pose_inputs: bool = False,
                  ignore_depth_scale_inputs: bool = False,
                  ignore_pose_scale_inputs: bool = False):
    """
    Validate ``views`` and return ``(images [V, 3, H, W], GeometricInputs)`` (SPEC §3.3).

    Raises ``ValueError`` naming the view and the key for anything malformed.
    """
    if not isinstance(views, (list, tuple)) or not views:
        raise ValueError('views: expected a non-empty list of per-view dicts')
    imgs, rays, depths, quats, trans, metric = [], [], [], [], [], []
    for i, view in enumerate(views):
        if not isinstance(view, dict) or 'img' not in view:
            raise ValueError(f'view {i}: expected a dict with an "img" tensor [1, 3, H, W]')
        unknown = sorted(set(view) - ALLOWED_KEYS)
        if unknown:
            raise ValueError(f'view {i}: unknown key(s) {unknown}; allowed: '
                             f'{sorted(ALLOWED_KEYS)}')
        norm = view.get('data_norm_type', 'dinov2')
        norm = norm[0] if isinstance(norm, (list, tuple)) and len(norm) == 1 else norm
        if norm != 'dinov2':
            raise ValueError(f'view {i}: data_norm_type {norm!r} (this model takes "dinov2")')
        img = _shape(_tensor(view['img'], f'view {i} img'), (1, 3, -1, -1), f'view {i} img')
        height, width = img.shape[-2:]
        if height % patch or width % patch:
            raise ValueError(f'view {i} img: {height}x{width} (H x W) is not a multiple of the '
                             f'patch size {patch}; resize/crop first (see preprocess)')
        if imgs and tuple(img.shape) != tuple(imgs[0].shape):
            raise ValueError(f'view {i} img: shape {list(img.shape)} differs from view 0 '
                             f'{list(imgs[0].shape)}; all views must share H x W')
        imgs.append(img)
        rays.append(_view_rays(view, i, height, width, device, dtype))
        depths.append(_view_depth(view, i, rays[-1], height, width, device, dtype))
        pose = view.get('camera_poses')
        quats_i, trans_i = _view_pose(pose, i, device, dtype)
        if i == 0 and pose is None and any(v.get('camera_poses') is not None for v in views):
            raise ValueError('camera_poses given for some views but not view 0: the poses are '
                             'relative to view 0, so view 0 needs one too')
        quats.append(quats_i)
        trans.append(trans_i)
        flag = view.get('is_metric_scale', True)
        flag = _tensor(flag, f'view {i} is_metric_scale').reshape(-1)
        if flag.numel() != 1:
            raise ValueError(f'view {i} is_metric_scale: expected one flag, got {flag.numel()}')
        metric.append(flag.to(device=device, dtype=torch.bool))  # no host sync
    images = torch.cat([im.to(device=device, dtype=dtype) for im in imgs])
    flag = torch.cat(metric)

    def given(items, ignore):
        return torch.tensor([x is not None and not ignore for x in items], device=device)

    def stack(items, shape, fill=None):
        out = []
        for x in items:
            if x is not None:
                out.append(x)
                continue
            z = torch.zeros(shape, device=device, dtype=dtype)
            if fill is not None:
                z[..., fill] = 1.0
            out.append(z)
        return torch.stack(out)

    height, width = images.shape[-2:]
    has_rays = given(rays, ignore_calibration_inputs)
    has_depth = given(depths, ignore_depth_inputs)
    has_pose = given(quats, ignore_pose_inputs)
    geo = GeometricInputs(
        has_rays=has_rays, has_depth=has_depth, has_pose=has_pose,
        metric_depth=flag & (not ignore_depth_scale_inputs),
        metric_pose=flag & (not ignore_pose_scale_inputs),
        rays=(stack(rays, (height, width, 3)) if any(r is not None for r in rays)
              and not ignore_calibration_inputs else None),
        depth=(stack(depths, (height, width)) if any(d is not None for d in depths)
               and not ignore_depth_inputs else None))
    if any(q is not None for q in quats) and not ignore_pose_inputs:
        geo.quats = stack(quats, (4,), fill=3)
        geo.trans = stack(trans, (3,))
    return images, geo


def _view_rays(view, i, height, width, device, dtype):
    k, r = view.get('intrinsics'), view.get('ray_directions')
    if k is not None and r is not None:
        raise ValueError(f'view {i}: give intrinsics or ray_directions, not both')
    if k is not None:
        k = _shape(_tensor(k, f'view {i} intrinsics'), (1, 3, 3), f'view {i} intrinsics')
        return rays_from_intrinsics(k.to(device=device, dtype=dtype), height, width)[0]
    if r is not None:
        r = _shape(_tensor(r, f'view {i} ray_directions'), (1, height, width, 3),
                   f'view {i} ray_directions')
        return normalize_rays(r.to(device=device, dtype=dtype))[0]
    return None


def _view_depth(view, i, rays, height, width, device, dtype):
    d = view.get('depth_z')
    if d is None:
        return None
    if rays is None:
        raise ValueError(f'view {i}: depth_z needs intrinsics or ray_directions')
    d = _tensor(d, f'view {i} depth_z')
    if d.ndim == 4 and d.shape[-1] == 1:
        d = d[..., 0]  # [1, H, W, 1] as upstream's docstring says
    d = _shape(d, (1, height, width), f'view {i} depth_z').to(device=device, dtype=dtype)
    return depth_along_ray(d, rays[None])[0, ..., 0]


def _view_pose(pose, i, device, dtype):
    if pose is None:
        return None, None
    if isinstance(pose, (tuple, list)):
        if len(pose) != 2:
            raise ValueError(f'view {i} camera_poses: expected a 4x4 or (quats, trans)')
        q = _shape(_tensor(pose[0], f'view {i} quats'), (1, 4), f'view {i} camera_poses quats')
        t = _shape(_tensor(pose[1], f'view {i} trans'), (1, 3), f'view {i} camera_poses trans')
        return q[0].to(device=device, dtype=dtype), t[0].to(device=device, dtype=dtype)
    m = _shape(_tensor(pose, f'view {i} camera_poses'), (1, 4, 4), f'view {i} camera_poses')
    m = m.to(device=device, dtype=dtype)
    return matrix_to_quaternion(m[0, :3, :3]), m[0, :3, 3]


def infer(model, views: List[Dict[str, object]], memory_efficient_inference: bool = True,
          minibatch_size: Optional[int] = None, use_amp: bool = True, amp_dtype: str = 'bf16',
          apply_mask: bool = True, mask_edges: bool = True, edge_normal_threshold: float = 5.0,
          edge_depth_threshold: float = 0.03, apply_confidence_mask: bool = False,
          confidence_percentile: float = 10, ignore_calibration_inputs: bool = False,
          ignore_depth_inputs: bool = False, ignore_pose_inputs: bool = False,
          ignore_depth_scale_inputs: bool = False, ignore_pose_scale_inputs: bool = False,
          use_multiview_confidence: bool = False,
          multiview_conf_depth_abs_thresh: float = 0.02,
          multiview_conf_depth_rel_thresh: float = 0.02) -> List[Dict[str, torch.Tensor]]:
    """
    Run MapAnything on one scene; upstream's option names and defaults (SPEC §10).

    ``views``: list of dicts with ``img`` ``[1, 3, H, W]`` (normalised, SPEC §3) and optional
    ``intrinsics`` ``[1, 3, 3]`` / ``ray_directions`` ``[1, H, W, 3]``, ``depth_z``
    ``[1, H, W]``, ``camera_poses`` ``[1, 4, 4]`` cam->world or ``(quats [1, 4] xyzw,
    trans [1, 3])``, ``is_metric_scale`` ``[1]`` bool (default True). Returns one dict per view
    (keys and shapes of SPEC §9, batch 1) of CPU tensors in the model's dtype.
    """
    param = model.fusion_norm_layer.weight
    device, dtype = param.device, param.dtype
    images, geo = convert_views(
        views, device, dtype, model.config.patch_size, ignore_calibration_inputs,
        ignore_depth_inputs, ignore_pose_inputs, ignore_depth_scale_inputs,
        ignore_pose_scale_inputs)
    batch = head_minibatch(device, images.shape[0], memory_efficient_inference, minibatch_size)
    with torch.inference_mode():
        with amp_context(device, use_amp, amp_dtype):
            raw = model(images, geo, minibatch=batch)
        raw['depth_z'] = raw['pts3d_cam'][..., 2:3]
        raw['intrinsics'] = fit_intrinsics(raw['ray_directions'])
        raw['camera_poses'] = poses_from_quats(raw['cam_quats'], raw['cam_trans'])
        mean = torch.tensor(DINOV2_MEAN, dtype=images.dtype, device=device).view(1, 3, 1, 1)
        std = torch.tensor(DINOV2_STD, dtype=images.dtype, device=device).view(1, 3, 1, 1)
        raw['img_no_norm'] = torch.clamp(images * std + mean, 0, 1).permute(0, 2, 3, 1)
        host = to_host(raw)
    if use_multiview_confidence:
        from aetherscan_ros.models.mapanything.multiview import multiview_confidence
        host['conf'] = multiview_confidence(host, multiview_conf_depth_abs_thresh,
                                            multiview_conf_depth_rel_thresh)
    if apply_mask:
        apply_masks(host, mask_edges, edge_normal_threshold, edge_depth_threshold,
                    confidence_percentile if apply_confidence_mask else None)
    return [{k: v[i:i + 1] for k, v in host.items()} for i in range(images.shape[0])]


def to_host(raw: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Copy every output to the CPU in one transfer per dtype (one sync, not one per key)."""
    groups: Dict[torch.dtype, List[str]] = {}
    for key, value in raw.items():
        groups.setdefault(value.dtype, []).append(key)
    host = {}
    for keys in groups.values():
        flat = torch.cat([raw[k].reshape(-1) for k in keys]).cpu()
        start = 0
        for k in keys:
            size = raw[k].numel()
            host[k] = flat[start:start + size].view(raw[k].shape)
            start += size
    return host


def apply_masks(out: Dict[str, torch.Tensor], mask_edges: bool, normal_tol: float,
                depth_rtol: float, conf_percentile: Optional[float]) -> None:
    """Compute ``mask`` ``[V, H, W, 1]`` and zero the masked outputs (in place, CPU tensors)."""
    masks = []
    for i in range(out['conf'].shape[0]):
        masks.append(view_mask(out['non_ambiguous_mask'][i].numpy(), out['conf'][i].numpy(),
                               out['pts3d'][i].numpy(), out['depth_z'][i, ..., 0].numpy(),
                               mask_edges, normal_tol, depth_rtol, conf_percentile))
    mask = torch.from_numpy(np.stack(masks))[..., None]
    for key in MASKED_KEYS:
        out[key] = out[key] * mask.to(out[key].dtype)
    out['mask'] = mask
