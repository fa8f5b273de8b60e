# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The MapAnything network: DINOv2 encoder, prior fusion, alternating attention, DPT/pose/scale.

``forward`` is tensor maths on one scene of V views (SPEC §4-§7). ``infer`` (upstream's
public call: input conversion, autocast, post-processing) lives in :mod:`inference`.

Upstream traps (SPEC §13) and what this port does instead:
1. torch.hub: never; the ViT is built here (:mod:`encoder`) and loaded from the checkpoint.
2. ``use_amp`` on the CPU becomes fp16 upstream: here autocast happens on CUDA only.
3. Prior dtypes: priors are cast to the model's dtype (float64 intrinsics just work).
4. ``depth_z`` is ``[B, H, W]`` (``[B, H, W, 1]`` accepted too).
5. float64: ``model.double()`` with float64 inputs runs in float64 end to end.
6. TF32: nothing global is changed at import.
7. The half-to-even crop rule is in :mod:`preprocess`.
8. A single posed view injects ``log(2e-8)``: kept for parity (the caller should avoid it).
9. Edge-mask NaNs: the edges are computed as upstream does, in the outputs' dtype.
12. ``infer`` keeps no per-call state on the module (thread-safe for separate calls).
"""

from pathlib import Path
from typing import Dict, List, Optional, Union

import torch
from torch import nn

from aetherscan_ros.models.mapanything.config import load_config, MapAnythingConfig
from aetherscan_ros.models.mapanything.encoder import ImageEncoder
from aetherscan_ros.models.mapanything.geometric import (
    DenseEncoder, encode_priors, GeometricInputs, GlobalEncoder)
from aetherscan_ros.models.mapanything.heads import (
    dense_adaptor, DPTFeatures, DPTRegressor, pose_adaptor, PoseHead, scale_adaptor, ScaleHead)
from aetherscan_ros.models.mapanything.layers import autocast_off, layer_norm
from aetherscan_ros.models.mapanything.priors import quaternion_to_matrix
from aetherscan_ros.models.mapanything.transformer import AlternatingAttention
from aetherscan_ros.models.mapanything.weights import (
    load_weights, locate_checkpoint, save_checkpoint)

RAW_KEYS = ('pts3d', 'pts3d_cam', 'ray_directions', 'depth_along_ray', 'cam_trans', 'cam_quats',
            'metric_scaling_factor', 'conf', 'non_ambiguous_mask', 'non_ambiguous_mask_logits')


class MapAnything(nn.Module):
    """MapAnything V1.1 (state_dict keys equal the HF ``model.safetensors`` names)."""

    def __init__(self, config: Optional[MapAnythingConfig] = None):
        super().__init__()
        from aetherscan_ros.models.mapanything.config import giant
        self.config = config or giant()
        cfg = self.config
        dim = cfg.enc_dim
        self.encoder = ImageEncoder(cfg)
        self.ray_dirs_encoder = DenseEncoder(3, cfg.ray_dims, dim, cfg.patch_size)
        self.depth_encoder = DenseEncoder(1, cfg.depth_dims, dim, cfg.patch_size)
        self.depth_scale_encoder = GlobalEncoder(1, cfg.scale_dims, dim)
        self.cam_rot_encoder = GlobalEncoder(4, cfg.cam_rot_dims, dim)
        self.cam_trans_encoder = GlobalEncoder(3, cfg.cam_trans_dims, dim)
        self.cam_trans_scale_encoder = GlobalEncoder(1, cfg.scale_dims, dim)
        self.fusion_norm_layer = layer_norm(dim)
        self.scale_token = nn.Parameter(torch.zeros(dim))
        mv_init = (cfg.raw.get('info_sharing_config', {}).get('module_args', {})
                   .get('init_values', 1e-5))
        self.info_sharing = AlternatingAttention(cfg.mv_dim, cfg.mv_depth, cfg.mv_heads,
                                                 cfg.mv_mlp_ratio, cfg.mv_qkv_bias, mv_init)
        self.dense_head = nn.Sequential(
            DPTFeatures(cfg.mv_dim, cfg.dpt_layer_dims, cfg.dpt_feature_dim),
            DPTRegressor(cfg.dpt_feature_dim, cfg.dense_out_dim))
        self.pose_head = PoseHead(cfg.mv_dim, cfg.pose_hidden, cfg.pose_blocks, cfg.rot_dim)
        self.scale_head = ScaleHead(cfg.mv_dim, cfg.scale_hidden)
        #: Facts about the weights (``'random': True`` for write_random_checkpoint output).
        self.weights_info: Dict[str, object] = {}

    # ----------------------------------------------------------------------------------------
    def forward(self, images: torch.Tensor, geo: GeometricInputs,
                minibatch: Optional[int] = None,
                record: Optional[Dict[str, object]] = None) -> Dict[str, torch.Tensor]:
        """
        Run the network on the V views of one scene.

        Parameters
        ----------
        images : torch.Tensor
            ``[V, 3, H, W]`` normalised (SPEC §3), sides multiples of the patch size.
        geo : GeometricInputs
            The priors (see :class:`~aetherscan_ros.models.mapanything.geometric.GeometricInputs`).
        minibatch : int, optional
            Views per DPT/pose-head call (bounds memory); default all at once.
        record : dict, optional
            Receives intermediates under the fixture names (tests and debugging).

        Returns
        -------
        dict of ``[V, ...]`` tensors: ``pts3d``, ``pts3d_cam`` ``[V, H, W, 3]``,
        ``ray_directions`` ``[V, H, W, 3]``, ``depth_along_ray`` ``[V, H, W, 1]``, ``conf``,
        ``non_ambiguous_mask``, ``non_ambiguous_mask_logits`` ``[V, H, W]``, ``cam_trans``
        ``[V, 3]``, ``cam_quats`` ``[V, 4]``, ``metric_scaling_factor`` ``[V, 1]``.

        """
        views, _, height, width = images.shape
        patch = self.config.patch_size
        h, w = height // patch, width // patch
        tokens, cls = self.encoder(images)
        dtype = self.fusion_norm_layer.weight.dtype
        with autocast_off(images.device.type):
            x = tokens.to(dtype)
            prior = encode_priors(self, geo, dtype, record)
            if prior is not None:
                x = x + prior
            if record is not None:
                record.update(enc_features=tokens, enc_cls=cls, fused_prenorm=x)
            fused = self.fusion_norm_layer(x)
        taps = self.info_sharing(fused, cls, self.scale_token, self.config.taps, record)
        with autocast_off(images.device.type):
            maps = [fused] + [t[0, :-1].reshape(views, h * w + 1, -1)[:, :h * w] for t in taps]
            maps = [m.to(dtype).transpose(1, 2).reshape(views, -1, h, w) for m in maps]
            scale_in = taps[-1][:, -1].to(dtype)
            if record is not None:
                record.update({f'dpt_tap{i}': m for i, m in enumerate(maps)})
                record['scale_token_out'] = scale_in
            return self._heads(maps, scale_in, (height, width), minibatch, record)

    def _heads(self, maps, scale_in, size, minibatch, record):
        views = maps[0].shape[0]
        step = views if not minibatch or minibatch <= 0 else int(minibatch)
        dense, pose = [], []
        for start in range(0, views, step):
            part = [m[start:start + step] for m in maps]
            dense.append(self.dense_head[1](self.dense_head[0](part), size))
            pose.append(self.pose_head(part[-1]))
        dense_raw, pose_raw = torch.cat(dense), torch.cat(pose)
        scale_raw = self.scale_head(scale_in)  # [1, 1]
        if record is not None:
            record.update(dense_raw=dense_raw, pose_raw=pose_raw, scale_raw=scale_raw)
        out = dense_adaptor(dense_raw)
        trans, quats = pose_adaptor(pose_raw)
        scale = scale_adaptor(scale_raw).expand(views, 1)
        rays, depth = out['ray_directions'], out['depth_along_ray']
        cam = rays * depth
        rot = quaternion_to_matrix(quats)
        world = torch.einsum('vij,vhwj->vhwi', rot, cam) + trans[:, None, None, :]
        s = scale.view(views, 1, 1, 1)
        out.update(pts3d=world * s, pts3d_cam=cam * s, depth_along_ray=depth * s,
                   cam_trans=trans * scale, cam_quats=quats, metric_scaling_factor=scale)
        return out

    # ----------------------------------------------------------------------------------------
    def infer(self, views: List[Dict[str, object]], **options) -> List[Dict[str, torch.Tensor]]:
        """Upstream's ``infer``: see :func:`aetherscan_ros.models.mapanything.inference.infer`."""
        from aetherscan_ros.models.mapanything.inference import infer
        return infer(self, views, **options)

    @property
    def is_random(self) -> bool:
        """Whether the weights came from ``write_random_checkpoint`` (not a trained model)."""
        return bool(self.weights_info.get('random', False))

    def num_parameters(self) -> int:
        """Return the number of parameters."""
        return sum(p.numel() for p in self.parameters())

    def reset_buffers(self, device=None) -> None:
        """Recompute the constant buffers (after ``to_empty``)."""
        self.info_sharing.reset_buffers(device)

    @classmethod
    def from_pretrained(cls, path_or_repo_id: Union[str, Path] = '',
                        device: Union[str, torch.device] = 'cpu',
                        dtype: torch.dtype = torch.float32) -> 'MapAnything':
        """
        Load a checkpoint directory (``config.json`` + ``model.safetensors``) or a hub repo.

        Local directories never touch the network; an ``owner/name`` id goes through
        huggingface_hub (its cache; ``HF_HUB_OFFLINE`` honoured). Keys are checked strictly
        (upstream aliases folded). Built on the meta device and assigned, so peak memory is
        one copy of the weights. Returns the model in eval mode.
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
