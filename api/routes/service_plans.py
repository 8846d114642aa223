"""An elder's 六助 subscription, monthly usage against it, and recurring schedules.

Anyone who sees the elder (``auth.scope``) reads them; staff and the administrator
change them (``plans.manage``).
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response, status
from fastapi.responses import JSONResponse

from api.access import scoped, visible
from api.deps import ConnDep
from api.order_models import (
    MonthParam,
    Problem,
    ScheduleCreate,
    SchedulePublic,
    SubscriptionPublic,
    SubscriptionPut,
    UsagePublic,
)
from auth.roles import Permission
from auth.scope import Scope
from orders.plans import Month
from orders.report import parse_month
from orders.schedule import SHANGHAI
from storage import service_plans as stored
from storage.scope import schedule_elder

router = APIRouter(prefix="/api/v1", tags=["service plans"])
ElderId = Annotated[int, Path(ge=1, le=2**63 - 1)]
ScheduleId = Annotated[int, Path(ge=1, le=2**63 - 1)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem}}
ReadPlans = Annotated[Scope, Depends(scoped(Permission.orders_read))]
ManagePlans = Annotated[Scope, Depends(scoped(Permission.plans_manage))]


def _elder(scope: Scope, elder_id: int) -> None:
    visible(scope.sees_elder(elder_id), "elder", elder_id)


def _today() -> Any:
    return datetime.now(UTC).astimezone(SHANGHAI).date()


def month_of(text: str | None) -> Month:
    """``YYYY-MM`` (validated by the query's pattern), default this local month."""
    return Month.of(datetime.now(UTC)) if text is None else parse_month(text)


@router.get(
    "/elders/{elder_id}/subscription",
    response_model=SubscriptionPublic | None,
    responses=NOT_FOUND,
)
async def get_subscription(elder_id: ElderId, conn: ConnDep, scope: ReadPlans) -> Any:
    """The plan covering today (else the next one to start); ``null`` without one."""
    _elder(scope, elder_id)
    return await stored.get_subscription(conn, elder_id, _today())


@router.put(
    "/elders/{elder_id}/subscription", response_model=SubscriptionPublic, responses=NOT_FOUND
)
async def put_subscription(
    elder_id: ElderId, body: SubscriptionPut, conn: ConnDep, scope: ManagePlans
) -> Any:
    """Subscribe from ``starts_on`` (a plan running then ends the day before); months are
    charged whole.  404 for an unknown elder or plan."""
    _elder(scope, elder_id)
    return await stored.put_subscription(
        conn, elder_id, body.plan_code, body.starts_on, body.ends_on
    )


@router.get("/elders/{elder_id}/usage", response_model=UsagePublic, responses=NOT_FOUND)
async def get_usage(
    elder_id: ElderId,
    conn: ConnDep,
    scope: ReadPlans,
    month: Annotated[MonthParam | None, Query(description="YYYY-MM (default: this month)")] = None,
) -> Any:
    """Completed services in the month (by the day they were delivered), what the plan
    includes, and what is charged beyond it, in 分."""
    _elder(scope, elder_id)
    m = month_of(month)
    u = await stored.usage_for_month(conn, elder_id, m)
    return {
        "elder_id": elder_id,
        "month": str(m),
        "plan_code": u.plan_code,
        "fee_fen": u.fee_fen,
        "extra_fen": u.extra_fen,
        "total_fen": u.total_fen,
        "lines": [
            {
                "kind": x.kind,
                "kind_zh": x.kind.zh,
                "used": x.used,
                "included": x.included,
                "remaining": x.remaining,
                "extra": x.extra,
                "extra_fen": x.extra_fen,
            }
            for x in u.lines
        ],
    }


@router.get(
    "/elders/{elder_id}/schedules", response_model=list[SchedulePublic], responses=NOT_FOUND
)
async def list_schedules(
    elder_id: ElderId,
    conn: ConnDep,
    scope: ReadPlans,
    include_inactive: Annotated[bool, Query(description="also the stopped ones")] = False,
) -> Any:
    _elder(scope, elder_id)
    return await stored.list_schedules(conn, elder_id, include_inactive=include_inactive)


@router.post(
    "/elders/{elder_id}/schedules",
    response_model=SchedulePublic,
    status_code=status.HTTP_201_CREATED,
    responses=NOT_FOUND,
)
async def create_schedule(
    elder_id: ElderId, body: ScheduleCreate, conn: ConnDep, scope: ManagePlans
) -> Any:
    """A recurring request, e.g. ``{"kind": "meal", "weekdays": "mon-fri", "local_time":
    "11:30"}`` (Asia/Shanghai); each occurrence becomes an order ahead of its time."""
    _elder(scope, elder_id)
    try:
        return await stored.create_schedule(
            conn,
            elder_id,
            body.kind.value,
            body.weekdays,
            time.fromisoformat(body.local_time),
            body.starts_on or _today(),
            body.ends_on,
            body.notes,
        )
    except ValueError as exc:  # e.g. ends_on before the default start, today
        return JSONResponse(
            {"detail": [{"loc": ["body"], "msg": str(exc), "type": "value_error"}]},
            status_code=422,
        )


@router.delete(
    "/schedules/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND
)
async def delete_schedule(schedule_id: ScheduleId, conn: ConnDep, scope: ManagePlans) -> Response:
    """Stop the schedule; orders already released stay."""
    elder = await schedule_elder(conn, schedule_id)
    visible(elder is not None and scope.sees_elder(elder), "schedule", schedule_id)
    await stored.delete_schedule(conn, schedule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
