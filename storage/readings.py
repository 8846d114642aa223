"""Reading back: the map's first paint, one elder's history in time buckets, the quarantine.

``date_bin`` (PostgreSQL 14+) is used instead of TimescaleDB's ``time_bucket`` so
that one query serves both storage flavours.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

LATEST_COLUMNS = (
    "elder_id",
    "device_id",
    "last_seen",
    "pos_ts",
    "lat",
    "lon",
    "acc",
    "src",
    "vitals_ts",
    "hr",
    "spo2",
    "sbp",
    "dbp",
    "temp",
    "rr",
    "steps",
    "battery",
    "worn",
    "event_ts",
    "event_type",
    "online",
    "status_at",
)


async def latest_all(conn: AsyncConnection) -> list[dict[str, Any]]:
    """Every elder with their newest state (elders with no data yet included)."""
    cols = ", ".join(f"l.{c}" for c in LATEST_COLUMNS if c != "elder_id")
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT e.id AS elder_id, e.name, e.home_lat, e.home_lon,"
            f" coalesce(l.device_id, (SELECT min(d.id) FROM devices d WHERE d.elder_id = e.id)) AS device,"
            f" {cols} FROM elders e LEFT JOIN latest_state l ON l.elder_id = e.id ORDER BY e.id"
        )
        rows = await cur.fetchall()
    for r in rows:
        r["device_id"] = r.pop("device")
    return rows


VITAL_METRICS = ("hr", "spo2", "sbp", "dbp", "temp", "rr", "battery")


async def vitals_series(
    conn: AsyncConnection, elder_id: int, start: datetime, end: datetime, bucket: timedelta
) -> list[dict[str, Any]]:
    aggs = ", ".join(
        f"avg({m})::real AS {m}, min({m}) AS {m}_min, max({m}) AS {m}_max" for m in VITAL_METRICS
    )
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT date_bin(%s, ts, %s) AS bucket, count(*) AS samples, {aggs},"
            " max(steps) AS steps, bool_and(worn) AS worn"
            " FROM vitals WHERE elder_id = %s AND ts >= %s AND ts < %s"
            " GROUP BY 1 ORDER BY 1",
            (bucket, start, elder_id, start, end),
        )
        return await cur.fetchall()


async def positions_series(
    conn: AsyncConnection, elder_id: int, start: datetime, end: datetime, bucket: timedelta
) -> list[dict[str, Any]]:
    """The most accurate fix of each bucket (an average of a wifi and a GPS fix is neither)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT DISTINCT ON (bucket) date_bin(%s, ts, %s) AS bucket, ts, lat, lon, acc, src,"
            " count(*) OVER (PARTITION BY date_bin(%s, ts, %s)) AS samples"
            " FROM positions WHERE elder_id = %s AND ts >= %s AND ts < %s"
            " ORDER BY bucket, acc, ts DESC",
            (bucket, start, bucket, start, elder_id, start, end),
        )
        return await cur.fetchall()


async def quarantine_page(
    conn: AsyncConnection,
    *,
    reason: str | None,
    device_id: str | None,
    before_id: int | None,
    limit: int,
) -> list[dict[str, Any]]:
    where, args = ["true"], []
    if reason:
        where.append("reason = %s")
        args.append(reason)
    if device_id:
        where.append("device_id = %s")
        args.append(device_id)
    if before_id:
        where.append("id < %s")
        args.append(before_id)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, received_at, topic, device_id, reason, detail, item_index, raw, raw_size"
            f" FROM quarantine WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT %s",
            (*args, limit),
        )
        return await cur.fetchall()


async def quarantine_counts(conn: AsyncConnection, since: datetime | None) -> dict[str, int]:
    cur = await conn.execute(
        "SELECT reason, count(*) FROM quarantine WHERE %s::timestamptz IS NULL OR received_at >= %s"
        " GROUP BY reason ORDER BY reason",
        (since, since),
    )
    return {reason: n for reason, n in await cur.fetchall()}
