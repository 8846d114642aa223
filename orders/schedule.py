"""Recurring requests: weekly rules in Asia/Shanghai wall-clock time.

"Lunch Monday to Friday at 11:30" and "cleaning every Thursday at 09:00" are weekly
rules: a set of weekdays, a local time, a first day, optionally a last day, every
``every_weeks`` weeks, minus skipped dates (holidays, a week in hospital).  Times are
wall-clock times in Asia/Shanghai, which has kept UTC+8 without daylight saving since
1991, so every local day is 24 hours long and a fixed offset is exact: no local time is
skipped or repeated, and no tz database is needed (:data:`SHANGHAI`).

:func:`occurrences` lists the instants in a half-open range ``[start, end)``; ranges
compose (``[a, b)`` then ``[b, c)`` gives exactly ``[a, c)``), which is what lets the
shell create orders from a watermark, each exactly once (:func:`releases`).

>>> from datetime import date, datetime, time
>>> lunch = WeeklyRule(1, 7, "meal", weekdays("mon-fri"), time(11, 30), date(2026, 1, 1))
>>> start = datetime(2026, 1, 30, tzinfo=SHANGHAI)  # a Friday, the month's last weekday
>>> [t.strftime("%a %m-%d %H:%M") for t in occurrences(lunch, start, start + WEEK)]
['Fri 01-30 11:30', 'Mon 02-02 11:30', 'Tue 02-03 11:30', 'Wed 02-04 11:30', 'Thu 02-05 11:30']
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Final

from orders.catalogue import CATALOGUE, ServiceKind, ServiceSpec

SHANGHAI: Final = timezone(timedelta(hours=8), "Asia/Shanghai")
DAY: Final = timedelta(days=1)
WEEK: Final = timedelta(days=7)
_NAMES: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def weekdays(spec: str) -> frozenset[int]:
    """ISO weekdays (Monday = 1) from ``"mon-fri"``, ``"thu"``, ``"mon,wed,fri"``, ``"sat-mon"``.

    >>> sorted(weekdays("mon-fri")), sorted(weekdays("thu")), sorted(weekdays("sat-mon"))
    ([1, 2, 3, 4, 5], [4], [1, 6, 7])
    """
    days: set[int] = set()
    for part in spec.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        try:
            a, b = _NAMES.index(first[:3]), _NAMES.index((last or first)[:3])
        except ValueError:
            raise ValueError(f"not a weekday or range of weekdays: {part!r}") from None
        days.update((a + i) % 7 + 1 for i in range((b - a) % 7 + 1))
    return frozenset(days)


@dataclass(frozen=True, slots=True)
class WeeklyRule:
    """A recurring request for one elder."""

    id: int
    elder_id: int
    kind: ServiceKind | str
    days: frozenset[int]  # ISO weekdays, Monday = 1
    at: time  # local wall-clock time, Asia/Shanghai
    first: date  # first local day it may fall on
    last: date | None = None  # last local day, inclusive; None = open-ended
    every_weeks: int = 1  # 2 = fortnightly, counted from the week of ``first``
    skip: frozenset[date] = field(default_factory=frozenset)  # local days left out

    def __post_init__(self) -> None:
        kind = ServiceKind(self.kind)
        object.__setattr__(self, "kind", kind)
        if CATALOGUE[kind].urgent:
            raise ValueError(f"{kind.zh} ({kind.value}) cannot be booked ahead")
        if not self.days or not self.days <= set(range(1, 8)):
            raise ValueError(
                f"weekdays must be a non-empty subset of 1..7, not {sorted(self.days)}"
            )
        if self.at.tzinfo is not None:
            raise ValueError("the rule's time is local wall-clock time: give it without tzinfo")
        if self.every_weeks < 1:
            raise ValueError("every_weeks must be at least 1")
        if self.last is not None and self.last < self.first:
            raise ValueError("the rule's last day is before its first")

    def falls_on(self, day: date) -> bool:
        """Whether the rule has an occurrence on local day ``day``."""
        if day < self.first or (self.last is not None and day > self.last):
            return False
        if day.isoweekday() not in self.days or day in self.skip:
            return False
        anchor = self.first - timedelta(days=self.first.weekday())  # Monday of the first week
        return ((day - anchor).days // 7) % self.every_weeks == 0


def _local(t: datetime) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"timestamp {t.isoformat()} has no time zone")
    return t.astimezone(SHANGHAI)


def occurrences(rule: WeeklyRule, start: datetime, end: datetime) -> Iterator[datetime]:
    """The rule's instants in ``[start, end)``, in order, as Asia/Shanghai datetimes.

    ``start`` and ``end`` may be in any time zone (UTC from the database is usual): the
    local day is what the rule speaks of, so a 07:00 rule falls on the UTC day before.
    """
    lo, hi = _local(start), _local(end)
    day = max(lo.date(), rule.first)
    last = hi.date() if rule.last is None else min(hi.date(), rule.last)
    while day <= last:
        if rule.falls_on(day):
            t = datetime.combine(day, rule.at, SHANGHAI)
            if lo <= t < hi:
                yield t
        day += DAY


@dataclass(frozen=True, slots=True)
class Release:
    """An order a rule asks for: created at ``release_at`` for ``scheduled_for``.

    ``key`` is stable, so the shell inserts each once (a unique index on it).
    """

    rule_id: int
    elder_id: int
    kind: ServiceKind
    scheduled_for: datetime
    release_at: datetime

    @property
    def key(self) -> tuple[int, datetime]:
        return self.rule_id, self.scheduled_for


def releases(
    rules: Iterable[WeeklyRule],
    since: datetime,
    until: datetime,
    catalogue: Mapping[ServiceKind, ServiceSpec] = CATALOGUE,
) -> list[Release]:
    """The orders to create for releases falling in ``[since, until)``, by release time.

    An order is released its kind's ``release_lead`` before the booked time (14 h for
    Thursday's 09:00 cleaning: 19:00 the evening before), leaving the kind's whole
    accept time before its ``accept_lead`` to find a caregiver.  The shell
    calls this with ``since`` = its watermark and ``until`` = now, then moves the
    watermark to ``until``: half-open ranges mean nothing is released twice or missed.

    >>> from datetime import date, time
    >>> thu = WeeklyRule(2, 7, "cleaning", weekdays("thu"), time(9, 0), date(2026, 1, 1))
    >>> t = datetime(2026, 1, 14, 6, 0, tzinfo=SHANGHAI)  # a Wednesday morning
    >>> [(r.release_at.strftime("%a %H:%M"), r.scheduled_for.strftime("%a %H:%M"))
    ...  for r in releases([thu], t, t + DAY)]
    [('Wed 19:00', 'Thu 09:00')]
    """
    out: list[Release] = []
    for rule in rules:
        lead = catalogue[ServiceKind(rule.kind)].release_lead
        out.extend(
            Release(rule.id, rule.elder_id, ServiceKind(rule.kind), t, t - lead)
            for t in occurrences(rule, since + lead, until + lead)
        )
    out.sort(key=lambda r: (r.release_at, r.rule_id))
    return out
