"""Who must hear about an unacknowledged alert, when, and on which channel.  Pure.

A community's ladder is a list of steps (on-duty staff → supervisor → family →
emergency number), each with a wait before the next step and the least severity that
reaches it.  Step 0 starts when the alert opens; step *i+1* starts ``wait_s`` after
step *i*, or sooner when every channel of every person of step *i* has failed (or the
step has nobody to reach): a failure falls through to the person's next channel, and
when nobody of a step can be reached, to the next step.  While the alert stays open the
people of the highest step reached that has anyone on it are reminded every
``reminder_s`` from that step's start (the newest round only, never a backlog), at most
``max_reminders`` times.  A person's quiet hours hold back non-critical
alerts only.  Acknowledged or resolved: nothing more is due.

The shell passes the attempts recorded so far and gets back the attempts due now; an
attempt is identified by its notice (alert, step, round), its recipient and its
position in the recipient's channels, so asking twice never sends twice.

>>> from datetime import UTC, datetime, timedelta
>>> t0 = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
>>> hook = Channel("webhook", "json://duty.example/hook")
>>> li = Person("user:1", "李值班", 1, (hook,))
>>> sos = AlertFacts(7, "critical", t0, "open")
>>> people = {Audience.DUTY: (li,)}
>>> [(d.notice, d.person.name, d.channel.kind) for d in plan(sos, DEFAULT_LADDER, people, [], t0).due]
[('alert:7/step:0/round:0', '李值班', 'webhook')]
>>> sent = [Attempt("alert:7/step:0/round:0", "user:1", 0, t0, True)]
>>> plan(sos, DEFAULT_LADDER, people, sent, t0 + timedelta(seconds=30)).due
()
>>> [d.notice for d in plan(sos, DEFAULT_LADDER, people, sent, t0 + timedelta(seconds=60)).due]
['alert:7/step:0/round:1']
>>> plan(AlertFacts(7, "critical", t0, "acknowledged"), DEFAULT_LADDER, people, [], t0).due
()
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo

LOCAL: Final = ZoneInfo("Asia/Shanghai")  # quiet hours are wall-clock times where people live
SEVERITY_RANK: Final = {"low": 0, "medium": 1, "high": 2, "critical": 3}
STALE_S: Final = 120.0  # an attempt claimed but never finished (a crash) counts as failed


class Audience(StrEnum):
    DUTY = "duty"  # 值班人员 on the roster now
    SUPERVISOR = "supervisor"  # 主管 on the roster now
    FAMILY = "family"  # the elder's linked family accounts
    EMERGENCY = "emergency"  # the community's emergency number


@dataclass(frozen=True, slots=True)
class Channel:
    kind: str  # wecom, dingtalk, email, sms, webhook, ...
    url: str  # the apprise URL that reaches it


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Local (Asia/Shanghai) wall-clock span; ``start > end`` wraps midnight.

    >>> q = QuietHours(time(22, 0), time(7, 0))
    >>> q.covers(datetime(2026, 12, 4, 15, 30, tzinfo=LOCAL)), q.covers(datetime(2026, 12, 4, 23, 0, tzinfo=LOCAL))
    (False, True)
    """

    start: time
    end: time

    def covers(self, at: datetime) -> bool:
        t = at.astimezone(LOCAL).time().replace(tzinfo=None)
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end


@dataclass(frozen=True, slots=True)
class Person:
    key: str  # "user:5", or "emergency:<community>" for the emergency number
    name: str
    user_id: int | None
    channels: tuple[Channel, ...]  # the enabled ones, in the order to try them
    quiet: QuietHours | None = None


@dataclass(frozen=True, slots=True)
class Step:
    audience: Audience
    wait_s: float  # before the next step starts (unless this one cannot be reached)
    min_severity: str = "medium"  # less severe alerts stop the ladder before this step
    remind: bool = True


@dataclass(frozen=True, slots=True)
class Ladder:
    steps: tuple[Step, ...]
    reminder_s: float = 120.0
    max_reminders: int = 3


# Matches alerts.escalation.DEFAULT_LADDER's timing: supervisor at 2 min, family at
# 5 min, the emergency number at 10 min after opening.
DEFAULT_LADDER: Final = Ladder(
    (
        Step(Audience.DUTY, 120.0, "medium"),
        Step(Audience.SUPERVISOR, 180.0, "high"),
        Step(Audience.FAMILY, 300.0, "critical"),
        Step(Audience.EMERGENCY, 0.0, "critical", remind=False),
    ),
    reminder_s=60.0,
    max_reminders=5,
)


@dataclass(frozen=True, slots=True)
class AlertFacts:
    id: int
    severity: str
    opened_at: datetime
    state: str  # open / acknowledged / resolved

    @property
    def critical(self) -> bool:
        return self.severity == "critical"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One recorded try: ``ok`` None while it is being sent."""

    notice: str
    recipient: str
    channel_no: int
    at: datetime
    ok: bool | None


@dataclass(frozen=True, slots=True)
class Due:
    notice: str
    step: str  # the audience (or "caregiver" for an order)
    step_no: int | None
    round: int
    person: Person
    channel_no: int

    @property
    def channel(self) -> Channel:
        return self.person.channels[self.channel_no]


@dataclass(frozen=True, slots=True)
class InboxNote:
    """An in-app notification: once per person and notice, whatever the channels did."""

    user_id: int
    notice: str
    step: str


@dataclass(frozen=True, slots=True)
class Plan:
    due: tuple[Due, ...] = ()
    inbox: tuple[InboxNote, ...] = ()
    reached: int = -1  # the highest step started


# --- one person, one notice: the fall-through ----------------------------------------


@dataclass(frozen=True, slots=True)
class Progress:
    delivered: bool = False
    next_channel: int | None = None  # due now
    in_flight: bool = False
    exhausted_at: datetime | None = None  # every channel failed, the last at this time


def progress(
    person: Person, tries: Iterable[Attempt], now: datetime, stale_s: float = STALE_S
) -> Progress:
    """Where ``person`` is with one notice, given its attempts so far.

    >>> from datetime import UTC
    >>> t = datetime(2026, 12, 4, 2, 0, tzinfo=UTC)
    >>> p = Person("user:1", "李", 1, (Channel("wecom", "wecom://a"), Channel("sms", "json://b")))
    >>> progress(p, [], t).next_channel
    0
    >>> progress(p, [Attempt("n", "user:1", 0, t, False)], t).next_channel
    1
    >>> progress(p, [Attempt("n", "user:1", 0, t, False), Attempt("n", "user:1", 1, t, False)], t).exhausted_at == t
    True
    """
    failed_at: list[datetime] = []
    tried = -1
    for a in tries:
        tried = max(tried, a.channel_no)
        if a.ok:
            return Progress(delivered=True)
        if a.ok is None:
            gave_up = a.at + timedelta(seconds=stale_s)
            if gave_up > now:
                return Progress(in_flight=True)
            failed_at.append(gave_up)
        else:
            failed_at.append(a.at)
    if tried + 1 < len(person.channels):
        return Progress(next_channel=tried + 1)
    return Progress(exhausted_at=max(failed_at, default=None))


def _by_notice(attempts: Iterable[Attempt]) -> dict[tuple[str, str], list[Attempt]]:
    out: dict[tuple[str, str], list[Attempt]] = {}
    for a in attempts:
        out.setdefault((a.notice, a.recipient), []).append(a)
    return out


def person_due(
    notice: str,
    step: str,
    step_no: int | None,
    rnd: int,
    person: Person,
    tries: Iterable[Attempt],
    now: datetime,
    *,
    critical: bool,
    stale_s: float = STALE_S,
) -> Due | None:
    """The attempt due now for ``person`` on ``notice`` (None: nothing to send now)."""
    if not critical and person.quiet is not None and person.quiet.covers(now):
        return None
    p = progress(person, tries, now, stale_s)
    if p.next_channel is None:
        return None
    return Due(notice, step, step_no, rnd, person, p.next_channel)


# --- an alert, the whole ladder --------------------------------------------------------


def notice_of(alert_id: int, step_no: int, rnd: int) -> str:
    return f"alert:{alert_id}/step:{step_no}/round:{rnd}"


def plan(
    alert: AlertFacts,
    ladder: Ladder,
    people: Mapping[Audience, Sequence[Person]],
    attempts: Iterable[Attempt],
    now: datetime,
    *,
    stale_s: float = STALE_S,
) -> Plan:
    """The attempts due at ``now`` for ``alert`` and the in-app notes of every step reached."""
    if alert.state != "open":
        return Plan()
    tries = _by_notice(attempts)
    rank = SEVERITY_RANK.get(alert.severity, 0)
    due: list[Due] = []
    inbox: list[InboxNote] = []
    start, top = alert.opened_at, -1
    reminded: tuple[int, datetime] | None = None  # the step whose people are reminded
    for i, step in enumerate(ladder.steps):
        if rank < SEVERITY_RANK.get(step.min_severity, 0) or start > now:
            break
        top = i
        members = people.get(step.audience, ())
        if members and step.remind:
            reminded = (i, start)
        notice = notice_of(alert.id, i, 0)
        exhausted: list[datetime] = []
        reachable = False
        for person in members:
            if person.user_id is not None:
                inbox.append(InboxNote(person.user_id, f"alert:{alert.id}/step:{i}", step.audience))
            mine = tries.get((notice, person.key), [])
            p = progress(person, mine, now, stale_s)
            if p.delivered or p.in_flight or p.next_channel is not None:
                reachable = True
            elif p.exhausted_at is not None:
                exhausted.append(p.exhausted_at)
            d = person_due(
                notice,
                step.audience,
                i,
                0,
                person,
                mine,
                now,
                critical=alert.critical,
                stale_s=stale_s,
            )
            if d is not None:
                due.append(d)
        following = start + timedelta(seconds=step.wait_s)
        if not reachable:  # nobody to reach, or every channel failed: the next step now
            fell = max(exhausted, default=start)
            following = min(following, max(fell, start))
        start = following
    if reminded is not None and ladder.reminder_s > 0:
        at, since = reminded
        rnd = min(int((now - since).total_seconds() // ladder.reminder_s), ladder.max_reminders)
        if rnd >= 1:
            step = ladder.steps[at]
            notice = notice_of(alert.id, at, rnd)
            for person in people.get(step.audience, ()):
                d = person_due(
                    notice,
                    step.audience,
                    at,
                    rnd,
                    person,
                    tries.get((notice, person.key), []),
                    now,
                    critical=alert.critical,
                    stale_s=stale_s,
                )
                if d is not None:
                    due.append(d)
    return Plan(tuple(due), tuple(inbox), top)
