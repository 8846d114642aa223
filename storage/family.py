"""What the family page reads: a family member's linked elders and one elder's card.

An elder is reachable only through an unrevoked ``family_links`` row; the routes ask
:func:`is_linked` before anything else and answer 404 otherwise, so a stranger cannot
even learn that an elder id exists.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from storage.registry import NotFound

_ELDER = (
    "SELECT e.id AS elder_id, e.name, c.name AS community{extra}"
    " FROM elders e LEFT JOIN communities c ON c.id = e.community_id"
)


async def linked_elders(conn: AsyncConnection, user_id: int) -> list[dict[str, Any]]:
    """The elders ``user_id`` has an open, consented link to."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            _ELDER.format(extra=", l.relation, l.consent_recorded_at, l.consented_by")
            + " JOIN family_links l ON l.elder_id = e.id"
            " WHERE l.user_id = %s AND l.revoked_at IS NULL ORDER BY e.id",
            (user_id,),
        )
        return await cur.fetchall()


async def all_elders(conn: AsyncConnection, limit: int = 500) -> list[dict[str, Any]]:
    """Every elder (an administrator helping a family over the phone)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            _ELDER.format(
                extra=", NULL::text AS relation, NULL::timestamptz AS consent_recorded_at,"
                " NULL::text AS consented_by"
            )
            + " ORDER BY e.id LIMIT %s",
            (limit,),
        )
        return await cur.fetchall()


async def is_linked(conn: AsyncConnection, user_id: int, elder_id: int) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM family_links WHERE user_id = %s AND elder_id = %s AND revoked_at IS NULL",
        (user_id, elder_id),
    )
    return await cur.fetchone() is not None


async def elder_state(conn: AsyncConnection, elder_id: int) -> dict[str, Any]:
    """Name, community and the newest device state (``None`` values before any data)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            _ELDER.format(
                extra=", l.last_seen, l.pos_ts, l.lat, l.lon, l.acc, l.vitals_ts, l.hr,"
                " l.spo2, l.sbp, l.dbp, l.temp, l.battery, l.worn, l.online"
            )
            + " LEFT JOIN latest_state l ON l.elder_id = e.id WHERE e.id = %s",
            (elder_id,),
        )
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"elder {elder_id} is not one of yours")
    return row
