"""What the monthly report reads: the month's orders (Asia/Shanghai calendar month),
the subscriptions that cover it, and the names of the people in it.  The aggregation
is pure (``orders.report``); :func:`usage_report` composes the two for the API and CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from psycopg import AsyncConnection

from orders import report as pure
from orders.catalogue import ServiceKind
from orders.lifecycle import Order
from orders.plans import Month, Plan, Subscription
from storage.order_queries import touched_between


@dataclass(frozen=True, slots=True)
class MonthData:
    orders: list[Order]
    subscriptions: dict[int, Subscription]
    elder_names: dict[int, str]
    caregiver_names: dict[int, str]


async def subscriptions_in(conn: AsyncConnection, month: Month) -> dict[int, Subscription]:
    """Per elder, the subscription that applies in ``month`` (the latest starting one
    covering any of its days)."""
    cur = await conn.execute(
        "SELECT DISTINCT ON (s.elder_id) s.elder_id, p.code, p.name, p.price_fen,"
        " p.allowances, s.starts_on, s.ends_on"
        " FROM subscriptions s JOIN service_plans p ON p.code = s.plan_code"
        " WHERE s.starts_on <= %s AND (s.ends_on IS NULL OR s.ends_on >= %s)"
        " ORDER BY s.elder_id, s.starts_on DESC, s.id DESC",
        (month.last_day, month.first_day),
    )
    out = {}
    for elder, code, name, price, allowances, first, last in await cur.fetchall():
        included = MappingProxyType({ServiceKind(k): v for k, v in allowances.items()})
        out[elder] = Subscription(elder, Plan(code, name, price, included), first, last)
    return out


async def load_month(conn: AsyncConnection, month: Month) -> MonthData:
    recs = await touched_between(conn, month.start, month.end)
    subs = await subscriptions_in(conn, month)
    elder_ids = sorted({r.order.elder_id for r in recs} | set(subs))
    cur = await conn.execute("SELECT id, name FROM elders WHERE id = ANY(%s)", (elder_ids,))
    elders = {i: n for i, n in await cur.fetchall()}
    # Every active caregiver has a line (an idle month shows as zeros), and whoever
    # served or declined this month's orders even if no longer active.
    cur = await conn.execute(
        "SELECT id, name FROM caregivers WHERE active OR id IN (SELECT s.caregiver_id"
        " FROM order_steps s WHERE s.caregiver_id IS NOT NULL AND s.at >= %s AND s.at < %s)",
        (month.start, month.end),
    )
    caregivers = {i: n for i, n in await cur.fetchall()}
    return MonthData([r.order for r in recs], subs, elders, caregivers)


def _only(
    data: MonthData, elder_ids: list[int] | None, caregiver_ids: list[int] | None
) -> MonthData:
    """The month's data restricted to a caller's scope (``None``: no restriction)."""
    if elder_ids is None and caregiver_ids is None:
        return data
    elders = set(elder_ids) if elder_ids is not None else None
    carers = set(caregiver_ids) if caregiver_ids is not None else None

    def keep(i: int, allowed: set[int] | None) -> bool:
        return allowed is None or i in allowed

    return MonthData(
        [o for o in data.orders if keep(o.elder_id, elders)],
        {e: s for e, s in data.subscriptions.items() if keep(e, elders)},
        {e: n for e, n in data.elder_names.items() if keep(e, elders)},
        {c: n for c, n in data.caregiver_names.items() if keep(c, carers)},
    )


async def usage_report(
    conn: AsyncConnection,
    month: Month,
    by: str,
    now: datetime,
    *,
    elder_ids: list[int] | None = None,
    caregiver_ids: list[int] | None = None,
) -> dict[str, Any]:
    """``orders.report.report`` for ``month``, judged as of ``now``; ``elder_ids`` and
    ``caregiver_ids`` restrict it to a caller's scope."""
    data = _only(await load_month(conn, month), elder_ids, caregiver_ids)
    return pure.report(
        by,
        month,
        now,
        data.orders,
        subscriptions=data.subscriptions,
        elder_names=data.elder_names,
        caregiver_names=data.caregiver_names,
    )
