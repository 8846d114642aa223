"""``eldercare status``: the health of every part, from a running API's public
``/api/v1/health`` and ``/metrics``.

:func:`assess` is pure (reports in, verdicts out); :func:`probe` does the HTTP.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

DETECTION_BACKLOG_MAX = 100_000  # readings; beyond, detection is too far behind to alarm in time


@dataclass(frozen=True, slots=True)
class Check:
    key: str
    label: str  # zh-CN first, English after
    ok: bool
    detail: str


@dataclass(slots=True)
class Report:
    url: str
    healthy: bool
    checks: list[Check] = field(default_factory=list)
    health: dict[str, Any] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "healthy": self.healthy,
            "checks": [asdict(c) for c in self.checks],
            "health": self.health,
            "metrics": self.metrics,
        }


@dataclass(frozen=True, slots=True)
class Probe:
    health: dict[str, Any] | None
    metrics_text: str | None
    error: str | None = None


def probe(url: str, timeout: float = 5.0) -> Probe:
    base = url.rstrip("/")
    try:
        health = _get_json(f"{base}/api/v1/health", timeout)
    except (OSError, ValueError) as exc:
        return Probe(None, None, f"{type(exc).__name__}: {exc}")
    try:
        with urllib.request.urlopen(f"{base}/metrics", timeout=timeout) as r:
            metrics_text: str | None = r.read().decode()
    except (OSError, ValueError):  # turned off (404) or filtered: the health still counts
        metrics_text = None
    return Probe(health, metrics_text)


def _get_json(url: str, timeout: float) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as exc:  # 503 "degraded" still carries the report
        if exc.code == 503:
            return json.loads(exc.read())
        raise


def summarise_metrics(text: str) -> dict[str, Any]:
    """The figures ``status`` shows, from a Prometheus text exposition."""
    out: dict[str, Any] = {}
    for family in text_string_to_metric_families(text):
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for s in family.samples}
        if family.name in (
            "eldercare_ingest_lag_seconds",
            "eldercare_db_write_seconds",
        ):
            total = samples.get((f"{family.name}_sum", ()), 0.0)
            count = samples.get((f"{family.name}_count", ()), 0.0)
            short = family.name.removeprefix("eldercare_").removesuffix("_seconds")
            out[f"{short}_mean_s"] = round(total / count, 4) if count else None
            out[f"{short}_count"] = int(count)
        elif family.name == "eldercare_alarm_latency_seconds":
            lat: dict[str, float | None] = {}
            for s in family.samples:
                if s.name.endswith("_sum"):
                    kind = s.labels["kind"]
                    n = samples.get((f"{family.name}_count", (("kind", kind),)), 0.0)
                    lat[kind] = round(s.value / n, 3) if n else None
            out["alarm_latency_mean_s"] = lat
        elif family.name == "eldercare_ingest_quarantined":
            out["quarantined_total"] = {
                s.labels["reason"]: int(s.value)
                for s in family.samples
                if s.name.endswith("_total")
            }
    return out


def assess(url: str, found: Probe) -> Report:
    if found.health is None:
        check = Check("api", "接口 API", False, f"unreachable at {url} ({found.error})")
        return Report(url, False, [check])
    h = found.health
    metrics = summarise_metrics(found.metrics_text) if found.metrics_text else {}
    checks = [
        Check("api", "接口 API", True, f"{url} answers ({h.get('status')})"),
        Check(
            "database",
            "数据库 Database",
            bool(h.get("database")),
            f"schema v{h.get('schema_version')}, {h.get('storage')}, "
            f"{_bytes(h.get('database_bytes'))}; largest: "
            + ", ".join(f"{t} {_bytes(b)}" for t, b in (h.get("largest_tables") or {}).items()),
        ),
    ]
    broker = h.get("broker")
    checks.append(
        Check(
            "broker",
            "消息代理 Broker",
            broker is not False,
            {True: "connected", False: "NOT connected", None: "no ingest in this API process"}[
                broker
            ],
        )
    )
    ingest = h.get("ingest")
    if ingest is not None:
        lag = metrics.get("ingest_lag_mean_s")
        write = metrics.get("db_write_mean_s")
        checks.append(
            Check(
                "ingest",
                "数据接入 Ingest",
                True,
                f"{ingest.get('messages_per_s', 0)} msg/s, {ingest.get('readings_per_s', 0)}"
                f" readings/s (last minute); lag mean {_s(lag)}, last batch"
                f" {_s(ingest.get('last_commit_lag_s'))}; batch write mean {_s(write)};"
                f" db errors {ingest.get('db_errors', 0)}",
            )
        )
    quarantined = h.get("quarantine_last_hour") or {}
    checks.append(
        Check(
            "quarantine",
            "隔离区(近1小时) Quarantine, last hour",
            True,
            ", ".join(f"{r} {n}" for r, n in sorted(quarantined.items())) or "none",
        )
    )
    det = h.get("detection")
    if det is not None:
        backlog = int(det.get("backlog", 0))
        checks.append(
            Check(
                "detection",
                "异常检测 Detection",
                bool(det.get("ready")) and backlog <= DETECTION_BACKLOG_MAX,
                f"ready {det.get('ready')}, restored {det.get('restored')}, backlog {backlog},"
                f" alerts {det.get('alerts_recorded')}, errors {det.get('errors')}",
            )
        )
    alerts = h.get("open_alerts") or {}
    order = ("critical", "high", "medium", "low")
    checks.append(
        Check(
            "alerts",
            "未结告警 Open alerts",
            True,
            ", ".join(f"{s} {alerts[s]}" for s in order if alerts.get(s)) or "none",
        )
    )
    alarm = metrics.get("alarm_latency_mean_s") or {}
    checks.append(
        Check(
            "live",
            "在线看板 Live clients",
            True,
            f"{h.get('live_clients', 0)} connected"
            + (
                "; alarm latency mean "
                + ", ".join(f"{k} {_s(v)}" for k, v in sorted(alarm.items()))
                if alarm
                else ""
            ),
        )
    )
    if found.metrics_text is None:
        checks.append(Check("metrics", "指标 Metrics", True, "/metrics not served (disabled)"))
    healthy = h.get("status") == "ok" and all(c.ok for c in checks)
    return Report(url, healthy, checks, h, metrics)


def _bytes(n: object) -> str:
    if not isinstance(n, int):
        return "?"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _s(v: object) -> str:
    return f"{v:.3f} s" if isinstance(v, int | float) else "–"
