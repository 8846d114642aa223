"""The live map with workers: a position stored by an ``eldercare worker`` reaches the
dashboards of two API-only nodes (``serve --no-ingest``), and so does the alert of an
SOS it judged.  (An ingest's alerts reaching every node: tests/test_detection_process.py.)"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest
from websockets.sync.client import connect

from cluster import topology
from cluster.publisher import PartitionPublisher
from conftest import (
    eldercare_env,
    enrol_device,
    free_port,
    signed_in_as,
    start_eldercare,
    stop_process,
    wait_until,
)

AMQP_URL = os.environ.get("ELDERCARE_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/%2F")
PARTITIONS = 2


@pytest.fixture
def worker_and_two_nodes(
    database_url: str, broker_url: str, tmp_path: Path, db: psycopg.Connection
) -> Iterator[tuple[str, list[str]]]:
    prefix = f"xbt.{uuid.uuid4().hex[:8]}"
    env = eldercare_env(
        database_url,
        broker_url,
        ELDERCARE_AMQP_URL=AMQP_URL,
        ELDERCARE_PARTITIONS=str(PARTITIONS),
        ELDERCARE_PARTITION_PREFIX=prefix,
    )
    procs = [start_eldercare(["worker"], env, tmp_path / "worker.log")]
    nodes = []
    try:
        for name in ("a", "b"):
            port = free_port()
            node_env = {**env, "ELDERCARE_API_PORT": str(port)}
            procs.append(
                start_eldercare(["serve", "--no-ingest"], node_env, tmp_path / f"{name}.log")
            )
            nodes.append(f"http://127.0.0.1:{port}")
        for base, proc in zip(nodes, procs[1:], strict=True):

            def healthy(base: str = base, proc=proc) -> bool:
                assert proc.poll() is None, "an API node exited"
                with contextlib.suppress(httpx.HTTPError):
                    return httpx.get(f"{base}/api/v1/health", timeout=1).is_success
                return False

            wait_until(healthy, timeout=40, interval=0.2)
        yield prefix, nodes
    finally:
        for p in procs:
            stop_process(p)
        topology.delete(AMQP_URL, prefix, PARTITIONS)


def test_positions_and_alerts_from_a_worker_reach_every_api_node(
    worker_and_two_nodes: tuple[str, list[str]], db: psycopg.Connection, database_url: str
) -> None:
    prefix, nodes = worker_and_two_nodes
    elder = enrol_device(db, "lv-1", "孙桂兰")
    sockets = [
        connect(
            n.replace("http", "ws") + "/ws/live", additional_headers=_signed_in(n, database_url)
        )
        for n in nodes
    ]
    publisher = PartitionPublisher(AMQP_URL, prefix, PARTITIONS)
    try:
        ms = int(time.time() * 1000)
        fix = {"ts": ms, "seq": 1, "lat": 34.8682, "lon": 110.4481, "acc": 7, "src": "gps"}
        sos = {"ts": ms + 1, "seq": 2, "type": "sos"}
        now = datetime.now(UTC)
        publisher.publish(
            [
                ("eldercare/v1/devices/lv-1/location", json.dumps(fix).encode(), now),
                ("eldercare/v1/devices/lv-1/event", json.dumps(sos).encode(), now),
            ]
        )
        for ws in sockets:
            seen: dict[str, dict] = {}
            deadline = time.monotonic() + 30
            while len(seen) < 2 and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    m = json.loads(ws.recv(timeout=1))
                    if m["type"] == "update":
                        for e in m["elders"]:
                            if e["elder_id"] == elder and "lat" in e:
                                seen["position"] = e
                    elif m["type"] == "alert" and m["alert"]["elder_id"] == elder:
                        seen["alert"] = m["alert"]
            assert (seen["position"]["lat"], seen["position"]["lon"]) == (34.8682, 110.4481)
            assert seen["alert"]["kind"] == "sos"
    finally:
        publisher.close()
        for ws in sockets:
            ws.close()


def _signed_in(base: str, database_url: str) -> dict[str, str]:
    """An administrator's header for the node at ``base`` (each node signs its own tokens
    unless they share ELDERCARE_SECRET_KEY, so sign in to each)."""
    with httpx.Client(base_url=base, timeout=10) as client:
        return signed_in_as(client, database_url)
