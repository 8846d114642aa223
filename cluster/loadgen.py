"""Synthetic load for the scale bench and the failover tests: many enrolled devices,
each sending one vitals sample per round with its own increasing ``seq``.

Calm values (no rule speaks), so what a test or bench sees in the alerts is what it
injected.  Published straight into the partition queues, as the bridge would.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import psycopg

from cluster.envelope import Raw


def enrol_many(conn: psycopg.Connection, n: int, prefix: str) -> list[tuple[str, int]]:
    """``n`` elders with one device each (``{prefix}-{i}``); (device, elder) pairs."""
    rows = conn.execute(
        "WITH e AS (INSERT INTO elders (name, home_lat, home_lon)"
        "   SELECT '老人' || g, 34.867, 110.447 FROM generate_series(1, %s) g RETURNING id)"
        " INSERT INTO devices (id, elder_id) SELECT %s || '-' || id, id FROM e"
        " RETURNING id, elder_id",
        (n, prefix),
    ).fetchall()
    conn.commit()
    return sorted(rows, key=lambda r: r[1])


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def vitals_round(devices: list[str], seq: int, ts: datetime) -> list[Raw]:
    """One calm vitals sample from every device, all with ``seq`` and event time ``ts``."""
    body = {"ts": ms(ts), "seq": seq, "hr": 72, "spo2": 97, "worn": True, "battery": 80}
    payload = json.dumps(body).encode()
    now = datetime.now(UTC)
    return [(f"eldercare/v1/devices/{d}/vitals", payload, now) for d in devices]


def event(device: str, seq: int, ts: datetime, body: dict) -> Raw:
    payload = json.dumps({"ts": ms(ts), "seq": seq, **body}).encode()
    return (f"eldercare/v1/devices/{device}/event", payload, datetime.now(UTC))
