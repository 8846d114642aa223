"""Enforced retention: time series and quarantine older than ``retention_days`` go.

The decision is pure (:func:`cutoff`, :func:`expired_partitions`); :func:`prune` does it
against the database, on both storage flavours:

* plain PostgreSQL: whole daily partitions before the cutoff are dropped (cheap, no
  dead rows), and the rows before the cutoff in the one partition that straddles it
  are deleted, so nothing older than the cutoff survives a run;
* TimescaleDB: the hypertables' retention policies are set to the configured period
  (added, changed or removed to match it) and chunks wholly before the cutoff are
  dropped now; the chunk that straddles the cutoff goes when it has aged out (chunks
  are one day).

The quarantine and caregiver position history follow the same period.  ``retention_days``
0 keeps everything.  Every API process runs :class:`RetentionJob`; a transaction-level
advisory lock lets one node prune at a time, and a short lock timeout means a long
report query postpones the prune rather than stalling ingest behind it.

>>> t = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
>>> cutoff(t, 30)
datetime.datetime(2026, 11, 4, 3, 0, tzinfo=datetime.timezone.utc)
>>> cutoff(t, 0) is None
True
>>> expired_partitions(["vitals_p20261103", "vitals_p20261104", "vitals_pdefault"], cutoff(t, 30))
['vitals_p20261103']
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

import psycopg
from psycopg import sql

from storage import timeseries

log = logging.getLogger("eldercare.retention")
_LOCK_KEY: Final = 0x0E1DE2CA2F  # one pruner at a time across API nodes and the CLI
LOCK_TIMEOUT: Final = "2s"
# Tables pruned by row (not partitioned), with their time column.
ROW_TABLES: Final = (("quarantine", "received_at"), ("caregiver_positions", "ts"))


def cutoff(now: datetime, retention_days: int) -> datetime | None:
    """The instant before which data goes; None keeps everything (``retention_days`` 0)."""
    if retention_days <= 0:
        return None
    return now.astimezone(UTC) - timedelta(days=retention_days)


def expired_partitions(names: Iterable[str], before: datetime) -> list[str]:
    """Daily partitions (``<table>_pYYYYMMDD``, UTC days) that end at or before ``before``."""
    out = []
    for name in names:
        day = _partition_day(name)
        if day is not None and datetime.combine(day, time(), UTC) + timedelta(days=1) <= before:
            out.append(name)
    return sorted(out)


def _partition_day(name: str) -> date | None:
    stamp = name.rsplit("_p", 1)[-1]
    try:
        return datetime.strptime(stamp, "%Y%m%d").date()
    except ValueError:
        return None


@dataclass
class Pruned:
    """What one run did: rows deleted and partitions (or chunks) dropped, per table."""

    cutoff: datetime | None
    rows: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    skipped: str | None = None  # why nothing was done (another node, a busy table)


def prune(conn: psycopg.Connection, *, now: datetime, retention_days: int) -> Pruned:
    """One enforcement run; commits its own transaction."""
    before = cutoff(now, retention_days)
    result = Pruned(before)
    try:
        with conn.transaction():
            got = conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (_LOCK_KEY,)).fetchone()
            if not got or not got[0]:
                result.skipped = "another process is pruning"
                return result
            conn.execute(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            if timeseries.is_timescale(conn):
                _timescale(conn, retention_days, before, result)
            elif before is not None:
                _partitions(conn, before, result)
            if before is not None:
                for table, column in ROW_TABLES:
                    cur = conn.execute(
                        sql.SQL("DELETE FROM {} WHERE {} < %s").format(
                            sql.Identifier(table), sql.Identifier(column)
                        ),
                        (before,),
                    )
                    result.rows[table] = cur.rowcount
    except psycopg.errors.LockNotAvailable:
        result.rows.clear()
        result.dropped.clear()
        result.skipped = "tables busy: postponed"
    return result


def _partitions(conn: psycopg.Connection, before: datetime, result: Pruned) -> None:
    for table in timeseries.TABLES:
        names = [
            n
            for (n,) in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
                (table.name,),
            )
        ]
        gone = expired_partitions(names, before)
        for name in gone:
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
        result.dropped[table.name] = len(gone)
        # Partition pruning confines this to the partition that straddles the cutoff.
        cur = conn.execute(
            sql.SQL("DELETE FROM {} WHERE ts < %s").format(sql.Identifier(table.name)), (before,)
        )
        result.rows[table.name] = cur.rowcount


def _timescale(
    conn: psycopg.Connection, retention_days: int, before: datetime | None, result: Pruned
) -> None:
    for table in timeseries.TABLES:
        row = conn.execute(
            "SELECT (config->>'drop_after')::interval = make_interval(days => %s)"
            " FROM timescaledb_information.jobs"
            " WHERE proc_name = 'policy_retention' AND hypertable_name = %s",
            (retention_days, table.name),
        ).fetchone()
        if row is not None and (retention_days <= 0 or not row[0]):
            conn.execute("SELECT remove_retention_policy(%s, if_exists => true)", (table.name,))
            row = None
        if row is None and retention_days > 0:
            conn.execute(
                "SELECT add_retention_policy(%s, make_interval(days => %s))",
                (table.name, retention_days),
            )
        if before is not None:
            dropped = conn.execute(
                "SELECT count(*) FROM drop_chunks(%s, older_than => %s)", (table.name, before)
            ).fetchone()
            result.dropped[table.name] = int(dropped[0]) if dropped else 0


Clock = Callable[[], datetime]


class RetentionJob:
    """Prunes every ``interval_s`` in the API process (the first run soon after start)."""

    def __init__(
        self,
        database_url: str,
        *,
        retention_days: int,
        interval_s: float,
        clock: Clock = lambda: datetime.now(UTC),
    ) -> None:
        self.database_url = database_url
        self.retention_days = retention_days
        self.interval_s = interval_s
        self.clock = clock
        self.runs = 0
        self.failures = 0
        self.last: Pruned | None = None

    def run_once(self) -> Pruned:
        with psycopg.connect(self.database_url, connect_timeout=5) as conn:
            return prune(conn, now=self.clock(), retention_days=self.retention_days)

    async def run(self) -> None:
        await asyncio.sleep(min(self.interval_s, 60.0))
        while True:
            try:
                self.last = await asyncio.to_thread(self.run_once)
                self.runs += 1
                if self.last.rows or self.last.dropped:
                    log.info(
                        "retention (before %s): rows %s, partitions %s",
                        self.last.cutoff,
                        self.last.rows,
                        self.last.dropped,
                    )
            except psycopg.Error as exc:  # the database away: try again next interval
                self.failures += 1
                log.warning("retention run failed: %s", exc)
            await asyncio.sleep(self.interval_s)
