"""Versioned migrations, applied in order, once, under an advisory lock.

SQL migrations live in ``storage/migrations/NNNN_name.sql``; a migration whose DDL
depends on the server (TimescaleDB or not) is a Python step registered here.  A
tiny runner rather than Alembic: the schema is raw SQL and psycopg, with no ORM
models for Alembic to diff, and the runner is the 60 lines below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

import psycopg

from storage import timeseries

_LOCK_KEY = 0x0E1DE2CA2E  # any constant; keeps two starting processes from racing


@dataclass(frozen=True, slots=True)
class Options:
    timescale_mode: str = "auto"
    retention_days: int = 400
    back_days: int = 4
    ahead_days: int = 3


Step = Callable[[psycopg.Connection, Options], None]


def _sql(filename: str) -> Step:
    def run(conn: psycopg.Connection, _: Options) -> None:
        text = resources.files("storage.migrations").joinpath(filename).read_text("utf-8")
        conn.execute(text)  # type: ignore[arg-type]  # trusted file shipped with the package

    return run


def _timeseries(conn: psycopg.Connection, opts: Options) -> None:
    timeseries.create(
        conn,
        timescale=timeseries.has_timescale(conn, opts.timescale_mode),
        retention_days=opts.retention_days,
    )


MIGRATIONS: tuple[tuple[int, str, Step], ...] = (
    (1, "core", _sql("0001_core.sql")),
    (2, "timeseries", _timeseries),
    (3, "alerts", _sql("0003_alerts.sql")),
    (4, "detection", _sql("0004_detection.sql")),
    (5, "orders", _sql("0005_orders.sql")),
    (6, "accounts", _sql("0006_accounts.sql")),
    (7, "audit", _sql("0007_audit.sql")),
    (8, "notifications", _sql("0008_notifications.sql")),
)


def migrate(url: str, opts: Options = Options()) -> list[str]:
    """Apply pending migrations; return the names applied.  Safe to run concurrently."""
    applied: list[str] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version int PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
            for version, name, step in MIGRATIONS:
                if version in done:
                    continue
                with conn.transaction():
                    step(conn, opts)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (version, name),
                    )
                applied.append(f"{version:04d}_{name}")
            with conn.transaction():
                timeseries.maintain(
                    conn,
                    now=datetime.now(UTC),
                    back_days=opts.back_days,
                    ahead_days=opts.ahead_days,
                    retention_days=opts.retention_days,
                )
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied


def current_version(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row else 0
