"""Accounts and sign-in: passwords, tokens, refresh rotation, sign-out, the login limit."""

from __future__ import annotations

import doctest
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient

import auth.names
import auth.passwords
import auth.rate_limit
import auth.roles
import auth.scope
import auth.tokens
from api.app import create_app
from auth.passwords import hash_password
from conftest import eldercare_env, test_settings
from eldercare.settings import SettingsError, load_settings

SECRET = "test-signing-key-" + "x" * 32
PASSWORD = "correct-horse-9"


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def accounts_db(db: psycopg.Connection) -> psycopg.Connection:
    db.execute("TRUNCATE users, login_attempts RESTART IDENTITY CASCADE")
    db.commit()
    return db


def make_app(database_url: str, tmp_path: Path, clock: Clock, **settings: object):
    app = create_app(test_settings(home=tmp_path, secret_key=SECRET, **settings), database_url)
    app.state.clock = clock
    return app


@pytest.fixture
def client(
    database_url: str, accounts_db: psycopg.Connection, tmp_path: Path, clock: Clock
) -> Iterator[TestClient]:
    with TestClient(make_app(database_url, tmp_path, clock)) as c:
        yield c


def community(db: psycopg.Connection, name: str = "杏北社区") -> int:
    row = db.execute(
        "INSERT INTO communities (name) VALUES (%s) ON CONFLICT (name) DO UPDATE"
        " SET name = excluded.name RETURNING id",
        (name,),
    ).fetchone()
    db.commit()
    assert row is not None
    return int(row[0])


def make_user(
    db: psycopg.Connection, login: str, role: str = "staff", password: str = PASSWORD
) -> int:
    row = db.execute(
        "INSERT INTO users (login, display_name, role, community_id, password_hash)"
        " VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (login, f"用户 {login}", role, community(db), hash_password(password)),
    ).fetchone()
    db.commit()
    assert row is not None
    return int(row[0])


def login(client: TestClient, name: str, password: str = PASSWORD):
    return client.post("/api/v1/auth/login", data={"username": name, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signed_in(client: TestClient, name: str) -> dict:
    r = login(client, name)
    assert r.status_code == 200, r.text
    return r.json()


# --- pure core ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "module", [auth.names, auth.passwords, auth.rate_limit, auth.roles, auth.scope, auth.tokens]
)
def test_core_doctests(module: object) -> None:
    failed, attempted = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert attempted > 0 and failed == 0


def test_every_role_has_its_permissions_as_data() -> None:
    from auth.roles import ROLE_PERMISSIONS, Permission, Role, can

    assert set(ROLE_PERMISSIONS) == set(Role)
    assert ROLE_PERMISSIONS[Role.admin] == frozenset(Permission)
    assert not can(Role.caregiver, Permission.orders_dispatch)
    assert not can(Role.family, Permission.alerts_ack)
    assert can(Role.staff, Permission.orders_dispatch)


def test_rate_limit_waits_until_the_oldest_counted_failure_ages_out() -> None:
    from auth.rate_limit import LoginPolicy, check_login

    t0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    policy = LoginPolicy(max_failures=5, max_failures_per_address=20)
    five = [t0 + timedelta(minutes=i) for i in range(5)]
    blocked = check_login(
        login_failures=five, address_failures=five, now=t0 + timedelta(minutes=5), policy=policy
    )
    assert blocked is not None and blocked.retry_after_s == 10 * 60
    assert (
        check_login(
            login_failures=five,
            address_failures=five,
            now=t0 + timedelta(minutes=15, seconds=1),
            policy=policy,
        )
        is None
    )


# --- accounts and sign-in ------------------------------------------------------------


def test_password_is_stored_as_an_argon2_hash_not_the_plaintext(
    client: TestClient, accounts_db: psycopg.Connection
) -> None:
    make_user(accounts_db, "wang.li")
    (stored,) = accounts_db.execute("SELECT password_hash FROM users").fetchone()  # type: ignore[misc]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert login(client, "wang.li").status_code == 200


def test_right_password_signs_in_and_me_says_who_and_what_they_may_do(
    client: TestClient, accounts_db: psycopg.Connection
) -> None:
    make_user(accounts_db, "Wang.Li", role="staff")
    tokens = signed_in(client, "wang.li")  # login names are case-insensitive
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 15 * 60
    assert tokens["refresh_expires_in"] == 14 * 86400
    me = client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["login"] == "Wang.Li" and body["role"] == "staff" and body["role_zh"] == "值班人员"
    assert "alerts.ack" in body["permissions"] and "users.manage" not in body["permissions"]


@pytest.mark.parametrize("who", ["wang.li", "nobody"])
def test_wrong_password_or_unknown_login_is_401_with_the_same_answer(
    client: TestClient, accounts_db: psycopg.Connection, who: str
) -> None:
    make_user(accounts_db, "wang.li")
    r = login(client, who, "not-the-password")
    assert r.status_code == 401
    assert r.json()["detail"] == "wrong login or password"
    assert r.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header", [None, "Bearer not-a-jwt", "Bearer " + "e30.e30.e30", "Basic d2FuZzpsaQ=="]
)
def test_me_without_a_valid_token_is_401(client: TestClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    r = client.get("/api/v1/auth/me", headers=headers)
    assert r.status_code == 401 and r.json()["detail"]


def test_token_signed_with_another_key_is_401(
    client: TestClient, accounts_db: psycopg.Connection, clock: Clock
) -> None:
    from auth.tokens import AccessClaims, issue_access

    uid = make_user(accounts_db, "wang.li")
    signed_in(client, "wang.li")  # session 1 exists, so only the key is wrong
    forged = issue_access(
        AccessClaims(uid, 1, "admin"),
        "another-key-" + "y" * 32,
        now=clock(),
        ttl=timedelta(minutes=5),
    )
    assert client.get("/api/v1/auth/me", headers=bearer(forged)).status_code == 401


def test_expired_access_token_is_401_and_refresh_gets_a_new_one(
    client: TestClient, accounts_db: psycopg.Connection, clock: Clock
) -> None:
    make_user(accounts_db, "wang.li")
    tokens = signed_in(client, "wang.li")
    clock.advance(minutes=14, seconds=59)
    assert client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"])).status_code == 200
    clock.advance(seconds=1)
    r = client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"]))
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    fresh = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert fresh.status_code == 200, fresh.text
    assert (
        client.get("/api/v1/auth/me", headers=bearer(fresh.json()["access_token"])).status_code
        == 200
    )


def test_refresh_rotates_and_a_spent_refresh_token_ends_the_session(
    client: TestClient, accounts_db: psycopg.Connection
) -> None:
    make_user(accounts_db, "wang.li")
    first = signed_in(client, "wang.li")
    second = client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    ).json()
    assert second["refresh_token"] != first["refresh_token"]
    # Presenting the spent token again means someone copied it: refuse, and end the session.
    again = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert again.status_code == 401 and "already used" in again.json()["detail"]
    assert (
        client.post(
            "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}
        ).status_code
        == 401
    )
    assert client.get("/api/v1/auth/me", headers=bearer(second["access_token"])).status_code == 401


def test_refresh_token_expires_after_its_lifetime(
    client: TestClient, accounts_db: psycopg.Connection, clock: Clock
) -> None:
    make_user(accounts_db, "wang.li")
    tokens = signed_in(client, "wang.li")
    clock.advance(days=14, seconds=1)
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert r.status_code == 401 and "expired" in r.json()["detail"]
    for bad in ({"refresh_token": "made-up"}, {}):
        assert client.post("/api/v1/auth/refresh", json=bad).status_code in (401, 422)


def test_logout_revokes_the_access_and_refresh_tokens_of_that_session_only(
    client: TestClient, accounts_db: psycopg.Connection
) -> None:
    make_user(accounts_db, "wang.li")
    phone = signed_in(client, "wang.li")
    desk = signed_in(client, "wang.li")
    assert (
        client.post("/api/v1/auth/logout", headers=bearer(phone["access_token"])).status_code == 204
    )
    assert client.get("/api/v1/auth/me", headers=bearer(phone["access_token"])).status_code == 401
    r = client.post("/api/v1/auth/refresh", json={"refresh_token": phone["refresh_token"]})
    assert r.status_code == 401
    assert client.get("/api/v1/auth/me", headers=bearer(desk["access_token"])).status_code == 200


def test_disabled_account_is_signed_out_at_once_and_cannot_sign_in(
    client: TestClient, accounts_db: psycopg.Connection
) -> None:
    uid = make_user(accounts_db, "wang.li")
    tokens = signed_in(client, "wang.li")
    accounts_db.execute("UPDATE users SET active = false WHERE id = %s", (uid,))
    accounts_db.commit()
    assert client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"])).status_code == 401
    r = login(client, "wang.li")
    assert r.status_code == 403 and "disabled" in r.json()["detail"]


def test_repeated_failures_get_429_with_retry_after_and_others_are_unaffected(
    client: TestClient, accounts_db: psycopg.Connection, clock: Clock
) -> None:
    make_user(accounts_db, "wang.li")
    make_user(accounts_db, "zhao.min")
    for _ in range(5):
        assert login(client, "wang.li", "guess").status_code == 401
        clock.advance(seconds=10)
    blocked = login(client, "wang.li")  # even the right password waits
    assert blocked.status_code == 429
    retry = int(blocked.headers["Retry-After"])
    assert 15 * 60 - 50 <= retry <= 15 * 60
    assert "try again" in blocked.json()["detail"]
    assert login(client, "zhao.min").status_code == 200  # same address, another person
    clock.advance(seconds=retry)
    assert login(client, "wang.li").status_code == 200


def test_a_success_clears_the_count_for_that_login(
    client: TestClient, accounts_db: psycopg.Connection
) -> None:
    make_user(accounts_db, "wang.li")
    for _ in range(4):
        assert login(client, "wang.li", "guess").status_code == 401
    assert login(client, "wang.li").status_code == 200
    for _ in range(4):
        assert login(client, "wang.li", "guess").status_code == 401
    assert login(client, "wang.li").status_code == 200


def test_many_names_tried_from_one_address_are_limited_per_address(
    database_url: str, accounts_db: psycopg.Connection, tmp_path: Path, clock: Clock
) -> None:
    make_user(accounts_db, "wang.li")
    app = make_app(database_url, tmp_path, clock, login_max_failures_per_address=3)
    with TestClient(app) as c:
        for name in ("a1", "a2", "a3"):
            assert login(c, name, "guess").status_code == 401
        r = login(c, "wang.li")
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0


# --- secret and settings -------------------------------------------------------------


def test_without_a_configured_secret_one_is_generated_owner_only_and_kept(
    database_url: str, accounts_db: psycopg.Connection, tmp_path: Path
) -> None:
    app = create_app(test_settings(home=tmp_path), database_url)
    key_file = tmp_path / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(app.state.signing_key) >= 32
    again = create_app(test_settings(home=tmp_path), database_url)
    assert again.state.signing_key == app.state.signing_key


def test_a_short_configured_secret_is_refused_naming_the_variable() -> None:
    with pytest.raises(SettingsError, match="ELDERCARE_SECRET_KEY"):
        load_settings(_env_file=None, secret_key="too-short")


# --- eldercare user create -------------------------------------------------------------


def _user_create(database_url: str, tmp_path: Path, *args: str, password: str | None = None):
    env = eldercare_env(database_url, "mqtt://127.0.0.1:1", ELDERCARE_HOME=str(tmp_path))
    return subprocess.run(
        [sys.executable, "-m", "eldercare", "user", "create", *args],
        input=password,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


def test_user_create_cli_makes_an_account_that_can_sign_in(
    client: TestClient, accounts_db: psycopg.Connection, database_url: str, tmp_path: Path
) -> None:
    community(accounts_db)
    r = _user_create(
        database_url,
        tmp_path,
        "--login",
        "root",
        "--role",
        "admin",
        "--password-stdin",
        password="first-admin-pw\n",
    )
    assert r.returncode == 0, r.stderr
    assert "created admin" in r.stderr and "/api/v1/auth/login" in r.stderr
    assert login(client, "root", "first-admin-pw").status_code == 200
    r = _user_create(
        database_url,
        tmp_path,
        "--login",
        "li.duty",
        "--role",
        "staff",
        "--community",
        "杏北社区",
        "--name",
        "李值班",
        "--password-stdin",
        password="staff-password\n",
    )
    assert r.returncode == 0, r.stderr
    row = accounts_db.execute(
        "SELECT u.display_name, c.name FROM users u JOIN communities c ON c.id = u.community_id"
        " WHERE login = 'li.duty'"
    ).fetchone()
    assert row == ("李值班", "杏北社区")


@pytest.mark.parametrize(
    ("args", "password", "message"),
    [
        (["--login", "s1", "--role", "staff"], "long-enough-pw", "--community is required"),
        (["--login", "s1", "--role", "boss"], "long-enough-pw", "--role must be one of"),
        (["--login", "s1", "--role", "admin"], "short", "at least 8 characters"),
        (["--login", "has space", "--role", "admin"], "long-enough-pw", "without spaces"),
        (
            ["--login", "s1", "--role", "staff", "--community", "无此社区"],
            "long-enough-pw",
            "does not exist",
        ),
        (["--login", "ROOT", "--role", "admin"], "long-enough-pw", "is taken"),
    ],
)
def test_user_create_cli_refuses_bad_input_with_a_message(
    accounts_db: psycopg.Connection,
    database_url: str,
    tmp_path: Path,
    args: list[str],
    password: str,
    message: str,
) -> None:
    make_user(accounts_db, "root", role="admin")
    r = _user_create(database_url, tmp_path, *args, "--password-stdin", password=password + "\n")
    assert r.returncode == 2, r.stderr
    assert message in " ".join(r.stderr.split()), r.stderr
    assert "Traceback" not in r.stderr


def test_user_create_keeps_no_plaintext_anywhere_in_the_database(
    accounts_db: psycopg.Connection, database_url: str, tmp_path: Path
) -> None:
    r = _user_create(
        database_url,
        tmp_path,
        "--login",
        "root2",
        "--role",
        "admin",
        "--password-stdin",
        password="unique-plaintext-42\n",
    )
    assert r.returncode == 0, r.stderr
    dump = accounts_db.execute("SELECT row_to_json(u)::text FROM users u").fetchall()
    assert dump and all("unique-plaintext-42" not in row[0] for row in dump)


# --- family links ------------------------------------------------------------------------


def test_family_link_needs_consent_on_record_and_can_be_revoked(
    accounts_db: psycopg.Connection, database_url: str, clock: Clock
) -> None:
    import asyncio

    from conftest import enrol_device
    from storage import accounts
    from storage.registry import Conflict, NotFound

    family = make_user(accounts_db, "daughter", role="family")
    staff = make_user(accounts_db, "duty")
    elder = enrol_device(accounts_db, "fam-1", name="王奶奶")
    other = enrol_device(accounts_db, "fam-2", name="李爷爷")

    async def scenario() -> tuple[list[int], list[int]]:
        async with await psycopg.AsyncConnection.connect(database_url) as conn:
            await accounts.link_family(
                conn,
                user_id=family,
                elder_id=elder,
                consented_by="王奶奶本人",
                consent_recorded_at=clock(),
                recorded_by=staff,
                relation="女儿",
            )
            with pytest.raises(Conflict):
                await accounts.link_family(
                    conn,
                    user_id=family,
                    elder_id=elder,
                    consented_by="王奶奶本人",
                    consent_recorded_at=clock(),
                    recorded_by=staff,
                )
            linked = await accounts.linked_elder_ids(conn, family)
            await accounts.revoke_family_link(conn, user_id=family, elder_id=elder, now=clock())
            with pytest.raises(NotFound):
                await accounts.revoke_family_link(conn, user_id=family, elder_id=other, now=clock())
            return linked, await accounts.linked_elder_ids(conn, family)

    before, after = asyncio.run(scenario())
    assert before == [elder] and after == []
    with pytest.raises(psycopg.errors.NotNullViolation):
        accounts_db.execute(
            "INSERT INTO family_links (user_id, elder_id, consented_by) VALUES (%s, %s, 'x')",
            (family, other),
        )
    accounts_db.rollback()


def test_openapi_lists_the_auth_routes_with_the_password_flow(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/auth/me",
    } <= set(spec["paths"])
    flows = spec["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]
    assert flows["password"]["tokenUrl"] == "/api/v1/auth/login"
