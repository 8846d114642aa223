"""The quarantine: every bad message kept with its reason, for the administrator to see
(raw messages name devices of every community, so staff do not read it)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from api.access import scoped
from api.deps import ConnDep
from api.models import QuarantineItem, QuarantinePage
from auth.roles import Permission
from auth.scope import Scope
from protocol.decode import Reason
from storage import readings

router = APIRouter(prefix="/api/v1", tags=["quarantine"])


@router.get("/quarantine", response_model=QuarantinePage)
async def quarantine(
    conn: ConnDep,
    _: Annotated[Scope, Depends(scoped(Permission.quarantine_read))],
    reason: Reason | None = None,
    device_id: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    since: Annotated[datetime | None, Query(description="counts from this time on")] = None,
) -> QuarantinePage:
    """Newest first; page with ``before_id``.  ``counts`` are per reason."""
    rows = await readings.quarantine_page(
        conn,
        reason=reason.value if reason else None,
        device_id=device_id,
        before_id=before_id,
        limit=limit,
    )
    items = [
        QuarantineItem(
            **{k: v for k, v in r.items() if k != "raw"},
            raw_preview=bytes(r["raw"]).decode("utf-8", "replace"),
        )
        for r in rows
    ]
    counts = await readings.quarantine_counts(conn, since)
    next_before = items[-1].id if len(items) == limit else None
    return QuarantinePage(data=items, counts=counts, next_before_id=next_before)
