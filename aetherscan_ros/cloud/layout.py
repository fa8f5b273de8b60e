# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The PointCloud2 wire layout of our clouds and the chunk marker field (plain data, no rclpy).

The wire layout of one point (``POINT_STEP`` = 24 bytes, little endian)::

    offset  0  x           float32
    offset  4  y           float32
    offset  8  z           float32
    offset 12  rgb         float32  (bytes B, G, R, 0: uint32 0x00RRGGBB, as RViz reads it)
    offset 16  confidence  float32
    offset 20  view        uint16
    offset 22  padding     2 bytes, zero (the chunk marker field points here, see below)

Chunk identification (see ``docs/point_streaming.md``): a chunk carries one extra
``PointField`` named ``aetherscan_chunk:recon=R:index=I:count=C:last=L`` (UINT8, count 1,
offset 22, inside the padding). ``count=0`` means the total is not known yet and the chunk with
``last=1`` closes the reconstruction. A real one-byte field keeps the message valid for RViz
(which ignores fields it does not use) and for ``sensor_msgs_py.read_points`` (whose
``dtype_from_fields`` rejects ``count == 0`` fields).
"""

from dataclasses import dataclass
import re
from typing import Optional, Tuple

import numpy as np

# sensor_msgs/PointField datatype constants (interface facts; no rclpy import here).
INT8, UINT8, INT16, UINT16, INT32, UINT32, FLOAT32, FLOAT64 = range(1, 9)

POINT_STEP = 24
CHUNK_FIELD_PREFIX = 'aetherscan_chunk'
CHUNK_FIELD_OFFSET = 22


@dataclass(frozen=True)
class FieldSpec:
    """One ``sensor_msgs/PointField`` as plain data (``datatype`` is a PointField constant)."""

    name: str
    offset: int
    datatype: int
    count: int = 1


CLOUD_FIELDS: Tuple[FieldSpec, ...] = (
    FieldSpec('x', 0, FLOAT32),
    FieldSpec('y', 4, FLOAT32),
    FieldSpec('z', 8, FLOAT32),
    FieldSpec('rgb', 12, FLOAT32),
    FieldSpec('confidence', 16, FLOAT32),
    FieldSpec('view', 20, UINT16),
)

# The packed layout as a numpy structured dtype (little endian, 24 bytes).
CLOUD_DTYPE = np.dtype({
    'names': ['xyz', 'rgb', 'confidence', 'view'],
    'formats': [('<f4', (3,)), '<u4', '<f4', '<u2'],
    'offsets': [0, 12, 16, 20],
    'itemsize': POINT_STEP,
})


# --------------------------------------------------------------------------------------------
# Chunk identification
# --------------------------------------------------------------------------------------------

_CHUNK_RE = re.compile(r'^aetherscan_chunk((?::[a-z_]+=[0-9]+)*)$')


@dataclass(frozen=True)
class ChunkInfo:
    """
    Which reconstruction a chunk belongs to and where it goes.

    ``recon`` increases with every reconstruction of one publisher; ``index`` counts chunks of
    that reconstruction from 0; ``count`` is the number of chunks, or 0 while unknown (then the
    chunk with ``last=True`` closes the reconstruction; it may be empty). ``session`` tells the
    publishing node's runs apart (the node uses its start time in ms): a restarted node starts
    its ``recon`` at 1 again, and a receiver orders chunks by ``(session, recon)``. 0 = not
    given (markers written before the field existed), encoded without the pair.
    """

    recon: int
    index: int
    count: int = 0
    last: bool = False
    session: int = 0

    def __post_init__(self):
        """Check the fields are consistent."""
        if self.recon < 0 or self.index < 0 or self.count < 0 or self.session < 0:
            raise ValueError(f'chunk info fields must be >= 0: {self}')
        if self.count and self.index >= self.count:
            raise ValueError(f'chunk index {self.index} out of range for count {self.count}')
        if self.count and self.last != (self.index == self.count - 1):
            raise ValueError(f'chunk {self.index} of {self.count}: last must be set exactly on '
                             f'the final chunk')

    def encode(self) -> str:
        """Return the PointField name that carries this info."""
        session = f':session={self.session}' if self.session else ''
        return (f'{CHUNK_FIELD_PREFIX}:recon={self.recon}:index={self.index}'
                f':count={self.count}:last={int(self.last)}{session}')

    def field(self) -> FieldSpec:
        """Return the marker :class:`FieldSpec` (UINT8 in the padding of the 24-byte point)."""
        return FieldSpec(self.encode(), CHUNK_FIELD_OFFSET, UINT8, 1)

    @classmethod
    def decode(cls, name: str) -> 'ChunkInfo':
        """
        Parse a marker field name; unknown extra ``key=value`` pairs are ignored.

        Raises
        ------
        ValueError
            when ``name`` is not a well-formed chunk marker.

        """
        match = _CHUNK_RE.match(name)
        if not match:
            raise ValueError(f'not an aetherscan chunk marker: {name!r}')
        pairs = dict(item.split('=') for item in match.group(1).split(':')[1:])
        try:
            return cls(recon=int(pairs['recon']), index=int(pairs['index']),
                       count=int(pairs.get('count', 0)), last=pairs.get('last', '0') == '1',
                       session=int(pairs.get('session', 0)))
        except KeyError as exc:
            raise ValueError(f'chunk marker {name!r} lacks {exc.args[0]}') from None

    @property
    def key(self) -> Tuple[int, int]:
        """Return ``(session, recon)``: the order of reconstructions across node restarts."""
        return self.session, self.recon

    @classmethod
    def from_fields(cls, fields) -> Optional['ChunkInfo']:
        """Return the info carried by a field list (FieldSpec or PointField), or None."""
        for f in fields:
            if f.name.startswith(CHUNK_FIELD_PREFIX + ':'):
                return cls.decode(f.name)
        return None


def cloud_fields(chunk_info: Optional[ChunkInfo] = None) -> Tuple[FieldSpec, ...]:
    """Return the field list of our layout, with the chunk marker appended when given."""
    if chunk_info is None:
        return CLOUD_FIELDS
    return CLOUD_FIELDS + (chunk_info.field(),)
