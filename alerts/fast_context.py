"""Parked twins of the context rules: device offline, not worn, low battery, inactivity.

Between episodes these rules only keep a few clocks and counters up to date with
every message: when the device was last heard, when the elder last moved, the
battery's recent levels.  Parked here that is a handful of vectorised ``max`` and
``where`` per batch, and a tick costs one comparison per elder instead of a call
per rule.  A reading or tick that could make a rule speak wakes it first:

* ``device_offline`` -- the silence threshold reached (``max(since + silence, hold)``),
  a ``power_off`` event or an ``offline`` status: the rule object judges those;
* ``not_worn`` -- the device comes off the wrist (off the wrist, counting the time
  or on the charger, the rule object keeps the elder);
* ``low_battery`` -- a level at or below ``low_pct``, or the device's own event;
* ``inactivity`` -- the watch comes off, or event time reaches the earliest moment
  the stillness could fall due: ``local_time.first_due(since, threshold, daytime)``
  (a later ``not_before`` only makes it later), computed by the rule's own function
  once the elder has been still for ``threshold`` and cached until the next movement.
  Movement is judged as the rule does; positions near the move threshold (within
  rounding of numpy's trigonometry) are judged by the rule's own ``haversine_m``.

These rules belong to other modules, so the twins read and write them only through
their public ``snapshot``/``restore`` state, and take an elder's rule only if that
state has the keys described here.  ``tests/test_fastpath.py`` checks them against
the rules on random streams.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np

from alerts import fast_kernels
from alerts.battery import BatterySettings, LowBatteryRule
from alerts.device_offline import DeviceOfflineRule, OfflineSettings, is_device_message
from alerts.fastpath import (
    EVENT,
    EVENTS,
    POSITION,
    SOURCES,
    STATUS,
    VITALS,
    Group,
    Samples,
    StateTwin,
    Table,
)
from alerts.geometry import EARTH_RADIUS_M, haversine_m
from alerts.inactivity import ACC_TO_SIGMA, InactivityRule, InactivitySettings, _merge
from alerts.local_time import first_due
from alerts.wear import NotWornRule

ALL_EVENTS: Final = frozenset(EVENTS)
_SRC: Final = {code: name for name, code in SOURCES.items()}
_HOUR = 3600.0
_OFFLINE_CODES: Final = np.array([EVENT, STATUS, EVENTS["power_off"]], np.int64)
_WEAR_CODES: Final = np.array([VITALS, EVENT, EVENTS["off_wrist"]], np.int64)
_MINUTE = 60.0


def _fl(v: Any) -> float:
    return math.nan if v is None else v


def _opt(v: float) -> float | None:
    return None if v != v else v


def _floats(*values: Any) -> bool:
    """Every value a float or None: what the twins hold (ints would come back as floats)."""
    return all(v is None or type(v) is float for v in values)


def _pick(rules: list[Any], cls: type, keys: frozenset[str]) -> tuple[tuple[Any, ...], int] | None:
    mine = [(i, r) for i, r in enumerate(rules) if type(r) is cls]
    if len(mine) != 1 or set(mine[0][1].snapshot()) != keys:
        return None
    return (mine[0][1],), 1 << mine[0][0]


def _device_message(s: Samples) -> np.ndarray:
    """``device_offline.is_device_message``: anything but a broker-published ``offline``."""
    return (s.kind != STATUS) | s.online


# --- device_offline --------------------------------------------------------------------


class OfflineGroup(StateTwin):
    """``DeviceOfflineRule`` with no episode open: it keeps its clocks."""

    MIRRORS = (
        DeviceOfflineRule,
        OfflineSettings,
        is_device_message,
    )
    FINGERPRINT = "efca55c7afe70000"

    name = "device_offline"
    sequential = True
    kinds = frozenset({VITALS, POSITION, EVENT, STATUS})
    events = ALL_EVENTS
    KEYS: Final = frozenset(
        {"last_seen", "since", "clock", "hold_until", "status_offline", "power_off", "open"}
    )

    def columns(self) -> Table:
        nan = ((), np.float64, np.nan)
        return Table(
            silence=((), np.float64, np.inf),
            last_seen=nan,
            since=nan,
            clock=nan,
            hold=nan,
            status_offline=nan,
            power_off=nan,
        )

    def pick(self, rules: list[Any]) -> tuple[tuple[Any, ...], int] | None:
        return _pick(rules, DeviceOfflineRule, self.KEYS)

    def bind(self, slot: int, rules: list[Any]) -> None:
        super().bind(slot, rules)
        if self.rules[slot] is not None:
            self.cols.silence[slot] = self.rules[slot][0].settings.silence_s

    def _due(self, rows: np.ndarray) -> np.ndarray:
        """When the silence falls due (NaN: never heard of): ``max(since + silence, hold)``."""
        c = self.cols
        hold = c.hold[rows]
        hold = np.where((hold == hold) & (hold != 0.0), hold, -1.0)  # ``hold_until or -1.0``
        return np.maximum(c.since[rows] + c.silence[rows], hold)

    def absorb(self, rows: np.ndarray, s: Samples) -> np.ndarray:
        # The compiled kernel does what ``absorb_numpy`` does, reading by reading,
        # several readings of an elder in one call (``sequential``).
        c = self.cols
        return fast_kernels.offline_absorb(
            np.ascontiguousarray(rows, np.int64),
            np.ascontiguousarray(s.t, np.float64),
            np.ascontiguousarray(s.kind, np.int8),
            np.ascontiguousarray(s.event, np.int8),
            np.ascontiguousarray(s.online, np.bool_),
            _OFFLINE_CODES,
            c.silence,
            c.last_seen,
            c.since,
            c.clock,
            c.hold,
            c.status_offline,
            c.power_off,
        )

    def absorb_numpy(self, rows: np.ndarray, s: Samples) -> np.ndarray:
        """``absorb`` as numpy operations over all rows (the kernel's reference)."""
        c = self.cols
        t = s.t
        # _timeouts(t) first: the silence must not be due yet.
        quiet = ~(t >= self._due(rows))
        quiet &= ~((s.kind == EVENT) & (s.event == EVENTS["power_off"]))  # the object notes it
        r, t, s = rows[quiet], t[quiet], s.take(np.flatnonzero(quiet))
        c.clock[r] = np.fmax(c.clock[r], t)
        alive = _device_message(s)
        c.status_offline[r[~alive]] = t[~alive]  # a will: recorded, not a sign of life
        r, t = r[alive], t[alive]
        for col in (c.power_off, c.status_offline):  # life after a power_off / a will
            v = col[r]
            col[r] = np.where(t > v, np.nan, v)
        c.last_seen[r] = np.fmax(c.last_seen[r], t)
        c.since[r] = np.fmax(c.since[r], t)
        return quiet

    def tick(self, t: float) -> np.ndarray:
        c = self.cols
        parked = np.flatnonzero(self.asleep)
        c.clock[parked] = np.fmax(c.clock[parked], t)
        return parked[t >= self._due(parked)]

    def load(self, slot: int, t: float) -> bool:
        picked = self.rules[slot]
        if picked is None:
            return False
        st = picked[0].snapshot()
        keys = ("last_seen", "since", "clock", "hold_until", "status_offline", "power_off")
        if st["open"] is not None or not _floats(*(st[k] for k in keys)):
            return False
        c = self.cols
        for k, col in zip(
            keys,
            ("last_seen", "since", "clock", "hold", "status_offline", "power_off"),
            strict=True,
        ):
            getattr(c, col)[slot] = _fl(st[k])
        return not t >= self._due(np.array([slot]))[0]

    def state(self, slot: int) -> dict[str, Any]:
        c = self.cols
        return {
            "last_seen": _opt(float(c.last_seen[slot])),
            "since": _opt(float(c.since[slot])),
            "clock": _opt(float(c.clock[slot])),
            "hold_until": _opt(float(c.hold[slot])),
            "status_offline": _opt(float(c.status_offline[slot])),
            "power_off": _opt(float(c.power_off[slot])),
            "open": None,
        }


# --- not_worn --------------------------------------------------------------------------


class WearGroup(StateTwin):
    """``NotWornRule`` while the device is on the wrist: it notes the last message.

    Off the wrist (counting, or on the charger) the rule object keeps the elder.
    """

    MIRRORS = (
        NotWornRule,
        is_device_message,
    )
    FINGERPRINT = "39b88300a4742d63"

    name = "not_worn"
    sequential = True
    kinds = frozenset({VITALS, POSITION, EVENT, STATUS})
    events = ALL_EVENTS
    KEYS: Final = frozenset({"off_since", "count_from", "last_data", "batt_low", "charge", "open"})

    def columns(self) -> Table:
        return Table(last_data=((), np.float64, np.nan))

    def pick(self, rules: list[Any]) -> tuple[tuple[Any, ...], int] | None:
        return _pick(rules, NotWornRule, self.KEYS)

    def relevant(self, s: Samples) -> np.ndarray:
        return _device_message(s)

    def absorb(self, rows: np.ndarray, s: Samples) -> np.ndarray:
        # The compiled kernel does what ``absorb_numpy`` does, reading by reading,
        # several readings of an elder in one call (``sequential``).
        return fast_kernels.wear_absorb(
            np.ascontiguousarray(rows, np.int64),
            np.ascontiguousarray(s.t, np.float64),
            np.ascontiguousarray(s.kind, np.int8),
            np.ascontiguousarray(s.event, np.int8),
            np.ascontiguousarray(s.worn, np.float64),
            _WEAR_CODES,
            self.cols.last_data,
        )

    def absorb_numpy(self, rows: np.ndarray, s: Samples) -> np.ndarray:
        """``absorb`` as numpy operations over all rows (the kernel's reference)."""
        off = ((s.kind == VITALS) & (s.worn == 0.0)) | (
            (s.kind == EVENT) & (s.event == EVENTS["off_wrist"])
        )
        quiet = ~off  # on the wrist and open-free, only the clock moves
        c = self.cols
        r = rows[quiet]
        c.last_data[r] = np.fmax(c.last_data[r], s.t[quiet])
        return quiet

    def load(self, slot: int, t: float) -> bool:
        picked = self.rules[slot]
        if picked is None:
            return False
        st = picked[0].snapshot()
        if any(st[k] is not None for k in self.KEYS - {"last_data"}):
            return False
        if not _floats(st["last_data"]):
            return False
        self.cols.last_data[slot] = _fl(st["last_data"])
        return True

    def state(self, slot: int) -> dict[str, Any]:
        state: dict[str, Any] = dict.fromkeys(self.KEYS)
        state["last_data"] = _opt(float(self.cols.last_data[slot]))
        return state


def _falls_due(
    g: Group, rows: np.ndarray, since_col: np.ndarray, t: np.ndarray, hold: str
) -> np.ndarray:
    """Whether a condition holding since ``since_col`` may fall due by ``t``.

    The rules fire at ``local_time.first_due(since, hold, daytime, not_before=last)``;
    a later ``not_before`` only makes that later, so ``first_due(since, hold,
    daytime)`` is a lower bound.  It is never earlier than ``since + hold`` either, so
    it is only computed past that -- with the rules' own function, once per condition
    (cached in ``due``, reset whenever ``since`` changes).  NaN ``since``: never.
    """
    c = g.cols
    since = since_col[rows]
    late = np.flatnonzero(t >= since + c.hold_s[rows])
    due = np.full(rows.size, np.inf)
    if late.size:
        r = rows[late]
        for row in r[c.due[r] != c.due[r]].tolist():
            s = g.rules[row][0].settings  # type: ignore[index]
            at = first_due(
                float(since_col[row]), getattr(s, hold) * 60, s.daytime, s.utc_offset_hours
            )
            c.due[row] = math.inf if at is None else at
        due[late] = c.due[r]
    return t >= due


# --- low_battery -----------------------------------------------------------------------

HISTORY: Final = 64  # thinned samples a row holds (3 h at one per 5 min needs 37)


class BatteryGroup(StateTwin):
    """``LowBatteryRule`` above its threshold: last level, lowest level, thinned history."""

    MIRRORS = (
        LowBatteryRule,
        BatterySettings,
    )
    FINGERPRINT = "c83aa0d129c0eea5"

    name = "low_battery"
    sequential = True
    kinds = frozenset({VITALS, EVENT})
    events = frozenset({"low_battery"})
    KEYS: Final = frozenset({"history", "low", "last", "open"})

    def columns(self) -> Table:
        return Table(
            last_t=((), np.float64, np.nan),
            last_pct=((), np.float64, np.nan),
            low=((), np.float64, np.nan),
            hist_t=((HISTORY,), np.float64, 0.0),
            hist_p=((HISTORY,), np.float64, 0.0),
            hist_n=((), np.int64, 0),
            low_pct=((), np.float64, 15.0),
            rise=((), np.float64, 2.0),
            thin=((), np.float64, 300.0),
            window=((), np.float64, 3 * _HOUR),
        )

    def pick(self, rules: list[Any]) -> tuple[tuple[Any, ...], int] | None:
        return _pick(rules, LowBatteryRule, self.KEYS)

    def bind(self, slot: int, rules: list[Any]) -> None:
        super().bind(slot, rules)
        if self.rules[slot] is not None:
            s, c = self.rules[slot][0].settings, self.cols
            c.low_pct[slot], c.rise[slot] = s.low_pct, s.charge_rise_pct
            c.thin[slot], c.window[slot] = s.thin_minutes * _MINUTE, s.window_hours * _HOUR

    def relevant(self, s: Samples) -> np.ndarray:
        return ((s.kind == VITALS) & (s.battery == s.battery)) | (
            (s.kind == EVENT) & (s.event == EVENTS["low_battery"])
        )

    def absorb(self, rows: np.ndarray, s: Samples) -> np.ndarray:
        # The compiled kernel does what ``absorb_numpy`` does, reading by reading,
        # several readings of an elder in one call (``sequential``).
        c = self.cols
        return fast_kernels.battery_absorb(
            np.ascontiguousarray(rows, np.int64),
            np.ascontiguousarray(s.t, np.float64),
            np.ascontiguousarray(s.kind, np.int8),
            np.ascontiguousarray(s.battery, np.float64),
            VITALS,
            c.last_t,
            c.last_pct,
            c.low,
            c.hist_t,
            c.hist_p,
            c.hist_n,
            c.low_pct,
            c.rise,
            c.thin,
            c.window,
        )

    def absorb_numpy(self, rows: np.ndarray, s: Samples) -> np.ndarray:
        """``absorb`` as numpy operations over all rows (the kernel's reference)."""
        c = self.cols
        t, pct = s.t, s.battery
        quiet = (s.kind == VITALS) & ~(pct <= c.low_pct[rows])  # the device's event: the object
        # A level older than the last one changes nothing (LowBatteryRule.update).
        take = quiet & ~(t < c.last_t[rows])
        n = c.hist_n[rows]
        low = c.low[rows]
        charging = (low == low) & (pct >= low + c.rise[rows])
        n = np.where(charging, 0, n)  # a new discharge starts
        low = np.where(charging | (low != low), pct, np.fmin(low, pct))
        last_h = c.hist_t[rows, np.maximum(n - 1, 0)]
        append = take & ((n == 0) | ~(t - last_h < c.thin[rows]))
        quiet &= ~(append & (n >= HISTORY))
        take &= quiet
        r = rows[take]
        c.last_t[r], c.last_pct[r], c.low[r] = t[take], pct[take], low[take]
        c.hist_n[r] = n[take]
        a = np.flatnonzero(append & take)
        if a.size:
            ra, na = rows[a], n[a]
            c.hist_t[ra, na], c.hist_p[ra, na] = t[a], pct[a]
            na = na + 1
            # Forget samples older than the window: a prefix (the history is in order).
            h_t, h_p = c.hist_t[ra], c.hist_p[ra]
            horizon = (t[a] - c.window[ra])[:, None]
            live = np.arange(HISTORY) < na[:, None]
            old = (live & (h_t < horizon)).sum(1)
            src = np.minimum(np.arange(HISTORY) + old[:, None], HISTORY - 1)
            keep = np.arange(HISTORY) < (na - old)[:, None]
            c.hist_t[ra] = np.where(keep, np.take_along_axis(h_t, src, 1), 0.0)
            c.hist_p[ra] = np.where(keep, np.take_along_axis(h_p, src, 1), 0.0)
            c.hist_n[ra] = na - old
        return quiet

    def load(self, slot: int, t: float) -> bool:
        picked = self.rules[slot]
        if picked is None:
            return False
        st = picked[0].snapshot()
        hist, last = st["history"], st["last"]
        if st["open"] is not None or len(hist) > HISTORY or not _floats(st["low"]):
            return False
        if not _floats(*(x for e in hist for x in e), *(last or ())):
            return False
        if any(hist[i][0] > hist[i + 1][0] for i in range(len(hist) - 1)):
            return False
        c = self.cols
        c.last_t[slot], c.last_pct[slot] = last if last is not None else (np.nan, np.nan)
        c.low[slot] = _fl(st["low"])
        c.hist_n[slot] = len(hist)
        c.hist_t[slot] = [e[0] for e in hist] + [0.0] * (HISTORY - len(hist))
        c.hist_p[slot] = [e[1] for e in hist] + [0.0] * (HISTORY - len(hist))
        return True

    def state(self, slot: int) -> dict[str, Any]:
        c = self.cols
        n = int(c.hist_n[slot])
        last_t = float(c.last_t[slot])
        hist = zip(c.hist_t[slot, :n].tolist(), c.hist_p[slot, :n].tolist(), strict=True)
        return {
            "history": [[a, b] for a, b in hist],
            "low": _opt(float(c.low[slot])),
            "last": None if last_t != last_t else [last_t, float(c.last_pct[slot])],
            "open": None,
        }


# --- inactivity ------------------------------------------------------------------------


class InactivityGroup(StateTwin):
    """``InactivityRule`` while worn and not yet due: stillness clock, steps and anchor."""

    MIRRORS = (
        InactivityRule,
        InactivitySettings,
        _merge,
        is_device_message,
        haversine_m,
    )
    FINGERPRINT = "a655e43cc7c2f35a"

    name = "inactivity"
    kinds = frozenset({VITALS, POSITION, EVENT, STATUS})
    events = ALL_EVENTS
    KEYS: Final = frozenset(
        {"since", "worn", "last_data", "steps", "steps_acc", "anchor", "away", "open"}
    )

    def columns(self) -> Table:
        nan = ((), np.float64, np.nan)
        return Table(
            worn=((), np.bool_, True),
            since=nan,  # NaN while not worn
            due=nan,  # first_due(since, ...) once computed (inf: never); NaN: not yet
            last_data=nan,
            steps_t=nan,
            steps_n=((), np.int64, 0),
            steps_acc=((), np.int64, 0),
            a_lat=nan,  # the anchor: where last seen moving, and by which source
            a_lon=nan,
            a_acc=nan,
            a_src=((), np.int8, -1),
            away=((), np.bool_, False),
            hold_s=((), np.float64, 3 * _HOUR),
            min_steps=((), np.int64, 5),
            move_m=((), np.float64, 50.0),
            sigmas=((), np.float64, 3.0),
            max_acc=((), np.float64, 100.0),
        )

    def pick(self, rules: list[Any]) -> tuple[tuple[Any, ...], int] | None:
        return _pick(rules, InactivityRule, self.KEYS)

    def bind(self, slot: int, rules: list[Any]) -> None:
        super().bind(slot, rules)
        if self.rules[slot] is not None:
            s, c = self.rules[slot][0].settings, self.cols
            c.hold_s[slot], c.min_steps[slot] = s.threshold_minutes * _MINUTE, s.min_steps
            c.move_m[slot], c.sigmas[slot], c.max_acc[slot] = s.move_m, s.move_sigmas, s.max_acc_m

    def relevant(self, s: Samples) -> np.ndarray:
        return _device_message(s)

    def _still_due(self, rows: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Whether stillness may fall due by ``t`` (``_check``; never while not worn)."""
        return _falls_due(self, rows, self.cols.since, t, "threshold_minutes")

    def absorb(self, rows: np.ndarray, s: Samples) -> np.ndarray:
        c = self.cols
        t = s.t
        worn = c.worn[rows]
        off = ((s.kind == VITALS) & (s.worn == 0.0)) | (
            (s.kind == EVENT) & (s.event == EVENTS["off_wrist"])
        )
        on = ((s.kind == VITALS) & (s.worn == 1.0)) | (
            (s.kind == EVENT) & (s.event == EVENTS["on_wrist"])
        )
        # A change of wear state, or stillness due (_check before the reading): the object.
        quiet = np.where(worn, ~off, ~on) & ~self._still_due(rows, t)
        moved = np.zeros(rows.size, bool)
        # Steps since the last movement (InactivityRule._steps).
        v = np.flatnonzero(quiet & (s.kind == VITALS) & (s.steps == s.steps))
        if v.size:
            r, tv, count = rows[v], t[v], s.steps[v].astype(np.int64)
            had = c.steps_t[r] == c.steps_t[r]
            fresh = ~(tv < c.steps_t[r])  # an older count is ignored
            prev = c.steps_n[r]
            inc = np.where(count >= prev, count - prev, count)
            acc = np.where(had & fresh, c.steps_acc[r] + inc, c.steps_acc[r])
            c.steps_t[r] = np.where(fresh, tv, c.steps_t[r])
            c.steps_n[r] = np.where(fresh, count, prev)
            c.steps_acc[r] = acc
            moved[v] = had & fresh & (acc >= c.min_steps[r])
        # Two fixes in a row far from the anchor (InactivityRule._position).
        p = np.flatnonzero(quiet & (s.kind == POSITION))
        if p.size:
            moved[p] = self._positions(rows[p], s.take(p))
        # The stillness clock: from the last movement, or the first message worn.
        r = rows[quiet]
        c.last_data[r] = np.fmax(c.last_data[r], t[quiet])
        restart = quiet & worn & (moved | (c.since[rows] != c.since[rows]))
        rr = rows[restart]
        c.since[rr], c.due[rr] = t[restart], np.nan
        c.steps_acc[rows[quiet & moved]] = 0
        return quiet

    def _positions(self, rows: np.ndarray, s: Samples) -> np.ndarray:
        c = self.cols
        moved = np.zeros(rows.size, bool)
        usable = (s.src != SOURCES["lbs"]) & ~(s.acc > c.max_acc[rows])
        # No anchor, or one from another positioning system: this fix is the anchor.
        new = usable & ((c.a_lat[rows] != c.a_lat[rows]) | (c.a_src[rows] != s.src))
        judge = np.flatnonzero(usable & ~new)
        r = rows[judge]
        lat, lon, acc = s.lat[judge], s.lon[judge], s.acc[judge]
        a_lat, a_lon, a_acc = c.a_lat[r], c.a_lon[r], c.a_acc[r]
        noise = c.sigmas[r] * np.hypot(a_acc, acc) * ACC_TO_SIGMA
        limit = np.maximum(c.move_m[r], noise)
        dist = _haversine(a_lat, a_lon, lat, lon)
        far = dist > limit
        # numpy's trigonometry may differ from the math module's in the last bit:
        # near the threshold the rule's own functions decide.
        close = np.flatnonzero(np.abs(dist - limit) <= 1e-6 * (1.0 + limit))
        for i in close.tolist():
            n = float(c.sigmas[r[i]]) * math.hypot(float(a_acc[i]), float(acc[i])) * ACC_TO_SIGMA
            exact = haversine_m(float(a_lat[i]), float(a_lon[i]), float(lat[i]), float(lon[i]))
            far[i] = exact > max(float(c.move_m[r[i]]), n)
        go = far & c.away[r]
        moved[judge] = go
        # The same place: the anchor becomes the inverse-variance mean (``_merge``).
        same = np.flatnonzero(~far)
        if same.size:
            m_lat, m_lon, m_acc, odd = _merged(
                a_lat[same], a_lon[same], a_acc[same], lat[same], lon[same], acc[same]
            )
            c.a_lat[r[same]], c.a_lon[r[same]], c.a_acc[r[same]] = m_lat, m_lon, m_acc
            for i in same[odd].tolist():  # a rounding too close to call: the rule's own
                row, name = int(r[i]), _SRC[int(c.a_src[r[i]])]
                anchor = [float(a_lat[i]), float(a_lon[i]), float(a_acc[i]), name]
                fix = [float(lat[i]), float(lon[i]), float(acc[i]), name]
                c.a_lat[row], c.a_lon[row], c.a_acc[row], _ = _merge(anchor, fix)
        here = np.flatnonzero(new)
        here = np.concatenate([here, judge[go]])
        rh = rows[here]
        c.a_lat[rh], c.a_lon[rh], c.a_acc[rh], c.a_src[rh] = (
            s.lat[here],
            s.lon[here],
            s.acc[here],
            s.src[here],
        )
        c.away[rows[np.flatnonzero(new)]] = False
        c.away[r] = far & ~go
        return moved

    def tick(self, t: float) -> np.ndarray:
        parked = np.flatnonzero(self.asleep)
        return parked[self._still_due(parked, np.full(parked.size, t))]

    def load(self, slot: int, t: float) -> bool:
        picked = self.rules[slot]
        if picked is None:
            return False
        st = picked[0].snapshot()
        steps, anchor = st["steps"], st["anchor"]
        if st["open"] is not None or type(st["worn"]) is not bool:
            return False
        if not _floats(st["since"], st["last_data"], *(anchor or ())[:3]):
            return False
        if anchor is not None and (len(anchor) != 4 or anchor[3] not in SOURCES):
            return False
        if steps is not None and (type(steps[0]) is not float or type(steps[1]) is not int):
            return False
        if type(st["steps_acc"]) is not int or type(st["away"]) is not bool:
            return False
        c = self.cols
        c.worn[slot] = st["worn"]
        c.since[slot], c.due[slot] = _fl(st["since"]), np.nan
        c.last_data[slot] = _fl(st["last_data"])
        c.steps_t[slot], c.steps_n[slot] = steps if steps is not None else (np.nan, 0)
        c.steps_acc[slot] = st["steps_acc"]
        c.a_lat[slot], c.a_lon[slot], c.a_acc[slot] = anchor[:3] if anchor else (np.nan,) * 3
        c.a_src[slot] = SOURCES[anchor[3]] if anchor else -1
        c.away[slot] = st["away"]
        return not self._still_due(np.array([slot]), np.array([t]))[0]

    def state(self, slot: int) -> dict[str, Any]:
        c = self.cols
        steps_t = float(c.steps_t[slot])
        a_lat = float(c.a_lat[slot])
        return {
            "since": _opt(float(c.since[slot])),
            "worn": bool(c.worn[slot]),
            "last_data": _opt(float(c.last_data[slot])),
            "steps": None if steps_t != steps_t else [steps_t, int(c.steps_n[slot])],
            "steps_acc": int(c.steps_acc[slot]),
            "anchor": None
            if a_lat != a_lat
            else [a_lat, float(c.a_lon[slot]), float(c.a_acc[slot]), _SRC[int(c.a_src[slot])]],
            "away": bool(c.away[slot]),
            "open": None,
        }


def _round(v: np.ndarray, digits: int) -> tuple[np.ndarray, np.ndarray]:
    """``round(v, digits)`` elementwise, and where numpy's rounding may differ from it.

    ``np.round`` scales, rounds to an integer and scales back; Python rounds the
    exact decimal value.  They agree unless the scaled value is a hair from a half.
    """
    scaled = v * 10.0**digits
    frac = scaled - np.floor(scaled)
    return np.round(v, digits), np.abs(frac - 0.5) < 1e-6


def _merged(
    a_lat: np.ndarray,
    a_lon: np.ndarray,
    a_acc: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    acc: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``inactivity._merge`` elementwise; the last array flags roundings to redo in Python."""
    wa, wf = np.power(a_acc, -2.0), np.power(acc, -2.0)
    m_lat, odd_lat = _round((wa * a_lat + wf * lat) / (wa + wf), 7)
    m_lon, odd_lon = _round((wa * a_lon + wf * lon) / (wa + wf), 7)
    m_acc, odd_acc = _round(np.power(wa + wf, -0.5), 1)
    return m_lat, m_lon, m_acc, odd_lat | odd_lon | odd_acc


def _haversine(
    lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray
) -> np.ndarray:
    """``geometry.haversine_m`` elementwise (equal to it up to the last bit or so)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2 - lon1)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(1.0, np.sqrt(a)))
