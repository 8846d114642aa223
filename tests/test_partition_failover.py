"""Partitions over RabbitMQ with real processes: three ``eldercare worker``s share the
partitions of 2,000 devices; one is SIGKILLed mid-stream and the others take its
partitions over, with the rules' state, without losing, doubling or reordering a
reading, and without doubling an alert.  (That every API process pushes each alert
once is tests/test_detection_process.py: the workers announce alerts the same way.)"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pika
import psycopg
import pytest

from cluster import topology
from cluster.loadgen import enrol_many, event, vitals_round
from cluster.partitioning import partition_of, queue_name, spread
from cluster.publisher import PartitionPublisher
from conftest import eldercare_env, start_eldercare, stop_process, wait_until
from simulator.accel import fall_burst

AMQP_URL = os.environ.get("ELDERCARE_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/%2F")
PARTITIONS = 6
DEVICES = 2000
ROUNDS = 24


@dataclass
class Cluster:
    prefix: str
    env: dict[str, str]
    tmp: Path

    def worker(self, i: int, workers: int) -> tuple[object, Path]:
        home = ",".join(map(str, spread(i, workers, PARTITIONS)))
        trace = self.tmp / f"trace-{i}.jsonl"
        proc = start_eldercare(
            ["worker", "--partitions", home, "--name", f"w{i}", "--trace", str(trace)],
            self.env,
            self.tmp / f"worker-{i}.log",
        )
        return proc, trace

    def consumers(self) -> list[int]:
        """Consumers per partition queue ([] until the workers have declared them)."""
        with (
            contextlib.closing(topology.connect(AMQP_URL)) as conn,
            contextlib.suppress(pika.exceptions.ChannelClosedByBroker),
        ):
            ch = conn.channel()
            return [
                ch.queue_declare(
                    queue_name(self.prefix, n),
                    passive=True,
                    durable=True,
                    arguments=topology.QUEUE_ARGUMENTS,
                ).method.consumer_count
                for n in range(PARTITIONS)
            ]
        return []


@pytest.fixture
def cluster(database_url: str, broker_url: str, tmp_path: Path, db) -> Iterator[Cluster]:
    try:
        topology.connect(AMQP_URL).close()
    except pika.exceptions.AMQPError as exc:
        raise AssertionError(
            f"RabbitMQ is needed at {AMQP_URL} (scripts/test.sh installs and starts it): {exc}"
        ) from None
    prefix = f"xbt.{uuid.uuid4().hex[:8]}"  # parallel runs never share a queue
    env = eldercare_env(
        database_url,
        broker_url,
        ELDERCARE_AMQP_URL=AMQP_URL,
        ELDERCARE_PARTITIONS=str(PARTITIONS),
        ELDERCARE_PARTITION_PREFIX=prefix,
        ELDERCARE_DETECTION_SNAPSHOT_S="2",
        ELDERCARE_WORKER_STANDBY_DELAY_S="1",
    )
    try:
        yield Cluster(prefix, env, tmp_path)
    finally:
        topology.delete(AMQP_URL, prefix, PARTITIONS)


def fed(traces: list[Path]) -> list[dict]:
    """Every batch the workers fed to the rules, in time order (a SIGKILL may cut a line)."""
    lines = []
    for t in traces:
        if t.exists():
            for line in t.read_text().splitlines():
                with contextlib.suppress(json.JSONDecodeError):
                    lines.append(json.loads(line))
    return sorted(lines, key=lambda b: b["t"])


def alerts(conn: psycopg.Connection, elder: int, kind: str) -> list[tuple]:
    rows = conn.execute(
        "SELECT id, state, outcome, count FROM alerts WHERE elder_id = %s AND kind = %s",
        (elder, kind),
    ).fetchall()
    conn.commit()
    return rows


def test_a_killed_workers_partitions_move_with_their_state(
    cluster: Cluster, db: psycopg.Connection
) -> None:
    pairs = enrol_many(db, DEVICES, "pt")
    devices = [d for d, _ in pairs]
    elder_of = dict(pairs)
    procs, traces = zip(*(cluster.worker(i, 3) for i in range(3)), strict=True)
    publisher = PartitionPublisher(AMQP_URL, cluster.prefix, PARTITIONS)
    try:
        # Every worker serves its home partitions and stands by for all the others.
        wait_until(lambda: cluster.consumers() == [3] * PARTITIONS, timeout=60, interval=0.5)
        publisher.open()
        victim = procs[0]
        gone = spread(0, 3, PARTITIONS)  # the victim's partitions
        in_gone = [d for d in devices if partition_of(d, PARTITIONS) in gone]
        sos_dev, fall_dev, late_fall_dev = in_gone[0], in_gone[1], in_gone[2]
        start = datetime.now(UTC) - timedelta(minutes=2)
        t = lambda k: start + timedelta(seconds=k)  # noqa: E731  event time of round k

        def send_round(k: int) -> None:
            publisher.publish(vitals_round(devices, k, t(k)))

        for k in range(1, ROUNDS // 2):
            send_round(k)
        # Before the kill: an SOS and a fall open alerts on the victim's partitions.
        burst = fall_burst(np.random.default_rng(3))
        publisher.publish(
            [
                event(sos_dev, 10_000, t(ROUNDS // 2 - 1), {"type": "sos"}),
                event(
                    fall_dev,
                    10_000,
                    t(ROUNDS // 2 - 1),
                    {"type": "fall", "accel": {"hz": 50, "g": burst}},
                ),
            ]
        )
        wait_until(lambda: alerts(db, elder_of[sos_dev], "sos"), timeout=60, interval=0.3)
        wait_until(lambda: alerts(db, elder_of[fall_dev], "fall"), timeout=60, interval=0.3)
        time.sleep(2.5)  # a snapshot holding the open fall episode is saved

        # SIGKILL mid-stream, with the rest of the stream being published meanwhile.
        sender = threading.Thread(
            target=lambda: [send_round(k) for k in range(ROUNDS // 2, ROUNDS + 1)]
        )
        sender.start()
        time.sleep(0.3)
        os.kill(victim.pid, signal.SIGKILL)
        killed_at = time.time_ns()
        victim.wait(10)
        # During the handover: a new fall, and the SOS elder presses again.
        publisher2 = PartitionPublisher(AMQP_URL, cluster.prefix, PARTITIONS)
        publisher2.open()
        publisher2.publish(
            [
                event(
                    late_fall_dev,
                    10_001,
                    t(ROUNDS + 2),  # after every vitals sample: never judged late
                    {"type": "fall", "accel": {"hz": 50, "g": burst}},
                ),
                event(sos_dev, 10_001, t(ROUNDS + 2), {"type": "sos"}),
                # "I'm OK" within a minute of the fall: only the fall rule's handed-over
                # state knows the open episode it withdraws.
                event(fall_dev, 10_002, t(ROUNDS + 3), {"type": "cancel"}),
            ]
        )
        publisher2.close()
        sender.join(120)
        publisher.close()

        expected = DEVICES * ROUNDS
        stored = lambda: db.execute("SELECT count(*) FROM vitals").fetchone()[0]  # noqa: E731

        def all_stored() -> bool:
            n = stored()
            db.commit()
            return n == expected

        wait_until(all_stored, timeout=120, interval=1.0)
        late = wait_until(lambda: alerts(db, elder_of[late_fall_dev], "fall"), timeout=30)
        withdrawn = wait_until(
            lambda: [a for a in alerts(db, elder_of[fall_dev], "fall") if a[2] == "withdrawn"],
            timeout=30,
            interval=0.3,
        )
    finally:
        publisher.close()
        for p in procs:
            stop_process(p)

    # Every reading stored exactly once.
    (distinct,) = db.execute("SELECT count(DISTINCT (device_id, seq)) FROM vitals").fetchone()
    assert distinct == expected
    # The victim's partitions moved to the survivors within seconds.
    batches = fed(list(traces))
    for n in gone:
        after = [b["t"] for b in batches if b["p"] == n and b["w"] != "w0" and b["t"] > killed_at]
        assert after, f"partition {n} was not taken over"
        assert (min(after) - killed_at) / 1e9 < 20
    # Each device's readings were fed to the rules in order, none twice (a handed-over
    # message the dead worker had judged is not judged again).
    last: dict[str, int] = {}
    for b in batches:
        for dev, seq in b["r"]:
            if seq is None or seq >= 10_000:
                continue  # the injected events, checked by their alerts
            assert seq > last.get(dev, -1), f"{dev}: seq {seq} after {last.get(dev)}"
            last[dev] = seq
    # One SOS alert (the second press joined it), the fall withdrawn by its handed-over
    # state, and the fall during the handover raised.
    (sos,) = alerts(db, elder_of[sos_dev], "sos")
    assert sos[1] == "open" and sos[3] >= 2
    assert len(alerts(db, elder_of[fall_dev], "fall")) == 1 and withdrawn
    assert late[0][1] == "open"


def close_amqp_connection(name: str) -> None:
    """RabbitMQ closes the connection named ``name`` (as a broker restart or a network
    cut would), through ``rabbitmqctl``: no other client is touched."""
    out = subprocess.run(
        ["rabbitmqctl", "list_connections", "-q", "--no-table-headers", "pid", "client_properties"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    (pid,) = [
        line.split("\t")[0]
        for line in out.splitlines()
        if f'{{"connection_name","{name}"}}' in line
    ]
    subprocess.run(
        ["rabbitmqctl", "close_connection", pid, "test"], check=True, capture_output=True
    )


def test_a_worker_cut_off_from_rabbitmq_hands_over_rejoins_and_takes_over_again(
    cluster: Cluster, db: psycopg.Connection
) -> None:
    """The workers lose their database connections, then worker 0 its RabbitMQ connection:
    worker 1 takes its partitions; worker 0 reconnects as a stand-in with nothing stale,
    and takes every partition when worker 1 dies."""
    pairs = enrol_many(db, 400, "pc")
    devices = [d for d, _ in pairs]
    procs, traces = zip(*(cluster.worker(i, 2) for i in range(2)), strict=True)
    publisher = PartitionPublisher(AMQP_URL, cluster.prefix, PARTITIONS)
    start = datetime.now(UTC) - timedelta(minutes=2)
    rounds = 30

    def count() -> int:
        (n,) = db.execute("SELECT count(*) FROM vitals").fetchone()
        db.commit()
        return n

    try:
        wait_until(lambda: cluster.consumers() == [2] * PARTITIONS, timeout=60, interval=0.5)
        publisher.open()
        for k in range(1, rounds + 1):
            publisher.publish(vitals_round(devices, k, start + timedelta(seconds=k)))
            if k == 5:
                wait_until(lambda: count() >= 2 * len(devices), timeout=60, interval=0.2)
                # Every worker loses its database connections mid-stream.
                db.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                db.commit()
            if k == 10:
                wait_until(lambda: count() >= 8 * len(devices), timeout=60, interval=0.2)
                close_amqp_connection("eldercare-worker w0")
            if k == 20:
                # Worker 0 is back as a stand-in for every partition.
                wait_until(lambda: cluster.consumers() == [2] * PARTITIONS, timeout=30)
                os.kill(procs[1].pid, signal.SIGKILL)
        wait_until(lambda: count() == rounds * len(devices), timeout=120, interval=0.5)
        assert procs[0].poll() is None, "worker 0 must survive losing RabbitMQ"
    finally:
        publisher.close()
        for p in procs:
            stop_process(p)
    (distinct,) = db.execute("SELECT count(DISTINCT (device_id, seq)) FROM vitals").fetchone()
    assert distinct == rounds * len(devices)
    batches = fed(list(traces))
    last: dict[str, int] = {}
    for b in batches:
        for dev, seq in b["r"]:
            assert seq > last.get(dev, -1), f"{dev}: seq {seq} after {last.get(dev)}"
            last[dev] = seq
    assert all(last[d] == rounds for d in devices)
    # In the end worker 0 held every partition.
    assert {b["p"] for b in batches if b["w"] == "w0" and b["r"][0][1] > 20} == set(
        range(PARTITIONS)
    )
