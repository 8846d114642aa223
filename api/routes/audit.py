"""Reading the audit trail: who viewed or changed what about which elder.

An administrator reads all of it; staff read what concerns their own community (its
elders, or what its people did).  There is no route to change or delete a row, and the
table refuses it anyway.  Exporting the trail is itself recorded.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from api.auth_deps import CurrentUser, CurrentUserDep, now
from api.deps import ConnDep
from api.family_view import SHANGHAI
from api.models import Problem
from auth.roles import Role
from storage import audit

router = APIRouter(prefix="/api/v1", tags=["audit"])
QueryId = Annotated[int | None, Query(ge=1, le=2**63 - 1)]
Action = Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_.]{0,63}$")]
CSV_MAX_ROWS = 100_000
RESPONSES: dict[int | str, dict[str, Any]] = {401: {"model": Problem}, 403: {"model": Problem}}


class AuditEntry(BaseModel):
    id: int
    at: datetime
    user_id: int | None
    login: str | None
    role: str | None
    action: str
    elder_id: int | None
    object_kind: str | None
    object_id: str | None
    detail: dict[str, Any]
    client_addr: str | None


class AuditPage(BaseModel):
    data: list[AuditEntry]
    count: int


async def auditor(user: CurrentUserDep) -> CurrentUser:
    if user.role not in (Role.admin, Role.staff):
        raise HTTPException(
            403, f"the audit trail is for administrators and staff, not a {user.role}"
        )
    return user


Auditor = Annotated[CurrentUser, Depends(auditor)]


def _aware(name: str, t: datetime | None) -> datetime | None:
    if t is not None and t.tzinfo is None:
        raise HTTPException(422, f"{name} needs a UTC offset, e.g. 2026-12-01T00:00:00+08:00")
    return t


async def _search(
    conn: Any,
    user: CurrentUser,
    *,
    elder_id: int | None,
    user_id: int | None,
    action: str | None,
    start: datetime | None,
    end: datetime | None,
    before_id: int | None,
    limit: int,
) -> tuple[list[dict[str, Any]], int]:
    return await audit.search(
        conn,
        elder_id=elder_id,
        user_id=user_id,
        action=action,
        start=_aware("start", start),
        end=_aware("end", end),
        community_id=None if user.role is Role.admin else user.community_id,
        before_id=before_id,
        limit=limit,
    )


@router.get("/audit", response_model=AuditPage, responses=RESPONSES)
async def list_audit(
    user: Auditor,
    conn: ConnDep,
    elder_id: QueryId = None,
    user_id: QueryId = None,
    action: Action = None,
    start: Annotated[datetime | None, Query(description="at or after")] = None,
    end: Annotated[datetime | None, Query(description="before")] = None,
    before_id: QueryId = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> AuditPage:
    """Newest first; ``count`` is the total matching; page with ``before_id``."""
    rows, total = await _search(
        conn,
        user,
        elder_id=elder_id,
        user_id=user_id,
        action=action,
        start=start,
        end=end,
        before_id=before_id,
        limit=limit,
    )
    return AuditPage(data=[AuditEntry(**r) for r in rows], count=total)


@router.get(
    "/audit.csv",
    response_class=Response,
    responses={**RESPONSES, 200: {"content": {"text/csv": {}}}},
)
async def export_audit(
    user: Auditor,
    conn: ConnDep,
    request: Request,
    elder_id: QueryId = None,
    user_id: QueryId = None,
    action: Action = None,
    start: Annotated[datetime | None, Query(description="at or after")] = None,
    end: Annotated[datetime | None, Query(description="before")] = None,
) -> Response:
    """The same filters as a CSV (UTF-8 with a BOM for Excel), times in UTC and in
    Asia/Shanghai, at most 100,000 rows, newest first."""
    rows, total = await _search(
        conn,
        user,
        elder_id=elder_id,
        user_id=user_id,
        action=action,
        start=start,
        end=end,
        before_id=None,
        limit=CSV_MAX_ROWS,
    )
    filters = {
        k: v
        for k, v in {
            "elder_id": elder_id,
            "user_id": user_id,
            "action": action,
            "start": start and start.isoformat(),
            "end": end and end.isoformat(),
        }.items()
        if v is not None
    }
    await audit.record(
        conn,
        user,
        "audit.export",
        at=now(request),
        elder_id=elder_id,
        detail={"filters": filters, "rows": len(rows)},
        client_addr=request.client.host if request.client else None,
    )
    headers = {
        "Content-Disposition": 'attachment; filename="audit.csv"',
        "X-Total-Count": str(total),
    }
    return Response(
        ("\ufeff" + csv_text(rows)).encode("utf-8"), media_type="text/csv", headers=headers
    )


CSV_COLUMNS = (
    "id",
    "at_utc",
    "at_shanghai",
    "user_id",
    "login",
    "role",
    "action",
    "elder_id",
    "object_kind",
    "object_id",
    "detail",
    "client_addr",
)


def csv_text(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV, one header line first.

    >>> csv_text([]).split(",")[:4]
    ['id', 'at_utc', 'at_shanghai', 'user_id']
    """
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(CSV_COLUMNS)
    for r in rows:
        at = r["at"]
        w.writerow(
            [
                r["id"],
                at.astimezone(UTC).isoformat(),
                at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"),
                r["user_id"] if r["user_id"] is not None else "",
                r["login"] or "",
                r["role"] or "",
                r["action"],
                r["elder_id"] if r["elder_id"] is not None else "",
                r["object_kind"] or "",
                r["object_id"] or "",
                json.dumps(r["detail"], ensure_ascii=False, sort_keys=True),
                r["client_addr"] or "",
            ]
        )
    return out.getvalue()
