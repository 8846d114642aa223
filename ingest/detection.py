"""The detection shell: committed readings in, alerts in the database and on the map out.

Runs on its own thread so that a slow rule or a slow alert write never holds up
ingest (DESIGN.md field notes: "a slow notification channel stalling ingest").  The
ingest's writer thread hands over each committed batch's readings; this thread
feeds them to the pure :class:`~alerts.engine.DetectionEngine` in micro-batches,
records the findings as alerts (atomic per elder and kind, in ``storage.alerts``),
commits, and only then tells the live hub.  Every ``tick_s`` it moves the engine's
clock on (silence-based rules); every ``snapshot_s`` it saves the rules' state so
a restart forgets no baseline.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from alerts.engine import DetectionEngine
from alerts.ruleset import ElderProfile
from protocol.messages import Reading
from storage import alerts as alert_store

log = logging.getLogger("eldercare.detection")
Clock = Callable[[], datetime]
OnAlert = Callable[[dict[str, Any]], None]
PROFILE_LOOKBACK = timedelta(minutes=5)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ProfileLoader:
    """Builds :class:`ElderProfile` objects from the database (home, outline, thresholds)."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn
        self._outline: tuple[tuple[float, float], ...] | None = None
        self._outline_loaded = False

    def outline(self) -> tuple[tuple[float, float], ...] | None:
        if not self._outline_loaded:
            row = self.conn.execute(
                "SELECT geojson FROM communities ORDER BY id LIMIT 1"
            ).fetchone()
            self._outline = _outline_of(row[0]) if row else None
            self._outline_loaded = True
        return self._outline

    def __call__(self, elder_id: int) -> ElderProfile:
        row = self.conn.execute(
            "SELECT e.home_lat, e.home_lon,"
            " (SELECT max(report_interval_s) FROM devices d WHERE d.elder_id = e.id),"
            " (SELECT thresholds FROM elder_settings s WHERE s.elder_id = e.id)"
            " FROM elders e WHERE e.id = %s",
            (elder_id,),
        ).fetchone()
        self.conn.commit()
        if row is None:
            return ElderProfile(elder_id)
        lat, lon, interval, thresholds = row
        return ElderProfile(
            elder_id,
            home=(lat, lon) if lat is not None and lon is not None else None,
            community_outline=self.outline(),
            report_interval_s=interval or 60,
            thresholds=thresholds or {},
        )


def _outline_of(geojson: dict[str, Any]) -> tuple[tuple[float, float], ...] | None:
    for f in geojson.get("features", []):
        if f.get("properties", {}).get("kind") == "outline" and f["geometry"]["type"] == "Polygon":
            return tuple((float(x), float(y)) for x, y in f["geometry"]["coordinates"][0])
    return None


class DetectionWorker:
    def __init__(
        self,
        database_url: str,
        *,
        on_alert: OnAlert | None = None,
        tick_s: float = 5.0,
        snapshot_s: float = 60.0,
        batch_max: int = 5000,
        linger_s: float = 0.05,
        clock: Clock = _utcnow,
        engine: DetectionEngine | None = None,
    ) -> None:
        self.database_url = database_url
        self.on_alert = on_alert
        self.tick_s = tick_s
        self.snapshot_s = snapshot_s
        self.batch_max = batch_max
        self.linger_s = linger_s
        self.clock = clock
        self._engine = engine
        self._queue: queue.SimpleQueue[list[tuple[int | None, Reading]]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection | None = None
        self.alerts_recorded = 0
        self.errors = 0
        self._profile_stamps: set[tuple[int, datetime]] = set()
        self.started_at = clock()

    @property
    def engine(self) -> DetectionEngine:
        assert self._engine is not None, "start() first"
        return self._engine

    # --- producer side: the ingest writer thread -------------------------------

    def submit(self, readings: list[tuple[int | None, Reading]]) -> None:
        if readings:
            self._queue.put(readings)

    # --- lifecycle -------------------------------------------------------------

    def start(self) -> None:
        self._conn = psycopg.connect(self.database_url)
        if self._engine is None:
            self._engine = DetectionEngine(
                profile_for=ProfileLoader(psycopg.connect(self.database_url, autocommit=False)),
                on_rule_error=lambda e, k, exc: log.error(
                    "rule %s failed for elder %s: %r", k, e, exc
                ),
            )
        self._restore()
        self._thread = threading.Thread(target=self._run, name="detection", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
        if self._conn is not None and not self._conn.closed:
            try:
                self._save_snapshots(only_dirty=True)
            except psycopg.Error:
                log.exception("could not save detector state at stop")
            self._conn.close()

    # --- the detection thread ----------------------------------------------------

    def _run(self) -> None:
        last_tick = last_snapshot = time.monotonic()
        while not self._stop.is_set():
            batch = self._drain()
            try:
                if batch:
                    self._handle(self.engine.process(batch, self.clock()))
                now_m = time.monotonic()
                if now_m - last_tick >= self.tick_s:
                    self._reload_changed_profiles()
                    self._handle(self.engine.tick(self.clock()))
                    last_tick = now_m
                if now_m - last_snapshot >= self.snapshot_s:
                    self._save_snapshots(only_dirty=True)
                    last_snapshot = now_m
            except psycopg.OperationalError:
                # The findings of this batch are lost to the database for now; the
                # rules' state still holds the open episodes, whose reminders will
                # record them once the database is back.
                self.errors += 1
                log.exception("database unavailable for detection; reconnecting")
                self._reconnect()
            except Exception:  # never let one bad batch end detection
                self.errors += 1
                log.exception("detection batch failed")
                self._reconnect()

    def _reload_changed_profiles(self) -> None:
        """Thresholds or a home address edited (by any API node): rebuild those elders'
        rules, keeping their state.  Polled, so it needs no channel between processes.

        An edit is stamped by the writer's clock before its commit, so a look-back
        window (not just "since the last check") catches edits that commit late.
        """
        assert self._conn is not None
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
            if elder_id in self.engine.detectors:
                self.engine.reconfigure(elder_id)
                self.engine.detectors[elder_id].dirty = True  # save the rebuilt state too
        if len(self._profile_stamps) > 10_000:  # only the look-back window matters
            self._profile_stamps = {k for k in self._profile_stamps if k in set(rows)}

    def _drain(self) -> list[tuple[int | None, Reading]]:
        try:
            items = list(self._queue.get(timeout=0.05))
        except queue.Empty:
            return []
        # Linger briefly: the core's vectorised path pays per batch, so a few larger
        # batches cost far less than many small ones (an SOS waits at most this long).
        deadline = time.monotonic() + self.linger_s
        while len(items) < self.batch_max:
            remaining = deadline - time.monotonic()
            try:
                items.extend(
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
        return items

    def _handle(self, findings: list[tuple[int, Any]]) -> None:
        if not findings:
            return
        assert self._conn is not None
        changes = alert_store.record_findings(self._conn, findings, self.clock())
        self._conn.commit()
        self.alerts_recorded += len(changes)
        if self.on_alert is not None:
            for change in changes:
                if not change.notify:  # a plain repeat: the episode is already on screen
                    continue
                try:
                    self.on_alert(change.alert)
                except Exception:
                    log.exception("alert listener failed")

    def _reconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
        delay = 0.5
        while not self._stop.is_set():
            try:
                self._conn = psycopg.connect(self.database_url, connect_timeout=5)
                return
            except psycopg.OperationalError:
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)

    # --- state that survives a restart ------------------------------------------

    def _restore(self) -> None:
        assert self._conn is not None
        rows = self._conn.execute("SELECT elder_id, state FROM detector_state").fetchall()
        self._conn.commit()
        self.engine.restore({elder_id: state for elder_id, state in rows})
        # Devices were not heard while we were down: give silence-based rules grace.
        self.engine.resume(self.clock())
        log.info("restored detection state of %d elders", len(rows))

    def _save_snapshots(self, *, only_dirty: bool) -> None:
        assert self._conn is not None
        states = self.engine.snapshot(only_dirty=only_dirty)
        if not states:
            return
        with self._conn.cursor() as cur:
            cur.executemany(
                # an elder deleted meanwhile has nothing left to remember
                "INSERT INTO detector_state (elder_id, state, saved_at)"
                " SELECT %s, %s, now() WHERE EXISTS (SELECT 1 FROM elders WHERE id = %s)"
                " ON CONFLICT (elder_id) DO UPDATE SET state = excluded.state,"
                " saved_at = excluded.saved_at",
                [(e, Jsonb(s), e) for e, s in states.items()],
            )
        self._conn.commit()
