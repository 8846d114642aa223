"""六助 orders and caregivers pushed to every dashboard on ``/ws/live``.

:class:`ServiceHub` is the alerting hub plus :meth:`~ServiceHub.publish_order` and
:meth:`~ServiceHub.publish_caregiver`: each client also receives
``{"type": "order", "order": Order}`` (the REST order without ``steps``, actions as
staff may take them) and ``{"type": "caregiver", "caregiver": {...}}``.  Like alerts,
they are sent at once and coalesced per client by id, so a slow client gets each
order's newest version once.  Other nodes' changes arrive through the dispatcher,
which hears ``NOTIFY eldercare_orders`` and publishes here; a version this node
already sent is dropped.  The fan-out is :class:`api.feed.MessageFeed`, as for alerts;
each client receives only the orders and caregivers its user's scope reaches.

:func:`order_json` is the contract's order shape, built from a stored order.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from api.alert_feed import AlertingHub
from api.feed import MessageFeed
from orders.catalogue import CATALOGUE
from orders.lifecycle import Actor
from orders.targets import breaches, deadlines
from storage.orders import OrderRecord, allowed_for

log = logging.getLogger("eldercare.orders")
STAFF = Actor("staff", 0)


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def order_json(
    rec: OrderRecord, now: datetime, actor: Actor = STAFF, *, steps: bool = False
) -> dict[str, Any]:
    """The contract's Order: row fields, deadlines and breaches at ``now``, the actions
    ``actor`` may take, the elder's position; ``steps`` only when asked."""
    o, row = rec.order, rec.row
    spec = CATALOGUE[o.kind]
    d = deadlines(o)
    window_end = None if o.scheduled_for is None else o.scheduled_for + spec.level.window[1]
    out: dict[str, Any] = {
        "id": rec.id,
        "elder_id": o.elder_id,
        "elder_name": row["elder_name"],
        "kind": o.kind.value,
        "kind_zh": o.kind.zh,
        "state": o.state.value,
        "source": o.source.value,
        "caregiver_id": o.caregiver_id,
        "caregiver_name": row["caregiver_name"] if o.caregiver_id is not None else None,
        "requested_at": _iso(o.requested_at),
        "due_at": _iso(o.scheduled_for),
        "updated_at": _iso(row["updated_at"]),
        "version": rec.version,
        "notes": row["notes"],
        "completion_note": row["completion_note"],
        "alert_id": o.alert_id,
        "deadlines": {
            "accept_by": _iso(d.accept_by),
            "arrive_by": _iso(d.arrive_by),
            "window_start": _iso(d.arrive_from),
            "window_end": _iso(window_end),
        },
        "breaches": [
            {"kind": b.kind.value, "due": _iso(b.due), "late_by_s": round(b.by.total_seconds())}
            for b in breaches(o, now)
        ],
        "allowed_actions": allowed_for(rec, actor),
        "elder": {
            "lat": row["elder_lat"],
            "lon": row["elder_lon"],
            "address": row["elder_address"],
        },
        "escalation_level": row["escalation_level"],
        "dispatch_note": row["dispatch_note"],
    }
    if steps:
        out["steps"] = [
            {
                "at": _iso(s["at"]),
                "action": s["action"],
                "from_state": s["from_state"],
                "to_state": s["to_state"],
                "actor_role": s["actor_role"],
                "actor_id": s["actor_id"],
                "caregiver_id": s["caregiver_id"],
                "note": s["note"],
                "detail": s["detail"],
            }
            for s in rec.steps
        ]
    return out


class ServiceHub(AlertingHub):
    """The live hub whose clients also receive order and caregiver messages."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.services = MessageFeed()
        self.feeds.append(self.services)

    def publish_order(self, rec: OrderRecord, now: datetime | None = None) -> None:
        """Push the order (as staff see it) to every dashboard.  Any thread; never raises."""
        try:
            body = order_json(rec, now or datetime.now(UTC))
        except Exception:  # a push must never break the caller
            log.exception("order %s not pushed", rec.row.get("id"))
            return
        row = rec.row
        note = row["dispatch_note"]
        version = (
            rec.version,
            row["escalation_level"],
            tuple(row["breaches_alerted"]),
            None if note is None else note.get("reason"),
        )
        self.services.publish("order", body, version)

    def publish_caregiver(self, caregiver: dict[str, Any]) -> None:
        """Push ``{id, name, lat, lon, acc, last_pos_at, on_shift, active_orders}``."""
        body = dict(caregiver)
        body["last_pos_at"] = (
            _iso(body["last_pos_at"])
            if isinstance(body.get("last_pos_at"), datetime)
            else body.get("last_pos_at")
        )
        version = (body.get("lat"), body.get("lon"), body["last_pos_at"], body.get("active_orders"))
        self.services.publish("caregiver", body, version)
