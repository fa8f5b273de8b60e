# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""
The licence each backend's model comes with, as results, events and ``aetherscan doctor`` say.

Our own code is Apache-2.0. What differs is the weights (and the libraries) a backend runs:
the user must know when a cloud came out of non-commercial weights. MapAnything's licence is
decided per checkpoint (``backends/mapanything_inputs.py`` :func:`checkpoint_licence`).
"""

FAST3R = ('CC BY-NC 4.0: non-commercial use only (Fast3R weights, FAIR non-commercial licence '
          'per upstream facebookresearch/fast3r; our port of the code: Apache-2.0)')
CLASSICAL = ('no learned weights: COLMAP/pycolmap BSD-3-Clause, OpenCV Apache-2.0, '
             'aetherscan_ros Apache-2.0')
RANDOM = 'none: random test weights made here (not a trained model, no upstream weights)'
MAPANYTHING_APACHE = ('Apache-2.0 (MapAnything weights facebook/map-anything-apache; code '
                      'Apache-2.0)')
MAPANYTHING_NONCOMMERCIAL = ('CC BY-NC 4.0: non-commercial use only (MapAnything weights '
                             'facebook/map-anything; code Apache-2.0)')
MAPANYTHING_UNKNOWN = ('unknown: this MapAnything checkpoint names no licence; check its model '
                       'card (facebook/map-anything-apache is Apache-2.0, facebook/map-anything '
                       'CC BY-NC 4.0)')


def of_backend(backend) -> str:
    """Return the licence of what ``backend`` runs (its ``licence`` attribute, else by name)."""
    licence = getattr(backend, 'licence', '')
    if licence:
        return str(licence)
    name = getattr(backend, 'name', '')
    if name == 'fast3r':
        model = getattr(backend, 'model', None)
        return RANDOM if getattr(model, 'is_random', False) else FAST3R
    if name == 'classical':
        return CLASSICAL
    return 'unknown'
