"""SOS: the elder pressed the emergency button.  Raised at once, every time, never suppressed.

Nothing withdraws an SOS: not a ``cancel`` ("I'm OK" withdraws a fall, not a call for
help), not a previous SOS a moment ago (each press is raised; the alert lifecycle
merges presses into the one open alert), not the device being off the wrist.  The
rule therefore keeps no state.

>>> from datetime import datetime, timezone
>>> from protocol.messages import Event
>>> t = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)
>>> [(f.kind, f.severity.value, f.action.value) for f in SosRule().update(Event("w1", 7, t, "sos"))]
[('sos', 'critical', 'raise')]
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from alerts.core import Finding, Severity
from protocol.messages import Event, Reading


class SosRule:
    """One elder's SOS rule (no settings: an SOS is never configurable away)."""

    kind = "sos"

    def update(self, reading: Reading) -> list[Finding]:
        if not (isinstance(reading, Event) and reading.type == "sos"):
            return []
        return [
            Finding(
                kind=self.kind,
                severity=Severity.CRITICAL,
                ts=reading.ts,
                message="紧急呼叫：老人按下了 SOS 键",
                detail={"episode": "open", "seq": reading.seq},
            )
        ]

    def advance(self, now: datetime) -> list[Finding]:
        return []

    def snapshot(self) -> dict[str, Any]:
        return {}

    def restore(self, state: dict[str, Any]) -> None:
        return None
