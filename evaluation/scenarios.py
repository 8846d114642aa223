"""The detection core on the simulator's injected incidents: recall, precision, delay,
false alerts per elder-day.

``run(seed)`` builds a roster (``simulator.community.build_roster``), injects every
scenario kind ``incidents`` times (``simulator.scenarios.schedule``: falls, SOS,
tachycardia, hypoxia, fever, night wandering, inactivity, device offline, not worn,
low battery), and replays the whole community's device traffic
(``simulator.stream.generate``, ordinary-day nuisances included: brisk walks with a
high pulse, knocks that trip the watch's fall detector and are cancelled, cell-tower
fixes hundreds of metres off, the watch off the wrist on its charger in the evening)
through the production detection core, in simulated time.  Each elder's profile is
what enrolment records: home, the community outline, the device's reporting interval,
and a COPD diagnosis (NEWS2 SpO2 scale 2) where the elder has one.


1. each message is decoded as ingest does (``protocol.decode``) with ``received_at``
   = its send time, under generous limits so that simulated buffered uploads are
   not quarantined (rejects are counted and reported; there should be none);
2. readings are grouped into micro-batches of ``BATCH_S`` simulated seconds and fed
   to one ``alerts.engine.DetectionEngine`` per shard with ``now`` = the end of the
   batch, the moment the batch would be processed -- so the engine's lateness policy
   applies as live (a finding revealed by a buffered upload more than 15 min old is
   dropped as stale, except SOS and falls); ``engine.tick(now)`` runs every
   ``TICK_S`` simulated seconds so that silence-based rules get their say;
3. findings become alerts as the alert lifecycle (``alerts.lifecycle``,
   ``storage.alerts.record_findings``) makes them: an alert opens at the first RAISE
   of an (elder, kind) with no open alert of that kind; later RAISEs merge into it; a
   CLEAR closes it (a ``fall`` CLEAR is the elder's "I'm OK": *withdrawn*); a RAISE
   within the kind's cooldown after a close is counted on the closed alert, not opened
   (``lifecycle.suppressed``, default ``Policy``); ``detail["episode"] == "note"``
   findings (``fall_dismissed``) are audit notes, never alerts.  Nobody acknowledges
   or resolves anything by hand, so only a CLEAR ends an alert here;
4. each ground-truth record (elder, kind, start, end) is matched to alerts of the
   kinds that stand for it (``ALERT_KINDS``) opened for that elder within
   ``[start - lead, end + grace]`` (``WINDOWS``, per kind, below).  It is *detected*
   when at least one opened there; its delay is the first such alert's opening
   (simulated processing time) minus the truth's start.  Every alert matched to some
   truth record is a true alert; every other alert is a *false alert* -- except a
   withdrawn fall, which the elder called off within a minute and which is counted
   apart (``withdrawn``).  Precision of a truth kind = its true alerts / (its true
   alerts + false alerts of the kinds that stand for it).

Windows, and why (lead before ``start``, grace after ``end``):

- sos, fall: 1 min before (device clocks send whole seconds), 10 min after the end (a
  fall's end is when the elder gets up; the alarm must come long before that);
- tachycardia, hypoxia, fever: 1 min before, 15 min after: NEWS2 rules (and the
  ``fever`` rule, which wants 38 °C held for 30 min) want the value sustained for
  minutes, and the last minutes of an episode still count;
- night_wandering (→ ``geofence_exit``): 1 min, 15 min: the exit is confirmed on
  fixes well outside the community, the walk back takes time;
- inactivity: 1 min, 15 min: the rule needs 4 daytime hours without movement, about
  the scenario's own length;
- device_offline: 1 min, 15 min: silence is only noticed after 15 min;
- not_worn: 1 min, 15 min;
- low_battery: **6 h** before: the truth record starts at the device's own 10 %
  event, while the rule warns at 15 % -- at the simulated 1.2-1.6 %/h drain that is
  3-5 h earlier, so the delay of a low-battery detection is negative.

Per elder-day = elders x simulated days.  The report lists every incident with the
alerts matched to it (``events``), every missed one with a one-line reason
(``why_missed``), and every false alert with the incidents injected near it, so that
a person can look into each.  Elders are replayed in shards of ``SHARD_SIZE`` (one
elder's state on one worker, as in production) over ``workers`` processes; a
device's stream is the same in any shard, so the result depends on neither.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final

from rich.console import Group, RenderableType
from rich.table import Table

from alerts.core import Action, Finding
from alerts.engine import DetectionEngine
from alerts.lifecycle import WITHDRAWABLE, Policy, Resolved, raised, suppressed
from alerts.ruleset import ElderProfile
from protocol.decode import Limits, decode
from protocol.messages import Reading
from protocol.topics import parse_topic
from simulator.clock import to_datetime
from simulator.community import SimElder, build_roster, outline_lonlat
from simulator.scenarios import SCENARIOS, Scenario, schedule
from simulator.stream import Message, chunk_ms, generate

# 2026-11-28 00:00 local (UTC+8): runs start at a local midnight, so "day" means a day.
START: Final = datetime(2026, 11, 27, 16, 0, tzinfo=UTC)
LOCAL: Final = timezone(timedelta(hours=8))
DAY: Final = timedelta(days=1)
BATCH_S: Final = 5.0  # micro-batch length, simulated seconds
TICK_S: Final = 10.0  # engine.tick period, simulated seconds (a multiple of BATCH_S)
SHARD_SIZE: Final = 100  # elders per replay shard: per-batch engine overhead is per shard
ELDER_DAYS_PER_INCIDENT: Final = 30  # default: each kind injected once per this many elder-days

# Which alert kinds stand for each injected incident (rule kinds in alerts/*.py).
ALERT_KINDS: Final[dict[str, frozenset[str]]] = {
    "fall": frozenset({"fall"}),
    "sos": frozenset({"sos"}),
    "tachycardia": frozenset({"news2_hr", "hr_activity", "news2_partial"}),
    "hypoxia": frozenset({"news2_spo2", "news2_partial"}),
    "fever": frozenset({"news2_temp", "news2_partial", "fever"}),
    "night_wandering": frozenset({"geofence_exit"}),
    "inactivity": frozenset({"inactivity"}),
    "device_offline": frozenset({"device_offline"}),
    "not_worn": frozenset({"not_worn"}),
    "low_battery": frozenset({"low_battery"}),
}


@dataclass(frozen=True, slots=True)
class Window:
    """How far before a truth record's start and after its end an alert may open."""

    lead: timedelta
    grace: timedelta


_M: Final = timedelta(minutes=1)
WINDOWS: Final[dict[str, Window]] = {
    "fall": Window(_M, 10 * _M),
    "sos": Window(_M, 10 * _M),
    "tachycardia": Window(_M, 15 * _M),
    "hypoxia": Window(_M, 15 * _M),
    "fever": Window(_M, 15 * _M),
    "night_wandering": Window(_M, 15 * _M),
    "inactivity": Window(_M, 15 * _M),
    "device_offline": Window(_M, 15 * _M),
    "not_worn": Window(_M, 15 * _M),
    "low_battery": Window(6 * 60 * _M, 15 * _M),
}

# The floors.
RECALL_FLOOR_KINDS: Final = ("sos", "fall", "device_offline", "night_wandering")
DELAY_FLOOR_KINDS: Final = ("sos", "fall")
DELAY_FLOOR_S: Final = 30.0
FALSE_ALERTS_FLOOR: Final = 0.05  # per elder-day
CASES_SHOWN: Final = 50  # rows of missed incidents / false alerts in the table


# --- ground truth and alerts ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Truth:
    """One injected incident: what detection should find, for whom, over which span."""

    elder: str
    device_id: str
    kind: str
    start: datetime
    end: datetime

    @classmethod
    def of(cls, s: Scenario) -> Truth:
        return cls(s.elder.key, s.elder.device_id, s.kind, to_datetime(s.start), to_datetime(s.end))

    def window(self) -> tuple[datetime, datetime]:
        w = WINDOWS[self.kind]
        return self.start - w.lead, self.end + w.grace


@dataclass(slots=True)
class Alert:
    """One alert episode as the lifecycle would hold it (no person ever touches it here)."""

    elder: str
    kind: str
    opened_at: datetime  # simulated processing time of the opening finding
    event_ts: datetime  # event time the opening finding refers to
    severity: str
    message: str
    merged_at: list[datetime] = field(default_factory=list)  # later RAISEs merged into it
    suppressed_at: list[datetime] = field(default_factory=list)  # RAISEs within cooldown
    closed_at: datetime | None = None
    outcome: str | None = None  # "cleared" or "withdrawn"

    @property
    def withdrawn(self) -> bool:
        return self.outcome == "withdrawn"


class AlertBook:
    """Findings → alerts, one open alert per (elder, kind), as ``storage.alerts`` does.

    >>> from alerts.core import Severity
    >>> t = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
    >>> book = AlertBook()
    >>> for s in (0, 30):
    ...     book.apply("e0001", Finding("sos", Severity.CRITICAL, t, "SOS"), t + timedelta(seconds=s))
    >>> [(a.kind, len(a.merged_at)) for a in book.alerts]
    [('sos', 1)]
    """

    def __init__(self, policy: Policy | None = None) -> None:
        self.policy = policy or Policy()
        self.alerts: list[Alert] = []
        self.notes: Counter[str] = Counter()  # audit notes seen, e.g. fall_dismissed
        self._open: dict[tuple[str, str], Alert] = {}
        self._closed: dict[tuple[str, str], Alert] = {}  # the newest closed, for cooldown

    def apply(self, elder: str, f: Finding, now: datetime) -> None:
        if f.detail.get("episode") == "note":  # e.g. fall_dismissed: for the record only
            self.notes[f.kind] += 1
            return
        key = (elder, f.kind)
        current = self._open.get(key)
        if f.action is Action.CLEAR:
            if current is not None:
                current.closed_at = now
                current.outcome = "withdrawn" if f.kind in WITHDRAWABLE else "cleared"
                self._closed[key] = self._open.pop(key)
            return
        if current is not None:
            current.merged_at.append(now)
            current.severity = raised(current.severity, f.severity).value
            return
        last = self._closed.get(key)
        if last is not None and self._suppressed(f, last, now):
            last.suppressed_at.append(now)
            return
        alert = Alert(elder, f.kind, now, f.ts, f.severity.value, f.message)
        self.alerts.append(alert)
        self._open[key] = alert

    def _suppressed(self, f: Finding, last: Alert, now: datetime) -> bool:
        # The same condition flapping back soon after it closed is the same event.
        assert last.closed_at is not None
        return suppressed(
            self.policy, f.kind, f.severity, Resolved(last.severity, last.closed_at), now
        )


# --- matching ----------------------------------------------------------------------


@dataclass(slots=True)
class Matching:
    hits: list[list[Alert]]  # per truth record: the alerts opened in its window, in order
    kinds: list[set[str]]  # per alert: the truth kinds it was matched to (empty: false)

    @property
    def first(self) -> list[Alert | None]:
        """Per truth record: the first alert opened in its window (None: missed)."""
        return [h[0] if h else None for h in self.hits]


def match(truths: Sequence[Truth], alerts: Sequence[Alert]) -> Matching:
    """Pair truth records with the alerts opened for the same elder within their window.

    >>> from datetime import datetime
    >>> t0 = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
    >>> truth = Truth("e0001", "xb-w0001", "sos", t0, t0)
    >>> alerts = [Alert("e0001", "sos", t0 + timedelta(seconds=4), t0, "critical", "SOS"),
    ...           Alert("e0001", "sos", t0 + timedelta(hours=1), t0, "critical", "SOS")]
    >>> m = match([truth], alerts)
    >>> m.first[0] is alerts[0], m.kinds
    (True, [{'sos'}, set()])
    """
    by_elder: dict[str, list[int]] = defaultdict(list)
    for i, a in enumerate(alerts):
        by_elder[a.elder].append(i)
    found: list[list[Alert]] = []
    kinds: list[set[str]] = [set() for _ in alerts]
    for t in truths:
        lo, hi = t.window()
        wanted = ALERT_KINDS[t.kind]
        hits = [
            i
            for i in by_elder.get(t.elder, [])
            if alerts[i].kind in wanted and lo <= alerts[i].opened_at <= hi
        ]
        for i in hits:
            kinds[i].add(t.kind)
        found.append(sorted((alerts[i] for i in hits), key=lambda a: a.opened_at))
    return Matching(found, kinds)


# --- replay ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ShardJob:
    elders: tuple[SimElder, ...]
    scenarios: tuple[Scenario, ...]
    seed: int
    start: datetime
    duration: timedelta
    batch_s: float = BATCH_S
    tick_s: float = TICK_S


@dataclass(slots=True)
class ShardResult:
    alerts: list[Alert]
    notes: Counter[str]
    messages: int = 0
    readings: int = 0
    rejects: Counter[str] = field(default_factory=Counter)
    engine: dict[str, int] = field(default_factory=dict)


def profile_of(elder_id: int, e: SimElder) -> ElderProfile:
    """What enrolment would record for a simulated elder: home, community, device, COPD."""
    outline = tuple((float(lon), float(lat)) for lon, lat in outline_lonlat())
    # A COPD diagnosis is known at enrolment: SpO2 is then scored on NEWS2 scale 2.
    thresholds = {"vitals": {"hypercapnic": True}} if e.hypercapnic else {}
    return ElderProfile(
        elder_id,
        home=(e.home_lat, e.home_lon),
        community_outline=outline,
        report_interval_s=round(e.report_interval_s),
        thresholds=thresholds,
    )


class _Replay:
    """One shard's detection shell in simulated time: decode, micro-batch, tick, book."""

    def __init__(self, job: ShardJob) -> None:
        self.ids = {e.device_id: i for i, e in enumerate(job.elders, start=1)}
        self.keys = {i: e.key for i, e in enumerate(job.elders, start=1)}
        profiles = {i: profile_of(i, e) for i, e in enumerate(job.elders, start=1)}
        self.engine = DetectionEngine(profile_for=profiles.__getitem__)
        self.book = AlertBook()
        self.out = ShardResult(self.book.alerts, self.book.notes)
        # Simulated backfill is at most the run itself: nothing is too big or too old.
        self.limits = Limits(max_payload_bytes=1 << 26, max_backfill=job.duration + DAY)
        self.step = timedelta(seconds=job.batch_s)
        self.ticks_every = max(1, round(job.tick_s / job.batch_s))  # in batches
        self.batch: list[tuple[int | None, Reading]] = []
        self.batches = 0
        self.flush_at = job.start + self.step

    def message(self, m: Message) -> None:
        while m.sim_time >= self.flush_at:  # close the batches this message comes after
            self.flush(self.flush_at)
            self.flush_at += self.step
        self.out.messages += 1
        parsed = parse_topic(m.topic)
        if parsed is None:
            self.out.rejects["bad_topic"] += 1
            return
        device_id, channel = parsed
        d = decode(
            channel, m.payload, device_id=device_id, received_at=m.sim_time, limits=self.limits
        )
        self.out.rejects.update(str(r.reason) for r in d.rejects)
        elder_id = self.ids.get(device_id)
        self.batch.extend((elder_id, r) for r in d.readings)
        self.out.readings += len(d.readings)

    def flush(self, now: datetime) -> None:
        found = self.engine.process(self.batch, now=now)
        self.batch.clear()
        self.batches += 1
        if self.batches % self.ticks_every == 0:
            found += self.engine.tick(now)
        for elder_id, f in found:
            self.book.apply(self.keys[elder_id], f, now)

    def finish(self, end: datetime) -> ShardResult:
        while self.flush_at <= end:  # a quiet tail: silence-based rules still get their say
            self.flush(self.flush_at)
            self.flush_at += self.step
        if self.batch:
            self.flush(end)
        self.out.engine = asdict(self.engine.stats)
        return self.out


def replay_shard(job: ShardJob) -> ShardResult:
    """Replay one shard's stream through a fresh engine; return the alerts it opened."""
    replay = _Replay(job)
    for m in generate(job.elders, job.start, job.duration, job.seed, job.scenarios):
        replay.message(m)
    return replay.finish(job.start + job.duration)


def _jobs(
    roster: Sequence[SimElder],
    scenarios: Sequence[Scenario],
    seed: int,
    duration: timedelta,
    batch_s: float = BATCH_S,
    tick_s: float = TICK_S,
    shard_size: int = SHARD_SIZE,
) -> list[ShardJob]:
    jobs = []
    for i in range(0, len(roster), shard_size):
        shard = roster[i : i + shard_size]
        keys = {e.key for e in shard}
        mine = tuple(s for s in scenarios if s.elder.key in keys)
        jobs.append(ShardJob(tuple(shard), mine, seed, START, duration, batch_s, tick_s))
    return jobs


def _replay_all(jobs: list[ShardJob], workers: int) -> list[ShardResult]:
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
            return list(pool.map(replay_shard, jobs))
    return [replay_shard(j) for j in jobs]


def run(
    seed: int,
    *,
    elders: int = 200,
    days: float = 3.0,
    workers: int | None = None,
    incidents: int | None = None,
    batch_s: float = BATCH_S,
    tick_s: float = TICK_S,
    shard_size: int = SHARD_SIZE,
) -> dict[str, Any]:
    """Replay ``elders`` x ``days`` of the simulated community and score detection.

    ``incidents``: how many of each scenario kind to inject (default one per
    ``ELDER_DAYS_PER_INCIDENT`` elder-days, at least one).  ``workers``: processes
    (default one per CPU); the result depends neither on it nor on ``shard_size``
    (elders per replay shard; up to 166 the simulator generates a day at a time for
    every shard alike).  ``batch_s`` and ``tick_s``: micro-batch and tick periods
    in simulated seconds (``tick_s`` is rounded to a whole number of batches).
    """
    started = time.perf_counter()
    if elders < 1 or days <= 0:
        raise ValueError("need at least one elder and a positive number of days")
    if shard_size < 1 or chunk_ms(shard_size) != chunk_ms(1):
        # The simulator would cut a bigger shard's stream into shorter chunks, and a
        # device's random draws (so its readings) depend on its chunks.
        raise ValueError(f"shard_size {shard_size}: too big to keep every device's stream")
    duration = timedelta(days=days)
    elder_days = elders * days
    per_kind = incidents or max(1, math.ceil(elder_days / ELDER_DAYS_PER_INCIDENT))
    roster = build_roster(elders, seed)
    # Interleaved, so that every kind gets its turn at the elders with nothing injected yet.
    plan = schedule(roster, START, duration, seed, list(SCENARIOS) * per_kind)
    jobs = _jobs(roster, plan.scenarios, seed, duration, batch_s, tick_s, shard_size)
    shards = _replay_all(jobs, workers if workers is not None else os.cpu_count() or 1)

    alerts = sorted(
        (a for s in shards for a in s.alerts), key=lambda a: (a.opened_at, a.elder, a.kind)
    )
    truths = [Truth.of(s) for s in sorted(plan.scenarios, key=lambda s: (s.start, s.elder.key))]
    devices = {e.key: e.device_id for e in roster}
    result = summarise(truths, alerts, elder_days, devices)
    result.update(
        seed=seed,
        elders=elders,
        days=days,
        incidents_per_kind=per_kind,
        skipped=[{"scenario": n, "why": w} for n, w in plan.skipped],
        messages=sum(s.messages for s in shards),
        readings=sum(s.readings for s in shards),
        rejects=dict(sum((s.rejects for s in shards), Counter())),
        engine={k: sum(s.engine[k] for s in shards) for k in shards[0].engine},
        notes=dict(sum((s.notes for s in shards), Counter())),
        method=_method(batch_s, tick_s),
        runtime_s=round(time.perf_counter() - started, 1),
    )
    return result


# --- the report -----------------------------------------------------------------------


def summarise(
    truths: Sequence[Truth],
    alerts: Sequence[Alert],
    elder_days: float,
    devices: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Per-kind recall, precision and delay; every missed incident and false alert."""
    m = match(truths, alerts)
    devices = devices or {}
    per_kind = {k: _kind_figures(k, truths, alerts, m) for k in ALERT_KINDS}
    false = [a for a, ks in zip(alerts, m.kinds, strict=True) if not ks and not a.withdrawn]
    withdrawn = [a for a, ks in zip(alerts, m.kinds, strict=True) if not ks and a.withdrawn]
    by_elder: dict[str, list[Truth]] = defaultdict(list)
    for t in truths:
        by_elder[t.elder].append(t)
    result: dict[str, Any] = {
        "elder_days": elder_days,
        "truth_events": len(truths),
        "alerts": len(alerts),
        "per_kind": per_kind,
        "per_alert_kind": _alert_kind_figures(alerts, m),
        "false_alerts": len(false),
        "false_alerts_per_elder_day": round(len(false) / elder_days, 4) if elder_days else None,
        "withdrawn": len(withdrawn),
        "events": [_event(t, h, devices) for t, h in zip(truths, m.hits, strict=True)],
        "missed_events": [
            _missed(t, alerts, devices) for t, a in zip(truths, m.first, strict=True) if a is None
        ],
        "false_alert_list": [_alert_record(a, devices, by_elder[a.elder]) for a in false],
        "withdrawn_list": [_alert_record(a, devices, by_elder[a.elder]) for a in withdrawn],
    }
    result["floors"] = _floors(result)
    result["floors_met"] = all(f["ok"] for f in result["floors"])
    return result


def _kind_figures(
    kind: str, truths: Sequence[Truth], alerts: Sequence[Alert], m: Matching
) -> dict[str, Any]:
    mine = [(t, a) for t, a in zip(truths, m.first, strict=True) if t.kind == kind]
    delays = [(a.opened_at - t.start).total_seconds() for t, a in mine if a is not None]
    wanted = ALERT_KINDS[kind]
    true_alerts = sum(1 for ks in m.kinds if kind in ks)
    false = sum(
        1
        for a, ks in zip(alerts, m.kinds, strict=True)
        if a.kind in wanted and not ks and not a.withdrawn
    )
    detected = len(delays)
    return {
        "alert_kinds": sorted(wanted),
        "truth": len(mine),
        "detected": detected,
        "recall": round(detected / len(mine), 4) if mine else None,
        "alerts": true_alerts + false,
        "true_alerts": true_alerts,
        "precision": round(true_alerts / (true_alerts + false), 4) if true_alerts + false else None,
        "delay_median_s": round(statistics.median(delays), 1) if delays else None,
        "delay_p95_s": round(percentile(delays, 95), 1) if delays else None,
    }


def _alert_kind_figures(alerts: Sequence[Alert], m: Matching) -> dict[str, dict[str, int]]:
    """Per alert kind: alerts opened, true / false / withdrawn, and RAISEs the cooldown
    after a close kept from opening one (``suppressed``)."""
    out: dict[str, dict[str, int]] = {}
    for a, ks in zip(alerts, m.kinds, strict=True):
        row = out.setdefault(
            a.kind, {"alerts": 0, "true": 0, "false": 0, "withdrawn": 0, "suppressed": 0}
        )
        row["alerts"] += 1
        row["true" if ks else "withdrawn" if a.withdrawn else "false"] += 1
        row["suppressed"] += len(a.suppressed_at)
    return dict(sorted(out.items()))


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile (never below the value it names; fine for few values).

    >>> percentile([1, 2, 3, 4, 100], 95), percentile([5.0], 95)
    (100, 5.0)
    """
    xs = sorted(values)
    return xs[max(0, math.ceil(q / 100 * len(xs)) - 1)]


def _local(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(LOCAL).isoformat(timespec="seconds")


def _alert_record(a: Alert, devices: dict[str, str], injected: Sequence[Truth]) -> dict[str, Any]:
    near = [
        f"{t.kind} {_local(t.start)} – {_local(t.end)}"
        for t in injected
        if t.start - timedelta(hours=1) <= a.opened_at <= t.end + timedelta(hours=1)
    ]
    return {
        "elder": a.elder,
        "device_id": devices.get(a.elder),
        "kind": a.kind,
        "time": _local(a.opened_at),
        "event_time": _local(a.event_ts),
        "severity": a.severity,
        "message": a.message,
        "closed": _local(a.closed_at),
        "outcome": a.outcome,
        "injected_nearby": near,
    }


def _event(t: Truth, hits: list[Alert], devices: dict[str, str]) -> dict[str, Any]:
    return {
        "elder": t.elder,
        "device_id": devices.get(t.elder, t.device_id),
        "kind": t.kind,
        "start": _local(t.start),
        "end": _local(t.end),
        "delay_s": round((hits[0].opened_at - t.start).total_seconds(), 1) if hits else None,
        "alerts": [f"{a.kind} {_local(a.opened_at)}" for a in hits],
    }


def _missed(t: Truth, alerts: Sequence[Alert], devices: dict[str, str]) -> dict[str, Any]:
    return {
        "elder": t.elder,
        "device_id": devices.get(t.elder, t.device_id),
        "kind": t.kind,
        "time": _local(t.start),
        "end": _local(t.end),
        "message": why_missed(t, alerts),
    }


def why_missed(t: Truth, alerts: Sequence[Alert]) -> str:
    """What the alerts of the wanted kinds did around a missed incident, in one line."""
    lo, hi = t.window()
    wanted = ALERT_KINDS[t.kind]
    notes = []
    for a in alerts:
        if a.elder != t.elder or a.kind not in wanted:
            continue
        if a.opened_at < lo and (a.closed_at is None or a.closed_at >= t.start):
            merged = sum(lo <= x <= hi for x in a.merged_at)
            notes.append(
                f"{a.kind} alert already open since {_local(a.opened_at)}"
                + (f" ({merged} RAISEs merged into it)" if merged else "")
            )
        elif any(lo <= x <= hi for x in a.suppressed_at):
            notes.append(f"{a.kind} RAISE suppressed: cooldown after close {_local(a.closed_at)}")
        elif hi < a.opened_at <= hi + timedelta(hours=6):
            notes.append(f"{a.kind} alert opened late, at {_local(a.opened_at)}")
    return "; ".join(notes) or f"no {'/'.join(sorted(wanted))} alert opened"


def _floors(r: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for k in RECALL_FLOOR_KINDS:
        v = r["per_kind"][k]["recall"]
        out.append({"what": f"recall {k}", "value": v, "floor": "= 1.0", "ok": v == 1.0})
    for k in DELAY_FLOOR_KINDS:
        v = r["per_kind"][k]["delay_median_s"]
        ok = v is not None and v <= DELAY_FLOOR_S
        out.append({"what": f"median delay {k} (s)", "value": v, "floor": "<= 30", "ok": ok})
    v = r["false_alerts_per_elder_day"]
    out.append(
        {
            "what": "false alerts per elder-day",
            "value": v,
            "floor": f"<= {FALSE_ALERTS_FLOOR}",
            "ok": v is not None and v <= FALSE_ALERTS_FLOOR,
        }
    )
    return out


def _method(batch_s: float, tick_s: float) -> dict[str, Any]:
    return {
        "start": _local(START),
        "batch_s": batch_s,
        "tick_s": tick_s,
        "shard_size": SHARD_SIZE,
        "alert_kinds": {k: sorted(v) for k, v in ALERT_KINDS.items()},
        "windows_s": {
            k: {"lead": w.lead.total_seconds(), "grace": w.grace.total_seconds()}
            for k, w in WINDOWS.items()
        },
        "cooldown_s": Policy().default_cooldown_s,
    }


def _secs(v: float | None) -> str:
    if v is None:
        return "—"
    if abs(v) < 120:
        return f"{v:.0f} s"
    if abs(v) < 7200:
        return f"{v / 60:.1f} min"
    return f"{v / 3600:.1f} h"


def _num(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}"


def render_table(result: dict[str, Any]) -> RenderableType:
    """Per kind figures with the floors, then the missed incidents and false alerts."""
    title = (
        f"Scenarios — seed {result['seed']}, {result['elders']} elders x {result['days']:g} days"
        f" ({result['elder_days']:g} elder-days), {result['messages']:,} messages,"
        f" {result['runtime_s']} s"
    )
    table = Table(title=title)
    for col in ("kind", "truth", "detected", "recall", "alerts", "true", "precision"):
        table.add_column(col, justify="left" if col == "kind" else "right")
    table.add_column("delay median", justify="right")
    table.add_column("delay p95", justify="right")
    for kind, k in result["per_kind"].items():
        table.add_row(
            kind,
            str(k["truth"]),
            str(k["detected"]),
            _num(k["recall"]),
            str(k["alerts"]),
            str(k["true_alerts"]),
            _num(k["precision"]),
            _secs(k["delay_median_s"]),
            _secs(k["delay_p95_s"]),
        )
    floors = Table(title="Floors")
    for col in ("floor", "value", "wanted", "met"):
        floors.add_column(col)
    for f in result["floors"]:
        floors.add_row(
            f["what"],
            str(f["value"]),
            f["floor"],
            "[green]yes[/green]" if f["ok"] else "[red]NO[/red]",
        )
    floors.add_row(
        "false alerts",
        f"{result['false_alerts']} (+{result['withdrawn']} withdrawn)",
        "",
        "",
    )
    parts: list[RenderableType] = [table, floors, _alert_kinds(result["per_alert_kind"])]
    parts.append(_cases("Missed incidents", result["missed_events"], "end"))
    parts.append(_cases("False alerts", result["false_alert_list"], "severity"))
    return Group(*parts)


def _alert_kinds(rows: dict[str, dict[str, int]]) -> Table:
    t = Table(title="Per alert kind")
    t.add_column("alert kind")
    for col in ("alerts", "true", "false", "withdrawn", "suppressed"):
        t.add_column(col, justify="right")
    for kind, r in rows.items():
        t.add_row(
            kind, *(str(r[c]) for c in ("alerts", "true", "false", "withdrawn", "suppressed"))
        )
    return t


def _cases(title: str, rows: list[dict[str, Any]], extra: str) -> Table:
    shown = f", first {CASES_SHOWN} shown (all in --json)" if len(rows) > CASES_SHOWN else ""
    t = Table(title=f"{title} ({len(rows)}{shown})")
    for col in ("elder", "kind", "time", extra, "message"):
        t.add_column(col)
    for r in rows[:CASES_SHOWN]:
        msg = r["message"]
        if r.get("injected_nearby"):
            msg += f" [dim](injected: {'; '.join(r['injected_nearby'])})[/dim]"
        t.add_row(r["elder"], r["kind"], r["time"] or "", str(r.get(extra) or ""), msg)
    return t
