"""Prometheus metrics at /metrics: what the ingest, the alerts and the live feed report."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.metrics import Metrics
from conftest import Publisher, as_admin, enrol_device, test_settings, wait_until
from ingest.service import IngestService
from storage.alerts import get_alert

T = "eldercare/v1/devices/{}/{}"


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(r.text)
        for s in fam.samples
    }


@pytest.fixture
def system(
    database_url: str, broker_url: str, db: psycopg.Connection
) -> Iterator[tuple[TestClient, IngestService]]:
    # A tiny rate so the flood below is refused deterministically.
    settings = test_settings(flood_rate_per_s=0.001, flood_burst=4)
    svc = IngestService(settings, database_url, broker_url)
    svc.start()
    try:
        with TestClient(create_app(settings, database_url, ingest=svc)) as client:
            yield as_admin(client, database_url), svc
    finally:
        svc.stop()


def test_ingest_counts_readings_quarantine_lag_and_write_latency(
    system: tuple[TestClient, IngestService], publisher: Publisher, db: psycopg.Connection
) -> None:
    client, svc = system
    enrol_device(db, "m-w1")
    enrol_device(db, "m-flood", name="刷屏")
    ten_s_ago = int((time.time() - 10) * 1000)
    for seq in range(3):
        publisher.publish(T.format("m-w1", "vitals"), {"ts": ten_s_ago + seq, "seq": seq, "hr": 70})
    publisher.publish(T.format("m-w1", "vitals"), b"{not json")
    for seq in range(10):
        publisher.publish(T.format("m-flood", "vitals"), {"ts": ten_s_ago, "seq": seq, "hr": 90})
    wait_until(lambda: svc.stats.messages == 14)

    m = scrape(client)
    assert m[("eldercare_ingest_messages_total", ())] == 14
    assert m[("eldercare_ingest_readings_total", (("table", "vitals"),))] == 3 + 4  # + the burst
    assert m[("eldercare_ingest_quarantined_total", (("reason", "malformed_json"),))] == 1
    assert m[("eldercare_ingest_quarantined_total", (("reason", "rate_limited"),))] == 6
    lag_n = m[("eldercare_ingest_lag_seconds_count", ())]
    assert lag_n == 7
    assert m[("eldercare_ingest_lag_seconds_sum", ())] / lag_n >= 10  # device time -> stored
    assert m[("eldercare_db_write_seconds_count", ())] >= 1
    assert m[("eldercare_db_write_seconds_sum", ())] > 0


def _alert(db: psycopg.Connection, elder: int, kind: str, severity: str, *, resolved: bool) -> int:
    now = datetime.now(UTC)
    row = db.execute(
        "INSERT INTO alerts (elder_id, kind, severity, state, message, incident_id, first_ts,"
        " last_ts, opened_at, updated_at, resolved_at, outcome)"
        " VALUES (%s, %s, %s, %s, 'test', 0, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            elder,
            kind,
            severity,
            "resolved" if resolved else "open",
            now - timedelta(seconds=2),
            now,
            now,
            now,
            now if resolved else None,
            "self_cleared" if resolved else None,
        ),
    ).fetchone()
    db.commit()
    return int(row[0])


def test_open_alerts_by_severity_and_live_clients(
    system: tuple[TestClient, IngestService], db: psycopg.Connection
) -> None:
    client, _ = system
    elder = enrol_device(db, "m-w2")
    _alert(db, elder, "sos", "critical", resolved=False)
    _alert(db, elder, "high_hr", "high", resolved=False)
    _alert(db, elder, "low_spo2", "high", resolved=False)
    _alert(db, elder, "fall", "critical", resolved=True)  # resolved: not open
    with client.websocket_connect("/ws/live"):
        m = scrape(client)
        assert m[("eldercare_live_clients", ())] == 1
    sev = {k[1][0][1]: v for k, v in m.items() if k[0] == "eldercare_open_alerts"}
    assert sev == {"critical": 1, "high": 2, "medium": 0, "low": 0}
    assert scrape(client)[("eldercare_live_clients", ())] == 0


def test_an_sos_sent_to_a_dashboard_is_timed_once_from_the_device_timestamp(
    system: tuple[TestClient, IngestService], database_url: str, db: psycopg.Connection
) -> None:
    client, _ = system
    elder = enrol_device(db, "m-w3")
    alert_id = _alert(db, elder, "sos", "critical", resolved=False)

    async def load() -> dict:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            return await get_alert(conn, alert_id)

    alert = asyncio.run(load())
    with client.websocket_connect("/ws/live") as ws:
        hub = client.app.state.hub
        hub.publish_alert(alert)
        while (msg := ws.receive_json())["type"] != "alert":
            pass
        assert msg["alert"]["id"] == alert_id
        hub.publish_alert({**alert, "count": 2})  # a new version: sent, not timed again
        while (msg := ws.receive_json())["type"] != "alert":
            pass
    m = scrape(client)
    assert m[("eldercare_alarm_latency_seconds_count", (("kind", "sos"),))] == 1
    assert m[("eldercare_alarm_latency_seconds_sum", (("kind", "sos"),))] >= 2  # first_ts


def test_only_sos_and_fall_are_alarm_latencies() -> None:
    metrics = Metrics(CollectorRegistry())
    now = datetime(2026, 1, 1, 8, 0, 5, tzinfo=UTC)
    first = "2026-01-01T08:00:00+00:00"
    metrics.alert_sent({"id": 1, "kind": "high_hr", "first_ts": first}, now)
    metrics.alert_sent({"id": 2, "kind": "fall", "first_ts": first}, now)
    metrics.alert_sent({"id": 3, "kind": "sos", "first_ts": "2026-01-01T08:00:00"}, now)  # naive
    metrics.alert_sent({"id": 4, "kind": "sos"}, now)  # no time at all: not timed, no error
    reg = metrics.registry
    assert reg.get_sample_value("eldercare_alarm_latency_seconds_count", {"kind": "sos"}) is None
    assert reg.get_sample_value("eldercare_alarm_latency_seconds_sum", {"kind": "fall"}) == 5.0
    assert (
        reg.get_sample_value("eldercare_alarm_latency_seconds_count", {"kind": "high_hr"}) is None
    )


def test_metrics_can_be_turned_off(database_url: str, db: psycopg.Connection) -> None:
    with TestClient(create_app(test_settings(metrics_enabled=False), database_url)) as client:
        assert client.get("/metrics").status_code == 404
        assert client.get("/api/v1/health").status_code == 200
