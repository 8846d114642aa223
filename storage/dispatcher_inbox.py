"""What the dispatcher polls besides orders: device ``service`` events (an elder pressing
the watch's service button) not yet turned into orders, and the marks that say how far
each poller got, so a restart neither misses nor repeats one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from storage.orders import utc_row


async def get_mark(conn: AsyncConnection, name: str) -> datetime | None:
    """Where the dispatcher's poller ``name`` got to (None: never ran)."""
    cur = await conn.execute("SELECT mark FROM dispatcher_marks WHERE name = %s", (name,))
    row = await cur.fetchone()
    return None if row is None else row[0].astimezone(UTC)


async def set_mark(conn: AsyncConnection, name: str, mark: datetime) -> None:
    """Move poller ``name``'s mark forward (never back: two nodes may both run it)."""
    await conn.execute(
        "INSERT INTO dispatcher_marks (name, mark) VALUES (%s, %s) ON CONFLICT (name)"
        " DO UPDATE SET mark = greatest(dispatcher_marks.mark, EXCLUDED.mark)",
        (name, mark),
    )


async def service_events(
    conn: AsyncConnection, received_since: datetime, ts_since: datetime, limit: int = 1000
) -> list[dict[str, Any]]:
    """Device ``service`` events received after ``received_since`` (and taken after
    ``ts_since``, which bounds the partitions read) that have no order yet, oldest
    first: ``{ts, device_id, seq, elder_id, kind, received_at, source_ref}``."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """
            SELECT * FROM (
                SELECT ts, device_id, seq, elder_id, kind, received_at,
                       'event:' || device_id || ':' || seq || ':'
                       || (extract(epoch FROM ts) * 1000)::bigint AS source_ref
                FROM device_events
                WHERE type = 'service' AND received_at > %s AND ts > %s
            ) e
            WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.source_ref = e.source_ref)
            ORDER BY received_at, device_id, seq LIMIT %s
            """,
            (received_since, ts_since, limit),
        )
        return [utc_row(r) for r in await cur.fetchall()]
