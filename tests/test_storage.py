"""The storage suite, run on every flavour the server offers: plain PostgreSQL
always, TimescaleDB too when the extension is installed and preloaded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from conftest import fresh_database, timescale_available
from storage import timeseries
from storage.migrate import MIGRATIONS, Options, migrate
from storage.writer import Batch, write_batch

NOW = datetime.now(UTC).replace(microsecond=0)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "flavour" in metafunc.fixturenames:
        from conftest import LOCAL_PG, _reachable_pg

        flavours = ["postgresql"]
        if _reachable_pg(LOCAL_PG) and timescale_available(LOCAL_PG):
            flavours.append("timescaledb")
        metafunc.parametrize("flavour", flavours, scope="module")


@pytest.fixture(scope="module")
def store(pg_admin_url: str, flavour: str) -> Iterator[str]:
    with fresh_database(pg_admin_url, timescale=flavour == "timescaledb") as url:
        yield url


@pytest.fixture
def conn(store: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(store) as c:
        c.execute(
            "TRUNCATE elders, devices, latest_state, quarantine, vitals, positions,"
            " device_events RESTART IDENTITY CASCADE"
        )
        c.execute("INSERT INTO elders (name) VALUES ('张桂兰'), ('李建国')")
        c.execute("INSERT INTO devices (id, elder_id) VALUES ('w1', 1), ('w2', 2)")
        c.commit()
        yield c


def vitals_row(
    seq: int,
    ts: datetime,
    device: str = "w1",
    elder: int = 1,
    hr: float = 70.0,
    spo2: float | None = 97.0,
) -> tuple:
    return (ts, device, seq, elder, hr, spo2, None, None, None, None, 100 + seq, 80.0, True, NOW)


def test_migrations_are_versioned_and_idempotent(store: str, flavour: str) -> None:
    assert migrate(store, Options(timescale_mode="auto")) == []
    with psycopg.connect(store) as c:
        versions = [v for (v,) in c.execute("SELECT version FROM schema_migrations ORDER BY 1")]
        assert versions == [v for v, _, _ in MIGRATIONS]
        assert timeseries.is_timescale(c) is (flavour == "timescaledb")


def test_time_series_tables_have_the_flavour_asked_for(
    conn: psycopg.Connection, flavour: str
) -> None:
    kinds = dict(
        conn.execute(
            "SELECT relname, relkind FROM pg_class WHERE relname IN ('vitals','positions','device_events')"
        ).fetchall()
    )
    if flavour == "timescaledb":
        hyper = {
            n
            for (n,) in conn.execute(
                "SELECT hypertable_name FROM timescaledb_information.hypertables"
            )
        }
        assert hyper == {"vitals", "positions", "device_events"}
        jobs = {p for (p,) in conn.execute("SELECT proc_name FROM timescaledb_information.jobs")}
        assert {"policy_compression", "policy_retention"} <= jobs
    else:
        assert set(kinds.values()) == {"p"}  # range-partitioned parents


def test_partitions_are_created_ahead_and_dropped_after_retention(
    conn: psycopg.Connection, flavour: str
) -> None:
    if flavour == "timescaledb":
        assert timeseries.maintain(conn, now=NOW, back_days=1, ahead_days=1, retention_days=30) == {
            "created": 0,
            "dropped": 0,
        }
        return
    far = NOW + timedelta(days=10)
    made = timeseries.maintain(conn, now=far, back_days=0, ahead_days=2, retention_days=400)
    conn.commit()
    assert made["created"] == 3 * 3  # three tables, three new days
    assert conn.execute(
        "SELECT to_regclass(%s)",
        (timeseries.partition_name("vitals", (far + timedelta(days=2)).date()),),
    ).fetchone()[0]
    # a year on, with a 30-day retention, today's partitions go
    later = NOW + timedelta(days=365)
    dropped = timeseries.maintain(conn, now=later, back_days=0, ahead_days=0, retention_days=30)
    conn.commit()
    assert dropped["dropped"] >= 3
    assert (
        conn.execute(
            "SELECT to_regclass(%s)", (timeseries.partition_name("vitals", NOW.date()),)
        ).fetchone()[0]
        is None
    )
    # leave the database usable for the next tests
    timeseries.maintain(conn, now=NOW, back_days=4, ahead_days=2, retention_days=400)
    conn.commit()


def test_batch_is_copied_and_a_redelivered_sample_is_stored_once(conn: psycopg.Connection) -> None:
    b = Batch()
    b.rows["vitals"] = [vitals_row(i, NOW - timedelta(minutes=10 - i)) for i in range(10)]
    r = write_batch(conn, b)
    assert r.stored["vitals"] == 10 and r.duplicates == 0
    again = Batch()
    again.rows["vitals"] = [vitals_row(i, NOW - timedelta(minutes=10 - i)) for i in range(5, 15)]
    r2 = write_batch(conn, again)
    assert r2.stored["vitals"] == 5 and r2.duplicates == 5
    assert conn.execute("SELECT count(*), count(DISTINCT seq) FROM vitals").fetchone() == (15, 15)


def test_a_reset_counter_at_a_new_time_is_a_new_sample(conn: psycopg.Connection) -> None:
    b = Batch()
    b.rows["vitals"] = [vitals_row(1, NOW - timedelta(hours=2)), vitals_row(1, NOW)]
    assert write_batch(conn, b).stored["vitals"] == 2


def test_latest_state_keeps_the_newest_value_of_each_vital_sign(conn: psycopg.Connection) -> None:
    b = Batch()
    b.latest.vitals = [
        (1, "w1", NOW - timedelta(minutes=5), 80.0, 95.0, 130.0, 85.0, None, None, None, 70.0, True)
    ]
    write_batch(conn, b)
    newer = Batch()  # pulse only: blood pressure must survive
    newer.latest.vitals = [(1, "w1", NOW, 72.0, None, None, None, None, None, None, None, None)]
    write_batch(conn, newer)
    late = Batch()  # an old buffered sample must not overwrite newer values
    late.latest.vitals = [
        (1, "w1", NOW - timedelta(hours=1), 150.0, 90.0, None, None, 38.0, None, None, None, None)
    ]
    write_batch(conn, late)
    row = conn.execute(
        "SELECT hr, spo2, sbp, dbp, temp, vitals_ts FROM latest_state WHERE elder_id = 1"
    ).fetchone()
    assert row == (72.0, 95.0, 130.0, 85.0, 38.0, NOW)  # temp known only from the late one


def test_latest_position_ignores_older_fixes(conn: psycopg.Connection) -> None:
    for ts, lat in ((NOW, 34.868), (NOW - timedelta(minutes=3), 34.5)):
        b = Batch()
        b.latest.positions = [(2, "w2", ts, lat, 110.447, 8.0, "gps")]
        write_batch(conn, b)
    assert conn.execute("SELECT lat, pos_ts FROM latest_state WHERE elder_id = 2").fetchone() == (
        34.868,
        NOW,
    )


def test_quarantine_rows_keep_reason_and_bounded_raw_bytes(conn: psycopg.Connection) -> None:
    b = Batch()
    b.quarantine = [
        (NOW, "eldercare/v1/devices/w1/vitals", "w1", "malformed_json", "bad", None, b"{x", 2)
    ]
    write_batch(conn, b)
    assert conn.execute("SELECT reason, raw, raw_size FROM quarantine").fetchone() == (
        "malformed_json",
        b"{x",
        2,
    )


def test_the_same_history_query_runs_on_this_flavour(conn: psycopg.Connection) -> None:
    b = Batch()
    b.rows["vitals"] = [vitals_row(i, NOW - timedelta(minutes=i), hr=60 + i) for i in range(30)]
    write_batch(conn, b)
    rows = conn.execute(
        "SELECT date_bin('10 minutes', ts, %s) AS b, avg(hr) FROM vitals WHERE elder_id = 1"
        " GROUP BY 1 ORDER BY 1",
        (NOW - timedelta(hours=1),),
    ).fetchall()
    assert sum(1 for _ in rows) >= 3
