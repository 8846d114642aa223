"""The alert lifecycle as pure data and functions: states, outcomes, the rules that
decide what a finding does to an episode.  No I/O and no clock: ``now`` is passed in.

An alert is one *episode* of one kind for one elder: ``open`` -> ``acknowledged``
(a person saw it) -> ``resolved`` (with an outcome).  The transition table is the
only place that says what may follow what; anything else raises
:class:`IllegalTransition`, which the API turns into a 409.

>>> transition(AlertState.OPEN, AlertAction.ACKNOWLEDGE)
<AlertState.ACKNOWLEDGED: 'acknowledged'>
>>> transition(AlertState.RESOLVED, AlertAction.ACKNOWLEDGE)
Traceback (most recent call last):
...
alerts.lifecycle.IllegalTransition: cannot acknowledge an alert that is resolved
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from alerts.core import Severity


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


ACTIVE_STATES: Final = frozenset({AlertState.OPEN, AlertState.ACKNOWLEDGED})


class Outcome(StrEnum):
    HANDLED = "handled"
    FALSE_ALARM = "false_alarm"
    HOSPITAL = "hospital"  # sent to hospital
    TRANSFERRED = "transferred"  # handed to another service (120, the family, ...)
    NO_ACTION = "no_action"
    DUPLICATE = "duplicate"
    SELF_CLEARED = "self_cleared"  # the condition ended by itself (system only)
    WITHDRAWN = "withdrawn"  # the elder pressed "I'm OK" in time (system only)


SYSTEM_OUTCOMES: Final = frozenset({Outcome.SELF_CLEARED, Outcome.WITHDRAWN})
PERSON_OUTCOMES: Final = frozenset(Outcome) - SYSTEM_OUTCOMES


class AlertAction(StrEnum):
    """What a person (or the system) does to an alert's state."""

    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"


TRANSITIONS: Final[Mapping[tuple[AlertState, AlertAction], AlertState]] = MappingProxyType(
    {
        (AlertState.OPEN, AlertAction.ACKNOWLEDGE): AlertState.ACKNOWLEDGED,
        # Resolving an open alert directly: the system's auto-resolve; a person's
        # resolve of an open alert is recorded as acknowledge + resolve.
        (AlertState.OPEN, AlertAction.RESOLVE): AlertState.RESOLVED,
        (AlertState.ACKNOWLEDGED, AlertAction.RESOLVE): AlertState.RESOLVED,
    }
)


class IllegalTransition(ValueError):
    """``action`` is not allowed in ``state`` (the API's 409, with the current state)."""

    def __init__(self, state: AlertState, action: AlertAction) -> None:
        super().__init__(f"cannot {action.value} an alert that is {state.value}")
        self.state = state
        self.action = action


def transition(state: AlertState | str, action: AlertAction | str) -> AlertState:
    """The state after ``action``, or :class:`IllegalTransition`."""
    s, a = AlertState(state), AlertAction(action)
    try:
        return TRANSITIONS[(s, a)]
    except KeyError:
        raise IllegalTransition(s, a) from None


# --- severity ------------------------------------------------------------------------

SEVERITY_RANK: Final[Mapping[Severity, int]] = MappingProxyType(
    {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}
)


def rank(severity: Severity | str) -> int:
    """The severity's place in low < medium < high < critical.

    >>> rank("high") > rank("medium")
    True
    """
    return SEVERITY_RANK[Severity(severity)]


def raised(current: Severity | str, finding: Severity | str) -> Severity:
    """An episode's severity after a finding: it rises, it is never lowered automatically
    (a person decides when a critical alert is less urgent).

    >>> raised("high", "critical").value, raised("critical", "high").value
    ('critical', 'critical')
    """
    a, b = Severity(current), Severity(finding)
    return b if rank(b) > rank(a) else a


# --- policy: cooldown, incidents, clears -----------------------------------------------

# An SOS is a person asking for help: never suppressed, never resolved by the system.
NEVER_SUPPRESSED: Final = frozenset({"sos"})
NEVER_AUTO_RESOLVED: Final = frozenset({"sos"})
WITHDRAWABLE: Final = frozenset({"fall"})  # a CLEAR means "I'm OK": withdrawn, not cleared

# Kinds a person would see as one event when they happen to the same elder close
# together (a fall, then no movement, then an SOS, then the pulse going up).
RELATED_KINDS: Final = frozenset({"fall", "sos", "inactivity", "device_offline"})
RELATED_PREFIXES: Final = ("news2_",)

_DEFAULT_COOLDOWNS: Final = MappingProxyType({"sos": 0.0})


@dataclass(frozen=True, slots=True)
class Policy:
    """Lifecycle settings.  ``cooldown_s`` overrides ``default_cooldown_s`` per kind."""

    default_cooldown_s: float = 600.0
    cooldown_s: Mapping[str, float] = field(default_factory=lambda: _DEFAULT_COOLDOWNS)
    incident_window_s: float = 900.0

    def cooldown_for(self, kind: str) -> float:
        """Seconds after a resolve during which the same condition is counted, not opened.

        >>> Policy().cooldown_for("sos"), Policy().cooldown_for("news2_hr")
        (0.0, 600.0)
        """
        if kind in NEVER_SUPPRESSED:
            return 0.0  # whatever the configuration says
        return float(self.cooldown_s.get(kind, self.default_cooldown_s))


@dataclass(frozen=True, slots=True)
class Resolved:
    """The newest resolved alert of an elder and kind, as far as cooldown cares."""

    severity: Severity | str
    resolved_at: datetime


def suppressed(
    policy: Policy, kind: str, severity: Severity | str, last: Resolved | None, now: datetime
) -> bool:
    """Whether a RAISE with no active episode is counted on ``last`` instead of opening one.

    Within the kind's cooldown after a resolve the same condition flapping back is the
    same event (alarm fatigue); a finding more severe than what was resolved is news.

    >>> from datetime import timedelta, timezone
    >>> t = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)
    >>> last = Resolved("medium", t)
    >>> suppressed(Policy(), "inactivity", "medium", last, t + timedelta(minutes=9))
    True
    >>> suppressed(Policy(), "inactivity", "high", last, t + timedelta(minutes=9))
    False
    >>> suppressed(Policy(), "inactivity", "medium", last, t + timedelta(minutes=11))
    False
    """
    if last is None or kind in NEVER_SUPPRESSED:
        return False
    if rank(severity) > rank(last.severity):
        return False
    elapsed = (now - last.resolved_at).total_seconds()
    return elapsed < policy.cooldown_for(kind)


def clear_outcome(kind: str, severity: Severity | str) -> Outcome | None:
    """What a CLEAR finding does to an active alert: the outcome it is resolved with,
    or None when only ``cleared_at`` is noted and a person must resolve it.

    >>> clear_outcome("news2_spo2", "high"), clear_outcome("fall", "critical")
    (<Outcome.SELF_CLEARED: 'self_cleared'>, <Outcome.WITHDRAWN: 'withdrawn'>)
    >>> clear_outcome("news2_partial", "critical") is None, clear_outcome("sos", "low") is None
    (True, True)
    """
    if kind in NEVER_AUTO_RESOLVED:
        return None
    if kind in WITHDRAWABLE:
        return Outcome.WITHDRAWN
    if Severity(severity) is Severity.CRITICAL:
        return None  # the condition eased, but someone should still have looked
    return Outcome.SELF_CLEARED


def related(a: str, b: str) -> bool:
    """Whether alerts of kinds ``a`` and ``b`` of one elder can be one incident.

    >>> related("fall", "inactivity"), related("sos", "news2_hr"), related("fall", "low_battery")
    (True, True, False)
    """
    return _incident_kind(a) and _incident_kind(b)


def _incident_kind(kind: str) -> bool:
    return kind in RELATED_KINDS or kind.startswith(RELATED_PREFIXES)


@dataclass(frozen=True, slots=True)
class Active:
    """Another active alert of the same elder, as far as incident merging cares."""

    kind: str
    incident_id: int
    opened_at: datetime


def incident_for(policy: Policy, kind: str, now: datetime, others: Iterable[Active]) -> int | None:
    """The incident a new alert of ``kind`` joins, or None to start its own.

    It joins the most recently opened related active alert opened within
    ``incident_window_s`` before ``now``.

    >>> from datetime import timedelta, timezone
    >>> t = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)
    >>> fall = Active("fall", 41, t)
    >>> incident_for(Policy(), "inactivity", t + timedelta(minutes=5), [fall])
    41
    >>> incident_for(Policy(), "inactivity", t + timedelta(minutes=20), [fall]) is None
    True
    """
    best: Active | None = None
    for other in others:
        if other.kind == kind or not related(kind, other.kind):
            continue
        # abs(): another worker's clock may be a little ahead of ours.
        if abs((now - other.opened_at).total_seconds()) > policy.incident_window_s:
            continue
        if best is None or other.opened_at > best.opened_at:
            best = other
    return None if best is None else best.incident_id
