"""Compiled kernels of the twins that take readings one by one (``Group.sequential``).

``MinuteGroup`` and ``BaselineGroup`` were a few dozen numpy operations for every
round of every micro-batch, most over small per-row arrays (7 rules x 5 parameters,
step increments); ``BatteryGroup``, ``OfflineGroup`` and ``WearGroup`` are simpler.
Here the same computations are written out reading by reading and compiled (numba,
``cache=True``: compiled once per machine, then loaded in a fraction of a second), so
a micro-batch costs one call per group, and an elder's buffered upload (tens of
readings in one batch) is taken in the same call instead of waking the rule objects.
Each kernel follows the numpy twin it replaced, kept as ``*_numpy`` (its readable
reference); ``tests/test_fastpath.py`` checks both against the rule objects.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from alerts.vitals_rule import ABNORMAL, NEUTRAL, NORMAL

_NORMAL = float(NORMAL)
_NEUTRAL = float(NEUTRAL)
_ABNORMAL = float(ABNORMAL)


@njit(cache=True, nogil=True)
def _band(v: float, uppers: np.ndarray, scores: np.ndarray, n: int) -> int:
    # ``band_scores``: the first band whose upper bound is >= v (NaN: the last band).
    i = 0
    while i < n and not uppers[i] >= v:
        i += 1
    return scores[min(i, n - 1)]


@njit(cache=True, nogil=True)
def _recent(
    changed: bool,
    bt: np.ndarray,
    bv: np.ndarray,
    inc_t: np.ndarray,
    inc_v: np.ndarray,
    row: int,
    n: int,
    horizon: float,
) -> float:
    """``fast_activity._recent``: steps in the increments younger than ``horizon``,
    from the buffers ``_observe`` left (``bt``/``bv`` if ``changed``, else the row's)."""
    total = 0.0
    if changed:
        for j in range(n):
            if bt[j] > horizon:
                total += bv[j]
    else:
        for j in range(n):
            if inc_t[row, j] > horizon:
                total += inc_v[row, j]
    return total


@njit(cache=True, nogil=True)
def _observe(
    row: int,
    ti: float,
    st: float,
    lookback: float,
    bt: np.ndarray,
    bv: np.ndarray,
    a_has: np.ndarray,
    a_steps: np.ndarray,
    a_t: np.ndarray,
    inc_t: np.ndarray,
    inc_v: np.ndarray,
    inc_n: np.ndarray,
    inc_sum: np.ndarray,
) -> tuple[bool, bool, int, float, bool, float, float]:
    """``fast_activity.observe`` of one row: if its buffers change, the new ones go to
    ``bt``/``bv`` (else they are the row's own).

    Returns ``(changed, full, inc_n, inc_sum, has, steps, t)`` as ``Observed`` has them.
    """
    k = inc_t.shape[1]
    has_steps = st == st
    had = a_has[row]
    last = float(a_steps[row])
    nn = inc_n[row]
    # A counter that went down is a new day (or a reset): its value is the increment.
    inc = st - last if st >= last else st
    add = has_steps and had and inc > 0
    full = add and nn >= k
    if full:
        add = False
    horizon = ti - lookback
    expire = has_steps and nn > 0 and inc_t[row, 0] <= horizon
    changed = add or expire
    isum = inc_sum[row]
    if changed:
        for j in range(k):
            bt[j] = inc_t[row, j]
            bv[j] = inc_v[row, j]
        if add:
            bt[nn] = ti
            bv[nn] = inc
            nn += 1
        old = 0  # increments older than the look-back: a prefix
        if has_steps:
            for j in range(nn):
                if bt[j] <= horizon:
                    old += 1
        if old:
            for j in range(k):
                src = j + old
                if src < nn:
                    bt[j] = bt[min(src, k - 1)]
                    bv[j] = bv[min(src, k - 1)]
                else:
                    bt[j] = 0.0
                    bv[j] = 0.0
        nn -= old
        isum = 0.0  # whole step counts: exact in any order
        for j in range(k):
            isum += bv[j]
    o_steps = st if has_steps else last
    o_t = ti if has_steps else a_t[row]
    return changed, full, nn, isum, had or has_steps, o_steps, o_t


@njit(cache=True, nogil=True)
def push(
    rows: np.ndarray,
    w: int,
    nr: int,
    np_: int,
    none: int,
    bin_min: np.ndarray,
    bin_n: np.ndarray,
    pend_open: np.ndarray,
    pend: np.ndarray,
    pend_rest: np.ndarray,
    pend_l: np.ndarray,
    win: np.ndarray,
    w_last: np.ndarray,
    normals: np.ndarray,
    first_normal: np.ndarray,
    last_rest: np.ndarray,
    latest: np.ndarray,
) -> None:
    """``MinuteGroup._push``: close the open minute of ``rows`` (distinct)."""
    for row in rows:
        _push_row(
            row, w, nr, np_, none, bin_min, bin_n, pend_open, pend, pend_rest, pend_l, win,
            w_last, normals, first_normal, last_rest, latest,
        )  # fmt: skip


@njit(cache=True, nogil=True)
def _push_row(
    row: int,
    w: int,
    nr: int,
    np_: int,
    none: int,
    bin_min: np.ndarray,
    bin_n: np.ndarray,
    pend_open: np.ndarray,
    pend: np.ndarray,
    pend_rest: np.ndarray,
    pend_l: np.ndarray,
    win: np.ndarray,
    w_last: np.ndarray,
    normals: np.ndarray,
    first_normal: np.ndarray,
    last_rest: np.ndarray,
    latest: np.ndarray,
) -> None:
    if True:
        m = bin_min[row]
        slot = m % w
        for r in range(nr):
            if not pend_open[row, r]:
                continue
            win[row, slot, r, 0] = m
            win[row, slot, r, 1] = pend[row, r, 0]
            win[row, slot, r, 2] = pend[row, r, 1]
            win[row, slot, r, 3] = pend[row, r, 2]
            w_last[row, r] = m
            if pend[row, r, 0] == _NORMAL:
                normals[row, r] += 1
                if first_normal[row, r] == none:
                    first_normal[row, r] = m
        for p in range(np_):
            if pend_open[row, p]:
                last_rest[row, p] = pend_rest[row, p]
        if pend_open[row, nr - 1]:
            for p in range(np_):
                for j in range(3):
                    latest[row, p, j] = pend_l[row, p, j]
        for r in range(nr):
            pend_open[row, r] = False
        bin_min[row] = none
        for p in range(np_):
            bin_n[row, p] = 0


@njit(cache=True, nogil=True)
def minute_absorb(
    rows: np.ndarray,
    t: np.ndarray,
    minute: np.ndarray,
    kind: np.ndarray,
    event: np.ndarray,
    vals: np.ndarray,  # (rows, NP) in PARAMS order, NaN: absent
    steps: np.ndarray,
    s_worn: np.ndarray,
    consts: np.ndarray,  # see ``MinuteGroup._consts``
    ints: np.ndarray,  # [hr, spo2, samples, none, VITALS, EVENT, on_wrist, off_wrist, W]
    max_age: np.ndarray,
    exertion: np.ndarray,
    mid: np.ndarray,
    b_up: np.ndarray,  # per parameter band uppers / scores / lengths
    b_sc: np.ndarray,
    b_n: np.ndarray,
    s_up: np.ndarray,  # SpO2 tables by ``spo2_table``
    s_sc: np.ndarray,
    s_n: np.ndarray,
    # per-elder columns
    worn: np.ndarray,
    spo2_table: np.ndarray,
    hyper: np.ndarray,
    oxygen: np.ndarray,
    min_score: np.ndarray,
    medium_at: np.ndarray,
    rest_high: np.ndarray,
    bin_min: np.ndarray,
    bin_v: np.ndarray,
    bin_n: np.ndarray,
    last_t: np.ndarray,
    pend_open: np.ndarray,
    pend: np.ndarray,
    pend_rest: np.ndarray,
    pend_l: np.ndarray,
    latest: np.ndarray,
    a_has: np.ndarray,
    a_steps: np.ndarray,
    a_t: np.ndarray,
    inc_t: np.ndarray,
    inc_v: np.ndarray,
    inc_n: np.ndarray,
    inc_sum: np.ndarray,
    win: np.ndarray,
    w_last: np.ndarray,
    normals: np.ndarray,
    first_normal: np.ndarray,
    last_rest: np.ndarray,
) -> np.ndarray:
    """``MinuteGroup.on_vitals`` / ``on_events`` for each reading, in order.

    An elder may have several readings, contiguous and in event-time order; after the
    first one the group cannot take (False), the elder's later ones are not looked
    at (False too): the rule objects take them from there.
    """
    vitals_kind, event_kind, on_wrist, off_wrist, w_len = (
        ints[4],
        ints[5],
        ints[6],
        ints[7],
        ints[8],
    )
    lookback, stale, rest_max = consts[0], consts[1], consts[2]
    assume_rest = consts[3] != 0.0
    spo2_high_at = consts[4]
    hr_i, spo2_i, samples, none = ints[0], ints[1], ints[2], ints[3]
    npar = vals.shape[1]
    nr = npar + 2
    hra, partial = npar, npar + 1
    k = inc_t.shape[1]
    out = np.zeros(rows.size, np.bool_)
    has = np.zeros(npar, np.bool_)
    takes = np.zeros(nr, np.bool_)
    opens = np.zeros(nr, np.bool_)
    lt = np.zeros(nr)
    rest = np.zeros(nr, np.bool_)
    n = np.zeros(npar, np.int64)
    v = np.zeros((npar, samples))
    med = np.zeros(npar)
    score = np.zeros(npar, np.int64)
    srt = np.zeros(samples)
    bt = np.zeros(k)
    bv = np.zeros(k)
    pnd = np.zeros((nr, 3))
    pl = np.zeros((npar, 3))
    stopped = -1
    for i in range(rows.size):
        row = rows[i]
        if row == stopped:
            continue
        ti = t[i]
        mi = minute[i]
        w = worn[row]
        if kind[i] == event_kind:
            # Only a change of wear state does anything (it resets the window: the object's job).
            out[i] = (event[i] == on_wrist) if w else (event[i] == off_wrist)
            if not out[i]:
                stopped = row
            continue
        if kind[i] != vitals_kind:
            stopped = row
            continue
        open_min = bin_min[row]
        if open_min != none and mi > open_min:  # the open minute closes first (_roll)
            _push_row(
                row, w_len, nr, npar, none, bin_min, bin_n, pend_open, pend, pend_rest,
                pend_l, win, w_last, normals, first_normal, last_rest, latest,
            )  # fmt: skip
            open_min = none
        for p in range(npar):
            has[p] = vals[i, p] == vals[i, p] and w
        opened = open_min != none
        sw = s_worn[i]
        quiet = (sw != 0.0) if w else (sw != 1.0)
        if opened and mi < open_min:
            quiet = False
        if not opened:
            # A minute already pushed would open again (a reading behind a tick): the
            # objects then hold two entries of one minute, which the ring cannot.
            for r in range(nr):
                if w_last[row, r] >= mi:
                    quiet = False

        # --- fast_activity.observe ---
        st = steps[i]
        has_steps = st == st
        changed, full, nn, isum, o_has, o_steps, o_t = _observe(
            row, ti, st, lookback, bt, bv, a_has, a_steps, a_t, inc_t, inc_v, inc_n, inc_sum
        )
        if full:
            quiet = False
        # --- fast_activity.rest_now ---
        known = o_t == o_t and not ti - o_t > stale
        recent = isum
        if not has_steps and known:
            recent = _recent(changed, bt, bv, inc_t, inc_v, row, nn, ti - lookback)
        rest0 = (recent <= rest_max) if known else assume_rest

        # --- the minute's samples ---
        any_has = False
        for p in range(npar):
            any_has = any_has or has[p]
            takes[p] = has[p]
        takes[hra] = has[hr_i]
        takes[partial] = any_has
        for r in range(nr):
            lt[r] = ti if takes[r] else last_t[row, r]
            opens[r] = takes[r]
            rest[r] = rest0
        same = opened and mi == open_min
        if same:
            for p in range(npar):
                n[p] = bin_n[row, p]
                for j in range(samples):
                    v[p, j] = bin_v[row, p, j]
            for p in range(npar):
                if has[p]:
                    if n[p] >= samples:
                        quiet = False
                    else:
                        v[p, n[p]] = vals[i, p]
                        n[p] += 1
            any_n = False
            for p in range(npar):
                m = n[p]
                if m == 0:
                    med[p] = np.nan
                else:  # ``medians``: sort the first m, middle one or mean of two
                    for j in range(m):  # insertion sort: a few samples
                        x = v[p, j]
                        q = j
                        while q > 0 and srt[q - 1] > x:
                            srt[q] = srt[q - 1]
                            q -= 1
                        srt[q] = x
                    hi = srt[m // 2]
                    lo = srt[max(m // 2 - 1, 0)]
                    med[p] = hi if m % 2 == 1 else (lo + hi) / 2.0
                opens[p] = m > 0
                any_n = any_n or m > 0
            opens[hra] = n[hr_i] > 0
            opens[partial] = any_n
            for r in range(nr):  # ``fast_activity.rest_at`` each rule's last sample
                tr = lt[r]
                kn = o_t == o_t and not tr - o_t > stale
                if kn:
                    rest[r] = (
                        _recent(changed, bt, bv, inc_t, inc_v, row, nn, tr - lookback) <= rest_max
                    )
                else:
                    rest[r] = assume_rest
        else:
            for p in range(npar):
                n[p] = 1 if has[p] else 0
                v[p, 0] = vals[i, p]
                med[p] = vals[i, p]

        # --- MinuteGroup._judge ---
        tab = spo2_table[row]
        for p in range(npar):
            if p == spo2_i:
                score[p] = _band(med[p], s_up[tab], s_sc[tab], s_n[tab])
            else:
                score[p] = _band(med[p], b_up[p], b_sc[p], b_n[p])
        total = 0.0
        for p in range(npar):
            high = (hyper[row] and med[p] >= spo2_high_at) if p == spo2_i else med[p] >= mid[p]
            if score[p] < min_score[row, p]:
                ver = _NORMAL
            elif high and not rest[p] and exertion[p]:
                ver = _NEUTRAL
            else:
                ver = _ABNORMAL
            pnd[p, 0] = ver
            pnd[p, 1] = med[p]
            pnd[p, 2] = score[p]
            keep = opens[p] and (rest[partial] or not exertion[p])
            if keep:
                l_min = float(mi)
                l_val = med[p]
            else:
                l_min = np.nan if opens[p] else latest[row, p, 0]
                l_val = latest[row, p, 1]
            present = float(mi) - l_min <= max_age[p]
            if present:
                l_sc = float(score[p]) if keep else latest[row, p, 2]
                total += l_sc
            else:
                l_sc = -1.0
            pl[p, 0] = l_min if present else np.nan
            pl[p, 1] = l_val
            pl[p, 2] = l_sc
        total += oxygen[row]
        hr = med[hr_i]
        if hr < rest_high[row]:
            pnd[hra, 0] = _NORMAL
        else:
            pnd[hra, 0] = _ABNORMAL if rest[hra] else _NEUTRAL
        pnd[hra, 1] = hr
        pnd[hra, 2] = score[hr_i]
        pnd[partial, 0] = _ABNORMAL if total >= medium_at[row] else _NORMAL
        pnd[partial, 1] = total
        pnd[partial, 2] = total
        for r in range(nr):
            if opens[r] and pnd[r, 0] == _ABNORMAL:
                quiet = False
        out[i] = quiet
        if not quiet:
            stopped = row
            continue

        # --- take it: fast_activity.commit and the minute's rows ---
        a_has[row], a_steps[row], a_t[row] = o_has, np.int64(o_steps), o_t
        inc_n[row], inc_sum[row] = nn, isum
        if changed:
            inc_t[row, :] = bt
            inc_v[row, :] = bv
        bin_min[row] = mi if opens[partial] else none
        for p in range(npar):
            bin_n[row, p] = n[p]
            # Samples past ``bin_n`` are never read (``medians`` pads, a new one overwrites).
            for j in range(samples if same else 1):
                bin_v[row, p, j] = v[p, j]
            pend_rest[row, p] = rest[p]
            for j in range(3):
                pend_l[row, p, j] = pl[p, j]
        for r in range(nr):
            last_t[row, r] = lt[r]
            pend_open[row, r] = opens[r]
            for j in range(3):
                pend[row, r, j] = pnd[r, j]
    return out


@njit(cache=True, nogil=True)
def baseline_absorb(
    rows: np.ndarray,
    t: np.ndarray,
    kind: np.ndarray,
    event: np.ndarray,
    codes: np.ndarray,  # [VITALS, EVENT, on_wrist, off_wrist]
    steps: np.ndarray,
    s_worn: np.ndarray,
    hr: np.ndarray,
    consts: np.ndarray,  # [look-back s, stale s, rest max steps, assume rest (0/1)]
    none: int,
    offset: np.ndarray,
    hour_col: np.ndarray,
    n_vals: np.ndarray,
    minutes: np.ndarray,
    last_minute: np.ndarray,
    min_rest: np.ndarray,
    worn: np.ndarray,
    vals: np.ndarray,
    a_has: np.ndarray,
    a_steps: np.ndarray,
    a_t: np.ndarray,
    inc_t: np.ndarray,
    inc_v: np.ndarray,
    inc_n: np.ndarray,
    inc_sum: np.ndarray,
) -> np.ndarray:
    """``BaselineGroup.on_vitals`` / ``on_events`` for each reading, in order (as
    ``minute_absorb``: an elder's readings contiguous, none looked at after a refusal).
    """
    vitals_kind, event_kind, on_wrist, off_wrist = codes[0], codes[1], codes[2], codes[3]
    lookback, stale, rest_max = consts[0], consts[1], consts[2]
    assume_rest = consts[3] != 0.0
    cap = vals.shape[1]
    k = inc_t.shape[1]
    bt = np.zeros(k)
    bv = np.zeros(k)
    out = np.zeros(rows.size, np.bool_)
    stopped = -1
    for i in range(rows.size):
        row = rows[i]
        if row == stopped:
            continue
        if kind[i] != vitals_kind:  # a wear event: only a change of wear state matters
            w = worn[row]
            out[i] = kind[i] == event_kind and (
                (event[i] == on_wrist) if w else (event[i] == off_wrist)
            )
            if not out[i]:
                stopped = row
            continue
        ti = t[i]
        local = np.int64(ti) + offset[row]  # int(t): truncation, as the rule
        hour = local // 3600
        open_hour = hour_col[row]
        closes = open_hour != none and hour > open_hour
        scored = closes and minutes[row] >= min_rest[row]
        if closes and not scored:  # too few resting minutes: the hour just empties
            hour_col[row] = none
            n_vals[row] = 0
            minutes[row] = 0
            last_minute[row] = -1
        w = worn[row]
        sw = s_worn[i]
        quiet = not scored and ((sw != 0.0) if w else (sw != 1.0))
        if open_hour != none and hour < open_hour:
            quiet = False
        changed, full, nn, isum, o_has, o_steps, o_t = _observe(
            row, ti, steps[i], lookback, bt, bv, a_has, a_steps, a_t, inc_t, inc_v, inc_n, inc_sum
        )
        if full:
            quiet = False
        # fast_activity.rest_now: at rest at the reading's own time?
        known = o_t == o_t and not ti - o_t > stale
        recent = (
            isum
            if steps[i] == steps[i]
            else _recent(changed, bt, bv, inc_t, inc_v, row, nn, ti - lookback)
        )
        rest = (recent <= rest_max) if known else assume_rest
        h = hr[i]
        take = quiet and w and h == h and known and rest
        n = n_vals[row]
        if take and n >= cap:
            quiet = False
            take = False
        out[i] = quiet
        if not quiet:
            stopped = row
            continue
        a_has[row], a_steps[row], a_t[row] = o_has, np.int64(o_steps), o_t
        inc_n[row], inc_sum[row] = nn, isum
        if changed:
            inc_t[row, :] = bt
            inc_v[row, :] = bv
        if take:
            if hour_col[row] == none:
                hour_col[row] = hour
            vals[row, n] = h
            n_vals[row] = n + 1
            minute = local // 60
            if minute != last_minute[row]:
                last_minute[row] = minute
                minutes[row] += 1
    return out


@njit(cache=True, nogil=True)
def battery_absorb(
    rows: np.ndarray,
    t: np.ndarray,
    kind: np.ndarray,
    pct: np.ndarray,
    vitals_kind: int,
    last_t: np.ndarray,
    last_pct: np.ndarray,
    low_col: np.ndarray,
    hist_t: np.ndarray,
    hist_p: np.ndarray,
    hist_n: np.ndarray,
    low_pct: np.ndarray,
    rise: np.ndarray,
    thin: np.ndarray,
    window: np.ndarray,
) -> np.ndarray:
    """``BatteryGroup.absorb`` for each reading, in order (as ``minute_absorb``)."""
    size = hist_t.shape[1]
    out = np.zeros(rows.size, np.bool_)
    stopped = -1
    for i in range(rows.size):
        row = rows[i]
        if row == stopped:
            continue
        ti, p = t[i], pct[i]
        # The device's own event, or a level at the threshold: the object.
        quiet = kind[i] == vitals_kind and not p <= low_pct[row]
        # A level older than the last one changes nothing (LowBatteryRule.update).
        take = quiet and not ti < last_t[row]
        n = hist_n[row]
        low = low_col[row]
        charging = low == low and p >= low + rise[row]
        if charging:
            n = 0  # a new discharge starts
        low = p if charging or low != low else min(low, p)
        last_h = hist_t[row, max(n - 1, 0)]
        append = take and (n == 0 or not ti - last_h < thin[row])
        if append and n >= size:
            quiet = False
            take = False
        out[i] = quiet
        if not quiet:
            stopped = row
            continue
        if not take:
            continue
        last_t[row], last_pct[row], low_col[row] = ti, p, low
        hist_n[row] = n
        if append:
            hist_t[row, n], hist_p[row, n] = ti, p
            n += 1
            # Forget samples older than the window: a prefix (the history is in order).
            horizon = ti - window[row]
            old = 0
            for j in range(n):
                if hist_t[row, j] < horizon:
                    old += 1
            if old:
                for j in range(size):
                    if j < n - old:
                        src = min(j + old, size - 1)
                        hist_t[row, j] = hist_t[row, src]
                        hist_p[row, j] = hist_p[row, src]
                    else:
                        hist_t[row, j] = 0.0
                        hist_p[row, j] = 0.0
            hist_n[row] = n - old
    return out


@njit(cache=True, nogil=True)
def _fmax(a: float, b: float) -> float:
    # ``np.fmax``: the larger, NaN only if both are.
    if a != a:
        return b
    if b != b:
        return a
    return max(a, b)


@njit(cache=True, nogil=True)
def wear_absorb(
    rows: np.ndarray,
    t: np.ndarray,
    kind: np.ndarray,
    event: np.ndarray,
    s_worn: np.ndarray,
    codes: np.ndarray,  # [VITALS, EVENT, off_wrist]
    last_data: np.ndarray,
) -> np.ndarray:
    """``WearGroup.absorb`` for each reading, in order (as ``minute_absorb``)."""
    out = np.zeros(rows.size, np.bool_)
    stopped = -1
    for i in range(rows.size):
        row = rows[i]
        if row == stopped:
            continue
        off = (kind[i] == codes[0] and s_worn[i] == 0.0) or (
            kind[i] == codes[1] and event[i] == codes[2]
        )
        if off:  # off the wrist: the object keeps the elder
            stopped = row
            continue
        out[i] = True
        last_data[row] = _fmax(last_data[row], t[i])
    return out


@njit(cache=True, nogil=True)
def offline_absorb(
    rows: np.ndarray,
    t: np.ndarray,
    kind: np.ndarray,
    event: np.ndarray,
    online: np.ndarray,
    codes: np.ndarray,  # [EVENT, STATUS, power_off]
    silence: np.ndarray,
    last_seen: np.ndarray,
    since: np.ndarray,
    clock: np.ndarray,
    hold: np.ndarray,
    status_offline: np.ndarray,
    power_off: np.ndarray,
) -> np.ndarray:
    """``OfflineGroup.absorb`` for each reading, in order (as ``minute_absorb``)."""
    out = np.zeros(rows.size, np.bool_)
    stopped = -1
    for i in range(rows.size):
        row = rows[i]
        if row == stopped:
            continue
        ti = t[i]
        # ``_due``: max(since + silence, hold_until or -1.0); NaN (never heard of): never.
        h = hold[row]
        h = h if h == h and h != 0.0 else -1.0
        due = since[row] + silence[row]
        if due == due:
            due = max(due, h)
        # The silence due, or a power_off event (the object notes it): the object.
        if ti >= due or (kind[i] == codes[0] and event[i] == codes[2]):
            stopped = row
            continue
        out[i] = True
        clock[row] = _fmax(clock[row], ti)
        if kind[i] == codes[1] and not online[i]:  # a will: recorded, not a sign of life
            status_offline[row] = ti
            continue
        if ti > power_off[row]:  # life after a power_off / a will
            power_off[row] = np.nan
        if ti > status_offline[row]:
            status_offline[row] = np.nan
        last_seen[row] = _fmax(last_seen[row], ti)
        since[row] = _fmax(since[row], ti)
    return out
