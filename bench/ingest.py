"""``eldercare bench ingest``: how close the full ingest path comes to the broker's ceiling.

Method (same run, same broker, same messages):
1. a private Mosquitto (our config) and a scratch database on the configured server;
2. the subscriber under test connects once with a persistent session and leaves;
3. a separate publisher process loads M messages into the broker's queue for it;
4. the subscriber reconnects and drains the queue; the clock runs from its connect to
   the last message handled.  For the ceiling "handled" is received and JSON-decoded
   by a bare paho client; for ingest it is committed to PostgreSQL and acknowledged.

Preloading means the publisher never competes for the CPU with what is measured,
and both subscribers meet exactly the same backlog.  Rounds alternate ceiling and
ingest so that drift in the shared machine's speed hits both alike.
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from psycopg import sql
from rich.console import Console

from eldercare import private_broker
from eldercare.broker_address import BrokerAddress
from eldercare.runtime import database_url, migration_options
from eldercare.settings import Settings
from ingest.service import IngestService
from storage.migrate import migrate

DEVICES = 1000
console = Console(stderr=True)


def _payloads(messages: int, per_message: int, seed: int) -> list[tuple[str, bytes]]:
    """Realistic vitals samples, ``per_message`` per message, device ids bench-0000…"""
    now_ms = int(time.time() * 1000)
    out: list[tuple[str, bytes]] = []
    enc = msgspec.json.Encoder()
    for i in range(messages):
        dev = i % DEVICES
        base = (seed * 10_000_000) + i * per_message
        samples = [
            {
                "ts": now_ms - (per_message - k) * 1000 + i,
                "seq": base + k,
                "hr": 60 + (i + k) % 40,
                "spo2": 95 + k % 4,
                "steps": i + k,
                "battery": 80.0,
                "worn": True,
            }
            for k in range(per_message)
        ]
        body = samples[0] if per_message == 1 else samples
        out.append((f"eldercare/v1/devices/bench-{dev:04d}/vitals", enc.encode(body)))
    return out


def _publish(broker_url: str, payloads: list[tuple[str, bytes]]) -> None:
    """Runs in a child process: publish everything at QoS 1 and wait for every PUBACK."""
    addr = BrokerAddress.parse(broker_url)
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{uuid.uuid4().hex[:6]}")
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect(addr.host, addr.port)
    c.loop_start()
    infos = [c.publish(t, p, qos=1) for t, p in payloads]
    for info in infos:
        info.wait_for_publish(120)
    c.disconnect()
    c.loop_stop()


def _preload(broker_url: str, payloads: list[tuple[str, bytes]]) -> None:
    proc = mp.get_context("spawn").Process(target=_publish, args=(broker_url, payloads))
    proc.start()
    proc.join(600)
    if proc.exitcode != 0:
        raise RuntimeError(f"publisher process failed (exit {proc.exitcode})")


class _BareSubscriber:
    """The ceiling: receive and JSON-decode, nothing else (paho acks automatically)."""

    def __init__(self, broker_url: str, receive_max: int) -> None:
        self.addr = BrokerAddress.parse(broker_url)
        self.client_id = f"bench-ceiling-{uuid.uuid4().hex[:6]}"
        self.receive_max = receive_max
        self.count = 0
        self.samples = 0
        self.done = threading.Event()
        self.target = 0
        self._decoder = msgspec.json.Decoder()

    def _client(self) -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5)
        c.on_message = self._on_message
        return c

    def _connect(self, c: mqtt.Client) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 600
        props.ReceiveMaximum = self.receive_max
        c.connect(self.addr.host, self.addr.port, clean_start=False, properties=props)

    def _on_message(self, client, userdata, msg) -> None:
        body = self._decoder.decode(msg.payload)
        self.samples += len(body) if isinstance(body, list) else 1
        self.count += 1
        if self.count >= self.target:
            self.done.set()

    def register(self) -> None:
        c = self._client()
        self._connect(c)
        c.loop_start()
        c.subscribe("eldercare/v1/devices/#", qos=1)[0]
        time.sleep(0.3)
        c.disconnect()
        c.loop_stop()

    def drain(self, target: int) -> float:
        self.count, self.samples, self.target = 0, 0, target
        self.done.clear()
        c = self._client()
        t0 = time.perf_counter()
        self._connect(c)
        c.loop_start()
        if not self.done.wait(600):
            raise RuntimeError(f"ceiling subscriber got {self.count}/{target}")
        elapsed = time.perf_counter() - t0
        c.disconnect()
        c.loop_stop()
        return elapsed


def _drain_ingest(
    settings: Settings,
    db_url: str,
    broker_url: str,
    client_id: str,
    target: int,
    *,
    detect: bool = False,
    detect_lag: list[float] | None = None,
    detect_start: list[float] | None = None,
) -> tuple[float, int]:
    from ingest.detection import DetectionWorker

    worker = None
    if detect:
        # The detection process starts (imports, profiles, the previous round's saved
        # rule state) before the clock does, as it would have long before any backlog
        # in a running service: what is measured is ingest beside a running detector,
        # not a process start-up.
        started = time.perf_counter()
        worker = DetectionWorker(db_url)
        worker.start()
        while not worker.restored:
            if time.perf_counter() - started > 120:
                raise RuntimeError("detection process did not start")
            time.sleep(0.01)
        if detect_start is not None:
            detect_start.append(time.perf_counter() - started)
    svc = IngestService(settings, db_url, broker_url, client_id=client_id, detection=worker)
    t0 = time.perf_counter()
    svc.start()
    deadline = time.monotonic() + 600
    while svc.stats.messages < target:
        if time.monotonic() > deadline:
            raise RuntimeError(f"ingest handled {svc.stats.messages}/{target}")
        time.sleep(0.002)
    elapsed = time.perf_counter() - t0
    stored = sum(svc.stats.samples.values())
    if svc.detection is not None:  # detection must keep up too: wait for its backlog
        det = svc.detection
        while det.readings_done < max(stored, det.readings_submitted):
            if time.monotonic() > deadline:
                raise RuntimeError("detection did not catch up")
            time.sleep(0.005)
        if detect_lag is not None:
            detect_lag.append(time.perf_counter() - t0 - elapsed)
    svc.stop()
    return elapsed, stored


def detection_overhead(
    settings: Settings, *, messages: int, rounds: int = 2, progress: bool = True
) -> dict[str, Any]:
    """Ingest msgs/s with detection on versus off, alternating, same broker and backlog.

    Detection runs in its own process; each "on" round starts a fresh one and waits
    until it is ready (``detection_start_s``) before the clock starts, and the round
    ends only when detection has caught up with everything stored
    (``detection_catch_up_s``: how long after the ingest's last commit)."""
    if not progress:
        console.quiet = True
    home = Path(tempfile.mkdtemp(prefix="eldercare-bench-"))
    broker = private_broker.start(home, kind="mosquitto")
    db_url, drop = _scratch_database(settings)
    # One publisher stands in for thousands of devices: lift the per-device flood limit.
    quiet = settings.model_copy(
        update={"ingest_session_expiry_s": 600, "flood_rate_per_s": 1e9, "flood_burst": 10**9}
    )
    off_rates: list[float] = []
    on_rates: list[float] = []
    lag: list[float] = []
    start: list[float] = []
    try:
        for r in range(rounds):
            payloads = _payloads(messages, 1, seed=5000 + r)
            for detect, rates in ((False, off_rates), (True, on_rates)):
                state = "on" if detect else "off"
                console.print(f"[dim]round {r + 1}/{rounds}: detection {state}…[/dim]")
                client_id = f"bench-det-{uuid.uuid4().hex[:6]}"
                _register_ingest(quiet, db_url, broker.url, client_id)
                _preload(broker.url, payloads)
                t, _ = _drain_ingest(
                    quiet,
                    db_url,
                    broker.url,
                    client_id,
                    messages,
                    detect=detect,
                    detect_lag=lag,
                    detect_start=start,
                )
                rates.append(messages / t)
    finally:
        broker.stop()
        drop()
    off, on = statistics.median(off_rates), statistics.median(on_rates)
    return {
        "messages": messages,
        "ingest_msgs_per_s_detection_off": round(off, 1),
        "ingest_msgs_per_s_detection_on": round(on, 1),
        "ratio": round(on / off, 3),
        "detection_catch_up_s": [round(x, 3) for x in lag],
        "detection_start_s": [round(x, 3) for x in start],
        "per_round": {
            "ingest_msgs_per_s_detection_off": [round(x, 1) for x in off_rates],
            "ingest_msgs_per_s_detection_on": [round(x, 1) for x in on_rates],
        },
    }


def _register_ingest(settings: Settings, db_url: str, broker_url: str, client_id: str) -> None:
    svc = IngestService(settings, db_url, broker_url, client_id=client_id)
    svc.start()
    svc.stop()


def _scratch_database(settings: Settings) -> tuple[str, Callable[[], None]]:
    admin = database_url(settings)
    name = f"eldercare_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = psycopg.conninfo.make_conninfo(admin, dbname=name)
    migrate(url, migration_options(settings))
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO elders (name) SELECT 'bench ' || g FROM generate_series(1, %s) g",
            (DEVICES,),
        )
        conn.execute(
            "INSERT INTO devices (id, elder_id) SELECT 'bench-' || lpad((g - 1)::text, 4, '0'), g"
            " FROM generate_series(1, %s) g",
            (DEVICES,),
        )

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    return url, drop


def _measure(
    settings: Settings,
    db_url: str,
    broker_url: str,
    messages: int,
    per_message: int,
    rounds: int,
    label: str,
) -> dict[str, Any]:
    ceiling_rates, ingest_rates, ceiling_samples, ingest_samples = [], [], [], []
    bare = _BareSubscriber(broker_url, settings.ingest_receive_max)
    bare.register()
    for r in range(rounds):
        payloads = _payloads(messages, per_message, seed=r + (1000 if per_message > 1 else 0))
        console.print(f"[dim]{label} round {r + 1}/{rounds}: ceiling…[/dim]")
        _preload(broker_url, payloads)
        t = bare.drain(messages)
        ceiling_rates.append(messages / t)
        ceiling_samples.append(bare.samples / t)

        console.print(f"[dim]{label} round {r + 1}/{rounds}: ingest…[/dim]")
        client_id = f"bench-ingest-{uuid.uuid4().hex[:6]}"
        _register_ingest(settings, db_url, broker_url, client_id)
        _preload(broker_url, payloads)
        t, stored = _drain_ingest(settings, db_url, broker_url, client_id, messages)
        if stored != messages * per_message:
            raise RuntimeError(f"ingest stored {stored} of {messages * per_message} samples")
        ingest_rates.append(messages / t)
        ingest_samples.append(stored / t)
    c, i = statistics.median(ceiling_rates), statistics.median(ingest_rates)
    cs, is_ = statistics.median(ceiling_samples), statistics.median(ingest_samples)
    return {
        "messages": messages,
        "readings_per_message": per_message,
        "rounds": rounds,
        "ceiling_msgs_per_s": round(c, 1),
        "ingest_msgs_per_s": round(i, 1),
        "ratio": round(i / c, 3),
        "ceiling_readings_per_s": round(cs, 1),
        "ingest_readings_per_s": round(is_, 1),
        "readings_ratio": round(is_ / cs, 3),
        "per_round": {
            "ceiling_msgs_per_s": [round(x, 1) for x in ceiling_rates],
            "ingest_msgs_per_s": [round(x, 1) for x in ingest_rates],
        },
    }


def run(
    settings: Settings, *, messages: int, array: int, rounds: int = 2, progress: bool = True
) -> dict[str, Any]:
    if not progress:
        console.quiet = True
    home = Path(tempfile.mkdtemp(prefix="eldercare-bench-"))
    broker = private_broker.start(home, kind="mosquitto")
    db_url, drop = _scratch_database(settings)
    # One publisher stands in for thousands of devices: lift the per-device flood limit.
    quiet = settings.model_copy(
        update={"ingest_session_expiry_s": 600, "flood_rate_per_s": 1e9, "flood_burst": 10**9}
    )
    try:
        single = _measure(quiet, db_url, broker.url, messages, 1, rounds, "single readings")
        arrays = _measure(
            quiet, db_url, broker.url, max(100, messages // 10), array, rounds, f"arrays of {array}"
        )
    finally:
        broker.stop()
        drop()
    import os
    import platform

    return {
        "single": single,
        "arrays": arrays,
        "ceiling_msgs_per_s": single["ceiling_msgs_per_s"],
        "ingest_msgs_per_s": single["ingest_msgs_per_s"],
        "ratio": single["ratio"],
        "ceiling_readings_per_s": arrays["ceiling_readings_per_s"],
        "ingest_readings_per_s": arrays["ingest_readings_per_s"],
        "readings_ratio": arrays["readings_ratio"],
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "broker": "mosquitto (private, project config)",
        },
    }


def render(result: dict[str, Any]) -> str:
    s, a = result["single"], result["arrays"]
    lines = [
        "ingest benchmark (median of rounds; ceiling = bare paho subscriber + JSON decode)",
        f"{'':24}{'ceiling':>14}{'ingest':>14}{'ratio':>8}",
        f"{'msgs/s, 1 reading':24}{s['ceiling_msgs_per_s']:>14,.0f}{s['ingest_msgs_per_s']:>14,.0f}{s['ratio']:>8.2f}",
        f"{'readings/s, arrays of ' + str(a['readings_per_message']):24}{a['ceiling_readings_per_s']:>14,.0f}"
        f"{a['ingest_readings_per_s']:>14,.0f}{a['readings_ratio']:>8.2f}",
        f"floors: ratio >= 0.6 ({'met' if s['ratio'] >= 0.6 else 'MISSED'}); "
        f">= 50,000 readings/s with arrays ({'met' if a['ingest_readings_per_s'] >= 50_000 else 'MISSED'})",
    ]
    return "\n".join(lines)
