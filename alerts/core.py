"""The common shape of every detection rule: typed readings in, findings out, no I/O.

A rule is one elder's small stateful object (river's ``learn_one``/``score_one``
spirit): ``update`` is fed that elder's readings in event-time order, ``advance``
moves event time forward with no reading (what lets "nothing happened for too long"
rules fire), and ``snapshot``/``restore`` carry its whole state as plain data so a
worker restart or a hand-over to another worker forgets nothing.  No rule ever
reads the wall clock, the database or MQTT.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from protocol.messages import Reading


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Action(StrEnum):
    RAISE = "raise"  # the condition holds (again): open or update the episode
    CLEAR = "clear"  # the condition is over (e.g. a fall withdrawn by "I'm OK")


@dataclass(frozen=True, slots=True)
class Finding:
    """What a rule says about one elder at one event time."""

    kind: str  # alert kind: "sos", "fall", "news2_hr", "geofence_exit", ...
    severity: Severity
    ts: datetime  # event time the finding refers to
    message: str  # one line a person reads, zh-CN first
    action: Action = Action.RAISE
    value: float | None = None  # the number that triggered it, if any
    detail: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Rule(Protocol):
    """One rule for one elder.  ``settings`` are per-elder thresholds with defaults."""

    kind: str

    def update(self, reading: Reading) -> list[Finding]:
        """Feed one reading (event-time ordered); return what it reveals."""
        ...

    def advance(self, now: datetime) -> list[Finding]:
        """Event time moved to ``now`` with no reading; return timeouts that fired."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-able plain data."""
        ...

    def restore(self, state: dict[str, Any]) -> None:
        """Load a state produced by ``snapshot`` (of the same rule and settings)."""
        ...
