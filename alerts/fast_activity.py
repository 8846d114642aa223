"""Vectorised twin of ``vitals_rule.Activity``: "at rest?" from the step counter, per row.

Columns (one row per elder): the last step count and its time, and the recent
non-zero increments ``[t, steps]`` as a small left-aligned buffer of ``k`` entries
(oldest first, as ``Activity.incs``) with their running sum.  ``observe`` computes
the new rows for one reading per row without writing them, so a group can still
decide not to take the reading; ``commit`` writes them for the rows it took.  A
reading that would overflow the buffer is reported in ``full`` (the group then
leaves it to the rule object).

Most readings neither add an increment (the elder is sitting) nor let one expire,
so the buffers are only touched for the rows where something changes; and right
after a step count at ``t`` every increment left is younger than the look-back, so
``at_rest(t)`` is the running sum against the threshold.  Increments are whole step
counts: their float sums are exact, whatever the order of addition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from alerts.fastpath import Table, _all
from alerts.vitals_rule import Activity, ActivitySettings

_MINUTE = 60.0


def columns(k: int) -> dict[str, tuple[tuple[int, ...], Any, Any]]:
    return {
        "a_has": ((), np.bool_, False),  # a step count was seen (Activity.last_steps is not None)
        "a_steps": ((), np.int64, 0),
        "a_t": ((), np.float64, np.nan),  # NaN: Activity.last_t is None
        "inc_t": ((k,), np.float64, 0.0),
        "inc_v": ((k,), np.float64, 0.0),
        "inc_n": ((), np.int64, 0),
        "inc_sum": ((), np.float64, 0.0),
    }


@dataclass(slots=True)
class Observed:
    """Activity rows after one reading each (not yet written back).

    Per row: ``has``, ``steps``, ``t``, ``inc_n``, ``inc_sum``.  The buffers of the
    rows whose increments changed (positions ``changed``) are ``inc_t``/``inc_v``.
    """

    cols: Table
    rows: np.ndarray
    has: np.ndarray
    steps: np.ndarray
    t: np.ndarray
    inc_n: np.ndarray
    inc_sum: np.ndarray
    changed: np.ndarray  # positions (into rows) whose buffers changed
    inc_t: np.ndarray  # their new buffers
    inc_v: np.ndarray
    pruned: np.ndarray  # bool per row: increments older than the look-back are gone
    full: np.ndarray  # the increment buffer would overflow

    def buffers(self, at: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(inc_t, inc_v, inc_n)`` after the reading, for positions ``at``."""
        inc_t = self.cols.inc_t[self.rows[at]]
        inc_v = self.cols.inc_v[self.rows[at]]
        where = np.full(self.rows.size, -1)
        where[self.changed] = np.arange(self.changed.size)
        mine = where[at]
        hit = mine >= 0
        inc_t[hit] = self.inc_t[mine[hit]]
        inc_v[hit] = self.inc_v[mine[hit]]
        return inc_t, inc_v, self.inc_n[at]


def observe(
    cols: Table, rows: np.ndarray, t: np.ndarray, steps: np.ndarray, s: ActivitySettings
) -> Observed:
    """``Activity.observe(t, steps)`` for one reading per row."""
    k = cols.inc_t.shape[1]
    has_steps = steps == steps  # not NaN
    had = cols.a_has[rows]
    last = cols.a_steps[rows].astype(np.float64)  # counts are < 2**53: exact
    inc_n = cols.inc_n[rows]
    # A counter that went down is a new day (or a reset): its value is the increment.
    inc = np.where(steps >= last, steps - last, steps)
    add = has_steps & had & (inc > 0)
    full = add & (inc_n >= k)
    add &= ~full
    horizon = t - s.lookback_minutes * _MINUTE
    expire = has_steps & (inc_n > 0) & (cols.inc_t[rows, 0] <= horizon)
    changed = np.flatnonzero(add | expire)
    inc_sum = cols.inc_sum[rows]
    inc_t = cols.inc_t[rows[changed]]
    inc_v = cols.inc_v[rows[changed]]
    if changed.size:
        n = inc_n[changed]
        a = add[changed]
        i = np.flatnonzero(a)
        inc_t[i, n[i]] = t[changed][i]
        inc_v[i, n[i]] = inc[changed][i]
        n = n + a
        # Forget increments older than the look-back: a prefix, the buffer being in order.
        live = np.arange(k) < n[:, None]
        old = (live & (inc_t <= horizon[changed][:, None])).sum(1) * has_steps[changed]
        sh = np.flatnonzero(old)  # only these rows shift; the others just appended
        if sh.size:
            src = np.arange(k) + old[sh, None]
            keep = src < n[sh, None]
            src = np.minimum(src, k - 1)
            inc_t[sh] = np.where(keep, np.take_along_axis(inc_t[sh], src, 1), 0.0)
            inc_v[sh] = np.where(keep, np.take_along_axis(inc_v[sh], src, 1), 0.0)
        inc_n = inc_n.copy()
        inc_n[changed] = n - old
        inc_sum = inc_sum.copy()
        # Entries past ``inc_n`` are 0.0 in every buffer (as left here, by ``load`` and
        # by the fill), so the sum of a row is the sum of its increments.
        inc_sum[changed] = inc_v.sum(1)
    return Observed(
        cols=cols,
        rows=rows,
        has=had | has_steps,
        steps=np.where(has_steps, steps, last),
        t=np.where(has_steps, t, cols.a_t[rows]),
        inc_n=inc_n,
        inc_sum=inc_sum,
        changed=changed,
        inc_t=inc_t,
        inc_v=inc_v,
        pruned=has_steps,
        full=full,
    )


def rest_now(o: Observed, t: np.ndarray, s: ActivitySettings) -> tuple[np.ndarray, np.ndarray]:
    """``Activity.at_rest(t)`` at each row's own reading time ``t``: ``(rest, known)``.

    ``known`` is False where ``at_rest`` says None; ``rest`` is then
    ``s.assume_rest_if_unknown``.
    """
    known = (o.t == o.t) & ~(t - o.t > s.stale_minutes * _MINUTE)
    recent = o.inc_sum
    stale = np.flatnonzero(~o.pruned & known)  # no step count now: old increments may linger
    if stale.size:
        recent = recent.copy()
        recent[stale] = _recent(*o.buffers(stale), t[stale, None], s)[:, 0]
    return np.where(known, recent <= s.rest_max_steps, s.assume_rest_if_unknown), known


def rest_at(o: Observed, at: np.ndarray, t: np.ndarray, s: ActivitySettings) -> np.ndarray:
    """``Activity.at_rest`` for positions ``at`` at times ``t`` (one row of times each)."""
    return _rest(o.t[at], *o.buffers(at), t, s)


def rest_rows(cols: Table, rows: np.ndarray, t: np.ndarray, s: ActivitySettings) -> np.ndarray:
    """``Activity.at_rest`` of stored rows at times ``t`` (one row of times each)."""
    return _rest(cols.a_t[rows], cols.inc_t[rows], cols.inc_v[rows], cols.inc_n[rows], t, s)


def _rest(
    last_t: np.ndarray,
    inc_t: np.ndarray,
    inc_v: np.ndarray,
    inc_n: np.ndarray,
    t: np.ndarray,
    s: ActivitySettings,
) -> np.ndarray:
    last_t = last_t[:, None]
    known = (last_t == last_t) & ~(t - last_t > s.stale_minutes * _MINUTE)
    return np.where(
        known, _recent(inc_t, inc_v, inc_n, t, s) <= s.rest_max_steps, s.assume_rest_if_unknown
    )


def _recent(
    inc_t: np.ndarray, inc_v: np.ndarray, inc_n: np.ndarray, t: np.ndarray, s: ActivitySettings
) -> np.ndarray:
    """Steps in increments younger than the look-back from each time in ``t`` (rows x times)."""
    k = inc_t.shape[1]
    horizon = (t - s.lookback_minutes * _MINUTE)[:, :, None]
    live = (np.arange(k) < inc_n[:, None, None]) & (inc_t[:, None, :] > horizon)
    return np.where(live, inc_v[:, None, :], 0.0).sum(-1)


def commit(o: Observed, take: np.ndarray) -> None:
    """Write the observed rows for the readings taken (``take``: mask over the rows)."""
    cols, rows = o.cols, o.rows
    sel = _all(take)
    r = rows[sel]
    cols.a_has[r] = o.has[sel]
    cols.a_steps[r] = o.steps[sel].astype(np.int64)
    cols.a_t[r] = o.t[sel]
    cols.inc_n[r] = o.inc_n[sel]
    cols.inc_sum[r] = o.inc_sum[sel]
    mine = take[o.changed]
    if mine.any():
        r = rows[o.changed[mine]]
        cols.inc_t[r] = o.inc_t[mine]
        cols.inc_v[r] = o.inc_v[mine]


def load(cols: Table, slot: int, a: Activity) -> bool:
    """Copy an ``Activity`` into a row; False if it does not fit (kept by the object)."""
    k = cols.inc_t.shape[1]
    incs = a.incs
    if len(incs) > k or any(incs[i][0] > incs[i + 1][0] for i in range(len(incs) - 1)):
        return False
    if a.last_steps is not None and type(a.last_steps) is not int:
        return False
    if any(v != int(v) for _, v in incs):  # whole steps: sums exact in any order
        return False
    cols.a_has[slot] = a.last_steps is not None
    cols.a_steps[slot] = a.last_steps or 0
    cols.a_t[slot] = np.nan if a.last_t is None else a.last_t
    cols.inc_t[slot] = [ts for ts, _ in incs] + [0.0] * (k - len(incs))
    cols.inc_v[slot] = [v for _, v in incs] + [0.0] * (k - len(incs))
    cols.inc_n[slot] = len(incs)
    cols.inc_sum[slot] = sum(v for _, v in incs)
    return True


def fields(cols: Table, slot: int) -> tuple[int | None, float | None, list[list[float]]]:
    """``(last_steps, last_t, incs)`` of a row, as ``Activity`` holds them."""
    n = int(cols.inc_n[slot])
    last_t = float(cols.a_t[slot])
    ts, vs = cols.inc_t[slot, :n].tolist(), cols.inc_v[slot, :n].tolist()
    return (
        int(cols.a_steps[slot]) if cols.a_has[slot] else None,
        None if math.isnan(last_t) else last_t,
        [[x, y] for x, y in zip(ts, vs, strict=True)],
    )


def same(a: Activity, b: Activity) -> bool:
    """Two rules fed the same readings hold the same activity: check before sharing a row."""
    return a.last_steps == b.last_steps and a.last_t == b.last_t and a.incs == b.incs
