"""Simulated time: integer epoch milliseconds, and the community's local day (UTC+8).

Asia/Shanghai has had no daylight saving since 1991, so local days are plain
24-hour blocks offset by eight hours; integer milliseconds keep every computation
exact and every run byte-identical.

>>> local_day_start(ms(datetime(2026, 11, 28, 15, 30, tzinfo=UTC)))  # 23:30 local
1795795200000
>>> to_datetime(1795795200000).isoformat()
'2026-11-27T16:00:00+00:00'
>>> local_hour(1795795200000)
0.0
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np

SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
LOCAL_OFFSET = 8 * HOUR
LOCAL_TZ = timezone(timedelta(hours=8))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ms(dt: datetime) -> int:
    """Aware datetime → epoch milliseconds."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime: give a timezone")
    return (dt - _EPOCH) // timedelta(milliseconds=1)


def to_datetime(t: int) -> datetime:
    """Epoch milliseconds → aware UTC datetime."""
    return _EPOCH + timedelta(milliseconds=t)


def local_day_start(t: int) -> int:
    """Epoch ms of the local (UTC+8) midnight at or before ``t``."""
    return (t + LOCAL_OFFSET) // DAY * DAY - LOCAL_OFFSET


def local_day_number(t: int) -> int:
    """Days since 1970-01-01 local time; a stable key for per-day random streams."""
    return (t + LOCAL_OFFSET) // DAY


def local_hour(t: int | np.ndarray) -> float | np.ndarray:
    """Hours since local midnight (0 ≤ h < 24)."""
    return ((t + LOCAL_OFFSET) % DAY) / HOUR


def iso_utc(t: int) -> str:
    """Epoch ms → ISO 8601 in UTC with milliseconds, e.g. for ground truth."""
    return to_datetime(t).isoformat(timespec="milliseconds")
