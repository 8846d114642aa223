"""Plans, subscriptions, recurring schedules and monthly usage in the database.

The pure rules are ``orders.plans`` (what a month costs) and ``orders.schedule`` (when
a weekly rule falls); this module reads and writes their rows.  Days are local
(Asia/Shanghai) calendar days.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from types import MappingProxyType
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from orders.catalogue import ServiceKind
from orders.plans import Month, Plan, Subscription, Usage, usage
from orders.schedule import WeeklyRule, weekdays
from storage.orders import orders_of_elder_between
from storage.registry import NotFound

NO_PLAN: Final = date(9999, 12, 31)  # a subscription that starts never: no plan
_SUB: Final = (
    "SELECT s.id, s.elder_id, s.plan_code, s.starts_on, s.ends_on, s.created_at,"
    " p.name AS plan_name, p.price_fen, p.allowances"
    " FROM subscriptions s JOIN service_plans p ON p.code = s.plan_code"
)
_SCHED: Final = (
    "SELECT id, elder_id, kind, weekdays, local_time, starts_on, ends_on, active, notes,"
    " created_at FROM service_schedules"
)


def _plan(code: str, name: str, price_fen: int, allowances: dict[str, int | None]) -> Plan:
    included = {ServiceKind(k): v for k, v in allowances.items()}
    return Plan(code, name, price_fen, MappingProxyType(included))


async def list_plans(conn: AsyncConnection) -> list[Plan]:
    """Every plan on offer (the seeded ``basic-100`` first of all)."""
    cur = await conn.execute(
        "SELECT code, name, price_fen, allowances FROM service_plans ORDER BY code"
    )
    return [_plan(*r) for r in await cur.fetchall()]


async def get_plan(conn: AsyncConnection, code: str) -> Plan:
    """One plan (raises NotFound)."""
    cur = await conn.execute(
        "SELECT code, name, price_fen, allowances FROM service_plans WHERE code = %s", (code,)
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"plan {code!r} does not exist")
    return _plan(*row)


# --- subscriptions ------------------------------------------------------------------------


async def get_subscription(conn: AsyncConnection, elder_id: int, on: date) -> dict[str, Any] | None:
    """The elder's subscription covering local day ``on`` (else the next one to start),
    with ``plan_name``, ``price_fen`` and ``allowances``; None when there is none.
    Raises NotFound for an unknown elder."""
    await _elder(conn, elder_id)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            _SUB + " WHERE s.elder_id = %s AND (s.ends_on IS NULL OR s.ends_on >= %s)"
            " ORDER BY (s.starts_on > %s), s.starts_on DESC, s.id DESC LIMIT 1",
            (elder_id, on, on),
        )
        row = await cur.fetchone()
    return _utc(row) if row else None


async def put_subscription(
    conn: AsyncConnection,
    elder_id: int,
    plan_code: str,
    starts_on: date,
    ends_on: date | None = None,
) -> dict[str, Any]:
    """Subscribe the elder to ``plan_code`` from ``starts_on``: a subscription running
    then ends the day before, one starting later is replaced.  Raises NotFound (elder
    or plan), ValueError (``ends_on`` before ``starts_on``)."""
    await _elder(conn, elder_id)
    await get_plan(conn, plan_code)
    if ends_on is not None and ends_on < starts_on:
        raise ValueError("ends_on is before starts_on")
    async with conn.transaction():
        await conn.execute(
            "DELETE FROM subscriptions WHERE elder_id = %s AND starts_on >= %s",
            (elder_id, starts_on),
        )
        await conn.execute(
            "UPDATE subscriptions SET ends_on = %s::date - 1 WHERE elder_id = %s"
            " AND (ends_on IS NULL OR ends_on >= %s)",
            (starts_on, elder_id, starts_on),
        )
        await conn.execute(
            "INSERT INTO subscriptions (elder_id, plan_code, starts_on, ends_on)"
            " VALUES (%s, %s, %s, %s)",
            (elder_id, plan_code, starts_on, ends_on),
        )
    sub = await get_subscription(conn, elder_id, starts_on)
    assert sub is not None
    return sub


async def subscription_for(conn: AsyncConnection, elder_id: int, month: Month) -> Subscription:
    """The pure subscription that applies in ``month`` (the latest starting one that
    covers any of its days); one that never starts when the elder has none."""
    cur = await conn.execute(
        "SELECT p.code, p.name, p.price_fen, p.allowances, s.starts_on, s.ends_on"
        " FROM subscriptions s JOIN service_plans p ON p.code = s.plan_code"
        " WHERE s.elder_id = %s AND s.starts_on <= %s AND (s.ends_on IS NULL OR s.ends_on >= %s)"
        " ORDER BY s.starts_on DESC, s.id DESC LIMIT 1",
        (elder_id, month.last_day, month.first_day),
    )
    row = await cur.fetchone()
    if row is None:
        basic = await list_plans(conn)
        return Subscription(elder_id, basic[0], first=NO_PLAN)
    code, name, price, allowances, first, last = row
    return Subscription(elder_id, _plan(code, name, price, allowances), first, last)


async def usage_for_month(conn: AsyncConnection, elder_id: int, month: Month) -> Usage:
    """The elder's usage in the local calendar ``month`` (``orders.plans.usage``):
    completed services by the month of their check-in, against the plan then."""
    await _elder(conn, elder_id)
    sub = await subscription_for(conn, elder_id, month)
    served = await orders_of_elder_between(conn, elder_id, month.start, month.end)
    return usage(sub, served, month)


# --- schedules ----------------------------------------------------------------------------


async def create_schedule(
    conn: AsyncConnection,
    elder_id: int,
    kind: str,
    days: str,
    local_time: time,
    starts_on: date,
    ends_on: date | None = None,
    notes: str | None = None,
) -> dict[str, Any]:
    """A recurring request, e.g. ``("meal", "mon-fri", time(11, 30))`` in local time.
    Raises NotFound (elder), ValueError (bad weekdays, 助急, a time with a zone,
    ``ends_on`` before ``starts_on``: the pure ``WeeklyRule`` says which)."""
    await _elder(conn, elder_id)
    WeeklyRule(0, elder_id, kind, weekdays(days), local_time, starts_on, ends_on)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "INSERT INTO service_schedules (elder_id, kind, weekdays, local_time, starts_on,"
            " ends_on, notes) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (elder_id, ServiceKind(kind).value, days, local_time, starts_on, ends_on, notes),
        )
        row = await cur.fetchone()
        assert row is not None
        await cur.execute(_SCHED + " WHERE id = %s", (row["id"],))
        out = await cur.fetchone()
    assert out is not None
    return _utc(out)


async def list_schedules(
    conn: AsyncConnection, elder_id: int, *, include_inactive: bool = False
) -> list[dict[str, Any]]:
    """The elder's schedules, by id (raises NotFound for an unknown elder)."""
    await _elder(conn, elder_id)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            _SCHED + " WHERE elder_id = %s AND (active OR %s) ORDER BY id",
            (elder_id, include_inactive),
        )
        return [_utc(r) for r in await cur.fetchall()]


async def delete_schedule(conn: AsyncConnection, schedule_id: int) -> None:
    """Stop a schedule: nothing more is released (orders already released stay).  The
    row is kept, inactive, so released orders still name their rule."""
    cur = await conn.execute(
        "UPDATE service_schedules SET active = false WHERE id = %s AND active", (schedule_id,)
    )
    if cur.rowcount == 0:
        raise NotFound(f"schedule {schedule_id} does not exist")


async def weekly_rules(conn: AsyncConnection) -> list[WeeklyRule]:
    """Every active schedule as a pure rule (the dispatcher releases from these)."""
    cur = await conn.execute(
        "SELECT id, elder_id, kind, weekdays, local_time, starts_on, ends_on"
        " FROM service_schedules WHERE active ORDER BY id"
    )
    return [
        WeeklyRule(i, e, k, weekdays(w), t, first, last)
        for i, e, k, w, t, first, last in await cur.fetchall()
    ]


async def existing_refs(conn: AsyncConnection, refs: list[str]) -> set[str]:
    """Which of ``refs`` already name an order (releases already made)."""
    cur = await conn.execute("SELECT source_ref FROM orders WHERE source_ref = ANY(%s)", (refs,))
    return {r for (r,) in await cur.fetchall()}


async def _elder(conn: AsyncConnection, elder_id: int) -> None:
    cur = await conn.execute("SELECT 1 FROM elders WHERE id = %s", (elder_id,))
    if await cur.fetchone() is None:
        raise NotFound(f"elder {elder_id} does not exist")


def _utc(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.astimezone(UTC) if isinstance(v, datetime) else v for k, v in row.items()}
