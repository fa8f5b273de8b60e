# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
Point-cloud packing, level of detail and chunked streaming (numpy only, no rclpy).

Submodules:

* :mod:`~aetherscan_ros.cloud.layout`: the 24-byte wire layout, :class:`FieldSpec`, the
  chunk marker :class:`ChunkInfo` and :func:`cloud_fields`.
* :mod:`~aetherscan_ros.cloud.arrays`: :class:`CloudArrays` and :func:`as_cloud`.
* :mod:`~aetherscan_ros.cloud.packing`: packing into ``msg.data`` bytes (C packer
  ``_cloudpack`` or numpy, :data:`PACKER`), buffers, :func:`unpack_cloud`.
* :mod:`~aetherscan_ros.cloud.lod`: voxel downsampling, point budget, confidence filter.
* :mod:`~aetherscan_ros.cloud.chunks`: :class:`ChunkStream` and :class:`ChunkAssembler`.

Everything public is re-exported here: ``from aetherscan_ros.cloud import pack_cloud``.
Private state (``_CPACK``, ``_PACK_THREADS``, ...) lives in the submodule that uses it.
"""

from aetherscan_ros.cloud.arrays import as_cloud, CloudArrays
from aetherscan_ros.cloud.chunks import (chunk_points_for_bytes, chunk_ranges, ChunkAssembler,
                                         ChunkStream)
from aetherscan_ros.cloud.layout import (CHUNK_FIELD_OFFSET, CHUNK_FIELD_PREFIX, ChunkInfo,
                                         CLOUD_DTYPE, CLOUD_FIELDS, cloud_fields, FieldSpec,
                                         FLOAT32, FLOAT64, INT16, INT32, INT8, POINT_STEP,
                                         UINT16, UINT32, UINT8)
from aetherscan_ros.cloud.lod import confidence_filter, point_budget, voxel_downsample
from aetherscan_ros.cloud.packing import (alloc_buffer, pack_cloud, pack_into, pack_rgb,
                                          pack_to_buffer, PACKER, resize_buffer, unpack_cloud,
                                          unpack_rgb)

__all__ = [
    'CHUNK_FIELD_OFFSET', 'CHUNK_FIELD_PREFIX', 'CLOUD_DTYPE', 'CLOUD_FIELDS', 'ChunkAssembler',
    'ChunkInfo', 'ChunkStream', 'CloudArrays', 'FLOAT32', 'FLOAT64', 'FieldSpec', 'INT16',
    'INT32', 'INT8', 'PACKER', 'POINT_STEP', 'UINT16', 'UINT32', 'UINT8', 'alloc_buffer',
    'as_cloud', 'chunk_points_for_bytes', 'chunk_ranges', 'cloud_fields', 'confidence_filter',
    'pack_cloud', 'pack_into', 'pack_rgb', 'pack_to_buffer', 'point_budget', 'resize_buffer',
    'unpack_cloud', 'unpack_rgb', 'voxel_downsample',
]
