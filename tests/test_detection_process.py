"""Detection in its own process, with real parts: the ingest feeds it, PostgreSQL NOTIFY
carries its alerts to every API process, and a crash of it is survived."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from websockets.sync.client import ClientConnection, connect

from conftest import (
    LiveSystem,
    Publisher,
    eldercare_env,
    free_port,
    signed_in_as,
    start_eldercare,
    stop_process,
    wait_until,
)


def detection_pid(parent: int) -> int | None:
    """The detection process among ``parent``'s children (a multiprocessing spawn)."""
    for task in Path(f"/proc/{parent}/task").iterdir():
        with contextlib.suppress(OSError):
            for pid in (task / "children").read_text().split():
                with contextlib.suppress(OSError):
                    if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        return int(pid)
    return None


def sos(publisher: Publisher, device_id: str, seq: int = 1) -> None:
    publisher.publish(
        f"eldercare/v1/devices/{device_id}/event",
        json.dumps({"ts": int(time.time() * 1000), "seq": seq, "type": "sos"}).encode(),
    )


def alerts_for(ws: ClientConnection, elder_id: int, wanted: int, timeout: float = 15.0) -> list:
    """Every alert message about ``elder_id`` until ``wanted`` came, then a short while more."""
    got: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = json.loads(ws.recv(timeout=max(0.05, deadline - time.monotonic())))
        except TimeoutError:
            break
        if msg["type"] == "alert" and msg["alert"]["elder_id"] == elder_id:
            got.append(msg["alert"])
            if len(got) == wanted:  # anything more (a duplicate) would come right after
                deadline = min(deadline, time.monotonic() + 1.5)
    return got


class Node:
    def __init__(self, base_url: str, database_url: str) -> None:
        self.base_url = base_url
        self.database_url = database_url
        self.ws_url = base_url.replace("http", "ws") + "/ws/live"
        self.headers: dict[str, str] = {}

    def auth(self) -> dict[str, str]:
        if not self.headers:
            with httpx.Client(base_url=self.base_url, timeout=10) as c:
                self.headers = signed_in_as(c, self.database_url)
        return self.headers

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10, headers=self.auth())


@pytest.fixture
def two_api_nodes_and_an_ingest(
    database_url: str, broker_url: str, tmp_path: Path, db: psycopg.Connection
) -> Iterator[tuple[Node, Node]]:
    """``eldercare ingest`` (with detection) and two ``eldercare serve --no-ingest``."""
    env = eldercare_env(database_url, broker_url)
    procs = [start_eldercare(["ingest"], env, tmp_path / "ingest.log")]
    nodes = []
    for name in ("a", "b"):
        port = free_port()
        node_env = {**env, "ELDERCARE_API_PORT": str(port)}
        procs.append(start_eldercare(["serve", "--no-ingest"], node_env, tmp_path / f"{name}.log"))
        nodes.append(Node(f"http://127.0.0.1:{port}", database_url))
    try:
        for node, proc, log in zip(nodes, procs[1:], ("a", "b"), strict=True):

            def healthy(node: Node = node, proc=proc, log: str = log) -> bool:
                if proc.poll() is not None:
                    raise AssertionError((tmp_path / f"{log}.log").read_text())
                with contextlib.suppress(httpx.HTTPError):
                    return httpx.get(f"{node.base_url}/api/v1/health", timeout=1).is_success
                return False

            wait_until(healthy, timeout=40, interval=0.2)
        wait_until(lambda: detection_pid(procs[0].pid), timeout=20)
        yield nodes[0], nodes[1]
    finally:
        for proc in procs:
            stop_process(proc)


def test_every_api_process_pushes_every_alert_once(
    two_api_nodes_and_an_ingest: tuple[Node, Node], broker_url: str
) -> None:
    """A standalone ingest's alert reaches the dashboards of two API-only nodes; an
    acknowledge on one reaches both, each exactly once."""
    a, b = two_api_nodes_and_an_ingest
    device = f"dp-{uuid.uuid4().hex[:6]}"
    with a.http() as http:
        elder = http.post("/api/v1/elders", json={"name": "钱秀英"}).json()["id"]
        assert http.post("/api/v1/devices", json={"id": device, "elder_id": elder}).is_success
    publisher = Publisher(broker_url)
    try:
        with (
            connect(a.ws_url, additional_headers=a.auth()) as ws_a,
            connect(b.ws_url, additional_headers=b.auth()) as ws_b,
        ):
            time.sleep(1.5)  # the ingest's device directory refreshes every few seconds
            sent = time.monotonic()
            sos(publisher, device)
            (on_a,) = alerts_for(ws_a, elder, 1)
            latency = time.monotonic() - sent
            (on_b,) = alerts_for(ws_b, elder, 1)
            assert on_a == on_b and on_a["kind"] == "sos" and on_a["state"] == "open"
            assert on_a["elder_name"] == "钱秀英"
            assert latency < 5, f"an SOS took {latency:.1f}s to reach another process's dashboard"

            with b.http() as http:
                r = http.post(f"/api/v1/alerts/{on_a['id']}/acknowledge", json={"by": "值班员 孙"})
                assert r.status_code == 200, r.text
            (acked_b,) = alerts_for(ws_b, elder, 1)  # its own node: pushed, not also echoed
            (acked_a,) = alerts_for(ws_a, elder, 1)  # the other node: through NOTIFY
            assert acked_a == acked_b == r.json()
            assert acked_a["state"] == "acknowledged" and acked_a["acknowledged_by"] == "值班员 孙"
    finally:
        publisher.close()


def test_a_killed_detection_process_is_replaced_and_the_next_sos_alarms(
    live_system: LiveSystem,
) -> None:
    device = f"dk-{uuid.uuid4().hex[:6]}"
    with live_system.http() as http:
        elder = http.post("/api/v1/elders", json={"name": "褚凤兰"}).json()["id"]
        assert http.post("/api/v1/devices", json={"id": device, "elder_id": elder}).is_success
    first = wait_until(lambda: detection_pid(live_system.process.pid), timeout=20)
    assert isinstance(first, int)
    os.kill(first, signal.SIGKILL)
    with connect(live_system.ws_url, additional_headers=live_system.auth()) as ws:
        sos(live_system.publisher, device)
        (alert,) = alerts_for(ws, elder, 1, timeout=30)
    assert alert["kind"] == "sos" and alert["severity"] == "critical"
    second = detection_pid(live_system.process.pid)
    assert second is not None and second != first
    assert live_system.process.poll() is None, "the ingest itself must carry on"
    assert "detection process ended" in live_system.log.read_text()


def test_an_sos_in_flight_when_detection_dies_still_alarms(live_system: LiveSystem) -> None:
    """The ingest stored the SOS and handed it over, but the detection process died
    before recording it: the new process is given it again."""
    device = f"df-{uuid.uuid4().hex[:6]}"
    with live_system.http() as http:
        elder = http.post("/api/v1/elders", json={"name": "蒋月娥"}).json()["id"]
        assert http.post("/api/v1/devices", json={"id": device, "elder_id": elder}).is_success
    frozen = wait_until(lambda: detection_pid(live_system.process.pid), timeout=20)
    assert isinstance(frozen, int)
    time.sleep(1.0)  # the ingest's device directory knows the new device
    os.kill(frozen, signal.SIGSTOP)
    try:
        sos(live_system.publisher, device)
        with psycopg.connect(live_system.database_url) as conn:

            def stored() -> bool:
                row = conn.execute(
                    "SELECT count(*) FROM device_events WHERE device_id = %s", (device,)
                ).fetchone()
                conn.commit()
                return bool(row and row[0])

            wait_until(stored, timeout=15)
        time.sleep(0.3)  # handed over to the (frozen) detection process
    finally:
        os.kill(frozen, signal.SIGKILL)
    with live_system.http() as http:

        def alarmed() -> list:
            return http.get("/api/v1/alerts", params={"elder_id": elder}).json()["data"]

        (alert,) = wait_until(alarmed, timeout=30, interval=0.3)  # type: ignore[misc]
    assert alert["kind"] == "sos" and alert["state"] == "open" and alert["count"] == 1
