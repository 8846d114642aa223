"""Real parts for the tests: PostgreSQL and an MQTT broker.

Where PostgreSQL (127.0.0.1:5432) and Mosquitto (127.0.0.1:1883) already run, the
tests use them (a fresh database per session); on a machine without them they bring
up the project's own embedded PostgreSQL and private broker, as the demo does.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from psycopg import sql

from auth.passwords import hash_password
from eldercare import embedded_postgres, private_broker
from eldercare.broker_address import BrokerAddress
from eldercare.settings import Settings
from storage.migrate import Options, migrate

LOCAL_PG = os.environ.get("ELDERCARE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
LOCAL_BROKER = os.environ.get("ELDERCARE_TEST_BROKER", "mqtt://127.0.0.1:1883")
MIGRATE_OPTS = Options(back_days=4, ahead_days=2)


def _reachable_pg(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


def _reachable_tcp(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), 1):
        return True
    return False


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A PostgreSQL server the tests may create databases on."""
    if _reachable_pg(LOCAL_PG):
        return LOCAL_PG
    return embedded_postgres.start(tmp_path_factory.mktemp("pg"), database="postgres")


def timescale_available(admin_url: str) -> bool:
    with psycopg.connect(admin_url) as conn:
        avail = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
        preload = conn.execute("SHOW shared_preload_libraries").fetchone()
    return bool(avail) and bool(preload) and "timescaledb" in preload[0]


@contextlib.contextmanager
def fresh_database(admin_url: str, *, timescale: bool = False) -> Iterator[str]:
    """A new, migrated database; dropped afterwards."""
    name = f"xb_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(admin_url, dbname=name)
    migrate(url, Options(timescale_mode="on" if timescale else "off", back_days=4, ahead_days=2))
    try:
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


@pytest.fixture(scope="session")
def database_url(pg_admin_url: str) -> Iterator[str]:
    with fresh_database(pg_admin_url) as url:
        yield url


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    """A connection to the session database, emptied of data first."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "TRUNCATE elders, devices, device_pairings, latest_state, quarantine, vitals,"
            " positions, device_events, communities RESTART IDENTITY CASCADE"
        )
        conn.commit()
        yield conn


@pytest.fixture(scope="session")
def broker_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    local = BrokerAddress.parse(LOCAL_BROKER)
    if _reachable_tcp(local.host, local.port):
        yield LOCAL_BROKER
        return
    broker = private_broker.start(tmp_path_factory.mktemp("broker"))
    try:
        yield broker.url
    finally:
        broker.stop()


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[private_broker.PrivateBroker]:
    """A broker the test may restart: the project's own private broker."""
    broker = private_broker.start(tmp_path)
    try:
        yield broker
    finally:
        broker.stop()


def test_settings(**overrides: object) -> Settings:
    base: dict[str, object] = {
        "ingest_client_id": f"xb-test-{uuid.uuid4().hex[:8]}",
        "ingest_session_expiry_s": 120,
        "ingest_linger_ms": 5,
        # Tests stream fast from a few devices as a stand-in for many; the flood limit
        # has its own tests (test_flood.py), which set it explicitly.
        "flood_rate_per_s": 1e6,
        "flood_burst": 1_000_000,
    }
    base.update(overrides)
    return Settings(_env_file=None, **base)  # type: ignore[arg-type]


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


class Publisher:
    """A real device-side MQTT client (QoS 1, waits for each PUBACK)."""

    def __init__(self, broker_url: str) -> None:
        addr = BrokerAddress.parse(broker_url)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}"
        )
        self.client.max_inflight_messages_set(200)
        self.client.connect(addr.host, addr.port)
        self.client.loop_start()

    def publish(
        self,
        topic: str,
        payload: bytes | str | dict | list,
        *,
        retain: bool = False,
        wait: bool = True,
    ) -> mqtt.MQTTMessageInfo:
        if isinstance(payload, dict | list):
            payload = json.dumps(payload)
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if wait:
            info.wait_for_publish(10)
        return info

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher(broker_url: str) -> Iterator[Publisher]:
    p = Publisher(broker_url)
    yield p
    p.close()


def wait_until(
    check: Callable[[], object], timeout: float = 15.0, interval: float = 0.05
) -> object:
    """Poll ``check`` until it returns something truthy; fail with its last value."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last: {last!r})")


def enrol_device(
    conn: psycopg.Connection,
    device_id: str,
    name: str = "测试老人",
    home: tuple[float, float] = (34.867, 110.447),
) -> int:
    row = conn.execute(
        "INSERT INTO elders (name, home_lat, home_lon) VALUES (%s, %s, %s) RETURNING id",
        (name, *home),
    ).fetchone()
    assert row is not None
    conn.execute("INSERT INTO devices (id, elder_id) VALUES (%s, %s)", (device_id, row[0]))
    conn.commit()
    return int(row[0])


def free_port() -> int:
    return private_broker.free_port()


# --- accounts: every API route but health and sign-in needs a signed-in user ----------

TEST_PASSWORD = "test-password-9"
ADMIN_LOGIN = "test-admin"
_hashes: dict[str, str] = {}


def _password_hash(password: str) -> str:
    if password not in _hashes:  # argon2 is slow on purpose: hash once per session
        _hashes[password] = hash_password(password)
    return _hashes[password]


def ensure_community(conn: psycopg.Connection, name: str = "杏北社区") -> int:
    row = conn.execute(
        "INSERT INTO communities (name) VALUES (%s) ON CONFLICT (name) DO UPDATE"
        " SET name = excluded.name RETURNING id",
        (name,),
    ).fetchone()
    conn.commit()
    assert row is not None
    return int(row[0])


def ensure_user(
    conn: psycopg.Connection,
    login: str = ADMIN_LOGIN,
    role: str = "admin",
    *,
    community_id: int | None = None,
    caregiver_id: int | None = None,
    password: str = TEST_PASSWORD,
) -> int:
    """A user with ``password`` (created, or brought back to these settings)."""
    if role != "admin" and community_id is None:
        community_id = ensure_community(conn)
    row = conn.execute(
        "INSERT INTO users (login, display_name, role, community_id, caregiver_id,"
        " password_hash) VALUES (%s, %s, %s, %s, %s, %s)"
        " ON CONFLICT ((lower(login))) DO UPDATE SET role = excluded.role,"
        " community_id = excluded.community_id, caregiver_id = excluded.caregiver_id,"
        " password_hash = excluded.password_hash, active = true RETURNING id",
        (login, f"测试 {login}", role, community_id, caregiver_id, _password_hash(password)),
    ).fetchone()
    conn.commit()
    assert row is not None
    return int(row[0])


def sign_in(client: httpx.Client, login: str, password: str = TEST_PASSWORD) -> dict[str, str]:
    """Sign in through the API; the ``Authorization`` header to send."""
    r = client.post("/api/v1/auth/login", data={"username": login, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def signed_in_as(
    client: httpx.Client,
    database_url: str,
    login: str = ADMIN_LOGIN,
    role: str = "admin",
    **kw: Any,
) -> dict[str, str]:
    """Make sure ``login`` exists with ``role`` and sign in: the header to send."""
    with psycopg.connect(database_url) as conn:
        ensure_user(conn, login, role, **kw)
    return sign_in(client, login)


def as_admin(client: httpx.Client, database_url: str) -> httpx.Client:
    """``client`` sending an administrator's token on every request (and WebSocket)."""
    client.headers.update(signed_in_as(client, database_url))
    return client


def family_headers(
    client: httpx.Client, database_url: str, elder_id: int, login: str | None = None
) -> dict[str, str]:
    """Signed in as a family member linked (with consent on record) to ``elder_id``."""
    login = login or f"family-{elder_id}"
    with psycopg.connect(database_url) as conn:
        user = ensure_user(conn, login, "family")
        conn.execute(
            "INSERT INTO family_links (user_id, elder_id, consent_recorded_at, consented_by)"
            " VALUES (%s, %s, now(), '本人') ON CONFLICT (user_id, elder_id)"
            " WHERE revoked_at IS NULL DO NOTHING",
            (user, elder_id),
        )
        conn.commit()
    return sign_in(client, login)


def caregiver_headers(client: httpx.Client, database_url: str, caregiver_id: int) -> dict[str, str]:
    """Signed in as the account of caregiver ``caregiver_id``."""
    return signed_in_as(
        client, database_url, f"carer-{caregiver_id}", "caregiver", caregiver_id=caregiver_id
    )


@dataclass
class LiveSystem:
    """``eldercare serve`` running as its own process against the real services."""

    base_url: str
    broker_url: str
    database_url: str
    process: subprocess.Popen[bytes]
    publisher: Publisher
    log: Path
    env: dict[str, str] = field(default_factory=dict)

    def publish(self, topic: str, payload: bytes) -> None:
        self.publisher.publish(topic, payload)

    admin_headers: dict[str, str] = field(default_factory=dict)

    def auth(self) -> dict[str, str]:
        """An administrator's ``Authorization`` header (signed in on first use)."""
        if not self.admin_headers:
            self.admin_headers = self.headers_for(ADMIN_LOGIN, "admin")
        return self.admin_headers

    def http(self) -> httpx.Client:
        """A client signed in as an administrator."""
        return httpx.Client(base_url=self.base_url, timeout=10, headers=self.auth())

    def headers_for(self, login: str, role: str, **kw: Any) -> dict[str, str]:
        with httpx.Client(base_url=self.base_url, timeout=10) as client:
            return signed_in_as(client, self.database_url, login, role, **kw)

    def sign_in_page(
        self,
        page: Any,
        next_path: str = "/",
        login: str = ADMIN_LOGIN,
        role: str = "admin",
        **kw: Any,
    ) -> None:
        """Sign in through the real login page (a Playwright ``page``) and land on ``next_path``."""
        self.headers_for(login, role, **kw)  # the account exists with the test password
        page.goto(f"{self.base_url}/login/?next={next_path}")
        page.fill("#login-name", login)
        page.fill("#login-password", TEST_PASSWORD)
        page.click("#login-submit")
        page.wait_for_url(f"{self.base_url}{next_path}")

    def open_signed_in(self, page: Any, path: str = "/") -> None:
        """Open ``path`` in ``page`` with a session signed in on the login page of another
        tab: ``page`` itself has had no click (the browser still holds audio back)."""
        tab = page.context.new_page()
        self.sign_in_page(tab, path)
        session = tab.evaluate("sessionStorage.getItem('xingbei.session')")
        tab.close()
        page.add_init_script(f"sessionStorage.setItem('xingbei.session', {json.dumps(session)})")
        page.goto(f"{self.base_url}{path}")

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http", "ws", 1) + "/ws/live"


def eldercare_env(database_url: str, broker_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ELDERCARE_")}
    env.update(
        ELDERCARE_DATABASE_URL=database_url,
        ELDERCARE_BROKER_URL=broker_url,
        ELDERCARE_INGEST_CLIENT_ID=f"xb-test-{uuid.uuid4().hex[:8]}",
        ELDERCARE_INGEST_SESSION_EXPIRY_S="300",
        ELDERCARE_INGEST_LINGER_MS="5",
        ELDERCARE_LIVE_INTERVAL_S="0.3",
        ELDERCARE_DETECTION_TICK_S="1",
        ELDERCARE_FLOOD_RATE_PER_S="1000000",  # as in test_settings
        ELDERCARE_FLOOD_BURST="1000000",
    )
    env.update(extra)
    return env


def start_eldercare(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "eldercare", *args],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def live_system(
    database_url: str, broker_url: str, tmp_path: Path, db: psycopg.Connection
) -> Iterator[LiveSystem]:
    port = free_port()
    env = eldercare_env(database_url, broker_url, ELDERCARE_API_PORT=str(port))
    log = tmp_path / "serve.log"
    proc = start_eldercare(["serve"], env, log)
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"eldercare serve exited:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            return httpx.get(f"{base}/api/v1/health", timeout=1).status_code == 200
        return False

    wait_until(healthy, timeout=30, interval=0.2)
    pub = Publisher(broker_url)
    try:
        yield LiveSystem(base, broker_url, database_url, proc, pub, log, env)
    finally:
        pub.close()
        stop_process(proc)
