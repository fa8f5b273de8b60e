# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The MapAnything reconstruction backend: frames (+ what the robot knows) in, metric cloud out.

Per view the model gets the image, and when known the pinhole K (``Frame.K``, already
undistorted; moved with the image by the preprocessing), the camera pose (TF, camera-to-fixed,
metres), a depth map (metres) and the metric flag. Its outputs are in view 0's frame; the
cloud is unprojected from ``depth_z`` with the predicted ``intrinsics`` and transformed by the
predicted ``camera_poses``, under ``mask`` (as upstream's demos build it).

World frame: without pose priors, view 0's optical frame (the backend protocol; the scale is
the model's metric estimate, unchecked). With pose priors for view 0 and at least one other
view, the fixed frame of the priors: the outputs are left-multiplied by view 0's given pose
(``info['in_prior_frame']``), so the result is in metres where the robot is and no similarity
has to be fitted. The poses are handed to the model relative to view 0 (float32 keeps
millimetres far from the origin); the model itself only uses relative poses (SPEC §5.4).
"""

import logging
import threading
import time
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from aetherscan_ros.backends.base import (
    BackendUnavailable, Frame, ProgressCallback, ProgressEvent, ReconstructionError,
    ReconstructionResult, result_from_view_clouds, ViewCloud)
from aetherscan_ros.backends.mapanything_inputs import (
    checkpoint_licence, DEFAULT_REPO_ID, is_random_checkpoint, locate_checkpoint,
    NetworkView, preprocess_view, RANDOM_WEIGHTS, target_size)

_LOG = logging.getLogger(__name__)

RANDOM_LABEL = 'random weights (not a trained model)'
#: Pose priors whose camera centres span less than this (metres) carry no scale: they are
#: given with ``is_metric_scale`` false (rotations still count).
MIN_PRIOR_BASELINE_M = 0.01
_ROTATION_TOL = 1e-3


def _relative_poses(poses: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """Check camera-to-world ``poses`` ``[V, 4, 4]`` and return them relative to view 0."""
    for i, pose in enumerate(poses):
        rot = pose[:3, :3]
        if (np.abs(rot.T @ rot - np.eye(3)).max() > _ROTATION_TOL
                or np.linalg.det(rot) < 0 or np.abs(pose[3] - [0, 0, 0, 1]).max() > 1e-9):
            raise ReconstructionError(f'{names[i]}: pose prior is not a rigid camera-to-world '
                                      'transform (rotation not orthonormal, mirrored, or last '
                                      'row not 0 0 0 1)')
    inv0 = np.eye(4)
    inv0[:3, :3] = poses[0, :3, :3].T
    inv0[:3, 3] = -poses[0, :3, :3].T @ poses[0, :3, 3]
    return inv0 @ poses


def view_cloud(view: int, out: dict, net: NetworkView, to_world: np.ndarray) -> tuple:
    """
    Return ``(ViewCloud, camera-to-world [4, 4])`` of one view from ``infer``'s outputs.

    Pixels ``(u, v)`` under ``mask`` with ``depth_z > 0`` are unprojected with the predicted K,
    moved by the predicted ``camera_poses`` and then by ``to_world`` ``[4, 4]`` (identity, or
    view 0's pose prior); colours are the network-size input pixels.
    """
    def arr(key):
        return out[key][0].detach().float().cpu().numpy().astype(np.float64)

    depth = arr('depth_z').reshape(net.rgb.shape[:2])
    k = arr('intrinsics')
    pose = to_world @ arr('camera_poses')
    keep = np.isfinite(depth) & (depth > 0)
    if 'mask' in out:
        keep &= out['mask'][0].detach().cpu().numpy().reshape(depth.shape).astype(bool)
    rows, cols = np.nonzero(keep)
    z = depth[rows, cols]
    with np.errstate(divide='ignore', invalid='ignore'):  # a degenerate K: no finite points
        cam = np.stack([(cols - k[0, 2]) / k[0, 0] * z, (rows - k[1, 2]) / k[1, 1] * z, z], -1)
    pts = cam @ pose[:3, :3].T + pose[:3, 3]
    conf = arr('conf').reshape(depth.shape)[rows, cols]
    ok = np.isfinite(pts).all(axis=1)
    return ViewCloud(view, pts[ok].astype(np.float32), net.rgb[rows[ok], cols[ok]],
                     conf[ok].astype(np.float32)), pose


class MapAnythingBackend:
    """
    Reconstruction with our MapAnything port (``aetherscan_ros.models.mapanything``).

    Parameters
    ----------
    model : str
        Checkpoint directory (``config.json`` + ``model.safetensors``) or a hub repo id;
        empty = ``facebook/map-anything-apache`` (Apache-2.0) from the local hub cache.
    device, precision : str
        As for Fast3R: ``auto`` = CUDA with bf16 (fp16 where bf16 is not native) autocast
        around encoder and transformer, else the CPU in float32 (upstream's CPU default, fp16
        autocast, is 2.6x slower and less exact: SPEC §13.2).
    size : int
        518: upstream's ``fixed_mapping`` sizes (518 on the long side, the aspect from a
        table); any other multiple of 14: ``longest_side`` of that many pixels.
    conf_percentile : float
        Also drop each view's least confident pixels below this percentile (0 = off, the
        upstream default; the model's own mask and edge filter always apply).
    minibatch : int
        Views per head call (0 = upstream's choice from free GPU memory; 1 on the CPU).
    allow_download : bool
        Whether a hub repo id may be downloaded (``auto`` never does).

    Raises :class:`BackendUnavailable` (no torch, missing or corrupt weights, unusable device)
    and ``ValueError`` for a bad option.

    """

    name = 'mapanything'
    accepts_pose_priors = True

    def __init__(self, model: str = '', device: str = 'auto', size: int = 518,
                 precision: str = 'auto', conf_percentile: float = 0.0, mask_edges: bool = True,
                 minibatch: int = 0, threads: int = 0, allow_download: bool = True):
        if int(size) < 28 or int(size) % 14:
            raise ValueError(f'mapanything size must be a multiple of 14 (>= 28), got {size}')
        if not 0.0 <= float(conf_percentile) < 100.0:
            raise ValueError(f'mapanything conf_percentile must be in [0, 100), got '
                             f'{conf_percentile}')
        try:
            import torch

            from aetherscan_ros.models.mapanything import MapAnything
            from aetherscan_ros.models.torch_device import resolve_precision, select_device
        except ImportError as exc:
            raise BackendUnavailable(f'MapAnything needs torch and its model port: {exc}') \
                from exc
        self._torch = torch
        self._device, _ = select_device(device)
        self._dtype = resolve_precision(self._device, precision)
        if int(threads) > 0:
            torch.set_num_threads(int(threads))
        self.model_id = (model or DEFAULT_REPO_ID).strip()
        self.checkpoint = locate_checkpoint(model, local_files_only=not allow_download)
        self.licence = checkpoint_licence(self.checkpoint, self.model_id)
        try:
            self.model = MapAnything.from_pretrained(str(self.checkpoint), device=self._device)
        except BackendUnavailable:
            raise
        except (ValueError, KeyError, TypeError, RuntimeError, OSError, MemoryError) as exc:
            raise BackendUnavailable(f'MapAnything checkpoint {self.checkpoint} unusable: '
                                     f'{type(exc).__name__}: {exc}') from exc
        self.model.eval()
        if self._device.type == 'cuda' and self._dtype != torch.float32:
            # half-precision encoder/transformer weights: autocast rounds them at every call
            # anyway; halves the weight memory (ViT-g: 2.3 GB saved). Heads stay float32.
            from aetherscan_ros.models.mapanything.inference import cast_for_autocast
            cast_for_autocast(self.model, self._dtype)
        self.is_random = (bool(getattr(self.model, 'is_random', False))
                          or is_random_checkpoint(self.checkpoint))
        self.size = int(size)
        self.resize_mode = 'fixed_mapping' if self.size == 518 else 'longest_side'
        self.conf_percentile = float(conf_percentile)
        self.mask_edges = bool(mask_edges)
        self.minibatch = int(minibatch)
        self._lock = threading.Lock()  # one infer at a time (SPEC §13.12)

    @property
    def device(self) -> str:
        """Return the device the model runs on (``cpu``, ``cuda:0``)."""
        return str(self._device)

    @property
    def model_label(self) -> str:
        """Return what the weights are: the random-weights label or the checkpoint."""
        return RANDOM_LABEL if self.is_random else f'MapAnything ({self.checkpoint})'

    def describe(self) -> str:
        """Return a one-line description: weights, licence, size, device and precision."""
        dtype = str(self._dtype).replace('torch.', '')
        params = sum(p.numel() for p in self.model.parameters()) / 1e6
        return (f'{self.model_label}, {params:.1f} M params, licence {self.licence}, '
                f'{self.size} px, {self.device} {dtype}')

    def infer_options(self, minibatch: Optional[int] = None) -> Dict[str, object]:
        """Return the keyword arguments of ``model.infer`` this backend uses."""
        half = self._device.type == 'cuda' and self._dtype != self._torch.float32
        options = {'use_amp': half,
                   'amp_dtype': 'bf16' if self._dtype == self._torch.bfloat16 else 'fp16',
                   'apply_mask': True, 'mask_edges': self.mask_edges,
                   'apply_confidence_mask': self.conf_percentile > 0,
                   'confidence_percentile': self.conf_percentile or 10.0,
                   'memory_efficient_inference': True}
        batch = self.minibatch if minibatch is None else minibatch
        if batch > 0:
            options['minibatch_size'] = batch
        return options

    # ----------------------------------------------------------------------------------------
    def reconstruct(self, frames: Sequence[Frame], progress: Optional[ProgressCallback] = None,
                    poses_c2w: Optional[np.ndarray] = None,
                    depths: Optional[Sequence[Optional[np.ndarray]]] = None,
                    metric: Union[bool, Sequence[bool]] = True) -> ReconstructionResult:
        """
        Reconstruct 2 or more frames; one ``view_points`` event per view, in order.

        ``poses_c2w`` ``[V, 4, 4]``: camera-to-world pose priors (NaN rows: unknown); view 0
        needs one when any view has one. ``depths``: per view None or an ``[H, W]`` z-depth
        (0 = invalid) for the frame's image (needs its K). ``metric``: the priors are in metres
        (``is_metric_scale``), for all views or per view; poses whose centres span less than
        :data:`MIN_PRIOR_BASELINE_M` count as rotations only.
        """
        def emit(stage, fraction, message='', cloud=None):
            if progress is not None:
                progress(ProgressEvent(stage, fraction, message, cloud))

        start = time.perf_counter()
        frames = list(frames)
        names = [f.name or f'frame {i}' for i, f in enumerate(frames)]
        if len(frames) < 2:
            raise ReconstructionError(f'MapAnything needs at least 2 frames, got {len(frames)}')
        depths = list(depths) if depths is not None else [None] * len(frames)
        if len(depths) != len(frames):
            raise ReconstructionError(f'{len(depths)} depth maps for {len(frames)} frames')
        info: Dict[str, object] = {'model': self.model_label, 'checkpoint': str(self.checkpoint),
                                   'licence': self.licence, 'device': self.device,
                                   'dtype': str(self._dtype).replace('torch.', '')}
        emit('preprocess', 0.0, f'preprocessing {len(frames)} frames')
        target = target_size([f.size for f in frames], self.size, self.resize_mode)
        nets = []
        for frame, name, depth in zip(frames, names, depths):
            if depth is not None and frame.K is None:
                raise ReconstructionError(f'{name}: a depth prior needs the intrinsics K')
            nets.append(preprocess_view(frame.image, frame.K, depth, target, name))
        relative, to_world = self._pose_priors(poses_c2w, names, info)
        metric_views = self._metric_flags(relative, nets, metric, info)
        views = [self._view(net, None if relative is None else relative[i], metric_views[i])
                 for i, net in enumerate(nets)]
        timings = {'preprocess': time.perf_counter() - start}

        emit('forward', 0.05, f'MapAnything on {len(views)} views at {target[0]}x{target[1]} '
                              f'({self.device})')
        t = time.perf_counter()
        outputs = self._infer(views, info)
        timings['forward'] = time.perf_counter() - t
        t = time.perf_counter()
        clouds, poses, ks = [], [], []
        for i, (out, net, frame) in enumerate(zip(outputs, nets, frames)):
            cloud, pose = view_cloud(i, out, net, to_world)
            clouds.append(cloud)
            poses.append(pose)
            k_net = out['intrinsics'][0].detach().float().cpu().numpy()
            ks.append(np.asarray(frame.K, np.float64) if frame.K is not None
                      else net.K_to_input(k_net))
            emit('view_points', 0.8 + 0.2 * (i + 1) / len(nets),
                 f'view {i}: {len(cloud.points)} points', cloud)
        timings['points'] = time.perf_counter() - t
        timings['total'] = time.perf_counter() - start
        scale = outputs[0].get('metric_scaling_factor')
        info.update({
            'network_size': list(target),
            'intrinsics': ('camera_info (given to the model)' if all(f.K is not None
                                                                     for f in frames)
                           else 'estimated by MapAnything where not given'),
            'metric_scaling_factor': (None if scale is None
                                      else float(scale.detach().float().reshape(-1)[0])),
            'points_from': 'depth_z + intrinsics + camera_poses under mask',
        })
        if self.is_random:
            info['warning'] = 'results come from random weights; geometry is meaningless'
        emit('done', 1.0, f'{sum(len(c.points) for c in clouds)} points')
        return result_from_view_clouds(clouds, np.stack(poses), np.stack(ks),
                                       np.array([f.size for f in frames]), self.name, timings,
                                       info)

    # ----------------------------------------------------------------------------------------
    def _pose_priors(self, poses_c2w, names, info):
        """Return ``(poses relative to view 0 or None, view 0's pose [4, 4])``; fills ``info``."""
        from aetherscan_ros.core.pose_priors import PRIOR_FRAME
        info.update(in_prior_frame=False, pose_priors='none',
                    world_frame="the optical frame of the first camera (the model's scale)")
        if poses_c2w is None:
            return None, np.eye(4)
        poses = np.asarray(poses_c2w, np.float64)
        if poses.shape != (len(names), 4, 4):
            raise ReconstructionError(f'pose priors must be [{len(names)}, 4, 4], got '
                                      f'{poses.shape}')
        known = np.isfinite(poses.reshape(len(poses), -1)).all(axis=1)
        if known.any() and not known[0]:
            raise ReconstructionError(
                f'{names[0]} (view 0) has no pose prior while {int(known.sum())} other view(s) '
                'have one: MapAnything expresses every pose relative to view 0; give view 0 a '
                'pose or drop the poses')
        if known.sum() < 2:
            if known.any():
                info['pose_priors'] = 'not used: only view 0 has a pose'
            return None, np.eye(4)
        relative = np.full_like(poses, np.nan)
        relative[known] = _relative_poses(poses[known], [n for n, k in zip(names, known) if k])
        info.update(in_prior_frame=True, world_frame=PRIOR_FRAME,
                    pose_priors=f'{int(known.sum())} of {len(names)} views')
        return relative, poses[0]

    def _metric_flags(self, relative, nets, metric, info) -> List[bool]:
        """Return ``is_metric_scale`` per view; fills ``info['metric_scale']`` and the unit."""
        given = [bool(metric)] * len(nets) if isinstance(metric, (bool, np.bool_)) \
            else [bool(m) for m in metric]
        if len(given) != len(nets):
            raise ReconstructionError(f'{len(given)} metric flags for {len(nets)} frames')
        centres = [] if relative is None else [
            p[:3, 3] for p in relative if np.isfinite(p).all()]
        spread = (max(float(np.linalg.norm(a - b)) for a in centres for b in centres)
                  if centres else 0.0)
        if relative is not None and spread < MIN_PRIOR_BASELINE_M:
            info['pose_priors'] = (f'{info["pose_priors"]}; centres within {spread:.4f} m '
                                   f'(< {MIN_PRIOR_BASELINE_M} m): rotations only, no scale')
        scaled = spread >= MIN_PRIOR_BASELINE_M if relative is not None else None
        flags = [m and (scaled if scaled is not None else n.depth is not None)
                 for m, n in zip(given, nets)]
        info['metric_scale'] = any(flags)
        info['unit'] = ('metres (metric priors)' if any(flags)
                        else 'metres as the model predicts them (unchecked)')
        return flags

    def _view(self, net: NetworkView, pose: Optional[np.ndarray], metric: bool) -> dict:
        """Return one ``infer`` input dict (tensors on the model's device, float32)."""
        torch = self._torch

        def tensor(array):
            return torch.from_numpy(np.ascontiguousarray(array, np.float32)).to(self._device)

        view = {'img': tensor(net.tensor()), 'data_norm_type': ['dinov2'],
                'is_metric_scale': torch.tensor([bool(metric)], device=self._device)}
        if net.K is not None:
            view['intrinsics'] = tensor(net.K[None])
        if pose is not None and np.isfinite(pose).all():
            view['camera_poses'] = tensor(pose[None])
        if net.depth is not None:
            view['depth_z'] = tensor(net.depth[None])
        return view

    def _infer(self, views, info):
        """Run ``model.infer``; on CUDA out-of-memory retry with one view per head call."""
        torch = self._torch
        with self._lock:
            try:
                return self.model.infer(views, **self.infer_options())
            except torch.cuda.OutOfMemoryError as exc:
                if self._device.type != 'cuda' or self.minibatch == 1:
                    raise ReconstructionError(f'out of memory running MapAnything on '
                                              f'{len(views)} views: {exc}') from exc
            torch.cuda.empty_cache()
            note = (f'out of memory on {self.device}; retrying with one view per head call')
            _LOG.warning(note)
            info['fallbacks'] = [note]
            try:
                return self.model.infer(views, **self.infer_options(minibatch=1))
            except torch.cuda.OutOfMemoryError as exc:
                torch.cuda.empty_cache()
                raise ReconstructionError(
                    f'out of memory on {self.device} running MapAnything on {len(views)} views '
                    'even with one view per head call; use fewer frames or a smaller '
                    'mapanything size') from exc


__all__ = ['MapAnythingBackend', 'RANDOM_LABEL', 'RANDOM_WEIGHTS', 'view_cloud']
