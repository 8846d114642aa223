"""Retention is enforced: after a run, time series, quarantine and caregiver positions
older than the cutoff are gone and newer ones remain; 0 keeps everything; a busy table
or a second pruner postpones rather than stalls; the API prunes on its own schedule and
survives the database going away; ``eldercare retention run`` does it on demand.

Each test prunes its own fresh database: dropping partitions of the shared one would
pull the floor from under other tests' backfilled readings.
"""

from __future__ import annotations

import asyncio
import doctest
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

import storage.retention
from api.app import create_app
from conftest import eldercare_env, fresh_database, test_settings, wait_until
from eldercare.settings import Settings
from storage.retention import RetentionJob, prune

DAYS = 2


@pytest.fixture
def scratch_url(pg_admin_url: str) -> Iterator[str]:
    with fresh_database(pg_admin_url) as url:
        yield url


def _seed(url: str, now: datetime) -> dict[str, datetime]:
    """A sample in every pruned table at each of four ages around a 2-day cutoff."""
    ages = {
        "three_days": now - timedelta(days=3),
        "just_before": now - timedelta(days=DAYS, minutes=30),
        "just_after": now - timedelta(days=DAYS) + timedelta(minutes=30),
        "fresh": now - timedelta(minutes=5),
    }
    with psycopg.connect(url) as conn:
        (elder,) = conn.execute(
            "INSERT INTO elders (name) VALUES ('保留测试') RETURNING id"
        ).fetchone()
        (cg,) = conn.execute(
            "INSERT INTO caregivers (name) VALUES ('护理员') RETURNING id"
        ).fetchone()
        for seq, ts in enumerate(ages.values()):
            conn.execute(
                "INSERT INTO vitals (ts, device_id, seq, elder_id, hr) VALUES (%s, 'w', %s, %s, 70)",
                (ts, seq, elder),
            )
            conn.execute(
                "INSERT INTO positions (ts, device_id, seq, elder_id, lat, lon)"
                " VALUES (%s, 'w', %s, %s, 34.8, 110.4)",
                (ts, seq, elder),
            )
            conn.execute(
                "INSERT INTO device_events (ts, device_id, seq, elder_id, type)"
                " VALUES (%s, 'w', %s, %s, 'sos')",
                (ts, seq, elder),
            )
            conn.execute(
                "INSERT INTO quarantine (received_at, topic, reason, detail, raw, raw_size)"
                " VALUES (%s, 't', 'malformed_json', 'x', '\\x00', 1)",
                (ts,),
            )
            conn.execute(
                "INSERT INTO caregiver_positions (caregiver_id, ts, lat, lon) VALUES (%s, %s, 34.8, 110.4)",
                (cg, ts),
            )
    return ages


TABLES = {
    "vitals": "ts",
    "positions": "ts",
    "device_events": "ts",
    "quarantine": "received_at",
    "caregiver_positions": "ts",
}


def _kept(url: str) -> dict[str, list[datetime]]:
    with psycopg.connect(url) as conn:
        return {
            t: [r[0] for r in conn.execute(f"SELECT {c} FROM {t} ORDER BY {c}")]
            for t, c in TABLES.items()
        }


def _partition_days(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'vitals' ORDER BY 1"
            )
        ]


def test_doctests() -> None:
    failed, attempted = doctest.testmod(storage.retention)
    assert attempted > 0 and failed == 0


def test_older_than_the_cutoff_goes_newer_stays_in_every_table(scratch_url: str) -> None:
    now = datetime.now(UTC)
    ages = _seed(scratch_url, now)
    before = _partition_days(scratch_url)
    with psycopg.connect(scratch_url) as conn:
        done = prune(conn, now=now, retention_days=DAYS)
    assert done.skipped is None and done.cutoff == now - timedelta(days=DAYS)
    want = [ages["just_after"], ages["fresh"]]
    assert _kept(scratch_url) == {t: want for t in TABLES}
    # Whole days before the cutoff went as partitions; the straddling one by row.
    assert done.dropped["vitals"] >= 2 and done.rows["vitals"] == 1
    assert done.rows["quarantine"] == done.rows["caregiver_positions"] == 2
    after = _partition_days(scratch_url)
    assert len(after) == len(before) - done.dropped["vitals"]
    # Idempotent: a second run finds nothing more.
    with psycopg.connect(scratch_url) as conn:
        again = prune(conn, now=now, retention_days=DAYS)
    assert sum(again.rows.values()) == 0 and sum(again.dropped.values()) == 0


def test_zero_keeps_everything(scratch_url: str) -> None:
    now = datetime.now(UTC)
    _seed(scratch_url, now)
    with psycopg.connect(scratch_url) as conn:
        done = prune(conn, now=now, retention_days=0)
        from storage import timeseries

        timeseries.maintain(conn, now=now, back_days=4, ahead_days=1, retention_days=0)
        conn.commit()
    assert done.cutoff is None and all(len(v) == 4 for v in _kept(scratch_url).values())
    s = Settings(_env_file=None, retention_days=0)
    assert s.retention_days == 0


def test_a_second_pruner_steps_aside(scratch_url: str) -> None:
    now = datetime.now(UTC)
    _seed(scratch_url, now)
    with psycopg.connect(scratch_url) as holder, psycopg.connect(scratch_url) as conn:
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (storage.retention._LOCK_KEY,))
        done = prune(conn, now=now, retention_days=DAYS)
        assert done.skipped == "another process is pruning"
        holder.rollback()
    assert all(len(v) == 4 for v in _kept(scratch_url).values())


def test_a_busy_table_postpones_the_run_and_leaves_everything(scratch_url: str) -> None:
    now = datetime.now(UTC)
    _seed(scratch_url, now)
    with psycopg.connect(scratch_url) as reader, psycopg.connect(scratch_url) as conn:
        # A long report reading the oldest day holds a lock the DROP must wait for.
        reader.execute("SELECT count(*) FROM vitals WHERE ts < now() - interval '3 days'")
        reader.execute("LOCK TABLE vitals IN ACCESS SHARE MODE")
        done = prune(conn, now=now, retention_days=DAYS)
        reader.rollback()
    assert done.skipped == "tables busy: postponed" and done.rows == {}
    assert all(len(v) == 4 for v in _kept(scratch_url).values())


def test_the_api_prunes_on_its_own(scratch_url: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    ages = _seed(scratch_url, now)
    settings = test_settings(
        home=tmp_path,
        secret_key="r" * 40,
        retention_days=DAYS,
        max_backfill_hours=24,
        retention_interval_s=0.2,
    )
    app = create_app(settings, scratch_url)
    with TestClient(app):
        wait_until(lambda: app.state.retention.runs >= 1, timeout=30)
    assert _kept(scratch_url)["quarantine"] == [ages["just_after"], ages["fresh"]]


def test_the_job_survives_the_database_going_away() -> None:
    job = RetentionJob(
        "postgresql://postgres@127.0.0.1:1/nowhere", retention_days=DAYS, interval_s=0.05
    )

    async def run_a_while() -> bool:
        task = asyncio.create_task(job.run())
        while job.failures < 3:
            await asyncio.sleep(0.05)
            assert not task.done(), task
        task.cancel()
        return True

    assert asyncio.run(asyncio.wait_for(run_a_while(), 60))
    assert job.runs == 0 and job.failures >= 3


def test_the_cli_prunes_on_demand(scratch_url: str, broker_url: str, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    ages = _seed(scratch_url, now)
    env = eldercare_env(
        scratch_url,
        broker_url,
        ELDERCARE_RETENTION_DAYS=str(DAYS),
        ELDERCARE_MAX_BACKFILL_HOURS="24",
        ELDERCARE_HOME=str(tmp_path),
    )
    out = subprocess.run(
        [sys.executable, "-m", "eldercare", "retention", "run", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(out.stdout)
    assert report["skipped"] is None and report["rows"]["quarantine"] == 2
    assert _kept(scratch_url)["positions"] == [ages["just_after"], ages["fresh"]]
