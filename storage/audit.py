"""The audit trail: who viewed or changed what about which elder, append-only.

:func:`record` is what a route calls after it has read or changed an elder's record
(in the route's own transaction, so a failed change leaves no "changed" row).  The
table refuses UPDATE, DELETE and TRUNCATE (migration 0007), so there is nothing here
to change or remove a row.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any, Final, Protocol

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

FIELDS: Final = (
    "id",
    "at",
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


class Who(Protocol):
    """Anyone with an id, a login and a role (``api.auth_deps.CurrentUser`` is one)."""

    @property
    def id(self) -> int: ...
    @property
    def login(self) -> str: ...
    @property
    def role(self) -> Any: ...


async def record(
    conn: AsyncConnection,
    user: Who | None,
    action: str,
    *,
    at: datetime | None = None,
    elder_id: int | None = None,
    object_kind: str | None = None,
    object_id: str | int | None = None,
    detail: Mapping[str, Any] | None = None,
    client_addr: str | None = None,
    login: str | None = None,
) -> int:
    """Append one row; returns its id.  ``user`` None is an unsigned caller (then
    ``login`` may name who they said they were, e.g. an acknowledge's ``by``); ``at``
    None is the transaction's time."""
    role = None
    if user is not None:
        role = user.role.value if isinstance(user.role, Enum) else str(user.role)
    cur = await conn.execute(
        "INSERT INTO audit_log (at, user_id, login, role, action, elder_id, object_kind,"
        " object_id, detail, client_addr)"
        " VALUES (coalesce(%s, now()), %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " RETURNING id",
        (
            at,
            user.id if user is not None else None,
            (user.login if user is not None else login or None),
            role,
            action,
            elder_id,
            object_kind,
            None if object_id is None else str(object_id),
            Jsonb(dict(detail or {})),
            client_addr,
        ),
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def search(
    conn: AsyncConnection,
    *,
    elder_id: int | None = None,
    user_id: int | None = None,
    action: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    community_id: int | None = None,
    before_id: int | None = None,
    limit: int = 200,
) -> tuple[list[dict[str, Any]], int]:
    """Rows matching the filters, newest first, and how many match in all.

    ``community_id`` limits to what concerns one community: its elders, or what its
    own people did.
    """
    where, args = ["true"], []
    for column, value in (("elder_id", elder_id), ("user_id", user_id), ("action", action)):
        if value is not None:
            where.append(f"{column} = %s")
            args.append(value)
    if start is not None:
        where.append("at >= %s")
        args.append(start)
    if end is not None:
        where.append("at < %s")
        args.append(end)
    if community_id is not None:
        where.append(
            "(elder_id IN (SELECT id FROM elders WHERE community_id = %s)"
            " OR user_id IN (SELECT id FROM users WHERE community_id = %s))"
        )
        args.extend([community_id, community_id])
    cond = " AND ".join(where)
    page, page_args = (" AND id < %s", [before_id]) if before_id else ("", [])
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"SELECT {', '.join(FIELDS)} FROM audit_log WHERE {cond}{page}"
            " ORDER BY id DESC LIMIT %s",
            (*args, *page_args, limit),
        )
        rows = await cur.fetchall()
        await cur.execute(f"SELECT count(*) AS n FROM audit_log WHERE {cond}", args)
        total = (await cur.fetchone() or {"n": 0})["n"]
    return rows, int(total)
