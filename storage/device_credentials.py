"""Each device's MQTT password hash: issue (or rotate), revoke, list the active ones."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from storage.registry import NotFound


async def issue(
    conn: AsyncConnection, device_id: str, *, secret_hash: str, now: datetime
) -> dict[str, Any]:
    """Store a new hash for the device, replacing (rotating) any earlier one."""
    cur = await conn.execute("SELECT 1 FROM devices WHERE id = %s FOR UPDATE", (device_id,))
    if await cur.fetchone() is None:
        raise NotFound(f"device {device_id} does not exist")
    async with conn.cursor(row_factory=dict_row) as c:
        await c.execute(
            "INSERT INTO device_credentials (device_id, secret_hash, issued_at)"
            " VALUES (%s, %s, %s) ON CONFLICT (device_id) DO UPDATE"
            " SET secret_hash = excluded.secret_hash, issued_at = excluded.issued_at,"
            " revoked_at = NULL"
            " RETURNING device_id, issued_at",
            (device_id, secret_hash, now),
        )
        row = await c.fetchone()
    assert row is not None
    return row


async def revoke(conn: AsyncConnection, device_id: str, *, now: datetime) -> None:
    cur = await conn.execute(
        "UPDATE device_credentials SET revoked_at = %s WHERE device_id = %s AND revoked_at IS NULL",
        (now, device_id),
    )
    if cur.rowcount == 0:
        exists = await (
            await conn.execute("SELECT 1 FROM devices WHERE id = %s", (device_id,))
        ).fetchone()
        raise NotFound(
            f"device {device_id} has no active credentials"
            if exists
            else f"device {device_id} does not exist"
        )


async def status(conn: AsyncConnection, device_id: str) -> dict[str, Any]:
    """When the device's credentials were issued and revoked (both None: never issued)."""
    async with conn.cursor(row_factory=dict_row) as c:
        await c.execute(
            "SELECT d.id AS device_id, c.issued_at, c.revoked_at FROM devices d"
            " LEFT JOIN device_credentials c ON c.device_id = d.id WHERE d.id = %s",
            (device_id,),
        )
        row = await c.fetchone()
    if row is None:
        raise NotFound(f"device {device_id} does not exist")
    return row


_ACTIVE = (
    "SELECT c.device_id, c.secret_hash FROM device_credentials c"
    " JOIN devices d ON d.id = c.device_id WHERE c.revoked_at IS NULL"
)


async def active_hashes(conn: AsyncConnection) -> dict[str, str]:
    """device id → password hash, for every device allowed on the broker."""
    cur = await conn.execute(_ACTIVE)
    return {r[0]: r[1] for r in await cur.fetchall()}


def active_hashes_sync(conn: psycopg.Connection) -> dict[str, str]:
    """The same, for the broker's start (before any event loop runs)."""
    return {r[0]: r[1] for r in conn.execute(_ACTIVE).fetchall()}
