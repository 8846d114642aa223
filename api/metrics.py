"""Prometheus metrics: one registry per application, served at ``GET /metrics``.

The ingest and the live feed report through small hooks (:class:`ingest.stats.IngestObserver`,
``AlertFeed.on_sent``); only this module knows about Prometheus.  Gauges that are
state rather than events (open alerts, detection backlog, live clients) are refreshed at
scrape time: one cheap grouped count on the database, and two numbers in memory.

``/metrics`` is unauthenticated, as Prometheus expects; in production bind it, or filter
it at the reverse proxy, to the monitoring network (``ELDERCARE_METRICS_ENABLED=false``
turns it off).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import psycopg
from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

log = logging.getLogger("eldercare.metrics")
SEVERITIES = ("low", "medium", "high", "critical")
ALARM_KINDS = frozenset({"sos", "fall"})
ALARMS_REMEMBERED = 4096  # alert ids whose latency was observed (each is observed once)
_LAG_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400)
_WRITE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
_ALARM_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60)

_OPEN_ALERTS = "SELECT severity, count(*) FROM alerts WHERE state <> 'resolved' GROUP BY severity"


class Metrics:
    """The application's metrics on an injected registry (a fresh one per app or test)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        ns = "eldercare"
        self.messages = Counter(
            "ingest_messages", "MQTT messages taken by the ingest.", namespace=ns, registry=registry
        )
        self.readings = Counter(
            "ingest_readings",
            "Readings stored, by table.",
            ["table"],
            namespace=ns,
            registry=registry,
        )
        self.quarantined = Counter(
            "ingest_quarantined",
            "Messages or array elements quarantined, by reason.",
            ["reason"],
            namespace=ns,
            registry=registry,
        )
        self.lag = Histogram(
            "ingest_lag_seconds",
            "Device timestamp -> stored (a sample of each batch's readings; buffered uploads"
            " are old on arrival).",
            namespace=ns,
            registry=registry,
            buckets=_LAG_BUCKETS,
        )
        self.db_write = Histogram(
            "db_write_seconds",
            "Writing and committing one ingest batch.",
            namespace=ns,
            registry=registry,
            buckets=_WRITE_BUCKETS,
        )
        self.alarm_latency = Histogram(
            "alarm_latency_seconds",
            "SOS and fall alarms: device timestamp -> first WebSocket send to a dashboard.",
            ["kind"],
            namespace=ns,
            registry=registry,
            buckets=_ALARM_BUCKETS,
        )
        self.open_alerts = Gauge(
            "open_alerts",
            "Alerts not yet resolved, by severity.",
            ["severity"],
            namespace=ns,
            registry=registry,
        )
        self.detection_backlog = Gauge(
            "detection_backlog_readings",
            "Readings handed to detection and not yet processed.",
            namespace=ns,
            registry=registry,
        )
        self.live_clients = Gauge(
            "live_clients", "Open live WebSocket connections.", namespace=ns, registry=registry
        )
        self._alarmed: OrderedDict[int, None] = OrderedDict()

    # --- hooks -----------------------------------------------------------------

    def batch_written(
        self,
        *,
        messages: int,
        stored: dict[str, int],
        rejected: dict[str, int],
        commit_s: float,
        lags_s: Sequence[float],
    ) -> None:
        """:class:`ingest.stats.IngestObserver`: called by the ingest's writer thread."""
        self.messages.inc(messages)
        for table, n in stored.items():
            if n:
                self.readings.labels(table).inc(n)
        for reason, n in rejected.items():
            if n:
                self.quarantined.labels(reason).inc(n)
        self.db_write.observe(commit_s)
        for lag in lags_s:
            self.lag.observe(max(0.0, lag))

    def message_sent(self, kind: str, body: dict[str, Any]) -> None:
        """A live message went out on a WebSocket (``MessageFeed.on_sent``)."""
        if kind == "alert":
            self.alert_sent(body)

    def alert_sent(self, alert: dict[str, Any], now: datetime | None = None) -> None:
        """An alert went out on a live WebSocket: the first send of an SOS or fall alarm
        is its latency from the device's timestamp."""
        kind = alert.get("kind")
        alert_id = alert.get("id")
        if kind not in ALARM_KINDS or not isinstance(alert_id, int) or alert_id in self._alarmed:
            return
        self._alarmed[alert_id] = None
        if len(self._alarmed) > ALARMS_REMEMBERED:
            self._alarmed.popitem(last=False)
        now = now or datetime.now(UTC)
        try:  # a metric must never break the send loop it is called from
            seconds = (now - datetime.fromisoformat(str(alert["first_ts"]))).total_seconds()
        except (KeyError, ValueError, TypeError):
            return
        self.alarm_latency.labels(kind).observe(max(0.0, seconds))

    # --- scrape ----------------------------------------------------------------

    async def refresh(self, state: Any) -> None:
        """Set the state gauges from the database and the running parts."""
        counts = dict.fromkeys(SEVERITIES, 0)
        try:
            async with state.pool.connection(timeout=2) as conn:
                cur = await conn.execute(_OPEN_ALERTS)
                counts.update({sev: n for sev, n in await cur.fetchall()})
        except (psycopg.Error, TimeoutError, OSError) as exc:  # scrape still answers
            log.warning("open alerts not counted: %s", exc)
        for sev, n in counts.items():
            self.open_alerts.labels(sev).set(n)
        worker = getattr(state.ingest, "detection", None)
        if worker is not None:
            self.detection_backlog.set(max(0, worker.readings_submitted - worker.readings_done))
        hub = getattr(state, "hub", None)
        if hub is not None:
            self.live_clients.set(hub.client_count)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text exposition."""
    m: Metrics = request.app.state.metrics
    await m.refresh(request.app.state)
    return Response(m.exposition(), media_type=CONTENT_TYPE_LATEST)
