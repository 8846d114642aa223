"""Notifications in the database: ladders, the duty roster, emergency numbers, channel
preferences, delivery attempts and the in-app inbox.  The decisions are in
``notify.ladder`` / ``notify.orders``; this module reads what they need and records
what the shell did.  No function here commits: the caller owns the transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, time, timedelta
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from notify.apprise_sender import Delivery
from notify.ladder import (
    DEFAULT_LADDER,
    Attempt,
    Audience,
    Channel,
    Due,
    InboxNote,
    Ladder,
    Person,
    QuietHours,
    Step,
)
from storage.registry import NotFound

ROLES_IN_LADDER: Final = {"duty": Audience.DUTY, "supervisor": Audience.SUPERVISOR}


def _jsonb(obj: Any) -> Jsonb:
    return Jsonb(obj, dumps=lambda o: json.dumps(o, ensure_ascii=False))


# --- ladders and the emergency number ----------------------------------------------------


def ladder_to_json(ladder: Ladder) -> dict[str, Any]:
    return {
        "steps": [
            {
                "audience": s.audience.value,
                "wait_s": s.wait_s,
                "min_severity": s.min_severity,
                "remind": s.remind,
            }
            for s in ladder.steps
        ],
        "reminder_s": ladder.reminder_s,
        "max_reminders": ladder.max_reminders,
    }


def ladder_from_row(row: dict[str, Any]) -> Ladder:
    steps = tuple(
        Step(Audience(s["audience"]), float(s["wait_s"]), s["min_severity"], bool(s["remind"]))
        for s in row["steps"]
    )
    return Ladder(steps, float(row["reminder_s"]), int(row["max_reminders"]))


async def ladders(conn: AsyncConnection, community_ids: Iterable[int]) -> dict[int, Ladder]:
    """Each community's ladder; a community without one is left out (use the default)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT community_id, steps, reminder_s, max_reminders FROM escalation_ladders"
            " WHERE community_id = ANY(%s)",
            (list(community_ids),),
        )
        return {r["community_id"]: ladder_from_row(r) for r in await cur.fetchall()}


async def get_ladder(conn: AsyncConnection, community_id: int) -> dict[str, Any]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT 1 FROM communities WHERE id = %s", (community_id,))
        if await cur.fetchone() is None:
            raise NotFound(f"community {community_id} does not exist")
    found = await ladders(conn, [community_id])
    body = ladder_to_json(found.get(community_id, DEFAULT_LADDER))
    body["default"] = community_id not in found
    body["emergency"] = (await emergency_contacts(conn, [community_id])).get(community_id)
    return body


async def put_ladder(
    conn: AsyncConnection,
    community_id: int,
    ladder: Ladder,
    emergency: dict[str, Any] | None,
    *,
    by: int,
    now: datetime,
) -> dict[str, Any]:
    body = ladder_to_json(ladder)
    await get_ladder(conn, community_id)  # 404 for an unknown community
    await conn.execute(
        "INSERT INTO escalation_ladders (community_id, steps, reminder_s, max_reminders,"
        " updated_at, updated_by) VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (community_id) DO UPDATE SET steps = EXCLUDED.steps,"
        " reminder_s = EXCLUDED.reminder_s, max_reminders = EXCLUDED.max_reminders,"
        " updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by",
        (
            community_id,
            _jsonb(body["steps"]),
            int(ladder.reminder_s),
            ladder.max_reminders,
            now,
            by,
        ),
    )
    if emergency is None:
        await conn.execute(
            "DELETE FROM emergency_contacts WHERE community_id = %s", (community_id,)
        )
    else:
        await conn.execute(
            "INSERT INTO emergency_contacts (community_id, label, phone, notify_url)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (community_id) DO UPDATE SET"
            " label = EXCLUDED.label, phone = EXCLUDED.phone, notify_url = EXCLUDED.notify_url",
            (community_id, emergency["label"], emergency["phone"], emergency.get("notify_url")),
        )
    return await get_ladder(conn, community_id)


async def emergency_contacts(
    conn: AsyncConnection, community_ids: Iterable[int]
) -> dict[int, dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT community_id, label, phone, notify_url FROM emergency_contacts"
            " WHERE community_id = ANY(%s)",
            (list(community_ids),),
        )
        return {
            r.pop("community_id"): r  # type: ignore[misc]
            for r in await cur.fetchall()
        }


def emergency_person(community_id: int, contact: dict[str, Any] | None) -> Person | None:
    if contact is None:
        return None
    url = contact.get("notify_url")
    channels = (Channel("emergency", url),) if url else ()
    return Person(
        f"emergency:{community_id}", f"{contact['label']} {contact['phone']}", None, channels
    )


# --- the roster ----------------------------------------------------------------------------


async def on_duty(
    conn: AsyncConnection, community_ids: Iterable[int], now: datetime
) -> dict[tuple[int, Audience], list[int]]:
    """``(community, duty|supervisor) -> user ids`` on the roster at ``now`` (active users)."""
    async with conn.cursor() as cur:
        await cur.execute(
            "SELECT r.community_id, r.role_in_ladder, r.user_id FROM duty_roster r"
            " JOIN users u ON u.id = r.user_id AND u.active"
            " WHERE r.community_id = ANY(%s) AND r.starts_at <= %s"
            " AND (r.ends_at IS NULL OR r.ends_at > %s) ORDER BY r.starts_at, r.id",
            (list(community_ids), now, now),
        )
        out: dict[tuple[int, Audience], list[int]] = {}
        for cid, role, uid in await cur.fetchall():
            ids = out.setdefault((cid, ROLES_IN_LADDER[role]), [])
            if uid not in ids:
                ids.append(uid)
        return out


async def add_to_roster(
    conn: AsyncConnection,
    community_id: int,
    user_id: int,
    role_in_ladder: str,
    starts_at: datetime,
    ends_at: datetime | None,
) -> dict[str, Any]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT community_id, role FROM users WHERE id = %s AND active", (user_id,)
        )
        user = await cur.fetchone()
        if user is None:
            raise NotFound(f"user {user_id} does not exist or is disabled")
        if user["role"] not in ("staff", "admin"):
            raise ValueError(f"a {user['role']} cannot be on the duty roster (staff or admin)")
        if user["role"] == "staff" and user["community_id"] != community_id:
            raise ValueError(f"user {user_id} works in another community")
        await cur.execute(
            "INSERT INTO duty_roster (community_id, user_id, role_in_ladder, starts_at, ends_at)"
            " VALUES (%s, %s, %s, %s, %s)"
            " RETURNING id, community_id, user_id, role_in_ladder, starts_at, ends_at",
            (community_id, user_id, role_in_ladder, starts_at, ends_at),
        )
        row = await cur.fetchone()
    assert row is not None
    return row


async def roster(conn: AsyncConnection, community_id: int, now: datetime) -> list[dict[str, Any]]:
    """The roster rows current at ``now`` or later."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT r.id, r.community_id, r.user_id, u.display_name, r.role_in_ladder,"
            " r.starts_at, r.ends_at FROM duty_roster r JOIN users u ON u.id = r.user_id"
            " WHERE r.community_id = %s AND (r.ends_at IS NULL OR r.ends_at > %s)"
            " ORDER BY r.starts_at, r.id",
            (community_id, now),
        )
        return list(await cur.fetchall())


# --- people and their channels ---------------------------------------------------------------


def channels_from_json(entries: Sequence[dict[str, Any]]) -> tuple[Channel, ...]:
    """The enabled channels of a preferences list, in order: ``url`` (an apprise URL, as
    ``/me/channels`` saves) or ``address`` (as the family page saves; the notifier turns
    it into an apprise URL, ``notify.addresses``)."""
    out = []
    for e in entries or ():
        url = e.get("url") or e.get("address")
        if e.get("enabled", True) and isinstance(url, str) and url:
            out.append(Channel(str(e.get("kind") or url.split(":", 1)[0]), url))
    return tuple(out)


def _as_time(v: Any) -> time | None:
    if v is None or isinstance(v, time):
        return v
    return time.fromisoformat(str(v))


async def people(conn: AsyncConnection, user_ids: Iterable[int]) -> dict[int, Person]:
    """Active users as recipients: their enabled channels and quiet hours."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT u.id, u.display_name, p.channels, p.quiet_start, p.quiet_end FROM users u"
            " LEFT JOIN notification_preferences p ON p.user_id = u.id"
            " WHERE u.id = ANY(%s) AND u.active",
            (list(set(user_ids)),),
        )
        out = {}
        for r in await cur.fetchall():
            start, end = _as_time(r["quiet_start"]), _as_time(r["quiet_end"])
            quiet = QuietHours(start, end) if start is not None and end is not None else None
            out[r["id"]] = Person(
                f"user:{r['id']}",
                r["display_name"],
                r["id"],
                channels_from_json(r["channels"] or []),
                quiet,
            )
        return out


async def family_of(conn: AsyncConnection, elder_ids: Iterable[int]) -> dict[int, list[int]]:
    async with conn.cursor() as cur:
        await cur.execute(
            "SELECT elder_id, user_id FROM family_links"
            " WHERE elder_id = ANY(%s) AND revoked_at IS NULL ORDER BY id",
            (list(elder_ids),),
        )
        out: dict[int, list[int]] = {}
        for elder_id, user_id in await cur.fetchall():
            out.setdefault(elder_id, []).append(user_id)
        return out


async def get_channels(conn: AsyncConnection, user_id: int) -> dict[str, Any]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT channels, quiet_start, quiet_end, updated_at FROM notification_preferences"
            " WHERE user_id = %s",
            (user_id,),
        )
        row = await cur.fetchone()
    if row is None:
        return {"channels": [], "quiet_start": None, "quiet_end": None, "updated_at": None}
    row["quiet_start"], row["quiet_end"] = _as_time(row["quiet_start"]), _as_time(row["quiet_end"])
    return row


async def put_channels(
    conn: AsyncConnection,
    user_id: int,
    channels: list[dict[str, Any]],
    quiet_start: time | None,
    quiet_end: time | None,
    now: datetime,
) -> dict[str, Any]:
    await conn.execute(
        "INSERT INTO notification_preferences (user_id, channels, quiet_start, quiet_end,"
        " updated_at) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (user_id) DO UPDATE SET"
        " channels = EXCLUDED.channels, quiet_start = EXCLUDED.quiet_start,"
        " quiet_end = EXCLUDED.quiet_end, updated_at = EXCLUDED.updated_at",
        (user_id, _jsonb(channels), quiet_start, quiet_end, now),
    )
    return await get_channels(conn, user_id)


# --- what to notify about ----------------------------------------------------------------------


async def open_alerts(conn: AsyncConnection, since: datetime) -> list[dict[str, Any]]:
    """Unacknowledged alerts opened after ``since``, with their elder and community."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT a.id, a.elder_id, e.name AS elder_name, e.community_id, a.kind, a.severity,"
            " a.state, a.message, a.opened_at FROM alerts a JOIN elders e ON e.id = a.elder_id"
            " WHERE a.state = 'open' AND a.opened_at >= %s ORDER BY a.id",
            (since,),
        )
        return list(await cur.fetchall())


async def orders_to_notify(conn: AsyncConnection, since: datetime) -> list[dict[str, Any]]:
    """Orders offered to a caregiver now, and 助急 orders nobody could be found for."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT o.id, o.kind, o.state, o.elder_id, e.name AS elder_name, e.community_id,"
            " o.caregiver_id, o.requested_at, (o.dispatch_note IS NOT NULL) AS unstaffed,"
            " (SELECT max(s.id) FROM order_steps s WHERE s.order_id = o.id"
            "   AND s.action = 'assign') AS assign_step,"
            " (SELECT u.id FROM users u WHERE u.caregiver_id = o.caregiver_id AND u.active)"
            "   AS caregiver_user"
            " FROM orders o JOIN elders e ON e.id = o.elder_id"
            " WHERE o.requested_at >= %s AND ((o.state = 'assigned' AND o.caregiver_id IS NOT NULL)"
            "   OR (o.kind = 'emergency' AND o.state IN ('requested', 'rejected')"
            "       AND o.dispatch_note IS NOT NULL))"
            " ORDER BY o.id",
            (since,),
        )
        return list(await cur.fetchall())


# --- attempts ----------------------------------------------------------------------------------


async def attempts(
    conn: AsyncConnection, *, alert_ids: Sequence[int] = (), order_ids: Sequence[int] = ()
) -> list[Attempt]:
    async with conn.cursor() as cur:
        await cur.execute(
            "SELECT notice, recipient, attempt_no, at, ok FROM notification_attempts"
            " WHERE alert_id = ANY(%s) OR order_id = ANY(%s)",
            (list(alert_ids), list(order_ids)),
        )
        return [Attempt(n, r, no - 1, at, ok) for n, r, no, at, ok in await cur.fetchall()]


async def claim(
    conn: AsyncConnection,
    due: Due,
    *,
    alert_id: int | None,
    order_id: int | None,
    target: str,
    now: datetime,
) -> int | None:
    """Record the attempt as being sent; None when another node already claimed it."""
    cur = await conn.execute(
        "INSERT INTO notification_attempts (notice, alert_id, order_id, user_id, recipient,"
        " recipient_name, step, step_no, round, attempt_no, channel_kind, target, at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (notice, recipient, attempt_no) DO NOTHING RETURNING id",
        (
            due.notice,
            alert_id,
            order_id,
            due.person.user_id,
            due.person.key,
            due.person.name,
            due.step,
            due.step_no,
            due.round,
            due.channel_no + 1,
            due.channel.kind,
            target,
            now,
        ),
    )
    row = await cur.fetchone()
    return None if row is None else int(row[0])


async def finish(conn: AsyncConnection, attempt_id: int, result: Delivery, now: datetime) -> None:
    await conn.execute(
        "UPDATE notification_attempts SET ok = %s, error = %s, finished_at = %s WHERE id = %s",
        (result.ok, result.error, now, attempt_id),
    )


async def attempts_of_alert(conn: AsyncConnection, alert_id: int) -> list[dict[str, Any]]:
    """What was sent about an alert, to whom, on which channel and how it went; oldest first."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT 1 FROM alerts WHERE id = %s", (alert_id,))
        if await cur.fetchone() is None:
            raise NotFound(f"alert {alert_id} does not exist")
        await cur.execute(
            "SELECT id, notice, user_id, recipient_name, step, step_no, round, attempt_no,"
            " channel_kind, target, at, finished_at, ok, error FROM notification_attempts"
            " WHERE alert_id = %s ORDER BY id",
            (alert_id,),
        )
        rows = list(await cur.fetchall())
    for r in rows:
        r["status"] = "sending" if r["ok"] is None else ("delivered" if r["ok"] else "failed")
    return rows


# --- the in-app inbox -------------------------------------------------------------------------


async def add_to_inbox(
    conn: AsyncConnection,
    note: InboxNote,
    *,
    alert_id: int | None,
    order_id: int | None,
    title: str,
    body: str,
    now: datetime,
) -> bool:
    cur = await conn.execute(
        "INSERT INTO notification_inbox (user_id, notice, alert_id, order_id, step, title, body,"
        " created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (user_id, notice) DO NOTHING RETURNING id",
        (note.user_id, note.notice, alert_id, order_id, note.step, title, body, now),
    )
    return await cur.fetchone() is not None


async def inbox(
    conn: AsyncConnection, user_id: int, *, unread: bool = False, limit: int = 50
) -> tuple[list[dict[str, Any]], int]:
    """A user's notifications, newest first, and how many are unread."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, alert_id, order_id, step, title, body, created_at, read_at"
            " FROM notification_inbox WHERE user_id = %s"
            + (" AND read_at IS NULL" if unread else "")
            + " ORDER BY id DESC LIMIT %s",
            (user_id, limit),
        )
        rows = list(await cur.fetchall())
        await cur.execute(
            "SELECT count(*) AS n FROM notification_inbox WHERE user_id = %s AND read_at IS NULL",
            (user_id,),
        )
        n = (await cur.fetchone() or {"n": 0})["n"]
    return rows, n


async def mark_read(
    conn: AsyncConnection, user_id: int, ids: Sequence[int] | None, now: datetime
) -> int:
    """Mark the user's notifications ``ids`` (None: all) read; return how many changed."""
    cur = await conn.execute(
        "UPDATE notification_inbox SET read_at = %s WHERE user_id = %s AND read_at IS NULL"
        + ("" if ids is None else " AND id = ANY(%s)"),
        (now, user_id) if ids is None else (now, user_id, list(ids)),
    )
    return cur.rowcount


def lookback(now: datetime, hours: float) -> datetime:
    return now - timedelta(hours=hours)
