"""Seams to modules that arrive in their own issues.

:class:`EmergencyOrders` is how a newly CRITICAL alert asks for a 助急 (emergency
help) service order.  It is called inside the transaction that opened the alert, with
that transaction's connection, so the order and the alert commit together or not at
all.  The real one is ``storage.emergency_orders.EmergencyOrderRequester`` (:func:`default_orders`):
it creates the order and notes it in the alert's audit trail.  :class:`AuditOnlyOrders`
only writes the request into the audit trail (for a deployment without the order
module); :class:`NoOrders` asks for nothing (an alert about an order itself, e.g. a
late 助急, must not order another one).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import psycopg
from psycopg.types.json import Jsonb


@runtime_checkable
class EmergencyOrders(Protocol):
    def request(self, conn: psycopg.Connection, alert: dict[str, Any]) -> None:
        """Request a 助急 order for ``alert`` (a dict in the API's Alert shape).

        Must not commit: the caller's transaction holds the alert too.
        """
        ...


class AuditOnlyOrders:
    """Default: record ``emergency_order_requested`` on the alert; create no order."""

    def request(self, conn: psycopg.Connection, alert: dict[str, Any]) -> None:
        conn.execute(
            "INSERT INTO alert_events (alert_id, at, actor, action, from_state, to_state, detail)"
            " VALUES (%s, %s, 'system', 'emergency_order_requested', %s, %s, %s)",
            (
                alert["id"],
                alert["updated_at"],
                alert["state"],
                alert["state"],
                Jsonb({"service": "emergency", "order": None, "pending": "order module"}),
            ),
        )


class NoOrders:
    """Ask for no order: for alerts raised about an order itself."""

    def request(self, conn: psycopg.Connection, alert: dict[str, Any]) -> None:
        return None


def default_orders() -> EmergencyOrders:
    """The seam as deployed: a CRITICAL alert creates a 助急 order in its transaction."""
    from storage.emergency_orders import EmergencyOrderRequester  # storage imports this module

    return EmergencyOrderRequester()
