"""Vectorised twin of the minute-binned vital-sign rules of one elder, all at once.

The seven ``vitals_rule.MinuteRule`` objects of an elder -- ``news2_rr``,
``news2_spo2``, ``news2_sbp``, ``news2_hr``, ``news2_temp``, ``hr_activity`` and
``news2_partial`` -- are fed the same readings, so they share their activity and
the samples of the open minute; each keeps its own N-of-M window.  Parked here,
they are rows:

* the shared activity (``alerts.fast_activity``);
* the open minute: its samples per parameter (a few), each rule's last sample time,
  and what closing the minute will push for every rule (``pend_*``).  The closing
  depends only on the samples and the activity so far, so it is recomputed with every
  reading of the minute; a reading is taken only if no rule's pending verdict is
  ABNORMAL -- with no episode open and no abnormal minute, ``Sustain.push`` cannot
  say anything;
* per rule, the window as a ring indexed by ``minute % window_minutes`` (entries not
  newer than the rule's last pushed minute minus the window are the ones ``push``
  trims), ``first_normal`` and ``normals``; ``last_rest`` of the five NEWS2 rules; the
  aggregate's ``latest`` medians and ``last_scores``.

Everything else of a rule (episode, last raise, settings, ...) stays in the object:
it cannot change while the rule is quiet.  Closing a minute on ``tick`` or before the
next reading is a vectorised push.  Band scores come from ``np.searchsorted`` over the
same band tables ``alerts.news2`` scores with; medians follow ``vitals_rule._median``.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from alerts import fast_activity, fast_kernels
from alerts.fastpath import EVENT, EVENTS, VITALS, Group, Samples, Table, _all
from alerts.heart_rate import HrActivityRule
from alerts.news2 import (
    NORMAL_MID,
    OXYGEN_SCORE,
    PARAMS,
    SPO2_HIGH_AT,
    SPO2_SCALE1_BANDS,
    SPO2_SCALE2_AIR_BANDS,
    SPO2_SCALE2_OXYGEN_BANDS,
    Bands,
    bands_for,
)
from alerts.vitals_rule import (
    _EXERTION_HIGH,
    ABNORMAL,
    NEUTRAL,
    NORMAL,
    ActivitySettings,
    News2ParamRule,
    PartialNews2Rule,
    SustainSettings,
    VitalsSettings,
)

NONE: Final = np.iinfo(np.int64).min  # an int column's None
NP: Final = len(PARAMS)  # rules 0..4: News2ParamRule(PARAMS[i])
HR: Final = PARAMS.index("hr")
SPO2: Final = PARAMS.index("spo2")
HR_ACTIVITY: Final = NP  # rule 5
PARTIAL: Final = NP + 1  # rule 6
NR: Final = NP + 2
SUSTAIN: Final = SustainSettings()
ACTIVITY: Final = ActivitySettings()
W: Final = SUSTAIN.window_minutes
SAMPLES: Final = 4  # samples per parameter in one minute (one a minute is the norm)
INCREMENTS: Final = 16  # recent step increments a row holds (10 min at 1/min needs 11)
MAX_AGE: Final = np.array([VitalsSettings().max_age_minutes[p] for p in PARAMS], np.int64)
EXERTION: Final = np.array([p in _EXERTION_HIGH for p in PARAMS])
MID: Final = np.array([NORMAL_MID[p] for p in PARAMS])
SPO2_TABLES: Final = (SPO2_SCALE1_BANDS, SPO2_SCALE2_AIR_BANDS, SPO2_SCALE2_OXYGEN_BANDS)
# Which parameters' samples each rule takes (rule 5: the pulse; rule 6: all of them).
TAKES: Final = np.concatenate(
    [np.eye(NP, dtype=bool), np.eye(NP, dtype=bool)[[HR]], np.ones((1, NP), bool)]
)


def _table(bands: Bands) -> tuple[np.ndarray, np.ndarray]:
    return np.array([u for u, _ in bands], np.float64), np.array([s for _, s in bands], np.int64)


_BANDS: Final = [_table(bands_for(p)) for p in PARAMS]  # scale 1 for SpO2
_SPO2: Final = [_table(b) for b in SPO2_TABLES]


def band_scores(v: np.ndarray, bands: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``news2.band_score`` elementwise: the first band whose upper bound is >= v."""
    uppers, scores = bands
    return scores[np.minimum(np.searchsorted(uppers, v, side="left"), len(scores) - 1)]


def medians(v: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``vitals_rule._median`` of the first ``n`` values of each row (NaN where n == 0)."""
    srt = np.sort(np.where(np.arange(v.shape[-1]) < n[..., None], v, np.inf), axis=-1)
    mid = (n // 2)[..., None]
    hi = np.take_along_axis(srt, mid, -1)[..., 0]
    lo = np.take_along_axis(srt, np.maximum(mid - 1, 0), -1)[..., 0]
    med = np.where(n % 2 == 1, hi, (lo + hi) / 2.0)
    return np.where(n > 0, med, np.nan)


def _any(x: np.ndarray) -> np.ndarray:
    """``x.any(1)`` for a few columns: column by column beats a reduction over short rows."""
    out = x[:, 0].copy()
    for j in range(1, x.shape[1]):
        out |= x[:, j]
    return out


def _sum(x: np.ndarray) -> np.ndarray:
    """``x.sum(1)`` for a few columns, column by column (see ``_any``)."""
    out = x[:, 0].copy()
    for j in range(1, x.shape[1]):
        out += x[:, j]
    return out


def spo2_table(s: VitalsSettings) -> int:
    """Which SpO2 band table ``news2.bands_for`` picks for these settings (index)."""
    return SPO2_TABLES.index(bands_for("spo2", hypercapnic=s.hypercapnic, on_oxygen=s.on_oxygen))


class MinuteGroup(Group):
    name = "minute"
    sequential = True
    kinds = frozenset({VITALS, EVENT})
    events = frozenset({"off_wrist", "on_wrist"})

    def columns(self) -> Table:
        return Table(
            **fast_activity.columns(INCREMENTS),
            worn=((), np.bool_, True),
            # per-elder settings
            spo2_table=((), np.int64, 0),
            hyper=((), np.bool_, False),
            oxygen=((), np.int64, 0),  # added to the aggregate (2 on oxygen)
            min_score=((NP,), np.int64, 3),
            medium_at=((), np.int64, 5),
            rest_high=((), np.float64, 120.0),
            # the open minute: samples per parameter, each rule's last sample time
            bin_min=((), np.int64, NONE),  # NONE: no rule has a sample this minute
            bin_v=((NP, SAMPLES), np.float64, 0.0),
            bin_n=((NP,), np.int64, 0),
            last_t=((NR,), np.float64, 0.0),  # MinuteRule.bin_last_t
            # what closing it will push: per rule [verdict, value, score]; the aggregate's
            # new ``latest``/``last_scores`` per parameter [minute, median, score]
            pend_open=((NR,), np.bool_, False),
            pend=((NR, 3), np.float64, 0.0),
            pend_rest=((NP,), np.bool_, True),
            pend_l=((NP, 3), np.float64, np.nan),
            # Sustain: a ring of [minute, verdict, value, score] per rule, at minute % W
            win=((W, NR, 4), np.float64, np.nan),
            w_last=((NR,), np.int64, NONE),
            first_normal=((NR,), np.int64, NONE),
            normals=((NR,), np.int64, 0),
            # News2ParamRule.last_rest; PartialNews2Rule.latest / last_scores
            last_rest=((NP,), np.bool_, True),
            latest=((NP, 3), np.float64, np.nan),  # [minute (NaN: none), median, score]
        )

    # --- which elders ---------------------------------------------------------------

    def pick(self, rules: list[Any]) -> tuple[tuple[Any, ...], int] | None:
        found: dict[int, tuple[int, Any]] = {}
        for i, r in enumerate(rules):
            if type(r) is News2ParamRule and r.param in PARAMS:
                key = PARAMS.index(r.param)
            elif type(r) is HrActivityRule:
                key = HR_ACTIVITY
            elif type(r) is PartialNews2Rule:
                key = PARTIAL
            else:
                continue
            if key in found:
                return None  # two of a kind: not the shape this group knows
            found[key] = (i, r)
        if len(found) != NR:
            return None
        picked = tuple(found[k][1] for k in range(NR))
        vitals = [r.settings for r in picked if type(r) is not HrActivityRule]
        scale = {(v.hypercapnic, v.on_oxygen) for v in vitals}
        if len(scale) != 1 or picked[PARTIAL].settings.max_age_minutes != dict(
            VitalsSettings().max_age_minutes
        ):
            return None
        for r in picked:
            if r.sustain.s != SUSTAIN or r._activity_settings != ACTIVITY:
                return None
            if r.activity.settings != ACTIVITY:
                return None
        return picked, sum(1 << found[k][0] for k in range(NR))

    def bind(self, slot: int, rules: list[Any]) -> None:
        super().bind(slot, rules)
        picked = self.rules[slot]
        if picked is None:
            return
        c = self.cols
        v = picked[PARTIAL].settings
        c.spo2_table[slot] = spo2_table(v)
        c.hyper[slot] = v.hypercapnic
        c.oxygen[slot] = OXYGEN_SCORE if v.on_oxygen else 0
        c.min_score[slot] = [picked[p].settings.min_score for p in range(NP)]
        c.medium_at[slot] = v.aggregate_medium_at
        c.rest_high[slot] = picked[HR_ACTIVITY].settings.rest_high

    # --- readings ---------------------------------------------------------------------

    def on_events(self, rows: np.ndarray, s: Samples) -> np.ndarray:
        # Only a change of wear state does anything (it resets the window: the object's job).
        worn = self.cols.worn[rows]
        return np.where(worn, s.event == EVENTS["on_wrist"], s.event == EVENTS["off_wrist"])

    def absorb(self, rows: np.ndarray, s: Samples) -> np.ndarray:
        # The compiled kernel does what ``on_events`` / ``on_vitals_numpy`` do, reading
        # by reading, several readings of an elder in one call (``sequential``).
        c = self.cols
        t = np.ascontiguousarray(s.t, np.float64)
        return fast_kernels.minute_absorb(
            np.ascontiguousarray(rows, np.int64),
            t,
            np.floor_divide(t, 60.0).astype(np.int64),
            np.ascontiguousarray(s.kind, np.int8),
            np.ascontiguousarray(s.event, np.int8),
            np.stack([s.rr, s.spo2, s.sbp, s.hr, s.temp], axis=1),
            np.ascontiguousarray(s.steps, np.float64),
            np.ascontiguousarray(s.worn, np.float64),
            *_KERNEL_TABLES,
            c.worn,
            c.spo2_table,
            c.hyper,
            c.oxygen,
            c.min_score,
            c.medium_at,
            c.rest_high,
            c.bin_min,
            c.bin_v,
            c.bin_n,
            c.last_t,
            c.pend_open,
            c.pend,
            c.pend_rest,
            c.pend_l,
            c.latest,
            c.a_has,
            c.a_steps,
            c.a_t,
            c.inc_t,
            c.inc_v,
            c.inc_n,
            c.inc_sum,
            c.win,
            c.w_last,
            c.normals,
            c.first_normal,
            c.last_rest,
        )

    def on_vitals_numpy(self, rows: np.ndarray, s: Samples) -> np.ndarray:
        """``on_vitals`` as numpy operations over all rows (the kernel's reference)."""
        c = self.cols
        t = s.t
        minute = np.floor_divide(t, 60.0).astype(np.int64)
        vals = np.stack([s.rr, s.spo2, s.sbp, s.hr, s.temp], axis=1)
        worn = c.worn[rows]
        has = (vals == vals) & worn[:, None]  # off the wrist the samples are ignored

        # The open minute closes first if the reading is past it (MinuteRule._roll).
        open_min = c.bin_min[rows]
        opened = open_min != NONE
        past = opened & (minute > open_min)
        if past.any():
            self._push(rows[past])
        # A change of wear state, or a reading older than the open minute: the objects judge.
        quiet = np.where(worn, s.worn != 0.0, s.worn != 1.0) & ~(opened & (minute < open_min))
        # A minute already pushed would open again: two entries of one minute (objects).
        quiet &= ~(~opened & (c.w_last[rows].max(1) >= minute))

        act = fast_activity.observe(c, rows, t, s.steps, ACTIVITY)
        quiet &= ~act.full

        # The minute's samples, and each rule's last sample time and rest flag.  The
        # common case: the reading opens the minute, so the medians are its values,
        # a rule has samples iff it takes one now, and every such rule's last sample
        # is this reading.
        takes = np.concatenate([has, has[:, HR : HR + 1], _any(has)[:, None]], axis=1)
        last_t = np.where(takes, t[:, None], c.last_t[rows])
        opens = takes
        n = has.astype(np.int64)
        v = np.zeros((rows.size, NP, SAMPLES))
        v[:, :, 0] = vals
        med = vals
        rest = np.repeat(fast_activity.rest_now(act, t, ACTIVITY)[0][:, None], NR, axis=1)
        same = np.flatnonzero(opened & (minute == open_min))
        if same.size:  # a further reading in an open minute: the general case
            n_s = c.bin_n[rows[same]]
            v_s = c.bin_v[rows[same]]
            h_s = has[same]
            over = h_s & (n_s >= SAMPLES)
            quiet[same] &= ~_any(over)
            i, p = np.nonzero(h_s & ~over)
            v_s[i, p, n_s[i, p]] = vals[same][i, p]
            n_s = n_s + (h_s & ~over)
            n[same], v[same] = n_s, v_s
            med = med.copy()
            med[same] = medians(v_s, n_s)
            opens = opens.copy()
            opens[same] = _opens(n_s)
            rest[same] = fast_activity.rest_at(act, same, last_t[same], ACTIVITY)

        pend, pend_l, calm = self._judge(rows, minute, med, opens, rest)
        quiet &= calm

        # Take the quiet readings (usually all of them: no copies then).
        fast_activity.commit(act, quiet)
        sel = _all(quiet)
        q = rows[sel]
        c.bin_min[q] = np.where(opens[sel, PARTIAL], minute[sel], NONE)
        c.bin_v[q] = v[sel]
        c.bin_n[q] = n[sel]
        c.last_t[q] = last_t[sel]
        c.pend_open[q] = opens[sel]
        c.pend[q] = pend[sel]
        c.pend_rest[q] = rest[sel, :NP]
        c.pend_l[q] = pend_l[sel]
        return quiet

    def _scores(self, rows: np.ndarray, vals: np.ndarray) -> np.ndarray:
        """NEWS2 band score of every value, each elder's SpO2 scale included."""
        out = np.empty(vals.shape, np.int64)
        for p in range(NP):
            out[:, p] = band_scores(vals[:, p], _BANDS[p])
        table = self.cols.spo2_table[rows]
        for i in range(1, len(_SPO2)):
            on = table == i
            if on.any():
                out[on, SPO2] = band_scores(vals[on, SPO2], _SPO2[i])
        return out

    def _judge(
        self,
        rows: np.ndarray,
        minute: np.ndarray,
        med: np.ndarray,
        opens: np.ndarray,
        rest: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What closing each row's open minute would push (MinuteRule._roll/_verdict).

        ``med``: minute medians per parameter; ``opens``: which rules have samples;
        ``rest``: each rule's rest flag at its last sample.  Returns the pending
        ``[verdict, value, score]`` per rule, the aggregate's new ``latest``
        ``[minute, median, score]`` per parameter, and whether no rule with samples
        would judge the minute ABNORMAL.
        """
        c = self.cols
        score = self._scores(rows, med)
        high = med >= MID
        high[:, SPO2] = c.hyper[rows] & (med[:, SPO2] >= SPO2_HIGH_AT)
        ver = np.where(
            score < c.min_score[rows],
            NORMAL,
            np.where(high & ~rest[:, :NP] & EXERTION, NEUTRAL, ABNORMAL),
        )
        hr = med[:, HR]
        hr_ver = np.where(
            hr < c.rest_high[rows], NORMAL, np.where(rest[:, HR_ACTIVITY], ABNORMAL, NEUTRAL)
        )
        # The aggregate: resting medians replace older ones, an exercising pulse or
        # breathing rate is dropped, stale ones expire (PartialNews2Rule._verdict).
        latest = c.latest[rows]
        inbin = opens[:, :NP]
        keep = inbin & (rest[:, PARTIAL : PARTIAL + 1] | ~EXERTION)
        l_min = np.where(keep, minute[:, None], np.where(inbin, np.nan, latest[:, :, 0]))
        l_val = np.where(keep, med, latest[:, :, 1])
        present = minute[:, None] - l_min <= MAX_AGE  # False where NaN: none
        # A median kept from an earlier minute keeps the score it was given then.
        l_sc = np.where(present, np.where(keep, score, latest[:, :, 2]), -1)
        total = _sum(np.where(present, l_sc, 0)) + c.oxygen[rows]
        p_ver = np.where(total >= c.medium_at[rows], ABNORMAL, NORMAL)

        pend = np.empty((rows.size, NR, 3))
        pend[:, :NP, 0] = ver
        pend[:, :NP, 1] = med
        pend[:, :NP, 2] = score
        pend[:, HR_ACTIVITY] = np.stack([hr_ver, hr, score[:, HR]], axis=1)
        pend[:, PARTIAL] = np.stack([p_ver, total, total], axis=1)
        pend_l = np.stack([np.where(present, l_min, np.nan), l_val, l_sc], axis=2)
        calm = ~_any(opens & (pend[:, :, 0] == ABNORMAL))
        return pend, pend_l, calm

    def _push(self, rows: np.ndarray) -> None:
        """Close the open minute of ``rows``: ``Sustain.push`` of what was pending."""
        c = self.cols
        fast_kernels.push(
            np.ascontiguousarray(rows, np.int64),
            W,
            NR,
            NP,
            NONE,
            c.bin_min,
            c.bin_n,
            c.pend_open,
            c.pend,
            c.pend_rest,
            c.pend_l,
            c.win,
            c.w_last,
            c.normals,
            c.first_normal,
            c.last_rest,
            c.latest,
        )

    def _push_numpy(self, rows: np.ndarray) -> None:
        """``_push`` as numpy operations (the kernel's reference)."""
        c = self.cols
        m = c.bin_min[rows]
        op = c.pend_open[rows]
        i, r = np.nonzero(op)  # the rules with samples this minute push an entry
        at = (rows[i], m[i] % W, r)
        c.win[(*at, 0)] = m[i]
        c.win[(*at, slice(1, 4))] = c.pend[rows[i], r]
        c.w_last[rows] = np.where(op, m[:, None], c.w_last[rows])
        normal = op & (c.pend[rows, :, 0] == NORMAL)
        c.normals[rows] += normal
        first = c.first_normal[rows]
        c.first_normal[rows] = np.where(normal & (first == NONE), m[:, None], first)
        c.last_rest[rows] = np.where(op[:, :NP], c.pend_rest[rows], c.last_rest[rows])
        c.latest[rows] = np.where(op[:, PARTIAL, None, None], c.pend_l[rows], c.latest[rows])
        c.pend_open[rows] = False
        c.bin_min[rows] = NONE
        c.bin_n[rows] = 0

    def warm_up(self) -> None:
        super().warm_up()
        self._push(np.zeros(0, np.int64))

    def tick(self, t: float) -> np.ndarray:
        c = self.cols
        due = np.flatnonzero(self.asleep & (c.bin_min != NONE) & (c.bin_min < int(t // 60)))
        if due.size:
            self._push(due)
        return np.zeros(0, np.int64)  # nothing here needs the objects: quiet minutes

    # --- parking ------------------------------------------------------------------------

    def load(self, slot: int, t: float) -> bool:
        rules = self.rules[slot]
        if rules is None:
            return False
        a0 = rules[0].activity
        bins: dict[str, list[float]] = {}
        bin_minute = None
        for i, r in enumerate(rules):
            if type(r.worn) is not bool or r.worn is not rules[0].worn or r.sustain.active:
                return False
            if not fast_activity.same(r.activity, a0):
                return False
            w = r.sustain.window
            if w and (
                any(w[j][0] >= w[j + 1][0] for j in range(len(w) - 1))
                or w[-1][0] - w[0][0] >= W
                or any(type(e[0]) is not int or e[1] not in (ABNORMAL, NORMAL, NEUTRAL) for e in w)
            ):
                return False
            if r.bin_minute is not None:  # the open minute: one for all, same samples
                if bin_minute not in (None, r.bin_minute) or set(r.bin) != _TAKEN[i] & set(r.bin):
                    return False
                bin_minute = r.bin_minute
                for p, xs in r.bin.items():
                    if bins.setdefault(p, xs) != xs or not 0 < len(xs) <= SAMPLES:
                        return False
            elif r.bin:
                return False
        if any(
            (r.bin_minute is not None) != bool(_TAKEN[i] & set(bins)) for i, r in enumerate(rules)
        ):
            return False
        c = self.cols
        if not fast_activity.load(c, slot, a0):
            return False
        c.worn[slot] = rules[0].worn
        c.bin_min[slot] = NONE if bin_minute is None else bin_minute
        c.bin_n[slot] = [len(bins.get(p, ())) for p in PARAMS]
        c.bin_v[slot] = [
            list(bins.get(p, ())) + [0.0] * (SAMPLES - len(bins.get(p, ()))) for p in PARAMS
        ]
        c.pend_open[slot] = [r.bin_minute is not None for r in rules]
        # Build the rows as lists, then copy each into its array once.
        win = [[[np.nan] * 4 for _ in range(NR)] for _ in range(W)]
        for i, r in enumerate(rules):
            for e in r.sustain.window:
                win[e[0] % W][i] = e
        c.win[slot] = win
        c.w_last[slot] = [r.sustain.window[-1][0] if r.sustain.window else NONE for r in rules]
        c.first_normal[slot] = [
            NONE if r.sustain.first_normal is None else r.sustain.first_normal for r in rules
        ]
        c.normals[slot] = [r.sustain.normals for r in rules]
        c.last_t[slot] = [r.bin_last_t for r in rules]
        c.last_rest[slot] = [rules[p].last_rest for p in range(NP)]
        agg = rules[PARTIAL]
        latest, scores = agg.latest, agg.last_scores
        c.latest[slot] = [
            [*latest[p], scores.get(p, -1)] if p in latest else [np.nan, 0.0, scores.get(p, -1)]
            for p in PARAMS
        ]
        return True

    def confirm(self, slots: np.ndarray) -> np.ndarray:
        """After ``load``: an open minute must close quietly; compute what it will push."""
        c = self.cols
        ok = np.ones(slots.size, bool)
        open_ = np.flatnonzero(c.bin_min[slots] != NONE)
        if open_.size:
            rows = slots[open_]
            n = c.bin_n[rows]
            opens = c.pend_open[rows]
            rest = fast_activity.rest_rows(c, rows, c.last_t[rows], ACTIVITY)
            med = medians(c.bin_v[rows], n)
            pend, pend_l, calm = self._judge(rows, c.bin_min[rows], med, opens, rest)
            c.pend[rows] = pend
            c.pend_l[rows] = pend_l
            c.pend_rest[rows] = rest[:, :NP]
            ok[open_] = calm
        return ok

    def _states(self, slot: int) -> list[dict[str, Any]]:
        """Each parked rule's changing fields, as ``MinuteRule.snapshot`` names them."""
        c = self.cols
        last_steps, last_t, incs = fast_activity.fields(c, slot)
        win = c.win[slot].tolist()  # [minute % W][rule] -> [minute, verdict, value, score]
        w_last = c.w_last[slot].tolist()
        first_normal, normals = c.first_normal[slot].tolist(), c.normals[slot].tolist()
        bin_last_t, pend_open = c.last_t[slot].tolist(), c.pend_open[slot].tolist()
        bin_min = int(c.bin_min[slot])
        bin_n = c.bin_n[slot].tolist()
        samples = {p: c.bin_v[slot, i, : bin_n[i]].tolist() for i, p in enumerate(PARAMS)}
        worn = bool(c.worn[slot])
        last_rest = c.last_rest[slot].tolist()
        out = []
        for i in range(NR):
            entries = sorted(
                (e[i] for e in win if e[i][0] == e[i][0] and e[i][0] > w_last[i] - W),
                key=lambda e: e[0],
            )
            state: dict[str, Any] = {
                "activity": {
                    "last_steps": last_steps,
                    "last_t": last_t,
                    "incs": [list(e) for e in incs],
                },
                "window": [[int(m), int(v), val, int(sc)] for m, v, val, sc in entries],
                "first_normal": None if first_normal[i] == NONE else first_normal[i],
                "normals": normals[i],
                "worn": worn,
                "bin_minute": bin_min if pend_open[i] else None,
                "bin": {p: list(samples[p]) for p in _TAKEN_ORDER[i] if samples[p]}
                if pend_open[i]
                else {},
                "bin_last_t": bin_last_t[i],
            }
            if i < NP:
                state["last_rest"] = last_rest[i]
            out.append(state)
        latest = c.latest[slot].tolist()
        out[PARTIAL]["latest"] = {
            p: [int(e[0]), e[1]] for p, e in zip(PARAMS, latest, strict=True) if e[0] == e[0]
        }
        out[PARTIAL]["last_scores"] = {
            p: int(e[2]) for p, e in zip(PARAMS, latest, strict=True) if e[2] >= 0
        }
        return out

    def store(self, slot: int) -> None:
        rules = self.rules[slot]
        assert rules is not None
        for r, st in zip(rules, self._states(slot), strict=True):
            r.worn = st["worn"]
            a = r.activity
            a.last_steps, a.last_t, a.incs = (
                st["activity"]["last_steps"],
                st["activity"]["last_t"],
                st["activity"]["incs"],
            )
            su = r.sustain
            su.window, su.first_normal, su.normals = st["window"], st["first_normal"], st["normals"]
            r.bin_minute, r.bin, r.bin_last_t = st["bin_minute"], st["bin"], st["bin_last_t"]
            if "last_rest" in st:
                r.last_rest = st["last_rest"]
            if "latest" in st:
                r.latest, r.last_scores = st["latest"], st["last_scores"]

    def snapshots(self, slot: int) -> list[dict[str, Any]] | None:
        """``MinuteRule.snapshot()`` of each parked rule, without writing the objects."""
        rules = self.rules[slot]
        assert rules is not None
        out = []
        for r, st in zip(rules, self._states(slot), strict=True):
            su = r.sustain  # what a quiet rule cannot change stays in the object
            snap = {
                "activity": st["activity"],
                "sustain": {
                    "window": st["window"],
                    "active": su.active,
                    "last_raise": su.last_raise,
                    "raised_score": su.raised_score,
                    "last_abnormal": su.last_abnormal,
                    "first_normal": st["first_normal"],
                    "normals": st["normals"],
                },
                "worn": st["worn"],
                "bin_minute": st["bin_minute"],
                "bin": st["bin"],
                "bin_last_t": st["bin_last_t"],
                "late": r.late,
                **r._extra_snapshot(),
            }
            for k in ("last_rest", "latest", "last_scores"):
                if k in st:
                    snap[k] = st[k]
            out.append(snap)
        return out


def _padded(tables: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, ...]:
    """Band tables as padded rows for the kernel: uppers, scores, lengths."""
    size = max(len(u) for u, _ in tables)
    up = np.full((len(tables), size), np.inf)
    sc = np.zeros((len(tables), size), np.int64)
    for i, (u, s) in enumerate(tables):
        assert (np.diff(u) > 0).all()  # ``searchsorted`` and a scan agree on sorted bounds
        up[i, : len(u)], sc[i, : len(s)] = u, s
    return up, sc, np.array([len(u) for u, _ in tables], np.int64)


# What ``fast_kernels.on_vitals`` takes after the readings: settings and tables.
_KERNEL_TABLES: Final = (
    np.array(
        [
            ACTIVITY.lookback_minutes * 60.0,
            ACTIVITY.stale_minutes * 60.0,
            float(ACTIVITY.rest_max_steps),
            float(ACTIVITY.assume_rest_if_unknown),
            float(SPO2_HIGH_AT),
        ]
    ),
    np.array(
        [HR, SPO2, SAMPLES, NONE, VITALS, EVENT, EVENTS["on_wrist"], EVENTS["off_wrist"], W],
        np.int64,
    ),
    MAX_AGE,
    EXERTION,
    MID.astype(np.float64),
    *_padded(_BANDS),
    *_padded([_BANDS[SPO2], *_SPO2[1:]]),
)

# The parameters each rule takes samples of, as a set and in ``PARAMS`` order.
_TAKEN_ORDER: Final = [[p for j, p in enumerate(PARAMS) if TAKES[i, j]] for i in range(NR)]
_TAKEN: Final = [set(ps) for ps in _TAKEN_ORDER]


def _opens(n: np.ndarray) -> np.ndarray:
    """Which rules have samples, from the sample counts per parameter."""
    has = n > 0
    return np.concatenate([has, has[:, HR : HR + 1], _any(has)[:, None]], axis=1)
