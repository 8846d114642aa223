"""The ingest shell: a paho-mqtt subscriber feeding a writer thread.

Threads and why:
- paho's network thread only puts messages on a queue (blocking it stalls the
  connection, see DESIGN.md field notes);
- the writer thread drains the queue in batches, writes each batch in one
  transaction, and only then acknowledges its messages (paho ``manual_ack``): a
  crash at any point loses nothing, the broker redelivers what was not acked and
  the (device, seq, ts) identity stores it once.

The queue needs no bound of its own: the broker sends at most ``receive_max``
unacknowledged messages (MQTT 5 Receive Maximum), so a stalled database stalls
the broker's sending, not our memory.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_when_event_set,
    wait_exponential,
)

from eldercare.broker_address import BrokerAddress
from eldercare.settings import Settings
from ingest.batch import Assembled, Inbound, assemble, reject_by_database
from ingest.detection import DetectionWorker
from ingest.directory import DeviceDirectory
from ingest.flood import NO_DEVICE, FloodGate, Refused, bucket_key, quarantine_rows
from ingest.stats import IngestStats
from protocol.decode import Limits
from protocol.messages import Event, Position, Vitals
from protocol.topics import ROOT, parse_topic
from storage import timeseries
from storage.writer import WriteResult, write_batch

log = logging.getLogger("eldercare.ingest")
SUBSCRIPTION = f"{ROOT}/#"
MAINTENANCE_EVERY_S = 3600.0
LAG_SAMPLE = 256  # readings per batch whose device-time -> commit lag feeds the metrics
FLOOD_WARN_EVERY_S = 60.0

OnCommit = Callable[[Assembled], None]
T = TypeVar("T")


class IngestService:
    def __init__(
        self,
        settings: Settings,
        database_url: str,
        broker_url: str,
        *,
        on_commit: OnCommit | None = None,
        client_id: str | None = None,
        mqtt_v5: bool = True,
        detection: DetectionWorker | None = None,
    ) -> None:
        self.settings = settings
        self.database_url = database_url
        self.broker = BrokerAddress.parse(broker_url)
        self.on_commit = on_commit
        self.client_id = client_id or settings.ingest_client_id
        self.mqtt_v5 = mqtt_v5
        self.detection = detection
        self.stats = IngestStats()
        self.limits = Limits(
            max_payload_bytes=settings.max_payload_bytes,
            max_backfill=timedelta(hours=settings.max_backfill_hours),
            max_future=timedelta(seconds=settings.max_future_s),
        )
        self.directory = DeviceDirectory()
        self.flood = FloodGate(settings.flood_rate_per_s, settings.flood_burst)
        self._flood_warned: dict[str, float] = {}
        self._queue: queue.SimpleQueue[Inbound] = queue.SimpleQueue()
        self._generation = 0
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._writer: threading.Thread | None = None
        self._client = self._make_client()
        self._conn: psycopg.Connection | None = None
        self._maintained_at = float("-inf")

    # --- MQTT side (paho's network thread) ------------------------------------

    def _make_client(self) -> mqtt.Client:
        if self.mqtt_v5:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=self.client_id,
                protocol=mqtt.MQTTv5,
                manual_ack=True,
            )
        else:  # MQTT 3.1.1 (amqtt): a persistent session is clean_session=False
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=self.client_id,
                protocol=mqtt.MQTTv311,
                clean_session=False,
                manual_ack=True,
            )
        if self.broker.username:
            client.username_pw_set(self.broker.username, self.broker.password)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("broker refused the connection: %s", reason_code)
            return
        self._generation += 1
        self.stats.broker_connects += 1
        client.subscribe(SUBSCRIPTION, qos=1)
        self._connected.set()
        log.info("connected to %s (session present: %s)", self.broker.url, flags.session_present)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connected.clear()
        if not self._stop.is_set():
            log.warning("lost the broker (%s); paho reconnects with backoff", reason_code)

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        if msg.topic.endswith("/cmd") and parse_topic(msg.topic.removesuffix("/cmd") + "/status"):
            client.ack(msg.mid, msg.qos)  # our own downlink commands echo back: not input
            return
        self._queue.put(
            Inbound(msg.topic, msg.payload, datetime.now(UTC), msg.mid, msg.qos, self._generation)
        )

    # --- lifecycle ------------------------------------------------------------

    def start(self, connect_timeout: float = 15.0) -> None:
        if self.detection is not None:
            self.detection.start()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.settings.ingest_session_expiry_s
        props.ReceiveMaximum = self.settings.ingest_receive_max
        self._conn = self._connect_db()
        for attempt in Retrying(
            stop=stop_after_attempt(5),
            wait=wait_exponential(min=0.5, max=4),
            retry=retry_if_exception_type(OSError),
            reraise=True,
        ):
            with attempt:
                if self.mqtt_v5:
                    self._client.connect(
                        self.broker.host,
                        self.broker.port,
                        keepalive=30,
                        clean_start=False,
                        properties=props,
                    )
                else:
                    self._client.connect(self.broker.host, self.broker.port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(connect_timeout):
            self._client.loop_stop()
            raise RuntimeError(f"MQTT broker at {self.broker.url} did not accept the connection")
        self._writer = threading.Thread(target=self._run_writer, name="ingest-writer", daemon=True)
        self._writer.start()

    def stop(self) -> None:
        self._stop.set()
        if self._writer is not None:
            self._writer.join(timeout=10)
        self._client.disconnect()
        self._client.loop_stop()
        if self._conn is not None:
            self._conn.close()
        if self.detection is not None:
            self.detection.stop()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    # --- the writer thread ----------------------------------------------------

    def _connect_db(self) -> psycopg.Connection:
        return psycopg.connect(self.database_url, connect_timeout=5)

    def _drain(self) -> list[Inbound]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        batch = [first]
        deadline = time.monotonic() + self.settings.ingest_linger_ms / 1000
        while len(batch) < self.settings.ingest_batch_max:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    batch.append(self._queue.get(timeout=remaining))
                except queue.Empty:
                    break
        return batch

    def _run_writer(self) -> None:
        while not self._stop.is_set():
            messages = self._drain()
            if not messages:
                self._with_db(self._maintain)
                continue
            # Judged once per message, before any retry: a database outage must not
            # charge a device twice for the same message.
            admitted, refused = self._gate(messages)
            assembled = self._with_db(lambda conn, a=admitted, r=refused: self._write(conn, a, r))
            if assembled is None:  # stopping while the database is away: nothing acked
                return
            generation = self._generation
            for m in messages:
                if m.qos > 0 and m.generation == generation:
                    self._client.ack(m.mid, m.qos)
            if self.detection is not None:
                self.detection.submit(assembled.readings)
            if self.on_commit is not None:
                try:
                    self.on_commit(assembled)
                except Exception:  # a slow or broken listener must not stop ingest
                    log.exception("on_commit listener failed")

    def _gate(self, messages: list[Inbound]) -> tuple[list[Inbound], list[Refused]]:
        admitted: list[Inbound] = []
        refused: list[Refused] = []
        for m in messages:
            parsed = parse_topic(m.topic)
            device = parsed[0] if parsed is not None else NO_DEVICE
            key = bucket_key(device, parsed[1]) if parsed is not None else NO_DEVICE
            if self.flood.admit(key, m.received_at.timestamp()):
                admitted.append(m)
            else:
                refused.append(Refused(m.received_at, m.topic, parsed and parsed[0], m.payload))
                self._warn_flood(device)
        return admitted, refused

    def _warn_flood(self, device: str) -> None:
        now = time.monotonic()
        if now - self._flood_warned.get(device, float("-inf")) >= FLOOD_WARN_EVERY_S:
            if len(self._flood_warned) > 10_000:  # many made-up device ids: forget, warn again
                self._flood_warned.clear()
            self._flood_warned[device] = now
            log.warning(
                "device %s is over its message rate; excess is quarantined as rate_limited",
                device or "(no device)",
                extra={"device_id": device or None},
            )

    def _refused_batch(self, assembled: Assembled, refused: list[Refused]) -> None:
        if refused:
            assembled.batch.quarantine.extend(
                quarantine_rows(
                    refused,
                    self.settings.flood_rate_per_s,
                    self.settings.flood_burst,
                    self.settings.quarantine_raw_bytes,
                )
            )
            reason = "rate_limited"
            assembled.rejected[reason] = assembled.rejected.get(reason, 0) + len(refused)

    def _write(
        self, conn: psycopg.Connection, messages: list[Inbound], refused: list[Refused]
    ) -> Assembled:
        now = time.monotonic()
        self.directory.refresh_if_due(conn, now)
        ids = [p[0] for m in messages if (p := parse_topic(m.topic)) is not None]
        self.directory.resolve(conn, ids, now)
        conn.commit()
        raw_limit = self.settings.quarantine_raw_bytes
        assembled = assemble(messages, self.directory.lookup, self.limits, raw_limit)
        self._refused_batch(assembled, refused)
        started = time.perf_counter()
        try:
            result = write_batch(conn, assembled.batch)
        except psycopg.OperationalError:
            raise
        except psycopg.Error:
            # Something valid to us but refused by the database: find the message,
            # quarantine it, keep the rest.  Slow, and only on this rare path.
            log.exception("batch refused by the database; writing message by message")
            conn.rollback()
            return self._write_each(conn, messages, refused)
        commit_s = time.perf_counter() - started
        self._record(messages, len(refused), assembled, result, commit_s)
        _judge_only_new(assembled, result.inserted)
        return assembled

    def _write_each(
        self, conn: psycopg.Connection, messages: list[Inbound], refused: list[Refused]
    ) -> Assembled:
        raw_limit = self.settings.quarantine_raw_bytes
        merged = assemble([], self.directory.lookup, self.limits, raw_limit)
        if refused:
            self._refused_batch(merged, refused)
            started = time.perf_counter()
            result = write_batch(conn, merged.batch)
            self._record([], len(refused), merged, result, time.perf_counter() - started)
        for m in messages:
            one = assemble([m], self.directory.lookup, self.limits, raw_limit)
            started = time.perf_counter()
            try:
                result = write_batch(conn, one.batch)
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                conn.rollback()
                one = reject_by_database(m, str(exc), raw_limit)
                result = write_batch(conn, one.batch)
            self._record([m], 0, one, result, time.perf_counter() - started)
            _judge_only_new(one, result.inserted)
            merged.readings.extend(one.readings)
            merged.live.update(one.live)
        return merged

    def _record(
        self,
        messages: list[Inbound],
        refused: int,
        assembled: Assembled,
        result: WriteResult,
        commit_s: float,
    ) -> None:
        now = datetime.now(UTC)
        lag = (now - messages[0].received_at).total_seconds() if messages else 0.0
        readings = assembled.readings
        step = max(1, len(readings) // LAG_SAMPLE)
        self.stats.record(
            messages=len(messages) + refused,
            stored=result.stored,
            duplicates=result.duplicates + assembled.duplicates,
            rejected=assembled.rejected,
            lag_s=lag,
            commit_s=commit_s,
            lags_s=[(now - r.ts).total_seconds() for _, r in readings[::step]],
        )

    def _maintain(self, conn: psycopg.Connection) -> None:
        if time.monotonic() - self._maintained_at < MAINTENANCE_EVERY_S:
            return
        # Creating a partition locks its parent; never let a long report query
        # stall ingest behind it: give up quickly and try again in a minute.
        conn.execute("SET LOCAL lock_timeout = '2s'")
        try:
            timeseries.maintain(
                conn,
                now=datetime.now(UTC),
                back_days=int(self.settings.max_backfill_hours // 24) + 1,
                ahead_days=self.settings.partitions_ahead_days,
                retention_days=self.settings.retention_days,
            )
            conn.commit()
            self._maintained_at = time.monotonic()
        except psycopg.errors.LockNotAvailable:
            conn.rollback()
            log.info("partition maintenance postponed: tables busy")
            self._maintained_at = time.monotonic() - MAINTENANCE_EVERY_S + 60

    def _with_db(self, work: Callable[[psycopg.Connection], T]) -> T | None:
        """Run ``work`` until it succeeds, reconnecting with backoff while the database is away.

        Returns None only when the service is stopping.
        """

        def reconnect(state: RetryCallState) -> None:
            self.stats.db_errors += 1
            log.warning(
                "database unavailable (%s); retrying", state.outcome and state.outcome.exception()
            )
            if self._conn is not None:
                self._conn.close()
            self._conn = None

        retrying = Retrying(
            retry=retry_if_exception_type(psycopg.OperationalError),
            wait=wait_exponential(multiplier=0.2, max=5),
            stop=stop_when_event_set(self._stop),
            sleep=self._stop.wait,
            before_sleep=reconnect,
            reraise=False,
        )
        try:
            for attempt in retrying:
                with attempt:
                    if self._conn is None or self._conn.closed:
                        self._conn = self._connect_db()
                    return work(self._conn)
        except RetryError:
            return None
        return None


def _judge_only_new(
    assembled: Assembled, inserted: frozenset[tuple[str, int, datetime]] | None
) -> None:
    """Drop from detection the samples that were stored before (a redelivery after a
    lost acknowledgement): judging them again would count one SOS press twice."""
    if inserted is None:
        return
    assembled.readings = [
        (elder, r)
        for elder, r in assembled.readings
        if not isinstance(r, Vitals | Position | Event) or (r.device_id, r.seq, r.ts) in inserted
    ]
