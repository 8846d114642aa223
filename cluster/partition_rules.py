"""The rules of the partitions a worker holds: one detection engine per partition.

Taking a partition over (its first delivery to this worker) restores the saved
state of its elders and replays what was stored after that state (the readings the
previous owner judged after its last snapshot), so baselines, windows and open
episodes carry on.  Findings the replay repeats land on the same open alert (the
database keeps one open episode per elder and kind).  Messages RabbitMQ hands over
unacknowledged from the dead owner may hold readings already replayed: their
readings at or before the elder's high mark are not fed twice.

One engine per partition so that a partition's state can be dropped whole when this
worker loses it (its connection to RabbitMQ broke: another worker has it now).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import psycopg

from alerts.core import Finding
from alerts.engine import DetectionEngine
from cluster.partitioning import partition_of
from cluster.replay import Item, stored_since
from ingest.detection_profiles import ProfileLoader
from ingest.detection_snapshots import SnapshotStore

log = logging.getLogger("eldercare.worker")


@dataclass
class Held:
    """One partition this worker holds."""

    engine: DetectionEngine
    devices: list[str]
    high: dict[int, datetime] = field(default_factory=dict)  # elder -> newest judged at takeover
    replayed: int = 0


class PartitionRules:
    def __init__(
        self,
        partitions: int,
        profiles: ProfileLoader,
        *,
        replay_window: timedelta,
        on_rule_error: Callable[[int, str, Exception], None] | None = None,
    ) -> None:
        self.partitions = partitions
        self.profiles = profiles
        self.replay_window = replay_window
        self.on_rule_error = on_rule_error or (
            lambda e, k, exc: log.error("rule %s failed for elder %s: %r", k, e, exc)
        )
        self.held: dict[int, Held] = {}
        self.snapshots = SnapshotStore()

    def take(self, conn: psycopg.Connection, n: int, now: datetime) -> list[tuple[int, Finding]]:
        """Restore partition ``n``'s saved state and replay what came after; the
        replay's findings (to record) are returned."""
        devices = [
            (d, e)
            for d, e in conn.execute("SELECT id, elder_id FROM devices").fetchall()
            if partition_of(d, self.partitions) == n
        ]
        elders = sorted({e for _, e in devices if e is not None})
        rows = conn.execute(
            "SELECT elder_id, state::text FROM detector_state WHERE elder_id = ANY(%s)",
            (elders,),
        ).fetchall()
        conn.commit()
        states = {e: self.snapshots.decode(text.encode()) for e, text in rows}
        engine = DetectionEngine(profile_for=self.profiles, on_rule_error=self.on_rule_error)
        engine.restore(states)
        floor = now - self.replay_window
        marks = {
            e: datetime.fromisoformat(s["watermark"])
            for e, s in states.items()
            if s.get("watermark")
        }
        # From the oldest saved watermark (an elder never saved: the whole window).
        since = max(min(marks.values()), floor) if marks and len(marks) == len(elders) else floor
        try:
            stored = stored_since(conn, [d for d, _ in devices], since)
        except psycopg.OperationalError:
            raise
        except Exception:  # the saved state alone is still far better than nothing
            log.exception("replay of partition %d failed; carrying on from its snapshot", n)
            conn.rollback()
            stored = []
        items = [
            (e, r)
            for e, r in stored
            if e not in marks or r.ts > marks[e]  # judged already, before the snapshot
        ]
        findings = engine.process(items, now) if items else []
        engine.resume(now)  # silence-based rules: devices may not have been heard meanwhile
        held = Held(engine, [d for d, _ in devices], replayed=len(items))
        held.high = dict(marks)
        for e, r in items:
            if e is not None and (e not in held.high or held.high[e] < r.ts):
                held.high[e] = r.ts
        self.held[n] = held
        log.info(
            "took partition %d: %d elders, %d states restored, %d readings replayed",
            n,
            len(elders),
            len(states),
            len(items),
        )
        return findings

    def feed(
        self, n: int, items: list[Item], now: datetime, *, redelivered: bool
    ) -> tuple[list[tuple[int, Finding]], list[Item]]:
        """Feed one partition's readings; return the findings and what was fed."""
        held = self.held[n]
        if redelivered and held.high:
            high = held.high
            items = [(e, r) for e, r in items if e is None or e not in high or r.ts > high[e]]
        if not items:
            return [], items
        return held.engine.process(items, now), items

    def settled(self, n: int) -> None:
        """The handed-over backlog is done: later readings are all new."""
        self.held[n].high.clear()

    def tick(self, now: datetime) -> list[tuple[int, Finding]]:
        out: list[tuple[int, Finding]] = []
        for held in self.held.values():
            out.extend(held.engine.tick(now))
        return out

    def reconfigure(self, elder_id: int) -> None:
        for held in self.held.values():
            held.engine.reconfigure(elder_id)  # a no-op where the elder is not held

    def save(self, conn: psycopg.Connection) -> int:
        states: dict[int, dict[str, Any]] = {}
        for held in self.held.values():
            states.update(held.engine.snapshot(only_dirty=True))
        return self.snapshots.save(conn, states)

    def drop_all(self) -> None:
        """Our connection to RabbitMQ broke: other workers hold our partitions now."""
        self.held.clear()
        self.snapshots = SnapshotStore()
