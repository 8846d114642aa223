"""The real :class:`alerts.seams.EmergencyOrders`: a CRITICAL alert asks for a 助急 order."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import psycopg

from orders.catalogue import ServiceKind
from orders.lifecycle import SYSTEM, Source
from storage.orders import create_order_sync, jsonb


class EmergencyOrderRequester:
    """The real :class:`alerts.seams.EmergencyOrders`: a CRITICAL alert creates a 助急
    order (source ``alert``, ``source_ref`` ``alert:<id>``) in the alert's own
    transaction, and the alert's audit trail says which order.  The dispatcher (a
    separate task) offers it to a caregiver within seconds."""

    def request(self, conn: psycopg.Connection, alert: dict[str, Any]) -> None:
        at = alert["updated_at"]
        # Requested when this transaction makes it: its targets (accept in 2 minutes)
        # run on the clock the dispatcher watches, even if the alert's own clock (a
        # replay, a test) is another.
        row = conn.execute("SELECT now()").fetchone()
        assert row is not None
        order_id, created = create_order_sync(
            conn,
            elder_id=alert["elder_id"],
            kind=ServiceKind.EMERGENCY,
            actor=SYSTEM,
            at=row[0].astimezone(UTC),
            source=Source.ALERT,
            source_ref=f"alert:{alert['id']}",
            notes=str(alert.get("message") or "")[:2000] or None,
            alert_id=alert["id"],
        )
        conn.execute(
            "INSERT INTO alert_events (alert_id, at, actor, action, from_state, to_state, detail)"
            " VALUES (%s, %s, 'system', 'emergency_order_requested', %s, %s, %s)",
            (
                alert["id"],
                at,
                alert["state"],
                alert["state"],
                jsonb({"service": "emergency", "order": order_id, "created": created}),
            ),
        )
