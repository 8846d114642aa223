"""Subscription plans and the monthly usage counted against them.

An elder subscribes to a plan (the 100 元 monthly plan, :data:`BASIC_100`) that includes
a number of services of each kind per calendar month; services beyond that are charged
at the kind's price.  Months are Asia/Shanghai calendar months (a service at 07:30 on
1 March local time is 23:30 UTC on 28 February, and belongs to March).

What counts: a *completed* order, in the month the caregiver arrived (checked in) --
the day the elder was served.  Cancelled and rejected orders cost nothing.  Money is in
integer 分 (fen).

>>> from datetime import date, datetime, timezone
>>> Month.of(datetime(2026, 2, 28, 23, 30, tzinfo=timezone.utc))  # 07:30 on 1 March local
Month(year=2026, month=3)
>>> sub = Subscription(7, BASIC_100, first=date(2026, 1, 1))
>>> u = usage(sub, [], Month(2026, 3))
>>> u.fee_fen, u.total_fen, u.line("emergency").included is None  # 助急 is never counted down
(10000, 10000, True)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Final

from orders.catalogue import CATALOGUE, ServiceKind, ServiceSpec
from orders.lifecycle import Order, OrderState
from orders.schedule import SHANGHAI


@dataclass(frozen=True, slots=True, order=True)
class Month:
    """A calendar month in Asia/Shanghai."""

    year: int
    month: int

    def __post_init__(self) -> None:
        if not 1 <= self.month <= 12:
            raise ValueError(f"month must be 1..12, not {self.month}")

    @classmethod
    def of(cls, t: datetime) -> Month:
        """The local month holding the instant ``t`` (which must carry a time zone)."""
        if t.tzinfo is None or t.utcoffset() is None:
            raise ValueError(f"timestamp {t.isoformat()} has no time zone")
        local = t.astimezone(SHANGHAI)
        return cls(local.year, local.month)

    @property
    def start(self) -> datetime:
        """Local midnight on the 1st (compare with aware datetimes in any zone)."""
        return datetime(self.year, self.month, 1, tzinfo=SHANGHAI)

    @property
    def end(self) -> datetime:
        """The next month's start: months are half open, ``[start, end)``."""
        return self.next().start

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return self.next().first_day - timedelta(days=1)

    def next(self) -> Month:
        """
        >>> Month(2026, 12).next(), Month(2026, 1).next()
        (Month(year=2027, month=1), Month(year=2026, month=2))
        """
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def __contains__(self, t: datetime) -> bool:
        return Month.of(t) == self

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True, slots=True)
class Plan:
    """What a subscription includes per month: services of each kind (None = unlimited;
    a kind not listed is not included and is charged per service)."""

    code: str
    name: str
    monthly_fee_fen: int
    included: Mapping[ServiceKind, int | None]

    def allowance(self, kind: ServiceKind | str) -> int | None:
        return self.included.get(ServiceKind(kind), 0)


# The 100 元 plan as drafted for this issue; the centre's actual contents replace these.
BASIC_100: Final = Plan(
    "basic-100",
    "六助基础套餐",
    monthly_fee_fen=10_000,
    included=MappingProxyType(
        {
            ServiceKind.EMERGENCY: None,  # 助急 is never rationed
            ServiceKind.MEAL: 4,
            ServiceKind.CLEANING: 2,
            ServiceKind.BATHING: 1,
            ServiceKind.MOBILITY: 2,
            ServiceKind.MEDICAL: 2,
        }
    ),
)


@dataclass(frozen=True, slots=True)
class Subscription:
    """An elder's plan from ``first`` to ``last`` (local days, inclusive)."""

    elder_id: int
    plan: Plan
    first: date
    last: date | None = None

    def active_in(self, month: Month) -> bool:
        """Whether the subscription covers any day of ``month``.

        The centre charges whole months: a plan taken out on the 20th includes that
        month's full allowance and fee.
        """
        return self.first <= month.last_day and (self.last is None or self.last >= month.first_day)


@dataclass(frozen=True, slots=True)
class Line:
    """One kind's usage in a month."""

    kind: ServiceKind
    used: int
    included: int | None  # None: unlimited
    extra: int  # services beyond the allowance, charged
    extra_fen: int

    @property
    def remaining(self) -> int | None:
        return None if self.included is None else max(0, self.included - self.used)


@dataclass(frozen=True, slots=True)
class Usage:
    """An elder's month: per-kind lines, the plan fee and what is charged beyond it."""

    elder_id: int
    month: Month
    plan_code: str | None  # None: no plan that month (everything charged per service)
    lines: tuple[Line, ...]
    fee_fen: int

    @property
    def extra_fen(self) -> int:
        return sum(line.extra_fen for line in self.lines)

    @property
    def total_fen(self) -> int:
        return self.fee_fen + self.extra_fen

    def line(self, kind: ServiceKind | str) -> Line:
        k = ServiceKind(kind)
        return next(line for line in self.lines if line.kind is k)


def served_at(order: Order) -> datetime | None:
    """When a completed order was delivered (the check-in), else None: not counted."""
    return order.arrived_at if order.state is OrderState.COMPLETED else None


def usage(
    sub: Subscription,
    orders: Iterable[Order],
    month: Month,
    catalogue: Mapping[ServiceKind, ServiceSpec] = CATALOGUE,
) -> Usage:
    """The subscriber's usage in ``month`` from their orders (others' are ignored)."""
    used: Counter[ServiceKind] = Counter()
    for o in orders:
        t = served_at(o)
        if o.elder_id == sub.elder_id and t is not None and t in month:
            used[o.kind] += 1
    active = sub.active_in(month)
    lines = []
    for kind in ServiceKind:
        n = used[kind]
        included = sub.plan.allowance(kind) if active else 0
        extra = 0 if included is None else max(0, n - included)
        lines.append(Line(kind, n, included, extra, extra * catalogue[kind].price_fen))
    return Usage(
        sub.elder_id,
        month,
        sub.plan.code if active else None,
        tuple(lines),
        sub.plan.monthly_fee_fen if active else 0,
    )


def within_plan(sub: Subscription, used: Usage, kind: ServiceKind | str) -> bool:
    """Whether one more ``kind`` this month is still included (else it will be charged);
    what staff and family see before they confirm a request."""
    remaining = used.line(kind).remaining
    return sub.active_in(used.month) and (remaining is None or remaining > 0)
