"""One transaction per ingest batch: samples by binary COPY, bad input to the
quarantine, newest values into ``latest_state``.

Fast path: COPY straight into the tables.  A (device, seq, ts) already stored (a
broker redelivery after a crash, a device re-sending) makes COPY fail; the batch is
then written again through a staging table with ``ON CONFLICT DO NOTHING``, so a
duplicate is stored once and counted, at the price of a slower batch only when one
actually occurs.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from storage.timeseries import TABLES, Table

QUARANTINE_COLUMNS = (
    "received_at",
    "topic",
    "device_id",
    "reason",
    "detail",
    "item_index",
    "raw",
    "raw_size",
)
QUARANTINE_TYPES = ("timestamptz", "text", "text", "text", "text", "int4", "bytea", "int4")


@dataclass(slots=True)
class LatestRows:
    """Per-elder newest values found in one batch (column lists for ``unnest``)."""

    positions: list[tuple[Any, ...]] = field(
        default_factory=list
    )  # elder, device, ts, lat, lon, acc, src
    vitals: list[tuple[Any, ...]] = field(default_factory=list)  # elder, device, ts, hr ... worn
    events: list[tuple[Any, ...]] = field(default_factory=list)  # elder, device, ts, type
    statuses: list[tuple[Any, ...]] = field(default_factory=list)  # elder|None, device, ts, online


@dataclass(slots=True)
class Batch:
    rows: dict[str, list[tuple[Any, ...]]] = field(
        default_factory=lambda: {t.name: [] for t in TABLES}
    )
    quarantine: list[tuple[Any, ...]] = field(default_factory=list)
    latest: LatestRows = field(default_factory=LatestRows)

    @property
    def sample_count(self) -> int:
        return sum(len(r) for r in self.rows.values())


@dataclass(frozen=True, slots=True)
class WriteResult:
    stored: dict[str, int]
    duplicates: int
    quarantined: int
    # (device_id, seq, ts) of the samples this write inserted when some were already
    # stored (a redelivery); None when every sample was new.  Only new samples may
    # be judged, or a redelivered SOS would count as a second press.
    inserted: frozenset[tuple[str, int, datetime]] | None = None


def write_batch(conn: psycopg.Connection, batch: Batch) -> WriteResult:
    """Write ``batch`` in one transaction and commit it.  ``conn`` is not autocommit."""
    _ensure_stages(conn)
    inserted: set[tuple[str, int, datetime]] | None = None
    try:
        stored = _write(conn, batch, None)
    except psycopg.errors.UniqueViolation:
        conn.rollback()
        inserted = set()
        stored = _write(conn, batch, inserted)
    conn.commit()
    duplicates = batch.sample_count - sum(stored.values())
    return WriteResult(
        stored,
        duplicates,
        len(batch.quarantine),
        frozenset(inserted) if inserted is not None else None,
    )


def _write(
    conn: psycopg.Connection, batch: Batch, inserted: set[tuple[str, int, datetime]] | None
) -> dict[str, int]:
    """``inserted`` None: the fast path; else skip duplicates and collect what is new."""
    stored: dict[str, int] = {}
    for table in TABLES:
        rows = batch.rows[table.name]
        if not rows:
            stored[table.name] = 0
        elif inserted is not None:
            keys = _copy_dedupe(conn, table, rows)
            inserted.update(keys)
            stored[table.name] = len(keys)
        else:
            _copy(conn, table.name, table.all_columns, table.copy_types, rows)
            stored[table.name] = len(rows)
    if batch.quarantine:
        _copy(conn, "quarantine", QUARANTINE_COLUMNS, QUARANTINE_TYPES, batch.quarantine)
    _upsert_latest(conn, batch.latest)
    return stored


def _copy(
    conn: psycopg.Connection,
    table: str,
    columns: tuple[str, ...],
    types: tuple[str, ...],
    rows: list[tuple[Any, ...]],
) -> None:
    stmt = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )
    with conn.cursor() as cur, cur.copy(stmt) as copy:
        copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)


def _copy_dedupe(
    conn: psycopg.Connection, table: Table, rows: list[tuple[Any, ...]]
) -> list[tuple[str, int, datetime]]:
    stage = f"stage_{table.name}"
    conn.execute(
        sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        ).format(sql.Identifier(stage), sql.Identifier(table.name))
    )
    _copy(conn, stage, table.all_columns, table.copy_types, rows)
    cols = sql.SQL(", ").join(map(sql.Identifier, table.all_columns))
    cur = conn.execute(
        sql.SQL(
            "INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT (device_id, seq, ts) DO NOTHING"
            " RETURNING device_id, seq, ts"
        ).format(sql.Identifier(table.name), cols, cols, sql.Identifier(stage))
    )
    return [(d, q, t) for d, q, t in cur.fetchall()]


# Newer data wins; for vitals each field keeps its last known value, because a
# sample usually carries only some of them (blood pressure hourly, pulse each minute).
_UPSERT_POSITIONS = """
INSERT INTO latest_state AS l (elder_id, device_id, last_seen, pos_ts, lat, lon, acc, src, updated_at)
SELECT e, d, t, t, la, lo, a, s, now()
FROM latest_pos_stage AS u
ON CONFLICT (elder_id) DO UPDATE SET
    device_id = excluded.device_id, pos_ts = excluded.pos_ts, lat = excluded.lat,
    lon = excluded.lon, acc = excluded.acc, src = excluded.src,
    last_seen = greatest(l.last_seen, excluded.last_seen), updated_at = now()
WHERE l.pos_ts IS NULL OR l.pos_ts <= excluded.pos_ts
"""

_VITAL_COLS = ("hr", "spo2", "sbp", "dbp", "temp", "rr", "steps", "battery", "worn")
_VITAL_TYPES = (
    "float4",
    "float4",
    "float4",
    "float4",
    "float4",
    "float4",
    "int4",
    "float4",
    "bool",
)
_UPSERT_VITALS = (
    "INSERT INTO latest_state AS l (elder_id, device_id, last_seen, vitals_ts, "
    + ", ".join(_VITAL_COLS)
    + ", updated_at) SELECT e, d, t, t, "
    + ", ".join(f"v_{c}" for c in _VITAL_COLS)
    + ", now() FROM latest_vitals_stage AS u"
    + " ON CONFLICT (elder_id) DO UPDATE SET device_id = excluded.device_id,"
    + " last_seen = greatest(l.last_seen, excluded.last_seen), updated_at = now(),"
    + " vitals_ts = greatest(l.vitals_ts, excluded.vitals_ts), "
    + ", ".join(
        f"{c} = CASE WHEN l.vitals_ts IS NULL OR l.vitals_ts <= excluded.vitals_ts"
        f" THEN coalesce(excluded.{c}, l.{c}) ELSE coalesce(l.{c}, excluded.{c}) END"
        for c in _VITAL_COLS
    )
)

_UPSERT_EVENTS = """
INSERT INTO latest_state AS l (elder_id, device_id, last_seen, event_ts, event_type, updated_at)
SELECT e, d, t, t, ty, now()
FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::text[]) AS u(e, d, t, ty)
ON CONFLICT (elder_id) DO UPDATE SET
    event_ts = excluded.event_ts, event_type = excluded.event_type,
    last_seen = greatest(l.last_seen, excluded.last_seen), updated_at = now()
WHERE l.event_ts IS NULL OR l.event_ts <= excluded.event_ts
"""

_UPSERT_STATUS_DEVICE = """
UPDATE devices AS dv SET online = u.o, status_at = u.t
FROM unnest(%s::text[], %s::timestamptz[], %s::bool[]) AS u(d, t, o)
WHERE dv.id = u.d AND (dv.status_at IS NULL OR dv.status_at <= u.t)
"""

_UPSERT_STATUS_LATEST = """
INSERT INTO latest_state AS l (elder_id, device_id, online, status_at, updated_at)
SELECT e, d, o, t, now()
FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[], %s::bool[]) AS u(e, d, t, o)
ON CONFLICT (elder_id) DO UPDATE SET online = excluded.online, status_at = excluded.status_at,
    updated_at = now()
WHERE l.status_at IS NULL OR l.status_at <= excluded.status_at
"""


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


# Per-elder rows reach the upserts through binary COPY into session temp tables:
# psycopg adapts big Python lists to arrays in pure Python, COPY rows in C.
_POS_STAGE = (
    ("e", "int8"),
    ("d", "text"),
    ("t", "timestamptz"),
    ("la", "float8"),
    ("lo", "float8"),
    ("a", "float4"),
    ("s", "text"),
)
_VITALS_STAGE = (
    ("e", "int8"),
    ("d", "text"),
    ("t", "timestamptz"),
    *((f"v_{c}", t) for c, t in zip(_VITAL_COLS, _VITAL_TYPES, strict=True)),
)
_staged: weakref.WeakSet[psycopg.Connection] = weakref.WeakSet()


def _ensure_stages(conn: psycopg.Connection) -> None:
    if conn in _staged:
        return
    for name, cols in (("latest_pos_stage", _POS_STAGE), ("latest_vitals_stage", _VITALS_STAGE)):
        conn.execute(
            sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(
                sql.Identifier(name),
                sql.SQL(", ").join(sql.SQL(f"{c} {t}") for c, t in cols),
            )
        )
    conn.commit()  # its own transaction: a failed batch's rollback must not undo it
    _staged.add(conn)


def _upsert_latest(conn: psycopg.Connection, latest: LatestRows) -> None:
    if latest.positions:
        _copy(
            conn,
            "latest_pos_stage",
            tuple(c for c, _ in _POS_STAGE),
            tuple(t for _, t in _POS_STAGE),
            latest.positions,
        )
        conn.execute(_UPSERT_POSITIONS)
    if latest.vitals:
        _copy(
            conn,
            "latest_vitals_stage",
            tuple(c for c, _ in _VITALS_STAGE),
            tuple(t for _, t in _VITALS_STAGE),
            latest.vitals,
        )
        conn.execute(_UPSERT_VITALS)
    if latest.events:
        conn.execute(_UPSERT_EVENTS, _columns(latest.events, 4))
    if latest.statuses:
        _, devices, times, online = _columns(latest.statuses, 4)
        conn.execute(_UPSERT_STATUS_DEVICE, [devices, times, online])
        paired = [s for s in latest.statuses if s[0] is not None]
        if paired:
            conn.execute(_UPSERT_STATUS_LATEST, _columns(paired, 4))
