"""The detection process: committed readings in, alerts in the database and NOTIFY out.

Runs in its own OS process (started and watched by :class:`ingest.detection.
DetectionWorker`), so the rules use the second core instead of competing for the
ingest's GIL with paho's network loop and the COPY writer.  It reads frames of
readings from a pipe (:mod:`ingest.detection_wire`), feeds them to the pure
:class:`~alerts.engine.DetectionEngine` in micro-batches, records the findings as
alerts (``storage.alerts``, atomic per elder and kind) and announces each change with
``pg_notify`` in the same transaction (:mod:`ingest.detection_notify`): every API
process hears it at the commit and pushes it to its dashboards.  Every ``tick_s`` it
moves the engine's clock on (silence-based rules) and picks up edited profiles; every
``snapshot_s`` it saves the rules' state (:mod:`ingest.detection_snapshots`).

Progress is reported through shared counters (:class:`Counters`) rather than
messages back, so neither side can ever block on the other's pipe.  The process ends
when the ingest sends an empty frame (after a last save), or when the pipe closes
because the ingest died; it ignores Ctrl-C (the terminal's SIGINT reaches the whole
process group; the ingest decides when detection stops).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import signal
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from typing import Any, Literal

import psycopg

from alerts.engine import DetectionEngine, settle_heap
from eldercare import logs
from ingest.detection_notify import announce
from ingest.detection_profiles import ProfileLoader
from ingest.detection_snapshots import SnapshotStore
from ingest.detection_wire import Item, decode_batch
from storage import alerts as alert_store

log = logging.getLogger("eldercare.detection")
PROFILE_LOOKBACK = timedelta(minutes=5)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s[detection]: %(message)s"
RESTORE_SLICE = 50  # saved states restored per loop while frames are handled
SEQ = struct.Struct("<q")  # each frame starts with its sequence number
STOP = b""  # the frame that asks the process to save and end


class Counters:
    """Indices into the shared array of 64-bit counters (written by the process only)."""

    ACKED = 0  # the highest frame sequence number whose findings are committed
    READINGS = 1  # readings fed to the rules
    ALERTS = 2  # alert changes recorded
    ERRORS = 3  # batches that failed
    READY = 4  # 1 once state is restored and frames are being read
    SNAPSHOT_US = 5  # duration of the last snapshot save, microseconds
    SNAPSHOT_ROWS = 6  # rows written by the last snapshot save
    RESTORED = 7  # 1 once every saved state is restored (silence-based rules run)
    SIZE = 8


@dataclass(frozen=True)
class Options:
    tick_s: float = 5.0
    snapshot_s: float = 60.0
    batch_max: int = 5000
    linger_s: float = 0.05
    log_level: int = logging.WARNING
    log_format: Literal["text", "json"] = "text"  # as the parent's (eldercare.logs)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _ParentGone(Exception):
    pass


def main(database_url: str, link: Connection, counters: Any, options: Options) -> None:
    """The process's entry point (``multiprocessing`` spawn target)."""
    logs.configure(options.log_format, options.log_level, LOG_FORMAT)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    loop = DetectionLoop(database_url, link, counters, options)
    signal.signal(signal.SIGTERM, lambda *_: loop.request_stop())
    loop.run()


class DetectionLoop:
    def __init__(
        self,
        database_url: str,
        link: Connection,
        counters: Any,
        options: Options,
        *,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.database_url = database_url
        self.link = link
        self.counters = counters
        self.options = options
        self.clock = clock
        self._stopping = False
        self._conn: psycopg.Connection | None = None
        self._profiles: ProfileLoader | None = None
        self._engine: DetectionEngine | None = None
        self._snapshots = SnapshotStore()
        self._profile_stamps: set[tuple[int, datetime]] = set()
        self._streaming = False
        self._pending: dict[int, bytes] = {}  # elder id -> saved state not yet restored
        self._resumed = False

    def request_stop(self) -> None:
        self._stopping = True

    # --- lifecycle ------------------------------------------------------------

    def run(self) -> None:
        self._connect()
        if self._conn is None:  # asked to stop before the database came back
            return
        self._start_engine()
        self.counters[Counters.READY] = 1
        try:
            self._loop()
        finally:
            self._final_save()

    def _start_engine(self) -> None:
        """Profiles in one query, saved states fetched but not yet restored.

        Restoring a thousand elders' rules takes a second or more, too long to keep a
        restarted process from its first frame (an SOS, perhaps).  So states are
        restored lazily: an elder's before its first readings, the rest a slice per
        loop; silence-based rules are ticked only once every state is back (and then
        the restart grace of ``resume`` starts for all).
        """
        assert self._conn is not None
        self._profiles = ProfileLoader(psycopg.connect(self.database_url))
        loaded = self._profiles.preload()
        self._engine = DetectionEngine(
            profile_for=self._profiles,
            on_rule_error=lambda e, k, exc: log.error("rule %s failed for elder %s: %r", k, e, exc),
        )
        self._pending = self._snapshots.load_raw(self._conn)
        log.info(
            "detection started: %d profiles, state of %d elders to restore, %.2f s CPU",
            loaded,
            len(self._pending),
            time.process_time(),
        )
        self._restore(())

    def _restore(self, elder_ids: Iterable[int], more: int = 0) -> None:
        """Restore the saved state of ``elder_ids`` and of ``more`` other elders."""
        assert self._engine is not None
        pending, decode = self._pending, self._snapshots.decode
        chunk = {e: decode(pending.pop(e)) for e in elder_ids if e in pending}
        for e in itertools.islice(list(pending), more):
            chunk[e] = decode(pending.pop(e))
        if chunk:
            self._engine.restore(chunk)
        if not pending and not self._resumed:
            # Devices were not heard while we were down: give silence-based rules grace.
            self._engine.resume(self.clock())
            self._resumed = True
            self.counters[Counters.RESTORED] = 1
            settle_heap()  # the restored detectors live for the process's life
            log.info("detection state restored (%.2f s CPU)", time.process_time())

    def _loop(self) -> None:
        assert self._engine is not None
        last_tick = last_snapshot = time.monotonic()
        while not self._stopping:
            try:
                items, last_seq = self._receive(0.0 if self._pending else 0.05)
            except _ParentGone:
                return
            try:
                if items:
                    if self._pending:
                        self._restore({e for e, _ in items if e is not None})
                    self._handle(self._engine.process(items, self.clock()))
                    self.counters[Counters.READINGS] += len(items)
                if self._pending:
                    self._restore((), RESTORE_SLICE)
                now_m = time.monotonic()
                if self._resumed and now_m - last_tick >= self.options.tick_s:
                    self._reload_changed_profiles()
                    self._handle(self._engine.tick(self.clock()))
                    last_tick = now_m
                if now_m - last_snapshot >= self.options.snapshot_s:
                    self._save_snapshots()
                    last_snapshot = now_m
            except psycopg.OperationalError:
                # The findings of this batch are lost to the database for now; the
                # rules' state still holds the open episodes, whose reminders will
                # record them once the database is back.
                self.counters[Counters.ERRORS] += 1
                log.exception("database unavailable for detection; reconnecting")
                self._connect()
            except Exception:  # never let one bad batch end detection
                self.counters[Counters.ERRORS] += 1
                log.exception("detection batch failed")
                self._connect()
            if last_seq:
                self.counters[Counters.ACKED] = last_seq

    def _final_save(self) -> None:
        log.info(
            "detection stopping: %d readings, %.2f s CPU",
            self.counters[Counters.READINGS],
            time.process_time(),
        )
        if self._conn is None or self._conn.closed or self._engine is None:
            return
        try:
            self._save_snapshots()
        except psycopg.Error:
            log.exception("could not save detector state at stop")
        self._conn.close()
        if self._profiles is not None:
            self._profiles.conn.close()

    # --- frames in ------------------------------------------------------------

    def _receive(self, wait: float) -> tuple[list[Item], int]:
        """The readings of the frames waiting, and the last one's seq.

        The core pays per batch, so everything already queued is taken at once, and
        while readings stream in (the previous call found some too) it lingers up to
        ``linger_s`` for more.  A reading after a quiet spell (an SOS at night) is
        handled at once.
        """
        streaming, self._streaming = self._streaming, False
        if not self._poll(wait):
            return [], 0
        items, last_seq = self._read()
        deadline = time.monotonic() + (self.options.linger_s if streaming else 0.0)
        while len(items) < self.options.batch_max and not self._stopping:
            if not self._poll(max(0.0, deadline - time.monotonic())):
                break
            more, seq = self._read()
            items.extend(more)
            last_seq = seq or last_seq
        self._streaming = bool(items)
        return items, last_seq

    def _poll(self, timeout: float) -> bool:
        try:
            return self.link.poll(timeout)
        except (EOFError, OSError):
            raise _ParentGone from None

    def _read(self) -> tuple[list[Item], int]:
        try:
            frame = self.link.recv_bytes()
        except (EOFError, OSError):
            raise _ParentGone from None
        if frame == STOP:
            self._stopping = True
            return [], 0
        (seq,) = SEQ.unpack_from(frame)
        return decode_batch(frame[SEQ.size :]), seq

    # --- alerts out -------------------------------------------------------------

    def _handle(self, findings: list[tuple[int, Any]]) -> None:
        if not findings:
            return
        assert self._conn is not None
        changes = alert_store.record_findings(self._conn, findings, self.clock())
        # A plain repeat only bumps a counter: the episode is already on screen.
        announce(self._conn, [c.alert for c in changes if c.notify])
        self._conn.commit()  # the notifications go out now, with the alerts readable
        self.counters[Counters.ALERTS] += len(changes)

    # --- the database -----------------------------------------------------------

    def _connect(self) -> None:
        if self._conn is not None and not self._conn.closed:
            self._conn.close()
        self._conn = None
        delay = 0.5
        while not self._stopping:
            try:
                self._conn = psycopg.connect(self.database_url, connect_timeout=5)
                # The profile loader's own connection died with the server too; left
                # as it was, every elder not built yet would fail its batch forever.
                if self._profiles is not None:
                    with contextlib.suppress(psycopg.Error):
                        self._profiles.conn.close()
                    self._profiles.conn = psycopg.connect(self.database_url, connect_timeout=5)
                return
            except psycopg.OperationalError:
                log.warning("database unavailable for detection; retrying in %.1f s", delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def _reload_changed_profiles(self) -> None:
        """Thresholds or a home address edited (by any API node): rebuild those elders'
        rules, keeping their state.  Polled, so it needs no channel between processes.

        An edit is stamped by the writer's clock before its commit, so a look-back
        window (not just "since the last check") catches edits that commit late.
        """
        assert self._conn is not None and self._engine is not None
        assert self._profiles is not None
        rows = self._conn.execute(
            "SELECT elder_id, updated_at FROM elder_settings WHERE updated_at > now() - %s"
            " UNION ALL SELECT id, updated_at FROM elders WHERE updated_at > now() - %s",
            (PROFILE_LOOKBACK, PROFILE_LOOKBACK),
        ).fetchall()
        self._conn.commit()
        for elder_id, stamp in rows:
            key = (elder_id, stamp)
            if key in self._profile_stamps:
                continue
            self._profile_stamps.add(key)
            self._profiles.forget(elder_id)  # a preloaded profile is out of date
            self._engine.reconfigure(elder_id)
        if len(self._profile_stamps) > 10_000:  # only the look-back window matters
            self._profile_stamps = self._profile_stamps & set(rows)

    def _save_snapshots(self) -> None:
        assert self._conn is not None and self._engine is not None
        started = time.perf_counter()
        rows = self._snapshots.save(self._conn, self._engine.snapshot(only_dirty=True))
        self.counters[Counters.SNAPSHOT_US] = int((time.perf_counter() - started) * 1e6)
        self.counters[Counters.SNAPSHOT_ROWS] = rows
