"""``eldercare status`` against a running ``eldercare serve`` (real database and broker)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from conftest import (
    Publisher,
    eldercare_env,
    free_port,
    start_eldercare,
    stop_process,
    wait_until,
)
from eldercare import private_broker
from eldercare.status import Probe, assess


@dataclass
class Served:
    base: str
    broker: private_broker.PrivateBroker
    log: Path


@pytest.fixture
def served(database_url: str, db: psycopg.Connection, tmp_path: Path) -> Iterator[Served]:
    broker = private_broker.start(tmp_path / "broker")
    port = free_port()
    env = eldercare_env(
        database_url, broker.url, ELDERCARE_API_PORT=str(port), ELDERCARE_LOG_FORMAT="json"
    )
    log = tmp_path / "serve.log"
    proc = start_eldercare(["serve", "--verbose"], env, log)
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"eldercare serve exited:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            body = httpx.get(f"{base}/api/v1/health", timeout=2).json()
            return bool(body.get("detection") and body["detection"]["ready"])
        return False

    try:
        wait_until(ready, timeout=60, interval=0.3)
        yield Served(base, broker, log)
    finally:
        stop_process(proc)
        broker.stop()


def status(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eldercare", "status", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_status_shows_every_part_and_fails_when_the_broker_is_gone(served: Served) -> None:
    pub = Publisher(served.broker.url)
    try:
        pub.publish("eldercare/v1/devices/nobody-st/vitals", b"{broken")
    finally:
        pub.close()
    wait_until(
        lambda: httpx.get(f"{served.base}/api/v1/health").json()["quarantine_last_hour"],
        timeout=15,
    )

    ok = status("--url", served.base, "--json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    report = json.loads(ok.stdout)
    checks = {c["key"]: c for c in report["checks"]}
    assert set(checks) >= {
        "api",
        "database",
        "broker",
        "ingest",
        "quarantine",
        "detection",
        "alerts",
        "live",
    }
    assert all(c["ok"] for c in checks.values())
    assert "unknown_device 1" in checks["quarantine"]["detail"]
    assert "schema v" in checks["database"]["detail"]
    health = report["health"]
    assert health["largest_tables"] and health["database_bytes"] > 0
    assert "db_write_mean_s" in report["metrics"]

    table = status("--url", served.base)
    assert table.returncode == 0
    assert "数据库 Database" in table.stdout and "异常检测 Detection" in table.stdout

    served.broker.stop()
    wait_until(
        lambda: httpx.get(f"{served.base}/api/v1/health").json()["broker"] is False, timeout=20
    )
    down = status("--url", served.base, "--json")
    assert down.returncode == 1
    checks = {c["key"]: c for c in json.loads(down.stdout)["checks"]}
    assert not checks["broker"]["ok"] and checks["database"]["ok"]

    # Logs were JSON lines throughout, the ingest's among them.
    lines = [ln for ln in served.log.read_text().splitlines() if ln.strip()]
    records = [json.loads(ln) for ln in lines]
    assert all({"ts", "level", "logger", "message"} <= r.keys() for r in records)
    assert any(r["logger"] == "eldercare.ingest" for r in records)
    assert all(r["ts"].endswith("+00:00") for r in records)


def test_status_of_an_api_that_does_not_answer_is_a_failure() -> None:
    done = status("--url", f"http://127.0.0.1:{free_port()}", "--json", "--timeout", "2")
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["healthy"] is False and report["checks"][0]["key"] == "api"


def test_detection_far_behind_or_a_database_down_is_unhealthy() -> None:
    base = {
        "status": "ok",
        "database": True,
        "broker": True,
        "schema_version": 7,
        "storage": "postgresql",
        "ingest": {"messages_per_s": 1.0},
        "detection": {"ready": True, "restored": True, "backlog": 10, "errors": 0},
        "live_clients": 0,
    }
    assert assess("u", Probe(base, None)).healthy
    behind = {**base, "detection": {**base["detection"], "backlog": 5_000_000}}
    assert not assess("u", Probe(behind, None)).healthy
    no_db = {**base, "status": "degraded", "database": False}
    report = assess("u", Probe(no_db, None))
    assert not report.healthy
    assert [c.key for c in report.checks if not c.ok] == ["database"]
