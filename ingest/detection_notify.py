"""Alert changes announced to every API process with PostgreSQL NOTIFY.

The detection process (and each API node, for its own acknowledges, resolves and
escalations) calls :func:`announce` inside the transaction that made the change:
PostgreSQL delivers a notification only when that transaction commits, so a listener
never hears of an alert it cannot read.  Every API node LISTENs on :data:`CHANNEL`
and pushes what it hears to its WebSocket clients.

A NOTIFY payload must stay under 8000 bytes.  An alert normally fits and travels
whole (no round trip before the push); one that does not (a long detail) travels as
a reference ``{"ref": id}`` that the listener reads from the database.

>>> from datetime import UTC, datetime
>>> t = datetime(2026, 12, 4, 7, 0, tzinfo=UTC)
>>> decode_payload(encode_payload({"id": 7, "updated_at": t}))
{'id': 7, 'updated_at': '2026-12-04T07:00:00Z'}
>>> decode_payload(encode_payload({"id": 8, "detail": {"x": "y" * 9000}}))
8
"""

from __future__ import annotations

from typing import Any, Final

import msgspec
import psycopg

CHANNEL: Final = "eldercare_alerts"
PAYLOAD_MAX: Final = 7900  # PostgreSQL's limit is 8000 bytes

_ENCODER = msgspec.json.Encoder(enc_hook=str)  # e.g. a Decimal in a detail
_DECODER = msgspec.json.Decoder()


def encode_payload(alert: dict[str, Any]) -> str:
    """The whole alert as JSON, or a reference to it when that is too long."""
    body = _ENCODER.encode(alert)
    if len(body) > PAYLOAD_MAX:
        body = _ENCODER.encode({"ref": alert["id"]})
    return body.decode()


def decode_payload(payload: str) -> dict[str, Any] | int:
    """An alert dict, or the id of an alert to read (see :func:`encode_payload`)."""
    body = _DECODER.decode(payload)
    if not isinstance(body, dict):
        raise ValueError("an alert notification is a JSON object")
    if set(body) == {"ref"}:
        return int(body["ref"])
    return body


def announce(conn: psycopg.Connection, alerts: list[dict[str, Any]]) -> None:
    """NOTIFY each alert; delivered when the caller's transaction commits."""
    if alerts:
        with conn.cursor() as cur:
            cur.executemany(
                "SELECT pg_notify(%s, %s)", [(CHANNEL, encode_payload(a)) for a in alerts]
            )


async def announce_async(conn: psycopg.AsyncConnection, alerts: list[dict[str, Any]]) -> None:
    """:func:`announce` for the API's async connections."""
    if alerts:
        async with conn.cursor() as cur:
            await cur.executemany(
                "SELECT pg_notify(%s, %s)", [(CHANNEL, encode_payload(a)) for a in alerts]
            )
