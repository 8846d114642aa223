"""The monthly usage report: per elder and per caregiver, from orders.  Pure.

Which month an order belongs to: the Asia/Shanghai month it was *requested* in, for the
counts, the service minutes and the targets; the month it was *served* in (check-in of
a completed order), for what the plan includes and what is charged beyond it -- that is
:func:`orders.plans.usage`'s rule, and billing follows the day the elder was served.

Targets are judged as of ``now`` (:func:`orders.targets.breaches`): *met* when the step
was taken by its deadline, *missed* when it was late or is still not taken past it, and
neither while it is not due yet or when the order was cancelled before it fell due.  A
caregiver answers for the targets of the orders they took on (the acceptance that
stands); the orders they declined or let lapse count as their ``rejects`` and
``expired``, in the month of that step.

>>> from datetime import datetime, timedelta, timezone
>>> from orders.lifecycle import Actor, request, transition
>>> t = datetime(2026, 12, 3, 2, 0, tzinfo=timezone.utc)
>>> cg = Actor("caregiver", 4)
>>> o = transition(request(7, "meal", Actor("family", 1), t), "assign", Actor("system"), t, caregiver_id=4)
>>> for i, a in enumerate(("accept", "depart", "arrive", "complete"), 1):
...     o = transition(o, a, cg, t + timedelta(minutes=10 * i))
>>> (row,) = by_elder([o], Month(2026, 12), t + timedelta(days=1))
>>> row.orders, row.by_kind["meal"], row.service_minutes, row.arrive.met, row.total_fen
(1, 1, 10.0, 1, 1200)
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Final

from rich.table import Table

from orders.catalogue import CATALOGUE, ServiceKind
from orders.lifecycle import TAKEN, Action, Order, OrderState
from orders.plans import BASIC_100, Month, Subscription, Usage, usage
from orders.targets import BreachKind, Catalogue, breaches, deadlines


class Outcome(StrEnum):
    MET = "met"
    MISSED = "missed"
    OPEN = "open"  # not due yet, or cancelled before it fell due


@dataclass(frozen=True, slots=True)
class Judgement:
    accept: Outcome
    arrive: Outcome


def judge(order: Order, now: datetime, catalogue: Catalogue = CATALOGUE) -> Judgement:
    """Whether ``order`` met its accept and arrival targets as of ``now``.

    An arrival before a booked window opened is a miss as much as a late one.
    """
    missed = {b.kind for b in breaches(order, now, catalogue)}
    d = deadlines(order, catalogue)
    accepted = order.entered(OrderState.ACCEPTED) if order.state in TAKEN else None
    accept = (
        Outcome.MISSED
        if BreachKind.ACCEPT_LATE in missed
        else Outcome.MET
        if accepted is not None and accepted <= d.accept_by
        else Outcome.OPEN
    )
    arrive = (
        Outcome.MISSED
        if missed & {BreachKind.ARRIVE_LATE, BreachKind.ARRIVE_EARLY}
        else Outcome.MET
        if order.arrived_at is not None
        else Outcome.OPEN
    )
    return Judgement(accept, arrive)


@dataclass(slots=True)
class Tally:
    met: int = 0
    missed: int = 0

    def add(self, outcome: Outcome) -> None:
        if outcome is Outcome.MET:
            self.met += 1
        elif outcome is Outcome.MISSED:
            self.missed += 1

    @property
    def ratio(self) -> float | None:
        """Met over judged (None: nothing judged yet)."""
        judged = self.met + self.missed
        return round(self.met / judged, 3) if judged else None


def service_minutes(order: Order) -> float:
    """Time at the elder's home, check-in to completion (0 unless completed)."""
    if order.state is not OrderState.COMPLETED or order.arrived_at is None:
        return 0.0
    end = order.ended_at
    assert end is not None  # completed orders have ended
    return (end - order.arrived_at).total_seconds() / 60


def _kinds() -> dict[str, int]:
    return {k.value: 0 for k in ServiceKind}


@dataclass(slots=True)
class ElderLine:
    elder_id: int
    name: str
    orders: int = 0
    by_kind: dict[str, int] = field(default_factory=_kinds)
    completed: int = 0
    cancelled: int = 0
    service_minutes: float = 0.0
    accept: Tally = field(default_factory=Tally)
    arrive: Tally = field(default_factory=Tally)
    rejects: int = 0  # declines and lapsed offers on this elder's orders
    usage: Usage | None = None

    @property
    def plan_code(self) -> str | None:
        return self.usage.plan_code if self.usage else None

    @property
    def fee_fen(self) -> int:
        return self.usage.fee_fen if self.usage else 0

    @property
    def extra_fen(self) -> int:
        return self.usage.extra_fen if self.usage else 0

    @property
    def total_fen(self) -> int:
        return self.fee_fen + self.extra_fen


@dataclass(slots=True)
class CaregiverLine:
    caregiver_id: int
    name: str
    orders: int = 0  # orders of the month they took on (accepted and not backed out of)
    by_kind: dict[str, int] = field(default_factory=_kinds)
    completed: int = 0
    service_minutes: float = 0.0
    accept: Tally = field(default_factory=Tally)
    arrive: Tally = field(default_factory=Tally)
    rejects: int = 0  # declined
    expired: int = 0  # let the offer lapse


def _declines(order: Order, month: Month) -> Iterable[tuple[int, Action]]:
    for s in order.history:
        declined = s.action in (Action.REJECT, Action.EXPIRE)
        if declined and s.caregiver_id is not None and s.at in month:
            yield s.caregiver_id, s.action


def by_elder(
    orders: Iterable[Order],
    month: Month,
    now: datetime,
    subscriptions: Mapping[int, Subscription] | None = None,
    names: Mapping[int, str] | None = None,
    catalogue: Catalogue = CATALOGUE,
) -> list[ElderLine]:
    """One line per elder with an order requested or served in ``month``, or a plan that
    covers it (the fee is due without any order), in id order.

    Without a subscription every served order is charged at its kind's price.
    """
    subs, names = dict(subscriptions or {}), dict(names or {})
    mine: dict[int, list[Order]] = {}
    for o in orders:
        mine.setdefault(o.elder_id, []).append(o)
    elders = set(mine) | {e for e, s in subs.items() if s.active_in(month)}
    out = []
    for e in sorted(elders):
        line = ElderLine(e, names.get(e, ""))
        for o in mine.get(e, ()):
            line.rejects += sum(1 for _ in _declines(o, month))
            if o.requested_at not in month:
                continue
            line.orders += 1
            line.by_kind[o.kind.value] += 1
            line.completed += o.state is OrderState.COMPLETED
            line.cancelled += o.state is OrderState.CANCELLED
            line.service_minutes += service_minutes(o)
            j = judge(o, now, catalogue)
            line.accept.add(j.accept)
            line.arrive.add(j.arrive)
        line.service_minutes = round(line.service_minutes, 1)
        line.usage = usage(_subscription(subs.get(e), e), mine.get(e, ()), month, catalogue)
        out.append(line)
    return out


_NO_PLAN_START: Final = date.max


def _subscription(sub: Subscription | None, elder_id: int) -> Subscription:
    if sub is not None:
        return sub
    # A subscription that never starts: no fee, nothing included, all charged.
    return Subscription(elder_id, BASIC_100, first=_NO_PLAN_START)


def by_caregiver(
    orders: Iterable[Order],
    month: Month,
    now: datetime,
    names: Mapping[int, str] | None = None,
    catalogue: Catalogue = CATALOGUE,
) -> list[CaregiverLine]:
    """One line per caregiver in ``names`` (all zeros when idle) or met in the orders."""
    names = dict(names or {})
    lines: dict[int, CaregiverLine] = {c: CaregiverLine(c, n) for c, n in names.items()}

    def line(c: int) -> CaregiverLine:
        if c not in lines:
            lines[c] = CaregiverLine(c, names.get(c, ""))
        return lines[c]

    for o in orders:
        for c, action in _declines(o, month):
            if action is Action.REJECT:
                line(c).rejects += 1
            else:
                line(c).expired += 1
        if o.requested_at not in month or o.state not in TAKEN or o.caregiver_id is None:
            continue
        cl = line(o.caregiver_id)
        cl.orders += 1
        cl.by_kind[o.kind.value] += 1
        cl.completed += o.state is OrderState.COMPLETED
        cl.service_minutes += service_minutes(o)
        j = judge(o, now, catalogue)
        cl.accept.add(j.accept)
        cl.arrive.add(j.arrive)
    for cl in lines.values():
        cl.service_minutes = round(cl.service_minutes, 1)
    return [lines[c] for c in sorted(lines)]


# --- flat rows, for JSON, CSV and the terminal ------------------------------------------


def elder_row(line: ElderLine) -> dict[str, Any]:
    u = line.usage
    return {
        "elder_id": line.elder_id,
        "elder_name": line.name,
        "orders": line.orders,
        "by_kind": dict(line.by_kind),
        "completed": line.completed,
        "cancelled": line.cancelled,
        "service_minutes": line.service_minutes,
        "accept_met": line.accept.met,
        "accept_missed": line.accept.missed,
        "arrive_met": line.arrive.met,
        "arrive_missed": line.arrive.missed,
        "rejects": line.rejects,
        "plan_code": line.plan_code,
        "fee_fen": line.fee_fen,
        "extra_fen": line.extra_fen,
        "total_fen": line.total_fen,
        "usage": [
            {
                "kind": x.kind.value,
                "used": x.used,
                "included": x.included,
                "extra": x.extra,
                "extra_fen": x.extra_fen,
            }
            for x in (u.lines if u else ())
        ],
    }


def caregiver_row(line: CaregiverLine) -> dict[str, Any]:
    return {
        "caregiver_id": line.caregiver_id,
        "caregiver_name": line.name,
        "orders": line.orders,
        "by_kind": dict(line.by_kind),
        "completed": line.completed,
        "service_minutes": line.service_minutes,
        "accept_met": line.accept.met,
        "accept_missed": line.accept.missed,
        "accept_ratio": line.accept.ratio,
        "arrive_met": line.arrive.met,
        "arrive_missed": line.arrive.missed,
        "arrive_ratio": line.arrive.ratio,
        "rejects": line.rejects,
        "expired": line.expired,
    }


# Column key -> header (zh first, the key after it so a spreadsheet is still scriptable).
# ``by_kind`` is spread into one column per service; money is shown in 元.
ELDER_COLUMNS: Final[Mapping[str, str]] = {
    "elder_id": "编号 elder_id",
    "elder_name": "老人 elder_name",
    "orders": "工单 orders",
    **{k.value: f"{k.zh} {k.value}" for k in ServiceKind},
    "completed": "完成 completed",
    "cancelled": "取消 cancelled",
    "service_minutes": "服务分钟 service_minutes",
    "accept_met": "接单达标 accept_met",
    "accept_missed": "接单超时 accept_missed",
    "arrive_met": "到达达标 arrive_met",
    "arrive_missed": "到达未达标 arrive_missed",
    "rejects": "拒单 rejects",
    "plan_code": "套餐 plan_code",
    "fee_yuan": "套餐费(元) fee_yuan",
    "extra_yuan": "超出费用(元) extra_yuan",
    "total_yuan": "合计(元) total_yuan",
}
CAREGIVER_COLUMNS: Final[Mapping[str, str]] = {
    "caregiver_id": "编号 caregiver_id",
    "caregiver_name": "护理员 caregiver_name",
    "orders": "工单 orders",
    **{k.value: f"{k.zh} {k.value}" for k in ServiceKind},
    "completed": "完成 completed",
    "service_minutes": "服务分钟 service_minutes",
    "accept_met": "接单达标 accept_met",
    "accept_missed": "接单超时 accept_missed",
    "accept_ratio": "接单达标率 accept_ratio",
    "arrive_met": "到达达标 arrive_met",
    "arrive_missed": "到达未达标 arrive_missed",
    "arrive_ratio": "到达达标率 arrive_ratio",
    "rejects": "拒单 rejects",
    "expired": "超时未应答 expired",
}


def yuan(fen: int) -> str:
    """
    >>> yuan(10000), yuan(1250), yuan(-5)
    ('100.00', '12.50', '-0.05')
    """
    sign = "-" if fen < 0 else ""
    return f"{sign}{abs(fen) // 100}.{abs(fen) % 100:02d}"


def flat(row: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON row as one spreadsheet line: services spread out, money in 元."""
    out: dict[str, Any] = {k: v for k, v in row.items() if k not in ("by_kind", "usage")}
    out.update(row["by_kind"])
    for money in ("fee", "extra", "total"):
        if f"{money}_fen" in out:
            out[f"{money}_yuan"] = yuan(out.pop(f"{money}_fen"))
    return out


_SUMMED: Final = {
    "elder": (
        "orders",
        "completed",
        "cancelled",
        "service_minutes",
        "accept_met",
        "accept_missed",
        "arrive_met",
        "arrive_missed",
        "rejects",
        "fee_fen",
        "extra_fen",
        "total_fen",
    ),
    "caregiver": (
        "orders",
        "completed",
        "service_minutes",
        "accept_met",
        "accept_missed",
        "arrive_met",
        "arrive_missed",
        "rejects",
        "expired",
    ),
}


def totals(by: str, rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Sums of the countable columns of JSON rows ``by`` elder or caregiver (ratios
    recomputed from the sums; zeros for no rows)."""
    out: dict[str, Any] = dict.fromkeys(_SUMMED[by], 0)
    kinds: Counter[str] = Counter()
    for r in rows:
        for k in _SUMMED[by]:
            out[k] += r[k]
        kinds.update(r["by_kind"])
    out["service_minutes"] = round(out["service_minutes"], 1)
    out["by_kind"] = {k.value: kinds[k.value] for k in ServiceKind}
    if by == "caregiver":
        for t in ("accept", "arrive"):
            judged = out[f"{t}_met"] + out[f"{t}_missed"]
            out[f"{t}_ratio"] = round(out[f"{t}_met"] / judged, 3) if judged else None
    return out


# --- the whole report ---------------------------------------------------------------------


def report(
    by: str,
    month: Month,
    now: datetime,
    orders: Iterable[Order],
    *,
    subscriptions: Mapping[int, Subscription] | None = None,
    elder_names: Mapping[int, str] | None = None,
    caregiver_names: Mapping[int, str] | None = None,
    catalogue: Catalogue = CATALOGUE,
) -> dict[str, Any]:
    """The month's report ``by`` ``"elder"`` or ``"caregiver"``: ``{"month", "by",
    "generated_at", "rows", "totals"}`` with JSON rows (:func:`elder_row`,
    :func:`caregiver_row`)."""
    orders = list(orders)
    if by == "elder":
        rows = [
            elder_row(x)
            for x in by_elder(orders, month, now, subscriptions, elder_names, catalogue)
        ]
    elif by == "caregiver":
        rows = [
            caregiver_row(x) for x in by_caregiver(orders, month, now, caregiver_names, catalogue)
        ]
    else:
        raise ValueError(f"a report is by elder or by caregiver, not {by!r}")
    return {
        "month": str(month),
        "by": by,
        "generated_at": now.isoformat(),
        "rows": rows,
        "totals": totals(by, rows),
    }


def columns(by: str) -> Mapping[str, str]:
    return ELDER_COLUMNS if by == "elder" else CAREGIVER_COLUMNS


def csv_text(rep: Mapping[str, Any]) -> str:
    """The report as CSV, headed by :data:`ELDER_COLUMNS` / :data:`CAREGIVER_COLUMNS`
    labels, one line per row (no totals line: a spreadsheet sums for itself).  Without
    a byte-order mark: the caller adds one for Excel."""
    cols = columns(rep["by"])
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(cols.values())
    for row in rep["rows"]:
        f = flat(row)
        w.writerow(["" if f.get(k) is None else f[k] for k in cols])
    return out.getvalue()


def parse_month(text: str) -> Month:
    """``YYYY-MM`` as a :class:`Month`; ValueError saying what is expected.

    >>> parse_month("2026-12")
    Month(year=2026, month=12)
    """
    m = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if m is None or not 1 <= int(m[2]) <= 12:
        raise ValueError(f"a month is YYYY-MM, e.g. 2026-12, not {text!r}")
    return Month(int(m[1]), int(m[2]))


def text_table(rep: Mapping[str, Any]) -> Table:
    """The report for a terminal: zh headers, money in 元, a totals line."""
    by = rep["by"]
    cols = {k: v.split(" ")[0] for k, v in columns(by).items()}
    title = f"六助 {rep['month']} {'按老人' if by == 'elder' else '按护理员'} (Asia/Shanghai)"
    t = Table(title=title, show_footer=True)
    total = flat({**rep["totals"], "usage": []})
    first = True
    for k, label in cols.items():
        if first:
            footer, first = "合计", False
        else:
            footer = "" if total.get(k) is None else str(total[k])
        numeric = k not in ("elder_name", "caregiver_name", "plan_code")
        t.add_column(label, footer=footer, justify="right" if numeric else "left")
    for row in rep["rows"]:
        f = flat(row)
        t.add_row(*("" if f.get(k) is None else str(f[k]) for k in cols))
    return t
