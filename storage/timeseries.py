"""The time-series tables, in two flavours with one shape.

With the ``timescaledb`` extension they are hypertables with compression and
retention policies; on plain PostgreSQL they are range-partitioned by day, with
partitions created ahead (and dropped past retention) by :func:`maintain`.  Every
query elsewhere is written against the parent table, so it runs on both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import psycopg
from psycopg import sql


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]  # (name, SQL type) after the common key columns

    @property
    def all_columns(self) -> tuple[str, ...]:
        return (*(c for c, _ in KEY_COLUMNS), *(c for c, _ in self.columns), "received_at")

    @property
    def copy_types(self) -> tuple[str, ...]:
        return (*(t for _, t in KEY_COLUMNS), *(t for _, t in self.columns), "timestamptz")


KEY_COLUMNS = (
    ("ts", "timestamptz"),
    ("device_id", "text"),
    ("seq", "bigint"),
    ("elder_id", "bigint"),
)

VITALS = Table(
    "vitals",
    (
        ("hr", "real"),
        ("spo2", "real"),
        ("sbp", "real"),
        ("dbp", "real"),
        ("temp", "real"),
        ("rr", "real"),
        ("steps", "integer"),
        ("battery", "real"),
        ("worn", "boolean"),
    ),
)
POSITIONS = Table(
    "positions",
    (("lat", "double precision"), ("lon", "double precision"), ("acc", "real"), ("src", "text")),
)
EVENTS = Table("device_events", (("type", "text"), ("kind", "text"), ("accel", "jsonb")))
TABLES = (VITALS, POSITIONS, EVENTS)


def has_timescale(conn: psycopg.Connection, mode: str) -> bool:
    """Whether to build hypertables: ``mode`` is the setting (auto / on / off)."""
    if mode == "off":
        return False
    available = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if available is None:
        if mode == "on":
            raise RuntimeError(
                "ELDERCARE_TIMESCALE=on but the timescaledb extension is not installed"
                " in this PostgreSQL; install it or set ELDERCARE_TIMESCALE=auto"
            )
        return False
    preloaded = conn.execute("SHOW shared_preload_libraries").fetchone()
    if preloaded is None or "timescaledb" not in preloaded[0]:
        if mode == "on":
            raise RuntimeError("timescaledb is installed but not in shared_preload_libraries")
        return False
    return True


def create(conn: psycopg.Connection, *, timescale: bool, retention_days: int) -> None:
    """DDL of the time-series tables (migration 0002)."""
    if timescale:
        conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    for table in TABLES:
        cols = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t))
            for c, t in (*KEY_COLUMNS, *table.columns)
        )
        tail = sql.SQL("") if timescale else sql.SQL(" PARTITION BY RANGE (ts)")
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} ({}, received_at timestamptz NOT NULL DEFAULT now(),"
                " CHECK (ts IS NOT NULL AND device_id IS NOT NULL AND seq IS NOT NULL)){}"
            ).format(sql.Identifier(table.name), cols, tail)
        )
        # (device, seq, ts) is the identity of a sample: a re-sent message is stored once.
        conn.execute(
            sql.SQL("CREATE UNIQUE INDEX {} ON {} (device_id, seq, ts)").format(
                sql.Identifier(f"{table.name}_identity"), sql.Identifier(table.name)
            )
        )
        conn.execute(
            sql.SQL("CREATE INDEX {} ON {} (elder_id, ts DESC)").format(
                sql.Identifier(f"{table.name}_elder_ts"), sql.Identifier(table.name)
            )
        )
        if timescale:
            conn.execute(
                "SELECT create_hypertable(%s, 'ts', chunk_time_interval => interval '1 day')",
                (table.name,),
            )
            conn.execute(
                sql.SQL(
                    "ALTER TABLE {} SET (timescaledb.compress,"
                    " timescaledb.compress_segmentby = 'device_id',"
                    " timescaledb.compress_orderby = 'ts DESC, seq')"
                ).format(sql.Identifier(table.name))
            )
            conn.execute("SELECT add_compression_policy(%s, interval '7 days')", (table.name,))
            if retention_days > 0:  # 0 = keep forever
                conn.execute(
                    "SELECT add_retention_policy(%s, make_interval(days => %s))",
                    (table.name, retention_days),
                )
    conn.execute(
        "CREATE TABLE storage_flavour (only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),"
        " timescale boolean NOT NULL)"
    )
    conn.execute("INSERT INTO storage_flavour (timescale) VALUES (%s)", (timescale,))


def is_timescale(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT timescale FROM storage_flavour").fetchone()
    return bool(row and row[0])


def maintain(
    conn: psycopg.Connection,
    *,
    now: datetime,
    back_days: int,
    ahead_days: int,
    retention_days: int,
) -> dict[str, int]:
    """Create missing daily partitions for [now - back, now + ahead]; drop those past
    retention.  A no-op on TimescaleDB, whose policies do the same job.

    Returns how many partitions were created and dropped.
    """
    if is_timescale(conn):
        return {"created": 0, "dropped": 0}
    created = dropped = 0
    today = now.astimezone(UTC).date()
    # retention_days 0 keeps everything (date.min: no partition is ever past it).
    horizon = today - timedelta(days=retention_days) if retention_days > 0 else date.min
    for table in TABLES:
        existing = {
            name
            for (name,) in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
                (table.name,),
            )
        }
        for offset in range(-back_days, ahead_days + 1):
            day = today + timedelta(days=offset)
            if day < horizon:
                continue
            name = partition_name(table.name, day)
            if name in existing:
                continue
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})"
                ).format(
                    sql.Identifier(name),
                    sql.Identifier(table.name),
                    sql.Literal(f"{day.isoformat()} 00:00:00+00"),
                    sql.Literal(f"{(day + timedelta(days=1)).isoformat()} 00:00:00+00"),
                )
            )
            created += 1
        for name in existing:
            day = _partition_day(name)
            if day is not None and day < horizon:
                conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
                dropped += 1
    return {"created": created, "dropped": dropped}


def partition_name(table: str, day: date) -> str:
    """>>> partition_name("vitals", date(2026, 11, 28))
    'vitals_p20261128'
    """
    return f"{table}_p{day:%Y%m%d}"


def _partition_day(name: str) -> date | None:
    stamp = name.rsplit("_p", 1)[-1]
    try:
        return datetime.strptime(stamp, "%Y%m%d").date()
    except ValueError:
        return None
