"""六助 service orders: the catalogue, request, list, one order with its trail, the
lifecycle steps (with the check-in on arrival) and dispatch on demand.

Who acts comes from :data:`api.actor.ActorDep` (the signed-in user); what they see
from their scope (``auth.scope``): an order outside it is a 404, like an unknown one.  The rules are the pure core's
(``orders.lifecycle``); the store (``storage.orders``) makes them atomic, so of two
concurrent steps one wins and the other gets a 409 with the state it lost to.  Every
change is pushed to the dashboards after the commit.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Query, Request, status
from fastapi.responses import JSONResponse

from api.access import scoped, visible
from api.actor import ActorDep
from api.deps import ConnDep
from api.dispatcher import dispatch_order
from api.order_feed import order_json
from api.order_models import (
    CheckInConflict,
    DispatchConflict,
    OrderCreate,
    OrderDetail,
    OrderPublic,
    OrdersPublic,
    Problem,
    ServiceKindPublic,
    StepConflict,
    StepRequest,
    service_kinds,
)
from auth.roles import Permission
from auth.scope import Scope
from orders.catalogue import ServiceKind
from orders.checkin import Fix, check_in
from orders.lifecycle import (
    ROLES,
    Action,
    Actor,
    NotPermitted,
    OrderState,
    Role,
    allowed_actions,
)
from storage import caregivers as stored_caregivers
from storage import orders as stored
from storage.orders import OrderConflict, OrderRecord

router = APIRouter(prefix="/api/v1", tags=["orders"])
OrderId = Annotated[int, Path(ge=1, le=2**63 - 1)]
QueryId = Annotated[int | None, Query(ge=1, le=2**63 - 1)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem}}
STEP: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND,
    403: {"model": Problem, "description": "the actor may not take this step"},
    409: {
        "model": StepConflict | CheckInConflict,
        "description": "not allowed in the current state, a stale version, or a check-in"
        " too far from the elder",
    },
}


SignedIn = Annotated[Scope, Depends(scoped())]
ReadOrders = Annotated[Scope, Depends(scoped(Permission.orders_read))]
RequestOrders = Annotated[Scope, Depends(scoped(Permission.orders_request))]
StepOrders = Annotated[
    Scope,
    Depends(scoped(Permission.orders_dispatch, Permission.orders_work, Permission.orders_request)),
]
DispatchOrders = Annotated[Scope, Depends(scoped(Permission.orders_dispatch))]


async def order_in_scope(conn: ConnDep, scope: Scope, order_id: int) -> OrderRecord:
    rec = await stored.get_order(conn, order_id)
    o = rec.order
    visible(scope.sees_order(o.elder_id, caregiver_id=o.caregiver_id), "order", order_id)
    return rec


def publish(request: Request, rec: OrderRecord) -> None:
    """Push ``rec`` to the dashboards (a background task: after the commit).  The
    dispatcher needs no call: every step's commit notifies it (``storage.orders``)."""
    request.app.state.hub.publish_order(rec)


def conflict(exc: OrderConflict) -> JSONResponse:
    return JSONResponse(
        {
            "detail": str(exc),
            "state": exc.state.value,
            "allowed": sorted(a.value for a in exc.allowed),
            "version": exc.version,
        },
        status_code=409,
    )


def forbidden(exc: NotPermitted) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=403)


def invalid(field: str, message: str) -> JSONResponse:
    """A 422 in FastAPI's own shape, naming the field."""
    return JSONResponse(
        {"detail": [{"loc": ["body", field], "msg": message, "type": "value_error"}]},
        status_code=422,
    )


@router.get("/service-kinds", response_model=list[ServiceKindPublic], tags=["orders"])
async def list_service_kinds(_: SignedIn) -> list[ServiceKindPublic]:
    """The six services with their targets (minutes), required skills and price."""
    return service_kinds()


@router.post(
    "/orders",
    response_model=OrderPublic,
    status_code=status.HTTP_201_CREATED,
    responses={**NOT_FOUND, 403: {"model": Problem}},
)
async def create_order(
    body: OrderCreate,
    conn: ConnDep,
    actor: ActorDep,
    scope: RequestOrders,
    request: Request,
    background: BackgroundTasks,
) -> Any:
    """Request a service; its source is the requester's role (staff, family, elder).
    A 助急 is dispatched at once; the others as their booked time approaches."""
    visible(scope.sees_elder(body.elder_id), "elder", body.elder_id)
    if Role(actor.role) in (Role.CAREGIVER, Role.SYSTEM):
        return JSONResponse(
            {"detail": f"a {Role(actor.role).value} does not request services through the API"},
            status_code=403,
        )
    now = datetime.now(UTC)
    try:
        rec, _ = await stored.create_order(
            conn,
            elder_id=body.elder_id,
            kind=body.kind,
            actor=actor,
            at=now,
            due_at=body.due_at,
            notes=body.notes,
        )
    except NotPermitted as exc:
        return forbidden(exc)
    except ValueError as exc:
        return invalid("due_at" if body.due_at else "kind", str(exc))
    background.add_task(publish, request, rec)
    return order_json(rec, now, actor)


@router.get("/orders", response_model=OrdersPublic)
async def list_orders(
    conn: ConnDep,
    actor: ActorDep,
    scope: ReadOrders,
    state: OrderState | None = None,
    kind: ServiceKind | None = None,
    elder_id: QueryId = None,
    caregiver_id: QueryId = None,
    open: Annotated[bool | None, Query(description="true: not completed or cancelled")] = None,
    day: Annotated[
        date | None, Query(description="local day (Asia/Shanghai), booked or requested")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Any:
    """Newest first; ``total`` counts every match the caller may see (a caregiver's
    own orders, the orders of the elders staff or family see)."""
    own = scope.order_caregiver_filter()
    if own is not None:
        if caregiver_id is not None and caregiver_id != own:
            return {"items": [], "total": 0}
        caregiver_id = own
    recs, total = await stored.list_orders(
        conn,
        state=state.value if state else None,
        kind=kind.value if kind else None,
        elder_id=elder_id,
        caregiver_id=caregiver_id,
        open=open,
        day=day,
        limit=limit,
        offset=offset,
        elder_ids=None if own is not None else scope.elder_filter(),
    )
    now = datetime.now(UTC)
    return {"items": [order_json(r, now, actor) for r in recs], "total": total}


@router.get("/orders/{order_id}", response_model=OrderDetail, responses=NOT_FOUND)
async def get_order(order_id: OrderId, conn: ConnDep, actor: ActorDep, scope: ReadOrders) -> Any:
    """One order with every step (who, when, from, to, and e.g. the check-in's distance)."""
    rec = await order_in_scope(conn, scope, order_id)
    return order_json(rec, datetime.now(UTC), actor, steps=True)


@router.post("/orders/{order_id}/steps", response_model=OrderPublic, responses=STEP)
async def take_step(
    order_id: OrderId,
    body: StepRequest,
    conn: ConnDep,
    actor: ActorDep,
    scope: StepOrders,
    request: Request,
    background: BackgroundTasks,
) -> Any:
    """Assign (staff, with ``caregiver_id``), accept, reject, depart, arrive (with the
    caregiver's ``lat``/``lon``/``acc``: within 150 m of the elder), complete
    (``note``), cancel.  ``version``: the one you saw, to refuse acting on a stale view."""
    now = datetime.now(UTC)
    action = Action(body.action)
    detail: dict[str, Any] | None = None
    if action is Action.ASSIGN and body.caregiver_id is None:
        return invalid("caregiver_id", "assign needs the caregiver_id")
    rec = await order_in_scope(conn, scope, order_id)
    if action is Action.ASSIGN and body.caregiver_id is not None:
        visible(scope.sees_caregiver(body.caregiver_id), "caregiver", body.caregiver_id)
    # Else the step itself says why not (403 / 409).
    if action is Action.ARRIVE and _may(rec, action, actor):
        verdict = _check_in(rec, body, actor, now)
        if isinstance(verdict, JSONResponse):
            return verdict
        detail = verdict
    try:
        rec = await stored.apply_step(
            conn,
            order_id,
            action,
            actor,
            now,
            caregiver_id=body.caregiver_id if action is Action.ASSIGN else None,
            note=body.note,
            version=body.version,
            detail=detail,
        )
    except OrderConflict as exc:
        return conflict(exc)
    except NotPermitted as exc:
        return forbidden(exc)
    except ValueError as exc:
        return invalid("action", str(exc))
    checked_in = detail is not None and detail.get("verdict") == "accepted"
    if checked_in and Role(actor.role) is Role.CAREGIVER and actor.id is not None:
        # The check-in is also where the caregiver is now: their dot moves to the door.
        assert body.lat is not None and body.lon is not None
        live = await stored_caregivers.record_position(
            conn, actor.id, body.lat, body.lon, body.acc, body.ts or now, now
        )
        background.add_task(request.app.state.hub.publish_caregiver, live)
    background.add_task(publish, request, rec)
    return order_json(rec, now, actor)


def _may(rec: OrderRecord, action: Action, actor: Actor) -> bool:
    role = Role(actor.role)
    return (
        action in allowed_actions(rec.state)
        and role in ROLES[action]
        and (role is not Role.CAREGIVER or actor.id == rec.order.caregiver_id)
    )


def _check_in(
    rec: OrderRecord, body: StepRequest, actor: Actor, now: datetime
) -> dict[str, Any] | JSONResponse:
    """The check-in's record for the step, or the response refusing it."""
    if body.lat is None or body.lon is None:
        if Role(actor.role) is Role.CAREGIVER:
            return invalid("lat", "arrive needs your position: lat, lon and acc")
        # Staff record an arrival reported by phone (a dead battery): no position.
        return {"check_in": "recorded by staff without a position"}
    place = rec.elder_position(now)
    fix = Fix(body.lat, body.lon, body.acc if body.acc is not None else 0.0, body.ts or now)
    where = {"lat": body.lat, "lon": body.lon, "acc": body.acc}
    if place is None:
        return {"check_in": "unverified: the elder has no known position", **where}
    row = rec.row
    on_fix = place == (row.get("fix_lat"), row.get("fix_lon"))
    elder_acc = float(row.get("fix_acc") or 0.0) if on_fix else 0.0
    result = check_in(fix, place, now, elder_acc)
    record = {
        **where,
        "distance_m": result.distance_m,
        "uncertainty_m": result.uncertainty_m,
        "verdict": result.verdict.value,
        "against": "device fix" if on_fix else "home",
    }
    if result.accepted:
        return record
    why = {
        "too_far": f"{result.distance_m:.0f} m from the elder (±{result.uncertainty_m:.0f} m);"
        " check in within 150 m",
        "coarse_fix": f"the position is too coarse (±{body.acc or 0:.0f} m); try again by a"
        " window or outdoors",
        "stale_fix": "the position is more than two minutes old; take a fresh one",
    }[result.verdict.value]
    return JSONResponse(
        {
            "detail": f"check-in refused: {why}",
            "distance_m": result.distance_m,
            "verdict": result.verdict.value,
            "state": rec.state.value,
            "version": rec.version,
        },
        status_code=409,
    )


@router.post(
    "/orders/{order_id}/dispatch",
    response_model=OrderPublic,
    responses={**NOT_FOUND, 403: {"model": Problem}, 409: {"model": DispatchConflict}},
)
async def dispatch_now(
    order_id: OrderId,
    conn: ConnDep,
    actor: ActorDep,
    scope: DispatchOrders,
    request: Request,
    background: BackgroundTasks,
) -> Any:
    """Staff ask the dispatcher to choose a caregiver now (nearest qualified on shift,
    load considered); 409 with the eligibility funnel when nobody is available."""
    if Role(actor.role) is not Role.STAFF:
        return JSONResponse({"detail": "only staff dispatch by hand"}, status_code=403)
    await order_in_scope(conn, scope, order_id)
    now = datetime.now(UTC)
    try:
        rec, decision = await dispatch_order(conn, order_id, now, actor=actor)
    except OrderConflict as exc:
        return conflict(exc)
    if decision.caregiver_id is None:
        # The order keeps the reason as its dispatch note (committed with this response).
        return JSONResponse(
            {
                "detail": f"no caregiver available: {decision.reason.value}",
                "funnel": asdict(decision.funnel),
            },
            status_code=409,
        )
    # Read again: the dispatcher clears the old dispatch note after the step it returns.
    rec = await stored.get_order(conn, order_id)
    background.add_task(publish, request, rec)
    return order_json(rec, now, actor)
