"""Who else must hear about an alert nobody has acknowledged, and when.  Pure.

Level 0 is the on-duty staff, who see every alert the moment it opens.  An
unacknowledged CRITICAL alert climbs to the supervisor, the family and the emergency
number at fixed delays *from opening*; a HIGH one only reaches the supervisor.  The
shell (``api/escalator.py``) asks :func:`due` what to record; it never skips a level.

>>> from datetime import timedelta, timezone
>>> t0 = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)
>>> a = AlertView(state="open", severity="critical", opened_at=t0, escalation_level=0)
>>> due(a, t0 + timedelta(minutes=1)), due(a, t0 + timedelta(minutes=6))
([], [1, 2])
>>> due(AlertView("acknowledged", "critical", t0, 0), t0 + timedelta(hours=1))
[]
>>> due(AlertView("open", "high", t0, 0), t0 + timedelta(minutes=30))
[1]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from types import MappingProxyType
from typing import Any, Final

from alerts.core import Severity
from alerts.lifecycle import AlertState


class Level(IntEnum):
    ON_DUTY = 0  # 值班人员: the dashboard, from the first second
    SUPERVISOR = 1  # 主管
    FAMILY = 2  # 家属
    EMERGENCY_NUMBER = 3  # the emergency number on the elder's file (e.g. 120)


# Per severity: (level, seconds after opening).  Severities not listed never escalate.
Ladder = Mapping[Severity, tuple[tuple[int, float], ...]]
DEFAULT_LADDER: Final[Ladder] = MappingProxyType(
    {
        Severity.CRITICAL: (
            (Level.SUPERVISOR, 120.0),
            (Level.FAMILY, 300.0),
            (Level.EMERGENCY_NUMBER, 600.0),
        ),
        Severity.HIGH: ((Level.SUPERVISOR, 600.0),),
    }
)
TOP_LEVEL: Final = max(Level)


@dataclass(frozen=True, slots=True)
class AlertView:
    """What escalation needs to know about an alert."""

    state: AlertState | str
    severity: Severity | str
    opened_at: datetime
    escalation_level: int  # the highest level already recorded (0: on-duty only)

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> AlertView:
        """From an alert row (a dict with at least these four keys)."""
        return cls(row["state"], row["severity"], row["opened_at"], row["escalation_level"])


def due(alert: AlertView, now: datetime, ladder: Ladder = DEFAULT_LADDER) -> list[int]:
    """The levels that are due at ``now`` and not yet recorded, lowest first."""
    if AlertState(alert.state) is not AlertState.OPEN:
        return []
    elapsed = (now - alert.opened_at).total_seconds()
    return [
        int(level)
        for level, after_s in ladder.get(Severity(alert.severity), ())
        if level > alert.escalation_level and elapsed >= after_s
    ]


def delay_of(level: int, severity: Severity | str, ladder: Ladder = DEFAULT_LADDER) -> float | None:
    """Seconds after opening at which ``level`` is due for ``severity`` (None: never).

    >>> delay_of(2, "critical"), delay_of(2, "high")
    (300.0, None)
    """
    return next((s for lv, s in ladder.get(Severity(severity), ()) if lv == level), None)
