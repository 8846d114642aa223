"""``eldercare bridge`` with real processes: device MQTT in, partition queues out, a
worker storing and alarming; a SIGKILLed bridge loses and doubles nothing."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cluster import topology
from conftest import (
    Publisher,
    eldercare_env,
    enrol_device,
    start_eldercare,
    stop_process,
    wait_until,
)
from eldercare.private_broker import PrivateBroker

AMQP_URL = os.environ.get("ELDERCARE_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/%2F")
PARTITIONS = 3


@pytest.fixture
def bridged(
    database_url: str, own_broker: PrivateBroker, tmp_path: Path, db: psycopg.Connection
) -> Iterator[tuple[dict[str, str], list]]:
    # Our broker configuration: while the bridge is down its session queues every
    # message (a stock Mosquitto keeps 1,000 and drops the rest, which is what a
    # production broker must be configured not to do).
    broker_url = own_broker.url
    prefix = f"xbt.{uuid.uuid4().hex[:8]}"
    env = eldercare_env(
        database_url,
        broker_url,
        ELDERCARE_AMQP_URL=AMQP_URL,
        ELDERCARE_PARTITIONS=str(PARTITIONS),
        ELDERCARE_PARTITION_PREFIX=prefix,
        ELDERCARE_BRIDGE_CLIENT_ID=f"xb-bridge-{uuid.uuid4().hex[:8]}",
        ELDERCARE_WORKER_STANDBY_DELAY_S="0",
    )
    procs = [start_eldercare(["worker"], env, tmp_path / "worker.log")]
    try:
        yield env, procs
    finally:
        for p in procs:
            stop_process(p)
        topology.delete(AMQP_URL, prefix, PARTITIONS)


def vitals(pub: Publisher, device: str, seq: int) -> None:
    body = {"ts": int(time.time() * 1000) - 60_000 + seq, "seq": seq, "hr": 70, "spo2": 97}
    pub.publish(f"eldercare/v1/devices/{device}/vitals", json.dumps(body), wait=False)


def test_bridge_forwards_device_mqtt_and_survives_a_sigkill(
    bridged: tuple[dict[str, str], list],
    own_broker: PrivateBroker,
    db: psycopg.Connection,
    tmp_path: Path,
) -> None:
    env, procs = bridged
    devices = [f"br-{i}" for i in range(6)]
    elders = {d: enrol_device(db, d) for d in devices}
    bridge = start_eldercare(["bridge"], env, tmp_path / "bridge-1.log")
    procs.append(bridge)
    pub = Publisher(own_broker.url)

    def count() -> int:
        (n,) = db.execute("SELECT count(*) FROM vitals").fetchone()
        db.commit()
        return n

    try:
        time.sleep(3)  # the bridge's persistent session exists before devices publish
        for seq in range(1, 301):
            for d in devices:
                vitals(pub, d, seq)
            if seq == 100:
                wait_until(lambda: count() > 0, timeout=60, interval=0.2)
                os.kill(bridge.pid, signal.SIGKILL)  # mid-stream: some forwarded, some not
                bridge.wait(10)
        pub.publish(
            f"eldercare/v1/devices/{devices[0]}/event",
            json.dumps({"ts": int(time.time() * 1000), "seq": 9999, "type": "sos"}),
        )
        procs.append(start_eldercare(["bridge"], env, tmp_path / "bridge-2.log"))
        wait_until(lambda: count() == 300 * len(devices), timeout=90, interval=0.5)

        def sos() -> list:
            rows = db.execute(
                "SELECT id FROM alerts WHERE elder_id = %s AND kind = 'sos'",
                (elders[devices[0]],),
            ).fetchall()
            db.commit()
            return rows

        assert len(wait_until(sos, timeout=30, interval=0.3)) == 1
    finally:
        pub.close()
    (distinct,) = db.execute("SELECT count(DISTINCT (device_id, seq)) FROM vitals").fetchone()
    assert distinct == 300 * len(devices)
