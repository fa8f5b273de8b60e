# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The Fast3R reconstruction backend: frames in, colored cloud + camera poses out.

All views go through the network in one pass. World frame = the optical frame of view 0 (the
global head predicts in it); scale is arbitrary. Points are, by default, each view's local
pointmap aligned to the global one (as the upstream demo shows them), filtered per view by
confidence and coloured with the preprocessed pixels.
"""

from collections import deque
import logging
import math
import time
from typing import Deque, Dict, List, Optional, Sequence

import numpy as np

from aetherscan_ros.backends import licences
from aetherscan_ros.backends.base import (
    BackendUnavailable, Frame, ProgressCallback, ProgressEvent, ReconstructionError,
    ReconstructionResult, result_from_view_clouds, ViewCloud)

_LOG = logging.getLogger(__name__)

POINT_SOURCES = ('aligned_local', 'global')
IMAGE_ID_MODES = ('fixed', 'sequential')
#: Consecutive reconstructions that ran out of GPU memory even at head chunk 1 before the
#: backend moves to the CPU for good (before that, only the failing call runs on the CPU).
MAX_GPU_FAILURES = 3
#: Out-of-memory notes kept in ``Fast3RBackend.fallbacks`` (``fallback_count`` counts all).
FALLBACK_HISTORY = 16


class Fast3RBackend:
    """
    Reconstruction with our Fast3R port.

    Parameters
    ----------
    model : str
        Checkpoint directory (``config.json`` + ``model.safetensors``) or a Hugging Face repo
        id; empty = ``jedyang97/Fast3R_ViT_Large_512`` from the local hub cache.
    device : str
        ``auto`` (CUDA if present, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
    size : int
        Long side of the network input (512 for the released model; multiples of 16).
    precision : str
        ``auto`` (bf16 on CUDA where supported, else fp16; fp32 on CPU), ``fp32``, ``bf16``,
        ``fp16``.
    head_chunk : int
        Views per encoder/DPT-head call; halved automatically on out-of-memory (the CUDA
        cache is emptied before each retry). Where even 1 does not fit, that call runs on the
        CPU in float32; after ``MAX_GPU_FAILURES`` such calls in a row the backend stays there.
    image_ids : str
        ``fixed`` (seeded draw, the default) or ``sequential``; see ``default_image_ids``.
    id_seed : int
        Seed of the ``fixed`` image-id draw.
    points : str
        ``aligned_local`` (local maps Umeyama-aligned to the global one, confidence
        ``conf_local``) or ``global`` (the global head's map, confidence ``conf``).
    conf_percentile : float
        Per view, drop this percentage of the least confident pixels (upstream viewer: 10).
    align_percentile : float
        Global-confidence percentile of the pixels used for the local->global fit (85).
    pnp_iterations, pnp_reprojection_error : int, float
        RANSAC settings (100, 5 px, as upstream).
    pnp_conf_percentile : float or None
        Restrict PnP to pixels above this confidence percentile (None = upstream: all).
    threads : int
        ``torch.set_num_threads`` when > 0 (process-wide).
    allow_download : bool
        Let a hub repo id download when it is not cached (huggingface_hub shows its progress;
        ``HF_HUB_OFFLINE`` still wins). ``create_backend('auto')`` passes False: picking a
        backend never starts a multi-GB download; only an explicit ``fast3r`` request may.

    Raises :class:`BackendUnavailable` when the weights are missing or corrupt or torch cannot
    run on the requested device, ``ValueError`` for a bad option.

    """

    name = 'fast3r'

    def __init__(self, model: str = '', device: str = 'auto', size: int = 512,
                 precision: str = 'auto', head_chunk: int = 8, image_ids: str = 'fixed',
                 id_seed: int = 0, points: str = 'aligned_local', conf_percentile: float = 10.0,
                 align_percentile: float = 85.0, pnp_iterations: int = 100,
                 pnp_reprojection_error: float = 5.0,
                 pnp_conf_percentile: Optional[float] = None, threads: int = 0,
                 allow_download: bool = True):
        if int(size) < 16 or int(size) % 16:
            raise ValueError(f'fast3r size must be a positive multiple of 16, got {size}')
        if points not in POINT_SOURCES:
            raise ValueError(f'fast3r points must be one of {POINT_SOURCES}, got {points!r}')
        if image_ids not in IMAGE_ID_MODES:
            raise ValueError(f'fast3r image_ids must be one of {IMAGE_ID_MODES}, '
                             f'got {image_ids!r}')
        for key, value in (('conf_percentile', conf_percentile),
                           ('align_percentile', align_percentile)):
            if not 0.0 <= float(value) <= 100.0:
                raise ValueError(f'fast3r {key} must be in [0, 100], got {value}')
        if int(head_chunk) < 1:
            raise ValueError(f'fast3r head_chunk must be >= 1, got {head_chunk}')
        try:
            import torch

            from aetherscan_ros.models.fast3r.config import ConfigError
            from aetherscan_ros.models.fast3r.weights import CheckpointError, locate_checkpoint
            from aetherscan_ros.models.torch_device import resolve_precision, select_device
        except ImportError as exc:
            raise BackendUnavailable(f'Fast3R needs torch: {exc}') from exc
        self._torch = torch
        self._device, _ = select_device(device)
        self._dtype = resolve_precision(self._device, precision)
        if int(threads) > 0:
            torch.set_num_threads(int(threads))
        self.checkpoint = locate_checkpoint(model, local_files_only=not allow_download)
        try:
            self.model = self._load_model(self._device, self._dtype)
        except (CheckpointError, ConfigError) as exc:
            raise BackendUnavailable(f'Fast3R checkpoint unusable: {exc}') from exc
        except (RuntimeError, MemoryError) as exc:
            raise BackendUnavailable(f'cannot load Fast3R from {self.checkpoint} onto '
                                     f'{self._device}: {exc}') from exc
        self.size = int(size)
        self.head_chunk = int(head_chunk)
        self.image_id_mode = image_ids
        self.id_seed = int(id_seed)
        self.points = points
        self.conf_percentile = float(conf_percentile)
        self.align_percentile = float(align_percentile)
        self.pnp_options = {'iterations': int(pnp_iterations),
                            'reprojection_error': float(pnp_reprojection_error),
                            'conf_percentile': pnp_conf_percentile}
        #: The last ``FALLBACK_HISTORY`` out-of-memory notes; ``fallback_count`` counts all.
        self.fallbacks: Deque[str] = deque(maxlen=FALLBACK_HISTORY)
        self.fallback_count = 0
        self._gpu_failures = 0

    # ----------------------------------------------------------------------------------------
    @property
    def device(self) -> str:
        """Return the device the model runs on (``cpu``, ``cuda:0``)."""
        return str(self._device)

    @property
    def model_label(self) -> str:
        """Return what the weights are (``'random weights (not a trained model)'`` or a path)."""
        return str(self.model.weights_info.get('label', self.checkpoint))

    def describe(self) -> str:
        """Return a one-line description: weights, size, device and precision."""
        dtype = str(self._dtype).replace('torch.', '')
        return (f'{self.model_label}, {self.model.num_parameters() / 1e6:.1f} M params, '
                f'{self.size} px, {self.device} {dtype}')

    # ----------------------------------------------------------------------------------------
    def reconstruct(self, frames: Sequence[Frame],
                    progress: Optional[ProgressCallback] = None) -> ReconstructionResult:
        """Reconstruct 2..1000 frames; emits one ``view_points`` event per view, in order."""
        from aetherscan_ros.models.fast3r.config import MAX_VIEWS
        from aetherscan_ros.models.fast3r.model import default_image_ids
        from aetherscan_ros.models.fast3r.postprocess import (
            align_local_to_global, default_focal, estimate_focal, estimate_poses, intrinsics,
            top_confidence_mask)
        from aetherscan_ros.models.fast3r.preprocess import preprocess_image

        def emit(stage, fraction, message='', cloud=None):
            if progress is not None:
                progress(ProgressEvent(stage, fraction, message, cloud))

        start = time.perf_counter()
        frames = list(frames)
        if len(frames) < 2:
            raise ReconstructionError(f'Fast3R needs at least 2 frames, got {len(frames)}')
        if len(frames) > MAX_VIEWS:
            raise ReconstructionError(
                f'Fast3R takes at most {MAX_VIEWS} views per pass (image-index embedding '
                f'size); got {len(frames)} frames: keyframe or split them')
        timings: Dict[str, float] = {}
        emit('preprocess', 0.0, f'preprocessing {len(frames)} frames')
        views = []
        for i, frame in enumerate(frames):
            label = frame.name or f'frame {i}'
            try:
                views.append(preprocess_image(frame.image, self.size, name=label))
            except ValueError as exc:
                raise ReconstructionError(str(exc)) from exc
            if frame.K is not None and np.shape(frame.K) != (3, 3):
                raise ReconstructionError(f'{label}: K must be 3x3, got {np.shape(frame.K)}')
        timings['preprocess'] = time.perf_counter() - start

        ids = default_image_ids(len(views), self.image_id_mode, self.id_seed)
        emit('forward', 0.05, f'Fast3R forward on {len(views)} views ({self.device})')
        t = time.perf_counter()
        out, chunk, ran_on, notes = self._forward_with_fallback([v.tensor for v in views], ids)
        timings['forward'] = time.perf_counter() - t

        emit('poses', 0.75, 'estimating focal and camera poses')
        t = time.perf_counter()
        glob, conf = out['pts3d_in_other_view'], out['conf']
        focal, focal_source = None, 'camera_info'
        if any(f.K is None for f in frames):
            focal = estimate_focal(glob[0], conf[0])
            focal_source = 'estimated (Weiszfeld, view 0 global map)'
            if not math.isfinite(focal) or focal <= 0:
                h0, w0 = glob[0].shape[:2]
                focal = default_focal(h0, w0)
                focal_source = 'default 60 deg field of view (the estimate degenerated to 0)'
                _LOG.warning('Fast3R focal estimate degenerated; assuming a 60 degree field of '
                             'view (%.1f px)', focal)
        ks_net = []
        for frame, view, pts in zip(frames, views, glob):
            if frame.K is not None:
                ks_net.append(view.K_to_network(np.asarray(frame.K, np.float64)))
            else:
                ks_net.append(intrinsics(focal, pts.shape[0], pts.shape[1]))
        poses, failed, inliers = estimate_poses(glob, conf, ks_net, **self.pnp_options)
        # A view whose PnP failed has no pose: NaN, never a stand-in identity (that would be
        # published as a real camera frame at view 0's pose). Its points stay in the cloud.
        poses = np.asarray(poses, np.float64).copy()
        poses[list(failed)] = np.nan
        timings['poses'] = time.perf_counter() - t

        t = time.perf_counter()
        clouds = []
        for i, view in enumerate(views):
            if self.points == 'aligned_local':
                pts, _ = align_local_to_global(out['pts3d_local'][i], glob[i], conf[i],
                                               self.align_percentile)
                score = out['conf_local'][i]
            else:
                pts, score = glob[i], conf[i]
            mask = top_confidence_mask(score, self.conf_percentile) & np.isfinite(pts).all(-1)
            cloud = ViewCloud(i, pts[mask].astype(np.float32), view.rgb[mask],
                              score[mask].astype(np.float32))
            clouds.append(cloud)
            emit('view_points', 0.8 + 0.2 * (i + 1) / len(views),
                 f'view {i}: {int(mask.sum())} points', cloud)
        timings['points'] = time.perf_counter() - t
        timings['total'] = time.perf_counter() - start

        info = {
            'model': self.model_label,
            'checkpoint': str(self.checkpoint),
            'device': str(ran_on[0]),
            'dtype': str(ran_on[1]).replace('torch.', ''),
            'image_ids': [int(i) for i in ids],
            'network_sizes': [list(v.size) for v in views],
            'focal_source': focal_source,
            'focal_px_network': None if focal is None else float(focal),
            'pnp_failed_views': failed,
            'pnp_inliers': inliers,
            'low_confidence_views': [i for i, c in enumerate(conf) if float(c.max()) < 1.5],
            'points_from': self.points,
            'head_chunk': chunk,
            'fallbacks': notes,
            'fallbacks_total': self.fallback_count,
            'metric_scale': False,
            'licence': licences.of_backend(self),
        }
        if failed:
            info['unregistered'] = [frames[i].name for i in failed]
            info['unregistered_policy'] = 'no pose: left out of TF, poses and frusta'
        if self.model.is_random:
            info['warning'] = 'results come from random weights; geometry is meaningless'
        emit('done', 1.0, f'{sum(len(c.points) for c in clouds)} points')
        return result_from_view_clouds(
            clouds, poses, np.stack([v.K_to_input(k) for v, k in zip(views, ks_net)]),
            np.array([v.input_size for v in views]), self.name, timings, info)

    # ----------------------------------------------------------------------------------------
    def _load_model(self, device, dtype):
        """
        Load the checkpoint for ``device`` (on CUDA in half precision: matmul weights in it).

        The weights are cast on the host before the copy (``inference.cast_for_autocast``),
        so the GPU holds 1.4 GB for ViT-L instead of 2.6 GB and never a float32 copy.
        """
        from aetherscan_ros.models.fast3r import Fast3R
        from aetherscan_ros.models.fast3r.inference import cast_for_autocast
        model = Fast3R.from_pretrained(self.checkpoint, device='cpu')
        if device.type == 'cuda':
            cast_for_autocast(model, dtype)
        return model.to(device)

    def _forward(self, model, tensors, ids, chunk, device, dtype):
        """Run the network once (the seam where tests inject out-of-memory errors)."""
        from aetherscan_ros.models.fast3r.inference import run_fast3r
        return run_fast3r(model, tensors, ids, device, dtype, chunk)

    def _forward_with_fallback(self, tensors, ids):
        """
        Run the forward: ``(outputs, head chunk, (device, dtype) used, notes of this call)``.

        Out of memory: empty the cache and halve the head chunk down to 1; still out of memory
        on a GPU: this call runs on the CPU in float32 (a CPU copy of the model loaded for it),
        and only after ``MAX_GPU_FAILURES`` consecutive such calls does the backend stay there.
        """
        from aetherscan_ros.models.fast3r.inference import is_out_of_memory
        torch = self._torch
        notes: List[str] = []
        if self._device.type != 'cpu':
            try:
                out, chunk = self._halving(self.model, tensors, ids, self._device, self._dtype,
                                           notes)
                self._gpu_failures = 0
                return out, chunk, (self._device, self._dtype), notes
            except Exception as exc:  # noqa: B902 - only out-of-memory is handled
                if not is_out_of_memory(exc):
                    raise
            self._gpu_failures += 1
            if self._gpu_failures >= MAX_GPU_FAILURES:
                self._note(notes, f'out of memory on {self.device} even with head chunk 1 in '
                                  f'{self._gpu_failures} reconstructions in a row; moving Fast3R '
                                  'to the CPU in float32 for good (much slower)')
                model = self._load_model(torch.device('cpu'), torch.float32)
                self.model = model  # the GPU copy is released here
                self._empty_cache()
                self._device, self._dtype = torch.device('cpu'), torch.float32
            else:
                self._note(notes, f'out of memory on {self.device} even with head chunk 1; '
                                  'running this reconstruction on the CPU in float32 (much '
                                  f'slower); the next one tries {self.device} again')
                model = self._load_model(torch.device('cpu'), torch.float32)
        else:
            model = self.model
        cpu = (torch.device('cpu'), torch.float32)
        try:
            out, chunk = self._halving(model, tensors, ids, cpu[0], cpu[1], notes)
        except Exception as exc:  # noqa: B902 - only out-of-memory is handled
            if not is_out_of_memory(exc):
                raise
            raise ReconstructionError(
                f'out of memory on the CPU running Fast3R on {len(tensors)} views; use '
                'fewer frames or a smaller fast3r size') from exc
        return out, chunk, cpu, notes

    def _halving(self, model, tensors, ids, device, dtype, notes):
        """Run on ``device``, halving the head chunk after each out-of-memory error."""
        from aetherscan_ros.models.fast3r.inference import is_out_of_memory
        chunk = min(self.head_chunk, len(tensors))
        while True:
            try:
                return self._forward(model, tensors, ids, chunk, device, dtype), chunk
            except Exception as exc:  # noqa: B902 - only out-of-memory is handled
                if not is_out_of_memory(exc) or chunk <= 1:
                    raise
                self._empty_cache()
                self._note(notes, f'out of memory on {device} with head chunk {chunk}; '
                                  f'retrying with {chunk // 2}')
                chunk //= 2

    def _note(self, notes: List[str], note: str) -> None:
        _LOG.warning(note)
        notes.append(note)
        self.fallbacks.append(note)
        self.fallback_count += 1

    def _empty_cache(self):
        if self._torch.cuda.is_available():
            self._torch.cuda.empty_cache()
