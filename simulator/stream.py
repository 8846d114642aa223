"""The whole community's device traffic as an ordered, deterministic stream of messages.

No broker, no clock: ``generate`` yields ``Message`` objects in ``sim_time`` order, and
the same arguments always give byte-identical payloads.  The publisher paces them onto
MQTT; the detection evaluation replays them straight from memory.

Work is done in chunks of simulated time (an hour for up to 2,000 devices, shorter for
more, so memory stays bounded): for each device, its day plan, vital signs and fixes
for the chunk are computed with numpy over time; the chunk's messages from all
devices are then merged by send time.

>>> from datetime import UTC, datetime, timedelta
>>> from simulator.community import build_roster
>>> msgs = list(generate(build_roster(2, seed=1), datetime(2026, 11, 28, 1, 0, tzinfo=UTC),
...                      timedelta(minutes=10), seed=1))
>>> msgs[0].topic, msgs[0].retain
('eldercare/v1/devices/xb-w0001/status', True)
>>> all(a.sim_time <= b.sim_time for a, b in zip(msgs, msgs[1:]))
True
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import msgspec
import numpy as np

from protocol.topics import topic
from simulator import sensors
from simulator.clock import (
    DAY,
    HOUR,
    LOCAL_OFFSET,
    MINUTE,
    SECOND,
    local_day_start,
    ms,
    to_datetime,
)
from simulator.community import SimElder
from simulator.elder_model import day_rng, plan_day
from simulator.plan import DayPlan
from simulator.scenarios import Scenario

_encode = msgspec.json.Encoder().encode
TEMP_EVERY_S = 300  # the thermometer reports every 5 minutes
BP_EVERY_S = 1800  # a cuff-less BP estimate every 30 minutes
WALK_FIX_S = 30  # GPS fix interval while moving outdoors
HOME_FIX_FACTOR = 20  # stationary / indoors: one fix per 20 walking intervals (10 min)
MAX_ARRAY = 500  # a buffered upload is split into pages of at most this many samples


class Message(NamedTuple):
    """One MQTT publish: when the device sends it, where, and what."""

    sim_time: datetime
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False


def generate(
    roster: Sequence[SimElder],
    start: datetime,
    duration: timedelta | None,
    seed: int,
    scenarios: Sequence[Scenario] = (),
    *,
    nuisance: bool = True,
) -> Iterator[Message]:
    """All devices' messages from ``start`` for ``duration`` (None: without end).

    Begins with a retained ``online`` status per device.  Buffered uploads still
    pending when the window closes are sent at its end.  ``nuisance=False`` turns off
    the rare knock-triggered fall that the elder cancels (a normal false alarm).
    """
    t = ms(start)
    end = None if duration is None else t + int(duration / timedelta(milliseconds=1))
    devices = [
        _Device(e, seed, [s for s in scenarios if s.elder.key == e.key], nuisance) for e in roster
    ]
    for dev in devices:
        yield Message(start, dev.status_topic, dev.status_payload(t), 1, True)
    step = chunk_ms(len(roster))
    while end is None or t < end:
        # Chunks are aligned to local midnight, so that none spans two local days.
        c1 = ((t + LOCAL_OFFSET) // step + 1) * step - LOCAL_OFFSET
        if end is not None and c1 >= end:
            c1 = end
        batch: list[tuple[int, int, int, str, bytes]] = []
        for i, dev in enumerate(devices):
            dev.emit(t, c1, i, batch, final=c1 == end)
        batch.sort()
        for send, _, _, top, payload in batch:
            yield Message(datetime.fromtimestamp(send / 1000, UTC), top, payload)
        t = c1


_CHUNK_MESSAGES = 300_000  # about what one chunk may hold in memory (~100 MB)
_CHUNKS = (DAY, 6 * HOUR, 3 * HOUR, HOUR, 15 * MINUTE, 5 * MINUTE)


def chunk_ms(n_devices: int) -> int:
    """Length of a generation chunk: as long as memory allows, so numpy works on long arrays.

    Each step divides a day, so chunks aligned to local midnight never span two days.

    >>> [chunk_ms(n) // 60_000 for n in (10, 500, 3000, 100_000)]
    [1440, 360, 60, 5]
    """
    per_hour = 75 * max(n_devices, 1)  # messages per device-hour at the default interval
    for step in _CHUNKS:
        if per_hour * step / HOUR <= _CHUNK_MESSAGES:
            return step
    return _CHUNKS[-1]


def samples_in(payload: bytes) -> int:
    """How many sample objects a payload carries (an array counts each element)."""
    return payload.count(b'"seq"')


# --- one device ---------------------------------------------------------------------------

_HMS: list[str] = []


def _hms() -> list[str]:
    if not _HMS:  # "HH:MM:SS+08:00" for every second of a day, built once
        _HMS.extend(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}+08:00" for s in range(86400))
    return _HMS


def _jitter(k: np.ndarray, salt: int, span: int) -> np.ndarray:
    """A fixed pseudo-random offset per grid slot: devices are not metronomes."""
    if span <= 0:
        return np.zeros_like(k)
    return ((k * 2654435761 + salt) % 4294967296) % span


def _grid(
    c0: int, c1: int, phase: int, step: int, salt: int, jit: int
) -> tuple[np.ndarray, np.ndarray]:
    """Slots k and times of a jittered grid ``phase + k*step + jitter(k)`` in ``[c0, c1)``."""
    k = np.arange((c0 - phase - jit) // step, (c1 - phase) // step + 1, dtype=np.int64)
    t = phase + k * step + _jitter(k, salt, jit)
    keep = (t >= c0) & (t < c1)
    return k[keep], t[keep]


def _outside(t: np.ndarray, windows: Sequence[tuple[int, int]]) -> np.ndarray:
    keep = np.ones(t.shape, dtype=bool)
    for a, b in windows:
        keep &= (t < a) | (t >= b)
    return keep


@dataclass(slots=True)
class _Device:
    elder: SimElder
    seed: int
    scenarios: list[Scenario]
    nuisance: bool
    seq: int = 0
    plan: DayPlan | None = None
    rng: np.random.Generator | None = None
    pending: list[tuple[int, int, dict[str, Any]]] = field(default_factory=list)
    topics: tuple[str, str, str] = ("", "", "")
    status_topic: str = ""
    date: tuple[int, str] = (-1, "")  # local day number and its "YYYY-MM-DDT"
    located: bool = False  # a device reports where it is as soon as it starts

    def __post_init__(self) -> None:
        d = self.elder.device_id
        self.topics = (topic(d, "vitals"), topic(d, "location"), topic(d, "event"))
        self.status_topic = topic(d, "status")

    @property
    def interval(self) -> int:
        return int(self.elder.report_interval_s * SECOND)

    def ts(self, t: int) -> int | str:
        if self.elder.ts_epoch_ms:
            return t
        local = t + LOCAL_OFFSET
        day = local // DAY
        if day != self.date[0]:
            self.date = (day, to_datetime(day * DAY).strftime("%Y-%m-%dT"))
        return self.date[1] + _hms()[local % DAY // SECOND]

    def status_payload(self, t: int) -> bytes:
        return _encode({"state": "online", "ts": self.ts(t)})

    def _plan_for(self, t: int) -> DayPlan:
        day = local_day_start(t)
        if self.plan is None or self.plan.day_start != day:
            carried = (
                self.plan.battery_end
                if self.plan is not None and self.plan.day_start == day - DAY
                else None
            )
            todays = [s for s in self.scenarios if s.touches(day)]
            self.plan = plan_day(
                self.elder, day, self.seed, todays, carried, nuisance=self.nuisance
            )
            self.rng = day_rng(self.elder, day, self.seed, 2)
        return self.plan

    def emit(
        self,
        c0: int,
        c1: int,
        order: int,
        out: list[tuple[int, int, int, str, bytes]],
        *,
        final: bool,
    ) -> None:
        """Append this device's messages sent in ``[c0, c1)`` to ``out`` (c0, c1 in one day)."""
        plan = self._plan_for(c0)
        rng = self.rng
        assert rng is not None
        e = self.elder
        iv = self.interval
        salt = e.salt
        # Vital-sign samples on this device's jittered reporting grid.
        kv, tv = _grid(c0, c1, e.phase_ms, iv, salt, min(1500, iv // 4))
        keep = _outside(tv, plan.silent)
        kv, tv = kv[keep], tv[keep]
        # Fixes: every WALK_FIX_S outdoors, every HOME_FIX_FACTOR-th slot otherwise.
        fstep = min(WALK_FIX_S * SECOND, iv)
        kf, tf = _grid(c0, c1, e.phase_ms % fstep + 250, fstep, salt ^ 0x5A5A, min(900, fstep // 4))
        if tf.size:
            due = plan.outdoors[plan.index(tf)] | (kf % HOME_FIX_FACTOR == 0)
            if not self.located:
                due[0] = True
                self.located = True
            keep = due & _outside(tf, plan.silent)
            tf = tf[keep]
        # Events are sent when the device has composed them (a fall: after the burst).
        events = [ev for ev in plan.events if c0 <= ev.t + ev.delay < c1]
        events = [ev for ev in events if _outside(np.array([ev.t]), plan.silent)[0]]
        te = np.array([ev.t + ev.delay for ev in events], dtype=np.int64)

        times = np.concatenate([tv, tf, te])
        chans = np.concatenate(
            [np.zeros(tv.size, np.int64), np.ones(tf.size, np.int64), np.full(te.size, 2, np.int64)]
        )
        rank = np.empty(times.size, dtype=np.int64)
        rank[np.lexsort((chans, times))] = np.arange(times.size)
        seqs = (self.seq + rank).tolist()
        self.seq += times.size

        # Coverage gaps: samples taken inside one are sent, as one array, when it ends.
        flush_at = np.full(times.size, -1, dtype=np.int64)
        for a, b in plan.gaps:
            inside = (times >= a) & (times < b) & (chans != 2)  # events are never held back
            flush_at[inside] = b
        direct: list[tuple[int, int, dict[str, Any]]] = []
        nv, nf = tv.size, tf.size
        if nv:
            self._vitals(plan, kv, tv, seqs[:nv], flush_at[:nv].tolist(), direct, rng)
        if nf:
            self._fixes(plan, tf, seqs[nv : nv + nf], flush_at[nv : nv + nf].tolist(), direct, rng)
        for ev, s, t in zip(events, seqs[nv + nf :], te.tolist(), strict=True):
            body: dict[str, Any] = {"ts": self.ts(ev.t), "seq": s, "type": ev.type}
            if ev.accel is not None:
                body["accel"] = {"hz": 50, "g": ev.accel}
            direct.append((t, 2, body))
        for t, ch, body in direct:
            out.append((t, order, body["seq"], self.topics[ch], _encode(body)))
        self._flush(c1, order, out, final=final)

    def _vitals(
        self,
        plan: DayPlan,
        k: np.ndarray,
        t: np.ndarray,
        seqs: list[int],
        flush: list[int],
        direct: list[tuple[int, int, dict[str, Any]]],
        rng: np.random.Generator,
    ) -> None:
        v = sensors.vitals(plan, t, rng)
        iv_s = max(1, round(self.elder.report_interval_s))
        temp_due = (k % max(1, TEMP_EVERY_S // iv_s) == 0).tolist()
        bp_due = (k % max(1, BP_EVERY_S // iv_s) == 0).tolist()
        hr = np.nan_to_num(v.hr).astype(np.int64).tolist()
        spo2 = np.nan_to_num(v.spo2).astype(np.int64).tolist()
        rr = np.nan_to_num(v.rr).astype(np.int64).tolist()
        sbp = np.nan_to_num(v.sbp).astype(np.int64).tolist()
        dbp = np.nan_to_num(v.dbp).astype(np.int64).tolist()
        temp = v.temp.tolist()
        steps = v.steps.tolist()
        batt = v.battery.astype(np.int64).tolist()
        worn = v.worn.tolist()
        ts = [self.ts(x) for x in t.tolist()]
        tl = t.tolist()
        for j in range(len(tl)):
            if worn[j]:
                body: dict[str, Any] = {
                    "ts": ts[j],
                    "seq": seqs[j],
                    "hr": hr[j],
                    "spo2": spo2[j],
                    "rr": rr[j],
                }
                if temp_due[j]:
                    body["temp"] = temp[j]
                if bp_due[j]:
                    body["sbp"], body["dbp"] = sbp[j], dbp[j]
                body["steps"], body["battery"], body["worn"] = steps[j], batt[j], True
            else:  # off the wrist: no body readings at all
                body = {
                    "ts": ts[j],
                    "seq": seqs[j],
                    "steps": steps[j],
                    "battery": batt[j],
                    "worn": False,
                }
            if flush[j] >= 0:
                self.pending.append((flush[j], 0, body))
            else:
                direct.append((tl[j], 0, body))

    def _fixes(
        self,
        plan: DayPlan,
        t: np.ndarray,
        seqs: list[int],
        flush: list[int],
        direct: list[tuple[int, int, dict[str, Any]]],
        rng: np.random.Generator,
    ) -> None:
        f = sensors.fixes(plan, t, rng)
        src = [sensors.SOURCES[s] for s in f.src.tolist()]
        rows = zip(
            t.tolist(),
            seqs,
            f.lat.tolist(),
            f.lon.tolist(),
            f.acc.tolist(),
            src,
            flush,
            strict=True,
        )
        for tt, s, lat, lon, acc, sr, fl in rows:
            body = {"ts": self.ts(tt), "seq": s, "lat": lat, "lon": lon, "acc": acc, "src": sr}
            if fl >= 0:
                self.pending.append((fl, 1, body))
            else:
                direct.append((tt, 1, body))

    def _flush(
        self, c1: int, order: int, out: list[tuple[int, int, int, str, bytes]], *, final: bool
    ) -> None:
        """Send buffered samples whose gap ended before ``c1`` (all of them at the end)."""
        if not self.pending:
            return
        due = [p for p in self.pending if p[0] < c1 or final]
        if not due:
            return
        self.pending = [p for p in self.pending if not (p[0] < c1 or final)]
        groups: dict[tuple[int, int], list[dict[str, Any]]] = {}
        for when, ch, body in due:
            groups.setdefault((min(when, c1), ch), []).append(body)
        for (when, ch), bodies in sorted(groups.items()):
            bodies.sort(key=lambda b: b["seq"])
            for p in range(0, len(bodies), MAX_ARRAY):
                page = bodies[p : p + MAX_ARRAY]
                # Sort key -2/-1: the upload goes out just before the first live sample.
                out.append((when, order, ch - 2, self.topics[ch], _encode(page)))
