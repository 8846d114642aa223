"""The demo's accounts: one per role on the first start, the same on a restart, new
passwords only when the logins file is gone (and then the old ones stop working)."""

from __future__ import annotations

from pathlib import Path

import psycopg

from auth.passwords import verify_password
from eldercare.demo_accounts import FILE_NAME, ensure_demo_accounts


def _community_with_an_elder(db: psycopg.Connection) -> int:
    row = db.execute("INSERT INTO communities (name) VALUES ('演示社区') RETURNING id").fetchone()
    assert row is not None
    elder = db.execute(
        "INSERT INTO elders (name, community_id) VALUES ('周桂兰', %s) RETURNING id", (row[0],)
    ).fetchone()
    db.commit()
    assert elder is not None
    return int(elder[0])


def _hash(db: psycopg.Connection, login: str) -> str:
    row = db.execute("SELECT password_hash FROM users WHERE login = %s", (login,)).fetchone()
    assert row is not None
    return str(row[0])


def test_demo_accounts_are_made_once_and_renewed_only_without_the_file(
    db: psycopg.Connection, database_url: str, tmp_path: Path
) -> None:
    db.execute("TRUNCATE users, caregivers RESTART IDENTITY CASCADE")
    db.commit()
    elder = _community_with_an_elder(db)
    path, made = ensure_demo_accounts(database_url, tmp_path, "演示社区", "http://h:1")
    assert made is not None and path == tmp_path / FILE_NAME
    assert {x.role for x in made} == {"admin", "staff", "caregiver", "family"}
    assert path.stat().st_mode & 0o777 == 0o600
    text = path.read_text()
    for x in made:
        assert x.password in text and verify_password(x.password, _hash(db, x.login))
    users = dict(db.execute("SELECT login, role FROM users").fetchall())
    assert users["demo-caregiver"] == "caregiver"
    carer = db.execute(
        "SELECT c.name FROM users u JOIN caregivers c ON c.id = u.caregiver_id"
        " WHERE u.login = 'demo-caregiver'"
    ).fetchone()
    assert carer is not None
    link = db.execute(
        "SELECT l.elder_id, l.consented_by FROM family_links l JOIN users u ON u.id = l.user_id"
        " WHERE u.login = 'demo-family' AND l.revoked_at IS NULL"
    ).fetchall()
    assert [r[0] for r in link] == [elder] and link[0][1]

    # A restart: nothing new, nothing printed again.
    again_path, again = ensure_demo_accounts(database_url, tmp_path, "演示社区", "http://h:1")
    assert again is None and again_path.read_text() == text

    # The file is gone: new passwords; the old ones no longer work.
    path.unlink()
    _, renewed = ensure_demo_accounts(database_url, tmp_path, "演示社区", "http://h:1")
    assert renewed is not None
    old = {x.login: x.password for x in made}
    for x in renewed:
        assert x.password != old[x.login]
        assert verify_password(x.password, _hash(db, x.login))
        assert not verify_password(old[x.login], _hash(db, x.login))
    assert db.execute("SELECT count(*) FROM caregivers").fetchone() == (1,)
