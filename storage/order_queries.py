"""Read-only order queries the reports need beyond ``storage.orders``' listing.

Orders are rebuilt exactly as ``storage.orders`` does (its row query and history
loader), so a report judges the same :class:`~orders.lifecycle.Order` the API shows.
"""

from __future__ import annotations

from datetime import datetime

from psycopg import AsyncConnection

from storage.orders import OrderRecord, select_records


async def touched_between(
    conn: AsyncConnection, since: datetime, until: datetime
) -> list[OrderRecord]:
    """Every order with a step in ``[since, until)``: requested, served, declined or
    ended then (a report's month), by id."""
    return await select_records(
        conn,
        "o.id IN (SELECT s.order_id FROM order_steps s WHERE s.at >= %s AND s.at < %s)",
        (since, until),
    )


async def closed_for_caregiver(
    conn: AsyncConnection, caregiver_id: int, since: datetime, until: datetime
) -> list[OrderRecord]:
    """The caregiver's orders completed or cancelled in ``[since, until)`` (their day's
    finished work, whenever it was requested), most recent first."""
    return await select_records(
        conn,
        "o.caregiver_id = %s AND o.state IN ('completed', 'cancelled')"
        " AND o.updated_at >= %s AND o.updated_at < %s",
        (caregiver_id, since, until),
        order_by="o.updated_at DESC, o.id",
    )
