"""A partition worker: consumes its partitions' queues, stores, judges, then acks.

Per loop it takes what RabbitMQ delivered (up to ``prefetch`` messages per
partition), and for each partition: takes it over if this is its first delivery
here (:class:`~cluster.partition_rules.PartitionRules`), assembles the raw device
messages exactly as the single-process ingest does (``ingest.batch``), and then for
all partitions at once writes the rows in one transaction (``storage.writer``:
COPY, a redelivered duplicate stored once), feeds the readings to the partitions'
rules, records the findings (one open episode per elder and kind, enforced by the
database) with their NOTIFY, and only then acknowledges the messages.  A crash
anywhere before the ack makes RabbitMQ hand the messages, in order, to the worker
that takes the partition over.

It subscribes to its *home* partitions at once and to every other partition
(``standby``) a few seconds later, in random order: with ``x-single-active-consumer``
RabbitMQ keeps a queue with the consumer registered first, so workers started
together split the partitions by their home lists, each is the stand-in for the
others, and a dead worker's partitions spread over the survivors.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, TypeVar

import pika
import pika.exceptions
import psycopg

from cluster import topology
from cluster.envelope import unpack
from cluster.live_feed import LiveAnnouncer
from cluster.partition_rules import PartitionRules
from cluster.partitioning import queue_name
from eldercare.settings import Settings
from ingest.batch import Assembled, Inbound, assemble, reject_by_database
from ingest.detection_notify import announce
from ingest.detection_profiles import ProfileLoader
from ingest.directory import DeviceDirectory
from protocol.decode import Limits
from protocol.topics import parse_topic
from storage import alerts as alert_store
from storage.writer import Batch, write_batch

log = logging.getLogger("eldercare.worker")
T = TypeVar("T")
PROFILE_LOOKBACK = timedelta(minutes=5)


@dataclass
class Delivery:
    partition: int
    tag: int
    redelivered: bool
    messages: list[Inbound]


@dataclass
class WorkerStats:
    messages: int = 0
    readings: int = 0
    duplicates: int = 0
    alerts: int = 0
    takeovers: int = 0
    replayed: int = 0
    amqp_sessions: int = 0
    errors: int = 0
    sessions_lost: int = 0
    slowest_takeover_ms: int = 0  # the first ones compile the rule kernels
    last_takeover_ms: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class Worker:
    def __init__(
        self,
        settings: Settings,
        database_url: str,
        *,
        home: list[int],
        standby: list[int],
        name: str,
        trace: Path | None = None,
    ) -> None:
        self.settings = settings
        self.database_url = database_url
        self.amqp_url = settings.amqp_url
        self.prefix = settings.partition_prefix
        self.partitions = settings.partitions
        self.home = home
        self.standby = [p for p in standby if p not in home]
        self.name = name
        self.stats = WorkerStats()
        self.limits = Limits(
            max_payload_bytes=settings.max_payload_bytes,
            max_backfill=timedelta(hours=settings.max_backfill_hours),
            max_future=timedelta(seconds=settings.max_future_s),
        )
        self.directory = DeviceDirectory()
        self._trace: IO[str] | None = trace.open("a", buffering=1) if trace else None
        self._inbox: list[Delivery] = []
        self._tags: dict[str, int] = {}
        self._conn: psycopg.Connection | None = None
        self._profiles: ProfileLoader | None = None
        self._rules: PartitionRules | None = None
        self._profile_stamps: set[tuple[int, datetime]] = set()
        self._amqp: pika.BlockingConnection | None = None
        self.live = LiveAnnouncer(settings.live_interval_s)

    # --- lifecycle ------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set; survives RabbitMQ and PostgreSQL going away."""
        self._conn = self._with_db(stop, lambda c: c)
        if self._conn is None:
            return
        self._profiles = ProfileLoader(psycopg.connect(self.database_url))
        self._profiles.preload()
        self._rules = PartitionRules(
            self.partitions,
            self._profiles,
            replay_window=timedelta(seconds=self.settings.worker_replay_window_s),
        )
        delay = 0.5
        try:
            while not stop.is_set():
                try:
                    self._session(stop)
                    delay = 0.5
                except Exception as exc:
                    # Lost RabbitMQ (or a bug, which closes the session the same way):
                    # our unacknowledged messages and our partitions are another
                    # worker's now, and what we hold of them is out of date.
                    if isinstance(exc, pika.exceptions.AMQPError):
                        log.warning("lost RabbitMQ (%r); dropping partitions, reconnecting", exc)
                    else:
                        log.exception("worker session failed; dropping partitions, reconnecting")
                    self.stats.sessions_lost += 1
                    self._rules.drop_all()
                    self._inbox.clear()
                    stop.wait(delay)
                    delay = min(delay * 2, 10.0)
        finally:
            if self._trace is not None:
                self._trace.close()
            if self._profiles is not None:
                self._profiles.conn.close()
            if self._conn is not None:
                self._conn.close()

    def _session(self, stop: threading.Event) -> None:
        amqp = self._amqp = topology.connect(self.amqp_url, name=f"eldercare-worker {self.name}")
        try:
            channel = amqp.channel()
            channel.basic_qos(prefetch_count=self.settings.worker_prefetch)
            topology.declare(
                channel, self.prefix, self.partitions, self.settings.partition_queue_type
            )
            self.stats.amqp_sessions += 1
            for n in self.home:
                self._consume(channel, n)
            standby = self._standby_plan(time.monotonic())
            last_tick = last_snapshot = time.monotonic()
            log.info("worker %s consuming home partitions %s", self.name, self.home)
            while not stop.is_set():
                amqp.process_data_events(time_limit=self.settings.worker_linger_s)
                now_m = time.monotonic()
                while standby and now_m >= standby[0][0]:
                    self._consume(channel, standby.pop(0)[1])
                if channel.is_closed:  # closed by the broker: our consumers are gone
                    raise pika.exceptions.ChannelClosed(0, "channel closed by RabbitMQ")
                if self._inbox:
                    done = self._handle(stop)
                    if done is None:
                        return  # stopping while the database is away: nothing acked
                    # Only what was handled: more may have arrived while the database
                    # was retried (heartbeats are served meanwhile).
                    channel.basic_ack(delivery_tag=done, multiple=True)
                self._with_db(stop, self.live.flush_if_due)
                if now_m - last_tick >= self.settings.detection_tick_s:
                    self._with_db(stop, self._tick)
                    last_tick = now_m
                if now_m - last_snapshot >= self.settings.detection_snapshot_s:
                    self._with_db(stop, self._save)
                    last_snapshot = now_m
            # A graceful stop: the next owner restores exactly where we are.
            if self._conn is not None and not self._conn.closed:
                try:
                    self._save(self._conn)
                except psycopg.Error:
                    log.exception("could not save the rules' state at stop")
        finally:
            with contextlib.suppress(Exception):
                amqp.close()
            self._amqp = None

    def _standby_plan(self, now: float) -> list[tuple[float, int]]:
        """When to stand by for each other partition: after the delay, at a random
        moment within it again.  RabbitMQ hands a queue to its longest-waiting consumer,
        so a dead worker's partitions go to different survivors, not all to one."""
        delay = self.settings.worker_standby_delay_s
        rng = random.Random()
        return sorted((now + delay * (1 + rng.random()), n) for n in self.standby)

    def _consume(self, channel: Any, n: int) -> None:
        tag = f"{self.name}.p{n}"
        self._tags[tag] = n
        channel.basic_consume(queue_name(self.prefix, n), self._on_delivery, consumer_tag=tag)

    def _on_delivery(self, channel: Any, method: Any, properties: Any, body: bytes) -> None:
        self._inbox.append(
            Delivery(
                self._tags[method.consumer_tag],
                method.delivery_tag,
                method.redelivered,
                unpack(body),
            )
        )

    # --- one loop's deliveries --------------------------------------------------

    def _handle(self, stop: threading.Event) -> int | None:
        """Store and judge what was delivered; the highest delivery tag handled, or None
        when stopping before it was stored."""
        deliveries, self._inbox = self._inbox, []
        groups: dict[int, list[Delivery]] = {}
        for d in deliveries:
            groups.setdefault(d.partition, []).append(d)
        assembled = self._with_db(stop, lambda c: self._store(c, groups))
        if assembled is None:
            return None
        for a in assembled.values():
            self.live.add(a.live)
        try:
            self._with_db(stop, lambda c: self._judge(c, groups, assembled), retry=False)
        except Exception:  # never let one bad batch end the worker (the rows are stored)
            self.stats.errors += 1
            log.exception("detection of a batch failed")
            if self._conn is not None and not self._conn.closed:
                self._conn.rollback()
        self.stats.messages += sum(len(d.messages) for d in deliveries)
        return max(d.tag for d in deliveries)

    def _store(
        self, conn: psycopg.Connection, groups: dict[int, list[Delivery]]
    ) -> dict[int, Assembled]:
        assert self._rules is not None
        now = datetime.now(UTC)
        taken = []
        for n in groups:
            if n not in self._rules.held:
                began = time.perf_counter()
                taken.extend(self._rules.take(conn, n, now))
                took = int((time.perf_counter() - began) * 1000)
                self.stats.slowest_takeover_ms = max(self.stats.slowest_takeover_ms, took)
                self.stats.last_takeover_ms = took
                self.stats.takeovers += 1
                self.stats.replayed += self._rules.held[n].replayed
        self._record(conn, taken, now)
        now_m = time.monotonic()
        self.directory.refresh_if_due(conn, now_m)
        messages = [m for ds in groups.values() for d in ds for m in d.messages]
        ids = [p[0] for m in messages if (p := parse_topic(m.topic)) is not None]
        self.directory.resolve(conn, ids, now_m)
        conn.commit()
        raw = self.settings.quarantine_raw_bytes
        out = {
            n: assemble(
                [m for d in ds for m in d.messages], self.directory.lookup, self.limits, raw
            )
            for n, ds in groups.items()
        }
        try:
            result = write_batch(conn, _merged([a.batch for a in out.values()]))
            self.stats.duplicates += result.duplicates
        except psycopg.OperationalError:
            raise
        except psycopg.Error:
            log.exception("batch refused by the database; writing message by message")
            conn.rollback()
            out = {
                n: self._write_each(conn, [m for d in ds for m in d.messages])
                for n, ds in groups.items()
            }
        return out

    def _write_each(self, conn: psycopg.Connection, messages: list[Inbound]) -> Assembled:
        raw = self.settings.quarantine_raw_bytes
        merged = assemble([], self.directory.lookup, self.limits, raw)
        for m in messages:
            one = assemble([m], self.directory.lookup, self.limits, raw)
            try:
                write_batch(conn, one.batch)
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                conn.rollback()
                one = reject_by_database(m, str(exc), raw)
                write_batch(conn, one.batch)
            merged.readings.extend(one.readings)
            merged.live.update(one.live)
        return merged

    def _judge(
        self, conn: psycopg.Connection, groups: dict[int, list[Delivery]], out: dict[int, Assembled]
    ) -> None:
        assert self._rules is not None
        now = datetime.now(UTC)
        findings = []
        for n, ds in groups.items():
            redelivered = any(d.redelivered for d in ds)
            found, fed = self._rules.feed(n, out[n].readings, now, redelivered=redelivered)
            findings.extend(found)
            self.stats.readings += len(fed)
            if not redelivered:
                self._rules.settled(n)
            if self._trace is not None and fed:
                rows = [[r.device_id, getattr(r, "seq", None)] for _, r in fed]
                self._trace.write(
                    json.dumps({"t": time.time_ns(), "w": self.name, "p": n, "r": rows}) + "\n"
                )
        self._record(conn, findings, now)

    def _record(self, conn: psycopg.Connection, findings: list, now: datetime) -> None:
        if not findings:
            return
        changes = alert_store.record_findings(conn, findings, now)
        announce(conn, [c.alert for c in changes if c.notify])
        conn.commit()
        self.stats.alerts += len(changes)

    def _tick(self, conn: psycopg.Connection) -> None:
        assert self._rules is not None
        self._reload_changed_profiles(conn)
        now = datetime.now(UTC)
        self._record(conn, self._rules.tick(now), now)

    def _save(self, conn: psycopg.Connection) -> None:
        assert self._rules is not None
        self._rules.save(conn)

    def _reload_changed_profiles(self, conn: psycopg.Connection) -> None:
        """Edited thresholds or homes (as ``ingest.detection_process`` does)."""
        assert self._rules is not None and self._profiles is not None
        rows = conn.execute(
            "SELECT elder_id, updated_at FROM elder_settings WHERE updated_at > now() - %s"
            " UNION ALL SELECT id, updated_at FROM elders WHERE updated_at > now() - %s",
            (PROFILE_LOOKBACK, PROFILE_LOOKBACK),
        ).fetchall()
        conn.commit()
        for elder_id, stamp in rows:
            if (elder_id, stamp) in self._profile_stamps:
                continue
            self._profile_stamps.add((elder_id, stamp))
            self._profiles.forget(elder_id)
            self._rules.reconfigure(elder_id)
        if len(self._profile_stamps) > 10_000:
            self._profile_stamps &= set(rows)

    # --- the database -----------------------------------------------------------

    def _with_db(
        self,
        stop: threading.Event,
        work: Callable[[psycopg.Connection], T],
        *,
        retry: bool = True,
    ) -> T | None:
        """Run ``work``, reconnecting with backoff while PostgreSQL is away (serving
        RabbitMQ's heartbeats meanwhile).  None when stopping, or on failure when not
        ``retry`` (the findings of a batch whose rules already moved on)."""
        delay = 0.2
        while not stop.is_set():
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(self.database_url, connect_timeout=5)
                profiles = self._profiles
                if profiles is not None and (profiles.conn.closed or profiles.conn.broken):
                    profiles.conn = psycopg.connect(self.database_url, connect_timeout=5)
                return work(self._conn)
            except psycopg.OperationalError as exc:
                log.warning("database unavailable (%s); retrying in %.1f s", exc, delay)
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                if not retry:
                    return None
                if self._amqp is not None:
                    self._amqp.sleep(delay)
                else:
                    stop.wait(delay)
                delay = min(delay * 2, 5.0)
        return None


def _merged(batches: list[Batch]) -> Batch:
    if len(batches) == 1:
        return batches[0]
    out = Batch()
    for b in batches:
        for table, rows in b.rows.items():
            out.rows[table].extend(rows)
        out.quarantine.extend(b.quarantine)
        out.latest.positions.extend(b.latest.positions)
        out.latest.vitals.extend(b.latest.vitals)
        out.latest.events.extend(b.latest.events)
        out.latest.statuses.extend(b.latest.statuses)
    return out
