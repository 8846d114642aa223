"""The sets a user's scope is made of (``auth.scope``), read from the database."""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection

from auth.roles import Role
from auth.scope import Scope
from orders.schedule import SHANGHAI

# A caregiver keeps seeing the elders of the orders they finished today (their day's
# list), not those of last week.
_CAREGIVER_ELDERS = """
SELECT DISTINCT elder_id FROM orders
 WHERE caregiver_id = %(cg)s AND state <> 'cancelled'
   AND (state NOT IN ('completed', 'rejected') OR updated_at >= %(day_start)s)
"""


def _local_day_start(now: datetime) -> datetime:
    local = now.astimezone(SHANGHAI)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


async def _ids(conn: AsyncConnection, query: str, args: dict[str, object]) -> frozenset[int]:
    cur = await conn.execute(query, args)
    return frozenset(int(r[0]) for r in await cur.fetchall())


async def schedule_elder(conn: AsyncConnection, schedule_id: int) -> int | None:
    """The elder a recurring schedule is for (its scope), ``None`` for an unknown one."""
    cur = await conn.execute("SELECT elder_id FROM service_schedules WHERE id = %s", (schedule_id,))
    row = await cur.fetchone()
    return None if row is None else int(row[0])


async def load_scope(
    conn: AsyncConnection,
    *,
    role: Role,
    user_id: int,
    community_id: int | None,
    caregiver_id: int | None,
    now: datetime,
) -> Scope:
    if role is Role.admin:
        return Scope(role, user_id, community_id, caregiver_id, None, None)
    if role is Role.staff:
        args: dict[str, object] = {"c": community_id}
        elders = await _ids(conn, "SELECT id FROM elders WHERE community_id = %(c)s", args)
        carers = await _ids(conn, "SELECT id FROM caregivers WHERE community_id = %(c)s", args)
        return Scope(role, user_id, community_id, caregiver_id, elders, carers)
    if role is Role.caregiver:
        if caregiver_id is None:  # an account not (or no longer) tied to a caregiver
            return Scope(role, user_id, community_id, None, frozenset(), frozenset())
        elders = await _ids(
            conn, _CAREGIVER_ELDERS, {"cg": caregiver_id, "day_start": _local_day_start(now)}
        )
        return Scope(role, user_id, community_id, caregiver_id, elders, frozenset({caregiver_id}))
    elders = await _ids(
        conn,
        "SELECT elder_id FROM family_links WHERE user_id = %(u)s AND revoked_at IS NULL",
        {"u": user_id},
    )
    return Scope(role, user_id, community_id, caregiver_id, elders, frozenset())
