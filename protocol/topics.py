"""Topic names of the device protocol.

>>> vitals_topic("w-001")
'eldercare/v1/devices/w-001/vitals'
>>> parse_topic("eldercare/v1/devices/w-001/vitals")
('w-001', 'vitals')
>>> parse_topic("eldercare/v1/devices/bad id/vitals") is None
True
"""

from __future__ import annotations

import re
from typing import Literal

ROOT = "eldercare/v1/devices"
Channel = Literal["vitals", "location", "event", "status", "cmd"]
UPLINK: tuple[Channel, ...] = ("vitals", "location", "event", "status")
DEVICE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
UPLINK_SUBSCRIPTION = f"{ROOT}/+/+"


def topic(device_id: str, channel: Channel) -> str:
    return f"{ROOT}/{device_id}/{channel}"


def vitals_topic(device_id: str) -> str:
    return topic(device_id, "vitals")


def parse_topic(name: str) -> tuple[str, Channel] | None:
    """(device_id, channel) of an uplink topic, or None when it is not one."""
    parts = name.split("/")
    if len(parts) != 5 or "/".join(parts[:3]) != ROOT:
        return None
    device_id, channel = parts[3], parts[4]
    if channel not in UPLINK or not DEVICE_ID.match(device_id):
        return None
    return device_id, channel  # type: ignore[return-value]
