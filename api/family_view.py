"""What a family member is shown about their elder: pure decisions, no I/O.

Three questions, answered from rows the routes read:

* *safe or alert?*  Any unresolved alert of medium severity or more is "alert"; a
  low one (a battery running down, the watch off the wrist) is listed but does not
  turn the big status red — a daughter at work should not be frightened by a charger.
* *where?*  Coarse by default: the fix is snapped to the centre of a 500 m grid cell,
  so the page says "near here" without showing the elder's door.  While a critical
  alert is unresolved (an SOS, a confirmed fall) the precise fix is shown, with the
  reason, because then the family may be the first to get there.
* *which day?*  "Today" is the Asia/Shanghai calendar day, whatever the server's zone.

>>> coarse = coarsen(34.86712, 110.44731)
>>> round(coarse.lat, 5), round(coarse.lon, 5), coarse.cell_m
(34.86892, 110.44732, 500)
>>> status_of([{"severity": "low", "state": "open"}])
'safe'
>>> status_of([{"severity": "high", "state": "acknowledged"}])
'alert'
>>> shanghai_day(datetime(2026, 12, 3, 16, 30, tzinfo=UTC))
(datetime.datetime(2026, 12, 3, 16, 0, tzinfo=datetime.timezone.utc), datetime.datetime(2026, 12, 4, 16, 0, tzinfo=datetime.timezone.utc))
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final, Literal

SHANGHAI: Final = timezone(timedelta(hours=8), "Asia/Shanghai")  # no DST since 1991
GRID_M: Final = 500
_M_PER_DEG_LAT: Final = 111_195.0
# Alerts a family member is told about in the big status; "low" ones are listed only.
ALERTING: Final = frozenset({"medium", "high", "critical"})

Status = Literal["safe", "alert"]


@dataclass(frozen=True, slots=True)
class CoarseFix:
    lat: float
    lon: float
    cell_m: int  # the side of the grid cell the elder is somewhere in


def coarsen(lat: float, lon: float, cell_m: int = GRID_M) -> CoarseFix:
    """The centre of the ``cell_m`` grid cell holding (lat, lon).

    The cell's width in longitude is taken at the cell row's own latitude, so every
    point of one row snaps to the same centres (no jitter as the elder walks).
    """
    dlat = cell_m / _M_PER_DEG_LAT
    row = math.floor(lat / dlat)
    centre_lat = (row + 0.5) * dlat
    dlon = cell_m / (_M_PER_DEG_LAT * max(math.cos(math.radians(centre_lat)), 1e-6))
    col = math.floor(lon / dlon)
    return CoarseFix(centre_lat, (col + 0.5) * dlon, cell_m)


def unresolved(alerts: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [a for a in alerts if a["state"] != "resolved"]


def status_of(open_alerts: Iterable[Mapping[str, Any]]) -> Status:
    """'alert' when any unresolved alert is medium or worse, else 'safe'."""
    return "alert" if any(a["severity"] in ALERTING for a in unresolved(open_alerts)) else "safe"


def precise_reason(open_alerts: Iterable[Mapping[str, Any]]) -> str | None:
    """Why the precise position may be shown, or None (then it is coarse)."""
    critical = sorted({a["kind"] for a in unresolved(open_alerts) if a["severity"] == "critical"})
    return f"open critical alert: {', '.join(critical)}" if critical else None


def location(
    latest: Mapping[str, Any] | None,
    open_alerts: Iterable[Mapping[str, Any]],
    area: str | None,
) -> dict[str, Any] | None:
    """The position a family member sees (see the module docstring), or None."""
    if latest is None or latest.get("lat") is None or latest.get("lon") is None:
        return None
    reason = precise_reason(open_alerts)
    out: dict[str, Any] = {"ts": latest.get("pos_ts"), "area": area}
    if reason is not None:
        out.update(
            precision="precise",
            reason=reason,
            lat=latest["lat"],
            lon=latest["lon"],
            acc_m=latest.get("acc"),
        )
    else:
        c = coarsen(latest["lat"], latest["lon"])
        out.update(
            precision="coarse",
            reason=f"rounded to a {c.cell_m} m grid: the precise position is shown only"
            " during a critical alert",
            lat=round(c.lat, 6),
            lon=round(c.lon, 6),
            acc_m=float(c.cell_m),
        )
    return out


def shanghai_day(now: datetime) -> tuple[datetime, datetime]:
    """The Asia/Shanghai calendar day holding ``now``, as a UTC half-open range."""
    local = now.astimezone(SHANGHAI)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)
