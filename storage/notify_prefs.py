"""How each person wants to be notified: one row per user (``notification_preferences``).

Validation of what a channel may be is the API's (``api/routes/family.py``); the
notification sender reads :func:`get` too.
"""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

DEFAULT: dict[str, Any] = {"channels": [{"kind": "in_app", "address": None}]}


async def get(conn: AsyncConnection, user_id: int) -> dict[str, Any]:
    """The user's preferences; a user who never chose gets in-app only, no quiet hours."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT user_id, channels, quiet_start, quiet_end, updated_at"
            " FROM notification_preferences WHERE user_id = %s",
            (user_id,),
        )
        row = await cur.fetchone()
    if row is None:
        return {
            "user_id": user_id,
            **DEFAULT,
            "quiet_start": None,
            "quiet_end": None,
            "updated_at": None,
        }
    return row


async def put(
    conn: AsyncConnection,
    user_id: int,
    *,
    channels: list[dict[str, Any]],
    quiet_start: time | None,
    quiet_end: time | None,
    now: datetime,
) -> dict[str, Any]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "INSERT INTO notification_preferences (user_id, channels, quiet_start, quiet_end,"
            " updated_at) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (user_id) DO UPDATE SET"
            " channels = excluded.channels, quiet_start = excluded.quiet_start,"
            " quiet_end = excluded.quiet_end, updated_at = excluded.updated_at"
            " RETURNING user_id, channels, quiet_start, quiet_end, updated_at",
            (user_id, Jsonb(channels), quiet_start, quiet_end, now),
        )
        row = await cur.fetchone()
    assert row is not None
    return row
