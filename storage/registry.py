"""Elders, devices and who wears what: the data-access functions behind the API."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row

ELDER_FIELDS = (
    "name",
    "gender",
    "birth_year",
    "address",
    "phone",
    "home_lat",
    "home_lon",
    "notes",
    "external_key",
    "community_id",
)
_ELDER_SELECT = (
    "SELECT e.id, e.name, e.gender, e.birth_year, e.address, e.phone, e.home_lat, e.home_lon,"
    " e.notes, e.external_key, e.community_id, e.created_at, e.updated_at,"
    " coalesce(array_agg(d.id ORDER BY d.id) FILTER (WHERE d.id IS NOT NULL), '{}') AS device_ids"
    " FROM elders e LEFT JOIN devices d ON d.elder_id = e.id"
)
_DEVICE_SELECT = (
    "SELECT id, model, elder_id, report_interval_s, online, status_at, created_at FROM devices"
)


class NotFound(LookupError):
    pass


class Conflict(ValueError):
    pass


async def list_elders(
    conn: AsyncConnection, *, limit: int, offset: int, elder_ids: list[int] | None = None
) -> tuple[list[dict[str, Any]], int]:
    """A page of elders and the total; ``elder_ids``: only those (a caller's scope)."""
    only = " WHERE %(ids)s::bigint[] IS NULL OR e.id = ANY(%(ids)s::bigint[])"
    args = {"ids": elder_ids, "limit": limit, "offset": offset}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            _ELDER_SELECT + only + " GROUP BY e.id ORDER BY e.id LIMIT %(limit)s OFFSET %(offset)s",
            args,
        )
        rows = await cur.fetchall()
        await cur.execute("SELECT count(*) AS n FROM elders e" + only, args)
        total = (await cur.fetchone() or {"n": 0})["n"]
    return rows, total


async def get_elder(conn: AsyncConnection, elder_id: int) -> dict[str, Any]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_ELDER_SELECT + " WHERE e.id = %s GROUP BY e.id", (elder_id,))
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"elder {elder_id} does not exist")
    return row


async def create_elder(conn: AsyncConnection, fields: dict[str, Any]) -> dict[str, Any]:
    cols = [k for k in ELDER_FIELDS if k in fields]
    stmt = sql.SQL("INSERT INTO elders ({}) VALUES ({}) RETURNING id").format(
        sql.SQL(", ").join(map(sql.Identifier, cols)),
        sql.SQL(", ").join(sql.Placeholder() * len(cols)),
    )
    cur = await conn.execute(stmt, [fields[c] for c in cols])
    row = await cur.fetchone()
    assert row is not None
    return await get_elder(conn, row[0])


async def update_elder(
    conn: AsyncConnection, elder_id: int, fields: dict[str, Any]
) -> dict[str, Any]:
    cols = [k for k in ELDER_FIELDS if k in fields]
    if cols:
        stmt = sql.SQL("UPDATE elders SET {}, updated_at = now() WHERE id = %s").format(
            sql.SQL(", ").join(
                sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder()) for c in cols
            )
        )
        cur = await conn.execute(stmt, [*(fields[c] for c in cols), elder_id])
        if cur.rowcount == 0:
            raise NotFound(f"elder {elder_id} does not exist")
    return await get_elder(conn, elder_id)


async def delete_elder(conn: AsyncConnection, elder_id: int) -> None:
    await conn.execute(
        "UPDATE device_pairings SET unpaired_at = now() WHERE elder_id = %s AND unpaired_at IS NULL",
        (elder_id,),
    )
    cur = await conn.execute("DELETE FROM elders WHERE id = %s", (elder_id,))
    if cur.rowcount == 0:
        raise NotFound(f"elder {elder_id} does not exist")


async def list_devices(
    conn: AsyncConnection, *, limit: int, offset: int, elder_ids: list[int] | None = None
) -> tuple[list[dict[str, Any]], int]:
    """A page of devices and the total; ``elder_ids``: only those worn by them."""
    only = " WHERE %(ids)s::bigint[] IS NULL OR elder_id = ANY(%(ids)s::bigint[])"
    args = {"ids": elder_ids, "limit": limit, "offset": offset}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            _DEVICE_SELECT + only + " ORDER BY id LIMIT %(limit)s OFFSET %(offset)s", args
        )
        rows = await cur.fetchall()
        await cur.execute("SELECT count(*) AS n FROM devices" + only, args)
        total = (await cur.fetchone() or {"n": 0})["n"]
    return rows, total


async def get_device(conn: AsyncConnection, device_id: str) -> dict[str, Any]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_DEVICE_SELECT + " WHERE id = %s", (device_id,))
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"device {device_id} does not exist")
    return row


async def create_device(
    conn: AsyncConnection,
    device_id: str,
    model: str | None,
    report_interval_s: int,
    elder_id: int | None,
) -> dict[str, Any]:
    cur = await conn.execute(
        "INSERT INTO devices (id, model, report_interval_s) VALUES (%s, %s, %s)"
        " ON CONFLICT (id) DO NOTHING",
        (device_id, model, report_interval_s),
    )
    if cur.rowcount == 0:
        raise Conflict(f"device {device_id} already exists")
    if elder_id is not None:
        return await pair(conn, device_id, elder_id)
    return await get_device(conn, device_id)


async def update_device(
    conn: AsyncConnection, device_id: str, fields: dict[str, Any]
) -> dict[str, Any]:
    cols = [k for k in ("model", "report_interval_s") if k in fields]
    if cols:
        stmt = sql.SQL("UPDATE devices SET {} WHERE id = %s").format(
            sql.SQL(", ").join(
                sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder()) for c in cols
            )
        )
        cur = await conn.execute(stmt, [*(fields[c] for c in cols), device_id])
        if cur.rowcount == 0:
            raise NotFound(f"device {device_id} does not exist")
    return await get_device(conn, device_id)


async def pair(conn: AsyncConnection, device_id: str, elder_id: int) -> dict[str, Any]:
    """Pair a device to an elder, ending any earlier pairing (a swap is one call)."""
    cur = await conn.execute("SELECT 1 FROM elders WHERE id = %s", (elder_id,))
    if await cur.fetchone() is None:
        raise NotFound(f"elder {elder_id} does not exist")
    cur = await conn.execute("SELECT elder_id FROM devices WHERE id = %s FOR UPDATE", (device_id,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"device {device_id} does not exist")
    if row[0] != elder_id:
        await conn.execute(
            "UPDATE device_pairings SET unpaired_at = now() WHERE device_id = %s AND unpaired_at IS NULL",
            (device_id,),
        )
        await conn.execute("UPDATE devices SET elder_id = %s WHERE id = %s", (elder_id, device_id))
        await conn.execute(
            "INSERT INTO device_pairings (device_id, elder_id) VALUES (%s, %s)",
            (device_id, elder_id),
        )
    return await get_device(conn, device_id)


async def unpair(conn: AsyncConnection, device_id: str) -> dict[str, Any]:
    cur = await conn.execute("UPDATE devices SET elder_id = NULL WHERE id = %s", (device_id,))
    if cur.rowcount == 0:
        raise NotFound(f"device {device_id} does not exist")
    await conn.execute(
        "UPDATE device_pairings SET unpaired_at = now() WHERE device_id = %s AND unpaired_at IS NULL",
        (device_id,),
    )
    return await get_device(conn, device_id)


async def delete_device(conn: AsyncConnection, device_id: str) -> None:
    cur = await conn.execute("DELETE FROM devices WHERE id = %s", (device_id,))
    if cur.rowcount == 0:
        raise NotFound(f"device {device_id} does not exist")


async def community(conn: AsyncConnection) -> dict[str, Any] | None:
    """The (first) community: name, centre and its GeoJSON outline."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, name, center_lat, center_lon, geojson FROM communities ORDER BY id LIMIT 1"
        )
        return await cur.fetchone()


async def elder_names(conn: AsyncConnection, ids: list[int]) -> dict[int, str]:
    cur = await conn.execute("SELECT id, name FROM elders WHERE id = ANY(%s)", (ids,))
    return dict(await cur.fetchall())
