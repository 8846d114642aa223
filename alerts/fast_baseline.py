"""Vectorised twin of ``baseline.BaselineDriftRule`` between its hourly verdicts.

Within an hour the rule only collects: the step activity (``alerts.fast_activity``,
with the rule's own stricter settings), and each at-rest pulse sample of the open
local hour with the count of distinct at-rest minutes.  Those are rows here.  The
hour's closing -- scoring against the elder's history, the CUSUM, a possible
finding -- is done by the rule object itself: a reading or tick that closes an hour
wakes it, unless the hour had too few resting minutes to be scored, in which case
closing it only empties it (done here).  History, CUSUM and episode stay in the
object throughout: they cannot change between hours.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from alerts import fast_activity, fast_kernels
from alerts.baseline import BaselineDriftRule, BaselineSettings
from alerts.fastpath import EVENT, EVENTS, VITALS, Group, Samples, Table

NONE: Final = np.iinfo(np.int64).min
INCREMENTS: Final = 24  # 15 min of increments at one reading a minute needs 16
VALUES: Final = 64  # at-rest samples of one hour a row holds (60 at one a minute)
_HOUR: Final = 3600
ACTIVITY: Final = BaselineSettings().activity
_KERNEL_CODES: Final = np.array([VITALS, EVENT, EVENTS["on_wrist"], EVENTS["off_wrist"]], np.int64)
_KERNEL_ACTIVITY: Final = np.array(
    [
        ACTIVITY.lookback_minutes * 60.0,
        ACTIVITY.stale_minutes * 60.0,
        float(ACTIVITY.rest_max_steps),
        float(ACTIVITY.assume_rest_if_unknown),
    ]
)


class BaselineGroup(Group):
    name = "baseline"
    sequential = True
    kinds = frozenset({VITALS, EVENT})
    events = frozenset({"off_wrist", "on_wrist"})

    def columns(self) -> Table:
        return Table(
            **fast_activity.columns(INCREMENTS),
            worn=((), np.bool_, True),
            offset=((), np.int64, 0),  # the elder's UTC offset, seconds
            min_rest=((), np.int64, 10),
            hour=((), np.int64, NONE),
            vals=((VALUES,), np.float64, 0.0),
            n_vals=((), np.int64, 0),
            minutes=((), np.int64, 0),
            last_minute=((), np.int64, -1),
        )

    def pick(self, rules: list[Any]) -> tuple[tuple[Any, ...], int] | None:
        mine = [(i, r) for i, r in enumerate(rules) if type(r) is BaselineDriftRule]
        if len(mine) != 1:
            return None
        i, r = mine[0]
        s = r.settings
        if s.param != "hr" or s.activity != ACTIVITY:
            return None
        return (r,), 1 << i

    def bind(self, slot: int, rules: list[Any]) -> None:
        super().bind(slot, rules)
        picked = self.rules[slot]
        if picked is not None:
            self.cols.offset[slot] = picked[0]._offset
            self.cols.min_rest[slot] = picked[0].settings.min_rest_minutes

    def _close_empty(self, rows: np.ndarray) -> None:
        """Close hours with too few resting minutes to score: ``_roll`` just empties them."""
        c = self.cols
        c.hour[rows] = NONE
        c.n_vals[rows] = 0
        c.minutes[rows] = 0
        c.last_minute[rows] = -1

    def on_events(self, rows: np.ndarray, s: Samples) -> np.ndarray:
        worn = self.cols.worn[rows]  # only a change of wear state matters: the object's
        return np.where(worn, s.event == EVENTS["on_wrist"], s.event == EVENTS["off_wrist"])

    def absorb(self, rows: np.ndarray, s: Samples) -> np.ndarray:
        # The compiled kernel does what ``on_events`` / ``on_vitals_numpy`` do, reading
        # by reading, several readings of an elder in one call (``sequential``).
        c = self.cols
        return fast_kernels.baseline_absorb(
            np.ascontiguousarray(rows, np.int64),
            np.ascontiguousarray(s.t, np.float64),
            np.ascontiguousarray(s.kind, np.int8),
            np.ascontiguousarray(s.event, np.int8),
            _KERNEL_CODES,
            np.ascontiguousarray(s.steps, np.float64),
            np.ascontiguousarray(s.worn, np.float64),
            np.ascontiguousarray(s.hr, np.float64),
            _KERNEL_ACTIVITY,
            NONE,
            c.offset,
            c.hour,
            c.n_vals,
            c.minutes,
            c.last_minute,
            c.min_rest,
            c.worn,
            c.vals,
            c.a_has,
            c.a_steps,
            c.a_t,
            c.inc_t,
            c.inc_v,
            c.inc_n,
            c.inc_sum,
        )

    def on_vitals_numpy(self, rows: np.ndarray, s: Samples) -> np.ndarray:
        """``on_vitals`` as numpy operations over all rows (the kernel's reference)."""
        c = self.cols
        local = s.t.astype(np.int64) + c.offset[rows]  # int(t): truncation, as the rule
        hour = local // _HOUR
        open_hour = c.hour[rows]
        closes = (open_hour != NONE) & (hour > open_hour)
        scored = closes & (c.minutes[rows] >= c.min_rest[rows])
        self._close_empty(rows[closes & ~scored])
        worn = c.worn[rows]
        quiet = ~scored & np.where(worn, s.worn != 0.0, s.worn != 1.0)
        quiet &= ~((open_hour != NONE) & (hour < open_hour))

        act = fast_activity.observe(c, rows, s.t, s.steps, ACTIVITY)
        quiet &= ~act.full
        rest, known = fast_activity.rest_now(act, s.t, ACTIVITY)
        take = quiet & worn & ~np.isnan(s.hr) & known & rest  # at_rest(t) is True
        n = c.n_vals[rows]
        quiet &= ~(take & (n >= VALUES))
        take &= quiet

        fast_activity.commit(act, quiet)
        r = rows[take]
        h = np.where(c.hour[r] == NONE, hour[take], c.hour[r])
        c.hour[r] = h
        c.vals[r, n[take]] = s.hr[take]
        c.n_vals[r] = n[take] + 1
        minute = local[take] // 60
        new = minute != c.last_minute[r]
        c.last_minute[r] = np.where(new, minute, c.last_minute[r])
        c.minutes[r] += new
        return quiet

    def tick(self, t: float) -> np.ndarray:
        c = self.cols
        hour = (int(t) + c.offset) // _HOUR
        closes = self.asleep & (c.hour != NONE) & (hour > c.hour)
        if not closes.any():
            return np.zeros(0, np.int64)
        scored = closes & (c.minutes >= c.min_rest)
        self._close_empty(np.flatnonzero(closes & ~scored))
        return np.flatnonzero(scored)  # the rule object scores the hour

    def load(self, slot: int, t: float) -> bool:
        picked = self.rules[slot]
        if picked is None:
            return False
        r: BaselineDriftRule = picked[0]
        c = self.cols
        if type(r.worn) is not bool or len(r.values) > VALUES:
            return False
        if not fast_activity.load(c, slot, r.activity):
            return False
        c.worn[slot] = r.worn
        c.hour[slot] = NONE if r.hour is None else r.hour
        c.vals[slot, : len(r.values)] = r.values
        c.n_vals[slot] = len(r.values)
        c.minutes[slot] = r.minutes
        c.last_minute[slot] = r.last_minute
        return True

    def store(self, slot: int) -> None:
        picked = self.rules[slot]
        assert picked is not None
        r: BaselineDriftRule = picked[0]
        c = self.cols
        last_steps, last_t, incs = fast_activity.fields(c, slot)
        a = r.activity
        a.last_steps, a.last_t, a.incs = last_steps, last_t, incs
        r.worn = bool(c.worn[slot])
        r.hour = None if c.hour[slot] == NONE else int(c.hour[slot])
        r.values = c.vals[slot, : int(c.n_vals[slot])].tolist()
        r.minutes = int(c.minutes[slot])
        r.last_minute = int(c.last_minute[slot])
