"""Notifications: a community's escalation ladder and duty roster, what was sent about an
alert, and the signed-in user's own channels and in-app inbox.

Every route requires sign-in.  The ladder and roster are for staff of that community
and administrators; an alert's attempts are visible to whoever may see the alert (the
scope of auth.scope).  Out of scope answers 404, as an unknown id does.
"""

from __future__ import annotations

from datetime import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import AwareDatetime, BaseModel, Field, field_validator, model_validator

from api.access import scoped, visible
from api.auth_deps import CurrentUser, CurrentUserDep, now, require
from api.deps import ConnDep
from auth.roles import Permission, Role
from auth.scope import Scope
from notify.addresses import apprise_url
from notify.apprise_sender import check_url
from notify.ladder import Audience, Ladder, Step
from storage import notifications as stored
from storage.registry import NotFound

router = APIRouter(prefix="/api/v1", tags=["notifications"])
Id = Annotated[int, Path(ge=1, le=2**63 - 1)]
Severity = Literal["low", "medium", "high", "critical"]
StaffDep = Annotated[CurrentUser, Depends(require(Permission.alerts_ack))]  # admin, staff
ReadAlertsScope = Annotated[Scope, Depends(scoped(Permission.alerts_read))]


# --- models ----------------------------------------------------------------------------


class StepBody(BaseModel):
    audience: Audience
    wait_s: float = Field(ge=0, le=86400, description="Before the next step starts.")
    min_severity: Severity = "medium"
    remind: bool = True


class EmergencyBody(BaseModel):
    label: str = Field(default="120", min_length=1, max_length=40)
    phone: str = Field(min_length=1, max_length=40)
    notify_url: str | None = Field(
        default=None, max_length=2000, description="apprise URL that reaches it (SMS gateway)."
    )

    @field_validator("notify_url")
    @classmethod
    def _apprise(cls, v: str | None) -> str | None:
        if v and (why := check_url(v)):
            raise ValueError(why)
        return v or None


class LadderBody(BaseModel):
    steps: list[StepBody] = Field(min_length=1, max_length=8)
    reminder_s: int = Field(default=60, ge=0, le=86400, description="0: no reminders.")
    max_reminders: int = Field(default=5, ge=0, le=50)
    emergency: EmergencyBody | None = None

    @model_validator(mode="after")
    def _distinct(self) -> LadderBody:
        audiences = [s.audience for s in self.steps]
        if len(set(audiences)) != len(audiences):
            raise ValueError("each audience may appear once in the ladder")
        if 0 < self.reminder_s < 30:
            raise ValueError("reminder_s: at least 30 s between reminders (or 0 for none)")
        return self

    def ladder(self) -> Ladder:
        steps = tuple(Step(s.audience, s.wait_s, s.min_severity, s.remind) for s in self.steps)
        return Ladder(steps, float(self.reminder_s), self.max_reminders)


class RosterBody(BaseModel):
    user_id: int = Field(ge=1)
    role_in_ladder: Literal["duty", "supervisor"] = "duty"
    starts_at: AwareDatetime
    ends_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _order(self) -> RosterBody:
        if self.ends_at is not None and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class ChannelBody(BaseModel):
    kind: Literal["wecom", "dingtalk", "email", "sms", "webhook", "other"]
    url: str = Field(
        min_length=3,
        max_length=2000,
        description="An apprise URL, or a WeCom/DingTalk robot's or a webhook's https:// URL.",
    )
    enabled: bool = True

    @model_validator(mode="after")
    def _apprise(self) -> ChannelBody:
        resolved = apprise_url(self.kind, self.url)
        why = check_url(resolved) if resolved else "not an apprise URL or an https:// webhook"
        if why:
            raise ValueError(f"url: {why}")
        return self


class ChannelsBody(BaseModel):
    channels: list[ChannelBody] = Field(max_length=10, description="Tried in this order.")
    quiet_start: time | None = Field(default=None, description="Asia/Shanghai, e.g. 22:00.")
    quiet_end: time | None = Field(default=None, description="Asia/Shanghai, e.g. 07:00.")

    @model_validator(mode="after")
    def _both(self) -> ChannelsBody:
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ValueError("give both quiet_start and quiet_end, or neither")
        return self


class ReadBody(BaseModel):
    ids: list[int] | None = Field(default=None, max_length=500, description="None: all.")


# --- scope -------------------------------------------------------------------------------


def _own_community(user: CurrentUser, community_id: int) -> None:
    # Another community's ladder is reported as absent, like any object out of scope.
    if user.role is not Role.admin and user.community_id != community_id:
        raise NotFound(f"community {community_id} does not exist")


async def _may_see_alert(conn: Any, scope: Scope, alert_id: int) -> None:
    cur = await conn.execute("SELECT elder_id FROM alerts WHERE id = %s", (alert_id,))
    row = await cur.fetchone()
    visible(row is not None and scope.sees_alert(row[0]), "alert", alert_id)


# --- routes ------------------------------------------------------------------------------


@router.get("/communities/{community_id}/ladder")
async def get_ladder(community_id: Id, conn: ConnDep, user: StaffDep) -> dict[str, Any]:
    """The community's escalation ladder (the default until one is saved) and its
    emergency number."""
    _own_community(user, community_id)
    return await stored.get_ladder(conn, community_id)


@router.put("/communities/{community_id}/ladder")
async def put_ladder(
    community_id: Id, body: LadderBody, conn: ConnDep, user: StaffDep, request: Request
) -> dict[str, Any]:
    _own_community(user, community_id)
    emergency = body.emergency.model_dump() if body.emergency else None
    return await stored.put_ladder(
        conn, community_id, body.ladder(), emergency, by=user.id, now=now(request)
    )


@router.get("/communities/{community_id}/duty")
async def get_roster(
    community_id: Id, conn: ConnDep, user: StaffDep, request: Request
) -> list[dict[str, Any]]:
    """Who is on duty (and supervising) now and later."""
    _own_community(user, community_id)
    return await stored.roster(conn, community_id, now(request))


@router.post("/communities/{community_id}/duty", status_code=201)
async def add_roster(
    community_id: Id, body: RosterBody, conn: ConnDep, user: StaffDep
) -> dict[str, Any]:
    _own_community(user, community_id)
    try:
        return await stored.add_to_roster(
            conn, community_id, body.user_id, body.role_in_ladder, body.starts_at, body.ends_at
        )
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("/alerts/{alert_id}/notifications")
async def alert_notifications(
    alert_id: Id, conn: ConnDep, scope: ReadAlertsScope
) -> list[dict[str, Any]]:
    """Every attempt to reach someone about the alert: who, which step, which channel
    (its address masked), when, and delivered or failed with the reason."""
    await _may_see_alert(conn, scope, alert_id)
    return await stored.attempts_of_alert(conn, alert_id)


@router.get("/me/channels")
async def my_channels(conn: ConnDep, user: CurrentUserDep) -> dict[str, Any]:
    """Where I am reached, in order, and my quiet hours (non-critical alerts wait)."""
    return await stored.get_channels(conn, user.id)


@router.put("/me/channels")
async def put_my_channels(
    body: ChannelsBody, conn: ConnDep, user: CurrentUserDep, request: Request
) -> dict[str, Any]:
    channels = [c.model_dump() for c in body.channels]
    return await stored.put_channels(
        conn, user.id, channels, body.quiet_start, body.quiet_end, now(request)
    )


@router.get("/me/notifications")
async def my_notifications(
    conn: ConnDep,
    user: CurrentUserDep,
    unread: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """My in-app notifications, newest first, and how many are unread."""
    items, n = await stored.inbox(conn, user.id, unread=unread, limit=limit)
    return {"items": items, "unread": n}


@router.post("/me/notifications/read")
async def read_my_notifications(
    body: ReadBody, conn: ConnDep, user: CurrentUserDep, request: Request
) -> dict[str, int]:
    """Mark my notifications read (``ids``, or all of them)."""
    return {"marked": await stored.mark_read(conn, user.id, body.ids, now(request))}
