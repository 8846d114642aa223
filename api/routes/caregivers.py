"""Caregivers: who they are, their shifts, where they are, and their day.

Positions come from the caregiver page, which posts ``navigator.geolocation`` every
30 s while on shift (``POST /caregivers/{id}/position``); each fix moves the caregiver's
dot on the dashboards at once and feeds dispatch.

Scope (``auth.scope``): staff see and manage their community's caregivers, a caregiver
sees themselves and reports only their own position, family see none.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Query, Request, Response, status

from api.access import scoped, visible
from api.actor import ActorDep
from api.deps import ConnDep
from api.order_feed import order_json
from api.order_models import (
    CaregiverCreate,
    CaregiverPublic,
    CaregiverUpdate,
    OrdersPublic,
    PositionReport,
    Problem,
    ShiftCreate,
    ShiftPublic,
)
from auth.roles import Permission, Role
from auth.scope import Scope
from orders.schedule import SHANGHAI
from storage import caregivers as stored
from storage import orders as stored_orders
from storage.order_queries import closed_for_caregiver
from storage.orders import local_day

router = APIRouter(prefix="/api/v1", tags=["caregivers"])
CaregiverId = Annotated[int, Path(ge=1, le=2**63 - 1)]
ShiftId = Annotated[int, Path(ge=1, le=2**63 - 1)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem}}
ReadCaregivers = Annotated[Scope, Depends(scoped(Permission.caregivers_read))]
ManageCaregivers = Annotated[Scope, Depends(scoped(Permission.caregivers_manage))]
ReportPosition = Annotated[Scope, Depends(scoped(Permission.orders_work))]


def _in_scope(scope: Scope, caregiver_id: int) -> None:
    visible(scope.sees_caregiver(caregiver_id), "caregiver", caregiver_id)


def _own_community(scope: Scope, community_id: int | None) -> int | None:
    """Staff add caregivers to their own community only (by default, theirs)."""
    if scope.role is not Role.staff:
        return community_id
    visible(community_id in (None, scope.community_id), "community", community_id)
    return scope.community_id


def _publish(request: Request, caregiver: dict[str, Any]) -> None:
    live = stored.live_view(caregiver) if "last_lat" in caregiver else caregiver
    request.app.state.hub.publish_caregiver(live)


@router.get("/caregivers", response_model=list[CaregiverPublic])
async def list_caregivers(
    conn: ConnDep,
    scope: ReadCaregivers,
    on_shift: Annotated[bool | None, Query(description="true: on shift now")] = None,
    active: Annotated[bool | None, Query(description="false: those no longer working")] = None,
) -> Any:
    rows = await stored.list_caregivers(conn, datetime.now(UTC), on_shift=on_shift, active=active)
    return [r for r in rows if scope.sees_caregiver(r["id"])]


@router.post(
    "/caregivers",
    response_model=CaregiverPublic,
    status_code=status.HTTP_201_CREATED,
    responses=NOT_FOUND,
)
async def create_caregiver(
    body: CaregiverCreate,
    conn: ConnDep,
    scope: ManageCaregivers,
    request: Request,
    background: BackgroundTasks,
) -> Any:
    fields = body.model_dump()
    fields["community_id"] = _own_community(scope, fields.get("community_id"))
    row = await stored.create_caregiver(conn, fields, datetime.now(UTC))
    background.add_task(_publish, request, row)
    return row


@router.get("/caregivers/{caregiver_id}", response_model=CaregiverPublic, responses=NOT_FOUND)
async def get_caregiver(caregiver_id: CaregiverId, conn: ConnDep, scope: ReadCaregivers) -> Any:
    _in_scope(scope, caregiver_id)
    return await stored.get_caregiver(conn, caregiver_id, datetime.now(UTC))


@router.patch("/caregivers/{caregiver_id}", response_model=CaregiverPublic, responses=NOT_FOUND)
async def update_caregiver(
    caregiver_id: CaregiverId,
    body: CaregiverUpdate,
    conn: ConnDep,
    scope: ManageCaregivers,
    request: Request,
    background: BackgroundTasks,
) -> Any:
    _in_scope(scope, caregiver_id)
    fields = body.model_dump(exclude_unset=True)
    if "community_id" in fields:
        fields["community_id"] = _own_community(scope, fields["community_id"])
    row = await stored.update_caregiver(conn, caregiver_id, fields, datetime.now(UTC))
    background.add_task(_publish, request, row)
    return row


@router.post(
    "/caregivers/{caregiver_id}/shifts",
    response_model=ShiftPublic,
    status_code=status.HTTP_201_CREATED,
    responses=NOT_FOUND,
)
async def add_shift(
    caregiver_id: CaregiverId, body: ShiftCreate, conn: ConnDep, scope: ManageCaregivers
) -> Any:
    """A shift in UTC; without ``ends_at`` the caregiver is clocked in until it is set."""
    _in_scope(scope, caregiver_id)
    return await stored.add_shift(conn, caregiver_id, body.starts_at, body.ends_at)


@router.get(
    "/caregivers/{caregiver_id}/shifts", response_model=list[ShiftPublic], responses=NOT_FOUND
)
async def list_shifts(
    caregiver_id: CaregiverId,
    conn: ConnDep,
    scope: ReadCaregivers,
    since: Annotated[datetime | None, Query(description="ending after (default: all)")] = None,
) -> Any:
    _in_scope(scope, caregiver_id)
    return await stored.list_shifts(conn, caregiver_id, since=since)


@router.delete(
    "/caregivers/{caregiver_id}/shifts/{shift_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=NOT_FOUND,
)
async def delete_shift(
    caregiver_id: CaregiverId, shift_id: ShiftId, conn: ConnDep, scope: ManageCaregivers
) -> Response:
    _in_scope(scope, caregiver_id)
    await stored.delete_shift(conn, caregiver_id, shift_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/caregivers/{caregiver_id}/position",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=NOT_FOUND,
)
async def report_position(
    caregiver_id: CaregiverId,
    body: PositionReport,
    conn: ConnDep,
    scope: ReportPosition,
    request: Request,
    background: BackgroundTasks,
) -> Response:
    """A fix from the caregiver's phone (WGS-84; ``acc`` in metres): a caregiver reports
    only their own.  A fix older than the last one is kept in the history but does not
    move the dot back."""
    _in_scope(scope, caregiver_id)
    now = datetime.now(UTC)
    live = await stored.record_position(
        conn, caregiver_id, body.lat, body.lon, body.acc, body.ts or now, now
    )
    background.add_task(_publish, request, live)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/caregivers/{caregiver_id}/today", response_model=OrdersPublic, responses=NOT_FOUND)
async def today(
    caregiver_id: CaregiverId, conn: ConnDep, actor: ActorDep, scope: ReadCaregivers
) -> Any:
    """The caregiver's open orders (the most pressing first), then what they finished
    or saw cancelled today (Asia/Shanghai), whenever it was requested."""
    _in_scope(scope, caregiver_id)
    now = datetime.now(UTC)
    await stored.get_caregiver(conn, caregiver_id, now)  # 404 for an unknown caregiver
    open_, _ = await stored_orders.list_orders(
        conn, caregiver_id=caregiver_id, open=True, open_first=True, limit=500
    )
    start, end = local_day(now.astimezone(SHANGHAI).date())
    done = await closed_for_caregiver(conn, caregiver_id, start, end)
    items = [order_json(r, now, actor) for r in (*open_, *done)]
    return {"items": items, "total": len(items)}
