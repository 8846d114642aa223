"""Alerts for staff: the list, one alert with what happened around it, acknowledge and
resolve, the false-alarm rates, and each elder's rule-setting overrides.

State changes are pushed to the dashboards after the commit (a background task runs
after the response, and the connection dependency commits before it).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse

from alerts.core import Severity
from alerts.lifecycle import IllegalTransition
from api import audit_trail
from api.access import scoped, visible
from api.alert_models import (
    AcknowledgeRequest,
    AlertDetail,
    AlertPublic,
    AlertsPublic,
    AlertStats,
    IllegalTransitionProblem,
    ResolveRequest,
    ThresholdsPublic,
    ThresholdsUpdate,
)
from api.deps import ConnDep
from api.models import Problem
from auth.roles import Permission
from auth.scope import Scope
from storage import alerts as stored

router = APIRouter(prefix="/api/v1", tags=["alerts"])
AlertId = Annotated[int, Path(ge=1, le=2**63 - 1)]
ElderId = Annotated[int, Path(ge=1, le=2**63 - 1)]
StateFilter = Literal["open", "acknowledged", "resolved", "active"]
Kind = Annotated[str, Query(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem}}
TRANSITION: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND,
    409: {"model": IllegalTransitionProblem, "description": "not allowed in the current state"},
}
ReadAlerts = Annotated[Scope, Depends(scoped(Permission.alerts_read))]
AckAlerts = Annotated[Scope, Depends(scoped(Permission.alerts_ack))]
ReadElder = Annotated[Scope, Depends(scoped(Permission.elders_read))]
ManageThresholds = Annotated[Scope, Depends(scoped(Permission.thresholds_manage))]


async def _alert_in_scope(conn: ConnDep, scope: Scope, alert_id: int) -> dict[str, Any]:
    alert = await stored.get_alert(conn, alert_id)
    visible(scope.sees_alert(alert["elder_id"]), "alert", alert_id)
    return alert


class _Publisher(Protocol):
    def publish_alert(self, alert: dict[str, Any]) -> None: ...


def _publisher(request: Request) -> _Publisher:
    return request.app.state.hub


def _aware(name: str, t: datetime | None) -> datetime | None:
    if t is not None and t.tzinfo is None:
        raise HTTPException(422, f"{name} needs a UTC offset, e.g. 2026-11-28T08:00:00+08:00")
    return t


def _conflict(exc: IllegalTransition) -> JSONResponse:
    return JSONResponse({"detail": str(exc), "state": exc.state.value}, status_code=409)


@router.get("/alerts", response_model=AlertsPublic)
async def list_alerts(
    conn: ConnDep,
    scope: ReadAlerts,
    state: StateFilter | None = None,
    severity: Severity | None = None,
    kind: Kind | None = None,
    elder_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    since: Annotated[datetime | None, Query(description="opened at or after")] = None,
    before_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AlertsPublic:
    """``state=active`` (open or acknowledged) lists the most severe first, then the
    newest; any other filter lists newest first.  ``count`` is the total matching."""
    rows, total = await stored.list_alerts(
        conn,
        state=state,
        severity=severity.value if severity else None,
        kind=kind,
        elder_id=elder_id,
        since=_aware("since", since),
        before_id=before_id,
        limit=limit,
        elder_ids=scope.elder_filter(),
    )
    return AlertsPublic(data=[AlertPublic(**r) for r in rows], count=total)


# Declared before /alerts/{alert_id} so that "stats" is not read as an id.
@router.get("/alerts/stats", response_model=AlertStats)
async def alert_stats(
    conn: ConnDep,
    scope: ReadAlerts,
    since: Annotated[datetime | None, Query(description="resolved at or after")] = None,
) -> AlertStats:
    """Per rule and per elder: resolved alerts, how many a person judged, how many they
    called a false alarm, and the false-alarm rate over the judged ones."""
    since = _aware("since", since)
    return AlertStats(**await stored.false_alarm_stats(conn, since, scope.elder_filter()))


@router.get("/alerts/{alert_id}", response_model=AlertDetail, responses=NOT_FOUND)
async def get_alert(alert_id: AlertId, conn: ConnDep, scope: ReadAlerts) -> AlertDetail:
    """One alert, its audit trail, and the elder's readings 15 minutes either side."""
    alert = await _alert_in_scope(conn, scope, alert_id)
    return AlertDetail(
        **alert,
        history=await stored.history(conn, alert_id),
        readings=await stored.readings_around(conn, alert),
    )


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertPublic, responses=TRANSITION)
async def acknowledge(
    alert_id: AlertId,
    body: AcknowledgeRequest,
    conn: ConnDep,
    scope: AckAlerts,
    request: Request,
    background: BackgroundTasks,
    who: audit_trail.OptionalUserDep,
) -> Any:
    await _alert_in_scope(conn, scope, alert_id)
    try:
        alert = await stored.acknowledge(conn, alert_id, body.by, body.note, datetime.now(UTC))
    except IllegalTransition as exc:
        return _conflict(exc)
    await audit_trail.record(
        conn, request, who, "alert.acknowledge", elder_id=alert["elder_id"],
        object_kind="alert", object_id=alert_id, detail={"by": body.by}, login=body.by,
    )  # fmt: skip
    background.add_task(_publisher(request).publish_alert, alert)
    return AlertPublic(**alert)


@router.post("/alerts/{alert_id}/resolve", response_model=AlertPublic, responses=TRANSITION)
async def resolve(
    alert_id: AlertId,
    body: ResolveRequest,
    conn: ConnDep,
    scope: AckAlerts,
    request: Request,
    background: BackgroundTasks,
    who: audit_trail.OptionalUserDep,
) -> Any:
    """Resolve with an outcome; an alert still open is acknowledged by the same person."""
    await _alert_in_scope(conn, scope, alert_id)
    try:
        alert = await stored.resolve(
            conn, alert_id, body.by, body.outcome, body.note, datetime.now(UTC)
        )
    except IllegalTransition as exc:
        return _conflict(exc)
    await audit_trail.record(
        conn, request, who, "alert.resolve", elder_id=alert["elder_id"], object_kind="alert",
        object_id=alert_id, detail={"by": body.by, "outcome": alert["outcome"]}, login=body.by,
    )  # fmt: skip
    background.add_task(_publisher(request).publish_alert, alert)
    return AlertPublic(**alert)


@router.get("/elders/{elder_id}/thresholds", response_model=ThresholdsPublic, responses=NOT_FOUND)
async def get_thresholds(elder_id: ElderId, conn: ConnDep, scope: ReadElder) -> ThresholdsPublic:
    """The elder's overrides of rule settings (``{}``: the rules' defaults throughout)."""
    visible(scope.sees_elder(elder_id), "elder", elder_id)
    return ThresholdsPublic(**await stored.get_thresholds(conn, elder_id))


@router.put("/elders/{elder_id}/thresholds", response_model=ThresholdsPublic, responses=NOT_FOUND)
async def put_thresholds(
    elder_id: ElderId, body: ThresholdsUpdate, conn: ConnDep, scope: ManageThresholds
) -> ThresholdsPublic:
    """Replace the overrides, e.g. ``{"by": "王主任", "thresholds": {"fall":
    {"confirm_window_s": 90}, "news2_spo2": {"hypercapnic": true}}}``.  Unknown kinds or
    settings and out-of-range values are a 422 that says which and why."""
    visible(scope.sees_elder(elder_id), "elder", elder_id)
    row = await stored.put_thresholds(conn, elder_id, body.thresholds, body.by, datetime.now(UTC))
    return ThresholdsPublic(**row)
