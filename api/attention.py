"""Does an elder's newest state need a person to look?  (The map's red dot.)

A first cut from the latest state alone; the detection core's open alerts take
over this job as they arrive.

>>> from datetime import datetime, timezone
>>> now = datetime(2026, 11, 28, 8, 0, tzinfo=timezone.utc)
>>> attention_reasons({"hr": 150, "worn": True}, now)
['hr_high']
>>> attention_reasons({"event_type": "sos", "event_ts": now}, now)
['sos']
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

EVENT_WINDOW = timedelta(minutes=30)
HR_HIGH, HR_LOW, SPO2_LOW, BATTERY_LOW = 130, 40, 90, 10


def attention_reasons(state: Mapping[str, Any], now: datetime) -> list[str]:
    reasons: list[str] = []
    event, event_ts = state.get("event_type"), state.get("event_ts")
    if event in ("sos", "fall") and event_ts is not None and now - event_ts <= EVENT_WINDOW:
        reasons.append(event)
    worn = state.get("worn") is not False
    hr, spo2 = state.get("hr"), state.get("spo2")
    if worn and hr is not None and hr >= HR_HIGH:
        reasons.append("hr_high")
    if worn and hr is not None and hr <= HR_LOW:
        reasons.append("hr_low")
    if worn and spo2 is not None and spo2 < SPO2_LOW:
        reasons.append("spo2_low")
    if state.get("online") is False:
        reasons.append("offline")
    battery = state.get("battery")
    if battery is not None and battery < BATTERY_LOW:
        reasons.append("low_battery")
    if state.get("worn") is False:
        reasons.append("not_worn")
    return reasons
