# Copyright 2026 The AetherScan ROS Authors
# SPDX-License-Identifier: Apache-2.0
"""``~/events``: one JSON object per ``std_msgs/String`` (``{"event": name, ...fields}``)."""

import json
import math

import numpy as np
from std_msgs.msg import String


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def event_msg(event: str, **fields) -> String:
    """Return a ``std_msgs/String`` holding ``{"event": event, **fields}`` as JSON."""
    payload = {'event': event}
    payload.update(fields)
    for key, value in payload.items():
        if isinstance(value, float) and not math.isfinite(value):
            payload[key] = None
    return String(data=json.dumps(payload, default=_json_default, sort_keys=False))


def parse_event(msg) -> dict:
    """Return the dict of an ``~/events`` message (``std_msgs/String`` or its JSON text)."""
    return json.loads(msg if isinstance(msg, str) else msg.data)
