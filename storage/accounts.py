"""Users, family links, sessions, refresh tokens and login attempts: data access only.

Hashing, token making and the rate-limit decision live in ``auth/``; this module
stores what they produce and answers the questions they ask.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from psycopg import AsyncConnection, errors
from psycopg.rows import dict_row

from storage.registry import Conflict, NotFound

_USER_FIELDS = (
    "id",
    "login",
    "display_name",
    "role",
    "community_id",
    "caregiver_id",
    "active",
    "created_at",
)
_USER_COLUMNS = ", ".join(_USER_FIELDS)


async def create_user(
    conn: AsyncConnection,
    *,
    login: str,
    display_name: str,
    role: str,
    community_id: int | None,
    password_hash: str,
    caregiver_id: int | None = None,
) -> dict[str, Any]:
    try:
        async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                "INSERT INTO users (login, display_name, role, community_id, password_hash,"
                " caregiver_id) VALUES (%s, %s, %s, %s, %s, %s) RETURNING " + _USER_COLUMNS,
                (login, display_name, role, community_id, password_hash, caregiver_id),
            )
            row = await cur.fetchone()
    except errors.UniqueViolation:
        raise Conflict(f"login {login!r} is taken") from None
    except errors.ForeignKeyViolation:
        raise NotFound(f"community {community_id} does not exist") from None
    assert row is not None
    return row


async def community_id(conn: AsyncConnection, ref: str) -> int:
    """A community by its id or its exact name."""
    cur = await conn.execute(
        "SELECT id FROM communities WHERE name = %s OR id::text = %s ORDER BY name = %s DESC",
        (ref, ref, ref),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"community {ref!r} does not exist")
    return int(row[0])


async def get_user(conn: AsyncConnection, user_id: int) -> dict[str, Any]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE id = %s", (user_id,))
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"user {user_id} does not exist")
    return row


async def user_for_login(conn: AsyncConnection, login: str) -> dict[str, Any] | None:
    """The user (with password hash) signing in as ``login``, case-insensitively."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {_USER_COLUMNS}, password_hash FROM users WHERE lower(login) = lower(%s)",
            (login,),
        )
        return await cur.fetchone()


async def set_password_hash(conn: AsyncConnection, user_id: int, password_hash: str) -> None:
    await conn.execute(
        "UPDATE users SET password_hash = %s WHERE id = %s", (password_hash, user_id)
    )


# --- login attempts ----------------------------------------------------------------


async def record_attempt(
    conn: AsyncConnection, *, login: str, client_addr: str, at: datetime, succeeded: bool
) -> None:
    await conn.execute(
        "INSERT INTO login_attempts (login, client_addr, at, succeeded) VALUES (%s, %s, %s, %s)",
        (login.lower(), client_addr, at, succeeded),
    )


async def recent_failures(
    conn: AsyncConnection, *, login: str, client_addr: str, since: datetime
) -> tuple[list[datetime], list[datetime]]:
    """Failures since ``since``: for this login (after its last success), and from this address."""
    cur = await conn.execute(
        "SELECT at FROM login_attempts WHERE login = %s AND at > %s AND NOT succeeded"
        " AND at > coalesce((SELECT max(at) FROM login_attempts"
        "  WHERE login = %s AND succeeded AND at > %s), '-infinity')",
        (login.lower(), since, login.lower(), since),
    )
    by_login = [r[0] for r in await cur.fetchall()]
    cur = await conn.execute(
        "SELECT at FROM login_attempts WHERE client_addr = %s AND at > %s AND NOT succeeded",
        (client_addr, since),
    )
    return by_login, [r[0] for r in await cur.fetchall()]


async def prune_attempts(conn: AsyncConnection, *, before: datetime) -> None:
    await conn.execute("DELETE FROM login_attempts WHERE at < %s", (before,))


# --- sessions and refresh tokens ---------------------------------------------------------


async def open_session(
    conn: AsyncConnection,
    *,
    user_id: int,
    now: datetime,
    client_addr: str | None,
    user_agent: str | None,
) -> int:
    cur = await conn.execute(
        "INSERT INTO sessions (user_id, created_at, client_addr, user_agent)"
        " VALUES (%s, %s, %s, %s) RETURNING id",
        (user_id, now, client_addr, (user_agent or "")[:300] or None),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def add_refresh_token(
    conn: AsyncConnection,
    *,
    session_id: int,
    token_hash: str,
    issued_at: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at)"
        " VALUES (%s, %s, %s, %s)",
        (token_hash, session_id, issued_at, expires_at),
    )


RefreshOutcome = Literal["ok", "unknown", "expired", "revoked", "reused", "inactive"]


@dataclass(frozen=True, slots=True)
class RefreshUse:
    outcome: RefreshOutcome
    session_id: int | None = None
    user: dict[str, Any] | None = None


async def use_refresh_token(conn: AsyncConnection, token_hash: str, *, now: datetime) -> RefreshUse:
    """Spend a refresh token once.  A spent one presented again revokes its session."""
    async with conn.cursor(row_factory=dict_row) as cur:
        # FOR UPDATE: two concurrent refreshes with one token, one wins, one is "reused".
        await cur.execute(
            "SELECT t.session_id, t.expires_at, t.used_at, s.revoked_at, s.user_id"
            " FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id"
            " WHERE t.token_hash = %s FOR UPDATE OF t, s",
            (token_hash,),
        )
        row = await cur.fetchone()
    if row is None:
        return RefreshUse("unknown")
    sid = int(row["session_id"])
    if row["revoked_at"] is not None:
        return RefreshUse("revoked", sid)
    if row["used_at"] is not None:
        await revoke_session(conn, sid, now=now, why="refresh token reused")
        return RefreshUse("reused", sid)
    if row["expires_at"] <= now:
        return RefreshUse("expired", sid)
    user = await get_user(conn, int(row["user_id"]))
    if not user["active"]:
        return RefreshUse("inactive", sid)
    await conn.execute(
        "UPDATE refresh_tokens SET used_at = %s WHERE token_hash = %s", (now, token_hash)
    )
    return RefreshUse("ok", sid, user)


async def revoke_session(
    conn: AsyncConnection, session_id: int, *, now: datetime, why: str
) -> bool:
    cur = await conn.execute(
        "UPDATE sessions SET revoked_at = %s, revoked_why = %s"
        " WHERE id = %s AND revoked_at IS NULL",
        (now, why, session_id),
    )
    return cur.rowcount > 0


async def revoke_user_sessions(
    conn: AsyncConnection, user_id: int, *, now: datetime, why: str
) -> int:
    cur = await conn.execute(
        "UPDATE sessions SET revoked_at = %s, revoked_why = %s"
        " WHERE user_id = %s AND revoked_at IS NULL",
        (now, why, user_id),
    )
    return cur.rowcount


async def session_user(
    conn: AsyncConnection, *, session_id: int, user_id: int
) -> dict[str, Any] | None:
    """The user of a live session: None when it was revoked or the user deactivated."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {', '.join('u.' + c for c in _USER_FIELDS)}"
            " FROM sessions s JOIN users u ON u.id = s.user_id"
            " WHERE s.id = %s AND s.user_id = %s AND s.revoked_at IS NULL AND u.active",
            (session_id, user_id),
        )
        return await cur.fetchone()


# --- family links ------------------------------------------------------------------------


async def link_family(
    conn: AsyncConnection,
    *,
    user_id: int,
    elder_id: int,
    consented_by: str,
    consent_recorded_at: datetime,
    recorded_by: int | None,
    relation: str | None = None,
) -> int:
    """Link a family member to an elder, with who consented and when on record."""
    try:
        async with conn.transaction():  # a savepoint: a refusal leaves the caller's work intact
            cur = await conn.execute(
                "INSERT INTO family_links (user_id, elder_id, relation, consent_recorded_at,"
                " consented_by, recorded_by) VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (user_id, elder_id, relation, consent_recorded_at, consented_by, recorded_by),
            )
    except errors.UniqueViolation:
        raise Conflict(f"user {user_id} is already linked to elder {elder_id}") from None
    except errors.ForeignKeyViolation:
        raise NotFound(f"user {user_id} or elder {elder_id} does not exist") from None
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def revoke_family_link(
    conn: AsyncConnection, *, user_id: int, elder_id: int, now: datetime
) -> None:
    cur = await conn.execute(
        "UPDATE family_links SET revoked_at = %s"
        " WHERE user_id = %s AND elder_id = %s AND revoked_at IS NULL",
        (now, user_id, elder_id),
    )
    if cur.rowcount == 0:
        raise NotFound(f"user {user_id} has no open link to elder {elder_id}")


async def linked_elder_ids(conn: AsyncConnection, user_id: int) -> list[int]:
    cur = await conn.execute(
        "SELECT elder_id FROM family_links WHERE user_id = %s AND revoked_at IS NULL"
        " ORDER BY elder_id",
        (user_id,),
    )
    return [int(r[0]) for r in await cur.fetchall()]
