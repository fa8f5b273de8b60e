# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The Fast3R network: shared ViT encoder per view, fusion over all views, two DPT heads.

``forward`` is pure tensor maths. Preprocessing, ``inference_mode``/autocast and pose recovery
live in :mod:`preprocess`, :mod:`inference` and :mod:`postprocess`.

Upstream traps (SPEC §12) and what this port does instead (tests in test/test_fast3r_*.py):
1. fp32 request silently autocasts: here fp32 means fp32 (``inference.autocast_context``).
2. random image ids per call: deterministic default ids (:func:`default_image_ids`).
3. ``forward`` prints a diagnostic after 20 s of encoding that raises KeyError for views
   without dataset labels: there is no such branch here; timings are measured by the caller.
4. ``attn_bias_for_inference_enabled`` defaults to true when absent (``config.DecoderConfig``).
5. fusion-block LayerNorm eps 1e-5, all others 1e-6 (``decoder.py``, ``encoder.py``).
6. unused ``refinenet4.resConfUnit1`` and the odd-grid crop (``heads.DPT.forward``).
7. missing ``layer_rn.N`` alias keys are restored on load (``weights.check_state_dict``).
8. PnP ignores its percentile and the focal may clip to 0: we expose the percentile
   (``postprocess.pose_from_pnp``) and the backend falls back to a 60 degree field of view.
9. pure-torch RoPE only (``layers.RoPE2D``), never cuRoPE.
10. ``copy.deepcopy`` shares heads upstream: plain modules here, deep copies are independent.
"""

from collections import OrderedDict
import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import torch
from torch import nn

from aetherscan_ros.models.fast3r.config import Fast3RConfig, load_config, MAX_VIEWS
from aetherscan_ros.models.fast3r.decoder import Fast3RDecoder
from aetherscan_ros.models.fast3r.encoder import CrocoEncoder
from aetherscan_ros.models.fast3r.heads import PointmapHead
from aetherscan_ros.models.fast3r.weights import load_weights, locate_checkpoint, save_checkpoint

_LOG = logging.getLogger(__name__)

OUTPUT_KEYS = ('pts3d_in_other_view', 'conf', 'pts3d_local', 'conf_local')
#: Seed of the default image-id draw (see :func:`default_image_ids`).
DEFAULT_ID_SEED = 0


def default_image_ids(num_views: int, mode: str = 'fixed', seed: int = DEFAULT_ID_SEED
                      ) -> List[int]:
    """
    Return deterministic image-index ids for ``num_views`` views.

    Upstream draws fresh random ids at every call (trap 2, SPEC §12), so its output changes from
    call to call. We keep the training distribution (view 0 gets id 0, the others distinct ids
    from 1..999) but make it reproducible:

    * ``'fixed'`` (default): ``[0] + (randperm(999, generator seeded with seed)[:N-1] + 1)``.
      The permutation is fixed, so adding views never changes the ids of earlier views.
    * ``'sequential'``: ``0, 1, ..., N-1``.
    """
    check_view_count(num_views)
    if mode == 'sequential':
        return list(range(num_views))
    if mode != 'fixed':
        raise ValueError(f"image id mode must be 'fixed' or 'sequential', got {mode!r}")
    gen = torch.Generator().manual_seed(int(seed))
    rest = (torch.randperm(MAX_VIEWS - 1, generator=gen)[:num_views - 1] + 1).tolist()
    return [0] + rest


def check_view_count(num_views: int) -> None:
    """Raise ``ValueError`` unless ``1 <= num_views <= 1000`` (the image-index table size)."""
    if num_views > MAX_VIEWS:
        raise ValueError(f'Fast3R takes at most {MAX_VIEWS} views in one pass (its image-index '
                         f'embedding has {MAX_VIEWS} rows); got {num_views}. Split the views '
                         'into several reconstructions or keyframe them')
    if num_views < 1:
        raise ValueError('Fast3R needs at least one view')


class Fast3R(nn.Module):
    """Fast3R multi-view pointmap network (state_dict keys equal the official checkpoint's)."""

    def __init__(self, config: Optional[Fast3RConfig] = None):
        super().__init__()
        self.config = config or Fast3RConfig()
        cfg = self.config
        self.encoder = CrocoEncoder(cfg.encoder)
        self.decoder = Fast3RDecoder(cfg.decoder)
        tap_dims = (cfg.encoder.embed_dim,) + (cfg.decoder.embed_dim,) * 3
        self.downstream_head = PointmapHead(cfg.head, tap_dims)
        self.downstream_head_local = PointmapHead(cfg.head, tap_dims)
        #: Facts about the weights (``'random': True`` for write_random_checkpoint output).
        self.weights_info: Dict[str, object] = {}

    # ----------------------------------------------------------------------------------------
    def forward(self, imgs: Union[torch.Tensor, Sequence[torch.Tensor]],
                image_ids: Optional[Sequence[int]] = None, head_chunk: Optional[int] = None,
                return_intermediates: bool = False) -> Dict[str, object]:
        """
        Run the network on N preprocessed views.

        Parameters
        ----------
        imgs : torch.Tensor or sequence of torch.Tensor
            ``[N, 3, H, W]`` in [-1, 1], or a list of N views ``[1, 3, H_i, W_i]`` (or
            ``[3, H_i, W_i]``) for mixed sizes and orientations (portrait stays portrait).
        image_ids : sequence of int, optional
            Image-index embedding row per view; default :func:`default_image_ids` (``fixed``).
        head_chunk : int, optional
            Views per encoder / DPT-head call (bounds memory); default all views of one size
            at once. The fusion transformer always sees every view.
        return_intermediates : bool
            Also return ``enc_tokens`` (per view ``[1, T_i, C]``), ``enc_pos`` and
            ``dec_outputs`` (all ``depth + 1`` fusion outputs ``[1, sum T_i, C]``).

        Returns
        -------
        dict with ``pts3d_in_other_view`` ``[N, H, W, 3]`` (view-0 camera frame), ``conf``
        ``[N, H, W]``, ``pts3d_local`` ``[N, H, W, 3]`` (each view's own frame) and
        ``conf_local`` ``[N, H, W]``; lists of N ``[1, H_i, W_i, ...]`` tensors when sizes differ.

        """
        views = self._split_views(imgs)
        n = len(views)
        check_view_count(n)
        ids = list(default_image_ids(n) if image_ids is None else image_ids)
        if len(ids) != n:
            raise ValueError(f'got {len(ids)} image ids for {n} views')
        bad = [i for i in ids if not 0 <= int(i) < MAX_VIEWS]
        if bad:
            raise ValueError(f'image ids must be in [0, {MAX_VIEWS}), got {bad[:5]}')
        groups = self._size_groups(views)

        tokens: List[Optional[torch.Tensor]] = [None] * n
        positions: List[Optional[torch.Tensor]] = [None] * n
        for members in groups.values():
            for chunk in _chunks(members, head_chunk):
                toks, pos = self.encoder(torch.cat([views[i] for i in chunk]))
                for j, i in enumerate(chunk):
                    tokens[i], positions[i] = toks[j:j + 1], pos[j:j + 1]

        hooks = self.config.decoder.hooks
        dec = self.decoder(tokens, ids, keep=None if return_intermediates else hooks)
        bounds = [0]
        for t in tokens:
            bounds.append(bounds[-1] + t.shape[1])

        per_view: List[Dict[str, torch.Tensor]] = [{} for _ in range(n)]
        for (height, width), members in groups.items():
            p = self.config.encoder.patch_size
            grid = (height // p, width // p)
            for chunk in _chunks(members, head_chunk):
                taps = [torch.cat([dec[k][:, bounds[i]:bounds[i + 1]] for i in chunk])
                        for k in hooks]
                glob = self.downstream_head(taps, grid)
                loc = self.downstream_head_local(taps, grid)
                for j, i in enumerate(chunk):
                    per_view[i] = {'pts3d_in_other_view': glob['pts3d'][j:j + 1],
                                   'conf': glob['conf'][j:j + 1],
                                   'pts3d_local': loc['pts3d'][j:j + 1],
                                   'conf_local': loc['conf'][j:j + 1]}
        out: Dict[str, object] = OrderedDict()
        for key in OUTPUT_KEYS:
            items = [v[key] for v in per_view]
            out[key] = torch.cat(items) if len(groups) == 1 else items
        out['image_ids'] = ids
        if return_intermediates:
            out['enc_tokens'] = tokens
            out['enc_pos'] = positions
            out['dec_outputs'] = dec
        return out

    @staticmethod
    def _split_views(imgs) -> List[torch.Tensor]:
        if isinstance(imgs, torch.Tensor):
            if imgs.ndim != 4 or imgs.shape[1] != 3:
                raise ValueError(f'expected images [N, 3, H, W], got {tuple(imgs.shape)}')
            return list(imgs.split(1))
        views = []
        for i, img in enumerate(imgs):
            img = img[None] if img.ndim == 3 else img
            if img.ndim != 4 or img.shape[0] != 1 or img.shape[1] != 3:
                raise ValueError(f'view {i}: expected [1, 3, H, W] or [3, H, W], '
                                 f'got {tuple(img.shape)}')
            views.append(img)
        return views

    @staticmethod
    def _size_groups(views) -> Dict[tuple, List[int]]:
        groups: Dict[tuple, List[int]] = OrderedDict()
        for i, v in enumerate(views):
            groups.setdefault(tuple(v.shape[-2:]), []).append(i)
        return groups

    # ----------------------------------------------------------------------------------------
    @property
    def is_random(self) -> bool:
        """Whether the weights came from :func:`write_random_checkpoint` (not a trained model)."""
        return bool(self.weights_info.get('random', False))

    def num_parameters(self) -> int:
        """Return the number of unique parameters (aliases counted once)."""
        return sum(p.numel() for p in self.parameters())

    @classmethod
    def from_pretrained(cls, path_or_repo_id: Union[str, Path] = '',
                        device: Union[str, torch.device] = 'cpu',
                        dtype: torch.dtype = torch.float32) -> 'Fast3R':
        """
        Load a checkpoint directory (``config.json`` + ``model.safetensors``) or a hub repo.

        Local directories never touch the network; a repo id goes through huggingface_hub
        (honours ``HF_HUB_OFFLINE`` and the normal cache). Keys are checked strictly (only the
        ``layer_rn.N`` aliases may be absent). The model is built on the meta device and the
        weights are assigned, so peak memory is one copy of the weights. Returns it in eval mode.
        """
        directory = locate_checkpoint(str(path_or_repo_id))
        config = load_config(directory / 'config.json')
        with torch.device('meta'):
            model = cls(config)
        load_weights(model, directory, dtype=dtype)
        return model.to(device).eval()

    def save_pretrained(self, directory: Union[str, Path],
                        metadata: Optional[Dict[str, str]] = None) -> Path:
        """Write ``config.json`` + ``model.safetensors`` in the HF layout; return the directory."""
        return save_checkpoint(self, directory, metadata)


def _chunks(items: Sequence[int], size: Optional[int]):
    size = len(items) if not size or size <= 0 else int(size)
    for start in range(0, len(items), size):
        yield list(items[start:start + size])
