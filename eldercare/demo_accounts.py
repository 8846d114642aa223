"""The demo's sign-ins: one account per role, made on the demo's first start.

Every page and API route needs a signed-in user, so the demo makes an administrator,
a duty officer (staff), a caregiver (tied to a demo caregiver on shift) and a family
member (linked to the first demo elder, with consent on record), each with a random
password.  The passwords are written to ``<home>/demo-logins.txt`` (owner-only, in the
data folder, never in the repository) and printed once; a restart prints where the
file is.  Only when the file is gone are new passwords made (and the old ones stop
working).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from auth.passwords import hash_password

FILE_NAME = "demo-logins.txt"
CAREGIVER_NAME = "演示护理员 王秀兰"
ALL_SKILLS = ["meal_delivery", "housekeeping", "bathing", "mobility", "first_aid", "nursing"]


@dataclass(frozen=True, slots=True)
class DemoLogin:
    role: str
    login: str
    password: str
    display_name: str
    page: str  # where this role starts


ACCOUNTS = (
    ("admin", "demo-admin", "演示管理员", "/"),
    ("staff", "demo-staff", "演示值班员", "/"),
    ("caregiver", "demo-caregiver", CAREGIVER_NAME, "/caregiver/"),
    ("family", "demo-family", "演示家属", "/family/"),
)


def _file_text(logins: list[DemoLogin], base_url: str) -> str:
    lines = [
        "# 杏北 Care demo sign-ins (演示账号). Delete this file and restart the demo for",
        "# new passwords. Keep it private: it is readable by its owner only.",
        f"# Sign in at {base_url}/login/",
        "",
    ]
    lines += [f"{x.role:<10} {x.login:<16} {x.password}  {base_url}{x.page}" for x in logins]
    return "\n".join(lines) + "\n"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, 0o600)  # O_CREAT's mode does not apply to a file left from before
    os.replace(tmp, path)


def _demo_caregiver(conn: psycopg.Connection, community_id: int, now: datetime) -> int:
    row = conn.execute(
        "SELECT id FROM caregivers WHERE name = %s AND community_id = %s",
        (CAREGIVER_NAME, community_id),
    ).fetchone()
    if row is not None:
        return int(row[0])
    row = conn.execute(
        "INSERT INTO caregivers (name, community_id, skills, phone) VALUES (%s, %s, %s, %s)"
        " RETURNING id",
        (CAREGIVER_NAME, community_id, ALL_SKILLS, "13800000000"),
    ).fetchone()
    assert row is not None
    # Clocked in with no end: the demo's 助急 orders have someone to go to.
    conn.execute(
        "INSERT INTO caregiver_shifts (caregiver_id, starts_at) VALUES (%s, %s)", (row[0], now)
    )
    return int(row[0])


def ensure_demo_accounts(
    database_url: str, home: Path, community: str, base_url: str
) -> tuple[Path, list[DemoLogin] | None]:
    """Make sure the demo accounts exist; returns the file and, when new passwords were
    made (first start, or the file was deleted), the logins to show."""
    path = home / FILE_NAME
    logins_wanted = [login for _, login, _, _ in ACCOUNTS]
    with psycopg.connect(database_url) as conn:
        have = conn.execute(
            "SELECT count(*) FROM users WHERE lower(login) = ANY(%s)", (logins_wanted,)
        ).fetchone()
        if path.exists() and have is not None and have[0] == len(ACCOUNTS):
            return path, None
        now = datetime.now(UTC)
        row = conn.execute("SELECT id FROM communities WHERE name = %s", (community,)).fetchone()
        if row is None:
            raise RuntimeError(f"community {community!r} is not enrolled yet")
        community_id = int(row[0])
        caregiver_id = _demo_caregiver(conn, community_id, now)
        row = conn.execute(
            "SELECT id FROM elders WHERE community_id = %s ORDER BY id LIMIT 1", (community_id,)
        ).fetchone()
        first_elder = None if row is None else int(row[0])
        made: list[DemoLogin] = []
        for role, login, name, page in ACCOUNTS:
            password = secrets.token_urlsafe(9)
            row = conn.execute(
                "INSERT INTO users (login, display_name, role, community_id, caregiver_id,"
                " password_hash) VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT ((lower(login))) DO UPDATE SET password_hash ="
                " excluded.password_hash, active = true RETURNING id",
                (
                    login,
                    name,
                    role,
                    None if role == "admin" else community_id,
                    caregiver_id if role == "caregiver" else None,
                    hash_password(password),
                ),
            ).fetchone()
            assert row is not None
            if role == "family" and first_elder is not None:
                conn.execute(
                    "INSERT INTO family_links (user_id, elder_id, relation, consent_recorded_at,"
                    " consented_by) VALUES (%s, %s, '子女', %s, '演示：老人本人同意')"
                    " ON CONFLICT (user_id, elder_id) WHERE revoked_at IS NULL DO NOTHING",
                    (row[0], first_elder, now),
                )
            # New passwords end the sessions signed in with the old ones.
            conn.execute(
                "UPDATE sessions SET revoked_at = %s, revoked_why = 'demo passwords renewed'"
                " WHERE user_id = %s AND revoked_at IS NULL",
                (now, row[0]),
            )
            made.append(DemoLogin(role, login, password, name, page))
        conn.commit()
    _write_private(path, _file_text(made, base_url))
    return path, made
