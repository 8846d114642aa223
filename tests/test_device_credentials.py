"""Each device's own MQTT credentials, enforced by a real Mosquitto: a device signs in
with its own secret, publishes only under its own id, and is locked out when revoked."""

from __future__ import annotations

import contextlib
import doctest
import queue
import stat
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

import broker_auth.mosquitto_files
from api.app import create_app
from auth.passwords import hash_password
from broker_auth.apply import service_secret, write_files
from broker_auth.mosquitto_files import hash_secret, new_secret
from conftest import enrol_device, test_settings, wait_until
from eldercare import private_broker
from eldercare.private_broker import PrivateBroker
from protocol.topics import ROOT, topic

SERVICE = "eldercare.service"
# CONNACK reason codes: 134 bad user name or password, 135 not authorised (Mosquitto 2.0
# answers a wrong password with either, depending on version).
REFUSED = {134, 135}
SECRET_KEY = "device-credentials-test-key-" + "z" * 32


def connect(port: int, username: str | None, password: str | None) -> mqtt.Client | int:
    """A connected client, or the CONNACK reason code that refused it."""
    c = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
    )
    if username is not None:
        c.username_pw_set(username, password)
    answer: queue.Queue[int] = queue.Queue()
    c.on_connect = lambda _c, _u, _f, rc, _p: answer.put(rc.value)
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        rc = answer.get(timeout=10)
    except queue.Empty:
        rc = -1
    if rc != 0:
        c.loop_stop()
        c.disconnect()
        return rc
    return c


def refused(port: int, username: str | None, password: str | None) -> int | None:
    got = connect(port, username, password)
    if isinstance(got, int):
        return got
    got.disconnect()
    got.loop_stop()
    return None


class Listener:
    """The backend's side: the service account subscribed to every device."""

    def __init__(self, port: int, password: str) -> None:
        got = connect(port, SERVICE, password)
        assert not isinstance(got, int), f"service account refused: {got}"
        self.client = got
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        subscribed = threading.Event()
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.subscribe(f"{ROOT}/#", qos=1)
        assert subscribed.wait(10)

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((msg.topic, msg.payload))

    def topics(self) -> list[str]:
        with self.lock:
            return [t for t, _ in self.messages]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def secured_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """The project's private Mosquitto with broker auth on, no device admitted yet."""
    with secured(tmp_path, {}) as broker:
        yield broker


@contextlib.contextmanager
def secured(tmp_path: Path, hashes: dict[str, str]) -> Iterator[PrivateBroker]:
    write_files((tmp_path / "broker").resolve(), hashes, service_user=SERVICE)
    broker = private_broker.start(tmp_path, kind="mosquitto", auth=True)
    try:
        yield broker
    finally:
        broker.stop()


def test_mosquitto_files_doctests() -> None:
    failed, attempted = doctest.testmod(broker_auth.mosquitto_files)
    assert attempted > 0 and failed == 0


def test_our_hash_reads_a_hash_written_by_mosquitto_passwd(tmp_path: Path) -> None:
    import shutil
    import subprocess

    from broker_auth.mosquitto_files import verify_secret

    tool = shutil.which("mosquitto_passwd")
    assert tool, "mosquitto_passwd comes with mosquitto"
    pw = tmp_path / "pw"
    subprocess.run([tool, "-c", "-b", str(pw), "w-1", "s3cret-value"], check=True)
    line = pw.read_text().strip()
    assert verify_secret("s3cret-value", line.split(":", 1)[1])
    assert not verify_secret("other", line.split(":", 1)[1])


def test_a_device_signs_in_with_its_own_secret_and_a_wrong_one_is_refused(
    tmp_path: Path,
) -> None:
    secret = new_secret()
    with secured(tmp_path, {"w-a": hash_secret(secret)}) as broker:
        assert refused(broker.port, "w-a", secret) is None
        assert refused(broker.port, "w-a", secret + "x") in REFUSED  # wrong secret
        assert refused(broker.port, "w-b", secret) in REFUSED  # no such account
        assert refused(broker.port, None, None) in REFUSED  # anonymous
        files = broker.folder
        for name in ("passwd", "acl", "service_password"):
            assert stat.S_IMODE((files / name).stat().st_mode) == 0o600
        assert secret not in (files / "passwd").read_text()


def test_a_device_publishes_only_under_its_own_id(tmp_path: Path) -> None:
    a, b = new_secret(), new_secret()
    with secured(tmp_path, {"w-a": hash_secret(a), "w-b": hash_secret(b)}) as broker:
        listener = Listener(broker.port, service_secret(broker.folder))
        device = connect(broker.port, "w-a", a)
        assert isinstance(device, mqtt.Client)
        try:
            for channel in ("vitals", "location", "event"):
                device.publish(topic("w-b", channel), b'{"seq":1}', qos=1).wait_for_publish(5)
            device.publish(f"{ROOT}/w-b", b"x", qos=1).wait_for_publish(5)
            device.publish("elsewhere/w-a", b"x", qos=1).wait_for_publish(5)
            # Its own message after the forged ones: once it arrives, they would have too.
            device.publish(topic("w-a", "vitals"), b'{"seq":2}', qos=1).wait_for_publish(5)
            wait_until(lambda: topic("w-a", "vitals") in listener.topics(), timeout=10)
            assert listener.topics() == [topic("w-a", "vitals")]
        finally:
            device.disconnect()
            device.loop_stop()
            listener.close()


def test_a_device_cannot_read_another_devices_commands(tmp_path: Path) -> None:
    a, b = new_secret(), new_secret()
    with secured(tmp_path, {"w-a": hash_secret(a), "w-b": hash_secret(b)}) as broker:
        received: queue.Queue[str] = queue.Queue()
        spy = connect(broker.port, "w-a", a)
        assert isinstance(spy, mqtt.Client)
        spy.on_message = lambda _c, _u, m: received.put(m.topic)
        granted: queue.Queue[list[int]] = queue.Queue()
        spy.on_subscribe = lambda _c, _u, _m, codes, _p: granted.put([c.value for c in codes])
        spy.subscribe([(topic("w-b", "cmd"), 1), (topic("w-a", "cmd"), 1)])
        assert granted.get(timeout=5)[1] == 1  # its own commands: granted
        listener = Listener(broker.port, service_secret(broker.folder))
        for target in ("w-b", "w-a"):
            listener.client.publish(
                topic(target, "cmd"), b'{"cmd":"locate"}', qos=1
            ).wait_for_publish(5)
        assert received.get(timeout=5) == topic("w-a", "cmd")
        assert received.empty()
        spy.disconnect()
        spy.loop_stop()
        listener.close()


# --- the API: issue, rotate, revoke, with the real broker reloading ---------------------------


@pytest.fixture
def app_db(db: psycopg.Connection) -> psycopg.Connection:
    db.execute("TRUNCATE users, login_attempts RESTART IDENTITY CASCADE")
    db.execute("INSERT INTO communities (name) VALUES ('杏北社区')")
    for login, role in (("admin", "admin"), ("duty", "staff")):
        db.execute(
            "INSERT INTO users (login, display_name, role, community_id, password_hash)"
            " VALUES (%s, %s, %s, (SELECT id FROM communities), %s)",
            (login, login, role, hash_password("password-" + login)),
        )
    db.commit()
    enrol_device(db, "w-a")
    enrol_device(db, "w-b", name="第二位老人")
    return db


def token(client: TestClient, login: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", data={"username": login, "password": "password-" + login})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
def api_with_broker(
    database_url: str, app_db: psycopg.Connection, secured_broker: PrivateBroker, tmp_path: Path
) -> Iterator[tuple[TestClient, PrivateBroker]]:
    settings = test_settings(home=tmp_path, secret_key=SECRET_KEY, broker_auth=True)
    with TestClient(create_app(settings, database_url)) as client:
        yield client, secured_broker


def test_issue_gives_the_secret_once_and_the_device_gets_in_rotate_and_revoke_lock_it_out(
    api_with_broker: tuple[TestClient, PrivateBroker], app_db: psycopg.Connection
) -> None:
    client, broker = api_with_broker
    admin = token(client, "admin")
    r = client.post("/api/v1/devices/w-a/credentials", headers=admin)
    assert r.status_code == 201, r.text
    issued = r.json()
    assert issued["username"] == "w-a" and issued["broker_reloaded"] is True
    secret = issued["password"]
    wait_until(lambda: refused(broker.port, "w-a", secret) is None, timeout=10)
    (stored,) = app_db.execute(
        "SELECT secret_hash FROM device_credentials WHERE device_id = 'w-a'"
    ).fetchone()  # type: ignore[misc]
    assert stored.startswith("$7$") and secret not in stored
    status = client.get("/api/v1/devices/w-a/credentials", headers=admin).json()
    assert status["active"] is True and "password" not in status

    # A connected device is dropped when its credentials are rotated, and the old secret fails.
    device = connect(broker.port, "w-a", secret)
    assert isinstance(device, mqtt.Client)
    dropped = threading.Event()
    device.on_disconnect = lambda *_: dropped.set()
    rotated = client.post("/api/v1/devices/w-a/credentials", headers=admin).json()["password"]
    assert rotated != secret
    wait_until(lambda: refused(broker.port, "w-a", rotated) is None, timeout=10)
    assert refused(broker.port, "w-a", secret) in REFUSED
    assert dropped.wait(10), "the broker kept a device whose secret was rotated"
    device.loop_stop()

    assert client.delete("/api/v1/devices/w-a/credentials", headers=admin).status_code == 204
    wait_until(lambda: refused(broker.port, "w-a", rotated) in REFUSED, timeout=10)
    assert client.get("/api/v1/devices/w-a/credentials", headers=admin).json()["active"] is False
    again = client.delete("/api/v1/devices/w-a/credentials", headers=admin)
    assert again.status_code == 404 and "no active credentials" in again.json()["detail"]


def test_credentials_are_for_administrators_only_and_bad_ids_are_answered(
    api_with_broker: tuple[TestClient, PrivateBroker],
) -> None:
    client, _ = api_with_broker
    assert client.post("/api/v1/devices/w-a/credentials").status_code == 401
    r = client.post("/api/v1/devices/w-a/credentials", headers=token(client, "duty"))
    assert r.status_code == 403 and "devices.manage" in r.json()["detail"]
    admin = token(client, "admin")
    r = client.post("/api/v1/devices/no-such/credentials", headers=admin)
    assert r.status_code == 404 and "no-such" in r.json()["detail"]
    assert client.post("/api/v1/devices/bad id!/credentials", headers=admin).status_code == 422
    assert client.delete("/api/v1/devices/w-b/credentials", headers=admin).status_code == 404


def test_with_broker_auth_off_credentials_are_stored_and_no_files_are_touched(
    database_url: str, app_db: psycopg.Connection, tmp_path: Path
) -> None:
    settings = test_settings(home=tmp_path, secret_key=SECRET_KEY)
    assert settings.broker_auth is False  # the default
    with TestClient(create_app(settings, database_url)) as client:
        r = client.post("/api/v1/devices/w-a/credentials", headers=token(client, "admin"))
    assert r.status_code == 201 and r.json()["broker_reloaded"] is False
    assert not (tmp_path / "broker" / "passwd").exists()


def test_runtime_with_broker_auth_admits_the_ingest_and_devices_and_stores_their_readings(
    database_url: str, app_db: psycopg.Connection, tmp_path: Path
) -> None:
    import time

    from eldercare.broker_address import BrokerAddress
    from eldercare.runtime import bring_up
    from ingest.service import IngestService

    secret = new_secret()
    app_db.execute(
        "INSERT INTO device_credentials (device_id, secret_hash, issued_at)"
        " VALUES ('w-b', %s, now())",
        (hash_secret(secret),),
    )
    app_db.commit()
    settings = test_settings(
        home=tmp_path, database_url=database_url, broker_auth=True, broker_kind="mosquitto"
    )
    rt = bring_up(settings)
    assert rt.broker is not None and rt.broker_url is not None
    ingest = IngestService(settings, database_url, rt.broker_url, mqtt_v5=rt.mqtt_v5)
    try:
        addr = BrokerAddress.parse(rt.broker_url)
        assert addr.username == SERVICE and addr.password
        assert refused(addr.port, None, None) in REFUSED
        ingest.start()
        wait_until(lambda: ingest.connected, timeout=15)
        device = connect(addr.port, "w-b", secret)  # issued before the start
        assert isinstance(device, mqtt.Client)
        ms = int(time.time() * 1000)
        for i, dev in enumerate(("w-b", "w-a")):  # w-a's topic is forged by w-b
            payload = f'{{"ts": {ms + i}, "seq": {i}, "hr": {70 + i}}}'
            device.publish(topic(dev, "vitals"), payload, qos=1).wait_for_publish(5)
        device.publish(topic("w-b", "vitals"), f'{{"ts": {ms + 5}, "seq": 5, "hr": 75}}', qos=1)

        def stored() -> list[tuple[str, int]]:
            with psycopg.connect(database_url) as c:
                rows = c.execute("SELECT device_id, seq FROM vitals ORDER BY seq").fetchall()
            return rows if len(rows) >= 2 else []

        assert wait_until(stored, timeout=15) == [("w-b", 0), ("w-b", 5)]
        device.disconnect()
        device.loop_stop()
    finally:
        ingest.stop()
        rt.close()
