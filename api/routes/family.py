"""The family API: a family member's own elders, how they are now, their alerts, a
service request, and how the member wants to be notified.

Signed-in ``family`` accounts reach an elder only through an unrevoked, consented
``family_links`` row; any other elder id is a 404, whether it exists or not.  An
``admin`` may use these routes for any elder (supporting a family on the phone).
Every view of an elder's record is written to the audit trail (``storage/audit.py``)
in the same transaction as the read.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse

from api import family_view
from api.auth_deps import CurrentUser, CurrentUserDep, now
from api.deps import ConnDep
from api.family_models import (
    AlertBrief,
    AlertBriefs,
    ElderNow,
    FamilyOrderCreate,
    LinkedElder,
    LinkedElders,
    NotifyPreferences,
    NotifyPreferencesPublic,
    VitalsDay,
    VitalsHour,
)
from api.models import Problem
from api.order_feed import order_json
from api.order_models import OrderPublic
from auth.roles import Role
from orders.lifecycle import Actor, NotPermitted
from storage import alerts as stored_alerts
from storage import audit, family, notify_prefs
from storage import orders as stored_orders
from storage.readings import vitals_series
from storage.registry import NotFound

router = APIRouter(prefix="/api/v1/family", tags=["family"])
ElderId = Annotated[int, Path(ge=1, le=2**63 - 1)]
NOT_YOURS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem},
    403: {"model": Problem},
    404: {"model": Problem, "description": "no such elder, or not linked to you"},
}
RECENT_ALERTS = 20


async def family_user(user: CurrentUserDep) -> CurrentUser:
    """A signed-in family member, or an administrator helping one; else 403."""
    if user.role not in (Role.family, Role.admin):
        raise HTTPException(403, f"the family pages are for family accounts, not a {user.role}")
    return user


FamilyUser = Annotated[CurrentUser, Depends(family_user)]


async def _reach(conn: Any, user: CurrentUser, elder_id: int) -> None:
    if user.role is Role.family and not await family.is_linked(conn, user.id, elder_id):
        raise NotFound(f"elder {elder_id} is not one of yours")


def _addr(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _audit(
    conn: Any, request: Request, user: CurrentUser, action: str, elder_id: int, **extra: Any
) -> None:
    await audit.record(
        conn,
        user,
        action,
        at=now(request),
        elder_id=elder_id,
        client_addr=_addr(request),
        object_kind=extra.pop("object_kind", "elder"),
        object_id=extra.pop("object_id", elder_id),
        detail=extra or None,
    )


def _brief(a: dict[str, Any]) -> AlertBrief:
    return AlertBrief(**{k: a[k] for k in AlertBrief.model_fields})


async def _day(conn: Any, elder_id: int, start: datetime, end: datetime) -> VitalsDay:
    rows = await vitals_series(conn, elder_id, start, end, timedelta(hours=1))
    hours = [
        VitalsHour(hour=r["bucket"], **{k: r[k] for k in VitalsHour.model_fields if k != "hour"})
        for r in rows
    ]
    local = start.astimezone(family_view.SHANGHAI).date()
    return VitalsDay(day=local, start=start, end=end, hours=hours)


@router.get("/elders", response_model=LinkedElders, responses=NOT_YOURS)
async def my_elders(user: FamilyUser, conn: ConnDep) -> LinkedElders:
    """The elders you are linked to (with consent on record); an admin sees every elder."""
    rows = (
        await family.all_elders(conn)
        if user.role is Role.admin
        else await family.linked_elders(conn, user.id)
    )
    return LinkedElders(data=[LinkedElder(**r) for r in rows], count=len(rows))


@router.get("/elders/{elder_id}/now", response_model=ElderNow, responses=NOT_YOURS)
async def elder_now(
    elder_id: ElderId, user: FamilyUser, conn: ConnDep, request: Request
) -> ElderNow:
    """Safe or alert, open alerts, last seen, battery, worn, the position (coarse unless
    a critical alert is open: then precise, and ``location.reason`` says so) and today's
    vital signs per hour (Asia/Shanghai day)."""
    await _reach(conn, user, elder_id)
    state = await family.elder_state(conn, elder_id)
    active, _ = await stored_alerts.list_alerts(conn, state="active", elder_id=elder_id)
    t = now(request)
    start, end = family_view.shanghai_day(t)
    loc = family_view.location(state, active, state["community"])
    await _audit(
        conn, request, user, "family.view_now", elder_id, precision=loc and loc["precision"]
    )
    return ElderNow(
        elder_id=elder_id,
        name=state["name"],
        community=state["community"],
        status=family_view.status_of(active),
        open_alerts=[_brief(a) for a in active],
        last_seen=state["last_seen"],
        online=state["online"],
        battery=state["battery"],
        worn=state["worn"],
        last_vitals={k: state[k] for k in ("hr", "spo2", "sbp", "dbp", "temp")}
        | {"ts": state["vitals_ts"]},
        location=loc,
        today=await _day(conn, elder_id, start, end),
        server_time=t,
    )


@router.get("/elders/{elder_id}/vitals", response_model=VitalsDay, responses=NOT_YOURS)
async def elder_vitals(
    elder_id: ElderId,
    user: FamilyUser,
    conn: ConnDep,
    request: Request,
    day: Annotated[date | None, Query(description="Asia/Shanghai day; default today")] = None,
) -> VitalsDay:
    """One Asia/Shanghai day of vital signs per hour (average, minimum, maximum)."""
    await _reach(conn, user, elder_id)
    t = now(request)
    if day is None:
        start, end = family_view.shanghai_day(t)
    else:
        noon = datetime(day.year, day.month, day.day, 12, tzinfo=family_view.SHANGHAI)
        start, end = family_view.shanghai_day(noon)
    await _audit(conn, request, user, "family.view_vitals", elder_id, day=start.isoformat())
    return await _day(conn, elder_id, start, end)


@router.get("/elders/{elder_id}/alerts", response_model=AlertBriefs, responses=NOT_YOURS)
async def elder_alerts(
    elder_id: ElderId,
    user: FamilyUser,
    conn: ConnDep,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = RECENT_ALERTS,
) -> AlertBriefs:
    """Recent alerts, newest first, with how each ended (``outcome``)."""
    await _reach(conn, user, elder_id)
    rows, total = await stored_alerts.list_alerts(conn, elder_id=elder_id, limit=limit)
    await _audit(conn, request, user, "family.view_alerts", elder_id)
    return AlertBriefs(data=[_brief(a) for a in rows], count=total)


@router.post(
    "/elders/{elder_id}/orders",
    response_model=OrderPublic,
    status_code=201,
    responses={**NOT_YOURS, 422: {"model": Problem}},
)
async def request_service(
    elder_id: ElderId,
    body: FamilyOrderCreate,
    user: FamilyUser,
    conn: ConnDep,
    request: Request,
    background: BackgroundTasks,
) -> Any:
    """Ask for a 六助 service for your elder (a 助急 is dispatched at once)."""
    await _reach(conn, user, elder_id)
    # An administrator asking on a family's behalf files it as staff would.
    actor = Actor("family" if user.role is Role.family else "staff", user.id)
    t = now(request)
    try:
        rec, _ = await stored_orders.create_order(
            conn,
            elder_id=elder_id,
            kind=body.kind,
            actor=actor,
            at=t,
            due_at=body.due_at,
            notes=body.notes,
        )
    except NotPermitted as exc:
        return JSONResponse({"detail": str(exc)}, status_code=403)
    except ValueError as exc:
        return JSONResponse({"detail": str(exc)}, status_code=422)
    await _audit(
        conn,
        request,
        user,
        "family.request_order",
        elder_id,
        object_kind="order",
        object_id=rec.id,
        kind=body.kind.value,
    )
    background.add_task(request.app.state.hub.publish_order, rec)
    return order_json(rec, t, actor)


@router.get("/me/notify", response_model=NotifyPreferencesPublic, responses=NOT_YOURS)
async def get_notify(user: FamilyUser, conn: ConnDep) -> NotifyPreferencesPublic:
    """How you want to be told (default: in the app only, no quiet hours)."""
    return NotifyPreferencesPublic(**_prefs(await notify_prefs.get(conn, user.id)))


@router.put("/me/notify", response_model=NotifyPreferencesPublic, responses=NOT_YOURS)
async def put_notify(
    body: NotifyPreferences, user: FamilyUser, conn: ConnDep, request: Request
) -> NotifyPreferencesPublic:
    """Replace your channels (in_app, wecom, dingtalk, email, sms, webhook, each with its
    address) and quiet hours (Asia/Shanghai wall-clock, e.g. 22:00–07:00)."""
    row = await notify_prefs.put(
        conn,
        user.id,
        channels=[c.model_dump() for c in body.channels],
        quiet_start=body.quiet_start,
        quiet_end=body.quiet_end,
        now=now(request),
    )
    await audit.record(
        conn,
        user,
        "notify.update",
        at=now(request),
        object_kind="user",
        object_id=user.id,
        detail={"kinds": [c.kind for c in body.channels]},
        client_addr=_addr(request),
    )
    return NotifyPreferencesPublic(**_prefs(row))


def _prefs(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("channels", "quiet_start", "quiet_end", "updated_at")}
