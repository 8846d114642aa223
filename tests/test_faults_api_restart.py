"""The API restarted while dashboards are connected: they reconnect, catch up on what
happened meanwhile (an SOS raised while the API was down shows exactly once), and
nothing the devices sent is lost.  The ingest runs apart (``eldercare ingest``), as in a
deployment where the API is restarted on its own."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psycopg
import pytest

from conftest import (
    Publisher,
    eldercare_env,
    enrol_device,
    free_port,
    signed_in_as,
    start_eldercare,
    stop_process,
    wait_until,
)
from live_dashboard import LiveDashboard, http, wait_for

DASHBOARDS = 3
READINGS = 40  # one device's buffered minutes, within its burst allowance


def sos(pub: Publisher, device: str, seq: int) -> None:
    pub.publish(
        f"eldercare/v1/devices/{device}/event",
        {"ts": int(time.time() * 1000), "seq": seq, "type": "sos"},
    )


def sos_rows(url: str, elder_id: int) -> list[tuple[int, int]]:
    with psycopg.connect(url) as c:
        return c.execute(
            "SELECT id, count FROM alerts WHERE elder_id = %s AND kind = 'sos'", (elder_id,)
        ).fetchall()


def start_api(env: dict[str, str], log: Path, base: str):
    proc = start_eldercare(["serve", "--no-ingest"], env, log)

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"API exited:\n{log.read_text()}")
        try:
            with http(base) as c:
                return c.get("/api/v1/health").status_code == 200
        except Exception:
            return False

    wait_until(healthy, timeout=60, interval=0.2)
    return proc


def test_api_restart_dashboards_reconnect_and_catch_up_exactly_once(
    database_url: str,
    broker_url: str,
    db: psycopg.Connection,
    tmp_path: Path,
    record_property: pytest.RecordProperty,
) -> None:
    elders = {f"api-{i}": enrol_device(db, f"api-{i}") for i in range(3)}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = eldercare_env(database_url, broker_url, ELDERCARE_API_PORT=str(port))
    ingest = start_eldercare(["ingest"], env, tmp_path / "ingest.log")
    api = start_api(env, tmp_path / "api1.log", base)
    pub = Publisher(broker_url)
    with http(base) as c:
        headers = signed_in_as(c, database_url)  # the session outlives the API's restart
    boards = [LiveDashboard(base, headers).start() for _ in range(DASHBOARDS)]
    try:
        wait_until(lambda: "ingest running" in (tmp_path / "ingest.log").read_text(), timeout=30)
        wait_for(lambda: all(b.open for b in boards), 30, "dashboards connected")

        sos(pub, "api-0", 1)  # before: pushed live
        wait_for(lambda: all(b.sos_alerts(elders["api-0"]) for b in boards), 30, "first SOS")

        os.killpg(api.pid, signal.SIGKILL)  # the API dies without a goodbye
        api.wait()
        wait_for(lambda: not any(b.open for b in boards), 15, "dashboards notice")
        sos(pub, "api-1", 1)  # while the API is down: nobody is LISTENing
        ms = int(time.time() * 1000)
        for i in range(READINGS):
            pub.publish(
                "eldercare/v1/devices/api-2/vitals",
                json.dumps({"ts": ms - READINGS * 60_000 + i * 60_000, "seq": i, "hr": 72}),
                wait=False,
            )
        wait_until(lambda: sos_rows(database_url, elders["api-1"]), timeout=30)

        restarted = time.monotonic()
        api = start_api(env, tmp_path / "api2.log", base)
        wait_for(
            lambda: all(b.caught_up >= 2 and b.sos_alerts(elders["api-1"]) for b in boards),
            60,
            "dashboards reconnect and catch up",
        )
        recovery = time.monotonic() - restarted  # the API's own start-up included
        record_property("recovery_s", round(recovery, 2))
        print(f"\nAPI restart: dashboards reconnected and caught up {recovery:.2f} s after restart")

        sos(pub, "api-2", 10_000)  # after: pushed live again
        wait_for(lambda: all(b.sos_alerts(elders["api-2"]) for b in boards), 30, "third SOS")
        time.sleep(1.0)  # a duplicate push would arrive now

        for name, elder in elders.items():
            rows = sos_rows(database_url, elder)
            assert len(rows) == 1 and rows[0][1] == 1, (name, rows)  # one alert, one press
            for b in boards:
                assert [a["id"] for a in b.sos_alerts(elder)] == [rows[0][0]]
                assert b.sos_alerts(elder)[0]["count"] == 1

        def vitals() -> tuple[int, int]:
            with psycopg.connect(database_url) as c:
                return c.execute(
                    "SELECT count(*), count(DISTINCT seq) FROM vitals WHERE device_id = 'api-2'"
                ).fetchone()

        wait_until(lambda: vitals()[0] >= READINGS, timeout=30)
        assert vitals() == (READINGS, READINGS)
    finally:
        for b in boards:
            b.stop()
        pub.close()
        stop_process(api)
        stop_process(ingest)
