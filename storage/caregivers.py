"""Caregivers, their shifts and positions in the database, and the roster dispatch reads.

A caregiver's newest position is on their row (``last_lat`` ...) for the map and for
dispatch; every fix is also kept in ``caregiver_positions`` (trimmed after the
retention period by :func:`trim_positions`).  "On shift" and "active orders" are
computed at read time from ``caregiver_shifts`` and ``orders``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

from orders.dispatch import Caregiver, Shift
from storage.registry import NotFound

FIELDS: Final = ("name", "phone", "skills", "max_load", "active", "community_id")
ACTIVE_STATES: Final = ("assigned", "accepted", "en_route", "in_service")
_SELECT: Final = f"""
SELECT c.id, c.community_id, c.name, c.phone, c.skills, c.max_load, c.active, c.created_at,
       c.updated_at, c.last_lat, c.last_lon, c.last_acc, c.last_pos_at,
       EXISTS (SELECT 1 FROM caregiver_shifts s WHERE s.caregiver_id = c.id
               AND s.starts_at <= %(now)s AND (s.ends_at IS NULL OR s.ends_at > %(now)s))
           AS on_shift,
       (SELECT count(*) FROM orders o WHERE o.caregiver_id = c.id
        AND o.state IN ({", ".join(f"'{s}'" for s in ACTIVE_STATES)}))::int AS active_orders
FROM caregivers c
"""


def _utc(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.astimezone(UTC) if isinstance(v, datetime) else v for k, v in row.items()}


async def list_caregivers(
    conn: AsyncConnection,
    now: datetime,
    *,
    on_shift: bool | None = None,
    active: bool | None = None,
) -> list[dict[str, Any]]:
    """Caregivers with ``on_shift`` (at ``now``) and ``active_orders``, by id."""
    where = ["true"]
    if active is not None:
        where.append("c.active = %(active)s")
    query = f"SELECT * FROM ({_SELECT} WHERE {' AND '.join(where)}) x"
    if on_shift is not None:
        query += " WHERE x.on_shift = %(on_shift)s"
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            query + " ORDER BY id", {"now": now, "on_shift": on_shift, "active": active}
        )
        return [_utc(r) for r in await cur.fetchall()]


async def get_caregiver(conn: AsyncConnection, caregiver_id: int, now: datetime) -> dict[str, Any]:
    """One caregiver as :func:`list_caregivers` shows them (raises NotFound)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_SELECT + " WHERE c.id = %(id)s", {"now": now, "id": caregiver_id})
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"caregiver {caregiver_id} does not exist")
    return _utc(row)


async def create_caregiver(
    conn: AsyncConnection, fields: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """A new caregiver from ``fields`` (keys of :data:`FIELDS`; ``name`` required).
    Skills outside the catalogue's are refused by the table (IntegrityError → 422)."""
    cols = [k for k in FIELDS if k in fields]
    stmt = sql.SQL("INSERT INTO caregivers ({}) VALUES ({}) RETURNING id").format(
        sql.SQL(", ").join(map(sql.Identifier, cols)),
        sql.SQL(", ").join(sql.Placeholder() * len(cols)),
    )
    cur = await conn.execute(stmt, [_value(c, fields[c]) for c in cols])
    row = await cur.fetchone()
    assert row is not None
    return await get_caregiver(conn, row[0], now)


async def update_caregiver(
    conn: AsyncConnection, caregiver_id: int, fields: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """Change the given :data:`FIELDS` (raises NotFound)."""
    cols = [k for k in FIELDS if k in fields]
    if cols:
        stmt = sql.SQL("UPDATE caregivers SET {}, updated_at = now() WHERE id = %s").format(
            sql.SQL(", ").join(
                sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder()) for c in cols
            )
        )
        cur = await conn.execute(stmt, [*(_value(c, fields[c]) for c in cols), caregiver_id])
        if cur.rowcount == 0:
            raise NotFound(f"caregiver {caregiver_id} does not exist")
    return await get_caregiver(conn, caregiver_id, now)


def _value(column: str, value: Any) -> Any:
    if column == "skills" and value is not None:  # null: refused by NOT NULL, a 422
        return sorted({str(getattr(s, "value", s)) for s in value})
    return value


# --- shifts -------------------------------------------------------------------------------


async def add_shift(
    conn: AsyncConnection, caregiver_id: int, starts_at: datetime, ends_at: datetime | None
) -> dict[str, Any]:
    """A shift ``[starts_at, ends_at)`` in UTC (``ends_at`` None: clocked in).  Raises
    NotFound; ``ends_at <= starts_at`` is refused by the table (IntegrityError → 422)."""
    await _exists(conn, caregiver_id)
    cur = await conn.execute(
        "INSERT INTO caregiver_shifts (caregiver_id, starts_at, ends_at) VALUES (%s, %s, %s)"
        " RETURNING id, caregiver_id, starts_at, ends_at",
        (caregiver_id, starts_at, ends_at),
    )
    row = await cur.fetchone()
    assert row is not None
    return _shift(row)


async def list_shifts(
    conn: AsyncConnection, caregiver_id: int, *, since: datetime | None = None
) -> list[dict[str, Any]]:
    """The caregiver's shifts ending after ``since`` (all when None), by start."""
    await _exists(conn, caregiver_id)
    cur = await conn.execute(
        "SELECT id, caregiver_id, starts_at, ends_at FROM caregiver_shifts"
        " WHERE caregiver_id = %s AND (%s::timestamptz IS NULL OR ends_at IS NULL"
        " OR ends_at > %s) ORDER BY starts_at, id",
        (caregiver_id, since, since),
    )
    return [_shift(r) for r in await cur.fetchall()]


async def delete_shift(conn: AsyncConnection, caregiver_id: int, shift_id: int) -> None:
    """Remove one shift (raises NotFound)."""
    cur = await conn.execute(
        "DELETE FROM caregiver_shifts WHERE id = %s AND caregiver_id = %s",
        (shift_id, caregiver_id),
    )
    if cur.rowcount == 0:
        raise NotFound(f"caregiver {caregiver_id} has no shift {shift_id}")


def _shift(row: tuple[Any, ...]) -> dict[str, Any]:
    sid, cid, start, end = row
    return {
        "id": sid,
        "caregiver_id": cid,
        "starts_at": start.astimezone(UTC),
        "ends_at": end.astimezone(UTC) if end else None,
    }


async def _exists(conn: AsyncConnection, caregiver_id: int) -> None:
    cur = await conn.execute("SELECT 1 FROM caregivers WHERE id = %s", (caregiver_id,))
    if await cur.fetchone() is None:
        raise NotFound(f"caregiver {caregiver_id} does not exist")


# --- positions ----------------------------------------------------------------------------


async def record_position(
    conn: AsyncConnection,
    caregiver_id: int,
    lat: float,
    lon: float,
    acc: float | None,
    ts: datetime,
    now: datetime,
) -> dict[str, Any]:
    """Keep a fix in the history and, when newer, as the caregiver's last position;
    returns the live message body ``{id, name, lat, lon, acc, last_pos_at, on_shift,
    active_orders}``.  Raises NotFound; out-of-range values are refused (IntegrityError)."""
    await _exists(conn, caregiver_id)
    await conn.execute(
        "INSERT INTO caregiver_positions (caregiver_id, ts, lat, lon, acc) VALUES (%s, %s, %s, %s, %s)",
        (caregiver_id, ts, lat, lon, acc),
    )
    # A fix uploaded late must not move the dot back to where the caregiver was.
    await conn.execute(
        "UPDATE caregivers SET last_lat = %s, last_lon = %s, last_acc = %s, last_pos_at = %s"
        " WHERE id = %s AND (last_pos_at IS NULL OR last_pos_at <= %s)",
        (lat, lon, acc, ts, caregiver_id, ts),
    )
    # Every node's dashboards hear of the move (api.dispatcher listens on this channel).
    await conn.execute("SELECT pg_notify('eldercare_orders', %s)", (f"caregiver:{caregiver_id}",))
    return live_view(await get_caregiver(conn, caregiver_id, now))


def live_view(c: dict[str, Any]) -> dict[str, Any]:
    """A caregiver as the live hub sends them (``{"type": "caregiver", ...}``)."""
    return {
        "id": c["id"],
        "name": c["name"],
        "lat": c["last_lat"],
        "lon": c["last_lon"],
        "acc": c["last_acc"],
        "last_pos_at": c["last_pos_at"],
        "on_shift": c["on_shift"],
        "active_orders": c["active_orders"],
    }


async def trim_positions(conn: AsyncConnection, before: datetime) -> int:
    """Drop position history older than ``before``; returns how many rows went."""
    cur = await conn.execute("DELETE FROM caregiver_positions WHERE ts < %s", (before,))
    return cur.rowcount


# --- dispatch -----------------------------------------------------------------------------


async def roster(conn: AsyncConnection, now: datetime) -> list[Caregiver]:
    """Every active caregiver as dispatch sees them: skills, the shifts that have not
    ended by ``now``, last position, active orders and maximum load."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"""
            SELECT c.id, c.name, c.skills, c.max_load, c.last_lat, c.last_lon, c.last_pos_at,
                   coalesce(array_agg(s.starts_at ORDER BY s.starts_at)
                            FILTER (WHERE s.id IS NOT NULL), '{{}}') AS starts,
                   coalesce(array_agg(s.ends_at ORDER BY s.starts_at)
                            FILTER (WHERE s.id IS NOT NULL), '{{}}') AS ends,
                   (SELECT count(*) FROM orders o WHERE o.caregiver_id = c.id
                    AND o.state IN ({", ".join(f"'{s}'" for s in ACTIVE_STATES)}))::int AS load
            FROM caregivers c
            LEFT JOIN caregiver_shifts s ON s.caregiver_id = c.id
                 AND (s.ends_at IS NULL OR s.ends_at > %(now)s)
            WHERE c.active
            GROUP BY c.id ORDER BY c.id
            """,
            {"now": now},
        )
        rows = await cur.fetchall()
    return [
        Caregiver(
            r["id"],
            frozenset(r["skills"]),
            tuple(Shift(a, b) for a, b in zip(r["starts"], r["ends"], strict=True)),
            r["last_lat"],
            r["last_lon"],
            r["last_pos_at"],
            r["load"],
            r["max_load"],
            r["name"],
        )
        for r in rows
    ]
