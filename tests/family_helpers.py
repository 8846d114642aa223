"""A family for the tests: a community, elders, accounts and consented links, made
through ``storage/accounts.py`` as an administrator's tool would make them."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg

from alerts.core import Action, Finding, Severity
from auth.passwords import hash_password
from storage import accounts
from storage.alerts import record_findings

PASSWORD = "family-pass-9"
_HASH = hash_password(PASSWORD)  # Argon2 is slow on purpose: once per test run
HOME = (34.8672, 110.4473)  # 杏北社区


def tag() -> str:
    return uuid.uuid4().hex[:6]


def community(db: psycopg.Connection, name: str = "杏北社区") -> int:
    row = db.execute(
        "INSERT INTO communities (name, center_lat, center_lon) VALUES (%s, %s, %s)"
        " ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id",
        (name, *HOME),
    ).fetchone()
    db.commit()
    assert row is not None
    return int(row[0])


def elder(db: psycopg.Connection, name: str, community_id: int | None) -> int:
    row = db.execute(
        "INSERT INTO elders (name, community_id, home_lat, home_lon) VALUES (%s, %s, %s, %s)"
        " RETURNING id",
        (name, community_id, *HOME),
    ).fetchone()
    db.commit()
    assert row is not None
    return int(row[0])


def _run(database_url: str, work: Any) -> Any:
    async def go() -> Any:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            return await work(conn)

    return asyncio.run(go())


def user(database_url: str, role: str, community_id: int | None, login: str | None = None) -> dict:
    name = login or f"{role}-{tag()}"
    return _run(
        database_url,
        lambda conn: accounts.create_user(
            conn,
            login=name,
            display_name=f"{role} {name}",
            role=role,
            community_id=community_id,
            password_hash=_HASH,
        ),
    )


def link(database_url: str, user_id: int, elder_id: int, relation: str = "女儿") -> int:
    return _run(
        database_url,
        lambda conn: accounts.link_family(
            conn,
            user_id=user_id,
            elder_id=elder_id,
            consented_by="本人（老人）签字同意",
            consent_recorded_at=datetime.now(UTC),
            recorded_by=None,
            relation=relation,
        ),
    )


def revoke(database_url: str, user_id: int, elder_id: int) -> None:
    _run(
        database_url,
        lambda conn: accounts.revoke_family_link(
            conn, user_id=user_id, elder_id=elder_id, now=datetime.now(UTC)
        ),
    )


def latest(db: psycopg.Connection, elder_id: int, **values: Any) -> None:
    """The elder's newest state, as the ingest leaves it."""
    cols = ["elder_id", *values]
    db.execute(
        f"INSERT INTO latest_state ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})"
        f" ON CONFLICT (elder_id) DO UPDATE SET "
        + ", ".join(f"{c} = excluded.{c}" for c in values),
        (elder_id, *values.values()),
    )
    db.commit()


def raise_alert(
    db: psycopg.Connection, elder_id: int, kind: str, severity: str, at: datetime
) -> dict[str, Any]:
    f = Finding(
        kind, Severity(severity), at, f"{kind} 测试", Action.RAISE, 1.0, {"episode": "open"}
    )
    (change,) = record_findings(db, [(elder_id, f)], at)
    db.commit()
    return change.alert


@dataclass
class Family:
    community_id: int
    mother: int  # the daughter's mother
    stranger: int  # someone else's elder, same community
    daughter: dict
    former: dict  # a family member whose link was revoked


def family(db: psycopg.Connection, database_url: str) -> Family:
    cid = community(db)
    t = tag()
    mother = elder(db, f"王秀英{t}", cid)
    stranger = elder(db, f"李建国{t}", cid)
    daughter = user(database_url, "family", cid, f"daughter-{t}")
    link(database_url, daughter["id"], mother)
    former = user(database_url, "family", cid, f"former-{t}")
    link(database_url, former["id"], mother, relation="女婿")
    revoke(database_url, former["id"], mother)
    return Family(cid, mother, stranger, daughter, former)
